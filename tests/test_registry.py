"""The block and dataset registries, used from outside the package: a new block type and a
new dataset train through the builders, `rk.fit` and the command line without an edit of
the library."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import resnet_keras as rk
from resnet_keras.course import cli
from resnet_keras.data import DATASETS, Dataset, register_dataset
from resnet_keras.layers import BLOCKS, BranchConvolution, ResidualBlock, register_block


@keras.saving.register_keras_serializable(package="test_registry")
class GroupedBlock(ResidualBlock):
    """A basic block whose second 3x3 convolution is grouped (ResNeXt's idea, 4 groups)."""

    @property
    def output_filters(self):
        return self.filters

    def _branch_convolutions(self):
        return [
            BranchConvolution(3, self.filters, self.strides),
            BranchConvolution(3, self.filters, 1, groups=4),
        ]


@keras.saving.register_keras_serializable(package="test_registry")
class DepthwiseBlock(GroupedBlock):
    """The same with a depthwise second convolution (one group per channel)."""

    def _branch_convolutions(self):
        return [
            BranchConvolution(3, self.filters, self.strides),
            BranchConvolution(3, self.filters, 1, groups=self.filters),
        ]


@pytest.fixture
def registered():
    register_block("grouped", GroupedBlock, convolutions=2)
    register_block("depthwise", DepthwiseBlock, convolutions=2)
    yield
    del BLOCKS["grouped"], BLOCKS["depthwise"]


def test_a_registered_block_builds_the_network_with_its_branch(registered):
    model = rk.CifarResNet(20, block="grouped")
    # Each stage's three second convolutions (f -> f, 3x3) keep a quarter of their 9 f^2
    # weights: ResNet-20's 269,722 less 3 * 9 * 0.75 * (16^2 + 32^2 + 64^2) = 108,864.
    assert rk.count_trainable_params(model) == 269_722 - 108_864
    grouped = [layer for layer in model.layers if isinstance(layer, GroupedBlock)]
    assert len(grouped) == 9 and grouped[0].branch_convs[1].groups == 4
    depthwise = rk.CifarResNet(20, block="depthwise")
    last = [layer for layer in depthwise.layers if isinstance(layer, DepthwiseBlock)][-1]
    assert last.branch_convs[1].groups == 64  # one group per channel
    with pytest.raises(ValueError, match="`block` must be one of .*'grouped'"):
        rk.CifarResNet(20, block="wide")
    with pytest.raises(TypeError, match="ResidualBlock"):
        register_block("dense", keras.layers.Dense, convolutions=1)


def test_a_registered_block_trains_with_fit_and_saves(registered, tmp_path):
    rk.set_determinism(0)
    data = rk.load("digits", batch_size=32, train_size=128, validation_size=32, test_size=32)
    model = rk.CifarResNet(8, block="grouped", num_classes=data.info.num_classes)
    before = [weight.copy() for weight in model.get_weights()]
    history = rk.fit(model, data, epochs=2, verbose=0)
    assert all(np.isfinite(history.history["loss"]))
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    path = tmp_path / "grouped.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    images = next(iter(data.validation))[0]
    np.testing.assert_allclose(
        restored.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5
    )


def test_the_command_line_offers_a_registered_block(registered, tmp_path, capsys):
    out = tmp_path / "run"
    arguments = ["train", "--model", "resnet20", "--block", "grouped", "--dataset", "digits"]
    arguments += ["--epochs", "1", "--train-size", "128", "--profile", "ci", "--verbose", "0"]
    assert cli.main([*arguments, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trainable_params"] == 269_722 - 108_864
    assert json.loads((out / cli.RUN_CONFIG_FILE).read_text())["block"] == "grouped"
    capsys.readouterr()


def _read_stripes(data_dir):
    """200 images of horizontal or vertical stripes (the class), at random phases."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    labels = np.arange(200) % 2
    images = np.zeros((200, 32, 32, 3), "uint8")
    for image, label, phase in zip(images, labels, rng.integers(0, 4, 200)):
        if label == 0:
            image[phase::4, :, :] = 255
        else:
            image[:, phase::4, :] = 255
    split = lambda part: tf.data.Dataset.from_tensor_slices((images[part], labels[part]))  # noqa: E731
    return split(slice(0, 160)), split(slice(160, 200)), "Stripes, made up for a test."


@pytest.fixture
def stripes():
    register_dataset(Dataset("stripes", read=_read_stripes, class_names=("horizontal", "vertical")))
    yield
    del DATASETS["stripes"]


def test_a_registered_dataset_loads_and_trains_through_the_command_line(stripes, tmp_path, capsys):
    data = rk.load("stripes", batch_size=16, validation_size=32, augment=False)
    assert data.info.class_names == ("horizontal", "vertical") and data.info.num_classes == 2
    assert (data.info.train_size, data.info.validation_size, data.info.test_size) == (128, 32, 40)
    images, labels = next(iter(data.train))
    assert tuple(images.shape) == (16, 32, 32, 3) and set(np.asarray(labels)) <= {0, 1}
    with pytest.raises(ValueError, match="`name` must be one of .*'stripes'"):
        rk.load("stripe")

    out = tmp_path / "run"
    arguments = ["train", "--model", "resnet20", "--dataset", "stripes", "--epochs", "1"]
    arguments += ["--profile", "ci", "--verbose", "0", "--out", str(out)]
    assert cli.main(arguments) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "stripes" and summary["test_size"] == 40
    # ResNet-20 with a 2-class classifier: 64 x 2 weights and 2 biases instead of 64 x 10 + 10.
    assert summary["trainable_params"] == 269_722 - (64 * 10 + 10) + (64 * 2 + 2)
    capsys.readouterr()
