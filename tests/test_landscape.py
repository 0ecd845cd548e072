"""Loss landscapes (Li et al. 2018): filter normalisation, slices, known answers, errors."""

import keras
import numpy as np
import pytest

import resnet_keras as rk
from resnet_keras import landscape


def to_numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def snapshot(model):
    return [np.array(to_numpy(weight.value), copy=True) for weight in model.weights]


def assert_weights_equal(model, before):
    for weight, values in zip(model.weights, before):
        np.testing.assert_array_equal(to_numpy(weight.value), values, err_msg=weight.path)


def small_resnet():
    return rk.CifarResNet(8, num_classes=10, input_shape=(8, 8, 3))


def batch(size=10, seed=0):
    generator = np.random.RandomState(seed)
    images = generator.normal(size=(size, 8, 8, 3)).astype("float32")
    return images, np.arange(size) % 10


@pytest.mark.backend
def test_filter_normalised_direction_has_the_weights_filter_norms():
    model = small_resnet()
    direction = landscape.random_direction(model, seed=3)
    weights = model.trainable_weights
    assert [d.shape for d in direction] == [tuple(w.shape) for w in weights]
    kinds = {"conv": 0, "dense": 0, "zero": 0}
    for d, weight in zip(direction, weights):
        values = to_numpy(weight.value)
        assert d.dtype == values.dtype
        if values.ndim == 1:  # BN's gamma and beta, the dense bias
            assert not d.any(), weight.path
            kinds["zero"] += 1
            continue
        axes = tuple(range(values.ndim - 1))  # every axis but the filters' (the last)
        norms = np.sqrt(np.sum(np.square(d, dtype="float64"), axis=axes))
        targets = np.sqrt(np.sum(np.square(values, dtype="float64"), axis=axes))
        np.testing.assert_allclose(norms, targets, rtol=1e-5, err_msg=weight.path)
        kinds["conv" if values.ndim == 4 else "dense"] += 1
    # ResNet-8: stem + 3 stages of one two-conv block; BN pairs for each conv; logits.
    assert kinds == {"conv": 7, "dense": 1, "zero": 2 * 7 + 1}

    again = landscape.random_direction(model, seed=3)
    other = landscape.random_direction(model, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(direction, again))
    assert not any(np.allclose(a, b) for a, b in zip(direction, other) if a.ndim > 1)


@pytest.mark.backend
def test_layer_and_raw_normalisations():
    model = small_resnet()
    layer = landscape.random_direction(model, seed=0, normalization="layer")
    raw = landscape.random_direction(model, seed=0, normalization=None)
    for d, r, weight in zip(layer, raw, model.trainable_weights):
        values = to_numpy(weight.value)
        if values.ndim == 1:
            assert not d.any() and not r.any()
            continue
        np.testing.assert_allclose(np.linalg.norm(d), np.linalg.norm(values), rtol=1e-5)
        # The same Gaussian draw, rescaled as a whole.
        np.testing.assert_allclose(d, r * np.linalg.norm(values) / np.linalg.norm(r), rtol=1e-5)
    entries = np.concatenate([r.ravel() for r in raw if r.ndim > 1])
    assert abs(entries.std() - 1) < 0.02 and abs(entries.mean()) < 0.02


@pytest.mark.backend
def test_loss_at_zero_is_the_models_loss_and_weights_are_restored():
    model = small_resnet()
    images, labels = batch(10)
    before = snapshot(model)
    direction = landscape.random_direction(model, seed=0)
    curve = landscape.loss_along(model, direction, [-0.5, 0.0, 0.5], images, labels, batch_size=4)
    assert_weights_equal(model, before)

    logits = model(keras.ops.convert_to_tensor(images), training=False)
    by_hand = keras.ops.mean(
        keras.ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    )
    np.testing.assert_allclose(curve.losses[1], float(to_numpy(by_hand)), rtol=1e-5)
    accuracy = np.mean(np.argmax(to_numpy(logits), axis=-1) == labels)
    assert curve.accuracies[1] == accuracy
    assert curve.losses.shape == curve.accuracies.shape == (3,)
    assert abs(curve.losses[0] - curve.losses[1]) > 1e-3  # the weights did move

    # The 2-D grid: its row at alpha = 0 and column at beta = 0 are slices along d1 and d2.
    other = landscape.random_direction(model, seed=1)
    surface = landscape.loss_along(
        model, [direction, other], ([-0.5, 0.0, 0.5], [0.0, 0.25]), images, labels
    )
    assert surface.losses.shape == (3, 2)
    np.testing.assert_allclose(surface.losses[:, 0], curve.losses, rtol=1e-5)
    along_other = landscape.loss_along(model, other, [0.25], images, labels)
    np.testing.assert_allclose(surface.losses[1, 1], along_other.losses[0], rtol=1e-5)
    assert_weights_equal(model, before)


@pytest.mark.backend
def test_weights_are_restored_when_the_evaluation_raises():
    model = small_resnet()
    images, labels = batch(6)
    before = snapshot(model)
    direction = landscape.random_direction(model, seed=0)
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    calls = []

    def failing_loss(y_true, y_pred):
        calls.append(1)
        if len(calls) == 2:  # the weights are at alpha = 1 now
            raise RuntimeError("out of memory, say")
        return cross_entropy(y_true, y_pred)

    with pytest.raises(RuntimeError, match="out of memory"):
        landscape.loss_along(model, direction, [0.5, 1.0, 2.0], images, labels, loss=failing_loss)
    assert len(calls) == 2
    assert_weights_equal(model, before)

    with pytest.raises(ValueError, match="`labels` must hold one label per image"):
        landscape.loss_along(model, direction, [0.5, 1.0], images, labels[:-1])
    assert_weights_equal(model, before)


@pytest.mark.backend
def test_linear_regression_loss_is_the_known_quadratic():
    # y = x w + b under MSE: along (dw, db) the residual r moves by alpha (x dw + db), so
    # L(alpha) = mean(r^2) + 2 alpha mean(r s) + alpha^2 mean(s^2), with s = x dw + db.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    generator = np.random.RandomState(0)
    model.set_weights([generator.normal(size=(3, 1)), np.array([0.3])])
    x = generator.normal(size=(20, 3)).astype("float32")
    y = generator.normal(size=(20, 1)).astype("float32")
    kernel, bias = (w.astype("float64") for w in model.get_weights())
    residual = x @ kernel + bias - y
    mse = keras.losses.MeanSquaredError()

    direction = landscape.random_direction(model, seed=0)  # the bias gets zero
    alphas = np.linspace(-2, 2, 9)
    curve = landscape.loss_along(model, direction, alphas, x, y, loss=mse, batch_size=7)
    step = x @ direction[0].astype("float64")
    expected = np.mean((residual[None] + alphas[:, None, None] * step[None]) ** 2, axis=(1, 2))
    np.testing.assert_allclose(curve.losses, expected, rtol=1e-5)
    assert curve.accuracies is None  # a regression has no classes
    curvature = landscape.sharpness(alphas, curve.losses)
    np.testing.assert_allclose(curvature, 2 * np.mean(step**2), rtol=1e-4)

    # Two hand-made directions, the first moving the bias too.
    d1 = [np.array([[1.0], [0.0], [0.0]]), np.array([0.5])]
    d2 = [np.array([[0.0], [1.0], [-1.0]]), np.array([0.0])]
    alphas, betas = np.array([-1.0, 0.0, 2.0]), np.array([-0.5, 0.5])
    surface = landscape.loss_along(model, (d1, d2), (alphas, betas), x, y, loss=mse)
    s1, s2 = x @ d1[0] + d1[1], x @ d2[0]
    moved = residual + alphas[:, None, None, None] * s1 + betas[None, :, None, None] * s2
    np.testing.assert_allclose(surface.losses, np.mean(moved**2, axis=(2, 3)), rtol=1e-5)


def test_sharpness_known_values():
    alphas = np.linspace(-1, 1, 21)
    # On a symmetric grid the odd terms leave the quadratic coefficient alone.
    assert landscape.sharpness(alphas, 2 + alphas + 4 * alphas**2 + alphas**3) == pytest.approx(8)
    quartic = alphas**4 + alphas**2
    wide, narrow = landscape.sharpness(alphas, quartic), landscape.sharpness(alphas, quartic, 0.2)
    assert 2 < narrow < 2.1 < wide  # the quartic term counts only far from 0
    assert landscape.sharpness(alphas, -(alphas**2)) == pytest.approx(-2)
    rise = landscape.sharpness(alphas, 1 + alphas**2, radius=0.25, measure="rise")
    assert rise == pytest.approx(np.mean([0.04, 0.01, 0, 0.01, 0.04]))  # |alpha| <= 0.2
    assert landscape.sharpness(alphas, np.ones(21), measure="rise") == 0


def test_non_convexity_known_values():
    a, b = np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5), indexing="ij")
    assert landscape.non_convexity(a**2 + b**2) == 0
    assert landscape.non_convexity(a**2 - b**2) == 1
    # A ridge along b = 0: only the centre column of the 3 x 3 interior bends down.
    assert landscape.non_convexity(a**2 - np.abs(b)) == pytest.approx(1 / 3)
    # A faint downward bend (second differences of -5e-4) is noise under a tolerance.
    assert landscape.non_convexity(a**2 - 1e-3 * b**2) == 1
    assert landscape.non_convexity(a**2 - 1e-3 * b**2, tolerance=1e-3) == 0


@pytest.mark.backend
def test_bad_inputs_name_the_argument():
    model = small_resnet()
    images, labels = batch(4)
    d = landscape.random_direction(model)
    with pytest.raises(ValueError, match="`normalization` must be one of 'filter', 'layer'"):
        landscape.random_direction(model, normalization="unit")
    with pytest.raises(ValueError, match="`seed`"):
        landscape.random_direction(model, seed=-1)
    with pytest.raises(TypeError, match="`model`"):
        landscape.random_direction("resnet8")
    with pytest.raises(ValueError, match="`directions` must hold one direction per axis.*2 "):
        landscape.loss_along(model, [d, d], [0.0, 1.0], images, labels)
    with pytest.raises(ValueError, match="`directions` must hold one direction per axis.*1 "):
        landscape.loss_along(model, d, ([0.0, 1.0], [0.0]), images, labels)
    with pytest.raises(ValueError, match="`directions` must hold one array per trainable weight"):
        landscape.loss_along(model, d[:-1], [0.0], images, labels)
    transposed = [a.T for a in d]
    with pytest.raises(ValueError, match="`directions` must match the shapes.*stem_conv"):
        landscape.loss_along(model, transposed, [0.0], images, labels)
    with pytest.raises(ValueError, match="`coordinates`"):
        landscape.loss_along(model, d, [[[0.0]]], images, labels)
    with pytest.raises(ValueError, match="`coordinates`"):
        landscape.loss_along(model, d, [0.0, np.nan], images, labels)
    with pytest.raises(ValueError, match="`batch_size`"):
        landscape.loss_along(model, d, [0.0], images, labels, batch_size=0)
    with pytest.raises(TypeError, match="`loss`"):
        landscape.loss_along(model, d, [0.0], images, labels, loss="mse")
    with pytest.raises(ValueError, match="`losses` must hold one loss per alpha"):
        landscape.sharpness([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="`alphas` must hold at least three"):
        landscape.sharpness([-1, 0, 1], [1, 0, 1], radius=0.5)
    with pytest.raises(ValueError, match="`measure`"):
        landscape.sharpness([-1, 0, 1], [1, 0, 1], measure="max")
    with pytest.raises(ValueError, match="`losses` must be a finite 2-D grid"):
        landscape.non_convexity([1.0, 0.0, 1.0])


@pytest.mark.slow
def test_trained_plain_net_is_sharper_than_its_residual_twin():
    # Li et al. 2018 (Fig. 5): without shortcuts the landscape gets sharp as depth grows.
    # Measured at this tiny budget (4 epochs on 512 digits at 8x8, one seed-0 direction,
    # |alpha| <= 1): curvature plain-20 1525 against ResNet-20 300, rise 163 against 37;
    # at depth 14 the two are alike (171 and 171), so depth 20 it is.
    from resnet_keras import data
    from resnet_keras.course.budgets import shrink

    loaded = data.load("digits", batch_size=64, train_size=512, validation_size=0, augment=False)
    train = shrink(loaded.train, 8)
    pairs = list(train.take(4))  # one pass: each pass over the split shuffles anew
    images = np.concatenate([np.asarray(x) for x, _ in pairs])
    labels = np.concatenate([np.asarray(y) for _, y in pairs])
    alphas = np.linspace(-1, 1, 21)
    results = {}
    for residual in (True, False):
        rk.set_determinism(0)
        model = rk.CifarResNet(20, residual=residual, input_shape=(8, 8, 3))
        rk.fit(model, train, epochs=4, learning_rate=0.02, verbose=0)
        direction = landscape.random_direction(model, seed=0)
        curve = landscape.loss_along(model, direction, alphas, images, labels)
        results[residual] = (
            curve,
            landscape.sharpness(alphas, curve.losses),
            landscape.sharpness(alphas, curve.losses, measure="rise"),
        )
    (res_curve, res_curvature, res_rise), (plain_curve, plain_curvature, plain_rise) = (
        results[True],
        results[False],
    )
    for curve in (res_curve, plain_curve):
        assert abs(alphas[np.argmin(curve.losses)]) <= 0.2  # trained: a minimum near theta
    assert res_curve.accuracies[10] > 0.85  # ResNet-20 has learnt the digits
    assert 0 < res_curvature and 2 * res_curvature < plain_curvature
    assert 0 < res_rise and 2 * res_rise < plain_rise
