"""The ResNet's descendants on CIFAR, and the published size of every descendant.

The CIFAR builders are `CifarResNet`'s layout with other widths and blocks:

* `WideResNet(depth, width)`: Zagoruyko and Komodakis (2016), WRN-d-k: pre-activation
  basic blocks, stages of 16k, 32k and 64k filters, depth 6n+4.
* `CifarResNeXt(depth, cardinality, width)`: Xie et al. (2017), Sec. 5.3, ResNeXt-29
  (8x64d): a 64-filter stem and bottlenecks of 256, 512 and 1024 output channels whose
  grouped 3x3 convolution has `cardinality` groups of `width` (then 2x, 4x) channels.

The ImageNet descendants are `ResNeXt50`, `WideResNet50_2`, `ResNet50D`, `SEResNet50`
(`resnet_keras.models.imagenet`) and `ConvNeXtTiny` (`resnet_keras.models.convnext`).

`PUBLISHED` holds, beside each builder, the size its source publishes; one test
(tests/test_descendants.py) builds every entry and checks it. Parameters are counted as
torch counts them, `sum(p.numel() for p in model.parameters())`, which is what
torchvision's `num_params` and the papers report: every trainable weight (kernels,
biases, batch normalisation's gamma and beta, layer normalisation, layer scale), not
batch normalisation's moving mean and variance, which torch keeps as buffers. In Keras
those statistics are (non-trainable) weights, so `model.count_params()` exceeds the
published figure by two per batch-normalised channel; `resnet_keras.count_trainable_params`
is the published convention. (ConvNeXt normalises by layers, which have no statistics: both
counts agree, and equal keras.applications' `ConvNeXtTiny(weights=None).count_params()`.)
Multiply-adds are `resnet_keras.count_macs` at 224x224 against torchvision's and timm's
published "GFLOPS"/"GMACs", which count multiply-adds of convolutions and dense layers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from resnet_keras._validation import check_int, check_positive_int
from resnet_keras.models.cifar import _cifar_network, blocks_per_stage
from resnet_keras.models.convnext import ConvNeXtTiny
from resnet_keras.models.imagenet import ResNet50D, ResNeXt50, SEResNet50, WideResNet50_2


def WideResNet(
    depth=28,
    width=10,
    num_classes=10,
    input_shape=(32, 32, 3),
    batch_norm_momentum=0.9,
    kernel_regularizer=None,
    name=None,
):
    """WRN-`depth`-`width` of Zagoruyko and Komodakis (2016), for CIFAR.

    The pre-activation CIFAR ResNet ("Identity Mappings") made `width` times wider:
    a 16-filter stem, then three stages of n basic blocks with 16k, 32k and 64k
    filters, with 1x1 projection shortcuts where the width changes (option B, their
    code's), a final BN -> ReLU, pooling and logits. The depth counts the stem, the
    6n convolutions of the blocks, the classifier and one projection: 6n + 4 (28 for
    n = 4). The paper's dropout between the two convolutions of a block is not built
    (it adds no parameters).

    Args:
        depth: 6n+4 (10, 16, 22, 28, 40).
        width: the widening factor k (1 is a pre-activation ResNet of depth 6n+2 with
            projection shortcuts).
        num_classes, input_shape, batch_norm_momentum, kernel_regularizer: as
            `CifarResNet`'s (10 classes, 32x32x3 images by default).
        name: model name; defaults to "wrn28_10".

    Returns:
        A `keras.Model` mapping images to logits.

    Raises:
        ValueError: if `depth` is not 6n+4 or `width` not a positive integer.

    Examples:

    >>> import resnet_keras as rk
    >>> from resnet_keras.models import WideResNet
    >>> model = WideResNet(16, 4)
    >>> model.name, rk.count_trainable_params(model)  # WRN-16-4: 2.7M in the paper
    ('wrn16_4', 2748890)
    """
    check_int("depth", depth, 10)
    width = check_positive_int("width", width)
    if (depth - 4) % 6:
        raise ValueError(f"`depth` must be 6n+4 (e.g. 10, 16, 22, 28, 40); received {depth}.")
    return _cifar_network(
        "basic",
        (depth - 4) // 6,
        tuple(filters * width for filters in (16, 32, 64)),
        stem_filters=16,
        preactivation=True,
        num_classes=num_classes,
        input_shape=input_shape,
        batch_norm_momentum=batch_norm_momentum,
        kernel_regularizer=kernel_regularizer,
        name=name or f"wrn{depth}_{width}",
        shortcut="B",
    )


def CifarResNeXt(
    depth=29,
    cardinality=8,
    width=64,
    num_classes=10,
    input_shape=(32, 32, 3),
    batch_norm_momentum=0.9,
    kernel_regularizer=None,
    name=None,
):
    """ResNeXt-`depth` (`cardinality`x`width`d) of Xie et al. (2017), Sec. 5.3, for CIFAR.

    A 64-filter 3x3 stem, three stages of n ResNeXt bottlenecks (the registry's
    "resnext" block) with 256, 512 and 1024 output channels, 1x1 projections where the
    width changes (their code's option B), pooling and logits. The grouped 3x3
    convolution of stage s has `cardinality` groups of `width * 2**(s-1)` channels: 8
    groups of 64, 128 and 256 channels for 8x64d. Depth 9n+2 (29 for n = 3).

    Args:
        depth: 9n+2 (11, 20, 29, ...).
        cardinality: groups of the 3x3 convolutions (8 or 16 in the paper's Table 7).
        width: channels per group in the first stage (64 in Table 7).
        num_classes, input_shape, batch_norm_momentum, kernel_regularizer: as
            `CifarResNet`'s (10 classes, 32x32x3 images by default).
        name: model name; defaults to "resnext29_8x64d".

    Returns:
        A `keras.Model` mapping images to logits.

    Examples:

    >>> import resnet_keras as rk
    >>> from resnet_keras.models import CifarResNeXt
    >>> model = CifarResNeXt(11, cardinality=2, width=16)
    >>> model.name, rk.count_macs(model)
    ('resnext11_2x16d', 160638976)
    """
    n = blocks_per_stage(depth, "resnext")
    return _cifar_network(
        "resnext",
        n,
        (64, 128, 256),
        stem_filters=64,
        preactivation=False,
        num_classes=num_classes,
        input_shape=input_shape,
        batch_norm_momentum=batch_norm_momentum,
        kernel_regularizer=kernel_regularizer,
        name=name or f"resnext{depth}_{cardinality}x{width}d",
        shortcut="B",
        groups=check_positive_int("cardinality", cardinality),
        width_per_group=check_positive_int("width", width),
    )


@dataclasses.dataclass(frozen=True)
class Published:
    """What a descendant's source publishes, beside the builder that makes it.

    Attributes:
        builder: The model builder.
        arguments: Its arguments for the counted model (1,000 classes at 224x224 for
            ImageNet, 10 classes for CIFAR: the defaults).
        parameters: This library's count, as torch counts (see the module docstring).
        published: The source's count: an int where it is published exactly (then equal
            to `parameters`), else the text the paper prints, e.g. "34.4M".
        source: Where the figures come from.
        macs: The published multiply-adds of one image, or None where none is published.
    """

    builder: Callable
    arguments: dict
    parameters: int
    published: int | str
    source: str
    macs: float | None = None

    def build(self):
        """The counted model."""
        return self.builder(**self.arguments)


PUBLISHED = {
    "resnext50_32x4d": Published(
        ResNeXt50,
        {},
        25_028_904,
        25_028_904,
        "torchvision resnext50_32x4d (num_params; _ops 4.23 GFLOPS)",
        4.23e9,
    ),
    "wide_resnet50_2": Published(
        WideResNet50_2,
        {},
        68_883_240,
        68_883_240,
        "torchvision wide_resnet50_2 (num_params; _ops 11.398 GFLOPS)",
        11.398e9,
    ),
    "resnet50d": Published(
        ResNet50D,
        {},
        25_576_264,
        25_576_264,
        "fastai xresnet50 and timm resnet50d (25.58M params, 4.35 GMACs); He et al. 2019",
        4.35e9,
    ),
    "seresnet50": Published(
        SEResNet50,
        {},
        28_088_024,
        28_088_024,
        "Hu et al. 2018, Table 2 (28.1M); timm seresnet50 (28.09M params, 4.11 GMACs)",
        4.11e9,
    ),
    "convnext_tiny": Published(
        ConvNeXtTiny,
        {},
        28_589_128,
        28_589_128,
        "torchvision convnext_tiny (num_params; _ops 4.456 GFLOPS); "
        "keras.applications.ConvNeXtTiny(weights=None).count_params()",
        4.456e9,
    ),
    "resnext29_8x64d": Published(
        CifarResNeXt,
        {"depth": 29, "cardinality": 8, "width": 64},
        34_426_698,
        "34.4M",
        "Xie et al. 2017, Table 7",
    ),
    "wrn28_10": Published(
        WideResNet,
        {"depth": 28, "width": 10},
        36_479_194,
        "36.5M",
        "Zagoruyko and Komodakis 2016, Table 5",
    ),
}
"""The descendants by name: builder, arguments, and the published parameters (and MACs)."""
