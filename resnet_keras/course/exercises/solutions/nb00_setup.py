"""Reference solutions of notebook 00, "Setup" (open only after trying)."""

from __future__ import annotations

import math

__all__ = ["QUESTION_ANSWERS", "dataset_name", "paper_epochs", "steps_per_epoch"]

QUESTION_ANSWERS = {
    "auto_offline": "c",
}
"""The right letter of each conceptual question of the notebook (its checker module's
object of that name)."""


def dataset_name(info):
    """The dataset `load("auto")` resolved to: `info.name`, never "auto".

    Examples:

    >>> from resnet_keras.data import load
    >>> dataset_name(load("digits", train_size=64).info)
    'digits'
    """
    return info.name


def steps_per_epoch(num_images, batch_size):
    """Batches in one epoch; the last, smaller batch counts (tf.data keeps it).

    Examples:

    >>> steps_per_epoch(1437, 128)
    12
    """
    return math.ceil(num_images / batch_size)


def paper_epochs():
    """He et al.'s 64k iterations at batch 128 on the 50k training images, in epochs.

    On the 45k images of their train/validation split the same iterations are about 182
    epochs; the checker accepts both.

    Examples:

    >>> round(paper_epochs(), 1)
    163.7
    """
    return 64_000 / steps_per_epoch(50_000, 128)
