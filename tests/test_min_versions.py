"""The floors of pyproject.toml are the pins of min-versions.txt, and `make test` tests them.

`make test-min` installs the course into .venv-min with min-versions.txt as pip constraints
and runs the tests there with `RESNET_KERAS_MIN_VERSIONS=1`; then the last test also checks
that the environment holds exactly the pinned releases.
"""

import os
import pathlib
import re
from importlib import metadata

import numpy as np
import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = pathlib.Path(__file__).resolve().parents[1]
FLOORED = ("tensorflow", "keras", "tensorflow-datasets")


def _pins():
    pins = {}
    for line in (ROOT / "min-versions.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def _dependencies():
    """The requirements of the package and of its `tensorflow` extra (what the course needs)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + project["optional-dependencies"]["tensorflow"]
    return {Requirement(d).name.lower(): Requirement(d) for d in listed}


def test_the_floors_are_the_pinned_releases():
    pins, dependencies = _pins(), _dependencies()
    for name in FLOORED:
        (floor,) = [s.version for s in dependencies[name].specifier if s.operator == ">="]
        assert Version(floor) == Version(pins[name]), f"{name}: floor {floor}, tested {pins[name]}"
    # Every pin is an allowed release of what the project requires.
    for name, version in pins.items():
        if name in dependencies:
            assert dependencies[name].specifier.contains(version), (name, version)
    # Colab's runtime of mid-2025 (TensorFlow 2.19, Keras 3.10) must not be replaced.
    assert dependencies["tensorflow"].specifier.contains("2.19.0")
    assert dependencies["keras"].specifier.contains("3.10.0")


def test_every_floor_says_why():
    text = (ROOT / "pyproject.toml").read_text()
    for name in FLOORED:
        line = re.search(rf'^\s*"{name}>=[^"]+",(.*)$', text, re.MULTILINE)
        assert line and line.group(1).strip().startswith("#"), f"{name}: no comment"


def test_make_test_runs_the_minimum_environment():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:.*\btest-min\b", makefile, re.MULTILINE)
    assert "-c min-versions.txt" in makefile
    recipe = makefile.split("\ntest-min:")[1].split("\n\n")[0]
    assert "--nbval-lax" in recipe and recipe.count(".ipynb") >= 2
    assert ".venv-min/" in (ROOT / ".gitignore").read_text().splitlines()


def test_fused_batch_normalization_does_without_renorm(monkeypatch):
    # Keras 3.10 to 3.13 have no `renorm` attribute (batch renormalisation came in 3.14).
    import keras

    from resnet_keras.layers import FusedBatchNormalization, batch_normalization

    monkeypatch.setattr(batch_normalization, "_fusable_device", lambda: True)
    layer = FusedBatchNormalization()
    if hasattr(layer, "renorm"):
        object.__delattr__(layer, "renorm")
    inputs = np.zeros((2, 4, 4, 3), "float32")
    assert layer._use_fused_kernel(inputs, None) == (keras.backend.backend() == "tensorflow")


@pytest.mark.skipif(
    not os.environ.get("RESNET_KERAS_MIN_VERSIONS"), reason="only in .venv-min (make test-min)"
)
def test_the_minimum_environment_holds_the_pinned_releases():
    for name, version in _pins().items():
        assert metadata.version(name) == version, name
