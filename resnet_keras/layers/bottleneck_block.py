"""The bottleneck block: 1x1 reduce, 3x3, 1x1 expand (ResNet-50/101/152, ResNet-164)."""

from __future__ import annotations

import keras

from resnet_keras._validation import check_bool, check_positive_int
from resnet_keras.layers.residual_block import ResidualBlock


@keras.saving.register_keras_serializable(package="resnet_keras")
class BottleneckBlock(ResidualBlock):
    """1x1 -> 3x3 -> 1x1 convolutions with a shortcut; output `filters * expansion`.

    The 1x1 convolutions shrink and restore the channels so the expensive 3x3
    convolution works on `filters` channels only: that is what lets ResNet-50
    be deeper than ResNet-34 at about the same cost (paper, Table 1).

    Args:
        filters: channels of the 3x3 convolution.
        strides: 1, or 2 to halve the resolution.
        expansion: output channels are `filters * expansion` (4 in the paper).
        stride_on_3x3: put the stride on the 3x3 convolution (as torchvision's
            "ResNet v1.5" and the pre-activation paper do). False puts it on the
            first 1x1 convolution, as the original paper and
            keras.applications' ResNet50 do.
        shortcut, preactivation, residual, zero_init_residual, **kwargs: see
            `BasicBlock` and `ResidualBlock`.

    Examples:

    >>> import numpy as np
    >>> from resnet_keras.layers import BottleneckBlock
    >>> block = BottleneckBlock(64, shortcut="B")
    >>> tuple(block(np.zeros((1, 56, 56, 64), "float32")).shape)
    (1, 56, 56, 256)
    """

    # Keras' scale-and-shift in inference: with 1x1 convolutions the fused kernel was
    # slower in ResNet-50 inference (benchmarks/RESULTS.md); training still fuses.
    _fused_inference = False

    def __init__(self, filters, strides=1, expansion=4, stride_on_3x3=True, **kwargs):
        super().__init__(filters, strides=strides, **kwargs)
        self.expansion = check_positive_int("expansion", expansion)
        self.stride_on_3x3 = check_bool("stride_on_3x3", stride_on_3x3)

    @property
    def output_filters(self):
        return self.filters * self.expansion

    def _branch_convolutions(self):
        first_stride, middle_stride = (1, self.strides) if self.stride_on_3x3 else (self.strides, 1)
        return [
            (1, self.filters, first_stride),
            (3, self.filters, middle_stride),
            (1, self.output_filters, 1),
        ]

    def get_config(self):
        config = super().get_config()
        config.update({"expansion": self.expansion, "stride_on_3x3": self.stride_on_3x3})
        return config
