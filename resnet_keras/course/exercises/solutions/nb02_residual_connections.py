"""Reference solutions of notebook 02, "Residual connections" (open only after trying)."""

from __future__ import annotations

import keras
from keras import layers, ops

__all__ = ["QUESTION_ANSWERS", "ResidualBlock", "projection_parameters"]

QUESTION_ANSWERS = {
    "gradients_without_bn": "b",
    "option_a_costs_nothing": "d",
    "identity_gradient": "c",
}
"""The right letter of each conceptual question of the notebook (its checker module's
object of that name)."""


@keras.saving.register_keras_serializable(package="resnet_keras_solutions")
class ResidualBlock(layers.Layer):
    """The notebook's template with its missing line: y = ReLU(F(x) + x).

    Examples:

    >>> import numpy as np
    >>> tuple(ResidualBlock(8)(np.zeros((1, 4, 4, 8), "float32")).shape)
    (1, 4, 4, 8)
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.conv1 = layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.bn1 = layers.BatchNormalization()
        self.conv2 = layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.bn2 = layers.BatchNormalization()

    def call(self, x, training=None):
        f = ops.relu(self.bn1(self.conv1(x), training=training))
        f = self.bn2(self.conv2(f), training=training)
        y = ops.relu(f + x)  # the missing line: the shortcut addition, then ReLU
        return y

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


def projection_parameters(in_channels, out_channels):
    """Trainable parameters of an option-B projection: 1x1 conv (no bias) + BN gamma and beta.

    Examples:

    >>> projection_parameters(16, 32)
    576
    """
    return in_channels * out_channels + 2 * out_channels
