"""The library's CPU speed defaults, undone one at a time, to measure what each buys.

`resnet20` runs one of these in a worker before the model is built: that contender is the
default minus one change, computing the same function with other kernels.
"""

from __future__ import annotations


def keras_batch_normalization():
    """Keras' own BatchNormalization ops instead of the fused TensorFlow kernel."""
    from resnet_keras.layers.batch_normalization import FusedBatchNormalization

    FusedBatchNormalization._use_fused_kernel = lambda self, inputs, mask: False


def strided_slice_shortcut():
    """Option A subsampling as a strided slice `x[:, ::2, ::2, :]` instead of a 1x1 max-pool."""
    from resnet_keras.layers import residual_block, shortcut

    original = shortcut.parameter_free_shortcut

    def sliced(inputs, output_channels, strides, average=False):
        if strides > 1 and not average:  # (ResNet-D's averaging shortcut is not ablated)
            inputs = inputs[:, ::strides, ::strides, :]
            strides = 1
        return original(inputs, output_channels, strides, average=average)

    # Callers look the function up in their module's globals at call time.
    shortcut.parameter_free_shortcut = sliced
    residual_block.parameter_free_shortcut = sliced
