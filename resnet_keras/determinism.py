"""Reproducible runs: one call seeds everything an assertion depends on."""

from __future__ import annotations

import os

import keras

from resnet_keras._validation import check_positive_int


def set_determinism(seed=0, op_determinism=True):
    """Seeds Python, NumPy and the Keras backend, and makes TensorFlow ops deterministic.

    Everything the course asserts on (losses, accuracies, weights after
    training) must come out the same on every run; seeds alone are not enough
    because some TensorFlow kernels (reductions on GPU, parallel CPU ops) add
    in a non-deterministic order. Op determinism costs some speed, so the
    benchmarks leave it off.

    Args:
        seed: a non-negative integer.
        op_determinism: also call
            `tf.config.experimental.enable_op_determinism()` (TensorFlow only).

    Returns:
        The seed.

    Examples:

    >>> import resnet_keras as rk
    >>> rk.set_determinism(42)
    42
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative integer; received {seed!r}.")
    if seed:
        check_positive_int("seed", seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    keras.utils.set_random_seed(seed)
    if op_determinism:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    return seed
