"""Reference solutions of notebook 05, "Pitfalls" (open only after trying)."""

from __future__ import annotations

import keras
from keras import layers, ops

__all__ = ["FixedBlock", "QUESTION_ANSWERS", "l2_factor", "pick_learning_rate"]

QUESTION_ANSWERS = {"generalisation_gap": "c", "batch_statistics_at_evaluation": "b"}
"""The right letter of each conceptual question of the notebook (its checker module's
object of that name)."""


@keras.saving.register_keras_serializable(package="resnet_keras_solutions")
class FixedBlock(layers.Layer):
    """The notebook's ForgetfulBlock with `training` handed to both BatchNormalizations.

    Examples:

    >>> import numpy as np
    >>> tuple(FixedBlock(8)(np.zeros((1, 4, 4, 8), "float32")).shape)
    (1, 4, 4, 8)
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.conv1 = layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.bn1 = layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
        self.conv2 = layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.bn2 = layers.BatchNormalization(momentum=0.9, epsilon=1e-5)

    def call(self, inputs, training=None):
        branch = ops.relu(self.bn1(self.conv1(inputs), training=training))
        branch = self.bn2(self.conv2(branch), training=training)
        return ops.relu(inputs + branch)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


def l2_factor(weight_decay):
    """The `keras.regularizers.l2` factor with the gradient of a coupled weight decay.

    Examples:

    >>> l2_factor(5e-4)
    0.00025
    """
    return weight_decay / 2


def pick_learning_rate(result):
    """Where the smoothed loss of the LR range test falls fastest (before its minimum).

    If the steepest point is the minimum itself (a curve that falls until it breaks), a tenth
    of the LR at the minimum, the usual conservative rule.
    """
    if result.steepest_lr < result.min_loss_lr:
        return result.steepest_lr
    return result.min_loss_lr / 10
