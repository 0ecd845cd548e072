"""The command line: `python -m resnet_keras train|predict|export|info ...`.

    python -m resnet_keras train --model resnet20 --dataset auto --epochs 10 --out runs/r20
    python -m resnet_keras predict --model runs/r20/model.keras cat.png dog.jpg
    python -m resnet_keras export --model runs/r20/model.keras
    python -m resnet_keras info

`train` writes into the run folder: history.csv, best.weights.h5, model.keras, the figures
(training_curves.png, confusion_matrix.png, misclassified.png, lr_schedule.png) and summary.json,
which records the class names and the normalisation (`pixel_mean`, `pixel_std`) of the data.
Running the same command again after an interruption resumes from the last finished epoch.
`train --devices N [--sync-bn]` trains data-parallel on N devices with the backend's engine
(`resnet_keras.training.distribute`); `--batch-size` is then the global batch, split over them.

`predict` loads a run's model.keras with the summary.json beside it and prints the top-k
classes of each image with their probabilities, then the time the prediction and the model's
loading took (benchmarks/RESULTS.md, section predict, has the latencies measured). `export`
writes the model with its normalisation as a TensorFlow SavedModel whose `serve` signature
takes uint8 images (`resnet_keras.inference.export_saved_model`).
Bad arguments print one line to stderr and exit with status 2; an image that cannot be read
or has another size prints one line, the other images are still predicted, and the exit
status is 1.
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
# What run folders written before `--devices` existed trained on: one device, no engine.
_OLD_RUN_DEFAULTS = {"devices": "auto", "engine": None, "replicas": 1, "batch_norm": "global batch"}

_MULTI_WORKER_ADVICE = (
    "TF_CONFIG is set, but Keras 3's Model.fit cannot train under TensorFlow's "
    "MultiWorkerMirroredStrategy (keras-team/keras#20585); train on this host's devices with "
    "--devices (unset TF_CONFIG), or across hosts on JAX: KERAS_BACKEND=jax with "
    "KERAS_DISTRIBUTION_JOB_ADDRESSES, KERAS_DISTRIBUTION_NUM_PROCESSES and "
    "KERAS_DISTRIBUTION_PROCESS_ID set on each host"
)


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


def _devices(text):
    if text == "auto":
        return text
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be 'auto' or an integer >= 1; received {text!r}"
        ) from None


def _add_device_arguments(parser):
    from resnet_keras.training.distribute import ENGINES

    parser.add_argument(
        "--devices",
        type=_devices,
        default="auto",
        help="devices to train on, data-parallel: 'auto' (default: every GPU or TPU when there "
        "are two or more, else one device) or a number; on a machine without accelerators N > 1 "
        "splits the CPU into N logical devices (slower than one: it shows how it works)",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="data-parallel engine: auto (the backend's: mirrored on TensorFlow, data_parallel "
        "on JAX; the PyTorch backend has none), mirrored (tf.distribute.MirroredStrategy) or "
        "data_parallel (keras.distribution.DataParallel)",
    )


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
        description="Train residual networks on CIFAR-10 (or an offline dataset) with Keras, "
        "then predict with them or export them.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="{train,predict,export,info}"
    )

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
        "--batch-size",
        type=_positive_int,
        default=None,
        help="the GLOBAL batch: on N devices each takes batch/N images, so it must be a "
        "multiple of N (default: the profile's, 128)",
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
    _add_device_arguments(train)
    train.add_argument(
        "--sync-bn",
        action="store_true",
        help="synchronised batch normalisation: statistics of the global batch, not of each "
        "device's share (per device is the paper's; on JAX and on one device they are the "
        "global batch's anyway)",
    )
    train.add_argument(
        "--verbose", type=int, choices=(0, 1, 2), default=1, help="Keras verbosity (default 1)"
    )

    predict = commands.add_parser(
        "predict",
        help="the top classes of images, by the model of a run folder",
        description="Print the most probable classes of images with a run's model.keras and "
        "the class names and normalisation that train recorded in the summary.json beside it.",
    )
    predict.error = parser.error
    predict.add_argument(
        "--model", required=True, help="the model.keras of a run folder, e.g. runs/r20/model.keras"
    )
    predict.add_argument(
        "images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...: what Pillow reads)"
    )
    predict.add_argument(
        "--top-k",
        type=_positive_int,
        default=3,
        help="classes shown per image (default: 3; at most the number of classes)",
    )
    predict.add_argument(
        "--resize",
        action="store_true",
        help="resize images of another size to the model's (default: report them, skip them)",
    )

    export = commands.add_parser(
        "export",
        help="write a run's model as a TensorFlow SavedModel that takes uint8 images",
        description="Write a run's model.keras with its normalisation and a softmax as a "
        "TensorFlow SavedModel: signature 'serve' takes uint8 images and returns probabilities, "
        "class_id and class_name.",
    )
    export.error = parser.error
    export.add_argument(
        "--model", required=True, help="the model.keras of a run folder, e.g. runs/r20/model.keras"
    )
    export.add_argument(
        "--out", default=None, help="SavedModel folder (default: saved_model beside the model)"
    )

    info = commands.add_parser(
        "info",
        help="versions, devices, profile and dataset choice",
        description="Show versions, devices, the profile chosen and which dataset 'auto' uses.",
    )
    info.error = parser.error
    info.add_argument("--profile", choices=PROFILES, default=None)
    info.add_argument("--data-dir", default=None, help="TFDS data directory to look in")
    _add_device_arguments(info)
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
        previous = {**_OLD_RUN_DEFAULTS, **previous} if previous else previous
        changed = [key for key in config if key in previous and previous[key] != config[key]]
        if changed and resume_epoch:
            # The backup holds plain values (weights, optimizer state), so a run can continue
            # on another number of devices; the global batch is the same, and with the same
            # batch normalisation the run is the same up to float rounding.
            print(
                f"Note: resuming {out} with changed {', '.join(changed)} "
                f"(was {', '.join(str(previous[key]) for key in changed)}).",
                file=sys.stderr,
            )
    return resume_epoch


def _device_kind(name: str) -> str:
    # "/device:GPU:0" (TensorFlow) or "gpu:0" (JAX) -> "GPU".
    return name.split(":")[-2].rsplit("/", 1)[-1].upper()


def _set_up_devices(args, command="train") -> dict:
    """The data-parallel engine `--devices` and `--engine` ask for, checked in one line each.

    Runs before the backend initialises, so that it can still split the CPU into logical
    devices. Returns the plan: `distribution` (the engine, or None for one device) and what
    summary.json and `info` report about it.
    """
    import keras

    from resnet_keras.training import distribute

    backend = keras.backend.backend()
    if command == "train" and backend == "tensorflow" and os.environ.get("TF_CONFIG"):
        raise _UsageError(_MULTI_WORKER_ADVICE)
    wanted = args.devices if isinstance(args.devices, int) else 1
    if backend not in ("tensorflow", "jax") and (args.engine != "auto" or wanted > 1):
        option = "--engine" if args.engine != "auto" else "--devices"
        raise _UsageError(
            f"argument {option}: the {backend} backend has no data-parallel engine here, so it "
            "trains on one device; use KERAS_BACKEND=tensorflow (tf.distribute) or "
            "KERAS_BACKEND=jax (keras.distribution) to train on several"
        )
    logical_cpus = False
    # One logical device per core at most: more would only take turns on the same cores.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if min(wanted, cores or 1) > 1:
        try:
            logical_cpus = distribute.split_host_cpu(min(wanted, cores or 1))
        except RuntimeError as error:  # only where main() runs in a process that trained before
            raise _UsageError(f"argument --devices: {_one_line(error)}") from None
    processes = 1
    joined = backend == "jax" and any(
        os.environ.get(name) for name in distribute.MULTI_PROCESS_VARIABLES
    )
    if command == "train":
        try:
            processes = distribute.initialize_multi_process()
        except Exception as error:  # noqa: BLE001 - whatever JAX says, in one line
            names = ", ".join(distribute.MULTI_PROCESS_VARIABLES)
            raise _UsageError(
                f"keras.distribution.initialize() failed with {names} as set "
                f"({type(error).__name__}: {_one_line(error)[:300]})"
            ) from None
    try:  # the engine first (devices=1 creates nothing), so that its line names --engine
        distribute.data_parallel(devices=1, engine=args.engine)
    except ValueError as error:
        raise _UsageError(f"argument --engine: {_one_line(error)}") from None
    try:
        distribution = distribute.data_parallel(devices=args.devices, engine=args.engine)
    except ValueError as error:
        cpus = ""
        if not distribute.visible_devices("accelerators"):
            cpus = f" (a CPU is split into at most one device per core: {cores})"
        raise _UsageError(f"argument --devices: {_one_line(error).rstrip('.')}{cpus}") from None
    names = distribute.visible_devices()
    return {
        "distribution": distribution,
        "engine": distribute.engine_name(distribution),
        "replicas": distribute.replicas(distribution),
        "device_kind": _device_kind(names[0]),
        "visible_devices": len(names),
        "logical_cpu_devices": logical_cpus,
        "processes": processes,
        "joined_processes": joined and command == "train",
        "backend": backend,
    }


def _batch_norm_setting(args, plan) -> tuple[bool, str]:
    """(`fit`'s synchronized_batch_norm, what summary.json records) for `--sync-bn`.

    `--sync-bn` on one device is allowed, so that one command line serves a machine with one
    GPU and one with several (`--devices auto`). The statistics there are the whole batch's
    either way; on TensorFlow Keras computes them with its own ops instead of the fused
    kernel, which rounds as a synchronised multi-device run does (1e-5 of each other in
    tests/test_distribute.py, where the fused kernel is 1e-4 away).
    """
    if plan["replicas"] == 1:
        if args.sync_bn:
            print(
                "Note: --sync-bn on one device: the batch statistics are the whole batch's "
                "anyway (computed by Keras' ops, not the fused kernel).",
                file=sys.stderr,
            )
        return args.sync_bn, "global batch"
    if plan["backend"] == "jax":
        if args.sync_bn:
            print(
                "Note: --sync-bn changes nothing on JAX: keras.distribution normalises with the "
                "global batch's statistics anyway.",
                file=sys.stderr,
            )
        return False, "global batch"
    return args.sync_bn, "global batch" if args.sync_bn else "per replica"


def _check_split_batches(plan, info, batch_size) -> None:
    """On JAX every batch, the last partial one too, must split evenly over the devices."""
    count = plan["replicas"]
    if count == 1 or plan["backend"] != "jax":
        return  # tf.distribute splits an uneven last batch as evenly as it can
    for option, split, size in (
        ("--train-size", "training", info.train_size),
        ("--train-size", "validation", info.validation_size),
    ):
        last = size % batch_size
        if last % count:
            raise _UsageError(
                f"argument {option}: on JAX every batch must split evenly over the {count} "
                f"devices, but the last {split} batch has {last} images ({size} images in "
                f"batches of {batch_size}); choose sizes that are multiples of {count}"
            )


def _evaluate_test(model, test, max_wrong=32, replicated=False):
    """Predictions on the test split; keeps only the first misclassified images.

    A model created under an engine is called directly (`replicated`): under
    MirroredStrategy `predict_on_batch` returned each replica's outputs for the whole batch
    (measured: 64 rows for a batch of 32 on 2 devices), and under keras.distribution a last
    batch that does not split over the devices would fail. Outside the engine's scope the
    call computes the whole batch on one device, from the replicated weights.
    """
    import keras

    def predict(images):
        if replicated:
            return keras.ops.convert_to_numpy(model(images, training=False))
        return model.predict_on_batch(images)

    labels, predictions, losses = [], [], []
    wrong_images, wrong_true, wrong_pred = [], [], []
    count = 0
    for images, batch_labels in test:
        logits = np.asarray(predict(images), dtype="float64")
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

    from resnet_keras.course.profiles import detect_profile, get_profile
    from resnet_keras.determinism import set_determinism
    from resnet_keras.training import configure_precision, fit, get_recipe, read_history_csv
    from resnet_keras.training.distribute import distribution_scope

    profile_name, profile_reason = detect_profile(args.profile)
    profile = get_profile(profile_name)
    epochs = args.epochs or profile.epochs
    batch_size = args.batch_size or profile.batch_size
    plan = _set_up_devices(args)  # before anything runs on the backend
    replicas = plan["replicas"]
    if batch_size % replicas:
        raise _UsageError(
            f"argument --batch-size: the global batch of {batch_size} images does not split "
            f"evenly over {replicas} devices (each takes batch/{replicas}); pass a multiple "
            f"of {replicas}"
        )
    synchronized, batch_norm = _batch_norm_setting(args, plan)
    _check_writable(out)
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
        "devices": args.devices,
        "engine": plan["engine"],
        "replicas": replicas,
        "batch_norm": batch_norm,
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
    _check_split_batches(plan, info, batch_size)
    if plan["joined_processes"]:
        print(
            f"Processes: {plan['processes']} joined by keras.distribution.initialize() (each "
            "loads the data and shards each global batch by its process id)."
        )
    if replicas > 1:
        print(
            f"Devices: {replicas} {plan['device_kind']} replicas on engine {plan['engine']}"
            f"{' (logical CPU devices)' if plan['logical_cpu_devices'] else ''}, "
            f"{batch_size // replicas} images each per global batch of {batch_size}, "
            f"batch norm statistics of the {batch_norm}."
        )
    # The model's variables are mirrored (or replicated) only if created under the engine.
    with distribution_scope(plan["distribution"]):
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
        distribution=plan["distribution"],
        synchronized_batch_norm=synchronized,
        verbose=args.verbose,
    )
    losses = history.history.get("loss", [])
    diverged = bool(losses) and not math.isfinite(losses[-1])
    _save_model(model, out)
    # (On JAX `predict_on_batch` outside the engine's scope takes any batch, and is compiled.)
    mirrored = replicas > 1 and plan["backend"] == "tensorflow"
    scores = _evaluate_test(model, data.test, replicated=mirrored)
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
        # What `predict` and `export` need to turn pixels into the model's inputs and its
        # outputs into names (resnet_keras.inference.with_preprocessing).
        **_preprocessing_record(info),
        "profile_reason": profile_reason,
        "learning_rate": args.lr or recipe.learning_rate,
        "epochs_completed": len(rows),
        "resumed_from_epoch": resume_epoch,
        "deterministic": args.deterministic,
        "synchronized_batch_norm": args.sync_bn,
        "device_kind": plan["device_kind"],
        "logical_cpu_devices": plan["logical_cpu_devices"],
        "processes": plan["processes"],
        "keras_backend": plan["backend"],
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


def _preprocessing_record(info) -> dict:
    """summary.json's class names and per-channel normalisation (0..1 pixel scale)."""
    channels = info.image_shape[-1]
    return {
        "class_names": list(info.class_names),
        # Unnormalised images (`normalize=False`) are the pixels on the 0..1 scale.
        "pixel_mean": list(info.mean) if info.mean is not None else [0.0] * channels,
        "pixel_std": list(info.std) if info.std is not None else [1.0] * channels,
    }


_PREPROCESSING_KEYS = ("class_names", "pixel_mean", "pixel_std")


def _one_line(error) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _read_preprocessing(model_path: Path):
    """The class names, mean and std that `train` recorded beside `model_path`."""
    summary_path = model_path.parent / SUMMARY_FILE
    rerun = (
        f"rerun the train command that wrote {str(model_path.parent)!r} (on a finished run it "
        "trains nothing and writes summary.json again)"
    )
    try:
        summary = json.loads(summary_path.read_text())
    except FileNotFoundError:
        raise _UsageError(
            f"argument --model: no {SUMMARY_FILE} beside {str(model_path)!r}; the class names "
            "and the normalisation are read from the summary that `python -m resnet_keras "
            "train` writes into its run folder: pass the model.keras of a run folder"
        ) from None
    except (OSError, ValueError) as error:
        raise _UsageError(
            f"argument --model: cannot read {str(summary_path)!r} ({_one_line(error)}); {rerun}"
        ) from None
    missing = [
        key for key in _PREPROCESSING_KEYS if not isinstance(summary, dict) or key not in summary
    ]
    if missing:
        raise _UsageError(
            f"argument --model: {str(summary_path)!r} has no {', '.join(missing)} (written "
            f"before train recorded them); {rerun}"
        )
    return tuple(summary[key] for key in _PREPROCESSING_KEYS)


def _load_run_model(model_text: str):
    """`(model, classifier, class_names, mean, std, seconds)` of a run's model file.

    `classifier` is the model with its normalisation and softmax; `seconds` the time that
    loading the file and building it took.
    """
    path = Path(model_text)
    if not path.is_file():
        problem = "is a folder; pass the model.keras inside it" if path.is_dir() else "no such file"
        raise _UsageError(
            f"argument --model: {str(path)!r}: {problem} (`python -m resnet_keras train --out R` "
            "writes R/model.keras)"
        )
    class_names, mean, std = _read_preprocessing(path)
    start = time.perf_counter()
    import keras

    from resnet_keras.inference import with_preprocessing

    try:
        # compile=False: predicting needs neither the optimizer nor the loss.
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 - whatever is wrong with the file, one line
        raise _UsageError(
            f"argument --model: cannot load {str(path)!r} as a Keras model "
            f"({type(error).__name__}: {_one_line(error)[:300]})"
        ) from None
    try:
        classifier = with_preprocessing(model, mean, std)
        if not (isinstance(class_names, list) and len(class_names) == model.output_shape[-1]):
            raise ValueError(
                f"{model.output_shape[-1]} classes, class_names {str(class_names)[:200]}"
            )
    except (TypeError, ValueError) as error:
        raise _UsageError(
            f"argument --model: {str(path.parent / SUMMARY_FILE)!r} does not fit the model "
            f"({_one_line(error)})"
        ) from None
    return model, classifier, class_names, mean, std, time.perf_counter() - start


# Keras' colour modes (Pillow conversions) by the model's number of input channels.
_COLOR_MODES = {1: "grayscale", 3: "rgb", 4: "rgba"}


class _ImageError(Exception):
    """An image that cannot be predicted; the message says why, in a few words."""


def _read_image(path: str, image_shape, resize: bool) -> np.ndarray:
    """One image as uint8 `(height, width, channels)` for a model of `image_shape`."""
    import keras
    from PIL import UnidentifiedImageError

    height, width, channels = image_shape
    target = (height, width) if resize and height and width else None
    try:
        image = keras.utils.load_img(
            path, color_mode=_COLOR_MODES[channels], target_size=target, interpolation="bilinear"
        )
    except FileNotFoundError:
        raise _ImageError("no such file") from None
    except IsADirectoryError:
        raise _ImageError("a folder, not an image file") from None
    except UnidentifiedImageError:
        raise _ImageError("not an image file (Pillow cannot read it)") from None
    except Exception as error:  # noqa: BLE001 - a damaged file, a permission: one line each
        reason = getattr(error, "strerror", None) or _one_line(error)
        raise _ImageError(f"cannot read it ({reason})") from None
    if (width and image.width != width) or (height and image.height != height):
        raise _ImageError(
            f"{image.width}x{image.height} pixels, the model takes {width}x{height} "
            "(width x height); pass --resize to resize it"
        )
    return keras.utils.img_to_array(image, dtype="uint8")


def _batches(arrays, size=64):
    """Consecutive arrays of one shape stacked into batches of at most `size`."""
    batch = []
    for array in arrays:
        if batch and (len(batch) == size or array.shape != batch[0].shape):
            yield np.stack(batch)
            batch = []
        batch.append(array)
    if batch:
        yield np.stack(batch)


def _first_call_fastest(classifier):
    """The model call `predict` makes: numpy batch in, numpy probabilities out.

    The command calls the model once per batch in a new process, so what counts is the
    first call (benchmarks/predict.py measures each backend's calls side by side, numbers
    in benchmarks/RESULTS.md). On TensorFlow and PyTorch a direct call runs eagerly at
    once, where `predict_on_batch` traces a function first; on JAX `predict_on_batch`
    compiles the whole model with `jax.jit` once, sooner than the eager call compiles each
    operation on its own.
    """
    import keras

    if keras.backend.backend() == "jax":
        return classifier.predict_on_batch
    return lambda batch: keras.ops.convert_to_numpy(classifier(batch, training=False))


def _predict(args) -> int:
    _, classifier, class_names, _, _, load_seconds = _load_run_model(args.model)
    if args.top_k > len(class_names):
        raise _UsageError(
            f"argument --top-k: at most the number of classes ({len(class_names)}); "
            f"received {args.top_k}"
        )
    image_shape = classifier.input_shape[1:]
    if image_shape[-1] not in _COLOR_MODES:
        raise _UsageError(
            f"argument --model: the model takes {image_shape[-1]} channels; images have 1, 3 "
            "or 4 (grey, RGB, RGBA)"
        )
    names, arrays, failed = [], [], 0
    for path in args.images:
        try:
            arrays.append(_read_image(path, image_shape, args.resize))
            names.append(path)
        except _ImageError as error:
            print(f"{path}: {error}", file=sys.stderr)
            failed += 1
    if not arrays:
        return 1
    call = _first_call_fastest(classifier)
    start = time.perf_counter()
    probabilities = np.concatenate([call(batch) for batch in _batches(arrays)])
    predict_ms = 1000.0 * (time.perf_counter() - start)
    for path, scores in zip(names, probabilities):
        top = np.argsort(-scores, kind="stable")[: args.top_k]
        print(f"{path}: " + ", ".join(f"{class_names[i]} {scores[i]:.1%}" for i in top))
    count = len(arrays)
    print(
        f"Predicted {count} image{'s' if count != 1 else ''} in {predict_ms:.1f} ms "
        f"(model loaded in {load_seconds:.2f} s)."
    )
    return 1 if failed else 0


def _export(args) -> int:
    from resnet_keras.inference import SERVE_ENDPOINT, export_saved_model

    model, classifier, class_names, mean, std, _ = _load_run_model(args.model)
    out = Path(args.out) if args.out else Path(args.model).parent / "saved_model"
    if out.exists() and not out.is_dir():
        raise _UsageError(f"argument --out: {str(out)!r} is a file, not a folder")
    start = time.perf_counter()
    try:
        export_saved_model(model, out, mean=mean, std=std, class_names=class_names)
    except RuntimeError as error:  # a backend without Keras' SavedModel export
        raise _UsageError(_one_line(error)) from None
    except OSError as error:
        raise _UsageError(
            f"argument --out: cannot write to {str(out)!r} ({error.strerror or error})"
        ) from None
    shape = ", ".join("?" if size is None else str(size) for size in classifier.input_shape[1:])
    print(f"SavedModel written to {out} in {time.perf_counter() - start:.1f} s.")
    print(
        f"Signature '{SERVE_ENDPOINT}': uint8 images [batch, {shape}] -> probabilities, "
        f"class_id, class_name ({len(class_names)} classes). Call it with TensorFlow alone:"
    )
    print(
        f"  import tensorflow as tf; served = tf.saved_model.load({str(out)!r}); "
        f"served.{SERVE_ENDPOINT}(images)['class_name']"
    )
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


def _data_parallel_rows(args, plan) -> list[tuple[str, str]]:
    """`info`'s lines on the devices the backend sees and the engine `train` would use."""
    count, kind, backend = plan["visible_devices"], plan["device_kind"], plan["backend"]
    found = f"{count} {kind} device{'s' if count != 1 else ''} visible to {backend}"
    if plan["logical_cpu_devices"]:
        found += f" (the CPU split into logical devices by --devices {args.devices})"
    asked = f"--devices {args.devices}" + (
        f" --engine {args.engine}" if args.engine != "auto" else ""
    )
    if plan["distribution"] is None:
        has_engine = backend in ("tensorflow", "jax")
        engine = "one device, no engine" + ("" if has_engine else f" ({backend} has none)")
    else:
        engine = f"engine {plan['engine']} over {plan['replicas']} replicas"
    return [("data parallel", found), ("", f"train {asked}: {engine}")]


def _info(args) -> int:
    import keras

    plan = _set_up_devices(args, command="info")  # before the backend initialises
    import tensorflow as tf

    from resnet_keras.course.profiles import ENV_VAR, detect_profile, get_profile

    rows = list(_versions().items())
    rows.append(("keras backend", keras.config.backend()))
    devices = tf.config.list_physical_devices()
    rows.append(("devices", ", ".join(d.name.removeprefix("/physical_device:") for d in devices)))
    if not tf.config.list_physical_devices("GPU"):
        rows.append(("", "no GPU visible to TensorFlow"))
    rows += _data_parallel_rows(args, plan)
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
        The exit status: 0 success, 1 training diverged, the data is unavailable or an
        image could not be predicted, 2 bad arguments (a model or summary.json that cannot be
        read too), 130 interrupted.

    Examples:
        >>> main(["train", "--model", "resnet21", "--out", "runs/x"])  # doctest: +SKIP
        2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        commands = {"train": _train, "predict": _predict, "export": _export, "info": _info}
        return commands[args.command](args)
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
