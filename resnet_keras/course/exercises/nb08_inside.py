"""Checked exercises of notebook 08, "Inside a trained ResNet: paths, landscape, saliency".

1. `check_filter_normalize`: the filter normalisation of a random direction (Li et al. 2018)
   for one convolution kernel.
2. `check_most_harmful_block`: read a lesion study: the block whose deletion costs the most.

Questions (graded with feedback for every wrong choice): `deleting_a_plain_layer`,
`paths_in_resnet20`.

Examples:

>>> from resnet_keras.course.exercises.nb08_inside import check_filter_normalize
>>> check_filter_normalize(lambda direction, weight: None).status
⏳ Filter normalisation: not attempted yet
'not attempted'
"""

from __future__ import annotations

import numpy as np

from resnet_keras.course.exercises._stubs import NotAttempted, stub_aware_exercise
from resnet_keras.course.exercises.core import Incorrect
from resnet_keras.course.exercises.questions import MultipleChoice, NumericAnswer
from resnet_keras.lesion import LesionStudy

__all__ = [
    "check_filter_normalize",
    "check_most_harmful_block",
    "deleting_a_plain_layer",
    "paths_in_resnet20",
]


def _norms(array, axes):
    """One Euclidean norm per slice over `axes` (np.linalg.norm takes at most two axes)."""
    return np.sqrt(np.sum(np.square(array), axis=axes, keepdims=True))


def _reference_filter_normalize(direction, weight):
    axes = tuple(range(direction.ndim - 1))
    scale = _norms(weight, axes)
    return direction / (_norms(direction, axes) + 1e-10) * scale


def _kernels(seed):
    generator = np.random.default_rng(seed)
    # Filters of very different norms: a whole-tensor normalisation cannot pass by chance.
    weight = generator.standard_normal((3, 3, 4, 5)) * np.array([0.1, 1.0, 3.0, 0.5, 2.0])
    return generator.standard_normal((3, 3, 4, 5)), weight


@stub_aware_exercise(
    "Filter normalisation",
    success=(
        "Each filter of the direction now has the size of the filter it moves: a step of "
        "alpha changes every filter by the same fraction, whatever the network's weight "
        "scale, so slices of different networks can be compared (Li et al. 2018, Sec. 4)."
    ),
)
def check_filter_normalize(filter_normalize):
    """Checks `filter_normalize(direction, weight)` for (kh, kw, in, out) kernels."""
    if not callable(filter_normalize):
        raise Incorrect(
            "Define a function `filter_normalize(direction, weight)`; you gave a "
            f"{type(filter_normalize).__name__}."
        )
    for seed in (0, 1):
        direction, weight = _kernels(seed)
        got = filter_normalize(direction.copy(), weight.copy())
        if got is None:
            if seed == 0:
                raise NotAttempted
            raise Incorrect("Your function returned None: finish it with a `return` statement.")
        got = np.asarray(got, dtype="float64")
        if got.shape != weight.shape:
            raise Incorrect(
                f"Return an array of the kernel's shape {weight.shape}; yours is {got.shape}."
            )
        expected = _reference_filter_normalize(direction, weight)
        if np.allclose(got, expected, rtol=1e-4, atol=1e-6):
            continue
        whole = direction / np.linalg.norm(direction) * np.linalg.norm(weight)
        if np.allclose(got, whole, rtol=1e-4, atol=1e-6):
            raise Incorrect(
                "That normalises the whole kernel at once (Li et al.'s 'layer' normalisation). "
                "Normalise each filter, the slice [..., j] of the last axis, by itself."
            )
        first = direction / _norms(direction, (1, 2, 3))
        first = first * _norms(weight, (1, 2, 3))
        if np.allclose(got, first, rtol=1e-4, atol=1e-6):
            raise Incorrect(
                "You took slices along the first axis. In Keras a kernel is (kh, kw, in, out): "
                "filter j is kernel[..., j], so the norms run over the first three axes."
            )
        norms = _norms(weight, (0, 1, 2))
        if np.allclose(got, direction * norms, rtol=1e-4, atol=1e-6):
            raise Incorrect(
                "The direction's filters were multiplied by the weights' norms but not divided "
                "by their own norms first: d_j / |d_j| * |w_j|."
            )
        raise Incorrect(
            "Each filter j of the result should be d_j / |d_j| * |w_j|, with d_j = "
            "direction[..., j] and w_j = weight[..., j]; yours differs."
        )


_STUDIES = (
    LesionStudy(0.95, {"stage1_block1": 0.30, "stage1_block2": 0.80, "stage2_block2": 0.93}),
    LesionStudy(0.90, {"b1": 0.88, "b2": 0.85, "b3": 0.20, "b4": 0.89}),
)


@stub_aware_exercise(
    "The most harmful deletion",
    success=(
        "The block without which the network loses the most accuracy. In a residual network "
        "most deletions cost little; the exceptions are the blocks that change what the "
        "paths carry, here the first ones (Veit et al. found the downsampling blocks)."
    ),
)
def check_most_harmful_block(most_harmful):
    """Checks `most_harmful(study)`: the name of the block with the largest accuracy drop."""
    if not callable(most_harmful):
        raise Incorrect(
            f"Define a function `most_harmful(study)`; you gave a {type(most_harmful).__name__}."
        )
    for index, study in enumerate(_STUDIES):
        got = most_harmful(study)
        if got is None:
            if index == 0:
                raise NotAttempted
            raise Incorrect("Your function returned None: finish it with a `return` statement.")
        expected = max(study.drops, key=study.drops.get)
        if got == expected:
            continue
        if not isinstance(got, str):
            raise Incorrect(
                f"Return the block's name (a string such as {expected!r}), not {got!r}."
            )
        if got == max(study.deleted, key=study.deleted.get):
            raise Incorrect(
                "That block is the one whose deletion leaves the *highest* accuracy, the least "
                "harmful. The most harmful leaves the lowest accuracy: the largest drop."
            )
        raise Incorrect(
            f"For drops {study.drops} the most harmful block is {expected!r}; yours is {got!r}."
        )


deleting_a_plain_layer = MultipleChoice(
    "Question 1 · Why the plain network collapses",
    "Deleting one of the later blocks of a trained ResNet-20 costs it a few points, while "
    "deleting any block of the trained plain-20 drops it to chance. Why?",
    {
        "a": "The plain network was trained worse, so it is more fragile.",
        "b": "A plain network is one path: every layer's output is the next layer's only "
        "input, so removing a layer feeds the rest features they never saw. A residual "
        "network is many paths; a deletion removes only those through that block's branch.",
        "c": "The residual blocks have fewer parameters, so removing one removes less.",
        "d": "Batch normalisation re-adjusts the residual network after the deletion.",
    },
    answer="b",
    feedback={
        "a": "Both networks reach about the same test accuracy before the deletions (printed "
        "in section 1): the difference is in how their layers depend on each other.",
        "c": "Plain-20 and ResNet-20 have exactly the same layers and parameters (option A "
        "shortcuts are free); only the additions differ.",
        "d": "The models are evaluated in inference mode: batch normalisation uses its stored "
        "statistics and adjusts nothing after a deletion.",
    },
    success=(
        "Unrolled, n residual blocks are 2^n paths of every length from 0 to n; deleting a "
        "block removes the half of them that run through its branch and leaves the other "
        "half intact (Veit et al. 2016)."
    ),
)

paths_in_resnet20 = NumericAnswer(
    "Question 2 · How many paths?",
    "Unroll the 9 blocks of ResNet-20: at each block a path goes either through the branch "
    "F or along the shortcut. How many distinct paths lead from the stem to the classifier?",
    2**9,
    tolerance=0,
    mistakes=[
        (9, "That counts the blocks. Each block doubles the number of paths: 2 x 2 x ..."),
        (18, "Two choices per block multiply, they do not add: 2^9."),
        (2**18, "There are 9 blocks, each with two ways through (not 18 layers)."),
        (10, "A path may take any combination of branches, not only the first k of them."),
    ],
    hint="Each of the 9 blocks offers two ways through; the choices are independent.",
    success=(
        "512 paths, with lengths (branches taken) binomially distributed around 4.5. For "
        "ResNet-110's 54 blocks, 2^54 paths, most of length near 27 (section 1's plot)."
    ),
)
