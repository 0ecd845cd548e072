"""The transfer-learning runs of notebook 09: a source network, then five ways to a target task.

The source task is the digits 0-4 of the shipped dataset, the target task the digits 5-9 with a
handful of labels per class (`resnet_keras.data.class_subset`), so the two share no class and
every learner can run them offline. `pretrain_source` trains the network the others start
from; `transfer` runs one method on the target from one seed, as a plain function that
`experiments.run_parallel` can hand to a worker process:

- "scratch": a new ResNet-20 trained on the few target labels;
- "feature_extraction": the pretrained base frozen, a new head trained on it;
- "fine_tune": the pretrained base under a new head, every layer trained, BatchNormalization
  included (it normalises each batch by that batch's statistics and updates its moving ones);
- "fine_tune_frozen_bn": the same with the BatchNormalization layers kept frozen, at the
  statistics of the source (`rk.transfer.unfreeze`'s default);
- "gradual": the last stage and the head first, then the whole network (gradual unfreezing,
  Howard and Ruder 2018).

Every method trains for the same number of steps with the same recipe (`rk.fit`'s, at the
budget's learning rate), so the methods differ only in where they start and what they train.
"""

from __future__ import annotations

import time

from resnet_keras import _validation
from resnet_keras.course.experiments import accuracy_on

METHODS = ("scratch", "feature_extraction", "fine_tune", "fine_tune_frozen_bn", "gradual")
"""The ways to the target task that `transfer` runs, in the order the notebook shows them."""

SOURCE_CLASSES = (0, 1, 2, 3, 4)
TARGET_CLASSES = (5, 6, 7, 8, 9)
_BUDGET_KEYS = ("image_size", "per_class", "epochs", "batch_size", "learning_rate", "source")


def _check_budget(budget):
    missing = [key for key in _BUDGET_KEYS if key not in budget]
    if missing:
        raise ValueError(f"`budget` must have the keys {_BUDGET_KEYS}; missing {missing}.")
    return budget


def tasks(budget, seed=0, augment=True):
    """The source and target data at the budget's image size.

    Args:
        budget: notebook 09's budget (`course.budgets.notebook_budget("09", profile)`).
        seed: seed of the target's data order and augmentation.
        augment: augment the training splits.

    Returns:
        `(source, target)`: two dicts with `train` and `test` batches and the `info` of
        `resnet_keras.data.load`. The target is normalised with the source's statistics, as a
        pretrained network's inputs must be.
    """
    from resnet_keras import data
    from resnet_keras.course.budgets import shrink

    budget = _check_budget(budget)
    side = budget["image_size"]
    source_set = data.class_subset("digits", SOURCE_CLASSES)
    target_set = data.class_subset("digits", TARGET_CLASSES, train_per_class=budget["per_class"])
    source = data.load(
        source_set.name,
        batch_size=budget["source"]["batch_size"],
        validation_size=0,
        augment=augment,
    )
    target = data.load(
        target_set.name,
        batch_size=budget["batch_size"],
        validation_size=0,
        augment=augment,
        seed=seed,
        statistics=(source.info.mean, source.info.std),
    )
    return tuple(
        {
            "train": shrink(loaded.train, side),
            "test": shrink(loaded.test, side),
            "info": loaded.info,
        }
        for loaded in (source, target)
    )


def pretrain_source(budget, path):
    """Trains ResNet-20 on the source task (digits 0-4) and saves it to `path` (a .keras file).

    Returns:
        A dict with the source `test_accuracy` and the training `seconds`.
    """
    import resnet_keras as rk

    budget = _check_budget(budget)
    source, _ = tasks(budget)
    side = budget["image_size"]
    rk.set_determinism(0)
    model = rk.CifarResNet(20, num_classes=len(SOURCE_CLASSES), input_shape=(side, side, 3))
    start = time.perf_counter()
    rk.fit(
        model,
        source["train"],
        epochs=budget["source"]["epochs"],
        learning_rate=budget["source"]["learning_rate"],
        verbose=0,
    )
    seconds = time.perf_counter() - start
    model.save(path)
    return {"test_accuracy": accuracy_on(model, source["test"]), "seconds": seconds}


def _switch_losses(model, base, images, labels):
    """The head's loss on the target images with the base's BN in inference, then training mode.

    Measured at the moment fine-tuning would start: the weights are those of feature
    extraction; only where BatchNormalization takes its statistics from differs.
    """
    import keras

    import resnet_keras as rk

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    inference = float(loss(labels, model(images, training=False)))
    weights = base.get_weights()
    rk.transfer.unfreeze(base, batch_norm=True)
    batch_statistics = float(loss(labels, model(images, training=True)))
    base.set_weights(weights)  # that forward pass moved the moving statistics: undo it
    base.trainable = False
    return inference, batch_statistics


def transfer(method, seed, budget, pretrained):
    """Trains one method of `METHODS` on the target task from one seed.

    Args:
        method: one of `METHODS`.
        seed: seed of the new weights, the data order and the augmentation.
        budget: notebook 09's budget.
        pretrained: path of the source network saved by `pretrain_source`.

    Returns:
        A dict with the target `test_accuracy`, the per-epoch `training_loss`, `seconds`, and
        for "feature_extraction" also `switch_losses`: the loss on the target's training
        images with BatchNormalization in inference mode and in training mode (see
        `_switch_losses`).
    """
    import keras

    import resnet_keras as rk

    _validation.check_choice("method", method, METHODS)
    budget = _check_budget(budget)
    _, target = tasks(budget, seed=seed)
    side, epochs = budget["image_size"], budget["epochs"]
    classes = len(TARGET_CLASSES)
    rk.set_determinism(seed)
    start = time.perf_counter()
    base = None
    if method == "scratch":
        model = rk.CifarResNet(20, num_classes=classes, input_shape=(side, side, 3))
    else:
        base = rk.transfer.feature_extractor(keras.saving.load_model(pretrained))
        model = rk.transfer.new_classifier(base, classes)
        if method == "fine_tune":
            rk.transfer.unfreeze(base, batch_norm=True)
        elif method == "fine_tune_frozen_bn":
            rk.transfer.unfreeze(base)
        elif method == "gradual":
            rk.transfer.unfreeze(base, from_layer="stage3_block1", batch_norm=True)

    def fit(epochs):
        history = rk.fit(
            model, target["train"], epochs=epochs, learning_rate=budget["learning_rate"], verbose=0
        )
        return list(history.history["loss"])

    if method == "gradual":
        first = epochs // 2
        losses = fit(first)
        rk.transfer.unfreeze(base, batch_norm=True)  # rk.fit compiles again: it sees the change
        losses += fit(epochs - first)
    else:
        losses = fit(epochs)
    result = {
        "method": method,
        "seed": seed,
        "test_accuracy": accuracy_on(model, target["test"]),
        "training_loss": losses,
        "seconds": time.perf_counter() - start,
    }
    if method == "feature_extraction":
        import numpy as np

        unaugmented = tasks(budget, seed=seed, augment=False)[1]["train"]
        batches = list(unaugmented)  # one pass: images and labels in the same order
        images = np.concatenate([np.asarray(x) for x, _ in batches])
        labels = np.concatenate([np.asarray(y) for _, y in batches])
        result["switch_losses"] = _switch_losses(model, base, images, labels)
    return result
