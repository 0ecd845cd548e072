"""Checked exercises of notebook 04, "The training loop".

1. `check_train_step`: the seed's steps 2 to 5 (forward, loss, backward, update) for one batch.
2. `check_paper_learning_rate`: the paper's step schedule as a function of the step.
3. `check_total_steps`: the optimizer steps of the `gpu` profile's full run.

Questions (graded with feedback for every wrong choice): `he_initialisation`,
`learning_rate_drop`, `steps_in_an_epoch`.

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
from resnet_keras.course.exercises.questions import MultipleChoice, NumericAnswer

__all__ = [
    "CIFAR10_TRAIN_IMAGES",
    "check_paper_learning_rate",
    "check_total_steps",
    "check_train_step",
    "he_initialisation",
    "learning_rate_drop",
    "reference_train_step",
    "steps_in_an_epoch",
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


# --- questions ------------------------------------------------------------------------------

he_initialisation = MultipleChoice(
    "Question 1 · Glorot or He through twenty ReLU layers",
    "A batch of unit-variance inputs goes through 20 `Dense(256)` layers with ReLU, without "
    "batch normalisation and without biases, once with Keras' default `glorot_uniform` "
    "kernels (variance 1/fan_avg, here 1/256) and once with `he_normal` (variance 2/fan_in, "
    "here 2/256). What is the standard deviation of the last layer's activations?",
    {
        "a": "Close to 1 for both: both initialisers are designed to keep the scale of the "
        "signal constant from layer to layer.",
        "b": "About 0.001 with Glorot (it loses a factor of about 1/sqrt(2) in every layer), "
        "still of order 1 with He.",
        "c": "Of order 1 with Glorot, but about 1,000 with He: its variance is twice as large, "
        "so the signal doubles in every layer.",
        "d": "About 0.001 for both: without batch normalisation no initialisation can keep a "
        "20-layer ReLU network's signal from fading.",
    },
    answer="b",
    feedback={
        "a": "Glorot and Bengio (2010) derived 1/fan_avg for activations that are symmetric "
        "around 0 (tanh, close to linear near 0). ReLU sets the negative half to zero, which "
        "halves the second moment in every layer: a factor 2^-20 in variance over 20 layers.",
        "c": "The factor 2 does not add up to growth: it exactly compensates for the half of "
        "the signal that ReLU zeroes. Each layer doubles the variance and ReLU halves it again; "
        "only a network without ReLU (linear layers) would grow by 2 per layer with He.",
        "d": "Batch normalisation is one cure, the right scale is another: He et al. (2015, "
        "Fig. 3) train a 30-layer plain network without batch normalisation from scratch with "
        "their initialisation, where Glorot's initialisation stalls.",
    },
    success=(
        "With variance 1/fan_in (Glorot, for fan_in = fan_out) a layer keeps the second moment "
        "of its input and ReLU halves it: after 20 layers the standard deviation is about "
        "2^-10, 0.001. He et al. (2015) double the variance to 2/fan_in, which makes up for "
        "the half ReLU removes, so the scale survives any depth."
    ),
)
"""The He-initialisation primer before section 2 (the right letter: b)."""

learning_rate_drop = MultipleChoice(
    "Question 2 · What a learning-rate drop does",
    "He et al. (2016) train at LR 0.1 and divide it by 10 at 32k and again at 48k of their 64k "
    "iterations. What happens to the training error right after each drop?",
    {
        "a": "It rises for a while: the network has to adapt to the new step size before it "
        "makes progress again.",
        "b": "Nothing visible: momentum 0.9 averages the last steps and compensates for the "
        "smaller learning rate.",
        "c": "It falls in a step and then flattens out at a lower level: the smaller steps "
        "settle into the valley that the large, noisy steps kept bouncing across.",
        "d": "It stops improving: at LR 0.01 and 0.001 the steps are too small to make "
        "progress; the drops only freeze the weights for the end of the run.",
    },
    answer="c",
    feedback={
        "a": "Nothing is reset at a drop: the weights and the momentum buffers carry on, and a "
        "smaller step cannot undo what was learned. The error jumps up when a schedule raises "
        "the LR (warm restarts), not when it lowers it.",
        "b": "Momentum does not compensate for a smaller LR, it scales with it: with momentum "
        "0.9 the effective step is about 10 x LR at any LR, so dividing the LR by 10 divides "
        "the effective step by 10 too.",
        "d": "The error falls fastest right after a drop (He et al. 2016, Fig. 6): 0.01 is far "
        "from too small for these networks. A rate that barely moves the weights is more like "
        "1e-4 (notebook 05, section 3).",
    },
    success=(
        "At LR 0.1 SGD makes fast progress, but the noise of its large steps holds the loss "
        "at a level set by the LR; divided by 10, the steps settle lower, and the error curves "
        "of He et al. (2016, Fig. 6) fall in a step at 32k and again at 48k."
    ),
)
"""Asked before the learning-rate schedule of section 3 (the right letter: c)."""

steps_in_an_epoch = NumericAnswer(
    "Question 3 · Steps per epoch",
    "He et al.'s final CIFAR-10 models train on all 50,000 training images in batches of 128. "
    "How many optimizer steps is one epoch, with tf.data's default batching (the last, "
    "smaller batch is kept)?",
    391,
    tolerance=0,
    mistakes=[
        (
            390,
            "That is the floor of 50,000 / 128 = 390.6: it drops the 80 images left over. "
            "tf.data keeps the last, smaller batch (unless `drop_remainder=True`), and that "
            "batch is a step too.",
        ),
        (
            390.625,
            "50,000 / 128 = 390.625, but a step is one whole batch: the 0.625 of a batch is a "
            "last batch of 80 images, and it costs one more step.",
        ),
        (
            352,
            "352 batches is 45,000 images, the training split left after holding out 5,000 "
            "for validation (the gpu profile's run). The question is about all 50,000.",
        ),
        (50_000, "That counts images; the optimizer takes one step per batch of 128."),
    ],
    hint="Steps per epoch = the number of batches = 50,000 / 128, rounded up.",
    success=(
        "ceil(50,000 / 128) = 391 batches, the last one of 80 images. The paper's 64k "
        "iterations on all 50,000 images are then 64,000 / 391 = about 164 epochs."
    ),
)
"""Asked in section 6, before the gpu profile's numbers (the right answer: 391)."""
