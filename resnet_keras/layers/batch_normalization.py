"""Batch normalisation that computes exactly what `keras.layers.BatchNormalization` computes,
with one fused kernel on TensorFlow's CPU path.

Keras 3 normalises with separate `keras.ops` (moments, then scale and shift), which
on the TensorFlow backend becomes about ten element-wise kernels forward and more
backward, a large share of a ResNet-20 training step on a CPU (benchmarks/RESULTS.md).
TensorFlow has the whole computation, gradient included, as one kernel
(`FusedBatchNormV3`, which oneDNN also fuses with the following ReLU). This subclass
uses it where it is known to compute the same thing and leaves every other case (JAX
and torch backends, GPUs, masks, renorm, synchronised or non-channels-last
normalisation) to Keras. Weights, arguments, names and the moving-statistics update
are Keras'.

In inference the fused kernel is not always the faster one: measured side by side
(benchmarks/RESULTS.md), it made basic-block networks faster and bottleneck networks
slower than Keras' scale-and-shift. `fused_inference=False` keeps Keras' ops in inference;
the bottleneck block sets it.

The fused kernel is a default that changes how TensorFlow computes, not what: set the
environment variable `RESNET_KERAS_FUSED_BATCH_NORM=0` to use Keras' ops everywhere. A
saved model records only Keras' BatchNormalization configuration (plus
`fused_inference`), so it loads and runs on JAX and PyTorch, where Keras' ops are used.
"""

from __future__ import annotations

import os

import keras
from keras import ops

from resnet_keras._validation import check_bool

FUSED_KERNEL_VARIABLE = "RESNET_KERAS_FUSED_BATCH_NORM"
"""Set it to 0 to compute batch normalisation with Keras' ops everywhere."""


def _fusable_device():
    import tensorflow as tf

    # On GPUs cuDNN requires epsilon > 1e-5 and XLA fuses the Keras ops anyway; the
    # fused kernel is only used where it was measured: the CPU.
    return not tf.config.list_physical_devices("GPU")


@keras.saving.register_keras_serializable(package="resnet_keras")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization`, computed by one fused kernel on TensorFlow CPUs.

    Same arguments, weights and results (up to float rounding) as the Keras layer,
    which it subclasses; see the module docstring for when the fused kernel is used.

    Args:
        fused_inference: whether inference (`training=False`, or a frozen layer) also
            uses the fused kernel; training always does where it applies.
        **kwargs: the arguments of `keras.layers.BatchNormalization`.

    Examples:

    >>> import numpy as np
    >>> from resnet_keras.layers import FusedBatchNormalization
    >>> bn = FusedBatchNormalization(momentum=0.9, epsilon=1e-5)
    >>> y = bn(np.ones((2, 4, 4, 3), "float32"), training=True)
    >>> tuple(y.shape), bool(np.abs(np.asarray(y)).max() < 1e-3)
    ((2, 4, 4, 3), True)
    """

    def __init__(self, fused_inference=True, **kwargs):
        check_bool("fused_inference", fused_inference)
        super().__init__(**kwargs)
        self.fused_inference = fused_inference

    def get_config(self):
        return {**super().get_config(), "fused_inference": self.fused_inference}

    def _use_fused_kernel(self, inputs, mask):
        return (
            keras.backend.backend() == "tensorflow"
            and os.environ.get(FUSED_KERNEL_VARIABLE, "1") != "0"
            and mask is None
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            # Batch renormalisation arrived in Keras 3.14; older Keras (3.10 is supported)
            # has no `renorm` attribute, and a layer there never renormalises.
            and not getattr(self, "renorm", False)
            and not getattr(self, "synchronized", False)
            and _fusable_device()
        )

    def call(self, inputs, training=None, mask=None):
        training = bool(training and self.trainable)
        if (not training and not self.fused_inference) or not self._use_fused_kernel(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        # As Keras: statistics in float32 whatever the compute dtype.
        inputs = ops.cast(inputs, "float32")
        channels = inputs.shape[-1]
        gamma = ops.cast(self.gamma, "float32") if self.scale else tf.ones((channels,))
        beta = ops.cast(self.beta, "float32") if self.center else tf.zeros((channels,))
        if training:
            empty = tf.constant([], tf.float32)
            outputs, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=inputs,
                scale=gamma,
                offset=beta,
                mean=empty,
                variance=empty,
                epsilon=self.epsilon,
                exponential_avg_factor=1.0,
                data_format="NHWC",
                is_training=True,
            )
            # The kernel normalises with the biased batch variance, as Keras does, but
            # returns it Bessel-corrected (n / (n - 1)); Keras' moving variance averages
            # the biased one.
            static = inputs.shape[:3]
            if all(size is not None for size in static):
                count = float(static[0] * static[1] * static[2])
                correction = (count - 1.0) / count if count > 1 else 1.0
            else:
                count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:3]), tf.float32)
                correction = tf.where(count > 1.0, (count - 1.0) / count, 1.0)
            variance = variance * correction
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
        else:
            outputs, _, _, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=inputs,
                scale=gamma,
                offset=beta,
                mean=ops.cast(self.moving_mean, "float32"),
                variance=ops.cast(self.moving_variance, "float32"),
                epsilon=self.epsilon,
                exponential_avg_factor=1.0,
                data_format="NHWC",
                is_training=False,
            )
        return ops.cast(outputs, self.compute_dtype)
