"""Small helpers shared by the training modules (not public API)."""

from __future__ import annotations

import tensorflow as tf

from resnet_keras.data.options import without_autotune_thread

NAN_ADVICE = (
    "The loss became NaN or infinite, so training stopped. Things to try: lower the learning "
    "rate (or run the LR finder, resnet_keras.training.find_learning_rate); add a warm-up "
    "(recipe='paper-warmup' or 'cosine'); check that the images are normalised (float32, roughly "
    "zero mean and unit variance, no NaN in the data); with mixed precision, keep the last layer "
    "in float32."
)


def unpack_data(data, validation_data=None):
    """Returns (train, validation) from a `LoadedData`-like object or a dataset.

    `resnet_keras.data.load` returns an object with `.train` and `.validation`; anything else is
    taken as the training dataset itself. Both come back without tf.data's autotuning thread
    unless the caller set `autotune.enabled`: deleting an iterator waits for that thread with the
    cores idle, and every loop here deletes some (see `resnet_keras.data.options`).
    """
    if hasattr(data, "train") and not isinstance(data, tf.data.Dataset):
        train = data.train
        if validation_data is None:
            validation_data = getattr(data, "validation", None)
    else:
        train = data
    if not isinstance(train, tf.data.Dataset):
        raise TypeError(
            "`data` must be a tf.data.Dataset of (images, labels) batches or the result of "
            f"resnet_keras.data.load(); received {type(data).__name__}."
        )
    if validation_data is not None and not isinstance(validation_data, tf.data.Dataset):
        raise TypeError(
            "`validation_data` must be a tf.data.Dataset of (images, labels) batches or None, "
            f"received {type(validation_data).__name__}."
        )
    if validation_data is not None:
        validation_data = without_autotune_thread(validation_data)
    return without_autotune_thread(train), validation_data


def steps_in(dataset: tf.data.Dataset) -> int | None:
    """Number of batches in one pass over `dataset`, or None when tf.data cannot tell."""
    cardinality = int(dataset.cardinality())
    if cardinality < 0:  # tf.data.INFINITE_CARDINALITY (-1) or UNKNOWN_CARDINALITY (-2)
        return None
    return cardinality
