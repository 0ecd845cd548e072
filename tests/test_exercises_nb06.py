"""Tests of the checked exercises of notebook 06 (beyond ResNet)."""

import keras
import numpy as np
import pytest
from keras import layers, ops

from resnet_keras import count_macs
from resnet_keras.course.exercises import nb06_beyond_resnet as nb06
from resnet_keras.course.exercises.solutions import nb06_beyond_resnet as solutions

# --- exercise 1 -----------------------------------------------------------------------------


def test_grouped_conv_count_matches_keras_and_count_macs():
    inputs = keras.Input((8, 8, 128))
    conv = layers.Conv2D(128, 3, padding="same", groups=32, use_bias=False)
    model = keras.Model(inputs, conv(inputs))
    assert model.count_params() == nb06.grouped_conv_params(128, 128, 3, 32) == 4608
    assert count_macs(model) == 4608 * 8 * 8
    with pytest.raises(ValueError, match="groups"):
        nb06.grouped_conv_params(128, 128, 3, 5)


def test_grouped_conv_accepts_the_solution():
    assert nb06.check_grouped_conv_params(solutions.grouped_conv_weights, quiet=True).passed
    assert nb06.check_grouped_conv_params(4608.0, quiet=True).passed


def test_grouped_conv_not_attempted():
    assert nb06.check_grouped_conv_params(None, quiet=True).status == "not attempted"


@pytest.mark.parametrize(
    "answer, words",
    [
        (147_456, "dense convolution"),
        (4608 + 128, "bias"),
        (144, "twice"),
        (1152 // 8, "twice"),
        (36 * 4, "twice"),
        (3 * 3 * 4 * 4, "one group"),
        (1000, "is not it"),
        (4608.5, "whole number"),
    ],
)
def test_grouped_conv_rejects_typical_mistakes(answer, words):
    verdict = nb06.check_grouped_conv_params(answer, quiet=True)
    assert verdict.status == "incorrect"
    assert words in verdict.message


# --- exercise 2 -----------------------------------------------------------------------------


class _Base(layers.Layer):
    def __init__(self, survival_probability, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.p = survival_probability
        self.generator = keras.random.SeedGenerator(seed)

    def _draw(self, inputs):
        shape = (ops.shape(inputs)[0], 1, 1, 1)
        return keras.random.uniform(shape, seed=self.generator)


class ElementDropout(_Base):
    def call(self, inputs, training=None):
        if not training:
            return inputs
        keep = ops.cast(
            keras.random.uniform(ops.shape(inputs), seed=self.generator) < self.p, "float32"
        )
        return inputs * keep / self.p


class Unscaled(_Base):
    def call(self, inputs, training=None):
        if not training:
            return inputs
        return inputs * ops.cast(self._draw(inputs) < self.p, "float32")


class DropsInInference(_Base):
    def call(self, inputs, training=None):
        return inputs * ops.cast(self._draw(inputs) < self.p, "float32") / self.p


class SwappedProbability(_Base):
    def call(self, inputs, training=None):
        if not training:
            return inputs
        keep = ops.cast(self._draw(inputs) >= self.p, "float32")
        return inputs * keep / self.p


class SwappedRate(_Base):
    # Reads the argument as the drop rate: keeps with probability 1 - p, scales by 1/(1 - p).
    def call(self, inputs, training=None):
        if not training:
            return inputs
        keep = ops.cast(self._draw(inputs) < 1 - self.p, "float32")
        return inputs * keep / (1 - self.p)


class WrongScale(_Base):
    def call(self, inputs, training=None):
        if not training:
            return inputs
        return inputs * ops.cast(self._draw(inputs) < self.p, "float32") * 2.0


class FixedMask(_Base):
    def call(self, inputs, training=None):
        if not training:
            return inputs
        draw = keras.random.uniform((ops.shape(inputs)[0], 1, 1, 1), seed=0)
        return inputs * ops.cast(draw < self.p, "float32") / self.p


class NoTrainingArgument(_Base):
    def call(self, inputs):
        return inputs


def test_drop_path_accepts_the_solution():
    assert nb06.check_drop_path(solutions.DropPath, quiet=True).status == "correct"


def test_drop_path_solution_keeps_the_expectation_and_serialises():
    layer = solutions.DropPath(0.5, seed=1)
    x = np.ones((20000, 1), "float32")
    assert abs(float(np.mean(layer(x, training=True))) - 1.0) < 0.03
    clone = solutions.DropPath.from_config(layer.get_config())
    assert clone.survival_probability == 0.5


def test_drop_path_not_attempted():
    assert nb06.check_drop_path(None, quiet=True).status == "not attempted"


@pytest.mark.parametrize(
    "answer, words",
    [
        (ElementDropout, "dropout"),
        (Unscaled, "not scaled"),
        (DropsInInference, "inference"),
        (SwappedProbability, "instead of 1 -"),
        (SwappedRate, "the rate is swapped"),
        (WrongScale, "scaled by 2"),
        (FixedMask, "same samples"),
        (NoTrainingArgument, "no `training` argument"),
        (solutions.DropPath(0.5), "class"),
    ],
)
def test_drop_path_rejects_typical_mistakes(answer, words):
    verdict = nb06.check_drop_path(answer, quiet=True)
    assert verdict.status == "incorrect", verdict.message
    assert words in verdict.message
