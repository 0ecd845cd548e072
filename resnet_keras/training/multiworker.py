"""Training on several processes at once (several hosts, or several workers on one host).

Each process runs the same script: it joins the cluster with `initialize`, builds the model
under the `keras.distribution.DataParallel` that `initialize` returns (a mesh over the
devices of EVERY process), and trains with `resnet_keras.training.fit`:

    distribution = initialize("10.0.0.1:1234", num_processes=2, process_id=0)  # 1 on the other
    with distribution.scope():
        model = rk.CifarResNet(20)
    rk.fit(model, data, epochs=10, distribution=distribution,
           out_dir=worker_out_dir("runs/r20"))

Every process passes the SAME global batches (same data, batch size and seed): Keras splits
each global batch between the processes (`DataParallel.distribute_dataset` rebatches it into
one slice per process and gives each process its own), and one program over the whole mesh
averages the gradients, so the weights stay identical on every process and equal to those
of one process with as many devices (tested on two CPU processes over 127.0.0.1, with JAX's
Gloo collectives for CPUs).

This runs on the JAX backend only. TensorFlow's engine across hosts,
`tf.distribute.MultiWorkerMirroredStrategy`, cannot run Keras 3's `Model.fit`: its first
batch goes through `strategy.reduce` on a per-replica (images, labels) batch, which that
strategy cannot reduce (keras-team/keras#20585; still so in Keras 3.15).

Each process keeps its own run folder (`worker_out_dir`): a host need not see the others'
disks, and two processes writing one backup would overwrite each other's files. After a
crash the whole job is started again with the same folders; `fit` resumes every process from
its own backup, and `check_resume_epoch` makes sure that they all resume at the same epoch
(a process that resumed one epoch later than another would wait forever for it).
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

from resnet_keras._validation import check_instance, check_non_negative_int, check_positive_int

__all__ = ["check_resume_epoch", "cluster_data_parallel", "initialize", "worker_out_dir"]

# Keras' own names (keras.distribution.initialize reads them too).
_ADDRESS_VARIABLE = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
_COUNT_VARIABLE = "KERAS_DISTRIBUTION_NUM_PROCESSES"
_ID_VARIABLE = "KERAS_DISTRIBUTION_PROCESS_ID"


def _from_environment(name, value, variable):
    """`value`, or the integer in environment variable `variable` when `value` is None."""
    if value is not None or variable not in os.environ:
        return value
    text = os.environ[variable]
    try:
        return int(text)
    except ValueError:
        raise ValueError(
            f"`{name}` must be an integer; the environment variable {variable} holds {text!r}."
        ) from None


def _check_coordinator(coordinator):
    if coordinator is None:
        coordinator = os.environ.get(_ADDRESS_VARIABLE)
    if coordinator is None:
        raise ValueError(
            f"`coordinator` must be the 'host:port' of process 0 (or {_ADDRESS_VARIABLE} must "
            "be set); received None."
        )
    check_instance("coordinator", coordinator, str, "a 'host:port' string")
    # Keras accepts every job's address, comma-separated; JAX needs only the first one's.
    first = coordinator.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"`coordinator` must be 'host:port' with a port in 1-65535 (e.g. "
            f"'127.0.0.1:1234'); received {coordinator!r}."
        )
    return first


def initialize(coordinator=None, num_processes=None, process_id=None):
    """Joins this process to the cluster and returns data parallelism over all its devices.

    Call it first, before anything computes on the backend (JAX fixes its devices then).
    Each argument left as None is read from Keras' environment variable for it
    (KERAS_DISTRIBUTION_JOB_ADDRESSES, KERAS_DISTRIBUTION_NUM_PROCESSES,
    KERAS_DISTRIBUTION_PROCESS_ID), which is how a launcher usually passes them.

    Args:
        coordinator: "host:port" where process 0 listens (Keras' comma-separated list of
            every process's address is accepted too; only the first is used).
        num_processes: How many processes the job has (>= 1).
        process_id: This process's number, 0 to `num_processes - 1` (0 coordinates).

    Returns:
        A `keras.distribution.DataParallel` over the devices of every process (see
        `cluster_data_parallel`); build the model under its `scope()` and pass it to
        `fit(distribution=...)`.

    Raises:
        ValueError: off the JAX backend (TensorFlow's multi-worker engine cannot run Keras 3's
            `fit`, see the module docstring), or for an argument out of range.
        TypeError: for an argument of the wrong type.

    Examples:
        >>> import keras
        >>> if keras.backend.backend() == "jax":  # doctest: +SKIP
        ...     distribution = initialize("127.0.0.1:1234", num_processes=2, process_id=0)
    """
    backend = keras.backend.backend()
    if backend != "jax":
        raise ValueError(
            "`initialize` needs the JAX backend (KERAS_BACKEND=jax); the backend is "
            f"{backend!r}. On TensorFlow, Keras 3's Model.fit cannot train under "
            "MultiWorkerMirroredStrategy (keras-team/keras#20585)."
        )
    address = _check_coordinator(coordinator)
    count = check_positive_int(
        "num_processes", _from_environment("num_processes", num_processes, _COUNT_VARIABLE)
    )
    index = check_non_negative_int(
        "process_id", _from_environment("process_id", process_id, _ID_VARIABLE)
    )
    if index >= count:
        raise ValueError(f"`process_id` must be below `num_processes` ({count}); received {index}.")
    keras.distribution.initialize(job_addresses=address, num_processes=count, process_id=index)
    return cluster_data_parallel()


def cluster_data_parallel():
    """Data parallelism over the devices of every process of the cluster.

    After `initialize`, `keras.distribution.list_devices()` lists every process's devices
    (each process addresses only its own); one process holds the whole list otherwise.

    Returns:
        A `keras.distribution.DataParallel` over all of them.

    Examples:
        >>> import keras
        >>> if keras.backend.backend() == "jax":  # multi-process is JAX's (see the module doc)
        ...     distribution = cluster_data_parallel()
        ...     devices = keras.distribution.list_devices()
        ...     assert distribution.device_mesh.devices.size == len(devices)
    """
    return keras.distribution.DataParallel(devices=keras.distribution.list_devices())


def _process_index():
    if keras.backend.backend() == "jax":
        import jax

        return jax.process_index()
    return 0


def worker_out_dir(out_dir, process_id=None) -> Path:
    """This process's own run folder inside the job's `out_dir`: `out_dir/worker-<id>`.

    Args:
        out_dir: The job's run folder.
        process_id: The process's number (default: this process's, 0 outside a cluster).

    Returns:
        The folder to pass to `fit(out_dir=...)`.

    Examples:
        >>> worker_out_dir("runs/r20", process_id=1).as_posix()
        'runs/r20/worker-1'
    """
    if process_id is None:
        process_id = _process_index()
    process_id = check_non_negative_int("process_id", process_id)
    return Path(out_dir) / f"worker-{process_id}"


def check_resume_epoch(out_dir) -> int:
    """The epoch every process resumes at from its backup; raises if they disagree.

    Each process reads the newest intact state of its `out_dir/backup` and the processes
    exchange the numbers (one small collective, so every process of the job must call it,
    before `fit`). They normally agree, as each process writes its backup at the end of the
    same epochs; a process killed while writing one could be an epoch behind, and `fit`
    would then wait for ever on the processes that are ahead.

    Args:
        out_dir: This process's run folder (what `worker_out_dir` returns).

    Returns:
        The number of finished epochs every process will restore (0 for a fresh run).

    Raises:
        ValueError: naming each process's epoch when they differ.

    Examples:
        >>> check_resume_epoch("/nonexistent/run")  # one process, no backup
        0
    """
    import numpy as np

    from resnet_keras.training.backup import latest_epoch
    from resnet_keras.training.callbacks import BACKUP_DIR

    mine = latest_epoch(Path(out_dir) / BACKUP_DIR)
    if keras.backend.backend() != "jax":
        return mine
    import jax
    from jax.experimental import multihost_utils

    if jax.process_count() == 1:
        return mine
    epochs = [int(e) for e in np.ravel(multihost_utils.process_allgather(np.int32(mine)))]
    if len(set(epochs)) > 1:
        found = ", ".join(f"process {index}: {epoch}" for index, epoch in enumerate(epochs))
        raise ValueError(
            f"`out_dir`: the processes' backups end at different epochs ({found}); delete "
            f"the newer states (backup/epoch-*) down to epoch {min(epochs)} on every process "
            "and start the job again."
        )
    return mine
