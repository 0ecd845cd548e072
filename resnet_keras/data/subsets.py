"""Datasets made of some classes of another: a transfer-learning source and target.

Transfer learning needs two tasks: a source with plenty of labels, on which a network is
pretrained, and a disjoint target with few. `class_subset` cuts both out of one registered
dataset (digits 0-4 and 5-9, or CIFAR-10's first and last five classes) and registers the
result, so `load` gives it the same validation split, normalisation, augmentation and
per-epoch order as any other dataset.

Examples:

>>> from resnet_keras.data import class_subset, load
>>> target = class_subset("digits", classes=(5, 6, 7, 8, 9), train_per_class=10)
>>> target.name, target.class_names
('digits-5-9-10', ('5', '6', '7', '8', '9'))
>>> info = load(target.name, validation_size=0).info
>>> info.train_size, info.test_size, info.num_classes
(50, 180, 5)
"""

from __future__ import annotations

import numpy as np

from resnet_keras._validation import check_instance, check_optional_int

from . import registry


def _arrays(dataset):
    """The uint8 images and int labels of an unbatched `tf.data.Dataset`, as NumPy arrays."""
    images, labels = [], []
    for image_batch, label_batch in dataset.batch(1024).as_numpy_iterator():
        images.append(image_batch)
        labels.append(label_batch)
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)


def _select(images, labels, classes, per_class):
    """The images of `classes`, relabelled 0..k-1, at most `per_class` of each, in order."""
    keep = np.isin(labels, classes)
    if per_class is not None:
        # The first `per_class` images of each class in the dataset's fixed order: the same
        # few labels for every seed, so seeds vary the training, not which images it sees.
        rank = np.zeros(len(labels), np.int64)
        seen = {}
        for index in np.flatnonzero(keep):
            label = int(labels[index])
            rank[index] = seen.get(label, 0)
            seen[label] = rank[index] + 1
        keep &= rank < per_class
    relabel = {label: new for new, label in enumerate(classes)}
    new_labels = np.array([relabel[int(label)] for label in labels[keep]], np.int32)
    return images[keep], new_labels


def class_subset(base, classes, *, train_per_class=None, name=None):
    """Registers the dataset made of some classes of `base` and returns it.

    The training and test splits keep only the images of `classes`, relabelled 0..k-1 in
    the order given; with `train_per_class`, the training split keeps the first that many
    images of each class (in `base`'s fixed order, so the same images whatever the seed;
    the test split stays whole). The result is registered, so `load(name)` and the command
    line accept it.

    Args:
        base: Name of a registered dataset (e.g. "digits", "cifar10").
        classes: At least two distinct label ids of `base`, in the order of the new labels.
        train_per_class: Training images per class (>= 1), or None for all.
        name: The name to register (default e.g. "digits-5-9-10" or "cifar10-0-4").

    Returns:
        The registered `resnet_keras.data.Dataset`.

    Raises:
        ValueError: For an unknown `base`, fewer than two classes, a repeated or unknown
            label id, or `train_per_class` < 1.

    Examples:
        >>> source = class_subset("digits", classes=range(5))
        >>> source.name, len(source.class_names)
        ('digits-0-4', 5)
    """
    parent = registry.get_dataset(base)
    check_instance("classes", classes, (list, tuple, range), "a sequence of label ids")
    classes = tuple(classes)
    ids = range(len(parent.class_names))
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"`classes` must hold two or more distinct label ids; received {classes}.")
    if not all(isinstance(label, (int, np.integer)) and label in ids for label in classes):
        raise ValueError(
            f"`classes` must be label ids of {base!r}, integers in 0..{len(ids) - 1}; "
            f"received {classes}."
        )
    classes = tuple(int(label) for label in classes)
    train_per_class = check_optional_int("train_per_class", train_per_class, 1, "all images")
    if name is None:
        contiguous = classes == tuple(range(classes[0], classes[-1] + 1))
        span = f"{classes[0]}-{classes[-1]}" if contiguous else "-".join(map(str, classes))
        name = f"{base}-{span}" + (f"-{train_per_class}" if train_per_class else "")

    def read(data_dir):
        import tensorflow as tf

        train, test, source = parent.read(data_dir)
        splits = []
        for split, per_class in ((train, train_per_class), (test, None)):
            images, labels = _select(*_arrays(split), classes, per_class)
            splits.append(tf.data.Dataset.from_tensor_slices((images, labels)))
        kept = ", ".join(parent.class_names[label] for label in classes)
        limit = f", {train_per_class} training images per class" if train_per_class else ""
        return (*splits, f"classes {kept} of {source}{limit}")

    subset = registry.Dataset(
        name=name,
        read=read,
        class_names=tuple(parent.class_names[label] for label in classes),
        flip=parent.flip,
        pad_fill=parent.pad_fill,
        published_statistics=None,  # those of the whole dataset, not of these classes
        augmentation_note=parent.augmentation_note,
    )
    return registry.register_dataset(subset)
