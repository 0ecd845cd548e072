"""Benchmark 4: `rk.ResNet50` against `keras.applications.ResNet50`, side by side.

Both models live in one TensorFlow worker, start from the same random weights and
train with the same SGD and loss through `model.fit` (batch 32, 224x224x3
synthetic images); inference uses `model.predict`. The goal is a ratio of at
least 0.98: the library's blocks must cost nothing over the functional reference.
ResNet-50 training at batch 32 takes seconds per step on two cores, so the run is
kept to a few steps per round.
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
    paired_ratio,
    thread_environment,
)

FULL = dict(batch=32, size=224, train_steps=1, infer_steps=2, repeats=5, warmup=1)
QUICK = dict(batch=2, size=64, train_steps=1, infer_steps=1, repeats=2, warmup=1)
VARIANTS = {"rk.ResNet50": "rk", "keras.applications.ResNet50": "applications"}
GOAL = 0.98


def run(quick=False, threads=None, log=print, **overrides):
    """Training and inference images/s of both ResNet-50s, alternating.

    Args:
        quick: tiny images and batch, for a smoke test.
        threads: threads for TensorFlow (default: every usable core).
        log: progress output.
        **overrides: batch, size, train_steps, infer_steps, repeats, warmup.

    Returns:
        A `Result` with `ratios["train"]` and `ratios["infer"]` (library / reference).
    """
    settings = dict(QUICK if quick else FULL)
    unknown = set(overrides) - set(settings)
    if unknown:
        raise TypeError(f"unknown options {sorted(unknown)}; allowed: {sorted(settings)}")
    settings.update(overrides)
    threads = threads or default_threads()
    contenders = [
        dict(
            id=label,
            kind="keras_resnet50",
            variant=variant,
            batch=settings["batch"],
            size=settings["size"],
            warmup_tasks={"train": settings["train_steps"], "infer": settings["infer_steps"]},
        )
        for label, variant in VARIANTS.items()
    ]
    config = {"threads": threads, "warmup": settings["warmup"], "contenders": contenders}
    env = dict(thread_environment(threads), KERAS_BACKEND="tensorflow")
    started = time.perf_counter()
    log("starting the ResNet-50 worker (builds both models, warms up)")
    with Worker("resnet50", config, env=env) as worker:
        for ident, state in worker.info["contenders"].items():
            if not state["ok"]:
                raise RuntimeError(f"{ident} failed: {state['error']}")
        log(f"warm-up done in {time.perf_counter() - started:.0f} s; measuring")

        def runner(ident, task, steps):
            def measure():
                reply = worker.request(op="run", id=ident, task=task, steps=steps)
                return reply["count"] / reply["seconds"]

            return measure

        runners = {}
        for task in ("train", "infer"):
            for label in VARIANTS:
                runners[f"{task}/{label}"] = runner(label, task, settings[f"{task}_steps"])
        samples = alternate(runners, settings["repeats"], log=log)
        info = worker.info

    numbers, ratios, rows = {}, {}, []
    for task, name in (("train", "training (fit step)"), ("infer", "inference (predict)")):
        ours = samples[f"{task}/rk.ResNet50"]
        reference = samples[f"{task}/keras.applications.ResNet50"]
        ratio = paired_ratio(ours, reference)
        ratios[task] = ratio
        for label, value in ((f"{task}/rk.ResNet50", ours), (f"{task}/reference", reference)):
            numbers[label] = value.median
        rows.append(
            [
                name,
                f"{fmt(ours.median, 2)} ({fmt(ours.spread[0], 2)}-{fmt(ours.spread[1], 2)})",
                f"{fmt(reference.median, 2)} "
                f"({fmt(reference.spread[0], 2)}-{fmt(reference.spread[1], 2)})",
                f"**{fmt(ratio, 3)}**",
                "yes" if ratio >= GOAL else "no",
            ]
        )
    describe = info["contenders"]["rk.ResNet50"]["describe"]
    reference_describe = info["contenders"]["keras.applications.ResNet50"]["describe"]
    intro = (
        f"Batch {settings['batch']}, {settings['size']}x{settings['size']}x3 synthetic images, "
        f"{threads} TensorFlow threads, SGD momentum 0.9, same initial weights "
        f"({describe['params']:,} parameters and {describe['weights']} weights in ours, "
        f"{reference_describe['params']:,} / {reference_describe['weights']} in the reference), "
        f"{settings['repeats']} alternating rounds of {settings['train_steps']} training / "
        f"{settings['infer_steps']} inference steps after {settings['warmup']} warm-up call(s)"
        f"{' (QUICK MODE: not representative)' if quick else ''}."
    )
    table = markdown_table(
        [
            "task",
            "rk.ResNet50 images/s",
            "keras.applications images/s",
            f"ratio (median per round), goal >= {GOAL}",
            "goal met",
        ],
        rows,
    )
    return Result(
        name="resnet50",
        title="rk.ResNet50 against keras.applications.ResNet50",
        markdown=intro + "\n\n" + table,
        numbers=numbers,
        ratios=ratios,
    )
