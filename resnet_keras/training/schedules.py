"""Learning-rate schedules: the paper's step decay (with optional warm-up) and cosine decay.

Both are `keras.optimizers.schedules.LearningRateSchedule` subclasses, so they can be passed to
any Keras optimizer, saved with the model (`get_config`) and evaluated on any backend: the
optimizer calls them with its iteration counter, a 0-based step index.

He et al. (2016) train CIFAR-10 ResNets with LR 0.1, divided by 10 at 32k and 48k iterations out
of 64k, i.e. at 50% and 75% of training; ResNet-110 first uses 0.01 for about 400 iterations
("warm-up") because 0.1 is too large for it to start converging.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

__all__ = [
    "StepDecay",
    "WarmupCosineDecay",
    "paper_schedule",
    "schedule_values",
]

_WARMUP_MODES = ("constant", "linear")


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_non_negative_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"`{name}` must be a non-negative number, got {value!r}.")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be a finite number >= 0, got {value!r}.")
    return float(value)


def _warmup_value(step, warmup_steps: int, start: float, target: float, mode: str):
    """LR during warm-up; `step` is a float tensor."""
    if mode == "constant":
        return ops.convert_to_tensor(start, dtype="float32")
    # Linear: reaches `target` exactly at `warmup_steps`, so there is no jump when warm-up ends.
    fraction = step / float(warmup_steps)
    return start + (target - start) * fraction


@keras.saving.register_keras_serializable(package="resnet_keras")
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Piecewise-constant LR divided by `factor` at fractions of training (the paper's schedule).

    Step `s` (0-based optimizer iteration) gets `initial_learning_rate * factor**k`, where `k` is
    the number of milestones `m` with `s >= round(m * total_steps)`. With the defaults and
    `total_steps=64000` the LR is 0.1 for steps 0..31999, 0.01 for 32000..47999 and 0.001 after,
    exactly He et al. (2016), Sec. 4.2. During the first `warmup_steps` steps the LR is
    `warmup_learning_rate` (mode "constant", the paper's ResNet-110 recipe) or rises linearly from
    `warmup_learning_rate` to `initial_learning_rate` (mode "linear", Goyal et al. 2017).

    Args:
        initial_learning_rate: LR after warm-up and before the first milestone.
        total_steps: Number of optimizer steps in the whole run (epochs * steps per epoch).
        milestones: Increasing fractions of `total_steps` in (0, 1) where the LR is multiplied by
            `factor`.
        factor: Multiplier applied at each milestone, in (0, 1].
        warmup_steps: Number of warm-up steps (0 disables warm-up).
        warmup_learning_rate: LR used at the start of warm-up. Defaults to
            `initial_learning_rate / 10` (0.01 for the paper's 0.1).
        warmup: "constant" or "linear".
        name: Optional name.

    Examples:
        >>> schedule = StepDecay(0.1, total_steps=100)
        >>> [round(float(schedule(s)), 6) for s in (0, 49, 50, 74, 75, 99)]
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
        >>> warm = StepDecay(0.1, total_steps=64000, warmup_steps=400)
        >>> round(float(warm(0)), 6), round(float(warm(400)), 6)
        (0.01, 0.1)
    """

    def __init__(
        self,
        initial_learning_rate: float = 0.1,
        total_steps: int = 64000,
        milestones: Sequence[float] = (0.5, 0.75),
        factor: float = 0.1,
        warmup_steps: int = 0,
        warmup_learning_rate: float | None = None,
        warmup: str = "constant",
        name: str | None = None,
    ):
        super().__init__()
        self.initial_learning_rate = _check_non_negative_float(
            "initial_learning_rate", initial_learning_rate
        )
        self.total_steps = _check_positive_int("total_steps", total_steps)
        milestones = tuple(float(m) for m in milestones)
        if any(not 0.0 < m < 1.0 for m in milestones) or list(milestones) != sorted(milestones):
            raise ValueError(
                "`milestones` must be increasing fractions of training in (0, 1), "
                f"got {milestones!r}."
            )
        self.milestones = milestones
        self.factor = _check_non_negative_float("factor", factor)
        if not 0.0 < self.factor <= 1.0:
            raise ValueError(f"`factor` must be in (0, 1], got {factor!r}.")
        self.warmup_steps = _check_positive_int("warmup_steps", warmup_steps, minimum=0)
        if self.warmup_steps >= self.total_steps:
            raise ValueError(
                f"`warmup_steps` ({warmup_steps}) must be smaller than `total_steps` "
                f"({total_steps})."
            )
        if warmup_learning_rate is None:
            warmup_learning_rate = self.initial_learning_rate / 10.0
        self.warmup_learning_rate = _check_non_negative_float(
            "warmup_learning_rate", warmup_learning_rate
        )
        if warmup not in _WARMUP_MODES:
            raise ValueError(f"`warmup` must be one of {_WARMUP_MODES}, got {warmup!r}.")
        self.warmup = warmup
        self.name = name

    @property
    def boundaries(self) -> list[int]:
        """The steps at which the LR is divided (first step with the new LR)."""
        return [int(round(m * self.total_steps)) for m in self.milestones]

    def __call__(self, step):
        step = ops.cast(step, "float32")
        learning_rate = ops.convert_to_tensor(self.initial_learning_rate, dtype="float32")
        for boundary in self.boundaries:
            learning_rate = ops.where(
                step >= float(boundary), learning_rate * self.factor, learning_rate
            )
        if self.warmup_steps:
            warm = _warmup_value(
                step,
                self.warmup_steps,
                self.warmup_learning_rate,
                self.initial_learning_rate,
                self.warmup,
            )
            learning_rate = ops.where(step < float(self.warmup_steps), warm, learning_rate)
        return learning_rate

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "total_steps": self.total_steps,
            "milestones": list(self.milestones),
            "factor": self.factor,
            "warmup_steps": self.warmup_steps,
            "warmup_learning_rate": self.warmup_learning_rate,
            "warmup": self.warmup,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package="resnet_keras")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then a half-cosine from `initial_learning_rate` to `final_learning_rate`.

    For step `s >= warmup_steps`:
    `lr = final + (initial - final) * (1 + cos(pi * t)) / 2` with
    `t = min(1, (s - warmup_steps) / (total_steps - warmup_steps))`.
    During warm-up the LR rises linearly from `warmup_learning_rate` (at step 0) towards
    `initial_learning_rate` (reached at step `warmup_steps`).

    Args:
        initial_learning_rate: Peak LR, reached at the end of warm-up.
        total_steps: Number of optimizer steps in the whole run.
        warmup_steps: Number of warm-up steps (0 disables warm-up).
        warmup_learning_rate: LR at step 0 when warming up.
        final_learning_rate: LR reached at `total_steps`.
        name: Optional name.

    Examples:
        >>> schedule = WarmupCosineDecay(0.1, total_steps=110, warmup_steps=10)
        >>> [round(float(schedule(s)), 4) for s in (0, 5, 10, 60, 110)]
        [0.0, 0.05, 0.1, 0.05, 0.0]
    """

    def __init__(
        self,
        initial_learning_rate: float = 0.1,
        total_steps: int = 64000,
        warmup_steps: int = 0,
        warmup_learning_rate: float = 0.0,
        final_learning_rate: float = 0.0,
        name: str | None = None,
    ):
        super().__init__()
        self.initial_learning_rate = _check_non_negative_float(
            "initial_learning_rate", initial_learning_rate
        )
        self.total_steps = _check_positive_int("total_steps", total_steps)
        self.warmup_steps = _check_positive_int("warmup_steps", warmup_steps, minimum=0)
        if self.warmup_steps >= self.total_steps:
            raise ValueError(
                f"`warmup_steps` ({warmup_steps}) must be smaller than `total_steps` "
                f"({total_steps})."
            )
        self.warmup_learning_rate = _check_non_negative_float(
            "warmup_learning_rate", warmup_learning_rate
        )
        self.final_learning_rate = _check_non_negative_float(
            "final_learning_rate", final_learning_rate
        )
        self.name = name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        decay_steps = float(self.total_steps - self.warmup_steps)
        progress = ops.clip((step - float(self.warmup_steps)) / decay_steps, 0.0, 1.0)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
        learning_rate = (
            self.final_learning_rate
            + (self.initial_learning_rate - self.final_learning_rate) * cosine
        )
        if self.warmup_steps:
            warm = _warmup_value(
                step,
                self.warmup_steps,
                self.warmup_learning_rate,
                self.initial_learning_rate,
                "linear",
            )
            learning_rate = ops.where(step < float(self.warmup_steps), warm, learning_rate)
        return learning_rate

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "warmup_learning_rate": self.warmup_learning_rate,
            "final_learning_rate": self.final_learning_rate,
            "name": self.name,
        }


def paper_schedule(
    total_steps: int, initial_learning_rate: float = 0.1, warmup_steps: int = 0
) -> StepDecay:
    """The schedule of He et al. (2016) for CIFAR-10: /10 at 50% and 75% of training.

    Args:
        total_steps: Number of optimizer steps in the whole run (64000 in the paper).
        initial_learning_rate: Starting LR (0.1 in the paper).
        warmup_steps: Steps at `initial_learning_rate / 10` before the main LR (the paper uses
            about 400 for ResNet-110, 0 otherwise).

    Returns:
        A `StepDecay` schedule.

    Examples:
        >>> schedule = paper_schedule(64000)
        >>> schedule.boundaries
        [32000, 48000]
    """
    return StepDecay(
        initial_learning_rate=initial_learning_rate,
        total_steps=total_steps,
        milestones=(0.5, 0.75),
        factor=0.1,
        warmup_steps=warmup_steps,
        warmup="constant",
    )


def schedule_values(schedule, total_steps: int | None = None) -> np.ndarray:
    """Evaluates a schedule at steps `0 .. total_steps - 1` (for plots and tests).

    Args:
        schedule: A `LearningRateSchedule` (or any callable of the step) or a constant float.
        total_steps: Number of steps to evaluate. Defaults to `schedule.total_steps` when the
            schedule has that attribute.

    Returns:
        A float64 numpy array of length `total_steps`.

    Examples:
        >>> schedule_values(StepDecay(0.1, total_steps=4)).round(4).tolist()
        [0.1, 0.1, 0.01, 0.001]
    """
    if total_steps is None:
        total_steps = getattr(schedule, "total_steps", None)
        if total_steps is None:
            raise ValueError("`total_steps` is required for a schedule without `total_steps`.")
    total_steps = _check_positive_int("total_steps", total_steps)
    if isinstance(schedule, (int, float)) and not isinstance(schedule, bool):
        return np.full(total_steps, float(schedule))
    if not callable(schedule):
        raise TypeError(
            f"`schedule` must be a LearningRateSchedule, a callable or a number, got {schedule!r}."
        )
    steps = np.arange(total_steps, dtype="float32")
    values = ops.convert_to_numpy(schedule(ops.convert_to_tensor(steps)))
    return np.broadcast_to(np.asarray(values, dtype="float64"), (total_steps,)).copy()
