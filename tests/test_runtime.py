"""`import resnet_keras` turns TensorFlow's oneDNN CPU kernels on, and never overrides a choice."""

import json
import os
import platform
import subprocess
import sys

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
before = sorted(name for name in ("tensorflow", "tensorflow_datasets") if name in sys.modules)
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
