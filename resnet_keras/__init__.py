"""resnet_keras: residual networks for image classification with Keras 3.

The public face of the library: the model builders, the analysis helpers and
the submodules (`layers`, `models`, `analysis`, ...).

Examples:

>>> import resnet_keras as rk
>>> model = rk.CifarResNet(depth=20)
>>> rk.count_macs(model)
40551040
"""

# First, before anything imports TensorFlow: CPU kernel defaults read at its import.
from resnet_keras import _runtime  # noqa: F401, I001

from resnet_keras import analysis, data, exercises, layers, models, plots, profiles, training
from resnet_keras._runtime import onednn_enabled
from resnet_keras.analysis import count_macs, count_trainable_params, gradient_norms
from resnet_keras.data import load, show_images
from resnet_keras.determinism import set_determinism
from resnet_keras.layers import BasicBlock, BottleneckBlock, ParameterFreeShortcut
from resnet_keras.models import (
    CifarResNet,
    ResNet18,
    ResNet34,
    ResNet50,
    ResNet50V2,
    ResNet101,
    ResNet101V2,
    ResNet152,
    ResNet152V2,
    SeedNet,
    SeedResNet,
)
from resnet_keras.profiles import Profile, get_profile
from resnet_keras.training import find_learning_rate, fit, train_with_gradient_tape

__version__ = "0.1.0"

__all__ = [
    "BasicBlock",
    "BottleneckBlock",
    "CifarResNet",
    "ParameterFreeShortcut",
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
    "analysis",
    "count_macs",
    "Profile",
    "count_trainable_params",
    "data",
    "exercises",
    "find_learning_rate",
    "fit",
    "get_profile",
    "load",
    "profiles",
    "show_images",
    "train_with_gradient_tape",
    "training",
    "gradient_norms",
    "layers",
    "models",
    "onednn_enabled",
    "plots",
    "set_determinism",
]
