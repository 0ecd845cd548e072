"""Timing machinery of the benchmarks: worker processes, alternation, statistics.

Keras reads KERAS_BACKEND and TensorFlow TF_ENABLE_ONEDNN_OPTS once per process, so each
contender lives in a worker (`benchmarks._worker`). The parent imports no framework and asks
the warm workers in turn for one timed call: only one computes at a time, and load that
drifts over a run hits every contender alike. Ratios pair calls of the same round.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class WorkerError(RuntimeError):
    """A worker process failed to start, crashed or reported an error."""


def default_threads():
    """Threads each framework gets: every usable core."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def thread_environment(threads):
    """Environment variables that pin the thread pools before any framework is imported."""
    pools = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS")
    quiet = {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    return dict.fromkeys(pools, str(int(threads))) | quiet


class Worker:
    """A `benchmarks._worker` process (JSON `config`, extra `env`); `info` is its first answer."""

    def __init__(self, name, config, env=None):
        self.name = name
        full_env = dict(os.environ, **(env or {}))
        # Entries already in PYTHONPATH come first, then the repository (for `benchmarks`).
        paths = [p for p in full_env.get("PYTHONPATH", "").split(os.pathsep) if p]
        full_env["PYTHONPATH"] = os.pathsep.join([*paths, str(REPO_ROOT)])
        self._stderr = None if os.environ.get("BENCH_DEBUG") else open(os.devnull, "w")
        command = [sys.executable, "-m", "benchmarks._worker", json.dumps(config)]
        pipes = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        self.process = subprocess.Popen(
            command, env=full_env, cwd=REPO_ROOT, text=True, bufsize=1, **pipes
        )
        self.info = self._reply()  # the worker answers once its contenders are warm

    def _reply(self):
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait(timeout=30)
            raise WorkerError(f"worker {self.name!r} exited (code {code}) without answering")
        message = json.loads(line)
        if not message.get("ok"):
            raise WorkerError(f"worker {self.name!r}: {message.get('error')}")
        return message

    def request(self, **message):
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        return self._reply()

    def close(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.process.stdin.flush()
                self.process.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        if self._stderr is not None:
            self._stderr.close()


def start_workers(groups, threads, warmup, log=print, paths=None):
    """Starts one worker per group (name -> {"env", "contenders"}), each warm when it answers.

    `paths`: worker name -> folders put first on its sys.path. Returns `(workers, status,
    failures)`, by contender id: its `Worker`, its state (`warmup_s`, `describe`, the
    worker's `runtime`), the error of one that failed.
    """
    workers, status, failures = {}, {}, {}
    for name, group in groups.items():
        log(f"starting worker {name} ({len(group['contenders'])} contenders)")
        config = {"threads": threads, "warmup": warmup, "contenders": group["contenders"]}
        config["path"] = (paths or {}).get(name, [])
        try:
            worker = Worker(name, config, thread_environment(threads) | group["env"])
        except WorkerError as error:
            failures.update({spec["id"]: str(error) for spec in group["contenders"]})
            continue
        for ident, state in worker.info["contenders"].items():
            if state["ok"]:
                workers[ident], status[ident] = worker, dict(state, runtime=worker.info["runtime"])
            else:
                failures[ident] = state["error"]
                log(f"  {ident} unavailable: {state['error']}")
        if worker not in workers.values():
            worker.close()
    return workers, status, failures


def start_workers_together(groups, threads, warmup, log=print):
    """`start_workers`, every worker warming up at the same time (nothing is timed yet).

    On a machine shared with other work the warm-ups (imports, tracing, compilation) of a
    benchmark with many workers take minutes each; side by side they overlap.
    """
    from concurrent.futures import ThreadPoolExecutor

    def start(item):
        name, group = item
        log(f"starting worker {name} ({len(group['contenders'])} contenders)")
        config = {"threads": threads, "warmup": warmup, "contenders": group["contenders"]}
        try:
            return name, Worker(name, config, thread_environment(threads) | group["env"])
        except WorkerError as error:
            return name, error

    workers, status, failures = {}, {}, {}
    with ThreadPoolExecutor(max_workers=max(1, len(groups))) as pool:
        started = list(pool.map(start, groups.items()))
    for name, worker in started:
        if isinstance(worker, WorkerError):
            failures.update({spec["id"]: str(worker) for spec in groups[name]["contenders"]})
            continue
        for ident, state in worker.info["contenders"].items():
            if state["ok"]:
                workers[ident], status[ident] = worker, dict(state, runtime=worker.info["runtime"])
            else:
                failures[ident] = state["error"]
                log(f"  {ident} unavailable: {state['error']}")
        if worker not in workers.values():
            worker.close()
    return workers, status, failures


def per_cpu_second_ratios(numerator, denominator):
    """Per-round ratios of images per CPU-second of the worker process, from `runner` replies.

    A stall of a shared machine (the process waiting for a core) lengthens the wall time of
    a call, not the CPU time it uses; an engine's extra work shows in both.
    """
    return [
        (a["count"] / a["cpu_seconds"]) / (b["count"] / b["cpu_seconds"])
        for a, b in zip(numerator, denominator)
        if a["cpu_seconds"] > 0 and b["cpu_seconds"] > 0
    ]


def close_workers(workers):
    for worker in {id(w): w for w in workers.values()}.values():
        worker.close()


def runner(workers, ident, task, steps, replies=None):
    """A callable timing one call of `ident`'s `task` (items/s); `replies` collects the answers."""

    def measure():
        reply = workers[ident].request(op="run", id=ident, task=task, steps=steps)
        if replies is not None:
            replies.append(reply)
        return reply["count"] / reply["seconds"]

    return measure


def library_workers(name, contenders, threads, warmup, log=print):
    """One TensorFlow worker for contenders that must all start (`RuntimeError` otherwise)."""
    started = time.perf_counter()
    groups = {name: {"env": {"KERAS_BACKEND": "tensorflow"}, "contenders": contenders}}
    workers, _, failures = start_workers(groups, threads, warmup, log)
    if failures:
        close_workers(workers)
        raise RuntimeError(f"{', '.join(failures)} failed: {next(iter(failures.values()))}")
    log(f"warm-up done in {time.perf_counter() - started:.0f} s; measuring")
    return workers


@dataclass
class Samples:
    """Repeated measurements of one contender (a rate: higher is better)."""

    label: str
    values: list = field(default_factory=list)

    @property
    def median(self):
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def spread(self):
        """(min, max) of the repeats."""
        return (min(self.values), max(self.values)) if self.values else (float("nan"),) * 2


def alternate(runners, repeats, log=None):
    """Runs each runner (label -> callable returning a rate) once per round, `repeats`
    rounds, rotating who goes first; returns label -> `Samples`, in the order of `runners`."""
    labels = list(runners)
    samples = {label: Samples(label) for label in labels}
    for round_index in range(repeats):
        shift = round_index % len(labels)
        for label in labels[shift:] + labels[:shift]:
            value = runners[label]()
            samples[label].values.append(value)
            if log:
                log(f"  round {round_index + 1}/{repeats}  {label}: {value:,.1f}")
    return samples


def merge_settings(defaults, overrides):
    """A benchmark's FULL or QUICK settings with the caller's overrides (known keys only)."""
    unknown = set(overrides) - set(defaults)
    if unknown:
        raise TypeError(f"unknown options {sorted(unknown)}; allowed: {sorted(defaults)}")
    return dict(defaults, **overrides)


def round_ratios(pairs):
    """a/b for each (a, b) pair of one round with b > 0."""
    return [a / b for a, b in pairs if b > 0]


def median_of_ratios(pairs):
    """Median of a/b over (a, b) pairs with b > 0; NaN when there are none."""
    ratios = round_ratios(pairs)
    return statistics.median(ratios) if ratios else float("nan")


def paired_ratio(numerator, denominator):
    """Median over rounds of numerator/denominator measured in the same round.

    Contenders of one round ran seconds apart, so their ratio cancels most of the
    load drift of a shared machine; the median over rounds drops the outliers.
    """
    return median_of_ratios(zip(numerator.values, denominator.values))


def clustered_median_interval(groups, confidence=0.95, resamples=2000, seed=0):
    """`(low, high)`: bootstrap interval of the median of per-round numbers, by lifetime.

    `groups` holds one sequence of per-round numbers per process lifetime (none empty).
    The rounds of one pair of worker processes agree with each other more than with
    those of a new pair started minutes later (two headline runs gave 1.06 and 0.94,
    each with a round-level interval excluding the other), so the resampling is
    two-stage: lifetimes with replacement, then rounds within each drawn lifetime.
    Seeded, so that a report is reproducible.

    >>> clustered_median_interval([[1.0, 1.0], [1.0]])
    (1.0, 1.0)
    """
    groups = [list(group) for group in groups]
    if not groups or not all(groups):
        raise ValueError("groups must hold at least one lifetime, each with at least one number")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie between 0 and 1, got {confidence!r}")
    rng = random.Random(seed)
    medians = []
    for _ in range(resamples):
        pooled = []
        for group in rng.choices(groups, k=len(groups)):
            pooled += rng.choices(group, k=len(group))
        medians.append(statistics.median(pooled))
    medians.sort()
    tail = (1 - confidence) / 2
    return medians[int(tail * (resamples - 1))], medians[int(round((1 - tail) * (resamples - 1)))]


def _cpuinfo(key):
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _version(package):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def machine_info():
    """What the numbers were measured on: CPU, cores, SIMD flags, library versions, load."""
    flags = set(_cpuinfo("flags").split())
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpu": _cpuinfo("model name") or platform.processor() or "unknown",
        "logical_cores": os.cpu_count(),
        "usable_cores": default_threads(),
        "simd": " ".join(f for f in wanted if f in flags) or "none of " + ", ".join(wanted),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        **{name: _version(name) for name in ("tensorflow", "keras", "jax", "torch", "numpy")},
        "load_average": " ".join(f"{value:.2f}" for value in load),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def markdown_table(header, rows):
    """A GitHub markdown table from a header and rows of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])


def fmt(value, digits=1):
    if value is None or value != value:  # NaN
        return "n/a"
    return f"{value:,.{digits}f}"


def fmt_spread(samples, digits=1, bold=False):
    """`median (min-max)` of a `Samples`, the median in bold if asked."""
    median, (low, high) = fmt(samples.median, digits), samples.spread
    return f"{f'**{median}**' if bold else median} ({fmt(low, digits)}-{fmt(high, digits)})"


@dataclass
class Result:
    """What one benchmark reports: markdown for RESULTS.md and numbers for tests."""

    name: str
    title: str
    markdown: str
    numbers: dict = field(default_factory=dict)
    ratios: dict = field(default_factory=dict)

    def to_markdown(self):
        return f"## {self.title}\n\n{self.markdown.strip()}\n"
