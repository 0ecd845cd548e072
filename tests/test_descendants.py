"""The descendants: published sizes and multiply-adds, ConvNeXt-T against keras.applications,
the new block options, serialisation on every backend, argument checks."""

import keras
import numpy as np
import pytest

import resnet_keras as rk
from resnet_keras._keras_compat import sublayers
from resnet_keras.layers import (
    BLOCKS,
    BasicBlock,
    BottleneckBlock,
    ConvNeXtBlock,
    LayerScale,
    SqueezeExcitation,
    get_block,
    register_block,
)
from resnet_keras.lesion import residual_blocks
from resnet_keras.models import (
    PUBLISHED,
    CifarResNeXt,
    ConvNeXtTiny,
    ResNet50D,
    ResNeXt50,
    WideResNet,
)


def to_numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def images(shape, seed=0):
    return np.random.RandomState(seed).normal(size=shape).astype("float32")


@pytest.fixture(scope="module")
def published_models():
    """Each model of the table, built once for the module (about a second each)."""
    return {name: entry.build() for name, entry in PUBLISHED.items()}


def test_every_descendant_has_its_published_parameter_count(published_models):
    for name, entry in PUBLISHED.items():
        model = published_models[name]
        count = rk.count_trainable_params(model)
        assert count == entry.parameters, name
        if isinstance(entry.published, int):
            assert count == entry.published, name
        else:
            # The CIFAR papers print millions to one decimal.
            assert f"{count / 1e6:.1f}M" == entry.published, name
        # The published figures are torch's parameters: Keras' count adds only batch
        # normalisation's moving statistics (torch's buffers), none in ConvNeXt.
        extra = [weight.path for weight in model.non_trainable_weights]
        assert all("moving_mean" in path or "moving_variance" in path for path in extra), name
        assert (model.count_params() == count) == (name == "convnext_tiny"), name


def test_multiply_adds_within_one_percent_of_the_published(published_models):
    measured = {
        name: rk.count_macs(published_models[name])
        for name, entry in PUBLISHED.items()
        if entry.macs is not None
    }
    assert set(measured) == {
        "resnext50_32x4d",
        "wide_resnet50_2",
        "resnet50d",
        "seresnet50",
        "convnext_tiny",
    }
    for name, macs in measured.items():
        assert abs(macs - PUBLISHED[name].macs) / PUBLISHED[name].macs < 0.01, (name, macs)
    # torchvision's three to the digits it prints (4.23, 11.398, 4.456 GFLOPS).
    assert round(measured["resnext50_32x4d"] / 1e9, 2) == 4.23
    assert round(measured["wide_resnet50_2"] / 1e9, 3) == 11.398
    assert round(measured["convnext_tiny"] / 1e9, 3) == 4.456


def test_convnext_tiny_computes_what_keras_applications_computes(published_models):
    ours = published_models["convnext_tiny"]
    reference = keras.applications.ConvNeXtTiny(weights=None, include_preprocessing=False)
    assert reference.count_params() == PUBLISHED["convnext_tiny"].parameters
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in reference.weights]
    state = np.random.RandomState(0)
    # Layer scales and normalisations far from their initial 1e-6 and (1, 0), so that
    # every block's branch shows in the outputs.
    values = []
    for weight, value in zip(reference.weights, reference.get_weights()):
        if "layer_scale" in weight.path:
            value = state.uniform(0.2, 0.6, value.shape)
        elif weight.path.endswith("gamma"):
            value = state.uniform(0.5, 1.5, value.shape)
        elif weight.path.endswith(("beta", "bias")):
            value = state.normal(0, 0.1, value.shape)
        values.append(value.astype("float32"))
    reference.set_weights(values)
    ours.set_weights(reference.get_weights())
    x = state.uniform(-1, 1, (2, 224, 224, 3)).astype("float32")
    expected = to_numpy(reference(x, training=False))
    difference = np.abs(to_numpy(ours(x, training=False)) - expected)
    assert difference.max() <= 1e-5 * max(1.0, np.abs(expected).max())
    # Both ways.
    reference.set_weights(ours.get_weights())


# The registered descendants in a small CIFAR network, on every backend.
_DESCENDANT_BLOCKS = [
    ("se_basic", 8, {}),
    ("resnext", 11, {"shortcut": "B"}),
    ("wide_bottleneck", 11, {"shortcut": "B"}),
    ("se_bottleneck", 11, {"shortcut": "C", "preactivation": True}),
    ("bottleneck_d", 11, {"shortcut": "B"}),
    ("convnext", 11, {"preactivation": True}),
]


@pytest.mark.backend
@pytest.mark.parametrize("block, depth, arguments", _DESCENDANT_BLOCKS)
def test_registered_descendants_train_save_and_load_in_the_cifar_builder(
    block, depth, arguments, tmp_path
):
    model = rk.CifarResNet(depth, block=block, input_shape=(16, 16, 3), **arguments)
    blocks = [layer for layer in model.layers if isinstance(layer, get_block(block).layer_class)]
    assert len(blocks) == 3
    for name, value in get_block(block).arguments.items():
        assert getattr(blocks[0], name) == value
    x = images((2, 16, 16, 3), seed=2)
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(True))
    model.train_on_batch(x, np.array([1, 2]))
    path = tmp_path / f"{block}.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        to_numpy(restored(x, training=False)), to_numpy(model(x, training=False)), atol=1e-5
    )
    assert [layer.get_config() for layer in restored.layers] == [
        layer.get_config() for layer in model.layers
    ]


@pytest.mark.backend
@pytest.mark.parametrize(
    "layer, input_shape",
    [
        (BottleneckBlock(8, strides=2, groups=4, width_per_group=16), (1, 8, 8, 16)),
        (BasicBlock(8, attention="squeeze_excitation", attention_reduction=4), (1, 8, 8, 8)),
        (BottleneckBlock(4, strides=2, average_pool_shortcut=True), (1, 8, 8, 8)),
        (ConvNeXtBlock(16, strides=2, drop_path_rate=0.1, kernel_size=3), (1, 8, 8, 8)),
        (ConvNeXtBlock(8, layer_scale_init_value=None, shortcut="A"), (1, 8, 8, 4)),
        (SqueezeExcitation(reduction=2), (1, 4, 4, 8)),
        (LayerScale(0.25), (1, 4, 4, 8)),
    ],
)
def test_new_layers_rebuild_from_their_config(layer, input_shape):
    x = images(input_shape)
    y = layer(x)
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    clone(x)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(to_numpy(clone(x)), to_numpy(y), atol=1e-6)


@pytest.mark.backend
def test_cifar_descendants_build_small():
    x = np.zeros((2, 32, 32, 3), "float32")
    wide = WideResNet(10, 2)
    assert wide.name == "wrn10_2" and tuple(wide(x).shape) == (2, 10)
    # Widths 32, 64, 128: the first block of each stage projects (16 -> 32 included).
    assert [layer.shortcut_conv is not None for layer in residual_blocks_of(wide)] == [
        True,
        True,
        True,
    ]
    resnext = CifarResNeXt(11, cardinality=4, width=8)
    assert tuple(resnext(x).shape) == (2, 10)
    grouped = [layer.branch_convs[1] for layer in residual_blocks_of(resnext)]
    assert [(conv.groups, conv.filters) for conv in grouped] == [(4, 32), (4, 64), (4, 128)]


def residual_blocks_of(model):
    return [model.get_layer(block.name) for block in residual_blocks(model)]


@pytest.mark.backend
@pytest.mark.parametrize("preactivation", [False, True])
def test_training_reaches_every_batch_normalization_of_the_new_options(preactivation):
    layer = BottleneckBlock(
        8,
        strides=2,
        groups=2,
        width_per_group=32,
        attention="squeeze_excitation",
        average_pool_shortcut=True,
        shortcut="C",
        preactivation=preactivation,
    )
    x = images((4, 8, 8, 16)) * 3 + 1
    layer(x, training=False)
    norms = [
        child
        for child in sublayers(layer, recursive=True)
        if isinstance(child, keras.layers.BatchNormalization)
    ]
    # v1: three on the branch and the projection's; v2: the pre-activation and two on the
    # branch (the last convolution feeds the addition), the projection has none.
    assert len(norms) == (3 if preactivation else 4)

    def statistics():
        return [to_numpy(norm.moving_mean).copy() for norm in norms]

    before = statistics()
    layer(x, training=False)
    assert all(np.array_equal(old, new) for old, new in zip(before, statistics()))
    layer(x, training=True)
    assert not any(np.allclose(old, new) for old, new in zip(before, statistics()))


@pytest.mark.backend
def test_average_pool_shortcut_projects_the_mean_of_each_window():
    # With a zero-initialised branch the v1 block is ReLU(shortcut): BN(conv1x1(avgpool(x))).
    block = BottleneckBlock(4, strides=2, average_pool_shortcut=True, zero_init_residual=True)
    x = images((2, 8, 8, 8))
    y = to_numpy(block(x, training=False))
    pooled = x.reshape(2, 4, 2, 4, 2, 8).mean(axis=(2, 4))
    kernel = to_numpy(block.shortcut_conv.kernel)[0, 0]
    expected = np.maximum(pooled @ kernel / np.sqrt(1 + block.batch_norm_epsilon), 0)
    np.testing.assert_allclose(y, expected, atol=1e-5)
    assert block.shortcut_conv.strides == (1, 1)
    # Option A averages too, and still adds no parameters.
    free = BasicBlock(16, strides=2, shortcut="A", average_pool_shortcut=True)
    free(x)
    assert free.shortcut_conv is None


@pytest.mark.backend
def test_convnext_block_identity_at_zero_init_and_drop_path_only_in_training():
    x = images((4, 8, 8, 16))
    block = ConvNeXtBlock(16, zero_init_residual=True)
    np.testing.assert_allclose(to_numpy(block(x)), x, atol=1e-6)
    dropping = ConvNeXtBlock(16, drop_path_rate=0.5, layer_scale_init_value=1.0)
    inference = to_numpy(dropping(x, training=False))
    np.testing.assert_array_equal(inference, to_numpy(dropping(x, training=False)))
    trained = to_numpy(dropping(x, training=True))
    # Per example the branch is dropped (y = x) or kept and scaled by 1 / (1 - rate).
    dropped = [np.allclose(trained[i], x[i], atol=1e-6) for i in range(4)]
    kept = [np.allclose(trained[i], x[i] + 2 * (inference[i] - x[i]), atol=1e-4) for i in range(4)]
    assert all(d or k for d, k in zip(dropped, kept))
    # The lesion tools see ConvNeXt blocks: same forward values through either side.
    tensor = keras.ops.convert_to_tensor(x)
    for side in ("branch", "shortcut"):
        np.testing.assert_allclose(
            to_numpy(dropping._forward(tensor, training=False, gradient_through=side)), inference
        )


def test_registry_holds_the_descendants_as_arguments_of_two_families():
    assert {name: type_.layer_class for name, type_ in BLOCKS.items()}.items() >= {
        "resnext": BottleneckBlock,
        "wide_bottleneck": BottleneckBlock,
        "se_bottleneck": BottleneckBlock,
        "bottleneck_d": BottleneckBlock,
        "se_basic": BasicBlock,
        "convnext": ConvNeXtBlock,
    }.items()
    block = get_block("resnext").make(64, groups=8)
    assert (block.groups, block.width_per_group, block.bottleneck_width) == (8, 4, 32)
    assert get_block("wide_bottleneck").make(64).bottleneck_width == 128


def test_imagenet_descendant_saves_and_loads_its_weights(tmp_path):
    model = ResNet50D(input_shape=(32, 32, 3), classes=7)
    path = tmp_path / "resnet50d.weights.h5"
    model.save_weights(path)
    again = ResNet50D(input_shape=(32, 32, 3), classes=7, weights=path)
    x = images((1, 32, 32, 3))
    np.testing.assert_allclose(to_numpy(again(x)), to_numpy(model(x)), atol=1e-6)
    with pytest.raises(ValueError, match="no ImageNet weights"):
        ResNeXt50(weights="imagenet", input_shape=(32, 32, 3))


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: BottleneckBlock(16, groups=0), "groups"),
        (lambda: BottleneckBlock(16, width_per_group=2), "width_per_group"),
        (lambda: BasicBlock(16, attention="cbam"), "attention"),
        (lambda: BasicBlock(16, attention_reduction=0), "attention_reduction"),
        (lambda: BasicBlock(16, average_pool_shortcut=1), "average_pool_shortcut"),
        (lambda: ConvNeXtBlock(16, preactivation=False), "preactivation"),
        (lambda: ConvNeXtBlock(16, average_pool_shortcut=True), "average_pool_shortcut"),
        (lambda: ConvNeXtBlock(16, drop_path_rate=1.0), "drop_path_rate"),
        (lambda: ConvNeXtBlock(16, layer_scale_init_value=-1), "layer_scale_init_value"),
        (lambda: SqueezeExcitation(0), "reduction"),
        (lambda: WideResNet(27), "depth"),
        (lambda: WideResNet(28, 0), "width"),
        (lambda: CifarResNeXt(30), "depth"),
        (lambda: CifarResNeXt(29, cardinality=0), "cardinality"),
        (lambda: ConvNeXtTiny(weights="imagenet"), "weights"),
        (lambda: ConvNeXtTiny(drop_path_rate=2.0), "drop_path_rate"),
        (lambda: register_block("typo", BottleneckBlock, 3, {"grups": 2}), "grups"),
        (lambda: register_block("typo", BottleneckBlock, 3, ["groups"]), "arguments"),
    ],
)
def test_bad_arguments_name_the_argument(make, argument):
    with pytest.raises((ValueError, TypeError), match=argument):
        make()
    assert "typo" not in BLOCKS
