"""The bottleneck block: 1x1 reduce, 3x3, 1x1 expand (ResNet-50/101/152, ResNet-164).

With `groups` and `width_per_group` it is also the block of ResNeXt (a grouped 3x3
convolution, Xie et al. 2017) and of Wide ResNet-50-2 (a wider 3x3 convolution), as
torchvision builds them: one class, other arguments.
"""

from __future__ import annotations

import keras

from resnet_keras._validation import check_bool, check_positive_int
from resnet_keras.layers.residual_block import BranchConvolution, ResidualBlock


@keras.saving.register_keras_serializable(package="resnet_keras")
class BottleneckBlock(ResidualBlock):
    """1x1 -> 3x3 -> 1x1 convolutions with a shortcut; output `filters * expansion`.

    The 1x1 convolutions shrink and restore the channels so the expensive 3x3
    convolution works on `filters` channels only: that is what lets ResNet-50
    be deeper than ResNet-34 at about the same cost (paper, Table 1).

    The 3x3 convolution (and the 1x1 before it) has `filters * width_per_group // 64 *
    groups` channels, torchvision's rule: `filters` itself by default; 32 groups of
    4 channels per 64 filters for ResNeXt-50 (32x4d); twice `filters` with
    `width_per_group=128` for Wide ResNet-50-2. The output always has
    `filters * expansion` channels.

    Args:
        filters: channels of the 3x3 convolution at the default width; a quarter of the
            output's channels.
        strides: 1, or 2 to halve the resolution.
        expansion: output channels are `filters * expansion` (4 in the paper).
        groups: the 3x3 convolution splits its channels into this many independent groups
            (ResNeXt's cardinality; 1 is an ordinary convolution).
        width_per_group: channels of each group per 64 `filters` (64 by default; 4 for
            ResNeXt-50 32x4d, 128 for Wide ResNet-50-2).
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
    >>> resnext = BottleneckBlock(64, groups=32, width_per_group=4)
    >>> resnext.bottleneck_width, resnext.output_filters
    (128, 256)
    """

    # Keras' scale-and-shift in inference: with 1x1 convolutions the fused kernel was
    # slower in ResNet-50 inference (benchmarks/RESULTS.md); training still fuses.
    _fused_inference = False

    def __init__(
        self,
        filters,
        strides=1,
        expansion=4,
        stride_on_3x3=True,
        groups=1,
        width_per_group=64,
        **kwargs,
    ):
        super().__init__(filters, strides=strides, **kwargs)
        self.expansion = check_positive_int("expansion", expansion)
        self.stride_on_3x3 = check_bool("stride_on_3x3", stride_on_3x3)
        self.groups = check_positive_int("groups", groups)
        self.width_per_group = check_positive_int("width_per_group", width_per_group)
        if self.filters * self.width_per_group < 64:
            raise ValueError(
                "`width_per_group` must give each group at least one channel "
                f"(filters * width_per_group >= 64); received width_per_group="
                f"{width_per_group} with filters={filters}."
            )

    @property
    def output_filters(self):
        return self.filters * self.expansion

    @property
    def bottleneck_width(self):
        """Channels of the 3x3 convolution (torchvision's `width`)."""
        return self.filters * self.width_per_group // 64 * self.groups

    def _branch_convolutions(self):
        first_stride, middle_stride = (1, self.strides) if self.stride_on_3x3 else (self.strides, 1)
        width = self.bottleneck_width
        return [
            BranchConvolution(1, width, first_stride),
            BranchConvolution(3, width, middle_stride, groups=self.groups),
            BranchConvolution(1, self.output_filters, 1),
        ]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "expansion": self.expansion,
                "stride_on_3x3": self.stride_on_3x3,
                "groups": self.groups,
                "width_per_group": self.width_per_group,
            }
        )
        return config
