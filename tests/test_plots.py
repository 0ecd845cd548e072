"""Tests of resnet_keras.plots: every function returns a Figure with the right content."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from resnet_keras import plots
from resnet_keras.training import LRFinderResult, paper_schedule, schedule_values

HISTORY = {
    "loss": [2.0, 1.5, 1.2],
    "val_loss": [2.1, 1.7, 1.6],
    "accuracy": [0.3, 0.5, 0.6],
    "val_accuracy": [0.25, 0.45, 0.5],
    "learning_rate": [0.1, 0.1, 0.01],
}


def test_plot_history_accepts_every_history_form(tmp_path):
    class FakeHistory:  # what keras.callbacks.History exposes
        history = HISTORY

    rows = [{"epoch": i, **{k: v[i] for k, v in HISTORY.items()}} for i in range(3)]
    csv_path = tmp_path / "history.csv"
    keys = ["epoch", *HISTORY]
    csv_path.write_text(
        ",".join(keys) + "\n" + "\n".join(",".join(str(row[k]) for k in keys) for row in rows)
    )
    for form in (HISTORY, FakeHistory(), rows, csv_path, str(csv_path)):
        figure = plots.plot_history(form)
        assert isinstance(figure, Figure)
        loss_axes, accuracy_axes = figure.axes
        assert loss_axes.get_ylabel() == "loss" and accuracy_axes.get_ylabel() == "accuracy"
        train, validation = loss_axes.get_lines()
        np.testing.assert_allclose(train.get_ydata(), HISTORY["loss"])
        np.testing.assert_allclose(validation.get_ydata(), HISTORY["val_loss"])
        np.testing.assert_allclose(train.get_xdata(), [1, 2, 3])


def test_plot_history_skips_missing_metrics_and_rejects_bad_input():
    figure = plots.plot_history({"loss": [1.0, 0.5]})
    assert len(figure.axes) == 1 and len(figure.axes[0].get_lines()) == 1
    with pytest.raises(ValueError, match="metrics"):
        plots.plot_history({"loss": [1.0]}, metrics=("top5",))
    with pytest.raises(TypeError, match="history"):
        plots.plot_history(42)


def test_plot_lr_finder_marks_the_suggestion():
    lrs = list(np.logspace(-4, 0, 20))
    losses = list(np.linspace(2.3, 0.5, 20))
    result = LRFinderResult(lrs, losses, losses, suggestion=1e-2, method="steepest")
    figure = plots.plot_lr_finder(result)
    (axes,) = figure.axes
    assert axes.get_xscale() == "log"
    suggestion_line = axes.get_lines()[-1]
    assert suggestion_line.get_xdata()[0] == pytest.approx(1e-2)
    with pytest.raises(TypeError, match="LRFinderResult"):
        plots.plot_lr_finder({"lrs": lrs})


def test_plot_lr_schedule_draws_the_schedule_values():
    schedule = paper_schedule(400, warmup_steps=20)
    figure = plots.plot_lr_schedule(schedule, 400, steps_per_epoch=40)
    (axes,) = figure.axes
    (line,) = axes.get_lines()
    np.testing.assert_allclose(line.get_ydata()[:-1], schedule_values(schedule, 400))
    assert line.get_xdata()[-1] == pytest.approx(400 / 40)  # the last step is drawn to its end
    assert axes.get_xlabel() == "epoch" and axes.get_yscale() == "log"
    # Several schedules in one axes for comparison.
    plots.plot_lr_schedule(0.05, total_steps=400, ax=axes, label="constant")
    assert len(axes.get_lines()) == 2


def test_plot_confusion_matrix_counts():
    y_true = [0, 0, 1, 1, 2, 2]
    logits = np.eye(3)[[0, 1, 1, 1, 2, 0]]  # two mistakes, given as one-hot "logits"
    figure = plots.plot_confusion_matrix(y_true, logits, class_names=["a", "b", "c"])
    axes = figure.axes[0]
    assert axes.get_title() == "Confusion matrix (accuracy 66.7%)"
    image = axes.get_images()[0].get_array()
    np.testing.assert_allclose(image, [[0.5, 0.5, 0], [0, 1, 0], [0.5, 0, 0.5]])
    # Counts in the cells (empty cells blank), fractions in the colours.
    assert sorted(text.get_text() for text in axes.texts) == ["1", "1", "1", "1", "2"]
    assert [label.get_text() for label in axes.get_xticklabels()] == ["a", "b", "c"]
    counts = plots.plot_confusion_matrix(y_true, logits, normalize=False).axes[0]
    np.testing.assert_array_equal(
        counts.get_images()[0].get_array(), [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    )
    with pytest.raises(ValueError, match="class_names"):
        plots.plot_confusion_matrix([0, 3], [0, 3], class_names=["a", "b"])
    with pytest.raises(ValueError, match="y_pred"):
        plots.plot_confusion_matrix([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="y_true"):
        plots.plot_confusion_matrix([0.5, 1], [0, 1])


def test_plot_misclassified_shows_only_the_mistakes():
    images = np.random.default_rng(0).random((6, 8, 8, 1))
    figure = plots.plot_misclassified(images, [0, 1, 2, 0, 1, 2], [0, 2, 2, 1, 1, 0])
    titles = [axes.get_title() for axes in figure.axes]
    assert titles == ["2 (1)", "1 (0)", "0 (2)"]
    none = plots.plot_misclassified(images, [0] * 6, [0] * 6)
    assert "No misclassified" in none.axes[0].texts[0].get_text()
    with pytest.raises(ValueError, match="same length"):
        plots.plot_misclassified(images, [0, 1], [0, 1])


def test_plot_gradient_norms_on_a_log_scale():
    norms = [("resnet20/conv1/kernel", 1e-4), ("resnet20/block/conv2/kernel", 1e-2), ("fc", 0.5)]
    figure = plots.plot_gradient_norms(norms)
    (axes,) = figure.axes
    assert axes.get_yscale() == "log"
    assert [patch.get_height() for patch in axes.patches] == pytest.approx([1e-4, 1e-2, 0.5])
    plots.plot_gradient_norms(norms, kind="line", ax=axes, label="plain")
    assert len(axes.get_lines()) == 1
    with pytest.raises(ValueError, match="kind"):
        plots.plot_gradient_norms(norms, kind="pie")
    with pytest.raises(TypeError, match="norms"):
        plots.plot_gradient_norms([1, 2, 3])


def test_figures_save_and_leave_pyplot_alone(tmp_path):
    backend = matplotlib.get_backend()
    figure = plots.plot_history(HISTORY)
    figure.savefig(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes().startswith(b"\x89PNG")
    assert matplotlib.get_backend() == backend
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []  # nothing registered with pyplot, nothing to close or leak
