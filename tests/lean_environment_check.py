"""Run by `make test-lean` in a fresh environment that has only resnet_keras, keras, numpy and jax.

Not a pytest module (pytest runs in the full environment): this script is the learner on a
JAX-only machine. It checks that the optional packages are really absent, then imports the
library, builds and trains a residual network, seeds it, saves it and loads it back.
"""

import importlib.util
import os
import sys
import tempfile

import numpy as np

OPTIONAL = ("tensorflow", "tensorflow_datasets", "matplotlib", "sklearn", "torch")
present = [name for name in OPTIONAL if importlib.util.find_spec(name) is not None]
assert not present, f"this environment should not have {present}"
assert os.environ.get("KERAS_BACKEND") == "jax", "run with KERAS_BACKEND=jax"

import keras  # noqa: E402

import resnet_keras as rk  # noqa: E402

assert "resnet_keras.course" not in sys.modules

rk.set_determinism(0)
inputs = keras.Input((8, 8, 3))
x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
x = rk.BasicBlock(8)(x)
x = rk.BasicBlock(16, strides=2)(x)
outputs = keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(x))
model = keras.Model(inputs, outputs)
model.compile(
    optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
)
rng = np.random.default_rng(0)
images = rng.normal(size=(64, 8, 8, 3)).astype("float32")
labels = (images[:, :4, :4, 0].mean(axis=(1, 2)) > 0).astype("int32") * 2
losses = model.fit(images, labels, batch_size=16, epochs=8, verbose=0).history["loss"]
# 8 epochs on 64 images with a learnable label: the loss falls well below its start.
assert losses[-1] < 0.7 * losses[0], losses

cifar = rk.CifarResNet(20)
assert rk.count_trainable_params(cifar) == 269_722  # the paper's 0.27M (Table 6)
path = os.path.join(tempfile.mkdtemp(), "model.keras")
model.save(path)
restored = keras.saving.load_model(path, safe_mode=True)
np.testing.assert_allclose(restored.predict(images, verbose=0), model.predict(images, verbose=0))
assert not [name for name in OPTIONAL if name in sys.modules]
print(
    f"lean environment: keras {keras.__version__} on {keras.config.backend()}, loss "
    f"{losses[0]:.3f} -> {losses[-1]:.3f}, ResNet-20 with 269,722 parameters, saved and loaded"
)
