"""The block registry: residual block types by name, for the model builders.

A builder such as `resnet_keras.CifarResNet(block="basic")` looks the block up here, so a
new kind of block needs no edit of the builders: subclass `ResidualBlock`, describe its
branch (`_branch_convolutions`, whose `BranchConvolution`s can be grouped or depthwise),
and register it. The registry records how many convolutions one block adds to the depth
in a network's name (2 for the basic block, 3 for the bottleneck).

A variant of a block family is a name with arguments, not a new class (as torchvision's
ResNeXt and Wide ResNet are its Bottleneck with `groups` and `base_width`): "resnext" is
`BottleneckBlock` with `groups=32, width_per_group=4`, "se_bottleneck" the same block with
the squeeze-and-excitation slot filled. The builders call `BlockType.make`, which adds the
registered arguments to theirs.

Examples:

>>> from resnet_keras.layers import registry
>>> registry.get_block("bottleneck").convolutions
3
>>> sorted(registry.BLOCKS)[:2]
['basic', 'bottleneck']
>>> registry.get_block("resnext").arguments
{'groups': 32, 'width_per_group': 4}
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
        arguments: Constructor arguments of the variant (e.g. `groups=32`), added to the
            builder's by `make`.
    """

    name: str
    layer_class: type
    convolutions: int
    arguments: dict = dataclasses.field(default_factory=dict, hash=False)

    def make(self, filters, **kwargs):
        """A new block: `layer_class(filters, **arguments, **kwargs)`; `kwargs` win.

        Examples:
            >>> from resnet_keras.layers import get_block
            >>> get_block("resnext").make(64, strides=2).groups
            32
        """
        return self.layer_class(filters, **{**self.arguments, **kwargs})


def register_block(name, layer_class, convolutions, arguments=None):
    """Registers a `ResidualBlock` subclass under `name` (replacing one of the same name).

    Args:
        name: The name builders will accept, e.g. "grouped".
        layer_class: The block's class; a subclass of `resnet_keras.layers.ResidualBlock`.
        convolutions: Convolutions on its main path (2 basic, 3 bottleneck).
        arguments: Optional dict of constructor arguments that make the variant (e.g.
            `{"attention": "squeeze_excitation"}`); checked by building one block.

    Returns:
        The `BlockType`.

    Raises:
        TypeError: if `layer_class` is not a `ResidualBlock` subclass or `arguments` not a
            dict.
        ValueError: (or the class's TypeError) if the class rejects one of `arguments`,
            an unknown name or a bad value.

    Examples:
        >>> from resnet_keras.layers import BasicBlock
        >>> register_block("basic", BasicBlock, 2).convolutions
        2
        >>> register_block("se_basic", BasicBlock, 2, {"attention": "squeeze_excitation"}).name
        'se_basic'
    """
    from resnet_keras.layers.residual_block import ResidualBlock

    check_instance("name", name, str, "a block name")
    if not (isinstance(layer_class, type) and issubclass(layer_class, ResidualBlock)):
        raise TypeError(
            f"`layer_class` must be a subclass of ResidualBlock; received {layer_class!r}."
        )
    arguments = dict(check_instance("arguments", arguments or {}, dict, "None or a dict"))
    block = BlockType(
        name, layer_class, check_positive_int("convolutions", convolutions), arguments
    )
    if arguments:
        # A misspelt or misplaced argument fails here, not when a builder first uses it.
        block.make(64, preactivation=True)
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
