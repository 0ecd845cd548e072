"""Reference solutions of notebook 12 (the seed article's FAQ). Try the exercises first.

Each name answers the exercise of the same number in the notebook and passes
its checker in `resnet_keras.course.exercises.nb12_faq`:

- the questions: `QUESTION_ANSWERS` (their letters and numbers),
- 1a `QUESTION_ANSWERS["chain_rule"]`, 1b `gradient_ratio()`, 1c `depth_doubling()`,
- 2a `resnet44_cost()`, 2b `overfitting_experiment(regularize)`,
- 3a `choose_learning_rate()`, 3b `lr_schedule(peak_lr, total_steps)`.

Examples:

>>> from resnet_keras.course.exercises.solutions import nb12_faq as solutions
>>> solutions.resnet44_cost()
{'params': 658586, 'macs': 97174144}
"""

from __future__ import annotations

import keras
import numpy as np

import resnet_keras as rk
from resnet_keras.course.exercises.nb12_faq import probe_batch, small_resnet

__all__ = [
    "QUESTION_ANSWERS",
    "choose_learning_rate",
    "cifar_resnet_cost",
    "gradient_ratio",
    "lr_schedule",
    "overfitting_experiment",
    "resnet44_cost",
    "depth_doubling",
]


# --- the questions and 1a --------------------------------------------------------------------
QUESTION_ANSWERS = {
    "main_advantage": "b",
    "chain_rule": 0.5**20,  # about 9.5e-7: twenty factors of 0.5, multiplied
    "limits_1202": "b",
    "first_learning_rate": "b",
}


# --- 1b, 1c ---------------------------------------------------------------------------------
def _first_over_last(residual, depth=56):
    images, labels = probe_batch()
    rk.set_determinism(0)  # right before building: the checker gets the same weights
    model = rk.CifarResNet(depth, residual=residual)
    norms = rk.gradient_norms(model, images, labels)
    return norms[0][1] / norms[-1][1]  # stem convolution over the dense layer


def gradient_ratio():
    """1b: first/last gradient-norm ratio of ResNet-56 at initialisation (about 0.4)."""
    return _first_over_last(residual=True)


def depth_doubling():
    """1c: ResNet-110's first/last ratio stays on ResNet-56's scale (about 0.6 against 0.4)."""
    return {"prediction": "similar", "ratio_110": _first_over_last(residual=True, depth=110)}


# --- 2a -------------------------------------------------------------------------------------
def cifar_resnet_cost(n, num_classes=10):
    """Trainable parameters and multiply-adds of the CIFAR ResNet-(6n+2), option A, by hand.

    3x3 convolutions without bias (BN follows each), BN's gamma and beta, the
    parameter-free option-A shortcut, global pooling and a dense layer.
    """
    params = macs = 0

    def conv(c_in, c_out, size):  # 3x3, "same": size x size outputs
        nonlocal params, macs
        params += 3 * 3 * c_in * c_out + 2 * c_out  # kernel + BN gamma, beta
        macs += size * size * c_out * 3 * 3 * c_in

    conv(3, 16, 32)  # stem
    c_in = 16
    for filters, size in ((16, 32), (32, 16), (64, 8)):
        for _ in range(n):
            conv(c_in, filters, size)  # the first block of stages 2 and 3 has stride 2
            conv(filters, filters, size)
            c_in = filters
    params += 64 * num_classes + num_classes
    macs += 64 * num_classes
    return {"params": params, "macs": macs}


def resnet44_cost():
    """2a: ResNet-44 is n = 7."""
    return cifar_resnet_cost(7)


# --- 2b -------------------------------------------------------------------------------------
def overfitting_experiment(regularize, train_size=64):
    """2b: a small ResNet trained on 64 images and returned; regularized = augmentation + weight
    decay 5e-3.

    Augmented training shows new versions of the images every epoch, so it runs
    longer (60 epochs against 30). The checker measures the returned model itself. The data
    are the shipped digits, online or not: the checker's thresholds were measured on them.
    """
    from resnet_keras.data import load
    from resnet_keras.training import fit

    sizes = dict(batch_size=32, train_size=train_size, validation_size=200)
    rk.set_determinism(0)  # before loading too: the shuffle and augmentation seeds use it
    clean = load("digits", augment=False, **sizes)
    data = load("digits", augment=True, **sizes) if regularize else clean
    model = small_resnet(clean.info.num_classes)
    fit(
        model,
        data.train,
        epochs=60 if regularize else 30,
        learning_rate=0.05,
        weight_decay=5e-3 if regularize else 0.0,
        verbose=0,
    )
    return model


# --- 3a -------------------------------------------------------------------------------------
def choose_learning_rate(num_steps=60, epochs=3):
    """3a: LR range test, then 3 candidates (suggestion / 10, / 3, x 1) compared on validation.

    `train(lr)` builds a fresh model and trains it; each candidate is judged by its mean
    validation accuracy over two seeds, as the checker judges it: one run on 200 images is
    noisy. The data are the shipped digits, online or not.
    """
    from resnet_keras.course.exercises.nb12_faq import LR_DATA
    from resnet_keras.data import load
    from resnet_keras.training import evaluate, find_learning_rate

    rk.set_determinism(0)
    data = load("digits", **LR_DATA)
    finder = find_learning_rate(
        small_resnet(data.info.num_classes),
        data.train,
        min_lr=1e-4,
        max_lr=10.0,
        num_steps=num_steps,
        verbose=0,
    )

    def train(learning_rate):
        model = small_resnet(data.info.num_classes)
        model.compile(
            optimizer=keras.optimizers.SGD(learning_rate, momentum=0.9),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        model.fit(data.train, epochs=epochs, verbose=0)
        return model

    candidates = [float(f"{finder.suggestion * factor:.2g}") for factor in (0.1, 0.3, 1.0)]
    mean_accuracy = {}
    for learning_rate in candidates:
        accuracies = []
        for seed in (0, 1):
            rk.set_determinism(seed)
            accuracies.append(evaluate(train(learning_rate), data.validation)["accuracy"])
        mean_accuracy[learning_rate] = float(np.mean(accuracies))
    chosen = max(mean_accuracy, key=mean_accuracy.get)
    return {"learning_rate": chosen, "candidates": candidates, "train": train, "finder": finder}


# --- 3b -------------------------------------------------------------------------------------
def lr_schedule(peak_lr=0.1, total_steps=1000):
    """3b: the paper's step decay, /10 at 50% and 75% of the run, from the chosen LR.

    Keras' `PiecewiseConstantDecay` with the boundaries in optimizer steps; it keeps each value
    up to and including its boundary, so a boundary is the last step before a drop
    (`resnet_keras.training.paper_schedule(total_steps, peak_lr)` builds the same).
    """
    boundaries = [round(0.5 * total_steps) - 1, round(0.75 * total_steps) - 1]
    values = [peak_lr, peak_lr / 10, peak_lr / 100]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
