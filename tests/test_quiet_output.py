"""What a learner sees: no TensorFlow start-up lines that read as errors on a CPU machine.

The command line and a course notebook run in fresh processes with the environment a
learner has (no `TF_CPP_MIN_LOG_LEVEL`, which the Makefile and the other tests set), and
none of the lines below may reach their output. Real errors still do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from resnet_keras import _native_logs

REPO = Path(__file__).resolve().parents[1]

NOISE = (
    "absl::InitializeLog",
    "failed call to cuInit",
    "oneDNN custom operations",
    "Could not find cuda drivers",
    "without encryption",
    "cpu_feature_guard",
)


def _learner_environment():
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in ("TF_CPP_MIN_LOG_LEVEL", "RESNET_KERAS_PROFILE", _native_logs.OPT_OUT_VARIABLE)
    }
    env.update(PYTHONPATH=str(REPO), CI="true")
    return env


def _run(*arguments):
    return subprocess.run(
        [sys.executable, *arguments],
        capture_output=True,
        text=True,
        env=_learner_environment(),
        cwd=REPO,
        timeout=900,
    )


def _noise_in(text):
    return [line for line in text.splitlines() if any(marker in line for marker in NOISE)]


def test_the_filter_drops_the_known_lines_and_keeps_the_rest(capfd):
    with _native_logs.filtered_native_stderr():
        os.write(2, b"I0000 1 port.cc:153] oneDNN custom operations are on. ...\n")
        os.write(
            2,
            b"WARNING: All log messages before absl::InitializeLog() is called are written to "
            b"STDERR\n",
        )
        os.write(2, b"ImportError: libcudnn.so.9: cannot open shared object file\n")
    error = capfd.readouterr().err
    assert "libcudnn.so.9" in error
    assert _noise_in(error) == []


@pytest.mark.slow
def test_the_command_line_starts_quietly(tmp_path):
    info = _run("-m", "resnet_keras", "info", "--no-probe")
    assert info.returncode == 0, info.stderr
    assert "keras backend" in info.stdout
    assert _noise_in(info.stdout + info.stderr) == [], info.stderr

    train = _run(
        *("-m", "resnet_keras", "train", "--model", "resnet20", "--dataset", "digits"),
        *("--epochs", "1", "--train-size", "64", "--batch-size", "64", "--verbose", "0"),
        *("--out", str(tmp_path / "run")),
    )
    assert train.returncode == 0, train.stderr
    assert "Summary" in train.stdout
    assert _noise_in(train.stdout + train.stderr) == [], train.stderr


@pytest.mark.slow
def test_a_notebook_through_the_course_runner_starts_quietly(tmp_path):
    done = _run(
        *("-m", "resnet_keras.course", "--notebooks", str(REPO / "notebooks")),
        *("--build", str(tmp_path), "--profile", "ci", "--only", "00"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert _noise_in(done.stdout + done.stderr) == [], done.stderr
    notebook = nbformat.read(tmp_path / "notebooks" / "00_setup.ipynb", as_version=4)
    outputs = "\n".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert "Keras backend" in outputs  # the environment report ran
    assert _noise_in(outputs) == [], _noise_in(outputs)
