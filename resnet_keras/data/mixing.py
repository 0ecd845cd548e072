"""Mixup and CutMix of training batches, as a function of (seed, epoch, batch) alone.

Mixup (Zhang et al. 2018) trains on convex combinations of two images and of their one-hot
labels, `lam * x_i + (1 - lam) * x_j`; CutMix (Yun et al. 2019) pastes a box of image j into
image i and weighs the labels by the box's area. Both draw `lam` from Beta(alpha, alpha), one
per batch, and pair each image with another of the same batch through a random permutation,
as Zhang et al.'s and timm's implementations do. With both on, each batch is one or the other
(timm's `switch_prob`), so the "Bag of Tricks" and "ResNet strikes back" recipes can be
written down.

Why not `keras.layers.MixUp` and `keras.layers.CutMix`: their random draws come from a
`SeedGenerator` whose state lives in the process, so a run killed and resumed in a new
process would mix its later batches differently from the uninterrupted run (the reason the
data order is keyed by `(seed, epoch)` in `epochs.py`), and their `seed` can only be an
integer (the same draw for every batch) or a generator. The formulas are theirs (the tests
check the images and labels against `keras.layers.MixUp`'s own `transform_images` and
`transform_labels`); only the draws are keyed here, with TensorFlow's stateless ops.
"""

from __future__ import annotations

import tensorflow as tf

from resnet_keras import _validation
from resnet_keras.data import epochs
from resnet_keras.data.options import without_autotune_thread

__all__ = ["mix_batches", "mix_one_batch"]

# The stream numbers of the stateless draws of one batch (any distinct constants do).
_STREAM_CHOICE, _STREAM_ORDER, _STREAM_GAMMA_A, _STREAM_GAMMA_B, _STREAM_BOX = range(5)


def _key(seed, epoch, batch, stream):
    seed = tf.cast(seed, tf.int64)
    epoch = tf.cast(epoch, tf.int64)
    batch = tf.cast(batch, tf.int64)
    return tf.stack([seed * 1_000_003 + epoch, batch * 16 + stream])


def _beta(alpha, key_a, key_b):
    """One draw of Beta(alpha, alpha) as G_a / (G_a + G_b) with G ~ Gamma(alpha)."""
    a = tf.random.stateless_gamma([], seed=key_a, alpha=alpha)
    b = tf.random.stateless_gamma([], seed=key_b, alpha=alpha)
    return a / tf.maximum(a + b, 1e-12)


def _cut_box(height, width, lam, key):
    """CutMix's box: side ratio sqrt(1 - lam), a uniform centre, clipped to the image."""
    centre = tf.random.stateless_uniform([2], seed=key)
    ratio = tf.sqrt(1.0 - lam)
    size = tf.cast(tf.stack([height, width]), tf.float32)
    half = tf.round(ratio * size) / 2.0
    low = tf.cast(tf.clip_by_value(tf.round(centre * size - half), 0.0, size), tf.int32)
    high = tf.cast(tf.clip_by_value(tf.round(centre * size + half), 0.0, size), tf.int32)
    return low, high


def mix_one_batch(
    images,
    labels,
    num_classes,
    *,
    mixup_alpha=0.0,
    cutmix_alpha=0.0,
    switch_probability=0.5,
    seed=0,
    epoch=0,
    batch=0,
):
    """Mixes one batch; the draws are set by `(seed, epoch, batch)` alone.

    Args:
        images: Float images `(batch, height, width, channels)`.
        labels: Integer class ids `(batch,)`.
        num_classes: Number of classes of the one-hot labels.
        mixup_alpha: Beta(alpha, alpha) of mixup; 0 turns mixup off.
        cutmix_alpha: Beta(alpha, alpha) of CutMix; 0 turns CutMix off.
        switch_probability: With both on, the probability that a batch gets CutMix.
        seed: Seed of the draws.
        epoch: The epoch (a scalar tensor or int).
        batch: The batch's index within the epoch.

    Returns:
        `(mixed images, soft labels (batch, num_classes) float32, lam)`: `lam` is the weight
        of each image's own label (CutMix's is corrected to the box's actual area).

    Examples:
        >>> import numpy as np
        >>> images = np.stack([np.zeros((4, 4, 1)), np.ones((4, 4, 1))]).astype("float32")
        >>> mixed, soft, lam = mix_one_batch(images, [0, 1], 2, mixup_alpha=0.4, seed=1)
        >>> bool(np.allclose(soft.numpy().sum(axis=1), 1.0)), mixed.shape
        (True, TensorShape([2, 4, 4, 1]))
    """
    images = tf.convert_to_tensor(images, tf.float32)
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    one_hot = tf.one_hot(labels, num_classes, dtype=tf.float32)
    count = tf.shape(labels)[0]
    order_keys = tf.random.stateless_uniform(
        [count], seed=_key(seed, epoch, batch, _STREAM_ORDER), dtype=tf.float32
    )
    order = tf.argsort(order_keys, stable=True)
    partner_images = tf.gather(images, order)
    partner_labels = tf.gather(one_hot, order)

    def mixup():
        lam = _beta(
            mixup_alpha,
            _key(seed, epoch, batch, _STREAM_GAMMA_A),
            _key(seed, epoch, batch, _STREAM_GAMMA_B),
        )
        return lam * images + (1.0 - lam) * partner_images, lam

    def cutmix():
        lam = _beta(
            cutmix_alpha,
            _key(seed, epoch, batch, _STREAM_GAMMA_A),
            _key(seed, epoch, batch, _STREAM_GAMMA_B),
        )
        height, width = tf.shape(images)[1], tf.shape(images)[2]
        low, high = _cut_box(height, width, lam, _key(seed, epoch, batch, _STREAM_BOX))
        rows = tf.range(height)
        columns = tf.range(width)
        inside_rows = (rows >= low[0]) & (rows < high[0])
        inside_columns = (columns >= low[1]) & (columns < high[1])
        box = inside_rows[:, None] & inside_columns[None, :]
        mixed = tf.where(box[None, :, :, None], partner_images, images)
        area = tf.cast(tf.reduce_prod(high - low), tf.float32)
        return mixed, 1.0 - area / tf.cast(height * width, tf.float32)

    if mixup_alpha > 0 and cutmix_alpha > 0:
        choice = tf.random.stateless_uniform([], seed=_key(seed, epoch, batch, _STREAM_CHOICE))
        mixed, lam = tf.cond(choice < switch_probability, cutmix, mixup)
    elif cutmix_alpha > 0:
        mixed, lam = cutmix()
    elif mixup_alpha > 0:
        mixed, lam = mixup()
    else:
        return images, one_hot, tf.constant(1.0)
    return mixed, lam * one_hot + (1.0 - lam) * partner_labels, lam


def mix_batches(
    dataset, num_classes, *, mixup_alpha=0.0, cutmix_alpha=0.0, switch_probability=0.5, seed=0
):
    """Mixes every batch of a training dataset with mixup and/or CutMix (see the module doc).

    Each pass over the result is an epoch; its draws are keyed by `(seed, epoch, batch)`, with
    the epoch read from a counter that `set_epoch` (and so `resnet_keras.training.fit`) pins
    together with the split's own, so a resumed run mixes as the uninterrupted one did.

    Args:
        dataset: Batches of `(float images, int labels (batch,))`, e.g. `load(...).train`.
        num_classes: Number of classes (the labels become `(batch, num_classes)` float32).
        mixup_alpha: Beta(alpha, alpha) of mixup (0.2 in "Bag of Tricks"); 0: off.
        cutmix_alpha: Beta(alpha, alpha) of CutMix (1.0 in Yun et al. 2019); 0: off.
        switch_probability: With both on, the probability that a batch gets CutMix (0.5).
        seed: Seed of the draws.

    Returns:
        A `tf.data.Dataset` of `(mixed images, soft labels)` with the same number of batches.

    Examples:
        >>> from resnet_keras.data import load
        >>> data = load("digits", batch_size=32, train_size=64)
        >>> mixed = mix_batches(data.train, 10, mixup_alpha=0.2)
        >>> images, soft_labels = next(iter(mixed))
        >>> tuple(soft_labels.shape)
        (32, 10)
    """
    _validation.check_positive_int("num_classes", num_classes)
    _validation.check_number("mixup_alpha", mixup_alpha, minimum=0)
    _validation.check_number("cutmix_alpha", cutmix_alpha, minimum=0)
    _validation.check_number("switch_probability", switch_probability, minimum=0, maximum=1)
    _validation.check_non_negative_int("seed", seed)
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(f"`dataset` must be a tf.data.Dataset; received {type(dataset).__name__}.")
    counter = epochs.new_epoch_counter()
    options = dict(
        mixup_alpha=float(mixup_alpha),
        cutmix_alpha=float(cutmix_alpha),
        switch_probability=float(switch_probability),
        seed=seed,
    )

    def one_pass(_):
        epoch = epochs.draw_epoch(counter)
        return dataset.enumerate().map(
            lambda batch, pair: mix_one_batch(
                pair[0], pair[1], num_classes, epoch=epoch, batch=batch, **options
            )[:2]
        )

    mixed = tf.data.Dataset.from_tensors(0).flat_map(one_pass)
    cardinality = int(dataset.cardinality())
    if cardinality >= 0:
        mixed = mixed.apply(tf.data.experimental.assert_cardinality(cardinality))
    mixed = without_autotune_thread(mixed.prefetch(tf.data.AUTOTUNE))
    return epochs.attach(mixed, [*epochs.epoch_counters(dataset), counter])
