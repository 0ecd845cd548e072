"""The shortcut path of a residual block and the paper's three options.

He et al. (2016, Sec. 3.3) compare three ways to carry the input past a block
when the block changes the number of channels or the resolution:

* option "A": a parameter-free shortcut. Strided subsampling halves the
  resolution and the new channels are filled with zeros.
* option "B": a 1x1 projection (plus batch normalisation) only where the
  number of channels changes; identity (subsampled if needed) everywhere else.
* option "C": a 1x1 projection on every block.

`resolve_shortcut` turns an option and a block's shapes into what the block
builds; `parameter_free_shortcut` is option A's computation in `keras.ops`.

ResNet-D (He et al. 2019, "Bag of Tricks", Sec. 4.1) changes how a strided shortcut
downsamples, whichever option: a stride-2 1x1 convolution reads one pixel of every 2x2
window and ignores three quarters of its input, so ResNet-D averages each window first
(`average_pool_2x2`) and projects with stride 1. Blocks take it as `average_pool_shortcut`.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from resnet_keras._validation import (
    check_choice,
    check_image_input_shape,
    check_positive_int,
    check_strides,
)

SHORTCUT_OPTIONS = ("A", "B", "C")

IDENTITY = "identity"
PROJECTION = "projection"


def resolve_shortcut(option, input_channels, output_channels):
    """Decides which shortcut a block needs.

    Args:
        option: "A", "B" or "C" (see the module docstring).
        input_channels: channels entering the block.
        output_channels: channels leaving the block.

    Returns:
        "identity" (parameter-free: subsampling and zero-padding as needed) or
        "projection" (1x1 convolution).

    Raises:
        ValueError: for an unknown option, or option "A" on a block that reduces
            the number of channels (zero-padding can only add channels).

    Examples:

    >>> resolve_shortcut("A", 16, 32)
    'identity'
    >>> resolve_shortcut("B", 16, 32)
    'projection'
    >>> resolve_shortcut("B", 32, 32)
    'identity'
    """
    check_choice("shortcut", option, SHORTCUT_OPTIONS)
    if option == "C":
        return PROJECTION
    if option == "B":
        return PROJECTION if input_channels != output_channels else IDENTITY
    if output_channels < input_channels:
        raise ValueError(
            f"Shortcut option 'A' cannot reduce channels ({input_channels} -> "
            f"{output_channels}): it only pads new channels with zeros. Use "
            "`shortcut='B'` or `shortcut='C'` (1x1 projection) for this block."
        )
    return IDENTITY


def strided_output_shape(input_shape, strides, channels):
    """The (batch, height, width, channels) shape after a block or shortcut of this stride."""

    def shrink(size):
        return None if size is None else -(-size // strides)

    return (input_shape[0], shrink(input_shape[1]), shrink(input_shape[2]), channels)


def average_pool_2x2(inputs):
    """The mean of each 2x2 window, stride 2: ResNet-D's downsampling of a shortcut.

    "same" padding: an odd side keeps its last row or column, averaged over the pixels
    that exist (as timm's `AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)`), so
    the shortcut has the size of the branch's strided 3x3 convolution.

    Examples:

    >>> import numpy as np
    >>> x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    >>> np.asarray(average_pool_2x2(x))[0, :, :, 0].tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """
    return ops.average_pool(inputs, pool_size=2, strides=2, padding="same")


def parameter_free_shortcut(inputs, output_channels, strides, average=False):
    """Option A: strided subsampling, then zero-padding of the new channels.

    The zero channels are split evenly before and after the existing ones, as in
    the common CIFAR reproductions of the paper.

    Args:
        inputs: a 4D tensor in (batch, height, width, channels) layout.
        output_channels: channels of the result (>= the input's channels).
        strides: 1 or 2.
        average: downsample by averaging 2x2 windows (ResNet-D) instead of keeping one
            pixel of each.

    Returns:
        A tensor with `output_channels` channels and the resolution divided by
        `strides`.
    """
    outputs = inputs
    if strides > 1 and average:
        outputs = average_pool_2x2(outputs)
    elif strides > 1:
        # The same positions as a 1x1 convolution with this stride samples, i.e.
        # outputs[:, ::strides, ::strides, :]. A 1x1 max-pool selects exactly those
        # values, and on TensorFlow its gradient is cheaper than a strided slice's: a few
        # per cent of a whole training step (benchmarks/RESULTS.md).
        outputs = ops.max_pool(outputs, pool_size=1, strides=strides, padding="valid")
    extra = output_channels - inputs.shape[-1]
    if extra > 0:
        before = extra // 2
        outputs = ops.pad(outputs, [[0, 0], [0, 0], [0, 0], [before, extra - before]])
    return outputs


@keras.saving.register_keras_serializable(package="resnet_keras")
class ParameterFreeShortcut(layers.Layer):
    """Option A as a layer, for models written with the functional API.

    Args:
        output_channels: channels of the result (>= the input's channels).
        strides: 1, or 2 to halve the resolution.
        **kwargs: standard layer arguments.

    Examples:

    >>> import numpy as np
    >>> tuple(ParameterFreeShortcut(32, strides=2)(np.ones((1, 8, 8, 16), "float32")).shape)
    (1, 4, 4, 32)
    """

    def __init__(self, output_channels, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.output_channels = check_positive_int("output_channels", output_channels)
        self.strides = check_strides("strides", strides)

    def build(self, input_shape):
        check_image_input_shape(type(self).__name__, input_shape)
        resolve_shortcut("A", int(input_shape[-1]), self.output_channels)
        self.built = True

    def call(self, inputs):
        return parameter_free_shortcut(inputs, self.output_channels, self.strides)

    def compute_output_shape(self, input_shape):
        return strided_output_shape(input_shape, self.strides, self.output_channels)

    def get_config(self):
        config = super().get_config()
        config.update({"output_channels": self.output_channels, "strides": self.strides})
        return config
