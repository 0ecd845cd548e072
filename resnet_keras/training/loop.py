"""The five training steps of the seed article, written out with `tf.GradientTape`.

The article lists how a deep network is trained:

1. initialise the parameters (randomly),
2. forward pass: compute the outputs,
3. loss: cross-entropy between outputs and labels,
4. backward pass: compute the gradients,
5. update: gradient descent on the parameters,

repeated until convergence. Each step below is one small named function, and
`train_with_gradient_tape` strings them together exactly the way `model.fit` does on the
TensorFlow backend, so both reach the same weights from the same seed and data (tested).
"""

from __future__ import annotations

import math
import sys

import keras
import tensorflow as tf

from resnet_keras._validation import check_choice, check_positive_int
from resnet_keras.data.epochs import set_epoch
from resnet_keras.training._common import NAN_ADVICE, steps_in, unpack_data

__all__ = [
    "backward",
    "compute_loss",
    "evaluate",
    "forward",
    "initialise",
    "make_train_step",
    "train_with_gradient_tape",
    "update",
]


# --- Step 1 -----------------------------------------------------------------------------------
def initialise(model: keras.Model, optimizer: keras.optimizers.Optimizer, sample_images=None):
    """Step 1: make sure every parameter (and optimizer slot) exists before training.

    The weights themselves were drawn at random when the model was built (He-normal for the
    library's convolutions); call `resnet_keras.determinism.set_determinism(seed)` *before*
    building the model to make that draw repeatable. This step builds the model if it is not built
    yet and creates the optimizer's state (the momentum buffers, all zeros). Made here, outside any
    `tf.function`, the state also lets a compiled training step be traced once: Keras would create
    it while tracing the first step, and a `tf.function` that creates variables is traced twice.

    Args:
        model: The model to train.
        optimizer: The optimizer that will update it.
        sample_images: A batch of images, needed only when the model is not built yet.

    Returns:
        The list of trainable variables, the parameters that training changes.

    Examples:
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
        >>> len(initialise(model, optimizer))
        2
    """
    if not model.built:
        if sample_images is None:
            raise ValueError("`sample_images` is required to build an unbuilt `model`.")
        model(sample_images, training=False)
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    return model.trainable_variables


# --- Step 2 -----------------------------------------------------------------------------------
def forward(model: keras.Model, images):
    """Step 2: the forward pass, in training mode.

    `training=True` makes BatchNormalization normalise with the batch statistics and update its
    moving averages (and enables dropout/augmentation layers if the model has any).

    Returns:
        The logits, shape (batch, num_classes).
    """
    return model(images, training=True)


# --- Step 3 -----------------------------------------------------------------------------------
def compute_loss(loss_fn, labels, logits, model: keras.Model | None = None):
    """Step 3: the cross-entropy loss, plus the model's regularisation terms.

    `loss_fn` is a cross-entropy *from logits* (the softmax is folded into the loss, which is more
    accurate than a softmax layer followed by a log). `model.losses` holds the weight-decay terms
    that `apply_weight_decay` attached; `model.fit` adds them in the same way.

    Returns:
        A float32 scalar: mean cross-entropy over the batch + sum of regularisation terms.
    """
    # Mixed precision produces float16 logits; the loss is computed in float32.
    loss = loss_fn(labels, tf.cast(logits, tf.float32))
    if model is not None and model.losses:
        loss = loss + tf.add_n([tf.cast(term, tf.float32) for term in model.losses])
    return loss


# --- Step 4 -----------------------------------------------------------------------------------
def backward(tape: tf.GradientTape, loss, model: keras.Model):
    """Step 4: backpropagation, d(loss)/d(parameter) for every trainable parameter.

    Returns:
        A list of gradients, in the order of `model.trainable_weights`.
    """
    return tape.gradient(loss, model.trainable_weights)


# --- Step 5 -----------------------------------------------------------------------------------
def update(optimizer: keras.optimizers.Optimizer, gradients, model: keras.Model):
    """Step 5: one optimizer step (for SGD with momentum: v <- m v - lr g; w <- w + v)."""
    optimizer.apply_gradients(zip(gradients, model.trainable_weights, strict=True))


def make_train_step(model, optimizer, loss_fn, jit_compile: bool = False):
    """Steps 2 to 5 for one batch, compiled with `tf.function`.

    Args:
        model: The model.
        optimizer: Its optimizer.
        loss_fn: Cross-entropy from logits, `loss_fn(labels, logits)`.
        jit_compile: Compile with XLA (worth it on GPUs).

    Returns:
        A function `train_step(images, labels) -> (loss, logits)`.

    Examples:
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> step = make_train_step(model, keras.optimizers.SGD(0.1),
        ...                        keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        >>> loss, logits = step(tf.zeros((3, 4)), tf.constant([0, 1, 1]))
        >>> round(float(loss), 4)
        0.6931
    """

    def train_step(images, labels):
        with tf.GradientTape() as tape:
            logits = forward(model, images)
            loss = compute_loss(loss_fn, labels, logits, model)
            # A LossScaleOptimizer (mixed precision) multiplies the loss so that float16
            # gradients do not underflow; apply_gradients divides them back. Other optimizers
            # return the loss unchanged.
            scaled_loss = optimizer.scale_loss(loss)
        gradients = backward(tape, scaled_loss, model)
        update(optimizer, gradients, model)
        return loss, logits

    return tf.function(train_step, jit_compile=jit_compile)


def evaluate(model, dataset, loss_fn=None) -> dict[str, float]:
    """Loss and accuracy of `model` on `dataset` in inference mode (`training=False`).

    Args:
        model: The model.
        dataset: A tf.data.Dataset of (images, labels) batches.
        loss_fn: Cross-entropy from logits (default: sparse categorical cross-entropy).

    Returns:
        `{"loss": ..., "accuracy": ...}`, averaged over examples; the loss includes the
        regularisation terms, as `model.evaluate` does.

    Examples:
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> data = tf.data.Dataset.from_tensor_slices((tf.zeros((6, 4)), [0, 1] * 3)).batch(4)
        >>> sorted(evaluate(model, data))
        ['accuracy', 'loss']
    """
    loss_fn = loss_fn or keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    # Each call traces a new step for its model, as it must. TensorFlow counts those traces
    # per Python function, across models, and after five calls warns of "retracing" (a
    # checker that evaluates six models would print it): noise here, so it is muted for
    # the call, and only for it.
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        return _evaluate_with(_make_test_step(model, loss_fn), dataset)
    finally:
        logger.setLevel(level)


def _make_test_step(model, loss_fn):
    # One compiled step per training run: a new tf.function per evaluation would trace
    # the whole model again after every epoch.
    @tf.function(reduce_retracing=True)
    def test_step(images, labels):
        logits = model(images, training=False)
        return compute_loss(loss_fn, labels, logits, model), logits

    return test_step


def _evaluate_with(test_step, dataset) -> dict[str, float]:
    mean_loss = keras.metrics.Mean()
    accuracy = keras.metrics.SparseCategoricalAccuracy()
    for images, labels in dataset:
        loss, logits = test_step(images, labels)
        mean_loss.update_state(loss, sample_weight=tf.shape(labels)[0])
        accuracy.update_state(labels, logits)
    return {"loss": float(mean_loss.result()), "accuracy": float(accuracy.result())}


def train_with_gradient_tape(
    model: keras.Model,
    dataset,
    epochs: int = 1,
    optimizer: keras.optimizers.Optimizer | None = None,
    loss=None,
    *,
    validation_data=None,
    steps_per_epoch: int | None = None,
    jit_compile: bool = False,
    verbose: int = 1,
) -> dict[str, list[float]]:
    """Trains `model` with an explicit five-step loop (initialise, forward, loss, backward, update).

    It does what `model.fit` does, written out: the same forward pass, loss (cross-entropy from
    logits plus regularisation terms), gradients and optimizer update, so with the same seed, data
    and optimizer it reaches the same weights. The running loss and accuracy are shown in a Keras
    progress bar. If the loss becomes NaN, training stops with advice on what to try.

    Args:
        model: A Keras model that outputs logits.
        dataset: A tf.data.Dataset of (images, int labels) batches, or the result of
            `resnet_keras.data.load()` (its `.train` and `.validation` are used).
        epochs: Number of passes over the data (>= 1).
        optimizer: Default: SGD, LR 0.1, momentum 0.9 (the paper's, without the schedule).
            Wrapped in a `LossScaleOptimizer` when the model computes in mixed float16, as
            `model.compile` does.
        loss: Default: `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`.
        validation_data: Optional dataset evaluated (with `training=False`) after each epoch.
        steps_per_epoch: Stop each epoch after this many batches (default: one full pass).
        jit_compile: Compile the train step with XLA.
        verbose: 0 silent, 1 progress bar.

    Returns:
        A history dict like `keras.callbacks.History.history`: "loss", "accuracy" and, with
        validation data, "val_loss", "val_accuracy"; one value per epoch (the running mean over
        the epoch's examples, like `model.fit`).

    Examples:
        >>> keras.utils.set_random_seed(0)
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> data = tf.data.Dataset.from_tensor_slices(
        ...     (tf.random.normal((32, 4)), tf.zeros(32, tf.int32))).batch(8)
        >>> history = train_with_gradient_tape(model, data, epochs=2, verbose=0)
        >>> history["loss"][1] < history["loss"][0]
        True
    """
    epochs = check_positive_int("epochs", epochs)
    train_data, validation_data = unpack_data(dataset, validation_data)
    if steps_per_epoch is not None:
        steps_per_epoch = check_positive_int("steps_per_epoch", steps_per_epoch)
    check_choice("verbose", verbose, (0, 1))

    optimizer = optimizer or keras.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    if model.dtype_policy.name == "mixed_float16" and not isinstance(
        optimizer, keras.optimizers.LossScaleOptimizer
    ):
        # What model.compile does for mixed precision: scale the loss so float16 gradients
        # do not underflow to zero.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    loss_fn = loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    # Step 1: parameters and optimizer state exist before the first update.
    sample_images = next(iter(train_data.take(1)))[0] if not model.built else None
    initialise(model, optimizer, sample_images)
    train_step = make_train_step(model, optimizer, loss_fn, jit_compile=jit_compile)
    test_step = _make_test_step(model, loss_fn) if validation_data is not None else None

    # Running metrics, weighted by batch size like model.fit's loss tracker.
    running_loss = keras.metrics.Mean(name="loss")
    running_accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    history: dict[str, list[float]] = {"loss": [], "accuracy": []}
    target = steps_per_epoch or steps_in(train_data)

    for epoch in range(epochs):
        if verbose:
            print(f"Epoch {epoch + 1}/{epochs}")
            progress = keras.utils.Progbar(target, stateful_metrics=["loss", "accuracy"])
        running_loss.reset_state()
        running_accuracy.reset_state()
        set_epoch(train_data, epoch)  # this epoch's order: a function of (seed, epoch)
        diverged = False
        for step, (images, labels) in enumerate(train_data):
            if steps_per_epoch is not None and step >= steps_per_epoch:
                break
            loss_value, logits = train_step(images, labels)  # steps 2-5
            running_loss.update_state(loss_value, sample_weight=tf.shape(labels)[0])
            running_accuracy.update_state(labels, logits)
            mean_loss = float(running_loss.result())
            if verbose:
                progress.update(
                    step + 1,
                    values=[("loss", mean_loss), ("accuracy", float(running_accuracy.result()))],
                )
            if not math.isfinite(float(loss_value)):
                diverged = True
                break
        history["loss"].append(float(running_loss.result()))
        history["accuracy"].append(float(running_accuracy.result()))
        if diverged:
            print(f"Epoch {epoch + 1}, batch {step}: {NAN_ADVICE}", file=sys.stderr)
            break
        if validation_data is not None:
            scores = _evaluate_with(test_step, validation_data)
            history.setdefault("val_loss", []).append(scores["loss"])
            history.setdefault("val_accuracy", []).append(scores["accuracy"])
            if verbose:
                print(f"val_loss: {scores['loss']:.4f} - val_accuracy: {scores['accuracy']:.4f}")
    return history
