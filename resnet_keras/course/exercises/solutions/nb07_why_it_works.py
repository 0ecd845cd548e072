"""Reference solutions of notebook 07, "Why residual networks work" (open only after trying)."""

from __future__ import annotations

import numpy as np

__all__ = ["QUESTION_ANSWERS", "first_epoch_below", "summarise"]

QUESTION_ANSWERS = {
    "is_it_overfitting": "b",
    "variance_without_normalisation": 2**20,
}
"""The answer of each conceptual question of the notebook (its checker module's object of
that name)."""


def summarise(runs):
    """(mean, lowest, highest) of the runs' final training errors.

    Examples:

    >>> summarise([{"training_error": [0.5, 0.1]}, {"training_error": [0.6, 0.3]}])
    (0.2, 0.1, 0.3)
    """
    finals = [run["training_error"][-1] for run in runs]
    return round(float(np.mean(finals)), 12), min(finals), max(finals)


def first_epoch_below(runs, threshold):
    """The first epoch (counted from 1) whose mean training error over the runs is below
    `threshold`, or None.

    Examples:

    >>> first_epoch_below([{"training_error": [0.5, 0.1]}, {"training_error": [0.6, 0.3]}], 0.3)
    2
    """
    mean = np.mean([run["training_error"] for run in runs], axis=0)
    for epoch, error in enumerate(mean, start=1):
        if error < threshold:
            return epoch
    return None
