"""Checked exercises of notebook 05, "Pitfalls".

1. `check_fixed_block`: a residual block that passes `training` to its batch normalisation.
2. `check_l2_factor`: the Keras `l2` factor that equals a given (coupled) weight decay.
3. `check_learning_rate_choice`: a learning rate read off an LR range test curve.

Questions (graded with feedback for every wrong choice): `generalisation_gap`,
`batch_statistics_at_evaluation`.

Examples:

>>> from resnet_keras.course.exercises.nb05_pitfalls import check_l2_factor
>>> check_l2_factor(None).status
⏳ The l2 factor of a weight decay: not attempted yet
'not attempted'
"""

from __future__ import annotations

import inspect
import math
import numbers

import keras
import numpy as np

from resnet_keras._keras_compat import sublayers
from resnet_keras.course.exercises.core import Incorrect, exercise
from resnet_keras.course.exercises.questions import MultipleChoice

__all__ = [
    "PAPER_WEIGHT_DECAY",
    "RESNEXT_CIFAR_WEIGHT_DECAY",
    "batch_statistics_at_evaluation",
    "check_fixed_block",
    "check_l2_factor",
    "check_learning_rate_choice",
    "falling_range",
    "generalisation_gap",
]

PAPER_WEIGHT_DECAY = 1e-4
"""He et al. 2016, Sec. 4.2: the CIFAR-10 ResNets' weight decay."""

RESNEXT_CIFAR_WEIGHT_DECAY = 5e-4
"""The CIFAR weight decay of the ResNeXt authors' training command (`-weightDecay 5e-4`)."""

_FILTERS = 8


# --- exercise 1 -----------------------------------------------------------------------------


def _batch_norms(layer):
    return [
        sublayer
        for sublayer in sublayers(layer, recursive=True)
        if isinstance(sublayer, keras.layers.BatchNormalization)
    ]


def _moving_statistics(batch_norms):
    return [
        (np.array(bn.moving_mean.numpy()), np.array(bn.moving_variance.numpy()))
        for bn in batch_norms
    ]


def _changed(before, after):
    return [
        not (np.allclose(mean0, mean1) and np.allclose(var0, var1))
        for (mean0, var0), (mean1, var1) in zip(before, after)
    ]


def _images(seed=0):
    # Mean 2 and standard deviation 3: far from the moving statistics a fresh BN starts
    # with (0 and 1), so an update cannot go unnoticed.
    generator = np.random.default_rng(seed)
    return (2.0 + 3.0 * generator.standard_normal((16, 8, 8, _FILTERS))).astype("float32")


@exercise(
    "Fix the block that forgets `training`",
    success=(
        "Correct: the flag reaches every BatchNormalization, so its moving statistics "
        "follow the data in training and stay put (and batch-independent) in inference."
    ),
)
def check_fixed_block(block_class):
    """Checks a residual block class `block_class(filters)` for its handling of `training`.

    The block is built on 8x8x8 feature maps. Its `call` is then run directly with
    `training=True`: Keras' call context (which lets `layer(x, training=True)` reach
    sub-layers that were not given the flag) is not active there, so the moving statistics
    change only if the block passes `training` on itself. Then the block is called in
    inference: the statistics must not move and an image's output must not depend on the
    other images of the batch.
    """
    if not (inspect.isclass(block_class) and issubclass(block_class, keras.layers.Layer)):
        raise Incorrect(
            "Give the block's class (a subclass of keras.layers.Layer, like ForgetfulBlock), "
            f"not {type(block_class).__name__}."
        )
    parameters = inspect.signature(block_class.call).parameters
    if "training" not in parameters:
        raise Incorrect(
            "Its `call` has no `training` argument, so it cannot hand the flag on: write "
            "`def call(self, inputs, training=None)` and pass `training=training` to every "
            "BatchNormalization."
        )
    block = block_class(_FILTERS)
    images = _images()
    outputs = block(images, training=False)
    if tuple(outputs.shape) != images.shape:
        raise Incorrect(
            f"The block should keep the shape of its input {images.shape} (a residual block "
            f"with {_FILTERS} filters and stride 1); it returned {tuple(outputs.shape)}."
        )
    batch_norms = _batch_norms(block)
    if not batch_norms:
        raise Incorrect(
            "The block has no BatchNormalization layer any more: keep conv -> BN -> ReLU and "
            "fix how BN is called instead."
        )

    before = _moving_statistics(batch_norms)
    block.call(images, training=True)
    changed = _changed(before, _moving_statistics(batch_norms))
    if not all(changed):
        names = ", ".join(
            f"BatchNormalization #{index} of {len(batch_norms)}"
            for index, moved in enumerate(changed, start=1)
            if not moved
        )
        raise Incorrect(
            f"The moving statistics of {names} did not change when the block's call ran with "
            "training=True: that BatchNormalization is called without `training=training`. "
            "Keras 3 rescues this when the block is called as `block(x, training=True)`, but "
            "not when its call is invoked any other way; pass the flag on explicitly."
        )

    before = _moving_statistics(batch_norms)
    batch_outputs = np.asarray(block(images, training=False))
    if any(_changed(before, _moving_statistics(batch_norms))):
        raise Incorrect(
            "The moving statistics changed in inference (training=False): the block calls "
            "BatchNormalization with training=True always. Pass `training=training` instead."
        )
    single = np.asarray(block(images[:1], training=False))
    if not np.allclose(single, batch_outputs[:1], rtol=1e-4, atol=1e-4):
        raise Incorrect(
            "In inference the output of one image depends on the rest of the batch: the "
            "block normalises with batch statistics even when training=False."
        )


# --- exercise 2 -----------------------------------------------------------------------------


def _positive_number(answer, what):
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        raise Incorrect(f"Give {what} as a number, not {type(answer).__name__}.")
    answer = float(answer)
    if not math.isfinite(answer) or answer <= 0:
        raise Incorrect(f"{what.capitalize()} is a positive number; you gave {answer}.")
    return answer


@exercise("The l2 factor of a weight decay")
def check_l2_factor(answer, weight_decay=RESNEXT_CIFAR_WEIGHT_DECAY):
    """Checks the `keras.regularizers.l2` factor that equals a coupled `weight_decay`."""
    answer = _positive_number(answer, "the l2 factor")
    correct = weight_decay / 2.0
    if math.isclose(answer, correct, rel_tol=1e-6):
        return (
            f"l2({correct:g}) adds {correct:g} * sum(w**2) to the loss, whose gradient "
            f"{2 * correct:g} * w is exactly the decay term."
        )
    if math.isclose(answer, weight_decay, rel_tol=1e-6):
        raise Incorrect(
            f"l2({weight_decay:g}) decays twice as hard: the gradient of lam * w**2 is "
            "2 * lam * w, not lam * w (the classic factor-of-two slip)."
        )
    if math.isclose(answer, 2 * weight_decay, rel_tol=1e-6):
        raise Incorrect(
            "You multiplied by two where you should divide: the loss term lam * w**2 already "
            "gives a gradient of 2 * lam * w."
        )
    raise Incorrect(
        f"{answer:g} is not it. The loss term lam * sum(w**2) adds 2 * lam * w to the gradient; "
        f"choose lam so that this equals {weight_decay:g} * w."
    )


# --- exercise 3 -----------------------------------------------------------------------------


def falling_range(result, drop=0.1):
    """The learning rates on the falling part of an LR range test curve.

    The lower end is the learning rate from which on the smoothed loss stays `drop` of the way
    below its starting level towards its minimum (or the steepest point, if that comes first);
    the upper end is the learning rate of the minimum, beyond which the loss is about
    to blow up.

    Args:
        result: an `LRFinderResult` (`resnet_keras.training.find_learning_rate`).
        drop: how far (a fraction of the total fall) the loss must have fallen to count as
            falling.

    Returns:
        `(low, high)`, two learning rates.

    Examples:

    >>> from types import SimpleNamespace
    >>> lrs = np.logspace(-4, 0, 41)
    >>> losses = 2.3 - np.clip(np.log10(lrs) + 3, 0, 2)  # flat, falling from 1e-3, minimum at 0.1
    >>> curve = SimpleNamespace(learning_rates=lrs, smoothed_losses=losses, steepest_lr=0.01)
    >>> [round(float(value), 4) for value in falling_range(curve)]
    [0.0016, 0.1]
    """
    lrs = np.asarray(result.learning_rates, dtype="float64")
    losses = np.asarray(result.smoothed_losses, dtype="float64")
    losses = np.where(np.isfinite(losses), losses, np.inf)
    lowest = int(np.argmin(losses))
    start = float(np.mean(losses[: max(1, min(lowest, len(losses) // 10))]))
    threshold = start - drop * (start - losses[lowest])
    # The last crossing, not the first: early noise can dip below the threshold and come back.
    above = np.flatnonzero(losses[: lowest + 1] > threshold)
    low = float(lrs[above[-1] + 1]) if above.size else float(lrs[0])
    steepest = float(getattr(result, "steepest_lr", math.nan))
    if math.isfinite(steepest) and steepest < low:
        low = steepest
    return low, float(lrs[lowest])


@exercise("Pick a learning rate from the LR range test")
def check_learning_rate_choice(answer, result):
    """Checks that `answer` lies on the falling part of the LR range test `result`."""
    answer = _positive_number(answer, "the learning rate")
    if result is None or not hasattr(result, "learning_rates"):
        raise Incorrect("Pass the LR finder's result as the second argument.")
    lrs = np.asarray(result.learning_rates, dtype="float64")
    if not lrs[0] <= answer <= lrs[-1]:
        raise Incorrect(
            f"{answer:g} lies outside the sweep ({lrs[0]:.1e} to {lrs[-1]:.1e}): the curve "
            "says nothing about it. Read the value off the plot."
        )
    low, high = falling_range(result)
    if answer < low:
        raise Incorrect(
            f"At {answer:.2g} the loss has hardly started to fall: training there would be "
            f"slow (too low). Move right, into the falling part ({low:.2g} to {high:.2g})."
        )
    if answer >= high:
        raise Incorrect(
            f"{answer:.2g} is at or past the minimum of the curve ({high:.2g}), where the loss "
            "is about to blow up: too high for a whole run. Go left, to where it falls fastest."
        )
    return f"It lies on the falling part of the curve ({low:.2g} to {high:.2g})."


# --- questions ------------------------------------------------------------------------------

generalisation_gap = MultipleChoice(
    "Question 1 · A big network on 64 images",
    "ResNet-8 (about 75,000 parameters) trains for 20 epochs on 64 digits, without weight "
    "decay or augmentation. Then its accuracy is measured, in inference mode, on those 64 "
    "images and on 100 digits it never saw. What do the two accuracies look like?",
    {
        "a": "Both low, near chance: 64 images are far too few to determine 75,000 "
        "parameters, so the network cannot fit them.",
        "b": "About the same on both: the unseen digits come from the same distribution as "
        "the training digits.",
        "c": "About 100% on the 64 training images, clearly lower on the unseen ones: the "
        "network memorises what is peculiar to its training images.",
        "d": "Higher on the unseen digits than on the training digits, because the training "
        "images are harder after many passes.",
    },
    answer="c",
    feedback={
        "a": "More parameters than images make fitting easier, not harder: an underdetermined "
        "problem has many exact solutions, and SGD finds one that fits every training label. "
        "Fitting is not the difficulty; generalising is.",
        "b": "The same distribution only promises the same accuracy to a model that was not "
        "fitted to either set. This one was fitted to the 64 training images, noise and "
        "peculiarities included, so it does better on them than on new ones.",
        "d": "Nothing makes a training image harder by repetition; every pass pushes its loss "
        "further down. A validation accuracy above the training accuracy shows up when the "
        "training accuracy is measured under regularisation (dropout, augmentation), not here: "
        "both are measured on clean images in inference mode.",
    },
    success=(
        "The network memorises its 64 images (training accuracy near 100%, cross-entropy near "
        "0) and does clearly worse on unseen ones. The difference is the generalisation gap, "
        "which regularisation and, above all, more data shrink."
    ),
)
"""Asked before the experiment of section 1 (the right letter: c)."""

batch_statistics_at_evaluation = MultipleChoice(
    "Question 2 · Evaluating with `training=True`",
    "A network with batch normalisation is evaluated with `model(images, training=True)` by "
    "mistake (a hard-coded flag, say). What happens to the logits of one given image?",
    {
        "a": "Nothing: `training=True` only matters for the gradients, and no gradients are "
        "computed during evaluation.",
        "b": "They depend on the other images of its batch: BN normalises with that batch's "
        "mean and variance, so the same image gets other logits in another batch.",
        "c": "They become random: `training=True` adds noise to the weights, so two calls on "
        "the same batch give different logits.",
        "d": "The call fails: `training=True` needs a `tf.GradientTape` to record the forward "
        "pass.",
    },
    answer="b",
    feedback={
        "a": "The flag changes the forward pass itself: BN normalises with the batch's "
        "statistics in training mode and with its moving statistics in inference mode (and "
        "in training mode it also moves those statistics toward the evaluation batches).",
        "c": "Batch normalisation draws no random numbers: the same batch gives the same "
        "logits every time. The randomness of training mode belongs to dropout, which these "
        "ResNets do not have; what changes the logits here is the rest of the batch.",
        "d": "`training` is a plain argument that layers read; it needs no tape. A tape records "
        "whatever runs inside it, in either mode, and nothing else checks for one.",
    },
    success=(
        "In training mode BN normalises every channel with the mean and variance of the batch "
        "at hand, so one image's prediction depends on its batch-mates (and a batch of one "
        "breaks it). Evaluate with `training=False`, where BN uses its moving statistics."
    ),
)
"""Asked in section 2, before the experiment after the three lost flags (the right letter: b)."""
