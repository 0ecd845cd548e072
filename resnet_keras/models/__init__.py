"""Model builders: CIFAR ResNets, ImageNet ResNets and the seed article's network."""

from resnet_keras.models.cifar import CifarResNet, blocks_per_stage
from resnet_keras.models.imagenet import (
    ResNet18,
    ResNet34,
    ResNet50,
    ResNet50V2,
    ResNet101,
    ResNet101V2,
    ResNet152,
    ResNet152V2,
)
from resnet_keras.models.seed import SeedNet, SeedResNet

__all__ = [
    "CifarResNet",
    "ResNet18",
    "ResNet34",
    "ResNet50",
    "ResNet50V2",
    "ResNet101",
    "ResNet101V2",
    "ResNet152",
    "ResNet152V2",
    "SeedNet",
    "SeedResNet",
    "blocks_per_stage",
]
