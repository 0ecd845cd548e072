"""Figures for the notebooks and the command line.

Every function returns a `matplotlib.figure.Figure` built directly (not through pyplot), so
nothing here touches the global matplotlib backend: figures render inline when they are the last
expression of a notebook cell (or through `display(fig)`), save with `fig.savefig(path)` in
scripts and CI, and are freed when no longer referenced (no pyplot figure registry to leak).
Functions that draw a single panel also accept `ax=` to draw into an existing Axes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from resnet_keras._validation import check_positive_int

__all__ = [
    "history_to_dict",
    "plot_confusion_matrix",
    "plot_gradient_norms",
    "plot_history",
    "plot_lr_finder",
    "plot_lr_schedule",
    "plot_misclassified",
]


def _new_axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    figure = Figure(figsize=figsize, layout="constrained")
    return figure, figure.add_subplot()


def history_to_dict(history) -> dict[str, list[float]]:
    """Normalises a training history to `{metric: [value per epoch]}`.

    Args:
        history: A `keras.callbacks.History`, a dict of lists (`History.history`, or the result of
            `train_with_gradient_tape`), a list of per-epoch dicts
            (`resnet_keras.training.read_history_csv`) or the path of a history.csv.

    Returns:
        A dict of metric name to list of floats ("epoch" is dropped).

    Examples:
        >>> history_to_dict([{"epoch": 0, "loss": 2.0}, {"epoch": 1, "loss": 1.5}])
        {'loss': [2.0, 1.5]}
    """
    if isinstance(history, (str, os.PathLike)):
        from resnet_keras.training.callbacks import read_history_csv

        history = read_history_csv(history)
    if hasattr(history, "history") and isinstance(history.history, Mapping):
        history = history.history
    if isinstance(history, Mapping):
        return {
            str(key): [float(v) for v in values]
            for key, values in history.items()
            if key != "epoch" and isinstance(values, Sequence)
        }
    if isinstance(history, Sequence) and all(isinstance(row, Mapping) for row in history):
        keys = [key for key in (history[0] if history else {}) if key != "epoch"]
        return {key: [float(row.get(key, math.nan)) for row in history] for key in keys}
    raise TypeError(
        "`history` must be a keras History, a dict of lists, a list of per-epoch dicts or a "
        f"path to history.csv; received {type(history).__name__}."
    )


def plot_history(history, metrics: Sequence[str] = ("loss", "accuracy"), title: str | None = None):
    """Training curves: one panel per metric, training vs validation, against the epoch.

    Args:
        history: Anything `history_to_dict` accepts (History, dict, rows, history.csv path).
        metrics: Metric names to plot; each panel also draws "val_<metric>" when present.
            Metrics missing from the history are skipped.
        title: Optional figure title.

    Returns:
        A `Figure`.

    Examples:
        >>> figure = plot_history({"loss": [2.0, 1.0], "val_loss": [2.1, 1.4],
        ...                        "accuracy": [0.3, 0.6], "val_accuracy": [0.3, 0.5]})
        >>> [axes.get_ylabel() for axes in figure.axes]
        ['loss', 'accuracy']
    """
    values = history_to_dict(history)
    if isinstance(metrics, str):
        metrics = (metrics,)
    present = [name for name in metrics if name in values or f"val_{name}" in values]
    if not present:
        raise ValueError(
            f"None of the metrics {tuple(metrics)} is in the history; it has {sorted(values)}."
        )
    figure = Figure(figsize=(5 * len(present), 3.6), layout="constrained")
    for index, name in enumerate(present):
        ax = figure.add_subplot(1, len(present), index + 1)
        for key, label, style in ((name, "train", "-o"), (f"val_{name}", "validation", "--s")):
            if key in values and values[key]:
                epochs = np.arange(1, len(values[key]) + 1)
                ax.plot(epochs, values[key], style, markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        figure.suptitle(title)
    return figure


def plot_lr_finder(result, ax=None, show_raw: bool = True):
    """The LR range test curve: smoothed loss against LR (log scale), with the suggestion.

    Args:
        result: An `LRFinderResult` from `resnet_keras.training.find_learning_rate`.
        ax: Optional Axes to draw into.
        show_raw: Also draw the unsmoothed losses, faintly.

    Returns:
        A `Figure`.

    Examples:
        >>> from resnet_keras.training import LRFinderResult
        >>> result = LRFinderResult([1e-3, 1e-2, 1e-1], [2.0, 1.0, 3.0], [2.0, 1.2, 2.0],
        ...                         1e-2, "steepest")
        >>> plot_lr_finder(result).axes[0].get_xscale()
        'log'
    """
    for attribute in ("learning_rates", "smoothed_losses", "losses", "suggestion"):
        if not hasattr(result, attribute):
            raise TypeError(
                f"`result` must be an LRFinderResult (missing `{attribute}`); received "
                f"{type(result).__name__}."
            )
    figure, ax = _new_axes(ax, (6, 4))
    lrs = np.asarray(result.learning_rates, dtype="float64")
    if show_raw:
        ax.plot(lrs, result.losses, color="0.75", linewidth=1, label="loss")
    ax.plot(lrs, result.smoothed_losses, linewidth=2, label="smoothed loss")
    method = getattr(result, "method", "")
    ax.axvline(
        result.suggestion,
        color="tab:red",
        linestyle="--",
        label=f"suggestion ({method}): {result.suggestion:.2g}",
    )
    finite = np.asarray(result.smoothed_losses, dtype="float64")
    finite = finite[np.isfinite(finite)]
    if finite.size:
        # Keep the divergence spike from squashing the interesting part of the curve.
        low, start = float(finite.min()), float(finite[0])
        ax.set_ylim(low - 0.1 * abs(start - low) - 1e-3, max(start, low) * 1.5 + 1e-3)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title("LR range test")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return figure


def plot_lr_schedule(
    schedule,
    total_steps: int,
    steps_per_epoch: int | None = None,
    ax=None,
    log_scale: bool = True,
    label: str | None = None,
):
    """The learning rate at every optimizer step (or per epoch when `steps_per_epoch` is given).

    Args:
        schedule: A `LearningRateSchedule` (e.g. `resnet_keras.training.paper_schedule`'s), a
            callable of the step or a float.
        total_steps: Number of optimizer steps to draw, epochs * steps per epoch (Keras'
            schedules do not know the length of the run).
        steps_per_epoch: Label the x axis in epochs.
        ax: Optional Axes (draw several schedules into one by passing the same `ax`).
        log_scale: Log-scale y axis (step decays are then evenly spaced).
        label: Legend label.

    Returns:
        A `Figure`.

    Examples:
        >>> from resnet_keras.training import paper_schedule
        >>> figure = plot_lr_schedule(paper_schedule(1000), 1000)
        >>> figure.axes[0].get_yscale()
        'log'
    """
    from resnet_keras.training.schedules import schedule_values

    values = schedule_values(schedule, total_steps)
    figure, ax = _new_axes(ax, (6, 3.5))
    # Each step holds one LR until the next: draw "steps-post" and close the last step at
    # `total_steps`, so a short run still shows its final LR.
    steps = np.arange(len(values) + 1, dtype="float64")
    values = np.append(values, values[-1])
    if steps_per_epoch is not None:
        check_positive_int("steps_per_epoch", steps_per_epoch)
        steps = steps / steps_per_epoch
    ax.plot(steps, values, drawstyle="steps-post", label=label or type(schedule).__name__)
    if log_scale and np.all(values > 0):
        ax.set_yscale("log")
    ax.set_xlabel("epoch" if steps_per_epoch else "optimizer step")
    ax.set_ylabel("learning rate")
    ax.set_title("Learning-rate schedule")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return figure


def _labels(values, name):
    array = np.asarray(values)
    if array.ndim == 2:  # logits or probabilities
        array = array.argmax(axis=-1)
    array = array.reshape(-1)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.equal(np.mod(array, 1), 0)):
            raise ValueError(
                f"`{name}` must hold integer class ids (or logits); received {array[:5]}."
            )
    return array.astype("int64")


def plot_confusion_matrix(
    y_true,
    y_pred,
    class_names: Sequence[str] | None = None,
    normalize: bool = True,
    ax=None,
    title: str | None = None,
):
    """Confusion matrix: rows are true classes, columns predicted classes.

    Drawn by scikit-learn's `ConfusionMatrixDisplay` (image, colour bar, tick labels, cell
    texts in a colour that contrasts with the cell). Hand-written here: the checks of the
    labels, logits accepted for `y_pred`, counts written in the cells of a normalised matrix
    (the display writes the values it colours) with empty cells left blank, and the title.

    Args:
        y_true: True class ids.
        y_pred: Predicted class ids, or logits/probabilities of shape (n, num_classes).
        class_names: Names of the classes (default: ids).
        normalize: Colour each row as fractions of that true class (the diagonal is the
            per-class recall); the cells show the counts either way.
        ax: Optional Axes.
        title: Optional title (default: overall accuracy).

    Returns:
        A `Figure`.

    Examples:
        >>> figure = plot_confusion_matrix([0, 1, 1], [0, 1, 0], class_names=["a", "b"])
        >>> figure.axes[0].get_title()
        'Confusion matrix (accuracy 66.7%)'
    """
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

    true = _labels(y_true, "y_true")
    predicted = _labels(y_pred, "y_pred")
    if true.shape != predicted.shape:
        raise ValueError(
            "`y_true` and `y_pred` must hold as many labels; "
            f"received {true.size} and {predicted.size}."
        )
    if true.size == 0:
        raise ValueError("`y_true` is empty.")
    num_classes = int(max(true.max(), predicted.max())) + 1
    if class_names is not None:
        class_names = [str(name) for name in class_names]
        if len(class_names) < num_classes:
            raise ValueError(
                f"`class_names` has {len(class_names)} names but the labels go up to "
                f"{num_classes - 1}."
            )
        num_classes = len(class_names)
    else:
        class_names = [str(i) for i in range(num_classes)]
    counts = confusion_matrix(true, predicted, labels=np.arange(num_classes))
    shown = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalize else counts

    size = max(4.0, 0.5 * num_classes + 2)
    figure, ax = _new_axes(ax, (size + 1, size))
    display = ConfusionMatrixDisplay(shown, display_labels=class_names).plot(
        ax=ax,
        cmap="Blues",
        xticks_rotation=45,
        im_kw={"vmin": 0, "vmax": 1} if normalize else None,
        text_kw={"fontsize": 8},
    )
    for text, count in zip(display.text_.ravel(), counts.ravel()):
        if count:
            text.set_text(str(count))
        else:
            text.remove()
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    accuracy = float(np.trace(counts)) / counts.sum()
    ax.set_title(title or f"Confusion matrix (accuracy {accuracy:.1%})")
    return figure


def plot_misclassified(
    images,
    y_true,
    y_pred,
    class_names=None,
    max_images: int = 16,
    ncols: int = 8,
    mean=None,
    std=None,
    title: str | None = None,
):
    """A grid of misclassified images titled "predicted (true)".

    Args:
        images: Images, shape (n, height, width, channels) (normalised images are shown with
            `mean`/`std` undone, or stretched to [0, 1]).
        y_true: True class ids.
        y_pred: Predicted class ids, or logits/probabilities of shape (n, num_classes).
        class_names: Class names, or the `DataInfo` of `resnet_keras.data.load` (which also
            supplies `mean` and `std`).
        max_images: At most this many images (the first misclassified ones).
        ncols: Images per row.
        mean: Per-channel mean that was subtracted from the images.
        std: Per-channel standard deviation they were divided by.
        title: Figure title (default: "Misclassified: <wrong> of <total> ...").

    Returns:
        A `Figure` (with a single message panel when nothing is misclassified).

    Examples:
        >>> images = np.zeros((3, 8, 8, 1))
        >>> figure = plot_misclassified(images, [0, 1, 2], [0, 2, 1])
        >>> len(figure.axes)
        2
    """
    from resnet_keras.data.figures import show_images

    check_positive_int("max_images", max_images)
    images = np.asarray(images)
    true = _labels(y_true, "y_true")
    predicted = _labels(y_pred, "y_pred")
    if not (len(images) == len(true) == len(predicted)):
        raise ValueError(
            "`images`, `y_true` and `y_pred` must have the same length; received "
            f"{len(images)}, {len(true)} and {len(predicted)}."
        )
    wrong = np.flatnonzero(true != predicted)[:max_images]
    if wrong.size == 0:
        figure = Figure(figsize=(4, 1.5), layout="constrained")
        ax = figure.add_subplot()
        ax.axis("off")
        ax.text(0.5, 0.5, "No misclassified images", ha="center", va="center")
        return figure
    return show_images(
        (images[wrong], true[wrong]),
        class_names,
        n=int(wrong.size),
        mean=mean,
        std=std,
        predictions=predicted[wrong],
        ncols=ncols,
        title=title
        or f"Misclassified: {int((true != predicted).sum())} of {len(true)} (predicted (true))",
    )


def plot_gradient_norms(
    norms,
    kind: str = "bar",
    log_scale: bool = True,
    ax=None,
    label: str | None = None,
    title: str | None = None,
):
    """Per-layer gradient norms, input layer on the left, on a log scale.

    Args:
        norms: A list of `(layer_name, norm)` from `resnet_keras.analysis.gradient_norms`.
        kind: "bar" or "line" (use "line" with a shared `ax` to compare networks).
        log_scale: Log-scale y axis (vanishing gradients span orders of magnitude).
        ax: Optional Axes.
        label: Legend label (e.g. "plain-56").
        title: Optional title.

    Returns:
        A `Figure`.

    Examples:
        >>> figure = plot_gradient_norms([("conv1", 1e-3), ("conv2", 1e-2), ("dense", 0.5)])
        >>> figure.axes[0].get_yscale()
        'log'
    """
    if kind not in ("bar", "line"):
        raise ValueError(f"`kind` must be 'bar' or 'line'; received {kind!r}.")
    try:
        names = [str(name) for name, _ in norms]
        values = np.asarray([float(value) for _, value in norms], dtype="float64")
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"`norms` must be a list of (layer_name, norm) pairs; received {norms!r:.80}."
        ) from error
    if not names:
        raise ValueError("`norms` is empty.")
    figure, ax = _new_axes(ax, (max(6.0, 0.25 * len(names) + 2), 4))
    positions = np.arange(len(names))
    if kind == "bar":
        ax.bar(positions, values, label=label)
    else:
        ax.plot(positions, values, "-o", markersize=3, label=label)
    if log_scale and np.all(values > 0):
        ax.set_yscale("log")
    # "stage1_block1/1_conv/kernel" -> "stage1_block1/1_conv": every entry is a kernel.
    short = [name.removesuffix("/kernel") for name in names]
    ax.set_xticks(positions, short, rotation=90, fontsize=7)
    ax.set_xlabel("layer (input -> output)")
    ax.set_ylabel("gradient L2 norm")
    ax.set_title(title or "Gradient norm per layer")
    ax.grid(alpha=0.3, axis="y", which="both")
    if label:
        ax.legend()
    return figure
