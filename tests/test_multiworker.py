"""Two worker processes on 127.0.0.1 train with `rk.fit` what one process on two devices trains.

Real processes (tests/_multiworker_worker.py) on the JAX backend: each joins the cluster with
`resnet_keras.training.multiworker.initialize` (JAX's coordinator on a port found free at run
time, Gloo collectives between the CPUs) and trains the same small network from the same seed
on the same global batches, one CPU device each; the reference is one process with two CPU
devices. Then a job is killed mid-run (worker 1 sends itself SIGKILL in the third epoch, the
job is stopped) and started again with the same run folders: it resumes from every worker's
backup and ends where the uninterrupted job ends. Measured on a two-core CPU (max |difference|
of any weight after 12 SGD steps that moved the weights by up to 0.33):

- worker 0 against worker 1: 0, as one program over the mesh updates the replicated weights;
- the two workers against one process with two devices: 0 (argued tolerance 1e-6 below);
- the resumed job against the uninterrupted one: 0.

Most of each worker's time is starting Python and compiling the training step, so the
reference, the job and the job to kill run at the same time, and the restart as soon as the
kill is done.

TensorFlow is not tested here: Keras 3's `Model.fit` cannot train under
MultiWorkerMirroredStrategy (keras-team/keras#20585), see `multiworker`'s docstring.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from resnet_keras.training import multiworker
from resnet_keras.training.backup import latest_epoch

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("_multiworker_worker.py")
EPOCHS = 3
KILL_AT = (2, 1)  # worker 1 dies before batch 1 of epoch 2 (from 0): two epochs backed up
TIMEOUT = 300  # seconds the workers may take before they count as hung (JAX waits as long)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment(devices):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RESNET_KERAS_PROFILE", "XLA_FLAGS") and not k.startswith("KERAS_DIST")
    }
    env.update(
        CI="true",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=str(REPO),
        KERAS_BACKEND="jax",
        JAX_PLATFORMS="cpu",
    )
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


_STARTED = []  # every worker started, so that a failing fixture leaves none running


def _start(out, log, arguments, devices=1):
    handle = open(log, "w")  # noqa: SIM115 - closed by _finish, _stop or _stop_all
    process = subprocess.Popen(
        [sys.executable, str(WORKER), str(out), "--epochs", str(EPOCHS), *arguments],
        stdout=handle,
        stderr=subprocess.STDOUT,
        env=_environment(devices),
        cwd=REPO,
    )
    process.log = log
    process.handle = handle
    _STARTED.append(process)
    return process


def _stop_all():
    for process in _STARTED:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.handle.close()
    _STARTED.clear()


def _start_job(out, name, *extra):
    coordinator = f"127.0.0.1:{_free_port()}"
    return [
        _start(
            out,
            Path(out) / f"{name}-{index}.log",
            ["--coordinator", coordinator, "--num-processes", "2", "--process-id", str(index)]
            + list(extra),
        )
        for index in range(2)
    ]


def _tail(process):
    return Path(process.log).read_text()[-3000:]


def _finish(processes, deadline):
    """Waits for every process until `deadline`; kills them all if one is still running."""
    try:
        for process in processes:
            try:
                process.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"a worker ran past {TIMEOUT} s (hung?):\n{_tail(process)}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.handle.close()
    return [process.returncode for process in processes]


def _check_ok(processes, codes):
    for process, code in zip(processes, codes, strict=True):
        assert code == 0, _tail(process)


def _stop(process, grace):
    """Waits up to `grace` seconds for `process` to end, then kills it; whether it ended."""
    try:
        process.wait(timeout=grace)
        ended = True
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        ended = False
    process.handle.close()
    return ended


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    pytest.importorskip("jax")
    root = tmp_path_factory.mktemp("multiworker")
    folders = {name: root / name for name in ("reference", "job", "killed")}
    for folder in folders.values():
        folder.mkdir()
    try:
        return _run_all(root, folders)
    finally:
        _stop_all()


def _run_all(root, folders):
    times = {}
    # The reference, the uninterrupted job and the job to kill at the same time (they share
    # no port and no folder), to keep the file short; the restart as soon as the kill is done.
    start = time.monotonic()
    deadline = start + TIMEOUT
    reference = _start(folders["reference"], folders["reference"] / "run-0.log", [], devices=2)
    job = _start_job(folders["job"], "run")
    killed = _start_job(folders["killed"], "killed", "--kill-at", ",".join(map(str, KILL_AT)))
    # Worker 1 dies of SIGKILL. Worker 0's collective loses its peer: it raises a Gloo error
    # at once, then waits for JAX's coordinator to notice the dead peer (JAX's default
    # heartbeat timeout, 100 s) before it exits; it is stopped now, as a job scheduler stops
    # the rest of a failed job.
    try:
        killed[1].wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pass
    finally:
        killed_codes = [killed[1].poll()]
        _stop(killed[0], grace=10)
        _stop(killed[1], grace=0)
    killed_codes.insert(0, killed[0].returncode)
    times["until_killed"] = time.monotonic() - start
    backups = [latest_epoch(folders["killed"] / f"worker-{index}" / "backup") for index in range(2)]

    # The same job started again on the same folders.
    restarted = _start_job(folders["killed"], "restarted")
    restart = time.monotonic()
    codes = _finish([reference, *job, *restarted], max(deadline, restart + TIMEOUT))
    _check_ok([reference, *job, *restarted], codes)
    times["restarted"] = time.monotonic() - restart
    times["all"] = time.monotonic() - start
    times["workers_cpu"] = sum(
        getattr(resource.getrusage(resource.RUSAGE_CHILDREN), field)
        for field in ("ru_utime", "ru_stime")
    )
    (root / "times.json").write_text(json.dumps(times))
    print(f"multiworker times (s): {times}")
    return {
        "folders": folders,
        "killed_codes": killed_codes,
        "backups_after_kill": backups,
    }


def _weights(folder, worker=0):
    """(initial, final) weights of one worker of a run."""
    with np.load(Path(folder) / f"worker-{worker}" / "weights.npz") as archive:
        arrays = [archive[f"arr_{index}"] for index in range(len(archive.files))]
    half = len(arrays) // 2
    return arrays[:half], arrays[half:]


def _report(folder, worker=0):
    return json.loads((Path(folder) / f"worker-{worker}" / "run.json").read_text())


def _max_difference(first, second):
    return max(float(np.max(np.abs(a - b))) for a, b in zip(first, second, strict=True))


@pytest.mark.slow
def test_each_worker_sees_the_cluster(runs):
    for worker in range(2):
        report = _report(runs["folders"]["job"], worker)
        assert (report["process_count"], report["devices"], report["local_devices"]) == (2, 2, 1)
        assert report["epochs_run"] == list(range(EPOCHS))
    reference = _report(runs["folders"]["reference"])
    assert (reference["process_count"], reference["devices"]) == (1, 2)


@pytest.mark.slow
def test_two_workers_end_with_the_same_weights(runs):
    initial_0, final_0 = _weights(runs["folders"]["job"], 0)
    initial_1, final_1 = _weights(runs["folders"]["job"], 1)
    assert _max_difference(initial_0, initial_1) == 0  # the same seed, the same start
    assert _max_difference(initial_0, final_0) > 0.05  # training moved the weights
    # One program over the mesh writes the replicated weights: not merely close, equal.
    assert _max_difference(final_0, final_1) == 0


@pytest.mark.slow
def test_two_workers_train_what_one_process_on_two_devices_trains(runs):
    initial, one_process = _weights(runs["folders"]["reference"])
    job_initial, job = _weights(runs["folders"]["job"], 0)
    assert _max_difference(initial, job_initial) == 0
    # The same programs on the same shards; only the all-reduce moves from shared memory to
    # Gloo over TCP. A sum of two numbers rounds the same in either order, so the measured
    # difference is 0; 1e-6 leaves room for a library that sums in another order (one
    # rounding of float32 weights of size ~1 is 6e-8 per step, 12 steps).
    assert _max_difference(one_process, job) < 1e-6
    assert _report(runs["folders"]["job"])["loss"] == pytest.approx(
        _report(runs["folders"]["reference"])["loss"], abs=1e-6
    )


@pytest.mark.slow
def test_a_killed_job_restarts_from_the_backup_and_ends_as_the_uninterrupted_one(runs):
    assert runs["killed_codes"][1] == -signal.SIGKILL
    assert runs["killed_codes"][0] != 0  # its peer gone, worker 0 cannot finish the job
    # Both workers had backed up the two epochs before the kill, and resumed there.
    assert runs["backups_after_kill"] == [KILL_AT[0], KILL_AT[0]]
    _, uninterrupted = _weights(runs["folders"]["job"], 0)
    for worker in range(2):
        report = _report(runs["folders"]["killed"], worker)
        assert report["resume_epoch"] == KILL_AT[0]
        assert report["epochs_run"] == list(range(KILL_AT[0], EPOCHS))  # only the rest
        _, resumed = _weights(runs["folders"]["killed"], worker)
        assert _max_difference(uninterrupted, resumed) == 0


# --- In this process: argument checks, no cluster -------------------------------------------
def test_initialize_names_its_bad_arguments(monkeypatch):
    for variable in ("JOB_ADDRESSES", "NUM_PROCESSES", "PROCESS_ID"):
        monkeypatch.delenv(f"KERAS_DISTRIBUTION_{variable}", raising=False)
    if keras.backend.backend() != "jax":
        with pytest.raises(ValueError, match="needs the JAX backend.*keras-team/keras#20585"):
            multiworker.initialize("127.0.0.1:1234", num_processes=2, process_id=0)
        return
    with pytest.raises(ValueError, match="`coordinator` must be the 'host:port'"):
        multiworker.initialize(num_processes=2, process_id=0)
    with pytest.raises(ValueError, match="`coordinator` must be 'host:port' with a port"):
        multiworker.initialize("127.0.0.1", num_processes=2, process_id=0)
    with pytest.raises(TypeError, match="`coordinator` must be a 'host:port' string"):
        multiworker.initialize(1234, num_processes=2, process_id=0)
    with pytest.raises(ValueError, match="`process_id` must be below `num_processes` \\(2\\)"):
        multiworker.initialize("127.0.0.1:1234", num_processes=2, process_id=2)
    with pytest.raises(TypeError, match="`num_processes` must be a positive integer"):
        multiworker.initialize("127.0.0.1:1234", num_processes="2", process_id=0)
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "one")
    with pytest.raises(ValueError, match="KERAS_DISTRIBUTION_PROCESS_ID holds 'one'"):
        multiworker.initialize("127.0.0.1:1234", num_processes=2)


def test_every_worker_has_its_own_run_folder(tmp_path):
    assert multiworker.worker_out_dir(tmp_path, process_id=1) == tmp_path / "worker-1"
    assert multiworker.worker_out_dir(tmp_path) == tmp_path / "worker-0"  # one process
    with pytest.raises(ValueError, match="`process_id` must be a non-negative integer"):
        multiworker.worker_out_dir(tmp_path, process_id=-1)
    assert multiworker.check_resume_epoch(tmp_path / "worker-0") == 0


@pytest.mark.backend
def test_workers_whose_backups_end_at_different_epochs_are_stopped(tmp_path, monkeypatch):
    if keras.backend.backend() != "jax":
        pytest.skip("the processes compare their epochs with a JAX collective")
    import jax
    from jax.experimental import multihost_utils

    from resnet_keras.training.backup import RunBackup

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    backup = RunBackup(tmp_path / "backup")
    backup.set_model(model)
    backup.save(2)  # this process has 2 epochs backed up
    # The other process's answer in the collective: one epoch (killed while saving the 2nd).
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    monkeypatch.setattr(multihost_utils, "process_allgather", lambda mine: [mine, 1])
    with pytest.raises(ValueError, match=r"different epochs \(process 0: 2, process 1: 1\)"):
        multiworker.check_resume_epoch(tmp_path)
    monkeypatch.setattr(multihost_utils, "process_allgather", lambda mine: [mine, mine])
    assert multiworker.check_resume_epoch(tmp_path) == 2
