"""The few private Keras attributes the library reads, in one place.

Keras has no public way to get (a) the learning-rate schedule an optimizer was built with
(`optimizer.learning_rate` is its current value) or (b) the sub-layers of a layer that is
not a `keras.Model` (a residual block made of convolutions, say). Both are read here and
nowhere else; `tests/test_keras_compat.py` fails with the attribute's name when a Keras
release moves one, so the fix is made in this file.
"""

from __future__ import annotations

import keras


def learning_rate_schedule(optimizer):
    """The `LearningRateSchedule` an optimizer follows, or None for a constant rate.

    A `LossScaleOptimizer` (mixed precision) is looked through to the optimizer it wraps.

    Examples:
        >>> schedule = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=10)
        >>> learning_rate_schedule(keras.optimizers.SGD(schedule)) is schedule
        True
        >>> learning_rate_schedule(keras.optimizers.SGD(0.1)) is None
        True
    """
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    schedule = getattr(optimizer, "_learning_rate", None)
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        return schedule
    return None


def sublayers(layer, recursive=False):
    """The layers a layer is made of, in the order they were created.

    Args:
        layer: A Keras layer or model.
        recursive: Also the sub-layers of the sub-layers, depth first (parents first).

    Examples:
        >>> import resnet_keras as rk
        >>> block = rk.BasicBlock(16)
        >>> block.build((None, 8, 8, 16))  # a block makes its layers when it is built
        >>> [type(child).__name__ for child in sublayers(block)][:2]
        ['Conv2D', 'FusedBatchNormalization']
    """
    children = list(layer.layers if isinstance(layer, keras.Model) else layer._layers)
    if not recursive:
        return children
    found = []
    for child in children:
        found.append(child)
        found.extend(sublayers(child, recursive=True))
    return found
