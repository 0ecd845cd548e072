"""Input pipelines: CIFAR-10 via tensorflow-datasets, an offline dataset, synthetic data.

`load` returns `tf.data` pipelines of float32 NHWC images and int32 labels that
`model.fit` accepts under the TensorFlow, JAX and PyTorch backends.

Examples:
    >>> from resnet_keras.data import load
    >>> train, validation, test, info = load("digits", batch_size=32)
    >>> info.num_classes
    10
"""

from . import cifar10, digits
from .cifar10 import probe_download_host
from .epochs import epoch_counter, set_epoch
from .figures import show_images
from .loader import load
from .mixing import mix_batches
from .options import pipeline_options, without_autotune_thread
from .registry import DATASETS, Dataset, dataset_names, register_dataset
from .subsets import class_subset
from .synthetic import synthetic
from .types import DataInfo, DatasetUnavailableError, LoadedData, OfflineDatasetWarning

# The datasets the library ships, one file each; register_dataset adds yours.
register_dataset(cifar10.DATASET)
register_dataset(digits.DATASET)

__all__ = [
    "DATASETS",
    "Dataset",
    "class_subset",
    "DataInfo",
    "DatasetUnavailableError",
    "LoadedData",
    "OfflineDatasetWarning",
    "dataset_names",
    "epoch_counter",
    "load",
    "mix_batches",
    "pipeline_options",
    "probe_download_host",
    "register_dataset",
    "set_epoch",
    "show_images",
    "synthetic",
    "without_autotune_thread",
]
