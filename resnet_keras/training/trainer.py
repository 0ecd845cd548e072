"""`fit`: train a model with a recipe and the default callbacks; precision and XLA settings."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from resnet_keras._validation import (
    check_bool,
    check_instance,
    check_non_negative_int,
    check_path,
    check_positive_int,
)
from resnet_keras.training import backup, distribute
from resnet_keras.training._common import steps_in, unpack_data
from resnet_keras.training.callbacks import (
    BACKUP_DIR,
    HISTORY_FILE,
    EpochSetter,
    default_callbacks,
    repair_history_csv,
)
from resnet_keras.training.loop import initialise
from resnet_keras.training.recipes import Accuracy, apply_weight_decay, get_recipe

__all__ = ["accelerator_settings", "configure_precision", "fit"]


def accelerator_settings(mixed_precision=False, jit_compile=False) -> dict[str, bool]:
    """The mixed precision and XLA asked for, kept only where a GPU is visible.

    float16 compute is slower than float32 on most CPUs and XLA compilation costs more than it
    saves on a small CPU run, so both are off without a GPU whatever is asked.

    Args:
        mixed_precision: Whether to compute in float16 on a GPU.
        jit_compile: Whether to compile the train step with XLA on a GPU.

    Returns:
        `{"mixed_precision": bool, "jit_compile": bool}`.

    Examples:
        >>> accelerator_settings(mixed_precision=False, jit_compile=False)
        {'mixed_precision': False, 'jit_compile': False}
    """
    check_bool("mixed_precision", mixed_precision)
    check_bool("jit_compile", jit_compile)
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    return {
        "mixed_precision": mixed_precision and has_gpu,
        "jit_compile": jit_compile and has_gpu,
    }


def configure_precision(mixed_precision=False) -> str:
    """Sets Keras's global dtype policy; call it BEFORE building the model.

    A layer takes its dtype policy when it is created, so a model built before this call stays in
    float32. With `mixed_precision` and a visible GPU the policy becomes "mixed_float16" (float16
    compute, float32 weights; `model.compile` then wraps the optimizer in a
    `LossScaleOptimizer`), otherwise "float32".

    Args:
        mixed_precision: Whether to compute in float16 where a GPU is visible.

    Returns:
        The policy name that is now global.

    Examples:
        >>> configure_precision(mixed_precision=False)
        'float32'
    """
    wanted = accelerator_settings(mixed_precision=mixed_precision)["mixed_precision"]
    policy = "mixed_float16" if wanted else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy


def _compile_with_recipe(model, recipe, total_steps, jit_compile, steps_per_execution=1):
    """Adds the recipe's weight decay and compiles its optimizer, loss and accuracy metric.

    `fit` compiles through this; the benchmarks do too, so that they time the step `fit` runs.
    The optimizer's state is left to the caller (`initialise`).
    """
    apply_weight_decay(model, recipe.weight_decay, include=recipe.decay_on)
    model.compile(
        optimizer=recipe.build_optimizer(total_steps=total_steps),
        loss=recipe.build_loss(),
        # Integer labels, or the soft ones of mixup/CutMix (recipes.Accuracy).
        metrics=[
            Accuracy() if recipe.mixes else keras.metrics.SparseCategoricalAccuracy("accuracy")
        ],
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )


def fit(
    model: keras.Model,
    data,
    epochs: int,
    recipe="paper",
    out_dir=None,
    *,
    validation_data=None,
    learning_rate: float | None = None,
    label_smoothing: float | None = None,
    warmup_steps: int | None = None,
    weight_decay: float | None = None,
    steps_per_epoch: int | None = None,
    callbacks=None,
    monitor: str | None = None,
    tensorboard: bool = False,
    jit_compile: bool = False,
    steps_per_execution: int = 1,
    distribution="auto",
    synchronized_batch_norm: bool = False,
    mix_seed: int = 0,
    verbose="auto",
) -> keras.callbacks.History:
    """Compiles `model` with a training recipe and trains it with the default callbacks.

    The default recipe is the paper's (He et al. 2016, Sec. 4.2): SGD with momentum 0.9, LR 0.1
    divided by 10 at 50% and 75% of the run, coupled weight decay 1e-4 (`L2(5e-5)` on every
    trainable variable, see `recipes`), cross-entropy from logits. The schedule is laid out over
    `epochs * steps_per_epoch` optimizer steps, so a shorter run keeps the same shape.

    With `out_dir`, the run folder gets history.csv, best.weights.h5 and a backup; if the process
    is interrupted, calling `fit` again with the same model architecture, data, arguments and
    `out_dir` restores weights, optimizer state and epoch counter and continues from the last
    finished epoch; a damaged newest backup falls back to the one before it with a one-line
    notice, and a folder with no usable state raises `BackupError` (see `backup`). The
    training splits of `resnet_keras.data.load` shuffle and augment each epoch as a function of
    (seed, epoch), and `fit` pins them to the epoch it runs, so a resumed run is the
    uninterrupted run (for a dataset of your own, the data order of an epoch must likewise not
    depend on how many epochs the process has already run).

    Mixed precision is a property of the model, so it is chosen before the model is built, with
    `configure_precision(mixed_precision=True)`; XLA is `jit_compile` (`accelerator_settings`
    keeps either only where a GPU is visible).

    Data-parallel training runs on the backend's own engine (`tf.distribute` on TensorFlow,
    `keras.distribution` on JAX; see `resnet_keras.training.distribute`). The model must be
    created under it, so the engine is chosen before the model is built, with
    `resnet_keras.training.distributed`; `fit` then compiles, creates the optimizer state and
    trains inside the same scope. The batches of `data` are global batches, split over the
    replicas, so the same data, batch size and seed train the same network on one device or
    several; with `synchronized_batch_norm=True` the weights are the same up to float
    rounding (tested on two CPU devices).

    Args:
        model: A built Keras model that outputs logits.
        data: The result of `resnet_keras.data.load()` (uses `.train` and `.validation`) or a
            tf.data.Dataset of (images, int labels) batches.
        epochs: Number of epochs.
        recipe: A recipe name from `RECIPES` or a `Recipe`.
        out_dir: Run folder for checkpoints, history and backup (None: nothing is written).
        validation_data: Validation dataset (default: `data.validation` when present).
        learning_rate: Overrides the recipe's peak LR.
        label_smoothing: Overrides the recipe's label smoothing.
        warmup_steps: Overrides the recipe's warm-up length.
        weight_decay: Overrides the recipe's coupled weight decay.
        steps_per_epoch: Batches per epoch; needed only when tf.data cannot count them.
        callbacks: Extra callbacks, run before the default ones.
        monitor: Metric for the best checkpoint (default "val_accuracy" with validation data,
            else "accuracy").
        tensorboard: Also write TensorBoard logs to `out_dir/logs`.
        jit_compile: Compile the training step with XLA (Keras' `compile(jit_compile=...)`).
        steps_per_execution: Training steps per call into the compiled function (Keras'
            `compile(steps_per_execution=...)`). More than 1 saves per-step host work where
            the step is short, as on a GPU (benchmarks/RESULTS.md). Per-batch callbacks
            then run once per call. The weights
            are the same as with 1.
        distribution: The data-parallel engine: "auto" (the one the model was created under,
            see `resnet_keras.training.distributed`; one device for a model created outside
            any), None (one device) or the `tf.distribute.Strategy` /
            `keras.distribution.Distribution` the model was created under.
        synchronized_batch_norm: Normalise with the statistics of the global batch instead
            of each replica's share (per replica is the paper's; see
            `resnet_keras.training.distribute.synchronized_batch_norm`). No effect on one
            device, nor on JAX, where the statistics are always the global batch's.
        mix_seed: Seed of the recipe's mixup/CutMix draws (`resnet_keras.data.mix_batches`);
            the data's own order and augmentation follow the seed given to `load`.
        verbose: Passed to `model.fit` ("auto", 0, 1 or 2).

    Returns:
        The `keras.callbacks.History` of this call (only the epochs it ran; the whole run's
        history is in `out_dir/history.csv`).

    Raises:
        ValueError: for an argument out of range, a model not created under `distribution`,
            or global batches that do not split evenly over its replicas.

    Examples:
        >>> import resnet_keras as rk
        >>> from resnet_keras.data import load
        >>> data = load("digits", batch_size=64, train_size=256, test_size=64)
        >>> model = rk.CifarResNet(depth=20, num_classes=data.info.num_classes)
        >>> import tempfile
        >>> out_dir = tempfile.mkdtemp()
        >>> history = fit(model, data, epochs=1, out_dir=out_dir, verbose=0)
        >>> sorted(history.history)[:2]
        ['accuracy', 'learning_rate']
        >>> # Called again, it resumes from out_dir: the one epoch is done already.
        >>> fit(model, data, epochs=1, out_dir=out_dir, verbose=0).history
        {}
        >>> # Data-parallel over two GPUs: build the model under the engine, then fit.
        >>> with rk.training.distributed(devices=2) as engine:  # doctest: +SKIP
        ...     model = rk.CifarResNet(depth=20, num_classes=data.info.num_classes)
        >>> fit(model, data, epochs=1, distribution=engine)  # doctest: +SKIP
    """
    check_instance("model", model, keras.Model, "a keras.Model")
    epochs = check_positive_int("epochs", epochs)
    train_data, validation_data = unpack_data(data, validation_data)
    if steps_per_epoch is None:
        steps_per_epoch = steps_in(train_data)
        if steps_per_epoch is None:
            raise ValueError(
                "`steps_per_epoch` is required: tf.data cannot count the batches of `data` "
                "(it is repeated or filtered)."
            )
    else:
        steps_per_epoch = check_positive_int("steps_per_epoch", steps_per_epoch)
    steps_per_execution = check_positive_int("steps_per_execution", steps_per_execution)
    check_path("out_dir", out_dir, optional=True)

    recipe = get_recipe(recipe).replace(
        learning_rate=learning_rate,
        label_smoothing=label_smoothing,
        warmup_steps=warmup_steps,
        weight_decay=weight_decay,
    )
    check_bool("jit_compile", jit_compile)
    check_bool("synchronized_batch_norm", synchronized_batch_norm)
    check_non_negative_int("mix_seed", mix_seed)
    if not model.built:
        # BackupAndRestore and the weight-decay regularisers both need the variables to exist.
        # The model was created under its engine (if any); building there lays its variables
        # out the same way.
        with distribute.distribution_scope(distribute.resolve_distribution(model, "auto")):
            model(next(iter(train_data.take(1)))[0], training=False)
    distribution = distribute.resolve_distribution(model, distribution)
    if recipe.mixes:
        # Mixup/CutMix: mixed images with soft labels; validation keeps its integer labels.
        train_data = recipe.mix(train_data, num_classes=model.output_shape[-1], seed=mix_seed)
    distribute.check_global_batch(train_data, distribution)
    if validation_data is not None:
        distribute.check_global_batch(validation_data, distribution, name="validation_data")
    # The optimizer, its state, the metrics and the regularisers are created inside the
    # engine's scope, where it can mirror (or replicate) them as it did the model.
    with (
        distribute.distribution_scope(distribution),
        distribute.synchronized_batch_norm(model, synchronized_batch_norm),
    ):
        _compile_with_recipe(
            model,
            recipe,
            total_steps=epochs * steps_per_epoch,
            jit_compile=jit_compile,
            steps_per_execution=steps_per_execution,
        )
        # Create the optimizer's state (the momentum buffers) here, not inside the first training
        # step: Keras would create it while tracing that step, and a tf.function that creates
        # variables is traced twice. Tracing is most of a new model's first step, so this about
        # halves it (benchmarks/RESULTS.md).
        initialise(model, model.optimizer)

        initial_epoch = 0
        if out_dir is not None:
            # Weights, optimizer state and step counter of the last finished epoch; Keras then
            # starts at the next epoch (a public argument: no private attribute is set).
            initial_epoch = min(backup.restore(model, Path(out_dir) / BACKUP_DIR), epochs)
            repair_history_csv(Path(out_dir) / HISTORY_FILE, initial_epoch)

        if monitor is None:
            monitor = "val_accuracy" if validation_data is not None else "accuracy"
        # EpochSetter first: it pins the data order to the epoch before its first batch is drawn.
        # With a weight average (recipe.ema_momentum), validation runs on the averaged weights
        # and fit ends holding them (Keras' finalize_variable_values). The swap happens only
        # around validation, so the backup at the end of an epoch holds the raw weights and
        # their average in their own slots and a resumed run goes on as the uninterrupted one.
        # The best checkpoint holds the raw weights of the epoch whose average validated best.
        ema = [keras.callbacks.SwapEMAWeights()] if recipe.ema_momentum is not None else []
        all_callbacks = (
            [EpochSetter(train_data)]
            + ema
            + list(callbacks or [])
            + default_callbacks(out_dir, monitor=monitor, tensorboard=tensorboard)
        )
        return model.fit(
            train_data,
            validation_data=validation_data,
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch if steps_in(train_data) is None else None,
            callbacks=all_callbacks,
            shuffle=False,  # the tf.data pipeline shuffles; Keras would only warn
            verbose=verbose,
        )
