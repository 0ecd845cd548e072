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

A second worker times the calls that end an iterator, as a learner makes them:
`model.fit` for one epoch of the digits split and `find_learning_rate`, each with
the library's pipeline (tf.data's autotuning thread off, see
`resnet_keras/data/options.py`) and with TensorFlow's default turned back on,
alternating. Besides the wall time it reports the machine's idle core-seconds per
call: with the autotuning thread, deleting the iterator waits with the cores idle.
"""

from __future__ import annotations

import statistics

from benchmarks._harness import (
    Result,
    alternate,
    default_threads,
    fmt,
    library_worker,
    markdown_table,
    median_of_ratios,
    merge_settings,
    paired_ratio,
)

FULL = dict(
    batch=128,
    pipeline_steps=40,
    train_steps=3,
    repeats=7,
    warmup=2,
    call_depth=20,
    fit_epochs=1,
    finder_steps=20,
    call_repeats=6,
)
QUICK = dict(
    batch=16,
    pipeline_steps=4,
    train_steps=1,
    repeats=2,
    warmup=1,
    call_depth=8,
    fit_epochs=1,
    finder_steps=3,
    call_repeats=1,
)
SOURCES = ("digits", "cifar-synthetic")
CALLS = {"fit": "fit_epochs", "lr_finder": "finder_steps"}
CALL_SETUPS = {
    "library": (
        None,
        "library default: the pipeline and loops without tf.data's autotuning thread",
    ),
    "tf-autotune": (True, "TensorFlow's default: `autotune.enabled = True` on the same pipeline"),
}
GOAL = 10.0


def run(quick=False, threads=None, log=print, **overrides):
    """Images/s of both pipelines and of ResNet-20 training, alternating.

    Args:
        quick: tiny batches and few steps, for a smoke test.
        threads: threads for TensorFlow (default: every usable core).
        log: progress output.
        **overrides: batch, pipeline_steps, train_steps, repeats, warmup (the pipeline
            part); call_depth, fit_epochs, finder_steps, call_repeats (the learner calls).

    Returns:
        A `Result`; `ratios[source]` is pipeline images/s over training images/s,
        `ratios[f"{call}_speedup"]` the total time of the call's rounds with
        TensorFlow's autotuning over their total time as the library sets it up
        (`call` in `CALLS`; `..._median_per_round` beside it); `numbers` holds the
        median seconds and the mean idle core-seconds per call.
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
    with library_worker("pipeline", contenders, threads, settings["warmup"], log) as worker:

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
    calls_markdown = _learner_calls(settings, threads, numbers, ratios, log)
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
        markdown=intro + "\n\n" + table + "\n\n" + calls_markdown,
        numbers=numbers,
        ratios=ratios,
    )


def _learner_calls(settings, threads, numbers, ratios, log):
    """Times `fit` and `find_learning_rate` with and without tf.data's autotuning thread.

    Fills `numbers` and `ratios` and returns the markdown of the section.
    """
    contenders = [
        dict(
            id=setup,
            kind="learner_calls",
            autotune=autotune,
            depth=settings["call_depth"],
            batch=128,
            # Both calls once, so that no timed call traces the model's training step.
            warmup_tasks={"fit": settings["fit_epochs"], "lr_finder": settings["finder_steps"]},
        )
        for setup, (autotune, _) in CALL_SETUPS.items()
    ]
    idle = {(call, setup): [] for call in CALLS for setup in CALL_SETUPS}
    with library_worker("learner-calls", contenders, threads, 1, log) as worker:

        def runner(call, setup):
            def measure():
                reply = worker.request(op="run", id=setup, task=call, steps=settings[CALLS[call]])
                idle[call, setup].append(reply["idle_seconds"])
                return reply["seconds"]

            return measure

        samples = alternate(
            {f"{call} {setup}": runner(call, setup) for call, setup in idle},
            settings["call_repeats"],
            log=log,
        )
    seconds = {(call, setup): samples[f"{call} {setup}"].values for call, setup in idle}
    rows = []
    for call in CALLS:
        # The wait hits some calls and not others, so a median per round hides it; the
        # total time of all rounds is what a learner making these calls waits.
        ratio = sum(seconds[call, "tf-autotune"]) / sum(seconds[call, "library"])
        ratios[f"{call}_speedup"] = ratio
        ratios[f"{call}_speedup_median_per_round"] = median_of_ratios(
            zip(seconds[call, "tf-autotune"], seconds[call, "library"], strict=True)
        )
        for setup, (_, description) in CALL_SETUPS.items():
            values, idles = seconds[call, setup], [i for i in idle[call, setup] if i is not None]
            median = numbers[f"{call}_{setup}_seconds"] = statistics.median(values)
            mean_idle = numbers[f"{call}_{setup}_idle_core_seconds"] = (
                statistics.mean(idles) if idles else float("nan")
            )
            rows.append(
                [
                    f"`{call}`",
                    description,
                    f"{fmt(median, 2)} ({fmt(min(values), 2)}-{fmt(max(values), 2)})",
                    f"{fmt(mean_idle, 2)} ({fmt(max(idles), 2)})" if idles else "n/a",
                    f"**{fmt(ratio, 2)}x** ({fmt(ratios[f'{call}_speedup_median_per_round'], 2)}x)"
                    if setup == "library"
                    else "1x",
                ]
            )
    intro = (
        f"### Calls that end an iterator: `fit` and the LR finder\n\n"
        f"ResNet-{settings['call_depth']} on the digits training split (batch 128, "
        f"augmentation on), {threads} TensorFlow threads: `model.fit` for "
        f"{settings['fit_epochs']} epoch(s) and `find_learning_rate` with "
        f"{settings['finder_steps']} steps, {settings['call_repeats']} alternating rounds "
        "after a warm-up. Idle core-seconds: time the machine's cores sat idle during the "
        "call (/proc/stat), summed over cores; a training call keeps them busy, so idle "
        "time is waiting. Speed-up: the total time of the calls with TensorFlow's autotuning "
        "over their total time as the library sets it up (in brackets the median of the "
        "per-round ratios, which hides a wait that hits only some calls)."
    )
    table = markdown_table(
        [
            "call",
            "pipeline",
            "seconds per call median (min-max)",
            "idle core-s per call mean (max)",
            "speed-up (median per round)",
        ],
        rows,
    )
    return intro + "\n\n" + table
