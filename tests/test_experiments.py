"""resnet_keras.course.experiments: a restarted model trains exactly as a fresh one, the pool
returns results in call order, and `budgets.shrink` keeps a training split's epoch counter.

The training runs are tiny (128 digits at 8x8, two epochs): what is checked is that the
numbers of a run that reuses the compiled model (`_restart`) are the numbers of a new one,
not that the networks learn.
"""

import re

import keras
import numpy as np
import pytest

import resnet_keras as rk
from resnet_keras.course import get_profile
from resnet_keras.course.budgets import notebook_budget, shrink
from resnet_keras.course.experiments import run_parallel, train_cifar_network, train_seed_network
from resnet_keras.data import load
from resnet_keras.data.epochs import epoch_counter, set_epoch

BUDGET = dict(image_size=8, train_size=128, epochs=2, batch_size=32, learning_rate=0.02)
CURVES = ("training_error", "test_error", "training_loss")


def assert_same_curves(restarted, fresh):
    # Op determinism is on (rk.set_determinism inside the runs): the same weights, data order
    # and optimizer state give the same numbers, up to float32 rounding at most.
    for key in CURVES:
        assert len(restarted[key]) == BUDGET["epochs"]
        np.testing.assert_allclose(restarted[key], fresh[key], rtol=0, atol=1e-7, err_msg=key)


def test_cifar_network_restarted_for_a_second_seed_trains_as_a_fresh_one(tmp_path):
    runs = train_cifar_network(8, residual=True, seeds=(0, 1), budget=BUDGET, save_dir=tmp_path)
    (alone,) = train_cifar_network(8, residual=True, seeds=(1,), budget=BUDGET)
    assert_same_curves(runs[1], alone)
    # Seed 0 starts from other weights: a restart that kept seed 0's would pass the check
    # above only if it were not compared with a fresh run, so make sure the seeds differ.
    assert runs[0]["training_loss"] != runs[1]["training_loss"]
    assert all(run["seconds"] > 0 for run in runs)

    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "resnet8_seed0.keras",
        "resnet8_seed1.keras",
    ]
    # `import resnet_keras` (above) registers the custom layers load_model needs.
    reloaded = keras.saving.load_model(tmp_path / "resnet8_seed1.keras")
    assert reloaded.count_params() == rk.CifarResNet(8, input_shape=(8, 8, 3)).count_params()


def test_seed_network_restarted_for_a_second_seed_trains_as_a_fresh_one():
    kwargs = dict(residual=True, budget=BUDGET, filters=(8, 16), repeats=2)
    runs = train_seed_network(seeds=(0, 1), **kwargs)
    (alone,) = train_seed_network(seeds=(1,), **kwargs)
    assert_same_curves(runs[1], alone)


def test_cifar_network_rejects_no_seeds_and_an_incomplete_budget():
    with pytest.raises(ValueError, match="`seeds`"):
        train_cifar_network(8, residual=True, seeds=(), budget=BUDGET)
    budget = {key: value for key, value in BUDGET.items() if key != "learning_rate"}
    with pytest.raises(ValueError, match="`budget`.*learning_rate"):
        train_cifar_network(8, residual=True, seeds=(0,), budget=budget)


def test_run_parallel_returns_the_results_in_call_order(capsys):
    # notebook_budget lives in a module, so the spawned workers can import it; two
    # notebooks with different answers show whether a result lands in the wrong slot.
    ci = get_profile("ci")
    calls = [
        (notebook_budget, dict(notebook="07", profile=ci)),
        (notebook_budget, dict(notebook="02", profile=ci)),
    ]
    expected = [notebook_budget("07", ci), notebook_budget("02", ci)]
    assert run_parallel(calls, jobs=1) == expected
    lines = capsys.readouterr().out.splitlines()
    assert [re.sub(r"\d+ s$", "N s", line) for line in lines] == [
        "[1/2] call 1 finished after N s",
        "[2/2] call 2 finished after N s",
    ]

    assert run_parallel(calls, jobs=2, labels=["race", "digits"]) == expected
    # The workers may finish in either order; each call is reported once, counted 1 then 2.
    lines = capsys.readouterr().out.splitlines()
    found = [re.fullmatch(r"\[(\d)/2\] (\w+) finished after \d+ s", line) for line in lines]
    assert all(found), lines
    assert [match[1] for match in found] == ["1", "2"]
    assert sorted(match[2] for match in found) == ["digits", "race"]


def test_run_parallel_rejects_bad_calls_labels_and_jobs():
    call = (max, dict(iterable=(1, 3)))
    for bad in ([max], [(max,)], [(max, [1, 3])], [("max", {})]):
        with pytest.raises(TypeError, match="`calls`"):
            run_parallel(bad, jobs=1)
    with pytest.raises(ValueError, match="`labels`"):
        run_parallel([call, call], jobs=1, labels=["only one"])
    with pytest.raises(ValueError, match="`jobs`"):
        run_parallel([call], jobs=0)


def _digits():
    return load("digits", batch_size=32, train_size=128, validation_size=0)


def _first_batch(dataset, epoch):
    set_epoch(dataset, epoch)
    images, labels = next(iter(dataset))
    return images.numpy(), labels.numpy()


def test_shrink_keeps_the_training_splits_epoch_counter():
    loaded = _digits()
    shrunk = shrink(loaded.train, 8)
    assert epoch_counter(loaded.train) is not None
    assert epoch_counter(shrunk) is epoch_counter(loaded.train)
    assert epoch_counter(shrink(loaded.test, 8)) is None

    images, labels = _first_batch(shrunk, 3)
    assert images.shape == (32, 8, 8, 3)
    # The order is a function of (seed, epoch): a new load, shrunk and set to epoch 3, starts
    # with the same batch, and epoch 0 starts with another.
    _, again = _first_batch(shrink(_digits().train, 8), 3)
    np.testing.assert_array_equal(labels, again)
    _, epoch_0 = _first_batch(shrunk, 0)
    assert not np.array_equal(labels, epoch_0)

    # The shrunk images are the 4x4 means of the originals of the same epoch.
    original, original_labels = _first_batch(loaded.train, 3)
    np.testing.assert_array_equal(original_labels, labels)
    pooled = original.reshape(32, 8, 4, 8, 4, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(images, pooled, rtol=0, atol=1e-5)
