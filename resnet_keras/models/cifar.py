"""CIFAR-10 ResNets of He et al. (2016), Sec. 4.2, and their plain counterparts."""

from __future__ import annotations

import keras
from keras import layers

from resnet_keras._validation import check_bool, check_choice, check_positive_int
from resnet_keras.layers import SHORTCUT_OPTIONS, FusedBatchNormalization, get_block

STAGE_FILTERS = (16, 32, 64)


def blocks_per_stage(depth, block="basic"):
    """Returns n, the blocks per stage, of a CIFAR ResNet of this depth.

    A basic-block network has 3 stages of n two-convolution blocks plus the
    stem and the classifier: depth = 6n + 2. A bottleneck network has three
    convolutions per block: depth = 9n + 2 (ResNet-164, ResNet-1001). Any block of
    `resnet_keras.layers.registry` works the same way, by its convolution count.

    Raises:
        ValueError: if the depth does not have that form.

    Examples:

    >>> blocks_per_stage(20), blocks_per_stage(164, "bottleneck")
    (3, 18)
    """
    block_type = get_block(block)
    check_positive_int("depth", depth)
    per_block = 3 * block_type.convolutions
    if depth < per_block + 2 or (depth - 2) % per_block:
        examples = ", ".join(str(per_block * n + 2) for n in (3, 5, 7, 9, 18))
        raise ValueError(
            f"`depth` must be {per_block}n+2 for {block_type.name} blocks (e.g. {examples}); "
            f"received {depth}."
        )
    return (depth - 2) // per_block


def CifarResNet(
    depth=20,
    shortcut="A",
    preactivation=False,
    residual=True,
    block="basic",
    zero_init_residual=False,
    num_classes=10,
    input_shape=(32, 32, 3),
    batch_norm_momentum=0.9,
    kernel_regularizer=None,
    name=None,
):
    """The CIFAR-10 ResNet of the paper: a 3x3 stem, three stages, pooling, logits.

    Stages work on 32x32, 16x16 and 8x8 maps with 16, 32 and 64 filters; each
    holds n blocks (see `blocks_per_stage`); the first block of stages 2 and 3
    halves the resolution and doubles the filters.

    Args:
        depth: 6n+2 for basic blocks (20, 32, 44, 56, 110, 1202), 9n+2 for
            bottleneck blocks (164, 1001).
        shortcut: "A" (the paper's CIFAR choice: parameter-free), "B" or "C".
        preactivation: True builds the "Identity Mappings" (v2) network:
            pre-activation blocks and a final BN -> ReLU before pooling.
        residual: False builds the plain network of the same depth (Fig. 6).
        block: a registered block name (`resnet_keras.layers.BLOCKS`): "basic",
            "bottleneck", a descendant ("se_basic", "resnext", "wide_bottleneck",
            "se_bottleneck", "bottleneck_d", or "convnext" with `preactivation=True`),
            or one added with `resnet_keras.layers.register_block`.
        zero_init_residual: every block starts as the identity.
        num_classes: size of the output (logits, no softmax).
        input_shape: image shape, channels last.
        batch_norm_momentum: momentum of the moving statistics (0.9, as the
            paper's Torch code; Keras' default 0.99 adapts slowly in short runs).
        kernel_regularizer: optional regularizer for every convolution kernel.
        name: model name; defaults to e.g. "resnet20", "plain56", "resnet164v2".

    Returns:
        A `keras.Model` mapping images to logits.

    Examples:

    >>> import resnet_keras as rk
    >>> model = rk.CifarResNet(20)
    >>> model.count_params() - sum(w.numpy().size for w in model.non_trainable_weights)
    269722
    >>> plain = rk.CifarResNet(56, residual=False)
    """
    n = blocks_per_stage(depth, block)
    check_choice("shortcut", shortcut, SHORTCUT_OPTIONS)
    check_bool("preactivation", preactivation)
    check_bool("residual", residual)
    if name is None:
        kind = "resnet" if residual else "plain"
        name = f"{kind}{depth}{'v2' if preactivation else ''}"
    return _cifar_network(
        block,
        n,
        STAGE_FILTERS,
        stem_filters=STAGE_FILTERS[0],
        preactivation=preactivation,
        num_classes=num_classes,
        input_shape=input_shape,
        batch_norm_momentum=batch_norm_momentum,
        kernel_regularizer=kernel_regularizer,
        name=name,
        shortcut=shortcut,
        residual=residual,
        zero_init_residual=zero_init_residual,
    )


def _cifar_network(
    block,
    blocks,
    stage_filters,
    stem_filters,
    preactivation,
    num_classes,
    input_shape,
    batch_norm_momentum,
    kernel_regularizer,
    name,
    **block_arguments,
):
    """The CIFAR layout of every CIFAR network here: a 3x3 stem, stages, pooling, logits.

    `CifarResNet` and the descendants' CIFAR builders (`resnet_keras.models.descendants`:
    WRN-28-10 and ResNeXt-29) are this function with their widths. Stage s holds `blocks`
    blocks of `stage_filters[s]` filters; the first block of every stage after the first
    halves the resolution.

    Args:
        block: a registered block name (or `BlockType`).
        blocks: blocks per stage.
        stage_filters: the `filters` argument of the blocks of each stage.
        stem_filters: filters of the 3x3 stem convolution.
        preactivation: pre-activation blocks, no BN after the stem and a final BN -> ReLU.
        num_classes, input_shape, batch_norm_momentum, kernel_regularizer, name: as
            `CifarResNet`'s.
        **block_arguments: passed to every block (and added to the registered ones).

    Returns:
        A `keras.Model` mapping images to logits.
    """
    check_positive_int("num_classes", num_classes)
    if len(tuple(input_shape)) != 3:
        raise ValueError(
            f"`input_shape` must be (height, width, channels); received {input_shape!r}."
        )
    block_type = get_block(block)
    block_arguments.update(
        preactivation=preactivation,
        batch_norm_momentum=batch_norm_momentum,
        kernel_regularizer=kernel_regularizer,
    )

    inputs = keras.Input(shape=tuple(input_shape), name="images")
    x = layers.Conv2D(
        stem_filters,
        3,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        kernel_regularizer=kernel_regularizer,
        name="stem_conv",
    )(inputs)
    if not preactivation:
        # A v2 network normalises inside its first block instead.
        x = FusedBatchNormalization(momentum=batch_norm_momentum, epsilon=1e-5, name="stem_bn")(x)
        x = layers.ReLU(name="stem_relu")(x)

    for stage, filters in enumerate(stage_filters, start=1):
        for index in range(1, blocks + 1):
            strides = 2 if (stage > 1 and index == 1) else 1
            x = block_type.make(
                filters, strides=strides, name=f"stage{stage}_block{index}", **block_arguments
            )(x)

    if preactivation:
        x = FusedBatchNormalization(momentum=batch_norm_momentum, epsilon=1e-5, name="post_bn")(x)
        x = layers.ReLU(name="post_relu")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(num_classes, name="logits", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)
