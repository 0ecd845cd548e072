"""Squeeze-and-excitation (Hu et al. 2018): the attention slot of a residual block."""

from __future__ import annotations

import keras
from keras import layers, ops

from resnet_keras._validation import check_image_input_shape, check_positive_int


@keras.saving.register_keras_serializable(package="resnet_keras")
class SqueezeExcitation(layers.Layer):
    """Rescales each channel by a gate computed from the whole image: x * s(x).

    Squeeze: the mean of each channel over the image. Excitation: a dense layer of
    `channels // reduction` units with ReLU, then one of `channels` units with a sigmoid,
    both with biases (Hu et al. 2018, Fig. 3; the parameter count of SE-ResNet-50 includes
    them). A block puts it on its branch, before the addition (`attention=
    "squeeze_excitation"` of `ResidualBlock`). The two dense layers act on a 1x1 map, so
    `count_macs` counts their 2 C^2 / reduction multiply-adds; the final product, like
    batch normalisation's, is not counted.

    Args:
        reduction: the ratio of channels to bottleneck units (16 in the paper).
        **kwargs: standard layer arguments.

    Examples:

    >>> import numpy as np
    >>> se = SqueezeExcitation(reduction=4)
    >>> tuple(se(np.ones((2, 8, 8, 32), "float32")).shape)
    (2, 8, 8, 32)
    >>> se.count_params()  # 32 -> 8 -> 32 with biases
    552
    """

    def __init__(self, reduction=16, **kwargs):
        super().__init__(**kwargs)
        self.reduction = check_positive_int("reduction", reduction)

    def build(self, input_shape):
        check_image_input_shape(type(self).__name__, input_shape)
        channels = int(input_shape[-1])
        self.squeeze = layers.Dense(
            max(1, channels // self.reduction),
            activation="relu",
            dtype=self.dtype_policy,
            name="squeeze",
        )
        self.excite = layers.Dense(
            channels, activation="sigmoid", dtype=self.dtype_policy, name="excite"
        )
        pooled = (input_shape[0], 1, 1, channels)
        self.squeeze.build(pooled)
        self.excite.build(self.squeeze.compute_output_shape(pooled))
        self.built = True

    def call(self, inputs):
        gate = self.excite(self.squeeze(ops.mean(inputs, axis=(1, 2), keepdims=True)))
        return inputs * ops.cast(gate, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction}
