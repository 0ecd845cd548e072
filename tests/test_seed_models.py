"""rk.SeedNet and rk.SeedResNet made deep with `filters` and `repeats`: the layers, the
parameter counts worked out by hand from the widths, the shortcuts, and the argument errors.

Every test only builds models (and runs one small batch), so all run on every backend.
"""

import keras
import numpy as np
import pytest

import resnet_keras as rk

DEEP = dict(filters=(16, 32, 64), repeats=7)  # notebook 07's 21 convolutions
DEEP_WIDTHS = [16] * 7 + [32] * 7 + [64] * 7


def convolutions(model, size=3):
    return [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D) and layer.kernel_size == (size, size)
    ]


def count_by_hand(widths, channels=3, classes=10):
    # A 3x3 convolution with a bias from `inputs` to `outputs` channels: 9 * in * out + out;
    # then the dense layer from the last width to the classes.
    inputs = [channels, *widths[:-1]]
    convs = sum(9 * i * o + o for i, o in zip(inputs, widths))
    return convs + widths[-1] * classes + classes


@pytest.mark.backend
@pytest.mark.parametrize("builder", [rk.SeedNet, rk.SeedResNet])
def test_the_defaults_are_the_articles_network(builder):
    model = builder()
    assert model.count_params() == 373_386 == count_by_hand([64, 128, 256])
    assert [layer.name for layer in convolutions(model)] == ["conv1", "conv2", "conv3"]


@pytest.mark.backend
def test_repeats_stack_each_width_and_the_count_follows_the_widths():
    plain = rk.SeedNet(**DEEP)
    convs = convolutions(plain)
    assert [layer.name for layer in convs] == [f"conv{i}" for i in range(1, 22)]
    # Each convolution reads the previous width: conv8 is the first at 32 channels.
    inputs = [3, *DEEP_WIDTHS[:-1]]
    assert [tuple(layer.kernel.shape) for layer in convs] == [
        (3, 3, i, o) for i, o in zip(inputs, DEEP_WIDTHS)
    ]
    expected = count_by_hand(DEEP_WIDTHS)
    assert expected == 315_210  # the sum written out, so a wrong helper would show here too
    assert plain.count_params() == expected
    assert not any(isinstance(layer, keras.layers.Add) for layer in plain.layers)

    # Option A's shortcuts zero-pad: the residual twin has exactly the same parameters.
    residual = rk.SeedResNet(**DEEP)
    assert residual.count_params() == expected
    assert [layer.name for layer in convolutions(residual)] == [f"conv{i}" for i in range(1, 22)]
    adds = [layer.name for layer in residual.layers if isinstance(layer, keras.layers.Add)]
    assert adds == [f"add{i}" for i in range(2, 22)]  # every convolution after the stem

    images = np.zeros((2, 32, 32, 3), "float32")
    for model in (plain, residual):
        assert tuple(model(images).shape) == (2, 10)


@pytest.mark.backend
def test_option_b_projects_only_where_the_width_changes():
    model = rk.SeedResNet(shortcut="B", **DEEP)
    projections = convolutions(model, size=1)
    # conv8 (16 -> 32) and conv15 (32 -> 64); the 18 shortcuts at a constant width stay
    # identities, and the stem has none.
    assert [layer.name for layer in projections] == ["shortcut8", "shortcut15"]
    extra = (16 * 32 + 32) + (32 * 64 + 64)
    assert sum(layer.count_params() for layer in projections) == extra
    assert model.count_params() == count_by_hand(DEEP_WIDTHS) + extra
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert len(adds) == 20


@pytest.mark.backend
@pytest.mark.parametrize("builder", [rk.SeedNet, rk.SeedResNet])
@pytest.mark.parametrize("filters", [(), (0,), "abc", (16.5,), (16, -32)])
def test_bad_filters_name_the_argument(builder, filters):
    with pytest.raises(ValueError, match="`filters`"):
        builder(filters=filters)


@pytest.mark.backend
@pytest.mark.parametrize("builder", [rk.SeedNet, rk.SeedResNet])
def test_zero_repeats_names_the_argument(builder):
    with pytest.raises(ValueError, match="`repeats`"):
        builder(repeats=0)
