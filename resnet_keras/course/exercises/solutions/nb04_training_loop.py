"""Reference solutions of notebook 04, "The training loop" (open only after trying)."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

__all__ = [
    "GPU_TOTAL_STEPS",
    "QUESTION_ANSWERS",
    "paper_learning_rate",
    "train_step",
]

QUESTION_ANSWERS = {
    "he_initialisation": "b",
    "learning_rate_drop": "c",
    "steps_in_an_epoch": math.ceil(50_000 / 128),  # 391 batches, the last of 80 images
}
"""The answer of each question of the notebook (its checker module's object of that name)."""

GPU_TOTAL_STEPS = 182 * math.ceil((50_000 - 5_000) / 128)
"""The gpu profile: 45,000 training images in 352 batches of 128 (the last one holds 72
images), 182 epochs = 64,064 optimizer steps."""


def train_step(model, optimizer, images, labels):
    """Steps 2 to 5 of the seed's list for one batch; returns the loss before the update.

    Examples:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    >>> optimizer = keras.optimizers.SGD(0.1)
    >>> loss = train_step(model, optimizer, np.zeros((4, 2), "float32"), np.array([0, 1, 0, 1]))
    >>> round(float(loss), 4), int(optimizer.iterations)
    (0.6931, 1)
    """
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        logits = model(images, training=True)  # 2. forward pass, BN in training mode
        loss = cross_entropy(labels, logits)  # 3. cross-entropy from the logits
    gradients = tape.gradient(loss, model.trainable_weights)  # 4. backward pass
    optimizer.apply_gradients(zip(gradients, model.trainable_weights))  # 5. update
    return loss


def paper_learning_rate(step, total_steps):
    """He et al. 2016: LR 0.1, divided by 10 at 50% and at 75% of the run (step counts from 0).

    Examples:

    >>> [paper_learning_rate(step, 64_000) for step in (0, 31_999, 32_000, 48_000)]
    [0.1, 0.1, 0.01, 0.001]
    """
    drops = sum(step >= milestone * total_steps for milestone in (0.5, 0.75))
    return round(0.1 * 0.1**drops, 10)
