"""The block registry: residual block types by name, for the model builders.

A builder such as `resnet_keras.CifarResNet(block="basic")` looks the block up here, so a
new kind of block needs no edit of the builders: subclass `ResidualBlock`, describe its
branch (`_branch_convolutions`, whose `BranchConvolution`s can be grouped or depthwise),
and register it. The registry records how many convolutions one block adds to the depth
in a network's name (2 for the basic block, 3 for the bottleneck).

Examples:

>>> from resnet_keras.layers import registry
>>> registry.get_block("bottleneck").convolutions
3
>>> sorted(registry.BLOCKS)[:2]
['basic', 'bottleneck']
"""

from __future__ import annotations

import dataclasses

from resnet_keras._validation import check_choice, check_instance, check_positive_int

BLOCKS: dict[str, BlockType] = {}
"""Registered block types by name."""


@dataclasses.dataclass(frozen=True)
class BlockType:
    """A registered block: its layer class and the convolutions it adds to the depth.

    Attributes:
        name: The name builders take (`block="basic"`).
        layer_class: A `ResidualBlock` subclass, called as `layer_class(filters, strides=...,
            shortcut=..., preactivation=..., residual=..., ...)`.
        convolutions: Convolutions on the main path of one block (what the depth counts).
    """

    name: str
    layer_class: type
    convolutions: int


def register_block(name, layer_class, convolutions):
    """Registers a `ResidualBlock` subclass under `name` (replacing one of the same name).

    Args:
        name: The name builders will accept, e.g. "grouped".
        layer_class: The block's class; a subclass of `resnet_keras.layers.ResidualBlock`.
        convolutions: Convolutions on its main path (2 basic, 3 bottleneck).

    Returns:
        The `BlockType`.

    Examples:
        >>> from resnet_keras.layers import BasicBlock
        >>> register_block("basic", BasicBlock, 2).convolutions
        2
    """
    from resnet_keras.layers.residual_block import ResidualBlock

    check_instance("name", name, str, "a block name")
    if not (isinstance(layer_class, type) and issubclass(layer_class, ResidualBlock)):
        raise TypeError(
            f"`layer_class` must be a subclass of ResidualBlock; received {layer_class!r}."
        )
    block = BlockType(name, layer_class, check_positive_int("convolutions", convolutions))
    BLOCKS[name] = block
    return block


def get_block(block):
    """The `BlockType` registered as `block` (a `BlockType` is returned unchanged).

    Raises:
        ValueError: naming the registered blocks, if `block` is not one of them.
    """
    if isinstance(block, BlockType):
        return block
    return BLOCKS[check_choice("block", block, tuple(BLOCKS))]
