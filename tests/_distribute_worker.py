"""A training process for the data-parallel tests: `rk.fit` on one device and on two.

    KERAS_BACKEND=tensorflow python tests/_distribute_worker.py OUT
    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=2 \
        python tests/_distribute_worker.py OUT

Two CPU devices stand in for two GPUs: TensorFlow splits the CPU into two logical devices
(which must happen before TensorFlow initialises, hence a fresh process), JAX is told by
XLA_FLAGS to expose two host devices. The process trains the same tiny ResNet from the same
seed on the same global batches: on one device, on two with synchronised batch
normalisation, on two with per-replica batch normalisation, and on two with synchronised
batch normalisation stopped after one epoch and resumed from its run folder; it writes each
run's initial and final weights to OUT/<run>.npz, and the messages of the bad combinations to
OUT/errors.json.
"""

from __future__ import annotations  # noqa: I001 - TensorFlow's devices before anything runs

import argparse
import json
import os
import sys

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
if BACKEND == "tensorflow":
    import tensorflow as tf

    # Before any TensorFlow operation: afterwards the devices cannot change.
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import resnet_keras as rk  # noqa: E402
from resnet_keras.training import distribute  # noqa: E402

BATCH = 16
EXAMPLES = 64  # 4 global batches per epoch
EPOCHS = 2


def dataset(batch=BATCH):
    """Fixed synthetic images whose labels depend on them (so that training moves)."""
    rng = np.random.default_rng(0)
    images = rng.normal(size=(EXAMPLES, 8, 8, 3)).astype("float32")
    labels = (images.mean(axis=(1, 2, 3)) > 0).astype("int32") + 2 * (images[:, 0, 0, 0] > 0)
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch)


def train(devices, synchronized, **fit_arguments):
    """Initial and final weights of one run of `rk.fit` in a fresh Keras session."""
    keras.backend.clear_session()
    rk.set_determinism(0)
    with distribute.distributed(devices=devices) as distribution:
        model = rk.CifarResNet(8, num_classes=4, input_shape=(8, 8, 3))
    initial = [keras.ops.convert_to_numpy(weight) for weight in model.weights]
    rk.fit(
        model,
        dataset(),
        epochs=EPOCHS,
        distribution=distribution,
        synchronized_batch_norm=synchronized,
        verbose=0,
        **fit_arguments,
    )
    return initial, [keras.ops.convert_to_numpy(weight) for weight in model.weights]


class StopAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True


def train_resumed(out):
    """Two devices, stopped after one epoch and resumed from `out` by a fresh model."""
    folder = {"out_dir": out, "validation_data": dataset()}
    train(2, True, callbacks=[StopAfterFirstEpoch()], **folder)
    return train(2, True, **folder)


def save(path, initial, final):
    np.savez(path, *initial, *final)


def message(function):
    try:
        function()
    except ValueError as error:
        return str(error)
    return None


def bad_combinations():
    """The ValueError messages of the combinations that cannot work."""
    other = "data_parallel" if BACKEND == "tensorflow" else "mirrored"

    def odd_batch():
        with distribute.distributed(devices=2) as distribution:
            model = rk.CifarResNet(8, num_classes=4, input_shape=(8, 8, 3))
        rk.fit(model, dataset(batch=15), epochs=1, distribution=distribution, verbose=0)

    def outside_scope():
        model = rk.CifarResNet(8, num_classes=4, input_shape=(8, 8, 3))
        rk.fit(model, dataset(), epochs=1, distribution=distribute.data_parallel(2), verbose=0)

    return {
        "too_many_devices": message(lambda: distribute.data_parallel(devices=3)),
        "other_engine": message(lambda: distribute.data_parallel(devices=2, engine=other)),
        "odd_batch": message(odd_batch),
        "outside_scope": message(outside_scope),
    }


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    runs = {"one": (1, False), "two_sync": (2, True), "two_per_replica": (2, False)}
    if BACKEND == "tensorflow":
        # Synchronised BN uses Keras' ops, not the fused kernel: its one-device rounding.
        runs["one_sync"] = (1, True)
    for name, (devices, synchronized) in runs.items():
        save(os.path.join(args.out, f"{name}.npz"), *train(devices, synchronized))
    resumed = train_resumed(os.path.join(args.out, "resumed_run"))
    save(os.path.join(args.out, "two_sync_resumed.npz"), *resumed)
    with open(os.path.join(args.out, "errors.json"), "w") as handle:
        json.dump(bad_combinations(), handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
