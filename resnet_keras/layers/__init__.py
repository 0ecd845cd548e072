"""Residual building blocks as Keras layers (`keras.layers` and `keras.ops` only)."""

from resnet_keras.layers.basic_block import BasicBlock
from resnet_keras.layers.batch_normalization import FusedBatchNormalization
from resnet_keras.layers.bottleneck_block import BottleneckBlock
from resnet_keras.layers.convnext_block import ConvNeXtBlock, LayerScale
from resnet_keras.layers.registry import BLOCKS, BlockType, get_block, register_block
from resnet_keras.layers.residual_block import (
    ATTENTION_OPTIONS,
    BranchConvolution,
    ResidualBlock,
)
from resnet_keras.layers.shortcut import (
    SHORTCUT_OPTIONS,
    ParameterFreeShortcut,
    average_pool_2x2,
    parameter_free_shortcut,
    resolve_shortcut,
)
from resnet_keras.layers.squeeze_excitation import SqueezeExcitation

# The library's own blocks; a new one registers itself the same way (see registry.py).
register_block("basic", BasicBlock, convolutions=2)
register_block("bottleneck", BottleneckBlock, convolutions=3)
# The descendants: variants of the two families by their arguments (torchvision's ResNeXt
# and Wide ResNet, timm's SE and ResNet-D options), and ConvNeXt's own block.
SQUEEZE_EXCITATION = {"attention": "squeeze_excitation"}
register_block("se_basic", BasicBlock, 2, SQUEEZE_EXCITATION)
register_block("resnext", BottleneckBlock, 3, {"groups": 32, "width_per_group": 4})
register_block("wide_bottleneck", BottleneckBlock, 3, {"width_per_group": 128})
register_block("se_bottleneck", BottleneckBlock, 3, SQUEEZE_EXCITATION)
register_block("bottleneck_d", BottleneckBlock, 3, {"average_pool_shortcut": True})
# Depthwise convolution and two dense layers on the main path.
register_block("convnext", ConvNeXtBlock, convolutions=3)

__all__ = [
    "ATTENTION_OPTIONS",
    "BLOCKS",
    "SHORTCUT_OPTIONS",
    "BasicBlock",
    "BlockType",
    "BottleneckBlock",
    "BranchConvolution",
    "ConvNeXtBlock",
    "FusedBatchNormalization",
    "LayerScale",
    "ParameterFreeShortcut",
    "ResidualBlock",
    "SqueezeExcitation",
    "average_pool_2x2",
    "get_block",
    "parameter_free_shortcut",
    "register_block",
    "resolve_shortcut",
]
