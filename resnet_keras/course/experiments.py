"""The training runs that notebooks 07 and 08 repeat over seeds, and a pool that runs them.

A claim about training ("plain-56 trains worse than plain-20") holds only if it holds from
several random initialisations, so notebook 07 trains each network from three seeds: 18 small
runs. On a CPU one TensorFlow process spends most of a small network's step dispatching tiny
kernels and keeps about one core busy; `run_parallel` runs the runs in `jobs` worker
processes at once (spawned, not forked: a forked child of a process that has run TensorFlow
can crash), which on two cores finishes the list in about half the time. Each run is a plain
function a learner can read (`train_cifar_network`, `train_seed_network`): it loads the
shipped digits, seeds everything, builds, trains and returns the per-epoch errors.

Python's `concurrent.futures.ProcessPoolExecutor` does the pooling; what is written here is
only the choice of how many workers and the progress line per finished run.

Examples:

>>> budget = dict(image_size=8, train_size=64, epochs=1, batch_size=32, learning_rate=0.02)
>>> runs = train_cifar_network(depth=8, residual=True, seeds=(0, 1), budget=budget)
>>> len(runs), len(runs[0]["training_error"])
(2, 1)
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import time

from resnet_keras import _validation

_BUDGET_KEYS = ("image_size", "train_size", "epochs", "batch_size", "learning_rate")


def _digits(budget):
    """The shipped digits at the budget's size: (info, training batches, test batches)."""
    from resnet_keras import data
    from resnet_keras.course.budgets import shrink

    missing = [key for key in _BUDGET_KEYS if key not in budget]
    if missing:
        raise ValueError(f"`budget` must have the keys {_BUDGET_KEYS}; missing {missing}.")
    # The same images in the same order for every run: only the seed of the weights differs.
    loaded = data.load(
        "digits",
        batch_size=budget["batch_size"],
        train_size=budget["train_size"],
        validation_size=0,
        augment=False,
    )
    side = budget["image_size"]
    return loaded.info, shrink(loaded.train, side), shrink(loaded.test, side)


def _errors(history, seconds):
    return {
        "training_error": [1.0 - value for value in history["accuracy"]],
        "test_error": [1.0 - value for value in history["val_accuracy"]],
        "training_loss": list(history["loss"]),
        "seconds": seconds,
    }


def train_cifar_network(depth, residual, seeds, budget, save_dir=None):
    """Trains `rk.CifarResNet(depth, residual=residual)` on the digits, once per seed.

    The recipe is `rk.fit`'s default (SGD with momentum 0.9, the learning rate divided by 10 at
    50 % and 75 % of the run, weight decay 1e-4) at `budget["learning_rate"]`. The first seed
    goes through `rk.fit`; the later ones reuse its compiled model, restarted (`_restart`):
    tracing the training step is most of a short run's time (a 56-layer network: about 10 s,
    against about 1.4 s per epoch of 1,024 digits on a CPU), and a restarted model trains
    exactly as a new one would.

    Args:
        depth: 6n+2 (20, 56, ...).
        residual: False trains the plain network of the same depth.
        seeds: the seeds of the weights (and of every other random choice), e.g. `(0, 1, 2)`;
            the data order is the same for all.
        budget: a dict with `image_size`, `train_size`, `epochs`, `batch_size`, `learning_rate`.
        save_dir: optional folder; each trained model is saved there as `NAME_seedS.keras`
            (e.g. `resnet56_seed0.keras`).

    Returns:
        One dict per seed with the per-epoch lists `training_error` (the running error of
        each epoch, as the paper's thin curves), `test_error` and `training_loss`, and `seconds`.
    """
    import resnet_keras as rk
    from resnet_keras.training import EpochSetter, default_callbacks

    info, train, test = _digits(budget)
    side = budget["image_size"]
    compiled, runs = None, []
    for seed in _seeds(seeds):
        rk.set_determinism(seed)
        model = rk.CifarResNet(
            depth, residual=residual, num_classes=info.num_classes, input_shape=(side, side, 3)
        )
        start = time.perf_counter()
        if compiled is None:
            history = rk.fit(
                model,
                train,
                epochs=budget["epochs"],
                validation_data=test,
                learning_rate=budget["learning_rate"],
                verbose=0,
            )
            compiled = model
        else:
            model = _restart(compiled, model)
            history = model.fit(
                train,
                validation_data=test,
                epochs=budget["epochs"],
                # What rk.fit adds: the epoch-pinned data order and its default callbacks.
                callbacks=[EpochSetter(train), *default_callbacks(None, monitor="val_accuracy")],
                shuffle=False,
                verbose=0,
            )
        if save_dir is not None:
            model.save(os.path.join(save_dir, f"{model.name}_seed{seed}.keras"))
        runs.append(_errors(history.history, time.perf_counter() - start))
    return runs


def train_seed_network(residual, seeds, budget, filters=(16, 32, 64), repeats=7):
    """Trains the seed article's network made deep (`rk.SeedNet` or `rk.SeedResNet`) on the digits.

    As in the article: Adam, cross-entropy on logits, no normalisation, no weight decay, at
    `budget["learning_rate"]`. Later seeds reuse the compiled model, as in `train_cifar_network`.

    Args:
        residual: True trains `rk.SeedResNet` (the same layers with shortcuts).
        seeds: the seeds of the weights; the data order is the same for all.
        budget: as in `train_cifar_network`.
        filters: the widths of the convolutions.
        repeats: convolutions per width (7 x 3 = 21 convolutions).

    Returns:
        One dict per seed, as `train_cifar_network`.
    """
    import keras

    import resnet_keras as rk
    from resnet_keras import training

    info, train, test = _digits(budget)
    side = budget["image_size"]
    builder = rk.SeedResNet if residual else rk.SeedNet
    compiled, runs = None, []
    for seed in _seeds(seeds):
        rk.set_determinism(seed)
        model = builder(
            num_classes=info.num_classes,
            input_shape=(side, side, 3),
            filters=filters,
            repeats=repeats,
        )
        start = time.perf_counter()
        if compiled is None:
            model.compile(
                optimizer=keras.optimizers.Adam(budget["learning_rate"]),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"],
            )
            training.initialise(model, model.optimizer)  # the step is traced once (notebook 04)
            compiled = model
        else:
            model = _restart(compiled, model)
        history = model.fit(
            train,
            epochs=budget["epochs"],
            validation_data=test,
            callbacks=[training.EpochSetter(train)],  # epoch e's data order, whichever the seed
            shuffle=False,
            verbose=0,
        )
        runs.append(_errors(history.history, time.perf_counter() - start))
    return runs


def accuracy_on(model, test):
    """Top-1 accuracy (a fraction) of `model` on the (images, labels) batches of `test`."""
    import numpy as np

    predictions, labels = [], []
    for images, batch_labels in test:
        predictions.append(np.argmax(model.predict_on_batch(images), axis=-1))
        labels.append(np.asarray(batch_labels))
    return float(np.mean(np.concatenate(predictions) == np.concatenate(labels)))


def _seeds(seeds):
    seeds = [_validation.check_int("seeds", seed, 0) for seed in seeds]
    if not seeds:
        raise ValueError("`seeds` must name at least one seed, e.g. (0, 1, 2); received none.")
    return seeds


def _restart(compiled, fresh):
    """Puts `compiled` back at the start of training, with the initial weights of `fresh`.

    The weights (and BN statistics) become `fresh`'s; the optimizer's step counter and momentum
    buffers go back to zero, so the schedule starts again. The result trains exactly as `fresh`
    compiled anew would (tests/test_experiments.py compares the two).
    """
    from keras import ops

    compiled.set_weights(fresh.get_weights())
    for variable in compiled.optimizer.variables:
        if not variable.path.endswith("learning_rate"):
            variable.assign(ops.zeros_like(variable))
    return compiled


def default_jobs():
    """Worker processes for `run_parallel`: one where TensorFlow sees a GPU, else up to 2.

    On a GPU the runs are short and one process should own the GPU's memory; on a CPU two
    processes keep two cores busy (more cores are left to TensorFlow's own threads).
    """
    from resnet_keras.course.profiles import _gpu_devices

    if _gpu_devices():
        return 1
    return max(1, min(2, os.cpu_count() or 1))


def run_parallel(calls, jobs=None, labels=None):
    """Runs each `(function, kwargs)` of `calls`, `jobs` at a time; returns the results in order.

    With `jobs=1` the calls run here, one after another. Otherwise each runs in a spawned
    worker process, so every function must be importable (defined in a module, not in a
    notebook). Each finished call prints one line: its label and the time so far. List the
    longest calls first: a worker takes the next call when it finishes one.

    Args:
        calls: a list of `(function, kwargs)` pairs.
        jobs: worker processes (default `default_jobs()`).
        labels: one short text per call for the progress lines (default: "call 1", ...).

    Returns:
        The list of the calls' results, in the order of `calls`.

    Examples:

    >>> import math
    >>> run_parallel([(math.gcd, dict()), (math.hypot, dict())], jobs=1, labels=["gcd", "hypot"])
    [1/2] gcd finished after 0 s
    [2/2] hypot finished after 0 s
    [0, 0.0]
    """
    calls = list(calls)
    for call in calls:
        if not (isinstance(call, tuple) and len(call) == 2 and callable(call[0])
                and isinstance(call[1], dict)):  # fmt: skip
            raise TypeError(f"`calls` must hold (function, kwargs) pairs; received {call!r}.")
    jobs = default_jobs() if jobs is None else _validation.check_int("jobs", jobs, 1)
    labels = [f"call {i + 1}" for i in range(len(calls))] if labels is None else list(labels)
    if len(labels) != len(calls):
        raise ValueError(
            f"`labels` must have one entry per call ({len(calls)}); received {len(labels)}."
        )
    results = [None] * len(calls)
    start = time.perf_counter()

    def report(index, done):
        seconds = time.perf_counter() - start
        print(f"[{done}/{len(calls)}] {labels[index]} finished after {seconds:.0f} s", flush=True)

    if jobs == 1 or len(calls) <= 1:
        for index, (function, kwargs) in enumerate(calls):
            results[index] = function(**kwargs)
            report(index, index + 1)
        return results
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(min(jobs, len(calls)), mp_context=context) as pool:
        futures = {
            pool.submit(function, **kwargs): index for index, (function, kwargs) in enumerate(calls)
        }
        for done, future in enumerate(concurrent.futures.as_completed(futures), start=1):
            index = futures[future]
            results[index] = future.result()
            report(index, done)
    return results
