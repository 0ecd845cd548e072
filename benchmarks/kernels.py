"""Why ResNet-20 trains at the speed it does: its convolution kernels one by one.

About 90 % of a ResNet-20 training step is convolution (see `breakdown`), and on
an x86 CPU both TensorFlow (oneDNN on, as `import resnet_keras` sets it) and
PyTorch hand every 3x3 convolution to Intel's oneDNN library. This benchmark runs
each convolution of ResNet-20 alone, forward, input gradient and weight gradient,
with the same inputs in both frameworks (results compared), alternating, at the
benchmark's thread count and at one thread. Summed with the number of times a
training step runs each kernel, it gives the convolution time of a step in each
framework, which the model code cannot change: it is the framework's kernel.

The oneDNN version, its threading runtime and the implementation it picks for
each pass are read from `ONEDNN_VERBOSE` in a short probe process per framework.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time

from benchmarks._harness import (
    REPO_ROOT,
    Result,
    Worker,
    WorkerError,
    alternate,
    default_threads,
    fmt,
    markdown_table,
    merge_settings,
    paired_ratio,
    thread_environment,
)
from benchmarks._worker import ConvKernels

PASSES = ConvKernels.PASSES
PASS_TITLES = {
    "forward": "forward",
    "input_gradient": "input gradient",
    "weight_gradient": "weight gradient",
}
FRAMEWORKS = ("tensorflow", "torch")
FULL = dict(batch=128, steps=4, repeats=8, warmup=2)
QUICK = dict(batch=4, steps=1, repeats=2, warmup=1)


def cifar_convolutions(depth=20):
    """The distinct 3x3 convolutions of a CIFAR ResNet and how often each occurs.

    Args:
        depth: 6n + 2 (20, 32, 44, 56, 110).

    Returns:
        A list of `(size, in_channels, out_channels, stride, count)`: the input's
        height and width, the channels, the stride, and the number of layers of
        that shape (option A shortcuts have no convolution).

    Examples:

    >>> cifar_convolutions(20)[0]
    (32, 3, 16, 1, 1)
    >>> sum(shape[-1] for shape in cifar_convolutions(20))
    19
    """
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be an int of the form 6n + 2 (>= 8), got {depth!r}")
    blocks = (depth - 2) // 6
    shapes = [(32, 3, 16, 1, 1), (32, 16, 16, 1, 2 * blocks)]
    for size, width in ((32, 16), (16, 32)):
        # The first block of the next stage halves the size and doubles the width.
        shapes.append((size, width, 2 * width, 2, 1))
        shapes.append((size // 2, 2 * width, 2 * width, 1, 2 * blocks - 1))
    return shapes


def _tasks(shapes):
    """(index, pass) pairs a training step runs: the stem's input gradient is never needed."""
    return [
        (index, name)
        for index in range(len(shapes))
        for name in PASSES
        if not (index == 0 and name == "input_gradient")
    ]


_PROBES = {
    "tensorflow": (
        "import resnet_keras, tensorflow as tf\n"
        "x = tf.random.normal([8, 32, 32, 16]); w = tf.Variable(tf.random.normal([3, 3, 16, 16]))\n"
        "with tf.GradientTape() as tape:\n"
        "    tape.watch(x); y = tf.reduce_sum(tf.nn.conv2d(x, w, 1, 'SAME'))\n"
        "tape.gradient(y, [x, w])\n"
    ),
    "torch": (
        "import torch\n"
        "x = torch.randn(8, 16, 32, 32).contiguous(memory_format=torch.channels_last)\n"
        "x.requires_grad_()\n"
        "conv = torch.nn.Conv2d(16, 16, 3, padding=1, bias=False)\n"
        "conv = conv.to(memory_format=torch.channels_last)\n"
        "conv(x).sum().backward()\n"
    ),
}
_PROP_KINDS = {
    "forward_training": "forward",
    "forward_inference": "forward",
    "backward_data": "input_gradient",
    "backward_weights": "weight_gradient",
}


def parse_onednn_verbose(text):
    """oneDNN's version, threading runtime and convolution implementation per pass.

    Args:
        text: output of a process run with `ONEDNN_VERBOSE=1`.

    Returns:
        A dict with `version`, `runtime` (e.g. "threadpool", "OpenMP") and one
        implementation name per pass; values missing from the text are "unknown".

    Examples:

    >>> lines = ("onednn_verbose,v1,info,oneDNN v3.7.3 (commit N/A)\\n"
    ...          "onednn_verbose,v1,info,cpu,runtime:threadpool,nthr:2\\n"
    ...          "onednn_verbose,v1,primitive,exec,cpu,convolution,jit:avx2,backward_weights,x,1.0")
    >>> info = parse_onednn_verbose(lines)
    >>> info["version"], info["runtime"], info["weight_gradient"], info["forward"]
    ('v3.7.3', 'threadpool', 'jit:avx2', 'unknown')
    """
    info = {"version": "unknown", "runtime": "unknown"}
    info.update({name: "unknown" for name in PASSES})
    version = re.search(r"info,oneDNN (v[\w.]+)", text)
    runtime = re.search(r"info,cpu,runtime:([\w]+)", text)
    if version:
        info["version"] = version.group(1)
    if runtime:
        info["runtime"] = runtime.group(1)
    for match in re.finditer(r",exec,cpu,convolution,([^,]+),(\w+),", text):
        name = _PROP_KINDS.get(match.group(2))
        if name and info[name] == "unknown":
            info[name] = match.group(1)
    return info


def onednn_runtime(framework, threads):
    """Runs a tiny convolution with `ONEDNN_VERBOSE=1` and parses what oneDNN reports."""
    env = dict(os.environ, **thread_environment(threads), ONEDNN_VERBOSE="1")
    env["PYTHONPATH"] = os.pathsep.join(
        [p for p in (env.get("PYTHONPATH", ""), str(REPO_ROOT)) if p]
    )
    try:
        completed = subprocess.run(
            [sys.executable, "-c", _PROBES[framework]],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
            cwd=str(REPO_ROOT),
        )
        text = completed.stdout + completed.stderr
    except (OSError, subprocess.SubprocessError) as error:
        text = str(error)
    return parse_onednn_verbose(text)


def run(quick=False, threads=None, log=print, depth=20, **overrides):
    """Times every convolution of a CIFAR ResNet in TensorFlow and PyTorch, alternating.

    Args:
        quick: a tiny batch and two rounds, for a smoke test.
        threads: threads per framework (default: every usable core); one thread is
            measured too, to separate the kernels from their threading.
        log: progress output.
        depth: CIFAR ResNet depth.
        **overrides: batch, steps, repeats, warmup.

    Returns:
        A `Result`; `numbers` holds milliseconds per kernel call and per training
        step, `ratios` TensorFlow's time over PyTorch's (above 1: TensorFlow slower).
    """
    settings = merge_settings(QUICK if quick else FULL, overrides)
    threads = threads or default_threads()
    thread_counts = [threads] if threads == 1 else [threads, 1]
    shapes = cifar_convolutions(depth)
    tasks = _tasks(shapes)

    workers, info = {}, {}
    busy = {}
    try:
        for count in thread_counts:
            for framework in FRAMEWORKS:
                name = f"{framework}-{count}"
                log(f"starting worker {name}")
                config = {
                    "threads": count,
                    "warmup": settings["warmup"],
                    "contenders": [
                        {
                            "id": name,
                            "kind": "conv_kernels",
                            "framework": framework,
                            "shapes": [list(shape[:4]) for shape in shapes],
                            "batch": settings["batch"],
                            "warmup_tasks": {f"{index}/{kernel}": 1 for index, kernel in tasks},
                        }
                    ],
                }
                try:
                    worker = Worker(name, config, env=thread_environment(count))
                except WorkerError as error:
                    raise RuntimeError(f"{name} could not start: {error}") from error
                state = worker.info["contenders"][name]
                if not state["ok"]:
                    worker.close()
                    raise RuntimeError(f"{name} failed: {state['error']}")
                workers[name] = worker
                info[name] = state["describe"]

        def runner(name, task):
            def measure():
                reply = workers[name].request(op="run", id=name, task=task, steps=settings["steps"])
                busy.setdefault(name, []).append(reply["cpu_seconds"] / reply["seconds"])
                return reply["count"] / reply["seconds"]  # calls per second

            return measure

        runners = {
            f"{name}|{index}/{kernel}": runner(name, f"{index}/{kernel}")
            for name in workers
            for index, kernel in tasks
        }
        started = time.perf_counter()
        samples = alternate(runners, settings["repeats"])
        log(
            f"measured {len(runners)} kernels x {settings['repeats']} rounds "
            f"in {time.perf_counter() - started:.0f} s"
        )
    finally:
        for worker in workers.values():
            worker.close()

    runtimes = {framework: onednn_runtime(framework, threads) for framework in FRAMEWORKS}
    return _report(
        samples, info, busy, runtimes, shapes, tasks, thread_counts, settings, depth, quick
    )


def _report(samples, info, busy, runtimes, shapes, tasks, thread_counts, settings, depth, quick):
    batch = settings["batch"]
    numbers, ratios, sections = {}, {}, []
    threads = thread_counts[0]

    def milliseconds(name, index, kernel):
        # The workers count kernel calls: the median rate is calls per second.
        return 1e3 / samples[f"{name}|{index}/{kernel}"].median

    # Same inputs, same function: the sums of the results must agree where the
    # padding agrees (stride 1); stride 2 pads differently, as the two ResNets do.
    checks = {}
    for index, kernel in tasks:
        tf_sum = info[f"tensorflow-{threads}"]["checksums"][f"{index}/{kernel}"]
        torch_sum = info[f"torch-{threads}"]["checksums"][f"{index}/{kernel}"]
        if shapes[index][3] != 1:
            checks[(index, kernel)] = "padding differs"
        else:
            scale = max(1.0, abs(tf_sum), abs(torch_sum))
            checks[(index, kernel)] = "yes" if abs(tf_sum - torch_sum) <= 1e-3 * scale else "NO"

    rows = []
    for index, kernel in tasks:
        size, cin, cout, stride, count = shapes[index]
        row = [f"{size}x{size}, {cin}->{cout}, stride {stride}", PASS_TITLES[kernel], str(count)]
        for thread_count in thread_counts:
            tf_name, torch_name = f"tensorflow-{thread_count}", f"torch-{thread_count}"
            tf_ms = milliseconds(tf_name, index, kernel)
            torch_ms = milliseconds(torch_name, index, kernel)
            # Time ratio TF / torch, per round: torch's rate over TensorFlow's.
            ratio = paired_ratio(
                samples[f"{torch_name}|{index}/{kernel}"], samples[f"{tf_name}|{index}/{kernel}"]
            )
            numbers[f"{thread_count}/tensorflow/{index}/{kernel}_ms"] = tf_ms
            numbers[f"{thread_count}/torch/{index}/{kernel}_ms"] = torch_ms
            row += [fmt(tf_ms, 2), fmt(torch_ms, 2), f"**{ratio:.2f}**"]
        row.append(checks[(index, kernel)])
        rows.append(row)
    headers = ["convolution (input, channels, stride)", "pass", "layers"]
    for thread_count in thread_counts:
        label = f"{thread_count} thread{'s' if thread_count > 1 else ''}"
        headers += [f"TF ms ({label})", f"PyTorch ms ({label})", f"TF / PyTorch time ({label})"]
    headers.append("same result")

    summary = []
    for thread_count in thread_counts:
        totals = {}
        for framework in FRAMEWORKS:
            name = f"{framework}-{thread_count}"
            totals[framework] = sum(
                shapes[index][4] * milliseconds(name, index, kernel) for index, kernel in tasks
            )
            numbers[f"{thread_count}/{framework}/step_ms"] = totals[framework]
            numbers[f"{thread_count}/{framework}/cores_busy"] = statistics.median(busy[name])
        ratios[f"{thread_count}/step_time"] = totals["tensorflow"] / totals["torch"]
        summary.append(
            [
                str(thread_count),
                fmt(totals["tensorflow"], 1),
                fmt(totals["torch"], 1),
                f"**{ratios[f'{thread_count}/step_time']:.2f}**",
                fmt(numbers[f"{thread_count}/tensorflow/cores_busy"], 2),
                fmt(numbers[f"{thread_count}/torch/cores_busy"], 2),
            ]
        )
    if len(thread_counts) > 1:
        for framework in FRAMEWORKS:
            ratios[f"{framework}/thread_speedup"] = (
                numbers[f"1/{framework}/step_ms"] / numbers[f"{threads}/{framework}/step_ms"]
            )

    runtime_rows = [
        [
            "TensorFlow" if framework == "tensorflow" else "PyTorch",
            runtimes[framework]["version"],
            runtimes[framework]["runtime"],
        ]
        + [f"`{runtimes[framework][name]}`" for name in PASSES]
        for framework in FRAMEWORKS
    ]
    mismatches = [key for key, value in checks.items() if value == "NO"]
    sections.append(
        f"Every 3x3 convolution of ResNet-{depth} (`cifar_convolutions({depth})`), batch {batch}, "
        f"run alone with the same inputs in TensorFlow (oneDNN on, `resnet_keras` imported "
        f"first) and PyTorch (channels_last), {settings['steps']} calls per measurement, "
        f"{settings['repeats']} alternating rounds after {settings['warmup']} warm-up calls"
        f"{' (QUICK MODE: not representative)' if quick else ''}. "
        "Ratios are medians of per-round ratios; above 1 TensorFlow takes longer."
    )
    sections.append("### What oneDNN runs in each framework\n")
    sections.append(
        markdown_table(
            ["framework", "oneDNN", "threading runtime"] + [PASS_TITLES[p] for p in PASSES],
            runtime_rows,
        )
    )
    sections.append("### Convolution time of one training step\n")
    sections.append(
        "Each kernel's median time times the layers that run it, summed over the "
        "forward pass and both gradients (the stem needs no input gradient). "
        "Cores busy: process CPU time over wall time per call (OpenMP's spin-waiting "
        "counts as busy).\n"
    )
    sections.append(
        markdown_table(
            [
                "threads",
                "TensorFlow ms per step",
                "PyTorch ms per step",
                "TF / PyTorch time",
                "TF cores busy",
                "PyTorch cores busy",
            ],
            summary,
        )
    )
    if len(thread_counts) > 1:
        sections.append(
            f"\nSpeed-up from 1 to {threads} threads: TensorFlow "
            f"{ratios['tensorflow/thread_speedup']:.2f}x, PyTorch "
            f"{ratios['torch/thread_speedup']:.2f}x."
        )
    sections.append("### Kernel by kernel\n")
    sections.append(markdown_table(headers, rows))
    if mismatches:
        sections.append(
            f"\n**Results differ** for {mismatches}: the comparison is not like for like."
        )
    return Result(
        name="kernels",
        title=f"ResNet-{depth}'s convolutions kernel by kernel: TensorFlow against PyTorch",
        markdown="\n\n".join(sections),
        numbers=numbers,
        ratios=ratios,
    )
