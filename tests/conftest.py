"""Shared test settings: quiet TensorFlow, deterministic seeds, one backend per run."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# resnet_keras before keras: it turns TensorFlow's oneDNN CPU kernels on at import
# (resnet_keras/_runtime.py), so the tests run what a learner runs.
import resnet_keras  # noqa: E402, F401, I001

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield


@pytest.fixture(autouse=True)
def _dataset_registry():
    """Datasets a test registers (`class_subset`, `register_dataset`) end with the test.

    The registry is global, and tests of one file share a worker process: without this, a
    subset registered by one test would be a `load` and `--dataset` choice in the next.
    """
    module = sys.modules.get("resnet_keras.data.registry")
    before = dict(module.DATASETS) if module else None
    yield
    module = sys.modules.get("resnet_keras.data.registry")
    if module is None:
        return
    if before is None:  # first imported by this test: keep what the library registers itself
        before = {name: module.DATASETS[name] for name in ("cifar10", "digits")}
    module.DATASETS.clear()
    module.DATASETS.update(before)


def pytest_report_header(config):
    return f"Keras {keras.__version__}, backend {keras.backend.backend()}"
