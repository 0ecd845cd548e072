"""`rk.ResNet50` against `keras.applications.ResNet50`, alternating in one TensorFlow worker.

Same random weights, SGD and loss; `train_on_batch` and `predict_on_batch` on batch 32 of
224x224 images in memory, one task at a time (interleaved, the inference call right after
a training call was the library's in 3 of 4 rotations). Goal: a ratio of at least 0.98.
The ratio of images per CPU-second of the worker is not moved by a stall of the machine.
"""

from __future__ import annotations

from benchmarks import _harness as h

FULL = dict(batch=32, size=224, train_steps=2, infer_steps=8, repeats=8, warmup=1)
QUICK = dict(batch=2, size=32, train_steps=1, infer_steps=1, repeats=2, warmup=1)
VARIANTS = {"rk.ResNet50": "rk", "keras.applications.ResNet50": "applications"}
GOAL = 0.98


def run(quick=False, threads=None, log=print, **overrides):
    """Training and inference images/s of both ResNet-50s, alternating.

    Returns:
        A `Result`: `ratios[task]` (library / reference, median of per-round ratios),
        `ratios[f"{task}_cpu"]` (the same of images per CPU-second),
        `numbers[f"{task}/rk.ResNet50"]` and `numbers[f"{task}/reference"]` (median images/s).
    """
    settings = h.merge_settings(QUICK if quick else FULL, overrides)
    threads = threads or h.default_threads()
    steps = {"train": settings["train_steps"], "infer": settings["infer_steps"]}
    contenders = [
        dict(id=label, kind="keras_resnet50", variant=variant, batch=settings["batch"])
        | dict(size=settings["size"], warmup_tasks=steps)
        for label, variant in VARIANTS.items()
    ]
    workers = h.library_workers("ResNet-50", contenders, threads, settings["warmup"], log)
    samples, calls = {}, {(task, label): [] for task in steps for label in VARIANTS}
    try:
        for task in steps:
            runners = {
                label: h.runner(workers, label, task, steps[task], calls[task, label])
                for label in VARIANTS
            }
            samples[task] = h.alternate(runners, settings["repeats"], log=log)
        described = [workers[label].info["contenders"][label]["describe"] for label in VARIANTS]
    finally:
        h.close_workers(workers)

    numbers, ratios, rows = {}, {}, []
    for task, name in (("train", "training (fit step)"), ("infer", "inference (predict)")):
        ours, reference = samples[task].values()
        numbers[f"{task}/rk.ResNet50"], numbers[f"{task}/reference"] = ours.median, reference.median
        ratios[task] = h.paired_ratio(ours, reference)
        per_cpu = [
            [reply["count"] / reply["cpu_seconds"] for reply in calls[task, label]]
            for label in VARIANTS
        ]
        ratios[f"{task}_cpu"] = h.median_of_ratios(zip(*per_cpu))
        rows.append(
            [
                name,
                h.fmt_spread(ours, 2),
                h.fmt_spread(reference, 2),
                f"**{h.fmt(ratios[task], 3)}**",
            ]
            + [h.fmt(ratios[f"{task}_cpu"], 3), "yes" if ratios[task] >= GOAL else "no"]
        )
    mine, theirs = described
    intro = (
        f"Batch {settings['batch']}, {settings['size']}x{settings['size']}x3 synthetic images, "
        f"{threads} TensorFlow threads, SGD momentum 0.9, same initial weights "
        f"({mine['params']:,} parameters and {mine['weights']} weights in ours, "
        f"{theirs['params']:,} / {theirs['weights']} in the reference), "
        f"{settings['repeats']} alternating rounds of {settings['train_steps']} training / "
        f"{settings['infer_steps']} inference steps (`train_on_batch` / `predict_on_batch` "
        f"on tensors in memory) after {settings['warmup']} warm-up call(s)"
        f"{' (QUICK MODE: not representative)' if quick else ''}. Ratios: median over rounds "
        "of ours / reference measured in the same round, by wall time and by images per "
        "CPU-second of the worker process (which a stall of the machine does not move)."
    )
    header = ["task", "rk.ResNet50 images/s", "keras.applications images/s"]
    header += [f"ratio (median per round), goal >= {GOAL}", "ratio of images per CPU-second"]
    return h.Result(
        name="resnet50",
        title="rk.ResNet50 against keras.applications.ResNet50",
        markdown=intro + "\n\n" + h.markdown_table(header + ["goal met"], rows),
        numbers=numbers,
        ratios=ratios,
    )
