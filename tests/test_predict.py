"""Tests of `python -m resnet_keras predict` and `export` on a run the command line trained.

One tiny run per module (ResNet-20, one epoch on 128 offline digits; a learning rate of
0.02 keeps its probabilities spread over several classes, where the default's first
steps make them one-hot). The predictions printed are checked against the run's model
fed by the training pipeline's normalisation in this process.
"""

from __future__ import annotations

import json
import re
import shutil

import keras
import numpy as np
import pytest
from test_cli import our_lines, run_cli, run_in_process  # tests/ is on sys.path

from resnet_keras.course import cli
from resnet_keras.course.profiles import get_profile
from resnet_keras.data import digits, load

TRAIN = ("--model", "resnet20", "--dataset", "digits", "--profile", "ci", "--epochs", "1")
TRAIN += ("--train-size", "128", "--batch-size", "32", "--lr", "0.02", "--seed", "0")
LINE = re.compile(r"^(?P<path>.+): (?P<top>.+)$")
TIME = re.compile(r"^Predicted (\d+) images? in [\d.]+ ms \(model loaded in [\d.]+ s\)\.$")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("predict") / "run"
    assert cli.main(["train", *TRAIN, "--verbose", "0", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Real digit images as PNG files, in the formats a user has, and bad inputs."""
    folder = tmp_path_factory.mktemp("images")
    pixels = np.asarray(digits.arrays()[2][:4])  # test images, uint8 (4, 32, 32, 3)
    paths = {}
    for index, image in enumerate(pixels):
        paths[f"digit{index}"] = folder / f"digit{index}.png"
        keras.utils.save_img(paths[f"digit{index}"], image, scale=False)
    # The digits are grey: as a one-channel PNG and with an alpha channel they are the same
    # pixels once converted to the model's RGB.
    paths["grey"] = folder / "grey.png"
    keras.utils.save_img(paths["grey"], pixels[0][..., :1], scale=False)
    paths["rgba"] = folder / "rgba.png"
    opaque = np.full((32, 32, 1), 255, np.uint8)
    keras.utils.save_img(paths["rgba"], np.concatenate([pixels[1], opaque], -1), scale=False)
    paths["wide"] = folder / "wide.png"  # 64 wide, 48 high: 24 rows of a digit, doubled
    wide = np.repeat(np.repeat(pixels[2][8:32], 2, axis=0), 2, axis=1)
    keras.utils.save_img(paths["wide"], wide, scale=False)
    paths["text"] = folder / "notes.png"
    paths["text"].write_text("not an image\n")
    paths["missing"] = folder / "missing.png"
    return pixels, paths


def _expected_probabilities(run_folder, pixels):
    """Softmax of the run's model on pixels normalised as the training pipeline does."""
    summary = json.loads((run_folder / "summary.json").read_text())
    mean, std = np.float32(summary["pixel_mean"]), np.float32(summary["pixel_std"])
    model = keras.saving.load_model(run_folder / "model.keras")
    logits = model.predict_on_batch((pixels.astype("float32") / 255.0 - mean) / std)
    return keras.ops.convert_to_numpy(keras.ops.softmax(logits))


def _parse(stdout):
    """{path: [(class name, percent), ...]} and the time line of predict's output."""
    lines = stdout.strip().splitlines()
    predictions = {}
    for line in lines[:-1]:
        found = LINE.match(line)
        assert found, line
        top = [item.rsplit(" ", 1) for item in found["top"].split(", ")]
        predictions[found["path"]] = [(name, float(share.rstrip("%"))) for name, share in top]
    return predictions, lines[-1]


def test_train_records_the_class_names_and_the_pipelines_normalisation(run_folder):
    summary = json.loads((run_folder / "summary.json").read_text())
    kwargs = get_profile("ci").data_kwargs()
    kwargs.update(name="digits", batch_size=32, seed=0, train_size=128)
    info = load(**kwargs).info
    assert summary["class_names"] == list(info.class_names) == [str(d) for d in range(10)]
    assert summary["pixel_mean"] == pytest.approx(info.mean, abs=1e-12)
    assert summary["pixel_std"] == pytest.approx(info.std, abs=1e-12)
    assert all(0 < value < 1 for value in summary["pixel_mean"] + summary["pixel_std"])


def test_predict_prints_the_top_classes_and_one_line_per_bad_image(run_folder, images):
    pixels, paths = images
    order = ["digit0", "digit1", "digit2", "digit3", "grey", "rgba", "wide", "text", "missing"]
    files = [str(paths[key]) for key in order]
    result = run_cli("predict", "--model", str(run_folder / "model.keras"), *files)
    assert result.returncode == 1, result.stderr[-3000:]  # some images failed
    assert "Traceback" not in result.stderr
    errors = our_lines(result.stderr)
    assert errors == [
        f"{paths['wide']}: 64x48 pixels, the model takes 32x32 (width x height); pass --resize "
        "to resize it",
        f"{paths['text']}: not an image file (Pillow cannot read it)",
        f"{paths['missing']}: no such file",
    ]

    predictions, time_line = _parse(result.stdout)
    assert TIME.match(time_line) and time_line.startswith("Predicted 6 images in ")
    assert list(predictions) == files[:6]
    expected = _expected_probabilities(run_folder, pixels)
    assert expected.max(axis=1).max() < 0.99  # several classes get a share
    for index in range(4):
        top = predictions[str(paths[f"digit{index}"])]
        assert len(top) == 3
        shares = [share for _, share in top]
        assert shares == sorted(shares, reverse=True) and sum(shares) <= 100.0 + 0.05 * 3
        ranking = np.argsort(-expected[index], kind="stable")[:3]
        assert [name for name, _ in top] == [str(i) for i in ranking]  # top-1 included
        np.testing.assert_allclose(shares, 100 * expected[index][ranking], atol=0.051)
    # Grayscale and RGBA files are converted to the model's three channels.
    assert predictions[str(paths["grey"])] == predictions[str(paths["digit0"])]
    assert predictions[str(paths["rgba"])] == predictions[str(paths["digit1"])]


def test_predict_resizes_with_resize_and_reports_its_time(run_folder, images):
    _, paths = images
    model = str(run_folder / "model.keras")
    result = run_cli("predict", "--model", model, "--resize", "--top-k", "10", str(paths["wide"]))
    assert result.returncode == 0, result.stderr[-3000:]
    assert our_lines(result.stderr) == []
    predictions, time_line = _parse(result.stdout)
    assert TIME.match(time_line) and time_line.startswith("Predicted 1 image in ")
    top = predictions[str(paths["wide"])]
    assert sorted(name for name, _ in top) == [str(d) for d in range(10)]
    assert sum(share for _, share in top) == pytest.approx(100.0, abs=0.5)


def _model_file(case, run_folder, folder):
    """The --model of `case`: the run's model.keras, or a copy beside a bad summary."""
    summaries = {
        "no summary": None,
        "old summary": json.dumps({"model": "resnet20"}),  # a run of an older version
        "damaged summary": '{"class_names": ',
        "not a model": (run_folder / "summary.json").read_text(),
    }
    if case == "no model":
        return folder / "nothing" / "model.keras"
    if case == "a folder":
        return run_folder
    if case not in summaries:
        return run_folder / "model.keras"
    shutil.copy(run_folder / "model.keras", folder / "model.keras")
    if summaries[case] is not None:
        (folder / "summary.json").write_text(summaries[case])
    if case == "not a model":
        (folder / "model.keras").write_text("not a zip file")
    return folder / "model.keras"


@pytest.mark.parametrize(
    ("command", "case", "arguments", "expected"),
    [
        ("predict", "no summary", ["IMAGE"], "no summary.json beside"),
        ("export", "no summary", [], "no summary.json beside"),
        ("predict", "old summary", ["IMAGE"], "has no class_names, pixel_mean, pixel_std"),
        ("predict", "damaged summary", ["IMAGE"], "cannot read"),
        ("predict", "no model", ["IMAGE"], "model.keras': no such file"),
        ("export", "a folder", [], "is a folder; pass the model.keras inside it"),
        ("predict", "not a model", ["IMAGE"], "cannot load"),
        ("predict", "run", ["--top-k", "11", "IMAGE"], "at most the number of classes (10)"),
        ("predict", "run", ["--top-k", "0", "IMAGE"], "argument --top-k: must be an integer"),
        ("predict", "run", [], "the following arguments are required: IMAGE"),
    ],
)
def test_a_model_or_summary_that_cannot_be_used_gives_one_line(
    run_folder, images, tmp_path, capsys, command, case, arguments, expected
):
    model = _model_file(case, run_folder, tmp_path)
    image = str(images[1]["digit0"])
    arguments = [image if argument == "IMAGE" else argument for argument in arguments]
    status, stdout, stderr = run_in_process(capsys, command, "--model", str(model), *arguments)
    assert status == 2
    assert len(stderr.strip().splitlines()) == 1 and expected in stderr, stderr
    assert stdout == ""
    if case in ("old summary", "damaged summary"):  # says how to write it again
        assert "rerun the train command" in stderr


def test_export_writes_a_saved_model_that_predicts_as_predict_does(run_folder, images, capsys):
    import tensorflow as tf

    pixels, _ = images
    status, stdout, stderr = run_in_process(
        capsys, "export", "--model", str(run_folder / "model.keras")
    )
    assert status == 0, stderr
    out = run_folder / "saved_model"
    lines = stdout.strip().splitlines()
    assert lines[0].startswith(f"SavedModel written to {out} in ")
    assert "Signature 'serve': uint8 images [batch, 32, 32, 3] -> probabilities" in lines[1]
    assert f"tf.saved_model.load({str(out)!r})" in lines[2]
    served = tf.saved_model.load(str(out))
    outputs = served.serve(tf.constant(pixels))
    expected = _expected_probabilities(run_folder, pixels)
    np.testing.assert_allclose(outputs["probabilities"].numpy(), expected, atol=1e-5)
    names = [name.decode() for name in outputs["class_name"].numpy()]
    assert names == [str(i) for i in expected.argmax(axis=1)]
