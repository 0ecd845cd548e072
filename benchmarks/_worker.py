"""A benchmark worker: builds its contenders, warms them up, then times repeats on request.

Started by `benchmarks._harness.Worker` as `python -m benchmarks._worker CONFIG_JSON`.
CONFIG_JSON holds `env` (set before any framework is imported), `path` (folders
put first on sys.path), `threads`,
`inter_op_threads` (TensorFlow only; null keeps TensorFlow's default), `warmup`
(calls per task) and `contenders`, a list of dicts with `id`, `kind`,
`warmup_tasks` ({task: steps}) and the kind's arguments (see `_BUILDERS`).

Protocol, JSON lines: the worker first answers `{"ok": true, "contenders": {...}}`
(each contender `{"ok": true, "warmup_s": [...]}` or `{"ok": false, "error": ...}`),
then answers each `{"op": "run", "id": ..., "task": ..., "steps": N}` with
`{"ok": true, "seconds": s, "count": c, "cpu_seconds": u, "idle_seconds": i,
"extra": {...}}` (c items, e.g. images, in s seconds of wall time; u seconds of this
process's CPU time, user plus system; i seconds in which the machine's cores sat
idle, summed over cores, from /proc/stat where it exists, else null; extra what the
contender counted besides, e.g. traces) until `{"op": "quit"}`.
Framework chatter on stdout is redirected to stderr so that the
protocol channel stays clean.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback


def _process_cpu_seconds():
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _machine_idle_seconds():
    """Idle time of all cores since boot (Linux), or None elsewhere.

    A timed call during which the cores sat idle although the worker had work to
    do is a stall of the machine (this VM shows stalls of ~10 s with every thread
    blocked), not a cost of the contender; the parent reports such calls.
    """
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
        return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _setup_tensorflow(config):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(config["threads"])
    if config.get("inter_op_threads"):
        tf.config.threading.set_inter_op_parallelism_threads(config["inter_op_threads"])
    return tf


def _synthetic_batches(batch, shape, num_batches=4, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch * num_batches, *shape), dtype=np.float32)
    labels = rng.integers(0, 10, size=batch * num_batches).astype(np.int32)
    return images, labels


def _backend_batches(keras, images, labels, batch):
    """Backend tensors made once, as a prefetching input pipeline hands them over."""
    return [
        (
            keras.ops.convert_to_tensor(images[i : i + batch]),
            keras.ops.convert_to_tensor(labels[i : i + batch]),
        )
        for i in range(0, len(images), batch)
    ]


def _compile_as_fit(model, jit_compile, steps_per_execution=1):
    """Compiles `model` with the paper recipe through the function `fit` itself compiles with."""
    from resnet_keras.training import get_recipe
    from resnet_keras.training.trainer import _compile_with_recipe

    _compile_with_recipe(model, get_recipe("paper"), 64000, jit_compile, steps_per_execution)


class KerasCifar:
    """`rk.CifarResNet(depth)` on the current Keras backend, trained with `model.fit`.

    `setup="library"` compiles as `resnet_keras.training.fit` does for a learner:
    the paper recipe's SGD and loss, coupled weight decay on every variable, an
    accuracy metric and the profile's XLA setting for this machine, and makes the
    optimizer's state before the first step. Overrides:
    `jit_compile`, `steps_per_execution`, and `precision` (a Keras dtype policy such
    as "mixed_bfloat16", set while the model is built, as a learner would before
    building it; the global policy is restored afterwards).
    """

    def __init__(
        self,
        depth=20,
        batch=128,
        jit_compile=None,
        steps_per_execution=1,
        driver="batch",
        hook=None,
        precision="float32",
        **_,
    ):
        import importlib

        import keras

        if hook:
            # "module:function" run before the model is built, for experiments.
            module, function = hook.split(":")
            getattr(importlib.import_module(module), function)()

        import resnet_keras as rk
        from resnet_keras.data import synthetic
        from resnet_keras.training import accelerator_settings, initialise

        keras.utils.set_random_seed(0)
        self.keras = keras
        self.batch = batch
        # A layer takes the global policy when it is created; the other models of
        # this process keep the policy they had.
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(precision)
        try:
            self.model = rk.CifarResNet(depth)
        finally:
            keras.mixed_precision.set_global_policy(previous)
        self.macs = rk.count_macs(self.model)
        if jit_compile is None:
            # `fit` passes the profile's setting (no XLA on a CPU); it is written for the
            # TensorFlow backend. Other backends get Keras' own default ("auto": jax.jit
            # for JAX, eager for torch), as `model.compile()` gives a learner.
            backend = keras.backend.backend()
            jit_compile = (
                accelerator_settings()["jit_compile"] if backend == "tensorflow" else "auto"
            )
        self.jit_compile = jit_compile
        _compile_as_fit(self.model, jit_compile, steps_per_execution)
        initialise(self.model, self.model.optimizer)  # as `fit` does: one trace of the step
        self.driver = driver
        self.data = synthetic(4 * batch, batch, repeat=True, seed=0)
        images, labels = synthetic(4 * batch, batch, seed=0, as_numpy=True)
        self.batches = _backend_batches(keras, images, labels, batch)

    def run(self, task, steps):
        keras = self.keras
        start = time.perf_counter()
        if self.driver == "fit":
            # A whole `fit` / `predict` call per repeat: includes its per-call setup.
            if task == "train":
                self.model.fit(self.data, epochs=1, steps_per_epoch=steps, verbose=0)
            elif task == "infer":
                self.model.predict(self.data, steps=steps, verbose=0)
            else:
                raise ValueError(f"unknown task {task!r}")
        else:
            # The compiled step `fit` runs, fed from memory like the PyTorch contenders.
            for step in range(steps):
                images, labels = self.batches[step % len(self.batches)]
                if task == "train":
                    logs = self.model.train_on_batch(images, labels, return_dict=True)
                elif task == "infer":
                    logs = self.model.predict_on_batch(images)
                else:
                    raise ValueError(f"unknown task {task!r}")
            keras.ops.convert_to_numpy(
                next(iter(logs.values())) if isinstance(logs, dict) else logs
            )
        return time.perf_counter() - start, steps * self.batch

    def describe(self):
        return {
            "backend": self.keras.backend.backend(),
            "macs": self.macs,
            "jit_compile": str(self.model.jit_compile),
            "dtype_policy": self.model.dtype_policy.name,
        }


class KerasResNet50:
    """`rk.ResNet50` (`variant="rk"`) or `keras.applications.ResNet50` (`"applications"`).

    Both start from the same random weights (the library model takes the
    reference's) and train with the same SGD and loss. A training step is the
    compiled step `fit` runs (`train_on_batch`), inference `predict_on_batch`, both
    fed backend tensors made once: whole `fit` calls on a tf.data pipeline were hit
    by this VM's stalls (benchmarks/RESULTS.md), and the input pipeline is not what
    is compared.
    """

    def __init__(self, variant="rk", batch=32, size=224, jit_compile=None, **_):
        import keras
        from keras.applications import ResNet50 as Reference

        import resnet_keras as rk

        keras.utils.set_random_seed(0)
        shape = (size, size, 3)
        reference = Reference(weights=None, input_shape=shape)
        if variant == "rk":
            self.model = rk.ResNet50(weights=None, input_shape=shape)
            self.model.set_weights(reference.get_weights())
        elif variant == "applications":
            self.model = reference
        else:
            raise ValueError(f"unknown ResNet-50 variant {variant!r}")
        self.model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            jit_compile=False if jit_compile is None else jit_compile,
        )
        self.keras = keras
        self.batch = batch
        images, labels = _synthetic_batches(batch, shape, num_batches=2)
        self.batches = _backend_batches(keras, images, labels % 1000, batch)

    def run(self, task, steps):
        if task not in ("train", "infer"):
            raise ValueError(f"unknown task {task!r}")
        start = time.perf_counter()
        for step in range(steps):
            images, labels = self.batches[step % len(self.batches)]
            if task == "train":
                out = self.model.train_on_batch(images, labels)
            else:
                out = self.model.predict_on_batch(images)
        # Wait for the last result, as a learner's next line would.
        self.keras.ops.convert_to_numpy(out)
        return time.perf_counter() - start, steps * self.batch

    def describe(self):
        return {"params": int(self.model.count_params()), "weights": len(self.model.weights)}


class TorchCifar:
    """The same ResNet in plain PyTorch: SGD momentum 0.9, coupled weight decay (1e-4).

    `device`, `precision` (`torch.autocast`, with a gradient scaler for float16) and
    `compile_mode` are for `benchmarks/gpu.py`; the CPU benchmarks keep the defaults.
    """

    def __init__(
        self,
        depth=20,
        batch=128,
        memory_format="nchw",
        compile=False,
        device="cpu",
        precision="float32",
        compile_mode="default",
        weight_decay=1e-4,
        **_,
    ):
        import torch

        from benchmarks.torch_resnet import TorchCifarResNet

        torch.manual_seed(0)
        self.torch = torch
        self.batch = batch
        self.device = device
        self.format = (
            torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
        )
        self.model = TorchCifarResNet(depth).to(device, memory_format=self.format)
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=0.1, momentum=0.9, weight_decay=weight_decay
        )
        self.loss = torch.nn.CrossEntropyLoss()
        self.autocast_dtype = {
            "float32": None,
            "mixed_float16": torch.float16,
            "mixed_bfloat16": torch.bfloat16,
        }[precision]
        self.scaler = torch.amp.GradScaler(device, enabled=precision == "mixed_float16")
        images, labels = _synthetic_batches(batch, (32, 32, 3))
        images = torch.from_numpy(images).permute(0, 3, 1, 2).to(device)  # NHWC data -> NCHW
        self.images = [chunk.contiguous(memory_format=self.format) for chunk in images.split(batch)]
        self.labels = list(torch.from_numpy(labels).long().to(device).split(batch))
        self.forward = torch.compile(self.model, mode=compile_mode) if compile else self.model
        # CUDA graphs may reuse a replay's outputs: each step must say that it is a new one.
        self.mark_steps = compile and compile_mode in ("reduce-overhead", "max-autotune")

    def _train_step(self, index):
        torch = self.torch
        self.optimizer.zero_grad(set_to_none=True)
        if self.mark_steps:
            torch.compiler.cudagraph_mark_step_begin()
        if self.autocast_dtype is None:
            loss = self.loss(self.forward(self.images[index]), self.labels[index])
            loss.backward()
            self.optimizer.step()
            return loss
        with torch.autocast(self.device, dtype=self.autocast_dtype):
            loss = self.loss(self.forward(self.images[index]), self.labels[index])
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss

    def run(self, task, steps):
        torch = self.torch
        start = time.perf_counter()
        if task == "train":
            self.model.train()
            for step in range(steps):
                loss = self._train_step(step % len(self.images))
            loss.item()  # waits for the device
        elif task == "infer":
            self.model.eval()
            with torch.inference_mode():
                for step in range(steps):
                    self.forward(self.images[step % len(self.images)]).sum().item()
        else:
            raise ValueError(f"unknown task {task!r}")
        return time.perf_counter() - start, steps * self.batch

    def describe(self):
        return {"threads": self.torch.get_num_threads()}


class MatMul:
    """A large square matrix product; `count` is FLOPs (2 n^3 per product)."""

    def __init__(self, framework="tensorflow", size=2048, dtype="float32", **_):
        self.framework, self.size, self.dtype = framework, size, dtype
        if framework == "tensorflow":
            import tensorflow as tf

            self.tf = tf
            a = tf.random.normal((size, size), dtype=tf.float32)
            self.a = tf.cast(a, dtype)
            self.b = tf.cast(tf.random.normal((size, size), dtype=tf.float32), dtype)

            @tf.function
            def product(a, b, steps):
                # Each product's result is read, so none can be skipped.
                total = tf.zeros((), tf.float32)
                for _ in tf.range(steps):
                    total += tf.cast(tf.matmul(a, b)[0, 0], tf.float32)
                return total

            self.product = product
        elif framework == "torch":
            import torch

            self.torch = torch
            torch_dtype = getattr(torch, dtype)
            self.a = torch.randn(size, size).to(torch_dtype)
            self.b = torch.randn(size, size).to(torch_dtype)
        else:
            raise ValueError(f"unknown framework {framework!r}")

    def run(self, task, steps):
        start = time.perf_counter()
        if self.framework == "tensorflow":
            float(self.product(self.a, self.b, self.tf.constant(steps)))
        else:
            for _ in range(steps):
                c = self.torch.mm(self.a, self.b)
            float(c[0, 0])
        return time.perf_counter() - start, steps * 2 * self.size**3

    def describe(self):
        return {"size": self.size, "dtype": self.dtype}


class ConvKernels:
    """Single 3x3 convolution kernels, forward and both gradients, in one framework.

    Each task `"{index}/{pass}"` runs one kernel of `shapes[index]` (height, input
    channels, output channels, stride) as the framework's training step runs it:
    TensorFlow's `Conv2D` / `Conv2DBackpropInput` / `Conv2DBackpropFilter` ops
    (oneDNN's when it is on), PyTorch's `conv2d` / `convolution_backward` on
    channels_last tensors. Padding is each framework's own, as in its ResNet: SAME
    in TensorFlow (a stride-2 layer pads bottom and right only), 1 all round in
    PyTorch. `count` is the number of kernel calls.
    """

    PASSES = ("forward", "input_gradient", "weight_gradient")

    def __init__(self, framework="tensorflow", shapes=(), batch=128, **_):
        import numpy as np

        if framework not in ("tensorflow", "torch"):
            raise ValueError(f"unknown framework {framework!r}")
        self.framework, self.kernels, self.checksums = framework, {}, {}
        rng = np.random.default_rng(0)
        for index, (size, cin, cout, stride) in enumerate(shapes):
            out = size // stride
            images = rng.standard_normal((batch, size, size, cin), dtype=np.float32)
            kernel = rng.standard_normal((3, 3, cin, cout), dtype=np.float32)
            kernel *= np.float32(1 / np.sqrt(9 * cin))  # He-like scale, stays float32
            gradient = rng.standard_normal((batch, out, out, cout), dtype=np.float32)
            build = self._tensorflow if framework == "tensorflow" else self._torch
            for name, (once, repeat) in zip(self.PASSES, build(images, kernel, gradient, stride)):
                task = f"{index}/{name}"
                self.kernels[task] = repeat
                # Same inputs in both frameworks: the parent compares these sums.
                self.checksums[task] = float(np.sum(np.asarray(once(), dtype=np.float64)))

    @staticmethod
    def _tensorflow(images, kernel, gradient, stride):
        import tensorflow as tf

        x, w, dy = (tf.constant(a) for a in (images, kernel, gradient))
        strides = [1, stride, stride, 1]
        kernels = (
            lambda: tf.nn.conv2d(x, w, strides, "SAME"),
            lambda: tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(x), filter=w, out_backprop=dy, strides=strides, padding="SAME"
            ),
            lambda: tf.raw_ops.Conv2DBackpropFilter(
                input=x, filter_sizes=tf.shape(w), out_backprop=dy, strides=strides, padding="SAME"
            ),
        )

        def repeated(op):
            # The loop runs inside one graph, as a training step runs its kernels: a
            # Python loop would add the ~0.4 ms of a function call to every kernel.
            # One iteration at a time: TensorFlow would otherwise run the next
            # iteration's kernel alongside this one, which a training step cannot.
            @tf.function
            def loop(steps):
                total = tf.zeros((), tf.float32)
                for _ in tf.range(steps):
                    tf.autograph.experimental.set_loop_options(parallel_iterations=1)
                    total += op()[0, 0, 0, 0]  # each result is read, so no run is skipped
                return total

            return lambda steps: float(loop(tf.constant(steps)))

        return [(op, repeated(op)) for op in kernels]

    @staticmethod
    def _torch(images, kernel, gradient, stride):
        import torch

        channels_last = torch.channels_last
        x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(memory_format=channels_last)
        w = torch.from_numpy(kernel).permute(3, 2, 0, 1).contiguous(memory_format=channels_last)
        dy = torch.from_numpy(gradient).permute(0, 3, 1, 2).contiguous(memory_format=channels_last)
        backward = torch.ops.aten.convolution_backward

        def forward():
            with torch.no_grad():
                return torch.nn.functional.conv2d(x, w, stride=stride, padding=1).permute(
                    0, 2, 3, 1
                )

        def gradient_of(which):
            mask = [which == 0, which == 1, False]

            def run():
                with torch.no_grad():
                    result = backward(
                        dy, x, w, None, [stride] * 2, [1, 1], [1, 1], False, [0, 0], 1, mask
                    )[which]
                # Back to TensorFlow's layouts (NHWC, HWIO) for the checksum.
                return result.permute(0, 2, 3, 1) if which == 0 else result.permute(2, 3, 1, 0)

            return run

        def repeated(op):
            def run(steps):
                for _ in range(steps):
                    result = op()
                return float(result[0, 0, 0, 0])

            return run

        kernels = (forward, gradient_of(0), gradient_of(1))
        return [(op, repeated(op)) for op in kernels]

    def run(self, task, steps):
        start = time.perf_counter()
        self.kernels[task](steps)
        return time.perf_counter() - start, steps

    def describe(self):
        return {"checksums": self.checksums}


class Pipeline:
    """Batches of a `resnet_keras.data` training pipeline with augmentation.

    `source="digits"`: `load("digits")`'s training split. `source="cifar-synthetic"`:
    random uint8 CIFAR-shaped images through the same `make_split` augmentation
    path (normalise, pad 4, random crop, random flip, shuffle, batch).
    """

    def __init__(self, source="digits", batch=128, num_examples=5000, **_):
        import numpy as np
        import tensorflow as tf

        from resnet_keras.data import load
        from resnet_keras.data.pipeline import make_split

        self.batch = batch
        if source == "digits":
            dataset = load("digits", batch_size=batch, augment=True).train
        elif source == "cifar-synthetic":
            rng = np.random.default_rng(0)
            images = rng.integers(0, 256, size=(num_examples, 32, 32, 3), dtype=np.uint8)
            labels = rng.integers(0, 10, size=num_examples).astype(np.int64)
            dataset = make_split(
                tf.data.Dataset.from_tensor_slices((images, labels)),
                num_examples,
                batch_size=batch,
                mean=(0.49, 0.48, 0.45),
                std=(0.25, 0.24, 0.26),
                training=True,
                augment=True,
                flip=True,
            )
        else:
            raise ValueError(f"unknown pipeline source {source!r}")
        self.iterator = iter(dataset.repeat())

    def run(self, task, steps):
        start = time.perf_counter()
        count = 0
        for _ in range(steps):
            images, _labels = next(self.iterator)
            count += int(images.shape[0])
        return time.perf_counter() - start, count

    def describe(self):
        return {}


class LearnerCalls:
    """The calls of a learner that end a tf.data iterator: `fit` and `find_learning_rate`.

    ResNet-`depth` on the digits training split (`load("digits", augment=True)`).
    `autotune=None` keeps the pipeline and the loops as the library sets them up
    (tf.data's autotuning thread off); `autotune=True` turns TensorFlow's default back
    on, which the library's loops respect. Task `fit`: `model.fit` for `steps` epochs;
    task `lr_finder`: `find_learning_rate` with `num_steps=steps` (it reads the
    repeated split and drops the iterator when done).
    """

    def __init__(self, autotune=None, depth=20, batch=128, **_):
        import keras
        import tensorflow as tf

        import resnet_keras as rk
        from resnet_keras.data import load
        from resnet_keras.training import find_learning_rate

        data = load("digits", batch_size=batch, augment=True)
        self.train = data.train
        self.images_per_epoch = data.info.train_size
        if autotune is not None:
            options = tf.data.Options()
            options.autotune.enabled = bool(autotune)
            self.train = self.train.with_options(options)
        self.batch = batch
        self.find_learning_rate = find_learning_rate
        keras.utils.set_random_seed(0)
        self.model = rk.CifarResNet(depth)
        self.model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )

    def run(self, task, steps):
        start = time.perf_counter()
        if task == "fit":
            self.model.fit(self.train, epochs=steps, verbose=0)
            count = steps * self.images_per_epoch
        elif task == "lr_finder":
            self.find_learning_rate(self.model, self.train, num_steps=steps, verbose=0)
            count = steps * self.batch
        else:
            raise ValueError(f"unknown task {task!r}")
        return time.perf_counter() - start, count

    def describe(self):
        return {"autotune": self.train.options().autotune.enabled}


class FirstStep:
    """A new ResNet's first training step, with the optimizer's state made before or in it.

    Each `run("first_step", 1)` builds a fresh `rk.CifarResNet(depth)`, compiles it as
    `resnet_keras.training.fit` does and times its first `train_on_batch`. With
    `build_optimizer_first=True` the optimizer's state is created beforehand with
    `resnet_keras.training.initialise`, as `fit` does (the call is inside the timing);
    with False, Keras' default, the state is created while the step is traced, and a
    tf.function that creates variables is traced twice. `extra["traces"]` counts the
    traces of the model's `train_step`.
    """

    def __init__(self, build_optimizer_first=True, depth=20, batch=128, **_):
        import keras

        from resnet_keras.training import accelerator_settings

        self.keras = keras
        self.depth, self.batch = depth, batch
        self.build_optimizer_first = bool(build_optimizer_first)
        self.jit_compile = accelerator_settings()["jit_compile"]
        images, labels = _synthetic_batches(batch, (32, 32, 3), num_batches=1)
        self.images = keras.ops.convert_to_tensor(images)
        self.labels = keras.ops.convert_to_tensor(labels)
        self.extra = {}

    def run(self, task, steps):
        import gc

        import resnet_keras as rk
        from resnet_keras.training import initialise

        if task != "first_step":
            raise ValueError(f"unknown task {task!r}")
        keras = self.keras
        # The previous model's graphs go first, so that each call starts from the same state.
        keras.backend.clear_session()
        gc.collect()
        keras.utils.set_random_seed(0)
        model = rk.CifarResNet(self.depth)
        _compile_as_fit(model, self.jit_compile)
        traces = []
        keras_train_step = model.train_step

        def counting_train_step(data):
            traces.append(1)
            return keras_train_step(data)

        model.train_step = counting_train_step
        start = time.perf_counter()
        if self.build_optimizer_first:
            initialise(model, model.optimizer)
        model.train_on_batch(self.images, self.labels)
        seconds = time.perf_counter() - start
        self.extra = {"traces": len(traces)}
        return seconds, 1

    def describe(self):
        return {"build_optimizer_first": self.build_optimizer_first, "depth": self.depth}


# Kinds that run the library on Keras: `resnet_keras` is imported before TensorFlow.
_LIBRARY_KINDS = {"keras_cifar", "keras_resnet50", "pipeline", "learner_calls", "first_step"}

_BUILDERS = {
    "keras_cifar": KerasCifar,
    "keras_resnet50": KerasResNet50,
    "torch_cifar": TorchCifar,
    "matmul": MatMul,
    "pipeline": Pipeline,
    "learner_calls": LearnerCalls,
    "first_step": FirstStep,
    "conv_kernels": ConvKernels,
}


def _describe_runtime(config):
    info = {"pid": os.getpid(), "keras_backend": os.environ.get("KERAS_BACKEND", "")}
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        info["tf_intra_op"] = tf.config.threading.get_intra_op_parallelism_threads()
        info["tf_inter_op"] = tf.config.threading.get_inter_op_parallelism_threads()
        try:
            from tensorflow.python.util import _pywrap_util_port

            info["onednn"] = bool(_pywrap_util_port.IsMklEnabled())
        except ImportError:  # a private module: report the setting instead
            info["onednn"] = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default")
    if "resnet_keras" in sys.modules:
        info["resnet_keras"] = os.path.dirname(sys.modules["resnet_keras"].__file__)
    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    return info


def main(argv):
    config = json.loads(argv[1])
    os.environ.update({key: str(value) for key, value in config.get("env", {}).items()})
    # Folders searched before the repository, e.g. a copy of the library as it was
    # before a change, to measure the change side by side.
    sys.path[:0] = config.get("path", [])
    # The protocol owns the real stdout; everything printed by frameworks goes to stderr.
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(message):
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    threads = int(config.get("threads", 2))
    config["threads"] = threads
    kinds = {spec["kind"] for spec in config["contenders"]}
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    frameworks = {
        s.get("framework", "tensorflow")
        for s in config["contenders"]
        if s["kind"] in ("matmul", "conv_kernels")
    }
    try:
        if kinds & _LIBRARY_KINDS or ("conv_kernels" in kinds and "tensorflow" in frameworks):
            # A learner's notebook imports the library first; whatever it sets up at
            # import time (before TensorFlow starts) is part of its default.
            import resnet_keras  # noqa: F401
        if kinds & _LIBRARY_KINDS and backend == "tensorflow":
            _setup_tensorflow(config)
        if "tensorflow" in frameworks:
            _setup_tensorflow(config)
        if kinds & {"torch_cifar"} or backend == "torch" or "torch" in frameworks:
            import torch

            torch.set_num_threads(threads)
        if backend != "tensorflow" and kinds & {"keras_cifar", "pipeline"}:
            # tf.data feeds every backend; keep its own op threads to the same budget.
            _setup_tensorflow(config)
    except Exception as error:  # noqa: BLE001 - reported to the parent
        send({"ok": False, "error": f"setup: {error!r}"})
        return 1

    contenders, status = {}, {}
    warmup = int(config.get("warmup", 2))
    for spec in config["contenders"]:
        ident = spec["id"]
        try:
            start = time.perf_counter()
            contender = _BUILDERS[spec["kind"]](**spec)
            build_s = time.perf_counter() - start
            warmups = []
            for task, steps in spec.get("warmup_tasks", {}).items():
                for _ in range(warmup):
                    start = time.perf_counter()
                    contender.run(task, steps)
                    warmups.append(round(time.perf_counter() - start, 3))
            contenders[ident] = contender
            status[ident] = {
                "ok": True,
                "build_s": round(build_s, 3),
                "warmup_s": warmups,
                "describe": contender.describe(),
            }
        except Exception as error:  # noqa: BLE001 - one contender failing is a result
            message = f"{type(error).__name__}: {error}".strip()
            status[ident] = {"ok": False, "error": message[:600]}
            traceback.print_exc()
    send({"ok": True, "contenders": status, "runtime": _describe_runtime(config)})

    for line in sys.stdin:
        request = json.loads(line)
        if request.get("op") == "quit":
            break
        try:
            cpu, idle = _process_cpu_seconds(), _machine_idle_seconds()
            seconds, count = contenders[request["id"]].run(request["task"], request["steps"])
            cpu = _process_cpu_seconds() - cpu
            idle = None if idle is None else _machine_idle_seconds() - idle
            send(
                {
                    "ok": True,
                    "seconds": seconds,
                    "count": count,
                    "cpu_seconds": cpu,
                    "idle_seconds": idle,
                    # What a contender found out during the call besides its time.
                    "extra": getattr(contenders[request["id"]], "extra", {}),
                }
            )
        except Exception as error:  # noqa: BLE001 - reported to the parent
            traceback.print_exc()
            send({"ok": False, "error": f"{type(error).__name__}: {error}"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
