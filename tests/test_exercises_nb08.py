"""The checkers of notebook 08 (inside a trained ResNet): each accepts its reference solution,
says "not attempted" to the template, and names each usual slip."""

import numpy as np
import pytest

from resnet_keras import landscape
from resnet_keras.course.exercises import nb08_inside as nb
from resnet_keras.course.exercises.solutions import nb08_inside as solutions


def _norms(array, axes):
    """One Euclidean norm per slice over `axes` (np.linalg.norm takes at most two axes)."""
    return np.sqrt(np.sum(np.square(array), axis=axes, keepdims=True))


def test_the_solutions_pass_and_the_templates_are_not_attempted():
    assert nb.check_filter_normalize(solutions.filter_normalize, quiet=True).passed
    assert nb.check_most_harmful_block(solutions.most_harmful, quiet=True).passed
    assert nb.check_filter_normalize(lambda d, w: None, quiet=True).status == "not attempted"
    assert nb.check_most_harmful_block(lambda study: None, quiet=True).status == "not attempted"


def test_the_reference_rule_is_the_librarys():
    # The exercise's rule is the one rk.landscape.random_direction applies to every kernel.
    import resnet_keras as rk

    model = rk.CifarResNet(8, input_shape=(8, 8, 3))
    direction = landscape.random_direction(model, seed=0, normalization=None)
    normalised = landscape.random_direction(model, seed=0)
    for weight, raw, expected in zip(model.trainable_weights, direction, normalised):
        if len(weight.shape) == 4:
            got = solutions.filter_normalize(raw, np.asarray(weight))
            np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def _axis0(direction, weight):
    norms = _norms(direction, (1, 2, 3))
    return direction / norms * _norms(weight, (1, 2, 3))


@pytest.mark.parametrize(
    "function, expected",
    [
        (lambda d, w: d / np.linalg.norm(d) * np.linalg.norm(w), "whole kernel"),
        (_axis0, "first axis"),
        (lambda d, w: d * _norms(w, (0, 1, 2)), "not divided"),
        (lambda d, w: d[..., :2], "shape"),
        (lambda d, w: d, "d_j / |d_j| * |w_j|"),
    ],
)
def test_filter_normalisation_slips_are_named(function, expected):
    verdict = nb.check_filter_normalize(function, quiet=True)
    assert verdict.status == "incorrect" and expected in verdict.message


@pytest.mark.parametrize(
    "function, expected",
    [
        (lambda study: max(study.deleted, key=study.deleted.get), "least harmful"),
        (lambda study: max(study.drops.values()), "name"),
        (lambda study: next(iter(study.deleted)) if len(study.deleted) == 3 else "b1", "b3"),
    ],
)
def test_most_harmful_slips_are_named(function, expected):
    verdict = nb.check_most_harmful_block(function, quiet=True)
    assert verdict.status == "incorrect" and expected in verdict.message


def test_the_paths_question_knows_the_additive_slip():
    assert nb.paths_in_resnet20(512, quiet=True).passed
    assert "doubles" in nb.paths_in_resnet20(9, quiet=True).message
