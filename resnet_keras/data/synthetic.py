"""Random CIFAR-shaped data for benchmarks and smoke tests (no download, no disk)."""

from __future__ import annotations

import numbers

import numpy as np

from resnet_keras._validation import check_non_negative_int, check_positive_int


def synthetic(
    num_examples=512,
    batch_size=128,
    *,
    image_shape=(32, 32, 3),
    num_classes=10,
    seed=0,
    repeat=False,
    as_numpy=False,
):
    """Standard-normal images with uniformly random labels.

    The values carry no signal: use them to time a training step or to check shapes,
    never to judge a model.

    Args:
        num_examples: Number of distinct images (>= 1).
        batch_size: Images per batch (>= 1).
        image_shape: Shape of one image, `(height, width, channels)`.
        num_classes: Labels are drawn from `range(num_classes)` (>= 1).
        seed: Seed of the NumPy generator (>= 0); equal seeds give equal data.
        repeat: Whether the dataset repeats forever (then pass `steps_per_epoch`).
        as_numpy: Return the arrays `(images, labels)` instead of a dataset.

    Returns:
        A `tf.data.Dataset` of `(float32 images (batch, *image_shape), int32 labels)`,
        or the NumPy arrays when `as_numpy` is True.

    Examples:
        >>> from resnet_keras.data import synthetic
        >>> images, labels = next(iter(synthetic(256, batch_size=128)))
        >>> tuple(images.shape), labels.dtype.name
        ((128, 32, 32, 3), 'int32')
    """
    for argument, value in (
        ("num_examples", num_examples),
        ("batch_size", batch_size),
        ("num_classes", num_classes),
    ):
        check_positive_int(argument, value)
    check_non_negative_int("seed", seed)
    shape = tuple(image_shape)
    if len(shape) != 3 or any(
        isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1 for d in shape
    ):
        raise ValueError(
            "`image_shape` must be three positive integers (height, width, channels); "
            f"received {image_shape!r}."
        )
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((int(num_examples), *shape), dtype=np.float32)
    labels = rng.integers(0, num_classes, size=int(num_examples)).astype(np.int32)
    if as_numpy:
        return images, labels

    import tensorflow as tf

    from .options import without_autotune_thread

    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
    if repeat:
        dataset = dataset.repeat()
    # A repeated dataset is always dropped part-way: no autotuning thread to wait for.
    return without_autotune_thread(dataset.prefetch(tf.data.AUTOTUNE))
