"""Shared test settings: quiet TensorFlow, deterministic seeds, one backend per run."""

import os

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


def pytest_report_header(config):
    return f"Keras {keras.__version__}, backend {keras.backend.backend()}"
