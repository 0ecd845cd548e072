"""Benchmark 4: `rk.ResNet50` against `keras.applications.ResNet50`, side by side.

Both models live in one TensorFlow worker, start from the same random weights and
train with the same SGD and loss, step by step through the compiled step that
`model.fit` runs (batch 32, 224x224x3 synthetic images in memory); inference uses
`predict_on_batch`. The goal is a ratio of at
least 0.98: the library's blocks must cost nothing over the functional reference.
ResNet-50 training at batch 32 takes about 9 s per step on two cores, so the run
is kept to a few steps per round. Stalls of this VM (every thread blocked for
~10 s, cores idle) are detected from /proc/stat and reported, not averaged in.
"""

from __future__ import annotations

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

FULL = dict(batch=32, size=224, train_steps=2, infer_steps=8, repeats=8, warmup=1)
QUICK = dict(batch=2, size=64, train_steps=1, infer_steps=1, repeats=2, warmup=1)
VARIANTS = {"rk.ResNet50": "rk", "keras.applications.ResNet50": "applications"}
GOAL = 0.98
# A call is "stalled" when the machine's cores sat idle for more than this share of
# the call's core-seconds although the worker had work queued (this VM shows stalls
# of ~10 s with every thread blocked, with oneDNN on or off). Both contenders keep
# the cores busy (idle share ~5%) when nothing stalls.
STALL_IDLE_SHARE = 0.25


def _stalled(call, threads):
    idle = call.get("idle_seconds")
    return idle is not None and idle > STALL_IDLE_SHARE * threads * call["seconds"]


def run(quick=False, threads=None, log=print, **overrides):
    """Training and inference images/s of both ResNet-50s, alternating.

    Args:
        quick: tiny images and batch, for a smoke test.
        threads: threads for TensorFlow (default: every usable core).
        log: progress output.
        **overrides: batch, size, train_steps, infer_steps, repeats, warmup.

    Returns:
        A `Result` with `ratios["train"]` and `ratios["infer"]` (library / reference,
        median over the rounds in which neither call stalled, or over every round when
        fewer than three were stall-free) and `ratios["train_cpu"]`,
        `ratios["infer_cpu"]` (images per CPU-second, library / reference).
    """
    settings = merge_settings(QUICK if quick else FULL, overrides)
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
    calls = {}
    with library_worker("ResNet-50", contenders, threads, settings["warmup"], log) as worker:

        def runner(key, ident, task, steps):
            def measure():
                reply = worker.request(op="run", id=ident, task=task, steps=steps)
                calls.setdefault(key, []).append(reply)
                return reply["count"] / reply["seconds"]

            return measure

        samples = {}
        # One task at a time: with the four runners interleaved, the inference call
        # right after a training call was the library's in 3 of 4 rotations.
        for task in ("train", "infer"):
            runners = {}
            for label in VARIANTS:
                key = f"{task}/{label}"
                runners[key] = runner(key, label, task, settings[f"{task}_steps"])
            samples.update(alternate(runners, settings["repeats"], log=log))
        info = worker.info

    numbers, ratios, rows, notes = {}, {}, [], []
    for task, name in (("train", "training (fit step)"), ("infer", "inference (predict)")):
        ours_key, reference_key = f"{task}/rk.ResNet50", f"{task}/keras.applications.ResNet50"
        ours, reference = samples[ours_key], samples[reference_key]
        rounds = list(zip(calls[ours_key], calls[reference_key]))
        clean = [
            (a["count"] / a["seconds"], b["count"] / b["seconds"])
            for a, b in rounds
            if not _stalled(a, threads) and not _stalled(b, threads)
        ]
        every = paired_ratio(ours, reference)
        ratio = median_of_ratios(clean) if len(clean) >= 3 else every
        cpu_ratio = median_of_ratios(
            [(a["count"] / a["cpu_seconds"], b["count"] / b["cpu_seconds"]) for a, b in rounds]
        )
        ratios[task] = ratio
        ratios[f"{task}_every_round"] = every
        ratios[f"{task}_cpu"] = cpu_ratio
        numbers[f"{task}/stall_free_rounds"] = float(len(clean))
        for label, value in ((f"{task}/rk.ResNet50", ours), (f"{task}/reference", reference)):
            numbers[label] = value.median
        rows.append(
            [
                name,
                f"{fmt(ours.median, 2)} ({fmt(ours.spread[0], 2)}-{fmt(ours.spread[1], 2)})",
                f"{fmt(reference.median, 2)} "
                f"({fmt(reference.spread[0], 2)}-{fmt(reference.spread[1], 2)})",
                f"{len(clean)} of {len(rounds)}",
                f"**{fmt(ratio, 3)}**",
                fmt(every, 3),
                fmt(cpu_ratio, 3),
                "yes" if ratio >= GOAL else "no",
            ]
        )
        stalled = [
            f"{label.split('/')[1]} round {index + 1} ({call['seconds']:.1f} s, "
            f"{call['idle_seconds']:.1f} idle core-s)"
            for label in (ours_key, reference_key)
            for index, call in enumerate(calls[label])
            if _stalled(call, threads)
        ]
        if stalled:
            notes.append(f"{name}: stalled calls (left out of the ratio): " + "; ".join(stalled))
    describe = info["contenders"]["rk.ResNet50"]["describe"]
    reference_describe = info["contenders"]["keras.applications.ResNet50"]["describe"]
    intro = (
        f"Batch {settings['batch']}, {settings['size']}x{settings['size']}x3 synthetic images, "
        f"{threads} TensorFlow threads, SGD momentum 0.9, same initial weights "
        f"({describe['params']:,} parameters and {describe['weights']} weights in ours, "
        f"{reference_describe['params']:,} / {reference_describe['weights']} in the reference), "
        f"{settings['repeats']} alternating rounds of {settings['train_steps']} training / "
        f"{settings['infer_steps']} inference steps (`train_on_batch` / `predict_on_batch` "
        f"on tensors in memory) after {settings['warmup']} warm-up call(s)"
        f"{' (QUICK MODE: not representative)' if quick else ''}. "
        "The ratio is the median over rounds of ours / reference measured in the same round, "
        "over the rounds in which neither call stalled (the machine's cores idle for more "
        f"than {STALL_IDLE_SHARE:.0%} of the call although work was queued); the next column "
        "keeps every round, the last compares images per CPU-second of the worker process, "
        "which a stall does not move."
    )
    table = markdown_table(
        [
            "task",
            "rk.ResNet50 images/s",
            "keras.applications images/s",
            "stall-free rounds",
            f"ratio (median per round), goal >= {GOAL}",
            "ratio, every round",
            "ratio of images per CPU-second",
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
        notes=notes,
    )
