"""Benchmark 5: the input pipeline against ResNet-20 training.

One TensorFlow worker holds three contenders, measured alternately:

* `digits`: `resnet_keras.data.load("digits", augment=True).train` (the offline
  dataset: shuffle, normalise, pad 4 + random crop, batch 128),
* `cifar-synthetic`: random uint8 CIFAR-shaped images (5,000) through the same
  `make_split` path with CIFAR-10's augmentation (crop and flip),
* `train`: ResNet-20 training as the library sets it up (`keras-tensorflow` of
  the `resnet20` benchmark).

The pipeline is pulled on its own (nothing trains meanwhile), so its images/s is
what it could deliver with the whole machine; goal: at least 10x the training
rate, i.e. feeding the model costs under a tenth of the CPU.
"""

from __future__ import annotations

import time

from benchmarks._harness import (
    Result,
    Worker,
    alternate,
    default_threads,
    fmt,
    markdown_table,
    merge_settings,
    paired_ratio,
    thread_environment,
)

FULL = dict(batch=128, pipeline_steps=40, train_steps=3, repeats=7, warmup=2)
QUICK = dict(batch=16, pipeline_steps=4, train_steps=1, repeats=2, warmup=1)
SOURCES = ("digits", "cifar-synthetic")
GOAL = 10.0


def run(quick=False, threads=None, log=print, **overrides):
    """Images/s of both pipelines and of ResNet-20 training, alternating.

    Args:
        quick: tiny batches and few steps, for a smoke test.
        threads: threads for TensorFlow (default: every usable core).
        log: progress output.
        **overrides: batch, pipeline_steps, train_steps, repeats, warmup.

    Returns:
        A `Result`; `ratios[source]` is pipeline images/s over training images/s.
    """
    settings = merge_settings(QUICK if quick else FULL, overrides)
    threads = threads or default_threads()
    batch = settings["batch"]
    contenders = [
        dict(
            id=source,
            kind="pipeline",
            source=source,
            batch=batch,
            num_examples=5000 if not quick else 256,
            warmup_tasks={"iterate": settings["pipeline_steps"]},
        )
        for source in SOURCES
    ]
    contenders.append(
        dict(
            id="train",
            kind="keras_cifar",
            batch=batch,
            warmup_tasks={"train": settings["train_steps"]},
        )
    )
    config = {"threads": threads, "warmup": settings["warmup"], "contenders": contenders}
    env = dict(thread_environment(threads), KERAS_BACKEND="tensorflow")
    started = time.perf_counter()
    log("starting the pipeline worker")
    with Worker("pipeline", config, env=env) as worker:
        for ident, state in worker.info["contenders"].items():
            if not state["ok"]:
                raise RuntimeError(f"{ident} failed: {state['error']}")
        log(f"warm-up done in {time.perf_counter() - started:.0f} s; measuring")

        def runner(ident, task, steps):
            def measure():
                reply = worker.request(op="run", id=ident, task=task, steps=steps)
                return reply["count"] / reply["seconds"]

            return measure

        runners = {
            source: runner(source, "iterate", settings["pipeline_steps"]) for source in SOURCES
        }
        runners["train"] = runner("train", "train", settings["train_steps"])
        samples = alternate(runners, settings["repeats"], log=log)

    train = samples["train"]
    numbers = {"train_images_per_s": train.median}
    ratios, rows = {}, []
    for source in SOURCES:
        value = samples[source]
        ratio = paired_ratio(value, train)
        numbers[f"{source}_images_per_s"] = value.median
        ratios[source] = ratio
        rows.append(
            [
                f"`{source}`",
                f"{fmt(value.median)} ({fmt(value.spread[0])}-{fmt(value.spread[1])})",
                f"**{fmt(ratio)}x**",
                "yes" if ratio >= GOAL else "no",
            ]
        )
    rows.append(
        [
            "ResNet-20 training (`keras-tensorflow`)",
            f"{fmt(train.median)} ({fmt(train.spread[0])}-{fmt(train.spread[1])})",
            "1x",
            "",
        ]
    )
    intro = (
        f"Batch {batch}, augmentation on (pad 4, random crop; flip for the CIFAR-shaped data), "
        f"{threads} TensorFlow threads, {settings['repeats']} alternating rounds of "
        f"{settings['pipeline_steps']} pipeline batches / {settings['train_steps']} training "
        f"steps{' (QUICK MODE: not representative)' if quick else ''}."
    )
    table = markdown_table(
        ["source", "images/s median (min-max)", "over training (median per round)", "goal >= 10x"],
        rows,
    )
    return Result(
        name="pipeline",
        title="Input pipeline against ResNet-20 training",
        markdown=intro + "\n\n" + table,
        numbers=numbers,
        ratios=ratios,
    )
