"""The runs of notebook 11, "Scaling out": data parallelism on two devices, and large batches.

Two CPU devices stand in for two GPUs. TensorFlow splits a CPU into logical devices only
before it initialises, and a notebook's kernel has initialised it long before, so each run
happens in a worker process (`experiments.run_parallel`), which calls `use_cpu_devices`
before anything else touches TensorFlow:

- `train_on_devices` trains one ResNet from one seed on the same global batches of the digits
  on one device or two, with batch normalisation per replica (the paper's) or synchronised,
  and returns its weights, for the notebook to compare;
- `train_at_batch` trains one ResNet at a batch size and learning rate with a linear
  warm-up, for the linear scaling rule of Goyal et al. (2017);
- `tiny_runs` trains a tiny ResNet on one device and on two with the `rk.fit` arguments a
  learner chose, for the checker of the notebook's second exercise.
"""

from __future__ import annotations

import time

from resnet_keras import _validation

__all__ = [
    "DEVICE_RUNS",
    "max_difference",
    "relative_distance",
    "tiny_runs",
    "train_at_batch",
    "train_on_devices",
    "use_cpu_devices",
]

DEVICE_RUNS = {
    "one device": (1, False),
    "one device, synchronised BN": (1, True),
    "two devices, synchronised BN": (2, True),
    "two devices, per-replica BN": (2, False),
}
"""The runs `train_on_devices` is asked for: name -> (devices, synchronized_batch_norm)."""

_DEVICE_KEYS = ("image_size", "depth", "train_size", "epochs", "batch_size", "learning_rate")
_BATCH_KEYS = ("image_size", "depth", "train_size", "epochs")


def _check_budget(budget, keys):
    missing = [key for key in keys if key not in budget]
    if missing:
        raise ValueError(f"`budget` must have the keys {keys}; missing {missing}.")
    return budget


def use_cpu_devices(count=2):
    """Splits this process's CPU into `count` logical TensorFlow devices (once per process).

    It also hides any GPU from this process, so that every run of the notebook is on the same
    kind of device in every profile (and two worker processes never compete for one GPU's
    memory).

    Args:
        count: the logical CPU devices wanted.

    Returns:
        The number of logical CPU devices TensorFlow now has.

    Raises:
        RuntimeError: if TensorFlow already started with fewer devices (split the CPU
            before the first TensorFlow operation: in a fresh process).
    """
    count = _validation.check_positive_int("count", count)
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_visible_devices([], "GPU")
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count
        )
    except RuntimeError:
        # Already initialised: fine if an earlier call of this worker process split it.
        pass
    have = len(tf.config.list_logical_devices("CPU"))
    if have < count:
        raise RuntimeError(
            f"TensorFlow started with {have} CPU device(s) before {count} could be made; "
            "call use_cpu_devices in a fresh process, before any TensorFlow operation."
        )
    return have


def _digits(batch_size, train_size, image_size, seed=0):
    from resnet_keras import data
    from resnet_keras.course.budgets import shrink

    loaded = data.load(
        "digits",
        batch_size=batch_size,
        train_size=train_size,
        validation_size=0,
        augment=False,
        seed=seed,
    )
    return loaded.info, shrink(loaded.train, image_size), shrink(loaded.test, image_size)


def train_on_devices(devices, synchronized, budget, seed=0):
    """Trains a ResNet on the digits on `devices` CPU devices; returns its weights.

    The same seed, the same global batches (`budget["batch_size"]`, split over the devices)
    and `rk.fit`'s paper recipe at `budget["learning_rate"]` whatever the devices: only the
    engine and the batch normalisation differ.

    Args:
        devices: 1 or 2 (the process's CPU is split into two logical devices first).
        synchronized: `rk.fit(synchronized_batch_norm=...)`: normalise over the global batch.
        budget: notebook 11's `devices` budget.
        seed: the seed of the weights and of the data order.

    Returns:
        A dict with the `initial` and `final` weights (lists of arrays), the per-epoch
        training `loss`, the `replicas`, the `test_accuracy` and the `seconds` of training.
    """
    use_cpu_devices(2)
    import keras
    import numpy as np

    import resnet_keras as rk
    from resnet_keras.training import distribute

    budget = _check_budget(budget, _DEVICE_KEYS)
    info, train, test = _digits(
        budget["batch_size"], budget["train_size"], budget["image_size"], seed
    )
    side = budget["image_size"]
    keras.backend.clear_session()
    rk.set_determinism(seed)
    with rk.training.distributed(devices=devices) as distribution:
        model = rk.CifarResNet(
            budget["depth"], num_classes=info.num_classes, input_shape=(side, side, 3)
        )
    initial = [np.array(keras.ops.convert_to_numpy(w)) for w in model.weights]
    start = time.perf_counter()
    history = rk.fit(
        model,
        train,
        epochs=budget["epochs"],
        learning_rate=budget["learning_rate"],
        distribution=distribution,
        synchronized_batch_norm=synchronized,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    final = [np.array(keras.ops.convert_to_numpy(w)) for w in model.weights]
    scores = model.evaluate(test, verbose=0, return_dict=True)
    return {
        "initial": initial,
        "final": final,
        "loss": list(history.history["loss"]),
        "replicas": distribute.replicas(distribution),
        "test_accuracy": float(scores["accuracy"]),
        "seconds": seconds,
    }


def train_at_batch(batch_size, learning_rate, warmup_epochs, seeds, budget):
    """Trains a ResNet on the digits at one batch size and peak learning rate, once per seed.

    The recipe is `rk.get_recipe("cosine")` (SGD with momentum 0.9, coupled weight decay
    1e-4, a linear warm-up from 0 to `learning_rate`, then cosine decay to 0) for the same
    number of epochs whatever the batch size, so a larger batch takes fewer, larger steps.
    The images come in the same order for every seed; only the initial weights differ. The
    first seed goes through `rk.fit`, the later ones reuse its compiled model, restarted
    (as `experiments.train_cifar_network` does: tracing is much of a short run's time).

    Args:
        batch_size: images per step.
        learning_rate: the peak learning rate.
        warmup_epochs: epochs of linear warm-up (a fraction is fine; at most a tenth of the
            run, `Recipe`'s cap).
        seeds: the seeds of the initial weights, e.g. `(0, 1, 2)`.
        budget: notebook 11's `batches` budget.

    Returns:
        One dict per seed with the `test_accuracy`, the last epoch's training `loss`, the
        `steps` and the `seconds` of training.
    """
    use_cpu_devices(2)  # as every worker of this notebook: the same kernels, wherever it runs
    import resnet_keras as rk
    from resnet_keras.course.experiments import _restart, _seeds
    from resnet_keras.training import EpochSetter, default_callbacks

    budget = _check_budget(budget, _BATCH_KEYS)
    info, train, test = _digits(batch_size, budget["train_size"], budget["image_size"])
    steps_per_epoch = int(train.cardinality())
    recipe = rk.training.get_recipe("cosine").replace(
        name=f"cosine, batch {batch_size}",
        learning_rate=learning_rate,
        warmup_steps=round(warmup_epochs * steps_per_epoch),
    )
    side = budget["image_size"]
    compiled, runs = None, []
    for seed in _seeds(seeds):
        rk.set_determinism(seed)
        model = rk.CifarResNet(
            budget["depth"], num_classes=info.num_classes, input_shape=(side, side, 3)
        )
        start = time.perf_counter()
        if compiled is None:
            history = rk.fit(model, train, epochs=budget["epochs"], recipe=recipe, verbose=0)
            compiled = model
        else:
            model = _restart(compiled, model)
            history = model.fit(
                train,
                epochs=budget["epochs"],
                callbacks=[EpochSetter(train), *default_callbacks(None, monitor="accuracy")],
                shuffle=False,
                verbose=0,
            )
        seconds = time.perf_counter() - start
        scores = model.evaluate(test, verbose=0, return_dict=True)
        runs.append(
            {
                "batch_size": batch_size,
                "learning_rate": learning_rate,
                "seed": seed,
                "test_accuracy": float(scores["accuracy"]),
                "loss": float(history.history["loss"][-1]),
                "steps": steps_per_epoch * budget["epochs"],
                "seconds": seconds,
            }
        )
    return runs


def max_difference(first, second):
    """The largest absolute difference between two lists of weight arrays.

    Examples:

    >>> import numpy as np
    >>> max_difference([np.zeros(2)], [np.array([0.0, -0.5])])
    0.5
    """
    import numpy as np

    return max(float(np.max(np.abs(a - b))) for a, b in zip(first, second, strict=True))


def relative_distance(first, second, initial):
    """How far apart two trained networks are, as a fraction of how far training moved `first`.

    `|first - second| / |first - initial|` over all the weights together (Euclidean norms):
    0 for the same network, about 1 for a network as far from `first` as its start was.

    Examples:

    >>> import numpy as np
    >>> round(relative_distance([np.ones(4)], [np.ones(4) * 1.1], [np.zeros(4)]), 6)
    0.1
    """
    import numpy as np

    def norm(pairs):
        return float(np.sqrt(sum(np.sum((a - b) ** 2) for a, b in pairs)))

    apart = norm(zip(first, second, strict=True))
    moved = norm(zip(first, initial, strict=True))
    return apart / moved if moved else float("inf")


TINY = dict(examples=64, batch_size=16, epochs=2, learning_rate=0.1)
"""The tiny problem of `tiny_runs`: 64 random 8x8 images, 4 classes, 8 steps of 16."""


def _tiny_dataset(batch_size):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = rng.normal(size=(TINY["examples"], 8, 8, 3)).astype("float32")
    # Labels that depend on the images, so that training moves the weights.
    labels = (images.mean(axis=(1, 2, 3)) > 0).astype("int32") + 2 * (images[:, 0, 0, 0] > 0)
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)


def _tiny_run(devices, batch_size, learning_rate, synchronized_batch_norm):
    import keras
    import numpy as np

    import resnet_keras as rk

    keras.backend.clear_session()
    rk.set_determinism(0)
    with rk.training.distributed(devices=devices) as distribution:
        model = rk.CifarResNet(8, num_classes=4, input_shape=(8, 8, 3))
    initial = [np.array(keras.ops.convert_to_numpy(w)) for w in model.trainable_weights]
    rk.fit(
        model,
        _tiny_dataset(batch_size),
        epochs=TINY["epochs"],
        learning_rate=learning_rate,
        distribution=distribution,
        synchronized_batch_norm=synchronized_batch_norm,
        verbose=0,
    )
    final = [np.array(keras.ops.convert_to_numpy(w)) for w in model.trainable_weights]
    return initial, final


def tiny_runs(batch_size, learning_rate, synchronized_batch_norm):
    """A tiny ResNet trained on one device (`TINY`'s settings) and on two (the given ones).

    Args:
        batch_size: the batch size of the two-device run's dataset.
        learning_rate: its `rk.fit(learning_rate=...)`.
        synchronized_batch_norm: its `rk.fit(synchronized_batch_norm=...)`.

    Returns:
        A dict with the `difference` (the largest of any trainable weight) between the two
        trained networks and how far training `moved` the one-device network.
    """
    use_cpu_devices(2)
    one_initial, one = _tiny_run(1, TINY["batch_size"], TINY["learning_rate"], False)
    _, two = _tiny_run(2, batch_size, learning_rate, synchronized_batch_norm)
    return {"difference": max_difference(one, two), "moved": max_difference(one, one_initial)}
