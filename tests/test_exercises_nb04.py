"""Tests of the checked exercises of notebook 04 (the training loop)."""

import keras
import pytest
import tensorflow as tf

from resnet_keras.course.exercises import nb04_training_loop as nb04
from resnet_keras.course.exercises.solutions import nb04_training_loop as solutions
from resnet_keras.training import paper_schedule, schedule_values

cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.mark.parametrize(
    "check", [nb04.check_train_step, nb04.check_paper_learning_rate, nb04.check_total_steps]
)
def test_placeholders_are_not_attempted(check, capsys):
    assert check(None).status == "not attempted"
    assert check(...).status == "not attempted"
    assert "not attempted yet" in capsys.readouterr().out


# --- exercise 1 -----------------------------------------------------------------------------


def _step(forward, loss_of, update):
    """A train step assembled from the given pieces, to build typical mistakes."""

    def train_step(model, optimizer, images, labels):
        with tf.GradientTape() as tape:
            loss = loss_of(labels, forward(model, images))
        update(optimizer, tape.gradient(loss, model.trainable_weights), model)
        return loss

    return train_step


def _training(model, images):
    return model(images, training=True)


def _apply(optimizer, gradients, model):
    optimizer.apply_gradients(zip(gradients, model.trainable_weights))


def _by_hand(optimizer, gradients, model):
    for weight, gradient in zip(model.trainable_weights, gradients):
        weight.assign_sub(0.1 * gradient)


def _ascend(optimizer, gradients, model):
    optimizer.apply_gradients(zip([-g for g in gradients], model.trainable_weights))


def _forward_outside_the_tape(model, optimizer, images, labels):
    logits = model(images, training=True)
    with tf.GradientTape() as tape:
        loss = cross_entropy(labels, logits)
    _apply(optimizer, tape.gradient(loss, model.trainable_weights), model)
    return loss


def _without_return(model, optimizer, images, labels):
    solutions.train_step(model, optimizer, images, labels)


def test_train_step_accepts_the_solution_eager_and_compiled():
    assert nb04.check_train_step(solutions.train_step, quiet=True).passed
    assert nb04.check_train_step(tf.function(solutions.train_step), quiet=True).passed
    assert nb04.check_train_step(nb04.reference_train_step, quiet=True).passed


def test_a_train_step_stub_is_not_attempted():
    verdict = nb04.check_train_step(lambda model, optimizer, images, labels: None, quiet=True)
    assert verdict.status == "not attempted"


@pytest.mark.parametrize(
    "wrong, feedback",
    [
        (_step(lambda model, images: model(images), cross_entropy, _apply), "training=True"),
        (_step(_training, cross_entropy, lambda *args: None), "step 5 is missing"),
        (
            _step(_training, keras.losses.SparseCategoricalCrossentropy(), _apply),
            "from_logits=True",
        ),
        (_step(_training, cross_entropy, _by_hand), "not through the optimizer"),
        (_step(_training, cross_entropy, _ascend), "climbs the loss"),
        (
            _step(
                _training,
                lambda y, z: keras.losses.sparse_categorical_crossentropy(y, z, from_logits=True),
                _apply,
            ),
            "scalar",
        ),
        (_forward_outside_the_tape, "GradientTape"),
        (_without_return, "return loss"),
        ("train_step", "function"),
    ],
)
def test_train_step_rejects_typical_mistakes(wrong, feedback):
    verdict = nb04.check_train_step(wrong, quiet=True)
    assert verdict.status == "incorrect", verdict
    assert feedback in verdict.message


def test_train_step_reports_a_crashing_step():
    def crashing(model, optimizer, images, labels):
        raise RuntimeError("boom")

    assert nb04.check_train_step(crashing, quiet=True).status == "error"


# --- exercise 2 -----------------------------------------------------------------------------


def test_paper_learning_rate_accepts_the_solution_and_matches_the_library():
    assert nb04.check_paper_learning_rate(solutions.paper_learning_rate, quiet=True).passed
    library = schedule_values(paper_schedule(400), 400)
    ours = [solutions.paper_learning_rate(step, 400) for step in range(400)]
    assert ours == pytest.approx(library.tolist(), rel=1e-6)


def test_a_schedule_stub_is_not_attempted():
    verdict = nb04.check_paper_learning_rate(lambda step, total: None, quiet=True)
    assert verdict.status == "not attempted"


def _drops(rate, milestones, compare=lambda step, boundary: step >= boundary, factor=0.1):
    return lambda step, total: (
        rate * factor ** sum(compare(step, m * total if m < 1 else m) for m in milestones)
    )


@pytest.mark.parametrize(
    "wrong, feedback",
    [
        (_drops(0.1, (0.5, 0.75), lambda step, boundary: step > boundary), "`>=`"),
        (_drops(0.1, (0.5, 0.75), lambda step, boundary: step + 1 >= boundary), "early"),
        (_drops(0.1, (32_000, 48_000)), "fractions of `total_steps`"),
        (_drops(0.1, (0.5,)), "second time"),
        (_drops(0.1, (0.5, 0.75), factor=0.5), "should be 0.01"),
        (lambda step, total: None if step else 0.1, "returned None"),
        (lambda step, total: "0.1", "number"),
        (0.1, "function"),
    ],
)
def test_paper_learning_rate_rejects_typical_mistakes(wrong, feedback):
    verdict = nb04.check_paper_learning_rate(wrong, quiet=True)
    assert verdict.status == "incorrect", verdict
    assert feedback in verdict.message


# --- exercise 3 -----------------------------------------------------------------------------


def test_total_steps_accepts_the_solution():
    assert solutions.GPU_TOTAL_STEPS == 64_064
    assert nb04.check_total_steps(solutions.GPU_TOTAL_STEPS, quiet=True).passed


@pytest.mark.parametrize(
    "wrong, feedback",
    [
        (182 * 351, "last, smaller batch"),
        (182 * 391, "validation images"),
        (182 * 45_000, "counts images"),
        (64_000, "paper's count"),
        (1, "not it"),
        ("64064", "number"),
    ],
)
def test_total_steps_rejects_typical_mistakes(wrong, feedback):
    verdict = nb04.check_total_steps(wrong, quiet=True)
    assert verdict.status == "incorrect"
    assert feedback in verdict.message


# --- questions ------------------------------------------------------------------------------
def test_steps_per_epoch_is_what_tf_data_counts():
    batches = int(tf.data.Dataset.range(50_000).batch(128).cardinality())
    assert batches == solutions.QUESTION_ANSWERS["steps_in_an_epoch"] == 391
    assert "floor" in nb04.steps_in_an_epoch(390, quiet=True).message
