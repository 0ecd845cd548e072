"""Learning-rate range test (Smith 2015, "Cyclical Learning Rates", Sec. 3.3).

Train for a few hundred steps while the LR grows exponentially from `min_lr` to `max_lr`, record
the loss at each step, then put the weights back. The loss first stays flat (LR too small to
move), then falls (useful LRs), then explodes (LR too large). A good LR sits on the falling part.

Hand-written because neither Keras nor KerasHub ships a range test (fastai's `lr_find` and
PyTorch Lightning's tuner are the usual ones, outside Keras).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np

from resnet_keras._validation import check_choice, check_int, check_number
from resnet_keras.training._common import unpack_data
from resnet_keras.training.loop import initialise, make_train_step

__all__ = ["LRFinderResult", "find_learning_rate", "suggest_learning_rate"]

_METHODS = ("steepest", "min/10")


@dataclass
class LRFinderResult:
    """What the LR range test measured.

    Attributes:
        learning_rates: LR used at each step (increasing).
        losses: Raw training loss at each step.
        smoothed_losses: Bias-corrected exponential moving average of `losses`.
        suggestion: The suggested LR (see `method`).
        method: How `suggestion` was picked: "steepest" or "min/10".
        steepest_lr: LR where the smoothed loss falls fastest (per factor of LR).
        min_loss_lr: LR where the smoothed loss is lowest.
        stopped_early: True when the sweep stopped because the loss diverged.

    Examples:
        >>> result = LRFinderResult([1e-3, 1e-2], [2.0, 1.0], [2.0, 1.0], 1e-2, "steepest")
        >>> result.suggestion
        0.01
    """

    learning_rates: list[float]
    losses: list[float]
    smoothed_losses: list[float]
    suggestion: float
    method: str
    steepest_lr: float = math.nan
    min_loss_lr: float = math.nan
    stopped_early: bool = False


def suggest_learning_rate(learning_rates, smoothed_losses, method: str = "steepest", skip=0.1):
    """Picks an LR from a range-test curve.

    "steepest" (default): the LR where the smoothed loss decreases fastest against log(LR),
    searched only *before* the loss minimum (after it the loss is on its way up) and after the
    first `skip` fraction of points (where the EMA is still warming up). This lands in the middle of
    the useful range. "min/10": the LR of the lowest smoothed loss divided by 10, a more
    conservative rule of thumb (the minimum itself is already close to divergence).

    Args:
        learning_rates: Increasing LRs of the sweep.
        smoothed_losses: Smoothed loss at each LR.
        method: "steepest" or "min/10".
        skip: Fraction of the first points ignored by "steepest".

    Returns:
        A tuple `(suggestion, steepest_lr, min_loss_lr)`.

    Examples:
        >>> lrs = np.logspace(-4, 0, 50)
        >>> losses = 2 - np.tanh(np.log10(lrs) + 2) + np.where(lrs > 0.3, 50 * lrs, 0)
        >>> suggestion, steepest, lowest = suggest_learning_rate(lrs, losses)
        >>> 0.005 < suggestion < 0.02
        True
    """
    check_choice("method", method, _METHODS)
    lrs = np.asarray(learning_rates, dtype="float64")
    losses = np.asarray(smoothed_losses, dtype="float64")
    if lrs.ndim != 1 or lrs.shape != losses.shape or len(lrs) < 3:
        raise ValueError(
            "`learning_rates` and `smoothed_losses` must be 1-D of the same length (at least 3), "
            f"received shapes {lrs.shape} and {losses.shape}."
        )
    finite = np.isfinite(losses)
    lowest = int(np.argmin(np.where(finite, losses, np.inf)))
    min_loss_lr = float(lrs[lowest])
    start = min(int(len(lrs) * skip), max(lowest - 1, 0))
    stop = max(lowest + 1, start + 2)
    slopes = np.gradient(losses[start:stop], np.log(lrs[start:stop]))
    steepest_lr = float(lrs[start + int(np.nanargmin(slopes))])
    suggestion = steepest_lr if method == "steepest" else min_loss_lr / 10.0
    return suggestion, steepest_lr, min_loss_lr


def find_learning_rate(
    model: keras.Model,
    dataset,
    min_lr: float = 1e-5,
    max_lr: float = 10.0,
    num_steps: int = 200,
    optimizer: keras.optimizers.Optimizer | None = None,
    loss=None,
    *,
    smoothing: float = 0.98,
    divergence_factor: float = 4.0,
    method: str = "steepest",
    verbose: int = 1,
) -> LRFinderResult:
    """LR range test: sweep the LR exponentially, record the loss, restore the weights.

    At step `i` of `num_steps` the LR is `min_lr * (max_lr / min_lr) ** (i / (num_steps - 1))`.
    The sweep stops early once the smoothed loss exceeds `divergence_factor` times its minimum or
    becomes NaN. Afterwards every model weight (including BatchNormalization moving statistics)
    is restored, so the model is exactly as it was; the optimizer used for the sweep is a fresh
    one and is thrown away. Plot the curve with `resnet_keras.plots.plot_lr_finder(result)`.

    Args:
        model: A built model that outputs logits.
        dataset: tf.data.Dataset of (images, labels) batches (repeated as needed), or the result
            of `resnet_keras.data.load()`.
        min_lr: First LR of the sweep.
        max_lr: Last LR of the sweep.
        num_steps: Number of steps (a few hundred for real use; 20-50 is enough for a smoke test).
        optimizer: A fresh optimizer to sweep with. Default: SGD with momentum 0.9 (the paper's).
        loss: Default: sparse categorical cross-entropy from logits.
        smoothing: EMA factor for the loss curve (0 disables smoothing).
        divergence_factor: Stop when smoothed loss > this factor * best smoothed loss.
        method: How to pick the suggestion, "steepest" or "min/10" (see `suggest_learning_rate`).
        verbose: 0 silent, 1 progress bar.

    Returns:
        An `LRFinderResult`.

    Examples:
        >>> import tensorflow as tf
        >>> keras.utils.set_random_seed(0)
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> x = tf.random.normal((256, 4))
        >>> data = tf.data.Dataset.from_tensor_slices((x, tf.cast(x[:, 0] > 0, "int32"))).batch(32)
        >>> result = find_learning_rate(model, data, num_steps=30, verbose=0)
        >>> 1e-5 <= result.suggestion <= 10
        True
    """
    check_number("min_lr", min_lr, minimum=0, open_minimum=True)
    check_number("max_lr", max_lr, minimum=min_lr, open_minimum=True)  # above min_lr
    check_int("num_steps", num_steps, 3)
    check_number("smoothing", smoothing, minimum=0, maximum=1, open_maximum=True)
    check_number("divergence_factor", divergence_factor, minimum=1, open_minimum=True)
    check_choice("method", method, _METHODS)
    train_data, _ = unpack_data(dataset)

    optimizer = optimizer or keras.optimizers.SGD(learning_rate=min_lr, momentum=0.9)
    loss_fn = loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    sample_images = next(iter(train_data.take(1)))[0] if not model.built else None
    initialise(model, optimizer, sample_images)
    saved_weights = model.get_weights()
    train_step = make_train_step(model, optimizer, loss_fn)
    schedule = min_lr * (max_lr / min_lr) ** (np.arange(num_steps) / (num_steps - 1))

    lrs, losses, smoothed = [], [], []
    average, best, stopped_early = 0.0, math.inf, False
    progress = keras.utils.Progbar(num_steps, stateful_metrics=["lr", "loss"]) if verbose else None
    try:
        batches = iter(train_data.repeat())
        for step, learning_rate in enumerate(schedule):
            optimizer.learning_rate = float(learning_rate)
            images, labels = next(batches)
            loss_value = float(train_step(images, labels)[0])
            # EMA with bias correction, so the first points are not pulled towards 0.
            average = smoothing * average + (1.0 - smoothing) * loss_value
            value = average / (1.0 - smoothing ** (step + 1))
            lrs.append(float(learning_rate))
            losses.append(loss_value)
            smoothed.append(value)
            if progress is not None:
                progress.update(step + 1, values=[("lr", learning_rate), ("loss", value)])
            if not math.isfinite(value) or value > divergence_factor * best:
                stopped_early = True
                break
            best = min(best, value)
    finally:
        model.set_weights(saved_weights)

    if len(lrs) < 3:
        raise ValueError(
            f"The loss diverged after {len(lrs)} steps, before a curve could be drawn: "
            f"lower `min_lr` (now {min_lr}) or check the data."
        )
    suggestion, steepest_lr, min_loss_lr = suggest_learning_rate(lrs, smoothed, method)
    return LRFinderResult(
        learning_rates=lrs,
        losses=losses,
        smoothed_losses=smoothed,
        suggestion=suggestion,
        method=method,
        steepest_lr=steepest_lr,
        min_loss_lr=min_loss_lr,
        stopped_early=stopped_early,
    )
