"""Checked exercises of notebook 12: the seed article's FAQ, answered with code and numbers.

The article ends with three questions. Each becomes exercises whose answers are
code or numbers that a checker verifies, with feedback that explains the
typical mistakes:

1. "What is ResNet's main advantage?"
   `main_advantage` (the question itself, multiple choice), `chain_rule` (how a gradient
   shrinks through 20 factors), `check_gradient_ratio` (measure how the gradient reaches
   the first layer of ResNet-56), `check_depth_doubling` (predict, then measure, what
   doubling the depth to 110 does).
2. "What limits deep networks in practice?"
   `limits_1202` (why ResNet-1202 tests worse than ResNet-110),
   `check_resnet44_cost` (parameters and multiply-adds of ResNet-44 by hand),
   `check_overfitting` (overfit a small subset, then shrink the gap; the checker
   trains the learner's models and measures them itself).
3. "How do you choose a learning rate?"
   `first_learning_rate` (reading an LR range test),
   `check_learning_rate` (LR range test plus a validation comparison that the checker
   re-trains over two seeds), `check_lr_schedule` (a decay schedule that starts at the
   chosen LR).

Every checker prints a verdict and returns a `Verdict`; it never raises on a
wrong or missing answer. `None` (or an unchanged stub that still returns
`None`) means "not attempted yet". Numbers that a checker recomputes (the
gradient ratios, the cost of ResNet-44) are deterministic: the checker seeds
with `resnet_keras.set_determinism(0)` right before it builds a model, so it
reseeds the global random state.

Examples:

>>> from resnet_keras.course.exercises import nb12_faq
>>> nb12_faq.check_lr_schedule(None).status
⏳ 3b · A learning-rate schedule that decays: not attempted yet
'not attempted'
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Mapping

import keras
import numpy as np

from resnet_keras._keras_compat import sublayers
from resnet_keras.course.exercises._stubs import NotAttempted, stub_aware_exercise
from resnet_keras.course.exercises.core import (
    Incorrect,
    is_unattempted,
)
from resnet_keras.course.exercises.questions import MultipleChoice, NumericAnswer

__all__ = [
    "DEEP_DEPTH",
    "DEPTH",
    "PREDICTIONS",
    "chain_rule",
    "check_depth_doubling",
    "check_gradient_ratio",
    "check_learning_rate",
    "check_lr_schedule",
    "check_overfitting",
    "check_resnet44_cost",
    "finder_region",
    "first_learning_rate",
    "limits_1202",
    "main_advantage",
    "measure_gradient_ratio",
    "probe_batch",
    "small_resnet",
]

DEPTH = 56
"""Depth of the ResNet whose gradients exercise 1b measures (1c doubles it)."""

PREDICTIONS = ("vanish", "similar", "grow")
"""The choices of exercise 1c: what ResNet-110's first-layer gradient does, against its last."""

PROBE_SIZE = 16
PROBE_SEED = 0
MODEL_SEED = 0

# Relative tolerance for a number the learner measured and the checker re-measures: the
# computation is deterministic, the margin only absorbs rounding when a learner types it in.
MEASURE_RTOL = 0.05


# --- "not attempted" for stubs ---------------------------------------------------------------


def _blank(value):
    """True for a placeholder: None, ..., or a mapping whose values are all placeholders."""
    if is_unattempted(value):
        return True
    if isinstance(value, Mapping) and value:
        return all(_blank(item) for item in value.values())
    return False


def _number(value, what):
    """`value` as a finite float, or Incorrect explaining what was expected."""
    if isinstance(value, (bool, str, bytes)):
        raise Incorrect(f"{what} must be a number; received {type(value).__name__} {value!r:.60}.")
    if not isinstance(value, numbers.Real):
        try:  # NumPy / backend scalars
            value = float(np.asarray(value))
        except (TypeError, ValueError):
            raise Incorrect(
                f"{what} must be a number; received {type(value).__name__} {value!r:.60}."
            ) from None
    value = float(value)
    if not math.isfinite(value):
        raise Incorrect(f"{what} must be a finite number; received {value}.")
    return value


def _close(a, b, rtol=MEASURE_RTOL):
    return math.isclose(a, b, rel_tol=rtol, abs_tol=1e-12)


# --- shared helpers the notebook uses -------------------------------------------------------
def probe_batch():
    """The fixed batch on which exercises 1b and 1c measure gradients.

    Sixteen standard-normal 32x32x3 images with random labels: at
    initialisation the gradient scales across depth depend on the architecture,
    not on what the images show, and a synthetic batch is the same everywhere
    (no dataset, no download).

    Returns:
        `(images, labels)`: float32 `(16, 32, 32, 3)` and int32 `(16,)` NumPy arrays.

    Examples:

    >>> images, labels = probe_batch()
    >>> images.shape, labels.shape
    ((16, 32, 32, 3), (16,))
    """
    from resnet_keras.data import synthetic

    return synthetic(PROBE_SIZE, seed=PROBE_SEED, as_numpy=True)


@dataclasses.dataclass(frozen=True)
class GradientMeasurement:
    """What `measure_gradient_ratio` found for one network.

    Attributes:
        ratio: gradient norm of the first layer (stem convolution) divided by
            that of the last (the dense layer).
        spread: largest over smallest per-layer gradient norm.
        norms: the `(kernel path, norm)` pairs from `resnet_keras.gradient_norms`.
    """

    ratio: float
    spread: float
    norms: tuple


@functools.lru_cache(maxsize=8)
def measure_gradient_ratio(depth=DEPTH, residual=True):
    """First-layer / last-layer gradient norm of a freshly initialised CIFAR network.

    Seeds with `set_determinism(0)`, builds `CifarResNet(depth, residual=residual)`
    (with batch normalisation, as in the paper) and measures
    `resnet_keras.gradient_norms` on `probe_batch()`. This is the computation the
    checkers of exercises 1b and 1c repeat, so a learner who follows the same
    steps gets the same number. Results are cached per (depth, residual).

    Args:
        depth: 6n+2 (20, 32, 44, 56, 110).
        residual: False measures the plain network of the same depth.

    Returns:
        A `GradientMeasurement`.

    Raises:
        ValueError: for a depth that is not 6n+2.

    Examples:

    >>> measurement = measure_gradient_ratio(20)
    >>> measurement.norms[0][0], measurement.norms[-1][0]
    ('stem_conv/kernel', 'logits/kernel')
    """
    import resnet_keras as rk

    if not isinstance(residual, bool):
        raise TypeError(f"`residual` must be True or False; received {residual!r}.")
    images, labels = probe_batch()
    rk.set_determinism(MODEL_SEED)
    model = rk.CifarResNet(depth, residual=residual)
    norms = tuple(rk.gradient_norms(model, images, labels))
    values = np.asarray([norm for _, norm in norms], dtype="float64")
    return GradientMeasurement(
        ratio=float(values[0] / values[-1]),
        spread=float(values.max() / values.min()),
        norms=norms,
    )


def small_resnet(num_classes=10, image_size=16, depth=8, name=None):
    """A ResNet small enough to train in seconds on a CPU, for exercises 2b and 3a.

    The model takes the usual 32x32x3 images, averages them down to
    `image_size` x `image_size` (a 16x16 thumbnail keeps the digits and most of
    a CIFAR-10 image), and runs `CifarResNet(depth)` on that: with depth 8 (one
    basic block per stage) it has 78k parameters and about 3 million
    multiply-adds per image, 1/13 of ResNet-20's.

    Args:
        num_classes: number of output logits.
        image_size: 32, 16 or 8.
        depth: 6n+2, see `CifarResNet`.
        name: model name (default "small_resnet{depth}").

    Returns:
        A `keras.Model` mapping (batch, 32, 32, 3) images to logits.

    Raises:
        ValueError: for an `image_size` other than 32, 16 or 8.

    Examples:

    >>> model = small_resnet()
    >>> model.output_shape
    (None, 10)
    """
    import resnet_keras as rk

    if image_size not in (32, 16, 8) or isinstance(image_size, bool):
        raise ValueError(f"`image_size` must be one of 32, 16, 8; received {image_size!r}.")
    inputs = keras.Input((32, 32, 3), name="images")
    x = inputs
    if image_size < 32:
        x = keras.layers.AveragePooling2D(32 // image_size, name="thumbnail")(x)
    core = rk.CifarResNet(depth, num_classes=num_classes, input_shape=(image_size, image_size, 3))
    return keras.Model(inputs, core(x), name=name or f"small_resnet{depth}")


# --- the article's three questions, asked as questions ---------------------------------------
main_advantage = MultipleChoice(
    "FAQ 1 · What is ResNet's main advantage?",
    'The seed article\'s FAQ asks it; its section 2.2 answers "it solves vanishing gradients", '
    "its FAQ answer says the shortcuts help the network learn better features. What do the "
    "paper's experiments and this course's measurements support?",
    {
        "a": "It has far fewer parameters than a plain network of the same depth.",
        "b": "Its shortcuts keep very deep networks easy to optimise: a block can fall back to "
        "the identity and the gradient has a path around every block, so adding layers no "
        "longer raises the training error.",
        "c": "It cannot overfit, so a deeper ResNet always tests better.",
        "d": "It is the only way to keep gradients from vanishing in a deep network.",
    },
    answer="b",
    feedback={
        "a": "Option A shortcuts add no parameters and B only a few: ResNet-56 and plain-56 "
        "have the same weights (notebook 02). The gain is in what training can reach, not in "
        "size.",
        "c": "ResNet-1202 fits its training set (error below 0.1 %) yet tests worse than "
        "ResNet-110 (7.93 % against 6.43 %, He et al. 2016, Table 6): depth can overfit.",
        "d": "He initialisation and batch normalisation already keep them from vanishing "
        "(section 1; the paper, Sec. 4.1, says so of its plain nets). Plain-56 still trains "
        "worse than plain-20: the problem is optimisation (degradation), not vanishing.",
    },
    success="The paper's evidence is the degradation problem (Fig. 1 and 6): deeper plain "
    "networks have a higher training error, deeper ResNets a lower one.",
)

chain_rule = NumericAnswer(
    "1a · Twenty factors",
    "Going backwards, each layer of a 20-layer plain stack multiplies the gradient by its "
    "local derivative, here 0.5 at every layer. What fraction of the gradient at the output "
    "reaches the input after all 20 layers? (A number such as 0.001.)",
    0.5**20,
    mistakes=[
        (0.5 * 20, "That adds the 20 factors; the chain rule multiplies them: 0.5 x 0.5 x ..."),
        (0.5, "That is one layer's factor; the gradient passes 20 of them."),
        (0.5**19, "That is 19 factors: count one per layer, 20 in all."),
        (1 - 0.5**20, "That is the fraction lost, not the fraction that arrives."),
    ],
    hint="Multiply 20 factors of 0.5 (0.5 ** 20).",
    success="0.5 ** 20 is about 1e-6: the product shrinks geometrically with depth, which is "
    "why a deep sigmoid stack's first layers barely learn. A block y = x + F(x) has the "
    "derivative 1 + F'(x): the 1 is a path on which nothing is multiplied away.",
)

limits_1202 = MultipleChoice(
    "FAQ 2 · What limits deep networks in practice?",
    "He et al.'s ResNet-1202 (19.4M parameters) reaches a training error below 0.1 % on "
    "CIFAR-10, yet its test error is 7.93 %, against ResNet-110's 6.43 % (1.7M parameters). "
    "What limits it?",
    {
        "a": "Vanishing gradients: 1,202 layers are too many for the gradient to reach the "
        "first ones.",
        "b": "Overfitting: far more parameters than 50,000 small images need, with only the "
        "regularisation that suited ResNet-110.",
        "c": "Its learning rate: the schedule tuned for 110 layers is too large for 1,202.",
        "d": "Option A shortcuts, which lose information by padding with zeros.",
    },
    answer="b",
    feedback={
        "a": "A training error below 0.1 % means the optimiser reached the first layers and "
        "fit the data: exercise 1c measures how the shortcuts keep the gradient on one scale.",
        "c": "It trained with the same schedule to a near-zero training error: the learning "
        "rate did its job; it is the test error that is worse.",
        "d": "ResNet-110 uses the same option A shortcuts and tests better; the difference "
        "between them is depth and parameters.",
    },
    success="The paper says so itself (Sec. 4.2): the 1,202-layer network is unnecessarily "
    "large for this small dataset, and stronger regularisation such as maxout or dropout "
    "might help. Compute cost is the other limit: depth adds multiply-adds linearly.",
)

first_learning_rate = MultipleChoice(
    "FAQ 3 · How do you choose a learning rate?",
    "An LR range test on your model shows the loss flat up to 0.01, falling fastest around "
    "0.1, lowest at 0.8 and exploding beyond 1. Which learning rates do you train and "
    "validate first?",
    {
        "a": "1.0: the largest rate before the loss explodes trains fastest.",
        "b": "About 0.03, 0.1 and 0.3, each for a few epochs, judged on a validation split.",
        "c": "1e-4: the smallest rate is the safest.",
        "d": "0.8 alone, the rate of the lowest loss on the curve.",
    },
    answer="b",
    feedback={
        "a": "1.0 is at the edge of divergence during a sweep of a few dozen steps; a long run "
        "there is likely to blow up.",
        "c": "On the flat start of the curve the weights barely move: the run wastes its "
        "budget. Safe is not the same as useful.",
        "d": "The lowest point of a sweep is measured while the rate is still growing, just "
        "before divergence; and one candidate decides nothing: validate several.",
    },
    success="Where the loss falls fastest the rate is useful; candidates a factor of 3 apart "
    "around it, judged on held-out data, turn the curve into a decision (exercise 3a), and a "
    "schedule then decays the chosen rate (3b).",
)


# --- 1b and 1c: gradients with and without the shortcut -------------------------------------
def _how_to_measure(residual, depth=DEPTH):
    flag = "" if residual else ", residual=False"
    return (
        "images, labels = nb12_faq.probe_batch(); rk.set_determinism(0); "
        f"model = rk.CifarResNet({depth}{flag}); norms = rk.gradient_norms(model, images, "
        "labels); ratio = norms[0][1] / norms[-1][1]"
    )


def _diagnose_ratio(value, measured, residual, depth=DEPTH):
    """Incorrect with the most likely reason why `value` is not `measured.ratio`."""
    name = f"ResNet-{depth}" if residual else f"plain-{depth}"
    if value <= 0:
        raise Incorrect(f"A ratio of two gradient norms is positive; received {value:g}.")
    if _close(value, 1.0 / measured.ratio):
        raise Incorrect(
            f"{value:.3g} is last / first. The exercise asks for the first layer's gradient "
            f"norm divided by the last layer's: norms[0][1] / norms[-1][1]."
        )
    if _close(value, measured.spread):
        raise Incorrect(
            f"{value:.3g} is the largest norm over the smallest. The exercise asks for the "
            "first layer (norms[0], the stem convolution) over the last (norms[-1], the dense "
            "layer)."
        )
    other = measure_gradient_ratio(depth, not residual)
    if _close(value, other.ratio):
        other_name = f"plain-{depth}" if residual else f"ResNet-{depth}"
        raise Incorrect(
            f"{value:.3g} is the ratio of {other_name}; this exercise measures {name} "
            f"(`rk.CifarResNet({depth}{'' if residual else ', residual=False'})`)."
        )
    if 1 / 3 < value / measured.ratio < 3:
        raise Incorrect(
            f"Close, but the checker measures {measured.ratio:.3g}. The weights depend on the "
            "random seed: call rk.set_determinism(0) right before building the model and use "
            f"the probe batch: {_how_to_measure(residual, depth)}."
        )
    raise Incorrect(
        f"The checker measures {measured.ratio:.3g} for {name}, not {value:.3g}. Measure it "
        f"like this: {_how_to_measure(residual, depth)}."
    )


@stub_aware_exercise("1b · Do gradients reach the first layer?")
def check_gradient_ratio(ratio):
    """Checks the first/last gradient-norm ratio of ResNet-56 at initialisation.

    The checker re-measures it with `measure_gradient_ratio(56, residual=True)`.

    Args:
        ratio: the learner's number, norms[0][1] / norms[-1][1].

    Returns:
        A `Verdict` (printed).
    """
    if isinstance(ratio, (list, tuple)) and ratio and isinstance(ratio[0], tuple):
        raise Incorrect(
            "That is the list of (layer, norm) pairs. Pass one number: the first layer's "
            "norm over the last layer's, norms[0][1] / norms[-1][1]."
        )
    value = _number(ratio, "The ratio")
    measured = measure_gradient_ratio(DEPTH, True)
    if not _close(value, measured.ratio):
        _diagnose_ratio(value, measured, residual=True)
    return (
        f"In ResNet-{DEPTH} the first layer's gradient is {measured.ratio:.2g} times the last "
        f"layer's, and all {len(measured.norms)} layers lie within a factor of "
        f"{measured.spread:.0f} of each other: through the shortcuts the gradient reaches the "
        "first layer on the same scale as the last."
    )


DEEP_DEPTH = 110
"""Depth of the ResNet whose gradients exercise 1c predicts and measures (twice 1b's 56)."""


@stub_aware_exercise("1c · Predict, then measure: double the depth")
def check_depth_doubling(answer):
    """Checks a prediction (one of `PREDICTIONS`) and the measured ratio of ResNet-110.

    Args:
        answer: `{"prediction": "vanish" | "similar" | "grow", "ratio_110": number}`,
            where ratio_110 is the first/last gradient norm of `CifarResNet(110)` measured
            as in exercise 1b.

    Returns:
        A `Verdict` (printed).
    """
    if _blank(answer):
        raise NotAttempted
    if not isinstance(answer, Mapping):
        raise Incorrect(
            'Answer with a dict: {"prediction": "vanish" | "similar" | "grow", '
            '"ratio_110": <your measured number>}.'
        )
    prediction = answer.get("prediction")
    if is_unattempted(prediction):
        raise Incorrect('Predict first: set "prediction" to "vanish", "similar" or "grow".')
    if prediction not in PREDICTIONS:
        raise Incorrect(
            f'"prediction" must be one of {", ".join(map(repr, PREDICTIONS))}; '
            f"received {prediction!r}."
        )
    if is_unattempted(answer.get("ratio_110")):
        raise Incorrect(
            'Now measure: set "ratio_110" to the first/last gradient-norm ratio of '
            f"ResNet-{DEEP_DEPTH}: {_how_to_measure(True, DEEP_DEPTH)}."
        )
    value = _number(answer["ratio_110"], '"ratio_110"')
    deep = measure_gradient_ratio(DEEP_DEPTH, True)
    if not _close(value, deep.ratio):
        if _close(value, measure_gradient_ratio(DEPTH, True).ratio):
            raise Incorrect(
                f"{value:.3g} is ResNet-{DEPTH}'s ratio (exercise 1b); this one measures "
                f"rk.CifarResNet({DEEP_DEPTH})."
            )
        _diagnose_ratio(value, deep, residual=True, depth=DEEP_DEPTH)
    truth = "grow" if deep.ratio > 10 else ("vanish" if deep.ratio < 0.1 else "similar")
    resnet = measure_gradient_ratio(DEPTH, True)
    plain = measure_gradient_ratio(DEEP_DEPTH, False)
    if prediction != truth:
        measured = (
            f"Your own measurement says otherwise: ResNet-{DEEP_DEPTH}'s first layer gets "
            f"{deep.ratio:.2g} times the last layer's gradient (ResNet-{DEPTH}: "
            f"{resnet.ratio:.2g})."
        )
        if prediction == "vanish":
            raise Incorrect(
                f"{measured} Twice the blocks would mean twice the factors if the gradient "
                "had to pass through every branch; but each block adds its input back, so the "
                "gradient reaches the first layer along the shortcuts, undiminished."
            )
        raise Incorrect(
            f"{measured} Growing is what the plain network does: plain-{DEEP_DEPTH}'s ratio "
            f"is {plain.ratio:.2g}. With shortcuts the layers' gradients stay on one scale."
        )
    return (
        f"ResNet-{DEEP_DEPTH}: {deep.ratio:.2g}, ResNet-{DEPTH}: {resnet.ratio:.2g}, while "
        f"plain-{DEEP_DEPTH}'s first layer gets {plain.ratio:.2g} times its last layer's "
        "gradient. Doubling the depth leaves a ResNet's gradients on one scale: that is why "
        "He et al. could train 110 and even 1,202 layers. ResNet's main advantage: the "
        "shortcuts keep very deep networks easy to optimise."
    )


# --- 2a: the cost of ResNet-44 ----------------------------------------------------------------
COST_DEPTH = 44
"""Depth of the network whose cost exercise 2a counts (n = 7; notebook 03 builds ResNet-32)."""

_PAPER_PARAMS = {20: "0.27M", 32: "0.46M", 44: "0.66M", 56: "0.85M", 110: "1.7M"}


@dataclasses.dataclass(frozen=True)
class _Cost:
    params: int
    macs: int
    bn_channels: int
    conv_filters: int
    dense_params: int
    dense_bias: int
    dense_macs: int
    strided_conv_macs: int


def _cost_of(model):
    import resnet_keras as rk

    layers = list(sublayers(model, recursive=True))
    bn_channels = sum(
        int(layer.gamma.shape[0])
        for layer in layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    convs = [layer for layer in layers if isinstance(layer, keras.layers.Conv2D)]
    dense = [layer for layer in layers if isinstance(layer, keras.layers.Dense)]
    strided = 0
    for conv in convs:
        if conv.strides[0] > 1:
            out_shape = conv.compute_output_shape(tuple(conv.get_build_config()["input_shape"]))
            in_channels = int(conv.get_build_config()["input_shape"][-1])
            strided += math.prod(out_shape[1:]) * math.prod(conv.kernel_size) * in_channels
    return _Cost(
        params=rk.count_trainable_params(model),
        macs=rk.count_macs(model),
        bn_channels=bn_channels,
        conv_filters=sum(conv.filters for conv in convs),
        dense_params=sum(int(np.prod(w.shape)) for layer in dense for w in layer.trainable_weights),
        dense_bias=sum(layer.units for layer in dense if layer.use_bias),
        dense_macs=sum(int(np.prod(layer.kernel.shape)) for layer in dense),
        strided_conv_macs=strided,
    )


@functools.lru_cache(maxsize=4)
def _resnet_cost(depth, shortcut):
    import resnet_keras as rk

    return _cost_of(rk.CifarResNet(depth, shortcut=shortcut))


def _params_mistakes(cost):
    option_b = _resnet_cost(COST_DEPTH, "B")
    return {
        "forgot BN's gamma and beta (2 per channel of every BN)": -2 * cost.bn_channels,
        "counted BN's moving mean and variance: they are statistics, not trainable "
        "parameters (model.count_params() includes them)": 2 * cost.bn_channels,
        "forgot the dense layer (64 x 10 weights + 10 biases)": -cost.dense_params,
        "forgot the dense layer's 10 biases": -cost.dense_bias,
        "counted a bias in every convolution: the convolutions before a BN have none, BN's "
        "beta already shifts": cost.conv_filters,
        "used option B (1x1 projections + BN where the channels double); option A's "
        "shortcut is parameter-free": option_b.params - cost.params,
    }


def _macs_mistakes(cost):
    option_b = _resnet_cost(COST_DEPTH, "B")
    return {
        "forgot the dense layer (64 x 10 multiply-adds)": -cost.dense_macs,
        "counted the two strided convolutions at their input resolution: a stride of 2 "
        "computes a quarter of the outputs": 3 * cost.strided_conv_macs,
        "counted option B's 1x1 projections; option A's shortcut costs no multiply-add": (
            option_b.macs - cost.macs
        ),
    }


def _explain(value, expected, mistakes, what):
    """Incorrect naming the mistake (or pair of mistakes) that gives `value`."""
    items = list(mistakes.items())
    for text, delta in items:
        if value == expected + delta:
            raise Incorrect(f"{what}: {value:,} means you {text}.")
    for i, (first, delta_1) in enumerate(items):
        for second, delta_2 in items[i + 1 :]:
            if delta_1 + delta_2 != 0 and value == expected + delta_1 + delta_2:
                raise Incorrect(
                    f"{what}: {value:,} means two slips: you {first}; and you {second}."
                )


@stub_aware_exercise("2a · The cost of ResNet-44, by hand")
def check_resnet44_cost(answer):
    """Checks hand-counted trainable parameters and multiply-adds of ResNet-44 (option A).

    Compared with `rk.count_trainable_params` and `rk.count_macs` of
    `rk.CifarResNet(44)`; wrong numbers are matched against the typical slips
    (BN's gamma/beta forgotten, moving statistics counted, dense layer forgotten,
    option B, FLOPs instead of multiply-adds, strides ignored).

    Args:
        answer: `{"params": int, "macs": int}` (or a `(params, macs)` pair).

    Returns:
        A `Verdict` (printed).
    """
    if _blank(answer):
        raise NotAttempted
    if isinstance(answer, (tuple, list)) and len(answer) == 2:
        answer = {"params": answer[0], "macs": answer[1]}
    if not isinstance(answer, Mapping) or not {"params", "macs"} <= set(answer):
        raise Incorrect('Answer with a dict: {"params": <int>, "macs": <int>}.')
    cost = _resnet_cost(COST_DEPTH, "A")
    problems = []
    for key, expected, mistakes, what in (
        ("params", cost.params, _params_mistakes, "Parameters"),
        ("macs", cost.macs, _macs_mistakes, "Multiply-adds"),
    ):
        if is_unattempted(answer[key]):
            problems.append(f'{what}: "{key}" is still missing.')
            continue
        value = _number(answer[key], f'"{key}"')
        if value != int(value):
            problems.append(f"{what}: a count is a whole number; received {value:g}.")
            continue
        value = int(value)
        if value == expected:
            continue
        try:
            if key == "macs" and value == 2 * expected:
                raise Incorrect(
                    f"{what}: {value:,} counts FLOPs (a multiply and an add each); the paper's "
                    "Table 1 'FLOPs' are multiply-adds: count each once."
                )
            _explain(value, expected, mistakes(cost), what)
            if key == "params" and abs(value - expected) <= 0.01 * expected:
                hint = (
                    f" (the paper's {_PAPER_PARAMS[COST_DEPTH]} is rounded: count every layer "
                    "exactly)"
                    if value % 1000 == 0
                    else ""
                )
                raise Incorrect(
                    f"{what}: {value:,} is within 1% but not exact{hint}. Per layer: a 3x3 "
                    "convolution has 3*3*c_in*c_out weights and no bias, each BN 2*c "
                    "(gamma, beta), the dense layer 64*10 + 10."
                )
            direction = "too high" if value > expected else "too low"
            raise Incorrect(
                f"{what}: {value:,} is {direction} by about "
                f"{abs(value - expected) / expected:.0%}. "
                + (
                    f"Count the stem, 3 stages of {(COST_DEPTH - 2) // 6} blocks with two 3x3 "
                    "convolutions each (16, 32, 64 filters), the BNs and the dense layer."
                    if key == "params"
                    else "A convolution costs (output height x width x c_out) x (3*3*c_in); "
                    "stages run at 32x32, 16x16 and 8x8."
                )
            )
        except Incorrect as problem:
            problems.append(str(problem))
    if problems:
        raise Incorrect(" ".join(problems))
    return (
        f"ResNet-{COST_DEPTH} has {cost.params:,} trainable parameters (the paper's "
        f"{_PAPER_PARAMS[COST_DEPTH]}) and "
        f"{cost.macs:,} multiply-adds per 32x32 image. Each stage costs about the same "
        "multiply-adds (half the resolution, twice the channels) while its parameters "
        "quadruple: depth adds compute linearly, and the cost to train grows with it."
    )


# --- 2b: overfit, then shrink the gap ---------------------------------------------------------
MIN_GAP_SHRINK = 0.03
"""The gap must shrink by at least this much (and by a tenth of itself): 6 of 200 images."""


OVERFIT_DATA = dict(batch_size=32, train_size=64, validation_size=200)
"""The shipped digits that exercise 2b trains on and the checker measures on."""


def _measure_run(model, name):
    """The checker's own accuracies of a model the learner trained: no number is typed in."""
    from resnet_keras.data import load
    from resnet_keras.training import evaluate

    if not isinstance(model, keras.Model):
        hint = (
            " Return the model itself: the checker measures the accuracies, so that no "
            "number can be typed in."
            if isinstance(model, Mapping)
            else ""
        )
        raise Incorrect(
            f"experiment({name == 'regularized'}) must return the trained keras.Model; "
            f"received {type(model).__name__}.{hint}"
        )
    clean = load("digits", augment=False, **OVERFIT_DATA)
    if model.output_shape != (None, clean.info.num_classes):
        raise Incorrect(
            f"The {name} model outputs {model.output_shape}; build it with "
            f"nb12_faq.small_resnet({clean.info.num_classes}) on the 16x16 digits."
        )
    return {
        "train_accuracy": evaluate(model, clean.train)["accuracy"],
        "val_accuracy": evaluate(model, clean.validation)["accuracy"],
    }


@stub_aware_exercise("2b · Overfit, then shrink the gap")
def check_overfitting(answer):
    """Checks that a baseline overfits and that regularisation closes the gap honestly.

    Args:
        answer: a function `experiment(regularize: bool) -> keras.Model` that trains a
            model on `OVERFIT_DATA` and returns it; the checker runs it for both settings
            and measures both models itself (inference mode, the training accuracy on the
            training images without augmentation). A stub returning None is "not
            attempted"; numbers are refused, since numbers can be typed in.

    Returns:
        A `Verdict` (printed).
    """
    if _blank(answer):
        raise NotAttempted
    if not callable(answer) or isinstance(answer, (Mapping, type)):
        raise Incorrect(
            "Answer with your function experiment(regularize), which trains a model and "
            f"returns it; received {type(answer).__name__}. The checker runs it and measures "
            "the accuracies itself."
        )
    baseline = answer(False)
    if baseline is None:
        raise NotAttempted
    base = _measure_run(baseline, "baseline")
    regularized = answer(True)
    if regularized is baseline:
        raise Incorrect(
            "experiment(True) returned the same model object as experiment(False): build and "
            "train a new model in each call."
        )
    reg = _measure_run(regularized, "regularized")
    return _judge_overfitting(base, reg)


def _judge_overfitting(base, reg):
    """The verdict on two runs' measured accuracies (dicts of train_accuracy, val_accuracy)."""
    for name, scores in (("baseline", base), ("regularized", reg)):
        if scores["val_accuracy"] > scores["train_accuracy"] + 0.1:
            raise Incorrect(
                f"The {name} run's validation accuracy ({scores['val_accuracy']:.0%}) is far "
                f"above its training accuracy ({scores['train_accuracy']:.0%}) on the "
                'exercise\'s 64 training images: train on load("digits", batch_size=32, '
                "train_size=64, validation_size=200, ...).train, not on other images."
            )
    base_gap = base["train_accuracy"] - base["val_accuracy"]
    reg_gap = reg["train_accuracy"] - reg["val_accuracy"]
    if base["train_accuracy"] < 0.9:
        raise Incorrect(
            f"The baseline fits only {base['train_accuracy']:.0%} of its training images: it "
            "does not overfit yet. Use fewer images (e.g. 64), no augmentation, no weight decay, "
            "and train until the training accuracy reaches about 100%."
        )
    if base_gap < 0.05:
        raise Incorrect(
            f"The baseline's gap is only {base_gap:.0%} (train {base['train_accuracy']:.0%}, "
            f"validation {base['val_accuracy']:.0%}): there is nothing to close. Train on fewer "
            "images so that the model can memorise them."
        )
    if base_gap - reg_gap < max(MIN_GAP_SHRINK, 0.1 * base_gap):
        raise Incorrect(
            f"The gap went from {base_gap:.0%} to {reg_gap:.0%}: not enough. Augmentation "
            "(`load(..., augment=True)`) needs more epochs than the baseline because every "
            "epoch shows new versions of the images; weight decay must be strong on so few "
            "images (e.g. 5e-3, not the paper's 1e-4). Both together work best."
        )
    if reg["val_accuracy"] < base["val_accuracy"] - 0.03:
        raise Incorrect(
            f"The gap shrank ({base_gap:.0%} -> {reg_gap:.0%}) but validation accuracy fell "
            f"({base['val_accuracy']:.0%} -> {reg['val_accuracy']:.0%}): the model now fits "
            "less (underfitting), it does not generalise better. Regularise less or train "
            "longer; the goal is a higher validation accuracy, the smaller gap follows."
        )
    return (
        f"The checker ran your experiment and measured both models: gap {base_gap:.0%} -> "
        f"{reg_gap:.0%}, validation accuracy {base['val_accuracy']:.0%} -> "
        f"{reg['val_accuracy']:.0%}. A deep network memorises "
        "a small training set; augmentation and weight decay make memorising harder, and "
        "here that shrank the gap without costing validation accuracy. Notebook 05 found "
        "that on a tiny budget they do not always raise it: more data is the surest cure."
    )


# --- 3a: choose a learning rate ---------------------------------------------------------------
def finder_region(finder):
    """The useful LRs of an LR range test: from where the loss starts falling to its minimum.

    `low` is the first LR at which the smoothed loss has fallen by a tenth of its
    total drop below the starting plateau (the median of the first tenth of the
    sweep); `high` is the LR of the lowest smoothed loss, past which the loss
    heads for divergence.

    Args:
        finder: an `LRFinderResult` (or anything with `learning_rates` and
            `smoothed_losses`).

    Returns:
        `(low, high)`.

    Raises:
        ValueError: if the curve has fewer than 5 points or never falls.

    Examples:

    >>> from resnet_keras.training import LRFinderResult
    >>> lrs = list(np.logspace(-4, 0, 9))
    >>> losses = [2.3, 2.3, 2.3, 2.2, 1.8, 1.2, 1.0, 3.0, 9.0]
    >>> low, high = finder_region(LRFinderResult(lrs, losses, losses, 0.01, "steepest"))
    >>> round(low, 4), round(high, 4)
    (0.01, 0.1)
    """
    lrs = np.asarray(finder.learning_rates, dtype="float64")
    losses = np.asarray(finder.smoothed_losses, dtype="float64")
    if lrs.ndim != 1 or lrs.shape != losses.shape or len(lrs) < 5:
        raise ValueError(
            "The LR finder curve must have at least 5 points of (learning rate, smoothed loss); "
            f"received shapes {lrs.shape} and {losses.shape}."
        )
    finite = np.where(np.isfinite(losses), losses, np.inf)
    lowest = int(np.argmin(finite))
    plateau = float(np.median(losses[: max(3, len(losses) // 10)]))
    drop = plateau - float(finite[lowest])
    if lowest == 0 or drop <= 0.02 * abs(plateau):
        raise ValueError(
            "The smoothed loss never falls below its starting level: sweep a wider range "
            "(min_lr=1e-5, max_lr=10) or more steps."
        )
    falling = np.nonzero(finite[: lowest + 1] < plateau - 0.1 * drop)[0]
    return float(lrs[falling[0]]), float(lrs[lowest])


LR_DATA = dict(batch_size=32, train_size=256, validation_size=200, augment=False)
"""The shipped digits of exercise 3a: the learner's `train` function trains on them."""

LR_SEEDS = (0, 1)
"""The seeds the checker re-trains every candidate with; the mean over them is its score."""

LR_TOLERANCE = 0.025
"""A choice within this of the best candidate's mean validation accuracy is accepted.

One run is a poor judge here. Measured with the reference solution (3 epochs on 256 digits,
candidates 0.036, 0.11, 0.36), seeds 0 to 3 gave 119-153, 35-163 and 20-36 of the 200
validation digits: a single run can rank the first two either way. The mean over seeds 0 and 1
ranks them 150, 99 and 28. Five images (0.025) is the least difference such a mean is trusted
to show, so a choice this close to the best counts as the best.
"""


def _validation_scores(train, candidates):
    """The mean validation accuracy over `LR_SEEDS` of `train(lr)`'s model, per candidate."""
    import resnet_keras as rk
    from resnet_keras.data import load
    from resnet_keras.training import evaluate

    validation = load("digits", **LR_DATA).validation
    scores = {}
    for learning_rate in candidates:
        accuracies = []
        for seed in LR_SEEDS:
            rk.set_determinism(seed)
            model = train(learning_rate)
            if not isinstance(model, keras.Model):
                raise Incorrect(
                    f"train({learning_rate:g}) must return the trained keras.Model; received "
                    f"{type(model).__name__}. The checker measures it: numbers can be typed in."
                )
            accuracies.append(evaluate(model, validation)["accuracy"])
        scores[learning_rate] = float(np.mean(accuracies))
    return scores


@stub_aware_exercise("3a · Choose a learning rate")
def check_learning_rate(answer):
    """Checks an LR chosen with an LR range test and justified on a validation split.

    The checker does not take the learner's accuracies: it calls `train(lr)` for every
    candidate with each of `LR_SEEDS`, measures the returned models on the validation
    split of `LR_DATA` and averages, so one lucky run on 200 images decides nothing.

    Args:
        answer: `{"learning_rate": chosen, "candidates": [lr, ...], "train": train,
            "finder": LRFinderResult}`: at least 3 candidates spanning a decade, and
            `train(learning_rate) -> keras.Model`, which builds a fresh model (the
            checker seeds right before each call) and trains it.

    Returns:
        A `Verdict` (printed).
    """
    if _blank(answer):
        raise NotAttempted
    if not isinstance(answer, Mapping):
        raise Incorrect(
            'Answer with a dict {"learning_rate": ..., "candidates": [...], "train": train, '
            '"finder": <result of find_learning_rate>}.'
        )
    finder = answer.get("finder")
    if is_unattempted(finder) or not all(
        hasattr(finder, name) for name in ("learning_rates", "smoothed_losses")
    ):
        raise Incorrect(
            'Run the LR range test first and put its result in "finder": '
            "finder = find_learning_rate(model, data.train, ...)."
        )
    train = answer.get("train")
    if is_unattempted(train) or not callable(train):
        raise Incorrect(
            'Give the checker your training function as "train": train(learning_rate) builds a '
            "fresh small_resnet, trains it and returns it. The checker re-trains every "
            "candidate over two seeds and measures the models itself; typed accuracies are "
            "not evidence."
        )
    candidates = answer.get("candidates")
    if is_unattempted(candidates) or not isinstance(candidates, (list, tuple)):
        raise Incorrect('List the learning rates you compared in "candidates": [lr, lr, lr].')
    candidates = sorted({_number(lr, f"The candidate {lr!r}") for lr in candidates})
    if is_unattempted(answer.get("learning_rate")):
        raise Incorrect('Set "learning_rate" to the LR you choose.')
    chosen = _number(answer["learning_rate"], '"learning_rate"')
    region = _check_candidates(chosen, candidates, finder)
    return _judge_learning_rate(chosen, _validation_scores(train, candidates), region)


def _check_candidates(chosen, candidates, finder):
    """What can be judged before any training: count, spread, the choice among them, range.

    Returns the finder's useful region `(low, high)`.
    """
    if len(candidates) < 3:
        raise Incorrect(
            f"You compared {len(candidates)} LR(s); compare at least 3, spread on a log scale "
            "around the finder's suggestion (e.g. suggestion / 10, / 3 and x 1)."
        )
    if candidates[0] <= 0:
        raise Incorrect("Learning rates are positive numbers.")
    spread = candidates[-1] / candidates[0]
    if spread < 10 - 1e-9:
        raise Incorrect(
            f"Your candidates span only a factor of {spread:.3g}. LRs act on a log scale: try "
            "at least a decade (e.g. 0.003, 0.01, 0.03)."
        )
    if not any(math.isclose(lr, chosen, rel_tol=1e-6) for lr in candidates):
        raise Incorrect(
            f"You chose {chosen:g} but did not validate it. Choose one of the LRs you "
            f"compared ({', '.join(f'{lr:g}' for lr in candidates)}): the validation results "
            "are the evidence."
        )
    try:
        low, high = finder_region(finder)
    except ValueError as error:
        raise Incorrect(str(error)) from None
    if chosen > high * 1.0001:
        raise Incorrect(
            f"{chosen:g} lies past the minimum of your LR-finder curve ({high:.2g}): there the "
            "loss is already heading for divergence, so a longer run at this LR is likely to "
            f"blow up. Validate candidates between {low:.2g} and {high:.2g}."
        )
    if chosen < low / 2:
        raise Incorrect(
            f"{chosen:g} lies on the flat start of your LR-finder curve (the loss only starts "
            f"falling near {low:.2g}): training at it barely moves. Validate candidates between "
            f"{low:.2g} and {high:.2g}."
        )
    return low, high


def _judge_learning_rate(chosen, scores, region):
    """The verdict on the checker's mean validation accuracy per candidate LR.

    `region` is the finder's `(low, high)`, which the message quotes.
    """
    low, high = region
    best = max(scores, key=scores.get)
    mine = next(score for lr, score in scores.items() if math.isclose(lr, chosen, rel_tol=1e-6))
    table = ", ".join(f"{lr:g}: {score:.1%}" for lr, score in sorted(scores.items()))
    if mine < scores[best] - LR_TOLERANCE:
        raise Incorrect(
            f"Re-trained over {len(LR_SEEDS)} seeds, {best:g} is best ({scores[best]:.1%} mean "
            f"validation accuracy), not {chosen:g} ({mine:.1%}): {table}. The finder's "
            "suggestion is a starting point; the validation set decides, over more than one "
            "run."
        )
    return (
        f"Re-trained over {len(LR_SEEDS)} seeds, mean validation accuracy {table}: {chosen:g} "
        f"is the best or within the noise of 200 images of it, and lies in the useful range of "
        f"the LR range test ({low:.2g} to {high:.2g}, where the loss falls). The seed "
        "article's advice made concrete: try values, judge them on held-out data, then decay."
    )


# --- 3b: a decay schedule ---------------------------------------------------------------------
def _schedule_values(schedule, total_steps):
    from resnet_keras.training.schedules import schedule_values

    return schedule_values(schedule, total_steps)


def _recognise(values, peak, total_steps):
    def matches(reference):
        # A boundary may sit one step later (PiecewiseConstantDecay keeps the old value *at*
        # the boundary), so a few mismatched steps are allowed.
        wrong = ~np.isclose(values, reference, rtol=1e-3, atol=1e-3 * peak)
        return wrong.sum() <= 2 + total_steps // 200

    steps = np.arange(total_steps)
    paper = np.where(
        steps < round(0.5 * total_steps),
        peak,
        np.where(steps < round(0.75 * total_steps), peak / 10, peak / 100),
    )
    if matches(paper):
        return "the paper's step decay (/10 at 50% and 75% of training)"
    for length in (total_steps, total_steps - 1):
        if matches(0.5 * peak * (1 + np.cos(np.pi * np.minimum(steps / length, 1.0)))):
            return "a cosine decay"
    return "a decaying schedule"


@stub_aware_exercise("3b · A learning-rate schedule that decays")
def check_lr_schedule(schedule, peak_lr=0.1, total_steps=1000):
    """Checks a `keras.optimizers.schedules.LearningRateSchedule` over a run.

    The schedule must reach `peak_lr` at the start (a warm-up of at most 10% of
    the run is accepted), never rise again afterwards, drop its first big step
    no earlier than 10% of the run, and end at `peak_lr / 10` or below.

    Args:
        schedule: the learner's schedule.
        peak_lr: the LR it must start at (the one chosen in exercise 3a).
        total_steps: optimizer steps of the run.

    Returns:
        A `Verdict` (printed).

    Examples:

    >>> import keras
    >>> schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
    ...     [500, 750], [0.05, 0.005, 0.0005])
    >>> check_lr_schedule(schedule, 0.05, 1000, quiet=True).status
    'correct'
    """
    peak_lr = _number(peak_lr, "`peak_lr`")
    if peak_lr <= 0:
        raise Incorrect(f"`peak_lr` must be positive; received {peak_lr:g}.")
    if isinstance(total_steps, bool) or not isinstance(total_steps, numbers.Integral):
        raise Incorrect(f"`total_steps` must be an integer; received {total_steps!r}.")
    if total_steps < 20:
        raise Incorrect(f"`total_steps` must be at least 20; received {total_steps}.")
    if isinstance(schedule, numbers.Real) and not isinstance(schedule, bool):
        raise Incorrect(
            f"{schedule:g} is a constant learning rate: nothing decays. Return a schedule, e.g. "
            "keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values) or "
            "keras.optimizers.schedules.CosineDecay(peak_lr, total_steps)."
        )
    if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        raise Incorrect(
            "Return a keras.optimizers.schedules.LearningRateSchedule (what a Keras optimizer "
            f"takes as learning_rate=); received {type(schedule).__name__}."
        )
    values = _schedule_values(schedule, int(total_steps))
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise Incorrect("The schedule gives negative or non-finite learning rates.")
    top = int(np.argmax(values))
    maximum = float(values[top])
    if top > 0.1 * total_steps:
        raise Incorrect(
            f"The LR keeps rising until step {top} ({top / total_steps:.0%} of the run). A "
            "warm-up should be short (at most 10% of the run); a decay schedule then only "
            "goes down."
        )
    if not math.isclose(maximum, peak_lr, rel_tol=1e-3):
        start = float(values[0])
        hint = (
            " (the paper's 0.1, not your chosen LR)"
            if math.isclose(start, 0.1, rel_tol=1e-5)
            else ""
        )
        raise Incorrect(
            f"The schedule peaks at {maximum:.4g}, starting at {start:.4g}{hint}; it must start "
            f"at the LR you chose, peak_lr = {peak_lr:g}."
        )
    after = values[top:]
    rises = np.nonzero(np.diff(after) > 1e-6 * peak_lr)[0]
    if len(rises):
        step = top + int(rises[0]) + 1
        raise Incorrect(
            f"The LR rises again at step {step} ({values[step - 1]:.3g} -> {values[step]:.3g}). "
            "Restarts and cycles have their uses, but this exercise asks for a decay."
        )
    drops = np.nonzero(after[1:] < 0.5 * after[:-1])[0]
    if len(drops) and top + drops[0] + 1 < 0.1 * total_steps:
        step = top + int(drops[0]) + 1
        raise Incorrect(
            f"The first drop comes at step {step}, {step / total_steps:.0%} of the run. "
            "Schedules count optimizer steps, not epochs: boundaries such as [50, 75] must be "
            f"given in steps, e.g. [{total_steps // 2}, {3 * total_steps // 4}] for "
            f"{total_steps} steps."
        )
    final = float(values[-1])
    if final > peak_lr / 10 * (1 + 1e-3):
        raise Incorrect(
            f"The LR ends at {final:.3g}, {final / peak_lr:.0%} of the start: it barely decays. "
            "End at a tenth of the start or below (the paper ends at a hundredth)."
        )
    kind = _recognise(values, peak_lr, int(total_steps))
    note = ""
    try:
        schedule.get_config()
    except NotImplementedError:
        note = " Tip: give your schedule a get_config() so a model compiled with it can be saved."
    return (
        f"{kind[0].upper()}{kind[1:]}: from {peak_lr:g} down to {final:.3g} over {total_steps} "
        "steps. Large steps early to make progress, small steps late to settle into a minimum."
        + note
    )
