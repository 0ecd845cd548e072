"""Transfer learning: a trained network's features under a new head, frozen, then fine-tuned.

The recipe of the Keras guide "Transfer learning & fine-tuning", as three small functions:
`feature_extractor` cuts a trained classifier below its head, `new_classifier` puts a new
head on it, and `unfreeze` makes the base (or only its top blocks, for gradual unfreezing)
trainable again. Keras' own `trainable` flags do the freezing; what these functions add is
the one decision that is easy to get wrong, in one place: `unfreeze` leaves the
BatchNormalization layers frozen, so they keep the statistics they were trained with.

Examples:

>>> import resnet_keras as rk
>>> base = rk.transfer.feature_extractor(rk.CifarResNet(20))
>>> base.output_shape
(None, 64)
>>> model = rk.transfer.new_classifier(base, num_classes=5)
>>> base.trainable, len(model.trainable_weights)
(False, 2)
>>> rk.transfer.unfreeze(base, from_layer="stage3_block1")
['stage3_block1', 'stage3_block2', 'stage3_block3']
"""

from __future__ import annotations

import keras

from resnet_keras._keras_compat import sublayers
from resnet_keras._validation import (
    check_bool,
    check_choice,
    check_instance,
    check_number,
    check_positive_int,
)

__all__ = ["feature_extractor", "new_classifier", "unfreeze"]


def feature_extractor(model, layer=None, *, name=None):
    """The part of a trained classifier below its head: images in, features out.

    Args:
        model: A functional `keras.Model` (e.g. `CifarResNet`, `ResNet50`, or one loaded from
            a `.keras` file).
        layer: Name of the layer whose output becomes the features; default: the input of the
            last `Dense` layer (the pooled features of a ResNet).
        name: Name of the new model (default `"<model name>_features"`).

    Returns:
        A `keras.Model` sharing `model`'s layers and weights (training it trains them).

    Raises:
        TypeError: If `model` is not a functional `keras.Model`.
        ValueError: If `layer` is not a layer of `model`, or no `Dense` layer is found.

    Examples:
        >>> import resnet_keras as rk
        >>> rk.transfer.feature_extractor(rk.CifarResNet(20), layer="stage2_block3").output_shape
        (None, 16, 16, 32)
    """
    check_instance("model", model, keras.Model, "a keras.Model")
    if not getattr(model, "inputs", None):  # a subclassed model has no graph to cut
        raise TypeError(f"`model` must be a functional keras.Model; received {model!r}.")
    names = [each.name for each in model.layers]
    if layer is None:
        dense = [each for each in model.layers if isinstance(each, keras.layers.Dense)]
        if not dense:
            raise ValueError(
                f"`model` {model.name!r} has no Dense head to cut; pass `layer`, one of "
                f"{names[1:]}."
            )
        outputs = dense[-1].input
    else:
        outputs = model.get_layer(check_choice("layer", layer, names)).output
    return keras.Model(model.inputs, outputs, name=name or f"{model.name}_features")


def new_classifier(base, num_classes, *, dropout=0.0, freeze_base=True, name=None):
    """A new head (dropout, then a Dense layer of logits) on a feature extractor.

    The base is called with `training=False`, as the Keras guide writes it; but in Keras 3 a
    functional model passes its own `training` flag down to every layer it calls, so once the
    base is unfrozen `fit` runs its BatchNormalization layers in training mode all the same
    (keras-team/keras#20285). What keeps them in inference mode is their own `trainable`
    flag: `unfreeze` leaves them frozen.

    Args:
        base: A `keras.Model` from images to a feature vector (see `feature_extractor`).
        num_classes: Classes of the new task (>= 2).
        dropout: Dropout rate in [0, 1) before the new head.
        freeze_base: Sets `base.trainable = False` (feature extraction); `unfreeze` later.
        name: Name of the new model (default `"<base name>_transfer"`).

    Returns:
        A `keras.Model` from images to `num_classes` logits; compile it (again after each
        change of `trainable`) and train it.

    Raises:
        TypeError: If `base` is not a `keras.Model`.
        ValueError: For `num_classes` < 2, a `dropout` outside [0, 1), or a base whose
            output is not a feature vector.

    Examples:
        >>> import resnet_keras as rk
        >>> base = rk.transfer.feature_extractor(rk.CifarResNet(20))
        >>> rk.transfer.new_classifier(base, num_classes=5).output_shape
        (None, 5)
    """
    check_instance("base", base, keras.Model, "a keras.Model")
    check_positive_int("num_classes", num_classes)
    if num_classes < 2:
        raise ValueError(f"`num_classes` must be at least 2; received {num_classes}.")
    check_number("dropout", dropout, minimum=0, maximum=1, open_maximum=True)
    check_bool("freeze_base", freeze_base)
    if len(base.output_shape) != 2:
        raise ValueError(
            f"`base` must output one feature vector per image, (batch, features); its output "
            f"shape is {base.output_shape}. Cut it at a pooling layer (`feature_extractor`)."
        )
    if freeze_base:
        base.trainable = False
    inputs = keras.Input(shape=base.input_shape[1:], name="images")
    features = base(inputs, training=False)
    if dropout:
        features = keras.layers.Dropout(dropout, name="head_dropout")(features)
    outputs = keras.layers.Dense(num_classes, name="new_logits", dtype="float32")(features)
    return keras.Model(inputs, outputs, name=name or f"{base.name}_transfer")


def unfreeze(base, from_layer=None, *, batch_norm=False):
    """Makes a frozen base trainable, whole or from one layer up (gradual unfreezing).

    Layers below `from_layer` stay frozen, and so, by default, does every BatchNormalization
    layer: a frozen BatchNormalization layer runs in inference mode, with the statistics of
    the data it was trained on, whatever `training` flag reaches it. Unfrozen, it normalises
    each fine-tuning batch by that batch's own statistics and pulls its moving statistics
    towards them, so the features the new head was trained on change under it: the trap that
    `batch_norm=True` sets, to measure it. Keras reads `trainable` when a model is compiled:
    compile the model again after calling this (with a lower learning rate, since the base
    is already trained).

    Args:
        base: The `keras.Model` under the new head.
        from_layer: Name of the lowest layer of `base` to make trainable (e.g.
            "stage3_block1" for the last stage of a CIFAR ResNet); None unfreezes them all.
        batch_norm: Whether BatchNormalization layers become trainable too (False: they
            stay frozen, in inference mode).

    Returns:
        The names of the layers (of `base`, with weights) now trainable, bottom to top.

    Raises:
        TypeError: If `base` is not a `keras.Model`.
        ValueError: If `from_layer` is not a layer of `base`.

    Examples:
        >>> import resnet_keras as rk
        >>> base = rk.transfer.feature_extractor(rk.CifarResNet(20))
        >>> len(rk.transfer.unfreeze(base))  # the stem's convolution and BN, 9 blocks
        11
        >>> base.get_layer("stem_bn").trainable
        False
    """
    check_instance("base", base, keras.Model, "a keras.Model")
    check_bool("batch_norm", batch_norm)
    layers = [each for each in base.layers if not isinstance(each, keras.layers.InputLayer)]
    names = [each.name for each in layers]
    start = 0 if from_layer is None else names.index(check_choice("from_layer", from_layer, names))
    # The model itself must be trainable for any layer inside it to train. Each layer inside
    # is set explicitly: Keras passes a block's flag down only when the flag changes, so a
    # block unfrozen earlier would keep the frozen layers inside it.
    base.trainable = True
    for index, layer in enumerate(layers):
        for each in (layer, *sublayers(layer, recursive=True)):
            is_batch_norm = isinstance(each, keras.layers.BatchNormalization)
            each.trainable = index >= start and (batch_norm or not is_batch_norm)
    return [layer.name for layer in layers[start:] if layer.weights]
