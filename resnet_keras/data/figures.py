"""A grid of example images with their labels, to look at what the model is fed."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from resnet_keras._validation import check_positive_int

from .types import DataInfo


def _to_numpy(value):
    if hasattr(value, "numpy"):
        # TensorFlow eager tensors and CPU torch tensors.
        value = value.detach().cpu() if hasattr(value, "detach") else value
        return np.asarray(value.numpy())
    return np.asarray(value)


def _take_examples(dataset_or_batch, n):
    """Returns up to `n` images and their labels (or None) as NumPy arrays."""
    import tensorflow as tf

    if isinstance(dataset_or_batch, tf.data.Dataset):
        spec = dataset_or_batch.element_spec
        has_labels = isinstance(spec, tuple)
        image_spec = spec[0] if has_labels else spec
        images, labels = [], []
        if image_spec.shape.rank == 4:
            count = 0
            for element in dataset_or_batch:
                batch_images = element[0] if has_labels else element
                images.append(_to_numpy(batch_images))
                if has_labels:
                    labels.append(_to_numpy(element[1]))
                count += images[-1].shape[0]
                if count >= n:
                    break
            images = np.concatenate(images)[:n] if images else np.zeros((0, 1, 1, 1))
            labels = np.concatenate(labels)[:n] if labels else None
        else:
            for element in dataset_or_batch.take(n):
                images.append(_to_numpy(element[0] if has_labels else element))
                if has_labels:
                    labels.append(_to_numpy(element[1]))
            images = np.stack(images) if images else np.zeros((0, 1, 1, 1))
            labels = np.stack(labels) if labels else None
        return images, labels
    if isinstance(dataset_or_batch, (tuple, list)) and len(dataset_or_batch) == 2:
        images, labels = (_to_numpy(part) for part in dataset_or_batch)
        return images[:n], labels[:n]
    return _to_numpy(dataset_or_batch)[:n], None


def _displayable(images, mean, std):
    images = images.astype(np.float32)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if mean is not None and std is not None:
        images = images * np.asarray(std, np.float32) + np.asarray(mean, np.float32)
    elif images.size and (images.min() < 0.0 or images.max() > 1.0):
        # Unknown normalisation: stretch each image to [0, 1] so it is still visible.
        low = images.min(axis=(1, 2, 3), keepdims=True)
        high = images.max(axis=(1, 2, 3), keepdims=True)
        images = (images - low) / np.maximum(high - low, 1e-8)
    images = np.clip(images, 0.0, 1.0)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return images


def show_images(
    dataset_or_batch,
    class_names=None,
    n=16,
    *,
    mean=None,
    std=None,
    predictions=None,
    ncols=8,
    title=None,
    image_size=1.4,
):
    """Draws a grid of images with their labels (and predictions, if given).

    Normalisation is undone with `mean`/`std` (taken from a `DataInfo` passed as
    `class_names`), so the images look as the camera saw them, with the augmentation
    that the training split applies.

    Args:
        dataset_or_batch: A `tf.data.Dataset` of `(images, labels)` (batched or not),
            a tuple `(images, labels)` of arrays or tensors, or an array of images.
        class_names: A sequence of class names, or the `DataInfo` returned by `load`
            (which also supplies `mean` and `std`). `None` shows label ids.
        n: Number of images to show (>= 1); fewer if the data has fewer.
        mean: Per-channel mean that was subtracted; overrides the one from `DataInfo`.
        std: Per-channel standard deviation that was divided by.
        predictions: Optional predicted label ids for the same images; titles then
            read "predicted (true)", green when right and red when wrong.
        ncols: Images per row (>= 1).
        title: Optional title of the whole figure.
        image_size: Inches per image.

    Returns:
        A `matplotlib.figure.Figure` (not registered with pyplot, so it is shown once
        when it is the last expression of a notebook cell).

    Raises:
        ValueError: If `n` or `ncols` is not a positive integer or the data is empty.

    Examples:
        >>> from resnet_keras.data import load, show_images
        >>> data = load("digits", batch_size=16)
        >>> figure = show_images(data.train, data.info, n=8)
        >>> len(figure.axes)
        8
    """
    from matplotlib.figure import Figure

    check_positive_int("n", n)
    check_positive_int("ncols", ncols)
    if isinstance(class_names, DataInfo):
        mean = class_names.mean if mean is None else mean
        std = class_names.std if std is None else std
        class_names = class_names.class_names
    elif class_names is not None and (
        isinstance(class_names, str) or not isinstance(class_names, Sequence)
    ):
        raise TypeError(
            "`class_names` must be None, a sequence of names or a DataInfo; "
            f"received {class_names!r}."
        )

    images, labels = _take_examples(dataset_or_batch, n)
    if len(images) == 0:
        raise ValueError("`dataset_or_batch` holds no images to show.")
    images = _displayable(images, mean, std)
    if predictions is not None:
        predictions = _to_numpy(predictions).reshape(-1)[: len(images)]

    def name(label):
        label = int(label)
        if class_names is not None and 0 <= label < len(class_names):
            return str(class_names[label])
        return str(label)

    count = len(images)
    columns = min(ncols, count)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(columns * image_size, rows * image_size + (0.4 if title else 0)))
    for index in range(count):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(images[index], interpolation="nearest")
        axes.set_xticks([])
        axes.set_yticks([])
        if labels is not None:
            truth = np.asarray(labels[index]).reshape(-1)[0]
            if predictions is not None:
                correct = int(predictions[index]) == int(truth)
                axes.set_title(
                    f"{name(predictions[index])} ({name(truth)})",
                    fontsize=8,
                    color="tab:green" if correct else "tab:red",
                )
            else:
                axes.set_title(name(truth), fontsize=8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure
