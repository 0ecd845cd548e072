"""Benchmark 7, one shot on a GPU: CIFAR ResNet training images/s, by precision, compiled or not.

Run: `python -m benchmarks.gpu --backend B [B2]` with B one of

* `tensorflow`, `jax`, `torch`: `rk.CifarResNet(depth)` trained with `model.fit`
  on that Keras backend; "compiled" is `jit_compile=True`, which means XLA on
  TensorFlow and JAX and `torch.compile` on PyTorch;
* `plain-pytorch`: the same network written directly in PyTorch
  (`benchmarks.torch_resnet`, channels_last, SGD), the yardstick of
  `benchmarks/resnet20.py`; "compiled" is `torch.compile`, mixed precision is
  `torch.autocast` (with a gradient scaler for float16).

Two contenders side by side in one process: a Keras backend and `plain-pytorch`
(`--backend jax plain-pytorch`); their setups alternate round by round.

For every depth (20, 56) each setup (float32, mixed_float16 or mixed_bfloat16;
compiled or not; for Keras each `--steps-per-execution` too) is built and
warmed up (the first call holds the compilation and is reported), then timed in
alternating rounds on synthetic CIFAR-shaped data: Keras on TensorFlow reads a
cached tf.data pipeline, the other backends NumPy arrays. A round is `--steps`
steps, fewer for a setup so slow that they would take over `--round-s` seconds
(measured on a short probe call); a Keras round is one `fit` call, so short
rounds also time `fit`'s own start and end.

To show the distance to the machine's limit, the run first measures the
GPU's bfloat16 matrix-product rate with the same framework (its tensor-core
peak in practice; float32 on a CPU) and reports each setup's effective
TFLOP/s, counted as 6 x multiply-adds per training image (forward, and both
gradients of every convolution and dense layer), as a share of that rate.

A time budget (`--budget-s`) skips what would not fit instead of running over, and the
markdown table is rewritten to `--output` (default `$OUT/gpu_<backends>.md` when
`$OUT` is set) after every depth, so a run cut short keeps what it measured.

On a machine without a GPU it still runs (on the CPU), which is how it is tested:
`python -m benchmarks.gpu --steps 1 --repeats 1 --batch 8 --depths 20 --matmul-size 256`.
Keras on JAX or PyTorch needs no TensorFlow installed.
"""

from __future__ import annotations

import argparse
import functools
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


def _parse(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__)
    parser.add_argument(
        "--backend",
        dest="backends",
        nargs="+",
        choices=BACKENDS,
        default=[os.environ.get("KERAS_BACKEND", "tensorflow")],
        help="a Keras backend, plain-pytorch, or a Keras backend and plain-pytorch side by "
        "side (default: $KERAS_BACKEND or tensorflow)",
    )
    parser.add_argument("--steps", type=int, default=40, help="timed steps per round (at most)")
    parser.add_argument(
        "--steps-per-execution",
        type=int,
        nargs="+",
        default=[1],
        help="Keras backends: `compile(steps_per_execution=N)` for each N given",
    )
    parser.add_argument(
        "--matmul-size",
        type=int,
        default=8192,
        help="side of the matrix product that sets the peak",
    )
    parser.add_argument("--round-s", type=float, default=3.0, help="seconds a round may take")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds")
    parser.add_argument("--warmup-steps", type=int, default=5, help="steps of the first call")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--depths", type=int, nargs="+", default=[20, 56])
    parser.add_argument(
        "--precisions", nargs="+", choices=PRECISIONS, default=["float32", "mixed_float16"]
    )
    parser.add_argument(
        "--xla", choices=("both", "off", "on"), default="both", help="compiled: both, off or on"
    )
    parser.add_argument(
        "--budget-s", type=float, default=420.0, help="stop starting new work after this"
    )
    parser.add_argument(
        "--output", default=None, help="markdown file (default $OUT/gpu_<backends>.md)"
    )
    parser.add_argument(
        "--torch-compile-mode",
        choices=("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
        default="default",
        help="plain-pytorch: torch.compile's mode (reduce-overhead replays CUDA graphs)",
    )
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
        self.model.compile(
            optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=compiled,
            steps_per_execution=steps_per_execution,
        )
        images, labels = _synthetic_batches(batch, (32, 32, 3), num_batches=batches)
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch)
            dataset = dataset.cache().repeat().prefetch(tf.data.AUTOTUNE)
            # Without the autotuner's thread, whose wake-up ends each `fit` call late
            # (benchmarks/RESULTS.md, input pipeline).
            self.data = dataset.with_options(rk.data.pipeline_options())
            self.arrays = None
        else:
            self.data, self.arrays = None, (images, labels)

    def run(self, steps):
        start = time.perf_counter()
        if self.data is not None:
            self.model.fit(self.data, epochs=1, steps_per_epoch=steps, verbose=0)
        else:
            images, labels = self.arrays
            count = steps * self.batch
            self.model.fit(
                images[:count],
                labels[:count],
                batch_size=self.batch,
                epochs=1,
                shuffle=False,
                verbose=0,
            )
        # Wait for the device: reading a weight back needs the last update done.
        self.keras.ops.convert_to_numpy(self.model.trainable_weights[-1].value)
        return time.perf_counter() - start


class PlainPytorchSetup:
    """`benchmarks/resnet20.py`'s plain-PyTorch contender in channels_last, on the GPU if any.

    Plain SGD with momentum (no weight decay), as the Keras setups here compile. It takes
    `KerasSetup`'s arguments so that both are built alike; `batches` and
    `steps_per_execution` do not apply (it cycles 4 batches on the device, one step a call).
    """

    def __init__(
        self, depth, precision, compiled, batch, batches, steps_per_execution=1, mode="default"
    ):
        import torch

        self.contender = TorchCifar(
            depth,
            batch,
            memory_format="channels_last",
            compile=compiled,
            device="cuda" if torch.cuda.is_available() else "cpu",
            precision=precision,
            compile_mode=mode,
            weight_decay=0.0,
        )

    def run(self, steps):
        return self.contender.run("train", steps)[0]


def _describe_device(backend):
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        for gpu in gpus:
            # Grow on demand: one process builds several models in turn.
            tf.config.experimental.set_memory_growth(gpu, True)
        if not gpus:
            return "CPU only (no GPU visible)", f"TensorFlow {tf.__version__}"
        details = tf.config.experimental.get_device_details(gpus[0])
        name = details.get("device_name", gpus[0].name)
        capability = details.get("compute_capability")
        return f"{name} (compute capability {capability})", f"TensorFlow {tf.__version__}"
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        kind = device.device_kind if device.platform != "cpu" else "CPU only (no GPU visible)"
        return kind, f"JAX {jax.__version__}"
    import torch

    if not torch.cuda.is_available():
        return "CPU only (no GPU visible)", f"PyTorch {torch.__version__}"
    capability = ".".join(map(str, torch.cuda.get_device_capability(0)))
    name = torch.cuda.get_device_name(0)
    return f"{name} (compute capability {capability})", f"PyTorch {torch.__version__}"


def _matmul_tflops(backend, size, products=10, rounds=3):
    """The machine's matrix-product rate, measured with the framework that trains.

    bfloat16 on a GPU (its tensor-core peak in practice), float32 on a CPU (where
    bfloat16 is often emulated, so it would be no limit). The best of `rounds`
    timings of `products` `size` x `size` products.

    Returns:
        `(TFLOP/s, dtype name)`.
    """
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        dtype = jnp.bfloat16 if jax.devices()[0].platform == "gpu" else jnp.float32
        keys = jax.random.split(jax.random.PRNGKey(0))
        a, b = (jax.random.normal(key, (size, size), dtype) for key in keys)

        @jax.jit
        def products_of(a, b):
            # Each product feeds the next one's input, so none can be skipped.
            def body(_, c):
                return (c @ b) * jnp.asarray(1e-2, dtype)

            return jax.lax.fori_loop(0, products, body, a)

        def run():
            products_of(a, b).block_until_ready()

    elif backend == "tensorflow":
        import tensorflow as tf

        dtype = tf.bfloat16 if tf.config.list_physical_devices("GPU") else tf.float32
        a = tf.cast(tf.random.normal((size, size), seed=0), dtype)
        b = tf.cast(tf.random.normal((size, size), seed=1), dtype)

        @tf.function(jit_compile=False)
        def products_of(a, b):
            c = a
            for _ in range(products):
                c = tf.matmul(c, b) * tf.constant(1e-2, dtype)
            return c[0, 0]

        def run():
            float(products_of(a, b))

    else:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        generator = torch.Generator().manual_seed(0)
        a, b = (torch.randn(size, size, generator=generator).to(device, dtype) for _ in range(2))

        def run():
            # Eager: every product runs though only the last one is read.
            for _ in range(products):
                c = torch.mm(a, b)
            float(c[0, 0])  # waits for the device

    run()  # compiles, allocates
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    name = "bfloat16" if "bfloat16" in str(dtype) else "float32"
    return products * 2 * size**3 / best / 1e12, name


def _table(backends, header, rows, total_s):
    lines = [
        f"# GPU benchmark: {' and '.join(backends)}",
        "",
        *[f"- {line}" for line in header],
        "",
        "| model | contender | precision | compiled | steps per execution | images/s (median) "
        "| vs the depth's first measured row | effective TFLOP/s | % of matmul rate "
        "| first call s | steps per round |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    lines += ["", f"wall time so far {total_s:.0f} s", ""]
    return "\n".join(lines)


def _training_flops(depth, keras_backend):
    """6 x the multiply-adds of one image, counted without PyTorch where Keras is there."""
    if keras_backend:
        import resnet_keras as rk

        return 6 * rk.count_macs(rk.CifarResNet(depth))
    from benchmarks.torch_resnet import count_macs

    return 6 * count_macs(depth)


def _multiple(steps, step_size):
    """`steps` rounded up to a multiple of `step_size`: a Keras execution runs whole groups."""
    return -(-steps // step_size) * step_size


def _setup_labels(args):
    """(contender, precision, compiled, steps per execution) of every setup, in build order."""
    labels = []
    for backend in args.backends:
        compiled_settings = {"both": (False, True), "off": (False,), "on": (True,)}[args.xla]
        if backend == "jax":
            # Keras' default on JAX is compiled and uncompiled JAX is slow: where the
            # budget runs out, the uncompiled setups go first. Elsewhere compiling is slow.
            compiled_settings = compiled_settings[::-1]
        per_execution = [1] if backend == "plain-pytorch" else args.steps_per_execution
        labels += [
            (backend, precision, compiled, steps)
            for compiled in compiled_settings
            for precision in args.precisions
            for steps in per_execution
        ]
    return labels


def _measure_setups(args, setup_classes, depth, elapsed):
    """Builds, warms up and probes every setup of one depth; a failure is a result."""
    largest = max(args.steps_per_execution)
    batches = _multiple(max(args.steps, args.warmup_steps, 3), largest)
    setups = {}
    for label in _setup_labels(args):
        backend, precision, compiled, per_execution = label
        setup_class = setup_classes[backend]
        if elapsed() > args.budget_s:
            setups[label] = {"error": "skipped (time budget)"}
            continue
        try:
            setup = setup_class(depth, precision, compiled, args.batch, batches, per_execution)
            first = setup.run(_multiple(args.warmup_steps, per_execution))
            probe_steps = _multiple(min(3, args.steps), per_execution)
            per_step = setup.run(probe_steps) / probe_steps
        except Exception as error:  # noqa: BLE001 - a failing setup is a result
            message = str(error).splitlines()[0][:120] if str(error) else ""
            setups[label] = {"error": f"failed: {type(error).__name__} {message}".strip()}
            print(f"ResNet-{depth} {label}: {setups[label]['error']}", flush=True)
            continue
        steps = max(1, min(args.steps, int(args.round_s / per_step)))
        steps = max(per_execution, steps // per_execution * per_execution)
        setups[label] = {"setup": setup, "first": first, "steps": steps, "rates": []}
        print(
            f"ResNet-{depth} {backend} {precision} compiled={compiled} "
            f"steps_per_execution={per_execution}: first call {first:.1f} s, "
            f"{args.batch / per_step:,.0f} images/s on the probe",
            flush=True,
        )
    return setups


def main(argv=None):
    args = _parse(argv)
    started = time.perf_counter()

    def elapsed():
        return time.perf_counter() - started

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.keras_backend:
        os.environ["KERAS_BACKEND"] = args.keras_backend  # read once, at Keras' import
    if len(args.backends) > 1:
        # Two frameworks share the GPU: JAX must not take 75 % of its memory up front.
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    device, framework = _describe_device(args.backends[0])
    peak_framework = framework.split()[0]
    setup_classes, contenders, compilers = {}, {}, []
    for backend in args.backends:
        compiler = COMPILERS[backend]
        if backend == "plain-pytorch":
            setup_classes[backend] = functools.partial(
                PlainPytorchSetup, mode=args.torch_compile_mode
            )
            contenders[backend] = "plain PyTorch"
            if args.torch_compile_mode != "default":
                compiler += f' (mode="{args.torch_compile_mode}")'
            if backend != args.backends[0]:
                framework += f", {_describe_device(backend)[1]}"
        else:
            import keras

            setup_classes[backend] = KerasSetup
            contenders[backend] = f"Keras on {backend}"
            framework += f", Keras {keras.__version__}"
        compilers.append(f"{compiler} for {contenders[backend]}")
    peak, peak_dtype = _matmul_tflops(args.backends[0], args.matmul_size)
    peak_text = f"{peak:,.0f}" if peak >= 10 else f"{peak:.3g}"
    header = [
        f"device: {device}",
        f"{framework}, Python {platform.python_version()}",
        f"compiled means {'; '.join(compilers)}",
        f"batch {args.batch}; {args.repeats} alternating rounds of up to {args.steps} steps "
        f"(or {args.round_s:g} s) after a first call of {args.warmup_steps} steps "
        "(compilation included)",
        f"{peak_dtype} matrix product measured here ({args.matmul_size} x {args.matmul_size}, "
        f"{peak_framework}): {peak_text} TFLOP/s; effective "
        "TFLOP/s count 6 x multiply-adds per training image",
    ]
    print("\n".join(header), flush=True)
    output = args.output
    if output is None and os.environ.get("OUT"):
        output = os.path.join(os.environ["OUT"], f"gpu_{'+'.join(args.backends)}.md")

    rows = []
    for depth in args.depths:
        train_flops = _training_flops(depth, args.keras_backend)
        setups = _measure_setups(args, setup_classes, depth, elapsed)
        measured = [label for label, entry in setups.items() if "setup" in entry]
        for round_index in range(args.repeats):
            shift = round_index % max(len(measured), 1)
            for label in measured[shift:] + measured[:shift]:
                entry = setups[label]
                if elapsed() > args.budget_s and entry["rates"]:
                    continue
                seconds = entry["setup"].run(entry["steps"])
                entry["rates"].append(entry["steps"] * args.batch / seconds)

        base_rate = None
        for (backend, precision, compiled, per_execution), entry in setups.items():
            cells = [
                f"ResNet-{depth}",
                contenders[backend],
                precision,
                "on" if compiled else "off",
                per_execution,
            ]
            if "error" in entry:
                rows.append([*cells, entry["error"], "", "", "", "", ""])
                continue
            rate = statistics.median(entry["rates"])
            base_rate = base_rate or rate
            tflops = rate * train_flops / 1e12
            rows.append(
                [
                    *cells,
                    f"{rate:,.0f}",
                    f"{rate / base_rate:.2f}",
                    f"{tflops:.2f}",
                    f"{100 * tflops / peak:.1f}",
                    f"{entry['first']:.1f}",
                    entry["steps"],
                ]
            )
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
