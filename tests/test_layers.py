"""Residual blocks: shapes, identity at init, BN behaviour, options, saving, errors."""

import keras
import numpy as np
import pytest

from resnet_keras.layers import (
    BasicBlock,
    BottleneckBlock,
    ParameterFreeShortcut,
    parameter_free_shortcut,
    resolve_shortcut,
)

pytestmark = pytest.mark.backend


def images(shape, seed=0):
    return np.random.RandomState(seed).normal(size=shape).astype("float32")


def to_numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


@pytest.mark.parametrize("preactivation", [False, True])
@pytest.mark.parametrize(
    "block, filters, strides, in_shape, out_shape",
    [
        (BasicBlock, 16, 1, (2, 8, 8, 16), (2, 8, 8, 16)),
        (BasicBlock, 32, 2, (2, 8, 8, 16), (2, 4, 4, 32)),
        (BottleneckBlock, 16, 1, (2, 8, 8, 64), (2, 8, 8, 64)),
        (BottleneckBlock, 32, 2, (2, 8, 8, 64), (2, 4, 4, 128)),
    ],
)
def test_output_shapes(block, filters, strides, in_shape, out_shape, preactivation):
    layer = block(filters, strides=strides, shortcut="B", preactivation=preactivation)
    assert tuple(layer(images(in_shape)).shape) == out_shape
    assert layer.compute_output_shape(in_shape) == out_shape


@pytest.mark.parametrize("block, channels", [(BasicBlock, 16), (BottleneckBlock, 64)])
def test_zero_init_residual_v1_is_relu_of_input(block, channels):
    filters = channels if block is BasicBlock else channels // 4
    layer = block(filters, zero_init_residual=True)
    x = images((2, 8, 8, channels))
    np.testing.assert_allclose(to_numpy(layer(x, training=False)), np.maximum(x, 0), atol=1e-6)
    # Without the trick the block is far from the identity.
    plain_init = block(filters)
    assert np.abs(to_numpy(plain_init(x, training=False)) - np.maximum(x, 0)).max() > 0.1


@pytest.mark.parametrize("block, channels", [(BasicBlock, 16), (BottleneckBlock, 64)])
def test_zero_init_residual_v2_is_identity(block, channels):
    filters = channels if block is BasicBlock else channels // 4
    layer = block(filters, preactivation=True, zero_init_residual=True)
    x = images((2, 8, 8, channels))
    np.testing.assert_allclose(to_numpy(layer(x, training=True)), x, atol=1e-6)


@pytest.mark.parametrize("preactivation", [False, True])
@pytest.mark.parametrize("block", [BasicBlock, BottleneckBlock])
def test_training_flag_reaches_batch_normalization(block, preactivation):
    layer = block(8, strides=2, shortcut="C", preactivation=preactivation)
    x = images((4, 8, 8, 16)) * 3 + 1
    layer(x, training=False)
    moving = [w for w in layer.weights if "moving" in w.path]
    # Every BN of the block, the projection's included.
    assert len(moving) == 2 * (
        len(layer.branch_bns) + (layer.shortcut_bn is not None) + (layer.preact_bn is not None)
    )
    before = [to_numpy(w).copy() for w in moving]
    layer(x, training=False)
    for old, weight in zip(before, moving):
        np.testing.assert_array_equal(old, to_numpy(weight))
    layer(x, training=True)
    for old, weight in zip(before, moving):
        assert not np.allclose(old, to_numpy(weight)), weight.path


def test_plain_block_has_no_shortcut_and_no_addition():
    plain = BasicBlock(16, residual=False)
    x = images((2, 8, 8, 16))
    y = plain(x)
    assert plain.shortcut_conv is None
    residual = BasicBlock(16)
    residual(x)
    residual.set_weights(plain.get_weights())
    # Same weights: the residual block adds x before the final ReLU.
    pre_plain = to_numpy(y)
    pre_residual = to_numpy(residual(x))
    assert not np.allclose(pre_plain, pre_residual)
    assert len(plain.weights) == len(residual.weights)


def test_option_a_subsamples_and_zero_pads():
    x = images((1, 4, 4, 2))
    y = to_numpy(parameter_free_shortcut(keras.ops.convert_to_tensor(x), 6, 2))
    assert y.shape == (1, 2, 2, 6)
    np.testing.assert_array_equal(y[..., 2:4], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., :2], 0)
    np.testing.assert_array_equal(y[..., 4:], 0)


@pytest.mark.parametrize("option", ["A", "B", "C"])
def test_shortcut_options_parameter_cost(option):
    block = BasicBlock(32, strides=2, shortcut=option)
    block(images((1, 8, 8, 16)))
    trainable = sum(int(np.prod(w.shape)) for w in block.trainable_weights)
    branch = 9 * 16 * 32 + 9 * 32 * 32 + 2 * (2 * 32)
    projection = 16 * 32 + 2 * 32
    assert trainable == {"A": branch, "B": branch + projection, "C": branch + projection}[option]
    same_width = BasicBlock(16, shortcut=option)
    same_width(images((1, 8, 8, 16)))
    extra = sum(int(np.prod(w.shape)) for w in same_width.trainable_weights) - (
        2 * 9 * 16 * 16 + 4 * 16
    )
    assert extra == (16 * 16 + 2 * 16 if option == "C" else 0)


def test_resolve_shortcut():
    assert resolve_shortcut("A", 16, 32) == "identity"
    assert resolve_shortcut("B", 16, 32) == "projection"
    assert resolve_shortcut("B", 16, 16) == "identity"
    assert resolve_shortcut("C", 16, 16) == "projection"


def _roundtrip(layer, input_shape, tmp_path):
    inputs = keras.Input(input_shape[1:])
    model = keras.Model(inputs, layer(inputs))
    x = images(input_shape, seed=3)
    # Train one step so BN statistics and weights are not at their defaults.
    model.compile(optimizer="sgd", loss="mse")
    model.train_on_batch(x, np.ones((input_shape[0],) + model.output_shape[1:], "float32"))
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(to_numpy(model(x)), to_numpy(restored(x)), atol=1e-6)
    assert type(restored.layers[-1]) is type(layer)
    assert restored.layers[-1].get_config() == layer.get_config()


@pytest.mark.parametrize(
    "layer, input_shape",
    [
        (BasicBlock(8, strides=2, shortcut="A"), (2, 8, 8, 4)),
        (BasicBlock(8, shortcut="B", preactivation=True, zero_init_residual=True), (2, 8, 8, 4)),
        (BasicBlock(4, residual=False, kernel_regularizer="l2"), (2, 8, 8, 4)),
        (
            BottleneckBlock(4, strides=2, shortcut="C", stride_on_3x3=False, use_bias=True),
            (2, 8, 8, 8),
        ),
        (BottleneckBlock(4, preactivation=True, expansion=2), (2, 8, 8, 8)),
        (ParameterFreeShortcut(8, strides=2), (2, 8, 8, 4)),
    ],
)
def test_layers_survive_save_and_load(layer, input_shape, tmp_path):
    _roundtrip(layer, input_shape, tmp_path)


@pytest.mark.parametrize(
    "make, argument, message",
    [
        (lambda: BasicBlock(0), "filters", "positive integer"),
        (lambda: BasicBlock(-3), "filters", "positive integer"),
        (lambda: BasicBlock(16, strides=3), "strides", "1 or 2"),
        (lambda: BasicBlock(16, shortcut="D"), "shortcut", "'A', 'B', 'C'"),
        (lambda: BottleneckBlock(16, expansion=0), "expansion", "positive integer"),
        (lambda: BasicBlock(16, preactivation="yes"), "preactivation", "True or False"),
    ],
)
def test_bad_arguments_name_the_argument(make, argument, message):
    with pytest.raises((ValueError, TypeError), match=argument) as error:
        make()
    assert message in str(error.value)


def test_option_a_cannot_shrink_channels():
    with pytest.raises(ValueError, match="option 'A' cannot reduce channels"):
        BasicBlock(8, shortcut="A")(images((1, 8, 8, 16)))


@pytest.mark.parametrize("shape", [(8, 8, 16), (1, 2, 8, 8, 16)])
def test_wrong_input_rank(shape):
    with pytest.raises(ValueError, match="expects a 4D input"):
        BasicBlock(16)(images(shape))
