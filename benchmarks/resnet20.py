"""Benchmarks 1-3: ResNet-20 training and inference images/s, and GFLOP/s against the machine.

Contenders, each in its own worker process (KERAS_BACKEND is per process):

* `keras-tensorflow`: `rk.CifarResNet(20)` compiled as `resnet_keras.training.fit`
  compiles it for a learner (paper recipe, coupled weight decay, accuracy metric,
  the profile's XLA setting), trained with `model.fit` on the TensorFlow backend,
  with `resnet_keras` imported first as the notebooks do. This is the library's
  default setup.
* `keras-tensorflow-onednn-off`, `keras-tensorflow-keras-bn`,
  `keras-tensorflow-sliced-shortcut`: the default minus one of its CPU speed
  defaults each (`benchmarks._ablations`); default / ablation is that default's
  measured effect.
* `keras-tensorflow-xla`: the default with `jit_compile=True`.
* `keras-jax`, `keras-torch`: the same model on the other backends with Keras'
  own compile default (`jit_compile="auto"`: XLA for JAX, eager for torch).
* `torch-nchw`, `torch-channels-last`, `torch-compile`: the same network written
  directly in PyTorch (`benchmarks.torch_resnet`), SGD momentum 0.9, weight decay
  1e-4, in NCHW, in channels_last, and channels_last under `torch.compile`.
* `keras-tensorflow-bf16`, `torch-channels-last-bf16`, `torch-compile-bf16`: the
  default under Keras' `mixed_bfloat16` policy and the two fastest PyTorch setups
  under `torch.autocast(bfloat16)`; they run by default only on a CPU with
  bfloat16 instructions (AVX512-BF16, AMX), and each is compared with the best
  PyTorch setup and the matrix product in its own precision. The library's default
  stays float32 (a learner's numbers should not depend on the CPU), so the float32
  pair is the headline.

Matrix products (TensorFlow and PyTorch, 2048x2048, fp32, and bf16 beside the
bfloat16 contenders) run in the same rounds; the faster one is the machine's
measured rate in that precision for benchmark 2.

FLOP convention: a training step costs 3x the forward multiply-adds (forward,
gradient of the input, gradient of the weights) at 2 FLOPs each, so
6 x `rk.count_macs(model)` FLOPs per image; inference 2 x MACs. Batch norm, ReLU,
additions and the optimizer update are not counted.
"""

from __future__ import annotations

import math
import statistics
import time

from benchmarks._harness import (
    NATIVE_BFLOAT16_FLAGS,
    Result,
    Worker,
    WorkerError,
    alternate,
    clustered_median_interval,
    default_threads,
    fmt,
    markdown_table,
    merge_settings,
    native_bfloat16,
    paired_ratio,
    round_ratios,
    thread_environment,
)

LIBRARY_DEFAULT = "keras-tensorflow"
FLOAT32, BFLOAT16 = "float32", "mixed_bfloat16"
# The Keras setup compared with the best PyTorch one in each precision.
KERAS_BY_PRECISION = {FLOAT32: LIBRARY_DEFAULT, BFLOAT16: "keras-tensorflow-bf16"}
BASELINE = "keras-tensorflow-baseline"

# label -> (worker, extra environment, contender spec)
_TF = {"KERAS_BACKEND": "tensorflow"}
CONTENDERS = {
    "keras-tensorflow": ("keras-tensorflow", _TF, {}),
    # The library default minus one of its CPU speed defaults each (benchmarks._ablations).
    "keras-tensorflow-onednn-off": (
        "keras-tensorflow-onednn-off",
        dict(_TF, TF_ENABLE_ONEDNN_OPTS="0"),
        {},
    ),
    "keras-tensorflow-keras-bn": (
        "keras-tensorflow-keras-bn",
        _TF,
        {"hook": "benchmarks._ablations:keras_batch_normalization"},
    ),
    "keras-tensorflow-sliced-shortcut": (
        "keras-tensorflow-sliced-shortcut",
        _TF,
        {"hook": "benchmarks._ablations:strided_slice_shortcut"},
    ),
    "keras-tensorflow-xla": ("keras-tensorflow", _TF, {"jit_compile": True}),
    "keras-jax": ("keras-jax", {"KERAS_BACKEND": "jax"}, {}),
    "keras-torch": ("keras-torch", {"KERAS_BACKEND": "torch"}, {}),
    "torch-nchw": ("torch", {}, {"memory_format": "nchw"}),
    "torch-channels-last": ("torch", {}, {"memory_format": "channels_last"}),
    "torch-compile": ("torch", {}, {"memory_format": "channels_last", "compile": True}),
    # Mixed bfloat16 (float32 weights, bfloat16 products): measured where the CPU has
    # bfloat16 instructions, and compared with PyTorch in the same precision only.
    "keras-tensorflow-bf16": ("keras-tensorflow", _TF, {"precision": BFLOAT16}),
    "torch-channels-last-bf16": (
        "torch",
        {},
        {"memory_format": "channels_last", "precision": BFLOAT16},
    ),
    "torch-compile-bf16": (
        "torch",
        {},
        {"memory_format": "channels_last", "compile": True, "precision": BFLOAT16},
    ),
}
# Contender -> the library default it undoes, for the "measured effect" lines.
ABLATIONS = {
    "keras-tensorflow-onednn-off": "oneDNN kernels on at import (resnet_keras/_runtime.py)",
    "keras-tensorflow-keras-bn": "fused batch normalization kernel "
    "(resnet_keras/layers/batch_normalization.py)",
    "keras-tensorflow-sliced-shortcut": "option A subsampling by 1x1 max-pool "
    "(resnet_keras/layers/shortcut.py)",
}
DESCRIPTIONS = {
    "keras-tensorflow": "rk.CifarResNet, TF backend, library default as a learner gets it "
    "(resnet_keras imported first, compiled as `fit` does)",
    "keras-tensorflow-onednn-off": "default minus oneDNN (TF_ENABLE_ONEDNN_OPTS=0, TensorFlow's "
    "own default on CPUs without AVX-512)",
    "keras-tensorflow-keras-bn": "default minus the fused BN kernel (Keras' BN ops)",
    "keras-tensorflow-sliced-shortcut": "default minus the max-pool shortcut (strided slice)",
    "keras-tensorflow-xla": "default plus jit_compile=True (XLA)",
    "keras-jax": "rk.CifarResNet, JAX backend (jit)",
    "keras-torch": "rk.CifarResNet, torch backend (eager)",
    "torch-nchw": "plain PyTorch, NCHW",
    "torch-channels-last": "plain PyTorch, channels_last",
    "torch-compile": "plain PyTorch, channels_last + torch.compile",
    "keras-tensorflow-bf16": "the default built under Keras' `mixed_bfloat16` policy "
    "(bfloat16 compute, float32 weights)",
    "torch-channels-last-bf16": "plain PyTorch, channels_last, `torch.autocast(bfloat16)`",
    "torch-compile-bf16": "plain PyTorch, channels_last + torch.compile, "
    "`torch.autocast(bfloat16)`",
    BASELINE: "another copy of the library (`--baseline`), TF backend",
}
# matmul contender -> (worker, dtype); the bfloat16 ones run beside bfloat16 contenders.
MATMULS = {
    "matmul-tensorflow": ("keras-tensorflow", "float32"),
    "matmul-torch": ("torch", "float32"),
    "matmul-tensorflow-bf16": ("keras-tensorflow", "bfloat16"),
    "matmul-torch-bf16": ("torch", "bfloat16"),
}
FULL = dict(
    batch=128,
    train_steps=3,
    infer_steps=4,
    repeats=12,
    warmup=3,
    matmul_size=2048,
    headline_lifetimes=4,
    headline_rounds=8,
)
QUICK = dict(
    batch=16,
    train_steps=1,
    infer_steps=1,
    repeats=2,
    warmup=1,
    matmul_size=256,
    headline_lifetimes=1,
    headline_rounds=2,
)
QUICK_CONTENDERS = ("keras-tensorflow", "torch-nchw", "torch-channels-last")


def precision_of(label, table=CONTENDERS):
    """The contender's precision: "float32" or "mixed_bfloat16"."""
    return table[label][2].get("precision", FLOAT32) if label in table else FLOAT32


def default_contenders(flags=None):
    """Every contender, less the bfloat16 ones on a CPU without bfloat16 instructions.

    Emulated bfloat16 is slower than float32 there, so it would measure nothing a
    learner would choose.
    """
    if native_bfloat16(flags):
        return tuple(CONTENDERS)
    return tuple(label for label in CONTENDERS if precision_of(label) == FLOAT32)


def _worker_kind(label):
    return "torch_cifar" if label.startswith("torch") else "keras_cifar"


def run(
    quick=False, contenders=None, threads=None, log=print, depth=20, baseline=None, **overrides
):
    """Measures training and inference of every contender, alternating, and the matmul rate.

    Args:
        quick: tiny sizes and three contenders, for a smoke test.
        contenders: labels from `CONTENDERS` (default: `default_contenders()`, which
            leaves out the bfloat16 ones on a CPU without bfloat16 instructions;
            quick: three).
        threads: threads per framework (default: every usable core).
        log: progress output.
        depth: CIFAR ResNet depth.
        baseline: folder holding another copy of `resnet_keras` (e.g. the last commit,
            from `git archive`), measured as `keras-tensorflow-baseline` to show the
            effect of a change side by side.
        **overrides: batch, train_steps, infer_steps, repeats, warmup, matmul_size,
            headline_lifetimes and headline_rounds (fresh pairs of worker processes
            holding only the library default and the fastest PyTorch setup, and
            rounds in each, for the headline ratio and its interval).

    Returns:
        A `Result`; `numbers` holds medians (images/s, GFLOP/s), `ratios` the
        library default over the best plain-PyTorch figure.
    """
    settings = merge_settings(QUICK if quick else FULL, overrides)
    labels = list(contenders or (QUICK_CONTENDERS if quick else default_contenders()))
    for label in labels:
        if label not in CONTENDERS:
            raise ValueError(f"unknown contender {label!r}; allowed: {', '.join(CONTENDERS)}")
    threads = threads or default_threads()
    batch = settings["batch"]
    table = dict(CONTENDERS)
    if baseline is not None:
        table[BASELINE] = (BASELINE, {"KERAS_BACKEND": "tensorflow"}, {})
        labels.insert(1, BASELINE)

    # Group contenders by worker process.
    groups = _group_contenders(labels, table, settings, depth, batch)
    precisions = {precision_of(label, table) for label in labels}
    matmuls = [
        matmul
        for matmul, (worker_name, dtype) in MATMULS.items()
        if worker_name in groups and (dtype == "float32" or BFLOAT16 in precisions)
    ]
    for matmul in matmuls:
        worker_name, dtype = MATMULS[matmul]
        groups[worker_name]["contenders"].append(
            dict(
                id=matmul,
                kind="matmul",
                framework="tensorflow" if "tensorflow" in matmul else "torch",
                size=settings["matmul_size"],
                dtype=dtype,
                warmup_tasks={"matmul": 2},
            )
        )

    started = time.perf_counter()
    workers, status, failures = {}, {}, {}
    try:
        _start_workers(groups, threads, settings, baseline, workers, status, failures, log)
        runners = _runners(workers, labels, settings)
        for matmul in matmuls:
            if matmul in workers:
                steps = 2 if quick else 3
                runners[("matmul", matmul)] = _runner(workers, matmul, "matmul", steps)
        log(f"warm-up done in {time.perf_counter() - started:.0f} s; measuring")
        samples = alternate(
            {f"{task}/{label}": fn for (task, label), fn in runners.items()},
            settings["repeats"],
            log=log,
        )
    finally:
        _close(workers)
    headline = _headline_lifetimes(samples, table, threads, settings, batch, depth, log)
    return _report(samples, status, failures, labels, settings, threads, depth, quick, headline)


def _start_workers(groups, threads, settings, baseline, workers, status, failures, log):
    """Starts one worker per group and fills `workers`, `status` and `failures` by label."""
    for worker_name, group in groups.items():
        log(f"starting worker {worker_name} ({len(group['contenders'])} contenders)")
        config = {
            "threads": threads,
            "warmup": settings["warmup"],
            "contenders": group["contenders"],
            "path": [str(baseline)] if worker_name == BASELINE else [],
        }
        env = dict(thread_environment(threads), **group["env"])
        try:
            worker = Worker(worker_name, config, env=env)
        except WorkerError as error:
            for spec in group["contenders"]:
                failures[spec["id"]] = str(error)
            continue
        for ident, state in worker.info["contenders"].items():
            if state["ok"]:
                workers[ident] = worker
                status[ident] = state
                status[ident]["runtime"] = worker.info.get("runtime", {})
            else:
                failures[ident] = state["error"]
                log(f"  {ident} unavailable: {state['error']}")


def _group_contenders(labels, table, settings, depth, batch):
    """Worker name -> {"env", "contenders"} for the given contender labels."""
    groups = {}
    for label in labels:
        worker_name, env, spec = table[label]
        group = groups.setdefault(worker_name, {"env": env, "contenders": []})
        group["contenders"].append(
            dict(
                id=label,
                kind=_worker_kind(label),
                depth=depth,
                batch=batch,
                warmup_tasks={"train": settings["train_steps"], "infer": settings["infer_steps"]},
                **spec,
            )
        )
    return groups


def _runner(workers, ident, task, steps):
    def measure():
        reply = workers[ident].request(op="run", id=ident, task=task, steps=steps)
        return reply["count"] / reply["seconds"]

    return measure


def _runners(workers, labels, settings):
    """(task, label) -> a callable timing one training or inference call."""
    runners = {}
    for label in labels:
        if label in workers:
            for task, steps in (("train", "train_steps"), ("infer", "infer_steps")):
                runners[(task, label)] = _runner(workers, label, task, settings[steps])
    return runners


def _close(workers):
    for worker in {id(w): w for w in workers.values()}.values():
        worker.close()


def _headline_lifetimes(samples, table, threads, settings, batch, depth, log):
    """Per-round ratios of the Keras setup to the fastest PyTorch setup, by lifetime.

    One pair per task and precision: the library default against the fastest
    float32 PyTorch setup and, where measured, the default under mixed bfloat16
    against the fastest bfloat16 one. The rounds of every contender (`samples`) ran
    in processes shared by all of them: that is the first lifetime.
    `headline_lifetimes` fresh pairs of processes, holding only these setups, add
    `headline_rounds` rounds each, so the headline's interval also covers how much
    a new pair of processes (and a later minute) moves the ratio.
    """
    pairs = {}
    for task in ("train", "infer"):
        for precision, keras_label in KERAS_BY_PRECISION.items():
            best = _best_torch(samples, task, precision, table)
            if best is None or f"{task}/{keras_label}" not in samples:
                continue
            pairs[(task, precision)] = (keras_label, best.label.split("/", 1)[1])
    lifetimes = [samples]
    labels = sorted({label for pair in pairs.values() for label in pair})
    for index in range(settings["headline_lifetimes"] if pairs else 0):
        log(f"headline: new processes {index + 1}/{settings['headline_lifetimes']} for {labels}")
        workers, status, failures = {}, {}, {}
        try:
            groups = _group_contenders(labels, table, settings, depth, batch)
            _start_workers(groups, threads, settings, None, workers, status, failures, log)
            if failures:
                # The rounds so far stand; the summary line counts the lifetimes it has.
                log(f"headline: fresh processes failed, stopping: {failures}")
                break
            runners = _runners(workers, labels, settings)
            lifetimes.append(
                alternate(
                    {
                        f"{task}/{label}": runners[(task, label)]
                        for (task, _), pair in pairs.items()
                        for label in pair
                    },
                    settings["headline_rounds"],
                )
            )
        finally:
            _close(workers)
    headline = {}
    for (task, precision), (keras_label, best) in pairs.items():
        by_lifetime = [
            round_ratios(
                zip(rounds[f"{task}/{keras_label}"].values, rounds[f"{task}/{best}"].values)
            )
            for rounds in lifetimes
        ]
        headline[(task, precision)] = {
            "keras": keras_label,
            "best": best,
            "lifetimes": [ratios for ratios in by_lifetime if ratios],
        }
    return headline


def _best_torch(samples, task, precision=FLOAT32, table=CONTENDERS):
    """The fastest plain-PyTorch setup of `task` in `precision` (None if none ran)."""
    best = None
    for key, value in samples.items():
        label = key.split("/", 1)[1]
        if (
            key.startswith(f"{task}/torch-")
            and precision_of(label, table) == precision
            and (best is None or value.median > best.median)
        ):
            best = value
    return best


def _report(samples, status, failures, labels, settings, threads, depth, quick, headline):
    macs = next(
        (s["describe"]["macs"] for s in status.values() if "macs" in s.get("describe", {})),
        None,
    )
    if macs is None:
        from benchmarks.torch_resnet import count_macs

        macs = count_macs(depth)
    train_flops, infer_flops = 6 * macs, 2 * macs
    # The machine's rate in each precision: the faster framework's matrix product.
    machine_gflops = {}
    for precision, dtype in ((FLOAT32, "float32"), (BFLOAT16, "bfloat16")):
        rates = [
            samples[f"matmul/{name}"].median / 1e9
            for name, (_, matmul_dtype) in MATMULS.items()
            if matmul_dtype == dtype and f"matmul/{name}" in samples
        ]
        machine_gflops[precision] = max(rates) if rates else float("nan")

    numbers, ratios, sections = {}, {}, []
    for task, title, flops in (
        ("train", "Training (forward + backward + SGD step)", train_flops),
        ("infer", "Inference (forward, eval mode)", infer_flops),
    ):
        best_by_precision = {
            precision: _best_torch(samples, task, precision) for precision in machine_gflops
        }
        rows = []
        for label in labels:
            key = f"{task}/{label}"
            if key not in samples:
                rows.append([label, DESCRIPTIONS[label], "failed", "", "", "", ""])
                continue
            value = samples[key]
            precision = precision_of(label)
            best, machine = best_by_precision[precision], machine_gflops[precision]
            low, high = value.spread
            gflops = value.median * flops / 1e9
            numbers[f"{task}_images_per_s/{label}"] = value.median
            numbers[f"{task}_gflops/{label}"] = gflops
            ratio = paired_ratio(value, best) if best else float("nan")
            ratios[f"{task}/{label}_vs_best_torch"] = ratio
            rows.append(
                [
                    f"`{label}`",
                    DESCRIPTIONS[label],
                    f"**{fmt(value.median)}** ({fmt(low)}-{fmt(high)})",
                    fmt(ratio, 2),
                    fmt(gflops),
                    "n/a" if math.isnan(machine) else fmt(100 * gflops / machine) + " %",
                    fmt(status[label]["warmup_s"][0] if status[label]["warmup_s"] else None),
                ]
            )
        header = [
            "contender",
            "setup",
            "images/s median (min-max)",
            "ratio to best PyTorch (same precision)",
            "effective GFLOP/s",
            "of matmul rate (same precision)",
            "first call s",
        ]
        sections.append(f"### {title}\n\n" + markdown_table(header, rows))

    matmul_rows = []
    for key, value in samples.items():
        if key.startswith("matmul/"):
            numbers[f"{key.split('/', 1)[1]}_gflops"] = value.median / 1e9
            low, high = value.spread
            matmul_rows.append(
                [
                    f"`{key.split('/', 1)[1]}`",
                    f"{settings['matmul_size']}x{settings['matmul_size']} "
                    + MATMULS[key.split("/", 1)[1]][1],
                    f"**{fmt(value.median / 1e9)}** ({fmt(low / 1e9)}-{fmt(high / 1e9)})",
                ]
            )
    if matmul_rows:
        sections.append(
            "### Machine limit: matrix product (same rounds)\n\n"
            + markdown_table(["contender", "size", "GFLOP/s median (min-max)"], matmul_rows)
        )
    numbers["machine_fp32_gflops"] = machine_gflops[FLOAT32]
    if not math.isnan(machine_gflops[BFLOAT16]):
        numbers["machine_bf16_gflops"] = machine_gflops[BFLOAT16]

    summary = []
    for (task, precision), pair in headline.items():
        if not pair["lifetimes"]:
            continue
        pooled = [ratio for group in pair["lifetimes"] for ratio in group]
        value = statistics.median(pooled)
        low, high = clustered_median_interval(pair["lifetimes"])
        if precision == FLOAT32:
            key, what, against = f"{task}_library_default_vs_best_torch", "library default", ""
        else:
            key, what, against = f"{task}_bf16_vs_best_torch_bf16", "bfloat16", " bfloat16"
        ratios[key], ratios[f"{key}_low"], ratios[f"{key}_high"] = value, low, high
        by_lifetime = ", ".join(fmt(statistics.median(group), 2) for group in pair["lifetimes"])
        fresh = len(pair["lifetimes"]) - 1
        summary.append(
            f"**{task}: {what} (`{pair['keras']}`) / best{against} PyTorch "
            f"(`{pair['best']}`) = {fmt(value, 2)}** (median of {len(pooled)} per-round "
            f"ratios from {len(pair['lifetimes'])} process lifetimes: the "
            f"{settings['repeats']} rounds above and {fresh} fresh pair"
            f"{'s' if fresh != 1 else ''} of processes holding only the compared setups, "
            f"{settings['headline_rounds']} rounds each; medians by lifetime {by_lifetime}; "
            f"95 % bootstrap interval over lifetimes and rounds {fmt(low, 2)}-{fmt(high, 2)})"
        )
    for label, change in ABLATIONS.items():
        for task in ("train", "infer"):
            default, undone = (
                samples.get(f"{task}/{LIBRARY_DEFAULT}"),
                samples.get(f"{task}/{label}"),
            )
            if default is None or undone is None:
                continue
            effect = paired_ratio(default, undone)
            ratios[f"{task}/effect_of/{label}"] = effect
            summary.append(f"{task}: effect of {change}: default / `{label}` = {fmt(effect, 2)}x")
    if failures:
        summary += [f"`{label}` did not run: {error}" for label, error in failures.items()]
    runtime = status.get(LIBRARY_DEFAULT, {}).get("runtime", {})
    intro = (
        f"ResNet-{depth} (`rk.CifarResNet({depth})`, option A, {macs:,} multiply-adds per image), "
        f"batch {settings['batch']}, synthetic 32x32x3 data, {threads} threads per framework"
        f" (TensorFlow inter-op: default {runtime.get('tf_inter_op', '')}), "
        f"{settings['repeats']} alternating rounds of {settings['train_steps']} training / "
        f"{settings['infer_steps']} inference steps after {settings['warmup']} warm-up calls"
        f"{' (QUICK MODE: not representative)' if quick else ''}. Effective GFLOP/s count "
        "6 x multiply-adds per training image and 2 x per inference image. "
        + (
            "The bfloat16 contenders run because this CPU has bfloat16 instructions; "
            "each is compared with PyTorch and the matrix product in its own precision."
            if BFLOAT16 in {precision_of(label) for label in labels}
            else "No bfloat16 contenders: this CPU has none of "
            + ", ".join(NATIVE_BFLOAT16_FLAGS)
            + " (emulated bfloat16 is slower than float32)."
        )
    )
    markdown = "\n\n".join([intro] + sections + ["\n".join(f"- {line}" for line in summary)])
    return Result(
        name="resnet20",
        title=f"ResNet-{depth} on this CPU: Keras backends against plain PyTorch",
        markdown=markdown,
        numbers=numbers,
        ratios=ratios,
    )
