"""A run killed for real resumes as the run that was never killed, and damaged files never
end in a traceback.

Every test here starts real processes and kills them with SIGKILL, as an out-of-memory
killer, a closed laptop or Colab's disconnect does: no `finally`, no `atexit`, a file
half written. They compare with an uninterrupted run of the same command, which under
op determinism on a CPU must give the same history.csv and the same weights.
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from resnet_keras.training.backup import BackupError, latest_epoch, restore

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("_resume_worker.py")
# A fixed generator: the kill points look random but every CI run takes the same ones.
RANDOM = random.Random(2026)

pytestmark = pytest.mark.slow


def _environment():
    env = {k: v for k, v in os.environ.items() if k != "RESNET_KERAS_PROFILE"}
    env.update(CI="true", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    return env


def _worker(out, *arguments):
    return subprocess.run(
        [sys.executable, str(WORKER), str(out), *arguments],
        capture_output=True,
        text=True,
        env=_environment(),
        cwd=REPO,
        timeout=600,
    )


def _history(path, skip=("train_seconds",)):
    """history.csv as rows of text, without the columns that time the run."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    keep = [index for index, name in enumerate(rows[0]) if name not in skip]
    return [[row[index] for index in keep] for row in rows]


def _final_weights(out):
    with np.load(Path(out) / "final.npz") as archive:
        return [archive[f"arr_{index}"] for index in range(len(archive.files))]


def _max_difference(first, second):
    return max(float(np.max(np.abs(a - b))) for a, b in zip(first, second, strict=True))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted `rk.fit` run of the worker (3 epochs of 6 steps)."""
    out = tmp_path_factory.mktemp("reference") / "run"
    finished = _worker(out)
    assert finished.returncode == 0, finished.stderr
    return out


def test_fit_killed_at_a_random_step_resumes_as_the_uninterrupted_run(reference, tmp_path):
    epoch, step = RANDOM.randrange(1, 3), RANDOM.randrange(0, 6)  # a later epoch, any step
    out = tmp_path / "run"
    killed = _worker(out, "--kill-at", str(epoch), str(step))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert latest_epoch(out / "backup") == epoch

    resumed = _worker(out)
    assert resumed.returncode == 0, resumed.stderr
    assert _history(out / "history.csv") == _history(reference / "history.csv"), (epoch, step)
    difference = _max_difference(_final_weights(out), _final_weights(reference))
    assert difference <= 1e-6, f"killed before step {step} of epoch {epoch}: {difference}"


def test_a_kill_while_the_backup_is_written_leaves_the_previous_state(reference, tmp_path):
    out = tmp_path / "run"
    killed = _worker(out, "--kill-in-save", "2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # The half-written state never got its name: the backup still says 1 epoch, intact.
    assert latest_epoch(out / "backup") == 1
    assert any(path.name.startswith(".epoch-0002") for path in (out / "backup").iterdir())

    resumed = _worker(out)
    assert resumed.returncode == 0, resumed.stderr
    assert "Note:" not in resumed.stderr  # nothing was damaged, so nothing to report
    assert not any(path.name.startswith(".") for path in (out / "backup").iterdir())
    assert _history(out / "history.csv") == _history(reference / "history.csv")
    assert _max_difference(_final_weights(out), _final_weights(reference)) <= 1e-6


def _copy_run(reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    (out / "final.npz").unlink()
    return out


def _truncate(path):
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) // 2)


@pytest.mark.parametrize(
    "damage",
    ["truncated weights", "changed weights", "state.json garbage", "state.json missing"],
)
def test_a_damaged_newest_state_falls_back_to_the_previous_one(reference, tmp_path, damage):
    out = _copy_run(reference, tmp_path)
    newest = out / "backup" / "epoch-0003"
    if damage == "truncated weights":
        _truncate(newest / "state.weights.h5")
    elif damage == "changed weights":
        with open(newest / "state.weights.h5", "r+b") as handle:
            handle.seek(os.path.getsize(newest / "state.weights.h5") // 2)
            handle.write(b"\x00" * 64)
    elif damage == "state.json garbage":
        (newest / "state.json").write_text('{"epochs": 3, "sha')
    else:
        (newest / "state.json").unlink()
    assert latest_epoch(out / "backup") == 2

    resumed = _worker(out)
    assert resumed.returncode == 0, resumed.stderr
    notes = [line for line in resumed.stderr.splitlines() if line.startswith("Note:")]
    assert len(notes) == 1 and "epoch-0003" in notes[0] and "epoch-0002" in notes[0], notes
    assert "Traceback" not in resumed.stderr
    # Epoch 3 was trained again from epoch 2's state: the same run.
    assert latest_epoch(out / "backup") == 3
    assert _history(out / "history.csv") == _history(reference / "history.csv")
    assert _max_difference(_final_weights(out), _final_weights(reference)) <= 1e-6


def test_a_history_cut_mid_line_is_repaired(reference, tmp_path):
    out = _copy_run(reference, tmp_path)
    shutil.rmtree(out / "backup" / "epoch-0003")  # the run died in epoch 3 ...
    text = (out / "history.csv").read_text()
    (out / "history.csv").write_text(text[: len(text) - 25])  # ... cutting its last row
    resumed = _worker(out)
    assert resumed.returncode == 0, resumed.stderr
    assert _history(out / "history.csv") == _history(reference / "history.csv")
    assert _max_difference(_final_weights(out), _final_weights(reference)) <= 1e-6


def test_a_damaged_best_checkpoint_is_written_again(reference, tmp_path):
    import h5py

    out = _copy_run(reference, tmp_path)
    shutil.rmtree(out / "backup" / "epoch-0003")  # the run died in epoch 3 ...
    _truncate(out / "best.weights.h5")  # ... while Keras rewrote the best checkpoint in place
    resumed = _worker(out)
    assert resumed.returncode == 0, resumed.stderr
    notes = [line for line in resumed.stderr.splitlines() if line.startswith("Note:")]
    assert len(notes) == 1 and "best.weights.h5" in notes[0], resumed.stderr
    with h5py.File(out / "best.weights.h5", "r"):  # whole again
        pass
    assert _max_difference(_final_weights(out), _final_weights(reference)) <= 1e-6


def _tiny_model():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def test_no_usable_state_is_one_line_and_touches_nothing(reference, tmp_path):
    out = _copy_run(reference, tmp_path)
    for state in (out / "backup").iterdir():
        _truncate(state / "state.weights.h5")
    before = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}
    failed = _worker(out)
    assert failed.returncode != 0
    assert "Traceback" in failed.stderr  # the worker is a plain script; the CLI says one line
    with pytest.raises(BackupError) as error:
        restore(_tiny_model(), out / "backup")
    message = str(error.value)
    assert "\n" not in message and "Delete" in message and "epoch-0003" in message
    after = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}
    assert after == before  # not silently started again over the old run's files


def test_a_state_of_another_model_is_reported_not_loaded(reference, tmp_path):
    with pytest.raises(BackupError, match="does not fit this model"):
        restore(_tiny_model(), reference / "backup")


def test_a_keras_backup_and_restore_folder_is_not_silently_ignored(tmp_path):
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "latest.weights.h5").write_bytes(b"old")
    with pytest.raises(BackupError, match="BackupAndRestore"):
        restore(_tiny_model(), tmp_path / "backup")


# The command line, the way a learner runs it: one terminal, killed from outside.

COMMAND = [
    "train",
    "--model",
    "resnet20",
    "--dataset",
    "digits",
    "--epochs",
    "3",
    "--train-size",
    "1024",
    "--batch-size",
    "32",
    "--deterministic",
]


def _cli(out, **popen):
    return subprocess.Popen(
        [sys.executable, "-m", "resnet_keras", *COMMAND, "--verbose", "0", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
        cwd=REPO,
        **popen,
    )


def _rows(path):
    try:
        with open(path, newline="") as handle:
            return list(csv.DictReader(handle))
    except FileNotFoundError:
        return []


def _model_weights(out):
    model = keras.saving.load_model(out / "model.keras", compile=False)
    return [np.asarray(weight) for weight in model.weights]


def test_the_cli_killed_mid_epoch_resumes_as_the_uninterrupted_run(tmp_path):
    reference = tmp_path / "reference"
    finished = _cli(reference)
    _, stderr = finished.communicate(timeout=900)
    assert finished.returncode == 0, stderr

    out = tmp_path / "run"
    process = _cli(out)
    deadline = time.monotonic() + 600
    while len(_rows(out / "history.csv")) < 1:  # wait for the first epoch's row
        assert process.poll() is None and time.monotonic() < deadline, "training did not start"
        time.sleep(0.05)
    # Somewhere inside epoch 2: a random share of one epoch's training time.
    epoch_seconds = float(_rows(out / "history.csv")[0]["train_seconds"])
    time.sleep(RANDOM.uniform(0.1, 0.7) * epoch_seconds)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert len(_rows(out / "history.csv")) < 3 and not (out / "summary.json").exists()

    again = _cli(out)
    stdout, stderr = again.communicate(timeout=900)
    assert again.returncode == 0, stderr
    assert "Resuming" in stdout
    assert _history(out / "history.csv") == _history(reference / "history.csv")
    assert _max_difference(_model_weights(out), _model_weights(reference)) <= 1e-6

    # Then the backup is damaged past repair: one line, status 1, the run's files kept.
    for state in (out / "backup").iterdir():
        _truncate(state / "state.weights.h5")
    (out / "run.json").write_text("{not json")
    kept = (out / "history.csv").read_bytes()
    broken = _cli(out)
    _, stderr = broken.communicate(timeout=900)
    assert broken.returncode == 1
    lines = [line for line in stderr.splitlines() if line.startswith(("resnet-keras", "Note"))]
    assert any(line.startswith("Note:") and "run.json" in line for line in lines), stderr
    assert lines[-1].startswith("resnet-keras: error:") and "Delete" in lines[-1], stderr
    assert "Traceback" not in stderr
    assert (out / "history.csv").read_bytes() == kept
