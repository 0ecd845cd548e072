"""Reference solutions of notebook 09, "Transfer learning" (open only after trying)."""

from __future__ import annotations

import numpy as np

__all__ = ["QUESTION_ANSWERS", "preprocess", "switch_loss"]

QUESTION_ANSWERS = {
    "training_false_in_keras3": "b",
    "when_to_freeze_batch_norm": "c",
}
"""The answer of each conceptual question of the notebook (its checker module's object of
that name)."""


def switch_loss(model, base, images, labels):
    """The loss with the base's BatchNormalization on batch statistics minus on moving ones.

    Examples:

    >>> from resnet_keras.course.exercises.nb09_transfer import _switch_problem
    >>> model, base, images, labels = _switch_problem(0)
    >>> switch_loss(model, base, images, labels) != 0.0
    True
    """
    import keras

    import resnet_keras as rk

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    inference = float(loss(labels, model(images, training=False)))
    saved = base.get_weights()
    rk.transfer.unfreeze(base, batch_norm=True)  # a frozen BN layer ignores training=True
    batch_statistics = float(loss(labels, model(images, training=True)))
    base.set_weights(saved)  # the training-mode pass moved the moving statistics
    base.trainable = False
    return batch_statistics - inference


def preprocess(pixels, mean, std):
    """Pixels 0..255 to the network's inputs: (pixels / 255 - mean) / std per channel.

    Examples:

    >>> preprocess(np.full((1, 1, 1, 3), 255, np.uint8), (0.5,) * 3, (0.25,) * 3).ravel()
    array([2., 2., 2.])
    """
    return (np.asarray(pixels, "float32") / 255.0 - np.asarray(mean)) / np.asarray(std)
