"""Checked exercises of notebook 01, "Background".

1. `check_conv_translation`: the Keras layer for the seed's `nn.Conv2d(64, 128, 3, padding=1)`.
2. `check_conv_parameters`: the parameters of the seed's `conv3`, counted by hand.
3. `check_initial_loss`: the cross-entropy of an untrained classifier.

Questions (graded with feedback for every wrong choice): `batch_norm_at_test_time`,
`degradation_not_overfitting`.

Examples:

>>> from resnet_keras.course.exercises.nb01_background import check_conv_parameters
>>> check_conv_parameters(None).status
⏳ Parameters of the seed's conv3: not attempted yet
'not attempted'
"""

from __future__ import annotations

import math
import numbers

import keras
import numpy as np

from resnet_keras.course.exercises._stubs import NotAttempted, stub_aware_exercise
from resnet_keras.course.exercises.core import Incorrect, exercise
from resnet_keras.course.exercises.questions import MultipleChoice

__all__ = [
    "batch_norm_at_test_time",
    "check_conv_parameters",
    "check_conv_translation",
    "check_initial_loss",
    "degradation_not_overfitting",
]


# --- exercise 1 -----------------------------------------------------------------------------

_IN, _OUT = 64, 128


@exercise(
    "Translate nn.Conv2d(64, 128, kernel_size=3, stride=1, padding=1)",
    success=(
        "Keras infers the 64 input channels from the data; padding='same' keeps 32x32 at "
        "stride 1, like padding=1 around a 3x3 kernel, and both add a bias by default."
    ),
)
def check_conv_translation(layer):
    """Checks a Keras layer against the seed's `conv2` on a (2, 8, 8, 64) input."""
    if isinstance(layer, type):
        raise Incorrect("Give a layer instance, e.g. `keras.layers.Conv2D(...)`, not the class.")
    if not isinstance(layer, keras.layers.Layer):
        raise Incorrect(f"Give a Keras layer, not {type(layer).__name__}.")
    if not isinstance(layer, keras.layers.Conv2D) or isinstance(
        layer, (keras.layers.DepthwiseConv2D, keras.layers.Conv2DTranspose)
    ):
        raise Incorrect(
            f"nn.Conv2d is a 2D convolution: use keras.layers.Conv2D, not {type(layer).__name__}."
        )
    if layer.data_format != "channels_last":
        raise Incorrect(
            "Keep Keras' default data_format='channels_last' (NHWC): the course feeds images "
            "as (batch, height, width, channels), not PyTorch's NCHW."
        )
    # A fresh copy, so that a layer already called on other data can be checked too.
    layer = type(layer).from_config(layer.get_config())
    images = np.random.default_rng(0).standard_normal((2, 8, 8, _IN)).astype("float32")
    outputs = layer(images)
    shape = tuple(outputs.shape)
    if layer.filters != _OUT:
        raise Incorrect(
            f"The second argument of nn.Conv2d is the number of output channels, {_OUT}; your "
            f"layer has filters={layer.filters}. (Keras needs no input channels: it reads "
            "them from the data.)"
        )
    if tuple(layer.kernel_size) != (3, 3):
        raise Incorrect(f"kernel_size=3 means a 3x3 kernel; yours is {layer.kernel_size}.")
    if tuple(layer.strides) != (1, 1):
        raise Incorrect(f"stride=1 in PyTorch is strides=1 in Keras; yours is {layer.strides}.")
    if tuple(layer.dilation_rate) != (1, 1) or layer.groups != 1:
        raise Incorrect("Leave dilation_rate and groups at their defaults (1), as the seed does.")
    if shape[1:3] != (8, 8):
        raise Incorrect(
            f"An 8x8 input came out {shape[1]}x{shape[2]}: padding=1 around a 3x3 kernel keeps "
            "the size, which in Keras is padding='same' (the default 'valid' pads nothing)."
        )
    if not layer.use_bias:
        raise Incorrect(
            "nn.Conv2d adds a bias unless you pass bias=False, and the seed does not: keep "
            "Keras' default use_bias=True."
        )
    if layer.activation not in (None, keras.activations.linear):
        raise Incorrect(
            "The seed applies ReLU as a separate step after the convolution; this exercise asks "
            "for the convolution alone (no activation)."
        )
    if layer.count_params() != 3 * 3 * _IN * _OUT + _OUT:
        raise Incorrect(f"Expected 73,856 parameters; your layer has {layer.count_params():,}.")


# --- exercise 2 -----------------------------------------------------------------------------


@exercise("Parameters of the seed's conv3")
def check_conv_parameters(answer):
    """Checks the parameter count of `nn.Conv2d(128, 256, kernel_size=3, padding=1)`: 295,168."""
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        raise Incorrect(f"Give the count as a number, not {type(answer).__name__}.")
    weights = 3 * 3 * 128 * 256
    correct = weights + 256
    if answer == correct:
        return f"{weights:,} kernel weights (3 x 3 x 128 x 256) + 256 biases."
    if answer == weights:
        raise Incorrect(
            f"{weights:,} is the kernel alone: nn.Conv2d also has one bias per output channel."
        )
    if answer == weights + 128:
        raise Incorrect("One bias per *output* channel (256), not per input channel.")
    if answer == 128 * 256 + 256:
        raise Incorrect(
            "Each of the 256 filters is 3 x 3 in space over all 128 input channels: the 3 x 3 "
            "is missing."
        )
    if answer == 3 * 3 * 256 + 256:
        raise Incorrect(
            "Each filter spans all 128 input channels, not one: multiply by 128 as well."
        )
    raise Incorrect(
        f"{answer:,} is not it. A filter has 3 x 3 x (input channels) weights; there is one "
        "filter and one bias per output channel."
    )


# --- exercise 3 -----------------------------------------------------------------------------


@stub_aware_exercise(
    "The loss of an untrained classifier",
    success=(
        "With near-equal logits every class gets probability 1/C, and the cross-entropy "
        "-log(1/C) = log(C): 2.303 for 10 classes. A first loss far from it means a bug "
        "(wrong labels, softmax applied twice, from_logits forgotten)."
    ),
)
def check_initial_loss(expected_initial_loss):
    """Checks a function `expected_initial_loss(num_classes)` -> log(num_classes).

    A stub that still returns None is not attempted.
    """
    if not callable(expected_initial_loss):
        raise Incorrect(
            "Define a function `expected_initial_loss(num_classes)`; you gave a "
            f"{type(expected_initial_loss).__name__}."
        )
    for index, num_classes in enumerate((10, 100, 1000, 2)):
        value = expected_initial_loss(num_classes)
        if value is None:
            if index == 0:
                raise NotAttempted
            raise Incorrect("Your function returned None: finish it with a `return` statement.")
        value = float(value)
        correct = math.log(num_classes)
        if math.isclose(value, correct, rel_tol=1e-3):
            continue
        if math.isclose(value, 1 / num_classes, rel_tol=1e-3):
            raise Incorrect(
                f"1/{num_classes} is the probability each class gets; the loss is the negative "
                "log of the probability of the true class."
            )
        if math.isclose(value, math.log2(num_classes), rel_tol=1e-3):
            raise Incorrect("Cross-entropy in Keras uses the natural logarithm, not log2.")
        if math.isclose(value, math.log10(num_classes), rel_tol=1e-3):
            raise Incorrect("Cross-entropy in Keras uses the natural logarithm, not log10.")
        raise Incorrect(
            f"For {num_classes} classes your function gives {value:g}; an untrained model "
            f"gives each class probability 1/{num_classes}: what is -log of that?"
        )


# --- questions ------------------------------------------------------------------------------

batch_norm_at_test_time = MultipleChoice(
    "Question 1 · Batch normalisation at test time",
    "A `BatchNormalization` layer is called with `training=False` (evaluation, prediction). "
    "What does it normalise its input with?",
    {
        "a": "The mean and variance of the batch it is given, as in training.",
        "b": "The moving mean and moving variance it averaged during training; then it scales "
        "by gamma and shifts by beta.",
        "c": "Nothing: batch normalisation is switched off at test time and the layer passes "
        "its input through unchanged.",
        "d": "Gamma and beta: they are the mean and the standard deviation it learned.",
    },
    answer="b",
    feedback={
        "a": "That is training mode. At test time the prediction for one image must not depend "
        "on which other images share its batch (or on a batch of one), so BN uses the moving "
        "statistics it collected while training.",
        "c": "BN still works at test time: it subtracts the moving mean, divides by the moving "
        "standard deviation and applies gamma and beta. Dropping it would feed the next layer "
        "inputs of a scale it never saw in training.",
        "d": "Gamma and beta are not statistics: they are a learned scale and shift, applied "
        "after the normalisation (gamma starts at 1, beta at 0). The statistics are the moving "
        "mean and variance, which are not trained by gradient descent.",
    },
    success=(
        "In inference mode BN normalises with its moving statistics, "
        "(x - moving_mean) / sqrt(moving_variance + epsilon), then applies gamma and beta. Each "
        "training step moves those statistics a fraction 1 - momentum of the way toward the "
        "batch's (1% with Keras' default momentum of 0.99)."
    ),
)
"""The batch-normalisation primer before section 5 (the right letter: b)."""

degradation_not_overfitting = MultipleChoice(
    "Question 2 · Which plain network trains worse",
    "Plain-20 and plain-56 (both with batch normalisation, no shortcuts) are trained on the "
    "same images with the same optimiser for the same number of steps. Which one ends with the "
    "higher **training** loss, and why?",
    {
        "a": "Plain-56, because with almost three times the layers it overfits.",
        "b": "Plain-20, because it has fewer parameters and so cannot fit the training images "
        "as well.",
        "c": "Plain-56: the deeper plain network is harder to optimise, so SGD finds a worse "
        "solution even on the training images (the degradation problem).",
        "d": "Neither: plain-56 can copy plain-20 by setting its extra layers to the identity, "
        "so both end at the same training loss.",
    },
    answer="c",
    feedback={
        "a": "Overfitting means a low training loss and a high test loss. Here the deeper net's "
        "*training* loss is the higher one, so it is not overfitting: it fits its own training "
        "images worse.",
        "b": "More parameters usually fit the training set better, not worse, and plain-56 "
        "could represent everything plain-20 represents. The paper's Fig. 6 shows the deeper "
        "plain net with the higher training error.",
        "d": "Such a solution exists, but the optimiser does not find it: learning the identity "
        "with a stack of nonlinear layers is hard. That gap between what a network can "
        "represent and what SGD finds is the degradation problem.",
    },
    success=(
        "The deeper plain network trains worse: its training error is higher, so this is an "
        "optimisation difficulty (degradation), neither overfitting nor a lack of capacity."
    ),
)
"""Section 5, asked before the plain-20 vs plain-56 race (the right letter: c)."""
