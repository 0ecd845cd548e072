"""The private Keras attributes of resnet_keras._keras_compat are where it reads them.

When a Keras release moves one, these tests fail with its name: fix _keras_compat.py.
"""

import keras

import resnet_keras as rk
from resnet_keras import _keras_compat


def test_an_optimizer_keeps_its_schedule_in_learning_rate():
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([9], [0.1, 0.01])
    optimizer = keras.optimizers.SGD(schedule)
    assert hasattr(optimizer, "_learning_rate"), "Keras moved optimizer._learning_rate"
    assert _keras_compat.learning_rate_schedule(optimizer) is schedule
    wrapped = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(schedule))
    assert _keras_compat.learning_rate_schedule(wrapped) is schedule
    assert _keras_compat.learning_rate_schedule(keras.optimizers.SGD(0.1)) is None


def test_a_layer_lists_the_layers_it_tracks_in_layers():
    block = rk.BasicBlock(16, strides=2, shortcut="B")
    block.build((None, 8, 8, 8))
    assert hasattr(block, "_layers"), "Keras moved Layer._layers"
    children = _keras_compat.sublayers(block)
    assert children and all(isinstance(child, keras.layers.Layer) for child in children)
    # The recursive walk finds every convolution Keras' own (private) flattening finds.
    model = rk.CifarResNet(20)
    ours = _keras_compat.sublayers(model, recursive=True)
    keras_own = list(model._flatten_layers(include_self=False, recursive=True))
    assert {id(layer) for layer in ours} == {id(layer) for layer in keras_own}
    convolutions = [layer for layer in ours if isinstance(layer, keras.layers.Conv2D)]
    assert len(convolutions) == 19  # ResNet-20: 19 convolutions and the classifier
