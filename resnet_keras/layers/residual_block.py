"""The machinery that basic and bottleneck blocks share.

A residual block computes y = F(x) + shortcut(x). Subclasses only describe
their residual branch F as a list of convolutions (`_branch_convolutions`, each a
`BranchConvolution`, which may be grouped or depthwise) and register themselves in
`resnet_keras.layers.registry` for the builders;
this base class builds it in the original post-activation form (v1,
conv -> BN -> ReLU, addition, ReLU) or the pre-activation form (v2,
BN -> ReLU -> conv, addition, nothing after), adds the shortcut, and handles
the `residual=False` plain counterpart and `zero_init_residual`.

Two options of the descendants apply to every block, as timm has them: an attention slot
on the branch (`attention="squeeze_excitation"`, Hu et al. 2018: SE-ResNet) and an
average-pooled shortcut (`average_pool_shortcut=True`, He et al. 2019's ResNet-D).
"""

from __future__ import annotations

from typing import NamedTuple

import keras
from keras import layers, ops

from resnet_keras._validation import (
    check_bool,
    check_choice,
    check_image_input_shape,
    check_positive_int,
    check_strides,
)
from resnet_keras.layers.batch_normalization import FusedBatchNormalization
from resnet_keras.layers.shortcut import (
    PROJECTION,
    SHORTCUT_OPTIONS,
    average_pool_2x2,
    parameter_free_shortcut,
    resolve_shortcut,
    strided_output_shape,
)
from resnet_keras.layers.squeeze_excitation import SqueezeExcitation

ATTENTION_OPTIONS = (None, "squeeze_excitation")
"""What the `attention` slot of a block takes: nothing, or squeeze-and-excitation."""


class BranchConvolution(NamedTuple):
    """One convolution of a block's residual branch, as `_branch_convolutions` lists them.

    `groups` splits the input and output channels into that many independent groups
    (ResNeXt's grouped convolution); `groups` equal to the input channels (and as many
    filters) is a depthwise convolution.
    """

    kernel_size: int
    filters: int
    strides: int = 1
    groups: int = 1


class ResidualBlock(layers.Layer):
    """Base class of `BasicBlock` and `BottleneckBlock`; not used directly.

    Args:
        filters: width of the residual branch (its 3x3 convolutions).
        strides: 1, or 2 to halve the resolution (the shortcut follows).
        shortcut: "A", "B" or "C", the paper's shortcut options (see
            `resnet_keras.layers.shortcut`).
        preactivation: False for the original block (He et al. 2016a), True
            for the pre-activation block of "Identity Mappings" (2016b).
        residual: False drops the shortcut and the addition, leaving the plain
            network the paper compares against.
        zero_init_residual: start the branch's last scale at zero (its last
            BN's gamma in v1, its last convolution in v2), so the block starts
            as the identity (Goyal et al. 2017).
        use_bias: add biases to the convolutions. In v1 every convolution gets
            one (keras.applications' ResNet50 does this); in v2 only the
            convolutions whose output is not normalised (the branch's last one
            and the projection) get one, as in keras.applications' V2 models.
        batch_norm_momentum: momentum of the moving statistics.
        batch_norm_epsilon: epsilon of batch normalisation.
        kernel_initializer: initializer of the convolution kernels.
        kernel_regularizer: optional regularizer of the convolution kernels.
        attention: None, or "squeeze_excitation" to rescale the branch's channels
            before the addition (SE-ResNet, Hu et al. 2018; see `SqueezeExcitation`).
        attention_reduction: the squeeze-and-excitation bottleneck has
            `output_filters // attention_reduction` units (16 in the paper).
        average_pool_shortcut: a strided shortcut averages 2x2 windows and then projects
            with stride 1, instead of a stride-2 1x1 convolution that reads one pixel in
            four (ResNet-D, He et al. 2019, "Bag of Tricks", Fig. 2c). No parameters.
        **kwargs: standard layer arguments (`name`, `dtype`, ...).
    """

    def __init__(
        self,
        filters,
        strides=1,
        shortcut="B",
        preactivation=False,
        residual=True,
        zero_init_residual=False,
        use_bias=False,
        batch_norm_momentum=0.9,
        batch_norm_epsilon=1e-5,
        kernel_initializer="he_normal",
        kernel_regularizer=None,
        attention=None,
        attention_reduction=16,
        average_pool_shortcut=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = check_positive_int("filters", filters)
        self.strides = check_strides("strides", strides)
        self.shortcut = check_choice("shortcut", shortcut, SHORTCUT_OPTIONS)
        self.preactivation = check_bool("preactivation", preactivation)
        self.residual = check_bool("residual", residual)
        self.zero_init_residual = check_bool("zero_init_residual", zero_init_residual)
        self.use_bias = check_bool("use_bias", use_bias)
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.batch_norm_epsilon = float(batch_norm_epsilon)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.attention = check_choice("attention", attention, ATTENTION_OPTIONS)
        self.attention_reduction = check_positive_int("attention_reduction", attention_reduction)
        self.average_pool_shortcut = check_bool("average_pool_shortcut", average_pool_shortcut)

    # Subclasses describe their branch; everything else is shared.
    @property
    def output_filters(self):
        """Channels that leave the block."""
        raise NotImplementedError

    def _branch_convolutions(self):
        """Returns the branch as a list of `BranchConvolution`s (or plain tuples of theirs)."""
        raise NotImplementedError

    def _convolution(self, filters, kernel_size, strides, use_bias, zero_init, name, groups=1):
        initializer = "zeros" if zero_init else self.kernel_initializer
        # A strided 3x3 convolution pads explicitly by one pixel on every side
        # (as the paper's Torch/Caffe code and PyTorch do); "same" padding would
        # pad only bottom/right and sample different positions.
        padding = "valid" if (kernel_size > 1 and strides > 1) else "same"
        return layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            groups=groups,
            use_bias=use_bias,
            kernel_initializer=initializer,
            kernel_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
            name=name,
        )

    # Whether this block's batch norms use TensorFlow's fused kernel in inference too
    # (see resnet_keras/layers/batch_normalization.py); subclasses choose.
    _fused_inference = True

    def _batch_normalization(self, zero_init, name):
        return FusedBatchNormalization(
            fused_inference=self._fused_inference,
            momentum=self.batch_norm_momentum,
            epsilon=self.batch_norm_epsilon,
            gamma_initializer="zeros" if zero_init else "ones",
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, input_shape):
        check_image_input_shape(type(self).__name__, input_shape)
        input_channels = int(input_shape[-1])
        specs = [BranchConvolution(*spec) for spec in self._branch_convolutions()]
        self._shortcut_kind = None
        if self.residual:
            self._shortcut_kind = resolve_shortcut(
                self.shortcut, input_channels, self.output_filters
            )
        project = self._shortcut_kind == PROJECTION

        # Sub-layers are created in the order keras.applications' functional
        # ResNets list their weights (branch up to its last conv, projection
        # conv, last conv, projection BN, last BN), so that whole models
        # exchange weights with `get_weights()` / `set_weights()`.
        self.preact_bn = None
        if self.preactivation:
            self.preact_bn = self._batch_normalization(False, "preact_bn")
        self.branch_convs, self.branch_bns = [], []
        self.shortcut_conv = self.shortcut_bn = None
        last = len(specs)
        for index, (kernel_size, filters, strides, groups) in enumerate(specs, start=1):
            is_last = index == last
            if is_last and project:
                self.shortcut_conv = self._convolution(
                    self.output_filters,
                    1,
                    self._projection_strides,
                    use_bias=self.use_bias,
                    zero_init=False,
                    name="0_conv",
                )
            # In v2 the last conv feeds the addition directly: nothing
            # normalises it, so it is the one that takes the zero init and bias.
            bias = self.use_bias and (not self.preactivation or is_last)
            zero_conv = self.zero_init_residual and self.preactivation and is_last
            self.branch_convs.append(
                self._convolution(
                    filters, kernel_size, strides, bias, zero_conv, f"{index}_conv", groups
                )
            )
            if is_last and project and not self.preactivation:
                self.shortcut_bn = self._batch_normalization(False, "0_bn")
            if not (self.preactivation and is_last):
                zero_bn = self.zero_init_residual and not self.preactivation and is_last
                self.branch_bns.append(self._batch_normalization(zero_bn, f"{index}_bn"))
        self.attention_layer = None
        if self.attention == "squeeze_excitation":
            self.attention_layer = SqueezeExcitation(
                self.attention_reduction, dtype=self.dtype_policy, name="se"
            )

        # Build every sub-layer now so that a reloaded model has its variables
        # before the saved weights are assigned.
        shape = tuple(input_shape)
        if self.preact_bn is not None:
            self.preact_bn.build(shape)
        for index, conv in enumerate(self.branch_convs):
            shape = self._padded_shape(conv, shape)
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            if index < len(self.branch_bns):
                self.branch_bns[index].build(shape)
        if self.attention_layer is not None:
            self.attention_layer.build(shape)
        if self.shortcut_conv is not None:
            # Built on what it reads (the pooled input with an average-pooled shortcut), so
            # that `count_macs` sees its true output size.
            source_shape = tuple(input_shape)
            if self._projection_strides != self.strides:
                source_shape = strided_output_shape(source_shape, self.strides, source_shape[-1])
            self.shortcut_conv.build(source_shape)
            if self.shortcut_bn is not None:
                self.shortcut_bn.build(self.shortcut_conv.compute_output_shape(source_shape))
        self.built = True

    @property
    def _projection_strides(self):
        # With an average-pooled shortcut the pooling does the striding.
        return 1 if self.average_pool_shortcut else self.strides

    @staticmethod
    def _padded_shape(conv, shape):
        if conv.padding != "valid":
            return shape
        grow = lambda size: None if size is None else size + 2  # noqa: E731
        return (shape[0], grow(shape[1]), grow(shape[2]), shape[3])

    def _apply_convolution(self, conv, inputs):
        if conv.padding == "valid" and conv.kernel_size[0] > 1:
            inputs = ops.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]])
        return conv(inputs)

    def call(self, inputs, training=None):
        return self._forward(inputs, training)

    def _forward(self, inputs, training, gradient_through=None):
        """y = F(x) + shortcut(x) (then ReLU in v1); `gradient_through` routes the backward pass.

        "branch" or "shortcut" stops the gradient of the other term of the addition, so that
        only the paths through that side of the block carry it, with the same forward values
        (Veit et al. 2016's path-length measurement, `resnet_keras.lesion.path_gradients`).
        """
        branch = inputs
        if self.preactivation:
            branch = ops.relu(self.preact_bn(inputs, training=training))
        preactivated = branch
        last = len(self.branch_convs) - 1
        for index, conv in enumerate(self.branch_convs):
            branch = self._apply_convolution(conv, branch)
            if index < len(self.branch_bns):
                branch = self.branch_bns[index](branch, training=training)
            if index < last:
                branch = ops.relu(branch)
        if self.attention_layer is not None:
            branch = self.attention_layer(branch)

        if self.residual:
            shortcut = self._shortcut(inputs, preactivated, training)
            if gradient_through == "branch":
                shortcut = ops.stop_gradient(shortcut)
            elif gradient_through == "shortcut":
                branch = ops.stop_gradient(branch)
            branch = ops.add(branch, shortcut)
        if not self.preactivation:
            branch = ops.relu(branch)
        return branch

    def _shortcut(self, inputs, preactivated, training):
        if self.shortcut_conv is None:
            return parameter_free_shortcut(
                inputs, self.output_filters, self.strides, average=self.average_pool_shortcut
            )
        # A pre-activation block projects its normalised input, as in the
        # "Identity Mappings" paper and keras.applications' V2 models.
        source = preactivated if self.preactivation else inputs
        if self._projection_strides != self.strides:
            source = average_pool_2x2(source)
        shortcut = self.shortcut_conv(source)
        if self.shortcut_bn is not None:
            shortcut = self.shortcut_bn(shortcut, training=training)
        return shortcut

    def compute_output_shape(self, input_shape):
        check_image_input_shape(type(self).__name__, input_shape)
        return strided_output_shape(input_shape, self.strides, self.output_filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "strides": self.strides,
                "shortcut": self.shortcut,
                "preactivation": self.preactivation,
                "residual": self.residual,
                "zero_init_residual": self.zero_init_residual,
                "use_bias": self.use_bias,
                "batch_norm_momentum": self.batch_norm_momentum,
                "batch_norm_epsilon": self.batch_norm_epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer)
                if self.kernel_regularizer is not None
                else None,
                "attention": self.attention,
                "attention_reduction": self.attention_reduction,
                "average_pool_shortcut": self.average_pool_shortcut,
            }
        )
        return config
