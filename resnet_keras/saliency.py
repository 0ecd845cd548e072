"""A look inside a trained network: feature maps, Grad-CAM and its sanity check.

`feature_maps` returns what the stages of a network compute for a batch of images.
`grad_cam` is Gradient-weighted Class Activation Mapping (Selvaraju et al. 2017,
"Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization",
ICCV): the gradient of a class score with respect to the feature map A of a late
convolutional layer, averaged over the positions, weighs the channels of A, and
ReLU(sum_k w_k A_k) shows where in the image the evidence for the class lies.
`randomize_weights` and `rank_correlation` are the model-randomisation test of
Adebayo et al. 2018 ("Sanity Checks for Saliency Maps", NeurIPS): a map that
explains the model must change when the model's weights are re-initialised; the
similarity they measure is Spearman's rank correlation.

These are written here because Keras has no saliency API: Grad-CAM appears in the
keras-io code examples only, as a TensorFlow `GradientTape` script. The functions
below work on any functional model (every builder of `resnet_keras.models`) under
the TensorFlow, JAX and PyTorch backends, with each backend's own automatic
differentiation (as `resnet_keras.analysis.gradient_norms`).
"""

from __future__ import annotations

import numbers
import random
import re

import keras
import numpy as np

from resnet_keras._validation import check_instance, check_non_negative_int

_BLOCK_NAME = re.compile(r"^(?:stage|conv)(\d+)_block(\d+)$")


def _check_model(model):
    check_instance("model", model, keras.Model, "a functional keras.Model")
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise TypeError(
            "`model` must be a functional keras.Model (built from keras.Input, as every "
            f"resnet_keras builder); received a {type(model).__name__} without inputs."
        )
    if len(inputs) != 1:
        raise ValueError(f"`model` must have one input (images); it has {len(inputs)}.")
    return model


def _check_images(model, images):
    images = np.asarray(images, dtype="float32")
    expected = tuple(model.inputs[0].shape[1:])
    if images.ndim != 4 or any(
        size is not None and size != given for size, given in zip(expected, images.shape[1:])
    ):
        wanted = "(batch, " + ", ".join("?" if s is None else str(s) for s in expected) + ")"
        raise ValueError(f"`images` must be a batch of shape {wanted}; received {images.shape}.")
    return images


def _output_rank(layer):
    try:
        return len(layer.output.shape)
    except (AttributeError, ValueError):  # a layer called several times, or never
        return None


def spatial_layers(model):
    """The names of the layers whose output is a 4-D feature map, input to output.

    These are the layers `grad_cam` accepts as `layer_name`: convolutions,
    residual blocks, normalisations and activations before global pooling (the
    input layer and zero paddings are left out).

    Args:
        model: a functional `keras.Model`.

    Returns:
        A list of layer names, in the order the model computes them.

    Raises:
        TypeError: if `model` is not a functional Keras model.

    Examples:

    >>> import resnet_keras as rk
    >>> spatial_layers(rk.CifarResNet(8, input_shape=(16, 16, 3)))[-3:]
    ['stage1_block1', 'stage2_block1', 'stage3_block1']
    """
    _check_model(model)
    return [
        layer.name
        for layer in model.layers
        if not isinstance(layer, (keras.layers.InputLayer, keras.layers.ZeroPadding2D))
        and _output_rank(layer) == 4
    ]


def _default_feature_layers(model):
    blocks = {}
    for layer in model.layers:
        match = _BLOCK_NAME.match(layer.name)
        if match and _output_rank(layer) == 4:
            stage, index = int(match.group(1)), int(match.group(2))
            if index >= blocks.get(stage, (0, None))[0]:
                blocks[stage] = (index, layer.name)
    if blocks:
        return [blocks[stage][1] for stage in sorted(blocks)]
    last_per_size = {}
    for name in spatial_layers(model):
        size = tuple(model.get_layer(name).output.shape[1:3])
        last_per_size.pop(size, None)  # re-inserted: the dict keeps the order of the last ones
        last_per_size[size] = name
    return list(last_per_size.values())


def feature_maps(model, images, layer_names=None):
    """The activations of some layers for a batch of images, in inference mode.

    Args:
        model: a functional `keras.Model` (e.g. `rk.CifarResNet(20)`).
        images: a batch `(batch, height, width, channels)` the model accepts.
        layer_names: a layer name or a list of them; None takes the last block of
            each stage (the layers `stage{s}_block{n}` of the CIFAR ResNets or
            `conv{s}_block{n}` of the ImageNet ones, highest n per stage) and, for a
            model without such blocks, the last layer at each spatial resolution.

    Returns:
        A dict layer name -> NumPy array of its output, in the order asked for
        (for the default, stage by stage).

    Raises:
        TypeError: if `model` is not a functional Keras model or a name not a string.
        ValueError: for an unknown layer name or images of the wrong shape.

    Examples:

    >>> import numpy as np, resnet_keras as rk
    >>> model = rk.CifarResNet(8, input_shape=(16, 16, 3))
    >>> maps = feature_maps(model, np.zeros((2, 16, 16, 3)))
    >>> for name, value in maps.items():
    ...     print(name, value.shape)
    stage1_block1 (2, 16, 16, 16)
    stage2_block1 (2, 8, 8, 32)
    stage3_block1 (2, 4, 4, 64)
    """
    _check_model(model)
    images = _check_images(model, images)
    if layer_names is None:
        names = _default_feature_layers(model)
    else:
        names = [layer_names] if isinstance(layer_names, str) else list(layer_names)
        known = [layer.name for layer in model.layers]
        for name in names:
            check_instance("layer_names", name, str, "a layer name or a list of layer names")
            if name not in known:
                raise ValueError(
                    f"`layer_names` must name layers of the model ({', '.join(known)}); "
                    f"received {name!r}."
                )
    if not names:
        return {}
    extractor = keras.Model(model.inputs[0], [model.get_layer(name).output for name in names])
    outputs = extractor(keras.ops.convert_to_tensor(images), training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return {name: keras.ops.convert_to_numpy(value) for name, value in zip(names, outputs)}


def _check_layer_name(model, layer_name):
    valid = spatial_layers(model)
    if layer_name is None:
        if not valid:
            raise ValueError("`model` has no layer with a 4-D output to compute Grad-CAM on.")
        return valid[-1]
    check_instance("layer_name", layer_name, str, "None or a layer name")
    if layer_name not in valid:
        known = {layer.name: layer for layer in model.layers}
        if layer_name in known:
            rank = _output_rank(known[layer_name])
            why = f"its output has rank {rank}" if rank else "it has no single output"
        else:
            why = "no such layer"
        raise ValueError(
            "`layer_name` must name a layer with a 4-D output (batch, height, width, "
            f"channels): {', '.join(map(repr, valid))}; received {layer_name!r} ({why})."
        )
    return layer_name


def _check_class_index(class_index, num_images, num_classes):
    if class_index is None:
        return None
    wording = f"None, an int in [0, {num_classes}) or one such int per image"
    values = np.asarray(class_index)
    if isinstance(class_index, bool) or not (
        np.issubdtype(values.dtype, np.integer) or isinstance(class_index, numbers.Integral)
    ):
        raise TypeError(f"`class_index` must be {wording}; received {class_index!r}.")
    if values.ndim == 0:
        values = np.full((num_images,), int(values))
    if values.shape != (num_images,) or values.min() < 0 or values.max() >= num_classes:
        raise ValueError(f"`class_index` must be {wording}; received {class_index!r}.")
    return values.astype("int32")


def _selected_score(scores, class_index):
    """Sum over the batch of each image's class score, and the classes picked."""
    if class_index is None:
        class_index = keras.ops.argmax(scores, axis=-1)
    else:
        class_index = keras.ops.convert_to_tensor(class_index)
    picked = keras.ops.take_along_axis(scores, keras.ops.expand_dims(class_index, -1), axis=-1)
    return keras.ops.sum(keras.ops.cast(picked, "float32")), class_index


def _score_gradients(head, images, features, class_index):
    """d(class score)/d(features) for each image, as NumPy (images are independent)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        features = tf.convert_to_tensor(features)
        with tf.GradientTape() as tape:
            tape.watch(features)
            score, _ = _selected_score(head([images, features], training=False), class_index)
        return tape.gradient(score, features).numpy()
    if backend == "torch":
        import torch

        features = features.detach().requires_grad_(True)
        score, _ = _selected_score(head([images, features], training=False), class_index)
        (gradient,) = torch.autograd.grad(score, [features])
        return gradient.detach().cpu().numpy()
    if backend == "jax":
        import jax

        trainable = [v.value for v in head.trainable_variables]
        non_trainable = [v.value for v in head.non_trainable_variables]

        def compute(feature_values):
            scores, _ = head.stateless_call(
                trainable, non_trainable, [images, feature_values], training=False
            )
            return _selected_score(scores, class_index)[0]

        return np.asarray(jax.grad(compute)(features))
    raise ValueError(f"grad_cam does not support the {backend!r} backend.")


def _normalise(maps):
    maps = np.maximum(maps, 0.0)
    peaks = maps.max(axis=(1, 2), keepdims=True)
    # An all-zero map (no positive evidence) stays zero instead of dividing by zero.
    return np.where(peaks > 0, maps / np.where(peaks > 0, peaks, 1.0), 0.0).astype("float32")


def grad_cam(model, images, class_index=None, layer_name=None):
    """Grad-CAM heat maps: where in each image the evidence for a class lies.

    For the feature map A of `layer_name` (channels A_k) and the score y_c of class c,
    the channel weights are the spatial means of the gradients, w_k = mean_ij
    dy_c/dA_k(i, j), and the map is ReLU(sum_k w_k A_k) (Selvaraju et al. 2017, Eqs. 1
    and 2), bilinearly resized to the input's height and width and divided by its
    maximum. The score is the model's output: the logits for the library's CIFAR and
    seed models (an ImageNet builder with the default softmax gives probabilities;
    build it with `classifier_activation=None` for logits, as the paper uses).

    The model is split at the layer into the part that computes A and the part that
    maps A (and, for a layer inside a branch, the rest of the graph from the images)
    to the scores, and that second part is differentiated with the backend's
    automatic differentiation, in inference mode (batch normalisation uses its moving
    statistics, so the images do not affect one another).

    Args:
        model: a functional `keras.Model` whose output is `(batch, classes)` scores.
        images: a batch `(batch, height, width, channels)` the model accepts.
        class_index: the class to explain: None for each image's predicted class (the
            argmax of the scores), an int for all images, or one int per image.
        layer_name: the layer whose output is A; None takes the last layer with a 4-D
            output (the feature map before global pooling). See `spatial_layers`.

    Returns:
        A float32 NumPy array `(batch, height, width)` in [0, 1]; each map's maximum
        is 1, except a map with no positive evidence, which is all zero.

    Raises:
        TypeError: if `model` is not a functional Keras model, or for a `layer_name`
            or `class_index` of the wrong type.
        ValueError: if `layer_name` is not a layer with a 4-D output (the message
            lists those that are), `class_index` is out of range, the images do not
            fit the model or its output is not `(batch, classes)`.

    Examples:

    >>> import numpy as np, resnet_keras as rk
    >>> model = rk.CifarResNet(8, input_shape=(16, 16, 3))
    >>> images = np.random.default_rng(0).normal(size=(2, 16, 16, 3))
    >>> maps = grad_cam(model, images, class_index=3)
    >>> maps.shape, bool(maps.min() >= 0 and maps.max() <= 1)
    ((2, 16, 16), True)
    """
    _check_model(model)
    images = _check_images(model, images)
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise ValueError(
            "`model` must output class scores of shape (batch, classes) for Grad-CAM; "
            f"its outputs have shapes {[tuple(output.shape) for output in model.outputs]}."
        )
    layer_name = _check_layer_name(model, layer_name)
    num_classes = model.outputs[0].shape[-1]
    class_index = _check_class_index(class_index, len(images), num_classes)

    inputs = model.inputs[0]
    feature_tensor = model.get_layer(layer_name).output
    features_model = keras.Model(inputs, feature_tensor)
    # The head takes the images too: a layer inside a residual branch does not cut the
    # graph in two (the shortcut still needs the block's input). For a layer that does,
    # the images input is simply unused.
    head = keras.Model([inputs, feature_tensor], model.outputs[0])

    image_tensor = keras.ops.convert_to_tensor(images)
    features = features_model(image_tensor, training=False)
    gradients = _score_gradients(head, image_tensor, features, class_index)
    features = keras.ops.convert_to_numpy(features).astype("float32")
    weights = gradients.astype("float32").mean(axis=(1, 2))
    maps = np.maximum(np.einsum("bhwk,bk->bhw", features, weights), 0.0)
    if maps.shape[1:] != images.shape[1:3]:
        resized = keras.ops.image.resize(
            maps[..., None],
            images.shape[1:3],
            interpolation="bilinear",
            data_format="channels_last",
        )
        maps = keras.ops.convert_to_numpy(resized)[..., 0]
    return _normalise(maps)


def randomize_weights(model, seed=0, layers=None):
    """A copy of `model` with the weights of some layers freshly initialised.

    The model-randomisation test of Adebayo et al. 2018: a saliency method that
    explains the model, and not only the image, gives different maps for the
    trained model and for the same architecture with random weights. Randomising
    from the top down (`layers=["logits"]`, then also the last block, ...) is their
    cascading version.

    The copy is `keras.models.clone_model(model)`: every layer is rebuilt from its
    configuration and initialised afresh by its own initialisers (He normal
    convolutions, BN's gamma 1, beta 0 and moving statistics 0 and 1, ...), as a
    function of `seed` alone. The layers not named in `layers` then get the
    original's weights back. `model` itself is not changed.

    Args:
        model: a functional `keras.Model`.
        seed: a non-negative integer; equal seeds give equal weights.
        layers: names of the model's layers to re-initialise (a residual block's
            name re-initialises all its convolutions and normalisations); None for
            every layer.

    Returns:
        A new, uncompiled `keras.Model`.

    Raises:
        TypeError: if `model` is not a functional Keras model, or `seed` or a name of
            the wrong type.
        ValueError: for a negative seed or an unknown layer name.

    Examples:

    >>> import numpy as np, resnet_keras as rk
    >>> model = rk.CifarResNet(8, input_shape=(16, 16, 3))
    >>> top = randomize_weights(model, seed=1, layers=["logits"])
    >>> def same(name):
    ...     pairs = zip(model.get_layer(name).get_weights(), top.get_layer(name).get_weights())
    ...     return all(np.array_equal(a, b) for a, b in pairs)
    >>> same("stem_conv"), same("stage3_block1"), same("logits")
    (True, True, False)
    """
    _check_model(model)
    seed = check_non_negative_int("seed", seed)
    known = [layer.name for layer in model.layers]
    if layers is None:
        chosen = set(known)
    else:
        names = [layers] if isinstance(layers, str) else list(layers)
        for name in names:
            check_instance("layers", name, str, "None or a list of layer names")
            if name not in known:
                raise ValueError(
                    f"`layers` must name layers of the model ({', '.join(known)}); "
                    f"received {name!r}."
                )
        chosen = set(names)
    # Keras initialisers made without a seed draw one from Python's `random` when they
    # are created (keras.random.make_default_seed), i.e. while the clone is built:
    # seeding it for the duration makes the fresh weights a function of `seed` alone,
    # and the caller's random state is put back afterwards.
    state = random.getstate()
    try:
        random.seed(seed)
        clone = keras.models.clone_model(model)
    finally:
        random.setstate(state)
    for layer in model.layers:
        if layer.name not in chosen and layer.weights:
            clone.get_layer(layer.name).set_weights(layer.get_weights())
    return clone


def _ranks(values):
    """Ranks 1..n of a 1-D array, ties getting the mean of the ranks they span."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    ends = np.append(starts[1:], len(values))
    groups = np.repeat(np.arange(len(starts)), ends - starts)
    ranks = np.empty(len(values), dtype="float64")
    ranks[order] = ((starts + ends + 1) / 2.0)[groups]
    return ranks


def rank_correlation(a, b, per_image=False):
    """Spearman's rank correlation of two batches of maps, image by image.

    Each image's two maps are flattened, ranked (ties share their mean rank, which
    matters for Grad-CAM maps with many zeros) and correlated (Pearson on the ranks):
    the similarity of Adebayo et al. 2018. An image where either map is constant has
    no ranking to compare; its coefficient counts as 0.

    Args:
        a: maps `(batch, ...)`, e.g. from `grad_cam`.
        b: maps of the same shape.
        per_image: return the coefficient of each image instead of their mean.

    Returns:
        The mean coefficient over the images, a float in [-1, 1] (or an array of one
        coefficient per image).

    Raises:
        ValueError: if the shapes differ or there are no images.

    Examples:

    >>> import numpy as np
    >>> maps = np.array([[[0.0, 1.0], [0.5, 0.2]]])
    >>> rank_correlation(maps, maps ** 2), rank_correlation(maps, 1 - maps)
    (1.0, -1.0)
    """
    a, b = np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")
    if a.shape != b.shape or a.ndim < 2 or len(a) == 0:
        raise ValueError(
            "`a` and `b` must be batches of maps of the same shape (batch, ...); received "
            f"shapes {a.shape} and {b.shape}."
        )
    coefficients = []
    for first, second in zip(a.reshape(len(a), -1), b.reshape(len(b), -1)):
        x, y = _ranks(first), _ranks(second)
        x, y = x - x.mean(), y - y.mean()
        scale = np.sqrt(np.sum(x * x) * np.sum(y * y))
        coefficients.append(float(np.sum(x * y) / scale) if scale > 0 else 0.0)
    coefficients = np.clip(np.array(coefficients), -1.0, 1.0)
    return coefficients if per_image else float(coefficients.mean())
