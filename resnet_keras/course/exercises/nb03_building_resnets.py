"""Checked exercises of notebook 03, "Building ResNets".

1. `check_block_params`: the trainable parameters of one basic block, counted by hand.
2. `check_block_macs`: the multiply-adds of the same block, counted by hand.
3. `check_resnet32`: a CIFAR ResNet-32 assembled from `resnet_keras.BasicBlock`.

Questions (graded with feedback for every wrong choice): `bottleneck_cost`,
`preactivation_depth`.

The block of exercises 1 and 2 is `BasicBlock(32, strides=2, shortcut="B")` applied to a
32x32x16 feature map: the first block of stage 2 of a CIFAR ResNet with projection
shortcuts. The checkers compare the learner's number with an analytic count, layer by
layer, and name the layer the learner most likely forgot or counted twice.

Examples:

>>> from resnet_keras.course.exercises.nb03_building_resnets import check_block_params
>>> check_block_params(None).status
⏳ Parameters of a basic block: not attempted yet
'not attempted'
"""

from __future__ import annotations

import itertools
import numbers
import re

import keras
import numpy as np

from resnet_keras._keras_compat import sublayers
from resnet_keras.course.exercises.core import Incorrect, exercise
from resnet_keras.course.exercises.questions import MultipleChoice

__all__ = [
    "BLOCK",
    "RESNET32_MACS",
    "RESNET32_PARAMS",
    "basic_block_costs",
    "bottleneck_cost",
    "check_block_macs",
    "check_block_params",
    "check_resnet32",
    "preactivation_depth",
]

BLOCK = {"input_shape": (32, 32, 16), "filters": 32, "strides": 2, "shortcut": "B"}
"""The block whose cost exercises 1 and 2 ask for."""

RESNET32_PARAMS = 464_154
"""Trainable parameters of the paper's CIFAR ResNet-32 (option A shortcuts)."""

RESNET32_MACS = 68_862_592
"""Multiply-adds of one 32x32 image through that network."""


def basic_block_costs(input_shape, filters, strides=1, shortcut="B"):
    """The trainable parameters and multiply-adds of a v1 basic block, layer by layer.

    Convolutions have no bias (the library's default); a batch normalisation layer has
    two trainable vectors (gamma, beta) of `filters` values each, and two more that are
    not trained (the moving mean and variance).

    Args:
        input_shape: (height, width, channels) of the block's input.
        filters: output channels of both 3x3 convolutions.
        strides: 1 or 2; the first convolution (and the projection) use it.
        shortcut: "A" (no parameters), "B" (projection where channels change) or "C".

    Returns:
        A dict `{layer: (params, macs)}` with keys "conv1", "bn1", "conv2", "bn2" and,
        when the block projects its input, "projection conv" and "projection bn".

    Examples:

    >>> costs = basic_block_costs((32, 32, 16), 32, strides=2, shortcut="B")
    >>> sum(params for params, _ in costs.values()), sum(macs for _, macs in costs.values())
    (14528, 3670016)
    """
    height, width, channels = (int(size) for size in input_shape)
    out_pixels = -(-height // strides) * -(-width // strides)
    costs = {
        "conv1": (9 * channels * filters, out_pixels * 9 * channels * filters),
        "bn1": (2 * filters, 0),
        "conv2": (9 * filters * filters, out_pixels * 9 * filters * filters),
        "bn2": (2 * filters, 0),
    }
    if shortcut == "C" or (shortcut == "B" and channels != filters):
        costs["projection conv"] = (channels * filters, out_pixels * channels * filters)
        costs["projection bn"] = (2 * filters, 0)
    return costs


def _as_count(answer, what):
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        raise Incorrect(f"Give the {what} as a number (an int), not {type(answer).__name__}.")
    if not float(answer).is_integer():
        raise Incorrect(f"The {what} of a network is a whole number; you gave {answer}.")
    return int(answer)


def _explain(answer, truth, mistakes, what):
    """Finds the one or two known mistakes whose effects add up to `answer - truth`."""
    deltas = list(mistakes.items())
    for size in (1, 2):
        for combination in itertools.combinations(deltas, size):
            if truth + sum(delta for _, delta in combination) == answer:
                reasons = " and ".join(reason for reason, _ in combination)
                return f"{answer:,} is not the {what}: it looks like you {reasons}."
    return None


def _block_text():
    height, width, channels = BLOCK["input_shape"]
    return (
        f"BasicBlock({BLOCK['filters']}, strides={BLOCK['strides']}, "
        f"shortcut={BLOCK['shortcut']!r}) on a {height}x{width}x{channels} input"
    )


@exercise(
    "Parameters of a basic block",
    success="Correct: conv 4,608 + BN 64 + conv 9,216 + BN 64 + projection 512 + BN 64.",
)
def check_block_params(answer):
    """Checks the number of trainable parameters of the exercise's block."""
    answer = _as_count(answer, "number of parameters")
    costs = basic_block_costs(**BLOCK)
    params = {layer: count for layer, (count, _) in costs.items()}
    truth = sum(params.values())
    if answer == truth:
        return None
    filters = BLOCK["filters"]
    bns = [layer for layer in params if "bn" in layer]
    mistakes = {
        "left out batch normalisation (gamma and beta: 2 x 32 per BN layer, three of them)": -sum(
            params[layer] for layer in bns
        ),
        "left out the projection shortcut (1x1 conv 16x32 = 512, plus its BN)": -(
            params["projection conv"] + params["projection bn"]
        ),
        "left out the 1x1 projection convolution (16 x 32 = 512)": -params["projection conv"],
        "left out one batch normalisation layer (2 x 32 = 64; the projection has one too)": -params[
            "projection bn"
        ],
        "counted BN's moving mean and variance, which are not trained "
        "(count_params() includes them, trainable parameters do not)": 2 * filters * len(bns),
        "gave every convolution a bias (the library's convolutions have none: BN's beta "
        "does that job)": filters * 3,
        "took 16 input channels for the second convolution too (it sees the first one's "
        "32 outputs: 3x3x32x32)": 9 * 16 * filters - params["conv2"],
        "forgot the 3x3 kernel area in the convolutions (a 3x3 conv has 9 weights per "
        "input-output channel pair)": -(params["conv1"] + params["conv2"]) * 8 // 9,
    }
    reason = _explain(answer, truth, mistakes, "number of trainable parameters")
    hint = (
        "Count layer by layer: a KxK convolution from C_in to C_out channels has "
        "K*K*C_in*C_out weights (no bias here), a BatchNormalization layer 2*C trainable "
        "ones, and option B adds a 1x1 projection with its own BN because 16 != 32."
    )
    raise Incorrect(
        (reason + " " if reason else f"{answer:,} is not right for {_block_text()}. ") + hint
    )


@exercise(
    "Multiply-adds of a basic block",
    success="Correct: 1,179,648 + 2,359,296 + 131,072 on the 16x16 output grid.",
)
def check_block_macs(answer):
    """Checks the multiply-adds of one image through the exercise's block."""
    answer = _as_count(answer, "number of multiply-adds")
    costs = basic_block_costs(**BLOCK)
    macs = {layer: count for layer, (_, count) in costs.items()}
    truth = sum(macs.values())
    if answer == truth:
        return None
    unstrided = basic_block_costs(**{**BLOCK, "strides": 1})
    params = sum(count for count, _ in costs.values())
    mistakes = {
        "counted the first convolution on the 32x32 input grid instead of its 16x16 output "
        "(stride 2 computes a quarter of the positions)": unstrided["conv1"][1] - macs["conv1"],
        "counted the second convolution on a 32x32 grid (the stride already halved it)": (
            unstrided["conv2"][1] - macs["conv2"]
        ),
        "counted the projection on the 32x32 input grid (it is strided too)": (
            unstrided["projection conv"][1] - macs["projection conv"]
        ),
        "left out the 1x1 projection (16 x 32 per output pixel)": -macs["projection conv"],
        "left out the second convolution": -macs["conv2"],
    }
    reason = _explain(answer, truth, mistakes, "number of multiply-adds")
    if reason is None and answer == 2 * truth:
        reason = (
            f"{answer:,} is twice the answer: you counted FLOPs (a multiply and an add "
            "each); the paper's 'FLOPs' in Table 1 are multiply-adds."
        )
    if reason is None and answer == sum(macs[layer] for layer in macs) * 4:
        reason = f"{answer:,} counts every layer at 32x32: the stride halves height and width."
    if reason is None and answer in (params, params - 192):
        reason = f"{answer:,} is the number of parameters, not of multiply-adds."
    hint = (
        "A convolution does K*K*C_in multiply-adds for each of its H_out*W_out*C_out "
        "outputs, where H_out x W_out is the OUTPUT grid (16x16 here). BN, ReLU and the "
        "addition are left out, as in the paper."
    )
    raise Incorrect(
        (reason + " " if reason else f"{answer:,} is not right for {_block_text()}. ") + hint
    )


def _basic_blocks(model):
    from resnet_keras.layers import BasicBlock

    return [layer for layer in sublayers(model, recursive=True) if isinstance(layer, BasicBlock)]


def _trainable_params(model):
    return int(sum(np.prod(weight.shape) for weight in model.trainable_weights))


def _built_by_the_library(model):
    """Whether `model`, or a model inside it, came out of a library builder.

    The builders name their layers `stem_conv` and `stage{s}_block{i}`; Keras names a
    learner's layers after their class (`conv2d`, `basic_block_3`), and cloning, wrapping
    or re-saving a model keeps the names. So this catches `rk.CifarResNet(32)` returned as
    it is, wrapped in another `keras.Model` or copied by `keras.models.clone_model`.
    """
    names = {layer.name for layer in sublayers(model, recursive=True)}
    return "stem_conv" in names and any(re.fullmatch(r"stage\d+_block\d+", n) for n in names)


def _check_resnet32_model(model):
    from resnet_keras.analysis import count_macs

    if not isinstance(model, keras.Model):
        raise Incorrect(
            f"`build_resnet32()` should return a keras.Model; it returned "
            f"{type(model).__name__}. End with `return keras.Model(inputs, outputs)`."
        )
    if _built_by_the_library(model):
        raise Incorrect(
            "This model comes out of the library's own builder (rk.CifarResNet or a copy of "
            "it): the exercise is to assemble it yourself, a stem convolution with BN and "
            "ReLU, three stages of five rk.BasicBlock layers, pooling and a Dense(10)."
        )
    if tuple(model.input_shape[1:]) != (32, 32, 3):
        raise Incorrect(
            f"The model takes inputs of shape {tuple(model.input_shape[1:])}; a CIFAR ResNet "
            "takes 32x32x3 images: `keras.Input(shape=(32, 32, 3))`."
        )
    if tuple(model.output_shape[1:]) != (10,):
        raise Incorrect(
            f"The model outputs shape {tuple(model.output_shape[1:])}; it should end with "
            "global average pooling and `Dense(10)` (logits, one per class)."
        )
    blocks = _basic_blocks(model)
    if not blocks:
        raise Incorrect(
            "No `rk.BasicBlock` found in the model: build the three stages from "
            "`rk.BasicBlock(filters, strides=..., shortcut='A')` layers."
        )
    if len(blocks) != 15:
        depth = 6 * len(blocks) // 3 + 2 if len(blocks) % 3 == 0 else None
        built = f" (that is ResNet-{depth})" if depth else ""
        raise Incorrect(
            f"The model has {len(blocks)} basic blocks{built}. Depth = 6n + 2 (a stem conv, "
            "3 stages of n blocks with 2 convs each, the dense layer): ResNet-32 has n = 5 "
            "blocks per stage, 15 in all."
        )
    plain = [block.name for block in blocks if not block.residual]
    if plain:
        raise Incorrect(
            f"Blocks {plain[:3]} were built with residual=False: that is the plain network. "
            "Leave `residual=True` (the default) so each block adds its shortcut."
        )
    filters = [block.filters for block in blocks]
    if filters != [16] * 5 + [32] * 5 + [64] * 5:
        raise Incorrect(
            f"The blocks' filters are {filters}; the three stages use 16, 32 and 64 filters, "
            "five blocks each."
        )
    strides = [block.strides for block in blocks]
    expected_strides = [1] * 5 + [2] + [1] * 4 + [2] + [1] * 4
    if strides != expected_strides:
        raise Incorrect(
            f"The blocks' strides are {strides}. Only the first block of stages 2 and 3 has "
            "strides=2 (32x32 -> 16x16 -> 8x8); all the others keep the resolution."
        )
    shortcuts = sorted({block.shortcut for block in blocks})
    if shortcuts != ["A"]:
        raise Incorrect(
            f"The blocks use shortcut option(s) {shortcuts}. The paper's CIFAR networks use "
            "option 'A' (parameter-free: subsample and zero-pad); 'B' adds 1x1 projections "
            "and their parameters. Note that rk.BasicBlock's default is 'B'."
        )
    params = _trainable_params(model)
    if params != RESNET32_PARAMS:
        difference = params - RESNET32_PARAMS
        advice = {
            -32: "The stem's BatchNormalization (2 x 16) is missing.",
            16: "The stem convolution has a bias (use_bias=False: BN follows it).",
        }.get(difference, "Compare your model.summary() with rk.CifarResNet(32).summary().")
        raise Incorrect(
            f"The model has {params:,} trainable parameters; ResNet-32 has "
            f"{RESNET32_PARAMS:,} (paper, Table 6: 0.46M). {advice}"
        )
    macs = count_macs(model)
    if macs != RESNET32_MACS:
        raise Incorrect(
            f"The model costs {macs:,} multiply-adds per image; ResNet-32 costs "
            f"{RESNET32_MACS:,}. The stem is a 3x3 convolution with stride 1 and 16 filters."
        )
    _check_same_function(model)


def _check_same_function(model):
    """With the library's weights loaded, the learner's model must compute the same logits."""
    from resnet_keras.models import CifarResNet

    reference = CifarResNet(32)
    original = model.get_weights()
    try:
        model.set_weights(reference.get_weights())
    except ValueError:
        # Same counts but another weight order (e.g. layers created in another order):
        # the structural checks above already passed, so accept it.
        model.set_weights(original)
        return
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    try:
        ours = keras.ops.convert_to_numpy(reference(images, training=False))
        theirs = keras.ops.convert_to_numpy(model(images, training=False))
    finally:
        model.set_weights(original)  # the learner keeps their own weights
    # A relative tolerance: a learner's stem may keep Keras' default BN epsilon (1e-3, the
    # library uses 1e-5), which scales the logits by about 0.9995 and changes nothing that
    # matters; a missing ReLU or pooling changes them completely.
    if np.max(np.abs(ours - theirs)) > 1e-2 * max(np.max(np.abs(ours)), 1e-6):
        raise Incorrect(
            "The layers and parameters are right, but with rk.CifarResNet(32)'s weights your "
            "model computes different logits: check the ReLU after the stem's BN and the "
            "global average pooling before the dense layer."
        )


def _run_builder(build):
    """Calls the learner's builder once; returns (model, error)."""
    try:
        return build(), None
    except Exception as error:  # noqa: BLE001 - reported by the checker, not raised
        return None, error


@exercise(
    "ResNet-32 from blocks",
    success=(
        "Correct: 15 basic blocks (n = 5), option A shortcuts, 464,154 parameters "
        "(paper: 0.46M) and 68.9M multiply-adds."
    ),
)
def _check_resnet32(built):
    model, error = built
    if error is not None:
        raise error
    _check_resnet32_model(model)


def check_resnet32(build=None, *, quiet=False):
    """Checks a function `build_resnet32()` that returns the CIFAR ResNet-32 (or the model).

    A stub that still returns None counts as not attempted.

    Args:
        build: the learner's function (or the model it returned).
        quiet: do not print the verdict.

    Returns:
        The `Verdict`.
    """
    if build is None or build is Ellipsis:
        return _check_resnet32(None, quiet=quiet)
    if callable(build) and not isinstance(build, keras.layers.Layer):
        model, error = _run_builder(build)
        if model is None and error is None:
            return _check_resnet32(None, quiet=quiet)
        return _check_resnet32((model, error), quiet=quiet)
    return _check_resnet32((build, None), quiet=quiet)


check_resnet32.title = _check_resnet32.title


# --- questions ------------------------------------------------------------------------------

bottleneck_cost = MultipleChoice(
    "Question 1 · What the bottleneck buys",
    "At conv2_x (56×56) a basic block maps 64 channels to 64 with two 3×3 convolutions; the "
    "bottleneck block at the same place maps 256 channels to 256 with 1×1 (256 -> 64), 3×3 "
    "(64 -> 64) and 1×1 (64 -> 256) convolutions. Predict: how do their costs compare, and why?",
    {
        "a": "The bottleneck costs about the same: the first 1×1 convolution shrinks 256 "
        "channels to 64, so the expensive 3×3 convolution works on 64 channels, and a 1×1 "
        "convolution costs a ninth of a 3×3 per pair of channels.",
        "b": "The bottleneck costs about four times as much: it carries four times the channels "
        "at every layer.",
        "c": "The bottleneck costs about the same because it works on a map of half the "
        "resolution.",
        "d": "The bottleneck costs far less, because its 1×1 convolutions cost nothing.",
    },
    answer="a",
    feedback={
        "b": "Only the block's input and output have 256 channels. Inside, the 1×1 reduction "
        "leaves the 3×3 convolution 64 channels, and the 1×1 convolutions hold 1 weight per "
        "pair of channels instead of 9.",
        "c": "Both are measured at the same place, conv2_x at 56×56 with stride 1: the same "
        "positions. The saving comes from the channels, not from the resolution.",
        "d": "A 1×1 convolution from 256 to 64 channels still has 256 × 64 = 16,384 weights and "
        "as many multiply-adds per position; the two of them hold almost half of the block's "
        "weights. They are cheap per pair of channels, not free.",
    },
    success=(
        "Squeeze, convolve, expand: the 3×3 convolution sees 64 channels only, so four times "
        "the channels cost about what a basic block costs (He et al. 2016, Fig. 5), and "
        "ResNet-50 about what ResNet-34 costs."
    ),
)
"""Section 3, asked before the basic and bottleneck blocks are measured (the right letter: a)."""

preactivation_depth = MultipleChoice(
    "Question 2 · Why pre-activation pays off with depth",
    "He et al. (2016b) report CIFAR-10 test errors of the original and the pre-activation "
    "networks: ResNet-110 6.61% and 6.37%, ResNet-1001 7.61% and 4.92%. Why does moving BN "
    "and ReLU before the convolutions help the 1001-layer network so much more than the "
    "110-layer one?",
    {
        "a": "Pre-activation blocks hold more parameters (a BN in front of every block), and "
        "the 1001-layer network, with the most blocks, gains the most capacity from them.",
        "b": "With nothing after the addition, the shortcut path is a pure identity: signal and "
        "gradient pass unchanged from block to block. The original block's ReLU after every "
        "addition acts on that path once per block, which matters little over 54 blocks and a "
        "lot over 333.",
        "c": "ResNet-1001 overfits CIFAR-10's 50,000 images, and pre-activation, which "
        "normalises the input of every weight layer, regularises it; ResNet-110 is too small to "
        "need that.",
        "d": "Pre-activation takes the ReLUs out of the blocks, and without ReLUs a 1001-layer "
        "network has no units that can die or clip its signal.",
    },
    answer="b",
    feedback={
        "a": "Moving BN and ReLU changes no convolution: both variants have essentially the "
        "same parameters. What differs is where the nonlinearity sits, on the shortcut path "
        "or off it.",
        "c": "He et al. (2016b) do see BN before the weights regularise a little, but that is "
        "not what sets the 1001-layer network apart: the original ResNet-1001's training error "
        "falls very slowly at the start, an optimisation difficulty that the clean identity "
        "path removes.",
        "d": "A pre-activation block has as many ReLUs as the original, two: the one that "
        "followed the addition moves into the branch, in front of a convolution. What is gone "
        "is a ReLU on the shortcut path, not the ReLUs.",
    },
    success=(
        "No ReLU after the addition: x_L = x_l + the sum of the residuals in between, so the "
        "signal and the gradient cross hundreds of blocks unchanged. The deeper the network, "
        "the more blocks the original's ReLU would act on."
    ),
)
"""The exercises, recalling notebook 02's section 6 (the right letter: b)."""
