"""Reference solutions of notebook 06, "Beyond ResNet" (open only after trying)."""

from __future__ import annotations

import keras
from keras import layers, ops

__all__ = ["DropPath", "QUESTION_ANSWERS", "grouped_conv_weights"]

QUESTION_ANSWERS = {"bottleneck_cost": "d", "drop_path_scaling": "a"}
"""The right letter of each conceptual question of the notebook (its checker module's
object of that name)."""

grouped_conv_weights = 3 * 3 * (128 // 32) * 128
"""Kernel height x width x input channels per group x output channels = 4,608."""


@keras.saving.register_keras_serializable(package="resnet_keras_solutions")
class DropPath(layers.Layer):
    """Stochastic depth per sample: drops a residual branch with probability 1 - p.

    In training each sample's branch is zeroed with probability `1 - survival_probability`
    and kept samples are divided by `survival_probability` ("inverted" scaling, as in inverted
    dropout), so the expected output is the input; in inference the branch passes unchanged.

    Examples:

    >>> import numpy as np
    >>> layer = DropPath(0.8, seed=0)
    >>> x = np.ones((2, 3), "float32")
    >>> bool(np.all(np.asarray(layer(x)) == x))
    True
    """

    def __init__(self, survival_probability, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.survival_probability = float(survival_probability)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.survival_probability >= 1.0:
            return inputs
        # One draw per sample, broadcast over the other axes: the whole branch goes.
        shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        draw = keras.random.uniform(shape, seed=self.seed_generator, dtype=inputs.dtype)
        keep = ops.cast(draw < self.survival_probability, inputs.dtype)
        return inputs * keep / self.survival_probability

    def get_config(self):
        config = super().get_config()
        config.update({"survival_probability": self.survival_probability, "seed": self.seed})
        return config
