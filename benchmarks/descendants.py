"""The descendant blocks against the same networks written from stock Keras layers (issue 27).

Budget of issue 27: a training step of a network built from the library's new layers within
0.9x of the same network written directly from `keras.layers`. Four small CIFAR networks
(32x32x3, 10 classes), one per descendant block, each in two or three versions:

- `library`: the library's builder (`CifarResNeXt`, `CifarResNet(block=...)`);
- `stock`: the same layers, in the same order, from `keras.layers` only (`Conv2D` with
  `groups=`, `DepthwiseConv2D`, `BatchNormalization`, `LayerNormalization`,
  `GlobalAveragePooling2D`, `Dense`, `Add`, `Multiply`, `AveragePooling2D`, `ZeroPadding2D`),
  plus, for ConvNeXt, a per-channel learned scale written as keras.applications' ConvNeXt
  writes its own `LayerScale` (`inputs * gamma`; Keras ships no such layer);
- `stock-fused-bn`: `stock` with the library's
  `FusedBatchNormalization` (Keras' layer computed by one TensorFlow kernel) in place of
  `BatchNormalization`, so that the rest of the block is compared on equal terms.

Before anything is timed, `check_same_network` asserts that library and stock have the same
trainable and non-trainable parameter counts (a `RuntimeError` otherwise); the tests also
copy the weights across and compare the outputs. Every version trains with the same SGD
(momentum 0.9) and loss, `jit_compile=False` (the library's default on a CPU), through
`train_on_batch` on batches in memory; the versions of one network share a TensorFlow
worker process and alternate round by round, and a ratio is the median of per-round ratios.
"""

from __future__ import annotations

import statistics
import time

from benchmarks import _harness as h

VARIANTS = ("library", "stock", "stock-fused-bn")
# network -> (what it is, the library's builder call as text)
NETWORKS = {
    "resnext": ("ResNeXt (grouped 3x3 convolution)", "CifarResNeXt(11, cardinality=4, width=8)"),
    "se": (
        "squeeze-and-excitation basic blocks",
        'CifarResNet(14, block="se_basic", shortcut="B")',
    ),
    "resnet_d": (
        "ResNet-D average-pool shortcut (bottleneck)",
        'CifarResNet(20, block="bottleneck_d", shortcut="B")',
    ),
    "convnext": (
        "ConvNeXt blocks",
        'CifarResNet(20, block="convnext", preactivation=True, shortcut="B")',
    ),
}
GOAL = 0.9
FULL = dict(batch=128, steps=2, repeats=6, warmup=2, lifetimes=1)
FULL["networks"] = tuple(NETWORKS)
QUICK = dict(batch=4, steps=1, repeats=2, warmup=1, lifetimes=1, networks=tuple(NETWORKS))
BN = dict(momentum=0.9, epsilon=1e-5)


# --- the networks (imported in the worker) -----------------------------------------------------


def library_network(network):
    """The library's version of `network` (a key of `NETWORKS`)."""
    import resnet_keras as rk
    from resnet_keras.models import CifarResNeXt

    if network == "resnext":
        return CifarResNeXt(11, cardinality=4, width=8)
    if network == "se":
        return rk.CifarResNet(14, block="se_basic", shortcut="B")
    if network == "resnet_d":
        return rk.CifarResNet(20, block="bottleneck_d", shortcut="B")
    if network == "convnext":
        return rk.CifarResNet(20, block="convnext", preactivation=True, shortcut="B")
    raise ValueError(f"unknown network {network!r}; allowed: {', '.join(NETWORKS)}")


def _layer_scale_class():
    import keras

    class ChannelScale(keras.layers.Layer):
        """A learned per-channel scale, as keras.applications' ConvNeXt writes `LayerScale`."""

        def __init__(self, init_value, **kwargs):
            super().__init__(**kwargs)
            self.init_value = init_value

        def build(self, input_shape):
            self.gamma = self.add_weight(
                shape=(input_shape[-1],),
                initializer=keras.initializers.Constant(self.init_value),
                name="gamma",
            )

        def call(self, inputs):
            return inputs * self.gamma

    return ChannelScale


class _Stock:
    """Builds one network from stock layers; `fused_bn` swaps in the library's BN kernel."""

    def __init__(self, fused_bn=False):
        import keras

        self.keras, self.layers = keras, keras.layers
        if fused_bn:
            from resnet_keras.layers import FusedBatchNormalization as Norm
        else:
            Norm = keras.layers.BatchNormalization
        self.norm = Norm

    def conv(self, x, filters, kernel, strides=1, groups=1, name=None, bias=False):
        layers = self.layers
        if kernel > 1 and strides > 1:
            # The library pads a strided 3x3 convolution by one pixel on every side (as
            # PyTorch does); "same" would pad only bottom and right.
            x = layers.ZeroPadding2D(1)(x)
            padding = "valid"
        else:
            padding = "same"
        return layers.Conv2D(
            filters,
            kernel,
            strides=strides,
            padding=padding,
            groups=groups,
            use_bias=bias,
            kernel_initializer="he_normal",
            name=name,
        )(x)

    def bn(self, x, name=None):
        return self.norm(name=name, **BN)(x)

    def relu(self, x):
        return self.layers.ReLU()(x)

    def stem(self, inputs, filters, normalise=True):
        x = self.conv(inputs, filters, 3, name="stem_conv")
        return self.relu(self.bn(x, "stem_bn")) if normalise else x

    def head(self, x, inputs, name):
        x = self.layers.GlobalAveragePooling2D()(x)
        outputs = self.layers.Dense(10, dtype="float32", name="logits")(x)
        return self.keras.Model(inputs, outputs, name=name)

    def squeeze_excitation(self, x, name, reduction=16):
        layers, channels = self.layers, x.shape[-1]
        gate = layers.GlobalAveragePooling2D(keepdims=True)(x)
        squeeze = max(1, channels // reduction)
        gate = layers.Dense(squeeze, activation="relu", name=f"{name}_se_squeeze")(gate)
        gate = layers.Dense(channels, activation="sigmoid", name=f"{name}_se_excite")(gate)
        return layers.Multiply()([x, gate])

    def basic_block(self, x, filters, strides, name, attention=False):
        """v1 basic block, option B (projection where the shape changes)."""
        shortcut = x
        if strides > 1 or x.shape[-1] != filters:
            shortcut = self.conv(x, filters, 1, strides, name=f"{name}_0_conv")
            shortcut = self.bn(shortcut, f"{name}_0_bn")
        y = self.relu(
            self.bn(self.conv(x, filters, 3, strides, name=f"{name}_1_conv"), f"{name}_1_bn")
        )
        y = self.bn(self.conv(y, filters, 3, name=f"{name}_2_conv"), f"{name}_2_bn")
        if attention:
            y = self.squeeze_excitation(y, name)
        return self.relu(self.layers.Add()([y, shortcut]))

    def bottleneck_block(self, x, filters, strides, name, groups=1, width=64, pool=False):
        """v1 bottleneck (stride on the 3x3), option B; ResNeXt's width rule; ResNet-D pool."""
        inner, out = filters * width // 64 * groups, filters * 4
        y = self.conv(x, inner, 1, name=f"{name}_1_conv")
        y = self.relu(self.bn(y, f"{name}_1_bn"))
        y = self.conv(y, inner, 3, strides, groups=groups, name=f"{name}_2_conv")
        y = self.relu(self.bn(y, f"{name}_2_bn"))
        shortcut = x
        if strides > 1 or x.shape[-1] != out:
            if pool and strides > 1:
                shortcut, strides = self.layers.AveragePooling2D(2, 2, padding="same")(x), 1
            shortcut = self.conv(shortcut, out, 1, strides, name=f"{name}_0_conv")
            shortcut = self.bn(shortcut, f"{name}_0_bn")
        y = self.bn(self.conv(y, out, 1, name=f"{name}_3_conv"), f"{name}_3_bn")
        return self.relu(self.layers.Add()([y, shortcut]))

    def convnext_block(self, x, filters, strides, name, scale):
        layers = self.layers
        if strides > 1 or x.shape[-1] != filters:
            x = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_downsample_norm")(x)
            x = layers.Conv2D(
                filters, strides, strides=strides, padding="same", name=f"{name}_downsample_conv"
            )(x)
        y = layers.DepthwiseConv2D(7, padding="same", name=f"{name}_depthwise_conv")(x)
        y = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm")(y)
        y = layers.Dense(4 * filters, activation="gelu", name=f"{name}_pointwise_conv_1")(y)
        y = layers.Dense(filters, name=f"{name}_pointwise_conv_2")(y)
        y = scale(1e-6, name=f"{name}_layer_scale")(y)
        return layers.Add()([y, x])


def stock_network(network, fused_bn=False):
    """`network` written from stock Keras layers (`fused_bn`: the library's BN kernel)."""
    import keras

    s = _Stock(fused_bn)
    inputs = keras.Input((32, 32, 3))
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network!r}; allowed: {', '.join(NETWORKS)}")
    # Three stages (the first block of stages 2 and 3 halves the resolution), named as the
    # library names its blocks, so that `transfer_weights` can pair the layers.
    blocks = 1 if network == "resnext" else 2
    stages = [
        (f"stage{stage}_block{index}", 2 ** (stage - 1), 2 if stage > 1 and index == 1 else 1)
        for stage in (1, 2, 3)
        for index in range(1, blocks + 1)
    ]
    if network == "resnext":
        x = s.stem(inputs, 64)
        for name, scale, strides in stages:
            x = s.bottleneck_block(x, 64 * scale, strides, name, groups=4, width=8)
    elif network == "se":
        x = s.stem(inputs, 16)
        for name, scale, strides in stages:
            x = s.basic_block(x, 16 * scale, strides, name, attention=True)
    elif network == "resnet_d":
        x = s.stem(inputs, 16)
        for name, scale, strides in stages:
            x = s.bottleneck_block(x, 16 * scale, strides, name, pool=True)
    else:  # convnext: a pre-activation layout, no BN after the stem, BN -> ReLU at the end
        x, layer_scale = s.stem(inputs, 16, normalise=False), _layer_scale_class()
        for name, scale, strides in stages:
            x = s.convnext_block(x, 16 * scale, strides, name, layer_scale)
        x = s.relu(s.bn(x, "post_bn"))
    return s.head(x, inputs, f"stock_{network}")


def parameter_counts(model):
    """(trainable, non-trainable) scalars of `model`."""
    import numpy as np

    def count(weights):
        return int(sum(np.prod(w.shape) for w in weights))

    return count(model.trainable_weights), count(model.non_trainable_weights)


def check_same_network(library, stock):
    """Raises `RuntimeError` unless both models have the same parameter counts."""
    ours, theirs = parameter_counts(library), parameter_counts(stock)
    if ours != theirs:
        raise RuntimeError(
            f"{library.name}: the stock network is not the same network: (trainable, "
            f"non-trainable) parameters {theirs} against the library's {ours}"
        )
    return ours


def transfer_weights(library, stock):
    """Copies the library model's weights into its stock twin, layer by layer by name.

    A grouped convolution with one channel per group (the library's depthwise 7x7) keeps
    its kernel as (7, 7, 1, C); `DepthwiseConv2D` as (7, 7, C, 1).
    """
    import numpy as np

    by_name = {w.path: w for w in stock.weights}
    if len(by_name) != len(library.weights):
        raise RuntimeError(f"{len(by_name)} stock weights against {len(library.weights)}")
    for weight in library.weights:
        layer, _, variable = weight.path.rpartition("/")
        target = by_name.pop(f"{layer.replace('/', '_')}/{variable}")
        value = np.asarray(weight.numpy())
        if value.shape != tuple(target.shape):
            value = np.swapaxes(value, 2, 3)
        target.assign(value)


def build(network, variant):
    """The model of `variant` ("library", "stock", "stock-fused-bn"), checked against the
    library's parameter counts."""
    import keras

    keras.utils.set_random_seed(0)
    library = library_network(network)
    if variant == "library":
        return library
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; allowed: {', '.join(VARIANTS)}")
    stock = stock_network(network, fused_bn=variant == "stock-fused-bn")
    check_same_network(library, stock)
    return stock


class BlockNetwork:
    """A worker contender: one version of one network, compiled, timed by `train_on_batch`."""

    def __init__(self, network="resnext", variant="library", batch=128, **_):
        import keras

        from benchmarks._worker import _KerasModel, _synthetic_batches

        self.model = build(network, variant)
        self.model.compile(
            optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=False,
        )
        self.model.optimizer.build(self.model.trainable_variables)  # else traced twice
        self._timer = _KerasModel()
        self._timer.model = self.model
        self._timer._hold(keras, *_synthetic_batches(batch, (32, 32, 3)), batch)

    def run(self, task, steps):
        return self._timer.run(task, steps)

    def describe(self):
        import resnet_keras as rk

        trainable, frozen = parameter_counts(self.model)
        return {"trainable": trainable, "non_trainable": frozen, "macs": rk.count_macs(self.model)}


# --- the parent (imports no framework) ---------------------------------------------------------


def _label(network, variant):
    return f"{network}/{variant}"


def run(quick=False, threads=None, log=print, **overrides):
    """Training images/s of every network's versions, side by side, and their ratios.

    Returns:
        A `Result`; `numbers`: `images_per_s/{network}/{variant}` (median over rounds);
        `ratios`: `{network}/library_vs_{variant}` (median of per-round ratios, pooled over
        the process lifetimes) with `_low` / `_high` (95 % bootstrap interval over lifetimes
        and rounds).
    """
    settings = h.merge_settings(QUICK if quick else FULL, overrides)
    threads = threads or h.default_threads()
    networks = list(settings["networks"])
    for network in networks:
        if network not in NETWORKS:
            raise ValueError(f"unknown network {network!r}; allowed: {', '.join(NETWORKS)}")
    labels = [_label(n, v) for n in networks for v in VARIANTS]
    lifetimes, replies, described = [], [], {}
    for index in range(settings["lifetimes"]):
        log(f"process lifetime {index + 1}/{settings['lifetimes']}")
        started = time.perf_counter()
        groups = {
            network: {
                "env": {"KERAS_BACKEND": "tensorflow"},
                "contenders": [
                    dict(id=_label(network, variant), kind="block_network", network=network)
                    | dict(variant=variant, batch=settings["batch"])
                    | dict(warmup_tasks={"train": settings["steps"]})
                    for variant in VARIANTS
                ],
            }
            for network in networks
        }
        workers, status, failures = h.start_workers_together(
            groups, threads, settings["warmup"], log
        )
        try:
            if failures:
                raise RuntimeError(f"{', '.join(failures)} failed: {next(iter(failures.values()))}")
            log(f"warm-up done in {time.perf_counter() - started:.0f} s; measuring")
            described = {label: status[label]["describe"] for label in labels}
            replies.append({label: [] for label in labels})
            runners = {
                label: h.runner(workers, label, "train", settings["steps"], replies[-1][label])
                for label in labels
            }
            lifetimes.append(h.alternate(runners, settings["repeats"], log=log))
        finally:
            h.close_workers(workers)
    return _report(settings, threads, quick, networks, lifetimes, replies, described)


def _report(settings, threads, quick, networks, lifetimes, replies, described):
    numbers, ratios, rows = {}, {}, []
    for network in networks:
        library = _label(network, "library")
        pooled = {
            variant: [v for life in lifetimes for v in life[_label(network, variant)].values]
            for variant in VARIANTS
        }
        for variant in VARIANTS:
            numbers[f"images_per_s/{network}/{variant}"] = statistics.median(pooled[variant])
        cells = {}
        for variant in VARIANTS[1:]:
            other = _label(network, variant)
            groups = [
                h.round_ratios(zip(life[library].values, life[other].values)) for life in lifetimes
            ]
            groups = [group for group in groups if group]
            key = f"{network}/library_vs_{variant}"
            ratios[key] = statistics.median([r for group in groups for r in group])
            ratios[f"{key}_low"], ratios[f"{key}_high"] = h.clustered_median_interval(groups)
            cpu = [h.per_cpu_second_ratios(life[library], life[other]) for life in replies]
            cpu = [group for group in cpu if group]
            ratios[f"{key}_cpu"] = statistics.median([r for group in cpu for r in group])
            cells[variant] = (
                f"**{h.fmt(ratios[key], 2)}** ({h.fmt(ratios[f'{key}_low'], 2)}-"
                f"{h.fmt(ratios[f'{key}_high'], 2)})"
            )
            cells[f"{variant}_cpu"] = h.fmt(ratios[f"{key}_cpu"], 2)
        spreads = [h.fmt_spread(h.Samples(v, pooled[v])) for v in VARIANTS]
        info = described[library]
        meets = "yes" if ratios[f"{network}/library_vs_stock"] >= GOAL else "**no**"
        rows.append(
            [f"{NETWORKS[network][0]}: `{NETWORKS[network][1]}`"]
            + [f"{info['trainable']:,} + {info['non_trainable']:,}", h.fmt(info["macs"] / 1e6)]
            + spreads
            + [cells["stock"], cells["stock_cpu"], meets]
            + [cells["stock-fused-bn"], cells["stock-fused-bn_cpu"]]
        )
    header = ["network (library builder)", "parameters (trainable + BN statistics)", "MMACs"]
    header += [f"{v} images/s median (min-max)" for v in VARIANTS]
    header += [f"library / stock, goal >= {GOAL}", "per CPU-second", "goal met"]
    header += ["library / stock-fused-bn", "per CPU-second"]
    intro = (
        f"Training step (`train_on_batch`: forward, backward, SGD momentum 0.9) of each network "
        f"in the library's version and written from stock Keras layers, batch "
        f"{settings['batch']}, synthetic 32x32x3 images, TensorFlow, {threads} threads, "
        f"`jit_compile=False`; one worker process per network holds its versions, "
        f"{settings['repeats']} alternating rounds of {settings['steps']} steps after "
        f"{settings['warmup']} warm-up calls, in {len(lifetimes)} process lifetime(s). Ratios: "
        "median of per-round ratios pooled over the lifetimes, 95 % bootstrap interval over "
        "lifetimes and rounds; per CPU-second: the same of images per CPU-second of the "
        "worker process, which a stall of a shared machine does not move"
        f"{' (QUICK MODE: not representative)' if quick else ''}."
    )
    return h.Result(
        name="descendants",
        title="The descendant blocks against the same networks in stock Keras layers",
        markdown=intro + "\n\n" + h.markdown_table(header, rows),
        numbers=numbers,
        ratios=ratios,
    )
