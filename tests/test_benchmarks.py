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
from benchmarks.__main__ import main, update_results  # noqa: E402
from benchmarks._harness import (  # noqa: E402
    Samples,
    alternate,
    clustered_median_interval,
    default_threads,
    machine_info,
    median_interval,
    native_bfloat16,
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
    low, high = median_interval(ratios)
    assert min(ratios) <= low <= statistics.median(ratios) <= high <= max(ratios)
    # The same spread over four times the rounds pins the median down more tightly.
    wide_low, wide_high = median_interval(ratios * 4)
    assert wide_high - wide_low < high - low
    # Seeded: the same rounds give the same interval.
    assert median_interval(ratios) == (low, high)
    assert median_interval([1.0, 1.0]) == (1.0, 1.0)
    with pytest.raises(ValueError, match="at least one"):
        median_interval([])
    with pytest.raises(ValueError, match="confidence"):
        median_interval([1.0], confidence=1.5)


def test_clustered_interval_widens_when_process_lifetimes_disagree():
    # Three lifetimes whose rounds agree among themselves but not with each other, as
    # two headline runs minutes apart did on this VM (1.06 and 0.94).
    lifetimes = [[0.93, 0.94, 0.95, 0.94] * 3, [1.05, 1.06, 1.07, 1.06] * 3, [0.99, 1.0, 1.01] * 4]
    pooled = [ratio for group in lifetimes for ratio in group]
    low, high = clustered_median_interval(lifetimes)
    assert low <= statistics.median(pooled) <= high
    # Resampling only the rounds treats 36 rounds as independent and is narrower.
    round_low, round_high = median_interval(pooled)
    assert high - low > 1.5 * (round_high - round_low)
    # The lifetimes' medians span 0.94-1.06; the interval reaches towards both.
    assert low < 0.97 and high > 1.03
    # One lifetime: the same as resampling its rounds.
    assert clustered_median_interval([pooled]) == median_interval(pooled)
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
        machine_info(),
        cpu="Test CPU",
        usable_cores=2,
        simd="avx2 fma",
        date="2026-12-01 00:00 UTC",
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
            for name in ("machine", "resnet20", "kernels")
        )
        + "analysis\n"
    )
    assert cli.main(["resnet20", f"--output={output}"]) == 0
    text = output.read_text()
    # The machine block describes the latest run; a section keeps its own machine line when
    # a later partial run rewrites the block.
    assert "| CPU | Test CPU |" in text and "<!-- BEGIN kernels -->\nold\n" in text
    section = re.search(r"<!-- BEGIN resnet20 -->(.*?)<!-- END resnet20 -->", text, re.DOTALL)
    assert (
        section.group(1)
        .rstrip()
        .endswith("_Measured 2026-12-01 00:00 UTC on Test CPU, 2 cores, avx2 fma._")
    )
    assert text.rstrip().endswith("analysis")
    capsys.readouterr()


def test_list_names_every_benchmark(capsys):
    assert main(["--list"]) == 0
    assert capsys.readouterr().out.split() == list(BENCHMARK_NAMES)


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

    result = resnet20.run(
        quick=True,
        contenders=[
            "keras-tensorflow",
            "keras-tensorflow-keras-bn",
            "torch-channels-last",
            "keras-tensorflow-bf16",
            "torch-channels-last-bf16",
        ],
        log=lambda line: None,
        batch=4,
        matmul_size=64,
    )
    for task in ("train", "infer"):
        for label in ("keras-tensorflow", "torch-channels-last", "keras-tensorflow-bf16"):
            assert _positive(result.numbers[f"{task}_images_per_s/{label}"])
            assert _positive(result.numbers[f"{task}_gflops/{label}"])
        for key in ("library_default_vs_best_torch", "bf16_vs_best_torch_bf16"):
            headline = result.ratios[f"{task}_{key}"]
            assert _positive(headline)
            # The headline carries its bootstrap interval, from the extra rounds too.
            low, high = result.ratios[f"{task}_{key}_low"], result.ratios[f"{task}_{key}_high"]
            assert 0 < low <= headline <= high
        # Each precision is compared with PyTorch in the same precision: the bfloat16
        # PyTorch setup is the best of its own precision, whatever its speed.
        assert result.ratios[f"{task}/torch-channels-last-bf16_vs_best_torch"] == 1.0
        assert result.ratios[f"{task}/torch-channels-last_vs_best_torch"] == 1.0
    # 2 rounds with every contender, then 2 in one fresh set of processes.
    assert result.markdown.count("median of 4 per-round ratios from 2 process lifetimes") == 4
    assert "(`keras-tensorflow-bf16`) / best bfloat16 PyTorch (`torch-channels-last-bf16`)" in (
        result.markdown
    )
    assert _positive(result.numbers["machine_fp32_gflops"])
    assert _positive(result.numbers["machine_bf16_gflops"])
    assert "| `matmul-torch-bf16` | 64x64 bfloat16 |" in result.markdown
    assert "| `keras-tensorflow` |" in result.markdown
    assert "library default" in result.markdown
    # Undoing a speed default is measured against the default in the same rounds.
    assert _positive(result.ratios["train/effect_of/keras-tensorflow-keras-bn"])
    assert "effect of fused batch normalization" in result.markdown


def test_bfloat16_contenders_run_by_default_only_with_bfloat16_instructions():
    from benchmarks import resnet20

    assert native_bfloat16({"avx2", "avx512f", "avx512_bf16"})
    assert native_bfloat16(["amx_bf16", "amx_tile"])
    assert not native_bfloat16({"avx2", "fma", "avx512f"})
    with_bf16 = resnet20.default_contenders({"avx512_bf16"})
    without = resnet20.default_contenders({"avx2", "fma"})
    assert with_bf16 == tuple(resnet20.CONTENDERS)
    assert "keras-tensorflow-bf16" in with_bf16 and "torch-compile-bf16" in with_bf16
    assert {resnet20.precision_of(label) for label in without} == {"float32"}
    assert set(with_bf16) - set(without) == {
        "keras-tensorflow-bf16",
        "torch-channels-last-bf16",
        "torch-compile-bf16",
    }


def test_best_torch_compares_within_one_precision():
    from benchmarks import resnet20

    samples = {
        f"train/{label}": Samples(f"train/{label}", values=values)
        for label, values in {
            "keras-tensorflow": [500.0],
            "torch-channels-last": [600.0],
            "torch-compile": [650.0],
            "torch-channels-last-bf16": [900.0],
            "torch-compile-bf16": [1000.0],
        }.items()
    }
    assert resnet20._best_torch(samples, "train").label == "train/torch-compile"
    best_bf16 = resnet20._best_torch(samples, "train", "mixed_bfloat16")
    assert best_bf16.label == "train/torch-compile-bf16"
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

    result = pipeline.run(quick=True, log=lambda line: None, batch=8)
    assert _positive(result.numbers["train_images_per_s"])
    for source in pipeline.SOURCES:
        assert _positive(result.numbers[f"{source}_images_per_s"])
        assert _positive(result.ratios[source])
    for call in pipeline.CALLS:
        assert _positive(result.ratios[f"{call}_speedup"])
        for setup in pipeline.CALL_SETUPS:
            assert _positive(result.numbers[f"{call}_{setup}_seconds"])
            assert not result.numbers[f"{call}_{setup}_idle_core_seconds"] < 0
        assert f"| `{call}` |" in result.markdown


def test_first_step_quick_traces_once_as_fit_sets_up_and_twice_by_default():
    from benchmarks import first_step

    result = first_step.run(quick=True, log=lambda line: None)
    assert result.numbers["resnet8_library_traces"] == 1
    assert result.numbers["resnet8_keras_traces"] == 2
    assert _positive(result.numbers["resnet8_library_seconds"])
    assert _positive(result.ratios["resnet8"])
    assert "| ResNet-8 |" in result.markdown


def test_notebooks_quick_executes_a_notebook(tmp_path):
    from benchmarks import notebooks

    result = notebooks.run(quick=True, notebooks_dir=tmp_path, log=lambda line: None)
    assert _positive(result.numbers["smoke.ipynb"])
    assert "| `smoke.ipynb` |" in result.markdown and "ok" in result.markdown


@pytest.mark.parametrize("backends", ["tensorflow", "plain-pytorch", "jax plain-pytorch"])
def test_gpu_script_runs_on_the_cpu_with_tiny_sizes(tmp_path, backends):
    output = tmp_path / "gpu.md"
    backends = backends.split()
    keras_contender = backends[0] != "plain-pytorch"
    per_execution = ["1", "2"] if keras_contender else ["1"]
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.gpu",
            "--backend",
            *backends,
            "--steps=2",
            "--repeats=1",
            "--warmup-steps=1",
            "--batch=2",
            "--depths=20",
            "--xla=off",
            "--matmul-size=128",
            "--steps-per-execution",
            *per_execution,
            f"--output={output}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    table = output.read_text()
    assert f"# GPU benchmark: {' and '.join(backends)}" in table
    peak = re.search(r"float32 matrix product measured here \([^)]*\): ([\d,.]+) TFLOP/s", table)
    assert peak, table
    peak_tflops = float(peak.group(1).replace(",", ""))
    assert peak_tflops > 0, table
    flops_per_image = 6 * 40_551_040 / 1e12  # ResNet-20's multiply-adds per image, x 6, in TFLOP
    rows = {
        (cells[1], cells[2], cells[4]): cells
        for line in table.splitlines()
        if line.startswith("| ResNet-20 |")
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
        for precision in ("float32", "mixed_float16")
        for n in (["1"] if name == "plain-pytorch" else per_execution)
    }
    assert set(rows) == expected, table
    for (_, _, per_execution_cell), cells in rows.items():
        _, _, _, compiled, _, rate, _, tflops, share, first, steps = cells
        assert compiled == "off"
        images = float(rate.replace(",", ""))
        assert images > 0, table  # measured, not failed or skipped
        assert float(tflops) == pytest.approx(images * flops_per_image, abs=0.006)
        # The share is of the matrix product measured in the same run. Both numbers are
        # printed rounded: images/s to the unit, the peak to 3 digits, the share to 0.1.
        lowest = 100 * (images - 0.5) * flops_per_image / (peak_tflops * 1.005) - 0.05
        highest = 100 * (images + 0.5) * flops_per_image / (peak_tflops * 0.995) + 0.05
        assert lowest <= float(share) <= highest, table
        # Printed to 0.1 s: eager PyTorch's first call of a 2-image batch shows 0.0.
        assert float(first) >= 0, table
        # Rounds hold whole executions (a slow setup gets fewer steps, never a partial one).
        assert 1 <= int(steps) <= 2 and int(steps) % int(per_execution_cell) == 0
    first_row = next(line for line in table.splitlines() if line.startswith("| ResNet-20 |"))
    assert "| float32 | off | 1 |" in first_row and "| 1.00 |" in first_row  # the ratio's base


@pytest.mark.parametrize(
    "arguments, message",
    [
        (
            ["--depths", "20", "21"],
            "--depths must be 6n+2 with n >= 1 (20, 32, 44, 56, 110); got [21]",
        ),
        (["--backend", "jax", "tensorflow"], "--backend takes one Keras backend"),
        (["--backend", "plain-pytorch", "--steps-per-execution", "1", "4"], "takes only 1"),
    ],
)
def test_gpu_script_refuses_bad_arguments(arguments, message):
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    assert message in completed.stderr


def test_breakdown_quick_profiles_a_training_step():
    from benchmarks import breakdown

    result = breakdown.run(quick=True, log=lambda line: None)
    assert _positive(result.numbers["wall_ms"]) and _positive(result.numbers["kernel_ms"])
    groups = result.numbers["groups_ms"]
    # Every kernel is counted once, in exactly one group; convolutions are among them.
    assert abs(sum(groups.values()) - result.numbers["kernel_ms"]) < 1e-6
    assert 0 < result.numbers["convolution_share"] < 1
    assert "convolution, weight gradient" in result.markdown
    # The pool's idle time covers the profiled span: every state's wall time adds up
    # to it, and no state is idler than all its threads.
    idleness = result.numbers["idleness_ms"]
    if default_threads() > 1:  # with one thread oneDNN runs every job on the calling thread
        assert idleness, "the trace should carry the thread pool's task marks"
    assert 0 <= result.numbers["pool_idle_share"] <= 1
    for wall, idle in idleness.values():
        assert 0 <= idle <= default_threads() * wall + 1e-9
    assert "intra-op threads are" in result.markdown


def test_thread_idleness_attributes_idle_pool_time_to_what_runs():
    from benchmarks.breakdown import BETWEEN, TOGETHER, thread_idleness

    ops = [(0, 10, "Conv2D"), (10, 14, "BatchNorm"), (12, 20, "AddV2"), (22, 30, "Conv2D")]
    # Two threads. One finishes its share of the first convolution early; the
    # batch norm keeps one busy; the overlap has work queued for both; then a gap.
    tasks = [(-5, 8), (0, 10), (10, 14), (12, 20), (12, 20), (22, 26), (26, 30), (22, 30)]
    result = thread_idleness(ops, tasks, threads=2)
    assert result == {
        "Conv2D": (18, 2),  # 0-10: one thread idle 8-10; 22-30: back-to-back tasks, busy
        "BatchNorm": (2, 2),  # 10-12: one of two threads
        TOGETHER: (2, 0),  # 12-14: three tasks, no idle thread
        "AddV2": (6, 0),
        BETWEEN: (2, 4),  # 20-22: nothing runs
    }
    assert sum(wall for wall, _ in result.values()) == 30  # the span of the ops
    assert thread_idleness([], tasks, threads=2) == {}
    for threads in (0, 1.5):
        with pytest.raises(ValueError, match="threads"):
            thread_idleness(ops, tasks, threads=threads)


def test_first_task_delays_time_the_serial_start_of_ops_running_alone():
    from benchmarks.breakdown import first_task_delays

    ops = [(0, 10, "Conv2D"), (12, 20, "Conv2D"), (21, 25, "AddV2"), (24, 30, "ReluGrad")]
    tasks = [(3, 10), (4, 9), (12, 20), (40, 50)]
    # The second convolution starts its task at once; the overlapping pair is left
    # out (whose task would it be?), and so is an op that hands out no task.
    assert first_task_delays(ops, tasks) == {"Conv2D": [3, 0]}
    assert first_task_delays([(0, 5, "Relu")], []) == {}


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
    assert "stall-free rounds" in result.markdown


def test_a_call_with_idle_cores_counts_as_stalled():
    from benchmarks.resnet50 import _stalled

    busy = {"seconds": 18.0, "idle_seconds": 1.5}
    stalled = {"seconds": 28.0, "idle_seconds": 20.0}
    assert not _stalled(busy, threads=2)
    assert _stalled(stalled, threads=2)
    # Without /proc/stat nothing is called a stall.
    assert not _stalled({"seconds": 1.0, "idle_seconds": None}, threads=2)


def test_cifar_convolutions_are_every_multiply_add_of_the_network():
    import resnet_keras as rk
    from benchmarks.kernels import cifar_convolutions

    for depth in (20, 56):
        shapes = cifar_convolutions(depth)
        conv_macs = sum(
            count * (size // stride) ** 2 * 9 * cin * cout
            for size, cin, cout, stride, count in shapes
        )
        # Everything else is the 64 x 10 classifier; option A shortcuts have no weights.
        assert conv_macs + 64 * 10 == rk.count_macs(rk.CifarResNet(depth))
        assert sum(shape[-1] for shape in shapes) == depth - 1
    for bad in (21, 0, "20", True):
        with pytest.raises(ValueError, match="6n \\+ 2"):
            cifar_convolutions(bad)


def test_parse_onednn_verbose_reads_version_runtime_and_implementations():
    from benchmarks.kernels import parse_onednn_verbose

    text = "\n".join(
        [
            "onednn_verbose,v1,info,oneDNN v3.12.0 (commit 80afa71)",
            "onednn_verbose,v1,info,cpu,runtime:OpenMP,nthr:2",
            "onednn_verbose,v1,primitive,exec,cpu,reorder,jit:blk,undef,src dst,,,16x16x3x3,0.1",
            "onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx2,"
            "forward_training,src,attr,alg,mb8_ic16oc16,0.6",
            "onednn_verbose,v1,primitive,exec,cpu,convolution,jit:avx2,backward_weights,"
            "src,attr,alg,mb8_ic16oc16,0.9",
        ]
    )
    info = parse_onednn_verbose(text)
    assert info == {
        "version": "v3.12.0",
        "runtime": "OpenMP",
        "forward": "brg_conv_fwd:avx2",
        "input_gradient": "unknown",
        "weight_gradient": "jit:avx2",
    }
    assert parse_onednn_verbose("")["version"] == "unknown"


def test_kernels_quick_times_the_same_convolutions_in_both_frameworks():
    pytest.importorskip("torch")
    from benchmarks import kernels
    from benchmarks._harness import default_threads

    result = kernels.run(quick=True, log=lambda line: None)
    shapes = kernels.cifar_convolutions(20)
    for threads in {default_threads(), 1}:
        for framework in ("tensorflow", "torch"):
            assert _positive(result.numbers[f"{threads}/{framework}/step_ms"])
            assert _positive(result.numbers[f"{threads}/{framework}/0/forward_ms"])
        assert _positive(result.ratios[f"{threads}/step_time"])
    # Stride-1 kernels got the same inputs and returned the same sums in both frameworks.
    same = result.markdown.count("| yes |")
    stride_one_tasks = sum(3 for shape in shapes if shape[3] == 1) - 1  # no stem input gradient
    assert same == stride_one_tasks
    assert "| NO |" not in result.markdown
    assert "threading runtime" in result.markdown
