"""Tests of resnet_keras.course.profiles: selection order, the profiles' numbers, errors."""

from __future__ import annotations

import dataclasses

import pytest
import tensorflow as tf

from resnet_keras.course import profiles
from resnet_keras.course.profiles import PROFILE_NAMES, Profile, detect_profile, get_profile


@pytest.fixture
def clean_env(monkeypatch):
    """No profile variable, not in CI, and no GPU, unless a test says otherwise."""
    monkeypatch.delenv(profiles.ENV_VAR, raising=False)
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    return monkeypatch


def test_explicit_name_wins_over_everything(clean_env):
    clean_env.setenv(profiles.ENV_VAR, "gpu")
    clean_env.setenv("CI", "true")
    assert get_profile("cpu").name == "cpu"
    assert detect_profile("CPU ") == ("cpu", "requested explicitly")


def test_environment_variable_wins_over_ci_and_hardware(clean_env):
    clean_env.setenv(profiles.ENV_VAR, "gpu")
    clean_env.setenv("CI", "true")
    name, reason = detect_profile()
    assert name == "gpu" and profiles.ENV_VAR in reason
    assert get_profile() is profiles.PROFILES["gpu"]


@pytest.mark.parametrize("value", ["true", "1", "yes", "True"])
def test_ci_variable_selects_ci(clean_env, value):
    clean_env.setenv("CI", value)
    name, reason = detect_profile()
    assert name == "ci" and "CI" in reason


@pytest.mark.parametrize("value", ["", "false", "0", "FALSE"])
def test_ci_variable_set_to_false_is_ignored(clean_env, value):
    clean_env.setenv("CI", value)
    assert detect_profile()[0] == "cpu"


def test_empty_profile_variable_is_ignored(clean_env):
    clean_env.setenv(profiles.ENV_VAR, "  ")
    assert detect_profile()[0] == "cpu"


def test_gpu_selected_when_tensorflow_sees_one(clean_env):
    fake_gpu = tf.config.PhysicalDevice(name="/physical_device:GPU:0", device_type="GPU")
    clean_env.setattr(
        tf.config, "list_physical_devices", lambda kind=None: [fake_gpu] if kind == "GPU" else []
    )
    name, reason = detect_profile()
    assert name == "gpu" and "1 GPU" in reason


def test_cpu_is_the_fallback(clean_env):
    name, reason = detect_profile()
    assert name == "cpu" and "no GPU" in reason


def test_unknown_names_list_the_allowed_ones(clean_env):
    with pytest.raises(ValueError, match="'ci', 'cpu', 'gpu'"):
        get_profile("tpu")
    clean_env.setenv(profiles.ENV_VAR, "laptop")
    with pytest.raises(ValueError, match=profiles.ENV_VAR):
        get_profile()
    with pytest.raises(TypeError, match="name"):
        get_profile(3)


def test_profile_numbers():
    ci, cpu, gpu = (get_profile(name) for name in PROFILE_NAMES)
    # CI must stay tiny; the GPU profile is the paper's recipe (Sec. 4.2).
    assert ci.train_size <= 2_000 and ci.epochs <= 2
    assert cpu.train_size < 50_000 and not cpu.mixed_precision
    assert gpu.train_size is None and gpu.validation_size == 5_000
    assert gpu.epochs == 182 and gpu.batch_size == 128
    assert gpu.mixed_precision and gpu.jit_compile
    assert not (ci.jit_compile or ci.mixed_precision)
    assert all(p.description for p in (ci, cpu, gpu))


def test_profiles_are_frozen_and_validated():
    profile = get_profile("ci")
    with pytest.raises(dataclasses.FrozenInstanceError):
        profile.epochs = 3
    assert profile.replace(epochs=3).epochs == 3 and profile.epochs == 2
    with pytest.raises(ValueError, match="epochs"):
        profile.replace(epochs=0)
    with pytest.raises(TypeError, match="train_size"):
        profile.replace(train_size=1.5)
    with pytest.raises(ValueError, match="name"):
        profile.replace(name="tpu")
    assert get_profile(profile) is profile


def test_data_kwargs_feed_load():
    from resnet_keras.data import load

    profile = get_profile("ci").replace(train_size=64, validation_size=16, test_size=32)
    kwargs = profile.data_kwargs()
    kwargs["name"] = "digits"  # stays offline whatever the machine
    info = load(**kwargs).info
    assert (info.train_size, info.validation_size, info.test_size) == (64, 16, 32)
    assert info.batch_size == profile.batch_size


def test_profile_is_a_dataclass_with_the_documented_fields():
    fields = {field.name for field in dataclasses.fields(Profile)}
    assert {
        "name",
        "train_size",
        "validation_size",
        "test_size",
        "epochs",
        "batch_size",
        "mixed_precision",
        "jit_compile",
        "description",
    } <= fields


@pytest.mark.parametrize(
    ("name", "sizes"),
    [
        # ci: 200 of 2,200 requested is 9.1%, 131 of the 1,437 digits; 1,306 remain to train.
        ("ci", (1306, 131)),
        # cpu: 1,000 of 11,000 requested; the digits cannot give 10,000 training images.
        ("cpu", (1306, 131)),
        # gpu: 5,000 validation images and all the rest to train is CIFAR-10's 45k/5k; on the
        # digits it keeps validation_split's tenth instead of failing.
        ("gpu", (1293, 144)),
    ],
)
def test_every_profile_fits_the_offline_digits(name, sizes):
    from resnet_keras.data import load

    kwargs = get_profile(name).data_kwargs()
    kwargs["name"] = "digits"
    info = load(**kwargs).info
    assert (info.train_size, info.validation_size) == sizes
    assert info.train_size + info.validation_size == 1437
