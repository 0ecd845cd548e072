"""Benchmark 6: wall time of each notebook of the course in the `ci` profile.

Every `notebooks/*.ipynb` that exists when the benchmark runs is executed, one at
a time, with `jupyter nbconvert --execute` in a fresh kernel
(`RESNET_KERAS_PROFILE=ci`, `KERAS_BACKEND=tensorflow`); the executed copy goes to
a temporary folder, so the notebooks themselves are untouched. The time includes
the kernel start and the imports, as a learner or CI pays them. There is nothing to
alternate: each notebook is its own contender.

In quick mode only a generated one-cell notebook runs (it proves the machinery);
the course's notebooks are listed but not executed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._harness import REPO_ROOT, Result, fmt, markdown_table

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def _smoke_notebook(folder):
    path = Path(folder) / "smoke.ipynb"
    cell = {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": ["import os\n", "print(os.environ['RESNET_KERAS_PROFILE'])"],
    }
    notebook = {
        "cells": [cell],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook))
    return path


def execute(path, output_dir, timeout=3600):
    """Runs one notebook in a fresh kernel; returns (seconds, error or None)."""
    env = dict(os.environ, RESNET_KERAS_PROFILE="ci", KERAS_BACKEND="tensorflow")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        f"--ExecutePreprocessor.timeout={int(timeout)}",
        "--output-dir",
        str(output_dir),
        str(path),
    ]
    start = time.perf_counter()
    try:
        completed = subprocess.run(
            command,
            env=env,
            cwd=str(Path(path).parent),
            capture_output=True,
            text=True,
            timeout=timeout + 120,
        )
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, f"timed out after {timeout} s"
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
        return seconds, (lines[-1] if lines else f"exit code {completed.returncode}")[:300]
    return seconds, None


def run(quick=False, notebooks_dir=None, log=print, timeout=3600):
    """Executes every notebook (quick: a generated one) and reports wall times.

    Args:
        quick: run only a generated one-cell notebook.
        notebooks_dir: folder of notebooks (default: the repository's `notebooks/`).
        log: progress output.
        timeout: seconds allowed per notebook.

    Returns:
        A `Result`; `numbers[name]` is the wall time in seconds of each notebook that ran.
    """
    folder = Path(notebooks_dir) if notebooks_dir is not None else NOTEBOOK_DIR
    found = sorted(folder.glob("*.ipynb")) if folder.is_dir() else []
    numbers, rows, notes = {}, [], []
    with tempfile.TemporaryDirectory() as scratch:
        targets = [_smoke_notebook(scratch)] if quick else found
        if quick and found:
            notes.append(
                "quick mode: not executed: " + ", ".join(f"`{path.name}`" for path in found)
            )
        output_dir = Path(scratch) / "executed"
        output_dir.mkdir()
        total = 0.0
        for path in targets:
            log(f"executing {path.name}")
            seconds, error = execute(path, output_dir, timeout=timeout)
            total += seconds
            if error is None:
                numbers[path.name] = seconds
            rows.append(
                [f"`{path.name}`", fmt(seconds), "ok" if error is None else f"failed: {error}"]
            )
            log(f"  {path.name}: {seconds:.1f} s {'ok' if error is None else error}")
    if not targets:
        notes.append(f"no notebooks found in {folder}")
    numbers["total_s"] = total
    if rows:
        rows.append(["**total**", f"**{fmt(total)}**", ""])
    intro = (
        "Each notebook executed once in a fresh kernel with `RESNET_KERAS_PROFILE=ci` "
        "(kernel start and imports included), one after another"
        f"{' (QUICK MODE: a generated one-cell notebook only)' if quick else ''}."
    )
    table = markdown_table(["notebook", "wall time s", "status"], rows) if rows else ""
    return Result(
        name="notebooks",
        title="Notebooks in the `ci` profile",
        markdown=intro + "\n\n" + table,
        numbers=numbers,
        notes=notes,
    )
