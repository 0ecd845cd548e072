"""The checkers of notebook 09 (transfer learning): each accepts its reference solution, says
"not attempted" to the template, and names each usual slip."""

import numpy as np
import pytest

from resnet_keras.course.exercises import nb09_transfer as nb
from resnet_keras.course.exercises.solutions import nb09_transfer as solutions


def test_the_solutions_pass_and_the_templates_are_not_attempted():
    assert nb.check_switch_loss(solutions.switch_loss, quiet=True).passed
    assert nb.check_preprocess(solutions.preprocess, quiet=True).passed
    assert nb.check_switch_loss(lambda m, b, x, y: None, quiet=True).status == "not attempted"
    assert nb.check_preprocess(lambda p, m, s: None, quiet=True).status == "not attempted"


def _frozen_switch(model, base, images, labels):
    # The usual slip: training=True on a still-frozen base, which runs in inference mode.
    import keras

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return float(loss(labels, model(images, training=True))) - float(
        loss(labels, model(images, training=False))
    )


def _unrestored(model, base, images, labels):
    import keras

    import resnet_keras as rk

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    inference = float(loss(labels, model(images, training=False)))
    rk.transfer.unfreeze(base, batch_norm=True)
    return float(loss(labels, model(images, training=True))) - inference


def _swapped(model, base, images, labels):
    return -solutions.switch_loss(model, base, images, labels)


@pytest.mark.parametrize(
    ("attempt", "named"),
    [
        (_frozen_switch, "frozen BatchNormalization layer runs in inference mode"),
        (_unrestored, "moves the moving statistics"),
        (_swapped, "sign is swapped"),
        (lambda m, b, x, y: 0.5, "the difference is"),
        (lambda m, b, x, y: "big", "one number"),
    ],
)
def test_switch_loss_names_each_slip(attempt, named):
    result = nb.check_switch_loss(attempt, quiet=True)
    assert not result.passed
    assert named in result.message


def test_the_switch_is_measurable_on_the_checkers_networks():
    # The exercise can only be failed by a zero difference if the true one is not zero.
    model, base, images, labels = nb._switch_problem(0)
    assert abs(solutions.switch_loss(model, base, images, labels)) > 1e-3


def test_preprocess_matches_the_input_pipeline():
    # The exercise's rule is what resnet_keras.data.load applies to every image.
    from resnet_keras import data

    loaded = data.load("digits", batch_size=8, augment=False, validation_size=0, train_size=64)
    pixels = data.digits.arrays()[2][:8]  # the first test images, in the split's order
    images, _ = next(iter(loaded.test))
    got = solutions.preprocess(pixels, loaded.info.mean, loaded.info.std)
    np.testing.assert_allclose(got, np.asarray(images), atol=1e-5)


@pytest.mark.parametrize(
    ("attempt", "named"),
    [
        (lambda p, m, s: (p - np.asarray(m)) / np.asarray(s), "divide by 255"),
        (lambda p, m, s: (p / 255.0 - np.asarray(m)) / np.asarray(s) ** 2, "not the variance"),
        (lambda p, m, s: p / 255.0 - np.asarray(m), "second step is missing"),
        (lambda p, m, s: (p / 255.0) / np.asarray(s) - np.asarray(m), "before dividing"),
        (lambda p, m, s: p[:1] / 255.0, "shape"),
    ],
)
def test_preprocess_names_each_slip(attempt, named):
    result = nb.check_preprocess(attempt, quiet=True)
    assert not result.passed
    assert named in result.message
