"""The seed article's model, translated from PyTorch, and its residual fix.

The article calls its example `ResNet`, but the network has no shortcut at
all: three 3x3 convolutions (3 -> 64 -> 128 -> 256 channels, bias, ReLU),
a mean over the spatial axes and a dense layer to 10 classes. `SeedNet` is
that network exactly; `SeedResNet` adds the missing shortcuts and nothing else.
"""

from __future__ import annotations

import keras
from keras import layers

from resnet_keras._validation import check_choice, check_positive_int
from resnet_keras.layers import ParameterFreeShortcut

SEED_FILTERS = (64, 128, 256)


def _check(num_classes, input_shape, filters, repeats):
    check_positive_int("num_classes", num_classes)
    if len(tuple(input_shape)) != 3:
        raise ValueError(
            f"`input_shape` must be (height, width, channels); received {input_shape!r}."
        )
    filters = tuple(filters) if isinstance(filters, (list, tuple)) else (filters,)
    if not filters or not all(
        isinstance(f, int) and not isinstance(f, bool) and f > 0 for f in filters
    ):
        raise ValueError(
            "`filters` must be a sequence of positive ints, e.g. (64, 128, 256); "
            f"received {filters!r}."
        )
    check_positive_int("repeats", repeats)
    # Each width of `filters`, `repeats` times in a row (the article: three convolutions).
    return [width for width in filters for _ in range(repeats)]


def SeedNet(
    num_classes=10, input_shape=(32, 32, 3), filters=SEED_FILTERS, repeats=1, name="seednet"
):
    """The seed article's "ResNet", exactly as written: no skip connection.

    PyTorch's `nn.Conv2d(..., padding=1)` is `Conv2D(..., padding="same")`
    here (stride 1), with a bias, as PyTorch's default; `torch.mean` over the
    two spatial axes is global average pooling; `fc1` returns logits for
    `nn.CrossEntropyLoss`, i.e. `from_logits=True` in Keras.

    `repeats` stacks the article's layer deeper without changing its kind: each width of
    `filters` becomes `repeats` convolutions in a row (3x3, bias, ReLU, no normalisation),
    the network the article's missing skip connection cannot train (notebook 07).

    Args:
        num_classes: outputs of `fc1`.
        input_shape: image shape, channels last.
        filters: the widths of the convolutions, (64, 128, 256) in the article.
        repeats: convolutions per width; 1 is the article's network.
        name: model name.

    Returns:
        A `keras.Model` with 373,386 parameters for 10 classes and the defaults.

    Examples:

    >>> import resnet_keras as rk
    >>> rk.SeedNet().count_params()
    373386
    >>> deep = rk.SeedNet(filters=(16, 32, 64), repeats=7)  # 21 convolutions
    >>> sum(isinstance(layer, keras.layers.Conv2D) for layer in deep.layers)
    21
    """
    widths = _check(num_classes, input_shape, filters, repeats)
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    x = inputs
    for index, width in enumerate(widths, start=1):
        x = layers.Conv2D(width, 3, padding="same", activation="relu", name=f"conv{index}")(x)
    x = layers.GlobalAveragePooling2D(name="mean")(x)
    outputs = layers.Dense(num_classes, name="fc1", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def SeedResNet(
    num_classes=10,
    input_shape=(32, 32, 3),
    shortcut="A",
    filters=SEED_FILTERS,
    repeats=1,
    name="seedresnet",
):
    """The seed network made residual: y = ReLU(conv(x) + shortcut(x)).

    `conv1` stays a plain stem (3 input channels carry no features worth
    keeping); every later convolution gets a shortcut. With option "A" (the default)
    the shortcut zero-pads the new channels, so the model has exactly
    SeedNet's parameters and the addition is the only difference; option "B"
    uses 1x1 projections where the width changes instead.

    Args:
        num_classes: outputs of `fc1`.
        input_shape: image shape, channels last.
        shortcut: "A" (zero-padding, no parameters) or "B" (1x1 projection).
        filters: the widths of the convolutions, (64, 128, 256) in the article.
        repeats: convolutions per width, as in `SeedNet`.
        name: model name.

    Returns:
        A `keras.Model` mapping images to logits.

    Examples:

    >>> import resnet_keras as rk
    >>> rk.SeedResNet().count_params() == rk.SeedNet().count_params()
    True
    >>> deep = dict(filters=(16, 32, 64), repeats=7)
    >>> rk.SeedResNet(**deep).count_params() == rk.SeedNet(**deep).count_params()
    True
    """
    widths = _check(num_classes, input_shape, filters, repeats)
    check_choice("shortcut", shortcut, ("A", "B"))
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    x = layers.Conv2D(widths[0], 3, padding="same", activation="relu", name="conv1")(inputs)
    for index, width in enumerate(widths[1:], start=2):
        branch = layers.Conv2D(width, 3, padding="same", name=f"conv{index}")(x)
        if shortcut == "A" or width == int(x.shape[-1]):
            identity = ParameterFreeShortcut(width, name=f"shortcut{index}")(x)
        else:
            identity = layers.Conv2D(width, 1, name=f"shortcut{index}")(x)
        x = layers.Add(name=f"add{index}")([branch, identity])
        x = layers.ReLU(name=f"relu{index}")(x)
    x = layers.GlobalAveragePooling2D(name="mean")(x)
    outputs = layers.Dense(num_classes, name="fc1", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)
