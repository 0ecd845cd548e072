"""Saliency: feature maps per stage, Grad-CAM against a hand computation, the sanity check."""

import keras
import numpy as np
import pytest

import resnet_keras as rk
from resnet_keras.saliency import (
    feature_maps,
    grad_cam,
    randomize_weights,
    rank_correlation,
    spatial_layers,
)


def to_numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def small_resnet():
    return rk.CifarResNet(8, num_classes=10, input_shape=(16, 16, 3))


def random_images(count=3, size=16, seed=0):
    return np.random.default_rng(seed).normal(size=(count, size, size, 3)).astype("float32")


def assert_normalised(maps):
    assert maps.dtype == np.float32 and np.isfinite(maps).all()
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    for heat in maps:
        assert heat.max() == 1.0 or not heat.any()


@pytest.mark.backend
def test_grad_cam_of_a_cifar_resnet_is_one_map_per_image_at_the_input_size():
    model, images = small_resnet(), random_images(3)
    maps = grad_cam(model, images)
    assert maps.shape == (3, 16, 16)
    assert_normalised(maps)
    assert any(heat.max() == 1.0 for heat in maps)
    # The default layer is the last one before global pooling: the last block, 4x4 here.
    assert spatial_layers(model)[-1] == "stage3_block1"
    np.testing.assert_array_equal(maps, grad_cam(model, images, layer_name="stage3_block1"))
    earlier = grad_cam(model, images, layer_name="stage2_block1")
    assert earlier.shape == (3, 16, 16) and not np.array_equal(maps, earlier)
    # The default class is each image's predicted class, the argmax of the logits.
    predicted = np.argmax(to_numpy(model(images, training=False)), axis=-1)
    np.testing.assert_array_equal(maps, grad_cam(model, images, class_index=predicted))
    other = (predicted + 1) % 10
    assert not np.array_equal(maps, grad_cam(model, images, class_index=other))


def linear_model():
    """images -> 1x1 conv "features" (2 channels) -> global mean -> dense logits (2)."""
    inputs = keras.Input((4, 4, 3))
    features = keras.layers.Conv2D(2, 1, use_bias=False, name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(features)
    logits = keras.layers.Dense(2, name="logits")(pooled)
    model = keras.Model(inputs, logits)
    kernel = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, -0.5]], "float32")
    dense = np.array([[1.0, -1.0], [-0.5, -2.0]], "float32")  # dense[k, c]
    model.get_layer("features").set_weights([kernel[None, None]])
    model.get_layer("logits").set_weights([dense, np.array([0.1, 0.2], "float32")])
    return model, kernel, dense


def hand_grad_cam(images, kernel, dense, c):
    activations = images @ kernel  # A_k(i, j), (batch, 4, 4, 2)
    # logit_c = sum_k dense[k, c] * mean_ij A_k(i, j) + b_c, so dlogit_c / dA_k(i, j) is
    # dense[k, c] / (H W) at every position and so is its spatial mean, the weight w_k.
    weights = dense[:, c] / (4 * 4)
    heat = np.maximum(activations @ weights, 0.0)
    peaks = heat.max(axis=(1, 2), keepdims=True)
    return heat / peaks


@pytest.mark.backend
def test_grad_cam_matches_the_hand_computation_on_a_linear_model():
    model, kernel, dense = linear_model()
    images = random_images(2, size=4, seed=3)
    assert spatial_layers(model) == ["features"]
    for c in (0, 1):
        expected = hand_grad_cam(images, kernel, dense, c)
        assert 0 < (expected == 0).mean() < 1  # the ReLU clips part of each map
        maps = grad_cam(model, images, class_index=c)
        np.testing.assert_allclose(maps, expected, atol=1e-5)
        np.testing.assert_array_equal(maps, grad_cam(model, images, c, layer_name="features"))


@pytest.mark.backend
def test_a_map_without_positive_evidence_stays_zero():
    model, kernel, dense = linear_model()
    images = np.random.default_rng(4).uniform(0.5, 1.0, size=(2, 4, 4, 3)).astype("float32")
    images[..., 2] = 0.0  # both feature channels positive everywhere
    # Class 1 weighs both channels negatively: ReLU(sum_k w_k A_k) is zero everywhere.
    maps = grad_cam(model, images, class_index=[0, 1])
    assert np.isfinite(maps).all()
    np.testing.assert_allclose(maps[0], hand_grad_cam(images, kernel, dense, 0)[0], atol=1e-5)
    np.testing.assert_array_equal(maps[1], np.zeros((4, 4)))


@pytest.mark.backend
@pytest.mark.parametrize(
    "build, last_layer",
    [
        (lambda: rk.CifarResNet(8, preactivation=True, input_shape=(16, 16, 3)), "post_relu"),
        (lambda: rk.SeedNet(input_shape=(16, 16, 3), filters=(8, 16)), "conv2"),
        (lambda: rk.SeedResNet(input_shape=(16, 16, 3), filters=(8, 16)), "relu2"),
        (
            lambda: rk.ResNet18(input_shape=(32, 32, 3), classes=4, classifier_activation=None),
            "conv5_block2",
        ),
    ],
)
def test_grad_cam_works_on_the_other_builders(build, last_layer):
    model = build()
    size = model.input_shape[1]
    images = random_images(2, size=size)
    assert spatial_layers(model)[-1] == last_layer
    maps = grad_cam(model, images)
    assert maps.shape == (2, size, size)
    assert_normalised(maps)


@pytest.mark.backend
def test_grad_cam_on_a_layer_inside_a_residual_branch():
    # conv2 does not cut the graph in two (the shortcut still reads conv1's output): its
    # gradient holds the shortcut fixed, and the score is still a function of conv2 alone.
    model = rk.SeedResNet(input_shape=(16, 16, 3), filters=(8, 16))
    maps = grad_cam(model, random_images(2), layer_name="conv2")
    assert maps.shape == (2, 16, 16)
    assert_normalised(maps)


@pytest.mark.backend
def test_feature_maps_are_the_stages_outputs():
    model, images = small_resnet(), random_images(2)
    maps = feature_maps(model, images)
    assert {name: value.shape for name, value in maps.items()} == {
        "stage1_block1": (2, 16, 16, 16),
        "stage2_block1": (2, 8, 8, 32),
        "stage3_block1": (2, 4, 4, 64),
    }
    assert list(maps) == ["stage1_block1", "stage2_block1", "stage3_block1"]
    # Inference mode: the logits layer's activations are the model's predictions.
    logits = feature_maps(model, images, layer_names=["logits"])["logits"]
    np.testing.assert_allclose(logits, to_numpy(model(images, training=False)), atol=1e-5)
    deeper = feature_maps(rk.CifarResNet(14, input_shape=(16, 16, 3)), images)
    assert list(deeper) == ["stage1_block2", "stage2_block2", "stage3_block2"]


@pytest.mark.backend
def test_feature_maps_fall_back_to_the_last_layer_of_each_resolution():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    x = keras.layers.ReLU(name="a_relu")(x)
    x = keras.layers.MaxPooling2D(name="down")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", name="b")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    maps = feature_maps(model, random_images(1, size=8))
    assert {name: value.shape for name, value in maps.items()} == {
        "a_relu": (1, 8, 8, 4),
        "b": (1, 4, 4, 8),
    }
    imagenet = rk.ResNet18(input_shape=(32, 32, 3), classes=4)
    assert list(feature_maps(imagenet, random_images(1, size=32))) == [
        "conv2_block2",
        "conv3_block2",
        "conv4_block2",
        "conv5_block2",
    ]


@pytest.mark.backend
def test_bad_arguments_name_the_argument():
    model, images = small_resnet(), random_images(1)
    with pytest.raises(ValueError, match=r"`layer_name`.*'stage3_block1'.*'nope' \(no such"):
        grad_cam(model, images, layer_name="nope")
    with pytest.raises(ValueError, match=r"`layer_name`.*'logits' \(its output has rank 2\)"):
        grad_cam(model, images, layer_name="logits")
    with pytest.raises(TypeError, match="`layer_name`"):
        grad_cam(model, images, layer_name=3)
    with pytest.raises(TypeError, match="`model` must be a functional keras.Model"):
        grad_cam("resnet20", images)
    with pytest.raises(TypeError, match="`model`"):
        feature_maps(keras.layers.Dense(2), images)

    class Subclassed(keras.Model):
        def call(self, x):
            return keras.ops.mean(x, axis=(1, 2))

    with pytest.raises(TypeError, match="`model` must be a functional keras.Model"):
        grad_cam(Subclassed(), images)
    with pytest.raises(ValueError, match="`class_index`.*0, 10"):
        grad_cam(model, images, class_index=10)
    with pytest.raises(ValueError, match="`class_index`"):
        grad_cam(model, images, class_index=[1, 2])  # two classes for one image
    with pytest.raises(TypeError, match="`class_index`"):
        grad_cam(model, images, class_index=1.5)
    with pytest.raises(ValueError, match=r"`images` must be a batch of shape \(batch, 16, 16, 3\)"):
        grad_cam(model, images[0])
    with pytest.raises(ValueError, match="`layer_names`.*'nope'"):
        feature_maps(model, images, layer_names=["stage1_block1", "nope"])
    with pytest.raises(ValueError, match="`layers`.*'nope'"):
        randomize_weights(model, layers=["nope"])
    with pytest.raises(ValueError, match="`seed`"):
        randomize_weights(model, seed=-1)
    features = keras.Model(model.inputs, model.get_layer("stage3_block1").output)
    with pytest.raises(ValueError, match=r"`model` must output class scores"):
        grad_cam(features, images)


def kernels(model):
    return {w.path: to_numpy(w) for w in model.weights if w.path.endswith("kernel")}


@pytest.mark.backend
def test_randomize_weights_reinitialises_a_copy():
    model = small_resnet()
    before = kernels(model)
    randomized = randomize_weights(model, seed=0)
    assert randomized is not model and randomized.name == model.name
    after = kernels(randomized)
    assert after.keys() == before.keys()
    assert all(not np.array_equal(after[path], before[path]) for path in before)
    for path, value in kernels(model).items():  # the original is untouched
        np.testing.assert_array_equal(value, before[path])
    # A function of the seed alone.
    again = kernels(randomize_weights(model, seed=0))
    assert all(np.array_equal(again[path], after[path]) for path in after)
    other = kernels(randomize_weights(model, seed=1))
    assert all(not np.array_equal(other[path], after[path]) for path in after)
    # Only the named layers: the top of the cascade of Adebayo et al.
    top = randomize_weights(model, seed=0, layers=["logits"])
    for layer in model.layers:
        same = [
            np.array_equal(a, b)
            for a, b in zip(layer.get_weights(), top.get_layer(layer.name).get_weights())
        ]
        assert all(same) == (layer.name != "logits"), layer.name
    images = random_images(2)
    unchanged = randomize_weights(model, layers=[])
    np.testing.assert_array_equal(grad_cam(unchanged, images), grad_cam(model, images))


def test_rank_correlation_is_spearmans_rho_per_image():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, size=(5, 6, 6)).astype("float32")  # many ties
    b = a + rng.normal(scale=2.0, size=a.shape)
    per_image = rank_correlation(a, b, per_image=True)
    assert per_image.shape == (5,)
    stats = pytest.importorskip("scipy.stats")
    expected = [stats.spearmanr(x.ravel(), y.ravel()).statistic for x, y in zip(a, b)]
    np.testing.assert_allclose(per_image, expected, atol=1e-12)
    assert rank_correlation(a, b) == pytest.approx(np.mean(expected))
    assert rank_correlation(a, a) == pytest.approx(1.0)
    assert rank_correlation(a, -a) == pytest.approx(-1.0)
    # A constant map has no ranking: its image counts as 0.
    assert rank_correlation(np.zeros((1, 3, 3)), a[:1, :3, :3]) == 0.0
    with pytest.raises(ValueError, match="`a` and `b`"):
        rank_correlation(a, b[:2])


def test_grad_cam_passes_the_sanity_check_on_a_trained_resnet():
    """Adebayo et al.'s model-randomisation test on a ResNet-8 trained on the digits."""
    from resnet_keras import data
    from resnet_keras.course.budgets import shrink

    rk.set_determinism(0)
    loaded = data.load("digits", batch_size=64, train_size=512, validation_size=0, augment=False)
    model = rk.CifarResNet(8, input_shape=(16, 16, 3))
    rk.fit(model, shrink(loaded.train, 16), epochs=5, learning_rate=0.05, verbose=0)
    images, labels = next(iter(shrink(loaded.test, 16).as_numpy_iterator()))
    images, labels = images[:32], labels[:32]
    predicted = np.argmax(to_numpy(model(images, training=False)), axis=-1)
    # Measured: 28 of 32 test images right (TensorFlow, CPU); chance is 3 of 32.
    assert (predicted == labels).mean() > 0.6

    maps = grad_cam(model, images)
    np.testing.assert_array_equal(maps, grad_cam(model, images))  # deterministic
    assert_normalised(maps)
    # The same class explained by the same architecture with random weights.
    random_maps = grad_cam(randomize_weights(model, seed=0), images, class_index=predicted)
    assert_normalised(random_maps)
    # Measured (TensorFlow, CPU): mean Spearman rho 0.27; seeds 1 to 4 give 0.21, -0.02,
    # 0.24 and 0.03. Identical maps give 1.
    assert rank_correlation(maps, random_maps) < 0.5
    assert rank_correlation(maps, maps) == pytest.approx(1.0)
