"""count_macs against the paper; gradient norms."""

import keras
import numpy as np
import pytest

import resnet_keras as rk


@pytest.mark.backend
def test_resnet20_multiply_adds_exact():
    assert rk.count_macs(rk.CifarResNet(20)) == 40_551_040


@pytest.mark.backend
@pytest.mark.parametrize(
    "builder, paper", [(rk.ResNet18, 1.8e9), (rk.ResNet34, 3.6e9), (rk.ResNet50, 3.8e9)]
)
def test_imagenet_multiply_adds_within_3_percent_of_table_1(builder, paper):
    assert abs(rk.count_macs(builder()) - paper) / paper < 0.03


@pytest.mark.backend
def test_count_macs_of_a_single_layer():
    import keras

    conv = keras.layers.Conv2D(8, 3, padding="same")
    conv.build((None, 16, 16, 4))
    assert rk.count_macs(conv) == 16 * 16 * 8 * 9 * 4


@pytest.mark.backend
@pytest.mark.parametrize(
    "layer, input_shape, expected",
    [
        # A grouped convolution: each output reads 8 / 4 input channels.
        (
            keras.layers.Conv2D(8, 3, padding="same", groups=4),
            (16, 16, 8),
            16 * 16 * 8 * 9 * 2,
        ),
        # Depthwise with multiplier 2: 8 output maps, one input channel each.
        (
            keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2),
            (16, 16, 4),
            16 * 16 * 8 * 9,
        ),
        # Separable: the depthwise 3x3, then a 1x1 from 4 to 8 channels.
        (
            keras.layers.SeparableConv2D(8, 3, padding="same"),
            (16, 16, 4),
            16 * 16 * 4 * 9 + 16 * 16 * 4 * 8,
        ),
        (keras.layers.Conv1D(8, 3, padding="same"), (32, 4), 32 * 8 * 3 * 4),
        # A dense layer on an image is a 1x1 convolution (ConvNeXt's MLP).
        (keras.layers.Dense(8), (4, 4, 16), 4 * 4 * 8 * 16),
    ],
)
def test_count_macs_of_grouped_depthwise_and_separable_layers(layer, input_shape, expected):
    layer.build((None, *input_shape))
    assert rk.count_macs(layer) == expected


@pytest.mark.backend
def test_count_macs_of_the_descendants_blocks_by_hand():
    from resnet_keras.layers import BottleneckBlock, ConvNeXtBlock, SqueezeExcitation

    se = SqueezeExcitation(reduction=4)
    se.build((None, 8, 8, 32))
    assert rk.count_macs(se) == 32 * 8 + 8 * 32  # two dense layers on the pooled 1x1 map
    # ResNet-D: the shortcut's 1x1 convolution reads the 4x4 average-pooled input.
    block = BottleneckBlock(16, strides=2, average_pool_shortcut=True)
    block.build((None, 8, 8, 32))
    branch = 8 * 8 * 16 * 32 + 4 * 4 * 16 * 9 * 16 + 4 * 4 * 64 * 16
    assert rk.count_macs(block) == branch + 4 * 4 * 64 * 32
    # ResNeXt: the 3x3 convolution in 32 groups (128 channels, 4 per group).
    grouped = BottleneckBlock(64, groups=32, width_per_group=4)
    grouped.build((None, 8, 8, 256))
    assert rk.count_macs(grouped) == 64 * (256 * 128 + 128 * 9 * 4 + 128 * 256)
    # ConvNeXt: 2x2 stride-2 downsampling, depthwise 7x7, the 4x MLP.
    convnext = ConvNeXtBlock(32, strides=2)
    convnext.build((None, 8, 8, 16))
    assert rk.count_macs(convnext) == 16 * (32 * 4 * 16 + 32 * 49 + 2 * 128 * 32)


def test_count_macs_errors():
    with pytest.raises(TypeError, match="model"):
        rk.count_macs("resnet20")
    with pytest.raises(ValueError, match="fixed `input_shape`"):
        rk.count_macs(rk.ResNet18(include_top=False))


@pytest.mark.backend
def test_gradient_norms_cover_every_kernel_in_order():
    model = rk.CifarResNet(20)
    x = np.random.RandomState(0).normal(size=(4, 32, 32, 3)).astype("float32")
    norms = rk.gradient_norms(model, x, np.array([0, 1, 2, 3]))
    assert len(norms) == 20  # 19 convolutions + the dense layer
    assert norms[0][0].startswith("stem_conv") and norms[-1][0].startswith("logits")
    first_block = [path for path, _ in norms if "stage1_block1" in path]
    assert first_block == ["stage1_block1/1_conv/kernel", "stage1_block1/2_conv/kernel"]
    assert all(np.isfinite(value) and value > 0 for _, value in norms)


def test_shortcuts_keep_gradient_norms_even_across_depth():
    # He et al. note that with BN the plain net's gradients do not vanish; at
    # initialisation they grow towards the input instead (by over 100x across
    # plain-56), while the shortcuts of ResNet-56 keep every layer's gradient
    # within a small factor of the others.
    x = np.random.RandomState(0).normal(size=(16, 32, 32, 3)).astype("float32")
    y = np.arange(16) % 10

    def spread(residual):
        rk.set_determinism(0)
        norms = [
            value for _, value in rk.gradient_norms(rk.CifarResNet(56, residual=residual), x, y)
        ]
        return max(norms) / min(norms)

    assert spread(residual=False) > 100
    assert spread(residual=True) < 20
