"""Tests of resnet_keras.data: CIFAR-10 on mocked TFDS data, the offline digits, no network.

Nothing here downloads: CIFAR-10 is exercised through `tfds.testing.mock_data`, which
runs the real loading code on generated records, and the offline tests point the
download probe at 192.0.2.1 (TEST-NET-1, reserved and never routed).
"""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from matplotlib.figure import Figure
from sklearn.datasets import load_digits

from resnet_keras.data import (
    DataInfo,
    DatasetUnavailableError,
    LoadedData,
    OfflineDatasetWarning,
    cifar10,
    digits,
    load,
    loader,
    pipeline,
    pipeline_options,
    show_images,
    synthetic,
    without_autotune_thread,
)

MOCK_EXAMPLES = 200  # mock_data yields this many records for every split
UNROUTABLE_URL = "http://192.0.2.1/"  # RFC 5737 documentation address


@pytest.fixture
def no_network(monkeypatch):
    """Makes the download probe fail the way it does without a network, anywhere."""
    monkeypatch.setattr(cifar10, "PROBE_URL", UNROUTABLE_URL)


@pytest.fixture
def mock_cifar10(monkeypatch):
    """Real CIFAR-10 loading code on `MOCK_EXAMPLES` random records per split."""

    def probe_must_not_run(*args, **kwargs):
        raise AssertionError("a prepared dataset must not probe the network")

    monkeypatch.setattr(cifar10, "probe_download_host", probe_must_not_run)
    with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
        # mock_data replaces the records but not the "is it prepared?" check.
        monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: True)
        yield


def _all(dataset):
    images, labels = zip(*((x.numpy(), y.numpy()) for x, y in dataset), strict=True)
    return np.concatenate(images), np.concatenate(labels)


def _first(dataset):
    images, labels = next(iter(dataset))
    return images.numpy(), labels.numpy()


def _find_transform(augmented, original, allow_flip, fill=0.0):
    """Returns (dy, dx, flipped) such that augmented is a crop of the padded original."""
    pad = pipeline.PAD
    padded = np.pad(original - fill, ((pad, pad), (pad, pad), (0, 0))) + fill
    size = original.shape[0]
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[dy : dy + size, dx : dx + size]
            for flipped in (False, True) if allow_flip else (False,):
                candidate = crop[:, ::-1] if flipped else crop
                if np.allclose(candidate, augmented, atol=1e-5):
                    return dy, dx, flipped
    return None


# --------------------------------------------------------------------------- CIFAR-10


def test_cifar10_shapes_dtypes_and_sizes(mock_cifar10, tmp_path):
    data = load("cifar10", batch_size=32, data_dir=tmp_path, validation_split=0.1)

    assert isinstance(data, LoadedData)
    train, validation, test, info = data  # unpacks as a 4-tuple
    assert isinstance(info, DataInfo)
    assert info.name == "cifar10"
    assert info.class_names == cifar10.CLASS_NAMES
    assert (info.image_shape, info.num_classes) == ((32, 32, 3), 10)
    assert (info.train_size, info.validation_size, info.test_size) == (180, 20, 200)
    assert "CIFAR-10" in info.source and "tensorflow-datasets" in info.source
    assert info.notice is None
    assert "flip" in info.augmentation

    images, labels = _first(train)
    assert images.shape == (32, 32, 32, 3) and images.dtype == np.float32
    assert labels.shape == (32,) and labels.dtype == np.int32
    assert labels.min() >= 0 and labels.max() < 10
    # Keras reads the step count from the cardinality.
    assert int(train.cardinality()) == 6  # ceil(180 / 32)
    assert sum(len(y) for _, y in validation) == 20
    assert sum(len(y) for _, y in test) == 200


def test_cifar10_normalisation_uses_train_statistics(mock_cifar10, tmp_path):
    data = load("cifar10", batch_size=64, data_dir=tmp_path, augment=False)
    images, _ = _all(data.train)

    # mock records are uniform random bytes: mean about 0.5, std about 0.29.
    np.testing.assert_allclose(data.info.mean, 0.5, atol=0.02)
    np.testing.assert_allclose(data.info.std, 0.289, atol=0.02)
    assert "computed over the 180 training images" in data.info.normalization
    np.testing.assert_allclose(images.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(images.std(axis=(0, 1, 2)), 1.0, atol=1e-4)


def test_cifar10_large_training_set_uses_published_statistics(mock_cifar10, tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "STATS_LIMIT", 100)
    info = load("cifar10", batch_size=64, data_dir=tmp_path).info
    assert info.mean == cifar10.MEAN and info.std == cifar10.STD
    assert "published" in info.normalization


def test_cifar10_augmentation_pads_crops_and_flips(mock_cifar10, tmp_path):
    plain = load("cifar10", batch_size=32, data_dir=tmp_path, augment=False, seed=3)
    augmented = load("cifar10", batch_size=32, data_dir=tmp_path, augment=True, seed=3)
    originals, labels = _first(plain.train)
    images, augmented_labels = _first(augmented.train)

    # Same seed, same shuffle: the same images, so each must be a shifted crop.
    np.testing.assert_array_equal(labels, augmented_labels)
    assert images.shape == originals.shape
    transforms = [
        _find_transform(a, o, allow_flip=True) for a, o in zip(images, originals, strict=True)
    ]
    assert all(t is not None for t in transforms)
    assert any((dy, dx) != (4, 4) for dy, dx, _ in transforms)
    assert any(flipped for _, _, flipped in transforms)
    # The validation and test splits are never augmented.
    np.testing.assert_array_equal(_first(plain.test)[0], _first(augmented.test)[0])


def test_same_seed_same_first_batch(mock_cifar10, tmp_path):
    first = _first(load("cifar10", batch_size=16, data_dir=tmp_path, seed=7).train)
    again = _first(load("cifar10", batch_size=16, data_dir=tmp_path, seed=7).train)
    other = _first(load("cifar10", batch_size=16, data_dir=tmp_path, seed=8).train)

    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_each_epoch_reshuffles_the_training_split():
    train = load("digits", batch_size=64, seed=0).train
    epoch_one = _first(train)
    epoch_two = _first(train)
    assert not np.array_equal(epoch_one[1], epoch_two[1])


# --------------------------------------------------------------------------- digits


def test_digits_are_real_images_with_their_statistics():
    data = load("digits", batch_size=256, augment=False)
    info = data.info
    assert info.name == "digits"
    assert info.class_names == tuple("0123456789")
    assert "scikit-learn" in info.source and "upsampled" in info.source
    assert info.augmentation == "none"

    # Grey images on three identical channels, with the ink statistics of the
    # originals (8x8 values 0..16): mean ink 0.305 of full scale.
    raw_mean = load_digits().images.mean() / 16.0  # 0.3053
    assert max(info.mean) - min(info.mean) < 1e-9
    np.testing.assert_allclose(info.mean, raw_mean, atol=0.01)

    images, _ = _all(data.test)
    pixels = info.denormalize(images)
    assert pixels.shape == (360, 32, 32, 3)
    np.testing.assert_array_equal(pixels[..., 0], pixels[..., 2])
    assert 0.25 < np.mean(pixels < 0.02) < 0.6  # a third or more is background
    # Each test image is its 8x8 original, upsampled: same average ink per image.
    bunch = load_digits()
    order = digits.class_interleaved_order(bunch.target, digits.SPLIT_SEED)[:360]
    np.testing.assert_array_equal(_all(data.test)[1], bunch.target[order])
    raw_ink = bunch.images[order].mean(axis=(1, 2)) / 16.0
    np.testing.assert_allclose(pixels[..., 0].mean(axis=(1, 2)), raw_ink, atol=0.03)
    # Real strokes: neighbouring pixels are strongly correlated, unlike noise.
    left, right = pixels[:, :, :-1, 0].ravel(), pixels[:, :, 1:, 0].ravel()
    assert np.corrcoef(left, right)[0, 1] > 0.9


def test_digits_split_is_stratified_and_fixed():
    first = load("digits", batch_size=512, augment=False, seed=0)
    second = load("digits", batch_size=512, augment=False, seed=1)

    test_images, test_labels = _all(first.test)
    assert np.bincount(test_labels, minlength=10).tolist() == [36] * 10
    validation_counts = np.bincount(_all(first.validation)[1], minlength=10)
    assert validation_counts.sum() == 144
    assert validation_counts.max() - validation_counts.min() <= 1

    # The split does not depend on the shuffle seed (nor on the call).
    np.testing.assert_array_equal(test_images, _all(second.test)[0])
    np.testing.assert_array_equal(_all(first.validation)[0], _all(second.validation)[0])
    train_a = np.sort(_all(first.train)[0].reshape(1293, -1), axis=0)
    train_b = np.sort(_all(second.train)[0].reshape(1293, -1), axis=0)
    np.testing.assert_array_equal(train_a, train_b)


def test_digits_augmentation_shifts_but_never_flips():
    plain = load("digits", batch_size=64, augment=False, seed=5)
    augmented = load("digits", batch_size=64, augment=True, seed=5)
    assert "no flip" in augmented.info.augmentation
    originals, _ = _first(plain.train)
    images, _ = _first(augmented.train)
    info = augmented.info
    black = -np.asarray(info.mean, np.float32) / np.asarray(info.std, np.float32)
    transforms = [
        _find_transform(a, o, allow_flip=False, fill=black)
        for a, o in zip(images, originals, strict=True)
    ]
    assert all(t is not None for t in transforms)
    assert any((dy, dx) != (4, 4) for dy, dx, _ in transforms)


@pytest.mark.parametrize(
    ("kwargs", "sizes"),
    [
        ({}, (1293, 144, 360)),
        ({"validation_split": 0.0}, (1437, 0, 360)),
        ({"train_size": 500}, (500, 56, 360)),  # 10% of the 556 images in use
        ({"train_size": 5000, "validation_size": 200}, (1237, 200, 360)),
        ({"test_size": 100, "validation_split": 0.25}, (1078, 359, 100)),
    ],
)
def test_split_sizes(kwargs, sizes):
    data = load("digits", batch_size=1000, augment=False, normalize=False, **kwargs)
    info = data.info
    assert (info.train_size, info.validation_size, info.test_size) == sizes
    train_images, _ = _all(data.train)
    assert len(train_images) == sizes[0]
    assert len(_all(data.test)[0]) == sizes[2]
    if sizes[1] == 0:
        assert data.validation is None
        return
    validation_images, _ = _all(data.validation)
    assert len(validation_images) == sizes[1]
    assert info.mean is None and train_images.max() <= 1.0
    # Validation = the front of the fixed training split, training = what follows.
    pool = digits.arrays()[0].astype(np.float32) / 255.0
    np.testing.assert_array_equal(validation_images, pool[: sizes[1]])
    expected_train = pool[sizes[1] : sizes[1] + sizes[0]].reshape(sizes[0], -1)
    np.testing.assert_array_equal(
        np.sort(train_images.reshape(sizes[0], -1), axis=0), np.sort(expected_train, axis=0)
    )


# --------------------------------------------------------------------------- no network


def test_cifar10_without_data_or_network_fails_fast(no_network, tmp_path):
    start = time.monotonic()
    with pytest.raises(DatasetUnavailableError) as error:
        load("cifar10", data_dir=tmp_path / "empty")
    assert time.monotonic() - start < 10.0
    message = str(error.value)
    assert "tfds.load('cifar10')" in message
    assert "TFDS_DATA_DIR" in message and "data_dir" in message
    assert isinstance(error.value, RuntimeError)


def test_auto_without_cifar10_uses_digits_with_notice(no_network, tmp_path):
    start = time.monotonic()
    with pytest.warns(OfflineDatasetWarning, match="CIFAR-10"):
        data = load("auto", data_dir=tmp_path / "empty", batch_size=32)
    assert time.monotonic() - start < 10.0
    assert data.info.name == "digits"
    assert "scikit-learn" in data.info.notice
    assert "TFDS_DATA_DIR" in data.info.notice
    assert next(iter(data.train))[0].shape == (32, 32, 32, 3)


def test_probe_reports_unreachable_host_within_its_timeout():
    start = time.monotonic()
    assert cifar10.probe_download_host(UNROUTABLE_URL, timeout=1.0) is False
    assert time.monotonic() - start < 2.0


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"name": "imagenet"}, ValueError, "name"),
        ({"name": 10}, TypeError, "name"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 2.5}, TypeError, "batch_size"),
        ({"validation_split": 1.0}, ValueError, "validation_split"),
        ({"validation_split": -0.1}, ValueError, "validation_split"),
        ({"train_size": 0}, ValueError, "train_size"),
        ({"test_size": -5}, ValueError, "test_size"),
        ({"train_size": "all"}, TypeError, "train_size"),
        ({"validation_size": 2000}, ValueError, "validation_size"),
        ({"seed": -1}, ValueError, "seed"),
        ({"augment": "yes"}, TypeError, "augment"),
        ({"data_dir": 3}, TypeError, "data_dir"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, error, argument):
    arguments = {"name": "digits", **kwargs}
    with pytest.raises(error, match=argument):
        load(**arguments)


def test_unknown_name_lists_the_allowed_ones():
    with pytest.raises(ValueError, match="'auto', 'cifar10', 'digits'"):
        load("mnist")


# --------------------------------------------------------------------------- consumers


def test_batches_feed_a_keras_model():
    keras.utils.set_random_seed(0)
    train, validation, _, info = load("digits", batch_size=32, seed=0)
    model = keras.Sequential(
        [
            keras.Input(info.image_shape),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(info.num_classes),
        ]
    )
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    history = model.fit(
        train.take(2), validation_data=validation.take(1), epochs=1, shuffle=False, verbose=0
    )
    assert np.isfinite(history.history["loss"][0])
    assert "val_accuracy" in history.history


def test_show_images_draws_a_labelled_grid():
    data = load("digits", batch_size=8, seed=0)
    figure = show_images(data.train, data.info, n=12, ncols=6, title="digits")
    assert isinstance(figure, Figure)
    assert len(figure.axes) == 12
    titles = [axes.get_title() for axes in figure.axes]
    assert all(title in data.info.class_names for title in titles)
    shown = figure.axes[0].get_images()[0].get_array()
    assert shown.shape == (32, 32, 3) and shown.min() >= 0.0 and shown.max() <= 1.0
    # Normalisation was undone: the background is black again, not the negative mean.
    assert np.mean(np.asarray(shown) < 0.02) > 0.3


def test_show_images_marks_predictions_and_accepts_arrays():
    images, labels = synthetic(4, batch_size=4, as_numpy=True)
    figure = show_images((images, labels), ["a"] * 10, n=4, predictions=labels[::-1])
    colours = [axes.title.get_color() for axes in figure.axes]
    assert set(colours) <= {"tab:green", "tab:red"} and len(colours) == 4
    with pytest.raises(ValueError, match="`n`"):
        show_images((images, labels), n=0)


def test_synthetic_data_is_cifar_shaped_and_seeded():
    dataset = synthetic(300, batch_size=128, seed=1)
    batches = list(dataset)
    assert [int(x.shape[0]) for x, _ in batches] == [128, 128, 44]
    assert batches[0][0].dtype == tf.float32 and batches[0][1].dtype == tf.int32
    np.testing.assert_array_equal(
        synthetic(8, seed=1, as_numpy=True)[0], synthetic(8, seed=1, as_numpy=True)[0]
    )
    with pytest.raises(ValueError, match="batch_size"):
        synthetic(batch_size=0)


def test_shrink_to_fit_keeps_the_validation_share_only_when_the_request_does_not_fit():
    # 1,000 + 10,000 asked of 1,437 digits: the share 1/11 gives 131 validation images.
    info = load("digits", train_size=10_000, validation_size=1_000, shrink_to_fit=True).info
    assert (info.train_size, info.validation_size) == (1306, 131)
    # Without it the request is honoured literally, leaving 437 images to train on.
    info = load("digits", train_size=10_000, validation_size=1_000).info
    assert (info.train_size, info.validation_size) == (437, 1000)
    # A request that fits is never changed.
    info = load("digits", train_size=500, validation_size=100, shrink_to_fit=True).info
    assert (info.train_size, info.validation_size) == (500, 100)
    with pytest.raises(TypeError, match="shrink_to_fit"):
        load("digits", shrink_to_fit="yes")


# --- tf.data options --------------------------------------------------------------------------


def test_library_pipelines_run_without_the_autotuning_thread(mock_cifar10, tmp_path):
    """Every split the library builds leaves tf.data's autotuner off (options.py says why)."""
    for data in (
        load("digits", batch_size=64),
        load("cifar10", batch_size=64, data_dir=str(tmp_path), augment=True),
    ):
        for split in (data.train, data.validation, data.test):
            assert split.options().autotune.enabled is False
    for repeat in (False, True):
        assert synthetic(64, batch_size=32, repeat=repeat).options().autotune.enabled is False
    assert pipeline_options().autotune.enabled is False


def test_without_autotune_thread_keeps_an_explicit_choice():
    plain = tf.data.Dataset.range(6).batch(2)
    assert without_autotune_thread(plain).options().autotune.enabled is False
    # The elements are untouched: only the options change.
    assert [list(b.numpy()) for b in without_autotune_thread(plain)] == [[0, 1], [2, 3], [4, 5]]
    for choice in (True, False):
        options = tf.data.Options()
        options.autotune.enabled = choice
        chosen = plain.with_options(options)
        assert without_autotune_thread(chosen).options().autotune.enabled is choice
    with pytest.raises(TypeError, match="`dataset`"):
        without_autotune_thread([1, 2, 3])
