"""Checked exercises of notebook 02, "Residual connections".

1. `check_residual_block`: the missing line of a residual block's `call`, y = ReLU(F(x) + x).
2. `check_projection_parameters`: the trainable parameters of an option-B projection shortcut.

Questions (graded with feedback for every wrong choice): `gradients_without_bn`,
`option_a_costs_nothing`, `identity_gradient`.

Examples:

>>> from resnet_keras.course.exercises.nb02_residual_connections import check_residual_block
>>> check_residual_block(None).status
⏳ Complete the residual block: not attempted yet
'not attempted'
"""

from __future__ import annotations

import inspect
import numbers

import keras
import numpy as np
from keras import ops

from resnet_keras.course.exercises._stubs import NotAttempted, stub_aware_exercise
from resnet_keras.course.exercises.core import Incorrect
from resnet_keras.course.exercises.questions import MultipleChoice

__all__ = [
    "check_projection_parameters",
    "check_residual_block",
    "gradients_without_bn",
    "identity_gradient",
    "option_a_costs_nothing",
]

_FILTERS = 8
_SUBLAYERS = ("conv1", "bn1", "conv2", "bn2")


# --- exercise 1 -----------------------------------------------------------------------------


def _inputs(seed):
    # Negative values too: they tell apart a ReLU before and after the addition.
    generator = np.random.default_rng(seed)
    return (0.5 + generator.standard_normal((4, 6, 6, _FILTERS))).astype("float32")


def _randomise_batch_norms(block, seed=1):
    """Non-trivial BN parameters and statistics, so that a skipped BN cannot go unnoticed."""
    generator = np.random.default_rng(seed)
    for name in ("bn1", "bn2"):
        bn = getattr(block, name)
        bn.gamma.assign(generator.uniform(0.5, 1.5, _FILTERS).astype("float32"))
        bn.beta.assign(generator.uniform(-0.5, 0.5, _FILTERS).astype("float32"))
        bn.moving_mean.assign(generator.uniform(-0.3, 0.3, _FILTERS).astype("float32"))
        bn.moving_variance.assign(generator.uniform(0.5, 2.0, _FILTERS).astype("float32"))


def _branch(block, inputs, training):
    """F(x) = BN(conv(ReLU(BN(conv(x))))), computed from the block's own sub-layers."""
    branch = ops.relu(block.bn1(block.conv1(inputs), training=training))
    return block.bn2(block.conv2(branch), training=training)


def _statistics(block):
    return [np.array(getattr(block, name).moving_mean.numpy()).copy() for name in ("bn1", "bn2")]


def _close(a, b):
    return np.allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4)


@stub_aware_exercise(
    "Complete the residual block",
    success=(
        "y = ReLU(F(x) + x): the block only has to learn the residual F(x) = y - x, and the "
        "addition passes the gradient on to x unchanged."
    ),
)
def check_residual_block(block_class):
    """Checks a residual block class `block_class(filters)` whose `call` the learner completed.

    The block must compute y = ReLU(F(x) + x) with F = conv1 -> bn1 -> ReLU -> conv2 -> bn2
    (the template's sub-layers), numerically, in inference and training mode, and hand
    `training` on to both BatchNormalizations. The template itself (its `call` returns None)
    is not attempted.
    """
    if not (inspect.isclass(block_class) and issubclass(block_class, keras.layers.Layer)):
        raise Incorrect(
            "Give the block's class (a subclass of keras.layers.Layer, like ResidualBlock), "
            f"not {type(block_class).__name__}."
        )
    block = block_class(_FILTERS)
    missing = [name for name in _SUBLAYERS if not hasattr(block, name)]
    if missing:
        raise Incorrect(
            f"The block has no {', '.join(missing)}: keep the sub-layers of the template "
            "(conv1, bn1, conv2, bn2) and only fill in the missing line."
        )
    inputs = _inputs(0)
    if block.call(inputs, training=False) is None:
        raise NotAttempted
    outputs = block(inputs, training=False)
    if tuple(outputs.shape) != inputs.shape:
        raise Incorrect(
            f"The block should keep the shape of its input {inputs.shape}; it returned "
            f"{tuple(outputs.shape)}."
        )
    _randomise_batch_norms(block)
    before = _statistics(block)
    got = np.asarray(block(inputs, training=False))
    if any(not np.allclose(old, new) for old, new in zip(before, _statistics(block))):
        raise Incorrect(
            "The moving statistics changed in inference (training=False): BatchNormalization "
            "must get `training=training`, not training=True."
        )
    branch = np.asarray(_branch(block, inputs, training=False))
    if not _close(got, np.maximum(branch + inputs, 0.0)):
        if _close(got, np.maximum(branch, 0.0)) or _close(got, branch):
            raise Incorrect(
                "The output is F(x) alone: the shortcut is missing. Add the block's input x "
                "to the branch before the final ReLU."
            )
        if _close(got, branch + inputs):
            raise Incorrect(
                "You return F(x) + x without the final ReLU. The original block (He et al. "
                "2016, Fig. 2) applies ReLU after the addition."
            )
        if _close(got, np.maximum(branch, 0.0) + inputs):
            raise Incorrect("The ReLU comes after the addition, not before it: y = ReLU(F(x) + x).")
        if _close(got, np.maximum(branch + 2 * inputs, 0.0)):
            raise Incorrect("x is added twice; add it once.")
        raise Incorrect(
            "y does not equal ReLU(F(x) + x), where F(x) is the template's `f` (conv -> BN -> "
            "ReLU -> conv -> BN). Add the input x to f, then apply ops.relu."
        )

    before = _statistics(block)
    trained = block.call(inputs, training=True)
    after = _statistics(block)
    moved = [not np.allclose(old, new) for old, new in zip(before, after)]
    if not all(moved):
        raise Incorrect(
            "Calling the block's `call` with training=True did not update the moving "
            "statistics of every BatchNormalization: pass `training=training` to bn1 and bn2 "
            "(Keras 3 often rescues a forgotten flag through its call context, but not "
            "always; notebook 05 shows when)."
        )
    expected = np.maximum(np.asarray(_branch(block, inputs, training=True)) + inputs, 0.0)
    if not _close(trained, expected):
        raise Incorrect(
            "In training mode the output is not ReLU(F(x) + x) with batch statistics: check "
            "that `training` reaches both BatchNormalizations unchanged."
        )


# --- exercise 2 -----------------------------------------------------------------------------

_PROJECTION_CASES = ((16, 32), (32, 64), (64, 128), (64, 256), (3, 16))


def _library_projection_parameters(in_channels, out_channels):
    """Trainable parameters option B adds to a block, measured on the library's BasicBlock."""
    from resnet_keras.analysis import count_trainable_params
    from resnet_keras.layers import BasicBlock

    counts = {}
    for option in ("A", "B"):
        inputs = keras.Input((8, 8, in_channels))
        block = BasicBlock(out_channels, strides=2, shortcut=option)
        counts[option] = count_trainable_params(keras.Model(inputs, block(inputs)))
    return counts["B"] - counts["A"]


@stub_aware_exercise(
    "Parameters of an option-B projection",
    success=(
        "A 1x1 convolution without bias (in x out weights) plus BN's gamma and beta (2 x out); "
        "the moving mean and variance are statistics, not trained parameters."
    ),
)
def check_projection_parameters(projection_parameters):
    """Checks `projection_parameters(in_channels, out_channels)` against the library's blocks.

    A stub that still returns None is not attempted.
    """
    if not callable(projection_parameters):
        raise Incorrect(
            "Define a function `projection_parameters(in_channels, out_channels)`; you gave a "
            f"{type(projection_parameters).__name__}."
        )
    for index, (in_channels, out_channels) in enumerate(_PROJECTION_CASES):
        value = projection_parameters(in_channels, out_channels)
        if value is None:
            if index == 0:
                raise NotAttempted
            raise Incorrect("Your function returned None: finish it with a `return` statement.")
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise Incorrect(f"Return a number, not {type(value).__name__}.")
        correct = _library_projection_parameters(in_channels, out_channels)
        if value == correct:
            continue
        weights = in_channels * out_channels
        hints = {
            weights: "That is the 1x1 kernel alone: the projection is followed by a "
            "BatchNormalization with a trainable gamma and beta per output channel.",
            weights + out_channels: "BN has two trainable vectors, gamma and beta.",
            weights + 3 * out_channels: "The course's convolutions have no bias (BN's beta "
            "does its job): count the kernel and BN's gamma and beta only.",
            weights + 4 * out_channels: "BN's moving mean and variance are not trained "
            "(they are statistics, updated without gradients): count gamma and beta only.",
            9 * weights + 2 * out_channels: "The projection is a 1x1 convolution, not 3x3.",
        }
        raise Incorrect(
            f"projection_parameters({in_channels}, {out_channels}) returned {value:,}. "
            + hints.get(value, "Count the 1x1 convolution's kernel and the BN after it.")
        )


# --- questions ------------------------------------------------------------------------------

gradients_without_bn = MultipleChoice(
    "Question 1 · Gradients without batch normalisation",
    "Section 4 measured plain-56 *with* batch normalisation: at initialisation its gradients "
    "grow about 2,600 times from the last layer to the first. The next cell measures a plain "
    "stack of 30 sigmoid layers *without* normalisation. Predict: how does the gradient at its "
    "first sigmoid layer compare with the gradient at its last?",
    {
        "a": "Larger: it grows toward the input, as plain-56's did in section 4.",
        "b": "Far smaller, a millionth or less: every layer multiplies the gradient by a small "
        "factor (the sigmoid's derivative is at most 1/4), so it vanishes toward the input.",
        "c": "About the same: without batch normalisation nothing rescales the gradient.",
        "d": "That depends on the learning rate, which the cell does not say.",
    },
    answer="b",
    feedback={
        "a": "The growth of section 4 comes with batch normalisation in a deep plain network "
        "(Yang et al. 2019). Without BN, each sigmoid layer multiplies the gradient by its "
        "derivative, at most 1/4, times its weights: over 30 layers the product shrinks.",
        "c": "The chain rule multiplies one factor per layer, and nothing has to rescale the "
        "gradient for those factors to compound: with sigmoid derivatives of at most 1/4 they "
        "are small, and 30 of them make a tiny product.",
        "d": "The gradients are measured at initialisation, before any step: the learning rate "
        "only scales the update made from a gradient, never the gradient itself.",
    },
    success=(
        "Without normalisation and without shortcuts the gradient vanishes: the small factors "
        "of 30 sigmoid layers multiply. With a shortcut around every layer the derivative of "
        "each is 1 + (the layer's own), and the gradient arrives at the same order of magnitude."
    ),
)
"""Section 4, asked before the 30-layer sigmoid stack (the right letter: b)."""

option_a_costs_nothing = MultipleChoice(
    "Question 2 · Why option A costs no parameters",
    "An option-A shortcut turns a 16-channel 32×32 map into a 32-channel 16×16 map so that it "
    "can be added to F(x). Why does it add no parameters to the network?",
    {
        "a": "It reuses the weights of the branch's first convolution, which already maps 16 "
        "channels to 32.",
        "b": "It holds a 1×1 convolution whose weights are frozen, and frozen weights are not "
        "counted.",
        "c": "The blocks that change the shape get no shortcut, so there is nothing to pay for.",
        "d": "It keeps every other row and column (stride 2) and pads the new channels with "
        "zeros: a fixed operation with nothing to learn.",
    },
    answer="d",
    feedback={
        "a": "No weights are shared: the branch's convolutions belong to F(x), and the shortcut "
        "computes its output without any convolution at all.",
        "b": "A 1×1 convolution on the shortcut is option B's projection, and it is counted "
        "(16 × 32 weights plus its BN's gamma and beta for 16 -> 32). Option A has no weights, "
        "frozen or not.",
        "c": "Every block keeps its shortcut, the shape-changing ones included: that is the case "
        "option A exists for. It makes x match F(x)'s shape by subsampling and zero-padding.",
    },
    success=(
        "Subsampling and zero-padding are fixed operations: option A adds no weight, which is "
        "why SeedResNet has exactly SeedNet's parameters (section 7)."
    ),
)
"""Section 5, asked before option A is measured (the right letter: d)."""

identity_gradient = MultipleChoice(
    "Question 3 · Why the gradient gets through",
    "In a residual block y = F(x) + x, suppose the branch F passes almost no gradient "
    "(∂F/∂x ≈ 0). Why does the loss gradient still reach x?",
    {
        "a": "The addition doubles the gradient, so each of the two paths gets twice as much.",
        "b": "The shortcut has weights of its own, trained to amplify the gradient.",
        "c": "∂y/∂x = ∂F/∂x + I: the identity term hands the gradient arriving at y to x "
        "unchanged, whatever F does.",
        "d": "It does not: with ∂F/∂x ≈ 0 the block stops the gradient, and only batch "
        "normalisation can restore it.",
    },
    answer="c",
    feedback={
        "a": "An addition copies the incoming gradient to both summands; it does not double "
        "it. x receives ∂L/∂y · (∂F/∂x + I): the upstream gradient once through the identity, "
        "plus whatever the branch adds.",
        "b": "An identity shortcut has no weights at all (option A has none even where shapes "
        "change). It is the + x itself, whose derivative is the identity, that carries the "
        "gradient.",
        "d": "That is what a plain layer does: there ∂y/∂x = ∂F/∂x ≈ 0. The residual block adds "
        "the identity, so ∂y/∂x ≈ I; section 4 measured ResNet-56's gradients within one order "
        "of magnitude across all 57 layers.",
    },
    success=(
        "The derivative of + x is the identity, so the gradient at y reaches x in full, and "
        "through a stack of blocks it reaches every earlier block directly."
    ),
)
"""Section 1, asked in the exercises (the right letter: c)."""
