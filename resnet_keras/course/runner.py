"""The course itself: where it lives, and `make course`, which runs every notebook.

`python -m resnet_keras.course` executes the notebooks headlessly in the
profile that fits the machine (ci, cpu or gpu; CIFAR-10 where it can be had,
the offline dataset otherwise), writes the executed copies to
`build/notebooks/` and HTML pages with their outputs to `build/html/`, shows
progress, and ends with a table of notebooks, status and time. `--jobs 2` runs two
notebooks at a time (each in its own process and kernel); `make book` builds the
course's website from the executed copies.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import sys
import tempfile
import time

REPOSITORY = "https://github.com/resnet-keras-course/resnet-keras-course"
"""The course's repository: the Colab badges and bootstrap cells point here."""

COLAB_BASE = (
    "https://colab.research.google.com/github/resnet-keras-course/resnet-keras-course/blob/main"
)
"""Prefix of every notebook's "Open in Colab" link."""


def colab_url(notebook_name):
    """The "Open in Colab" address of a notebook of this course.

    Examples:

    >>> colab_url("01_background.ipynb").endswith("/blob/main/notebooks/01_background.ipynb")
    True
    """
    return f"{COLAB_BASE}/notebooks/{notebook_name}"


def run_notebook(path, output_dir, html_dir, timeout=1800, environment=None, log_dir=None):
    """Executes one notebook; returns (status, seconds, error line or "").

    With `log_dir`, what the kernel process writes to its stderr (TensorFlow's C++ log lines,
    which no cell output shows) goes to `log_dir/NAME.stderr.txt` instead of the terminal;
    the file is kept when it holds something.
    """
    import warnings

    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter
    from nbformat.warnings import MissingIDFieldWarning

    with warnings.catch_warnings():
        # nbformat gives the cells without an id one as it reads them; the warning says so.
        warnings.simplefilter("ignore", MissingIDFieldWarning)
        notebook = nbformat.read(path, as_version=4)
    from traitlets.config import Config

    sockets = pathlib.Path(tempfile.mkdtemp(prefix="resnet-keras-kernel-"))
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        # Local sockets instead of TCP: the kernel and the runner share this machine, and
        # ipykernel warns on every start that TCP runs without encryption.
        # The socket files live under an absolute path: the kernel runs in the notebook's folder.
        config=Config({"KernelManager": {"transport": "ipc", "ip": str(sockets / "kernel")}}),
    )
    saved = dict(os.environ)
    os.environ.update(environment or {})
    log = None
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / f"{path.stem}.stderr.txt", "w", encoding="utf-8")
    start = time.perf_counter()
    status, message = "ok", ""
    try:
        client.execute(**({"stderr": log} if log else {}))
    except Exception as error:  # a failed cell, a timeout, a kernel that died
        status = "failed"
        lines = [line for line in str(error).strip().splitlines() if line.strip()]
        message = lines[-1] if lines else type(error).__name__
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(sockets, ignore_errors=True)
        if log:
            log.close()
            if not pathlib.Path(log.name).stat().st_size:
                pathlib.Path(log.name).unlink()
    seconds = time.perf_counter() - start
    nbformat.write(notebook, output_dir / path.name)
    body, _ = HTMLExporter().from_notebook_node(notebook)
    (html_dir / path.with_suffix(".html").name).write_text(body, encoding="utf-8")
    return status, seconds, message


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m resnet_keras.course",
        description="Run every course notebook headlessly and render it to HTML.",
    )
    parser.add_argument("--notebooks", default="notebooks", help="folder of the .ipynb files")
    parser.add_argument("--build", default="build", help="output folder")
    parser.add_argument("--profile", choices=("ci", "cpu", "gpu"), help="override the profile")
    parser.add_argument("--only", nargs="*", default=None, help="name prefixes, e.g. 01 04")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    parser.add_argument(
        "--jobs", type=int, default=1, help="notebooks run at a time, each in its own process"
    )
    arguments = parser.parse_args(argv)

    from resnet_keras.course.profiles import detect_profile

    folder = pathlib.Path(arguments.notebooks)
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if arguments.only:
        paths = [p for p in paths if any(p.name.startswith(prefix) for prefix in arguments.only)]
    if not paths:
        print(f"error: no notebooks found in {folder}/", file=sys.stderr)
        return 2
    profile, reason = detect_profile(arguments.profile)
    output_dir = pathlib.Path(arguments.build) / "notebooks"
    html_dir = pathlib.Path(arguments.build) / "html"
    log_dir = pathlib.Path(arguments.build) / "logs"
    output_dir.mkdir(parents=True, exist_ok=True)
    html_dir.mkdir(parents=True, exist_ok=True)
    print(f"Running {len(paths)} notebooks in the '{profile}' profile ({reason}).")

    environment = {"RESNET_KERAS_PROFILE": profile}
    jobs = max(1, min(arguments.jobs, len(paths)))
    # What every notebook's run shares, as absolute paths: a worker process may start elsewhere.
    shared = (
        output_dir.resolve(),
        html_dir.resolve(),
        arguments.timeout,
        environment,
        log_dir.resolve(),
    )
    results = {}
    if jobs == 1:
        for index, path in enumerate(paths, start=1):
            print(f"[{index}/{len(paths)}] {path.name} ...", end=" ", flush=True)
            results[path.name] = run_notebook(path.resolve(), *shared)
            _print_result(results[path.name])
    else:
        # One process per notebook at a time: run_notebook sets the kernel's environment
        # through os.environ, which threads would share. The workers are spawned, not forked:
        # a fork of a process that has started TensorFlow's threads (a test, a notebook) can
        # crash in the child (a segfault in CI's run of this runner under pytest).
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=spawn) as pool:
            futures = {
                pool.submit(run_notebook, path.resolve(), *shared): path.name for path in paths
            }
            for index, future in enumerate(as_completed(futures), start=1):
                name = futures[future]
                results[name] = future.result()
                print(f"[{index}/{len(paths)}] {name} ...", end=" ", flush=True)
                _print_result(results[name])
    rows = [(path.name, results[path.name][0], results[path.name][1]) for path in paths]

    width = max(len(name) for name, _, _ in rows)
    print()
    print(f"{'notebook'.ljust(width)}  status  time")
    for name, status, seconds in rows:
        print(f"{name.ljust(width)}  {status.ljust(6)}  {seconds:6.0f} s")
    total = sum(seconds for _, _, seconds in rows)
    print(f"{'total'.ljust(width)}          {total:6.0f} s")
    print(f"\nExecuted notebooks: {output_dir}/   HTML: {html_dir}/index.html")
    if any(log_dir.glob("*.stderr.txt")):
        print(f"The kernels' stderr: {log_dir}/")
    _write_index(html_dir, rows, profile)
    return 0 if all(status == "ok" for _, status, _ in rows) else 1


def _print_result(result):
    status, seconds, message = result
    print(f"{status} in {seconds:.0f} s" + (f": {message}" if message else ""), flush=True)


def _write_index(html_dir, rows, profile):
    items = "\n".join(
        f'<tr><td><a href="{pathlib.Path(name).with_suffix(".html")}">{name}</a></td>'
        f"<td>{status}</td><td>{seconds:.0f} s</td></tr>"
        for name, status, seconds in rows
    )
    (html_dir / "index.html").write_text(
        "<!doctype html><meta charset='utf-8'><title>resnet-keras-course</title>"
        f"<h1>resnet-keras-course</h1><p>Profile: {profile}</p>"
        f"<table><tr><th>notebook</th><th>status</th><th>time</th></tr>{items}</table>",
        encoding="utf-8",
    )
