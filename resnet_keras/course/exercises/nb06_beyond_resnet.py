"""Checked exercises of notebook 06, "Beyond ResNet".

1. `check_grouped_conv_params`: the weights of a grouped 3x3 convolution (ResNeXt).
2. `check_drop_path`: a per-sample stochastic-depth ("drop path") layer.

Questions (graded with feedback for every wrong choice): `bottleneck_cost`,
`drop_path_scaling`.

Examples:

>>> from resnet_keras.course.exercises.nb06_beyond_resnet import check_grouped_conv_params
>>> check_grouped_conv_params(None).status
⏳ Weights of a grouped convolution: not attempted yet
'not attempted'
"""

from __future__ import annotations

import inspect
import numbers

import keras
import numpy as np

from resnet_keras.course.exercises.core import Incorrect, exercise
from resnet_keras.course.exercises.questions import MultipleChoice

__all__ = [
    "GROUPED_CONV",
    "SURVIVAL_PROBABILITY",
    "bottleneck_cost",
    "check_drop_path",
    "check_grouped_conv_params",
    "drop_path_scaling",
    "grouped_conv_params",
]

GROUPED_CONV = {"in_channels": 128, "filters": 128, "kernel_size": 3, "groups": 32}
"""The 3x3 convolution of the first stage of ResNeXt-50 (32x4d): 128 -> 128 channels in
32 groups of 4 (Xie et al. 2017, Table 1), without bias."""

SURVIVAL_PROBABILITY = 0.75
"""The survival probability `check_drop_path` builds the learner's layer with."""

_SAMPLES = 4000


def grouped_conv_params(in_channels, filters, kernel_size, groups, use_bias=False):
    """Weights of a `keras.layers.Conv2D(filters, kernel_size, groups=groups)`.

    Each of the `filters` output channels sees only the `in_channels // groups` input
    channels of its group.

    Examples:

    >>> grouped_conv_params(128, 128, 3, 32)
    4608
    >>> grouped_conv_params(128, 128, 3, 1)
    147456
    """
    if in_channels % groups or filters % groups:
        raise ValueError(
            f"`groups` ({groups}) must divide `in_channels` ({in_channels}) and `filters` "
            f"({filters})."
        )
    weights = kernel_size * kernel_size * (in_channels // groups) * filters
    return weights + (filters if use_bias else 0)


def _keras_count(in_channels, filters, kernel_size, groups):
    conv = keras.layers.Conv2D(filters, kernel_size, groups=groups, use_bias=False)
    conv.build((None, 8, 8, in_channels))
    return conv.count_params()


@exercise(
    "Weights of a grouped convolution",
    success="Correct: 3 x 3 x (128 / 32) x 128 = 4,608, a 32nd of the dense convolution's 147,456.",
)
def check_grouped_conv_params(answer):
    """Checks the number of weights of `GROUPED_CONV` (no bias)."""
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        raise Incorrect(f"Give the number of weights as a number, not {type(answer).__name__}.")
    if not float(answer).is_integer():
        raise Incorrect(f"A number of weights is a whole number; you gave {answer}.")
    answer = int(answer)
    spec = GROUPED_CONV
    correct = _keras_count(**spec)
    size = spec["kernel_size"] ** 2
    if answer == correct:
        return None
    if answer == grouped_conv_params(**{**spec, "groups": 1}):
        raise Incorrect(
            f"{answer:,} is the dense convolution. In a grouped one each filter only sees the "
            f"{spec['in_channels'] // spec['groups']} input channels of its group."
        )
    if answer == correct + spec["filters"]:
        raise Incorrect("You added a bias per filter; this convolution has none (BN follows it).")
    if answer == size * spec["in_channels"] * spec["filters"] // spec["groups"] ** 2:
        raise Incorrect(
            "You divided by the number of groups twice (or counted the filters of one group "
            "only). The input channels per filter shrink by the group count, but there are "
            f"still all {spec['filters']} filters."
        )
    raise Incorrect(
        f"{answer:,} is not it. Count kernel height x width x input channels per group x "
        "output channels."
    )


def _build(layer_class):
    if not (inspect.isclass(layer_class) and issubclass(layer_class, keras.layers.Layer)):
        raise Incorrect(
            "Give the layer's class (a subclass of keras.layers.Layer), not "
            f"{type(layer_class).__name__}."
        )
    if "training" not in inspect.signature(layer_class.call).parameters:
        raise Incorrect(
            "Its `call` has no `training` argument: it cannot tell training from inference. "
            "Write `def call(self, inputs, training=None)`."
        )
    try:
        return layer_class(SURVIVAL_PROBABILITY, seed=0)
    except TypeError:
        return layer_class(SURVIVAL_PROBABILITY)


def _sample_masks(inputs, outputs, survival):
    """Per sample, its kind and the one factor its values were multiplied by (or NaN).

    Kinds: "dropped" (all zero), "kept" (scaled by 1/p), "unscaled" (factor 1), "rescaled"
    (one factor for the whole sample, but not 1/p) or "mixed" (values scaled differently:
    a mask per value, as dropout draws).
    """
    flat_in = inputs.reshape(len(inputs), -1)
    flat_out = outputs.reshape(len(outputs), -1)
    kinds, factors = [], []
    for x, y in zip(flat_in, flat_out):
        ratio = y / x  # the checker's inputs lie in [1, 2): no division by zero
        factor = float(np.mean(ratio))
        if np.allclose(y, 0.0, atol=1e-6):
            kind, factor = "dropped", 0.0
        elif not np.allclose(ratio, factor, rtol=1e-4, atol=1e-6):
            kind, factor = "mixed", float("nan")
        elif np.isclose(factor, 1 / survival, rtol=1e-4):
            kind = "kept"
        elif np.isclose(factor, 1.0, rtol=1e-4):
            kind = "unscaled"
        else:
            kind = "rescaled"
        kinds.append(kind)
        factors.append(factor)
    return np.array(kinds), np.array(factors)


@exercise(
    "Stochastic depth per sample",
    success=(
        "Correct: in training whole samples lose their branch at rate 1 - p and the others "
        "are scaled by 1/p; in inference the branch passes unchanged."
    ),
)
def check_drop_path(layer_class):
    """Checks `layer_class(survival_probability, seed=...)` applied to a residual branch.

    With p = `SURVIVAL_PROBABILITY`, in training each sample's branch must be zeroed with
    probability 1 - p (the whole sample, not single values) and kept samples divided by p, so
    the expected output equals the input; the mask must change from call to call. In inference
    (training False or not given) the layer is the identity.
    """
    layer = _build(layer_class)
    survival = SURVIVAL_PROBABILITY
    generator = np.random.default_rng(0)
    branch = (1.0 + generator.random((_SAMPLES, 2, 2, 3))).astype("float32")

    for training in (False, None):
        outputs = np.asarray(layer(branch) if training is None else layer(branch, training=False))
        if outputs.shape != branch.shape or not np.allclose(outputs, branch, rtol=1e-5):
            raise Incorrect(
                f"In inference (training={training}) the layer must return its input unchanged, "
                "so the block is exactly x + F(x); yours changes it."
            )

    first = np.asarray(layer(branch, training=True))
    kinds, factors = _sample_masks(branch, first, survival)
    if np.any(kinds == "mixed"):
        raise Incorrect(
            "Some samples lost only part of their values: that is dropout. Stochastic depth "
            "drops a sample's whole branch: draw one random number per sample, with shape "
            "(batch, 1, 1, 1)."
        )
    if np.any(kinds == "unscaled") and not np.any(kinds == "kept"):
        raise Incorrect(
            "The kept samples are not scaled: divide them by the survival probability "
            f"({survival}) so that the expected output equals the input and inference needs no "
            "change."
        )
    dropped = float(np.mean(kinds == "dropped"))
    if np.any(kinds == "rescaled"):
        factor = float(np.median(factors[kinds == "rescaled"]))
        if np.isclose(factor, 1 / (1 - survival), rtol=1e-3):
            raise Incorrect(
                f"{dropped:.0%} of the samples were dropped and the kept ones scaled by "
                f"{factor:.3g} = 1/(1 - {survival}): the rate is swapped. {survival} is the "
                "probability to *keep* a sample's branch: keep with probability p and divide "
                "the kept samples by p."
            )
        raise Incorrect(
            f"The kept samples are scaled by {factor:.3g}; divide them by the survival "
            f"probability {survival} (a factor of {1 / survival:.3g}) so that the expected "
            "output equals the input."
        )
    if abs(dropped - survival) < 0.05 and abs(survival - 0.5) > 0.1:
        raise Incorrect(
            f"{dropped:.0%} of the samples were dropped: you drop with the survival probability "
            f"instead of 1 - {survival}."
        )
    if abs(dropped - (1 - survival)) > 0.05:
        raise Incorrect(
            f"{dropped:.1%} of the samples were dropped; with survival probability {survival} "
            f"about {1 - survival:.0%} should be."
        )
    second = np.asarray(layer(branch, training=True))
    if np.array_equal(_sample_masks(branch, second, survival)[0], kinds):
        raise Incorrect(
            "Two training calls dropped exactly the same samples: the mask must be new every "
            "call. Draw it with a keras.random.SeedGenerator kept on the layer, not a fixed seed."
        )


# --- questions ------------------------------------------------------------------------------

bottleneck_cost = MultipleChoice(
    "Question 1 · Why a bottleneck is cheap",
    "On the same 56x56 feature maps, a bottleneck block on 256 channels (1x1 conv 256 -> 64, "
    "3x3 conv 64 -> 64, 1x1 conv 64 -> 256) costs slightly fewer multiply-adds than a basic "
    "block on 64 channels (two 3x3 convs 64 -> 64). Why?",
    {
        "a": "It has fewer layers: two convolutions in a basic block against one in a bottleneck.",
        "b": "1x1 convolutions cost nothing worth counting: they only mix channels, they do "
        "not look at neighbouring pixels.",
        "c": "The bottleneck works on smaller feature maps: its 1x1 convolutions halve the "
        "height and width.",
        "d": "A convolution costs k x k x C_in x C_out per pixel: the expensive 3x3 runs on the "
        "reduced 64 channels, and the two 1x1s, which touch 256 channels, have k x k = 1.",
    },
    answer="d",
    feedback={
        "a": "It has more: three convolutions (1x1, 3x3, 1x1) against two 3x3s. What is "
        "cheaper is what each one costs, which depends on the kernel size and on the channels "
        "it maps between.",
        "b": "A 1x1 convolution from 256 to 64 channels is 256 x 64 = 16,384 multiply-adds per "
        "pixel, not nothing: the two 1x1s together are almost half of the bottleneck's cost. "
        "They are cheap only compared with a 3x3 on the same channels (9 times less).",
        "c": "All three convolutions keep the 56x56 maps (stride 1, padding 'same'); only the "
        "first block of a stage downsamples, in either design. The saving comes from the "
        "channels, not from the resolution.",
    },
    success=(
        "Per pixel: 3 x 3 x 64 x 64 = 36,864 for the 3x3, plus 2 x 256 x 64 = 32,768 for the "
        "two 1x1s, about 69,600 in all, against 2 x 36,864 = 73,728 for the basic block, while "
        "the block's input and output carry 4 times the channels (He et al. 2016, Fig. 5)."
    ),
)
"""Asked before the cost comparison of section 1 (the right letter: d)."""

drop_path_scaling = MultipleChoice(
    "Question 2 · Why a kept branch is divided by p",
    "In training, `StochasticDepthBlock` keeps its residual branch with probability p (the "
    "survival probability; it drops it with probability 1 - p) and divides a kept branch by "
    "p. At inference it always keeps the branch, unscaled. Why the division by p?",
    {
        "a": "So that, averaged over the coin, the branch enters with weight 1 as at "
        "inference: p x F(x) / p + (1 - p) x 0 = F(x).",
        "b": "So that the variance of the block's output stays what it would be without dropping.",
        "c": "So that the rarely kept branches get larger gradients and learn as fast as "
        "the branches that are always kept.",
        "d": "So that inference can drop branches at random as well and average several "
        "predictions.",
    },
    answer="a",
    feedback={
        "b": "Only the mean is preserved. Scaling by 1/p makes the kept branch larger, and "
        "the output jumps between x and x + F(x) / p, so its variance is higher than without "
        "dropping; the division is an argument about the expectation.",
        "c": "Larger gradients on kept steps are a side effect, not the purpose. Huang et al. "
        "(2016) do not divide at all in training: they multiply the branch by p at test time "
        "instead, which matches the same expectation and changes no gradient.",
        "d": "Inference uses every branch, deterministically: no coins are drawn when "
        "`training` is false. Averaging predictions over random masks (Monte Carlo dropout) "
        "is a different technique, and the division is what makes it unnecessary.",
    },
    success=(
        "In training a branch is kept with probability p and scaled by 1/p, so its expected "
        "contribution is F(x), exactly what inference adds. That is the 'inverted' form, as "
        "in inverted dropout; Huang et al. (2016) scale by p at test time instead."
    ),
)
"""Asked before the stochastic-depth measurement of section 2 (the right letter: a)."""
