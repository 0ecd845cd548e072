"""Checked exercises of notebook 10, "Modern ResNets".

1. `check_block_cost`: count a ResNeXt bottleneck block's parameters and multiply-adds by hand,
   checked against `rk.count_trainable_params` and `rk.count_macs` of the library's block.
2. `check_se_resnext`: build an SE-ResNeXt through the block registry and match its
   parameter count.

Question (graded with feedback for every wrong choice): `what_resnet_d_changes`.

Examples:

>>> from resnet_keras.course.exercises.nb10_modern import check_block_cost
>>> check_block_cost(lambda channels, width, groups, side: None).status
⏳ Block cost: not attempted yet
'not attempted'
"""

from __future__ import annotations

from resnet_keras.course.exercises._stubs import NotAttempted, stub_aware_exercise
from resnet_keras.course.exercises.core import Incorrect
from resnet_keras.course.exercises.questions import MultipleChoice

__all__ = ["SE_RESNEXT", "check_block_cost", "check_se_resnext", "what_resnet_d_changes"]

# (channels, bottleneck width, groups, side): ResNeXt-50's first-stage block (32x4d on 56x56
# maps), a CIFAR-sized one, and one with an ordinary 3x3 (a ResNet-50 block).
_BLOCK_CASES = ((256, 128, 32, 56), (64, 32, 4, 16), (256, 64, 1, 56))


def _reference_block_cost(channels, width, groups, side):
    """The library's counts of a stride-1 ResNeXt bottleneck on `channels` x side x side maps."""
    import keras

    import resnet_keras as rk

    inputs = keras.Input((side, side, channels))
    block = rk.BottleneckBlock(
        channels // 4, groups=groups, width_per_group=width * 64 // (channels // 4) // groups
    )
    model = keras.Model(inputs, block(inputs))
    if block.bottleneck_width != width:  # the rule of BottleneckBlock, inverted above
        raise ValueError(f"no block of width {width} for {channels} channels")
    return rk.count_trainable_params(model), rk.count_macs(model)


def _slips(channels, width, groups, side):
    """Answers that follow from the usual slips, with what to tell."""
    pixels = side * side
    kernels = channels * width + 9 * width * width // groups + width * channels
    batch_norm = 2 * (width + width + channels)
    macs = pixels * kernels
    dense_kernels = channels * width + 9 * width * width + width * channels
    return [
        ((dense_kernels + batch_norm, pixels * dense_kernels),
         "The 3x3 convolution is grouped: each output channel reads only the width / groups "
         "input channels of its group, so divide its weights and multiply-adds by `groups`."),
        ((kernels, macs),
         "Add the batch normalisations' trainable gamma and beta: two per channel after each "
         "of the three convolutions."),
        ((kernels + 2 * batch_norm, macs),
         "Count only gamma and beta: the moving mean and variance are statistics, not trained "
         "parameters (the papers count as torch does, see `rk.count_trainable_params`)."),
        ((kernels + batch_norm, macs * 9),
         "Only the 3x3 convolution has 9 weights per input channel; a 1x1 convolution has one."),
        ((kernels + batch_norm, kernels),
         "Multiply-adds are per output pixel: multiply each convolution's weights by the "
         "side x side positions it is applied at (stride 1, 'same' padding)."),
    ]  # fmt: skip


@stub_aware_exercise(
    "Block cost",
    success=(
        "Grouping divides only the 3x3's share: in ResNeXt-50's block the 1x1 convolutions "
        "now hold most of the weights, which is why Xie et al. could widen the 3x3 from 64 to "
        "128 channels at the ResNet-50 block's cost."
    ),
)
def check_block_cost(block_cost):
    """Checks `block_cost(channels, width, groups, side)` -> `(parameters, macs)`."""
    if not callable(block_cost):
        raise Incorrect(
            "Define a function `block_cost(channels, width, groups, side)`; you gave a "
            f"{type(block_cost).__name__}."
        )
    for index, case in enumerate(_BLOCK_CASES):
        got = block_cost(*case)
        if got is None:
            if index == 0:
                raise NotAttempted
            raise Incorrect("Your function returned None: finish it with a `return` statement.")
        try:
            parameters, macs = (int(value) for value in got)
        except (TypeError, ValueError):
            raise Incorrect("Return two integers: `(parameters, macs)`.") from None
        expected = _reference_block_cost(*case)
        if (parameters, macs) == expected:
            continue
        for wrong, message in _slips(*case):
            if (parameters, macs) == wrong:
                raise Incorrect(message)
        channels, width, groups, side = case
        raise Incorrect(
            f"For {channels} channels, a 3x3 of width {width} in {groups} groups on "
            f"{side}x{side} maps the block has {expected[0]:,} parameters and {expected[1]:,} "
            f"multiply-adds; yours: {parameters:,} and {macs:,}. Count 1x1 -> 3x3 -> 1x1 "
            "(no biases) and a BatchNormalization after each."
        )


SE_RESNEXT = dict(depth=29, groups=4, width_per_group=32, input_shape=(32, 32, 3))
"""Exercise 2's network: `rk.CifarResNet(29, shortcut="B")` of SE-ResNeXt blocks, 4 groups
of 32 channels per 64 filters, 10 classes on 32x32 images."""


def _reference_se_resnext():
    import resnet_keras as rk
    from resnet_keras.layers import BlockType, BottleneckBlock

    block = BlockType(
        "se_resnext_reference",
        BottleneckBlock,
        3,
        {
            "groups": SE_RESNEXT["groups"],
            "width_per_group": SE_RESNEXT["width_per_group"],
            "attention": "squeeze_excitation",
        },
    )
    return rk.CifarResNet(
        SE_RESNEXT["depth"], block=block, shortcut="B", input_shape=SE_RESNEXT["input_shape"]
    )


def _blocks(model):
    from resnet_keras.layers import ResidualBlock

    return [layer for layer in model.layers if isinstance(layer, ResidualBlock)]


@stub_aware_exercise(
    "SE-ResNeXt through the registry",
    success=(
        "One registered name, no new class: a variant of a block family is its arguments "
        "(as timm's seresnext models are its ResNet with `groups` and an attention layer)."
    ),
)
def check_se_resnext(model):
    """Checks the learner's SE-ResNeXt-29 (4 groups of 32 per 64 filters) against its count."""
    import keras

    import resnet_keras as rk

    if model is None:
        raise NotAttempted
    if not isinstance(model, keras.Model):
        raise Incorrect(
            f"Give a keras.Model (from rk.CifarResNet); you gave a {type(model).__name__}."
        )
    expected = rk.count_trainable_params(_reference_se_resnext())
    got = rk.count_trainable_params(model)
    blocks = _blocks(model)
    if len(blocks) != 9:
        raise Incorrect(
            f"Depth 29 with three-convolution blocks is 3 stages of 3 blocks (9n+2); your "
            f"network has {len(blocks)} residual blocks."
        )
    if not all(getattr(block, "attention", None) == "squeeze_excitation" for block in blocks):
        raise Incorrect(
            "Some blocks have no squeeze-and-excitation: register the block with "
            '`{"attention": "squeeze_excitation", ...}` among its arguments.'
        )
    if not all(getattr(block, "groups", 1) == SE_RESNEXT["groups"] for block in blocks):
        raise Incorrect(f"Every block's 3x3 needs groups={SE_RESNEXT['groups']}.")
    if got != expected:
        raise Incorrect(
            f"SE-ResNeXt-29 ({SE_RESNEXT['groups']} groups, width_per_group="
            f"{SE_RESNEXT['width_per_group']}, shortcut 'B', 10 classes, 32x32x3) has "
            f"{expected:,} trainable parameters; yours has {got:,}."
        )


what_resnet_d_changes = MultipleChoice(
    "Question 1 · What does ResNet-D's shortcut change?",
    "ResNet-D (He et al. 2019) replaces the downsampling shortcut's 1x1 convolution of stride 2 "
    "by a 2x2 average pooling of stride 2 followed by a 1x1 convolution of stride 1. Section 1 "
    "counted both: the same parameters and the same multiply-adds. What does it change?",
    {
        "a": "Nothing: with the same counts, the two shortcuts compute the same function.",
        "b": "The strided 1x1 convolution reads one input pixel in four and ignores the other "
        "three; after the pooling, every pixel contributes to the shortcut.",
        "c": "It makes the network deeper by one layer per stage.",
        "d": "It removes the shortcut's batch normalisation.",
    },
    answer="b",
    feedback={
        "a": "Equal counts do not make equal functions: a stride-2 1x1 convolution samples "
        "the top-left pixel of every 2x2 window, the pooled one averages all four.",
        "c": "Pooling has no weights and is not counted in the depth; the main path is unchanged.",
        "d": "The projection keeps its batch normalisation; only what it reads changes.",
    },
    success=(
        "He et al. measured the tweak at +0.3 points of ImageNet top-1 over ResNet-50-C "
        "(77.16 % for ResNet-50-D, Table 5): three quarters of the information no longer "
        "skip the shortcut, for no parameters."
    ),
)
