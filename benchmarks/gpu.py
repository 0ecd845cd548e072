"""Benchmark 7, one shot on a GPU: CIFAR ResNet training images/s, fp32 / mixed, XLA off / on.

Run: `python -m benchmarks.gpu` (defaults sized for well under 8 minutes on one
H100, TensorFlow start and XLA compilation included). For every depth (20, 56)
the four setups (float32 or mixed_float16, jit_compile False or True) are built,
warmed up (the first call, which holds the compilation, is reported), then timed in
alternating rounds of `--steps` `model.fit` steps on synthetic CIFAR-shaped data.
A markdown table goes to stdout and, with `--output` (default `$OUT/gpu_results.md`
when `$OUT` is set), to a file. A time budget (`--budget-s`) skips what would not
fit instead of running over.

On a machine without a GPU it still runs (on the CPU), which is how it is tested:
`python -m benchmarks.gpu --steps 1 --repeats 1 --batch 8 --depths 20`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

PRECISIONS = ("float32", "mixed_float16")


def _parse(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per round")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds")
    parser.add_argument("--warmup-steps", type=int, default=5, help="steps of the first call")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--depths", type=int, nargs="+", default=[20, 56])
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS))
    parser.add_argument("--xla", choices=("both", "off", "on"), default="both")
    parser.add_argument(
        "--budget-s", type=float, default=420.0, help="stop starting new work after this"
    )
    parser.add_argument(
        "--output", default=None, help="markdown file (default $OUT/gpu_results.md)"
    )
    args = parser.parse_args(argv)
    for name in ("steps", "repeats", "warmup_steps", "batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv=None):
    args = _parse(argv)
    started = time.perf_counter()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras
    import numpy as np
    import tensorflow as tf

    import resnet_keras as rk

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    device = "CPU only (no GPU visible)"
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        name = details.get("device_name", gpus[0].name)
        device = f"{name} (compute capability {details.get('compute_capability')})"
    header = [
        f"device: {device}",
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"Python {platform.python_version()}",
        f"batch {args.batch}, {args.repeats} alternating rounds of {args.steps} steps "
        f"after a first call of {args.warmup_steps} steps (compilation included)",
    ]
    print("\n".join(header), flush=True)

    rng = np.random.default_rng(0)
    images = rng.standard_normal((args.batch * 4, 32, 32, 3), dtype=np.float32)
    labels = rng.integers(0, 10, size=args.batch * 4).astype(np.int32)
    data = (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .batch(args.batch, drop_remainder=True)
        .cache()
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )

    def elapsed():
        return time.perf_counter() - started

    rows = []
    for depth in args.depths:
        setups = {}
        xla_settings = {"both": (False, True), "off": (False,), "on": (True,)}[args.xla]
        for precision in args.precisions:
            for xla in xla_settings:
                label = (precision, xla)
                if elapsed() > args.budget_s:
                    rows.append([depth, precision, xla, "skipped (time budget)", "", ""])
                    continue
                keras.mixed_precision.set_global_policy(precision)
                keras.utils.set_random_seed(0)
                model = rk.CifarResNet(depth)
                keras.mixed_precision.set_global_policy("float32")
                model.compile(
                    optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    jit_compile=xla,
                )
                start = time.perf_counter()
                try:
                    model.fit(data, epochs=1, steps_per_epoch=args.warmup_steps, verbose=0)
                except Exception as error:  # noqa: BLE001 - a failing setup is a result
                    rows.append([depth, precision, xla, f"failed: {type(error).__name__}", "", ""])
                    continue
                first = time.perf_counter() - start
                setups[label] = {"model": model, "first": first, "rates": []}
                print(f"ResNet-{depth} {precision} xla={xla}: first call {first:.1f} s", flush=True)

        for round_index in range(args.repeats):
            order = list(setups)
            shift = round_index % max(len(order), 1)
            for label in order[shift:] + order[:shift]:
                if elapsed() > args.budget_s and setups[label]["rates"]:
                    continue
                start = time.perf_counter()
                setups[label]["model"].fit(data, epochs=1, steps_per_epoch=args.steps, verbose=0)
                rate = args.steps * args.batch / (time.perf_counter() - start)
                setups[label]["rates"].append(rate)

        base = setups.get(("float32", False))
        base_rate = statistics.median(base["rates"]) if base and base["rates"] else None
        for (precision, xla), setup in setups.items():
            rate = statistics.median(setup["rates"]) if setup["rates"] else float("nan")
            ratio = f"{rate / base_rate:.2f}" if base_rate else "n/a"
            rows.append([depth, precision, xla, f"{rate:,.0f}", ratio, f"{setup['first']:.1f}"])
        del setups
        keras.backend.clear_session()

    table = [
        "| model | precision | XLA | images/s (median) | vs fp32 no XLA | first call s |",
        "|---|---|---|---|---|---|",
    ]
    for depth, precision, xla, rate, ratio, first in rows:
        xla = "on" if xla is True else "off" if xla is False else xla
        table.append(f"| ResNet-{depth} | {precision} | {xla} | {rate} | {ratio} | {first} |")
    report = "\n".join(["# GPU benchmark", "", *[f"- {line}" for line in header], "", *table])
    report += f"\n\ntotal wall time {elapsed():.0f} s\n"
    print("\n" + report, flush=True)
    output = args.output
    if output is None and os.environ.get("OUT"):
        output = os.path.join(os.environ["OUT"], "gpu_results.md")
    if output:
        with open(output, "w") as handle:
            handle.write(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
