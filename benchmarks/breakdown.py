"""Where the time of a ResNet-20 training step goes: TensorFlow's profiler, op by op.

The library default (`rk.CifarResNet(20)`, compiled as `resnet_keras.training.fit`
compiles it, `resnet_keras` imported first) trains a few warm steps under
`tf.profiler`; the trace (an XSpace protobuf) is read back and the kernel time
summed per op type and per group (convolutions forward / backward, batch norm,
element-wise, the rest). TensorFlow runs independent ops on its inter-op threads
at the same time, so the summed kernel time can exceed the wall time of a step;
both are reported.

Runs in a child process (`python -m benchmarks.breakdown CONFIG_JSON`) so that the
environment (threads, oneDNN) is set before TensorFlow starts.
"""

from __future__ import annotations

import collections
import json
import os
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


def profile_in_this_process(batch, warmup, steps, logdir):
    """Profiles `steps` training steps; returns wall ms/step and {op type: kernel ms/step}."""
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
    kernels = collections.Counter()
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            # Kernels run on TensorFlow's executor threads ("tf_Compute/..."); the
            # "ExecutorState::Process" events wrap them and would count them twice.
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = names[event.metadata_id]
                if not name.startswith("ExecutorState"):
                    kernels[_op_type(name)] += event.duration_ps / 1e9 / steps
    return {
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
    markdown = "\n\n".join(
        [
            intro,
            "### By group\n\n"
            + markdown_table(["group", "kernel ms per step", "share"], group_rows),
            "### The 12 most expensive op types\n\n"
            + markdown_table(["op type", "group", "kernel ms per step", "share"], op_rows),
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
        },
    )


def _child(argv):
    config = json.loads(argv[1])
    result = profile_in_this_process(
        config["batch"], config["warmup"], config["steps"], config["logdir"]
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv))
