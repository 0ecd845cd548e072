"""Reference solutions of notebook 11, "Scaling out" (open only after trying)."""

from __future__ import annotations

__all__ = ["QUESTION_ANSWERS", "scaled_setup", "two_device_settings"]

QUESTION_ANSWERS = {
    "when_synchronized_batch_norm": "b",
    "why_warm_up": "a",
}
"""The answer of each conceptual question of the notebook (its checker module's object of
that name)."""


def scaled_setup(global_batch, devices):
    """The per-device batch and Goyal et al.'s linearly scaled learning rate (0.1 per 256).

    Examples:

    >>> scaled_setup(8192, 256)
    (32, 3.2)
    """
    return global_batch // devices, 0.1 * global_batch / 256


def two_device_settings():
    """The two-device run that trains the one-device run's network (batch 16, LR 0.1).

    The same GLOBAL batch (each device takes 8), the same learning rate (the global batch
    did not change), and statistics over the global batch.

    Examples:

    >>> two_device_settings()["synchronized_batch_norm"]
    True
    """
    return {"batch_size": 16, "learning_rate": 0.1, "synchronized_batch_norm": True}
