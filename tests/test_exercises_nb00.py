"""Tests of the checked exercises of notebook 00 (setup)."""

import math

import pytest

from resnet_keras.course.exercises import nb00_setup as nb00
from resnet_keras.course.exercises.solutions import nb00_setup as solutions
from resnet_keras.data import DataInfo


def _info(name, notice=None):
    return DataInfo(
        name=name,
        class_names=tuple("0123456789"),
        image_shape=(32, 32, 3),
        num_classes=10,
        train_size=1237,
        validation_size=200,
        test_size=360,
        source="test",
        mean=None,
        std=None,
        normalization="none",
        augmentation="none",
        batch_size=128,
        seed=0,
        notice=notice,
    )


OFFLINE = _info("digits", notice="CIFAR-10 is not available here.")
ONLINE = _info("cifar10")


@pytest.mark.parametrize(
    "check, extra",
    [
        (nb00.check_dataset_name, (OFFLINE,)),
        (nb00.check_steps_per_epoch, ()),
        (nb00.check_paper_epochs, ()),
    ],
)
def test_placeholders_are_not_attempted(check, extra, capsys):
    assert check(None, *extra).status == "not attempted"
    assert "not attempted yet" in capsys.readouterr().out


def test_dataset_name_accepts_the_solution_offline_and_online():
    assert nb00.check_dataset_name(solutions.dataset_name(OFFLINE), OFFLINE).passed
    verdict = nb00.check_dataset_name(solutions.dataset_name(ONLINE), ONLINE, quiet=True)
    assert verdict.passed and "CIFAR-10 was available" in verdict.message


@pytest.mark.parametrize(
    "answer, feedback",
    [("auto", "resolves it"), ("cifar10", "fell back"), (10, "as a string")],
)
def test_dataset_name_rejects_typical_mistakes(answer, feedback):
    verdict = nb00.check_dataset_name(answer, OFFLINE, quiet=True)
    assert verdict.status == "incorrect" and feedback in verdict.message


def test_a_stub_that_returns_none_is_not_attempted():
    assert nb00.check_steps_per_epoch(lambda n, b: None, quiet=True).status == "not attempted"


def test_steps_per_epoch_accepts_the_solution():
    verdict = nb00.check_steps_per_epoch(solutions.steps_per_epoch, quiet=True)
    assert verdict.passed and "ceil" in verdict.message


@pytest.mark.parametrize(
    "wrong, feedback",
    [
        (lambda n, b: n // b, "full batches"),
        (lambda n, b: n / b, "integer"),
        (lambda n, b: None if n == 45_000 else -(-n // b), "returned None"),
        (lambda n, b: b, "takes"),
        (12, "Define a function"),
    ],
)
def test_steps_per_epoch_rejects_typical_mistakes(wrong, feedback):
    verdict = nb00.check_steps_per_epoch(wrong, quiet=True)
    assert verdict.status == "incorrect" and feedback in verdict.message


def test_steps_per_epoch_reports_a_crashing_function_without_raising():
    verdict = nb00.check_steps_per_epoch(lambda n, b: n / 0, quiet=True)
    assert verdict.status == "error" and "ZeroDivisionError" in verdict.message


def test_paper_epochs_accepts_both_readings_of_the_paper_and_explains_the_other():
    assert math.isclose(solutions.paper_epochs(), 64_000 / 391)
    for answer, other in [(solutions.paper_epochs(), "181.8"), (164, "181.8"), (182, "163.7")]:
        verdict = nb00.check_paper_epochs(answer, quiet=True)
        assert verdict.passed and other in verdict.message


@pytest.mark.parametrize(
    "answer, feedback",
    [
        (64_000 / 50_000, "whole batch"),
        (64_000 / 45_000, "whole batch"),
        (391, "steps in one epoch of 50,000"),
        (352, "steps in one epoch of 45,000"),
        (200, "not it"),
        ("182", "as a number"),
    ],
)
def test_paper_epochs_rejects_typical_mistakes(answer, feedback):
    verdict = nb00.check_paper_epochs(answer, quiet=True)
    assert verdict.status == "incorrect" and feedback in verdict.message
