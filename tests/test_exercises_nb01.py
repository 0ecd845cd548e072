"""Tests of the checked exercises of notebook 01 (background)."""

import math

import keras
import pytest

from resnet_keras.course.exercises import nb01_background as nb01
from resnet_keras.course.exercises.solutions import nb01_background as solutions


@pytest.mark.parametrize(
    "check", [nb01.check_conv_translation, nb01.check_conv_parameters, nb01.check_initial_loss]
)
def test_placeholders_are_not_attempted(check, capsys):
    assert check(None).status == "not attempted"
    assert check(...).status == "not attempted"
    assert "not attempted yet" in capsys.readouterr().out


def test_conv_translation_accepts_the_solution_even_after_it_was_called():
    layer = solutions.conv_translation()
    assert nb01.check_conv_translation(layer, quiet=True).passed
    # The checker works on a copy, so checking twice is fine.
    assert nb01.check_conv_translation(layer, quiet=True).passed


@pytest.mark.parametrize(
    "wrong, feedback",
    [
        (keras.layers.Conv2D(128, 3), "padding='same'"),
        (keras.layers.Conv2D(128, 3, padding="same", use_bias=False), "bias"),
        (keras.layers.Conv2D(64, 3, padding="same"), "output channels"),
        (keras.layers.Conv2D(128, 3, strides=2, padding="same"), "strides=1"),
        (keras.layers.Conv2D(128, 3, padding="same", activation="relu"), "activation"),
        (keras.layers.Dense(128), "Conv2D"),
        (keras.layers.Conv2D, "instance"),
    ],
)
def test_conv_translation_rejects_typical_mistakes(wrong, feedback):
    verdict = nb01.check_conv_translation(wrong, quiet=True)
    assert verdict.status == "incorrect" and feedback in verdict.message


def test_conv_parameters_accepts_the_solution():
    assert solutions.CONV3_PARAMETERS == 295_168
    assert nb01.check_conv_parameters(solutions.CONV3_PARAMETERS, quiet=True).passed


@pytest.mark.parametrize(
    "wrong, feedback",
    [
        (294_912, "bias"),
        (294_912 + 128, "output"),
        (128 * 256 + 256, "3 x 3"),
        (3 * 3 * 256 + 256, "128"),
        (1, "not it"),
    ],
)
def test_conv_parameters_rejects_typical_mistakes(wrong, feedback):
    verdict = nb01.check_conv_parameters(wrong, quiet=True)
    assert verdict.status == "incorrect" and feedback in verdict.message


def test_an_initial_loss_stub_is_not_attempted():
    assert nb01.check_initial_loss(lambda c: None, quiet=True).status == "not attempted"


def test_initial_loss_accepts_the_solution():
    assert math.isclose(solutions.expected_initial_loss(10), 2.302585, rel_tol=1e-6)
    assert nb01.check_initial_loss(solutions.expected_initial_loss, quiet=True).passed


@pytest.mark.parametrize(
    "wrong, feedback",
    [
        (lambda c: 1 / c, "probability"),
        (math.log2, "log2"),
        (math.log10, "log10"),
        (lambda c: 2.303, "For 100 classes"),
        (lambda c: None if c == 100 else math.log(c), "returned None"),
    ],
)
def test_initial_loss_rejects_typical_mistakes(wrong, feedback):
    verdict = nb01.check_initial_loss(wrong, quiet=True)
    assert verdict.status == "incorrect" and feedback in verdict.message
