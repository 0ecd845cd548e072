"""Timing machinery shared by the benchmarks: worker processes, alternation, statistics.

Keras picks its backend once per process (KERAS_BACKEND), and TensorFlow reads
some settings (TF_ENABLE_ONEDNN_OPTS) only at import, so each contender lives in a
worker process (`benchmarks._worker`). The parent never imports a framework: it
starts the workers, lets each warm up, then asks them in turn for one timed
repeat at a time. Only one worker computes at any moment, and load that drifts
over the run (this machine is shared) hits every contender alike.
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
    """Threads each framework gets: every core of the machine (2 here)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def thread_environment(threads):
    """Environment variables that pin the thread pools before any framework is imported."""
    threads = str(int(threads))
    return {
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONWARNINGS": "ignore",
    }


class Worker:
    """One benchmark worker process, driven by JSON lines over its stdin/stdout.

    Args:
        name: label used in error messages.
        config: the worker's JSON configuration (`env`, `contenders`, ...), see
            `benchmarks._worker`.
        env: extra environment variables (e.g. KERAS_BACKEND).
        timeout: seconds allowed for any one request.
    """

    def __init__(self, name, config, env=None, timeout=1800):
        self.name = name
        self.timeout = timeout
        full_env = dict(os.environ)
        full_env.update(env or {})
        # The repository's `benchmarks` package must be importable; entries given in
        # PYTHONPATH come first (an experiment may point at another copy of the library).
        full_env["PYTHONPATH"] = os.pathsep.join(
            [p for p in full_env.get("PYTHONPATH", "").split(os.pathsep) if p] + [str(REPO_ROOT)]
        )
        self._stderr = open(os.devnull, "w") if not os.environ.get("BENCH_DEBUG") else None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._worker", json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=full_env,
            cwd=str(REPO_ROOT),
            text=True,
            bufsize=1,
        )
        self.info = self._reply()  # the worker answers once it is set up and warm

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

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def library_worker(name, contenders, threads, warmup, log=print):
    """Starts a TensorFlow worker for library contenders and waits until all are warm.

    Args:
        name: the worker's label (progress and error messages).
        contenders: the contender specs (see `benchmarks._worker`).
        threads: TensorFlow's intra-op threads, also set in the environment.
        warmup: warm-up calls per task.
        log: progress output.

    Returns:
        The started `Worker` (a context manager that stops it).

    Raises:
        RuntimeError: a contender failed to build or to warm up.
    """
    config = {"threads": threads, "warmup": warmup, "contenders": contenders}
    env = dict(thread_environment(threads), KERAS_BACKEND="tensorflow")
    started = time.perf_counter()
    log(f"starting the {name} worker")
    worker = Worker(name, config, env=env)
    failed = {ident: state for ident, state in worker.info["contenders"].items() if not state["ok"]}
    if failed:
        worker.close()
        ident, state = next(iter(failed.items()))
        raise RuntimeError(f"{ident} failed: {state['error']}")
    log(f"warm-up done in {time.perf_counter() - started:.0f} s; measuring")
    return worker


@dataclass
class Samples:
    """Repeated measurements of one contender (a rate: higher is better)."""

    label: str
    unit: str = "images/s"
    values: list = field(default_factory=list)

    @property
    def median(self):
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def spread(self):
        """(min, max) of the repeats."""
        return (min(self.values), max(self.values)) if self.values else (float("nan"),) * 2


def alternate(runners, repeats, log=None):
    """Runs each contender once per round, rotating who goes first, for `repeats` rounds.

    Args:
        runners: dict label -> callable returning a rate (higher is better).
        repeats: rounds (>= 1).
        log: optional callable taking one line of progress.

    Returns:
        dict label -> `Samples`, in the order of `runners`.
    """
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
    """A benchmark's settings: its FULL or QUICK defaults with the caller's overrides.

    Raises:
        TypeError: an override names a setting the benchmark does not have.
    """
    unknown = set(overrides) - set(defaults)
    if unknown:
        raise TypeError(f"unknown options {sorted(unknown)}; allowed: {sorted(defaults)}")
    return dict(defaults, **overrides)


def paired_ratio(numerator, denominator):
    """Median over rounds of numerator/denominator measured in the same round.

    Contenders of one round ran seconds apart, so their ratio cancels most of the
    load drift of a shared machine; the median over rounds drops the outliers.
    """
    return median_of_ratios(zip(numerator.values, denominator.values))


def round_ratios(pairs):
    """a/b for each (a, b) pair of one round with b > 0."""
    return [a / b for a, b in pairs if b > 0]


def median_of_ratios(pairs):
    """Median of a/b over (a, b) pairs with b > 0; NaN when there are none."""
    ratios = round_ratios(pairs)
    return statistics.median(ratios) if ratios else float("nan")


def median_interval(values, confidence=0.95, resamples=2000, seed=0):
    """Bootstrap interval of the median of `values` (percentile method, seeded).

    How far the median of per-round ratios could move if the rounds were run
    again: on a shared machine single rounds spread by +-15 %, so a ratio of
    0.97 from a dozen rounds does not tell "slower" from "as fast". The rounds of
    one lifetime: `clustered_median_interval([values], ...)`, whose arguments and
    result these are.

    Examples:

    >>> median_interval([1.0, 1.0, 1.0])
    (1.0, 1.0)
    """
    values = list(values)
    if not values:
        raise ValueError("values must hold at least one number")
    return clustered_median_interval([values], confidence, resamples, seed)


def clustered_median_interval(groups, confidence=0.95, resamples=2000, seed=0):
    """Bootstrap interval of the median of per-round numbers from several process lifetimes.

    Rounds of one pair of worker processes agree with each other more than with the
    rounds of a new pair started minutes later: on this VM the ResNet-20 headline of
    two runs moved from 1.06 to 0.94, each with a round-level interval of +-0.03 that
    excluded the other (whether the process or the minute is to blame, a new
    lifetime samples both). So the resampling is two-stage: draw lifetimes with
    replacement, then rounds with replacement within each drawn lifetime, and take the
    median of the pooled draw.
    With one lifetime this is `median_interval`'s resampling of rounds.

    Args:
        groups: one sequence of per-round numbers per process lifetime (at least one,
            none empty).
        confidence: the interval's coverage, between 0 and 1.
        resamples: bootstrap resamples.
        seed: seed of the resampling, so that a report is reproducible.

    Returns:
        `(low, high)`.

    Examples:

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


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_flags():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# Instructions with which a CPU computes bfloat16 products itself; without them
# oneDNN emulates bfloat16 through float32, which is slower than float32.
NATIVE_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")


def native_bfloat16(flags=None):
    """Whether the CPU has bfloat16 product instructions (AVX512-BF16 or AMX-BF16).

    Args:
        flags: the CPU's flags (default: read from /proc/cpuinfo).
    """
    flags = _cpu_flags() if flags is None else set(flags)
    return any(flag in flags for flag in NATIVE_BFLOAT16_FLAGS)


def _version(module):
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001 - a missing package is reported, not fatal
        return "not installed"


def machine_info():
    """What the numbers were measured on: CPU, cores, SIMD flags, library versions, load."""
    flags = _cpu_flags()
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": default_threads(),
        "simd": " ".join(flag for flag in wanted if flag in flags)
        or "none of " + ", ".join(wanted),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow"),
        "keras": _version("keras"),
        "jax": _version("jax"),
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "load_average": " ".join(f"{value:.2f}" for value in load),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def markdown_table(header, rows):
    """A GitHub markdown table from a header and rows of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value, digits=1):
    if value is None or value != value:  # NaN
        return "n/a"
    return f"{value:,.{digits}f}"


@dataclass
class Result:
    """What one benchmark reports: markdown for RESULTS.md and numbers for tests."""

    name: str
    title: str
    markdown: str
    numbers: dict = field(default_factory=dict)
    ratios: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def to_markdown(self):
        parts = [f"## {self.title}", "", self.markdown.strip()]
        if self.notes:
            parts += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(parts) + "\n"
