"""Checked exercises of notebook 00, "Setup".

1. `check_dataset_name`: which dataset `load("auto")` picked on this machine.
2. `check_steps_per_epoch`: a function computing the optimizer steps of one epoch.
3. `check_paper_epochs`: how many epochs the paper's 64k iterations are.

Question (graded with feedback for every wrong choice): `auto_offline`.

Examples:

>>> from resnet_keras.course.exercises.nb00_setup import check_paper_epochs
>>> check_paper_epochs(None).status
⏳ The paper's schedule in epochs: not attempted yet
'not attempted'
"""

from __future__ import annotations

import math
import numbers

from resnet_keras.course.exercises._stubs import NotAttempted, stub_aware_exercise
from resnet_keras.course.exercises.core import Incorrect, exercise
from resnet_keras.course.exercises.questions import MultipleChoice

__all__ = [
    "PAPER_BATCH_SIZE",
    "PAPER_ITERATIONS",
    "PAPER_SPLIT_TRAIN_IMAGES",
    "PAPER_TRAIN_IMAGES",
    "auto_offline",
    "check_dataset_name",
    "check_paper_epochs",
    "check_steps_per_epoch",
]

PAPER_ITERATIONS = 64_000
"""He et al. 2016, Sec. 4.2: training stops at 64k iterations."""

PAPER_BATCH_SIZE = 128
"""He et al. 2016, Sec. 4.2: mini-batch size 128."""

PAPER_TRAIN_IMAGES = 50_000
"""He et al. 2016, Sec. 4.2: the reported models train on all 50k CIFAR-10 training images."""

PAPER_SPLIT_TRAIN_IMAGES = 45_000
"""He et al. 2016, Sec. 4.2: the 45k/5k train/validation split that chose where to stop (64k)."""


# --- exercise 1 -----------------------------------------------------------------------------


@exercise("Which dataset is this run using?")
def check_dataset_name(answer, info):
    """Checks `answer` against `info.name`, the dataset `resnet_keras.data.load` returned.

    Args:
        answer: the learner's dataset name, e.g. "digits".
        info: the `DataInfo` of the notebook's `load("auto", ...)` call.
    """
    if not hasattr(info, "name"):
        raise TypeError("check_dataset_name needs the `info` returned by resnet_keras.data.load.")
    if not isinstance(answer, str):
        raise Incorrect(
            f"Give the dataset's name as a string (like 'cifar10'), not {type(answer).__name__}."
        )
    given = answer.strip().lower().replace("-", "")
    if given == info.name:
        if info.notice:
            return "'auto' fell back to the offline dataset; info.notice says why."
        return "CIFAR-10 was available, so 'auto' used it."
    if given == "auto":
        raise Incorrect(
            "'auto' is what the notebook asked for, not what it got: `load` resolves it to a "
            "real dataset. Look at `info.name`."
        )
    if info.notice:
        raise Incorrect(
            f"Not {answer!r}: CIFAR-10 could not be read here, so 'auto' fell back to "
            "another dataset (see `info.notice`, and `info.name` for its name)."
        )
    raise Incorrect(f"Not {answer!r}: `info.name` holds the name of the dataset that was loaded.")


# --- exercise 2 -----------------------------------------------------------------------------

_STEP_CASES = ((1437, 128), (45_000, 128), (50_000, 128), (256, 64), (1, 128), (1237, 128))


@stub_aware_exercise(
    "Steps per epoch",
    success="The last, smaller batch is a step too: ceil(images / batch size).",
)
def check_steps_per_epoch(steps_per_epoch):
    """Checks a function `steps_per_epoch(num_images, batch_size) -> int` on several sizes.

    A stub that still returns None is not attempted.
    """
    if not callable(steps_per_epoch):
        raise Incorrect(
            "Define a function `steps_per_epoch(num_images, batch_size)` that returns the "
            f"number of batches; you gave a {type(steps_per_epoch).__name__}."
        )
    for index, (num_images, batch_size) in enumerate(_STEP_CASES):
        result = steps_per_epoch(num_images, batch_size)
        correct = math.ceil(num_images / batch_size)
        if result is None:
            if index == 0:
                raise NotAttempted
            raise Incorrect("Your function returned None: finish it with a `return` statement.")
        if isinstance(result, float) and not result.is_integer():
            raise Incorrect(
                f"steps_per_epoch({num_images}, {batch_size}) returned {result}: a step is a "
                "whole batch, so the result is an integer (round up: the last batch is smaller "
                "but still a step)."
            )
        if isinstance(result, bool) or not isinstance(result, numbers.Real):
            raise Incorrect(f"Return a number, not {type(result).__name__}.")
        if result == num_images // batch_size and result != correct:
            raise Incorrect(
                f"steps_per_epoch({num_images}, {batch_size}) returned {result}, the number of "
                f"full batches. tf.data keeps the last, smaller batch of {num_images % batch_size} "
                f"images (drop_remainder=False), which is one more step: {correct}."
            )
        if result != correct:
            raise Incorrect(
                f"steps_per_epoch({num_images}, {batch_size}) returned {result}; one epoch of "
                f"{num_images} images in batches of {batch_size} takes {correct} steps."
            )


# --- exercise 3 -----------------------------------------------------------------------------


@exercise("The paper's schedule in epochs")
def check_paper_epochs(answer):
    """Checks 64k iterations at batch 128 in epochs: about 164 on 50k images or 182 on 45k.

    Both readings are right: He et al. train the reported models on all 50,000 images, and
    chose the 64k iterations on a 45,000/5,000 train/validation split.
    """
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        raise Incorrect(f"Give the number of epochs as a number, not {type(answer).__name__}.")
    answer = float(answer)
    readings = {
        PAPER_TRAIN_IMAGES: "all 50,000 training images, as the paper's reported models",
        PAPER_SPLIT_TRAIN_IMAGES: "the 45,000 images of the split that chose the 64k iterations",
    }
    for images, reading in readings.items():
        steps = math.ceil(images / PAPER_BATCH_SIZE)
        epochs = PAPER_ITERATIONS / steps
        if abs(answer - epochs) <= 1.0:
            other = (set(readings) - {images}).pop()
            other_epochs = PAPER_ITERATIONS / math.ceil(other / PAPER_BATCH_SIZE)
            return (
                f"64,000 iterations / {steps} steps per epoch = {epochs:.1f} epochs on {reading}. "
                f"On {other:,} images the same 64k iterations are {other_epochs:.1f} epochs: the "
                "paper fixes iterations, not epochs, so both readings are right (the gpu profile "
                "keeps 5,000 images back and runs the 182)."
            )
    for images in readings:
        if abs(answer - PAPER_ITERATIONS / images) < 0.1:
            raise Incorrect(
                "An iteration processes a whole batch of 128 images, not one image: first "
                "compute the steps of one epoch."
            )
        if abs(answer - math.ceil(images / PAPER_BATCH_SIZE)) <= 1.0:
            raise Incorrect(
                f"{answer:g} is the number of steps in one epoch of {images:,} images; now "
                "divide the 64,000 iterations by it."
            )
    raise Incorrect(
        f"{answer:g} epochs is not it. One epoch is ceil(50,000 / 128) steps; how many such "
        "epochs fit into 64,000 iterations?"
    )


# --- questions ------------------------------------------------------------------------------

auto_offline = MultipleChoice(
    'Question 1 · load("auto") offline',
    "A machine has no network connection and no CIFAR-10 prepared on disk. What does "
    '`data.load("auto")` do there?',
    {
        "a": "It raises an error: the course needs CIFAR-10.",
        "b": "It waits until the CIFAR-10 download succeeds, however long that takes.",
        "c": "It falls back to the offline digits shipped with scikit-learn, upsampled to "
        "32×32×3, announces it with a warning and explains it in `info.notice`.",
        "d": "It returns random images of CIFAR-10's shape, so that the models still run.",
    },
    answer="c",
    feedback={
        "a": "No error: the course is meant to run anywhere, offline included. `load` has a "
        "fallback for exactly this case; section 4 says which.",
        "b": "It does not wait: it gives the download host 3 seconds to answer, and when it "
        "does not, it moves on to a dataset that needs no network.",
        "d": "Random images would teach nothing (there would be nothing to learn); the fallback "
        "is a real, labelled dataset: scikit-learn's 8×8 handwritten digits.",
    },
    success=(
        "Offline, 'auto' resolves to the digits: a real dataset that needs no network. The "
        "OfflineDatasetWarning and `info.notice` say so, and `info.name` is 'digits', never "
        "'auto'."
    ),
)
"""Section 4: what `load("auto")` does without CIFAR-10 (the right letter: c)."""
