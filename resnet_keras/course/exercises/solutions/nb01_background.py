"""Reference solutions of notebook 01, "Background" (open only after trying)."""

from __future__ import annotations

import math

import keras

__all__ = ["CONV3_PARAMETERS", "QUESTION_ANSWERS", "conv_translation", "expected_initial_loss"]

QUESTION_ANSWERS = {
    "batch_norm_at_test_time": "b",
    "degradation_not_overfitting": "c",
}
"""The right letter of each conceptual question of the notebook (its checker module's
object of that name)."""

CONV3_PARAMETERS = 3 * 3 * 128 * 256 + 256
"""nn.Conv2d(128, 256, kernel_size=3, padding=1): 3x3x128 weights per filter, 256 filters, 256
biases = 295,168."""


def conv_translation():
    """`nn.Conv2d(64, 128, kernel_size=3, stride=1, padding=1)` in Keras.

    The input channels are not given (Keras reads them from the data); padding=1 around a 3x3
    kernel at stride 1 keeps the size, which is `padding="same"`; the bias is on in both.

    Examples:

    >>> import numpy as np
    >>> layer = conv_translation()
    >>> tuple(layer(np.zeros((1, 32, 32, 64), "float32")).shape), layer.count_params()
    ((1, 32, 32, 128), 73856)
    """
    return keras.layers.Conv2D(128, kernel_size=3, strides=1, padding="same")


def expected_initial_loss(num_classes):
    """Cross-entropy of a classifier that gives every class probability 1/num_classes.

    Examples:

    >>> round(expected_initial_loss(10), 3)
    2.303
    """
    return math.log(num_classes)
