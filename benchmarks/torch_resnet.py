"""The CIFAR ResNet of `rk.CifarResNet(depth)` written directly in PyTorch, as the yardstick.

3x3 stem with 16 filters, three stages of n basic blocks (16/32/64 filters on 32/16/8
maps), option-A shortcuts (strided subsampling, zero channels split before and after),
BN momentum 0.9 in Keras' convention (0.1 in PyTorch's) and epsilon 1e-5, no conv bias,
global average pooling, a 10-way dense layer. Multiply-adds and parameters are the
library's (tests/test_benchmarks.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _Block(nn.Module):
    def __init__(self, in_channels, channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
        self.stride = stride
        self.extra = channels - in_channels

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x
        if self.stride > 1:
            shortcut = shortcut[:, :, :: self.stride, :: self.stride]
        if self.extra:
            before = self.extra // 2
            shortcut = F.pad(shortcut, (0, 0, 0, 0, before, self.extra - before))
        return F.relu(out + shortcut)


class TorchCifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 images, option-A shortcuts; outputs logits."""

    def __init__(self, depth=20, num_classes=10):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"`depth` must be 6n+2 (20, 32, 44, 56, 110); received {depth}.")
        n = (depth - 2) // 6
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(16, eps=1e-5, momentum=0.1)
        blocks, channels = [], 16
        for stage, width in enumerate((16, 32, 64)):
            for index in range(n):
                stride = 2 if (stage > 0 and index == 0) else 1
                blocks.append(_Block(channels, width, stride))
                channels = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")

    def forward(self, x):
        x = F.relu(self.stem_bn(self.stem(x)))
        x = self.blocks(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def count_macs(depth=20, num_classes=10, size=32):
    """Multiply-adds of one image through the convolutions and the dense layer."""
    model, total = TorchCifarResNet(depth, num_classes), []

    def hook(module, inputs, output):
        # Each output position of a layer costs one multiply-add per weight of its filter.
        total.append(output[0].numel() // module.weight.shape[0] * module.weight.numel())

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    hooks = [layer.register_forward_hook(hook) for layer in layers]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for handle in hooks:
        handle.remove()
    return sum(total)
