"""Checked exercises of notebook 07: the seed article's FAQ, answered with code and numbers.

The article ends with three questions. Each becomes exercises whose answers are
code or numbers that a checker verifies, with feedback that explains the
typical mistakes:

1. "What is ResNet's main advantage?"
   `check_residual_block` (write the missing line of a residual block),
   `check_gradient_ratio` (measure how the gradient reaches the first layer of
   ResNet-56), `check_shortcut_removal` (predict, then measure, what removing
   the shortcuts does).
2. "What limits deep networks in practice?"
   `check_resnet44_cost` (parameters and multiply-adds of ResNet-44 by hand),
   `check_overfitting` (overfit a small subset, then shrink the gap).
3. "How do you choose a learning rate?"
   `check_learning_rate` (LR range test plus a validation comparison),
   `check_lr_schedule` (a decay schedule that starts at the chosen LR).

Every checker prints a verdict and returns a `Verdict`; it never raises on a
wrong or missing answer. `None` (or an unchanged stub that still returns
`None`) means "not attempted yet". Numbers that a checker recomputes (the
gradient ratios, the cost of ResNet-44) are deterministic: the checker seeds
with `resnet_keras.set_determinism(0)` right before it builds a model, so it
reseeds the global random state.

Examples:

>>> from resnet_keras.course.exercises import nb07_faq
>>> nb07_faq.check_lr_schedule(None).status
⏳ 3b · A learning-rate schedule that decays: not attempted yet
'not attempted'
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
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

__all__ = [
    "DEPTH",
    "PREDICTIONS",
    "check_gradient_ratio",
    "check_learning_rate",
    "check_lr_schedule",
    "check_overfitting",
    "check_residual_block",
    "check_resnet44_cost",
    "check_shortcut_removal",
    "finder_region",
    "measure_gradient_ratio",
    "probe_batch",
    "small_resnet",
]

DEPTH = 56
"""Depth of the ResNet / plain network whose gradients exercises 1b and 1c measure."""

PREDICTIONS = ("vanish", "similar", "grow")
"""The choices of exercise 1c: what the first layer's gradient does without shortcuts."""

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


# --- 1a: the missing line of a residual block -----------------------------------------------
FILTERS = 4
_SUBLAYERS = ("conv1", "bn1", "conv2", "bn2")


def _bn_reference(values, bn, training, batch_axes=(0, 1, 2)):
    gamma = np.asarray(keras.ops.convert_to_numpy(bn.gamma), "float64")
    beta = np.asarray(keras.ops.convert_to_numpy(bn.beta), "float64")
    if training:
        mean = values.mean(axis=batch_axes)
        variance = values.var(axis=batch_axes)
    else:
        mean = np.asarray(keras.ops.convert_to_numpy(bn.moving_mean), "float64")
        variance = np.asarray(keras.ops.convert_to_numpy(bn.moving_variance), "float64")
    return gamma * (values - mean) / np.sqrt(variance + bn.epsilon) + beta


def _conv_reference(conv, values):
    return np.asarray(keras.ops.convert_to_numpy(conv(values.astype("float32"))), dtype="float64")


def _relu(values):
    return np.maximum(values, 0.0)


def _block_candidates(layer, x, training):
    """What common versions of the block compute, as float64 arrays."""
    x = x.astype("float64")
    hidden = _relu(_bn_reference(_conv_reference(layer.conv1, x), layer.bn1, training))
    before_bn = _conv_reference(layer.conv2, hidden)
    residual = _bn_reference(before_bn, layer.bn2, training)
    return {
        "correct": _relu(residual + x),
        "no addition": _relu(residual),
        "no final ReLU": residual + x,
        "addition after the ReLU": _relu(residual) + x,
        "addition before the last BN": _relu(_bn_reference(before_bn + x, layer.bn2, training)),
        "shortcut only": _relu(x),
    }


_BLOCK_MISTAKES = {
    "no addition": (
        "Your block returns ReLU(F(x)): the shortcut is missing, so this is a plain block. "
        "The missing line adds the input back: `return keras.ops.relu(residual + inputs)`. "
        "Without it a deep stack must learn the identity through two convolutions, which is "
        "what makes plain-56 train worse than plain-20 (He et al. 2016, Fig. 1)."
    ),
    "no final ReLU": (
        "Your block returns F(x) + x without the ReLU after the addition. The original block "
        "(He et al. 2016, Fig. 2 and Eq. 1) applies ReLU after the addition; only the "
        "pre-activation block of 'Identity Mappings' leaves the sum untouched, and it moves "
        "BN and ReLU in front of the convolutions instead. Return ReLU(F(x) + x)."
    ),
    "addition after the ReLU": (
        "Your block returns ReLU(F(x)) + x: the ReLU is applied before the addition. Add "
        "first, then apply the ReLU: ReLU(F(x) + x)."
    ),
    "addition before the last BN": (
        "Your block adds x before the second batch normalisation, so BN rescales the "
        "shortcut too and the identity path is no longer an identity. Add x to F(x) after "
        "bn2, then apply the ReLU."
    ),
    "shortcut only": (
        "Your block returns ReLU(x) and throws the residual branch F(x) away. Return "
        "ReLU(F(x) + x), where `residual` holds F(x)."
    ),
}


def _match(output, candidates):
    for name, reference in candidates.items():
        if output.shape == reference.shape and np.allclose(output, reference, atol=1e-4, rtol=1e-4):
            return name
    return None


def _to_array(value, what):
    if value is None:
        raise Incorrect(f"{what} returned None; it must return the block's output tensor.")
    try:
        return np.asarray(keras.ops.convert_to_numpy(value), dtype="float64")
    except Exception as error:  # noqa: BLE001 - anything but a tensor ends up here
        raise Incorrect(
            f"{what} returned {type(value).__name__}, not a tensor: return the block's output."
        ) from error


def _bn_state(layer):
    return [
        (variable, keras.ops.convert_to_numpy(variable).copy())
        for name in ("bn1", "bn2")
        for variable in getattr(layer, name).variables
    ]


def _restore(state):
    for variable, value in state:
        variable.assign(value)


@stub_aware_exercise(
    "1a · The missing line of a residual block",
    success=(
        "y = ReLU(F(x) + x) in training and in inference mode, and `training` reaches both "
        "batch normalisations. The shortcut costs no parameter and one addition: the block "
        "only has to learn a correction F(x) to the identity, so extra blocks do not make "
        "the network harder to optimise (He et al. 2016, Sec. 3.1)."
    ),
)
def check_residual_block(block):
    """Checks the learner's residual block numerically (y = ReLU(F(x) + x), `training` to BN).

    Args:
        block: the learner's Layer class (the stub `MyResidualBlock`, constructed as
            `MyResidualBlock(filters)` with sub-layers `conv1, bn1, conv2, bn2`), or an
            instance of it. A stub whose `call` still returns None is "not attempted".

    Returns:
        A `Verdict` (printed).

    Examples:

    >>> from resnet_keras.course.exercises.solutions import nb07_faq as solutions
    >>> check_residual_block(solutions.ResidualBlock, quiet=True).status
    'correct'
    """
    block_class = block if isinstance(block, type) else type(block)
    if not issubclass(block_class, keras.layers.Layer):
        raise Incorrect(
            "Pass the block's class, a keras.layers.Layer subclass: "
            f"`check_residual_block(MyResidualBlock)`; received {type(block).__name__}."
        )
    try:
        layer = block_class(FILTERS)
    except TypeError as error:
        raise Incorrect(
            f"`{block_class.__name__}(filters)` failed ({error}): keep the stub's "
            "`__init__(self, filters, **kwargs)`."
        ) from error

    x = np.random.default_rng(7).normal(size=(8, 6, 6, FILTERS)).astype("float32")
    if layer(x, training=False) is None:
        raise NotAttempted
    missing = [name for name in _SUBLAYERS if not hasattr(layer, name)]
    if missing:
        raise Incorrect(
            f"The block has no attribute(s) {', '.join(missing)}: keep the sub-layers the stub "
            "creates (conv1, bn1, conv2, bn2) so the checker can compute F(x) itself."
        )
    for name in ("bn1", "bn2"):
        if not isinstance(getattr(layer, name), keras.layers.BatchNormalization):
            raise Incorrect(f"`{name}` must be a keras.layers.BatchNormalization, as in the stub.")

    # Random BN parameters and statistics make every common mistake give a different output,
    # and make training mode (batch statistics) differ from inference (moving statistics).
    rng = np.random.default_rng(11)
    for name in ("bn1", "bn2"):
        bn = getattr(layer, name)
        channels = bn.gamma.shape[0]
        bn.gamma.assign(rng.uniform(0.5, 1.5, channels).astype("float32"))
        bn.beta.assign(rng.normal(0.0, 0.5, channels).astype("float32"))
        bn.moving_mean.assign(rng.normal(0.0, 0.5, channels).astype("float32"))
        bn.moving_variance.assign(rng.uniform(0.5, 2.0, channels).astype("float32"))
    state = _bn_state(layer)
    moving_mean_before = keras.ops.convert_to_numpy(layer.bn1.moving_mean).copy()
    training_refs = _block_candidates(layer, x, training=True)
    inference_refs = _block_candidates(layer, x, training=False)

    inference_out = _to_array(layer(x, training=False), "`block(x, training=False)`")
    _restore(state)
    training_out = _to_array(layer(x, training=True), "`block(x, training=True)`")
    moving_mean_after = keras.ops.convert_to_numpy(layer.bn1.moving_mean)
    _restore(state)

    if training_out.shape != x.shape:
        raise Incorrect(
            f"The block maps a {x.shape} input to {training_out.shape}; a residual block "
            "with an identity shortcut keeps the shape (F(x) and x must be addable)."
        )
    in_training = _match(training_out, training_refs)
    in_inference = _match(inference_out, inference_refs)
    if in_training == in_inference and in_training in _BLOCK_MISTAKES:
        raise Incorrect(_BLOCK_MISTAKES[in_training])
    if in_training is None and _match(training_out, inference_refs) == "correct":
        raise Incorrect(
            "With training=True your block normalises with the moving statistics, as in "
            "inference: batch normalisation never sees `training=True`, so it neither uses "
            "the batch statistics nor updates its moving averages. Pass `training=training` "
            "to bn1 and bn2 (not `training=False`)."
        )
    if in_inference is None and _match(inference_out, training_refs) == "correct":
        raise Incorrect(
            "With training=False your block still normalises with the batch statistics: "
            "`training=True` is hard-coded somewhere. At inference BN must use its moving "
            "averages, otherwise predictions depend on the other images in the batch. Pass "
            "`training=training`."
        )
    if in_training != "correct" or in_inference != "correct":
        mistake = in_training if in_training in _BLOCK_MISTAKES else in_inference
        if mistake in _BLOCK_MISTAKES:
            raise Incorrect(_BLOCK_MISTAKES[mistake])
        worst = float(np.max(np.abs(training_out - training_refs["correct"])))
        raise Incorrect(
            "The block's output is not ReLU(F(x) + x) with F(x) = bn2(conv2(ReLU(bn1(conv1(x))))) "
            f"(largest difference {worst:.3g}). Keep the stub's F(x) as it is and write one "
            "line: `return keras.ops.relu(residual + inputs)`."
        )

    # Keras 3 hands `training` down to nested layers through its call context, so a block
    # that forgets to pass it still works when called as block(x, training=...). Calling
    # `call` directly, outside that context, shows what the block itself does.
    if "training" not in inspect.signature(layer.call).parameters:
        raise Incorrect(
            "`call` has no `training` argument. Keep the stub's signature "
            "`call(self, inputs, training=None)` and pass `training=training` to bn1 and bn2."
        )
    direct = _to_array(layer.call(x, training=True), "`block.call(x, training=True)`")
    _restore(state)
    if _match(direct, inference_refs) == "correct":
        raise Incorrect(
            "Your `call` does not pass `training` to batch normalisation. Keras 3 rescues "
            "this as long as the block is called as block(x, training=True): `Layer.__call__` "
            "hands the value to nested layers through its call context, which is why your "
            "outputs above were right. But `call` itself ignores its argument: run directly "
            "(as the checker just did), BN normalises with its moving statistics while "
            "training and never updates them, a bug seen in public issue trackers. Pass "
            "`training=training` to bn1 and bn2 explicitly."
        )
    if np.allclose(moving_mean_after, moving_mean_before):
        raise Incorrect(
            "A training step left bn1's moving mean unchanged: batch normalisation must "
            "update its moving statistics when `training=True`."
        )
    try:
        clone = block_class.from_config(layer.get_config())
    except Exception as error:  # noqa: BLE001 - any failure means the block cannot be saved
        raise Incorrect(
            f"`{block_class.__name__}.from_config(block.get_config())` failed ({error}): keep "
            "the stub's `get_config`, which records `filters`, so a model using the block "
            "can be saved and reloaded."
        ) from error
    if getattr(clone, "filters", FILTERS) != FILTERS:
        raise Incorrect("`get_config` must record `filters` so that a reloaded block is the same.")
    return None


# --- 1b and 1c: gradients with and without the shortcut -------------------------------------
def _how_to_measure(residual):
    flag = "" if residual else ", residual=False"
    return (
        "images, labels = nb07_faq.probe_batch(); rk.set_determinism(0); "
        f"model = rk.CifarResNet({DEPTH}{flag}); norms = rk.gradient_norms(model, images, "
        "labels); ratio = norms[0][1] / norms[-1][1]"
    )


def _diagnose_ratio(value, measured, residual):
    """Incorrect with the most likely reason why `value` is not `measured.ratio`."""
    name = f"ResNet-{DEPTH}" if residual else f"plain-{DEPTH}"
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
    other = measure_gradient_ratio(DEPTH, not residual)
    if _close(value, other.ratio):
        other_name = f"plain-{DEPTH}" if residual else f"ResNet-{DEPTH}"
        raise Incorrect(
            f"{value:.3g} is the ratio of {other_name}; this exercise measures {name} "
            f"(`rk.CifarResNet({DEPTH}{'' if residual else ', residual=False'})`)."
        )
    if 1 / 3 < value / measured.ratio < 3:
        raise Incorrect(
            f"Close, but the checker measures {measured.ratio:.3g}. The weights depend on the "
            "random seed: call rk.set_determinism(0) right before building the model and use "
            f"the probe batch: {_how_to_measure(residual)}."
        )
    raise Incorrect(
        f"The checker measures {measured.ratio:.3g} for {name}, not {value:.3g}. Measure it "
        f"like this: {_how_to_measure(residual)}."
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


@stub_aware_exercise("1c · Predict, then measure: remove the shortcuts")
def check_shortcut_removal(answer):
    """Checks a prediction (one of `PREDICTIONS`) and the measured ratio of plain-56.

    Args:
        answer: `{"prediction": "vanish" | "similar" | "grow", "plain_ratio": number}`,
            where plain_ratio is first/last gradient norm of `CifarResNet(56,
            residual=False)` measured as in exercise 1b.

    Returns:
        A `Verdict` (printed).
    """
    if _blank(answer):
        raise NotAttempted
    if not isinstance(answer, Mapping):
        raise Incorrect(
            'Answer with a dict: {"prediction": "vanish" | "similar" | "grow", '
            '"plain_ratio": <your measured number>}.'
        )
    prediction = answer.get("prediction")
    if is_unattempted(prediction):
        raise Incorrect('Predict first: set "prediction" to "vanish", "similar" or "grow".')
    if prediction not in PREDICTIONS:
        raise Incorrect(
            f'"prediction" must be one of {", ".join(map(repr, PREDICTIONS))}; '
            f"received {prediction!r}."
        )
    if is_unattempted(answer.get("plain_ratio")):
        raise Incorrect(
            'Now measure: set "plain_ratio" to the first/last gradient-norm ratio of '
            f"plain-{DEPTH}: {_how_to_measure(False)}."
        )
    value = _number(answer["plain_ratio"], '"plain_ratio"')
    plain = measure_gradient_ratio(DEPTH, False)
    resnet = measure_gradient_ratio(DEPTH, True)
    if not _close(value, plain.ratio):
        _diagnose_ratio(value, plain, residual=False)
    truth = "grow" if plain.ratio > 10 else ("vanish" if plain.ratio < 0.1 else "similar")
    if prediction != truth:
        measured = (
            f"Your own measurement says otherwise: without shortcuts the first layer's "
            f"gradient is {plain.ratio:.3g} times the last layer's (ResNet-{DEPTH}: "
            f"{resnet.ratio:.2g})."
        )
        if prediction == "vanish":
            raise Incorrect(
                "That is the textbook story, and the seed article's ('residual connections "
                "solve the vanishing-gradient problem'). It holds for deep plain stacks "
                f"without batch normalisation (see the section above). {measured} With BN "
                "the gradients do not vanish, they grow toward the input; He et al. (2016) "
                "note that BN already keeps gradients from vanishing."
            )
        raise Incorrect(
            f"{measured} The shortcuts are exactly what keeps the layers' gradients on "
            "similar scales; without them the scales drift apart across 56 layers."
        )
    return (
        f"Without shortcuts the first layer's gradient is {plain.ratio:.0f} times the last "
        f"layer's (ResNet-{DEPTH}: {resnet.ratio:.2g}). Batch normalisation keeps the "
        "gradients from vanishing, but their scale drifts by orders of magnitude across the "
        "layers, and plain-56 ends with a higher training error than plain-20 (the "
        "degradation problem, He et al. 2016, Fig. 6). ResNet's main advantage: the "
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
_RUN_KEYS = ("train_accuracy", "val_accuracy")
MIN_GAP_SHRINK = 0.03
"""The gap must shrink by at least this much (and by a tenth of itself): 6 of 200 images."""


def _run_scores(run, name):
    if not isinstance(run, Mapping):
        raise Incorrect(
            f'The {name} run must be a dict {{"train_accuracy": ..., "val_accuracy": ...}}; '
            f"received {type(run).__name__}."
        )
    missing = [key for key in _RUN_KEYS if key not in run]
    if missing:
        raise Incorrect(f"The {name} run lacks {', '.join(map(repr, missing))}.")
    scores = {}
    for key in _RUN_KEYS:
        if is_unattempted(run[key]):
            raise Incorrect(f'The {name} run\'s "{key}" is still missing.')
        value = _number(run[key], f"{name} {key}")
        if 1 < value <= 100:
            raise Incorrect(
                f"{name} {key} = {value:g}: give accuracies as fractions in [0, 1], not percents."
            )
        if not 0 <= value <= 1:
            raise Incorrect(f"{name} {key} = {value:g}: an accuracy lies in [0, 1].")
        scores[key] = value
    return scores


@stub_aware_exercise("2b · Overfit, then shrink the gap")
def check_overfitting(answer):
    """Checks that a baseline overfits and that regularisation closes the gap honestly.

    Args:
        answer: a function `experiment(regularize: bool) -> {"train_accuracy": float,
            "val_accuracy": float}` that the checker runs for both settings (the
            reproducible form; a stub returning None is "not attempted"), or the
            numbers themselves: `{"baseline": {...}, "regularized": {...}}`.

    Returns:
        A `Verdict` (printed).
    """
    rerun = callable(answer) and not isinstance(answer, Mapping)
    if rerun:
        baseline = answer(False)
        if baseline is None:
            raise NotAttempted
        answer = {"baseline": baseline, "regularized": answer(True)}
    if _blank(answer):
        raise NotAttempted
    if not isinstance(answer, Mapping) or not {"baseline", "regularized"} <= set(answer):
        raise Incorrect(
            'Answer with the function experiment(regularize) or a dict {"baseline": {...}, '
            '"regularized": {...}}, each {"train_accuracy": ..., "val_accuracy": ...}.'
        )
    base = _run_scores(answer["baseline"], "baseline")
    reg = _run_scores(answer["regularized"], "regularized")
    for name, scores in (("baseline", base), ("regularized", reg)):
        if scores["val_accuracy"] > scores["train_accuracy"] + 0.1:
            raise Incorrect(
                f"The {name} run's validation accuracy ({scores['val_accuracy']:.0%}) is far "
                f"above its training accuracy ({scores['train_accuracy']:.0%}): swapped? "
                "Measure both with model.evaluate (inference mode), the training accuracy on "
                "the training images without augmentation."
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
    how = "re-ran your experiment: " if rerun else ""
    return (
        f"The checker {how}gap {base_gap:.0%} -> {reg_gap:.0%}, validation accuracy "
        f"{base['val_accuracy']:.0%} -> {reg['val_accuracy']:.0%}. A deep network memorises "
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


def _scores(answer):
    for key, higher_is_better in (("val_accuracy", True), ("val_loss", False)):
        if key in answer and not is_unattempted(answer[key]):
            results = answer[key]
            if not isinstance(results, Mapping):
                raise Incorrect(f'"{key}" must be a dict {{learning_rate: score, ...}}.')
            scores = {}
            for lr, score in results.items():
                scores[_number(lr, f"The learning rate {lr!r} in {key}")] = _number(
                    score, f"The {key} of LR {lr!r}"
                )
            return key, scores, higher_is_better
    raise Incorrect(
        'Validate at least 3 candidate LRs and report them: "val_accuracy": {lr: accuracy, ...} '
        '(or "val_loss": {lr: loss, ...}).'
    )


@stub_aware_exercise("3a · Choose a learning rate")
def check_learning_rate(answer):
    """Checks an LR chosen with an LR range test and justified on a validation split.

    Args:
        answer: `{"learning_rate": chosen, "val_accuracy": {lr: accuracy, ...},
            "finder": LRFinderResult}` with at least 3 candidate LRs (or
            `"val_loss": {lr: loss}` instead of val_accuracy).

    Returns:
        A `Verdict` (printed).
    """
    if _blank(answer):
        raise NotAttempted
    if not isinstance(answer, Mapping):
        raise Incorrect(
            'Answer with a dict {"learning_rate": ..., "val_accuracy": {lr: acc, ...}, '
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
    key, scores, higher_is_better = _scores(answer)
    if len(scores) < 3:
        raise Incorrect(
            f"You validated {len(scores)} LR(s); compare at least 3, spread on a log scale "
            "around the finder's suggestion (e.g. suggestion / 10, / 3 and x 1)."
        )
    if any(lr <= 0 for lr in scores):
        raise Incorrect("Learning rates are positive numbers.")
    if key == "val_accuracy" and not all(0 <= score <= 1 for score in scores.values()):
        raise Incorrect("Validation accuracies are fractions in [0, 1].")
    spread = max(scores) / min(scores)
    if spread < 10 - 1e-9:
        raise Incorrect(
            f"Your candidates span only a factor of {spread:.3g}. LRs act on a log scale: try "
            "at least a decade (e.g. 0.003, 0.01, 0.03)."
        )
    if is_unattempted(answer.get("learning_rate")):
        raise Incorrect('Set "learning_rate" to the LR you choose.')
    chosen = _number(answer["learning_rate"], '"learning_rate"')
    tried = [lr for lr in scores if math.isclose(lr, chosen, rel_tol=1e-6)]
    if not tried:
        raise Incorrect(
            f"You chose {chosen:g} but did not validate it. Choose one of the LRs you "
            f"compared ({', '.join(f'{lr:g}' for lr in sorted(scores))}): the validation "
            "results are the evidence."
        )
    pick = max if higher_is_better else min
    best_score = pick(scores.values())
    if scores[tried[0]] != best_score:
        best = [lr for lr, score in scores.items() if score == best_score]
        raise Incorrect(
            f"Your validation results say {best[0]:g} is best ({key} {best_score:.4g}), not "
            f"{chosen:g} ({scores[tried[0]]:.4g}). The finder's suggestion is a starting "
            "point; the validation set decides."
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
    return (
        f"{chosen:g} is the best of your {len(scores)} candidates on validation and lies in "
        f"the useful range of the LR range test ({low:.2g} to {high:.2g}, where the loss "
        "falls). The seed article's advice made concrete: try values, judge them on held-out "
        "data, then decay."
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
