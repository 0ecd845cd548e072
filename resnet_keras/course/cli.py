"""The command line: `python -m resnet_keras train ...` and `python -m resnet_keras info`.

    python -m resnet_keras train --model resnet20 --dataset auto --epochs 10 --out runs/r20
    python -m resnet_keras info

`train` writes into the run folder: history.csv, best.weights.h5, model.keras, the figures
(training_curves.png, confusion_matrix.png, misclassified.png, lr_schedule.png) and summary.json.
Running the same command again after an interruption resumes from the last finished epoch.
Bad arguments print one line to stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from resnet_keras._validation import check_choice

__all__ = ["MODELS", "build_model", "main"]

MODELS = (
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "plain20",
    "plain56",
    "seednet",
    "seedresnet",
)
"""Model names `train --model` accepts."""

PROFILES = ("ci", "cpu", "gpu")

RUN_CONFIG_FILE = "run.json"
SUMMARY_FILE = "summary.json"
# A different model or dataset cannot continue the backup in a run folder; other arguments can.
_RUN_IDENTITY = ("model", "dataset")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (no usage block) and exits with 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


class _UsageError(Exception):
    """A problem with the arguments found after parsing (exit status 2)."""


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; received {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; received {text!r}")
    return value


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0; received {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0; received {text!r}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0; received {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number > 0; received {text!r}")
    return value


def _recipe_names():
    from resnet_keras.training.recipes import RECIPES

    return tuple(RECIPES)


def _dataset_names():
    # The names of `resnet_keras.data.load`, read when the parser is built, so that a
    # dataset registered by the caller is a choice too.
    from resnet_keras.data import dataset_names

    return dataset_names()


def _block_names():
    # Read when the parser is built, so a block registered by the caller is a choice too.
    from resnet_keras.layers import BLOCKS

    return tuple(BLOCKS)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `python -m resnet_keras` (exposed for the docs and tests)."""
    parser = _Parser(
        prog="resnet-keras",
        description="Train residual networks on CIFAR-10 (or an offline dataset) with Keras.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,info}")

    train = commands.add_parser(
        "train",
        help="train a model; rerun the same command to resume after an interruption",
        description="Train a model and write checkpoints, history, figures and a summary.",
    )
    train.error = parser.error  # one-line errors for the subcommand too
    train.add_argument("--model", default="resnet20", choices=MODELS, help="default: resnet20")
    train.add_argument(
        "--block",
        default="basic",
        choices=_block_names(),
        help="the residual block of resnetN/plainN, from resnet_keras.layers.BLOCKS "
        "(default: basic)",
    )
    train.add_argument(
        "--dataset",
        default="auto",
        choices=_dataset_names(),
        help="'auto' uses CIFAR-10 when available, the offline digits otherwise",
    )
    train.add_argument(
        "--epochs", type=_positive_int, default=None, help="default: the profile's epochs"
    )
    train.add_argument("--out", required=True, help="run folder, e.g. runs/resnet20")
    train.add_argument(
        "--batch-size", type=_positive_int, default=None, help="default: the profile's (128)"
    )
    train.add_argument(
        "--profile",
        choices=PROFILES,
        default=None,
        help="ci, cpu or gpu; default: $RESNET_KERAS_PROFILE, ci when $CI is set, else by hardware",
    )
    train.add_argument(
        "--lr", type=_positive_float, default=None, help="peak learning rate (default: 0.1)"
    )
    train.add_argument(
        "--train-size",
        type=_positive_int,
        default=None,
        help="use at most this many training images (default: the profile's)",
    )
    train.add_argument("--seed", type=_non_negative_int, default=0, help="default: 0")
    train.add_argument(
        "--recipe",
        choices=_recipe_names(),
        default=None,
        help="default: paper (paper-warmup for resnet110, as in the paper)",
    )
    train.add_argument("--data-dir", default=None, help="TFDS data directory for CIFAR-10")
    train.add_argument(
        "--deterministic",
        action="store_true",
        help="deterministic TensorFlow ops (bit-exact reruns, somewhat slower)",
    )
    train.add_argument("--tensorboard", action="store_true", help="also write TensorBoard logs")
    train.add_argument(
        "--verbose", type=int, choices=(0, 1, 2), default=1, help="Keras verbosity (default 1)"
    )

    info = commands.add_parser(
        "info",
        help="versions, devices, profile and dataset choice",
        description="Show versions, devices, the profile chosen and which dataset 'auto' uses.",
    )
    info.error = parser.error
    info.add_argument("--profile", choices=PROFILES, default=None)
    info.add_argument("--data-dir", default=None, help="TFDS data directory to look in")
    info.add_argument(
        "--no-probe",
        action="store_true",
        help="do not probe the CIFAR-10 download host (it takes up to a few seconds)",
    )
    return parser


def build_model(name: str, num_classes: int = 10, input_shape=(32, 32, 3), block="basic"):
    """Builds a model of the command line by name.

    Args:
        name: One of `MODELS`: resnet20/32/44/56/110 (`CifarResNet(depth)`), plain20/plain56
            (`CifarResNet(depth, residual=False)`), seednet, seedresnet.
        num_classes: Number of classes.
        input_shape: Image shape (height, width, channels).
        block: The block of resnetN/plainN, a name of `resnet_keras.layers.BLOCKS`; the depth
            in the model's name must suit it (e.g. 6n+2 for two-convolution blocks).

    Returns:
        A `keras.Model` that outputs logits.

    Examples:
        >>> build_model("plain20").name
        'plain20'
    """
    from resnet_keras.models import CifarResNet, SeedNet, SeedResNet

    check_choice("name", name, MODELS)
    if name.startswith("seed") and block != "basic":
        raise ValueError(f"`block` applies to resnetN and plainN, not {name}; received {block!r}.")
    if name == "seednet":
        return SeedNet(num_classes=num_classes, input_shape=input_shape)
    if name == "seedresnet":
        return SeedResNet(num_classes=num_classes, input_shape=input_shape)
    depth = int(name.removeprefix("resnet").removeprefix("plain"))
    return CifarResNet(
        depth=depth,
        block=block,
        residual=name.startswith("resnet"),
        num_classes=num_classes,
        input_shape=input_shape,
    )


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise _UsageError(
            f"argument --out: cannot write to {str(out)!r} ({error.strerror or error})"
        ) from None


def _check_run_folder(out: Path, config: dict) -> int:
    """Compares with the run already in `out`; returns the epoch a backup would resume from."""
    previous_path = out / RUN_CONFIG_FILE
    from resnet_keras.training.backup import latest_epoch

    resume_epoch = latest_epoch(out / "backup")
    if previous_path.exists():
        try:
            previous = json.loads(previous_path.read_text())
            if not isinstance(previous, dict):
                raise ValueError("not a JSON object")
        except (ValueError, OSError) as error:
            print(
                f"Note: {previous_path} is damaged ({error}); it is written again from this "
                "command's arguments.",
                file=sys.stderr,
            )
            previous = {}
        clashes = [
            f"--{key.replace('_', '-')} {previous.get(key)}"
            for key in _RUN_IDENTITY
            if key in previous and previous[key] != config[key]
        ]
        if clashes and (out / "backup").exists():
            raise _UsageError(
                f"argument --out: {str(out)!r} holds a run with {', '.join(clashes)}; rerun "
                "with those arguments to resume it, or choose another --out"
            )
        changed = [key for key in config if key in previous and previous[key] != config[key]]
        if changed and resume_epoch:
            print(
                f"Note: resuming {out} with changed {', '.join(changed)} "
                f"(was {', '.join(str(previous[key]) for key in changed)}).",
                file=sys.stderr,
            )
    return resume_epoch


def _evaluate_test(model, test, max_wrong=32):
    """Predictions on the test split; keeps only the first misclassified images."""
    labels, predictions, losses = [], [], []
    wrong_images, wrong_true, wrong_pred = [], [], []
    count = 0
    for images, batch_labels in test:
        logits = np.asarray(model.predict_on_batch(images), dtype="float64")
        batch_labels = np.asarray(batch_labels).reshape(-1)
        batch_pred = logits.argmax(axis=1)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        losses.append(-log_probs[np.arange(len(batch_labels)), batch_labels])
        labels.append(batch_labels)
        predictions.append(batch_pred)
        for index in np.flatnonzero(batch_pred != batch_labels):
            if count < max_wrong:
                wrong_images.append(np.asarray(images[index]))
                wrong_true.append(batch_labels[index])
                wrong_pred.append(batch_pred[index])
                count += 1
    labels = np.concatenate(labels)
    predictions = np.concatenate(predictions)
    return {
        "labels": labels,
        "predictions": predictions,
        "accuracy": float(np.mean(labels == predictions)),
        "errors": int(np.sum(labels != predictions)),
        "loss": float(np.mean(np.concatenate(losses))),
        "wrong": (np.asarray(wrong_images), np.asarray(wrong_true), np.asarray(wrong_pred)),
    }


def _load_data(args, profile, batch_size):
    from resnet_keras.data import OfflineDatasetWarning, load

    kwargs = profile.data_kwargs()
    kwargs.update(name=args.dataset, batch_size=batch_size, seed=args.seed)
    if args.train_size:
        kwargs["train_size"] = args.train_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OfflineDatasetWarning)  # printed once, as a note
        data = load(data_dir=args.data_dir, **kwargs)
    if data.info.notice:
        print(f"Note: {data.info.notice}", file=sys.stderr)
    return data


def _write_text(path: Path, text: str) -> None:
    """Writes a file whole or not at all: a kill mid-write leaves the old file in place."""
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(text)
    os.replace(staging, path)


def _save_model(model, out: Path) -> None:
    try:
        staging = out / ".model.tmp.keras"  # Keras wants the .keras ending
        model.save(staging)
        os.replace(staging, out / "model.keras")
    except Exception as error:  # noqa: BLE001 - a model that cannot be serialised still has weights
        model.save_weights(out / "model.weights.h5")
        print(f"Note: saved weights only, the model could not be serialised: {error}")


def _write_figures(out: Path, model, rows, scores, info, batch_size) -> None:
    from resnet_keras import plots

    figures = {
        "confusion_matrix.png": plots.plot_confusion_matrix(
            scores["labels"], scores["predictions"], info.class_names
        ),
        "misclassified.png": plots.plot_misclassified(
            *scores["wrong"],
            info,
            max_images=32,
            title=f"Misclassified test images: {scores['errors']} of {len(scores['labels'])} "
            "(predicted (true))",
        ),
    }
    if rows:
        figures["training_curves.png"] = plots.plot_history(rows, title=model.name)
    from resnet_keras._keras_compat import learning_rate_schedule

    schedule = learning_rate_schedule(model.optimizer)
    if rows and schedule is not None:  # None: a constant LR, nothing to draw
        steps_per_epoch = max(1, math.ceil(info.train_size / batch_size))
        figures["lr_schedule.png"] = plots.plot_lr_schedule(
            schedule,
            total_steps=len(rows) * steps_per_epoch,  # the epochs trained, across resumes
            steps_per_epoch=steps_per_epoch,
        )
    for name, figure in figures.items():
        figure.savefig(out / name, dpi=110)


def _train(args) -> int:
    wall_start = time.perf_counter()
    out = Path(args.out)
    _check_writable(out)

    from resnet_keras.course.profiles import detect_profile, get_profile
    from resnet_keras.determinism import set_determinism
    from resnet_keras.training import configure_precision, fit, get_recipe, read_history_csv

    profile_name, profile_reason = detect_profile(args.profile)
    profile = get_profile(profile_name)
    epochs = args.epochs or profile.epochs
    batch_size = args.batch_size or profile.batch_size
    recipe = get_recipe(args.recipe or ("paper-warmup" if args.model == "resnet110" else "paper"))
    config = {
        "model": args.model,
        "dataset": args.dataset,
        "epochs": epochs,
        "batch_size": batch_size,
        "train_size": args.train_size,
        "profile": profile.name,
        "recipe": recipe.name,
        "lr": args.lr,
        "seed": args.seed,
    }
    if args.block != "basic":  # (run folders of the default block keep their config as before)
        config["block"] = args.block
    resume_epoch = _check_run_folder(out, config)
    _write_text(out / RUN_CONFIG_FILE, json.dumps(config, indent=2) + "\n")

    print(f"Profile {profile.name}: {profile_reason}.")
    set_determinism(args.seed, op_determinism=args.deterministic)
    precision = configure_precision(profile.mixed_precision)  # before the model is built
    data = _load_data(args, profile, batch_size)
    info = data.info
    print(
        f"Data: {info.name}, {info.train_size} train / {info.validation_size} validation / "
        f"{info.test_size} test images, batch {batch_size}."
    )
    model = build_model(
        args.model, num_classes=info.num_classes, input_shape=info.image_shape, block=args.block
    )
    params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    print(f"Model: {model.name}, {params:,} trainable parameters, dtype policy {precision}.")
    if resume_epoch:
        print(f"Resuming {out} after epoch {resume_epoch} of {epochs}.")

    history = fit(
        model,
        data,
        recipe=recipe,
        out_dir=out,
        **profile.fit_kwargs(epochs=epochs),
        learning_rate=args.lr,
        tensorboard=args.tensorboard,
        verbose=args.verbose,
    )
    losses = history.history.get("loss", [])
    diverged = bool(losses) and not math.isfinite(losses[-1])
    _save_model(model, out)
    scores = _evaluate_test(model, data.test)
    rows = read_history_csv(out / "history.csv")  # the whole run, across resumes
    _write_figures(out, model, rows, scores, info, batch_size)

    train_seconds = sum(row.get("train_seconds", 0.0) for row in rows)
    images_per_second = info.train_size * len(rows) / train_seconds if train_seconds > 0 else None
    validation_accuracies = [
        row["val_accuracy"] for row in rows if math.isfinite(row.get("val_accuracy", math.nan))
    ]
    summary = {
        **config,
        "model": model.name,
        "trainable_params": params,
        "dataset": info.name,
        "dataset_source": info.source,
        "train_size": info.train_size,
        "validation_size": info.validation_size,
        "test_size": info.test_size,
        "profile_reason": profile_reason,
        "learning_rate": args.lr or recipe.learning_rate,
        "epochs_completed": len(rows),
        "resumed_from_epoch": resume_epoch,
        "deterministic": args.deterministic,
        **profile.accelerator_settings(),
        "test_accuracy": scores["accuracy"],
        "test_error_percent": 100.0 * (1.0 - scores["accuracy"]),
        "test_loss": scores["loss"],
        "best_val_accuracy": max(validation_accuracies, default=None),
        "train_time_s": train_seconds,
        "images_per_s": images_per_second,
        "wall_time_s": time.perf_counter() - wall_start,
        "stopped_on_nan": diverged,
        "versions": _versions(),
    }
    summary.pop("lr")
    files = {p.name for p in out.iterdir() if p.is_file() and not p.name.startswith(".")}
    summary["files"] = sorted(files | {SUMMARY_FILE})
    _write_text(out / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")

    speed = f"{images_per_second:,.0f} images/s" if images_per_second else "no epoch timed"
    print(
        f"\nSummary ({out / SUMMARY_FILE}):\n"
        f"  {model.name} on {info.name}: test accuracy {scores['accuracy']:.2%} "
        f"(error {summary['test_error_percent']:.2f}%), test loss {scores['loss']:.4f}\n"
        f"  epochs {len(rows)}/{epochs}; training {train_seconds:.1f} s ({speed}); "
        f"wall time of this command {summary['wall_time_s']:.1f} s"
    )
    if diverged:
        print("Training stopped because the loss became NaN (see the message above).")
        return 1
    return 0


def _versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for package in ("resnet_keras", "keras", "tensorflow", "tensorflow-datasets", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _info(args) -> int:
    import keras
    import tensorflow as tf

    from resnet_keras.course.profiles import ENV_VAR, detect_profile, get_profile

    rows = list(_versions().items())
    rows.append(("keras backend", keras.config.backend()))
    devices = tf.config.list_physical_devices()
    rows.append(("devices", ", ".join(d.name.removeprefix("/physical_device:") for d in devices)))
    if not tf.config.list_physical_devices("GPU"):
        rows.append(("", "no GPU visible to TensorFlow"))
    name, reason = detect_profile(args.profile)
    profile = get_profile(name)
    rows.append(("profile", f"{name} ({reason}; override with --profile or ${ENV_VAR})"))
    rows.append(("", profile.description))
    rows.append(
        (
            "",
            f"epochs {profile.epochs}, batch {profile.batch_size}, train size "
            f"{profile.train_size or 'all'}, mixed precision {profile.mixed_precision}, "
            f"XLA {profile.jit_compile} (both only on a GPU)",
        )
    )

    from resnet_keras.data import cifar10

    status = cifar10.status(args.data_dir, probe=not args.no_probe)
    rows.append(("TFDS data dir", status.root))
    if status.prepared:
        choice = "cifar10: it is prepared in the TFDS data directory"
    elif status.reachable:
        choice = f"cifar10: its download host {cifar10.DOWNLOAD_HOST} answers"
    elif status.reachable is None:
        choice = "cifar10 if its download host answers (not probed), otherwise digits"
    else:
        choice = "digits (offline): " + status.explanation()
    rows.append(("dataset auto", choice))
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def main(argv=None) -> int:
    """Entry point of `python -m resnet_keras` and the `resnet-keras` console script.

    Args:
        argv: Arguments without the program name (default: `sys.argv[1:]`).

    Returns:
        The exit status: 0 success, 1 training diverged or the data is unavailable, 2 bad
        arguments, 130 interrupted.

    Examples:
        >>> main(["train", "--model", "resnet21", "--out", "runs/x"])  # doctest: +SKIP
        2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        return _info(args)
    except _UsageError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.command == "train":
            print(
                f"\nInterrupted. Run the same command again to resume {args.out} from its last "
                "finished epoch.",
                file=sys.stderr,
            )
        return 130
    except Exception as error:
        from resnet_keras.data import DatasetUnavailableError
        from resnet_keras.training.backup import BackupError

        if isinstance(error, (DatasetUnavailableError, BackupError)):
            print(f"{parser.prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
