"""Tests of the command line (`python -m resnet_keras train|info`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from resnet_keras.course import cli
from resnet_keras.course.profiles import PROFILE_NAMES
from resnet_keras.data import dataset_names

REPO = Path(__file__).resolve().parents[1]


def _environment(**extra):
    env = {k: v for k, v in os.environ.items() if k != "RESNET_KERAS_PROFILE"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO), **extra)
    return env


# TensorFlow's C++ runtime logs a few lines at import, before Python can silence it (absl is not
# initialised yet, so TF_CPP_MIN_LOG_LEVEL does not apply); they are not the CLI's output.
_NATIVE_LOG = re.compile(
    r"^(WARNING: All log messages before absl|[IWE]\d{4} |To enable the following)"
)


def our_lines(stderr):
    return [line for line in stderr.strip().splitlines() if not _NATIVE_LOG.match(line)]


def run_cli(*arguments, **extra_env):
    return subprocess.run(
        [sys.executable, "-m", "resnet_keras", *arguments],
        capture_output=True,
        text=True,
        env=_environment(**extra_env),
        cwd=REPO,
        timeout=600,
    )


def run_in_process(capsys, *arguments):
    """Calls cli.main like the console script does; returns (status, stdout, stderr)."""
    try:
        status = cli.main(list(arguments))
    except SystemExit as exit_:  # argparse errors exit directly
        status = exit_.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_train_resnet20_on_digits_fills_the_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    command = ("train", "--model", "resnet20", "--dataset", "digits", "--epochs", "1")
    command += ("--train-size", "256", "--out", str(out))
    result = run_cli(*command, CI="true")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "Profile ci" in result.stdout and "test accuracy" in result.stdout

    for name in (
        "history.csv",
        "best.weights.h5",
        "model.keras",
        "training_curves.png",
        "confusion_matrix.png",
        "misclassified.png",
        "lr_schedule.png",
        "summary.json",
        "run.json",
    ):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "resnet20" and summary["trainable_params"] == 269_722
    assert summary["dataset"] == "digits" and summary["profile"] == "ci"
    assert summary["epochs_completed"] == 1 and summary["train_size"] == 256
    assert 0.0 <= summary["test_accuracy"] <= 1.0 and summary["test_size"] == 360
    assert summary["images_per_s"] > 0 and summary["wall_time_s"] > summary["train_time_s"] > 0

    # The same command again finds the run finished: it resumes after epoch 1 and trains nothing.
    status, stdout, _ = run_in_process(capsys, *command, "--profile", "ci", "--verbose", "0")
    assert status == 0
    assert "Resuming" in stdout and "after epoch 1 of 1" in stdout
    assert json.loads((out / "summary.json").read_text())["epochs_completed"] == 1


def test_bad_model_exits_2_with_one_line_and_no_traceback(tmp_path):
    result = run_cli("train", "--model", "resnet21", "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    lines = our_lines(result.stderr)
    assert len(lines) == 1 and "--model" in lines[0] and "resnet20" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (("--model", "resnet21"), "--model"),
        (("--dataset", "imagenet"), "--dataset"),
        (("--epochs", "0"), "--epochs"),
        (("--epochs", "two"), "--epochs"),
        (("--batch-size", "-1"), "--batch-size"),
        (("--lr", "0"), "--lr"),
        (("--profile", "tpu"), "--profile"),
    ],
)
def test_bad_arguments_give_one_line(tmp_path, capsys, arguments, expected):
    status, stdout, stderr = run_in_process(
        capsys, "train", "--out", str(tmp_path / "run"), *arguments
    )
    assert status == 2
    assert len(stderr.strip().splitlines()) == 1 and expected in stderr
    assert not (tmp_path / "run").exists()


def test_unwritable_out_folder_gives_one_line(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    status, _, stderr = run_in_process(capsys, "train", "--out", str(blocker / "run"))
    assert status == 2
    assert len(stderr.strip().splitlines()) == 1 and "--out" in stderr


def test_a_run_folder_of_another_model_is_not_resumed(tmp_path, capsys):
    (tmp_path / "backup").mkdir()
    (tmp_path / "run.json").write_text(json.dumps({"model": "resnet56", "dataset": "digits"}))
    status, _, stderr = run_in_process(
        capsys, "train", "--model", "resnet20", "--dataset", "digits", "--out", str(tmp_path)
    )
    assert status == 2
    assert len(stderr.strip().splitlines()) == 1 and "--model resnet56" in stderr


def test_missing_command_exits_2(capsys):
    status, _, stderr = run_in_process(capsys)
    assert status == 2 and len(stderr.strip().splitlines()) == 1


def test_info_reports_versions_profile_and_dataset_choice(capsys, monkeypatch):
    monkeypatch.delenv("RESNET_KERAS_PROFILE", raising=False)
    monkeypatch.setenv("CI", "true")
    status, stdout, _ = run_in_process(capsys, "info", "--no-probe", "--data-dir", "/nonexistent")
    assert status == 0
    for word in ("python", "keras", "tensorflow", "tensorflow-datasets", "numpy"):
        assert f"\n{word} " in "\n" + stdout
    assert "keras backend" in stdout and "CPU" in stdout
    assert "profile" in stdout and "ci (the environment variable CI is set" in stdout
    assert "TFDS data dir" in stdout and "/nonexistent" in stdout
    assert "dataset auto" in stdout


def test_model_names_map_to_the_builders():
    assert cli._dataset_names() == dataset_names() == ("auto", "cifar10", "digits")
    assert cli.PROFILES == PROFILE_NAMES
    plain = cli.build_model("plain20")
    residual = cli.build_model("resnet20")
    assert plain.name == "plain20" and residual.name == "resnet20"
    # Option-A shortcuts have no parameters: plain and residual nets have the same count.
    assert plain.count_params() == residual.count_params()
    assert cli.build_model("seednet", num_classes=4).output_shape == (None, 4)
    with pytest.raises(ValueError, match="name"):
        cli.build_model("resnet21")
