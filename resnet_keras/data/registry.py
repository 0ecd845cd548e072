"""The dataset registry: the datasets `resnet_keras.data.load` can read, one file each.

A dataset is described once (`Dataset`): how to read its train and test splits, its class
names and how it is augmented; `load` does the rest (validation split, normalisation,
the per-epoch shuffle and augmentation, batching) the same way for every dataset, and the
command line offers every registered name. CIFAR-10 (`cifar10.py`) and the offline digits
(`digits.py`) are registered by `resnet_keras.data`; a dataset of your own is registered
with `register_dataset` and then loads by name.

Examples:

>>> from resnet_keras.data import registry
>>> registry.get_dataset("digits").flip
False
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from resnet_keras._validation import check_bool, check_choice, check_instance

DATASETS: dict[str, Dataset] = {}
"""Registered datasets by name ("auto" is not one: it picks CIFAR-10 or the digits)."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    """How to read one dataset and how to augment it.

    Attributes:
        name: The name `load` and the command line take (lower case).
        read: `read(data_dir) -> (train, test, source)`: unbatched `tf.data.Dataset`s of
            `(uint8 image of shape (32, 32, 3), int label)` in a fixed order, and one
            sentence on where they came from. Raises `DatasetUnavailableError` (with the
            remedy) when the data cannot be had.
        class_names: One name per class, in label order.
        flip: Whether training images may be mirrored (photos yes, digits no).
        pad_fill: Colour of the 4-pixel padding before the random crop, as three floats
            in [0, 1], or None for the mean colour of the training images.
        published_statistics: `(mean, std)` per channel to use for training sets of more
            than `STATS_LIMIT` images instead of a pass over the data, or None.
        augmentation_note: Why the augmentation is as it is, for `DataInfo`.
    """

    name: str
    read: Callable
    class_names: tuple
    flip: bool = False
    pad_fill: tuple | None = None
    published_statistics: tuple | None = None
    augmentation_note: str = ""

    def __post_init__(self):
        check_instance("name", self.name, str, "a dataset name")
        if self.name != self.name.strip().lower() or self.name in ("", "auto"):
            raise ValueError(
                f"`name` must be a lower-case name other than 'auto'; received {self.name!r}."
            )
        if not callable(self.read):
            raise TypeError(f"`read` must be callable; received {self.read!r}.")
        if len(self.class_names) < 2:
            raise ValueError(
                f"`class_names` must name at least two classes; received {self.class_names!r}."
            )
        check_bool("flip", self.flip)


def register_dataset(dataset):
    """Registers a `Dataset` (replacing one of the same name) and returns it.

    Examples:
        >>> from resnet_keras.data import digits
        >>> register_dataset(digits.DATASET).name
        'digits'
    """
    check_instance("dataset", dataset, Dataset, "a resnet_keras.data.registry.Dataset")
    DATASETS[dataset.name] = dataset
    return dataset


def dataset_names():
    """The names `load` accepts: "auto" and every registered dataset.

    Examples:
        >>> dataset_names()[:3]
        ('auto', 'cifar10', 'digits')
    """
    return ("auto", *DATASETS)


def get_dataset(name):
    """The registered `Dataset` called `name`.

    Raises:
        ValueError: naming the registered datasets.
    """
    return DATASETS[check_choice("name", name, tuple(DATASETS))]
