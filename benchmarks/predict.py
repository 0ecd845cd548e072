"""Single-image prediction latency of ResNet-20: the ways to call a trained model.

`rk.CifarResNet(20)` with its preprocessing (`resnet_keras.inference.with_preprocessing`:
uint8 pixels in, probabilities out) is saved as a run's model.keras with its summary.json
and exported as a SavedModel (`export_saved_model`). The calls, numpy image in and numpy
probabilities out:

- `predict_on_batch`: Keras' compiled predict step (`tf.function` / `jax.jit`, traced on
  the first call; eager on PyTorch);
- `direct call`: `model(image, training=False)`, the backend's eager ops;
- `saved-model serve`: the exported `serve` signature, reloaded with `tf.saved_model.load`.

The two Keras calls run on each Keras backend. Warm: one worker per backend loads the files
and times single calls, each alone, in rounds rotating which call goes first. First call:
fresh processes, one per call and round, load the file and make one call, as the command
line does. Then `python -m resnet_keras predict` on one PNG in a new process (TensorFlow),
with the times it reports. Goal (issue 26): under 50 ms per image in a warm process. The
workers are this module run as `python -m benchmarks.predict --worker CONFIG_JSON` (the
parent imports no framework, as in `benchmarks._harness`).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import _harness as h

KERAS_CALLS = ("predict_on_batch", "direct call")
SERVE = "saved-model serve"
BACKENDS = ("tensorflow", "jax", "torch")
FULL = dict(depth=20, calls=50, repeats=6, warmup=10, cold_rounds=3, cli_runs=3)
FULL["backends"] = BACKENDS
QUICK = dict(depth=8, calls=5, repeats=2, warmup=2, cold_rounds=1, cli_runs=1)
QUICK["backends"] = ("tensorflow",)
GOAL_MS = 50.0
# What `python -m resnet_keras predict` calls on each backend (cli._first_call_fastest).
CLI_CALLS = {"tensorflow": "direct call", "jax": "predict_on_batch", "torch": "direct call"}
_CLI_TIMES = re.compile(r"Predicted 1 image in ([\d.]+) ms \(model loaded in ([\d.]+) s\)")


def _calls(backend):
    """The calls measured on `backend`: the Keras ones, and the SavedModel's in TensorFlow."""
    return KERAS_CALLS + ((SERVE,) if backend == "tensorflow" else ())


def _label(backend, call):
    return call if call == SERVE else f"{backend}: {call}"


def run(quick=False, threads=None, log=print, **overrides):
    """Warm and first-call latency of each call on each backend, and the command line.

    Returns:
        A `Result`; `numbers`: `warm_ms/{label}` (median single-image latency in a warm
        process), `first_call_ms/{label}` and `load_s/{label}` (medians over fresh
        processes), `save_s`, `export_s`, `cli_predict_ms`, `cli_load_s`, `cli_wall_s`;
        `ratios`: `{label}_vs_fastest` (warm median over the fastest's); labels are
        `"{backend}: {call}"` and `"saved-model serve"`.
    """
    settings = h.merge_settings(QUICK if quick else FULL, overrides)
    threads = threads or h.default_threads()
    pairs = [(backend, call) for backend in settings["backends"] for call in _calls(backend)]
    load_start = os.getloadavg()[0]  # a shared machine's other work shows in the numbers
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as folder:
        common = dict(folder=folder, depth=settings["depth"], threads=threads)
        prepared = _worker(dict(common, mode="prepare"), "tensorflow", threads)
        log(f"saved in {prepared['save_s']:.2f} s, exported in {prepared['export_s']:.2f} s")
        warm = {}
        for backend in settings["backends"]:
            config = dict(common, mode="warm", calls=_calls(backend), settings=settings)
            warm[backend] = _worker(config, backend, threads)
            log(
                f"  warm {backend}: "
                + ", ".join(
                    f"{call} {statistics.median(times):.2f} ms"
                    for call, times in warm[backend]["ms"].items()
                )
            )
        cold = {pair: [] for pair in pairs}
        for round_index in range(settings["cold_rounds"]):
            shift = round_index % len(pairs)
            for backend, call in pairs[shift:] + pairs[:shift]:
                config = dict(common, mode="cold", call=call)
                cold[backend, call].append(_worker(config, backend, threads))
                first = cold[backend, call][-1]["first_ms"]
                log(f"  first call {round_index + 1}: {_label(backend, call)} {first:.1f} ms")
        cli = [_cli(Path(folder), threads) for _ in range(settings["cli_runs"])]
    loads = (load_start, os.getloadavg()[0])
    return _report(settings, threads, quick, pairs, prepared, warm, cold, cli, loads, log)


def _environment(backend, threads):
    env = dict(os.environ, **h.thread_environment(threads), KERAS_BACKEND=backend)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([*paths, str(h.REPO_ROOT)])
    return env


def _worker(config, backend, threads):
    """Runs this module's worker on `backend` in a new process; returns its JSON answer."""
    command = [sys.executable, "-m", "benchmarks.predict", "--worker", json.dumps(config)]
    env = _environment(backend, threads)
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=h.REPO_ROOT)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        problem = done.stderr.strip()[-600:]
        raise h.WorkerError(f"predict worker {config['mode']!r} on {backend}: {problem}")
    return json.loads(lines[-1])


def _cli(folder, threads):
    """`python -m resnet_keras predict` on one image: its reported times and its wall time."""
    command = [sys.executable, "-m", "resnet_keras", "predict"]
    command += ["--model", str(folder / "model.keras"), str(folder / "image.png")]
    env = _environment("tensorflow", threads)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=h.REPO_ROOT)
    wall = time.perf_counter() - start
    found = _CLI_TIMES.search(done.stdout)
    if done.returncode != 0 or not found:
        raise h.WorkerError(f"predict command failed: {(done.stderr or done.stdout)[-600:]}")
    return {"predict_ms": float(found.group(1)), "load_s": float(found.group(2)), "wall_s": wall}


def _percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _report(settings, threads, quick, pairs, prepared, warm, cold, cli, loads, log):
    numbers = {"save_s": prepared["save_s"], "export_s": prepared["export_s"]}
    samples = {pair: warm[pair[0]]["ms"][pair[1]] for pair in pairs}
    medians = {pair: statistics.median(values) for pair, values in samples.items()}
    fastest = min(medians, key=medians.get)
    first = {pair: statistics.median(c["first_ms"] for c in cold[pair]) for pair in pairs}
    ratios, rows = {}, []
    for pair in pairs:
        label = _label(*pair)
        numbers[f"warm_ms/{label}"] = medians[pair]
        numbers[f"first_call_ms/{label}"] = first[pair]
        numbers[f"load_s/{label}"] = statistics.median(c["load_s"] for c in cold[pair])
        ratios[f"{label}_vs_fastest"] = medians[pair] / medians[fastest]
        low, high = (_percentile(samples[pair], share) for share in (0.1, 0.9))
        rows.append(
            [
                f"`{label}`",
                f"**{h.fmt(medians[pair], 2)}** ({h.fmt(low, 2)}-{h.fmt(high, 2)})",
                h.fmt(ratios[f"{label}_vs_fastest"], 2),
                "yes" if medians[pair] < GOAL_MS else "no",
                h.fmt(first[pair]),
                h.fmt(numbers[f"load_s/{label}"], 2),
            ]
        )
    for key in ("predict_ms", "load_s", "wall_s"):
        numbers[f"cli_{key}"] = statistics.median(run[key] for run in cli)
    depth, calls = settings["depth"], settings["calls"]
    intro = (
        f"ResNet-{depth} (`rk.CifarResNet({depth})`, random weights) with its preprocessing "
        f"(`resnet_keras.inference.with_preprocessing`), one 32x32x3 uint8 image per call, "
        f"numpy in and numpy probabilities out, {threads} threads. Warm: one process per "
        f"backend, {settings['repeats']} rounds of {calls} calls of each, every call timed "
        f"alone, after {settings['warmup']} warm-up calls; first call: "
        f"{settings['cold_rounds']} fresh process(es) per call, loading the file and calling "
        f"once, as the command line does; load average (1 min) {loads[0]:.2f} at the start, "
        f"{loads[1]:.2f} at the end{' (QUICK MODE: not representative)' if quick else ''}."
    )
    header = ["call", "warm ms median (p10-p90)", "warm ratio to fastest"]
    header += [f"under {GOAL_MS:g} ms", "first call in a new process, ms", "file load s"]
    table = h.markdown_table(header, rows)
    fastest_first = {
        backend: min(KERAS_CALLS, key=lambda call: first[backend, call])
        for backend in settings["backends"]
    }
    agrees = all(CLI_CALLS[backend] == call for backend, call in fastest_first.items())
    lines = [
        f"Fastest warm call: `{_label(*fastest)}`. Fastest first call of Keras, what the "
        "command line needs (it calls the model once per batch in a new process): "
        + ", ".join(f"`{call}` on {backend}" for backend, call in fastest_first.items())
        + "; `predict` calls "
        + ", ".join(f"`{CLI_CALLS[backend]}` on {backend}" for backend in fastest_first)
        + (" (the same)." if agrees else " (NOT the fastest measured here)."),
        f"`python -m resnet_keras predict` on one PNG ({len(cli)} new process(es), "
        f"TensorFlow): prediction {h.fmt(numbers['cli_predict_ms'])} ms, model load "
        f"{h.fmt(numbers['cli_load_s'], 2)} s as it reports them; "
        f"{h.fmt(numbers['cli_wall_s'], 2)} s for the whole process (imports included).",
        f"Saving model.keras: {h.fmt(prepared['save_s'], 2)} s; `export_saved_model` "
        f"(TensorFlow): {h.fmt(prepared['export_s'], 2)} s; loading in a warm process: "
        f"model.keras {h.fmt(warm['tensorflow']['load_s']['direct call'], 2)} s, the "
        f"SavedModel {h.fmt(warm['tensorflow']['load_s'][SERVE], 2)} s.",
    ]
    log(f"fastest warm call: {_label(*fastest)} ({medians[fastest]:.2f} ms)")
    return h.Result(
        name="predict",
        title=f"Single-image prediction with ResNet-{depth}: the calls side by side",
        markdown=intro + "\n\n" + table + "\n\n" + "\n".join(f"- {line}" for line in lines),
        numbers=numbers,
        ratios=ratios,
    )


# --- the worker process (imports the frameworks) ---------------------------------------------


def _setup(threads):
    import resnet_keras  # noqa: F401 - first, as a learner's program does

    # tf.data and the SavedModel run in TensorFlow on every backend: the same thread budget.
    tf = importlib.import_module("tensorflow")  # after it: not a statement isort would move
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    if os.environ.get("KERAS_BACKEND") == "torch":
        import torch

        torch.set_num_threads(threads)


def _image(folder):
    import keras

    return keras.utils.img_to_array(keras.utils.load_img(folder / "image.png"), dtype="uint8")[None]


def _prepare(folder, depth):
    """A run folder's files: model.keras, summary.json, image.png and saved_model/."""
    import keras
    import numpy as np

    import resnet_keras as rk
    from resnet_keras.data import digits
    from resnet_keras.inference import export_saved_model

    keras.utils.set_random_seed(0)
    model = rk.CifarResNet(depth)
    mean, std, names = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26), [str(i) for i in range(10)]
    summary = {"class_names": names, "pixel_mean": list(mean), "pixel_std": list(std)}
    (folder / "summary.json").write_text(json.dumps(summary))
    keras.utils.save_img(folder / "image.png", np.asarray(digits.arrays()[2][0]), scale=False)
    start = time.perf_counter()
    model.save(folder / "model.keras")
    save_s = time.perf_counter() - start
    start = time.perf_counter()
    export_saved_model(model, folder / "saved_model", mean=mean, std=std, class_names=names)
    return {"save_s": save_s, "export_s": time.perf_counter() - start}


def _load(folder, call):
    """The callable of `call` (numpy image -> numpy probabilities), loaded from `folder`."""
    if call == SERVE:
        import tensorflow as tf

        served = tf.saved_model.load(str(folder / "saved_model"))
        return lambda image: served.serve(image)["probabilities"].numpy()
    import keras

    from resnet_keras.course.cli import _load_run_model

    classifier = _load_run_model(str(folder / "model.keras"))[1]  # what `predict` runs
    if call == "predict_on_batch":
        return classifier.predict_on_batch
    return lambda image: keras.ops.convert_to_numpy(classifier(image, training=False))


def _timed(function, image):
    start = time.perf_counter()
    function(image)
    return 1000.0 * (time.perf_counter() - start)


def _warm(folder, calls, settings):
    functions, load_s = {}, {}
    for call in calls:
        start = time.perf_counter()
        functions[call] = _load(folder, call)
        load_s[call] = time.perf_counter() - start
    image = _image(folder)
    for function in functions.values():
        for _ in range(settings["warmup"]):
            function(image)
    ms = {call: [] for call in calls}
    for round_index in range(settings["repeats"]):
        shift = round_index % len(calls)
        for call in calls[shift:] + calls[:shift]:
            ms[call] += [_timed(functions[call], image) for _ in range(settings["calls"])]
    return {"ms": ms, "load_s": load_s}


def _cold(folder, call):
    start = time.perf_counter()
    function = _load(folder, call)
    load_s = time.perf_counter() - start
    return {"load_s": load_s, "first_ms": _timed(function, _image(folder))}


def _worker_main(config):
    _setup(int(config["threads"]))
    folder = Path(config["folder"])
    if config["mode"] == "prepare":
        return _prepare(folder, config["depth"])
    if config["mode"] == "warm":
        return _warm(folder, list(config["calls"]), config["settings"])
    return _cold(folder, config["call"])


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--worker":
        sys.exit("usage: python -m benchmarks.predict --worker CONFIG_JSON (run by benchmarks)")
    answer = _worker_main(json.loads(sys.argv[2]))
    print(json.dumps(answer))
