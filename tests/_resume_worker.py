"""A training process for the resume tests: `rk.fit` on the digits, killed where it is told.

    python tests/_resume_worker.py OUT [--kill-at EPOCH STEP] [--kill-in-save EPOCHS] [--recipe R]

`--kill-at` sends SIGKILL to this process before training step STEP of epoch EPOCH (both
from 0), as an out-of-memory killer or a closed laptop would: no Python cleanup runs.
`--kill-in-save` kills it while the backup after EPOCHS epochs is half written. Without
either, training runs to the end and the final weights go to OUT/final.npz.
"""

from __future__ import annotations  # noqa: I001 - resnet_keras before keras, as the course does

import argparse
import os
import signal
import sys

import resnet_keras as rk
import keras
import numpy as np

from resnet_keras.data import load

EPOCHS = 3


class KillAt(keras.callbacks.Callback):
    def __init__(self, epoch, step):
        super().__init__()
        self.at = (epoch, step)
        self.epoch = -1

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            os.kill(os.getpid(), signal.SIGKILL)


def kill_during_save(epochs):
    """Makes the backup after `epochs` epochs die half-way through writing its weights."""
    original = keras.Model.save_weights

    def save_weights(model, filepath, *args, **kwargs):
        original(model, filepath, *args, **kwargs)
        if f"epoch-{epochs:04d}" in str(filepath):
            size = os.path.getsize(filepath)
            with open(filepath, "r+b") as handle:
                handle.truncate(size // 2)
            os.kill(os.getpid(), signal.SIGKILL)

    keras.Model.save_weights = save_weights


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--kill-at", nargs=2, type=int, default=None)
    parser.add_argument("--kill-in-save", type=int, default=None)
    parser.add_argument("--recipe", default="paper")
    args = parser.parse_args(argv)

    rk.set_determinism(0)
    data = load("digits", batch_size=32, train_size=192, validation_size=64, test_size=64)
    # A new process builds a fresh model; the backup must replace its weights.
    model = rk.CifarResNet(depth=8, num_classes=data.info.num_classes)
    callbacks = [KillAt(*args.kill_at)] if args.kill_at else []
    if args.kill_in_save is not None:
        kill_during_save(args.kill_in_save)
    rk.fit(
        model,
        data,
        epochs=EPOCHS,
        out_dir=args.out,
        callbacks=callbacks,
        recipe=args.recipe,
        verbose=0,
    )
    np.savez(os.path.join(args.out, "final.npz"), *[np.asarray(w) for w in model.weights])
    return 0


if __name__ == "__main__":
    sys.exit(main())
