"""What the data-parallel path costs: ResNet-20 training images/s through `rk.fit` (issue 28).

Every contender trains `rk.CifarResNet(depth)` inside ONE call of `resnet_keras.training.fit`
(the paper recipe, its callbacks, `model.fit`'s loop over a tf.data pipeline of synthetic
32x32x3 batches held in memory), run in a thread of a worker process: a callback holds the
loop before each batch until the parent asks for steps, and the steps it then lets through
are timed from the first batch's start to the last one's loss being ready. So the compiled
step, the engine's distributed iterator and Keras' loop are what is measured, with no
recompilation between calls. The contenders:

- `tf-none`: no engine (the model built outside any scope, `fit`'s default);
- `tf-distributed-1`: built under `rk.training.distributed(devices=1)`, the library's one-device
  path (it yields None: no engine on one device); goal >= 0.95x `tf-none`;
- `tf-mirrored-1`: a `tf.distribute.MirroredStrategy` over the one CPU, built by hand (what
  an engine on one device would cost, which `distributed(devices=1)` avoids);
- in a process whose CPU is split into 2 logical devices before TensorFlow starts:
  `tf-2cpu-one-device` (no engine, the global batch on one device),
  `tf-2cpu-distributed-2` (`distributed(devices=2)`: MirroredStrategy, half a batch per
  device) and `tf-2cpu-distributed-2-sync-bn` (the same with `synchronized_batch_norm=True`);
- on JAX (`XLA_FLAGS=--xla_force_host_platform_device_count=2`, `jit_compile=True`):
  `jax-none`, `jax-data-parallel-1` (`keras.distribution.DataParallel` over one device, by
  hand) and `jax-distributed-2` (`distributed(devices=2)`: DataParallel over both).

The 2 logical devices share the same cores as the one device, so no speed-up is expected:
the ratios measure the engine's overhead. Workers answer one at a time, alternating round
by round; a ratio is the median of per-round ratios over several process lifetimes, with a
two-stage bootstrap interval (lifetimes, then rounds), as `resnet20`'s headline.
"""

from __future__ import annotations

import queue
import statistics
import threading
import time

from benchmarks import _harness as h

# label -> (worker process, engine, devices, extra contender arguments, description)
CONTENDERS = {
    "tf-none": ("tf-1cpu", "none", 1, {}, "no engine (`fit`'s default)"),
    "tf-distributed-1": (
        "tf-1cpu",
        "distributed",
        1,
        {},
        "`distributed(devices=1)` (yields None: the same path)",
    ),
    "tf-mirrored-1": ("tf-1cpu", "explicit", 1, {}, "MirroredStrategy over the one CPU, by hand"),
    "tf-2cpu-one-device": ("tf-2cpu", "none", 1, {}, "2 logical CPUs, no engine: one device"),
    "tf-2cpu-distributed-2": (
        "tf-2cpu",
        "distributed",
        2,
        {},
        "2 logical CPUs, `distributed(devices=2)` (MirroredStrategy)",
    ),
    "tf-2cpu-distributed-2-sync-bn": (
        "tf-2cpu",
        "distributed",
        2,
        {"synchronized_batch_norm": True},
        "the same, `fit(synchronized_batch_norm=True)`",
    ),
    "jax-none": ("jax-2cpu", "none", 1, {}, "JAX, 2 host devices, no engine: one device"),
    "jax-data-parallel-1": (
        "jax-2cpu",
        "explicit",
        1,
        {},
        "JAX, DataParallel over one device, by hand",
    ),
    "jax-distributed-2": (
        "jax-2cpu",
        "distributed",
        2,
        {},
        "JAX, `distributed(devices=2)` (DataParallel)",
    ),
}
WORKER_ENV = {
    "tf-1cpu": {"KERAS_BACKEND": "tensorflow"},
    "tf-2cpu": {"KERAS_BACKEND": "tensorflow"},
    "jax-2cpu": {
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
    },
}
# Logical CPU devices TensorFlow splits its CPU into, per worker (JAX: XLA_FLAGS above).
LOGICAL_CPUS = {"tf-2cpu": 2}
# ratio name -> (numerator, denominator, goal or None)
RATIOS = {
    "distributed-1_vs_none": ("tf-distributed-1", "tf-none", 0.95),
    "mirrored-1_vs_none": ("tf-mirrored-1", "tf-none", None),
    "distributed-2_vs_one-device": ("tf-2cpu-distributed-2", "tf-2cpu-one-device", None),
    "distributed-2-sync-bn_vs_one-device": (
        "tf-2cpu-distributed-2-sync-bn",
        "tf-2cpu-one-device",
        None,
    ),
    "2cpu-one-device_vs_none": ("tf-2cpu-one-device", "tf-none", None),
    "jax-data-parallel-1_vs_none": ("jax-data-parallel-1", "jax-none", None),
    "jax-distributed-2_vs_none": ("jax-distributed-2", "jax-none", None),
}
# `jax_steps`: steps per call of the JAX contenders (a JAX step takes seconds on a CPU).
FULL = dict(depth=20, batch=128, steps=2, jax_steps=1, repeats=5, warmup=2, lifetimes=2)
FULL["contenders"] = tuple(CONTENDERS)
QUICK = dict(depth=8, batch=8, steps=1, jax_steps=1, repeats=2, warmup=1, lifetimes=1)
QUICK["contenders"] = ("tf-none", "tf-distributed-1", "tf-2cpu-one-device", "tf-2cpu-distributed-2")
QUICK["contenders"] += ("jax-none", "jax-distributed-2")


# --- the contender (runs in a worker process) --------------------------------------------------


def _split_cpu(count):
    """Splits TensorFlow's CPU into `count` logical devices; only before TensorFlow starts."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    if tf.config.get_logical_device_configuration(cpu) is None:
        tf.config.set_logical_device_configuration(cpu, wanted)


class FitContender:
    """ResNet training inside one `rk.fit` call in a thread; `run` lets `steps` batches through.

    Args:
        engine: "none" (no scope), "distributed" (`rk.training.distributed(devices)`) or
            "explicit" (the backend's engine over one device, built by hand).
        devices: for "distributed".
        logical_cpus: TensorFlow: split the CPU into this many logical devices first.
        synchronized_batch_norm: passed to `fit`.
    """

    def __init__(
        self,
        engine="none",
        devices=1,
        logical_cpus=1,
        batch=128,
        depth=20,
        synchronized_batch_norm=False,
        **_,
    ):
        import keras

        if engine not in ("none", "distributed", "explicit"):
            raise ValueError(f"unknown engine {engine!r}")
        self.backend = keras.backend.backend()
        if logical_cpus > 1 and self.backend == "tensorflow":
            _split_cpu(logical_cpus)
        self.batch, self.engine, self.devices, self.depth = batch, engine, devices, depth
        self.sync = synchronized_batch_norm
        self.requests, self.replies = queue.Queue(), queue.Queue()
        self.remaining, self.start, self.info = 0, None, {}
        # Keras keeps its distribution scope per thread: the model is built and trained in
        # the same thread.
        threading.Thread(target=self._train, daemon=True).start()
        ready = self.replies.get()
        if isinstance(ready, BaseException):
            raise ready

    def _engine(self):
        import contextlib

        from resnet_keras.training import distribute

        if self.engine == "none":
            return contextlib.nullcontext()
        if self.engine == "distributed":
            return distribute.distributed(devices=self.devices)
        name = distribute.visible_devices()[0]
        if self.backend == "tensorflow":
            import tensorflow as tf

            one = tf.distribute.ReductionToOneDevice()
            engine = tf.distribute.MirroredStrategy(devices=[name], cross_device_ops=one)
        else:
            import keras

            engine = keras.distribution.DataParallel(devices=[name])

        @contextlib.contextmanager
        def scope():
            with engine.scope():
                yield engine

        return scope()

    def _dataset(self):
        import numpy as np
        import tensorflow as tf

        from benchmarks._worker import _synthetic_batches

        images, labels = _synthetic_batches(self.batch, (32, 32, 3))
        data = tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int64)))
        return data.batch(self.batch, drop_remainder=True).cache().repeat().prefetch(2)

    def _train(self):
        try:
            import keras

            import resnet_keras as rk
            from resnet_keras.training import distribute

            contender = self

            class Gate(keras.callbacks.Callback):
                def on_train_batch_begin(self, batch, logs=None):
                    contender._wait()

                def on_train_batch_end(self, batch, logs=None):
                    contender._step_done(logs)

            keras.utils.set_random_seed(0)
            with self._engine() as engine:
                model = rk.CifarResNet(self.depth)
            self.info = {
                "engine": type(engine).__name__ if engine is not None else "None",
                "replicas": distribute.replicas(engine),
            }
            rk.training.fit(
                model,
                self._dataset(),
                epochs=1,
                steps_per_epoch=10**7,
                distribution=engine,
                synchronized_batch_norm=self.sync,
                # Uncompiled JAX is ~150x slower: nobody trains that way.
                jit_compile=self.backend == "jax",
                callbacks=[Gate()],
                verbose=0,
            )
            self.replies.put(RuntimeError("fit returned before the benchmark ended"))
        except BaseException as error:  # noqa: BLE001 - handed to the waiting caller
            self.replies.put(error)

    def _wait(self):
        if self.remaining > 0:
            return
        self.replies.put(None if self.start is None else self.elapsed)
        self.remaining = self.requests.get()
        self.start = time.perf_counter()

    def _step_done(self, logs):
        self.remaining -= 1
        if self.remaining == 0:
            import keras

            # JAX dispatches asynchronously: the last step is done once its loss is.
            keras.ops.convert_to_numpy((logs or {})["loss"])
            self.elapsed = time.perf_counter() - self.start

    def run(self, task, steps):
        if task != "train":
            raise ValueError(f"unknown task {task!r}")
        self.requests.put(int(steps))
        while True:
            reply = self.replies.get()
            if isinstance(reply, BaseException):
                raise reply
            if reply is not None:  # (the first reply of all is the thread's "ready")
                return self.elapsed, steps * self.batch

    def describe(self):
        return dict(self.info)


# --- the parent (imports no framework) ---------------------------------------------------------


def _steps(label, settings):
    return settings["jax_steps"] if label.startswith("jax") else settings["steps"]


def _groups(labels, settings):
    groups = {}
    for label in labels:
        worker, engine, devices, extra, _ = CONTENDERS[label]
        group = groups.setdefault(worker, {"env": WORKER_ENV[worker], "contenders": []})
        spec = dict(id=label, kind="fit_engine", engine=engine, devices=devices, **extra)
        spec |= dict(logical_cpus=LOGICAL_CPUS.get(worker, 1), depth=settings["depth"])
        spec |= dict(batch=settings["batch"], warmup_tasks={"train": _steps(label, settings)})
        group["contenders"].append(spec)
    return groups


def run(quick=False, threads=None, log=print, **overrides):
    """Training images/s of each contender through `rk.fit`, side by side, and their ratios.

    Returns:
        A `Result`; `numbers`: `images_per_s/{label}` (median over every round);
        `ratios`: the keys of `RATIOS` whose two contenders ran (median of per-round
        ratios pooled over the lifetimes) with `_low` / `_high` (95 % interval).
    """
    settings = h.merge_settings(QUICK if quick else FULL, overrides)
    labels = list(settings["contenders"])
    for label in labels:
        if label not in CONTENDERS:
            raise ValueError(f"unknown contender {label!r}; allowed: {', '.join(CONTENDERS)}")
    threads = threads or h.default_threads()
    lifetimes, replies, failures, described = [], [], {}, {}
    for index in range(settings["lifetimes"]):
        log(f"process lifetime {index + 1}/{settings['lifetimes']}")
        started = time.perf_counter()
        workers, status, failed = h.start_workers_together(
            _groups(labels, settings), threads, settings["warmup"], log
        )
        try:
            if index == 0:
                failures = failed
                labels = [label for label in labels if label in workers]
            elif failed:  # the lifetimes so far stand
                log(f"fresh processes failed, stopping: {failed}")
                break
            if not labels:
                raise RuntimeError(f"no contender started: {failures}")
            described |= {label: status[label] for label in labels}
            log(f"warm-up done in {time.perf_counter() - started:.0f} s; measuring")
            replies.append({label: [] for label in labels})
            runners = {
                label: h.runner(
                    workers, label, "train", _steps(label, settings), replies[-1][label]
                )
                for label in labels
            }
            lifetimes.append(h.alternate(runners, settings["repeats"], log=log))
        finally:
            h.close_workers(workers)
    return _report(settings, threads, quick, labels, lifetimes, replies, described, failures)


def _report(settings, threads, quick, labels, lifetimes, replies, described, failures):
    numbers, ratios = {}, {}
    pooled = {label: [v for life in lifetimes for v in life[label].values] for label in labels}
    rows = []
    for label in labels:
        numbers[f"images_per_s/{label}"] = statistics.median(pooled[label])
        state = described[label]
        first = state["warmup_s"][0] if state["warmup_s"] else None
        engine = f"{state['describe'].get('engine')} ({state['describe'].get('replicas')})"
        samples = h.Samples(label, pooled[label])
        rows.append([f"`{label}`", CONTENDERS[label][4], engine, h.fmt_spread(samples, bold=True)])
        rows[-1].append(h.fmt(first))
    lines = []
    for name, (top, bottom, goal) in RATIOS.items():
        if top not in labels or bottom not in labels:
            continue
        groups = [h.round_ratios(zip(life[top].values, life[bottom].values)) for life in lifetimes]
        groups = [group for group in groups if group]
        value = ratios[name] = statistics.median([r for group in groups for r in group])
        low, high = ratios[f"{name}_low"], ratios[f"{name}_high"] = h.clustered_median_interval(
            groups
        )
        by_lifetime = ", ".join(h.fmt(statistics.median(group), 2) for group in groups)
        cpu = [h.per_cpu_second_ratios(life[top], life[bottom]) for life in replies]
        cpu = [group for group in cpu if group]
        ratios[f"{name}_cpu"] = statistics.median([r for group in cpu for r in group])
        cpu_low, cpu_high = h.clustered_median_interval(cpu)
        verdict = ""
        if goal is not None:
            verdict = f"; goal >= {goal}: {'met' if value >= goal else 'NOT met'}"
        lines.append(
            f"`{top}` / `{bottom}` = **{h.fmt(value, 2)}** (95 % interval {h.fmt(low, 2)}-"
            f"{h.fmt(high, 2)}; medians by lifetime {by_lifetime}{verdict}); images per "
            f"CPU-second of the worker {h.fmt(ratios[f'{name}_cpu'], 2)} "
            f"({h.fmt(cpu_low, 2)}-{h.fmt(cpu_high, 2)})"
        )
    lines += [f"`{label}` did not run: {error}" for label, error in failures.items()]
    header = ["contender", "setup", "engine (replicas)", "images/s median (min-max)"]
    intro = (
        f"ResNet-{settings['depth']} (`rk.CifarResNet({settings['depth']})`) trained by "
        f"`rk.fit` (paper recipe) on a tf.data pipeline of synthetic 32x32x3 images held in "
        f"memory, global batch {settings['batch']}, {threads} threads per process; "
        f"{settings['repeats']} alternating rounds of {settings['steps']} steps per contender "
        f"({settings['jax_steps']} on JAX) "
        f"after {settings['warmup']} warm-up calls, in {len(lifetimes)} process lifetime(s) "
        f"(images/s pooled over them){' (QUICK MODE: not representative)' if quick else ''}. "
        "Ratios: median of per-round ratios, 95 % bootstrap interval over lifetimes and rounds; "
        "the same of images per CPU-second of the worker process, which a stall of a shared "
        "machine does not move (an engine's extra work does)."
    )
    table = h.markdown_table(header + ["first call s (trace)"], rows)
    return h.Result(
        name="distribute",
        title="Data-parallel training through rk.fit: the engines' overhead",
        markdown=intro + "\n\n" + table + "\n\n" + "\n".join(f"- {line}" for line in lines),
        numbers=numbers,
        ratios=ratios,
    )
