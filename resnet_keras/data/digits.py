"""An offline dataset of real images: scikit-learn's 8x8 handwritten digits.

scikit-learn ships the 1,797 images of the UCI "Optical Recognition of Handwritten
Digits" test set inside its wheel, so they load without any network. They are
upsampled to 32x32 and repeated over three channels so that the CIFAR-10 models accept
them unchanged. It is a much easier task than CIFAR-10: use it to see the code run,
not to compare with the paper's numbers.
"""

from __future__ import annotations

import functools

import numpy as np

from .registry import Dataset

CLASS_NAMES = tuple(str(digit) for digit in range(10))
"""Label names: the digits themselves."""

NUM_IMAGES = 1797
TEST_SIZE = 360
"""Images in the fixed test split (36 of each digit, about 20%)."""

SPLIT_SEED = 20160310
"""Seed of the fixed train/test split; independent of `load(seed=...)` on purpose."""

SOURCE = (
    "scikit-learn's 8x8 handwritten digits (UCI Optical Recognition of Handwritten "
    "Digits, 1,797 images bundled with scikit-learn, no download), upsampled bilinearly "
    "to 32x32 and repeated over 3 channels (32x32x3); fixed stratified split of "
    f"{NUM_IMAGES - TEST_SIZE:,} train / {TEST_SIZE} test images."
)


def class_interleaved_order(labels, seed):
    """A permutation that visits the classes in rounds, one image of each per round.

        Any prefix of the result is then as balanced as the class counts allow, so the
        first k images form a stratified sample for every k.

        Args:
            labels: 1-D integer array.
            seed: Seed of the random order inside each class and inside each round.

        Returns:
            An int64 index array, a permutation of `range(len(labels))`.

        Examples:
            >>> import numpy as np

    from .registry import Dataset
            >>> labels = np.array([0, 0, 0, 1, 1, 1])
            >>> order = class_interleaved_order(labels, seed=0)
            >>> labels[order][:2].tolist() in ([0, 1], [1, 0])
            True
    """
    labels = np.asarray(labels)
    permutation = np.random.default_rng(seed).permutation(len(labels))
    seen = {}
    rank = np.empty(len(labels), np.int64)
    for position, index in enumerate(permutation):
        label = int(labels[index])
        rank[position] = seen.get(label, 0)
        seen[label] = rank[position] + 1
    return permutation[np.argsort(rank, kind="stable")]


@functools.lru_cache(maxsize=1)
def arrays():
    """The digits as uint8 images, in the fixed split.

    Returns:
        `(train_images, train_labels, test_images, test_labels)`: uint8 arrays of shape
        `(n, 32, 32, 3)` and int32 label arrays, read-only. The training images are in
        class-interleaved order, so validation images carved from their front are
        stratified as well.

    Examples:
        >>> x_train, y_train, x_test, y_test = arrays()
        >>> x_train.shape, x_test.shape
        ((1437, 32, 32, 3), (360, 32, 32, 3))
    """
    import tensorflow as tf
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # The 8x8 images hold ink counts 0..16 (white digit on black once scaled).
    small = bunch.images.astype(np.float32)[..., np.newaxis] / 16.0
    large = tf.image.resize(small, (32, 32), method="bilinear").numpy()
    images = np.clip(np.rint(large * 255.0), 0, 255).astype(np.uint8)
    images = np.repeat(images, 3, axis=-1)
    labels = bunch.target.astype(np.int32)

    order = class_interleaved_order(labels, SPLIT_SEED)
    images, labels = images[order], labels[order]
    # TEST_SIZE is a whole number of rounds, so the test split holds exactly 36 of
    # each digit and the rest stays interleaved.
    x_test, y_test = images[:TEST_SIZE], labels[:TEST_SIZE]
    x_train, y_train = images[TEST_SIZE:], labels[TEST_SIZE:]
    for array in (x_train, y_train, x_test, y_test):
        array.setflags(write=False)
    return x_train, y_train, x_test, y_test


def read():
    """Returns `(train, test, source)` as unbatched uint8 `tf.data.Dataset`s.

    Examples:
        >>> train, test, source = read()
        >>> int(train.cardinality()), int(test.cardinality())
        (1437, 360)
    """
    import tensorflow as tf

    x_train, y_train, x_test, y_test = arrays()
    train = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    test = tf.data.Dataset.from_tensor_slices((x_test, y_test))
    return train, test, SOURCE


DATASET = Dataset(
    name="digits",
    read=lambda data_dir: read(),  # bundled with scikit-learn: no data directory
    class_names=CLASS_NAMES,
    # A mirrored digit is a different symbol or none at all (2, 3, 4, 7, ...), so flipping
    # would teach wrong labels; shifts keep the meaning. The scans have a black background,
    # so the padding is black too rather than a grey frame.
    flip=False,
    pad_fill=(0.0, 0.0, 0.0),
    augmentation_note="no flip: a mirrored digit is another symbol",
)
"""The offline digits in the dataset registry (`resnet_keras.data.registry`)."""
