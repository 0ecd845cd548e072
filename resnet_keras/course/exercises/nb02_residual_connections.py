"""Checked exercises of notebook 02, "Residual connections".

1. `check_residual_block`: the missing line of a residual block's `call`, y = ReLU(F(x) + x).
2. `check_projection_parameters`: the trainable parameters of an option-B projection shortcut.

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

__all__ = ["check_projection_parameters", "check_residual_block"]

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
