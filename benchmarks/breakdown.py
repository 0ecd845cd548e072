"""Where the time of a ResNet-20 training step goes: TensorFlow's profiler, op by op.

The library default (`rk.CifarResNet(20)`, compiled as `resnet_keras.training.fit`
compiles it, `resnet_keras` imported first) trains a few warm steps under
`tf.profiler`; the trace (an XSpace protobuf) is read back and the kernel time
summed per op type and per group (convolutions forward / backward, batch norm,
element-wise, the rest). TensorFlow runs independent ops on its inter-op threads
at the same time, so the summed kernel time can exceed the wall time of a step;
both are reported.

The same trace says how busy TensorFlow's intra-op threads are. The thread pool
marks each task it runs (`StartRegion` / `StopRegion` on the `Eigen` lines); laid
against the op timeline of the executor threads, this gives, for each op type
running alone, the thread-time the pool sat idle. A oneDNN op waits for the pool
while its jobs run, so there an idle pool thread is an idle core; TensorFlow's own
(Eigen) kernels run a share on the calling thread, so theirs is an upper bound.

Runs in a child process (`python -m benchmarks.breakdown CONFIG_JSON`) so that the
environment (threads, oneDNN) is set before TensorFlow starts.
"""

from __future__ import annotations

import bisect
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._harness import REPO_ROOT, Result, fmt, markdown_table, thread_environment

GROUPS = (
    ("convolution, weight gradient", ("Conv2DBackpropFilter",)),
    ("convolution, input gradient", ("Conv2DBackpropInput",)),
    ("convolution, forward", ("Conv2D",)),
    ("batch normalization (forward and gradient)", ("BatchNorm",)),
    ("ReLU and its gradient", ("Relu",)),
    ("additions (residual sums, gradient sums)", ("AddN", "AddV2")),
    ("option A shortcut (subsample, pad) and its gradient", ("MaxPool", "Pad", "Slice")),
)
# Zero-length profiler markers on the executor threads; not kernels.
MARKERS = ("StartRegion", "StopRegion", "Record", "MemoryAllocation", "MemoryDeallocation")
TOGETHER = "two or more ops at once"
BETWEEN = "no op (between ops)"
FULL = dict(batch=128, warmup=3, steps=3)
QUICK = dict(batch=8, warmup=1, steps=1)


def _op_type(name):
    # Profiler events are named "layer/path/op:OpType"; oneDNN kernels carry an
    # _Mkl / _MklNative prefix.
    op = name.split(":")[-1]
    for prefix in ("_MklNative", "_Mkl"):
        op = op.removeprefix(prefix)
    return op


def _group(op):
    for group, needles in GROUPS:
        if any(needle in op for needle in needles):
            return group
    return "everything else (optimizer, weight decay, loss, metrics)"


def thread_idleness(ops, tasks, threads):
    """Idle thread-time of a thread pool, by what the executor runs meanwhile.

    Args:
        ops: `(start, end, op_type)` kernels on the executor threads.
        tasks: `(start, end)` tasks run by the pool's threads.
        threads: threads in the pool.

    Returns:
        `{label: (wall, idle)}` in the units of the times: `label` is the op type
        where one op runs alone, `TOGETHER` where several overlap and `BETWEEN`
        where none runs; `wall` is the time spent in that state and `idle` the
        pool's idle thread-time during it (`threads * wall` minus its busy time).
        Only the span from the first to the last op counts.
    """
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    if not ops:
        return {}
    first, last = min(op[0] for op in ops), max(op[1] for op in ops)
    # A sweep over every boundary, ops' and tasks', in time order. At a shared
    # instant ends come before starts so that back-to-back work counts as busy.
    events = []
    for start, end, op in ops:
        events += [(start, 1, op), (end, -1, op)]
    for start, end in tasks:
        start, end = max(start, first), min(end, last)
        if end > start:
            events += [(start, 1, None), (end, -1, None)]
    events.sort(key=lambda event: (event[0], event[1]))
    running, busy, result = collections.Counter(), 0, {}
    previous = events[0][0]
    for time, change, op in events:
        if time > previous:
            count = sum(running.values())
            label = BETWEEN if count == 0 else TOGETHER if count > 1 else next(iter(+running))
            wall, idle = result.get(label, (0, 0))
            length = time - previous
            result[label] = (wall + length, idle + length * max(0, threads - busy))
            previous = time
        if op is None:
            busy += change
        else:
            running[op] += change
    return result


def first_task_delays(ops, tasks):
    """How long each op type, running alone, takes to hand its first task to the pool.

    Args:
        ops: `(start, end, op_type)` kernels on the executor threads.
        tasks: `(start, end)` tasks run by the pool's threads.

    Returns:
        `{op_type: [delay, ...]}`: for every op that overlaps no other op and hands
        the pool at least one task, the time from its start to the first task's start.
        Until then the op works alone on its calling thread (argument checks,
        primitive lookup, allocation) and the pool waits.
    """
    ops = sorted(ops)
    starts = sorted(start for start, _ in tasks)
    delays = collections.defaultdict(list)
    latest_end = None
    for index, (start, end, op) in enumerate(ops):
        overlaps_before = latest_end is not None and latest_end > start
        overlaps_after = index + 1 < len(ops) and ops[index + 1][0] < end
        latest_end = end if latest_end is None else max(latest_end, end)
        if overlaps_before or overlaps_after:
            continue
        first = bisect.bisect_left(starts, start)
        if first < len(starts) and starts[first] < end:
            delays[op].append(starts[first] - start)
    return dict(delays)


def profile_in_this_process(batch, warmup, steps, logdir, threads=None):
    """Profiles `steps` training steps of the library default.

    Returns:
        A JSON-able dict: wall ms per step, kernel ms per step by op type, the
        intra-op pool's idle time by what the executor runs (`thread_idleness`, ms
        per step), each op type's median delay to its first pool task (µs), the
        pool's thread count, whether oneDNN is on and the inter-op setting.
    """
    import time

    import resnet_keras as rk  # before TensorFlow, as the notebooks and the workers do

    # The contender the resnet20 benchmark calls the library default.
    from benchmarks._worker import KerasCifar

    contender = KerasCifar(depth=20, batch=batch)
    model = contender.model
    images, labels = contender.batches[0]

    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    for _ in range(warmup):
        model.train_on_batch(images, labels)
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, labels)
    wall = time.perf_counter() - start
    tf.profiler.experimental.stop()

    space = xplane_pb2.XSpace()
    path = next(Path(logdir).rglob("*.xplane.pb"))
    space.ParseFromString(path.read_bytes())
    kernels, ops, tasks, pool_lines = collections.Counter(), [], [], 0
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            base = line.timestamp_ns * 1000  # event offsets are in picoseconds
            # Kernels run on TensorFlow's executor threads ("tf_Compute/..."); the
            # "ExecutorState::Process" events wrap them and would count them twice.
            if line.name.startswith("tf_Compute"):
                for event in line.events:
                    name = names[event.metadata_id]
                    if name.startswith("ExecutorState"):
                        continue
                    op = _op_type(name)
                    kernels[op] += event.duration_ps / 1e9 / steps
                    if op not in MARKERS and event.duration_ps > 0:
                        start = base + event.offset_ps
                        ops.append((start, start + event.duration_ps, op))
            elif "Eigen" in line.name:  # the intra-op pool's threads
                pool_lines += 1
                marks = sorted(
                    (base + event.offset_ps, names[event.metadata_id].split(":")[-1])
                    for event in line.events
                )
                started = None
                for time, mark in marks:
                    if mark == "StartRegion":
                        started = time
                    elif mark == "StopRegion" and started is not None:
                        tasks.append((started, time))
                        started = None
    idleness = thread_idleness(ops, tasks, max(threads or 1, pool_lines)) if tasks else {}
    delays = first_task_delays(ops, tasks)
    return {
        "first_task_us": {op: statistics.median(d) / 1e6 for op, d in delays.items()},
        "idleness_ms": {
            label: [wall / 1e9 / steps, idle / 1e9 / steps]
            for label, (wall, idle) in idleness.items()
        },
        "pool_threads": max(threads or 1, pool_lines),
        "wall_ms": 1000 * wall / steps,
        "kernels_ms": dict(kernels),
        "onednn": rk.onednn_enabled(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
    }


def run(quick=False, threads=None, log=print, **overrides):
    """Profiles the library default in a child process and tabulates the kernel time."""
    from benchmarks._harness import default_threads

    settings = dict(QUICK if quick else FULL, **overrides)
    threads = threads or default_threads()
    env = dict(os.environ, **thread_environment(threads), KERAS_BACKEND="tensorflow")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="breakdown_") as logdir:
        config = dict(settings, logdir=logdir, threads=threads)
        log(f"profiling {settings['steps']} ResNet-20 training steps, batch {settings['batch']}")
        completed = subprocess.run(
            [sys.executable, "-m", "benchmarks.breakdown", json.dumps(config)],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=1800,
        )
    if completed.returncode != 0:
        raise RuntimeError(f"profiling failed: {completed.stderr[-2000:]}")
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    return _report(report, settings, threads, quick)


def _report(report, settings, threads, quick):
    kernels = report["kernels_ms"]
    total = sum(kernels.values())
    groups = collections.Counter()
    for op, ms in kernels.items():
        groups[_group(op)] += ms
    group_rows = [
        [group, fmt(ms), f"{fmt(100 * ms / total)} %"] for group, ms in groups.most_common()
    ]
    op_rows = [
        [f"`{op}`", _group(op), fmt(ms), f"{fmt(100 * ms / total)} %"]
        for op, ms in collections.Counter(kernels).most_common(12)
    ]
    intro = (
        f"The library default (`keras-tensorflow` of the resnet20 benchmark: oneDNN "
        f"{'on' if report['onednn'] else 'off'}, {threads} intra-op threads, inter-op "
        f"{report['inter_op'] or 'default'}), batch {settings['batch']}, {settings['steps']} "
        f"profiled steps after {settings['warmup']} warm-up steps"
        f"{' (QUICK MODE: not representative)' if quick else ''}. Wall time "
        f"**{fmt(report['wall_ms'])} ms per step**; kernel time summed over TensorFlow's "
        f"executor threads {fmt(total)} ms per step (independent ops overlap)."
    )
    idleness, pool = report["idleness_ms"], report["pool_threads"]
    delays = report["first_task_us"]
    markdown = "\n\n".join(
        [
            intro,
            "### By group\n\n"
            + markdown_table(["group", "kernel ms per step", "share"], group_rows),
            "### The 12 most expensive op types\n\n"
            + markdown_table(["op type", "group", "kernel ms per step", "share"], op_rows),
            _idleness_section(idleness, pool, delays),
        ]
    )
    convolutions = sum(ms for group, ms in groups.items() if group.startswith("convolution"))
    return Result(
        name="breakdown",
        title="Where a ResNet-20 training step spends its time (TensorFlow profiler)",
        markdown=markdown,
        numbers={
            "wall_ms": report["wall_ms"],
            "kernel_ms": total,
            "convolution_share": convolutions / total if total else float("nan"),
            "groups_ms": dict(groups),
            "pool_idle_share": _idle_share(idleness.values(), pool),
            "idleness_ms": idleness,
            "first_task_us": delays,
        },
    )


def _idle_share(states, threads):
    states = list(states)
    wall = sum(wall for wall, _ in states)
    return sum(idle for _, idle in states) / (threads * wall) if wall else float("nan")


def _idleness_section(idleness, threads, delays):
    heading = f"### How busy TensorFlow's {threads} intra-op threads are\n\n"
    if not idleness:
        return heading + "The trace holds no thread-pool tasks (`StartRegion` marks); not measured."
    rows = [
        [
            label if label in (TOGETHER, BETWEEN) else f"`{label}` alone",
            fmt(wall),
            fmt(idle),
            f"{fmt(100 * _idle_share([(wall, idle)], threads))} %",
            fmt(delays[label]) if label in delays else "",
        ]
        for label, (wall, idle) in sorted(idleness.items(), key=lambda item: -item[1][1])[:10]
    ]
    total_wall = sum(wall for wall, _ in idleness.values())
    total_idle = sum(idle for _, idle in idleness.values())
    rows.append(
        [
            "**whole step**",
            fmt(total_wall),
            fmt(total_idle),
            f"**{fmt(100 * _idle_share(idleness.values(), threads))} %**",
            "",
        ]
    )
    return (
        heading
        + (
            "What the executor runs, the wall time per step in that state, and the thread-time "
            "the intra-op pool sat idle meanwhile (its task marks in the same trace). A oneDNN "
            "op (`Conv2D*`, `FusedBatchNorm*`, `MaxPool`) waits for the pool while its jobs "
            "run, so its idle threads are idle cores; TensorFlow's own kernels (`AddV2`, "
            "`ReluGrad`, ...) run a share on the calling thread, so theirs is an upper bound. "
            "The last column is the median time from the start of an op running alone to "
            "its first pool task: until then the op works on its calling thread (argument "
            "checks, primitive lookup, allocation) and the pool waits. "
            "The 10 states with the most idle time:\n\n"
        )
        + markdown_table(
            [
                "executor runs",
                "wall ms per step",
                "idle thread-ms per step",
                "pool idle",
                "first pool task after (µs, median)",
            ],
            rows,
        )
    )


def _child(argv):
    config = json.loads(argv[1])
    result = profile_in_this_process(
        config["batch"], config["warmup"], config["steps"], config["logdir"], config["threads"]
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv))
