"""A benchmark worker: builds its contenders, warms them up, then times calls on request.

Started by `benchmarks._harness.Worker` as `python -m benchmarks._worker CONFIG_JSON`
(`path`: folders put first on sys.path; `threads`; `warmup`: calls per task;
`contenders`: dicts with `id`, `kind` from `_BUILDERS`, `warmup_tasks` {task: steps} and
the kind's arguments). Protocol, JSON lines on stdout (frameworks print to stderr): first
`{"ok": true, "contenders": {id: {"ok", "warmup_s", "describe"} or {"ok": false, "error"}},
"runtime": {...}}`, then for each `{"op": "run", "id", "task", "steps"}` the answer
`{"ok": true, "seconds", "count", "cpu_seconds"}` (`count` items in `seconds` of wall time,
`cpu_seconds` of this process's CPU time), until `{"op": "quit"}`.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
import traceback


def _cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _synthetic_batches(batch, shape, num_batches=4, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch * num_batches, *shape), dtype=np.float32)
    labels = rng.integers(0, 10, size=batch * num_batches).astype(np.int32)
    return images, labels


class _KerasModel:
    """A compiled Keras model timed step by step: `train_on_batch` (the compiled step `fit`
    runs) or `predict_on_batch`, on backend tensors made once, as a prefetching input
    pipeline hands them over. Both return NumPy values, so the last step has finished."""

    def _hold(self, keras, images, labels, batch):
        self.batch, convert = batch, keras.ops.convert_to_tensor
        self.batches = [
            (convert(images[i : i + batch]), convert(labels[i : i + batch]))
            for i in range(0, len(images), batch)
        ]

    def run(self, task, steps):
        if task not in ("train", "infer"):
            raise ValueError(f"unknown task {task!r}")
        start = time.perf_counter()
        for step in range(steps):
            images, labels = self.batches[step % len(self.batches)]
            if task == "train":
                self.model.train_on_batch(images, labels)
            else:
                self.model.predict_on_batch(images)
        return time.perf_counter() - start, steps * self.batch


class KerasCifar(_KerasModel):
    """`rk.CifarResNet(depth)` on the current Keras backend, compiled as `fit` compiles it.

    The paper recipe's SGD and loss, coupled weight decay, an accuracy metric, no XLA on
    TensorFlow (`fit`'s default; Keras' "auto" on the other backends) and the optimizer's
    state made before the first step. `hook`, a function of `benchmarks._ablations`, runs
    before the model is built.
    """

    def __init__(self, depth=20, batch=128, jit_compile=None, hook=None, **_):
        import keras

        if hook:
            getattr(importlib.import_module("benchmarks._ablations"), hook)()

        import resnet_keras as rk
        from resnet_keras.training import get_recipe, initialise
        from resnet_keras.training.trainer import _compile_with_recipe

        keras.utils.set_random_seed(0)
        self.model = rk.CifarResNet(depth)
        if jit_compile is None:
            jit_compile = False if keras.backend.backend() == "tensorflow" else "auto"
        _compile_with_recipe(self.model, get_recipe("paper"), 64000, jit_compile, 1)
        initialise(self.model, self.model.optimizer)  # as `fit` does: one trace of the step
        self._hold(keras, *_synthetic_batches(batch, (32, 32, 3)), batch)


class KerasResNet50(_KerasModel):
    """`rk.ResNet50` (`variant="rk"`) or `keras.applications.ResNet50` (`"applications"`).

    Both start from the same random weights (the library model takes the reference's)
    and train with the same SGD and loss, its state made before the first step.
    """

    _initial_weights = {}  # input size -> the reference's initial weights

    def __init__(self, variant="rk", batch=32, size=224, **_):
        import keras
        from keras.applications import ResNet50 as Reference

        import resnet_keras as rk

        if variant not in ("rk", "applications"):
            raise ValueError(f"unknown ResNet-50 variant {variant!r}")
        keras.utils.set_random_seed(0)
        shape = (size, size, 3)
        if variant == "applications" or size not in self._initial_weights:
            reference = Reference(weights=None, input_shape=shape)
            self._initial_weights[size] = reference.get_weights()
        self.model = reference if variant == "applications" else rk.ResNet50(input_shape=shape)
        self.model.set_weights(self._initial_weights[size])
        optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
        loss = keras.losses.SparseCategoricalCrossentropy()
        self.model.compile(optimizer=optimizer, loss=loss, jit_compile=False)
        optimizer.build(self.model.trainable_variables)  # else Keras traces the step twice
        self._hold(keras, *_synthetic_batches(batch, shape, num_batches=2), batch)

    def describe(self):
        return {"params": int(self.model.count_params()), "weights": len(self.model.weights)}


class TorchCifar:
    """The same ResNet in plain PyTorch: SGD momentum 0.9, coupled weight decay (1e-4).

    `options` are for `benchmarks/gpu.py` (the CPU benchmarks keep the defaults):
    `device`, `precision` (`torch.autocast`, with a gradient scaler for float16),
    `compile_mode` and `weight_decay`.
    """

    def __init__(self, depth=20, batch=128, memory_format="nchw", compile=False, **options):
        import torch

        from benchmarks.torch_resnet import TorchCifarResNet

        torch.manual_seed(0)
        self.torch, self.batch = torch, batch
        self.device, precision = options.get("device", "cpu"), options.get("precision", "float32")
        mode = options.get("compile_mode", "default")
        layout = torch.channels_last if memory_format == "channels_last" else None
        layout = layout or torch.contiguous_format
        self.model = TorchCifarResNet(depth).to(self.device, memory_format=layout)
        decay = options.get("weight_decay", 1e-4)
        self.optimizer = torch.optim.SGD(self.model.parameters(), 0.1, 0.9, weight_decay=decay)
        self.loss = torch.nn.CrossEntropyLoss()
        self.autocast = {"mixed_float16": torch.float16, "mixed_bfloat16": torch.bfloat16}
        self.autocast = self.autocast.get(precision)
        self.scaler = torch.amp.GradScaler(self.device, enabled=precision == "mixed_float16")
        images, labels = _synthetic_batches(batch, (32, 32, 3))
        images = torch.from_numpy(images).permute(0, 3, 1, 2).to(self.device)  # NHWC -> NCHW
        self.images = [chunk.contiguous(memory_format=layout) for chunk in images.split(batch)]
        self.labels = list(torch.from_numpy(labels).long().to(self.device).split(batch))
        self.forward = torch.compile(self.model, mode=mode) if compile else self.model
        # CUDA graphs may reuse a replay's outputs: each step must say that it is a new one.
        self.mark_steps = compile and mode in ("reduce-overhead", "max-autotune")

    def _train_step(self, index):
        torch = self.torch
        self.optimizer.zero_grad(set_to_none=True)
        if self.mark_steps:
            torch.compiler.cudagraph_mark_step_begin()
        if self.autocast is None:  # the CPU benchmarks' yardstick: nothing around the step
            loss = self.loss(self.forward(self.images[index]), self.labels[index])
            loss.backward()
            self.optimizer.step()
            return loss
        with torch.autocast(self.device, dtype=self.autocast):
            loss = self.loss(self.forward(self.images[index]), self.labels[index])
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss

    def run(self, task, steps):
        start = time.perf_counter()
        if task == "train":
            self.model.train()
            for step in range(steps):
                loss = self._train_step(step % len(self.images))
            loss.item()  # waits for the device
        elif task == "infer":
            self.model.eval()
            with self.torch.inference_mode():
                for step in range(steps):
                    self.forward(self.images[step % len(self.images)]).sum().item()
        else:
            raise ValueError(f"unknown task {task!r}")
        return time.perf_counter() - start, steps * self.batch


class Pipeline:
    """Batches of a `resnet_keras.data` training pipeline with augmentation.

    `source="digits"`: `load("digits", augment=True)`'s training split.
    `source="cifar-synthetic"`: random uint8 CIFAR-shaped images through the same
    `make_split` path with CIFAR-10's augmentation (pad 4, random crop, flip).
    """

    def __init__(self, source="digits", batch=128, num_examples=5000, **_):
        import numpy as np
        import tensorflow as tf

        from resnet_keras.data import load
        from resnet_keras.data.pipeline import make_split

        if source == "digits":
            dataset = load("digits", batch_size=batch, augment=True).train
        elif source == "cifar-synthetic":
            rng = np.random.default_rng(0)
            images = rng.integers(0, 256, size=(num_examples, 32, 32, 3), dtype=np.uint8)
            labels = rng.integers(0, 10, size=num_examples).astype(np.int64)
            slices = tf.data.Dataset.from_tensor_slices((images, labels))
            options = dict(mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26), training=True)
            dataset = make_split(slices, num_examples, batch_size=batch, augment=True, **options)
        else:
            raise ValueError(f"unknown pipeline source {source!r}")
        self.iterator = iter(dataset.repeat())

    def run(self, task, steps):
        start = time.perf_counter()
        count = sum(int(next(self.iterator)[0].shape[0]) for _ in range(steps))
        return time.perf_counter() - start, count


def _from_benchmark(module, name):
    """A builder whose class lives in the benchmark's own module (imported when first used)."""

    def build(**spec):
        return getattr(importlib.import_module(f"benchmarks.{module}"), name)(**spec)

    return build


_BUILDERS = {
    "keras_cifar": KerasCifar,
    "keras_resnet50": KerasResNet50,
    "torch_cifar": TorchCifar,
    "pipeline": Pipeline,
    "fit_engine": _from_benchmark("distribute", "FitContender"),
    "block_network": _from_benchmark("descendants", "BlockNetwork"),
}


def _setup(threads, kinds):
    """Imports the library first (as a learner's notebook does) and pins the thread pools."""
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    library = bool(kinds - {"torch_cifar"})
    if library:
        import resnet_keras  # noqa: F401 - first: what it sets up at import is part of its default

        # tf.data feeds every Keras backend: TensorFlow gets the same thread budget.
        tf = importlib.import_module("tensorflow")  # not a statement isort would move first
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    if "torch_cifar" in kinds or (library and backend == "torch"):
        import torch

        torch.set_num_threads(threads)
    tf = sys.modules.get("tensorflow")
    return {"tf_inter_op": tf.config.threading.get_inter_op_parallelism_threads() if tf else None}


def main(argv):
    config = json.loads(argv[1])
    sys.path[:0] = config.get("path", [])
    # The protocol owns the real stdout; everything printed by frameworks goes to stderr.
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(message):
        protocol.write(json.dumps(message) + "\n")

    try:
        runtime = _setup(int(config.get("threads", 2)), {c["kind"] for c in config["contenders"]})
    except Exception as error:  # noqa: BLE001 - reported to the parent
        send({"ok": False, "error": f"setup: {error!r}"})
        return 1
    contenders, status = {}, {}
    for spec in config["contenders"]:
        try:
            contender, warmups = _BUILDERS[spec["kind"]](**spec), []
            for task, steps in spec.get("warmup_tasks", {}).items():
                for _ in range(int(config.get("warmup", 2))):
                    start = time.perf_counter()
                    contender.run(task, steps)
                    warmups.append(round(time.perf_counter() - start, 3))
            contenders[spec["id"]] = contender
            described = getattr(contender, "describe", dict)()
            status[spec["id"]] = {"ok": True, "warmup_s": warmups, "describe": described}
        except Exception as error:  # noqa: BLE001 - one contender failing is a result
            status[spec["id"]] = {"ok": False, "error": f"{type(error).__name__}: {error}"[:600]}
            traceback.print_exc()
    send({"ok": True, "contenders": status, "runtime": runtime})

    for line in sys.stdin:
        request = json.loads(line)
        if request.get("op") == "quit":
            break
        try:
            cpu = _cpu_seconds()
            seconds, count = contenders[request["id"]].run(request["task"], request["steps"])
            send(
                {"ok": True, "seconds": seconds, "count": count}
                | {"cpu_seconds": _cpu_seconds() - cpu}
            )
        except Exception as error:  # noqa: BLE001 - reported to the parent
            traceback.print_exc()
            send({"ok": False, "error": f"{type(error).__name__}: {error}"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
