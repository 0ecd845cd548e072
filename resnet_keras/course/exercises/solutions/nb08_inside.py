"""Reference solutions of notebook 08, "Inside a trained ResNet" (open only after trying)."""

from __future__ import annotations

import numpy as np

__all__ = ["QUESTION_ANSWERS", "filter_normalize", "most_harmful"]

QUESTION_ANSWERS = {
    "deleting_a_plain_layer": "b",
    "paths_in_resnet20": 2**9,
}
"""The answer of each conceptual question of the notebook (its checker module's object of
that name)."""


def _norms(array, axes):
    """One Euclidean norm per slice over `axes` (np.linalg.norm takes at most two axes)."""
    return np.sqrt(np.sum(np.square(array), axis=axes, keepdims=True))


def filter_normalize(direction, weight):
    """Rescales each filter `direction[..., j]` to the norm of `weight[..., j]`.

    Examples:

    >>> w = np.ones((1, 1, 2, 2)); w[..., 1] *= 3
    >>> d = np.ones((1, 1, 2, 2))
    >>> round(float(np.linalg.norm(filter_normalize(d, w)[..., 1])), 3)
    4.243
    """
    axes = tuple(range(direction.ndim - 1))
    direction_norms = _norms(direction, axes)
    return direction / direction_norms * _norms(weight, axes)


def most_harmful(study):
    """The name of the block whose deletion costs the most accuracy.

    Examples:

    >>> from resnet_keras.lesion import LesionStudy
    >>> most_harmful(LesionStudy(0.9, {"a": 0.8, "b": 0.2}))
    'b'
    """
    drops = study.drops
    return max(drops, key=drops.get)
