"""resnet_keras: residual networks for image classification with Keras 3.

The public face of the library: the model builders, the analysis helpers and
the submodules (`layers`, `models`, `analysis`; `lesion`, `landscape` and `saliency`
for looking inside a trained network, `transfer` for putting a new head on one and
`inference` for serving it, ...). `import resnet_keras` needs
only Keras and NumPy; the modules that need more import it when first used:
`data` and `training` (TensorFlow and tensorflow-datasets, for tf.data) and `plots`
(matplotlib and scikit-learn). The course's machinery (profiles, exercises, the
notebook runner) lives in `resnet_keras.course`, which the library never imports.

Examples:

>>> import resnet_keras as rk
>>> model = rk.CifarResNet(depth=20)
>>> rk.count_macs(model)
40551040
"""

# First, before anything imports TensorFlow: CPU kernel defaults read at its import, then
# TensorFlow's start-up without the C++ lines that read as errors on a CPU (_native_logs.py).
from resnet_keras import _runtime  # noqa: F401, I001
from resnet_keras import _native_logs  # noqa: F401


from resnet_keras import (
    analysis,
    inference,
    landscape,
    layers,
    lesion,
    models,
    saliency,
    transfer,
)
from resnet_keras._optional import import_module as _import_module
from resnet_keras._runtime import onednn_enabled
from resnet_keras.analysis import count_macs, count_trainable_params, gradient_norms
from resnet_keras.determinism import set_determinism
from resnet_keras.layers import BasicBlock, BottleneckBlock, ParameterFreeShortcut
from resnet_keras.models import (
    CifarResNet,
    CifarResNeXt,
    ConvNeXtTiny,
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
    SeedNet,
    SeedResNet,
    SEResNet50,
    WideResNet,
    WideResNet50_2,
)

# The training recipes' schedules and loss are registered with Keras when their modules are
# imported: importing them here makes every .keras file that `fit` or the command line saves
# load after `import resnet_keras` alone. They need Keras only, not TensorFlow.
from resnet_keras.training import recipes as _recipes  # noqa: F401

# The input pipelines and the trainer use tf.data, and the plots matplotlib, so they are
# imported on first use: the layers and models then import on the JAX and PyTorch backends
# without TensorFlow or matplotlib installed (a GPU machine with only JAX, say).
_LAZY = {
    "data": ("resnet_keras.data", None),
    "plots": ("resnet_keras.plots", None),
    "load": ("resnet_keras.data", "load"),
    "show_images": ("resnet_keras.data", "show_images"),
    "find_learning_rate": ("resnet_keras.training", "find_learning_rate"),
    "fit": ("resnet_keras.training", "fit"),
    "train_with_gradient_tape": ("resnet_keras.training", "train_with_gradient_tape"),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'resnet_keras' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = _import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "BasicBlock",
    "BottleneckBlock",
    "CifarResNet",
    "CifarResNeXt",
    "ConvNeXtTiny",
    "ParameterFreeShortcut",
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
    "analysis",
    "count_macs",
    "count_trainable_params",
    "data",
    "find_learning_rate",
    "fit",
    "landscape",
    "lesion",
    "load",
    "show_images",
    "train_with_gradient_tape",
    "transfer",
    "training",
    "gradient_norms",
    "inference",
    "layers",
    "models",
    "onednn_enabled",
    "plots",
    "saliency",
    "set_determinism",
]
