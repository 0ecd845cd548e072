"""Tests of the checked exercises of notebook 03 (building ResNets)."""

import keras
import numpy as np
import pytest
from keras import layers

import resnet_keras as rk
from resnet_keras.analysis import count_macs, count_trainable_params
from resnet_keras.course.exercises import nb03_building_resnets as nb03
from resnet_keras.course.exercises.solutions import nb03_building_resnets as solutions
from resnet_keras.layers import BasicBlock


def status(verdict):
    return verdict.status


def test_analytic_block_costs_match_the_library():
    for shape, filters, strides, shortcut in [
        ((32, 32, 16), 32, 2, "B"),
        ((32, 32, 16), 32, 2, "A"),
        ((16, 16, 32), 32, 1, "C"),
        ((15, 15, 8), 8, 2, "B"),
    ]:
        block = BasicBlock(filters, strides=strides, shortcut=shortcut)
        block(np.zeros((1, *shape), "float32"))
        costs = nb03.basic_block_costs(shape, filters, strides, shortcut)
        assert sum(p for p, _ in costs.values()) == count_trainable_params(block)
        assert sum(m for _, m in costs.values()) == count_macs(block)


# --- exercise 1: parameters ---------------------------------------------------------------


def test_block_params_accepts_the_solution():
    assert solutions.block_params == 14_528
    assert status(nb03.check_block_params(solutions.block_params, quiet=True)) == "correct"
    assert nb03.check_block_params(14528.0, quiet=True).passed


def test_block_params_not_attempted():
    assert status(nb03.check_block_params(None, quiet=True)) == "not attempted"
    assert status(nb03.check_block_params(..., quiet=True)) == "not attempted"


@pytest.mark.parametrize(
    "answer, words",
    [
        (14_528 - 192, "batch normalisation"),  # no BN at all
        (14_528 - 576, "projection shortcut"),  # no projection
        (14_528 - 512, "1x1 projection"),
        (14_528 + 192, "moving mean"),  # count_params() style
        (14_528 + 96, "bias"),
        (14_528 - 4608, "16 input channels"),
        (4_608 + 9_216, "1x1 projection"),  # only the two 3x3 convolutions: two mistakes
    ],
)
def test_block_params_explains_typical_mistakes(answer, words):
    verdict = nb03.check_block_params(answer, quiet=True)
    assert status(verdict) == "incorrect"
    assert words in verdict.message


def test_block_params_rejects_other_answers_with_a_hint():
    verdict = nb03.check_block_params(12_345, quiet=True)
    assert status(verdict) == "incorrect" and "K*K*C_in*C_out" in verdict.message
    assert status(nb03.check_block_params("14528", quiet=True)) == "incorrect"
    assert status(nb03.check_block_params(14528.5, quiet=True)) == "incorrect"


# --- exercise 2: multiply-adds ------------------------------------------------------------


def test_block_macs_accepts_the_solution():
    assert solutions.block_macs == 3_670_016
    assert nb03.check_block_macs(solutions.block_macs, quiet=True).passed


def test_block_macs_not_attempted():
    assert status(nb03.check_block_macs(None, quiet=True)) == "not attempted"


@pytest.mark.parametrize(
    "answer, words",
    [
        (3_670_016 + 3 * 1_179_648, "32x32 input grid"),  # stride ignored on conv1
        (3_670_016 - 131_072, "left out the 1x1 projection"),
        (2 * 3_670_016, "FLOPs"),
        (4 * 3_670_016, "every layer at 32x32"),
        (14_528, "number of parameters"),
    ],
)
def test_block_macs_explains_typical_mistakes(answer, words):
    verdict = nb03.check_block_macs(answer, quiet=True)
    assert status(verdict) == "incorrect"
    assert words in verdict.message


# --- exercise 3: ResNet-32 from blocks ----------------------------------------------------


def test_resnet32_accepts_the_solution_function_and_model():
    assert nb03.check_resnet32(solutions.build_resnet32, quiet=True).passed
    model = solutions.build_resnet32()
    before = [w.copy() for w in model.get_weights()]
    assert nb03.check_resnet32(model, quiet=True).passed
    # The check borrows the model to compare logits and gives its weights back.
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_resnet32_not_attempted():
    assert status(nb03.check_resnet32(None, quiet=True)) == "not attempted"

    def stub():
        return None

    assert status(nb03.check_resnet32(stub, quiet=True)) == "not attempted"


def small_resnet(n=5, shortcut="A", residual=True, stage_stride=2, stem_bn=True, stem_relu=True):
    inputs = keras.Input(shape=(32, 32, 3))
    x = layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
    if stem_bn:
        x = layers.BatchNormalization()(x)
    if stem_relu:
        x = layers.ReLU()(x)
    for stage, filters in enumerate((16, 32, 64)):
        for index in range(n):
            strides = stage_stride if (stage > 0 and index == 0) else 1
            x = BasicBlock(filters, strides=strides, shortcut=shortcut, residual=residual)(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(10)(x))


def test_resnet32_accepts_keras_default_batch_normalization():
    # Keras' default BN epsilon (1e-3, the library's is 1e-5) is not a mistake.
    assert nb03.check_resnet32(small_resnet, quiet=True).passed


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"n": 3}, "ResNet-20"),
        ({"shortcut": "B"}, "option 'A'"),
        ({"residual": False}, "plain network"),
        ({"stage_stride": 1}, "strides"),
        ({"stem_bn": False}, "stem's BatchNormalization"),
        ({"stem_relu": False}, "different logits"),
    ],
)
def test_resnet32_rejects_typical_mistakes(kwargs, words):
    verdict = nb03.check_resnet32(lambda: small_resnet(**kwargs), quiet=True)
    assert status(verdict) == "incorrect"
    assert words in verdict.message


@pytest.mark.parametrize(
    "shortcut",
    [
        lambda: rk.CifarResNet(32),
        lambda: rk.CifarResNet(32, name="my_resnet32"),
        lambda: keras.models.clone_model(rk.CifarResNet(32)),
        lambda: _wrapped(rk.CifarResNet(32)),
    ],
    ids=["returned", "renamed model", "cloned", "wrapped"],
)
def test_resnet32_rejects_the_library_builder_however_it_is_returned(shortcut):
    # Each passed every structural check before: the library's ResNet-32 is exactly right.
    for answer in (shortcut, shortcut()):
        verdict = nb03.check_resnet32(answer, quiet=True)
        assert status(verdict) == "incorrect" and "library's own builder" in verdict.message


def _wrapped(model):
    inputs = keras.Input((32, 32, 3))
    return keras.Model(inputs, model(inputs))


def test_resnet32_reports_errors_and_wrong_types():
    def broken():
        raise RuntimeError("oops")

    verdict = nb03.check_resnet32(broken, quiet=True)
    assert status(verdict) == "error" and "oops" in verdict.message
    assert status(nb03.check_resnet32(lambda: 32, quiet=True)) == "incorrect"
