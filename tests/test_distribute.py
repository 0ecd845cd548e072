"""Data-parallel `rk.fit` on two devices trains the network one device trains.

Two CPU devices stand in for two GPUs, in fresh processes (tests/_distribute_worker.py):
TensorFlow must split its CPU before it initialises, and JAX reads XLA_FLAGS at start-up. Each
process trains a tiny ResNet from the same seed on the same global batches on one device and
on two, and the tests compare the weights. Measured on a CPU (max |difference| of any weight
after 8 SGD steps that moved the weights by up to 1.3):

- TensorFlow, MirroredStrategy, synchronised BN: 1e-5 from one device (the same rounding as
  synchronised BN on one device, which uses Keras' ops instead of the fused kernel);
- TensorFlow, per-replica BN (the paper's): 0.3 from one device: each device normalises with
  the statistics of its 8 images instead of the 16 of the batch;
- JAX, keras.distribution.DataParallel: 4e-7 either way, as one program over the global
  batch computes global statistics.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import resnet_keras as rk
from resnet_keras.training import distribute

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("_distribute_worker.py")


def _environment(backend):
    env = {k: v for k, v in os.environ.items() if k != "RESNET_KERAS_PROFILE"}
    env.update(CI="true", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO), KERAS_BACKEND=backend)
    if backend == "jax":
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    return env


def _run_worker(out, backend):
    finished = subprocess.run(
        [sys.executable, str(WORKER), str(out)],
        capture_output=True,
        text=True,
        env=_environment(backend),
        cwd=REPO,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-4000:]
    return out


def _weights(out, run):
    """(initial, final) weights of one run of the worker."""
    with np.load(Path(out) / f"{run}.npz") as archive:
        arrays = [archive[f"arr_{index}"] for index in range(len(archive.files))]
    half = len(arrays) // 2
    return arrays[:half], arrays[half:]


def _max_difference(first, second):
    return max(float(np.max(np.abs(a - b))) for a, b in zip(first, second, strict=True))


@pytest.fixture(scope="module")
def tensorflow_runs(tmp_path_factory):
    return _run_worker(tmp_path_factory.mktemp("tensorflow"), "tensorflow")


@pytest.fixture(scope="module")
def jax_runs(tmp_path_factory):
    pytest.importorskip("jax")
    return _run_worker(tmp_path_factory.mktemp("jax"), "jax")


@pytest.mark.slow
def test_mirrored_with_synchronized_batch_norm_trains_what_one_device_trains(tensorflow_runs):
    one_initial, one = _weights(tensorflow_runs, "one")
    two_initial, two = _weights(tensorflow_runs, "two_sync")
    assert _max_difference(one_initial, two_initial) == 0  # the same start
    assert _max_difference(one_initial, one) > 0.1  # training moved the weights
    assert _max_difference(one, two) < 1e-4  # measured 1e-5
    # The rest is the rounding of Keras' BN ops: one device with them is as far away.
    _, one_sync = _weights(tensorflow_runs, "one_sync")
    assert _max_difference(one_sync, two) < 1e-5  # measured 5e-7


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_data_parallel_run_resumes_as_the_uninterrupted_run(backend, tensorflow_runs, jax_runs):
    # `out_dir` (backup, best checkpoint, history, validation) under the engine's scope.
    out = tensorflow_runs if backend == "tensorflow" else jax_runs
    _, uninterrupted = _weights(out, "two_sync")
    _, resumed = _weights(out, "two_sync_resumed")
    assert _max_difference(uninterrupted, resumed) == 0


@pytest.mark.slow
def test_per_replica_batch_norm_trains_another_network(tensorflow_runs):
    _, one = _weights(tensorflow_runs, "one")
    _, per_replica = _weights(tensorflow_runs, "two_per_replica")
    assert _max_difference(one, per_replica) > 1e-2  # measured 0.3


@pytest.mark.slow
@pytest.mark.parametrize("run", ["two_sync", "two_per_replica"])
def test_jax_data_parallel_trains_what_one_device_trains(jax_runs, run):
    one_initial, one = _weights(jax_runs, "one")
    two_initial, two = _weights(jax_runs, run)
    assert _max_difference(one_initial, two_initial) == 0
    assert _max_difference(one_initial, one) > 0.1
    # Global batch statistics whatever is asked: keras.distribution is one program.
    assert _max_difference(one, two) < 1e-4  # measured 4e-7


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_bad_combinations_raise_one_value_error_naming_the_argument(
    backend, tensorflow_runs, jax_runs
):
    out = tensorflow_runs if backend == "tensorflow" else jax_runs
    errors = json.loads((Path(out) / "errors.json").read_text())
    assert "`devices` must be at most 2" in errors["too_many_devices"]
    other = "'data_parallel'" if backend == "tensorflow" else "'mirrored'"
    assert errors["other_engine"].startswith(f"`engine` must be an engine of the {backend}")
    assert errors["other_engine"].endswith(f"received {other}.")
    assert "`data` must come in global batches" in errors["odd_batch"]
    assert "received batches of 15" in errors["odd_batch"]
    assert errors["outside_scope"].startswith("`distribution`")
    assert "resnet_keras.training.distributed" in errors["outside_scope"]


# --- In this process: one CPU device ------------------------------------------------------------
def test_one_device_needs_no_engine():
    assert distribute.data_parallel(devices=1) is None
    assert distribute.data_parallel() is None  # "auto" on a CPU-only machine
    with distribute.distributed() as distribution:
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert distribution is None
    assert distribute.model_distribution(model) is None
    assert distribute.resolve_distribution(model, "auto") is None
    assert distribute.replicas(None) == 1


def test_bad_arguments_name_themselves():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the engine names below are TensorFlow's")
    visible = len(distribute.visible_devices())
    with pytest.raises(ValueError, match="`devices` must be at most"):
        distribute.data_parallel(devices=visible + 1)
    with pytest.raises(ValueError, match="`engine` must be an engine of the tensorflow"):
        distribute.data_parallel(devices=2, engine="data_parallel")
    with pytest.raises(ValueError, match="`engine` must be one of"):
        distribute.data_parallel(engine="horovod")
    with pytest.raises(TypeError, match="`devices` must be 'auto' or a positive integer"):
        distribute.data_parallel(devices="two")
    with pytest.raises(ValueError, match="`engine` must be one of"):
        distribute.data_parallel(engine="multi_worker")  # see the module docstring
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="`distribution` must be 'auto', None"):
        distribute.resolve_distribution(model, "mirrored")


def test_fit_checks_the_new_arguments_before_training():
    model = rk.CifarResNet(8, num_classes=4, input_shape=(8, 8, 3))
    data = [(np.zeros((4, 8, 8, 3), "float32"), np.zeros((4,), "int32"))]
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(data[0]).batch(2)
    with pytest.raises(TypeError, match="`synchronized_batch_norm` must be True or False"):
        rk.fit(model, dataset, epochs=1, synchronized_batch_norm="yes", verbose=0)
    with pytest.raises(ValueError, match="`distribution` must be 'auto', None"):
        rk.fit(model, dataset, epochs=1, distribution="mirrored", verbose=0)


def test_synchronized_batch_norm_is_set_for_the_run_only():
    model = rk.CifarResNet(8, num_classes=4, input_shape=(8, 8, 3))
    layers = distribute._batch_norm_layers(model)
    assert len(layers) == 7  # the stem's and two in each of the three blocks
    with distribute.synchronized_batch_norm(model) as count:
        if keras.backend.backend() == "tensorflow":
            assert count == 7
            assert all(layer.synchronized for layer in layers)
    # Not saved with the model: Keras refuses synchronized=True on JAX and PyTorch.
    assert not any(layer.synchronized for layer in layers)
