"""Loss landscapes: the loss of a model along random, filter-normalised directions.

Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets" (NeurIPS), plot the loss
of a trained network at theta + alpha d (a 1-D slice) or theta + alpha d1 + beta d2 (a 2-D
surface), where the directions d are Gaussian and *filter-normalised*: each filter of d is
rescaled to the norm of the same filter of theta, so that the plot does not depend on the
scale of the weights (which batch normalisation leaves free). Their finding: without
shortcuts, deep networks have sharp, chaotic, non-convex landscapes; shortcuts keep them
smooth and nearly convex.

Keras has no API for any of this (no directions, no weight sweeps), so the module is
hand-written on public Keras 3 calls only (`trainable_weights`, `Variable.assign`,
`Model.__call__` in inference mode, `keras.ops`), and works on the TensorFlow, JAX and
PyTorch backends:

- `random_direction`: a filter- (or layer-) normalised Gaussian direction;
- `loss_along`: the losses and accuracies along one direction or on a grid of two;
- `sharpness` and `non_convexity`: scalar summaries of a slice and of a surface.

Examples:

>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
>>> direction = random_direction(model, seed=0)
>>> [d.shape for d in direction]
[(4, 3), (3,)]
>>> images, labels = np.ones((5, 4), "float32"), np.array([0, 1, 2, 0, 1])
>>> curve = loss_along(model, direction, np.linspace(-1, 1, 5), images, labels)
>>> curve.losses.shape, curve.accuracies.shape
((5,), (5,))
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import keras
import numpy as np

from resnet_keras import _validation

NORMALIZATIONS = ("filter", "layer", None)


class LossLandscape(NamedTuple):
    """What `loss_along` returns: losses and accuracies at every coordinate.

    Attributes:
        losses: float64 array, shape (len(alphas),) for a slice or (len(alphas),
            len(betas)) for a surface.
        accuracies: top-1 accuracies in the same shape, or None when the model does not
            output class scores for integer labels (a regression, say).
    """

    losses: np.ndarray
    accuracies: np.ndarray | None


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model; received {type(model).__name__}.")
    if not model.built:
        raise ValueError("`model` is not built: call it on data or give it an input shape first.")
    if not model.trainable_weights:
        raise ValueError("`model` has no trainable weights to move along a direction.")
    return model


def _to_numpy(variable):
    return np.array(keras.ops.convert_to_numpy(variable.value), copy=True)


def random_direction(model, seed=0, normalization="filter"):
    """A Gaussian random direction in the space of the model's trainable weights.

    One array per entry of `model.trainable_weights`, in that order and of the same
    shapes, drawn from N(0, 1) with NumPy's generator for `seed` and then rescaled:

    - `"filter"` (Li et al. 2018, Sec. 4): every filter, the slice `[..., j]` over the
      last axis, gets the norm of the same filter of the weights; that is an output
      channel of a convolution kernel (kh, kw, in, out) and an output unit of a dense
      kernel (in, out);
    - `"layer"`: the whole array gets the norm of the whole weight;
    - None: no rescaling (raw Gaussian entries).

    Weights with fewer than two axes, the biases and the batch-normalisation scales and
    offsets, get zero in every normalisation: Li et al. "ignore BN and bias parameters"
    the same way (their code's `ignore='biasbn'`). A filter of all-zero weights gets a
    zero direction.

    Args:
        model: a built `keras.Model`.
        seed: a non-negative integer; the same seed gives the same direction.
        normalization: "filter", "layer" or None.

    Returns:
        A list of NumPy arrays, one per trainable weight, in the weights' dtypes.

    Raises:
        TypeError: if `model` is not a keras.Model or `seed` not an integer.
        ValueError: if the model is not built, has no trainable weights, `seed` is
            negative or `normalization` is unknown.

    Examples:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    >>> kernel, bias = random_direction(model, seed=1)
    >>> bool(np.allclose(np.linalg.norm(kernel, axis=0),
    ...                  np.linalg.norm(model.weights[0].numpy(), axis=0)))
    True
    >>> bias
    array([0., 0.], dtype=float32)
    """
    _check_model(model)
    seed = _validation.check_non_negative_int("seed", seed)
    normalization = _validation.check_choice("normalization", normalization, NORMALIZATIONS)
    generator = np.random.default_rng(seed)
    direction = []
    for weight in model.trainable_weights:
        dtype = keras.backend.standardize_dtype(weight.dtype)
        values = _to_numpy(weight).astype("float64")
        # Drawn for every weight, so a weight's direction depends on the seed and its place
        # alone, whichever normalisation is chosen.
        noise = generator.standard_normal(values.shape)
        if values.ndim < 2:
            noise = np.zeros_like(noise)
        elif normalization == "filter":
            axes = tuple(range(values.ndim - 1))
            noise *= _norm_ratio(values, noise, axes)
        elif normalization == "layer":
            noise *= _norm_ratio(values, noise, None)
        direction.append(noise.astype(dtype))
    return direction


def _norm_ratio(values, noise, axes):
    target = np.sqrt(np.sum(np.square(values), axis=axes))
    current = np.sqrt(np.sum(np.square(noise), axis=axes))
    return target / np.maximum(current, np.finfo("float64").tiny)


def _as_directions(directions, weights):
    if not isinstance(directions, (list, tuple)) or not directions:
        raise TypeError(
            "`directions` must be one direction (a list of arrays, one per trainable weight, "
            f"as from `random_direction`) or a pair of them; received {directions!r:.80}."
        )
    several = all(isinstance(item, (list, tuple)) for item in directions)
    directions = list(directions) if several else [directions]
    arrays = []
    for number, direction in enumerate(directions):
        if len(direction) != len(weights):
            raise ValueError(
                f"`directions` must hold one array per trainable weight of the model "
                f"({len(weights)}); direction {number} holds {len(direction)}."
            )
        converted = []
        for array, weight in zip(direction, weights):
            array = np.asarray(array, dtype="float64")
            if array.shape != tuple(weight.shape):
                raise ValueError(
                    f"`directions` must match the shapes of the model's trainable weights; "
                    f"direction {number} has shape {array.shape} for {weight.path!r} of shape "
                    f"{tuple(weight.shape)}."
                )
            if not np.all(np.isfinite(array)):
                raise ValueError(
                    f"`directions` must be finite; direction {number} is not for {weight.path!r}."
                )
            converted.append(array)
        arrays.append(converted)
    return arrays


def _as_axes(coordinates):
    wording = "a 1-D array of alphas, or a pair (alphas, betas) of 1-D arrays"
    if (
        isinstance(coordinates, (list, tuple))
        and coordinates
        and all(np.ndim(item) >= 1 for item in coordinates)
    ):
        axes = list(coordinates)
    else:
        try:
            array = np.asarray(coordinates, dtype="float64")
        except (TypeError, ValueError):
            raise TypeError(
                f"`coordinates` must be {wording}; received {coordinates!r:.80}."
            ) from None
        axes = [array] if array.ndim == 1 else list(array) if array.ndim == 2 else None
    if axes is None or len(axes) not in (1, 2):
        raise ValueError(f"`coordinates` must be {wording}; received {coordinates!r:.80}.")
    converted = []
    for axis in axes:
        try:
            axis = np.asarray(axis, dtype="float64")
        except (TypeError, ValueError):
            raise TypeError(
                f"`coordinates` must be {wording}; received {coordinates!r:.80}."
            ) from None
        if axis.ndim != 1 or axis.size == 0 or not np.all(np.isfinite(axis)):
            raise ValueError(
                f"`coordinates` must be {wording} of finite numbers, none empty; received "
                f"{coordinates!r:.80}."
            )
        converted.append(axis)
    return converted


def _no_grad():
    if keras.backend.backend() == "torch":
        import torch

        return torch.no_grad()
    return contextlib.nullcontext()


def _evaluate(model, images, labels, loss, batch_size):
    # Keras' compiled inference step (training=False), traced once and reused for every point
    # of the landscape: about 4x faster than calling the model eagerly on TensorFlow.
    outputs = []
    with _no_grad():
        for start in range(0, len(images), batch_size):
            outputs.append(np.asarray(model.predict_on_batch(images[start : start + batch_size])))
    outputs = np.concatenate(outputs)
    value = loss(keras.ops.convert_to_tensor(labels), keras.ops.convert_to_tensor(outputs))
    value = float(np.mean(keras.ops.convert_to_numpy(value)))
    classes = outputs.ndim == 2 and outputs.shape[-1] > 1
    if not (classes and labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer)):
        return value, None
    return value, float(np.mean(np.argmax(outputs, axis=-1) == labels))


def loss_along(model, directions, coordinates, images, labels, loss=None, batch_size=128):
    """The model's loss (and accuracy) along one direction, or on a grid of two.

    With one direction d and alphas, the loss of the model with weights theta + alpha d
    for each alpha (Li et al.'s 1-D plots); with two directions (d1, d2) and coordinates
    (alphas, betas), the loss at theta + alpha d1 + beta d2 for every pair (their contour
    and surface plots). Theta is `model.trainable_weights`; the non-trainable weights (BN's
    moving statistics) stay as they are, and the model runs in inference mode
    (`training=False`: BN uses its moving statistics, as Li et al.'s code evaluates
    `net.eval()`). The loss at a point is `loss(labels, outputs)` over all images at once,
    the outputs computed `batch_size` images at a time; the weights are put back exactly as
    they were when the function returns, also when it raises.

    Args:
        model: a built `keras.Model` returning logits (or whatever `loss` expects).
        directions: one direction (a list of arrays shaped like
            `model.trainable_weights`, as from `random_direction`) for 1-D
            coordinates, or a pair of them for 2-D coordinates.
        coordinates: a 1-D array of alphas, or a pair (alphas, betas) of 1-D arrays.
        images: NumPy images (cast to float32), one per label.
        labels: the labels `loss` compares the outputs with.
        loss: a callable `loss(labels, outputs)`; defaults to sparse categorical
            cross-entropy from logits. A non-scalar result is averaged.
        batch_size: how many images one forward pass takes.

    Returns:
        A `LossLandscape(losses, accuracies)`: arrays of shape (len(alphas),), or
        (len(alphas), len(betas)) with `losses[i, j]` at (alphas[i], betas[j]).
        `accuracies` (argmax of the outputs against the labels) is None unless the
        labels are 1-D integers and the outputs 2-D with more than one column.

    Raises:
        TypeError: if `model`, `directions`, `coordinates` or `loss` has the wrong type.
        ValueError: if the directions do not match the model's trainable weights, their
            number not the number of coordinate axes, or `labels` not `images` in length.

    Examples:

    >>> import keras, numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> x, y = np.array([[1.0, 0.0], [0.0, 1.0]]), np.zeros((2, 1))
    >>> d1, d2 = random_direction(model, seed=0), random_direction(model, seed=1)
    >>> surface = loss_along(model, (d1, d2), ([-1, 0, 1], [0, 1]), x, y,
    ...                      loss=keras.losses.MeanSquaredError())
    >>> surface.losses.shape, surface.accuracies
    ((3, 2), None)
    """
    _check_model(model)
    weights = list(model.trainable_weights)
    directions = _as_directions(directions, weights)
    axes = _as_axes(coordinates)
    if len(directions) != len(axes):
        raise ValueError(
            f"`directions` must hold one direction per axis of `coordinates`; received "
            f"{len(directions)} direction(s) for {len(axes)}-D coordinates."
        )
    if loss is None:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    elif not callable(loss):
        raise TypeError(f"`loss` must be None or a callable; received {type(loss).__name__}.")
    batch_size = _validation.check_positive_int("batch_size", batch_size)
    images = np.asarray(images, dtype="float32")
    labels = np.asarray(labels)
    if images.ndim < 2 or len(images) == 0:
        raise ValueError(
            f"`images` must be a non-empty batch (first axis: images); received shape "
            f"{images.shape}."
        )
    if labels.ndim == 0 or len(labels) != len(images):
        raise ValueError(
            f"`labels` must hold one label per image ({len(images)}); received shape "
            f"{labels.shape}."
        )
    original = [_to_numpy(weight) for weight in weights]
    theta = [values.astype("float64") for values in original]
    grid = np.meshgrid(*axes, indexing="ij")
    losses = np.empty(grid[0].shape)
    accuracies = np.empty(grid[0].shape)
    try:
        for index in np.ndindex(losses.shape):
            steps = [axis_grid[index] for axis_grid in grid]
            for number, (weight, values) in enumerate(zip(weights, theta)):
                moved = values + sum(step * d[number] for step, d in zip(steps, directions))
                weight.assign(moved.astype(original[number].dtype))
            losses[index], accuracy = _evaluate(model, images, labels, loss, batch_size)
            accuracies = None if accuracy is None else accuracies
            if accuracies is not None:
                accuracies[index] = accuracy
    finally:
        for weight, values in zip(weights, original):
            weight.assign(values)
    return LossLandscape(losses, accuracies)


def _check_curve(alphas, losses):
    alphas = np.asarray(alphas, dtype="float64")
    losses = np.asarray(losses, dtype="float64")
    if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas)):
        raise ValueError(
            f"`alphas` must be a non-empty 1-D array of finite numbers; received shape "
            f"{alphas.shape}."
        )
    if losses.shape != alphas.shape:
        raise ValueError(
            f"`losses` must hold one loss per alpha, shape {alphas.shape}; received shape "
            f"{losses.shape}."
        )
    if not np.all(np.isfinite(losses)):
        raise ValueError("`losses` must be finite; received NaN or infinite values.")
    return alphas, losses


def sharpness(alphas, losses, radius=None, measure="curvature"):
    """How sharply a 1-D loss slice rises around alpha = 0, one number.

    Two measures over the points with |alpha| <= `radius` (all points when None):

    - `"curvature"`: the second derivative 2c of the least-squares quadratic
      a + b alpha + c alpha**2 through those points, exact for a quadratic loss; in
      loss per (unit of filter-normalised step)**2. Negative where the slice bends down.
    - `"rise"`: the mean loss of those points minus their minimum loss, a fit-free
      "how far up do the walls go" in loss units (zero for a flat slice).

    Both are larger for a sharper minimum; with filter-normalised directions they compare
    networks of different weight scales (Li et al. 2018, Sec. 4 and 6).

    Args:
        alphas: 1-D array of step sizes, as given to `loss_along`.
        losses: the losses at the alphas (`loss_along(...).losses`).
        radius: None or a positive number: the half-width of the window around 0.
        measure: "curvature" or "rise".

    Returns:
        A float.

    Raises:
        TypeError: if `radius` is not a number.
        ValueError: if the arrays do not match or are not finite, `radius` is not
            positive, `measure` is unknown, or the window holds too few points (three
            distinct alphas for the curvature, one for the rise).

    Examples:

    >>> import numpy as np
    >>> alphas = np.linspace(-1, 1, 11)
    >>> round(sharpness(alphas, 1 + 3 * alphas**2), 6)
    6.0
    >>> round(sharpness(alphas, 1 + 3 * alphas**2, radius=0.5, measure="rise"), 6)
    0.24
    """
    alphas, losses = _check_curve(alphas, losses)
    measure = _validation.check_choice("measure", measure, ("curvature", "rise"))
    if radius is not None:
        radius = _validation.check_number("radius", radius, minimum=0, open_minimum=True)
        inside = np.abs(alphas) <= radius
        alphas, losses = alphas[inside], losses[inside]
    if measure == "rise":
        if alphas.size == 0:
            raise ValueError(f"`radius` {radius} leaves no alpha in the window around 0.")
        return float(np.mean(losses) - np.min(losses))
    if np.unique(alphas).size < 3:
        raise ValueError(
            "`alphas` must hold at least three distinct values within `radius` to fit a "
            f"quadratic; received {np.unique(alphas).size}."
        )
    # Scaled to [-1, 1] for a well-conditioned fit, then scaled back.
    scale = float(np.max(np.abs(alphas))) or 1.0
    curvature = np.polynomial.polynomial.polyfit(alphas / scale, losses, 2)[2]
    return float(2 * curvature / scale**2)


def non_convexity(losses, tolerance=0.0):
    """The fraction of a 2-D loss surface's interior points where it bends down.

    A point counts as non-convex when the discrete second difference
    L[i-1, j] - 2 L[i, j] + L[i+1, j] along the first axis, or the same along the
    second, is below -`tolerance`. A convex bowl gives 0, a saddle 1; Li et al. 2018
    (Sec. 6) map the same thing as the ratio of the Hessian's extreme eigenvalues. The
    grid is taken as evenly spaced along each axis (as `np.linspace` makes it), the sign
    of a second difference being the sign of the curvature then.

    Args:
        losses: a 2-D array of at least 3 x 3 losses (`loss_along(...).losses`).
        tolerance: a non-negative number in loss units: second differences down to
            -`tolerance` count as flat (noise), not as non-convex.

    Returns:
        A float in [0, 1].

    Raises:
        TypeError: if `tolerance` is not a number.
        ValueError: if `losses` is not a finite 2-D array of at least 3 x 3, or
            `tolerance` is negative.

    Examples:

    >>> import numpy as np
    >>> a, b = np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5), indexing="ij")
    >>> non_convexity(a**2 + b**2), non_convexity(a**2 - b**2)
    (0.0, 1.0)
    """
    losses = np.asarray(losses, dtype="float64")
    if losses.ndim != 2 or min(losses.shape) < 3 or not np.all(np.isfinite(losses)):
        raise ValueError(
            f"`losses` must be a finite 2-D grid of at least 3 x 3; received shape {losses.shape}."
        )
    tolerance = _validation.check_number("tolerance", tolerance, minimum=0)
    along_first = losses[:-2, 1:-1] - 2 * losses[1:-1, 1:-1] + losses[2:, 1:-1]
    along_second = losses[1:-1, :-2] - 2 * losses[1:-1, 1:-1] + losses[1:-1, 2:]
    bends_down = (along_first < -tolerance) | (along_second < -tolerance)
    return float(np.mean(bends_down))
