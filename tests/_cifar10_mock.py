"""A prepared-looking CIFAR-10 for tests: tensorflow-datasets' own mock, with learnable images.

`tfds.testing.mock_data` replaces the reading of a dataset's record files; the real
metadata (`dataset_info.json`, `features.json`) written into a TFDS data directory makes
`builder.is_prepared()` true, so `resnet_keras.data.cifar10.status()` finds CIFAR-10
"prepared" exactly as on a machine where it was downloaded, and `load("auto")` takes the
CIFAR-10 branch (normalisation, flip augmentation, class names) without any network.

The images are not CIFAR-10's. tfds' default mock draws uniform noise with random labels,
on which no network can learn, so every check of a trained result would fail for a
reason that has nothing to do with the code under test. Here each class has its own
colour, every image gets a random colour cast on top (so the classes overlap: a network
reaches about 80% accuracy, not 100%) and pixel noise. That is a learnable task in
CIFAR-10's format (32x32x3 uint8, labels 0-9), so a trained-result check behaves as on
any real dataset; it says nothing about the accuracies CIFAR-10 itself gives.

Used by tests/test_cifar10_path.py, in-process and inside a notebook kernel (which
imports this module by path).
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

TRAIN_EXAMPLES = 2_400
TEST_EXAMPLES = 1_000

# Ten colours in the RGB cube, at least 120 grey levels apart (Euclidean); a colour cast of
# standard deviation 45 per channel makes neighbours overlap, so no classifier is perfect
# (notebook 04's ci run reaches about 80% test accuracy on them).
_PALETTE = np.array(
    [
        (40, 40, 40),
        (215, 40, 40),
        (40, 215, 40),
        (40, 40, 215),
        (215, 215, 40),
        (215, 40, 215),
        (40, 215, 215),
        (215, 215, 215),
        (128, 128, 40),
        (40, 128, 128),
    ],
    dtype=np.float32,
)
_CAST_STD = 45.0
_NOISE_STD = 40.0


def examples(split, count):
    """`count` deterministic (image, label) pairs of `split` ("train" and "test" differ)."""
    rng = np.random.default_rng(2016 if split.startswith("train") else 2017)
    labels = rng.permutation(np.arange(count) % 10)
    cast = rng.normal(0.0, _CAST_STD, size=(count, 1, 1, 3))
    noise = rng.normal(0.0, _NOISE_STD, size=(count, 32, 32, 3))
    images = _PALETTE[labels][:, None, None, :] + cast + noise
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels.astype(np.int64)


def write_metadata(data_dir, train_examples=TRAIN_EXAMPLES, test_examples=TEST_EXAMPLES):
    """Writes the metadata files of a prepared cifar10 into `data_dir/cifar10/<version>`.

    They are what `tfds.builder("cifar10").download_and_prepare()` writes next to the
    record files (taken from tensorflow-datasets' own cifar10 definition), with the
    split sizes of the mock.
    """
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core import splits as splits_lib

    builder = tfds.builder("cifar10", data_dir=os.fspath(data_dir))
    info = builder.info
    info.set_splits(
        splits_lib.SplitDict(
            [
                splits_lib.SplitInfo(name="train", shard_lengths=[train_examples], num_bytes=0),
                splits_lib.SplitInfo(name="test", shard_lengths=[test_examples], num_bytes=0),
            ]
        )
    )
    os.makedirs(builder.data_path, exist_ok=True)
    info.write_to_directory(builder.data_path)
    return builder.data_path


@contextlib.contextmanager
def mock_cifar10(data_dir, train_examples=TRAIN_EXAMPLES, test_examples=TEST_EXAMPLES):
    """Within the block, tfds' cifar10 is prepared in `data_dir` and holds learnable images.

    Every `tfds.builder(...)` inside the block uses `data_dir` (that is how
    `tfds.testing.mock_data` works), whatever directory the caller asks for.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    write_metadata(data_dir, train_examples, test_examples)
    counts = {"train": train_examples, "test": test_examples}

    def as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False):
        del self, decoders, read_config, shuffle_files  # one fixed order, like the real files
        name = str(split).split("[")[0]
        images, labels = examples(name, counts[name])
        ids = np.array([f"{name}_{index:05d}".encode() for index in range(len(labels))])
        return tf.data.Dataset.from_tensor_slices({"id": ids, "image": images, "label": labels})

    with tfds.testing.mock_data(
        policy=tfds.testing.MockPolicy.USE_FILES,
        data_dir=os.fspath(data_dir),
        as_dataset_fn=as_dataset,
    ):
        yield
