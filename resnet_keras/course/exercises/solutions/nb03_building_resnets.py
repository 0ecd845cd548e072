"""Reference solutions of notebook 03, "Building ResNets" (open only after trying)."""

from __future__ import annotations

import keras
from keras import layers

QUESTION_ANSWERS = {
    "bottleneck_cost": "a",
    "preactivation_depth": "b",
}
"""The right letter of each conceptual question of the notebook (its checker module's
object of that name)."""

# Exercise 1: BasicBlock(32, strides=2, shortcut="B") on a 32x32x16 input.
# A KxK convolution from C_in to C_out channels holds K*K*C_in*C_out weights (no bias:
# the BN after it has a shift, beta); a BN layer trains gamma and beta, 2*C values.
# Option B projects the shortcut with a 1x1 convolution (+ BN) because 16 != 32 channels.
block_params = (
    3 * 3 * 16 * 32  # conv1: 4,608
    + 2 * 32  # bn1: 64
    + 3 * 3 * 32 * 32  # conv2: 9,216
    + 2 * 32  # bn2: 64
    + 1 * 1 * 16 * 32  # projection conv: 512
    + 2 * 32  # projection bn: 64
)  # = 14,528

# Exercise 2: every convolution output costs K*K*C_in multiply-adds, and the stride-2
# block computes its outputs on a 16x16 grid (BN, ReLU and the addition are not counted).
block_macs = (
    16 * 16 * 32 * (3 * 3 * 16)  # conv1: 1,179,648
    + 16 * 16 * 32 * (3 * 3 * 32)  # conv2: 2,359,296
    + 16 * 16 * 32 * (1 * 1 * 16)  # projection: 131,072
)  # = 3,670,016


def build_resnet32(num_classes=10):
    """Exercise 3: the CIFAR ResNet-32 of He et al. (2016) from `BasicBlock` layers.

    Depth 32 = 6n + 2 gives n = 5 blocks per stage. Each stage is a list of blocks;
    only the first block of stages 2 and 3 halves the resolution.
    """
    from resnet_keras.layers import BasicBlock

    inputs = keras.Input(shape=(32, 32, 3))
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, kernel_initializer="he_normal")(inputs)
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)
    x = layers.ReLU()(x)
    for stage, filters in enumerate((16, 32, 64)):
        blocks = [
            BasicBlock(filters, strides=2 if (stage > 0 and index == 0) else 1, shortcut="A")
            for index in range(5)
        ]
        for block in blocks:
            x = block(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(num_classes)(x)
    return keras.Model(inputs, outputs, name="my_resnet32")
