"""Checked exercises of notebook 07, "Why residual networks work: the cure, by training".

1. `check_final_errors`: summarise the seeds of one network by its final training error
   (mean, lowest, highest), the numbers the notebook asserts on.
2. `check_first_epoch_below`: read a learning curve: the first epoch at which the mean
   training error over the seeds falls below a threshold.

Questions (graded with feedback for every wrong choice): `is_it_overfitting`,
`variance_without_normalisation`.

A run is what `resnet_keras.course.experiments.train_cifar_network` returns for one seed: a
dict whose `training_error` and `test_error` are per-epoch lists.

Examples:

>>> from resnet_keras.course.exercises.nb07_why_it_works import check_final_errors
>>> check_final_errors(lambda runs: None).status
⏳ Summarise the seeds: not attempted yet
'not attempted'
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from resnet_keras.course.exercises._stubs import NotAttempted, stub_aware_exercise
from resnet_keras.course.exercises.core import Incorrect
from resnet_keras.course.exercises.questions import MultipleChoice, NumericAnswer

__all__ = [
    "check_final_errors",
    "check_first_epoch_below",
    "is_it_overfitting",
    "variance_without_normalisation",
]


def _runs(training, test=None):
    """Runs of one network: one dict per seed, with per-epoch errors."""
    test = test if test is not None else [[value + 0.05 for value in run] for run in training]
    return [
        {"training_error": list(train), "test_error": list(held_out)}
        for train, held_out in zip(training, test)
    ]


# Three seeds, four epochs. The final training errors are 0.10, 0.20 and 0.60: the mean (0.30)
# differs from the median, the last epoch from the best one and from the mean over epochs, and
# the test errors from the training errors, so each usual slip gives another number.
_CASES = (
    _runs([[0.9, 0.5, 0.05, 0.10], [0.8, 0.6, 0.30, 0.20], [0.9, 0.9, 0.70, 0.60]]),
    _runs([[0.5, 0.02], [0.7, 0.04], [0.6, 0.09]], test=[[0.6, 0.2], [0.8, 0.3], [0.7, 0.1]]),
    _runs([[0.3, 0.25, 0.2]]),
)


def _final_errors(runs, key="training_error"):
    finals = [run[key][-1] for run in runs]
    return float(np.mean(finals)), float(min(finals)), float(max(finals))


def _triple(value):
    if value is None:
        return None
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise Incorrect(
            f"Return three numbers (mean, lowest, highest); your function returned {value!r}."
        )
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        raise Incorrect(f"Return three numbers (mean, lowest, highest), not {value!r}.")
    return tuple(float(v) for v in value)


def _close(a, b):
    return all(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9) for x, y in zip(a, b))


@stub_aware_exercise(
    "Summarise the seeds",
    success=(
        "One network, several seeds: the mean of the final training errors is the curve's end, "
        "the lowest and highest its spread. A claim about two networks holds when their "
        "spreads do not overlap, or it is tested against that spread."
    ),
)
def check_final_errors(summarise):
    """Checks `summarise(runs)` -> (mean, lowest, highest) of the runs' final training errors."""
    if not callable(summarise):
        raise Incorrect(
            f"Define a function `summarise(runs)`; you gave a {type(summarise).__name__}."
        )
    for index, runs in enumerate(_CASES):
        got = _triple(summarise(runs))
        if got is None:
            if index == 0:
                raise NotAttempted
            raise Incorrect("Your function returned None: finish it with a `return` statement.")
        expected = _final_errors(runs)
        if _close(got, expected):
            continue
        if _close(got, _final_errors(runs, "test_error")):
            raise Incorrect(
                "Those are the test errors. The degradation problem is about fitting the "
                "training images: use each run's `training_error`."
            )
        finals = [run["training_error"][-1] for run in runs]
        if _close(got, (float(np.median(finals)), min(finals), max(finals))):
            raise Incorrect("The first number is the median; the mean is asked for.")
        best = [min(run["training_error"]) for run in runs]
        if _close(got, (float(np.mean(best)), min(best), max(best))):
            raise Incorrect(
                "You took each run's lowest error, from any epoch. The runs are compared at the "
                "end of the same budget: take the last epoch's error (`[-1]`)."
            )
        firsts = [run["training_error"][0] for run in runs]
        if _close(got, (float(np.mean(firsts)), min(firsts), max(firsts))):
            raise Incorrect("That is the first epoch; the final error is the last entry, `[-1]`.")
        if _close(got, (expected[0], expected[2], expected[1])):
            raise Incorrect("Lowest and highest are swapped: return (mean, lowest, highest).")
        raise Incorrect(
            f"For final training errors {finals} expected (mean, lowest, highest) = "
            f"{tuple(round(v, 4) for v in expected)}; your function returned "
            f"{tuple(round(v, 4) for v in got)}."
        )


def _first_epoch_below(runs, threshold):
    mean = np.mean([run["training_error"] for run in runs], axis=0)
    below = np.flatnonzero(mean < threshold)
    return int(below[0]) + 1 if below.size else None


# (runs, threshold): the mean curve of the first case crosses 0.5 in epoch 3; the second never
# gets below 0.01; in the third the first seed crosses in epoch 2, the mean only in epoch 4.
_EARLY_SEED = _runs([[0.9, 0.2, 0.1, 0.05], [0.9, 0.9, 0.8, 0.3], [0.9, 0.9, 0.9, 0.4]])
_CURVES = ((_CASES[0], 0.5), (_CASES[1], 0.01), (_EARLY_SEED, 0.5), (_CASES[2], 0.26))


@stub_aware_exercise(
    "Read the curve",
    success=(
        "Epochs are counted from 1 in the plots (and by Keras' progress bar); the mean over "
        "the seeds is the line you read, and a curve that never gets there has no answer."
    ),
)
def check_first_epoch_below(first_epoch_below):
    """Checks `first_epoch_below(runs, threshold)`: the first epoch (from 1) whose mean
    training error over the runs is below `threshold`, or None if none is."""
    if not callable(first_epoch_below):
        raise Incorrect(
            "Define a function `first_epoch_below(runs, threshold)`; you gave a "
            f"{type(first_epoch_below).__name__}."
        )
    for index, (runs, threshold) in enumerate(_CURVES):
        got = first_epoch_below(runs, threshold)
        expected = _first_epoch_below(runs, threshold)
        if got is None and index == 0:
            raise NotAttempted
        if got == expected and (got is None) == (expected is None):
            continue
        if expected is None:
            raise Incorrect(
                f"The mean curve never falls below {threshold}: return None when no epoch is "
                f"below the threshold (your function returned {got!r})."
            )
        if got == expected - 1:
            raise Incorrect(
                "One epoch early: you returned an index counted from 0. Count epochs from 1, "
                "as the plots do."
            )
        single = [_first_epoch_below([run], threshold) for run in runs]
        if got in single:
            raise Incorrect(
                "That is where one seed crosses the threshold. Average the seeds' curves epoch "
                "by epoch first (np.mean(..., axis=0)), then find the first epoch below it."
            )
        raise Incorrect(
            f"With threshold {threshold} the mean training error first falls below it in epoch "
            f"{expected}; your function returned {got!r}."
        )


is_it_overfitting = MultipleChoice(
    "Question 1 · Overfitting, or not?",
    "On the same budget, plain-56 ends with a much higher *training* error than plain-20. "
    "What does that show?",
    {
        "a": "plain-56 overfits: with more parameters it memorises noise.",
        "b": "plain-56 is harder to optimise: it fails to fit even the images it trains on, so "
        "the extra depth hurts before any question of generalisation arises.",
        "c": "plain-56 needs a larger dataset; with all of CIFAR-10 it would fit better than "
        "plain-20.",
        "d": "The test set is too small to tell the two apart.",
    },
    answer="b",
    feedback={
        "a": "An overfitting network fits its training images *better* and the test images "
        "worse. plain-56 fits its training images worse: this is the degradation problem "
        "(He et al. 2016, Sec. 1), an optimisation difficulty.",
        "c": "He et al. trained on all of CIFAR-10 (Fig. 6) and on ImageNet (Fig. 4) and saw the "
        "same thing: the deeper plain network has the higher training error.",
        "d": "The claim is about the training error, measured on all the training images, and "
        "the runs of three seeds do not overlap.",
    },
    success=(
        "A deeper network could copy the shallower one and set its extra layers to the "
        "identity, so its training error should be no higher. SGD does not find that solution "
        "for a plain stack; a residual block makes the identity the easy default (F = 0)."
    ),
)

variance_without_normalisation = NumericAnswer(
    "Question 2 · Residual sums without normalisation",
    "At initialisation, suppose each residual branch of the deep seed twin adds a signal with "
    "the variance of its input, independent of it: Var(x + F(x)) = 2 Var(x). The twin has 20 "
    "such additions (conv2 to conv21). By what factor has the variance of the signal grown at "
    "the last one?",
    2**20,
    tolerance=0.01,
    mistakes=[
        (20, "That adds 1 per block; each addition doubles the variance, so the factors multiply."),
        (21, "Variances multiply: 20 doublings, not 21 added ones."),
        (40, "Each addition doubles the variance: the factors multiply (2 x 2 x ...)."),
        (2**21, "There are 20 additions: conv1 is the stem, with no shortcut."),
        (
            math.sqrt(2**20),
            "That is the growth of the standard deviation; the variance grows by its square.",
        ),
    ],
    hint="Each addition multiplies the variance by 2.",
    success=(
        "About a million: the logits of an un-normalised residual stack start huge, so its "
        "first loss is far above chance's 2.3 and too large a learning rate throws it off "
        "(section 2). Batch normalisation, or an initialisation that scales each branch down "
        "(Fixup, zero-initialised last layers), keeps the sum in range."
    ),
)
