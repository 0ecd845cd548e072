"""Residual building blocks as Keras layers (`keras.layers` and `keras.ops` only)."""

from resnet_keras.layers.basic_block import BasicBlock
from resnet_keras.layers.batch_normalization import FusedBatchNormalization
from resnet_keras.layers.bottleneck_block import BottleneckBlock
from resnet_keras.layers.registry import BLOCKS, BlockType, get_block, register_block
from resnet_keras.layers.residual_block import BranchConvolution, ResidualBlock
from resnet_keras.layers.shortcut import (
    SHORTCUT_OPTIONS,
    ParameterFreeShortcut,
    parameter_free_shortcut,
    resolve_shortcut,
)

# The library's own blocks; a new one registers itself the same way (see registry.py).
register_block("basic", BasicBlock, convolutions=2)
register_block("bottleneck", BottleneckBlock, convolutions=3)

__all__ = [
    "BLOCKS",
    "SHORTCUT_OPTIONS",
    "BasicBlock",
    "BlockType",
    "BottleneckBlock",
    "BranchConvolution",
    "FusedBatchNormalization",
    "ParameterFreeShortcut",
    "ResidualBlock",
    "get_block",
    "parameter_free_shortcut",
    "register_block",
    "resolve_shortcut",
]
