"""tf.data building blocks shared by every dataset: statistics, normalisation, augmentation.

Every source hands over a dataset of single `(uint8 image, integer label)` pairs; this
module turns it into batches of float32 NHWC images and int32 labels. tf.data is only
the input pipeline: Keras accepts the resulting datasets under the TensorFlow, JAX and
PyTorch backends alike.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from . import epochs
from .options import without_autotune_thread

PAD = 4
"""Pixels of padding on each side before the random crop (He et al. 2016, Sec. 4.2)."""

_STATS_BATCH = 1024


def channel_stats(dataset):
    """Per-channel mean and standard deviation of the pixels of a uint8 image dataset.

    Args:
        dataset: A `tf.data.Dataset` of unbatched `(image, label)` pairs with uint8
            images of shape `(height, width, channels)`.

    Returns:
        `(mean, std)`, two tuples of floats on the 0..1 pixel scale (population
        standard deviation over every pixel of every image).

    Examples:
        >>> import numpy as np, tensorflow as tf
        >>> images = np.zeros((4, 2, 2, 3), np.uint8); images[:2] = 255
        >>> ds = tf.data.Dataset.from_tensor_slices((images, np.zeros(4, np.int32)))
        >>> channel_stats(ds)
        ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    """
    total = None
    total_sq = None
    count = 0
    # float64 sums over uint8 batches: exact enough for 50k images without holding
    # a float copy of the whole split in memory.
    for images, _ in dataset.batch(_STATS_BATCH).as_numpy_iterator():
        pixels = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
        batch_sum = pixels.sum(axis=0)
        batch_sq = np.square(pixels).sum(axis=0)
        total = batch_sum if total is None else total + batch_sum
        total_sq = batch_sq if total_sq is None else total_sq + batch_sq
        count += pixels.shape[0]
    if count == 0:
        raise ValueError("Cannot compute channel statistics of an empty dataset.")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - np.square(mean), 0.0))
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def _normalizer(mean, std):
    mean = tf.constant(mean, tf.float32)
    std = tf.constant(std, tf.float32)

    def normalize(images):
        return (tf.cast(images, tf.float32) / 255.0 - mean) / std

    return normalize


def _in_memory(dataset):
    """The uint8 images and int32 labels of an unbatched dataset, as two tensors."""
    images, labels = [], []
    for image_batch, label_batch in dataset.batch(_STATS_BATCH).as_numpy_iterator():
        images.append(image_batch)
        labels.append(label_batch)
    if not images:
        raise ValueError("Cannot train on an empty dataset.")
    with tf.device("/CPU:0"):  # tf.data reads them on the CPU
        return tf.constant(np.concatenate(images)), tf.constant(np.concatenate(labels))


def augment_image(image, seed, *, flip, fill=None):
    """Pads by `PAD` pixels, takes a random crop of the original size, maybe flips.

    Stateless random ops with an explicit per-image seed make the result depend only on
    the seed, not on which tf.data worker thread runs first.

    Args:
        image: A float32 tensor `(height, width, channels)`, already normalised.
        seed: An int64 scalar tensor; each image gets its own.
        flip: Whether to flip left-right with probability 1/2.
        fill: Per-channel value of the padding (in the normalised space); `None` pads
            with zeros, which after normalisation is the mean colour, as in
            fb.resnet.torch's CIFAR recipe.

    Returns:
        A tensor of the same shape and dtype.

    Examples:
        >>> import tensorflow as tf
        >>> out = augment_image(tf.ones((32, 32, 3)), tf.constant(7, tf.int64), flip=True)
        >>> tuple(out.shape)
        (32, 32, 3)
    """
    shape = tf.shape(image)
    paddings = [[PAD, PAD], [PAD, PAD], [0, 0]]
    if fill is None:
        padded = tf.pad(image, paddings)
    else:
        fill = tf.cast(fill, image.dtype)
        padded = tf.pad(image - fill, paddings) + fill
    seed = tf.cast(seed, tf.int64)
    crop_seed = tf.stack([seed, tf.constant(0, tf.int64)])
    image = tf.image.stateless_random_crop(padded, shape, seed=crop_seed)
    if flip:
        flip_seed = tf.stack([seed, tf.constant(1, tf.int64)])
        image = tf.image.stateless_random_flip_left_right(image, seed=flip_seed)
    return image


def make_split(
    dataset,
    num_examples,
    *,
    batch_size,
    mean,
    std,
    training=False,
    augment=False,
    flip=True,
    pad_fill=None,
    seed=0,
):
    """Turns a dataset of uint8 `(image, label)` pairs into normalised batches.

    Args:
        dataset: Unbatched `tf.data.Dataset` of `(uint8 image, integer label)`.
        num_examples: Its number of elements (used for the shuffle buffer and to tell
            Keras how many steps an epoch has).
        batch_size: Images per batch; the last batch may be smaller.
        mean: Per-channel mean on the 0..1 scale.
        std: Per-channel standard deviation on the 0..1 scale.
        training: Shuffle and, with `augment`, augment, differently in every epoch
            but as a function of `(seed, epoch)` alone (see `epochs`). Validation and
            test splits keep their order.
        augment: Pad-and-crop (and `flip`) augmentation of the training split.
        flip: Whether the augmentation includes random horizontal flips.
        pad_fill: Colour of the crop padding as per-channel pixel values on the 0..1
            scale (before normalisation); `None` pads with the mean colour.
        seed: Seed of the shuffle and of the augmentation.

    Returns:
        A `tf.data.Dataset` of `(float32 images (batch, H, W, C), int32 labels (batch,))`.

    Examples:
        >>> import numpy as np, tensorflow as tf
        >>> images = np.zeros((10, 32, 32, 3), np.uint8)
        >>> ds = tf.data.Dataset.from_tensor_slices((images, np.arange(10)))
        >>> batches = make_split(ds, 10, batch_size=4, mean=(0, 0, 0), std=(1, 1, 1))
        >>> [int(labels.shape[0]) for _, labels in batches]
        [4, 4, 2]
    """
    normalize = _normalizer(mean, std)
    fill = None
    if pad_fill is not None:
        fill = (np.asarray(pad_fill, np.float32) - np.asarray(mean, np.float32)) / np.asarray(
            std, np.float32
        )
    dataset = dataset.map(
        lambda image, label: (image, tf.cast(label, tf.int32)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_examples))
    if not training:
        # Caching the compact uint8 images lets later passes skip the decoding.
        dataset = dataset.cache().batch(batch_size)
        dataset = dataset.map(
            lambda images, labels: (normalize(images), labels),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        # No autotuning thread: deleting an iterator would wait for it (see options.py).
        return without_autotune_thread(dataset.prefetch(tf.data.AUTOTUNE))

    # The order and the augmentation of an epoch are functions of (seed, epoch) alone, so
    # that a run resumed in a new process sees the batches the uninterrupted run saw (see
    # epochs.py). The compact uint8 images are held in memory (138 MB for CIFAR-10's 45,000,
    # what a full shuffle buffer held before) and read in a stateless permutation of the
    # epoch; tf.data's shuffle takes its seed from a process-wide state instead. Each pass
    # reads its epoch from the counter when its first element is drawn: iterators that Keras
    # creates and never reads leave the counter alone.
    images, labels = _in_memory(dataset)
    counter = epochs.new_epoch_counter()

    def one_epoch(_):
        epoch = epochs.draw_epoch(counter)
        order = epochs.permutation(tf.shape(labels, out_type=tf.int64)[0], seed, epoch)
        return (
            tf.data.Dataset.from_tensor_slices(order)
            .enumerate()
            .map(
                lambda position, index: (
                    tf.gather(images, index),
                    tf.gather(labels, index),
                    epochs.stateless_seed(seed, epoch, position),
                )
            )
        )

    dataset = tf.data.Dataset.from_tensors(0).flat_map(one_epoch)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_examples))
    if augment:
        dataset = dataset.map(
            lambda image, label, image_seed: (
                augment_image(normalize(image), image_seed, flip=flip, fill=fill),
                label,
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        dataset = dataset.batch(batch_size)
    else:
        dataset = dataset.map(lambda image, label, _: (image, label)).batch(batch_size)
        dataset = dataset.map(
            lambda images, labels: (normalize(images), labels),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return epochs.attach(without_autotune_thread(dataset.prefetch(tf.data.AUTOTUNE)), counter)
