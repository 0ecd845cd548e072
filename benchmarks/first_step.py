"""Benchmark: a new model's first training step, traced once or twice.

Every new model a learner trains pays for its first step: TensorFlow traces the
Keras training step into a graph, optimises it and creates the oneDNN kernels.
Keras creates a missing optimizer state (the momentum buffers) while it traces
that step, and a `tf.function` that creates variables is traced twice. The
library's `fit` creates the state first (`resnet_keras.training.initialise`), so
the step is traced once.

One TensorFlow worker holds both setups for each depth and alternates them: each
call builds a fresh `rk.CifarResNet(depth)`, compiles it as `fit` does and times
its first `train_on_batch` (the state's creation included), counting the traces.
"""

from __future__ import annotations

from benchmarks._harness import (
    Result,
    alternate,
    default_threads,
    fmt,
    library_worker,
    markdown_table,
    merge_settings,
    paired_ratio,
)

FULL = dict(depths=(20, 56), batch=128, repeats=5, warmup=1)
QUICK = dict(depths=(8,), batch=8, repeats=1, warmup=1)
SETUPS = {
    "library": (True, "as `fit` sets it up: the optimizer's state made first"),
    "keras": (False, "Keras' default: the state made while the step is traced"),
}


def run(quick=False, threads=None, log=print, **overrides):
    """Seconds of a new ResNet's first training step, with both setups alternating.

    Args:
        quick: a tiny network and batch, for a smoke test.
        threads: threads for TensorFlow (default: every usable core).
        log: progress output.
        **overrides: depths, batch, repeats, warmup.

    Returns:
        A `Result`; `ratios[f"resnet{depth}"]` is the median per round of the Keras
        default's seconds over the library's, `numbers` holds the median seconds
        (`resnet{depth}_{setup}_seconds`) and the traces per call
        (`resnet{depth}_{setup}_traces`).
    """
    settings = merge_settings(QUICK if quick else FULL, overrides)
    threads = threads or default_threads()
    contenders = [
        dict(
            id=f"resnet{depth}-{setup}",
            kind="first_step",
            build_optimizer_first=first,
            depth=depth,
            batch=settings["batch"],
            # One call of each first: the process's first model also pays for creating
            # every oneDNN kernel, which later models find in oneDNN's cache.
            warmup_tasks={"first_step": 1},
        )
        for depth in settings["depths"]
        for setup, (first, _) in SETUPS.items()
    ]
    traces = {}
    with library_worker("first-step", contenders, threads, settings["warmup"], log) as worker:

        def runner(ident):
            def measure():
                reply = worker.request(op="run", id=ident, task="first_step", steps=1)
                traces.setdefault(ident, []).append(reply["extra"]["traces"])
                return reply["seconds"]

            return measure

        samples = alternate(
            {spec["id"]: runner(spec["id"]) for spec in contenders}, settings["repeats"], log=log
        )

    numbers, ratios, rows = {}, {}, []
    for depth in settings["depths"]:
        library, keras_default = samples[f"resnet{depth}-library"], samples[f"resnet{depth}-keras"]
        # Seconds: the Keras default over the library's is how much faster the library is.
        ratios[f"resnet{depth}"] = paired_ratio(keras_default, library)
        for setup, (_, description) in SETUPS.items():
            ident = f"resnet{depth}-{setup}"
            value = samples[ident]
            numbers[f"resnet{depth}_{setup}_seconds"] = value.median
            numbers[f"resnet{depth}_{setup}_traces"] = max(traces[ident])
            rows.append(
                [
                    f"ResNet-{depth}",
                    description,
                    f"{fmt(value.median, 2)} ({fmt(value.spread[0], 2)}-{fmt(value.spread[1], 2)})",
                    "/".join(str(n) for n in sorted(set(traces[ident]))),
                    f"**{fmt(ratios[f'resnet{depth}'], 2)}x**" if setup == "library" else "1x",
                ]
            )
    intro = (
        f"A fresh `rk.CifarResNet(depth)` per call, compiled as `resnet_keras.training.fit` "
        f"does (the paper recipe's SGD, loss, weight decay and accuracy metric), batch "
        f"{settings['batch']} of synthetic 32x32x3 images, {threads} TensorFlow threads, "
        f"{settings['repeats']} alternating rounds after one call of each. Seconds from just "
        f"before the optimizer's state is made to the end of the first `train_on_batch`; "
        f"traces: how often the model's `train_step` ran in Python. Speed-up: the median "
        f"per round of the Keras default's seconds over the library's"
        f"{' (QUICK MODE: not representative)' if quick else ''}."
    )
    table = markdown_table(
        ["model", "setup", "first step s median (min-max)", "traces", "speed-up"], rows
    )
    return Result(
        name="first_step",
        title="A new model's first training step: one trace instead of two",
        markdown=intro + "\n\n" + table,
        numbers=numbers,
        ratios=ratios,
    )
