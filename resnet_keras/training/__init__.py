"""Training: the five-step GradientTape loop, `fit` with the paper's recipe, LR schedules,
the LR range test, the default callbacks and data-parallel training (`distributed`).

Examples:
    >>> from resnet_keras.training import get_recipe, paper_schedule
    >>> paper_schedule(64000).boundaries  # the last step at each LR before it drops
    [31999, 47999]
"""

from resnet_keras._optional import import_module as _import_module

# The schedules are Keras' own and the loss is registered for deserialisation, so a saved
# model loads with `import resnet_keras` alone; everything else here uses tf.data (TensorFlow)
# and is imported on first use, so that the package imports on the JAX and PyTorch
# backends without TensorFlow.
from resnet_keras.training.recipes import (
    RECIPES,
    Recipe,
    SparseCategoricalCrossentropyWithSmoothing,
    apply_weight_decay,
    get_recipe,
)
from resnet_keras.training.schedules import cosine_schedule, paper_schedule, schedule_values

_LAZY = {
    "BackupError": "resnet_keras.training.backup",
    "EpochSetter": "resnet_keras.training.callbacks",
    "EpochTimer": "resnet_keras.training.callbacks",
    "LRFinderResult": "resnet_keras.training.lr_finder",
    "LearningRateLogger": "resnet_keras.training.callbacks",
    "NAN_ADVICE": "resnet_keras.training.callbacks",
    "RunBackup": "resnet_keras.training.backup",
    "TerminateOnNaNWithAdvice": "resnet_keras.training.callbacks",
    "accelerator_settings": "resnet_keras.training.trainer",
    "backward": "resnet_keras.training.loop",
    "compute_loss": "resnet_keras.training.loop",
    "configure_precision": "resnet_keras.training.trainer",
    "data_parallel": "resnet_keras.training.distribute",
    "default_callbacks": "resnet_keras.training.callbacks",
    "distributed": "resnet_keras.training.distribute",
    "evaluate": "resnet_keras.training.loop",
    "find_learning_rate": "resnet_keras.training.lr_finder",
    "fit": "resnet_keras.training.trainer",
    "forward": "resnet_keras.training.loop",
    "initialise": "resnet_keras.training.loop",
    "make_train_step": "resnet_keras.training.loop",
    "model_distribution": "resnet_keras.training.distribute",
    "read_history_csv": "resnet_keras.training.callbacks",
    "repair_history_csv": "resnet_keras.training.callbacks",
    "suggest_learning_rate": "resnet_keras.training.lr_finder",
    "synchronized_batch_norm": "resnet_keras.training.distribute",
    "replicas": "resnet_keras.training.distribute",
    "visible_devices": "resnet_keras.training.distribute",
    "worker_out_dir": "resnet_keras.training.multiworker",
    "train_with_gradient_tape": "resnet_keras.training.loop",
    "update": "resnet_keras.training.loop",
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'resnet_keras.training' has no attribute {name!r}")
    value = getattr(_import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "NAN_ADVICE",
    "RECIPES",
    "BackupError",
    "EpochSetter",
    "EpochTimer",
    "LRFinderResult",
    "LearningRateLogger",
    "Recipe",
    "RunBackup",
    "SparseCategoricalCrossentropyWithSmoothing",
    "TerminateOnNaNWithAdvice",
    "accelerator_settings",
    "apply_weight_decay",
    "backward",
    "compute_loss",
    "configure_precision",
    "cosine_schedule",
    "data_parallel",
    "default_callbacks",
    "distributed",
    "evaluate",
    "find_learning_rate",
    "fit",
    "forward",
    "get_recipe",
    "initialise",
    "make_train_step",
    "model_distribution",
    "paper_schedule",
    "read_history_csv",
    "repair_history_csv",
    "schedule_values",
    "suggest_learning_rate",
    "synchronized_batch_norm",
    "replicas",
    "visible_devices",
    "worker_out_dir",
    "train_with_gradient_tape",
    "update",
]
