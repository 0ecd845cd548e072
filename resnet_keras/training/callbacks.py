"""Callbacks that `resnet_keras.training.fit` wires by default.

Run folder layout (`out_dir`):

    backup/            the last finished epochs' weights and optimizer state (see backup.py)
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

from resnet_keras._keras_compat import learning_rate_schedule
from resnet_keras._validation import check_instance, check_path
from resnet_keras.training._common import NAN_ADVICE
from resnet_keras.training.backup import RunBackup

__all__ = [
    "NAN_ADVICE",
    "EpochTimer",
    "EpochSetter",
    "LearningRateLogger",
    "TerminateOnNaNWithAdvice",
    "default_callbacks",
    "read_history_csv",
    "repair_history_csv",
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
        schedule = learning_rate_schedule(optimizer)
        if schedule is not None:
            optimizer = getattr(optimizer, "inner_optimizer", optimizer)
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


class EpochSetter(keras.callbacks.Callback):
    """Pins a training split of `resnet_keras.data.load` to the epoch Keras is about to run.

    Its shuffle and augmentation are a function of (seed, epoch) (see
    `resnet_keras.data.epochs`), so with this callback a run resumed at epoch e sees the
    batches of epoch e of the uninterrupted run. Datasets without an epoch counter are
    left alone. Put it first, so that it runs before the epoch's first batch is drawn.

    Args:
        dataset: The training dataset passed to `model.fit`.

    Examples:
        >>> from resnet_keras.data import load
        >>> data = load("digits", batch_size=64, train_size=128)
        >>> EpochSetter(data.train).on_epoch_begin(3)
        >>> from resnet_keras.data import epoch_counter
        >>> int(epoch_counter(data.train).numpy())
        3
    """

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        from resnet_keras.data.epochs import set_epoch

        set_epoch(self.dataset, epoch)


def _readable_weights(path: Path) -> bool:
    """Whether an .h5 file opens (a kill during Keras' in-place write leaves it truncated)."""
    import h5py

    try:
        with h5py.File(path, "r"):
            return True
    except (OSError, ValueError):
        return False


def _best_so_far(history_path: Path, monitor: str, mode: str, best_path: Path):
    """Best value of `monitor` in an existing history.csv (None when there is none).

    None as well when the best checkpoint is missing or damaged, so that it is written
    again at the end of the next epoch instead of staying broken.
    """
    if not best_path.exists():
        return None
    if not _readable_weights(best_path):
        print(
            f"Note: {best_path} is damaged; it is written again after the next epoch.",
            file=sys.stderr,
        )
        return None
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
    - `RunBackup(out_dir/backup)`: saves weights and optimizer state atomically at the end of
      every epoch whose loss is finite; a later `fit` with the same `out_dir` restores them and
      continues after the last finished epoch (a half-done epoch is redone). The backup is
      kept after training, so running the same command again finds the run complete instead
      of starting over;
    - `TensorBoard(out_dir/logs)` when `tensorboard=True`.

    The CSV is written before the backup at the end of an epoch: if the process dies between the
    two, the epoch is redone and its row appears twice (`read_history_csv` keeps the last one),
    rather than the row going missing.

    Args:
        out_dir: Run folder (str or Path) or None.
        monitor: Metric for the best checkpoint; "val_*" metrics are maximised when they are
            accuracies and minimised otherwise.
        tensorboard: Also write TensorBoard logs (needs the `tensorboard` package).
        backup: Include `RunBackup` (resume after an interruption).
        checkpoint: Include the best-model checkpoint.
        nan_stream: Stream for the NaN message (default stderr).

    Returns:
        A list of callbacks, in the order they must run.

    Examples:
        >>> [type(c).__name__ for c in default_callbacks()]
        ['TerminateOnNaNWithAdvice', 'LearningRateLogger', 'EpochTimer']
    """
    check_instance("monitor", monitor, str, "a metric name such as 'val_accuracy'")
    if not monitor:
        raise ValueError("`monitor` must be a metric name such as 'val_accuracy'; received ''.")
    callbacks: list[keras.callbacks.Callback] = [
        TerminateOnNaNWithAdvice(stream=nan_stream),
        LearningRateLogger(),
        EpochTimer(),
    ]
    if out_dir is None:
        return callbacks
    out_dir = Path(check_path("out_dir", out_dir, optional=True))
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
                initial_value_threshold=_best_so_far(
                    history_path, monitor, mode, out_dir / BEST_WEIGHTS_FILE
                ),
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
        callbacks.append(RunBackup(out_dir / BACKUP_DIR))
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


def repair_history_csv(path, epochs: int, stream=None) -> int:
    """Makes history.csv agree with a run restored after `epochs` finished epochs.

    Keeps one complete row for each epoch before `epochs` (the last, if a kill made an epoch
    run twice) and drops the rest: rows of epochs the run will redo, and a line a kill or a
    full disk cut short, which `CSVLogger` would otherwise extend with the next row. The
    file is rewritten atomically. Damage is reported in one line on `stream`.

    Args:
        path: The history.csv (a missing file is fine).
        epochs: Finished epochs of the restored state.
        stream: Where to print a notice (default `sys.stderr`).

    Returns:
        The number of rows kept.

    Examples:
        >>> repair_history_csv("/nonexistent/history.csv", 3)
        0
    """
    path = Path(path)
    if not path.exists():
        return 0
    try:
        with path.open(newline="") as handle:
            lines = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        lines = []
    header = lines[0] if lines else []
    by_epoch = {}
    ahead = set()  # epochs the backup does not hold: trained again
    damaged = 0
    for row in lines[1:]:
        try:
            values = [math.nan if text in ("", "NA") else float(text) for text in row]
        except ValueError:
            values = []
        if "epoch" not in header or len(values) != len(header):
            damaged += 1
            continue
        epoch = values[header.index("epoch")]
        if math.isfinite(epoch) and 0 <= epoch < epochs:
            by_epoch[int(epoch)] = row
        elif math.isfinite(epoch) and epoch >= epochs:
            ahead.add(int(epoch))
    missing = [epoch for epoch in range(epochs) if epoch not in by_epoch]
    if damaged or missing or "epoch" not in header:
        lost = f"; no row for epoch(s) {', '.join(str(e + 1) for e in missing)}" if missing else ""
        print(
            f"Note: {path} was damaged ({damaged} incomplete line(s){lost}); kept "
            f"{len(by_epoch)} complete row(s).",
            file=stream or sys.stderr,
        )
    if len(ahead) > 1:
        # One row ahead is the normal trace of a kill between the row and the backup.
        print(
            f"Note: {path} has rows for epochs {min(ahead) + 1}-{max(ahead) + 1}, which the "
            "backup does not hold; they are trained again.",
            file=stream or sys.stderr,
        )
    if not by_epoch:
        path.unlink()  # CSVLogger starts a new file with its header
        return 0
    staging = path.with_name(f".{path.name}.tmp")
    with staging.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(by_epoch[epoch] for epoch in sorted(by_epoch))
    os.replace(staging, path)
    return len(by_epoch)
