"""Training: the five-step GradientTape loop, `fit` with the paper's recipe, LR schedules,
the LR range test and the default callbacks.

Examples:
    >>> from resnet_keras.training import get_recipe, paper_schedule
    >>> paper_schedule(64000).boundaries
    [32000, 48000]
"""

from resnet_keras.training.callbacks import (
    NAN_ADVICE,
    EpochTimer,
    FiniteBackupAndRestore,
    LearningRateLogger,
    TerminateOnNaNWithAdvice,
    default_callbacks,
    read_history_csv,
)
from resnet_keras.training.loop import (
    backward,
    compute_loss,
    evaluate,
    forward,
    initialise,
    make_train_step,
    train_with_gradient_tape,
    update,
)
from resnet_keras.training.lr_finder import (
    LRFinderResult,
    find_learning_rate,
    suggest_learning_rate,
)
from resnet_keras.training.recipes import (
    RECIPES,
    Recipe,
    SparseCategoricalCrossentropyWithSmoothing,
    apply_weight_decay,
    get_recipe,
)
from resnet_keras.training.schedules import (
    StepDecay,
    WarmupCosineDecay,
    paper_schedule,
    schedule_values,
)
from resnet_keras.training.trainer import accelerator_settings, configure_precision, fit

__all__ = [
    "NAN_ADVICE",
    "RECIPES",
    "EpochTimer",
    "FiniteBackupAndRestore",
    "LRFinderResult",
    "LearningRateLogger",
    "Recipe",
    "SparseCategoricalCrossentropyWithSmoothing",
    "StepDecay",
    "TerminateOnNaNWithAdvice",
    "WarmupCosineDecay",
    "accelerator_settings",
    "apply_weight_decay",
    "backward",
    "compute_loss",
    "configure_precision",
    "default_callbacks",
    "evaluate",
    "find_learning_rate",
    "fit",
    "forward",
    "get_recipe",
    "initialise",
    "make_train_step",
    "paper_schedule",
    "read_history_csv",
    "schedule_values",
    "suggest_learning_rate",
    "train_with_gradient_tape",
    "update",
]
