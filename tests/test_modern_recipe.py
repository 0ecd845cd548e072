"""The modern recipe's ingredients: mixup and CutMix as Keras computes them, keyed draws that a
resumed run repeats, the soft-label loss and accuracy, and the weight average Keras keeps.

The mixing formulas are checked against `keras.layers.MixUp` and `keras.layers.CutMix`
themselves (their `transform_images` / `transform_labels` fed the same draws), the weight
average against a hand computation from the raw weights of every step, and the resume
against an uninterrupted run in real processes killed with SIGKILL.
"""

from __future__ import annotations

import signal

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_resume import _final_weights, _history, _max_difference, _worker

import resnet_keras as rk
from resnet_keras.data import load, mix_batches, set_epoch
from resnet_keras.data.mixing import mix_one_batch
from resnet_keras.training.backup import latest_epoch
from resnet_keras.training.recipes import (
    RECIPES,
    Accuracy,
    Recipe,
    SparseCategoricalCrossentropyWithSmoothing,
    get_recipe,
)


def _batch(count=8, side=6, classes=4, seed=0):
    generator = np.random.default_rng(seed)
    images = generator.normal(size=(count, side, side, 3)).astype("float32")
    labels = generator.integers(0, classes, size=count).astype("int32")
    return images, labels


def _partner_order(images, mixed, lam):
    """Recovers which image each one was mixed with (mixup: solve for the partner)."""
    partner = (mixed - lam * images) / (1.0 - lam)
    distances = ((partner[:, None] - images[None]) ** 2).sum(axis=(2, 3, 4))
    return distances.argmin(axis=1)


def test_mixup_is_keras_mixup_with_keyed_draws():
    images, labels = _batch()
    mixed, soft, lam = mix_one_batch(images, labels, 4, mixup_alpha=0.4, seed=5, epoch=2, batch=3)
    lam = float(lam)
    assert 0.0 < lam < 1.0
    order = _partner_order(images, mixed.numpy(), lam)
    assert sorted(order.tolist()) == list(range(8))  # a permutation of the batch
    # Keras' own layer, given the same weight (one per batch, as Zhang et al.) and order.
    layer = keras.layers.MixUp()
    transformation = {
        "mix_weight": np.full((8,), lam, "float32"),
        "permutation_order": order.astype("int64"),
    }
    one_hot = keras.ops.one_hot(labels, 4)
    expected_images = layer.transform_images(images, transformation)
    expected_labels = layer.transform_labels(one_hot, transformation)
    np.testing.assert_allclose(mixed.numpy(), np.asarray(expected_images), atol=1e-5)
    np.testing.assert_allclose(soft.numpy(), np.asarray(expected_labels), atol=1e-6)


def test_cutmix_pastes_one_box_and_weighs_labels_by_its_area():
    images, labels = _batch(side=16)
    mixed, soft, lam = mix_one_batch(images, labels, 4, cutmix_alpha=1.0, seed=1, epoch=0, batch=7)
    mixed, lam = mixed.numpy(), float(lam)
    changed = np.any(mixed != images, axis=(0, 3))  # pixels taken from a partner, any image
    rows, columns = np.nonzero(changed)
    box = np.zeros_like(changed)
    box[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1] = True
    assert np.array_equal(changed, box), "CutMix pastes one rectangle"
    # The label weight is the share of the image left, 1 - box area / image area.
    assert lam == pytest.approx(1.0 - box.sum() / box.size, abs=1e-6)
    # Keras' CutMix, given this box as its mask and the same order, makes the same images.
    order = _partner_order_cutmix(images, mixed, box)
    layer = keras.layers.CutMix()
    masks = np.repeat(box[None, :, :, None], 3, axis=3)
    masks = np.repeat(masks, 8, axis=0)
    transformation = {
        "permutation_order": order,
        "batch_masks": masks,
        "mix_weight": np.full((8,), lam, "float32"),
    }
    np.testing.assert_array_equal(mixed, np.asarray(layer.transform_images(images, transformation)))
    expected_labels = layer.transform_labels(keras.ops.one_hot(labels, 4), transformation)
    np.testing.assert_allclose(soft.numpy(), np.asarray(expected_labels), atol=1e-6)


def _partner_order_cutmix(images, mixed, box):
    inside = mixed[:, box]  # (batch, pixels, channels)
    candidates = images[:, box]
    distances = ((inside[:, None] - candidates[None]) ** 2).sum(axis=(2, 3))
    return distances.argmin(axis=1).astype("int32")


def test_draws_are_a_function_of_seed_epoch_and_batch():
    images, labels = _batch()
    first = mix_one_batch(images, labels, 4, mixup_alpha=0.2, seed=0, epoch=1, batch=2)
    again = mix_one_batch(images, labels, 4, mixup_alpha=0.2, seed=0, epoch=1, batch=2)
    other_batch = mix_one_batch(images, labels, 4, mixup_alpha=0.2, seed=0, epoch=1, batch=3)
    other_epoch = mix_one_batch(images, labels, 4, mixup_alpha=0.2, seed=0, epoch=2, batch=2)
    assert np.array_equal(first[0].numpy(), again[0].numpy())
    assert not np.array_equal(first[0].numpy(), other_batch[0].numpy())
    assert not np.array_equal(first[0].numpy(), other_epoch[0].numpy())


def test_a_mixed_split_repeats_an_epoch_when_set_to_it():
    data = load("digits", batch_size=32, train_size=96, test_size=32)
    mixed = mix_batches(data.train, 10, mixup_alpha=0.2, cutmix_alpha=1.0, seed=4)
    assert int(mixed.cardinality()) == 3
    epoch_zero = [labels.numpy() for _, labels in mixed]
    epoch_one = [labels.numpy() for _, labels in mixed]
    assert not all(np.array_equal(a, b) for a, b in zip(epoch_zero, epoch_one, strict=True))
    # Pinning both counters (the split's order and the mixing) to epoch 0 repeats it.
    assert set_epoch(mixed, 0)
    repeated = [labels.numpy() for _, labels in mixed]
    assert all(np.array_equal(a, b) for a, b in zip(epoch_zero, repeated, strict=True))
    for soft in epoch_zero:
        np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.backend
def test_the_loss_takes_soft_labels_and_integer_ones():
    logits = np.array([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]], "float32")
    soft = np.array([[0.7, 0.3, 0.0], [0.0, 0.4, 0.6]], "float32")
    loss = SparseCategoricalCrossentropyWithSmoothing(label_smoothing=0.1)
    expected = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    assert float(loss(soft, logits)) == pytest.approx(float(expected(soft, logits)), rel=1e-6)
    ids = np.array([0, 2])
    plain = SparseCategoricalCrossentropyWithSmoothing(label_smoothing=0.0)
    sparse = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    assert float(plain(ids, logits)) == pytest.approx(float(sparse(ids, logits)), rel=1e-6)


@pytest.mark.backend
def test_accuracy_names_the_larger_share_of_a_soft_label():
    metric = Accuracy()
    metric.update_state(np.array([[0.6, 0.4], [0.3, 0.7]]), np.array([[2.0, 0.0], [2.0, 0.0]]))
    assert float(metric.result()) == 0.5
    metric.reset_state()
    metric.update_state(np.array([1, 0]), np.array([[0.0, 2.0], [0.0, 2.0]]))
    assert float(metric.result()) == 0.5
    restored = Accuracy.from_config(metric.get_config())
    assert restored.name == "accuracy"


def test_the_model_ends_with_the_average_of_its_weights():
    """Keras' use_ema: avg_1 = w_1, avg_t = m avg_(t-1) + (1 - m) w_t over the raw weights."""
    rk.set_determinism(0)
    data = load("digits", batch_size=16, train_size=128, test_size=32)
    model = rk.CifarResNet(depth=8, num_classes=10)
    recipe = Recipe(name="ema-test", schedule="constant", learning_rate=0.05, ema_momentum=0.9)
    steps = 3 * 8
    # A 24-step run: the average's window is capped at a tenth of it, 2.4 steps.
    momentum = recipe.effective_ema_momentum(steps)
    assert momentum == pytest.approx(1 - 1 / 2.4)

    raw = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raw.append([np.array(v) for v in model.trainable_weights])

    rk.fit(model, data.train, epochs=3, recipe=recipe, callbacks=[Record()], verbose=0)
    assert len(raw) == steps
    average = raw[0]
    for weights in raw[1:]:
        average = [momentum * a + (1 - momentum) * w for a, w in zip(average, weights, strict=True)]
    final = [np.array(v) for v in model.trainable_weights]
    assert _max_difference(final, average) < 1e-5
    # ... and the average is not simply the last raw weights.
    assert _max_difference(final, raw[-1]) > 1e-4


def test_a_short_run_averages_its_last_tenth():
    recipe = get_recipe("modern")
    assert recipe.effective_ema_momentum(10_000_000) == recipe.ema_momentum
    assert recipe.effective_ema_momentum(1000) == pytest.approx(0.99)  # a 100-step window


def test_the_modern_recipe_has_every_ingredient():
    modern = RECIPES["modern"]
    assert modern.schedule == "cosine" and modern.warmup_steps > 0
    assert modern.label_smoothing == 0.1
    assert modern.mixup_alpha == 0.2 and modern.cutmix_alpha == 1.0
    assert modern.ema_momentum is not None and modern.mixes


@pytest.mark.parametrize(
    "field, value",
    [("mixup_alpha", -0.1), ("cutmix_alpha", -1.0), ("switch_probability", 1.5),
     ("ema_momentum", 1.0)],
)  # fmt: skip
def test_bad_ingredients_name_the_argument(field, value):
    with pytest.raises(ValueError, match=field):
        Recipe(name="bad", **{field: value})


def test_mix_batches_checks_its_arguments():
    data = tf.data.Dataset.from_tensors((np.zeros((2, 4, 4, 3), "float32"), np.zeros(2, "int32")))
    with pytest.raises(ValueError, match="mixup_alpha"):
        mix_batches(data, 10, mixup_alpha=-1)
    with pytest.raises(TypeError, match="dataset"):
        mix_batches([1, 2], 10, mixup_alpha=0.2)


@pytest.mark.slow
def test_a_modern_run_killed_mid_epoch_resumes_as_the_uninterrupted_one(tmp_path):
    """Mixing draws, the weight average and the schedule all come back from the backup."""
    reference = tmp_path / "reference"
    finished = _worker(reference, "--recipe", "modern")
    assert finished.returncode == 0, finished.stderr
    out = tmp_path / "run"
    killed = _worker(out, "--recipe", "modern", "--kill-at", "2", "3")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert latest_epoch(out / "backup") == 2
    resumed = _worker(out, "--recipe", "modern")
    assert resumed.returncode == 0, resumed.stderr
    assert _history(out / "history.csv") == _history(reference / "history.csv")
    assert _max_difference(_final_weights(out), _final_weights(reference)) <= 1e-6


@pytest.mark.slow
def test_the_command_line_trains_with_the_modern_recipe_by_name(tmp_path):
    import json

    from test_cli import run_cli

    out = tmp_path / "run"
    command = ("train", "--model", "resnet20", "--dataset", "digits", "--epochs", "1")
    command += ("--train-size", "128", "--recipe", "modern", "--out", str(out))
    result = run_cli(*command, CI="true")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    recorded = json.loads((out / "run.json").read_text())
    assert recorded["recipe"] == "modern"
    assert (out / "model.keras").exists()
