"""The benchmark harness works: quick modes on tiny sizes produce positive rates and ratios.

Nothing here is timed: the assertions are on the structure of the results. The
workers are real subprocesses running real frameworks, on batches of a few images.
"""

import math
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

# `benchmarks/` is a folder of the repository, not part of the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import BENCHMARK_NAMES  # noqa: E402
from benchmarks.__main__ import NAMES, main, update_results  # noqa: E402
from benchmarks._harness import (  # noqa: E402
    Samples,
    alternate,
    clustered_median_interval,
    machine_info,
    paired_ratio,
)


def _positive(value):
    return isinstance(value, float) and math.isfinite(value) and value > 0


def test_alternate_rotates_the_first_contender_and_pairs_rounds():
    calls = []
    runners = {name: (lambda name=name: calls.append(name) or 10.0) for name in "abc"}
    samples = alternate(runners, repeats=3)
    assert calls == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert [s.values for s in samples.values()] == [[10.0] * 3] * 3
    fast = Samples("fast", values=[200.0, 100.0, 50.0])
    slow = Samples("slow", values=[100.0, 40.0, 50.0])
    # Per-round ratios 2.0, 2.5, 1.0: the median is 2.0, unlike the ratio of medians (2.0 too
    # here) it does not mix rounds run under different load.
    assert paired_ratio(fast, slow) == 2.0


def test_median_interval_brackets_the_median_and_narrows_with_more_rounds():
    ratios = [0.85, 0.9, 0.95, 0.97, 1.0, 1.02, 1.05, 1.1, 1.2]
    low, high = clustered_median_interval([ratios])
    assert min(ratios) <= low <= statistics.median(ratios) <= high <= max(ratios)
    # The same spread over four times the rounds pins the median down more tightly.
    wide_low, wide_high = clustered_median_interval([ratios * 4])
    assert wide_high - wide_low < high - low
    assert clustered_median_interval([ratios]) == (low, high)  # seeded
    assert clustered_median_interval([[1.0, 1.0]]) == (1.0, 1.0)


def test_clustered_interval_widens_when_process_lifetimes_disagree():
    # Three lifetimes whose rounds agree among themselves but not with each other, as
    # two headline runs minutes apart did on this VM (1.06 and 0.94).
    lifetimes = [[0.93, 0.94, 0.95, 0.94] * 3, [1.05, 1.06, 1.07, 1.06] * 3, [0.99, 1.0, 1.01] * 4]
    pooled = [ratio for group in lifetimes for ratio in group]
    low, high = clustered_median_interval(lifetimes)
    assert low <= statistics.median(pooled) <= high
    # Resampling only the rounds treats 36 rounds as independent and is narrower.
    round_low, round_high = clustered_median_interval([pooled])
    assert high - low > 1.5 * (round_high - round_low)
    # The lifetimes' medians span 0.94-1.06; the interval reaches towards both.
    assert low < 0.97 and high > 1.03
    assert clustered_median_interval(lifetimes) == (low, high)  # seeded
    for bad in ([], [[1.0], []]):
        with pytest.raises(ValueError, match="at least one"):
            clustered_median_interval(bad)
    with pytest.raises(ValueError, match="confidence"):
        clustered_median_interval(lifetimes, confidence=0)


def test_machine_info_names_the_cpu_and_versions():
    info = machine_info()
    assert info["cpu"] and info["logical_cores"] >= 1
    for package in ("tensorflow", "keras", "torch", "jax"):
        assert info[package]


def test_update_results_keeps_hand_written_text(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text("# Title\n\nanalysis stays\n\n<!-- BEGIN a -->\nold\n<!-- END a -->\n\ntail\n")
    update_results(path, {"a": "new a", "b": "new b"})
    text = path.read_text()
    assert "analysis stays" in text and "tail" in text and "old" not in text
    assert "<!-- BEGIN a -->\nnew a\n<!-- END a -->" in text
    assert text.rstrip().endswith("<!-- END b -->")


def test_each_written_section_names_the_machine_it_ran_on(tmp_path, monkeypatch, capsys):
    import benchmarks.__main__ as cli
    from benchmarks._harness import Result

    info = dict(
        machine_info(), cpu="Test CPU", usable_cores=2, simd="avx2 fma", date="2026-12-01 00:00 UTC"
    )
    monkeypatch.setattr(cli, "machine_info", lambda: info)
    monkeypatch.setattr(
        cli,
        "run_benchmarks",
        lambda names, **_: {name: Result(name, f"Title of {name}", "body") for name in names},
    )
    output = tmp_path / "RESULTS.md"
    output.write_text(
        "# Results\n\n"
        + "".join(
            f"<!-- BEGIN {name} -->\nold\n<!-- END {name} -->\n\n"
            for name in ("machine", "resnet20", "resnet50")
        )
        + "analysis\n"
    )
    assert cli.main(["resnet20", f"--output={output}"]) == 0
    text = output.read_text()
    # The machine block describes the latest run; a section keeps its own machine line when
    # a later partial run rewrites the block.
    assert "| CPU | Test CPU |" in text and "<!-- BEGIN resnet50 -->\nold\n" in text
    section = re.search(r"<!-- BEGIN resnet20 -->(.*?)<!-- END resnet20 -->", text, re.DOTALL)
    assert (
        section.group(1)
        .rstrip()
        .endswith("_Measured 2026-12-01 00:00 UTC on Test CPU, 2 cores, avx2 fma._")
    )
    assert text.rstrip().endswith("analysis")
    capsys.readouterr()


def test_list_names_every_benchmark_and_results_md_has_their_sections(capsys):
    assert main(["--list"]) == 0
    listed = capsys.readouterr().out.split()
    assert listed == list(NAMES) and set(BENCHMARK_NAMES) <= set(listed)
    assert {"distribute", "descendants"} <= set(listed)
    results = (Path(__file__).resolve().parents[1] / "benchmarks" / "RESULTS.md").read_text()
    for name in ("machine", *NAMES):
        assert f"<!-- BEGIN {name} -->" in results and f"<!-- END {name} -->" in results


def test_torch_yardstick_is_the_same_network_as_the_library():
    torch = pytest.importorskip("torch")
    import resnet_keras as rk
    from benchmarks.torch_resnet import TorchCifarResNet, count_macs

    model = rk.CifarResNet(20)
    assert count_macs(20) == rk.count_macs(model) == 40_551_040
    torch_params = sum(p.numel() for p in TorchCifarResNet(20).parameters())
    assert torch_params == rk.count_trainable_params(model) == 269_722
    out = TorchCifarResNet(20)(torch.zeros(2, 3, 32, 32))
    assert tuple(out.shape) == (2, 10)


def test_resnet20_quick_measures_keras_and_torch_side_by_side():
    pytest.importorskip("torch")
    from benchmarks import resnet20

    labels = ["keras-tensorflow", "keras-tensorflow-keras-bn", "torch-channels-last"]
    result = resnet20.run(quick=True, contenders=labels, log=lambda line: None, depth=8, batch=4)
    for task in ("train", "infer"):
        for label in labels:
            assert _positive(result.numbers[f"{task}_images_per_s/{label}"])
        headline = result.ratios[f"{task}_library_default_vs_best_torch"]
        assert _positive(headline)
        # The headline carries its bootstrap interval, from the fresh processes' rounds too.
        low, high = (
            result.ratios[f"{task}_library_default_vs_best_torch_{e}"] for e in ("low", "high")
        )
        assert 0 < low <= headline <= high
        assert result.ratios[f"{task}/torch-channels-last_vs_best_torch"] == 1.0
        # Undoing a speed default is measured against the default in the same rounds.
        assert _positive(result.ratios[f"{task}/effect_of/keras-tensorflow-keras-bn"])
    # 2 rounds with every contender, then 2 in one fresh pair of processes.
    assert result.markdown.count("median of 4 per-round ratios from 2 process lifetimes") == 2
    assert "train: library default (`keras-tensorflow`) / best PyTorch (`torch-channels-last`)" in (
        result.markdown
    )
    assert result.markdown.count("| `keras-tensorflow-keras-bn` |") == 2  # both tables
    assert "effect of fused batch normalization" in result.markdown


def test_best_torch_is_the_fastest_plain_pytorch_setup_of_the_task():
    from benchmarks import resnet20

    medians = {"keras-tensorflow": 700.0, "torch-channels-last": 600.0, "torch-compile": 650.0}
    samples = {f"train/{label}": Samples(label, [value]) for label, value in medians.items()}
    assert resnet20._best_torch(samples, "train") == "torch-compile"
    assert resnet20._best_torch(samples, "infer") is None


@pytest.mark.parametrize("ablation", ["keras_batch_normalization", "strided_slice_shortcut"])
def test_ablations_change_the_kernels_not_what_the_model_computes(ablation, monkeypatch):
    import numpy as np

    import resnet_keras as rk
    from benchmarks import _ablations
    from resnet_keras.layers import residual_block, shortcut
    from resnet_keras.layers.batch_normalization import FusedBatchNormalization

    # The hooks patch the library in place (they run in a worker process); undo that here.
    monkeypatch.setattr(
        FusedBatchNormalization, "_use_fused_kernel", FusedBatchNormalization._use_fused_kernel
    )
    for module in (shortcut, residual_block):
        monkeypatch.setattr(module, "parameter_free_shortcut", shortcut.parameter_free_shortcut)
    images = np.random.default_rng(0).standard_normal((4, 32, 32, 3)).astype("float32")
    default = rk.CifarResNet(20)
    weights = default.get_weights()  # before training=True moves the BN statistics
    expected = [np.asarray(default(images, training=flag)) for flag in (False, True)]
    getattr(_ablations, ablation)()
    undone = rk.CifarResNet(20)
    undone.set_weights(weights)
    for flag, want in zip((False, True), expected):
        np.testing.assert_allclose(np.asarray(undone(images, training=flag)), want, atol=1e-4)


def test_pipeline_quick_compares_the_input_pipeline_with_training():
    from benchmarks import pipeline

    result = pipeline.run(quick=True, log=lambda line: None)
    assert _positive(result.numbers["train_images_per_s"])
    for source in pipeline.SOURCES:
        assert _positive(result.numbers[f"{source}_images_per_s"])
        assert _positive(result.ratios[source])
        assert f"| `{source}` |" in result.markdown
    assert "| ResNet-8 training (`keras-tensorflow`) |" in result.markdown


def test_resnet50_quick_compares_the_library_with_keras_applications():
    from benchmarks import resnet50

    result = resnet50.run(quick=True, log=lambda line: None)
    for task in ("train", "infer"):
        assert _positive(result.numbers[f"{task}/rk.ResNet50"])
        assert _positive(result.numbers[f"{task}/reference"])
        assert _positive(result.ratios[task])
        # CPU time is measured alongside wall time, so a stall of the machine shows.
        assert _positive(result.ratios[f"{task}_cpu"])
    assert "25,636,712 parameters" in result.markdown
    assert "| training (fit step) |" in result.markdown


@pytest.mark.parametrize("network", ["resnext", "se", "resnet_d", "convnext"])
def test_descendant_stock_networks_compute_what_the_library_networks_compute(network):
    import numpy as np

    from benchmarks import descendants

    images = np.random.default_rng(0).standard_normal((4, 32, 32, 3)).astype("float32")
    library = descendants.build(network, "library")
    weights = library.get_weights()  # before training=True moves the BN statistics
    expected = [np.asarray(library(images, training=flag)) for flag in (False, True)]
    for variant in ("stock", "stock-fused-bn"):
        library.set_weights(weights)
        stock = descendants.build(network, variant)  # checks the parameter counts
        assert descendants.parameter_counts(stock) == descendants.parameter_counts(library)
        descendants.transfer_weights(library, stock)
        for flag, want in zip((False, True), expected):
            got = np.asarray(stock(images, training=flag))
            np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_descendants_refuses_a_stock_network_that_is_not_the_same():
    from benchmarks import descendants

    library = descendants.library_network("se")
    other = descendants.stock_network("resnet_d")
    with pytest.raises(RuntimeError, match="not the same network"):
        descendants.check_same_network(library, other)
    with pytest.raises(ValueError, match="unknown network"):
        descendants.run(quick=True, networks=("vgg",), log=lambda line: None)


def test_descendants_quick_measures_library_and_stock_side_by_side():
    from benchmarks import descendants

    result = descendants.run(quick=True, networks=("se", "convnext"), log=lambda line: None)
    for network in ("se", "convnext"):
        for variant in descendants.VARIANTS:
            assert _positive(result.numbers[f"images_per_s/{network}/{variant}"])
        for variant in ("stock", "stock-fused-bn"):
            key = f"{network}/library_vs_{variant}"
            assert 0 < result.ratios[f"{key}_low"] <= result.ratios[key]
            assert result.ratios[key] <= result.ratios[f"{key}_high"]
    # The parameter counts the workers report are the library models'.
    assert "| squeeze-and-excitation basic blocks: `CifarResNet(14" in result.markdown
    assert "| 176,840 + 1,120 |" in result.markdown


def test_distribute_quick_trains_through_fit_on_one_and_two_devices():
    from benchmarks import distribute

    result = distribute.run(quick=True, log=lambda line: None)
    for label in distribute.QUICK["contenders"]:
        assert _positive(result.numbers[f"images_per_s/{label}"])
    for key in (
        "distributed-1_vs_none",
        "distributed-2_vs_one-device",
        "jax-distributed-2_vs_none",
    ):
        assert result.ratios[f"{key}_low"] <= result.ratios[key] <= result.ratios[f"{key}_high"]
        assert _positive(result.ratios[key])
    # What each worker trained under: one device needs no engine; two logical CPUs
    # (TensorFlow) and two host devices (JAX) get their backend's engine with 2 replicas.
    rows = {
        cells[0].strip("`"): cells[2]
        for line in result.markdown.splitlines()
        if line.startswith("| `")
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
    }
    assert rows["tf-none"] == rows["tf-distributed-1"] == rows["tf-2cpu-one-device"] == "None (1)"
    assert rows["tf-2cpu-distributed-2"] == "MirroredStrategy (2)"
    assert rows["jax-none"] == "None (1)" and rows["jax-distributed-2"] == "DataParallel (2)"
    with pytest.raises(ValueError, match="unknown contender"):
        distribute.run(quick=True, contenders=("tf-gpu",), log=lambda line: None)


def _check_gpu_table(table, backends, per_execution, precisions, compiled="off"):
    """The table of a tiny `benchmarks.gpu` run: one measured row per setup, numbers consistent."""
    import resnet_keras as rk

    assert f"# GPU benchmark: {' and '.join(backends)}" in table
    peak = re.search(r"float32 matrix product measured here \([^)]*\): ([\d,.]+) TFLOP/s", table)
    assert peak, table
    peak_tflops = float(peak.group(1).replace(",", ""))
    assert peak_tflops > 0, table
    flops_per_image = 6 * rk.count_macs(rk.CifarResNet(8)) / 1e12
    rows = {
        (cells[1], cells[2], cells[4]): cells
        for line in table.splitlines()
        if line.startswith("| ResNet-8 |")
        for cells in [[cell.strip() for cell in line.strip("|").split("|")]]
    }
    contenders = {
        name: "plain PyTorch" if name == "plain-pytorch" else f"Keras on {name}"
        for name in backends
    }
    # Side by side, a Keras contender takes every steps-per-execution, plain PyTorch 1.
    expected = {
        (contenders[name], precision, n)
        for name in backends
        for precision in precisions
        for n in (["1"] if name == "plain-pytorch" else per_execution)
    }
    assert set(rows) == expected, table
    for (_, _, n), cells in rows.items():
        _, _, _, compiled_cell, _, rate, _, tflops, share, first, steps = cells
        assert compiled_cell == compiled
        images = float(rate.replace(",", ""))
        assert images > 0, table  # measured, not failed or skipped
        assert float(tflops) == pytest.approx(images * flops_per_image, abs=0.006)
        # The share is of the matrix product measured in the same run. Both numbers are
        # printed rounded: images/s to the unit, the peak to 3 digits, the share to 0.1.
        lowest = 100 * (images - 0.5) * flops_per_image / (peak_tflops * 1.005) - 0.05
        highest = 100 * (images + 0.5) * flops_per_image / (peak_tflops * 0.995) + 0.05
        assert lowest <= float(share) <= highest, table
        assert float(first) >= 0, table
        # Rounds hold whole executions (a slow setup gets fewer steps, never a partial one).
        assert 1 <= int(steps) <= 2 and int(steps) % int(n) == 0
    first_row = next(line for line in table.splitlines() if line.startswith("| ResNet-8 |"))
    assert f"| float32 | {compiled} | 1 |" in first_row and "| 1.00 |" in first_row  # the base


GPU_TINY = ["--steps=2", "--repeats=1", "--warmup-steps=1", "--batch=2", "--depths=8"]
GPU_TINY += ["--matmul-size=128"]


def test_gpu_script_runs_on_the_cpu_with_tiny_sizes(tmp_path, monkeypatch, capsys):
    # TensorFlow beside plain PyTorch, in this process (Keras is on TensorFlow here already).
    import keras

    from benchmarks import gpu

    if keras.backend.backend() != "tensorflow":
        pytest.skip("runs the TensorFlow contender in this process")
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")  # `main` sets both for its process
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    output = tmp_path / "gpu.md"
    backends = ["tensorflow", "plain-pytorch"]
    arguments = ["--backend", "plain-pytorch", "tensorflow", *GPU_TINY, f"--output={output}"]
    assert gpu.main([*arguments, "--xla=off", "--steps-per-execution", "1", "2"]) == 0
    capsys.readouterr()
    _check_gpu_table(output.read_text(), backends, ["1", "2"], ["float32", "mixed_float16"])
    # JAX in its own process (Keras picks its backend once per process), compiled as by
    # default: uncompiled JAX steps take seconds each on a CPU.
    output = tmp_path / "gpu_jax.md"
    command = [sys.executable, "-m", "benchmarks.gpu", "--backend", "jax", *GPU_TINY]
    command += ["--xla=on", "--precisions=float32"]
    completed = subprocess.run(
        [*command, f"--output={output}"], capture_output=True, text=True, timeout=600
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    _check_gpu_table(output.read_text(), ["jax"], ["1"], ["float32"], compiled="on")


@pytest.mark.parametrize(
    "arguments, message",
    [
        (
            ["--depths", "20", "21"],
            "--depths must be 6n+2 with n >= 1 (20, 32, 44, 56, 110); got [21]",
        ),
        (["--backend", "jax", "tensorflow"], "--backend takes one Keras backend"),
        (["--backend", "plain-pytorch", "--steps-per-execution", "1", "4"], "takes only 1"),
        (["--steps", "0"], "--steps must be >= 1"),
    ],
)
def test_gpu_script_refuses_bad_arguments(arguments, message, capsys):
    from benchmarks import gpu

    with pytest.raises(SystemExit) as exit_info:
        gpu.main(arguments)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
