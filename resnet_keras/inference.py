"""Using a trained model: raw pixels in, class probabilities out, and a SavedModel to serve.

The models of this library take images normalised as `resnet_keras.data.load`
normalises them, `(pixels / 255 - mean) / std` per channel, and return logits.
`with_preprocessing` puts that normalisation and a softmax around a model with Keras'
own layers (`keras.layers.Rescaling`, `keras.layers.Normalization`,
`keras.layers.Softmax`), so the result takes pixels 0..255 of any numeric dtype, saves
to a `.keras` file and loads on the TensorFlow, JAX and PyTorch backends.
`export_saved_model` writes it as a TensorFlow SavedModel through Keras'
`keras.export.ExportArchive`, with a `serve` signature that takes uint8 images and
returns the probabilities, the top class id and its name: a program that loads it with
`tf.saved_model.load` needs neither Keras nor this library.

The command line's `predict` and `export` (`python -m resnet_keras predict --model
R/model.keras IMAGE...`) read the mean, standard deviation and class names that `train`
records in the run's summary.json and call these functions.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from resnet_keras._validation import check_bool, check_instance, check_number, check_path

__all__ = ["SERVE_ENDPOINT", "export_saved_model", "with_preprocessing"]

SERVE_ENDPOINT = "serve"
"""The SavedModel signature that takes uint8 images (also `serving_default`)."""

# Keras' SavedModel export of the PyTorch backend is experimental and fixes every
# dimension, the batch size included; TensorFlow and JAX (through jax2tf) keep it open.
_EXPORT_BACKENDS = ("tensorflow", "jax")


def _image_shape(model):
    """(height, width, channels) of a model with one image input, sizes possibly None."""
    check_instance("model", model, keras.Model, "a keras.Model that takes images")
    try:
        shape = model.input_shape
    except (AttributeError, ValueError):  # a subclassed model that was never built
        shape = None
    if not (isinstance(shape, tuple) and len(shape) == 4 and isinstance(shape[-1], int)):
        raise ValueError(
            "`model` must take one batch of images (batch, height, width, channels) with a "
            f"known number of channels; its input shape is {shape}."
        )
    return tuple(shape[1:])


def _num_classes(model):
    shape = model.output_shape
    if not (isinstance(shape, tuple) and len(shape) == 2 and isinstance(shape[-1], int)):
        raise ValueError(
            f"`model` must output one score per class, (batch, classes); its output shape is "
            f"{shape}."
        )
    return shape[-1]


def _per_channel(name, values, channels, *, positive):
    """`values` as a tuple of `channels` finite floats (> 0 when `positive`)."""
    if isinstance(values, (str, bytes)) or not np.iterable(values):
        raise TypeError(
            f"`{name}` must be a sequence of {channels} numbers, one per channel; "
            f"received {values!r}."
        )
    values = list(values)
    if len(values) != channels:
        raise ValueError(
            f"`{name}` must hold one number per input channel ({channels}); received "
            f"{len(values)}: {values!r}."
        )
    return tuple(
        check_number(f"{name}[{index}]", value, minimum=0, open_minimum=True)
        if positive
        else check_number(f"{name}[{index}]", value)
        for index, value in enumerate(values)
    )


def _class_names(class_names, num_classes):
    if isinstance(class_names, (str, bytes)) or not np.iterable(class_names):
        raise TypeError(
            f"`class_names` must be a sequence of {num_classes} strings; received {class_names!r}."
        )
    names = list(class_names)
    if len(names) != num_classes or not all(isinstance(name, str) for name in names):
        raise ValueError(
            f"`class_names` must hold one string per class of the model ({num_classes}); "
            f"received {names!r}."
        )
    return names


def with_preprocessing(model, mean, std, *, softmax=True, name=None):
    """A model that takes raw pixels: normalisation, then `model`, then a softmax.

    The new functional model computes `softmax(model((pixels / 255 - mean) / std))`,
    the normalisation of `resnet_keras.data.load` followed by `model`, with
    `keras.layers.Rescaling(1 / 255)`, `keras.layers.Normalization(mean, std**2)` and
    `keras.layers.Softmax`, all in float32. Being Keras layers, they save with the
    model in a `.keras` file that loads on every backend; `model` itself is shared, not
    copied (training one trains the other).

    Args:
        model: A `keras.Model` that takes normalised images `(batch, height, width,
            channels)` and outputs logits `(batch, classes)`, e.g. a run's model.keras.
        mean: Per-channel mean of the training pixels on the 0..1 scale, one number per
            channel (`data.info.mean`).
        std: Per-channel standard deviation on the 0..1 scale, each > 0 (`data.info.std`).
        softmax: Whether to output probabilities (`True`) or the logits.
        name: The new model's name; default `"<model name>_with_preprocessing"`.

    Returns:
        A functional `keras.Model` that takes pixels 0..255 (uint8, float or any numeric
        dtype, converted to float32) of the shape `model` takes and returns float32
        probabilities (or logits) of shape `(batch, classes)`.

    Raises:
        TypeError: if `model` is not a Keras model, or for a `mean`, `std`, `softmax` or
            `name` of the wrong type.
        ValueError: if `model` does not take one batch of images and output one score
            per class, or `mean`/`std` do not hold one finite number per channel (std > 0).

    Examples:
        >>> import keras, numpy as np
        >>> import resnet_keras as rk
        >>> model = rk.CifarResNet(depth=8)
        >>> classifier = with_preprocessing(model, (0.49, 0.48, 0.45), (0.25, 0.24, 0.26))
        >>> pixels = np.zeros((2, 32, 32, 3), np.uint8)
        >>> probabilities = keras.ops.convert_to_numpy(classifier(pixels, training=False))
        >>> probabilities.shape, bool(np.allclose(probabilities.sum(axis=1), 1.0))
        ((2, 10), True)
    """
    image_shape = _image_shape(model)
    _num_classes(model)
    channels = image_shape[-1]
    mean = _per_channel("mean", mean, channels, positive=False)
    std = _per_channel("std", std, channels, positive=True)
    check_bool("softmax", softmax)
    if name is not None:
        check_instance("name", name, str, "None or a string")
    pixels = keras.Input(shape=image_shape, name="pixels")
    scaled = keras.layers.Rescaling(1.0 / 255.0, dtype="float32", name="rescale")(pixels)
    normalised = keras.layers.Normalization(
        axis=-1, mean=mean, variance=np.square(std), dtype="float32", name="normalize"
    )(scaled)
    outputs = model(normalised)
    if softmax:
        outputs = keras.layers.Softmax(dtype="float32", name="probabilities")(outputs)
    return keras.Model(pixels, outputs, name=name or f"{model.name}_with_preprocessing")


def export_saved_model(model, path, *, mean, std, class_names, verbose=False):
    """Writes `model` with its preprocessing as a TensorFlow SavedModel for serving.

    `with_preprocessing(model, mean, std)` goes through `keras.export.ExportArchive`
    (what `model.export` uses) with three signatures:

    - `serve` (also `serving_default`): uint8 images `(batch, height, width, channels)`
      in, a dict of `probabilities` (float32, `(batch, classes)`), `class_id` (int32,
      the most probable class) and `class_name` (string) out;
    - `probabilities`: the probabilities alone, for the same input;
    - `class_names`: no input, `{"class_names": <string tensor of every name>}`.

    Reload it with `tf.saved_model.load(path)` (TensorFlow only, no Keras needed) and
    call `.serve(images)`.

    Args:
        model: A `keras.Model` that takes normalised images and outputs logits.
        path: Folder to write the SavedModel into (created, or overwritten).
        mean: Per-channel mean on the 0..1 scale, one number per channel.
        std: Per-channel standard deviation on the 0..1 scale, each > 0.
        class_names: One string per class of the model, in label order.
        verbose: Whether Keras prints the endpoints it wrote.

    Returns:
        `path` as a `pathlib.Path`.

    Raises:
        TypeError: for arguments of the wrong type (see `with_preprocessing`).
        ValueError: for a model that does not take images or `mean`, `std`,
            `class_names` that do not match its channels and classes.
        RuntimeError: on the PyTorch backend, whose SavedModel export fixes the batch
            size; load the `.keras` file on the TensorFlow or JAX backend to export it.
        ModuleNotFoundError: if TensorFlow is not installed (a SavedModel is
            TensorFlow's format).

    Examples:
        >>> import resnet_keras as rk
        >>> model = rk.CifarResNet(depth=8)
        >>> names = [str(digit) for digit in range(10)]
        >>> export_saved_model(model, "runs/r8/saved_model", mean=(0.1,) * 3,
        ...                    std=(0.3,) * 3, class_names=names)  # doctest: +SKIP
        PosixPath('runs/r8/saved_model')
        >>> import tensorflow as tf  # doctest: +SKIP
        >>> served = tf.saved_model.load("runs/r8/saved_model")  # doctest: +SKIP
        >>> served.serve(tf.zeros((1, 32, 32, 3), tf.uint8))["class_name"]  # doctest: +SKIP
        <tf.Tensor: shape=(1,), dtype=string, numpy=array([b'3'], dtype=object)>
    """
    from resnet_keras._optional import import_module

    check_path("path", path)
    check_bool("verbose", verbose)
    classifier = with_preprocessing(model, mean, std)
    names = _class_names(class_names, _num_classes(model))
    backend = keras.backend.backend()
    if backend not in _EXPORT_BACKENDS:
        raise RuntimeError(
            "export_saved_model needs the TensorFlow or JAX backend (Keras' SavedModel "
            f"export on {backend!r} fixes the batch size); load the .keras file with "
            "KERAS_BACKEND=tensorflow to export it."
        )
    tf = import_module("tensorflow")

    images = tf.TensorSpec((None, *classifier.input_shape[1:]), tf.uint8, name="images")
    archive = keras.export.ExportArchive()
    archive.track(classifier)
    # The model is a Keras endpoint, converted by the backend (jax2tf on JAX); the class
    # names are TensorFlow strings, so they are added around it in a tf.function, as
    # ExportArchive's documentation combines a model with TensorFlow preprocessing.
    probabilities = archive.add_endpoint(
        "probabilities",
        lambda images: classifier(images, training=False),
        input_signature=[images],
    )
    name_table = tf.constant(names)

    @tf.function(input_signature=[images], autograph=False)
    def serve(images):
        scores = probabilities(images)
        class_id = tf.argmax(scores, axis=-1, output_type=tf.int32)
        return {
            "probabilities": scores,
            "class_id": class_id,
            "class_name": tf.gather(name_table, class_id),
        }

    @tf.function(input_signature=[], autograph=False)
    def list_class_names():
        return {"class_names": name_table}

    archive.add_endpoint(SERVE_ENDPOINT, serve)
    archive.add_endpoint("serving_default", serve)  # what TF Serving calls by default
    archive.add_endpoint("class_names", list_class_names)
    archive.write_out(str(path), verbose=verbose)
    return Path(path)
