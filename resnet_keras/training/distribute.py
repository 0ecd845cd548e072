"""Data-parallel training on the engines Keras has: `tf.distribute` and `keras.distribution`.

Nothing here splits batches or averages gradients by hand. On the TensorFlow backend the engine
is `tf.distribute`: `MirroredStrategy` copies the model onto several devices of one host. (Across
hosts, `MultiWorkerMirroredStrategy` is TensorFlow's engine, but Keras 3's `Model.fit` cannot
train under it: its first-batch build calls `strategy.reduce` on the (images, labels) tuple,
which that strategy cannot reduce; keras-team/keras#20585. It is left out until Keras fixes
it.) On the JAX backend it is `keras.distribution.DataParallel`, which lays the model out
replicated over a device mesh and shards every batch along it. Both take the batches of a
tf.data pipeline as GLOBAL batches: with 2 devices and batch size 128 each device sees 64
images, and the gradient is that of the 128-image batch.

The model has to be CREATED under the engine (its variables become mirrored or replicated
ones), so the engine is chosen before the model is built, with the `distributed` context
manager; `resnet_keras.training.fit` then compiles and trains inside the same scope:

    with distributed(devices=2) as distribution:
        model = rk.CifarResNet(20)
    rk.fit(model, data, epochs=10, distribution=distribution)

Batch normalisation is per device by default on TensorFlow, as in the paper (He et al. 2016
normalised each GPU's share of the batch); `fit(synchronized_batch_norm=True)` makes it
normalise with the statistics of the global batch, so that the run computes what one device
with the whole batch computes. On JAX, `keras.distribution` compiles one program over the
global batch, so its batch statistics are always those of the global batch.
"""

from __future__ import annotations

import contextlib

import keras

from resnet_keras._validation import check_choice, check_positive_int

__all__ = [
    "ENGINES",
    "MULTI_PROCESS_VARIABLES",
    "data_parallel",
    "distributed",
    "distribution_scope",
    "engine_name",
    "initialize_multi_process",
    "model_distribution",
    "replicas",
    "split_host_cpu",
    "synchronized_batch_norm",
    "visible_devices",
]

ENGINES = ("auto", "mirrored", "data_parallel")
"""The values of `engine`: the backend's own ("auto"), or one by name."""

# The engines each backend has; "auto" picks the first.
_BACKEND_ENGINES = {
    "tensorflow": ("mirrored",),
    "jax": ("data_parallel",),
}

MULTI_PROCESS_VARIABLES = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)
"""The environment variables `keras.distribution.initialize()` reads (one process per host)."""

_FORCE_HOST_DEVICES = "--xla_force_host_platform_device_count"


def _backend():
    return keras.backend.backend()


def visible_devices(kind="all") -> list[str]:
    """The devices the backend's engine can place replicas on, as device names.

    Args:
        kind: "all" (the accelerators if there are any, else the CPUs, logical CPU devices
            included) or "accelerators" (GPUs and TPUs only).

    Returns:
        Device names as the engine wants them ("/device:CPU:0" on TensorFlow, "cpu:0" on JAX).

    Raises:
        ValueError: if `kind` is not "all" or "accelerators".

    Examples:
        >>> len(visible_devices()) >= 1
        True
    """
    check_choice("kind", kind, ("all", "accelerators"))
    if _backend() == "jax":
        import jax

        devices = [f"{device.platform}:{device.id}" for device in jax.devices()]
        accelerators = [name for name in devices if not name.startswith("cpu")]
    else:
        import tensorflow as tf

        accelerators = [
            device.name
            for kind_name in ("GPU", "TPU")
            for device in tf.config.list_logical_devices(kind_name)
        ]
        devices = accelerators or [device.name for device in tf.config.list_logical_devices("CPU")]
    return accelerators if kind == "accelerators" else (accelerators or devices)


def data_parallel(devices="auto", engine="auto"):
    """The backend's data-parallel engine over `devices` devices, or None for one device.

    Args:
        devices: "auto" (every GPU or TPU when there are at least two, else one device: a CPU
            already spreads each operation over its cores) or a number of devices (logical
            CPU devices count, which is how the tests run two replicas on one CPU).
        engine: "auto" (the backend's own: "mirrored" on TensorFlow, "data_parallel" on JAX),
            "mirrored" (`tf.distribute.MirroredStrategy`) or "data_parallel"
            (`keras.distribution.DataParallel`).

    Returns:
        A `tf.distribute.MirroredStrategy`, a `keras.distribution.DataParallel`, or None when
        the run is on one device.

    Raises:
        ValueError: if the backend lacks the engine or more devices are asked for than are
            visible.
        TypeError: if `devices` is neither "auto" nor an integer.

    Examples:
        >>> data_parallel(devices=1) is None
        True
        >>> with distributed(devices=2) as distribution:  # doctest: +SKIP
        ...     model = rk.CifarResNet(20)
    """
    backend = _backend()
    check_choice("engine", engine, ENGINES)
    available = _BACKEND_ENGINES.get(backend, ())
    if engine == "auto":
        engine = available[0] if available else None
    elif engine not in available:
        having = ", ".join(repr(name) for name in available) or "none"
        raise ValueError(
            f"`engine` must be an engine of the {backend} backend ({having}); received {engine!r}."
        )

    names = visible_devices()
    if devices == "auto":
        accelerators = visible_devices("accelerators")
        count = len(accelerators) if len(accelerators) > 1 else 1
    else:
        if isinstance(devices, str):
            raise TypeError(
                f"`devices` must be 'auto' or a positive integer; received {devices!r}."
            )
        count = check_positive_int("devices", devices)
        if count > len(names):
            raise ValueError(
                f"`devices` must be at most {len(names)}, the devices the {backend} backend "
                f"sees ({', '.join(names)}); received {count}."
            )
    if count == 1:
        return None
    if engine is None:
        raise ValueError(
            f"`devices` must be 1 on the {backend} backend, which has no data-parallel engine "
            f"here (TensorFlow and JAX do); received {devices!r}."
        )
    if engine == "mirrored":
        import tensorflow as tf

        # On GPUs TensorFlow's default (NCCL all-reduce). On CPUs it would pick collective ops,
        # whose instance keys clash when a process creates a second strategy (measured: "Shape
        # mismatch in the collective instance"); summing on one device is the CPU's way anyway.
        on_cpus = not visible_devices("accelerators")
        return tf.distribute.MirroredStrategy(
            devices=names[:count],
            cross_device_ops=tf.distribute.ReductionToOneDevice() if on_cpus else None,
        )
    return keras.distribution.DataParallel(devices=names[:count])


def distribution_scope(distribution):
    """The scope to create (and train) a model in under `distribution`.

    Args:
        distribution: What `data_parallel` returns: a `tf.distribute.Strategy`, a
            `keras.distribution.Distribution`, or None (one device: an empty scope).

    Returns:
        A context manager.

    Examples:
        >>> with distribution_scope(None):
        ...     pass
    """
    if distribution is None:
        return contextlib.nullcontext()
    return distribution.scope()


@contextlib.contextmanager
def distributed(devices="auto", engine="auto"):
    """Chooses the data-parallel engine and enters its scope, to build the model in.

    Under `tf.distribute` a model is mirrored only if it is created inside
    `strategy.scope()`, and under `keras.distribution` its variables are laid out by the
    distribution in force when they are created; this is that scope. Pass what it yields to
    `resnet_keras.training.fit(distribution=...)` (`fit`'s default, "auto", finds it from the
    model too).

    Args:
        devices: As `data_parallel`'s.
        engine: As `data_parallel`'s.

    Yields:
        The engine (`tf.distribute.Strategy` or `keras.distribution.DataParallel`), or None
        on one device.

    Raises:
        ValueError: as `data_parallel`.

    Examples:
        >>> with distributed(devices=1) as distribution:
        ...     model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> distribution is None
        True
    """
    distribution = data_parallel(devices=devices, engine=engine)
    with distribution_scope(distribution):
        yield distribution


def replicas(distribution) -> int:
    """How many replicas share each global batch under `distribution`.

    Args:
        distribution: A `tf.distribute.Strategy`, a `keras.distribution.Distribution` or None.

    Returns:
        The number of replicas (1 for None).

    Examples:
        >>> replicas(None)
        1
    """
    if distribution is None:
        return 1
    if hasattr(distribution, "num_replicas_in_sync"):
        return int(distribution.num_replicas_in_sync)
    # keras.distribution.DataParallel: one replica per device of its (one-axis) mesh.
    return int(distribution.device_mesh.devices.size)


def _variable_devices(model):
    """The JAX devices holding the model's first variable (its layout shows the engine)."""
    value = model.weights[0].value
    return sorted(value.sharding.device_set, key=lambda device: device.id)


def model_distribution(model):
    """The engine `model` was created under, or None if it lives on one device.

    Args:
        model: A built `keras.Model`.

    Returns:
        On TensorFlow the `tf.distribute.Strategy` of the scope the model was created in; on
        JAX a `keras.distribution.DataParallel` over the devices its variables are replicated
        on; None for a model on one device.

    Examples:
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> model_distribution(model) is None
        True
    """
    if not model.weights:
        return None
    backend = _backend()
    if backend == "tensorflow":
        import tensorflow as tf

        # A variable created under a strategy is a distributed one; Keras keeps the strategy.
        if isinstance(model.weights[0].value, tf.distribute.DistributedValues):
            return model.distribute_strategy
        return None
    if backend == "jax":
        devices = _variable_devices(model)
        if len(devices) > 1:
            return keras.distribution.DataParallel(
                devices=[f"{device.platform}:{device.id}" for device in devices]
            )
    return None


def resolve_distribution(model, distribution):
    """`fit`'s `distribution` argument checked against the model: the engine to train under.

    Args:
        model: The built model `fit` trains.
        distribution: "auto" (the engine the model was created under), None (one device) or a
            `tf.distribute.Strategy` / `keras.distribution.Distribution`.

    Returns:
        The engine, or None for one device.

    Raises:
        ValueError: if the engine is not the backend's, or the model was not created under it.

    Examples:
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> resolve_distribution(model, "auto") is None
        True
    """
    found = model_distribution(model)
    if isinstance(distribution, str) and distribution == "auto":
        return found
    backend = _backend()
    import tensorflow as tf  # tf.data feeds every backend here, so TensorFlow is installed

    is_strategy = isinstance(distribution, tf.distribute.Strategy)
    # keras.distribution has no public base class; these are its two distributions.
    is_keras = isinstance(
        distribution, (keras.distribution.DataParallel, keras.distribution.ModelParallel)
    )
    if distribution is not None and not (is_strategy or is_keras):
        raise ValueError(
            "`distribution` must be 'auto', None, a tf.distribute.Strategy or a "
            f"keras.distribution.Distribution; received {distribution!r}."
        )
    if (is_strategy and backend != "tensorflow") or (is_keras and backend != "jax"):
        engine = "tf.distribute" if is_strategy else "keras.distribution"
        raise ValueError(
            f"`distribution` must be an engine of the {backend} backend; received a "
            f"{engine} one ({type(distribution).__name__})."
        )
    hint = "create the model inside `resnet_keras.training.distributed(...)`"
    if distribution is None:
        if found is not None:
            raise ValueError(
                "`distribution` is None but the model was created under "
                f"{type(found).__name__}; pass distribution='auto' (or that engine)."
            )
        return None
    if is_strategy and found is not distribution:
        raise ValueError(
            f"`distribution`: the model was not created under this {type(distribution).__name__}"
            f" (its scope); {hint} and pass what it yields."
        )
    if is_keras:
        wanted = sorted(str(device) for device in distribution.device_mesh.devices.flatten())
        have = sorted(f"{d.platform}:{d.id}" for d in _variable_devices(model))
        if wanted != have:
            raise ValueError(
                f"`distribution` spans devices {wanted} but the model's variables are on "
                f"{have}; {hint} and pass what it yields."
            )
    return distribution


def check_global_batch(dataset, distribution, name="data") -> int | None:
    """Checks that the batches of `dataset` split evenly over the replicas of `distribution`.

    Args:
        dataset: A batched tf.data.Dataset of (images, labels).
        distribution: The engine (None: one device, nothing to check).
        name: The argument `dataset` came from, for the message.

    Returns:
        The global batch size of the first batch (None when not checked).

    Raises:
        ValueError: naming `name`, if the batch size is not a multiple of the replica count.

    Examples:
        >>> check_global_batch(None, None) is None
        True
    """
    count = replicas(distribution)
    if count == 1:
        return None
    import tensorflow as tf

    images_spec = tf.nest.flatten(dataset.element_spec)[0]
    size = images_spec.shape[0]
    if size is None:
        size = int(tf.shape(tf.nest.flatten(next(iter(dataset.take(1))))[0])[0])
    if size % count:
        raise ValueError(
            f"`{name}` must come in global batches that divide evenly over the {count} "
            f"replicas (each device takes batch / {count} images); received batches of {size}."
        )
    return int(size)


def _batch_norm_layers(model):
    # `_flatten_layers` is how Keras itself walks nested layers (a residual block creates its
    # batch norms in `build`, so they are in no public `.layers` list).
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


@contextlib.contextmanager
def synchronized_batch_norm(model, synchronized=True):
    """Makes every batch normalisation of `model` use global-batch statistics for a while.

    Keras' `BatchNormalization(synchronized=True)` all-reduces the batch mean and variance
    over the replicas of a `tf.distribute` strategy, so that N devices normalise as one
    device with the whole batch would. It is a training setting, not part of the model: the
    flag is set on the built layers for the duration of the `with` and then restored, so the
    saved model stays loadable on JAX and PyTorch (where Keras refuses `synchronized=True`).
    On JAX the flag is left alone: `keras.distribution` already computes the statistics over
    the global batch.

    Args:
        model: A built `keras.Model`.
        synchronized: True to synchronise, False to keep (or make) the statistics per replica.

    Yields:
        The number of batch normalisation layers set.

    Examples:
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization()])
        >>> with synchronized_batch_norm(model) as count:
        ...     count
        1
    """
    layers = _batch_norm_layers(model) if _backend() == "tensorflow" else []
    before = [layer.synchronized for layer in layers]
    try:
        for layer in layers:
            layer.synchronized = synchronized
        yield len(layers)
    finally:
        for layer, flag in zip(layers, before, strict=True):
            layer.synchronized = flag


def split_host_cpu(count) -> bool:
    """Makes the backend see `count` logical CPU devices, to run data-parallel on a CPU.

    Two replicas on one CPU compute what two GPUs compute (more slowly: they share its cores),
    which is how data-parallel training is tested and tried without accelerators. It has to
    happen before the backend initialises: TensorFlow fixes its devices at its first operation
    (`tf.config.set_logical_device_configuration`), JAX at its first computation
    (`jax_num_cpu_devices`). Nothing is changed where a decision is made already: with GPUs
    or TPUs on TensorFlow, with CPU devices configured before (a logical device configuration,
    or XLA_FLAGS=--xla_force_host_platform_device_count), or on a backend with no engine.
    On JAX accelerators cannot be counted before it initialises; there the CPU is split
    anyway, which leaves GPUs and TPUs, JAX's default devices, as they were.

    Args:
        count: The number of CPU devices wanted (1: nothing to do).

    Returns:
        True if the CPU was split by this call, False if it was left as it was.

    Raises:
        RuntimeError: if the backend has initialised already with fewer CPU devices (the
            message says to call it first, or to start a new process).
        ValueError: if `count` is not a positive integer.

    Examples:
        >>> split_host_cpu(1)
        False
    """
    import os

    count = check_positive_int("count", count)
    backend = _backend()
    if count == 1 or backend not in _BACKEND_ENGINES:
        return False
    if backend == "jax":
        import jax

        if jax.config.jax_num_cpu_devices != -1 or _FORCE_HOST_DEVICES in os.environ.get(
            "XLA_FLAGS", ""
        ):
            return False
        try:
            jax.config.update("jax_num_cpu_devices", count)
            return True
        except RuntimeError:  # JAX has computed something already
            have = len(jax.devices("cpu"))
            setting = "jax_num_cpu_devices"
    else:
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"):
            return False
        cpu = tf.config.list_physical_devices("CPU")[0]
        if tf.config.get_logical_device_configuration(cpu) is not None:
            return False
        try:
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * count
            )
            return True
        except RuntimeError:  # TensorFlow has run an operation already
            have = len(tf.config.list_logical_devices("CPU"))
            setting = "tf.config.set_logical_device_configuration"
    if have >= count:
        return False
    raise RuntimeError(
        f"`count`: {backend} has initialised already with {have} CPU device(s), so it cannot "
        f"be split into {count} ({setting} must come before its first operation); call "
        "split_host_cpu first, in a new process."
    )


def initialize_multi_process() -> int:
    """Joins the processes of a multi-host JAX run when the launcher set them up.

    `keras.distribution.initialize()` connects this process to the others (one per host),
    after which `keras.distribution` sees every host's devices and shards each global batch
    over all of them. It reads `MULTI_PROCESS_VARIABLES`; this calls it only where one of
    them is set, and only on JAX (TensorFlow's multi-host engine cannot run Keras 3's
    `Model.fit`, see the module docstring). Call it before the model is built.

    Returns:
        The number of processes of the run (1 when nothing was set).

    Examples:
        >>> import os
        >>> initialize_multi_process() if not any(
        ...     name in os.environ for name in MULTI_PROCESS_VARIABLES) else 1
        1
    """
    import os

    if _backend() != "jax" or not any(os.environ.get(name) for name in MULTI_PROCESS_VARIABLES):
        return 1
    import jax

    keras.distribution.initialize()
    return int(jax.process_count())


def engine_name(distribution) -> str | None:
    """The name in `ENGINES` of `distribution`'s engine, or None for one device.

    Args:
        distribution: What `data_parallel` returns.

    Returns:
        "mirrored", "data_parallel" or None.

    Examples:
        >>> engine_name(None) is None
        True
    """
    if distribution is None:
        return None
    return "mirrored" if hasattr(distribution, "num_replicas_in_sync") else "data_parallel"
