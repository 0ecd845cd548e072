"""`load`: CIFAR-10 (or an offline stand-in) as ready-to-train tf.data pipelines."""

from __future__ import annotations

import warnings

from resnet_keras._validation import (
    check_bool,
    check_choice,
    check_instance,
    check_non_negative_int,
    check_number,
    check_optional_int,
    check_path,
    check_positive_int,
)

from . import registry
from .pipeline import PAD, channel_stats, make_split
from .types import DataInfo, DatasetUnavailableError, LoadedData, OfflineDatasetWarning

IMAGE_SHAPE = (32, 32, 3)

STATS_LIMIT = 10_000
"""Largest CIFAR-10 training subset whose channel statistics are computed afresh."""


def _check_arguments(
    *,
    name,
    batch_size,
    augment,
    validation_split,
    data_dir,
    train_size,
    test_size,
    seed,
    normalize,
    validation_size,
):
    names = registry.dataset_names()
    check_instance("name", name, str, f"one of {', '.join(map(repr, names))}")
    key = check_choice("name", name.strip().lower(), names)
    check_positive_int("batch_size", batch_size)
    check_bool("augment", augment)
    check_bool("normalize", normalize)
    check_number("validation_split", validation_split, minimum=0, maximum=1, open_maximum=True)
    check_path("data_dir", data_dir, optional=True)
    check_non_negative_int("seed", seed)
    return (
        key,
        check_optional_int("train_size", train_size, 1, "all images"),
        check_optional_int("test_size", test_size, 1, "all images"),
        check_optional_int("validation_size", validation_size, 0, "from validation_split"),
    )


def _check_statistics(statistics, normalize):
    wanted = "(mean, std) with three positive std values, each a tuple of three floats"
    try:
        mean, std = (tuple(float(v) for v in values) for values in statistics)
    except (TypeError, ValueError):
        raise TypeError(f"`statistics` must be {wanted}; received {statistics!r}.") from None
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ValueError(f"`statistics` must be {wanted}; received {statistics!r}.")
    if not normalize:
        raise ValueError("`statistics` needs `normalize=True`; received normalize=False.")
    return mean, std


def _split_sizes(available, train_size, validation_split, validation_size, shrink_to_fit=False):
    if validation_size is not None:
        n_val = validation_size
        requested = validation_size + (train_size or 0)
        if shrink_to_fit and validation_size > 0 and requested > available:
            # Sizes meant for CIFAR-10's 50,000 images would leave a small dataset
            # with hardly any training images; keep the validation *share* instead.
            share = validation_size / requested if train_size else validation_split
            n_val = max(1, min(validation_size, int(round(share * available))))
    elif train_size is None:
        n_val = int(round(validation_split * available))
    else:
        # validation_split is the share of the images in use: train_size of them
        # train, so the validation set gets validation_split / (1 - split) as many.
        n_val = int(round(validation_split * train_size / (1.0 - validation_split)))
    if n_val >= available:
        raise ValueError(
            f"The validation set ({n_val} images) would take all {available} training "
            "images; lower `validation_size` or `validation_split`."
        )
    n_train = available - n_val if train_size is None else min(train_size, available - n_val)
    return n_train, n_val


def _cardinality(dataset, argument):
    count = int(dataset.cardinality())
    if count < 0:
        raise DatasetUnavailableError(f"The {argument} split does not report its size.")
    return count


def _offline_notice(reason):
    return (
        "Using the offline dataset 'digits' (scikit-learn's 1,797 real 8x8 handwritten "
        f"digits, upsampled to 32x32x3) instead of CIFAR-10. {reason} The digits are far "
        "easier than CIFAR-10: accuracies on them are not comparable with the paper's."
    )


def load(
    name="auto",
    batch_size=128,
    augment=True,
    validation_split=0.1,
    data_dir=None,
    train_size=None,
    test_size=None,
    seed=0,
    normalize=True,
    *,
    validation_size=None,
    shrink_to_fit=False,
    statistics=None,
):
    """Loads an image-classification dataset as batched `tf.data` pipelines.

    The training split is shuffled (differently each epoch, as a function of `seed` and
    the epoch alone: see `resnet_keras.data.set_epoch`) and, with `augment`,
    gets the augmentation of He et al. 2016: 4 pixels of padding, a random 32x32 crop
    and, for CIFAR-10 only, a random horizontal flip. Validation and test splits are
    neither shuffled nor augmented. Images come out as float32 `(batch, 32, 32, 3)`,
    labels as int32 `(batch,)` (sparse class ids). The datasets feed `model.fit` under
    every Keras backend.

    Datasets:
        - `"cifar10"`: CIFAR-10 via tensorflow-datasets (downloads when it is not
          prepared in `data_dir` and the host answers). Fails within seconds with
          `DatasetUnavailableError` when neither is the case.
        - `"digits"`: scikit-learn's 1,797 real 8x8 handwritten digits, upsampled to
          32x32x3; bundled with scikit-learn, so it always works offline. Fixed
          stratified split of 1,437 train / 360 test images.
        - `"auto"`: CIFAR-10 when it is prepared or its download host answers within
          3 seconds, otherwise `"digits"` with an `OfflineDatasetWarning` and
          `info.notice` saying why and how to get CIFAR-10.

    Normalisation subtracts a per-channel mean and divides by a per-channel standard
    deviation computed over the training images in use. For CIFAR-10 training sets of
    more than 10,000 images the published statistics of the 50,000 training images
    (mean 0.4914, 0.4822, 0.4465; std 0.2470, 0.2435, 0.2616) are used instead of an
    extra pass over the data; they differ from the 45,000-image statistics in the
    third decimal.

    Args:
        name: `"auto"`, `"cifar10"` or `"digits"`.
        batch_size: Images per batch (>= 1). The last batch of a split may be smaller.
        augment: Whether to augment the training split.
        validation_split: Share in [0, 1) of the training images in use that is held
            out for validation. The validation images are the first ones of the
            official training split (fixed, whatever `seed` is); with 0 there is no
            validation set.
        data_dir: TFDS data directory holding (or to receive) CIFAR-10; `None` for
            tensorflow-datasets' default. Ignored by `"digits"`.
        train_size: At most this many training images (`None`: all that remain
            after the validation images). Use it for quick runs.
        test_size: At most this many test images (`None`: the whole test split).
        seed: Seed of the shuffle and the augmentation (>= 0). Like every TensorFlow
            op seed it is combined with the global seed, so equal calls give equal
            batches under the same `keras.utils.set_random_seed` (or none).
        normalize: Per-channel standardisation (`True`) or plain pixels scaled to
            [0, 1] (`False`).
        validation_size: Number of validation images; overrides `validation_split`.
        shrink_to_fit: What to do when `train_size + validation_size` is more than the
            dataset holds. `False` (default): keep `validation_size` exactly (an error
            if it takes every image). `True`: keep the validation set's share of the
            request instead (`validation_split` when `train_size` is `None`), so sizes
            chosen for CIFAR-10, as the profiles' are, still leave most of a small
            dataset such as the digits for training.
        statistics: `(mean, std)`, three floats each on the 0..1 scale, to normalise with
            instead of statistics of the training images: those a pretrained network was
            trained with, when its images are fine-tuned on (`None`: computed as above).

    Returns:
        A `LoadedData(train, validation, test, info)`, which also unpacks as
        `train, validation, test, info = load(...)`. `info` is a `DataInfo`.

    Raises:
        ValueError: For an unknown `name` or out-of-range sizes, batch size,
            validation split or seed (the message names the argument and the allowed
            values).
        TypeError: For arguments of the wrong type.
        DatasetUnavailableError: For `"cifar10"` when it is neither prepared in
            `data_dir` nor downloadable.

    Examples:
        >>> from resnet_keras.data import load
        >>> train, validation, test, info = load("digits", batch_size=64, train_size=512)
        >>> images, labels = next(iter(train))
        >>> tuple(images.shape), images.dtype.name, labels.dtype.name
        ((64, 32, 32, 3), 'float32', 'int32')
        >>> info.train_size, info.validation_size, info.test_size
        (512, 57, 360)
    """
    key, train_size, test_size, validation_size = _check_arguments(
        name=name,
        batch_size=batch_size,
        augment=augment,
        validation_split=validation_split,
        data_dir=data_dir,
        train_size=train_size,
        test_size=test_size,
        seed=seed,
        normalize=normalize,
        validation_size=validation_size,
    )

    check_bool("shrink_to_fit", shrink_to_fit)
    if statistics is not None:
        statistics = _check_statistics(statistics, normalize)

    # "auto" is CIFAR-10 where it can be had, the offline digits (with a notice) otherwise.
    notice = None
    dataset = registry.get_dataset("cifar10" if key == "auto" else key)
    try:
        train, test, source = dataset.read(data_dir)
    except DatasetUnavailableError as error:
        if key != "auto":
            raise
        notice = _offline_notice(str(error))
        warnings.warn(notice, OfflineDatasetWarning, stacklevel=2)
        dataset = registry.get_dataset("digits")
        train, test, source = dataset.read(data_dir)
    key = dataset.name

    available = _cardinality(train, "train")
    n_train, n_val = _split_sizes(
        available, train_size, validation_split, validation_size, shrink_to_fit
    )
    n_test = _cardinality(test, "test")
    if test_size is not None:
        n_test = min(test_size, n_test)
    validation_pool = train.take(n_val)
    train = train.skip(n_val).take(n_train)
    test = test.take(n_test)

    if not normalize:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        info_mean = info_std = None
        normalization = "none: pixels scaled to [0, 1]"
    elif statistics is not None:
        mean, std = statistics
        info_mean, info_std = mean, std
        normalization = "per-channel mean/std given by the caller (`statistics`)"
    elif dataset.published_statistics is not None and n_train > STATS_LIMIT:
        mean, std = dataset.published_statistics
        info_mean, info_std = mean, std
        normalization = f"per-channel mean/std of all {key} training images (published values)"
    else:
        mean, std = channel_stats(train)
        info_mean, info_std = mean, std
        normalization = f"per-channel mean/std computed over the {n_train} training images"

    flip, pad_fill = dataset.flip, dataset.pad_fill
    if not augment:
        augmentation = "none"
    else:
        colour = {None: "mean colour", (0.0, 0.0, 0.0): "black"}.get(
            None if pad_fill is None else tuple(pad_fill), f"colour {pad_fill}"
        )
        steps = [f"pad {PAD} ({colour})", "random 32x32 crop"]
        steps += ["random horizontal flip"] if flip else []
        note = f", {dataset.augmentation_note}" if dataset.augmentation_note else ""
        augmentation = " + ".join(steps) + f"{note} (training split only)"

    common = {"batch_size": batch_size, "mean": mean, "std": std}
    train_ds = make_split(
        train,
        n_train,
        training=True,
        augment=augment,
        flip=flip,
        pad_fill=pad_fill,
        seed=seed,
        **common,
    )
    validation_ds = make_split(validation_pool, n_val, **common) if n_val else None
    test_ds = make_split(test, n_test, **common)

    class_names = dataset.class_names
    info = DataInfo(
        name=key,
        class_names=tuple(class_names),
        image_shape=IMAGE_SHAPE,
        num_classes=len(class_names),
        train_size=n_train,
        validation_size=n_val,
        test_size=n_test,
        source=source,
        mean=info_mean,
        std=info_std,
        normalization=normalization,
        augmentation=augmentation,
        batch_size=int(batch_size),
        seed=int(seed),
        notice=notice,
    )
    return LoadedData(train=train_ds, validation=validation_ds, test=test_ds, info=info)
