"""The checkers of notebook 11 (scaling out): each accepts its reference solution, says "not
attempted" to the template, and names each usual slip; the second one runs the learner's
settings on two logical CPU devices in a fresh process, so its tests are slow."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from resnet_keras.course.exercises import nb11_scaling as nb
from resnet_keras.course.exercises.solutions import nb11_scaling as solutions

REPO = Path(__file__).resolve().parents[1]


def test_the_solutions_pass_and_the_templates_are_not_attempted():
    assert nb.check_scaled_setup(solutions.scaled_setup, quiet=True).passed
    assert nb.check_scaled_setup(lambda b, d: None, quiet=True).status == "not attempted"
    template = nb.check_same_network_on_two_devices(lambda: None, quiet=True)
    assert template.status == "not attempted"


def test_goyal_et_al_s_setup_is_the_rule():
    # 256 GPUs, 8,192 images a step, LR 3.2 (Goyal et al. 2017, section 5).
    per_replica, learning_rate = solutions.scaled_setup(8192, 256)
    assert per_replica == 32 and math.isclose(learning_rate, 3.2)


@pytest.mark.parametrize(
    ("attempt", "named"),
    [
        (lambda b, d: (b * d, 0.1 * b / 256), "global batch times the devices"),
        (lambda b, d: (b // d, 0.1 * (b // d) / 256), "scaled the learning rate by the per-device"),
        (lambda b, d: (b // d, 0.1 * math.sqrt(b / 256)), "square-root rule"),
        (lambda b, d: (b // d, 0.1), "linearly scaled learning rate is"),
        (lambda b, d: (b, 0.1 * b / 256), "each device takes"),
        (lambda b, d: b // d, "Return two numbers"),
    ],
)
def test_scaled_setup_names_each_slip(attempt, named):
    result = nb.check_scaled_setup(attempt, quiet=True)
    assert not result.passed
    assert named in result.message


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"batch_size": 15, "learning_rate": 0.1, "synchronized_batch_norm": True}, "split"),
        ({"batch_size": 16, "synchronized_batch_norm": True}, "exactly the keys"),
    ],
)
def test_settings_that_cannot_run_are_refused_before_running(settings, named):
    result = nb.check_same_network_on_two_devices(lambda: settings, quiet=True)
    assert not result.passed
    assert named in result.message


@pytest.mark.slow
def test_the_two_device_solution_trains_the_one_device_network():
    result = nb.check_same_network_on_two_devices(solutions.two_device_settings, quiet=True)
    assert result.passed, result.message


@pytest.mark.slow
@pytest.mark.parametrize(
    ("settings", "named"),
    [
        # Per-replica statistics: measured 0.3 apart.
        ({"batch_size": 16, "learning_rate": 0.1, "synchronized_batch_norm": False}, "synchronise"),
        # The per-device batch given as the dataset's: 4 images per device, twice the steps.
        ({"batch_size": 8, "learning_rate": 0.1, "synchronized_batch_norm": True}, "GLOBAL"),
    ],
)
def test_two_device_slips_are_measured_and_named(settings, named):
    result = nb.check_same_network_on_two_devices(lambda: settings, quiet=True)
    assert not result.passed
    assert "apart" in result.message and named in result.message


def _fresh_python(code):
    env = {k: v for k, v in os.environ.items() if k != "RESNET_KERAS_PROFILE"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO), KERAS_BACKEND="tensorflow")
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.slow
def test_use_cpu_devices_splits_a_fresh_process_once_and_refuses_a_started_one():
    code = (
        "from resnet_keras.course.scaling_runs import use_cpu_devices\n"
        "print(use_cpu_devices(2), use_cpu_devices(2))\n"  # the second call: already split
        "try:\n"
        "    use_cpu_devices(3)\n"
        "except RuntimeError as error:\n"
        "    print('refused:', error)\n"
    )
    finished = _fresh_python(code)
    assert finished.returncode == 0, finished.stderr[-3000:]
    lines = finished.stdout.strip().splitlines()
    assert lines[-2] == "2 2"
    assert lines[-1].startswith("refused: TensorFlow started with 2 CPU device(s)")
