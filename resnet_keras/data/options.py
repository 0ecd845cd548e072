"""tf.data options of the library's pipelines: no autotuning thread.

tf.data's autotuner, on by default, gives every iterator a background thread that
re-tunes the pipeline at growing intervals: it wakes 10 ms after the first batch,
then 20 ms later, 40 ms, and so on, up to a minute apart. When an iterator is
deleted, its destructor waits for that thread, and in TensorFlow 2.21 the thread
often stays in its wait until its next wake-up although it was asked to stop (a gdb
dump shows the Python thread in `RootDataset::Iterator::~Iterator` and the tuner in
`Model::OptimizeLoop`'s timed wait). Meanwhile every core sits idle: deleting an
iterator after 4 s can wait until 5.11 s, after 25 s until 40.95 s. Iterators go
away at the end of every `fit` call, in an LR finder that stops after a set number
of batches, with `steps_per_epoch` on a repeated dataset. What it cost `fit` and
`find_learning_rate` is in benchmarks/RESULTS.md (Findings, tf.data's autotuning thread).

Without the autotuner, `tf.data.AUTOTUNE` still means something: a parallel `map`
keeps the tuner's starting point (one call per core, up to 16) and
`prefetch(AUTOTUNE)` still grows its buffer when the consumer finds it empty. The
library's pipelines deliver about 30 times what ResNet-20 training consumes on the
course's 2-core machine either way.
"""

from __future__ import annotations

import tensorflow as tf


def pipeline_options() -> tf.data.Options:
    """The `tf.data.Options` the library's pipelines carry: autotuning off.

    Apply them to a pipeline of your own with `dataset.with_options(pipeline_options())`,
    or use `without_autotune_thread`, which keeps an explicit choice.

    Returns:
        A new `tf.data.Options` with `autotune.enabled = False`.

    Examples:
        >>> pipeline_options().autotune.enabled
        False
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def without_autotune_thread(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Returns `dataset` with tf.data's autotuning turned off, unless it was set explicitly.

    A dataset whose `options().autotune.enabled` is already `True` or `False` comes back
    unchanged: the caller's decision wins.

    Args:
        dataset: A `tf.data.Dataset`.

    Returns:
        The dataset, with `pipeline_options()` applied when autotuning was left unset.

    Raises:
        TypeError: if `dataset` is not a `tf.data.Dataset`.

    Examples:
        >>> import tensorflow as tf
        >>> without_autotune_thread(tf.data.Dataset.range(4)).options().autotune.enabled
        False
        >>> tuned = tf.data.Options()
        >>> tuned.autotune.enabled = True
        >>> dataset = tf.data.Dataset.range(4).with_options(tuned)
        >>> without_autotune_thread(dataset).options().autotune.enabled
        True
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(f"`dataset` must be a tf.data.Dataset; received {type(dataset).__name__}.")
    if dataset.options().autotune.enabled is not None:
        return dataset
    from . import epochs  # the copy keeps the epoch counter its order depends on

    return epochs.attach(dataset.with_options(pipeline_options()), epochs.epoch_counters(dataset))
