"""`python -m benchmarks [NAME ...] [--quick] [--threads N] [--output PATH | --no-write]`.

Without NAME every benchmark runs. A full (not quick) run rewrites the generated
sections of `benchmarks/RESULTS.md` (between `<!-- BEGIN name -->` and
`<!-- END name -->` markers; the hand-written analysis around them stays); a quick
run prints only, unless `--output` is given.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import time
from pathlib import Path

from benchmarks import BENCHMARK_NAMES
from benchmarks._harness import machine_info, markdown_table

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine_markdown(info, threads):
    rows = [
        ["CPU", info["cpu"]],
        ["cores", f"{info['logical_cores']} logical, {info['usable_cores']} usable"],
        ["SIMD of interest", info["simd"]],
        ["threads per framework", threads],
        ["OS / Python", f"{info['os']} / {info['python']}"],
        [
            "TensorFlow / Keras / JAX / PyTorch / NumPy",
            f"{info['tensorflow']} / {info['keras']} / {info['jax']} / {info['torch']} / "
            f"{info['numpy']}",
        ],
        ["load average at start (1, 5, 15 min)", info["load_average"]],
        ["date", info["date"]],
    ]
    return (
        "## Machine\n\nThe machine of the latest run; each section's last line names the "
        "machine it was measured on (a partial run rewrites only its own sections).\n\n"
        + markdown_table(["", ""], rows)
        + "\n"
    )


def machine_line(info):
    """The machine in a few words, for the last line of each section."""
    return f"{info['cpu']}, {info['usable_cores']} cores, {info['simd']}"


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
        module = importlib.import_module(f"benchmarks.{name}")
        log(f"=== {name}{' (quick)' if quick else ''} ===")
        start = time.perf_counter()
        kwargs = {"quick": quick, "log": log}
        if name != "notebooks":
            kwargs["threads"] = threads
        if name == "resnet20" and baseline is not None:
            kwargs["baseline"] = baseline
        try:
            results[name] = module.run(**kwargs)
        except Exception as error:  # noqa: BLE001 - one broken benchmark must not hide the rest
            results[name] = error
            log(f"{name} FAILED: {type(error).__name__}: {error}")
        log(f"=== {name} took {time.perf_counter() - start:.0f} s ===")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: all of {BENCHMARK_NAMES})"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: a smoke test of the harness"
    )
    parser.add_argument("--threads", type=int, default=None, help="threads per framework")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="resnet20: also measure the resnet_keras copy in this folder (e.g. the last commit)",
    )
    parser.add_argument("--output", type=Path, default=None, help="results file to update")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(BENCHMARK_NAMES))
        return 0
    names = args.names or list(BENCHMARK_NAMES)
    for name in names:
        if name not in BENCHMARK_NAMES:
            parser.error(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARK_NAMES)}")

    from benchmarks._harness import default_threads

    threads = args.threads or default_threads()
    info = machine_info()
    results = run_benchmarks(names, quick=args.quick, threads=threads, baseline=args.baseline)

    sections = {"machine": machine_markdown(info, threads)}
    failed = False
    for name, result in results.items():
        if isinstance(result, Exception):
            failed = True
            body = f"## {name}\n\nFAILED: `{type(result).__name__}: {result}`\n"
        else:
            body = result.to_markdown() + f"\n_Measured {info['date']} on {machine_line(info)}._\n"
        sections[name] = body
    report = "\n".join(sections.values())
    print("\n" + report)

    output = args.output or (None if args.quick else RESULTS)
    if output is not None and not args.no_write:
        update_results(output, sections)
        print(f"updated {output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
