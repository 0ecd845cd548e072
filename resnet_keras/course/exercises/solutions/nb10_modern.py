"""Reference solutions of notebook 10, "Modern ResNets" (open only after trying)."""

from __future__ import annotations

__all__ = ["QUESTION_ANSWERS", "block_cost", "se_resnext"]

QUESTION_ANSWERS = {
    "what_resnet_d_changes": "b",
}
"""The answer of each conceptual question of the notebook (its checker module's object of
that name)."""


def block_cost(channels, width, groups, side):
    """Parameters and multiply-adds of a stride-1 ResNeXt bottleneck on side x side maps.

    1x1 (channels -> width), grouped 3x3 (width -> width, each output reading width / groups
    inputs), 1x1 (width -> channels), no biases; a BatchNormalization (gamma and beta) after
    each; the identity shortcut costs nothing.

    Examples:

    >>> block_cost(256, 128, 32, 56)  # ResNeXt-50's first-stage block
    (71168, 219971584)
    """
    kernels = channels * width + 3 * 3 * (width // groups) * width + width * channels
    batch_norm = 2 * (width + width + channels)
    return kernels + batch_norm, side * side * kernels


def se_resnext():
    """SE-ResNeXt-29 with 4 groups of 32 channels per 64 filters, through the registry.

    Examples:

    >>> import resnet_keras as rk
    >>> rk.count_trainable_params(se_resnext())
    466158
    """
    import resnet_keras as rk
    from resnet_keras.layers import BottleneckBlock, register_block

    register_block(
        "se_resnext",
        BottleneckBlock,
        3,
        {"groups": 4, "width_per_group": 32, "attention": "squeeze_excitation"},
    )
    return rk.CifarResNet(29, block="se_resnext", shortcut="B")
