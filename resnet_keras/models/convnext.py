"""ConvNeXt (Liu et al. 2022, "A ConvNet for the 2020s"), built from `ConvNeXtBlock`s.

A ResNet-50 modernised step by step: a "patchify" stem (a 4x4 convolution of stride 4
and a layer normalisation), stages of (3, 3, 9, 3) blocks, layer normalisation and a 2x2
convolution of stride 2 to downsample (held by each stage's first block), and a
classifier that normalises the pooled features. The layers and their order are
keras.applications' `ConvNeXtTiny(include_preprocessing=False)`'s, so the weights
interchange: `ours.set_weights(reference.get_weights())`.
"""

from __future__ import annotations

import numpy as np
from keras import layers

from resnet_keras._validation import check_number
from resnet_keras.layers import ConvNeXtBlock
from resnet_keras.models.imagenet import (
    _SIGNATURE_DOC,
    _check_arguments,
    _image_input,
    _model,
    _top,
)

# (blocks per stage, channels per stage) of ConvNeXt-T, the paper's Sec. 2.6.
TINY = ((3, 3, 9, 3), (96, 192, 384, 768))
LAYER_NORM_EPSILON = 1e-6


def ConvNeXtTiny(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    drop_path_rate=0.0,
    layer_scale_init_value=1e-6,
    name=None,
):
    _check_arguments(include_top, weights, input_tensor, input_shape, pooling, classes)
    if weights == "imagenet":
        raise ValueError(
            "`weights='imagenet'` is not offered for ConvNeXt here: load keras.applications' "
            "ConvNeXtTiny(weights='imagenet', include_preprocessing=False) and transfer its "
            "weights with `set_weights(reference.get_weights())`, or pass a weights file "
            "saved from this model."
        )
    check_number("drop_path_rate", drop_path_rate, minimum=0, maximum=1, open_maximum=True)
    stage_blocks, stage_filters = TINY
    # Stochastic depth grows linearly with depth, from 0 to `drop_path_rate` (the paper's
    # and keras.applications' schedule).
    rates = iter(np.linspace(0.0, drop_path_rate, sum(stage_blocks)).tolist())

    inputs = _image_input(input_tensor, input_shape, include_top)
    x = layers.Conv2D(stage_filters[0], 4, strides=4, name="stem_conv")(inputs)
    x = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="stem_norm")(x)
    for stage, (filters, blocks) in enumerate(zip(stage_filters, stage_blocks), start=1):
        for index in range(1, blocks + 1):
            x = ConvNeXtBlock(
                filters,
                strides=2 if (stage > 1 and index == 1) else 1,
                layer_scale_init_value=layer_scale_init_value,
                drop_path_rate=next(rates),
                layer_norm_epsilon=LAYER_NORM_EPSILON,
                name=f"stage{stage}_block{index}",
            )(x)
    head_norm = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="head_norm")
    x = _top(x, include_top, pooling, classes, classifier_activation, normalization=head_norm)
    model = _model(inputs, x, input_tensor, name or "convnext_tiny")
    if weights is not None:
        model.load_weights(weights)
    return model


_ARGUMENTS_DOC = _SIGNATURE_DOC.replace(
    '(random initialisation), "imagenet" (downloaded by\n            keras.applications, '
    "needs a network) or",
    "(random initialisation) or",
).replace(
    "        name: model name.\n",
    """        drop_path_rate: the stochastic depth of the last block (0.1 for ConvNeXt-T in
            the paper's training); earlier blocks get linearly less.
        layer_scale_init_value: initial layer scale of every block (1e-6), or None.
        name: model name.
""",
)

ConvNeXtTiny.__doc__ = f"""ConvNeXt-T: blocks (3, 3, 9, 3) of 96, 192, 384 and 768 channels.

    The same network as torchvision's `convnext_tiny` (28,589,128 parameters) and
    keras.applications' `ConvNeXtTiny`, whose weights it takes; images are expected
    normalised already (keras.applications' `include_preprocessing=False`).
{_ARGUMENTS_DOC}
    Examples:

    >>> import keras
    >>> from resnet_keras.models import ConvNeXtTiny
    >>> ours = ConvNeXtTiny(input_shape=(64, 64, 3))
    >>> reference = keras.applications.ConvNeXtTiny(
    ...     weights=None, include_preprocessing=False, input_shape=(64, 64, 3))
    >>> ours.set_weights(reference.get_weights())
    >>> ours.count_params()
    28589128
"""
