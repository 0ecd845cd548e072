"""CIFAR-10 through tensorflow-datasets, with a fast answer when it cannot be had.

tensorflow-datasets retries a failed download for minutes before it gives up. This
module therefore looks first whether the dataset is already prepared in the TFDS data
directory, then whether the download host answers at all (within `PROBE_TIMEOUT`
seconds), and only then lets tensorflow-datasets download.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass

from resnet_keras._validation import check_number

from .registry import Dataset
from .types import DatasetUnavailableError

CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
"""CIFAR-10 label names, in label-id order."""

# Mean and population standard deviation of every pixel of the 50,000 CIFAR-10
# training images (0..1 scale). They are used instead of a fresh pass over a large
# training split (see `load`); note the often-copied std (0.2023, 0.1994, 0.2010) is
# the average per-image std, a different and smaller quantity.
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)

DOWNLOAD_HOST = "www.cs.toronto.edu"
"""Host tensorflow-datasets downloads CIFAR-10 from."""

PROBE_URL = f"https://{DOWNLOAD_HOST}/~kriz/cifar.html"
"""URL whose HEAD request tells whether the download host answers."""

PROBE_TIMEOUT = 3.0
"""Seconds to wait for the download host before treating it as unreachable."""

HOW_TO_GET = (
    "To get CIFAR-10, run\n"
    "    python -c \"import tensorflow_datasets as tfds; tfds.load('cifar10')\"\n"
    "on a machine with internet access, then copy its tensorflow_datasets folder "
    "(by default ~/tensorflow_datasets) to this machine and pass its path as "
    "`data_dir=` or set the environment variable TFDS_DATA_DIR."
)


def probe_download_host(url=None, timeout=PROBE_TIMEOUT):
    """Tells whether the CIFAR-10 download host answers an HTTP HEAD request in time.

    The request runs in a daemon thread that is abandoned after `timeout` seconds, so a
    hanging DNS lookup (which socket timeouts do not cover) cannot delay the answer.
    Proxies from the usual environment variables are honoured.

    Args:
        url: The URL to probe; defaults to `PROBE_URL` (read at call time).
        timeout: Seconds to wait, > 0.

    Returns:
        True when the host sent any HTTP answer (even an error status) in time.

    Examples:
        >>> from resnet_keras.data.cifar10 import probe_download_host
        >>> probe_download_host("http://192.0.2.1/", timeout=0.5)  # reserved, unrouted
        False
    """
    check_number("timeout", timeout, minimum=0, open_minimum=True)  # seconds
    url = PROBE_URL if url is None else url
    answered = []

    def attempt():
        request = urllib.request.Request(url, method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=timeout):
                answered.append(True)
        except urllib.error.HTTPError:
            answered.append(True)
        except urllib.error.URLError as error:
            # A certificate problem still means the host itself answered.
            answered.append(isinstance(error.reason, ssl.SSLError))
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            answered.append(False)

    thread = threading.Thread(target=attempt, name="resnet-keras-cifar10-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answered and answered[0])


@dataclass
class Status:
    """Whether CIFAR-10 can be read here.

    Attributes:
        builder: The `tfds` builder for `cifar10`.
        root: The TFDS data directory searched.
        prepared: Whether the dataset is already prepared there.
        reachable: Whether the download host answered; `None` when not probed.

    Examples:
        >>> from resnet_keras.data import cifar10
        >>> current = cifar10.status("/nonexistent/tfds", probe=False)
        >>> current.usable
        False
    """

    builder: object
    root: str
    prepared: bool
    reachable: bool | None

    @property
    def usable(self):
        return self.prepared or bool(self.reachable)

    def explanation(self):
        """A sentence saying why CIFAR-10 cannot be used, followed by `HOW_TO_GET`."""
        return (
            f"CIFAR-10 is not prepared in the TFDS data directory {self.root!r}, and its "
            f"download host {DOWNLOAD_HOST} did not answer within {PROBE_TIMEOUT:g} s "
            f"(no network?). {HOW_TO_GET}"
        )


def status(data_dir=None, probe=True):
    """Looks whether CIFAR-10 is prepared in `data_dir` and, if not, probes the host.

    Args:
        data_dir: TFDS data directory, or `None` for tensorflow-datasets' default
            (`TFDS_DATA_DIR` or `~/tensorflow_datasets`).
        probe: Whether to probe the download host when the dataset is not prepared.

    Returns:
        A `Status`.

    Examples:
        >>> from resnet_keras.data import cifar10
        >>> cifar10.status("/nonexistent/tfds", probe=False).prepared
        False
    """
    import tensorflow_datasets as tfds

    # An unprepared dataset makes tensorflow-datasets log a warning about a missing
    # dataset_info.json; the explanation given to the user below says it better.
    absl_logger = logging.getLogger("absl")
    previous_level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        builder = tfds.builder(
            "cifar10", data_dir=None if data_dir is None else os.fspath(data_dir)
        )
        prepared = bool(builder.is_prepared())
    finally:
        absl_logger.setLevel(previous_level)
    # builder.data_dir is <root>/cifar10/<version>.
    root = os.path.dirname(os.path.dirname(os.fspath(builder.data_dir)))
    reachable = None
    if not prepared and probe:
        reachable = probe_download_host()
    return Status(builder=builder, root=root, prepared=prepared, reachable=reachable)


def read(current_status):
    """Returns the train and test splits, downloading first if needed and possible.

    Args:
        current_status: A `Status` from `status()`.

    Returns:
        `(train, test, source)`: unbatched `tf.data.Dataset`s of `(uint8 image, label)`
        in the files' fixed order, and a sentence saying where they came from.

    Raises:
        DatasetUnavailableError: When the dataset is neither prepared nor downloadable,
            or the download fails.

    Examples:
        >>> from resnet_keras.data import cifar10
        >>> current = cifar10.status(probe=False)  # never downloads
        >>> if current.prepared:
        ...     train, test, source = cifar10.read(current)
    """
    if not current_status.usable:
        raise DatasetUnavailableError(current_status.explanation())
    builder = current_status.builder
    downloaded = False
    if not current_status.prepared:
        try:
            builder.download_and_prepare()
        except Exception as error:  # noqa: BLE001 - re-raised with the remedy attached
            raise DatasetUnavailableError(
                f"Downloading CIFAR-10 into {current_status.root!r} failed: {error}. {HOW_TO_GET}"
            ) from error
        downloaded = True
    # shuffle_files=False keeps the file order, so the validation images carved from
    # the front of the training split are the same on every call.
    train = builder.as_dataset(split="train", as_supervised=True, shuffle_files=False)
    test = builder.as_dataset(split="test", as_supervised=True, shuffle_files=False)
    how = (
        f"downloaded from {DOWNLOAD_HOST} by tensorflow-datasets into"
        if downloaded
        else "read by tensorflow-datasets from"
    )
    source = (
        "CIFAR-10 (Krizhevsky 2009: 32x32 colour photos in 10 classes, 50,000 train and "
        f"10,000 test images), {how} {current_status.root}."
    )
    return train, test, source


def _read_registered(data_dir):
    return read(status(data_dir))


DATASET = Dataset(
    name="cifar10",
    read=_read_registered,
    class_names=CLASS_NAMES,
    flip=True,
    published_statistics=(MEAN, STD),
)
"""CIFAR-10 in the dataset registry (`resnet_keras.data.registry`)."""
