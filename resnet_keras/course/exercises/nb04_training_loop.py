"""Checked exercises of notebook 04, "The training loop".

1. `check_train_step`: the seed's steps 2 to 5 (forward, loss, backward, update) for one batch.
2. `check_paper_learning_rate`: the paper's step schedule as a function of the step.
3. `check_total_steps`: the optimizer steps of the `gpu` profile's full run.

Examples:

>>> from resnet_keras.course.exercises.nb04_training_loop import check_total_steps
>>> check_total_steps(None).status
⏳ Optimizer steps of the full gpu run: not attempted yet
'not attempted'
"""

from __future__ import annotations

import math
import numbers

import keras
import numpy as np

from resnet_keras.course.exercises._stubs import NotAttempted, stub_aware_exercise
from resnet_keras.course.exercises.core import Incorrect, exercise

__all__ = [
    "CIFAR10_TRAIN_IMAGES",
    "check_paper_learning_rate",
    "check_total_steps",
    "check_train_step",
    "reference_train_step",
]

CIFAR10_TRAIN_IMAGES = 50_000
"""Images in CIFAR-10's official training split (the paper holds 5,000 of them out)."""

_NUM_CLASSES = 3
_LEARNING_RATE = 0.1
_MOMENTUM = 0.9


# --- exercise 1 -----------------------------------------------------------------------------


def reference_train_step(model, optimizer, images, labels):
    """Steps 2 to 5 of the seed's list for one batch; returns the loss before the update.

    The checker compares a learner's step with this one.

    Examples:

    >>> model, optimizer = _tiny_model(), _optimizer()
    >>> images, labels = _batch(0)
    >>> round(float(reference_train_step(model, optimizer, images, labels)), 4)
    1.0091
    """
    import tensorflow as tf

    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        logits = model(images, training=True)
        loss = cross_entropy(labels, logits)
    gradients = tape.gradient(loss, model.trainable_weights)
    optimizer.apply_gradients(zip(gradients, model.trainable_weights))
    return loss


def _tiny_model():
    """Conv -> BN -> ReLU -> pool -> dense, with seeded initialisers (no global RNG touched)."""
    return keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            keras.layers.Conv2D(
                4,
                3,
                padding="same",
                use_bias=False,
                kernel_initializer=keras.initializers.HeNormal(seed=1),
            ),
            keras.layers.BatchNormalization(momentum=0.9),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(
                _NUM_CLASSES, kernel_initializer=keras.initializers.GlorotUniform(seed=2)
            ),
        ]
    )


def _optimizer():
    return keras.optimizers.SGD(learning_rate=_LEARNING_RATE, momentum=_MOMENTUM)


def _batch(seed):
    # Mean 1 and standard deviation 2, far from BN's initial moving statistics (0 and 1),
    # so that inference-mode and training-mode outputs differ clearly.
    generator = np.random.default_rng(seed)
    labels = generator.integers(0, _NUM_CLASSES, 16).astype("int32")
    images = 1.0 + 2.0 * generator.standard_normal((16, 6, 6, 3)) + labels[:, None, None, None]
    return images.astype("float32"), labels


def _batch_norm(model):
    return next(
        layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
    )


def _values(variables):
    return [np.array(keras.ops.convert_to_numpy(variable)) for variable in variables]


def _same(first, second, tolerance=1e-5):
    return all(
        np.allclose(a, b, rtol=tolerance, atol=tolerance)
        for a, b in zip(first, second, strict=True)
    )


def _scalar(result):
    try:
        array = np.asarray(keras.ops.convert_to_numpy(result), dtype="float64")
    except Exception as error:  # noqa: BLE001 - any non-numeric return value
        raise Incorrect(
            f"Return the loss (a number or a scalar tensor), not {type(result).__name__}."
        ) from error
    if array.size != 1:
        raise Incorrect(
            f"Return the mean loss over the batch, a scalar; yours has shape {array.shape} "
            "(one value per image?). Keras' losses average over the batch by default."
        )
    return float(array.reshape(()))


def _loss_on_probabilities(model, images, labels):
    """The loss of the typical slip: the logits given to a loss that expects probabilities."""
    # A copy, so that computing it does not update the learner's BN statistics.
    copy = _tiny_model()
    copy.set_weights(model.get_weights())
    logits = copy(images, training=True)
    return float(keras.losses.SparseCategoricalCrossentropy(from_logits=False)(labels, logits))


def _check_one_step(train_step, model, optimizer, reference, reference_optimizer, batch, first):
    images, labels = batch
    trainable_before = _values(model.trainable_weights)
    statistics_before = _values(model.non_trainable_weights)
    slip = _loss_on_probabilities(model, images, labels)
    iterations_before = int(keras.ops.convert_to_numpy(optimizer.iterations))

    try:
        result = train_step(model, optimizer, images, labels)
    except ValueError as error:
        if "no gradients" not in str(error).lower():
            raise
        raise Incorrect(
            "The optimizer got no gradients: the forward pass and the loss must be computed "
            "inside `with tf.GradientTape() as tape:`, so that the tape records them."
        ) from error
    moved = not _same(trainable_before, _values(model.trainable_weights), 0.0)
    statistics_moved = not _same(statistics_before, _values(model.non_trainable_weights), 0.0)
    if result is None:
        if first and not moved and not statistics_moved:
            raise NotAttempted
        raise Incorrect("Your step returns None: finish it with `return loss`.")
    loss = _scalar(result)
    expected = float(reference_train_step(reference, reference_optimizer, images, labels))

    if not statistics_moved:
        raise Incorrect(
            "BatchNormalization's moving statistics did not change: the forward pass ran in "
            "inference mode. Call `model(images, training=True)`; without it BN normalises "
            "with its (never updated) moving statistics instead of the batch's."
        )
    if not math.isclose(loss, expected, rel_tol=1e-4, abs_tol=1e-5):
        if math.isclose(loss, slip, rel_tol=1e-4):
            raise Incorrect(
                "Your loss treats the logits as probabilities: the models of this course end "
                "without a softmax, so use SparseCategoricalCrossentropy(from_logits=True)."
            )
        raise Incorrect(
            f"Your step returned the loss {loss:.4f}; the mean cross-entropy of the batch "
            f"(from the logits, in training mode, before the update) is {expected:.4f}."
        )
    if not moved:
        raise Incorrect(
            "The weights did not change: step 5 is missing. Compute "
            "`gradients = tape.gradient(loss, model.trainable_weights)` and apply them with "
            "`optimizer.apply_gradients(zip(gradients, model.trainable_weights))`."
        )
    if int(keras.ops.convert_to_numpy(optimizer.iterations)) != iterations_before + 1:
        raise Incorrect(
            "The weights changed, but not through the optimizer you were given (its step "
            "counter did not advance by one): update with `optimizer.apply_gradients`, so "
            "that momentum and the LR schedule are applied."
        )
    after, wanted = _values(model.trainable_weights), _values(reference.trainable_weights)
    if not _same(after, wanted):
        ascent = [2 * b - w for b, w in zip(trainable_before, wanted, strict=True)]
        if _same(after, ascent):
            raise Incorrect(
                "Your update climbs the loss: the weights moved by +lr * gradient. The optimizer "
                "subtracts the gradient itself; pass it the gradients unchanged."
            )
        raise Incorrect(
            "After your step the weights differ from one SGD step on the gradients of that "
            "loss with respect to `model.trainable_weights`."
        )


@stub_aware_exercise(
    "The five steps as one train_step",
    success=(
        "Your step computes the same loss and reaches the same weights (and BN statistics) "
        "as model.fit's train step would."
    ),
)
def check_train_step(train_step):
    """Checks `train_step(model, optimizer, images, labels) -> loss` for two batches.

    The learner's step and `reference_train_step` run on two copies of a small
    conv-BN-dense model with SGD (LR 0.1, momentum 0.9); the returned loss, the weights and
    BN's moving statistics must agree after each step.
    """
    if not callable(train_step):
        raise Incorrect(
            "Give a function `train_step(model, optimizer, images, labels)`, not a "
            f"{type(train_step).__name__}."
        )
    model, reference = _tiny_model(), _tiny_model()
    optimizer, reference_optimizer = _optimizer(), _optimizer()
    for index, seed in enumerate((0, 1)):
        _check_one_step(
            train_step,
            model,
            optimizer,
            reference,
            reference_optimizer,
            _batch(seed),
            first=index == 0,
        )
    if not _same(_values(model.non_trainable_weights), _values(reference.non_trainable_weights)):
        raise Incorrect("BatchNormalization's moving statistics differ from model.fit's.")


# --- exercise 2 -----------------------------------------------------------------------------


def _paper_rate(step, total_steps):
    boundaries = [round(0.5 * total_steps), round(0.75 * total_steps)]
    return 0.1 * 0.1 ** sum(step >= boundary for boundary in boundaries)


def _number(value, what):
    if isinstance(value, (str, bytes, bool)):
        raise Incorrect(f"{what} should be a number; yours is {value!r}.")
    try:
        return float(keras.ops.convert_to_numpy(value))
    except Exception as error:  # noqa: BLE001 - any non-numeric return value
        raise Incorrect(f"{what} should be a number; yours is {value!r}.") from error


@stub_aware_exercise(
    "The paper's learning-rate schedule",
    success=(
        "0.1 until half of the run, 0.01 until three quarters, 0.001 after: the paper's "
        "32k/48k/64k iterations."
    ),
)
def check_paper_learning_rate(learning_rate):
    """Checks `learning_rate(step, total_steps)` against He et al.'s step schedule.

    Steps count from 0; the learning rate is divided by 10 from step `total_steps / 2` on and
    again from `3 * total_steps / 4` on. Runs of 64,000, 100 and 400 steps are tried.
    """
    if not callable(learning_rate):
        raise Incorrect(
            "Give a function `learning_rate(step, total_steps)`, not a "
            f"{type(learning_rate).__name__}."
        )
    first = True
    for total in (64_000, 100, 400):
        half, three_quarters = total // 2, 3 * total // 4
        steps = sorted(
            {0, half - 1, half, half + 1, three_quarters - 1, three_quarters}
            | {three_quarters + 1, total - 1}
        )
        values = {}
        for step in steps:
            value = learning_rate(step, total)
            if value is None:
                if first:
                    raise NotAttempted
                raise Incorrect(
                    f"Your function returned None for step {step:,} of {total:,}: every step "
                    "needs a learning rate."
                )
            first = False
            values[step] = _number(value, f"The learning rate at step {step:,}")
        _diagnose_schedule(values, total)


def _diagnose_schedule(values, total):
    correct = {step: _paper_rate(step, total) for step in values}

    def matches(expected):
        return all(math.isclose(values[s], expected[s], rel_tol=1e-5) for s in values)

    if matches(correct):
        return
    fixed = {s: 0.1 * 0.1 ** sum(s >= b for b in (32_000, 48_000)) for s in values}
    if total != 64_000 and matches(fixed):
        raise Incorrect(
            f"For a {total:,}-step run your LR never drops: the milestones are fractions of "
            "`total_steps` (50% and 75%), not the paper's fixed 32k and 48k."
        )
    late = {s: _paper_rate(s - 1, total) if s > 0 else 0.1 for s in values}
    if matches(late):
        raise Incorrect(
            f"At step {total // 2:,} of a {total:,}-step run the LR is already "
            f"{correct[total // 2]:g}; yours still gives {values[total // 2]:g}. The milestone "
            "is the first step with the new LR: compare with `>=`."
        )
    early = {s: _paper_rate(s + 1, total) for s in values}
    if matches(early):
        raise Incorrect(
            f"At step {total // 2 - 1:,} of a {total:,}-step run the LR is still "
            f"{correct[total // 2 - 1]:g}; yours drops one step early."
        )
    one_drop = {s: 0.1 if s < total // 2 else 0.01 for s in values}
    if matches(one_drop):
        raise Incorrect(
            "Your LR drops once, at 50%: the paper divides by 10 a second time at 75% of the "
            "run (0.001 for the last quarter)."
        )
    step = next(s for s in values if not math.isclose(values[s], correct[s], rel_tol=1e-5))
    raise Incorrect(
        f"At step {step:,} of a {total:,}-step run the LR should be {correct[step]:g} (0.1, "
        f"divided by 10 at 50% and again at 75%); yours is {values[step]:g}."
    )


# --- exercise 3 -----------------------------------------------------------------------------


@exercise("Optimizer steps of the full gpu run")
def check_total_steps(answer, epochs=182, batch_size=128, validation_size=5_000):
    """Checks the optimizer steps of the `gpu` profile on full CIFAR-10: 182 x 352 = 64,064."""
    if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
        raise Incorrect(f"Give the number of steps as a number, not {type(answer).__name__}.")
    train_images = CIFAR10_TRAIN_IMAGES - validation_size
    per_epoch = math.ceil(train_images / batch_size)
    correct = epochs * per_epoch
    if answer == correct:
        return (
            f"{per_epoch} batches an epoch (the last one holds {train_images % batch_size} "
            f"images) x {epochs} epochs; the schedule divides the LR at steps {correct // 2:,} "
            f"and {3 * correct // 4:,}, close to the paper's 32k and 48k."
        )
    if answer == epochs * (train_images // batch_size):
        raise Incorrect(
            "Almost: tf.data keeps the last, smaller batch of an epoch, so an epoch has "
            f"ceil({train_images:,} / {batch_size}) batches, not the floor."
        )
    if answer == epochs * math.ceil(CIFAR10_TRAIN_IMAGES / batch_size):
        raise Incorrect(
            f"The {validation_size:,} validation images are held out of the 50,000: the "
            f"network trains on {train_images:,}."
        )
    if answer == epochs * train_images:
        raise Incorrect("That counts images; the optimizer takes one step per batch.")
    if answer == 64_000:
        raise Incorrect(
            "64,000 is the paper's count; the profile's 182 whole epochs come out slightly "
            "different. Compute it from the epochs, images and batch size."
        )
    raise Incorrect(
        f"{answer:,} is not it. Steps = epochs x batches per epoch, with {train_images:,} "
        f"training images in batches of {batch_size}."
    )
