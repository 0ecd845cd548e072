"""Model builders: CIFAR ResNets, ImageNet ResNets, their descendants and the seed
article's network."""

from resnet_keras.models.cifar import CifarResNet, blocks_per_stage
from resnet_keras.models.convnext import ConvNeXtTiny
from resnet_keras.models.descendants import PUBLISHED, CifarResNeXt, Published, WideResNet
from resnet_keras.models.imagenet import (
    ResNet18,
    ResNet34,
    ResNet50,
    ResNet50D,
    ResNet50V2,
    ResNet101,
    ResNet101V2,
    ResNet152,
    ResNet152V2,
    ResNeXt50,
    SEResNet50,
    WideResNet50_2,
)
from resnet_keras.models.seed import SeedNet, SeedResNet

__all__ = [
    "PUBLISHED",
    "CifarResNeXt",
    "CifarResNet",
    "ConvNeXtTiny",
    "Published",
    "ResNet18",
    "ResNet34",
    "ResNet50",
    "ResNet50D",
    "ResNet50V2",
    "ResNet101",
    "ResNet101V2",
    "ResNet152",
    "ResNet152V2",
    "ResNeXt50",
    "SEResNet50",
    "SeedNet",
    "SeedResNet",
    "WideResNet",
    "WideResNet50_2",
    "blocks_per_stage",
]
