"""`fit` makes the optimizer's state before a new model's first training step is traced.

Keras 3 on TensorFlow creates a missing optimizer state (the momentum buffers) inside
the first trace of the training step, and a `tf.function` that creates variables on its
first call is traced a second time (tensorflow#48851). Tracing is most of a new model's
first step (ResNet-20: 3.4 s with one trace, 6.6 s with two; benchmarks/RESULTS.md,
"first step"). These tests count traces of the library's network set up as `fit` sets it
up (the paper recipe, weight decay, metric); they do not time anything.
"""

import keras
import pytest

import resnet_keras as rk
from resnet_keras.data import synthetic
from resnet_keras.training import fit, get_recipe
from resnet_keras.training.trainer import _compile_with_recipe

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="fit and its trainer run on TensorFlow"
)


def _count_traces(model):
    """Records, for each trace of `model.train_step`, whether the optimizer was built then."""
    traces = []
    keras_train_step = model.train_step

    def train_step(data):
        traces.append(model.optimizer.built)
        return keras_train_step(data)

    model.train_step = train_step
    return traces


def test_fit_traces_a_new_resnet_once_with_the_optimizer_state_made_first():
    model = rk.CifarResNet(8)
    traces = _count_traces(model)
    fit(model, synthetic(8, 4, seed=0), epochs=2, verbose=0)
    # One trace, and the momentum buffers existed before it began.
    assert traces == [True]
    assert int(model.optimizer.iterations) == 4


def test_without_the_state_made_first_keras_traces_the_step_twice():
    # What `fit`'s setup avoids: compiled as `fit` compiles, but the state left to Keras.
    # If this stops failing to trace twice, Keras changed and the guard may be moot.
    model = rk.CifarResNet(8)
    _compile_with_recipe(model, get_recipe("paper"), 10, False, 1)
    traces = _count_traces(model)
    images, labels = synthetic(4, 4, seed=0, as_numpy=True)
    model.train_on_batch(images, labels)
    assert traces == [False, True]
