"""`import resnet_keras` turns TensorFlow's oneDNN CPU kernels on, and never overrides a choice."""

import ast
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

import resnet_keras as rk
from resnet_keras._runtime import ONEDNN_VARIABLE, prefer_onednn

X86 = platform.machine().lower() in ("x86_64", "amd64")


def test_sets_the_variable_when_nobody_has_decided():
    environ = {}
    assert prefer_onednn(environ=environ, modules={}, machine="x86_64") is True
    assert environ == {ONEDNN_VARIABLE: "1"}


@pytest.mark.parametrize("choice", ["0", "1", ""])
def test_a_users_choice_wins(choice):
    environ = {ONEDNN_VARIABLE: choice}
    assert prefer_onednn(environ=environ, modules={}, machine="x86_64") is False
    assert environ == {ONEDNN_VARIABLE: choice}


def test_too_late_once_tensorflow_is_imported():
    environ = {}
    assert (
        prefer_onednn(environ=environ, modules={"tensorflow": object()}, machine="x86_64") is False
    )
    assert environ == {}


@pytest.mark.parametrize("machine", ["aarch64", "arm64", "ppc64le"])
def test_only_on_x86(machine):
    environ = {}
    assert prefer_onednn(environ=environ, modules={}, machine=machine) is False
    assert environ == {}


def _import_in_fresh_process(code, **env):
    full_env = {k: v for k, v in os.environ.items() if k != ONEDNN_VARIABLE}
    full_env.update(env, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run(
        [sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


REPORT = (
    "import json, os; import resnet_keras as rk; "
    "print(json.dumps([os.environ.get('TF_ENABLE_ONEDNN_OPTS'), rk.onednn_enabled()]))"
)


@pytest.mark.skipif(not X86, reason="TensorFlow's oneDNN build targets x86-64")
def test_importing_resnet_keras_first_turns_onednn_on():
    assert _import_in_fresh_process(REPORT) == ["1", True]


@pytest.mark.skipif(not X86, reason="TensorFlow's oneDNN build targets x86-64")
def test_explicit_off_is_respected_and_keras_first_is_left_alone():
    assert _import_in_fresh_process(REPORT, TF_ENABLE_ONEDNN_OPTS="0") == ["0", False]
    # Importing keras (hence TensorFlow) first: too late to change anything, nothing is set.
    assert _import_in_fresh_process("import keras; " + REPORT)[0] is None


@pytest.mark.skipif(not X86, reason="TensorFlow's oneDNN build targets x86-64")
def test_this_test_session_runs_what_a_learner_runs():
    # tests/conftest.py imports resnet_keras before keras, as the notebooks do.
    expected = os.environ.get(ONEDNN_VARIABLE) != "0"
    assert rk.onednn_enabled() is expected


# Whatever Python never imports it does not need installed: the check is that
# nothing on the way to a built, called model imports TensorFlow.
WITHOUT_TENSORFLOW = """
import json, sys
import numpy as np
import resnet_keras as rk
model = rk.CifarResNet(20)
logits = model(np.zeros((2, 32, 32, 3), "float32"), training=True)
# (Keras itself imports matplotlib when it is installed; `make test-lean` checks that
# resnet_keras works where it is not.)
optional = ("tensorflow", "tensorflow_datasets", "resnet_keras.plots", "resnet_keras.course")
before = sorted(name for name in optional if name in sys.modules)
rk.fit  # the trainer uses tf.data: imported on first use
print(json.dumps([rk.count_trainable_params(model), list(logits.shape), before,
                  "tensorflow" in sys.modules]))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_layers_and_models_import_without_tensorflow(backend):
    # A JAX- or PyTorch-only machine (a lent GPU, say) can build and run the models.
    completed = subprocess.run(
        [sys.executable, "-c", WITHOUT_TENSORFLOW],
        env={**os.environ, "KERAS_BACKEND": backend},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    params, shape, imported_before, imported_after = json.loads(
        completed.stdout.strip().splitlines()[-1]
    )
    assert params == 269_722  # the 0.27M of the paper's Table 6
    assert shape == [2, 10]
    assert imported_before == []
    assert imported_after is True


LIBRARY = Path(rk.__file__).parent


def _imports(path):
    """The modules a file imports (absolute names), from its syntax tree."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_library_never_imports_the_course():
    # Imports flow one way: resnet_keras.course uses the library, never the reverse; the
    # package's __main__ (the `python -m resnet_keras` command, which is the course's) aside.
    offenders = [
        str(path.relative_to(LIBRARY))
        for path in LIBRARY.rglob("*.py")
        if "course" not in path.relative_to(LIBRARY).parts
        and path.name != "__main__.py"
        and any(name.startswith("resnet_keras.course") for name in _imports(path))
    ]
    assert offenders == []


def test_a_missing_extra_is_one_line_that_says_what_to_install(monkeypatch):
    from resnet_keras import _optional

    def missing(name):
        raise ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib")

    monkeypatch.setattr(_optional.importlib, "import_module", missing)
    with pytest.raises(ModuleNotFoundError, match=r'pip install "resnet_keras\[plots\]"'):
        _optional.import_module("resnet_keras.plots")
