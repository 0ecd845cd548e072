"""The notebooks' bootstrap cell (cells[1]), executed as in Colab with pip and the packages faked.

In Colab the library is not installed yet, so the cell is self-contained; these tests take its
source from the notebooks and run it with a fake `google.colab` module.
"""

import fnmatch
import glob
import json
import pathlib
import re
import subprocess
import sys
import types
from importlib import metadata

import pytest
import tomllib
from packaging.requirements import Requirement

from resnet_keras.course import runner as course
from resnet_keras.course.profiles import PROFILES

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TPU_VARIABLES = ("TPU_ACCELERATOR_TYPE", "COLAB_TPU_ADDR")


def _source(path):
    return "".join(json.loads(path.read_text())["cells"][1]["source"])


SOURCE = _source(NOTEBOOKS[0])


def test_every_notebook_has_the_same_bootstrap():
    # Every notebook of the course, numbered 00, 01, ... without a gap (the course map's order).
    assert [path.name[:2] for path in NOTEBOOKS] == [f"{i:02d}" for i in range(len(NOTEBOOKS))]
    assert len(NOTEBOOKS) >= 10
    for path in NOTEBOOKS:
        assert _source(path) == SOURCE, f"{path.name}: cells[1] differs from {NOTEBOOKS[0].name}'s"
    assert "google.colab" in SOURCE and course.REPOSITORY in SOURCE


def test_the_cell_knows_the_tensorflow_floor():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extra = pyproject["project"]["optional-dependencies"]["tensorflow"]
    (tensorflow,) = [r for r in map(Requirement, extra) if r.name == "tensorflow"]
    (floor,) = [s.version for s in tensorflow.specifier if s.operator == ">="]
    major, minor = re.search(r">= \((\d+), (\d+)\)", SOURCE).groups()
    assert f"{major}.{minor}" == floor and f">= {floor}" in SOURCE


class _Distribution:
    def __init__(self, name, version):
        self.metadata = {"Name": name}
        self.version = version


class Colab:
    """A fake Colab: installed packages, imported modules, pip's answer, TPU devices."""

    def __init__(self, monkeypatch, installed, *, pip_installs=None, returncode=0, stderr=""):
        self.installed = dict(installed)
        self.pip_installs = pip_installs or {}
        self.returncode, self.stderr = returncode, stderr
        self.commands = []
        self.devices = []
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
        for variable in TPU_VARIABLES:
            monkeypatch.delenv(variable, raising=False)
        monkeypatch.setattr(subprocess, "run", self.run)
        monkeypatch.setattr(metadata, "distributions", self.distributions)
        # The fake distributions' modules are named `fake_<name>`; see `imported`.
        monkeypatch.setattr(
            metadata,
            "packages_distributions",
            lambda: {f"fake_{name.replace('-', '_')}": [name] for name in self.installed},
        )
        monkeypatch.setattr(
            glob, "glob", lambda pattern: [d for d in self.devices if fnmatch.fnmatch(d, pattern)]
        )
        self.monkeypatch = monkeypatch

    def imported(self, *names):
        for name in names:
            module = f"fake_{name.replace('-', '_')}"
            self.monkeypatch.setitem(sys.modules, module, types.ModuleType(module))

    def distributions(self):
        return [_Distribution(name, version) for name, version in self.installed.items()]

    def run(self, command, **kwargs):
        self.commands.append(command)
        if self.returncode == 0:
            self.installed.update(self.pip_installs)
        return subprocess.CompletedProcess(command, self.returncode, "", self.stderr)

    def bootstrap(self, capsys):
        exec(compile(SOURCE, "bootstrap cell", "exec"), {"__name__": "__main__"})
        return capsys.readouterr().out


COLAB_2025 = {"tensorflow": "2.19.0", "keras": "3.10.0", "tensorflow-datasets": "4.9.9"}


def test_outside_colab_it_does_nothing(monkeypatch, capsys):
    calls = []
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    exec(compile(SOURCE, "bootstrap cell", "exec"), {"__name__": "__main__"})
    assert calls == [] and capsys.readouterr().out == ""


@pytest.mark.parametrize("version", ["2.19.0", "2.21.0"])
def test_a_new_enough_tensorflow_stays(monkeypatch, capsys, version):
    colab = Colab(
        monkeypatch, {**COLAB_2025, "tensorflow": version}, pip_installs={"resnet-keras": "0.1.0"}
    )
    colab.imported("tensorflow", "keras")
    out = colab.bootstrap(capsys)
    (command,) = colab.commands
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    assert f"resnet_keras[course] @ git+{course.REPOSITORY}" in command
    # Asked for exactly the installed TensorFlow, pip keeps it: it can neither upgrade it nor
    # let a dependency replace it.
    assert (
        f"tensorflow=={version}" in command and "-U" not in command and "--upgrade" not in command
    )
    assert f"TensorFlow {version} stays" in out
    assert "no restart needed" in out and "Restart" not in out


def test_an_old_tensorflow_is_replaced_and_a_restart_asked_for(monkeypatch, capsys):
    colab = Colab(
        monkeypatch,
        {**COLAB_2025, "tensorflow": "2.18.0"},
        pip_installs={"resnet-keras": "0.1.0", "tensorflow": "2.21.0"},
    )
    colab.imported("tensorflow")
    out = colab.bootstrap(capsys)
    (command,) = colab.commands
    assert not any(part.startswith("tensorflow") for part in command)
    assert "TensorFlow 2.18.0" in out and "several hundred MB" in out
    assert "Restart the runtime" in out and "tensorflow 2.18.0 -> 2.21.0" in out


def test_no_restart_when_nothing_replaced_was_imported(monkeypatch, capsys):
    # Colab's TPU runtimes come without TensorFlow: installing it needs no restart.
    colab = Colab(
        monkeypatch, {"keras": "3.8.0"}, pip_installs={"resnet-keras": "0.1.0", "keras": "3.15.1"}
    )
    out = colab.bootstrap(capsys)
    assert "no TensorFlow" in out and "no restart needed" in out and "Restart" not in out
    colab.installed["keras"] = "3.8.0"
    colab.installed.pop("resnet-keras")
    colab.imported("keras")
    assert "keras 3.8.0 -> 3.15.1" in colab.bootstrap(capsys)


def test_a_failed_install_is_one_clear_line(monkeypatch, capsys):
    stderr = (
        "  error: subprocess-exited-with-error\n"
        "ERROR: Could not find a version that satisfies the requirement resnet_keras\n"
        "note: This error originates from a subprocess.\n"
    )
    colab = Colab(monkeypatch, COLAB_2025, returncode=1, stderr=stderr)
    out = colab.bootstrap(capsys)  # no exception: CalledProcessError would be a traceback
    installing, failure = out.strip().splitlines()
    assert installing.startswith("Installing the course library")
    assert failure.startswith("Installing the course library failed")
    assert "Could not find a version that satisfies" in failure and "run this cell again" in failure


def test_a_second_run_installs_nothing(monkeypatch, capsys):
    colab = Colab(monkeypatch, {**COLAB_2025, "resnet_keras": "0.1.0"})
    assert colab.bootstrap(capsys) == "" and colab.commands == []


@pytest.mark.parametrize(
    "variable, devices, label",
    [
        ("v5litepod-1", [], "v5litepod-1"),  # TPU VM runtimes set TPU_ACCELERATOR_TYPE
        (None, ["/dev/accel0", "/dev/accel1"], "TPU"),  # TPU v2-v4 chips
        (None, ["/dev/vfio/0", "/dev/vfio/vfio"], "TPU"),  # TPU v5e and newer
    ],
)
def test_a_tpu_runtime_is_reported_with_its_profile(monkeypatch, capsys, variable, devices, label):
    colab = Colab(monkeypatch, {**COLAB_2025, "resnet-keras": "0.1.0"})
    colab.devices = devices
    if variable:
        monkeypatch.setenv("TPU_ACCELERATOR_TYPE", variable)
    out = colab.bootstrap(capsys)
    assert f"Colab TPU runtime ({label})" in out and "not TPUs" in out
    cpu = PROFILES["cpu"]
    assert f"picks 'cpu' ({cpu.train_size:,} images, {cpu.epochs} epochs" in out
    assert "'gpu'" in out and "Change runtime type" in out


def test_a_gpu_runtime_is_no_tpu(monkeypatch, capsys):
    # Recent NVIDIA drivers create /dev/accel* too.
    colab = Colab(monkeypatch, {**COLAB_2025, "resnet-keras": "0.1.0"})
    colab.devices = ["/dev/accel0", "/dev/nvidia0", "/dev/nvidiactl"]
    assert "TPU" not in colab.bootstrap(capsys)
