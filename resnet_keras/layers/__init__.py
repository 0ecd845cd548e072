"""Residual building blocks as Keras layers (`keras.layers` and `keras.ops` only)."""

from resnet_keras.layers.basic_block import BasicBlock
from resnet_keras.layers.batch_normalization import FusedBatchNormalization
from resnet_keras.layers.bottleneck_block import BottleneckBlock
from resnet_keras.layers.residual_block import ResidualBlock
from resnet_keras.layers.shortcut import (
    SHORTCUT_OPTIONS,
    ParameterFreeShortcut,
    parameter_free_shortcut,
    resolve_shortcut,
)

__all__ = [
    "SHORTCUT_OPTIONS",
    "BasicBlock",
    "BottleneckBlock",
    "FusedBatchNormalization",
    "ParameterFreeShortcut",
    "ResidualBlock",
    "parameter_free_shortcut",
    "resolve_shortcut",
]
