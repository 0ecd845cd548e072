"""ResNet-20 training and inference images/s: the library default against plain PyTorch.

Each contender runs in a worker process, alternating round by round: `keras-tensorflow`,
the library default (`rk.CifarResNet(20)` compiled as `fit` compiles it, `resnet_keras`
imported first); one contender per CPU default the library sets, undone (`ABLATIONS`:
default / ablation is what the default buys); `keras-jax`, `keras-torch`; and the network
in plain PyTorch (`benchmarks.torch_resnet`) in NCHW, channels_last and `torch.compile`.
The headline, default / fastest PyTorch setup, is the median of per-round ratios over
several process lifetimes (the rounds of every contender, then `headline_lifetimes` fresh
pairs of processes), with a two-stage bootstrap interval.
"""

from __future__ import annotations

import statistics
import time

from benchmarks import _harness as h

LIBRARY_DEFAULT = "keras-tensorflow"
BASELINE = "keras-tensorflow-baseline"
# label -> (contender arguments, description); `hook` is a function of benchmarks._ablations.
CONTENDERS = {
    "keras-tensorflow": ({}, "rk.CifarResNet, TF backend, the library default as `fit` sets it up"),
    "keras-tensorflow-onednn-off": ({}, "default minus oneDNN (TF_ENABLE_ONEDNN_OPTS=0)"),
    "keras-tensorflow-keras-bn": (
        {"hook": "keras_batch_normalization"},
        "default minus the fused BN kernel (Keras' BN ops)",
    ),
    "keras-tensorflow-sliced-shortcut": (
        {"hook": "strided_slice_shortcut"},
        "default minus the max-pool shortcut (strided slice)",
    ),
    "keras-tensorflow-xla": ({"jit_compile": True}, "default plus jit_compile=True (XLA)"),
    "keras-jax": ({}, "rk.CifarResNet, JAX backend (jit)"),
    "keras-torch": ({}, "rk.CifarResNet, torch backend (eager)"),
    "torch-nchw": ({"memory_format": "nchw"}, "plain PyTorch, NCHW"),
    "torch-channels-last": ({"memory_format": "channels_last"}, "plain PyTorch, channels_last"),
    "torch-compile": (
        {"memory_format": "channels_last", "compile": True},
        "plain PyTorch, channels_last + torch.compile",
    ),
}
# Contenders sharing a worker process (the others have their own, named after them).
SHARED = {"keras-tensorflow-xla": "keras-tensorflow", "torch-nchw": "torch"}
SHARED |= {"torch-channels-last": "torch", "torch-compile": "torch"}
# Worker process -> its environment (besides the threads); the others run Keras on TensorFlow.
WORKER_ENV = {
    "keras-tensorflow-onednn-off": {"KERAS_BACKEND": "tensorflow", "TF_ENABLE_ONEDNN_OPTS": "0"},
    "keras-jax": {"KERAS_BACKEND": "jax"},
    "keras-torch": {"KERAS_BACKEND": "torch"},
    "torch": {},
}
# Contender -> the library default it undoes, for the "effect of" lines.
ABLATIONS = {
    "keras-tensorflow-onednn-off": "oneDNN kernels on at import (resnet_keras/_runtime.py)",
    "keras-tensorflow-keras-bn": "fused batch normalization kernel "
    "(resnet_keras/layers/batch_normalization.py)",
    "keras-tensorflow-sliced-shortcut": "option A subsampling by 1x1 max-pool "
    "(resnet_keras/layers/shortcut.py)",
    "keras-tensorflow-xla": "no XLA (`fit(jit_compile=False)`, resnet_keras/training/trainer.py)",
}
FULL = {"batch": 128, "train_steps": 3, "infer_steps": 4, "repeats": 12, "warmup": 3}
FULL |= {"headline_lifetimes": 4, "headline_rounds": 8}
QUICK = {"batch": 8, "train_steps": 1, "infer_steps": 1, "repeats": 2, "warmup": 1}
QUICK |= {"headline_lifetimes": 1, "headline_rounds": 2}
QUICK_CONTENDERS = ("keras-tensorflow", "torch-nchw", "torch-channels-last")


def run(
    quick=False, contenders=None, threads=None, log=print, depth=20, baseline=None, **overrides
):
    """Training and inference images/s of `contenders` (default: all; quick: three), alternating.

    `baseline`: a folder holding another copy of `resnet_keras` (e.g. the last commit, from
    `git archive`), measured as `keras-tensorflow-baseline`; `overrides`: keys of `FULL`.
    Returns a `Result`; `numbers`: `{task}_images_per_s/{label}`;
    `ratios`: `{task}_library_default_vs_best_torch` (and `_low`, `_high`),
    `{task}/{label}_vs_best_torch`, `{task}/effect_of/{label}`.
    """
    settings = h.merge_settings(QUICK if quick else FULL, overrides)
    labels = list(contenders or (QUICK_CONTENDERS if quick else CONTENDERS))
    for label in labels:
        if label not in CONTENDERS:
            raise ValueError(f"unknown contender {label!r}; allowed: {', '.join(CONTENDERS)}")
    threads = threads or h.default_threads()
    table = dict(CONTENDERS)
    if baseline is not None:
        table[BASELINE] = ({}, "another copy of the library (`--baseline`)")
        labels.insert(1, BASELINE)
    started = time.perf_counter()
    paths = {BASELINE: [str(baseline)]} if baseline is not None else None
    groups = _groups(labels, table, settings, depth)
    workers, status, failures = h.start_workers(groups, threads, settings["warmup"], log, paths)
    try:
        log(f"warm-up done in {time.perf_counter() - started:.0f} s; measuring")
        samples = h.alternate(_runners(workers, labels, settings), settings["repeats"], log=log)
    finally:
        h.close_workers(workers)
    headline = _headline(samples, table, threads, settings, depth, log)
    return _report(
        samples, status, failures, labels, table, settings, threads, depth, quick, headline
    )


def _groups(labels, table, settings, depth):
    """Worker name -> {"env", "contenders"} for the given contender labels."""
    groups = {}
    for label in labels:
        arguments, name = table[label][0], SHARED.get(label, label)
        env = WORKER_ENV.get(name, {"KERAS_BACKEND": "tensorflow"})
        group = groups.setdefault(name, {"env": env, "contenders": []})
        kind = "torch_cifar" if label.startswith("torch") else "keras_cifar"
        warmup = {"train": settings["train_steps"], "infer": settings["infer_steps"]}
        spec = dict(id=label, kind=kind, depth=depth, batch=settings["batch"], warmup_tasks=warmup)
        group["contenders"].append(dict(spec, **arguments))
    return groups


def _runners(workers, labels, settings):
    """`{task}/{label}` -> a callable timing one training or inference call."""
    return {
        f"{task}/{label}": h.runner(workers, label, task, settings[f"{task}_steps"])
        for label in labels
        if label in workers
        for task in ("train", "infer")
    }


def _best_torch(samples, task):
    """The label of the fastest plain-PyTorch setup of `task` (None if none ran)."""
    torch = [key for key in samples if key.startswith(f"{task}/torch-")]
    return max(torch, key=lambda key: samples[key].median).split("/", 1)[1] if torch else None


def _headline(samples, table, threads, settings, depth, log):
    """Per-round ratios of the default to the fastest PyTorch setup, by process lifetime.

    The rounds of every contender (`samples`) are the first lifetime; each of
    `headline_lifetimes` fresh pairs of processes, holding only these setups, adds
    `headline_rounds` rounds, so that the interval also covers how much a new pair of
    processes (and a later minute) moves the ratio.
    """
    pairs = {}
    for task in ("train", "infer"):
        best = _best_torch(samples, task)
        if best and f"{task}/{LIBRARY_DEFAULT}" in samples:
            pairs[task] = best
    labels = sorted({LIBRARY_DEFAULT, *pairs.values()})
    lifetimes = [samples]
    for index in range(settings["headline_lifetimes"] if pairs else 0):
        log(f"headline: new processes {index + 1}/{settings['headline_lifetimes']} for {labels}")
        groups = _groups(labels, table, settings, depth)
        workers, _, failures = h.start_workers(groups, threads, settings["warmup"], log)
        try:
            if failures:  # the rounds so far stand; the summary counts the lifetimes it has
                log(f"headline: fresh processes failed, stopping: {failures}")
                break
            runners = _runners(workers, labels, settings)
            pairs_runners = {
                key: runners[key]
                for task, best in pairs.items()
                for key in (f"{task}/{LIBRARY_DEFAULT}", f"{task}/{best}")
            }
            lifetimes.append(h.alternate(pairs_runners, settings["headline_rounds"]))
        finally:
            h.close_workers(workers)
    headline = {}
    for task, best in pairs.items():
        ours, theirs = f"{task}/{LIBRARY_DEFAULT}", f"{task}/{best}"
        by_lifetime = [h.round_ratios(zip(r[ours].values, r[theirs].values)) for r in lifetimes]
        headline[task] = {"best": best, "lifetimes": [ratios for ratios in by_lifetime if ratios]}
    return headline


def _report(samples, status, failures, labels, table, settings, threads, depth, quick, headline):
    numbers, ratios, sections = {}, {}, []
    titles = {"train": "Training (forward + backward + SGD step)", "infer": "Inference (eval mode)"}
    for task, title in titles.items():
        best = _best_torch(samples, task)
        rows = []
        for label in labels:
            value = samples.get(f"{task}/{label}")
            if value is None:
                rows.append([f"`{label}`", table[label][1], "failed", "", ""])
                continue
            ratio = h.paired_ratio(value, samples[f"{task}/{best}"]) if best else float("nan")
            numbers[f"{task}_images_per_s/{label}"] = value.median
            ratios[f"{task}/{label}_vs_best_torch"] = ratio
            first_call = status[label]["warmup_s"][0] if status[label]["warmup_s"] else None
            cells = [h.fmt_spread(value, bold=True), h.fmt(ratio, 2), h.fmt(first_call)]
            rows.append([f"`{label}`", table[label][1], *cells])
        header = ["contender", "setup", "images/s median (min-max)", "ratio to best PyTorch"]
        sections.append(f"### {title}\n\n" + h.markdown_table(header + ["first call s"], rows))

    summary = []
    for task, pair in headline.items():
        if not pair["lifetimes"]:
            continue
        pooled = [ratio for group in pair["lifetimes"] for ratio in group]
        key = f"{task}_library_default_vs_best_torch"
        ratios[key] = value = statistics.median(pooled)
        ratios[f"{key}_low"], ratios[f"{key}_high"] = h.clustered_median_interval(pair["lifetimes"])
        by_lifetime = ", ".join(h.fmt(statistics.median(group), 2) for group in pair["lifetimes"])
        fresh = len(pair["lifetimes"]) - 1
        summary.append(
            f"**{task}: library default (`{LIBRARY_DEFAULT}`) / best PyTorch (`{pair['best']}`) = "
            f"{h.fmt(value, 2)}** (median of {len(pooled)} per-round ratios from "
            f"{len(pair['lifetimes'])} process lifetimes: the {settings['repeats']} rounds above "
            f"and {fresh} fresh pair{'s' if fresh != 1 else ''} of processes holding only the "
            f"compared setups, {settings['headline_rounds']} rounds each; medians by lifetime "
            f"{by_lifetime}; 95 % bootstrap interval over lifetimes and rounds "
            f"{h.fmt(ratios[f'{key}_low'], 2)}-{h.fmt(ratios[f'{key}_high'], 2)})"
        )
    for label, change in ABLATIONS.items():
        for task in ("train", "infer"):
            default, undone = (samples.get(f"{task}/{name}") for name in (LIBRARY_DEFAULT, label))
            if default and undone:
                effect = ratios[f"{task}/effect_of/{label}"] = h.paired_ratio(default, undone)
                line = f"{task}: effect of {change}: default / `{label}` = {h.fmt(effect, 2)}x"
                summary.append(line)
    summary += [f"`{label}` did not run: {error}" for label, error in failures.items()]
    runtime = status.get(LIBRARY_DEFAULT, {}).get("runtime", {})
    intro = (
        f"ResNet-{depth} (`rk.CifarResNet({depth})`, option A), "
        f"batch {settings['batch']}, synthetic 32x32x3 data, {threads} threads per framework "
        f"(TensorFlow inter-op: default {runtime.get('tf_inter_op', '')}), "
        f"{settings['repeats']} alternating rounds of {settings['train_steps']} training / "
        f"{settings['infer_steps']} inference steps after {settings['warmup']} warm-up calls"
        f"{' (QUICK MODE: not representative)' if quick else ''}."
    )
    return h.Result(
        name="resnet20",
        title=f"ResNet-{depth} on this CPU: Keras backends against plain PyTorch",
        markdown="\n\n".join([intro, *sections, "\n".join(f"- {line}" for line in summary)]),
        numbers=numbers,
        ratios=ratios,
    )
