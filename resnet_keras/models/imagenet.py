"""ImageNet ResNets with keras.applications' signature.

* `ResNet18`, `ResNet34`: the paper's layout with basic blocks (no conv bias,
  projection shortcuts where the shape changes, as torchvision and keras-hub
  build them). keras.applications has no such models.
* `ResNet50/101/152` and `ResNet50V2/101V2/152V2`: keras.applications' layout
  (conv bias, BN epsilon 1.001e-5, the stride on the first 1x1 convolution of
  a V1 bottleneck, on the last block of a V2 stage), built from this library's
  blocks. Weights interchange both ways with keras.applications:
  `ours.set_weights(reference.get_weights())`, and `weights=` takes a weights
  file saved from a keras.applications model.
* The descendants, in torchvision's layout (no conv bias, BN epsilon 1e-5, the
  stride on the 3x3 convolution) and from the registry's blocks: `ResNeXt50`
  (32x4d, Xie et al. 2017), `WideResNet50_2` (Zagoruyko and Komodakis 2016, as
  torchvision), `ResNet50D` (deep stem and average-pooled shortcuts, He et al.
  2019) and `SEResNet50` (Hu et al. 2018). Their published sizes are checked in
  `resnet_keras.models.descendants.PUBLISHED`.
"""

from __future__ import annotations

import os

import keras
from keras import layers

from resnet_keras._validation import check_choice, check_positive_int
from resnet_keras.layers import FusedBatchNormalization, get_block

POOLING_OPTIONS = (None, "avg", "max")

# (registered block, blocks per stage, preactivation); stage filters are 64..512.
_LAYOUTS = {
    "resnet18": ("basic", (2, 2, 2, 2), False),
    "resnet34": ("basic", (3, 4, 6, 3), False),
    "resnet50": ("bottleneck", (3, 4, 6, 3), False),
    "resnet101": ("bottleneck", (3, 4, 23, 3), False),
    "resnet152": ("bottleneck", (3, 8, 36, 3), False),
    "resnet50v2": ("bottleneck", (3, 4, 6, 3), True),
    "resnet101v2": ("bottleneck", (3, 4, 23, 3), True),
    "resnet152v2": ("bottleneck", (3, 8, 36, 3), True),
    "resnext50_32x4d": ("resnext", (3, 4, 6, 3), False),
    "wide_resnet50_2": ("wide_bottleneck", (3, 4, 6, 3), False),
    "resnet50d": ("bottleneck_d", (3, 4, 6, 3), False),
    "seresnet50": ("se_bottleneck", (3, 4, 6, 3), False),
}
# ResNet-C's stem (He et al. 2019, Fig. 2b): three 3x3 convolutions (32, 32, 64 filters,
# the first of stride 2) where the others have one 7x7; the layers of ResNet-D.
_DEEP_STEM = ("resnet50d",)
DEEP_STEM_FILTERS = (32, 32, 64)
_APPLICATIONS = {
    "resnet50": "ResNet50",
    "resnet101": "ResNet101",
    "resnet152": "ResNet152",
    "resnet50v2": "ResNet50V2",
    "resnet101v2": "ResNet101V2",
    "resnet152v2": "ResNet152V2",
}
STAGE_FILTERS = (64, 128, 256, 512)


def _block_arguments(variant):
    preactivation = _LAYOUTS[variant][2]
    if variant not in _APPLICATIONS:
        # The paper's / torchvision's networks (basic blocks and the descendants).
        return dict(
            shortcut="B",
            use_bias=False,
            batch_norm_momentum=0.9,
            batch_norm_epsilon=1e-5,
            kernel_initializer="he_normal",
        )
    # keras.applications' bottleneck networks, to the last detail that
    # changes the outputs or the weight list.
    return dict(
        shortcut="B",
        use_bias=True,
        batch_norm_momentum=0.99,
        batch_norm_epsilon=1.001e-5,
        kernel_initializer="glorot_uniform",
        stride_on_3x3=preactivation,
    )


def _stage_strides(variant, stage, index, blocks):
    """The stride of one block: where each layout halves the resolution."""
    if _LAYOUTS[variant][2]:
        # keras.applications' V2 stages downsample in their last block, and the
        # last stage does not downsample at all.
        return 2 if (index == blocks and stage < 4) else 1
    return 2 if (index == 1 and stage > 1) else 1


def _check_arguments(include_top, weights, input_tensor, input_shape, pooling, classes):
    if not isinstance(include_top, bool):
        raise TypeError(f"`include_top` must be True or False; received {include_top!r}.")
    if not (weights in (None, "imagenet") or isinstance(weights, (str, os.PathLike))):
        raise ValueError(
            "`weights` must be None (random initialisation), 'imagenet' or the path "
            f"to a weights file; received {weights!r}."
        )
    if weights is not None and weights != "imagenet" and not os.path.exists(weights):
        raise ValueError(f"`weights` file not found: {os.fspath(weights)!r}.")
    check_choice("pooling", pooling, POOLING_OPTIONS)
    check_positive_int("classes", classes)
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(
            "With `weights='imagenet'` and `include_top=True`, `classes` must be 1000; "
            f"received {classes}."
        )
    if input_shape is not None:
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError(
                f"`input_shape` must be (height, width, channels); received {input_shape!r}."
            )
        for size in input_shape[:2]:
            if size is not None and size < 32:
                raise ValueError(
                    "`input_shape` must be at least 32x32 (five halvings); "
                    f"received {input_shape!r}."
                )
    if input_tensor is not None and not keras.backend.is_keras_tensor(input_tensor):
        raise TypeError(
            "`input_tensor` must be a Keras tensor such as `keras.Input(...)`; "
            f"received {type(input_tensor).__name__}."
        )


def _build(
    variant,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
):
    _check_arguments(include_top, weights, input_tensor, input_shape, pooling, classes)
    if weights == "imagenet" and variant not in _APPLICATIONS:
        # Checked before building: a ResNet-50-size model takes seconds to build.
        raise ValueError(
            f"`weights`: no ImageNet weights are published for {variant}; use "
            "`weights=None` or the path to a weights file saved from this model."
        )
    block_name, stage_blocks, preactivation = _LAYOUTS[variant]
    block_type = get_block(block_name)
    block_arguments = _block_arguments(variant)
    epsilon = block_arguments["batch_norm_epsilon"]
    momentum = block_arguments["batch_norm_momentum"]

    inputs = _image_input(input_tensor, input_shape, include_top)
    if variant in _DEEP_STEM:
        x = _deep_stem(inputs, block_arguments)
    else:
        x = layers.ZeroPadding2D(padding=3, name="conv1_pad")(inputs)
        x = layers.Conv2D(
            64,
            7,
            strides=2,
            use_bias=variant in _APPLICATIONS,
            kernel_initializer=block_arguments["kernel_initializer"],
            name="conv1_conv",
        )(x)
        if not preactivation:
            x = FusedBatchNormalization(epsilon=epsilon, momentum=momentum, name="conv1_bn")(x)
            x = layers.ReLU(name="conv1_relu")(x)
    x = layers.ZeroPadding2D(padding=1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)

    for stage, (filters, blocks) in enumerate(zip(STAGE_FILTERS, stage_blocks), start=1):
        for index in range(1, blocks + 1):
            x = block_type.make(
                filters,
                strides=_stage_strides(variant, stage, index, blocks),
                preactivation=preactivation,
                name=f"conv{stage + 1}_block{index}",
                **block_arguments,
            )(x)

    if preactivation:
        x = FusedBatchNormalization(epsilon=epsilon, momentum=momentum, name="post_bn")(x)
        x = layers.ReLU(name="post_relu")(x)

    x = _top(x, include_top, pooling, classes, classifier_activation)
    model = _model(inputs, x, input_tensor, name or variant)

    if weights is not None:
        _load_weights(
            model,
            variant,
            weights,
            include_top=include_top,
            input_shape=tuple(model.input_shape[1:]),
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
        )
    return model


def _image_input(input_tensor, input_shape, include_top):
    """The model's input: `input_tensor`, or a new `keras.Input` of the checked shape."""
    if input_tensor is not None:
        return input_tensor
    if input_shape is None:
        input_shape = (224, 224, 3) if include_top else (None, None, 3)
    return keras.Input(shape=tuple(input_shape))


def _top(x, include_top, pooling, classes, classifier_activation, normalization=None):
    """keras.applications' ending: the pooled classifier, or the features (pooled or not).

    `normalization`, a layer, follows the global pooling where a network normalises the
    pooled features (ConvNeXt's layer normalisation).
    """
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        if normalization is not None:
            x = normalization(x)
        return layers.Dense(
            classes, activation=classifier_activation, name="predictions", dtype="float32"
        )(x)
    if pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x if normalization is None else normalization(x)


def _model(inputs, outputs, input_tensor, name):
    if input_tensor is not None:
        inputs = keras.utils.get_source_inputs(input_tensor)
    return keras.Model(inputs, outputs, name=name)


def _deep_stem(inputs, block_arguments):
    """ResNet-C's stem: three 3x3 convolutions with BN and ReLU, the first of stride 2."""
    x = inputs
    for index, filters in enumerate(DEEP_STEM_FILTERS, start=1):
        strides = 2 if index == 1 else 1
        if strides > 1:
            # One pixel each side, as torch pads (see ResidualBlock._convolution).
            x = layers.ZeroPadding2D(padding=1, name=f"stem{index}_pad")(x)
        x = layers.Conv2D(
            filters,
            3,
            strides=strides,
            padding="valid" if strides > 1 else "same",
            use_bias=False,
            kernel_initializer=block_arguments["kernel_initializer"],
            name=f"stem{index}_conv",
        )(x)
        x = FusedBatchNormalization(
            epsilon=block_arguments["batch_norm_epsilon"],
            momentum=block_arguments["batch_norm_momentum"],
            name=f"stem{index}_bn",
        )(x)
        x = layers.ReLU(name=f"stem{index}_relu")(x)
    return x


def _is_own_weights_file(path):
    """True if a weights file was saved from one of this library's models.

    Keras names the groups of a `.weights.h5` file after the layers' classes,
    so this library's files hold block groups ("bottleneck_block") that a
    file saved from keras.applications' flat graph never has.
    """
    import h5py

    found = []

    def visit(item_name):
        if "bottleneck_block" in item_name or "basic_block" in item_name:
            found.append(item_name)
            return True
        return None

    try:
        with h5py.File(path, "r") as handle:
            handle.visit(visit)
    except OSError:
        return True  # Not HDF5 (e.g. a .keras archive): let Keras read it.
    return bool(found)


def _load_weights(model, variant, weights, **reference_arguments):
    application_name = _APPLICATIONS.get(variant)
    if weights != "imagenet" and (
        application_name is None or _is_own_weights_file(os.fspath(weights))
    ):
        model.load_weights(weights)
        return
    # keras.applications names every convolution in one flat graph; this
    # library groups them into block layers. The weight lists are in the same
    # order, so the reference model reads the file and hands its weights over.
    from_imagenet = weights == "imagenet"
    reference = getattr(keras.applications, application_name)(
        weights="imagenet" if from_imagenet else None, **reference_arguments
    )
    if not from_imagenet:
        reference.load_weights(os.fspath(weights))
    model.set_weights(reference.get_weights())


_SIGNATURE_DOC = """
    Args:
        include_top: whether to end with global average pooling and the
            `classes`-way dense layer.
        weights: None (random initialisation), "imagenet" (downloaded by
            keras.applications, needs a network) or the path to a weights file.
        input_tensor: optional Keras tensor to use as the model's input.
        input_shape: optional (height, width, channels); defaults to
            (224, 224, 3) with the top, (None, None, 3) without.
        pooling: with `include_top=False`: None (4D features), "avg" or "max".
        classes: number of classes of the top layer.
        classifier_activation: activation of the top layer ("softmax", or
            None for logits).
        name: model name.

    Returns:
        A `keras.Model`.
"""


def _make_builder(variant, summary, example):
    def builder(
        include_top=True,
        weights=None,
        input_tensor=None,
        input_shape=None,
        pooling=None,
        classes=1000,
        classifier_activation="softmax",
        name=None,
    ):
        return _build(
            variant,
            include_top=include_top,
            weights=weights,
            input_tensor=input_tensor,
            input_shape=input_shape,
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
            name=name,
        )

    builder.__name__ = builder.__qualname__ = _builder_names[variant]
    builder.__doc__ = f"{summary}\n{_SIGNATURE_DOC}\n    Examples:\n\n{example}"
    return builder


_builder_names = {
    "resnet18": "ResNet18",
    "resnet34": "ResNet34",
    **_APPLICATIONS,
    "resnext50_32x4d": "ResNeXt50",
    "wide_resnet50_2": "WideResNet50_2",
    "resnet50d": "ResNet50D",
    "seresnet50": "SEResNet50",
}

ResNet18 = _make_builder(
    "resnet18",
    "ResNet-18 of He et al. (2016), Table 1: basic blocks [2, 2, 2, 2].",
    "    >>> import resnet_keras as rk\n    >>> rk.ResNet18().count_params()  # doctest: +SKIP\n",
)
ResNet34 = _make_builder(
    "resnet34",
    "ResNet-34 of He et al. (2016), Table 1: basic blocks [3, 4, 6, 3].",
    "    >>> import resnet_keras as rk\n"
    "    >>> model = rk.ResNet34(include_top=False, pooling='avg')\n",
)
ResNet50 = _make_builder(
    "resnet50",
    "ResNet-50 with keras.applications.ResNet50's layout: bottlenecks [3, 4, 6, 3].",
    "    >>> import keras, resnet_keras as rk\n"
    "    >>> reference = keras.applications.ResNet50(weights=None)\n"
    "    >>> ours = rk.ResNet50()\n"
    "    >>> ours.set_weights(reference.get_weights())\n",
)
ResNet101 = _make_builder(
    "resnet101",
    "ResNet-101 with keras.applications.ResNet101's layout: bottlenecks [3, 4, 23, 3].",
    "    >>> import resnet_keras as rk\n    >>> model = rk.ResNet101(weights=None)\n",
)
ResNet152 = _make_builder(
    "resnet152",
    "ResNet-152 with keras.applications.ResNet152's layout: bottlenecks [3, 8, 36, 3].",
    "    >>> import resnet_keras as rk\n    >>> model = rk.ResNet152(weights=None)\n",
)
ResNet50V2 = _make_builder(
    "resnet50v2",
    "Pre-activation ResNet-50 with keras.applications.ResNet50V2's layout.",
    "    >>> import resnet_keras as rk\n"
    "    >>> model = rk.ResNet50V2(include_top=False, pooling='avg')\n",
)
ResNet101V2 = _make_builder(
    "resnet101v2",
    "Pre-activation ResNet-101 with keras.applications.ResNet101V2's layout.",
    "    >>> import resnet_keras as rk\n    >>> model = rk.ResNet101V2()\n",
)
ResNet152V2 = _make_builder(
    "resnet152v2",
    "Pre-activation ResNet-152 with keras.applications.ResNet152V2's layout.",
    "    >>> import resnet_keras as rk\n    >>> model = rk.ResNet152V2()\n",
)

ResNeXt50 = _make_builder(
    "resnext50_32x4d",
    "ResNeXt-50 (32x4d) of Xie et al. (2017) as torchvision's `resnext50_32x4d`: bottlenecks\n"
    "    [3, 4, 6, 3] whose 3x3 convolution has 32 groups of 4 channels per 64 filters.",
    "    >>> import resnet_keras as rk\n"
    "    >>> from resnet_keras.models import ResNeXt50\n"
    "    >>> rk.count_trainable_params(ResNeXt50())  # torchvision's num_params\n"
    "    25028904\n",
)
WideResNet50_2 = _make_builder(
    "wide_resnet50_2",
    "Wide ResNet-50-2 as torchvision's `wide_resnet50_2`: ResNet-50 whose 3x3 convolutions\n"
    "    (and the 1x1 before them) are twice as wide; the outputs of the blocks are not.",
    "    >>> from resnet_keras.models import WideResNet50_2\n"
    "    >>> model = WideResNet50_2(include_top=False, pooling='avg')\n",
)
ResNet50D = _make_builder(
    "resnet50d",
    'ResNet-50-D of He et al. (2019), "Bag of Tricks", Fig. 2: the stride on the 3x3\n'
    "    convolution (ResNet-B), a stem of three 3x3 convolutions (ResNet-C) and shortcuts\n"
    "    that average-pool before their 1x1 projection (ResNet-D), as timm's `resnet50d`.",
    "    >>> from resnet_keras.models import ResNet50D\n"
    "    >>> model = ResNet50D(input_shape=(64, 64, 3), classes=10)\n"
    "    >>> tuple(model.get_layer('stem1_conv').kernel.shape)\n"
    "    (3, 3, 3, 32)\n",
)
SEResNet50 = _make_builder(
    "seresnet50",
    "SE-ResNet-50 of Hu et al. (2018): torchvision's ResNet-50 with a squeeze-and-excitation\n"
    "    layer (reduction 16) on the branch of every block, before the addition.",
    "    >>> from resnet_keras.models import SEResNet50\n"
    "    >>> model = SEResNet50(include_top=False, input_shape=(64, 64, 3))\n",
)
