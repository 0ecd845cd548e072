"""The checkers of notebook 07 (why residual networks work): each accepts its reference
solution, says "not attempted" to the template, and names each usual slip."""

import numpy as np
import pytest

from resnet_keras.course.exercises import nb07_why_it_works as nb
from resnet_keras.course.exercises.solutions import nb07_why_it_works as solutions


def test_the_solutions_pass_and_the_templates_are_not_attempted():
    assert nb.check_final_errors(solutions.summarise, quiet=True).passed
    assert nb.check_first_epoch_below(solutions.first_epoch_below, quiet=True).passed
    assert nb.check_final_errors(lambda runs: None, quiet=True).status == "not attempted"
    assert (
        nb.check_first_epoch_below(lambda runs, threshold: None, quiet=True).status
        == "not attempted"
    )


def _finals(runs, key="training_error", pick=-1, centre=np.mean):
    values = [run[key][pick] for run in runs]
    return float(centre(values)), min(values), max(values)


@pytest.mark.parametrize(
    "summarise, expected",
    [
        (lambda runs: _finals(runs, key="test_error"), "test errors"),
        (lambda runs: _finals(runs, centre=np.median), "median"),
        (lambda runs: _finals(runs, pick=0), "first epoch"),
        (
            lambda runs: (
                float(np.mean([min(r["training_error"]) for r in runs])),
                min(min(r["training_error"]) for r in runs),
                max(min(r["training_error"]) for r in runs),
            ),
            "lowest error",
        ),
        (lambda runs: (lambda m, lo, hi: (m, hi, lo))(*_finals(runs)), "swapped"),
        (lambda runs: 0.3, "three numbers"),
        (lambda runs: (0.1, 0.2, 0.3), "expected (mean, lowest, highest)"),
    ],
)
def test_summarise_slips_are_named(summarise, expected):
    verdict = nb.check_final_errors(summarise, quiet=True)
    assert verdict.status == "incorrect" and expected in verdict.message


def _mean_curve_index_from_zero(runs, threshold):
    mean = np.mean([run["training_error"] for run in runs], axis=0)
    below = np.flatnonzero(mean < threshold)
    return int(below[0]) if below.size else None


def _single_seed(runs, threshold):
    return solutions.first_epoch_below(runs[:1], threshold)


def _never_none(runs, threshold):
    return solutions.first_epoch_below(runs, threshold) or len(runs[0]["training_error"])


@pytest.mark.parametrize(
    "function, expected",
    [
        (_mean_curve_index_from_zero, "counted from 0"),
        (_single_seed, "one seed"),
        (_never_none, "return None"),
    ],
)
def test_first_epoch_slips_are_named(function, expected):
    verdict = nb.check_first_epoch_below(function, quiet=True)
    assert verdict.status == "incorrect" and expected in verdict.message


def test_a_non_function_is_refused_in_one_line():
    for check in (nb.check_final_errors, nb.check_first_epoch_below):
        verdict = check(42, quiet=True)
        assert verdict.status == "incorrect" and "Define a function" in verdict.message


def test_the_variance_question_knows_the_linear_slip():
    assert nb.variance_without_normalisation(2**20, quiet=True).passed
    assert "multiply" in nb.variance_without_normalisation(20, quiet=True).message
    assert "standard deviation" in nb.variance_without_normalisation(1024, quiet=True).message
