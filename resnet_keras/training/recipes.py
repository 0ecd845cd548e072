"""Training recipes: optimizer, LR schedule, weight decay and loss, with the paper's as default.

Weight decay, the way the paper means it
----------------------------------------
He et al. (2016) use SGD with momentum 0.9 and "weight decay 1e-4" in Caffe/Torch, where decay is
*coupled*: it is added to the gradient before the momentum update,

    g <- dL/dw + 1e-4 * w;   v <- 0.9 * v - lr * g;   w <- w + v

Adding `lam * sum(w**2)` to the loss gives the gradient `2 * lam * w`, so the paper's decay is
Keras's `L2(5e-5)` regulariser (not `L2(1e-4)`, a classic factor-of-two slip). Keras optimizers also
take a `weight_decay=` argument, but that one is *decoupled* (Loshchilov & Hutter):
`w <- w - lr * wd * w` is applied outside the momentum buffer, so with momentum it gives different
weights from the second step on. `apply_weight_decay` therefore attaches `L2(weight_decay / 2)`
regularisers to the model's variables and leaves the optimizer's `weight_decay` unset.
The test suite checks two SGD steps against a hand computation.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import keras

from resnet_keras._validation import (
    check_choice,
    check_non_negative_int,
    check_number,
    check_positive_int,
)
from resnet_keras.training.schedules import cosine_schedule, paper_schedule

__all__ = [
    "RECIPES",
    "Recipe",
    "Accuracy",
    "SparseCategoricalCrossentropyWithSmoothing",
    "apply_weight_decay",
    "get_recipe",
]

logger = logging.getLogger(__name__)

_SCHEDULES = ("step", "cosine", "constant")
_DECAY_TARGETS = ("all", "kernels")


@keras.saving.register_keras_serializable(package="resnet_keras")
class SparseCategoricalCrossentropyWithSmoothing(keras.losses.Loss):
    """Cross-entropy from logits for integer labels (or soft ones), with label smoothing.

    `keras.losses.SparseCategoricalCrossentropy` has no `label_smoothing`; this loss one-hot encodes
    the labels and uses `keras.losses.categorical_crossentropy`, which has it. With
    `label_smoothing=0` it equals the sparse loss. Labels that already have a class axis, like
    the soft labels of mixup and CutMix (`resnet_keras.data.mix_batches`), are used as they
    are, so one loss serves the mixed training batches and the integer validation labels.

    Args:
        label_smoothing: Float in [0, 1): the target becomes
            `(1 - label_smoothing) * one_hot + label_smoothing / num_classes`.
        from_logits: Whether predictions are logits (the library's models output logits).
        name: Loss name.
        **kwargs: Passed to `keras.losses.Loss` (for example `reduction`).

    Examples:
        >>> loss = SparseCategoricalCrossentropyWithSmoothing(label_smoothing=0.1)
        >>> round(float(loss([0], [[10.0, 0.0]])), 3)  # target (0.95, 0.05)
        0.5
    """

    def __init__(
        self,
        label_smoothing: float = 0.0,
        from_logits: bool = True,
        name: str = "sparse_categorical_crossentropy",
        **kwargs,
    ):
        check_number("label_smoothing", label_smoothing, minimum=0, maximum=1, open_maximum=True)
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_pred = keras.ops.convert_to_tensor(y_pred, dtype=self.dtype)
        y_true = keras.ops.convert_to_tensor(y_true)
        return keras.losses.categorical_crossentropy(
            _class_probabilities(y_true, y_pred),
            y_pred,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
        )

    def get_config(self):
        config = super().get_config()
        config.update({"label_smoothing": self.label_smoothing, "from_logits": self.from_logits})
        return config


def _is_soft(y_true, y_pred) -> bool:
    """Whether labels carry a class axis (soft labels) rather than being class ids.

    Decided from the static shapes, as Keras decides which accuracy "accuracy" means: ids are
    `(batch,)` or `(batch, 1)`, soft labels `(batch, classes)` with more than one class.
    """
    true_shape, predicted_shape = tuple(y_true.shape), tuple(y_pred.shape)
    return (
        len(true_shape) == len(predicted_shape)
        and true_shape[-1] is not None
        and true_shape[-1] == predicted_shape[-1]
        and true_shape[-1] != 1
    )


def _class_probabilities(y_true, y_pred):
    if _is_soft(y_true, y_pred):
        return keras.ops.cast(y_true, y_pred.dtype)
    labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
    return keras.ops.one_hot(labels, keras.ops.shape(y_pred)[-1], dtype=y_pred.dtype)


def _accuracy_of_ids_or_soft_labels(y_true, y_pred):
    if _is_soft(y_true, y_pred):
        y_true = keras.ops.argmax(y_true, axis=-1)
    return keras.metrics.sparse_categorical_accuracy(keras.ops.reshape(y_true, (-1, 1)), y_pred)


@keras.saving.register_keras_serializable(package="resnet_keras")
class Accuracy(keras.metrics.MeanMetricWrapper):
    """Top-1 accuracy for integer labels or soft ones (the class with the largest weight).

    On batches mixed by mixup or CutMix a prediction counts as right when it names the image's
    larger share, so training accuracy there is only a rough guide; validation batches keep
    their integer labels and get the ordinary accuracy.

    Args:
        name: Metric name ("accuracy", so histories keep their column names).
        dtype: Metric dtype.

    Examples:
        >>> import numpy as np
        >>> metric = Accuracy()
        >>> soft_labels = np.array([[0.3, 0.7], [0.9, 0.1]])
        >>> metric.update_state(soft_labels, np.array([[0.0, 1.0], [0.0, 1.0]]))
        >>> float(metric.result())
        0.5
    """

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(_accuracy_of_ids_or_soft_labels, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


def apply_weight_decay(model, weight_decay: float = 1e-4, include: str = "all") -> int:
    """Attaches the paper's coupled weight decay to a model as L2 regularisers.

    Each selected trainable variable gets `keras.regularizers.L2(weight_decay / 2)`, so the loss
    gains `weight_decay / 2 * sum(w**2)` and the gradient gains exactly `weight_decay * w` (see
    the module docstring for why not the optimizer's `weight_decay=`). Calling it again replaces
    the previous regulariser rather than stacking a second one.

    Args:
        model: A built `keras.Model` (or Layer).
        weight_decay: The paper's coefficient (1e-4). 0 removes the regularisers.
        include: "all" (every trainable variable, as Caffe and fb.resnet.torch do, including
            BatchNormalization gamma/beta) or "kernels" (only conv/dense kernels, the usual Keras
            habit of setting `kernel_regularizer`).

    Returns:
        The number of variables that now carry a regulariser.

    Examples:
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> apply_weight_decay(model, 1e-4)
        2
        >>> apply_weight_decay(model, 1e-4, include="kernels")
        1
    """
    if not hasattr(model, "trainable_weights"):
        raise TypeError(f"`model` must be a keras.Model or Layer; received {type(model).__name__}.")
    check_number("weight_decay", weight_decay, minimum=0)
    check_choice("include", include, _DECAY_TARGETS)
    if not model.built:
        raise ValueError(
            "`model` must be built before weight decay can be attached to its variables; "
            "call it on a batch or build it with an input shape first."
        )

    count = 0
    for variable in model.trainable_weights:
        selected = include == "all" or _is_kernel(variable)
        if selected and weight_decay > 0:
            variable.regularizer = keras.regularizers.L2(weight_decay / 2.0)
            count += 1
        else:
            variable.regularizer = None
    return count


def _is_kernel(variable) -> bool:
    name = variable.path if hasattr(variable, "path") else variable.name
    leaf = name.rsplit("/", 1)[-1]
    return "kernel" in leaf


@dataclass(frozen=True)
class Recipe:
    """How to train: optimizer, schedule, coupled weight decay and loss.

    Attributes:
        name: Recipe name.
        learning_rate: Peak learning rate.
        momentum: SGD momentum.
        nesterov: Nesterov momentum.
        weight_decay: Coupled decay coefficient (the paper's 1e-4), see `apply_weight_decay`.
        decay_on: "all" or "kernels", see `apply_weight_decay`.
        schedule: "step" (divide by `decay_factor` at `milestones`, `paper_schedule`),
            "cosine" (`cosine_schedule`) or "constant".
        milestones: Fractions of training where the step schedule divides the LR.
        decay_factor: Multiplier at each milestone.
        warmup_steps: Warm-up steps (capped at a tenth of the run so short runs still train at the
            main LR; a warning says so). The step schedule holds `warmup_learning_rate` for them
            (the paper's ResNet-110 recipe), the cosine one rises linearly from it to
            `learning_rate` (Goyal et al. 2017).
        warmup_learning_rate: LR at the start of warm-up (None: `learning_rate / 10` for the
            step schedule, 0 for the cosine one).
        label_smoothing: Label smoothing of the cross-entropy (0: none, as in the paper).
        mixup_alpha: Mixup's Beta(alpha, alpha) (0: off), see `resnet_keras.data.mix_batches`.
        cutmix_alpha: CutMix's Beta(alpha, alpha) (0: off).
        switch_probability: With mixup and CutMix both on, the share of batches that get CutMix.
        ema_momentum: Keep an exponential moving average of the weights with this momentum
            (None: off). The model ends training with the average's weights and is validated
            with them (Keras' `use_ema` and `SwapEMAWeights`). The average covers about
            `1 / (1 - ema_momentum)` steps; a run shorter than ten times that gets a momentum
            whose window is a tenth of the run, so a short run averages its last steps rather
            than its starting point.
        description: One line for humans.

    Examples:
        >>> recipe = get_recipe("paper")
        >>> optimizer = recipe.build_optimizer(total_steps=1000)
        >>> round(float(optimizer.learning_rate), 3)
        0.1
    """

    name: str
    learning_rate: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    decay_on: str = "all"
    schedule: str = "step"
    milestones: tuple[float, ...] = (0.5, 0.75)
    decay_factor: float = 0.1
    warmup_steps: int = 0
    warmup_learning_rate: float | None = None
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    switch_probability: float = 0.5
    ema_momentum: float | None = None
    description: str = ""

    def __post_init__(self):
        check_choice("schedule", self.schedule, _SCHEDULES)
        check_choice("decay_on", self.decay_on, _DECAY_TARGETS)
        check_number("learning_rate", self.learning_rate, minimum=0, open_minimum=True)
        check_number("weight_decay", self.weight_decay, minimum=0)
        check_number("momentum", self.momentum, minimum=0, maximum=1, open_maximum=True)
        check_number(
            "label_smoothing", self.label_smoothing, minimum=0, maximum=1, open_maximum=True
        )
        check_non_negative_int("warmup_steps", self.warmup_steps)
        check_number("mixup_alpha", self.mixup_alpha, minimum=0)
        check_number("cutmix_alpha", self.cutmix_alpha, minimum=0)
        check_number("switch_probability", self.switch_probability, minimum=0, maximum=1)
        if self.ema_momentum is not None:
            check_number("ema_momentum", self.ema_momentum, minimum=0, maximum=1, open_maximum=True)

    @property
    def mixes(self) -> bool:
        """Whether the recipe mixes its training batches (mixup or CutMix)."""
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    def effective_ema_momentum(self, total_steps: int) -> float | None:
        """The EMA momentum used for a run of `total_steps` (its window capped at a tenth).

        Examples:
            >>> recipe = Recipe(name="ema", ema_momentum=0.999)
            >>> recipe.effective_ema_momentum(100_000), recipe.effective_ema_momentum(500)
            (0.999, 0.98)
        """
        if self.ema_momentum is None:
            return None
        window = max(total_steps / 10.0, 1.0)
        return min(self.ema_momentum, 1.0 - 1.0 / window)

    def mix(self, dataset, num_classes: int, seed: int = 0):
        """The training batches mixed as this recipe says (unchanged when it does not mix)."""
        if not self.mixes:
            return dataset
        from resnet_keras.data.mixing import mix_batches

        return mix_batches(
            dataset,
            num_classes,
            mixup_alpha=self.mixup_alpha,
            cutmix_alpha=self.cutmix_alpha,
            switch_probability=self.switch_probability,
            seed=seed,
        )

    def replace(self, **changes) -> Recipe:
        """Returns a copy with some fields changed (None values are ignored).

        Examples:
            >>> get_recipe("paper").replace(learning_rate=0.05).learning_rate
            0.05
        """
        changes = {key: value for key, value in changes.items() if value is not None}
        return dataclasses.replace(self, **changes)

    def effective_warmup_steps(self, total_steps: int) -> int:
        """Warm-up length used for a run of `total_steps` (capped at a tenth of the run)."""
        cap = total_steps // 10
        if self.warmup_steps > cap:
            logger.warning(
                "Recipe %r: warm-up of %d steps shortened to %d (a tenth of the %d-step run).",
                self.name,
                self.warmup_steps,
                cap,
                total_steps,
            )
            return cap
        return self.warmup_steps

    def build_schedule(self, total_steps: int):
        """The LR schedule for a run of `total_steps` optimizer steps (a float for "constant").

        A Keras `PiecewiseConstantDecay` ("step") or `CosineDecay` ("cosine"), which Keras
        saves with the optimizer and loads without custom objects.
        """
        total_steps = check_positive_int("total_steps", total_steps)
        warmup_steps = self.effective_warmup_steps(total_steps)
        if self.schedule == "constant":
            return float(self.learning_rate)
        if self.schedule == "cosine":
            return cosine_schedule(
                total_steps,
                self.learning_rate,
                warmup_steps,
                warmup_learning_rate=self.warmup_learning_rate or 0.0,
            )
        return paper_schedule(
            total_steps,
            self.learning_rate,
            warmup_steps,
            warmup_learning_rate=self.warmup_learning_rate,
            milestones=self.milestones,
            factor=self.decay_factor,
        )

    def build_optimizer(self, total_steps: int) -> keras.optimizers.SGD:
        """SGD with momentum and this recipe's schedule (decay is NOT set here, see module doc).

        With `ema_momentum`, Keras' own weight average (`use_ema`) is on.
        """
        ema_momentum = self.effective_ema_momentum(total_steps)
        return keras.optimizers.SGD(
            learning_rate=self.build_schedule(total_steps),
            momentum=self.momentum,
            nesterov=self.nesterov,
            use_ema=ema_momentum is not None,
            ema_momentum=0.99 if ema_momentum is None else ema_momentum,
        )

    def build_loss(self) -> keras.losses.Loss:
        """Cross-entropy from logits with this recipe's label smoothing (and mixed soft labels)."""
        if self.label_smoothing or self.mixes:
            return SparseCategoricalCrossentropyWithSmoothing(self.label_smoothing)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


RECIPES: dict[str, Recipe] = {
    "paper": Recipe(
        name="paper",
        description="He et al. 2016: SGD 0.9, LR 0.1 /10 at 50% and 75%, coupled decay 1e-4.",
    ),
    "paper-warmup": Recipe(
        name="paper-warmup",
        warmup_steps=400,
        warmup_learning_rate=0.01,
        description="The paper's ResNet-110 recipe: LR 0.01 for the first 400 steps, then 'paper'.",
    ),
    "cosine": Recipe(
        name="cosine",
        schedule="cosine",
        warmup_steps=400,
        description="SGD 0.9, linear warm-up then cosine decay of LR 0.1 to 0, coupled decay 1e-4.",
    ),
    "cosine-smooth": Recipe(
        name="cosine-smooth",
        schedule="cosine",
        warmup_steps=400,
        label_smoothing=0.1,
        description="'cosine' plus label smoothing 0.1.",
    ),
    "modern": Recipe(
        name="modern",
        schedule="cosine",
        warmup_steps=400,
        nesterov=True,
        label_smoothing=0.1,
        mixup_alpha=0.2,
        cutmix_alpha=1.0,
        ema_momentum=0.9998,
        description=(
            "He et al. 2019 'Bag of Tricks' / Wightman et al. 2021: warm-up and cosine, Nesterov, "
            "label smoothing 0.1, mixup 0.2 or CutMix 1.0 per batch, weight EMA."
        ),
    ),
}


def get_recipe(recipe="paper") -> Recipe:
    """Returns a `Recipe` by name (a `Recipe` instance is returned unchanged).

    Args:
        recipe: One of `RECIPES` ("paper", "paper-warmup", "cosine", "cosine-smooth",
            "modern") or a `Recipe`.

    Returns:
        The recipe.

    Examples:
        >>> get_recipe("paper-warmup").warmup_steps
        400
    """
    if isinstance(recipe, Recipe):
        return recipe
    if not isinstance(recipe, str) or recipe not in RECIPES:
        raise ValueError(
            f"`recipe` must be one of {sorted(RECIPES)} or a Recipe; received {recipe!r}."
        )
    return RECIPES[recipe]
