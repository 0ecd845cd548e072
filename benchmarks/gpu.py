"""One shot on a GPU: CIFAR ResNet training images/s, by precision, compiled or not.

`python -m benchmarks.gpu --backend B [plain-pytorch]`, B one of `tensorflow`, `jax`,
`torch` (`rk.CifarResNet(depth)` trained by `model.fit` on that Keras backend; compiled
is `jit_compile=True`: XLA, or `torch.compile` on PyTorch) or `plain-pytorch` (the
network of `benchmarks.torch_resnet` in channels_last; compiled is `torch.compile`, mixed
precision `torch.autocast`). A Keras backend and `plain-pytorch` run side by side in one
process. Each setup (depth, precision, compiled, Keras' `--steps-per-execution`) is built
and warmed up (the first call, compilation included, is reported), then timed in
alternating rounds of up to `--steps` steps (fewer where they would take over `--round-s`).
Each setup's effective TFLOP/s (6 x multiply-adds per training image) is compared with the
bfloat16 matrix-product rate measured with the same framework (float32 on a CPU). A budget
(`--budget-s`) skips what would not fit; the table goes to `--output` (default
`$OUT/gpu_<backends>.md`) after every depth. Without a GPU it runs on the CPU (tested so).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

from benchmarks._worker import TorchCifar, _synthetic_batches

BACKENDS = ("tensorflow", "jax", "torch", "plain-pytorch")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
COMPILERS = {
    "tensorflow": "XLA (`jit_compile=True`)",
    "jax": "XLA (`jit_compile=True`, Keras' default on JAX)",
    "torch": "`torch.compile` (`jit_compile=True`)",
    "plain-pytorch": "`torch.compile`",
}
MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _parse(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__)
    add = parser.add_argument
    default_backend = [os.environ.get("KERAS_BACKEND", "tensorflow")]
    add("--backend", dest="backends", nargs="+", choices=BACKENDS, default=default_backend)
    add("--steps", type=int, default=40, help="timed steps per round (at most)")
    add("--steps-per-execution", type=int, nargs="+", default=[1], help="Keras: a setup per N")
    add("--matmul-size", type=int, default=8192, help="side of the matrix product (the peak)")
    add("--round-s", type=float, default=3.0, help="seconds a round may take")
    add("--repeats", type=int, default=3, help="alternating rounds")
    add("--warmup-steps", type=int, default=5, help="steps of the first call")
    add("--batch", type=int, default=128)
    add("--depths", type=int, nargs="+", default=[20, 56])
    add("--precisions", nargs="+", choices=PRECISIONS, default=["float32", "mixed_float16"])
    add("--xla", choices=("both", "off", "on"), default="both", help="compiled: both, off, on")
    add("--budget-s", type=float, default=420.0, help="stop starting new work after this")
    add("--output", default=None, help="markdown file (default $OUT/gpu_<backends>.md)")
    add("--torch-compile-mode", choices=MODES, default="default", help="plain-pytorch only")
    args = parser.parse_args(argv)
    for name in ("steps", "repeats", "warmup_steps", "batch", "matmul_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if min(args.steps_per_execution) < 1:
        parser.error(f"--steps-per-execution must be >= 1; got {args.steps_per_execution}")
    keras_backends = [name for name in args.backends if name != "plain-pytorch"]
    if len(keras_backends) > 1 or len(set(args.backends)) < len(args.backends):
        parser.error(
            "--backend takes one Keras backend (Keras has one per process), plain-pytorch, "
            f"or one of each; got {args.backends}"
        )
    args.keras_backend = keras_backends[0] if keras_backends else None
    # The Keras contender first: its framework describes the machine and sets the peak.
    args.backends.sort(key=lambda name: name == "plain-pytorch")
    if args.keras_backend is None and args.steps_per_execution != [1]:
        parser.error("--steps-per-execution is a Keras setting: plain-pytorch takes only 1")
    if args.round_s <= 0:
        parser.error("--round-s must be > 0")
    bad_depths = [depth for depth in args.depths if depth < 8 or (depth - 2) % 6]
    if bad_depths:
        parser.error(f"--depths must be 6n+2 with n >= 1 (20, 32, 44, 56, 110); got {bad_depths}")
    return args


class KerasSetup:
    """`rk.CifarResNet(depth)` compiled with SGD and trained by `model.fit`."""

    def __init__(self, depth, precision, compiled, batch, batches, steps_per_execution=1):
        import keras

        import resnet_keras as rk

        self.keras, self.batch = keras, batch
        keras.mixed_precision.set_global_policy(precision)
        try:
            keras.utils.set_random_seed(0)
            self.model = rk.CifarResNet(depth)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        # Keras wraps the optimizer in a loss scaler itself under mixed_float16.
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
        self.model.compile(
            optimizer, loss, jit_compile=compiled, steps_per_execution=steps_per_execution
        )
        self.arrays, self.data = _synthetic_batches(batch, (32, 32, 3), batches), None
        if keras.backend.backend() == "tensorflow":  # a cached tf.data pipeline
            import tensorflow as tf

            dataset = tf.data.Dataset.from_tensor_slices(self.arrays).batch(batch).cache()
            # Without tf.data's autotuning thread, whose wake-up ends a `fit` call late.
            options = rk.data.pipeline_options()
            self.data = dataset.repeat().prefetch(tf.data.AUTOTUNE).with_options(options)

    def run(self, task, steps):
        """Seconds of a `fit` call of `steps` training steps, and the images it trained."""
        start = time.perf_counter()
        if self.data is not None:
            self.model.fit(self.data, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
        else:
            images, labels = (array[: steps * self.batch] for array in self.arrays)
            self.model.fit(images, labels, self.batch, epochs=1, shuffle=False, verbose=0)
        # Wait for the device: reading a weight back needs the last update done.
        self.keras.ops.convert_to_numpy(self.model.trainable_weights[-1].value)
        return time.perf_counter() - start, steps * self.batch


def plain_pytorch_setup(mode="default"):
    """`TorchCifar` in channels_last on the GPU if any, SGD with momentum, no weight decay,
    built from `KerasSetup`'s arguments (`batches` and `steps_per_execution` do not apply)."""

    def build(depth, precision, compiled, batch, batches, steps_per_execution=1):
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        options = dict(device=device, precision=precision, compile_mode=mode, weight_decay=0)
        return TorchCifar(depth, batch, "channels_last", compiled, **options)

    return build


def _describe_device(backend):
    """`(the device's name, framework and version, whether it is a GPU)`."""
    if backend == "tensorflow":
        import tensorflow as tf

        gpus, framework = tf.config.list_physical_devices("GPU"), f"TensorFlow {tf.__version__}"
        for gpu in gpus:  # grow on demand: one process builds several models in turn
            tf.config.experimental.set_memory_growth(gpu, True)
        details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
        name = details.get("device_name", "GPU") if gpus else None
    elif backend == "jax":
        import jax

        device, framework = jax.devices()[0], f"JAX {jax.__version__}"
        name = device.device_kind if device.platform != "cpu" else None
    else:
        import torch

        framework = f"PyTorch {torch.__version__}"
        name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return name or "CPU only (no GPU visible)", framework, name is not None


def _matmul_tflops(backend, size, gpu, products=10, rounds=3):
    """`(TFLOP/s, dtype)`: the best of `rounds` timings of `products` eager products.

    bfloat16 on a GPU (its tensor-core peak in practice), float32 on a CPU (where bfloat16
    is often emulated); Keras' ops on a Keras backend, torch for plain PyTorch.
    """
    dtype = "bfloat16" if gpu else "float32"
    if backend == "plain-pytorch":
        import torch

        generator = torch.Generator().manual_seed(0)
        a, b = (torch.randn(size, size, generator=generator) for _ in range(2))
        a, b = (x.to("cuda" if gpu else "cpu", getattr(torch, dtype)) for x in (a, b))
        multiply, read = torch.mm, lambda c: float(c[0, 0])
    else:
        import keras

        a, b = (keras.random.normal((size, size), dtype=dtype, seed=seed) for seed in (0, 1))
        multiply, ops = keras.ops.matmul, keras.ops
        read = lambda c: float(ops.convert_to_numpy(ops.cast(c[0, 0], "float32")))  # noqa: E731

    def run():
        for _ in range(products):  # every product runs; reading the last waits for them all
            c = multiply(a, b)
        read(c)

    run()  # compiles, allocates
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return products * 2 * size**3 / best / 1e12, dtype


def _setups(args, setup_classes, depth, elapsed):
    """Builds, warms up and probes every setup of one depth; a failure is a result."""
    batches = -(-max(args.steps, args.warmup_steps, 3) // max(args.steps_per_execution))
    batches *= max(args.steps_per_execution)  # a Keras execution runs whole groups of steps
    setups = {}
    for backend in args.backends:
        compiled_settings = {"both": (False, True), "off": (False,), "on": (True,)}[args.xla]
        if backend == "jax":  # uncompiled JAX is slow: it goes last, where the budget runs out
            compiled_settings = compiled_settings[::-1]
        per_execution = [1] if backend == "plain-pytorch" else args.steps_per_execution
        for compiled in compiled_settings:
            for precision in args.precisions:
                for n in per_execution:
                    label = (backend, precision, compiled, n)
                    setups[label] = _setup(
                        args, setup_classes[backend], depth, label, batches, elapsed
                    )
    return setups


def _setup(args, setup_class, depth, label, batches, elapsed):
    _, precision, compiled, n = label
    if elapsed() > args.budget_s:
        return {"error": "skipped (time budget)"}
    try:
        setup = setup_class(depth, precision, compiled, args.batch, batches, n)
        first = setup.run("train", -(-args.warmup_steps // n) * n)[0]
        probe_steps = -(-min(3, args.steps) // n) * n
        per_step = setup.run("train", probe_steps)[0] / probe_steps
    except Exception as error:  # noqa: BLE001 - a failing setup is a result
        message = f"failed: {type(error).__name__} {str(error)[:120]}".splitlines()[0].strip()
        print(f"ResNet-{depth} {label}: {message}", flush=True)
        return {"error": message}
    steps = max(1, min(args.steps, int(args.round_s / per_step)))
    steps = max(n, steps // n * n)
    rate = f"{args.batch / per_step:,.0f} images/s"
    print(f"ResNet-{depth} {label}: first call {first:.1f} s, {rate}", flush=True)
    return {"setup": setup, "first": first, "steps": steps, "rates": []}


def _rows(args, setups, depth, contenders, peak):
    """The table rows of one depth, each setup's rate relative to the depth's first one."""
    if args.keras_backend:
        import resnet_keras as rk

        train_flops = 6 * rk.count_macs(rk.CifarResNet(depth))
    else:
        from benchmarks.torch_resnet import count_macs

        train_flops = 6 * count_macs(depth)
    rows, base_rate = [], None
    for (backend, precision, compiled, n), entry in setups.items():
        cells = [f"ResNet-{depth}", contenders[backend], precision, "on" if compiled else "off", n]
        if "error" in entry:
            rows.append([*cells, entry["error"], "", "", "", "", ""])
            continue
        rate = statistics.median(entry["rates"])
        base_rate = base_rate or rate
        tflops = rate * train_flops / 1e12
        rows.append(
            [*cells, f"{rate:,.0f}", f"{rate / base_rate:.2f}", f"{tflops:.2f}"]
            + [f"{100 * tflops / peak:.1f}", f"{entry['first']:.1f}", entry["steps"]]
        )
    return rows


def _table(backends, header, rows, total_s):
    columns = ["model", "contender", "precision", "compiled", "steps per execution"]
    columns += ["images/s (median)", "vs the depth's first measured row", "effective TFLOP/s"]
    columns += ["% of matmul rate", "first call s", "steps per round"]
    lines = [f"# GPU benchmark: {' and '.join(backends)}", "", *[f"- {line}" for line in header]]
    lines += ["", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines + ["", f"wall time so far {total_s:.0f} s", ""])


def main(argv=None):
    args = _parse(argv)
    started = time.perf_counter()

    def elapsed():
        return time.perf_counter() - started

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.keras_backend:
        os.environ["KERAS_BACKEND"] = args.keras_backend  # read once, at Keras' import
    if len(args.backends) > 1:  # two frameworks share the GPU: no JAX preallocation
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    device, framework, gpu = _describe_device(args.backends[0])
    peak_framework = framework.split()[0]
    setup_classes, contenders, compilers = {}, {}, []
    for backend in args.backends:
        compiler = COMPILERS[backend]
        if backend == "plain-pytorch":
            mode = args.torch_compile_mode
            setup_classes[backend] = plain_pytorch_setup(mode)
            contenders[backend] = "plain PyTorch"
            compiler += f' (mode="{mode}")' if mode != "default" else ""
            if backend != args.backends[0]:
                framework += f", {_describe_device(backend)[1]}"
        else:
            import keras

            setup_classes[backend], contenders[backend] = KerasSetup, f"Keras on {backend}"
            framework += f", Keras {keras.__version__}"
        compilers.append(f"{compiler} for {contenders[backend]}")
    peak, peak_dtype = _matmul_tflops(args.backends[0], args.matmul_size, gpu)
    size = f"{args.matmul_size} x {args.matmul_size}"
    header = [
        f"device: {device}",
        f"{framework}, Python {platform.python_version()}",
        f"compiled means {'; '.join(compilers)}",
        f"batch {args.batch}; {args.repeats} alternating rounds of up to {args.steps} steps "
        f"(or {args.round_s:g} s) after a first call of {args.warmup_steps} steps "
        "(compilation included)",
        f"{peak_dtype} matrix product measured here ({size}, {peak_framework}): "
        f"{f'{peak:,.0f}' if peak >= 10 else f'{peak:.3g}'} TFLOP/s; effective TFLOP/s count "
        "6 x multiply-adds per training image",
    ]
    print("\n".join(header), flush=True)
    output = args.output
    if output is None and os.environ.get("OUT"):
        output = os.path.join(os.environ["OUT"], f"gpu_{'+'.join(args.backends)}.md")
    rows = []
    for depth in args.depths:
        setups = _setups(args, setup_classes, depth, elapsed)
        measured = [label for label, entry in setups.items() if "setup" in entry]
        for round_index in range(args.repeats):
            shift = round_index % max(len(measured), 1)
            for entry in [setups[label] for label in measured[shift:] + measured[:shift]]:
                if elapsed() < args.budget_s or not entry["rates"]:
                    seconds, images = entry["setup"].run("train", entry["steps"])
                    entry["rates"].append(images / seconds)
        rows += _rows(args, setups, depth, contenders, peak)
        del setups, measured
        if args.keras_backend:
            keras.backend.clear_session()
        report = _table(args.backends, header, rows, elapsed())
        if output:
            with open(output, "w") as handle:
                handle.write(report)
    print("\n" + report, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
