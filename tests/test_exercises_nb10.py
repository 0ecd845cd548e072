"""The checkers of notebook 10 (modern ResNets), and the race's CPU-friendly blocks: each checker
accepts its reference solution, says "not attempted" to the template and names each usual slip;
the split ResNeXt and depthwise ConvNeXt blocks compute what the library's grouped ones do."""

import keras
import numpy as np
import pytest

import resnet_keras as rk
from resnet_keras.course import descendant_runs
from resnet_keras.course.exercises import nb10_modern as nb
from resnet_keras.course.exercises.solutions import nb10_modern as solutions
from resnet_keras.layers import BottleneckBlock, register_block


def test_the_solutions_pass_and_the_templates_are_not_attempted():
    assert nb.check_block_cost(solutions.block_cost, quiet=True).passed
    assert nb.check_se_resnext(solutions.se_resnext(), quiet=True).passed
    assert nb.check_block_cost(lambda c, w, g, s: None, quiet=True).status == "not attempted"
    assert nb.check_se_resnext(None, quiet=True).status == "not attempted"


def _dense_3x3(channels, width, groups, side):
    return solutions.block_cost(channels, width, 1, side)


def _no_batch_norm(channels, width, groups, side):
    parameters, macs = solutions.block_cost(channels, width, groups, side)
    return parameters - 2 * (2 * width + channels), macs


def _moving_statistics(channels, width, groups, side):
    parameters, macs = solutions.block_cost(channels, width, groups, side)
    return parameters + 2 * (2 * width + channels), macs


def _per_position(channels, width, groups, side):
    parameters, _ = solutions.block_cost(channels, width, groups, side)
    return parameters, parameters - 2 * (2 * width + channels)


@pytest.mark.parametrize(
    ("attempt", "named"),
    [
        (_dense_3x3, "divide its weights and multiply-adds by `groups`"),
        (_no_batch_norm, "gamma and beta"),
        (_moving_statistics, "moving mean and variance"),
        (_per_position, "side x side positions"),
        (lambda c, w, g, s: (1, 2), "yours: 1 and 2"),
        (lambda c, w, g, s: "many", "two integers"),
    ],
)
def test_block_cost_names_each_slip(attempt, named):
    result = nb.check_block_cost(attempt, quiet=True)
    assert not result.passed
    assert named in result.message


def test_the_block_cost_rule_matches_the_library_on_other_blocks():
    # The exercise's rule is the library's count, not only on the checker's three cases.
    for case in [(128, 64, 8, 7), (512, 256, 32, 14), (64, 16, 1, 8)]:
        assert solutions.block_cost(*case) == nb._reference_block_cost(*case), case


def _se_resnext(**changes):
    arguments = {"groups": 4, "width_per_group": 32, "attention": "squeeze_excitation"}
    arguments.update(changes)
    arguments = {key: value for key, value in arguments.items() if value is not None}
    register_block("test_se_resnext", BottleneckBlock, 3, arguments)
    return rk.CifarResNet(29, block="test_se_resnext", shortcut="B")


@pytest.mark.parametrize(
    ("attempt", "named"),
    [
        (lambda: _se_resnext(attention=None), "no squeeze-and-excitation"),
        (lambda: _se_resnext(groups=8), "groups=4"),
        (lambda: _se_resnext(width_per_group=16), "trainable parameters; yours"),
        (lambda: rk.CifarResNet(20, block="se_bottleneck", shortcut="B"), "9n+2"),
        (lambda: "resnext", "keras.Model"),
    ],
)
def test_se_resnext_names_each_slip(attempt, named):
    result = nb.check_se_resnext(attempt(), quiet=True)
    assert not result.passed
    assert named in result.message


def _outputs(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def test_the_split_resnext_computes_the_grouped_one():
    shape = (8, 8, 3)
    split = rk.CifarResNet(11, block="resnext_split", shortcut="B", input_shape=shape)
    grouped = rk.CifarResNet(
        11, block=descendant_runs.GROUPED_RESNEXT, shortcut="B", input_shape=shape
    )
    assert rk.count_trainable_params(split) == rk.count_trainable_params(grouped)
    assert rk.count_macs(split) == rk.count_macs(grouped)
    # The grouped kernel (3, 3, width / groups, width) is the split kernels side by side.
    groups = descendant_runs.CARDINALITY["groups"]
    values, split_weights = iter(grouped.get_weights()), []
    for weight in split.weights:
        if "group1" in weight.path:
            kernel = next(values)
            split_weights.extend(np.split(kernel, groups, axis=-1))
        elif "/group" not in weight.path:
            split_weights.append(next(values))
    split.set_weights(split_weights)
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32")
    np.testing.assert_allclose(_outputs(split, x), _outputs(grouped, x), atol=1e-5)


def test_the_depthwise_convnext_computes_the_grouped_one():
    shape = (8, 8, 3)
    ours = rk.CifarResNet(11, block="convnext_dw", preactivation=True, input_shape=shape)
    library = rk.CifarResNet(11, block="convnext", preactivation=True, input_shape=shape)
    assert rk.count_trainable_params(ours) == rk.count_trainable_params(library)
    assert rk.count_macs(ours) == rk.count_macs(library)
    state = np.random.default_rng(1)
    for weight in library.weights:
        # Layer scales far from their 1e-6, so that every block's branch shows in the output.
        if "layer_scale" in weight.path:
            weight.assign(state.uniform(0.5, 1.0, weight.shape).astype("float32"))
    values = {weight.path: keras.ops.convert_to_numpy(weight) for weight in library.weights}
    assert sorted(values) == sorted(weight.path for weight in ours.weights)
    # Conv2D(groups=c) keeps its kernel as (k, k, 1, c), DepthwiseConv2D as (k, k, c, 1).
    for weight in ours.weights:
        weight.assign(values[weight.path].reshape(weight.shape))
    x = state.normal(size=(2, *shape)).astype("float32")
    np.testing.assert_allclose(_outputs(ours, x), _outputs(library, x), atol=1e-5)


def test_train_network_is_deterministic_and_reports_the_counts():
    budget = dict(image_size=8, train_size=64, epochs=1, batch_size=32, learning_rate=0.05)
    first = descendant_runs.train_network("se_resnet20", (0, 1), budget)
    again = descendant_runs.train_network("se_resnet20", (1,), budget)
    model = descendant_runs.build_network("se_resnet20", input_shape=(8, 8, 3))
    assert first["parameters"] == rk.count_trainable_params(model)
    assert first["macs"] == rk.count_macs(model)
    # Seed 1 after a restart trains exactly as seed 1 alone.
    assert first["test_accuracy"][1] == again["test_accuracy"][0]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="name"):
        descendant_runs.build_network("resnet1000")
    with pytest.raises(ValueError, match="multiple of `groups`"):
        descendant_runs.SplitConv2D(6, 3, groups=4)
