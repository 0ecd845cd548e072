"""The run folder's backup: written so that no kill or full disk can damage it, read with care.

`keras.callbacks.BackupAndRestore` writes `latest.weights.h5` in place and the epoch in a
second file after it. A kill during the write (or a full disk) leaves a truncated HDF5
file, on which the next run dies with an h5py `OSError` traceback; a kill between the two
writes pairs one epoch's weights with the previous epoch's number, and the resumed run
silently differs. It also restores the epoch through a private attribute of the model.
This module keeps the same idea (weights and optimizer state saved with
`model.save_weights` at the end of every finished epoch) and changes how it is stored:

    backup/epoch-0003/state.weights.h5   weights + optimizer state after 3 epochs
    backup/epoch-0003/state.json         {"epochs": 3, "bytes": ..., "sha256": ...}

Each state is written into a temporary folder, flushed to disk and renamed into place
(a rename is atomic on POSIX and Windows), so a state folder is complete or absent. The
last `KEEP` states are kept. On resume the newest state whose checksum matches and which
loads is used; a damaged newer one is reported in one line and the previous state is
taken; if none is usable, `BackupError` says in one line what to do. `fit` passes the
restored epoch to Keras as `initial_epoch`, a public argument.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import keras

__all__ = ["KEEP", "BackupError", "RunBackup", "latest_epoch", "restore"]

KEEP = 2
"""States kept in the backup folder: the newest and one to fall back on."""

_STATE = re.compile(r"^epoch-(\d{4,})$")
_WEIGHTS = "state.weights.h5"
_META = "state.json"
_FORMAT = 1


class BackupError(RuntimeError):
    """The backup folder holds states but none can be used; the message says what to do.

    Examples:
        >>> issubclass(BackupError, RuntimeError)
        True
    """


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    # A folder is opened read-only to flush its entries (POSIX); Windows cannot, nor needs to.
    flags = (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)) if path.is_dir() else os.O_RDWR
    try:
        handle = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _states(backup_dir: Path) -> list[tuple[int, Path]]:
    """(epochs, folder) of every state folder, newest first."""
    if not backup_dir.is_dir():
        return []
    found = []
    for entry in backup_dir.iterdir():
        match = _STATE.match(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), entry))
    return sorted(found, reverse=True)


def _check(folder: Path, epochs: int) -> Path:
    """Returns the weights file of a state folder after checking it; raises ValueError."""
    try:
        meta = json.loads((folder / _META).read_text())
    except FileNotFoundError:
        raise ValueError(f"{_META} is missing") from None
    except (OSError, ValueError) as error:
        raise ValueError(f"{_META} is unreadable ({error})") from None
    if not isinstance(meta, dict) or meta.get("epochs") != epochs or "sha256" not in meta:
        raise ValueError(f"{_META} does not describe this state")
    weights = folder / _WEIGHTS
    try:
        size = weights.stat().st_size
        digest = _sha256(weights)
    except OSError as error:
        raise ValueError(f"{_WEIGHTS} is unreadable ({error.strerror or error})") from None
    if size != meta.get("bytes") or digest != meta["sha256"]:
        raise ValueError(f"{_WEIGHTS} is truncated or changed (checksum mismatch)")
    return weights


def latest_epoch(backup_dir) -> int:
    """The epochs done by the newest intact state in `backup_dir` (0 when there is none).

    It checks the files' checksums but loads nothing, so it is cheap; `restore` may still
    fall back further if that state does not fit the model.

    Examples:
        >>> latest_epoch("/nonexistent/backup")
        0
    """
    for epochs, folder in _states(Path(backup_dir)):
        try:
            _check(folder, epochs)
        except ValueError:
            continue
        return epochs
    return 0


def restore(model: keras.Model, backup_dir, stream=None) -> int:
    """Loads the newest usable state of `backup_dir` into `model` (weights and optimizer).

    Build and compile the model, and create the optimizer's state, before calling it (`fit`
    does). A damaged newest state is reported in one line on `stream` and the one before it
    is used.

    Args:
        model: The compiled model of the run.
        backup_dir: The backup folder (it need not exist).
        stream: Where to print notices (default `sys.stderr`).

    Returns:
        The number of finished epochs restored (0 when there was nothing to restore).

    Raises:
        BackupError: when the folder holds states and none of them is usable, or they were
            written by another model.

    Examples:
        >>> restore(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), "/nope")
        0
    """
    backup_dir = Path(backup_dir)
    states = _states(backup_dir)
    damaged = []
    for epochs, folder in states:
        try:
            weights = _check(folder, epochs)
        except ValueError as error:
            damaged.append(f"{folder.name}: {error}")
            continue
        try:
            model.load_weights(weights)
        except Exception as error:  # noqa: BLE001 - intact file, other model: say so in one line
            reason = " ".join(str(error).split())[:200]
            raise BackupError(
                f"{folder} does not fit this model ({reason}); it was written by another "
                "model or optimizer. Train with the run's original settings, or use another "
                "run folder."
            ) from None
        if damaged:
            print(
                f"Note: {backup_dir}: {'; '.join(damaged)}. Resuming from {folder.name}, the "
                "last intact state.",
                file=stream or sys.stderr,
            )
        return epochs
    if not states and (backup_dir / "latest.weights.h5").exists():
        raise BackupError(
            f"{backup_dir} holds a backup of keras.callbacks.BackupAndRestore, which this "
            f"version does not resume. Delete {backup_dir} to train this run again from the "
            "first epoch, or use another run folder."
        )
    if damaged:
        raise BackupError(
            f"{backup_dir} holds no usable state ({'; '.join(damaged)}). Delete {backup_dir} "
            "to train this run again from the first epoch, or use another run folder."
        )
    return 0


class RunBackup(keras.callbacks.Callback):
    """Backs up weights and optimizer state at the end of every epoch, atomically.

    Hand-written because `keras.callbacks.BackupAndRestore` writes in place (see the module
    docstring). An epoch whose loss is NaN or infinite is not backed up, so a rerun (with a
    lower learning rate, say) restarts from the last healthy epoch. Restoring is `restore`'s
    job, which `fit` calls before training.

    Args:
        backup_dir: The backup folder (created when needed).
        keep: How many states to keep (>= 1).

    Examples:
        >>> RunBackup("/tmp/run/backup").keep
        2
    """

    def __init__(self, backup_dir, keep: int = KEEP):
        super().__init__()
        from resnet_keras._validation import check_positive_int

        self.backup_dir = Path(backup_dir)
        self.keep = check_positive_int("keep", keep)

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            return
        self.save(epoch + 1)

    def save(self, epochs: int) -> Path:
        """Writes the state after `epochs` finished epochs; returns its folder."""
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.backup_dir.glob(".epoch-*"):  # a kill during an earlier save
            shutil.rmtree(leftover, ignore_errors=True)
        final = self.backup_dir / f"epoch-{epochs:04d}"
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=self.backup_dir))
        try:
            weights = staging / _WEIGHTS
            self.model.save_weights(weights)
            _fsync(weights)
            meta = {
                "format": _FORMAT,
                "epochs": epochs,
                "bytes": weights.stat().st_size,
                "sha256": _sha256(weights),
            }
            (staging / _META).write_text(json.dumps(meta, indent=2) + "\n")
            _fsync(staging / _META)
            if final.exists():  # a damaged state this run fell back past
                shutil.rmtree(final)
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _fsync(self.backup_dir)
        for _, older in _states(self.backup_dir)[self.keep :]:
            shutil.rmtree(older, ignore_errors=True)
        return final
