"""The ConvNeXt block (Liu et al. 2022): a residual block modernised towards a transformer.

Where a bottleneck block computes 1x1 -> 3x3 -> 1x1 convolutions with batch normalisation
and ReLU, ConvNeXt's block computes a 7x7 depthwise convolution, one layer normalisation,
an inverted bottleneck (a dense layer to 4x the channels, GELU, a dense layer back: the
"MLP" of a transformer, applied to every pixel) and a learned per-channel scale of the
branch ("layer scale", initialised at 1e-6), then adds the input. Nothing follows the
addition, as in a pre-activation block. Between stages ConvNeXt downsamples with a layer
normalisation and a 2x2 convolution of stride 2; here the first block of a stage holds
that downsampling layer, as a bottleneck block holds its projection shortcut, so that
`strides=2` means the same to every registered block (and ConvNeXt blocks work in
`CifarResNet`).

The layers and their order are keras.applications' `ConvNeXtTiny`'s, so whole models
exchange weights with `get_weights()` / `set_weights()` (`resnet_keras.models.ConvNeXtTiny`).
"""

from __future__ import annotations

import keras
from keras import layers, ops

from resnet_keras._validation import (
    check_image_input_shape,
    check_number,
    check_positive_int,
)
from resnet_keras.layers.residual_block import ResidualBlock
from resnet_keras.layers.shortcut import PROJECTION, parameter_free_shortcut, resolve_shortcut
from resnet_keras.layers.squeeze_excitation import SqueezeExcitation


@keras.saving.register_keras_serializable(package="resnet_keras")
class LayerScale(layers.Layer):
    """Multiplies each channel by a learned scale, initialised at `init_value`.

    Touvron et al. (2021, CaiT): a residual branch that starts near zero leaves a deep
    network near the identity at initialisation; ConvNeXt starts it at 1e-6.

    Args:
        init_value: the initial scale of every channel.
        **kwargs: standard layer arguments.

    Examples:

    >>> import numpy as np
    >>> scale = LayerScale(0.5)
    >>> np.asarray(scale(np.ones((1, 2, 2, 3), "float32")))[0, 0, 0].tolist()
    [0.5, 0.5, 0.5]
    """

    def __init__(self, init_value=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.init_value = check_number("init_value", init_value)

    def build(self, input_shape):
        self.gamma = self.add_weight(
            shape=(int(input_shape[-1]),),
            initializer=keras.initializers.Constant(self.init_value),
            name="gamma",
        )
        self.built = True

    def call(self, inputs):
        return inputs * ops.cast(self.gamma, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "init_value": self.init_value}


@keras.saving.register_keras_serializable(package="resnet_keras")
class ConvNeXtBlock(ResidualBlock):
    """y = D(x) + gamma * MLP(LN(depthwise7x7(D(x)))), D the downsampling where shapes change.

    Output channels equal `filters`. D is the identity when the block keeps its input's
    shape; otherwise `shortcut` decides it, as for the other blocks: "B" (ConvNeXt's
    own choice) or "C" a layer normalisation and a convolution of kernel and stride
    `strides` (2x2 stride 2 between stages), "A" parameter-free subsampling and zero
    channels. With `residual=False`, y = the branch applied to D(x).

    Args:
        filters: channels of the block (ConvNeXt's "dim": 96, 192, 384, 768 in ConvNeXt-T).
        strides: 1, or 2 to halve the resolution (in D).
        shortcut: "A", "B" or "C", as above.
        preactivation: must be True: nothing follows the addition, as in a pre-activation
            block (builders pass it to every block; `CifarResNet(..., preactivation=True)`).
        residual: False leaves out the addition.
        zero_init_residual: start the layer scale at zero (the last dense layer's kernel
            without a layer scale), so that the block starts as D.
        kernel_size: of the depthwise convolution (7).
        expansion: the inverted bottleneck has `filters * expansion` units (4).
        layer_scale_init_value: initial layer scale (1e-6), or None for no layer scale.
        drop_path_rate: probability of dropping the branch of a whole example in training
            (stochastic depth, Huang et al. 2016); 0 adds no layer.
        layer_norm_epsilon: epsilon of the layer normalisations (1e-6).
        use_bias: biases in the convolutions and dense layers (True, as ConvNeXt).
        kernel_initializer: initializer of the kernels (Keras' default, as
            keras.applications; the paper uses a truncated normal of deviation 0.02).
        attention: None, or "squeeze_excitation" on the branch (see `ResidualBlock`).
        **kwargs: see `ResidualBlock` (kernel_regularizer, name, ...). The batch
            normalisation arguments are accepted so that builders can pass every block the
            same arguments; this block has no batch normalisation. `average_pool_shortcut`
            must stay False: the 2x2 downsampling convolution already reads every pixel.

    Examples:

    >>> import numpy as np
    >>> from resnet_keras.layers import ConvNeXtBlock
    >>> block = ConvNeXtBlock(192, strides=2)
    >>> tuple(block(np.zeros((1, 56, 56, 96), "float32")).shape)
    (1, 28, 28, 192)
    """

    def __init__(
        self,
        filters,
        strides=1,
        shortcut="B",
        preactivation=True,
        kernel_size=7,
        expansion=4,
        layer_scale_init_value=1e-6,
        drop_path_rate=0.0,
        layer_norm_epsilon=1e-6,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(
            filters,
            strides=strides,
            shortcut=shortcut,
            preactivation=preactivation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            **kwargs,
        )
        if not self.preactivation:
            raise ValueError(
                "`preactivation` must be True for ConvNeXtBlock: nothing follows its "
                "addition, as in a pre-activation block (build the network with "
                f"preactivation=True); received {preactivation!r}."
            )
        if self.average_pool_shortcut:
            raise ValueError(
                "`average_pool_shortcut` must be False for ConvNeXtBlock: it downsamples "
                "with a 2x2 stride-2 convolution, which reads every pixel; received True."
            )
        self.kernel_size = check_positive_int("kernel_size", kernel_size)
        self.expansion = check_positive_int("expansion", expansion)
        if layer_scale_init_value is not None:
            layer_scale_init_value = check_number(
                "layer_scale_init_value", layer_scale_init_value, minimum=0
            )
        self.layer_scale_init_value = layer_scale_init_value
        self.drop_path_rate = check_number(
            "drop_path_rate", drop_path_rate, minimum=0, maximum=1, open_maximum=True
        )
        self.layer_norm_epsilon = check_number(
            "layer_norm_epsilon", layer_norm_epsilon, minimum=0, open_minimum=True
        )

    @property
    def output_filters(self):
        return self.filters

    def _layer_norm(self, name):
        return layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )

    def _kernel_arguments(self, zero_init=False):
        return dict(
            use_bias=self.use_bias,
            kernel_initializer="zeros" if zero_init else self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        check_image_input_shape(type(self).__name__, input_shape)
        input_channels = int(input_shape[-1])
        # The downsampling is needed for the shapes whether or not the block adds.
        self._shortcut_kind = resolve_shortcut(self.shortcut, input_channels, self.filters)
        self.downsample_norm = self.downsample_conv = None
        if self._shortcut_kind == PROJECTION:
            self.downsample_norm = self._layer_norm("downsample_norm")
            # "same" pads nothing for an even side (keras.applications' "valid" then
            # computes the same), and keeps the size of `compute_output_shape` for odd ones.
            self.downsample_conv = layers.Conv2D(
                self.filters,
                self.strides,
                strides=self.strides,
                padding="same",
                name="downsample_conv",
                **self._kernel_arguments(),
            )
        self.depthwise_conv = layers.Conv2D(
            self.filters,
            self.kernel_size,
            padding="same",
            groups=self.filters,
            name="depthwise_conv",
            **self._kernel_arguments(),
        )
        self.norm = self._layer_norm("norm")
        self.pointwise_conv_1 = layers.Dense(
            self.filters * self.expansion, name="pointwise_conv_1", **self._kernel_arguments()
        )
        has_scale = self.layer_scale_init_value is not None
        self.pointwise_conv_2 = layers.Dense(
            self.filters,
            name="pointwise_conv_2",
            **self._kernel_arguments(zero_init=self.zero_init_residual and not has_scale),
        )
        self.layer_scale = None
        if has_scale:
            init = 0.0 if self.zero_init_residual else self.layer_scale_init_value
            self.layer_scale = LayerScale(init, dtype=self.dtype_policy, name="layer_scale")
        self.attention_layer = None
        if self.attention == "squeeze_excitation":
            self.attention_layer = SqueezeExcitation(
                self.attention_reduction, dtype=self.dtype_policy, name="se"
            )
        self.drop_path = None
        if self.drop_path_rate > 0:
            # One draw per example: the whole branch is dropped or kept (and scaled).
            self.drop_path = layers.Dropout(
                self.drop_path_rate, noise_shape=(None, 1, 1, 1), name="drop_path"
            )

        shape = tuple(input_shape)
        if self.downsample_conv is not None:
            self.downsample_norm.build(shape)
            self.downsample_conv.build(shape)
        shape = self.compute_output_shape(shape)
        for layer in (self.depthwise_conv, self.norm, self.pointwise_conv_1):
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        for layer in (self.pointwise_conv_2, self.layer_scale, self.attention_layer):
            if layer is not None:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)
        self.built = True

    def _downsample(self, inputs):
        if self.downsample_conv is not None:
            return self.downsample_conv(self.downsample_norm(inputs))
        return parameter_free_shortcut(inputs, self.filters, self.strides)

    def _depthwise(self, inputs):
        """The depthwise 7x7 convolution, computed as one (`ops.depthwise_conv`).

        The layer is a `Conv2D(groups=channels)`, as keras.applications' ConvNeXt writes it, so
        that weights move between the two unchanged. Calling it, though, sends a grouped
        convolution through Keras' XLA path on the TensorFlow backend's CPU, about 30x slower
        than a depthwise one (benchmarks/RESULTS.md, `descendants`). A grouped convolution with
        one input channel per group IS a depthwise one whose kernel has its last two axes
        swapped, so its own kernel and bias are applied that way.
        """
        convolution = self.depthwise_conv
        kernel = ops.transpose(convolution.kernel, (0, 1, 3, 2))
        outputs = ops.depthwise_conv(
            inputs, ops.cast(kernel, inputs.dtype), strides=1, padding="same"
        )
        if convolution.use_bias:
            outputs = ops.add(outputs, ops.cast(convolution.bias, outputs.dtype))
        return outputs

    def _forward(self, inputs, training, gradient_through=None):
        """See `ResidualBlock._forward`; the shortcut is D(x), the branch reads it too."""
        inputs = self._downsample(inputs)
        branch = self.norm(self._depthwise(inputs))
        branch = keras.activations.gelu(self.pointwise_conv_1(branch), approximate=False)
        branch = self.pointwise_conv_2(branch)
        for layer in (self.layer_scale, self.attention_layer):
            if layer is not None:
                branch = layer(branch)
        if self.drop_path is not None:
            branch = self.drop_path(branch, training=training)
        if not self.residual:
            return branch
        shortcut = inputs
        if gradient_through == "branch":
            shortcut = ops.stop_gradient(shortcut)
        elif gradient_through == "shortcut":
            branch = ops.stop_gradient(branch)
        return ops.add(branch, shortcut)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_size": self.kernel_size,
                "expansion": self.expansion,
                "layer_scale_init_value": self.layer_scale_init_value,
                "drop_path_rate": self.drop_path_rate,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
