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
