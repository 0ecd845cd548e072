"""One process of the multi-worker tests: `rk.fit` under `keras.distribution` on JAX.

    # one process, two CPU devices (the reference):
    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \
        python tests/_multiworker_worker.py OUT
    # one of two processes with one CPU device each (run both):
    KERAS_BACKEND=jax python tests/_multiworker_worker.py OUT \
        --coordinator 127.0.0.1:PORT --num-processes 2 --process-id I [--kill-at EPOCH,BATCH]

Every process trains the same small convolutional network (convolution, batch
normalisation, dense) from the same seed on the same global batches, with its run folder
`OUT/worker-<id>` (backup included), and writes there `weights.npz` (initial then final
weights) and `run.json` (the epochs this call ran, the cluster it saw). With `--kill-at`,
process 1 sends itself SIGKILL at the start of that batch (epochs and batches from 0), as
a crash would end it; process 0 is left waiting for it, as in a real job.

The network is small on purpose: compiling the ResNet's training step for a two-process mesh
costs several times as long as the rest of the run on a CPU; what is tested here is `fit`,
the cluster and the backup, which a convolution and a batch normalisation exercise as well.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

import resnet_keras as rk
from resnet_keras.training import distribute, multiworker

BATCH = 16
EXAMPLES = 64  # 4 global batches per epoch, 8 images per process


def dataset():
    """Fixed synthetic images whose labels depend on them (so that training moves)."""
    rng = np.random.default_rng(0)
    images = rng.normal(size=(EXAMPLES, 8, 8, 3)).astype("float32")
    labels = (images.mean(axis=(1, 2, 3)) > 0).astype("int32") + 2 * (images[:, 0, 0, 0] > 0)
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(BATCH)


def network():
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(8, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(4),
        ]
    )


class KillAt(keras.callbacks.Callback):
    """SIGKILL this process when batch `batch` of epoch `epoch` is about to run."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            os.kill(os.getpid(), signal.SIGKILL)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--coordinator")
    parser.add_argument("--num-processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--kill-at")
    args = parser.parse_args(argv)

    if args.num_processes > 1:
        distribution = multiworker.initialize(
            args.coordinator, num_processes=args.num_processes, process_id=args.process_id
        )
    else:
        distribution = distribute.data_parallel(devices=2)
    import jax

    rk.set_determinism(0)
    with distribution.scope():
        model = network()
    initial = [keras.ops.convert_to_numpy(weight) for weight in model.weights]
    out_dir = multiworker.worker_out_dir(args.out)
    resume_epoch = multiworker.check_resume_epoch(out_dir)
    callbacks = []
    if args.kill_at and jax.process_index() == 1:
        callbacks.append(KillAt(*(int(part) for part in args.kill_at.split(","))))
    history = rk.fit(
        model,
        dataset(),
        epochs=args.epochs,
        out_dir=out_dir,
        distribution=distribution,
        callbacks=callbacks,
        verbose=0,
    )
    final = [keras.ops.convert_to_numpy(weight) for weight in model.weights]
    np.savez(out_dir / "weights.npz", *initial, *final)
    report = {
        "epochs_run": list(history.epoch),
        "resume_epoch": resume_epoch,
        "loss": [float(value) for value in history.history.get("loss", [])],
        "process_count": jax.process_count(),
        "devices": len(jax.devices()),
        "local_devices": len(jax.local_devices()),
    }
    Path(out_dir, "run.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
