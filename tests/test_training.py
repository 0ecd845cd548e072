"""Tests of resnet_keras.training: the five-step loop, recipes, schedules, LR finder, fit."""

from __future__ import annotations

import importlib.util
import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from resnet_keras.determinism import set_determinism
from resnet_keras.training import (
    NAN_ADVICE,
    RECIPES,
    accelerator_settings,
    apply_weight_decay,
    configure_precision,
    cosine_schedule,
    default_callbacks,
    find_learning_rate,
    fit,
    get_recipe,
    paper_schedule,
    read_history_csv,
    schedule_values,
    suggest_learning_rate,
    train_with_gradient_tape,
)
from resnet_keras.training.backup import latest_epoch
from resnet_keras.training.recipes import SparseCategoricalCrossentropyWithSmoothing


def tiny_convnet(seed=0, num_classes=3):
    """Conv + BatchNorm + dense: small, but with the parts that make ResNets tricky."""
    set_determinism(seed)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes),
        ]
    )


def tiny_images(n=48, batch_size=16, seed=0, nan=False):
    """A fixed-order dataset (no shuffling), so every pass sees the same batches."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n).astype("int32")
    images = rng.normal(size=(n, 8, 8, 1)).astype("float32") + labels[:, None, None, None]
    if nan:
        images[0, 0, 0, 0] = np.nan
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)


def max_difference(model_a, model_b):
    return max(
        float(np.max(np.abs(a - b)))
        for a, b in zip(model_a.get_weights(), model_b.get_weights(), strict=True)
    )


# --- the five-step loop ---------------------------------------------------------------------


def test_gradient_tape_loop_reaches_the_same_weights_as_fit():
    data = tiny_images()
    optimizer_args = {"learning_rate": 0.1, "momentum": 0.9}

    looped = tiny_convnet(seed=3)
    apply_weight_decay(looped, 1e-4)
    loop_history = train_with_gradient_tape(
        looped,
        data,
        epochs=2,
        optimizer=keras.optimizers.SGD(**optimizer_args),
        validation_data=data,
        verbose=0,
    )

    fitted = tiny_convnet(seed=3)
    apply_weight_decay(fitted, 1e-4)
    fitted.compile(
        optimizer=keras.optimizers.SGD(**optimizer_args),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    fit_history = fitted.fit(data, epochs=2, validation_data=data, shuffle=False, verbose=0)

    # Training moved the weights (including BatchNormalization's moving statistics) ...
    assert max_difference(looped, tiny_convnet(seed=3)) > 1e-3
    # ... to the same place as model.fit.
    assert max_difference(looped, fitted) < 1e-5
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(loop_history[key], fit_history.history[key], rtol=1e-5)


def test_gradient_tape_loop_traces_its_validation_step_once():
    # Each trace runs the model's Python call with training=False; a fresh tf.function
    # per evaluation would trace the model again after every epoch.
    traces = []

    class Counting(keras.Sequential):
        def call(self, inputs, training=None, mask=None):
            if not training:
                traces.append(training)
            return super().call(inputs, training=training, mask=mask)

    def inference_traces(epochs):
        traces.clear()
        model = Counting(tiny_convnet().layers)
        validation = tiny_images(n=40)  # ends with a smaller batch
        history = train_with_gradient_tape(
            model, tiny_images(), epochs=epochs, validation_data=validation, verbose=0
        )
        assert len(history["val_loss"]) == epochs
        return len(traces)

    once = inference_traces(1)
    assert once >= 1
    assert inference_traces(4) == once


def test_gradient_tape_loop_stops_on_nan_with_advice(capsys):
    model = tiny_convnet()
    history = train_with_gradient_tape(model, tiny_images(nan=True), epochs=3, verbose=0)
    assert len(history["loss"]) == 1 and math.isnan(history["loss"][0])
    assert "lower the learning rate" in capsys.readouterr().err


def test_gradient_tape_loop_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = tiny_convnet()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.layers[0].compute_dtype == "float16"
    history = train_with_gradient_tape(model, tiny_images(), epochs=3, verbose=0)
    assert all(math.isfinite(value) for value in history["loss"])
    assert history["loss"][-1] < history["loss"][0]
    assert all(weight.dtype == "float32" for weight in model.trainable_weights)


def test_training_loops_iterate_without_the_autotuning_thread(monkeypatch):
    """The loops drop iterators part-way (LR finder, steps_per_epoch); tf.data's autotuning
    thread would make each drop wait with the cores idle, so they turn it off unless the
    caller chose otherwise."""
    seen = []
    original_iter = tf.data.Dataset.__iter__

    def recording_iter(dataset):
        seen.append(dataset.options().autotune.enabled)
        return original_iter(dataset)

    monkeypatch.setattr(tf.data.Dataset, "__iter__", recording_iter)
    data = tiny_images()
    train_with_gradient_tape(
        tiny_convnet(), data, epochs=2, steps_per_epoch=2, validation_data=data, verbose=0
    )
    find_learning_rate(tiny_convnet(), data, num_steps=4, verbose=0)
    assert len(seen) >= 5 and set(seen) == {False}

    seen.clear()
    tuned = tf.data.Options()
    tuned.autotune.enabled = True
    find_learning_rate(tiny_convnet(), data.with_options(tuned), num_steps=4, verbose=0)
    assert seen and set(seen) == {True}


def test_gradient_tape_loop_rejects_bad_arguments():
    with pytest.raises(ValueError, match="epochs"):
        train_with_gradient_tape(tiny_convnet(), tiny_images(), epochs=0)
    with pytest.raises(TypeError, match="data"):
        train_with_gradient_tape(tiny_convnet(), [1, 2, 3])


# --- weight decay -----------------------------------------------------------------------------


def _softmax_gradient(x, w, labels):
    logits = x @ w
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1.0
    return x.T @ p / len(labels)


@pytest.mark.parametrize("weight_decay", [1e-4, 0.05])
def test_weight_decay_is_the_papers_coupled_decay(weight_decay):
    """Two SGD-momentum steps equal the hand computation g <- g + wd * w; v <- 0.9 v - lr g."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5))
    labels = rng.integers(0, 3, 8)
    w0 = rng.normal(size=(5, 3))
    lr, momentum = 0.1, 0.9

    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, use_bias=False)])
    model.set_weights([w0.astype("float32")])
    assert apply_weight_decay(model, weight_decay) == 1
    # Keras's L2(l) adds l * sum(w^2), so the paper's wd is L2(wd / 2).
    np.testing.assert_allclose(
        float(sum(model.losses)), weight_decay / 2 * np.sum(w0**2), rtol=1e-5
    )
    model.compile(
        optimizer=keras.optimizers.SGD(lr, momentum=momentum),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    w, velocity = w0.copy(), np.zeros_like(w0)
    for _ in range(2):
        model.train_on_batch(x.astype("float32"), labels)
        gradient = _softmax_gradient(x, w, labels) + weight_decay * w
        velocity = momentum * velocity - lr * gradient
        w = w + velocity
        np.testing.assert_allclose(model.get_weights()[0], w, rtol=1e-5, atol=1e-7)

    # Keras's own `weight_decay=` is decoupled: with momentum it gives other weights.
    decoupled = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, use_bias=False)])
    decoupled.set_weights([w0.astype("float32")])
    decoupled.compile(
        optimizer=keras.optimizers.SGD(lr, momentum=momentum, weight_decay=weight_decay),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    for _ in range(2):
        decoupled.train_on_batch(x.astype("float32"), labels)
    if weight_decay >= 0.01:  # large enough to be far above float32 noise
        assert np.max(np.abs(decoupled.get_weights()[0] - w)) > 1e-4


def test_weight_decay_can_be_limited_to_kernels_and_removed():
    model = tiny_convnet()
    assert apply_weight_decay(model, 1e-4) == len(model.trainable_weights) == 5
    assert apply_weight_decay(model, 1e-4, include="kernels") == 2
    assert apply_weight_decay(model, 0.0) == 0
    assert model.losses == []
    with pytest.raises(ValueError, match="include"):
        apply_weight_decay(model, 1e-4, include="biases")
    with pytest.raises(ValueError, match="weight_decay"):
        apply_weight_decay(model, -1.0)


# --- schedules and recipes --------------------------------------------------------------------


def test_paper_schedule_divides_by_ten_at_half_and_three_quarters():
    schedule = paper_schedule(64000)
    assert isinstance(schedule, keras.optimizers.schedules.PiecewiseConstantDecay)
    assert schedule.boundaries == [31999, 47999]
    assert schedule.values == [0.1, 0.01, 0.001]
    # Keras keeps each value up to and including its boundary: step 32000 is the first at 0.01,
    # as in the paper.
    expected = {0: 0.1, 31999: 0.1, 32000: 0.01, 47999: 0.01, 48000: 0.001, 63999: 0.001}
    for step, value in expected.items():
        assert float(schedule(step)) == pytest.approx(value, rel=1e-6)
    values = schedule_values(paper_schedule(200), 200)
    assert np.allclose(values[:100], 0.1) and np.allclose(values[100:150], 0.01)
    assert np.allclose(values[150:], 0.001)
    # A run too short for two separate drops makes both at once.
    tiny = paper_schedule(3)
    assert (tiny.boundaries, tiny.values) == ([1], [0.1, 0.001])


def test_resnet110_warmup_and_cosine_values():
    warm = paper_schedule(64000, warmup_steps=400)
    assert warm.boundaries == [399, 31999, 47999]
    assert warm.values == [0.01, 0.1, 0.01, 0.001]
    for step, value in {0: 0.01, 399: 0.01, 400: 0.1, 31999: 0.1, 32000: 0.01}.items():
        assert float(warm(step)) == pytest.approx(value)

    cosine = cosine_schedule(1100, 0.1, warmup_steps=100)  # linear warm-up from 0
    assert isinstance(cosine, keras.optimizers.schedules.CosineDecay)
    expected = {0: 0.0, 50: 0.05, 100: 0.1, 600: 0.05, 1100: 0.0, 1200: 0.0}
    for step, value in expected.items():
        assert float(cosine(step)) == pytest.approx(value, abs=1e-6)
    # The warm-up's `ops.cond` takes one step at a time; schedule_values still evaluates it.
    values = schedule_values(cosine, 1100)
    np.testing.assert_allclose(values[[0, 50, 100, 600]], [0.0, 0.05, 0.1, 0.05], atol=1e-6)
    assert np.all(np.diff(values[100:]) <= 0)

    plain = cosine_schedule(1000, 0.2, alpha=0.1)  # no warm-up: from 0.2 down to 0.02
    assert plain.warmup_target is None
    np.testing.assert_allclose(
        [float(plain(step)) for step in (0, 500, 1000)], [0.2, 0.11, 0.02], rtol=1e-5
    )


@pytest.mark.parametrize(
    "schedule",
    [paper_schedule(500, warmup_steps=20), cosine_schedule(300, 0.2, warmup_steps=30)],
    ids=["paper", "cosine"],
)
def test_schedules_serialise_and_drive_an_optimizer(schedule):
    restored = keras.optimizers.schedules.deserialize(
        json.loads(json.dumps(keras.optimizers.schedules.serialize(schedule)))
    )
    assert type(restored) is type(schedule)
    np.testing.assert_allclose(schedule_values(restored, 500), schedule_values(schedule, 500))

    optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=0.9)
    variable = keras.Variable(np.ones(2, "float32"))
    for _ in range(25):
        optimizer.apply_gradients([(np.zeros(2, "float32"), variable)])
    assert float(optimizer.learning_rate) == pytest.approx(float(schedule(25)))


def test_schedules_reject_bad_arguments():
    with pytest.raises(ValueError, match="milestones"):
        paper_schedule(100, milestones=(0.75, 0.5))
    with pytest.raises(ValueError, match="warmup_steps"):
        paper_schedule(100, warmup_steps=50)  # not before the first milestone
    with pytest.raises(TypeError, match="initial_learning_rate"):
        paper_schedule(100, "0.1")
    with pytest.raises(ValueError, match="factor"):
        paper_schedule(100, factor=2.0)
    with pytest.raises(ValueError, match="total_steps"):
        cosine_schedule(0)
    with pytest.raises(ValueError, match="warmup_steps"):
        cosine_schedule(100, warmup_steps=100)
    with pytest.raises(TypeError, match="total_steps"):
        schedule_values(paper_schedule(100))  # Keras' schedules do not know their length
    with pytest.raises(TypeError, match="schedule"):
        schedule_values("paper", 100)


def test_recipes_build_the_paper_setup():
    recipe = get_recipe("paper")
    optimizer = recipe.build_optimizer(total_steps=100)
    assert optimizer.momentum == pytest.approx(0.9)
    assert not optimizer.weight_decay  # decay is coupled, through the loss
    assert float(optimizer.learning_rate) == pytest.approx(0.1)
    schedule = recipe.build_schedule(100)
    assert isinstance(schedule, keras.optimizers.schedules.PiecewiseConstantDecay)
    assert schedule_values(schedule, 100)[[0, 51, 76]] == pytest.approx([0.1, 0.01, 0.001])
    assert get_recipe("paper-warmup").build_schedule(64000).boundaries == [399, 31999, 47999]
    cosine = get_recipe("cosine").build_schedule(64000)
    assert isinstance(cosine, keras.optimizers.schedules.CosineDecay)
    assert (cosine.initial_learning_rate, cosine.warmup_target) == (0.0, 0.1)
    assert (cosine.warmup_steps, cosine.decay_steps) == (400, 63600)
    # Warm-up longer than a tenth of a short run is shortened, not allowed to swallow it.
    assert get_recipe("paper-warmup").effective_warmup_steps(1000) == 100
    assert get_recipe("paper-warmup").build_schedule(1000).boundaries == [99, 499, 749]
    assert get_recipe("cosine").build_schedule(1000).warmup_steps == 100
    with pytest.raises(ValueError, match="recipe"):
        get_recipe("adam")


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_a_model_compiled_with_each_recipe_saves_and_loads(tmp_path, name):
    recipe = get_recipe(name)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer=recipe.build_optimizer(total_steps=1000), loss=recipe.build_loss())
    model.train_on_batch(np.ones((2, 4), "float32"), np.array([0, 2]))  # builds the optimizer
    model.save(tmp_path / "model.keras")
    # Keras' own schedules: nothing of the library's is needed to rebuild the optimizer.
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    saved = model.optimizer.get_config()["learning_rate"]
    assert loaded.optimizer.get_config()["learning_rate"] == saved
    assert saved["module"] == "keras.optimizers.schedules"
    np.testing.assert_allclose(
        schedule_values(keras.optimizers.schedules.deserialize(saved), 1000),
        schedule_values(recipe.build_schedule(1000), 1000),
    )
    assert int(loaded.optimizer.iterations) == 1  # its state came back too
    assert type(loaded.loss) is type(model.loss)


def test_label_smoothing_loss_matches_its_definition():
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]], "float32")
    labels = np.array([0, 2])
    plain = SparseCategoricalCrossentropyWithSmoothing(0.0)
    reference = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    assert float(plain(labels, logits)) == pytest.approx(float(reference(labels, logits)), 1e-6)

    smoothing = 0.1
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    target = np.full((2, 3), smoothing / 3) + (1 - smoothing) * np.eye(3)[labels]
    expected = float(np.mean(-(target * log_p).sum(axis=1)))
    smoothed = SparseCategoricalCrossentropyWithSmoothing(smoothing)
    assert float(smoothed(labels, logits)) == pytest.approx(expected, rel=1e-5)
    assert get_recipe("cosine-smooth").build_loss().label_smoothing == pytest.approx(0.1)


# --- LR finder --------------------------------------------------------------------------------


def test_lr_finder_restores_weights_and_suggests_a_useful_rate():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 16)) * 2
    labels = rng.integers(0, 3, 512).astype("int32")
    features = (centers[labels] + rng.normal(size=(512, 16))).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(32)
    set_determinism(0)
    model = keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(3),
        ]
    )
    before = [w.copy() for w in model.get_weights()]

    result = find_learning_rate(model, data, min_lr=1e-4, max_lr=10.0, num_steps=60, verbose=0)

    for saved, now in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, now)  # BN moving statistics included
    assert len(result.learning_rates) == len(result.smoothed_losses) >= 30
    assert np.all(np.diff(result.learning_rates) > 0)
    assert 1e-3 <= result.suggestion <= 1.0
    assert result.method == "steepest"
    assert result.suggestion < result.min_loss_lr

    # A rate from the falling part of the curve trains much faster than one 100x smaller.
    def loss_after_training(learning_rate):
        set_determinism(0)
        candidate = keras.models.clone_model(model)
        candidate.set_weights(before)
        history = train_with_gradient_tape(
            candidate,
            data,
            epochs=2,
            optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9),
            verbose=0,
        )
        return history["loss"][-1]

    assert loss_after_training(result.suggestion) < 0.5 * loss_after_training(
        result.suggestion / 100
    )


def test_suggestion_rules_on_a_known_curve():
    lrs = np.logspace(-5, 1, 61)
    # Flat, then falling fastest around 1e-2, lowest near 0.3, then exploding.
    losses = 2.0 - np.tanh(np.log10(lrs) + 2.0) + np.where(lrs > 0.3, 20 * (lrs - 0.3), 0.0)
    steepest, _, lowest = suggest_learning_rate(lrs, losses, "steepest")
    assert steepest == pytest.approx(1e-2, rel=0.3)
    min_over_ten, _, _ = suggest_learning_rate(lrs, losses, "min/10")
    assert min_over_ten == pytest.approx(lowest / 10)
    with pytest.raises(ValueError, match="method"):
        suggest_learning_rate(lrs, losses, "median")


# --- fit: callbacks, NaN, resume --------------------------------------------------------------


def test_steps_per_execution_trains_to_the_same_weights():
    # 3 batches an epoch: with 2 steps per execution every epoch ends in a partial one.
    data = tiny_images(n=48)
    kwargs = {"epochs": 2, "verbose": 0}
    one = tiny_convnet(seed=4)
    history_one = fit(one, data, **kwargs)
    grouped = tiny_convnet(seed=4)
    history_grouped = fit(grouped, data, steps_per_execution=2, **kwargs)

    assert grouped.steps_per_execution == 2 and one.steps_per_execution == 1
    assert int(grouped.optimizer.iterations) == int(one.optimizer.iterations) == 6
    assert max_difference(one, tiny_convnet(seed=4)) > 1e-3
    assert max_difference(grouped, one) < 1e-6
    np.testing.assert_allclose(
        history_grouped.history["loss"], history_one.history["loss"], rtol=1e-6
    )


@pytest.mark.parametrize(
    "value, error", [(0, ValueError), (-2, ValueError), (1.5, TypeError), (True, TypeError)]
)
def test_fit_rejects_a_bad_steps_per_execution(value, error):
    with pytest.raises(error, match="steps_per_execution"):
        fit(tiny_convnet(seed=0), tiny_images(), epochs=1, steps_per_execution=value, verbose=0)


class Interrupt(keras.callbacks.Callback):
    """Simulates a crash (kill, pre-emption) at a given epoch and batch."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise KeyboardInterrupt("simulated interruption")


def test_interrupted_fit_resumes_to_the_same_weights(tmp_path):
    data = tiny_images(n=64)
    kwargs = {"epochs": 4, "validation_data": data, "verbose": 0}

    reference = tiny_convnet(seed=5)
    fit(reference, data, out_dir=tmp_path / "reference", **kwargs)

    interrupted = tiny_convnet(seed=5)
    with pytest.raises(KeyboardInterrupt):
        fit(interrupted, data, out_dir=tmp_path / "run", callbacks=[Interrupt(2, 1)], **kwargs)
    assert [row["epoch"] for row in read_history_csv(tmp_path / "run" / "history.csv")] == [0, 1]

    # A new process would build a fresh model: give it other initial weights to prove they
    # are replaced by the backup.
    resumed = tiny_convnet(seed=99)
    history = fit(resumed, data, out_dir=tmp_path / "run", **kwargs)

    assert len(history.history["loss"]) == 2  # epochs 3 and 4 only
    assert max_difference(resumed, reference) < 1e-6
    rows = read_history_csv(tmp_path / "run" / "history.csv")
    assert [row["epoch"] for row in rows] == [0, 1, 2, 3]
    reference_rows = read_history_csv(tmp_path / "reference" / "history.csv")
    np.testing.assert_allclose(
        [row["loss"] for row in rows], [row["loss"] for row in reference_rows], rtol=1e-5
    )
    # The LR schedule continued from the restored step counter: /10 at 50% and 75%.
    # LR of each epoch's last step (16 steps, /10 from step 8 and step 12).
    assert [row["learning_rate"] for row in rows] == pytest.approx([0.1, 0.1, 0.01, 0.001])
    assert (tmp_path / "run" / "best.weights.h5").exists()

    # Running the finished command again trains nothing and keeps the weights.
    again = tiny_convnet(seed=7)
    assert fit(again, data, out_dir=tmp_path / "run", **kwargs).history == {}
    assert max_difference(again, reference) < 1e-6


def test_fit_stops_on_nan_loss_with_advice(tmp_path, capsys):
    model = tiny_convnet()
    history = fit(model, tiny_images(), epochs=3, learning_rate=1e6, out_dir=tmp_path, verbose=0)
    losses = history.history["loss"]
    assert len(losses) < 3 and not math.isfinite(losses[-1])
    error = capsys.readouterr().err
    assert "loss is nan" in error.lower() and NAN_ADVICE in error
    # The diverged epoch was not backed up, so a rerun restarts from the last finite epoch.
    assert latest_epoch(tmp_path / "backup") == len(losses) - 1


def test_accelerators_are_kept_only_on_a_gpu():
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    settings = accelerator_settings(mixed_precision=True, jit_compile=True)
    assert settings == {"mixed_precision": has_gpu, "jit_compile": has_gpu}
    assert accelerator_settings() == {"mixed_precision": False, "jit_compile": False}
    with pytest.raises(TypeError, match="jit_compile"):
        accelerator_settings(jit_compile="yes")
    try:
        assert configure_precision(True) == ("mixed_float16" if has_gpu else "float32")
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_fit_applies_the_recipe(tmp_path):
    model = tiny_convnet()
    history = fit(model, tiny_images(), epochs=2, recipe="cosine", verbose=0)
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert model.optimizer.momentum == pytest.approx(0.9)
    # Cosine over 2 epochs x 3 steps (warm-up capped to 0): the 3rd step (index 2) uses
    # 0.1 * (1 + cos(pi * 2 / 6)) / 2 = 0.075.
    assert history.history["learning_rate"][0] == pytest.approx(0.075, rel=1e-5)
    assert all(v.regularizer is not None for v in model.trainable_weights)
    with pytest.raises(ValueError, match="epochs"):
        fit(model, tiny_images(), epochs=0)
    with pytest.raises(TypeError, match="out_dir"):
        fit(model, tiny_images(), epochs=1, out_dir=3)


def test_fit_traces_the_training_step_once():
    # Keras creates a missing optimizer state while it traces the first training step, and a
    # tf.function that creates variables is traced a second time; `fit` builds the state first.
    model = tiny_convnet()
    traces = []
    keras_train_step = model.train_step

    def counting_train_step(data):
        traces.append(1)
        return keras_train_step(data)

    model.train_step = counting_train_step
    fit(model, tiny_images(), epochs=2, verbose=0)
    assert len(traces) == 1
    assert model.optimizer.built
    assert int(model.optimizer.iterations) == 6


def test_tensorboard_on_request(tmp_path):
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(ImportError, match="pip install tensorboard"):
            default_callbacks(tmp_path, tensorboard=True)
        return
    fit(tiny_convnet(), tiny_images(), epochs=1, out_dir=tmp_path, tensorboard=True)
    assert any((tmp_path / "logs").rglob("events.out.tfevents.*"))


def test_evaluating_many_models_prints_no_retracing_warning():
    # A checker evaluates a fresh model per candidate and seed; TensorFlow would warn of
    # "retracing" after the fifth (each model needs its own trace).
    import logging

    from resnet_keras.training import evaluate

    class Records(logging.Handler):
        def __init__(self):
            super().__init__(logging.WARNING)
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    records = Records()
    tf.get_logger().addHandler(records)
    level = tf.get_logger().level
    data = tf.data.Dataset.from_tensor_slices((tf.zeros((8, 4)), [0, 1] * 4)).batch(4)
    try:
        for _ in range(8):
            evaluate(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), data)
    finally:
        tf.get_logger().removeHandler(records)
    assert not [message for message in records.messages if "retracing" in message]
    assert tf.get_logger().level == level  # muted during each call only
