"""The race of notebook 10: ResNet-20 against four descendants at CIFAR scale, on one budget.

Every network is `rk.CifarResNet(depth, block=...)`, a registered block in the CIFAR layout
(`NETWORKS`), trained on the shipped digits by `train_network` with `rk.fit`'s recipe at the
budget's learning rate, the same images in the same order for all, from several seeds.

Two of the descendants need a word. TensorFlow's CPU kernels differentiate a grouped
convolution (`Conv2D(groups=g)`, g > 1) far more slowly than an ordinary convolution of the
same size (tens of times on this course's two-core machines), which puts ResNeXt's grouped
3x3 and ConvNeXt's depthwise 7x7 out of reach of a CPU budget. So this module registers two
blocks that compute exactly the same functions with kernels a CPU has:

- "resnext_split": the ResNeXt bottleneck whose grouped 3x3 is `groups` ordinary convolutions
  of the channel slices, concatenated: form (b) of Xie et al. (2017, Fig. 3), which they show
  equivalent to the grouped form (c). Same parameters, same multiply-adds.
- "convnext_dw": the ConvNeXt block with `keras.layers.DepthwiseConv2D` in place of
  `Conv2D(groups=channels)`: the same depthwise convolution, the same counts.

Examples:

>>> import resnet_keras as rk
>>> split = rk.CifarResNet(20, block="resnext_split", shortcut="B", input_shape=(16, 16, 3))
>>> grouped = rk.CifarResNet(20, block=GROUPED_RESNEXT, shortcut="B", input_shape=(16, 16, 3))
>>> rk.count_trainable_params(split) == rk.count_trainable_params(grouped)
True
"""

from __future__ import annotations

import time

import keras
from keras import layers, ops

from resnet_keras._validation import check_choice, check_positive_int
from resnet_keras.course.experiments import accuracy_on
from resnet_keras.layers import BlockType, BottleneckBlock, ConvNeXtBlock, register_block

__all__ = [
    "CARDINALITY",
    "GROUPED_RESNEXT",
    "NETWORKS",
    "SplitConv2D",
    "SplitResNeXtBlock",
    "DepthwiseConvNeXtBlock",
    "build_network",
    "train_network",
]


@keras.saving.register_keras_serializable(package="resnet_keras.course")
class SplitConv2D(layers.Layer):
    """A grouped convolution computed as `groups` convolutions of channel slices, concatenated.

    Output channel block i of a `Conv2D(filters, groups=groups)` reads only input channel block
    i: that is `groups` independent convolutions side by side (Xie et al. 2017, Fig. 3b). The
    same weights and multiply-adds, computed by ordinary convolution kernels.

    Args:
        filters: output channels, a multiple of `groups`.
        kernel_size, strides, padding, use_bias, kernel_initializer, kernel_regularizer: as
            `keras.layers.Conv2D`'s (one int kernel size and stride).
        groups: the number of slices.
        **kwargs: standard layer arguments.

    Examples:

    >>> import numpy as np
    >>> conv = SplitConv2D(8, 3, groups=4, padding="same")
    >>> tuple(conv(np.zeros((1, 5, 5, 4), "float32")).shape)
    (1, 5, 5, 8)
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        groups=1,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.groups = check_positive_int("groups", groups)
        self.filters = check_positive_int("filters", filters)
        if self.filters % self.groups:
            raise ValueError(
                f"`filters` must be a multiple of `groups` ({groups}); received {filters}."
            )
        self.kernel_size = (check_positive_int("kernel_size", kernel_size),) * 2
        self.strides = (check_positive_int("strides", strides),) * 2
        self.padding = check_choice("padding", padding, ("valid", "same"))
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.kernel_regularizer = kernel_regularizer
        self.convs = [
            layers.Conv2D(
                self.filters // self.groups,
                kernel_size,
                strides=strides,
                padding=padding,
                use_bias=use_bias,
                kernel_initializer=kernel_initializer,
                kernel_regularizer=kernel_regularizer,
                dtype=self.dtype_policy,
                name=f"group{index}",
            )
            for index in range(1, self.groups + 1)
        ]

    def _slice_shape(self, input_shape):
        channels = int(input_shape[-1])
        if channels % self.groups:
            raise ValueError(
                f"The input's channels ({channels}) must be a multiple of `groups` ({self.groups})."
            )
        return (*tuple(input_shape)[:-1], channels // self.groups)

    def build(self, input_shape):
        for conv in self.convs:
            conv.build(self._slice_shape(input_shape))
        self.built = True

    def call(self, inputs):
        slices = ops.split(inputs, self.groups, axis=-1)
        return ops.concatenate([conv(x) for conv, x in zip(self.convs, slices)], axis=-1)

    def compute_output_shape(self, input_shape):
        shape = self.convs[0].compute_output_shape(self._slice_shape(input_shape))
        return (*shape[:-1], self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size[0],
            "strides": self.strides[0],
            "padding": self.padding,
            "groups": self.groups,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "kernel_regularizer": self.kernel_regularizer,
        }


@keras.saving.register_keras_serializable(package="resnet_keras.course")
class SplitResNeXtBlock(BottleneckBlock):
    """`BottleneckBlock` whose grouped convolution is a `SplitConv2D` (the same function)."""

    def _convolution(self, filters, kernel_size, strides, use_bias, zero_init, name, groups=1):
        if groups == 1:
            return super()._convolution(
                filters, kernel_size, strides, use_bias, zero_init, name, groups
            )
        # The padding rule of ResidualBlock._convolution: a strided 3x3 pads explicitly.
        return SplitConv2D(
            filters,
            kernel_size,
            strides=strides,
            padding="valid" if (kernel_size > 1 and strides > 1) else "same",
            groups=groups,
            use_bias=use_bias,
            kernel_initializer="zeros" if zero_init else self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
            name=name,
        )


@keras.saving.register_keras_serializable(package="resnet_keras.course")
class DepthwiseConvNeXtBlock(ConvNeXtBlock):
    """`ConvNeXtBlock` with `DepthwiseConv2D` for its `Conv2D(groups=channels)` (the same map)."""

    def build(self, input_shape):
        super().build(input_shape)
        grouped = self.depthwise_conv
        self._tracker.untrack(grouped)  # its weights must not count, nor be trained
        self.depthwise_conv = layers.DepthwiseConv2D(
            self.kernel_size,
            padding="same",
            use_bias=self.use_bias,
            depthwise_initializer=self.kernel_initializer,
            depthwise_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
            name="depthwise_conv",
        )
        self.depthwise_conv.build(grouped.get_build_config()["input_shape"])

    def _depthwise(self, inputs):
        # The parent applies its Conv2D's kernel with ops.depthwise_conv; this layer is one.
        return self.depthwise_conv(inputs)


CARDINALITY = {"groups": 4, "width_per_group": 32}
"""The ResNeXt-style blocks' 3x3: 4 groups, twice the bottleneck's width (32 channels for 16
filters), so the network is about ResNet-20's size (Xie et al. trade depth and width for
cardinality at a fixed size the same way)."""

register_block("resnext_split", SplitResNeXtBlock, 3, CARDINALITY)
register_block("convnext_dw", DepthwiseConvNeXtBlock, 3)

GROUPED_RESNEXT = BlockType("resnext_grouped", BottleneckBlock, 3, CARDINALITY)
"""The same ResNeXt-style block with the grouped `Conv2D`, for comparing the counts."""

NETWORKS = {
    "resnet20": dict(depth=20),
    "resnext20": dict(depth=20, block="resnext_split", shortcut="B"),
    "se_resnet20": dict(depth=20, block="se_basic"),
    "resnet20_d": dict(depth=20, block="bottleneck_d", shortcut="B"),
    "convnext29": dict(depth=29, block="convnext_dw", preactivation=True),
}
"""The race's networks: `rk.CifarResNet` arguments by name (the depth counts each registered
block's convolutions: 6n+2 for basic blocks, 9n+2 for the three-convolution ones)."""


def build_network(name, num_classes=10, input_shape=(32, 32, 3)):
    """`rk.CifarResNet(**NETWORKS[name])` for these classes and images.

    Examples:

    >>> build_network("se_resnet20").name
    'se_resnet20'
    """
    import resnet_keras as rk

    check_choice("name", name, tuple(NETWORKS))
    return rk.CifarResNet(
        **NETWORKS[name], num_classes=num_classes, input_shape=tuple(input_shape), name=name
    )


def train_network(name, seeds, budget):
    """Trains `build_network(name)` on the digits from each seed, on one budget.

    The recipe is `rk.fit`'s (SGD with momentum 0.9, the learning rate divided by 10 at 50 %
    and 75 % of the run, weight decay 1e-4) at `budget["learning_rate"]`, for every network.
    Later seeds reuse the first seed's compiled model, restarted with their own initial weights
    (`experiments.train_cifar_network` does the same: a restarted model trains exactly as a new
    one would, and tracing the step is most of a short run).

    Args:
        name: a key of `NETWORKS`.
        seeds: the seeds of the weights, e.g. `(0, 1, 2)`; the data order is the same for all.
        budget: a dict with `image_size`, `train_size`, `epochs`, `batch_size`, `learning_rate`.

    Returns:
        A dict with the network's `name`, `parameters` (trainable, as papers count them),
        `macs` (one image), and per seed `test_accuracy` and `seconds` (lists).
    """
    import resnet_keras as rk
    from resnet_keras.course.experiments import _digits, _restart, _seeds
    from resnet_keras.training import EpochSetter, default_callbacks

    check_choice("name", name, tuple(NETWORKS))
    info, train, test = _digits(budget)
    side = budget["image_size"]
    compiled, accuracies, seconds = None, [], []
    for seed in _seeds(seeds):
        rk.set_determinism(seed)
        model = build_network(name, info.num_classes, (side, side, 3))
        start = time.perf_counter()
        if compiled is None:
            rk.fit(
                model,
                train,
                epochs=budget["epochs"],
                learning_rate=budget["learning_rate"],
                verbose=0,
            )
            compiled = model
        else:
            model = _restart(compiled, model)
            model.fit(
                train,
                epochs=budget["epochs"],
                callbacks=[EpochSetter(train), *default_callbacks(None, monitor="loss")],
                shuffle=False,
                verbose=0,
            )
        accuracies.append(accuracy_on(model, test))
        seconds.append(time.perf_counter() - start)
    return {
        "name": name,
        "parameters": rk.count_trainable_params(compiled),
        "macs": rk.count_macs(compiled),
        "test_accuracy": accuracies,
        "seconds": seconds,
    }
