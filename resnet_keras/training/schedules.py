"""Learning-rate schedules: Keras' own, laid out the way the recipes use them.

He et al. (2016) train CIFAR-10 ResNets with LR 0.1, divided by 10 at 32k and 48k iterations out
of 64k, i.e. at 50% and 75% of training; ResNet-110 first uses 0.01 for about 400 iterations
("warm-up") because 0.1 is too large for it to start converging. That is a piecewise-constant
function of the step, `keras.optimizers.schedules.PiecewiseConstantDecay` (`paper_schedule`). The
cosine recipes' linear warm-up followed by a half-cosine to 0 is
`keras.optimizers.schedules.CosineDecay` with `warmup_target` (`cosine_schedule`). Both are Keras
built-ins: a model compiled with them saves and loads with plain Keras, on every backend.

The optimizer evaluates its schedule at its iteration counter, the 0-based index of the update it
is about to make. The paper (and Caffe, which it used) switches *at* an iteration: update 32000 is
the first at 0.01. `PiecewiseConstantDecay` keeps `values[i]` up to and including `boundaries[i]`,
so `paper_schedule` puts each boundary one step before the switch: [31999, 47999] for 64k steps
(updates 0..31999 at 0.1, 32000..47999 at 0.01, the rest at 0.001).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from resnet_keras._validation import (
    check_non_negative_int,
    check_number,
    check_positive_int,
)

__all__ = ["cosine_schedule", "paper_schedule", "schedule_values"]


def _check_milestones(milestones) -> tuple[float, ...]:
    try:
        milestones = tuple(float(m) for m in milestones)
    except (TypeError, ValueError):
        milestones = None
    if (
        not milestones
        or any(not 0.0 < m < 1.0 for m in milestones)
        or list(milestones) != sorted(set(milestones))
    ):
        raise ValueError(
            "`milestones` must be increasing fractions of training in (0, 1); "
            f"received {milestones!r}."
        )
    return milestones


def paper_schedule(
    total_steps: int,
    initial_learning_rate: float = 0.1,
    warmup_steps: int = 0,
    *,
    warmup_learning_rate: float | None = None,
    milestones: Sequence[float] = (0.5, 0.75),
    factor: float = 0.1,
) -> keras.optimizers.schedules.PiecewiseConstantDecay:
    """The schedule of He et al. (2016) for CIFAR-10: /10 at 50% and 75% of training.

    Args:
        total_steps: Number of optimizer steps in the whole run (64000 in the paper).
        initial_learning_rate: LR after warm-up and before the first milestone (0.1).
        warmup_steps: Steps at `warmup_learning_rate` before it (about 400 for ResNet-110 in
            the paper, 0 otherwise): one more boundary of the same piecewise-constant schedule.
        warmup_learning_rate: LR during warm-up (default `initial_learning_rate / 10`).
        milestones: Increasing fractions of `total_steps` where the LR is multiplied by
            `factor`.
        factor: Multiplier at each milestone, in (0, 1].

    Returns:
        A `keras.optimizers.schedules.PiecewiseConstantDecay`.

    Examples:
        >>> schedule = paper_schedule(64000)
        >>> schedule.boundaries, schedule.values  # the last step before each switch
        ([31999, 47999], [0.1, 0.01, 0.001])
        >>> warm = paper_schedule(64000, warmup_steps=400)  # steps 0..399 at 0.01
        >>> warm.boundaries, warm.values
        ([399, 31999, 47999], [0.01, 0.1, 0.01, 0.001])
    """
    total_steps = check_positive_int("total_steps", total_steps)
    initial_learning_rate = check_number("initial_learning_rate", initial_learning_rate, minimum=0)
    warmup_steps = check_non_negative_int("warmup_steps", warmup_steps)
    milestones = _check_milestones(milestones)
    factor = check_number("factor", factor, minimum=0, maximum=1, open_minimum=True)

    boundaries, values = [], [initial_learning_rate]
    for k, milestone in enumerate(milestones, start=1):
        # `.15g` drops float noise (0.1 * 0.1 = 0.010000000000000002), so the config reads 0.01.
        value = float(f"{initial_learning_rate * factor**k:.15g}")
        boundary = round(milestone * total_steps) - 1  # the last step before the switch
        if boundaries and boundary == boundaries[-1]:  # a very short run: two drops at once
            values[-1] = value
        else:
            boundaries.append(boundary)
            values.append(value)
    if warmup_steps:
        if warmup_steps > boundaries[0]:
            raise ValueError(
                f"`warmup_steps` must end before the first milestone (step {boundaries[0] + 1} "
                f"of {total_steps}); received {warmup_steps}."
            )
        if warmup_learning_rate is None:
            warmup_learning_rate = initial_learning_rate / 10.0
        boundaries.insert(0, warmup_steps - 1)
        values.insert(0, check_number("warmup_learning_rate", warmup_learning_rate, minimum=0))
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def cosine_schedule(
    total_steps: int,
    initial_learning_rate: float = 0.1,
    warmup_steps: int = 0,
    *,
    warmup_learning_rate: float = 0.0,
    alpha: float = 0.0,
) -> keras.optimizers.schedules.CosineDecay:
    """Linear warm-up, then a half-cosine from `initial_learning_rate` to `alpha` times it.

    Keras' `CosineDecay` with `warmup_target`: the LR rises linearly from `warmup_learning_rate`
    (step 0) to `initial_learning_rate` (step `warmup_steps`), then follows
    `initial * ((1 - alpha) * (1 + cos(pi * t)) / 2 + alpha)` with
    `t = (step - warmup_steps) / (total_steps - warmup_steps)`, reaching its end at `total_steps`.
    Note the names: Keras calls the LR at step 0 `initial_learning_rate` and the peak
    `warmup_target`; here, as in `paper_schedule`, `initial_learning_rate` is the main LR.

    Args:
        total_steps: Number of optimizer steps in the whole run.
        initial_learning_rate: Peak LR, reached at the end of warm-up.
        warmup_steps: Number of warm-up steps (0: no warm-up, the cosine starts at step 0).
        warmup_learning_rate: LR at step 0 when warming up.
        alpha: Final LR as a fraction of `initial_learning_rate`, in [0, 1].

    Returns:
        A `keras.optimizers.schedules.CosineDecay`.

    Examples:
        >>> schedule = cosine_schedule(110, 0.1, warmup_steps=10)
        >>> [round(float(schedule(s)), 4) for s in (0, 5, 10, 60, 110)]
        [0.0, 0.05, 0.1, 0.05, 0.0]
    """
    total_steps = check_positive_int("total_steps", total_steps)
    initial_learning_rate = check_number("initial_learning_rate", initial_learning_rate, minimum=0)
    warmup_steps = check_non_negative_int("warmup_steps", warmup_steps)
    alpha = check_number("alpha", alpha, minimum=0, maximum=1)
    if warmup_steps >= total_steps:
        raise ValueError(
            f"`warmup_steps` must be smaller than `total_steps` ({total_steps}); "
            f"received {warmup_steps}."
        )
    if not warmup_steps:
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate, decay_steps=total_steps, alpha=alpha
        )
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=check_number("warmup_learning_rate", warmup_learning_rate, minimum=0),
        decay_steps=total_steps - warmup_steps,
        alpha=alpha,
        warmup_target=initial_learning_rate,
        warmup_steps=warmup_steps,
    )


def schedule_values(schedule, total_steps: int) -> np.ndarray:
    """Evaluates a schedule at steps `0 .. total_steps - 1` (for plots and tests).

    Keras' schedules do not know the length of the run, so `total_steps` is required. Note
    that `PiecewiseConstantDecay` switches *after* each boundary (see the module docstring).

    Args:
        schedule: A `LearningRateSchedule` (or any callable of the step) or a constant float.
        total_steps: Number of steps to evaluate (epochs * steps per epoch).

    Returns:
        A float64 numpy array of length `total_steps`.

    Examples:
        >>> schedule_values(paper_schedule(8), 8).round(4).tolist()  # boundaries [3, 5]
        [0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    """
    total_steps = check_positive_int("total_steps", total_steps)
    if isinstance(schedule, (int, float)) and not isinstance(schedule, bool):
        return np.full(total_steps, float(schedule))
    if not callable(schedule):
        raise TypeError(
            "`schedule` must be a LearningRateSchedule, a callable or a number; "
            f"received {schedule!r}."
        )
    steps = np.arange(total_steps, dtype="float32")
    # All steps at once where the schedule allows it; `ops.cond` (CosineDecay's warm-up) needs
    # one step at a time, which `vectorized_map` batches (TensorFlow, JAX) or a loop does.
    for evaluate in (schedule, lambda steps: ops.vectorized_map(schedule, steps)):
        try:
            values = np.asarray(ops.convert_to_numpy(evaluate(ops.convert_to_tensor(steps))))
        except Exception:  # noqa: BLE001 - each backend words "not vectorisable" differently
            continue
        if values.size in (1, total_steps):
            return np.broadcast_to(values.astype("float64").reshape(-1), (total_steps,)).copy()
    return np.array([float(ops.convert_to_numpy(schedule(step))) for step in steps])
