"""Tests of resnet_keras.inference: raw pixels in, probabilities out, on every backend.

`with_preprocessing` must compute what the training pipeline feeds the model followed by a
softmax; its .keras file must load on another Keras backend and give the same numbers; the
SavedModel of `export_saved_model` must serve uint8 images in a process that has only
TensorFlow. The fresh processes make sure nothing of this process (a registered object, a
traced function, a backend already chosen) is what makes them work.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
from test_cli import _environment  # tests/ is on sys.path
from test_saved_files import _fresh_process

import resnet_keras as rk
from resnet_keras.data import digits, load
from resnet_keras.inference import SERVE_ENDPOINT, export_saved_model, with_preprocessing

REPO = Path(__file__).resolve().parents[1]
MEAN, STD = (0.31, 0.30, 0.29), (0.32, 0.33, 0.34)
NAMES = [f"digit {i}" for i in range(10)]


def _small_model():
    """ResNet-8 whose softmax is not saturated: random weights give near one-hot outputs,
    where any two computations agree to the last digit; shrinking the classifier's kernel
    keeps the probabilities spread, so the comparisons below compare numbers that move."""
    model = rk.CifarResNet(depth=8)
    dense = model.layers[-1]
    dense.kernel.assign(dense.kernel * 0.02)
    return model


def _pixels(count=6):
    return np.asarray(digits.arrays()[2][:count])  # real test images, uint8 (n, 32, 32, 3)


@pytest.mark.backend
def test_with_preprocessing_is_the_pipelines_normalisation_then_a_softmax():
    data = load("digits", batch_size=16, augment=False, train_size=128)
    normalised, _ = next(iter(data.test))  # the test split keeps its order
    pixels = _pixels(len(normalised))
    # The pipeline's first test images are these pixels, normalised with info.mean/std.
    mean, std = np.float32(data.info.mean), np.float32(data.info.std)
    np.testing.assert_allclose((pixels / 255.0 - mean) / std, normalised, atol=1e-5)

    model = _small_model()
    logits = keras.ops.convert_to_numpy(model(np.asarray(normalised), training=False))
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
    assert expected.max(axis=1).min() < 0.9  # spread out, not one-hot

    classifier = with_preprocessing(model, data.info.mean, data.info.std)
    assert classifier.name == f"{model.name}_with_preprocessing"
    assert classifier.output_shape == (None, 10)
    for raw in (pixels, pixels.astype("float32"), pixels.astype("int32")):  # any numeric dtype
        probabilities = keras.ops.convert_to_numpy(classifier(raw, training=False))
        assert probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    np.testing.assert_allclose(classifier.predict_on_batch(pixels), expected, atol=1e-6)

    without_softmax = with_preprocessing(model, data.info.mean, data.info.std, softmax=False)
    raw_logits = keras.ops.convert_to_numpy(without_softmax(pixels, training=False))
    np.testing.assert_allclose(raw_logits, logits, atol=1e-5)
    # The model is shared, not copied.
    assert classifier.get_layer(model.name) is model


@pytest.mark.backend
@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"model": "resnet20.keras"}, TypeError, "`model` must be a keras.Model"),
        ({"mean": (0.5, 0.5)}, ValueError, r"`mean` must hold one number per input channel \(3\)"),
        ({"mean": 0.5}, TypeError, "`mean` must be a sequence of 3 numbers"),
        ({"mean": "0.5"}, TypeError, "`mean` must be a sequence"),
        ({"std": (0.3, 0.0, 0.3)}, ValueError, r"`std\[1\]` must be a number > 0"),
        ({"std": (0.3, float("nan"), 0.3)}, ValueError, r"`std\[1\]`"),
        ({"mean": (0.1, None, 0.1)}, TypeError, r"`mean\[1\]` must be a finite number"),
        ({"softmax": 1}, TypeError, "`softmax` must be True or False"),
        ({"name": 3}, TypeError, "`name` must be None or a string"),
    ],
)
def test_with_preprocessing_names_the_bad_argument(arguments, error, message):
    call = {"model": rk.CifarResNet(depth=8), "mean": MEAN, "std": STD, **arguments}
    with pytest.raises(error, match=message):
        with_preprocessing(call.pop("model"), call.pop("mean"), call.pop("std"), **call)


@pytest.mark.backend
def test_a_model_that_does_not_take_images_is_refused():
    inputs = keras.Input((5,))
    with pytest.raises(ValueError, match=r"one batch of images .* input shape is \(None, 5\)"):
        with_preprocessing(keras.Model(inputs, keras.layers.Dense(2)(inputs)), MEAN, STD)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_keras_file_loads_on_another_backend_with_equal_outputs(backend, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    classifier = with_preprocessing(_small_model(), MEAN, STD)
    path = tmp_path / "classifier.keras"
    classifier.save(path)
    np.save(tmp_path / "pixels.npy", _pixels())
    result = _fresh_process(
        backend,
        f"""
        from resnet_keras.inference import export_saved_model
        model = keras.saving.load_model({str(path)!r})
        pixels = np.load({str(tmp_path / "pixels.npy")!r})
        output = {{"backend": keras.backend.backend()}}
        output["probabilities"] = keras.ops.convert_to_numpy(model(pixels)).tolist()
        try:  # the SavedModel export of the model inside (JAX: through jax2tf)
            export_saved_model(model.get_layer("resnet8"), {str(tmp_path / "sm")!r},
                               mean={MEAN}, std={STD}, class_names={NAMES})
            import tensorflow as tf
            # Held in a name: the variables live as long as the loaded object does.
            served = tf.saved_model.load({str(tmp_path / "sm")!r})
            output["served"] = served.serve(pixels)["probabilities"].numpy().tolist()
        except RuntimeError as error:
            output["export_error"] = str(error)
        print(json.dumps(output))
        """,
    )
    assert result["backend"] == backend
    expected = keras.ops.convert_to_numpy(classifier(_pixels(), training=False))
    np.testing.assert_allclose(result["probabilities"], expected, atol=1e-5)
    if backend == "jax":
        np.testing.assert_allclose(result["served"], expected, atol=1e-5)
    else:  # Keras' SavedModel export on PyTorch fixes the batch size: refused in one sentence
        assert "needs the TensorFlow or JAX backend" in result["export_error"]
        assert "KERAS_BACKEND=tensorflow" in result["export_error"]


def test_the_saved_model_serves_uint8_images_in_a_process_with_only_tensorflow(tmp_path):
    model = _small_model()
    out = tmp_path / "saved_model"
    path = export_saved_model(model, out, mean=MEAN, std=STD, class_names=NAMES)
    assert path == out and (path / "saved_model.pb").is_file()
    np.save(tmp_path / "pixels.npy", _pixels())
    # This library is not imported: the SavedModel stands alone.
    code = f"""
        import json, sys
        import numpy as np
        import tensorflow as tf
        served = tf.saved_model.load({str(path)!r})
        pixels = tf.constant(np.load({str(tmp_path / "pixels.npy")!r}))
        outputs = served.{SERVE_ENDPOINT}(pixels)
        signature = served.signatures["serving_default"]
        spec = signature.structured_input_signature[1]["images"]
        print(json.dumps({{
            "probabilities": outputs["probabilities"].numpy().tolist(),
            "class_id": outputs["class_id"].numpy().tolist(),
            "class_name": [name.decode() for name in outputs["class_name"].numpy()],
            "default": sorted(signature(images=pixels)),
            "signatures": sorted(served.signatures),
            "input": [spec.dtype.name, spec.shape.as_list()],
            "class_names": [n.decode() for n in served.class_names()["class_names"].numpy()],
            "library_imported": "resnet_keras" in sys.modules,
        }}))
        """
    output = subprocess.check_output(
        [sys.executable, "-c", textwrap.dedent(code)], env=_environment(), cwd=REPO, text=True
    )
    result = json.loads(output.strip().splitlines()[-1])
    expected = keras.ops.convert_to_numpy(
        with_preprocessing(model, MEAN, STD)(_pixels(), training=False)
    )
    np.testing.assert_allclose(result["probabilities"], expected, atol=1e-5)
    assert result["class_id"] == expected.argmax(axis=1).tolist()
    assert result["class_name"] == [NAMES[i] for i in result["class_id"]]
    assert result["input"] == ["uint8", [None, 32, 32, 3]]
    assert result["default"] == ["class_id", "class_name", "probabilities"]
    assert result["signatures"] == ["class_names", "probabilities", "serve", "serving_default"]
    assert result["class_names"] == NAMES
    assert not result["library_imported"]


def test_export_checks_the_class_names_against_the_model(tmp_path):
    model = rk.CifarResNet(depth=8)
    with pytest.raises(ValueError, match=r"one string per class of the model \(10\)"):
        export_saved_model(model, tmp_path / "sm", mean=MEAN, std=STD, class_names=NAMES[:9])
    with pytest.raises(TypeError, match="`class_names` must be a sequence of 10 strings"):
        export_saved_model(model, tmp_path / "sm", mean=MEAN, std=STD, class_names="0123456789")
    with pytest.raises(TypeError, match="`path` must be a path"):
        export_saved_model(model, 7, mean=MEAN, std=STD, class_names=NAMES)
    assert not (tmp_path / "sm").exists()
