"""The small value types that `resnet_keras.data.load` returns and raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


class DatasetUnavailableError(RuntimeError):
    """Raised when a dataset was asked for by name but cannot be read or downloaded.

    The message says what was tried and how to make the dataset available.

    Catch it to fall back to another dataset, as `load("auto")` does:
    `try: data = load("cifar10")` / `except DatasetUnavailableError: data = load("digits")`.

    Examples:
        >>> from resnet_keras.data import DatasetUnavailableError
        >>> issubclass(DatasetUnavailableError, RuntimeError)
        True
    """


class OfflineDatasetWarning(UserWarning):
    """Warned when `load("auto")` falls back to the offline dataset.

    Examples:
        >>> import warnings
        >>> from resnet_keras.data import OfflineDatasetWarning
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore", OfflineDatasetWarning)  # silence it here
    """


@dataclass(frozen=True)
class DataInfo:
    """What `load` returned and where it came from.

    Attributes:
        name: Dataset name (`"cifar10"` or `"digits"`).
        class_names: One name per label id.
        image_shape: Shape of one image, `(32, 32, 3)`.
        num_classes: Number of classes.
        train_size: Number of training images.
        validation_size: Number of validation images (0 when there is no validation set).
        test_size: Number of test images.
        source: A sentence saying where the images came from.
        mean: Per-channel mean (on the 0..1 pixel scale) subtracted from the images, or
            `None` when the images were not normalised.
        std: Per-channel standard deviation the images were divided by, or `None`.
        normalization: How `mean`/`std` were obtained.
        augmentation: What random augmentation the training split gets.
        batch_size: Images per batch.
        seed: Seed of the shuffling and the augmentation.
        notice: A message for the user (for example why the offline dataset was used
            instead of CIFAR-10), or `None`.

    Examples:
        >>> from resnet_keras.data import load
        >>> info = load("digits", batch_size=32).info
        >>> info.image_shape, info.num_classes
        ((32, 32, 3), 10)
    """

    name: str
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    num_classes: int
    train_size: int
    validation_size: int
    test_size: int
    source: str
    mean: tuple[float, float, float] | None
    std: tuple[float, float, float] | None
    normalization: str
    augmentation: str
    batch_size: int
    seed: int
    notice: str | None = None

    def denormalize(self, images):
        """Maps images produced by `load` back to displayable pixels in [0, 1].

        Args:
            images: An array (or tensor) of shape `(..., 32, 32, 3)` from `load`.

        Returns:
            A float32 NumPy array of the same shape, clipped to [0, 1].

        Examples:
            >>> from resnet_keras.data import load
            >>> data = load("digits", batch_size=8, augment=False)
            >>> images, _ = next(iter(data.test))
            >>> pixels = data.info.denormalize(images)
            >>> float(pixels.min()) >= 0.0 and float(pixels.max()) <= 1.0
            True
        """
        array = np.asarray(images, dtype=np.float32)
        if self.mean is not None and self.std is not None:
            array = array * np.asarray(self.std, np.float32) + np.asarray(self.mean, np.float32)
        return np.clip(array, 0.0, 1.0)


@dataclass(frozen=True)
class LoadedData:
    """The three splits and their description; unpacks as `train, validation, test, info`.

    Attributes:
        train: `tf.data.Dataset` of `(images, labels)` batches, shuffled and augmented.
        validation: `tf.data.Dataset` of batches in a fixed order, or `None` when
            `validation_split` is 0.
        test: `tf.data.Dataset` of batches in a fixed order.
        info: A `DataInfo`.

    Examples:
        >>> from resnet_keras.data import load
        >>> train, validation, test, info = load("digits", batch_size=32)
        >>> info.name
        'digits'
    """

    train: Any
    validation: Any
    test: Any
    info: DataInfo

    def __iter__(self):
        return iter((self.train, self.validation, self.test, self.info))

    def __len__(self):
        return 4
