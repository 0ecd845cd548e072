"""`python -m benchmarks [NAME ...] [--quick] [--threads N] [--output PATH | --no-write]`.

Without NAME every benchmark runs. A full run rewrites the generated sections of
`benchmarks/RESULTS.md` (between `<!-- BEGIN name -->` and `<!-- END name -->`; the text
around them stays); a quick run prints only, unless `--output` is given.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import time
from pathlib import Path

from benchmarks import BENCHMARK_NAMES
from benchmarks._harness import default_threads, machine_info, markdown_table

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
# `distribute` (issue 28: the data-parallel engines through `rk.fit`) and `descendants` (issue
# 27: the descendant blocks against stock Keras layers), after the package's own list.
NAMES = BENCHMARK_NAMES + tuple(
    name for name in ("distribute", "descendants") if name not in BENCHMARK_NAMES
)


def machine_markdown(info, threads):
    versions = " / ".join(info[name] for name in ("tensorflow", "keras", "jax", "torch", "numpy"))
    cores = f"{info['logical_cores']} logical, {info['usable_cores']} usable"
    rows = [("CPU", info["cpu"]), ("cores", cores), ("SIMD of interest", info["simd"])]
    rows += [
        ("threads per framework", threads),
        ("OS / Python", f"{info['os']} / {info['python']}"),
    ]
    rows += [("TensorFlow / Keras / JAX / PyTorch / NumPy", versions)]
    rows += [("load average at start (1, 5, 15 min)", info["load_average"]), ("date", info["date"])]
    return (
        "## Machine\n\nThe machine of the latest run; each section's last line names the "
        "machine it was measured on (a partial run rewrites only its own sections).\n\n"
        + markdown_table(["", ""], rows)
        + "\n"
    )


def update_results(path, sections):
    """Replaces (or appends) each `<!-- BEGIN name -->...<!-- END name -->` section."""
    path = Path(path)
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    for name, body in sections.items():
        block = f"<!-- BEGIN {name} -->\n{body.rstrip()}\n<!-- END {name} -->"
        pattern = re.compile(
            rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.DOTALL
        )
        if pattern.search(text):
            text = pattern.sub(lambda _match, block=block: block, text)
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text if text.endswith("\n") else text + "\n")


def run_benchmarks(names, quick=False, threads=None, log=print, baseline=None):
    """Runs the named benchmarks in order; returns {name: Result or exception}."""
    results = {}
    for name in names:
        log(f"=== {name}{' (quick)' if quick else ''} ===")
        start = time.perf_counter()
        kwargs = {"quick": quick, "threads": threads, "log": log}
        if name == "resnet20" and baseline is not None:
            kwargs["baseline"] = baseline
        try:
            results[name] = importlib.import_module(f"benchmarks.{name}").run(**kwargs)
        except Exception as error:  # noqa: BLE001 - one broken benchmark must not hide the rest
            results[name] = error
            log(f"{name} FAILED: {type(error).__name__}: {error}")
        log(f"=== {name} took {time.perf_counter() - start:.0f} s ===")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    add = parser.add_argument
    add("names", nargs="*", help=f"benchmarks to run (default: all of {NAMES})")
    add("--quick", action="store_true", help="tiny sizes: a smoke test of the harness")
    add("--threads", type=int, default=None, help="threads per framework")
    add("--list", action="store_true", help="list the benchmarks and exit")
    add("--baseline", type=Path, help="resnet20: also measure the resnet_keras copy in this folder")
    add("--output", type=Path, default=None, help="results file to update")
    add("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(NAMES))
        return 0
    names = args.names or list(NAMES)
    for name in names:
        if name not in NAMES:
            parser.error(f"unknown benchmark {name!r}; choose from {', '.join(NAMES)}")

    threads = args.threads or default_threads()
    info = machine_info()
    results = run_benchmarks(names, quick=args.quick, threads=threads, baseline=args.baseline)
    sections = {"machine": machine_markdown(info, threads)}
    for name, result in results.items():
        if isinstance(result, Exception):
            sections[name] = f"## {name}\n\nFAILED: `{type(result).__name__}: {result}`\n"
        else:
            machine = f"{info['cpu']}, {info['usable_cores']} cores, {info['simd']}"
            measured = f"\n_Measured {info['date']} on {machine}._\n"
            sections[name] = result.to_markdown() + measured
    print("\n" + "\n".join(sections.values()))

    output = args.output or (None if args.quick else RESULTS)
    if output is not None and not args.no_write:
        update_results(output, sections)
        print(f"updated {output}")
    return 1 if any(isinstance(result, Exception) for result in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
