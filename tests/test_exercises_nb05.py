"""Tests of the checked exercises of notebook 05 (pitfalls)."""

import numpy as np
import pytest
from keras import layers, ops

from resnet_keras.course.exercises import nb05_pitfalls as nb05
from resnet_keras.course.exercises.solutions import nb05_pitfalls as solutions
from resnet_keras.training import LRFinderResult, suggest_learning_rate


class _Block(layers.Layer):
    """conv-BN-ReLU-conv-BN plus identity; subclasses choose how BN is called."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.bn1 = layers.BatchNormalization()
        self.conv2 = layers.Conv2D(filters, 3, padding="same", use_bias=False)
        self.bn2 = layers.BatchNormalization()

    def _bn_training(self, training):
        return training

    def call(self, inputs, training=None):
        flag = self._bn_training(training)
        branch = ops.relu(self.bn1(self.conv1(inputs), training=flag))
        return ops.relu(inputs + self.bn2(self.conv2(branch), training=flag))


class Forgetful(_Block):
    def call(self, inputs, training=None):
        branch = ops.relu(self.bn1(self.conv1(inputs)))
        return ops.relu(inputs + self.bn2(self.conv2(branch)))


class HalfForgetful(_Block):
    def call(self, inputs, training=None):
        branch = ops.relu(self.bn1(self.conv1(inputs), training=training))
        return ops.relu(inputs + self.bn2(self.conv2(branch)))


class AlwaysTraining(_Block):
    def _bn_training(self, training):
        return True


class NoTrainingArgument(_Block):
    def call(self, inputs):
        return super().call(inputs)


class NoBatchNorm(layers.Layer):
    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.conv = layers.Conv2D(filters, 3, padding="same")

    def call(self, inputs, training=None):
        return ops.relu(inputs + self.conv(inputs))


# --- exercise 1 -----------------------------------------------------------------------------


def test_fixed_block_accepts_the_solution():
    assert nb05.check_fixed_block(solutions.FixedBlock, quiet=True).status == "correct"


def test_fixed_block_accepts_a_correct_variant():
    assert nb05.check_fixed_block(_Block, quiet=True).passed


def test_fixed_block_not_attempted():
    assert nb05.check_fixed_block(None, quiet=True).status == "not attempted"


@pytest.mark.parametrize(
    "answer, words",
    [
        (Forgetful, "without `training=training`"),
        (HalfForgetful, "#2 of 2"),
        (AlwaysTraining, "training=True always"),
        (NoTrainingArgument, "no `training` argument"),
        (NoBatchNorm, "no BatchNormalization"),
        (Forgetful(8), "class"),
    ],
)
def test_fixed_block_rejects_typical_mistakes(answer, words):
    verdict = nb05.check_fixed_block(answer, quiet=True)
    assert verdict.status == "incorrect"
    assert words in verdict.message


def test_fixed_block_reports_a_crashing_block():
    class Crashing(_Block):
        def call(self, inputs, training=None):
            raise RuntimeError("boom")

    assert nb05.check_fixed_block(Crashing, quiet=True).status == "error"


# --- exercise 2 -----------------------------------------------------------------------------


def test_l2_factor_accepts_the_solution():
    assert solutions.l2_factor(5e-4) == 2.5e-4
    assert nb05.check_l2_factor(solutions.l2_factor(5e-4), quiet=True).passed
    assert nb05.check_l2_factor(5e-5, weight_decay=1e-4, quiet=True).passed


def test_l2_factor_not_attempted():
    assert nb05.check_l2_factor(None, quiet=True).status == "not attempted"


@pytest.mark.parametrize(
    "answer, words",
    [(5e-4, "factor-of-two"), (1e-3, "multiplied by two"), (1e-4, "is not it"), ("5e-4", "number")],
)
def test_l2_factor_rejects_typical_mistakes(answer, words):
    verdict = nb05.check_l2_factor(answer, quiet=True)
    assert verdict.status == "incorrect"
    assert words in verdict.message


def test_l2_factor_matches_one_sgd_step_of_coupled_decay():
    import keras

    weight_decay, learning_rate = 5e-4, 0.1
    kernel = np.array([[1.0], [-2.0]], "float32")
    dense = keras.layers.Dense(
        1,
        use_bias=False,
        kernel_initializer=keras.initializers.Constant(kernel),
        kernel_regularizer=keras.regularizers.l2(solutions.l2_factor(weight_decay)),
    )
    model = keras.Sequential([keras.Input((2,)), dense])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="mse")
    model.train_on_batch(np.zeros((1, 2), "float32"), np.zeros((1, 1), "float32"))
    expected = kernel - learning_rate * weight_decay * kernel  # zero data gradient
    np.testing.assert_allclose(dense.kernel.numpy(), expected, rtol=1e-6)


# --- exercise 3 -----------------------------------------------------------------------------


def _curve(blow_up=0.3):
    lrs = np.logspace(-5, 1, 61)
    # Flat at first, falls around 1e-2, then blows up past `blow_up`: the usual shape.
    losses = 2 - np.tanh(np.log10(lrs) + 2) + np.where(lrs > blow_up, 50 * lrs, 0)
    suggestion, steepest, lowest = suggest_learning_rate(lrs, losses)
    return LRFinderResult(
        list(lrs), list(losses), list(losses), suggestion, "steepest", steepest, lowest
    )


def test_learning_rate_accepts_the_solution_and_the_falling_part():
    curve = _curve()
    low, high = nb05.falling_range(curve)
    assert 3e-4 < low < 3e-3 and 0.2 < high < 0.4
    assert nb05.check_learning_rate_choice(solutions.pick_learning_rate(curve), curve).passed
    assert nb05.check_learning_rate_choice(0.05, curve, quiet=True).passed
    # A curve whose steepest point is its minimum: the solution falls back to a tenth of it.
    broken = _curve(blow_up=1e-2)
    assert nb05.check_learning_rate_choice(solutions.pick_learning_rate(broken), broken).passed


def test_learning_rate_not_attempted():
    assert nb05.check_learning_rate_choice(None, _curve(), quiet=True).status == "not attempted"


@pytest.mark.parametrize(
    "answer, words",
    [(1e-4, "too low"), (0.5, "too high"), (5.0, "too high"), (100.0, "outside"), (-1, "positive")],
)
def test_learning_rate_rejects_typical_mistakes(answer, words):
    verdict = nb05.check_learning_rate_choice(answer, _curve(), quiet=True)
    assert verdict.status == "incorrect"
    assert words in verdict.message


def test_learning_rate_range_ignores_an_early_dip():
    # A sweep whose first smoothed point happens to be low, as real sweeps often start.
    curve = _curve()
    curve.smoothed_losses[0] = 1.5
    low, _ = nb05.falling_range(curve)
    assert low > 3e-4
    verdict = nb05.check_learning_rate_choice(1e-5, curve, quiet=True)
    assert "too low" in verdict.message
