"""The recipe runs of notebook 10: the paper's recipe, then the modern one ingredient by ingredient.

"Bag of Tricks" (He et al. 2019, Table 6) adds its refinements one at a time to the same
network and reports each step's gain; `LADDER` does the same with the library's recipes, from
the paper's (He et al. 2016) to `RECIPES["modern"]`:

1. "paper": SGD 0.9, the LR divided by 10 at 50% and 75% of the run, coupled decay 1e-4;
2. "+ cosine, warm-up": a linear warm-up over a tenth of the run, then cosine decay, Nesterov;
3. "+ label smoothing": targets 0.9 / 0.1 spread over the other classes (Szegedy et al. 2016);
4. "+ mixup / CutMix": every batch mixed with one or the other (Zhang et al. 2018; Yun et al.
   2019), as timm does for "ResNet strikes back" (Wightman et al. 2021);
5. "+ weight EMA" = "modern": the model ends with (and is validated with) an exponential
   moving average of its weights.

`train` runs one rung from one seed as a plain function that `experiments.run_parallel` can hand
to a worker process, and measures what each ingredient is meant to change, besides accuracy:
the confidence of the predictions on the test images (label smoothing lowers it), the loss
on the clean training images (mixing makes training harder, so it is higher), and how far the
final weights are from the raw ones of the last step (zero without an average).
"""

from __future__ import annotations

import time

from resnet_keras import _validation

LADDER = (
    ("paper", {}),
    ("+ cosine, warm-up", dict(schedule="cosine", nesterov=True)),
    ("+ label smoothing", dict(schedule="cosine", nesterov=True, label_smoothing=0.1)),
    (
        "+ mixup / CutMix",
        dict(schedule="cosine", nesterov=True, label_smoothing=0.1, mixup_alpha=0.2,
             cutmix_alpha=1.0),
    ),
    ("+ weight EMA", {}),  # the modern recipe itself
)  # fmt: skip
"""The rungs: a name and the fields that change the paper's recipe ({} for "+ weight EMA" means
`RECIPES["modern"]`, which is the previous rung plus the average)."""

RUNGS = tuple(name for name, _ in LADDER)

_BUDGET_KEYS = ("image_size", "train_size", "epochs", "batch_size", "learning_rate", "depth")


def recipe_of(rung, budget):
    """The `Recipe` of one rung at the budget's learning rate, with warm-up over a tenth of it.

    Args:
        rung: One of `RUNGS`.
        budget: notebook 10's recipe budget (`notebook_budget("10", profile)["recipe"]`).

    Returns:
        A `resnet_keras.training.Recipe`.

    Examples:
        >>> budget = dict(image_size=8, train_size=256, epochs=2, batch_size=64,
        ...               learning_rate=0.05, depth=8)
        >>> recipe_of("+ label smoothing", budget).label_smoothing
        0.1
    """
    from resnet_keras.training import get_recipe

    _validation.check_choice("rung", rung, RUNGS)
    budget = _check_budget(budget)
    changes = dict(LADDER)[rung]
    base = get_recipe("modern") if rung == RUNGS[-1] else get_recipe("paper")
    steps = budget["epochs"] * -(-_train_images(budget) // budget["batch_size"])
    # Every rung after the paper's warms up over a tenth of the run (Goyal et al. 2017's 5 of
    # 90 epochs is about that share; the modern recipe's 400 steps would be all of a short run).
    warmup = 0 if rung == RUNGS[0] else steps // 10
    return base.replace(
        name=rung, learning_rate=budget["learning_rate"], warmup_steps=warmup, **changes
    )


def _train_images(budget):
    return budget["train_size"] if budget["train_size"] is not None else 1437


def _check_budget(budget):
    missing = [key for key in _BUDGET_KEYS if key not in budget]
    if missing:
        raise ValueError(f"`budget` must have the keys {_BUDGET_KEYS}; missing {missing}.")
    return budget


def train(rung, budget, seed=0):
    """Trains ResNet-`depth` on the digits with one rung of the ladder from one seed.

    Args:
        rung: One of `RUNGS`.
        budget: notebook 10's recipe budget.
        seed: Seed of the initial weights, the data order, the augmentation and the mixing.

    Returns:
        A dict: `rung`, `seed`, `test_accuracy` (top-1 on the test split, %), `confidence`
        (mean largest softmax probability on the test images), `clean_train_loss` (plain
        cross-entropy on the un-mixed, un-augmented training images), `average_shift` (largest
        difference between the final weights and the raw weights of the last step) and
        `seconds`.
    """
    import keras
    import numpy as np

    import resnet_keras as rk
    from resnet_keras.course.budgets import shrink
    from resnet_keras.data import load

    budget = _check_budget(budget)
    recipe = recipe_of(rung, budget)
    _validation.check_non_negative_int("seed", seed)
    rk.set_determinism(seed)
    loaded = load(
        "digits",
        batch_size=budget["batch_size"],
        train_size=budget["train_size"],
        validation_size=0,
        seed=seed,
    )
    side = budget["image_size"]
    train_split, test_split = shrink(loaded.train, side), shrink(loaded.test, side)
    clean = load(
        "digits",
        batch_size=256,
        train_size=budget["train_size"],
        validation_size=0,
        augment=False,
        seed=seed,
    )
    clean_train = shrink(clean.train, side)
    model = rk.CifarResNet(
        budget["depth"], num_classes=loaded.info.num_classes, input_shape=(side, side, 3)
    )
    last_raw = []

    class _LastRawWeights(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            last_raw[:] = [np.array(v) for v in model.trainable_weights]

    start = time.perf_counter()
    rk.fit(
        model,
        train_split,
        epochs=budget["epochs"],
        recipe=recipe,
        callbacks=[_LastRawWeights()],
        mix_seed=seed,
        verbose=0,
    )
    seconds = time.perf_counter() - start
    shift = max(
        float(np.max(np.abs(np.array(final) - raw)))
        for final, raw in zip(model.trainable_weights, last_raw, strict=True)
    )
    probabilities, labels = [], []
    for images, batch_labels in test_split:
        probabilities.append(keras.ops.convert_to_numpy(keras.ops.softmax(model(images))))
        labels.append(batch_labels.numpy())
    probabilities, labels = np.concatenate(probabilities), np.concatenate(labels)
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    losses = [
        float(cross_entropy(batch_labels, model(images))) * len(batch_labels)
        for images, batch_labels in clean_train
    ]
    count = sum(len(batch_labels) for _, batch_labels in clean_train)
    return {
        "rung": rung,
        "seed": seed,
        "test_accuracy": 100.0 * float(np.mean(probabilities.argmax(axis=1) == labels)),
        "confidence": float(probabilities.max(axis=1).mean()),
        "clean_train_loss": sum(losses) / count,
        "average_shift": shift,
        "seconds": seconds,
    }
