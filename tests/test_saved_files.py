"""Every file a run saves loads in a fresh process after `import resnet_keras` alone.

A learner trains with the command line and then loads `R/model.keras` in a program of
their own, perhaps on another Keras backend. Each check below starts a new Python
process that imports nothing of the library's but `resnet_keras` (which registers its
layers, schedules and loss with Keras) and loads one kind of file, with Keras' default
`safe_mode=True`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from resnet_keras.course import cli

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("saved") / "run"
    status = cli.main(
        [
            "train",
            *("--model", "resnet20", "--dataset", "digits", "--epochs", "1"),
            *("--train-size", "128", "--batch-size", "64", "--verbose", "0"),
            *("--out", str(out)),
        ]
    )
    assert status == 0
    return out


def _fresh_process(backend, code):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESNET_KERAS")}
    env.update(KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
    prologue = "import json, sys\nimport numpy as np\nimport resnet_keras\nimport keras\n"
    done = subprocess.run(
        [sys.executable, "-c", prologue + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _images():
    return np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")


def _reference_logits(run_folder):
    import keras

    model = keras.saving.load_model(run_folder / "model.keras", safe_mode=True)
    return np.asarray(model.predict_on_batch(_images()))


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_the_runs_model_loads_with_its_training_setup(run_folder, tmp_path, backend):
    np.save(tmp_path / "images.npy", _images())
    result = _fresh_process(
        backend,
        f"""
        model = keras.saving.load_model({str(run_folder / "model.keras")!r}, safe_mode=True)
        logits = model.predict_on_batch(np.load({str(tmp_path / "images.npy")!r}))
        schedule = model.optimizer.learning_rate
        print(json.dumps({{
            "logits": np.asarray(logits).tolist(),
            "optimizer": type(model.optimizer).__name__,
            "loss": type(model.loss).__name__,
        }}))
        """,
    )
    # The same function on every backend (float rounding of other kernels only).
    np.testing.assert_allclose(result["logits"], _reference_logits(run_folder), atol=1e-4)
    assert result["optimizer"] == "SGD"
    assert result["loss"] != "NoneType"


def test_the_best_weights_load_into_a_new_model(run_folder, tmp_path):
    # One epoch: the best epoch is the last, so the weights are those of model.keras. (The
    # backup's states are loaded by every resume: tests/test_resume.py.)
    np.save(tmp_path / "images.npy", _images())
    result = _fresh_process(
        "tensorflow",
        f"""
        from resnet_keras.course.cli import build_model
        model = build_model("resnet20")
        model.load_weights({str(run_folder / "best.weights.h5")!r})
        logits = model.predict_on_batch(np.load({str(tmp_path / "images.npy")!r}))
        print(json.dumps({{"logits": np.asarray(logits).tolist()}}))
        """,
    )
    np.testing.assert_allclose(result["logits"], _reference_logits(run_folder), atol=1e-5)
