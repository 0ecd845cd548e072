"""Builders: exact parameter counts, keras.applications parity, saving, errors."""

import keras
import numpy as np
import pytest

import resnet_keras as rk
from resnet_keras.models import blocks_per_stage


def to_numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


@pytest.mark.backend
@pytest.mark.parametrize(
    "depth, shortcut, expected",
    [(20, "A", 269_722), (56, "A", 853_018), (20, "B", 272_474)],
)
def test_cifar_resnet_trainable_parameters_match_the_paper(depth, shortcut, expected):
    # Paper Table 6: ResNet-20 0.27M, ResNet-56 0.85M.
    assert rk.count_trainable_params(rk.CifarResNet(depth, shortcut=shortcut)) == expected


@pytest.mark.backend
def test_cifar_variants_build_and_output_logits():
    x = np.zeros((2, 32, 32, 3), "float32")
    for model in (
        rk.CifarResNet(20, preactivation=True),
        rk.CifarResNet(20, residual=False),
        rk.CifarResNet(29, block="bottleneck", shortcut="B", preactivation=True),
    ):
        assert tuple(model(x).shape) == (2, 10)
    plain, residual = rk.CifarResNet(56, residual=False), rk.CifarResNet(56)
    # Option A adds no parameters, so the plain net has exactly as many.
    assert plain.count_params() == residual.count_params()
    assert plain.name == "plain56" and residual.name == "resnet56"


@pytest.mark.backend
def test_resnet164_bottleneck_depth():
    model = rk.CifarResNet(164, block="bottleneck", shortcut="B", preactivation=True)
    convs = [w for w in model.weights if w.path.endswith("kernel") and len(w.shape) == 4]
    projections = [w for w in convs if "/0_conv/" in w.path]
    # 164 weighted layers = convolutions outside the projections + the dense layer.
    assert len(convs) - len(projections) + 1 == 164


@pytest.mark.backend
@pytest.mark.parametrize(
    "builder, expected", [(rk.ResNet18, 11_689_512), (rk.ResNet34, 21_797_672)]
)
def test_resnet18_34_trainable_parameters(builder, expected):
    assert rk.count_trainable_params(builder()) == expected


@pytest.mark.backend
@pytest.mark.parametrize(
    "ours, reference, parameters, weights",
    [
        (rk.ResNet50, keras.applications.ResNet50, 25_636_712, 320),
        (rk.ResNet50V2, keras.applications.ResNet50V2, 25_613_800, 272),
    ],
)
def test_same_outputs_as_keras_applications(ours, reference, parameters, weights):
    model = ours(classifier_activation=None)
    assert model.count_params() == parameters
    assert len(model.weights) == weights
    original = reference(weights=None, classifier_activation=None)
    state = np.random.RandomState(0)
    # Non-trivial BN statistics, so a BN mix-up would show in the outputs.
    values = [
        state.uniform(0.5, 1.5, w.shape).astype("float32") if "moving" in w.path else value
        for w, value in zip(original.weights, original.get_weights())
    ]
    original.set_weights(values)
    model.set_weights(original.get_weights())
    x = state.uniform(-1, 1, (2, 224, 224, 3)).astype("float32")
    difference = np.abs(to_numpy(model(x, training=False)) - to_numpy(original(x, training=False)))
    assert difference.max() <= 1e-4
    # Both ways: our weights load into keras.applications.
    original.set_weights(model.get_weights())


def test_weights_file_saved_from_keras_applications(tmp_path):
    reference = keras.applications.ResNet50(
        weights=None, include_top=False, pooling="avg", input_shape=(64, 64, 3)
    )
    path = tmp_path / "resnet50.weights.h5"
    reference.save_weights(path)
    model = rk.ResNet50(weights=path, include_top=False, pooling="avg", input_shape=(64, 64, 3))
    x = np.random.RandomState(1).uniform(-1, 1, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(to_numpy(model(x)), to_numpy(reference(x)), atol=1e-5)
    # A file saved from our own model loads too.
    own = tmp_path / "ours.weights.h5"
    model.save_weights(own)
    again = rk.ResNet50(weights=own, include_top=False, pooling="avg", input_shape=(64, 64, 3))
    np.testing.assert_allclose(to_numpy(again(x)), to_numpy(model(x)), atol=1e-6)


@pytest.mark.backend
def test_keras_applications_signature():
    features = rk.ResNet50(include_top=False, pooling="max", input_shape=(64, 64, 3))
    assert features.output_shape == (None, 2048)
    maps = rk.ResNet18(include_top=False, input_shape=(64, 64, 3))
    assert maps.output_shape == (None, 2, 2, 512)
    inputs = keras.Input((96, 96, 3))
    tensor_model = rk.ResNet34(input_tensor=inputs, classes=5, classifier_activation=None)
    assert tensor_model.output_shape == (None, 5)


@pytest.mark.backend
def test_seed_models():
    # The seed article's network: 3x3 convs 3->64->128->256 (with bias), mean, dense.
    assert rk.SeedNet().count_params() == 1792 + 73_856 + 295_168 + 2570
    assert rk.SeedResNet().count_params() == rk.SeedNet().count_params()
    assert rk.SeedResNet(shortcut="B").count_params() == rk.SeedNet().count_params() + (
        64 * 128 + 128 + 128 * 256 + 256
    )
    seed_names = [layer.name for layer in rk.SeedNet().layers]
    assert "add2" not in seed_names and "add2" in [layer.name for layer in rk.SeedResNet().layers]


def _save_and_reload(model, x, tmp_path):
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(
        to_numpy(model(x, training=False)), to_numpy(restored(x, training=False)), atol=1e-5
    )


@pytest.mark.backend
@pytest.mark.parametrize(
    "make",
    [
        lambda: rk.CifarResNet(20),
        lambda: rk.CifarResNet(20, shortcut="B", preactivation=True, zero_init_residual=True),
        lambda: rk.CifarResNet(20, residual=False),
        lambda: rk.CifarResNet(29, block="bottleneck", shortcut="C"),
        lambda: rk.SeedNet(),
        lambda: rk.SeedResNet(),
        lambda: rk.SeedResNet(shortcut="B"),
    ],
)
def test_cifar_models_survive_save_and_load(make, tmp_path):
    model = make()
    x = np.random.RandomState(2).normal(size=(2, 32, 32, 3)).astype("float32")
    model.compile(
        optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.train_on_batch(x, np.array([1, 2]))
    _save_and_reload(model, x, tmp_path)


@pytest.mark.parametrize(
    "builder",
    [
        rk.ResNet18,
        rk.ResNet34,
        rk.ResNet50,
        rk.ResNet101,
        rk.ResNet152,
        rk.ResNet50V2,
        rk.ResNet101V2,
        rk.ResNet152V2,
    ],
)
def test_imagenet_models_survive_save_and_load(builder, tmp_path):
    model = builder(input_shape=(32, 32, 3), classes=7)
    x = np.random.RandomState(2).normal(size=(1, 32, 32, 3)).astype("float32")
    _save_and_reload(model, x, tmp_path)


@pytest.mark.backend
@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: rk.CifarResNet(21), "depth"),
        (lambda: rk.CifarResNet(26, block="bottleneck"), "depth"),
        (lambda: rk.CifarResNet(20, block="wide"), "block"),
        (lambda: rk.CifarResNet(20, shortcut="Z"), "shortcut"),
        (lambda: rk.CifarResNet(20, num_classes=0), "num_classes"),
        (lambda: rk.CifarResNet(20, input_shape=(32, 32)), "input_shape"),
        (lambda: rk.ResNet50(pooling="mean"), "pooling"),
        (lambda: rk.ResNet50(weights="missing.weights.h5"), "weights"),
        (lambda: rk.ResNet50(weights=3), "weights"),
        (lambda: rk.ResNet18(input_shape=(16, 16, 3)), "input_shape"),
        (lambda: rk.ResNet50(classes=0), "classes"),
        (lambda: rk.SeedResNet(shortcut="C"), "shortcut"),
    ],
)
def test_builders_reject_bad_arguments(make, argument):
    with pytest.raises((ValueError, TypeError), match=argument):
        make()


def test_depth_rule_message_lists_valid_depths():
    with pytest.raises(ValueError, match=r"6n\+2 .*20, 32, 44, 56, 110"):
        blocks_per_stage(22)
    assert blocks_per_stage(110) == 18
    assert blocks_per_stage(1001, "bottleneck") == 111
