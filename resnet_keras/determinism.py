"""Reproducible runs: one call seeds everything an assertion depends on."""

from __future__ import annotations

import os
import sys

import keras

from resnet_keras._validation import check_bool, check_non_negative_int


def set_determinism(seed=0, op_determinism=True):
    """Seeds Python, NumPy and the Keras backend, and makes the backend's ops deterministic.

    Everything the course asserts on (losses, accuracies, weights after
    training) must come out the same on every run; seeds alone are not enough
    because some kernels (reductions on GPU, parallel CPU ops) add in a
    non-deterministic order. Op determinism costs some speed, so the benchmarks
    leave it off. What it does depends on the Keras backend:

    * TensorFlow (and wherever TensorFlow is already imported, as for tf.data
      input pipelines): `tf.config.experimental.enable_op_determinism()`;
    * PyTorch: `torch.use_deterministic_algorithms(True, warn_only=True)` and the
      cuBLAS workspace setting it needs on a GPU;
    * JAX: XLA's `--xla_gpu_deterministic_ops` flag, which takes effect only if
      JAX has not started its GPU backend yet (JAX on a CPU is deterministic).

    Only the backend in use is imported, so this works on a machine without TensorFlow.

    Args:
        seed: a non-negative integer.
        op_determinism: also make the backend's ops deterministic (see above).

    Returns:
        The seed.

    Examples:

    >>> import resnet_keras as rk
    >>> rk.set_determinism(42)
    42
    """
    seed = check_non_negative_int("seed", seed)
    check_bool("op_determinism", op_determinism)
    os.environ["PYTHONHASHSEED"] = str(seed)
    keras.utils.set_random_seed(seed)
    if not op_determinism:
        return seed
    backend = keras.config.backend()
    if backend == "tensorflow" or "tensorflow" in sys.modules:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    if backend == "torch":
        import torch

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    elif backend == "jax":
        flag = "--xla_gpu_deterministic_ops=true"
        flags = os.environ.get("XLA_FLAGS", "")
        if flag not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} {flag}".strip()
    return seed
