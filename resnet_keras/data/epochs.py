"""The epoch a training pipeline is on, so that its order is a function of (seed, epoch).

A run that is killed and resumed must see, in every later epoch, the batches the
uninterrupted run saw. tf.data's own reshuffling (`reshuffle_each_iteration=True`,
`Dataset.random(rerandomize_each_iteration=True)`) draws each epoch from a random
state that lives in the process, so a new process starts it again at epoch 0 and
a resumed run would train on other batches (on the digits, a run killed in epoch 3
ended with weights up to 1.56 apart from the uninterrupted one).

The training split of `load` therefore reads its epoch from a small counter, a
`tf.Variable` on the CPU, when an epoch's first batch is drawn, and derives that
epoch's shuffle and augmentation from `(seed, epoch)` alone. The counter
advances by itself on every pass, so a plain `for batch in data.train` loop or
Keras' `model.fit` reshuffles each epoch as before; `set_epoch`, or the
`EpochSetter` callback that `resnet_keras.training.fit` adds, pins it to the epoch
Keras is about to run, which after a resume is the epoch after the last backup.
This is PyTorch's `DistributedSampler.set_epoch` pattern; tf.data has no
equivalent, hence this module.
"""

from __future__ import annotations

import tensorflow as tf

__all__ = ["epoch_counter", "epoch_counters", "new_epoch_counter", "set_epoch"]

_ATTRIBUTE = "_resnet_keras_epoch_counter"


def new_epoch_counter() -> tf.Variable:
    """A fresh epoch counter (an int64 `tf.Variable` on the CPU, starting at 0).

    Examples:
        >>> int(new_epoch_counter().numpy())
        0
    """
    # tf.data runs its functions on the CPU; a counter placed on a GPU could not be read there.
    with tf.device("/CPU:0"):
        return tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")


def attach(dataset: tf.data.Dataset, counter) -> tf.data.Dataset:
    """Records on `dataset` the counter(s) its order depends on (returns `dataset`).

    `counter` is None, one counter, or a sequence of them: a pipeline built on a training
    split (`mixing.mix_batches`) keeps the split's counter and adds its own.
    """
    if counter is None:
        return dataset
    counters = tuple(counter) if isinstance(counter, (list, tuple)) else (counter,)
    if counters:
        setattr(dataset, _ATTRIBUTE, counters)
    return dataset


def epoch_counter(dataset) -> tf.Variable | None:
    """The epoch counter of a training split from `load`, or None for any other dataset.

    Args:
        dataset: A `tf.data.Dataset` (or anything else, which has no counter).

    Returns:
        The counter `tf.Variable`, or None when the dataset's order does not depend on one
        (validation and test splits, datasets you made yourself).

    Examples:
        >>> from resnet_keras.data import load
        >>> data = load("digits", batch_size=64, train_size=128)
        >>> epoch_counter(data.train) is not None, epoch_counter(data.test)
        (True, None)
    """
    counters = epoch_counters(dataset)
    return counters[0] if counters else None


def epoch_counters(dataset) -> tuple:
    """All the epoch counters a dataset's order depends on (empty for most datasets).

    Examples:
        >>> from resnet_keras.data import load
        >>> len(epoch_counters(load("digits", batch_size=64, train_size=128).train))
        1
    """
    return tuple(getattr(dataset, _ATTRIBUTE, ()))


def set_epoch(dataset, epoch: int) -> bool:
    """Makes the next pass over `dataset` produce epoch `epoch`'s order and augmentation.

    Call it before each epoch of a loop of your own when a resumed run must repeat the
    uninterrupted one exactly (`resnet_keras.training.fit` does it for you).

    Args:
        dataset: A training split from `load` (other datasets are left alone).
        epoch: The epoch about to start, counted from 0 (an integer >= 0).

    Returns:
        True if the dataset has an epoch counter and it was set, False otherwise.

    Raises:
        ValueError: if `epoch` is not an integer >= 0.

    Examples:
        >>> from resnet_keras.data import load
        >>> data = load("digits", batch_size=64, train_size=128)
        >>> first = next(iter(data.train))[1].numpy()
        >>> set_epoch(data.train, 0)
        True
        >>> bool((next(iter(data.train))[1].numpy() == first).all())  # epoch 0 again
        True
    """
    from resnet_keras._validation import check_non_negative_int

    epoch = check_non_negative_int("epoch", epoch)
    counters = epoch_counters(dataset)
    for counter in counters:
        counter.assign(epoch)
    return bool(counters)


def draw_epoch(counter: tf.Variable) -> tf.Tensor:
    """Inside the pipeline: the epoch this pass is (the counter), and advances the counter."""
    return counter.assign_add(1) - 1


def _key(seed, epoch, stream) -> tf.Tensor:
    """The key of a stateless random op, from (seed, epoch, stream) alone."""
    seed = tf.cast(seed, tf.int64)
    epoch = tf.cast(epoch, tf.int64)
    return tf.stack([seed * 1_000_003 + epoch, tf.cast(stream, tf.int64)])


def permutation(size, seed, epoch) -> tf.Tensor:
    """The order of an epoch's examples: a permutation of range(size) set by (seed, epoch).

    Examples:
        >>> import tensorflow as tf
        >>> order = permutation(5, 0, tf.constant(2, tf.int64))
        >>> sorted(order.numpy().tolist()), bool((order == permutation(5, 0, 2)).numpy().all())
        ([0, 1, 2, 3, 4], True)
    """
    keys = tf.random.stateless_uniform(
        tf.reshape(tf.cast(size, tf.int64), [1]),
        seed=_key(seed, epoch, -1),
        minval=None,
        maxval=None,
        dtype=tf.int64,
    )
    return tf.cast(tf.argsort(keys, stable=True), tf.int64)


def stateless_seed(seed, epoch, position) -> tf.Tensor:
    """A pseudo-random int64 set by (seed, epoch, position) alone: an image's augmentation seed.

    Examples:
        >>> import tensorflow as tf
        >>> a = stateless_seed(0, tf.constant(3, tf.int64), 5)
        >>> b = stateless_seed(0, tf.constant(3, tf.int64), 5)
        >>> bool(a == b), bool(a != stateless_seed(0, tf.constant(4, tf.int64), 5))
        (True, True)
    """
    return tf.random.stateless_uniform(
        [], seed=_key(seed, epoch, position), minval=None, maxval=None, dtype=tf.int64
    )
