"""Callbacks that `resnet_keras.training.fit` wires by default.

Run folder layout (`out_dir`):

    backup/            keras.callbacks.BackupAndRestore state (weights, optimizer, epoch)
    history.csv        one row per finished epoch (appended across resumed runs)
    best.weights.h5    weights of the best epoch so far (by `monitor`)
    logs/              TensorBoard event files (only with tensorboard=True)
"""

from __future__ import annotations

import csv
import importlib.util
import math
import os
import sys
import time
from pathlib import Path

import keras

from resnet_keras.training._common import NAN_ADVICE

__all__ = [
    "NAN_ADVICE",
    "EpochTimer",
    "FiniteBackupAndRestore",
    "LearningRateLogger",
    "TerminateOnNaNWithAdvice",
    "default_callbacks",
    "read_history_csv",
]

BACKUP_DIR = "backup"
HISTORY_FILE = "history.csv"
BEST_WEIGHTS_FILE = "best.weights.h5"
TENSORBOARD_DIR = "logs"


class TerminateOnNaNWithAdvice(keras.callbacks.Callback):
    """Stops training when the loss becomes NaN/inf, and says what to try.

    Like `keras.callbacks.TerminateOnNaN`, but the message lists the usual causes (LR too large, no
    warm-up, unnormalised or NaN data, float16 overflow). After training, `stopped` is True and
    `message` holds the text that was printed to stderr.

    Args:
        stream: Where to print the message (default `sys.stderr`).

    Examples:
        >>> callback = TerminateOnNaNWithAdvice()
        >>> callback.stopped
        False
    """

    def __init__(self, stream=None):
        super().__init__()
        self.stream = stream
        self.stopped = False
        self.message = ""
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(loss)
        if not math.isfinite(loss):
            self.stopped = True
            self.message = f"Epoch {self._epoch + 1}, batch {batch}: loss is {loss}. {NAN_ADVICE}"
            print(self.message, file=self.stream or sys.stderr)
            self.model.stop_training = True


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the LR of the epoch's last step to the epoch logs as "learning_rate".

    `optimizer.learning_rate` already looks one step ahead (it is the LR the *next* step will use),
    so after the epoch in which the schedule drops it would show the new value one epoch early;
    this logs the LR the epoch actually ended with. Place it before `CSVLogger`/`History` in the
    callback list so they see the value.

    Examples:
        >>> LearningRateLogger().key
        'learning_rate'
    """

    key = "learning_rate"

    def on_epoch_end(self, epoch, logs=None):
        optimizer = getattr(self.model, "optimizer", None)
        if logs is None or optimizer is None:
            return
        # A LossScaleOptimizer (mixed precision) holds the real one.
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        schedule = getattr(optimizer, "_learning_rate", None)
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            last_step = max(int(keras.ops.convert_to_numpy(optimizer.iterations)) - 1, 0)
            value = schedule(last_step)
        else:
            value = optimizer.learning_rate
        logs[self.key] = float(keras.ops.convert_to_numpy(value))


class EpochTimer(keras.callbacks.Callback):
    """Adds the training time of each epoch (seconds, validation excluded) to the logs.

    The value is logged as "train_seconds" (and lands in history.csv), so the wall time and
    images/s of a run that was interrupted and resumed can still be summed from the CSV.

    Examples:
        >>> EpochTimer().key
        'train_seconds'
    """

    key = "train_seconds"

    def __init__(self):
        super().__init__()
        self._start = None
        self._last_batch_end = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._last_batch_end = None

    def on_train_batch_end(self, batch, logs=None):
        self._last_batch_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self._start is not None:
            end = self._last_batch_end or time.perf_counter()
            logs[self.key] = end - self._start


class FiniteBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` that never backs up an epoch whose loss is NaN/inf.

    When `TerminateOnNaNWithAdvice` stops training, Keras still finishes the epoch and calls
    `on_epoch_end`; the stock callback would then save the diverged weights, and the next run
    would resume from NaN. Skipping that save makes a rerun (e.g. with a lower LR) restart from the
    last healthy epoch.

    Examples:
        >>> callback = FiniteBackupAndRestore("/tmp/run/backup")
        >>> callback.save_freq
        'epoch'
    """

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            return
        super().on_epoch_end(epoch, logs)


def _best_so_far(history_path: Path, monitor: str, mode: str):
    """Best value of `monitor` in an existing history.csv (None when there is none)."""
    rows = read_history_csv(history_path)
    values = [row[monitor] for row in rows if math.isfinite(row.get(monitor, math.nan))]
    if not values:
        return None
    return max(values) if mode == "max" else min(values)


def default_callbacks(
    out_dir=None,
    monitor: str = "val_accuracy",
    tensorboard: bool = False,
    backup: bool = True,
    checkpoint: bool = True,
    nan_stream=None,
) -> list[keras.callbacks.Callback]:
    """The callbacks `fit` uses: NaN guard, LR/time logging, history CSV, best checkpoint, backup.

    Without `out_dir` only the in-memory ones are returned (NaN guard, LR and time logging).
    With `out_dir`:

    - `CSVLogger(out_dir/history.csv, append=True)`: one row per epoch, kept across resumes;
    - `ModelCheckpoint(out_dir/best.weights.h5, save_best_only=True)` on `monitor`; after a resume
      it only overwrites the file when the previous runs' best (read from history.csv) is beaten;
    - `FiniteBackupAndRestore(out_dir/backup)` (a `BackupAndRestore`): saves weights, optimizer
      state and epoch at the end of every epoch whose loss is finite; a later `fit` with the
      same `out_dir` restarts from the last finished epoch (a half-done epoch is redone). The
      backup is kept after training, so running the same command again finds the run complete
      instead of starting over;
    - `TensorBoard(out_dir/logs)` when `tensorboard=True`.

    The CSV is written before the backup at the end of an epoch: if the process dies between the
    two, the epoch is redone and its row appears twice (`read_history_csv` keeps the last one),
    rather than the row going missing.

    Args:
        out_dir: Run folder (str or Path) or None.
        monitor: Metric for the best checkpoint; "val_*" metrics are maximised when they are
            accuracies and minimised otherwise.
        tensorboard: Also write TensorBoard logs (needs the `tensorboard` package).
        backup: Include `BackupAndRestore` (resume after an interruption).
        checkpoint: Include the best-model checkpoint.
        nan_stream: Stream for the NaN message (default stderr).

    Returns:
        A list of callbacks, in the order they must run.

    Examples:
        >>> [type(c).__name__ for c in default_callbacks()]
        ['TerminateOnNaNWithAdvice', 'LearningRateLogger', 'EpochTimer']
    """
    if not isinstance(monitor, str) or not monitor:
        raise ValueError(
            f"`monitor` must be a metric name such as 'val_accuracy', got {monitor!r}."
        )
    callbacks: list[keras.callbacks.Callback] = [
        TerminateOnNaNWithAdvice(stream=nan_stream),
        LearningRateLogger(),
        EpochTimer(),
    ]
    if out_dir is None:
        return callbacks
    if not isinstance(out_dir, (str, os.PathLike)):
        raise TypeError(f"`out_dir` must be a path (str or Path) or None, got {out_dir!r}.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    history_path = out_dir / HISTORY_FILE
    callbacks.append(keras.callbacks.CSVLogger(str(history_path), append=True))
    if checkpoint:
        mode = "max" if "acc" in monitor else "min"
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                str(out_dir / BEST_WEIGHTS_FILE),
                monitor=monitor,
                mode=mode,
                save_best_only=True,
                save_weights_only=True,
                initial_value_threshold=_best_so_far(history_path, monitor, mode),
            )
        )
    if tensorboard:
        if importlib.util.find_spec("tensorboard") is None:
            # Keras would only fail at the end of the first epoch, deep inside tf.summary.
            raise ImportError(
                "`tensorboard=True` needs the tensorboard package: pip install tensorboard"
            )
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(out_dir / TENSORBOARD_DIR)))
    if backup:
        callbacks.append(
            FiniteBackupAndRestore(
                backup_dir=str(out_dir / BACKUP_DIR), save_freq="epoch", delete_checkpoint=False
            )
        )
    return callbacks


def read_history_csv(path) -> list[dict[str, float]]:
    """Reads a history.csv written by `CSVLogger`, one dict per epoch, sorted by epoch.

    If an epoch appears more than once (a run died between writing the row and the backup and
    redid the epoch), the last row wins.

    Args:
        path: The CSV file (a missing file gives an empty list).

    Returns:
        A list of `{"epoch": ..., "loss": ..., ...}` dicts with float values.

    Examples:
        >>> read_history_csv("/nonexistent/history.csv")
        []
    """
    path = Path(path)
    if not path.exists():
        return []
    by_epoch: dict[int, dict[str, float]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            values = {}
            for key, text in row.items():
                if key is None:
                    continue
                try:
                    values[key] = float(text)
                except (TypeError, ValueError):
                    values[key] = math.nan
            if "epoch" in values and math.isfinite(values["epoch"]):
                by_epoch[int(values["epoch"])] = values
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]
