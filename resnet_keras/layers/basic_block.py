"""The basic residual block: two 3x3 convolutions (ResNet-18/34, CIFAR ResNets)."""

from __future__ import annotations

import keras

from resnet_keras.layers.residual_block import ResidualBlock


@keras.saving.register_keras_serializable(package="resnet_keras")
class BasicBlock(ResidualBlock):
    """Two 3x3 convolutions with a shortcut around them: y = F(x) + x.

    The stride, if any, is on the first convolution. Output channels equal
    `filters`.

    Args:
        filters: channels of both convolutions and of the output.
        strides: 1, or 2 to halve the resolution.
        shortcut: "A" (zero-padding), "B" (projection where channels change)
            or "C" (projection everywhere).
        preactivation: use the pre-activation (v2) ordering BN -> ReLU -> conv.
        residual: False gives the plain block (no shortcut, no addition).
        zero_init_residual: the block starts as the identity (v1: ReLU of
            its input).
        **kwargs: see `ResidualBlock` (use_bias, batch_norm_momentum,
            batch_norm_epsilon, kernel_initializer, kernel_regularizer, name).

    Examples:

    >>> import keras, numpy as np
    >>> from resnet_keras.layers import BasicBlock
    >>> block = BasicBlock(32, strides=2, shortcut="A")
    >>> tuple(block(np.zeros((1, 32, 32, 16), "float32")).shape)
    (1, 16, 16, 32)
    """

    @property
    def output_filters(self):
        return self.filters

    def _branch_convolutions(self):
        return [(3, self.filters, self.strides), (3, self.filters, 1)]
