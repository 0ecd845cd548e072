"""Tests of the checked exercises of notebook 02 (residual connections)."""

import pytest
from keras import layers, ops

from resnet_keras.course.exercises import nb02_residual_connections as nb02
from resnet_keras.course.exercises.solutions import nb02_residual_connections as solutions


class Template(layers.Layer):
    """The notebook's template: everything but the missing line."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.bn1 = layers.BatchNormalization()
        self.conv2 = layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.bn2 = layers.BatchNormalization()

    def branch(self, x, training):
        f = ops.relu(self.bn1(self.conv1(x), training=training))
        return self.bn2(self.conv2(f), training=training)

    def call(self, x, training=None):
        f = self.branch(x, training)  # noqa: F841 - the learner's line is missing
        y = None
        return y


class NoShortcut(Template):
    def call(self, x, training=None):
        return ops.relu(self.branch(x, training))


class NoFinalRelu(Template):
    def call(self, x, training=None):
        return self.branch(x, training) + x


class ReluBeforeAddition(Template):
    def call(self, x, training=None):
        return ops.relu(self.branch(x, training)) + x


class ForgetsTraining(Template):
    def call(self, x, training=None):
        f = ops.relu(self.bn1(self.conv1(x)))
        return ops.relu(self.bn2(self.conv2(f)) + x)


class AlwaysTraining(Template):
    def call(self, x, training=None):
        return ops.relu(self.branch(x, True) + x)


class Renamed(layers.Layer):
    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(filters, 3, padding="same")

    def call(self, x, training=None):
        return ops.relu(self.conv(x) + x)


class Crashes(Template):
    def call(self, x, training=None):
        return self.branch(x, training) + ops.zeros((1, 2, 3))


def test_residual_block_placeholders_are_not_attempted(capsys):
    assert nb02.check_residual_block(None).status == "not attempted"
    assert nb02.check_residual_block(Template).status == "not attempted"
    assert capsys.readouterr().out.count("not attempted yet") == 2


def test_residual_block_accepts_the_solution():
    verdict = nb02.check_residual_block(solutions.ResidualBlock, quiet=True)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize(
    "wrong, feedback",
    [
        (NoShortcut, "shortcut is missing"),
        (NoFinalRelu, "without the final ReLU"),
        (ReluBeforeAddition, "after the addition"),
        (ForgetsTraining, "training=training"),
        (AlwaysTraining, "training=True"),
        (Renamed, "keep the sub-layers"),
        (Template(8), "class"),
    ],
)
def test_residual_block_rejects_typical_mistakes(wrong, feedback):
    verdict = nb02.check_residual_block(wrong, quiet=True)
    assert verdict.status == "incorrect", verdict
    assert feedback in verdict.message


def test_residual_block_reports_a_crash_without_raising():
    verdict = nb02.check_residual_block(Crashes, quiet=True)
    assert verdict.status == "error"


def test_projection_parameters_accepts_the_solution_and_matches_the_library():
    assert solutions.projection_parameters(16, 32) == 576
    # ResNet-20 option B minus option A (272,474 - 269,722): two projections.
    assert solutions.projection_parameters(16, 32) + solutions.projection_parameters(32, 64) == (
        272_474 - 269_722
    )
    verdict = nb02.check_projection_parameters(solutions.projection_parameters, quiet=True)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize(
    "wrong, feedback",
    [
        (lambda i, o: i * o, "gamma and beta"),
        (lambda i, o: i * o + 4 * o, "moving mean"),
        (lambda i, o: 9 * i * o + 2 * o, "1x1"),
        (lambda i, o: i * o + 3 * o, "no bias"),
        (lambda i, o: None if i == 32 else i * o + 2 * o, "returned None"),
        (576, "Define a function"),
    ],
)
def test_projection_parameters_rejects_typical_mistakes(wrong, feedback):
    verdict = nb02.check_projection_parameters(wrong, quiet=True)
    assert verdict.status == "incorrect" and feedback in verdict.message


def test_projection_parameters_not_attempted():
    assert nb02.check_projection_parameters(None, quiet=True).status == "not attempted"
    stub = nb02.check_projection_parameters(lambda i, o: None, quiet=True)
    assert stub.status == "not attempted"
