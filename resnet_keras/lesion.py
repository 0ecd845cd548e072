"""Deleting blocks of a trained network at test time (Veit et al. 2016).

Veit, Wilber and Belongie, "Residual Networks Behave Like Ensembles of Relatively
Shallow Networks" (NeurIPS 2016), delete single blocks from a trained ResNet and
measure the test error: removing a block that keeps the shape of its input (y = F(x) + x
becomes y = x) barely hurts a residual network, whereas removing a layer of the plain
network of the same depth drops it to chance. Their reading: a residual network
behaves like an ensemble of many paths of different lengths, none of which the
others depend on. Downsampling blocks (stride 2, more channels) cannot be replaced
by the identity and are left in place, as in the paper.

Keras has no way to remove a layer from a built model, so `delete_blocks` rebuilds
the graph with `keras.models.clone_model`: every kept layer is the same object as in
the original (its weights are shared, not copied) and each deleted block is a
`keras.layers.Identity`. `residual_blocks` lists the blocks and which of them can be
deleted, and `lesion_study` measures the accuracy with each deletable block deleted in
turn. Everything runs on the TensorFlow, JAX and PyTorch backends.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import keras
import numpy as np

from resnet_keras._validation import check_instance, check_positive_int
from resnet_keras.layers.residual_block import ResidualBlock


class Block(NamedTuple):
    """One residual (or plain) block of a model, as `residual_blocks` lists it.

    Attributes:
        name: The block layer's name, e.g. `"stage1_block2"`.
        deletable: Whether the block keeps the shape of its input (strides 1, as many
            channels out as in), so that the identity can replace it.
    """

    name: str
    deletable: bool


class LesionStudy(NamedTuple):
    """What `lesion_study` measured.

    Attributes:
        intact: Accuracy of the whole model, in [0, 1].
        deleted: Accuracy with each block deleted alone, block name -> accuracy, in
            model order.
    """

    intact: float
    deleted: dict[str, float]

    @property
    def drops(self):
        """Accuracy lost by deleting each block: block name -> `intact - accuracy`."""
        return {name: self.intact - accuracy for name, accuracy in self.deleted.items()}


def _is_deletable(block):
    input_shape = tuple((block.get_build_config() or {}).get("input_shape") or ())
    if not input_shape:
        return False  # never called: nothing to compare
    output_shape = tuple(block.compute_output_shape(input_shape))
    return block.strides == 1 and output_shape[1:] == input_shape[1:]


def residual_blocks(model):
    """Lists the blocks of a model built by this library and whether each can be deleted.

    The blocks are the `resnet_keras.layers.ResidualBlock` layers (basic, bottleneck
    and registered blocks, residual or plain) of the model's own graph, in the order the
    model computes them. A block can be deleted, i.e. replaced by the identity, only if
    its output has the shape of its input: a block with strides 2 or a change of width
    (the first block of a stage, usually) cannot.

    Args:
        model: A `keras.Model` such as `rk.CifarResNet(20)` or `rk.ResNet50()`.

    Returns:
        A list of `Block(name, deletable)` named tuples, in model order.

    Raises:
        TypeError: If `model` is not a `keras.Model`.

    Examples:

    >>> import resnet_keras as rk
    >>> from resnet_keras.lesion import residual_blocks
    >>> blocks = residual_blocks(rk.CifarResNet(8, input_shape=(8, 8, 3)))
    >>> blocks[:2]
    [Block(name='stage1_block1', deletable=True), Block(name='stage2_block1', deletable=False)]
    >>> [block.name for block in blocks if block.deletable]
    ['stage1_block1']
    """
    check_instance("model", model, keras.Model, "a keras.Model")
    return [
        Block(layer.name, _is_deletable(layer))
        for layer in model.layers
        if isinstance(layer, ResidualBlock)
    ]


def _check_names(model, names):
    if isinstance(names, str):
        names = [names]
    try:
        names = list(names)
    except TypeError:
        raise TypeError(
            "`names` must be a block name or a list of block names; "
            f"received {type(names).__name__}."
        ) from None
    blocks = residual_blocks(model)
    deletable = [block.name for block in blocks if block.deletable]
    allowed = ", ".join(repr(name) for name in deletable) or "none"
    for name in names:
        if not isinstance(name, str):
            raise TypeError(
                f"`names` must hold block names (str); received {type(name).__name__} {name!r}."
            )
        if name not in deletable:
            why = (
                "changes the shape of its input (it downsamples or widens), so the identity "
                "cannot replace it"
                if name in {block.name for block in blocks}
                else f"is not a block of model {model.name!r}"
            )
            raise ValueError(
                f"`names` must name deletable blocks of the model ({allowed}); "
                f"received {name!r}, which {why}."
            )
    return list(dict.fromkeys(names))


def delete_blocks(model, names):
    """Returns a copy of `model` with the named blocks replaced by the identity (y = x).

    For a residual block y = F(x) + x this removes the residual branch F, as Veit et
    al. (2016) do; in the original post-activation block (x is already a ReLU's output,
    non-negative) and in the pre-activation block alike, what is left is y = x. For a
    block of a plain network (`residual=False`), y = F(x) becomes y = x too: the
    comparison of the paper, where a plain network collapses.

    All other layers are the original layer objects: the new model shares their
    weights with `model` (training either changes both), and `model` itself is left
    as it was.

    Args:
        model: A functional (or Sequential) `keras.Model` built by this library, e.g.
            `rk.CifarResNet(20)`.
        names: A block name or a list of them, each a deletable block of
            `residual_blocks(model)`; an empty list gives a model equal to `model`.

    Returns:
        A new `keras.Model` of the same name, inputs and outputs.

    Raises:
        TypeError: If `model` is not a `keras.Model` or `names` not a name or a list of names.
        ValueError: If a name is not a block of `model` or names a block that changes the
            shape of its input (a downsampling block); the message lists the deletable blocks.
            Keras' `clone_model` raises one too for a subclassed model, which has no graph
            to rebuild.

    Examples:

    >>> import numpy as np, resnet_keras as rk
    >>> from resnet_keras.lesion import delete_blocks
    >>> model = rk.CifarResNet(8, input_shape=(8, 8, 3))
    >>> lesioned = delete_blocks(model, ["stage1_block1"])
    >>> type(lesioned.get_layer("stage1_block1")).__name__
    'Identity'
    >>> lesioned.get_layer("logits") is model.get_layer("logits")  # shared, not copied
    True
    """
    check_instance("model", model, keras.Model, "a keras.Model")
    deleted = set(_check_names(model, names))

    def replace(layer):
        if layer.name in deleted and isinstance(layer, ResidualBlock):
            return keras.layers.Identity(name=layer.name)
        return layer

    return keras.models.clone_model(model, clone_function=replace)


def _accuracy(model, images, labels, batch_size):
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start : start + batch_size], training=False)
        predictions = keras.ops.convert_to_numpy(keras.ops.argmax(logits, axis=-1))
        correct += int(np.sum(predictions == labels[start : start + batch_size]))
    return correct / len(images)


def lesion_study(model, images, labels, names=None, batch_size=256):
    """Measures the accuracy of `model` with each deletable block deleted in turn.

    The experiment of Veit et al. (2016), Fig. 3: one block at a time is replaced by
    the identity (`delete_blocks`) and the model is evaluated in inference mode
    (`training=False`: batch normalisation uses its moving statistics).

    Args:
        model: A `keras.Model` built by this library that returns logits (or
            probabilities) for the classes.
        images: A NumPy array of images, `(count, height, width, channels)`.
        labels: A NumPy array of `count` integer class labels.
        names: The blocks to delete (one at a time); None for every deletable block.
        batch_size: Images per forward pass (>= 1).

    Returns:
        A `LesionStudy(intact, deleted)`: the accuracy of the whole model and, per
        deleted block, the accuracy without it (`.drops` gives the differences).

    Raises:
        TypeError: If `model` is not a `keras.Model`.
        ValueError: If `images` and `labels` do not match, or `names` holds a name that
            is not a deletable block.

    Examples:

    >>> import numpy as np, resnet_keras as rk
    >>> from resnet_keras.lesion import lesion_study
    >>> model = rk.CifarResNet(8, input_shape=(8, 8, 3))
    >>> images, labels = np.zeros((4, 8, 8, 3), "float32"), np.array([0, 1, 2, 3])
    >>> study = lesion_study(model, images, labels)
    >>> list(study.deleted)
    ['stage1_block1']
    >>> 0 <= study.intact <= 1
    True
    """
    check_instance("model", model, keras.Model, "a keras.Model")
    batch_size = check_positive_int("batch_size", batch_size)
    images = np.asarray(images, dtype="float32")
    labels = np.asarray(labels)
    if images.ndim != 4 or labels.shape != images.shape[:1] or not len(images):
        raise ValueError(
            "`images` must be a non-empty 4D batch and `labels` hold one label per image; "
            f"received shapes {images.shape} and {labels.shape}."
        )
    if names is None:
        names = [block.name for block in residual_blocks(model) if block.deletable]
    names = _check_names(model, names)
    intact = _accuracy(model, images, labels, batch_size)
    deleted = {
        name: _accuracy(delete_blocks(model, [name]), images, labels, batch_size) for name in names
    }
    return LesionStudy(intact, deleted)


class PathGradients(NamedTuple):
    """What `path_gradients` measured.

    Attributes:
        blocks: Number of residual blocks n (paths have lengths 0 to n).
        lengths: The path lengths k measured (branches a path goes through).
        norms: Mean norm of the loss gradient at the first block's input carried by one
            path of each length (averaged over the sampled paths).
    """

    blocks: int
    lengths: list[int]
    norms: list[float]

    @property
    def totals(self):
        """The gradient of all paths of each length: C(n, k) paths times the mean norm."""
        return [math.comb(self.blocks, k) * norm for k, norm in zip(self.lengths, self.norms)]


def _input_gradient(function, inputs):
    """The gradient of the scalar `function(inputs)` with respect to the array `inputs`."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        inputs = tf.convert_to_tensor(inputs)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            value = function(inputs)
        return np.asarray(tape.gradient(value, inputs))
    if backend == "torch":
        import torch

        inputs = keras.ops.convert_to_tensor(inputs).detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(function(inputs), [inputs])
        return gradient.detach().cpu().numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(function)(keras.ops.convert_to_tensor(inputs)))
    raise ValueError(f"path_gradients does not support the {backend!r} backend.")


def _path_gradient(blocks, head, labels, start, chosen):
    """The loss gradient at the first block's input that flows back only through the
    branches of the blocks numbered in `chosen` and the shortcuts of the others.

    Backpropagation is linear in the paths, so these gradients summed over all 2^n sets
    `chosen` are the model's whole gradient (tests/test_lesion.py checks it).
    """
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def compute(features):
        for index, block in enumerate(blocks):
            side = "branch" if index in chosen else "shortcut"
            features = block._forward(features, training=False, gradient_through=side)
        return loss(labels, head(features, training=False))

    return _input_gradient(compute, start)


def path_gradients(model, images, labels, lengths=None, samples=4, seed=0):
    """How much of the gradient paths of each length carry (Veit et al. 2016, Sec. 5).

    Unrolled, n residual blocks are 2^n paths; a path of length k goes through the branch
    of k blocks and around the others. For each length k this samples `samples` sets of k
    blocks and lets the gradient of the loss flow back only through those blocks' branches
    and the other blocks' shortcuts (the forward pass is unchanged: the other term of each
    addition is wrapped in a stop-gradient). The norm of the gradient that arrives at the
    first block's input is what one path of length k carries; `totals` multiplies it by the
    number of such paths, C(n, k). Veit et al. found for ResNet-110 that the gradient of a
    path shrinks with every branch it crosses, so nearly all of it comes from paths of 5 to
    17 blocks out of 54. Hand-written: no library measures gradients per path.

    Evaluated in inference mode (batch normalisation uses its moving statistics), with the
    sparse cross-entropy of the logits.

    Args:
        model: A `keras.Model` of this library whose blocks form one chain from the stem to
            the classifier (`rk.CifarResNet(depth)`, residual).
        images: A NumPy batch of images.
        labels: Their integer labels.
        lengths: The path lengths to measure (default: 0 to n).
        samples: Random sets of blocks per length (>= 1).
        seed: Seed of the sampled sets.

    Returns:
        A `PathGradients(blocks, lengths, norms)`.

    Raises:
        TypeError: If `model` is not a `keras.Model`.
        ValueError: If the model has no residual blocks in one chain, or a length is out of
            range.

    Examples:

    >>> import numpy as np, resnet_keras as rk
    >>> from resnet_keras.lesion import path_gradients
    >>> model = rk.CifarResNet(8, input_shape=(8, 8, 3))
    >>> measured = path_gradients(model, np.ones((2, 8, 8, 3), "float32"), np.array([0, 1]))
    >>> measured.blocks, measured.lengths
    (3, [0, 1, 2, 3])
    """
    check_instance("model", model, keras.Model, "a keras.Model")
    samples = check_positive_int("samples", samples)
    blocks = [layer for layer in model.layers if isinstance(layer, ResidualBlock)]
    if not blocks or not all(block.residual for block in blocks):
        raise ValueError("`model` must have residual blocks (a plain network has one path).")
    try:
        stem = keras.Model(model.inputs[0], blocks[0].input)
        head = keras.Model(blocks[-1].output, model.outputs[0])
    except ValueError as error:
        raise ValueError(
            "`model` must be one chain: stem, then its blocks, then the classifier."
        ) from error
    count = len(blocks)
    lengths = list(range(count + 1)) if lengths is None else [int(k) for k in lengths]
    if not lengths or any(k < 0 or k > count for k in lengths):
        raise ValueError(
            f"`lengths` must be path lengths between 0 and {count} (the blocks); "
            f"received {lengths!r}."
        )
    images = np.asarray(images, dtype="float32")
    labels = keras.ops.convert_to_tensor(np.asarray(labels))
    start = keras.ops.convert_to_numpy(stem(images, training=False))
    generator = np.random.default_rng(seed)

    norms = []
    for k in lengths:
        measured = []
        for _ in range(samples):
            chosen = set(generator.choice(count, size=k, replace=False).tolist())
            gradient = _path_gradient(blocks, head, labels, start, chosen)
            measured.append(float(np.sqrt(np.sum(np.square(gradient, dtype="float64")))))
        norms.append(float(np.mean(measured)))
    return PathGradients(count, lengths, norms)
