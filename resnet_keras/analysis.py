"""What a model costs and how gradients flow through it."""

from __future__ import annotations

import math

import keras
import numpy as np

from resnet_keras._keras_compat import sublayers


def _leaf_layers(model):
    """Every layer inside `model`, depth first, in the order the layers were created.

    Blocks are layers made of layers, so the walk goes down into them. (Keras'
    own `_flatten_layers` visits sub-layers last-first, which would scramble
    per-layer plots.)
    """
    return sublayers(model, recursive=True)


_CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_DEPTHWISE = (keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D)
_SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_COUNTED = (*_CONVOLUTIONS, *_DEPTHWISE, *_SEPARABLE, keras.layers.Dense)


def _layer_macs(layer):
    # Keras' depthwise and separable convolutions are not Conv2D subclasses: each kind is
    # named here, so none counts as zero unnoticed.
    if not isinstance(layer, _COUNTED):
        return 0
    input_shape = (layer.get_build_config() or {}).get("input_shape")
    if input_shape is None:
        raise ValueError(f"Layer {layer.name!r} is not built: build the model before counting.")
    output_shape = layer.compute_output_shape(tuple(input_shape))
    if any(size is None for size in output_shape[1:]):
        raise ValueError(
            f"Layer {layer.name!r} has an unknown spatial size {tuple(output_shape)}: build the "
            "model with a fixed `input_shape` (e.g. (224, 224, 3)) to count multiply-adds."
        )
    outputs = math.prod(output_shape[1:])
    input_channels = int(input_shape[-1])
    if isinstance(layer, _DEPTHWISE):
        # Each output channel reads one input channel: kernel-size multiply-adds each.
        return outputs * math.prod(layer.kernel_size)
    if isinstance(layer, _SEPARABLE):
        # Depthwise (channels x multiplier maps of the output's size), then a 1x1 convolution.
        positions = math.prod(output_shape[1:-1])
        depthwise = input_channels * layer.depth_multiplier
        return positions * depthwise * (math.prod(layer.kernel_size) + output_shape[-1])
    if isinstance(layer, _CONVOLUTIONS):
        # A grouped convolution's output channel reads input_channels / groups of them.
        return outputs * math.prod(layer.kernel_size) * (input_channels // layer.groups)
    # Dense on any rank (a 1x1 convolution for ConvNeXt's pixel-wise MLP).
    return outputs * input_channels


def count_macs(model):
    """Counts the multiply-adds of one image's forward pass, analytically.

    Convolutions and dense layers count as output size x kernel size x the input
    channels each output reads: all of them for an ordinary convolution, 1/groups
    for a grouped one (ResNeXt; ConvNeXt's depthwise `Conv2D(groups=channels)`), one
    for `DepthwiseConv2D`; a separable convolution is its depthwise part plus its 1x1
    part, and a dense layer on an image (ConvNeXt's MLP) a 1x1 convolution. Normalisation
    (batch or layer), activations, pooling, squeeze-and-excitation's and layer scale's
    channel products and the additions of the shortcuts are left out, as in the paper's
    Table 1 ("FLOPs" there are multiply-adds) and torchvision's published "GFLOPS". A
    layer called several times is counted once.

    Args:
        model: a built `keras.Model` (or layer) with a fixed input size.

    Returns:
        The number of multiply-adds, an int.

    Raises:
        TypeError: if `model` is not a Keras layer or model.
        ValueError: if the model is not built or its spatial size is unknown.

    Examples:

    >>> import resnet_keras as rk
    >>> rk.count_macs(rk.CifarResNet(20))
    40551040
    >>> import keras
    >>> depthwise = keras.layers.DepthwiseConv2D(3, padding="same")
    >>> depthwise.build((None, 8, 8, 16))
    >>> rk.count_macs(depthwise)  # 8 x 8 x 16 outputs, 9 each
    9216
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"`model` must be a Keras model or layer; received {type(model).__name__}.")
    if not model.built:
        raise ValueError("`model` is not built: call it on data or give it an input shape first.")
    return int(sum(_layer_macs(layer) for layer in [model, *_leaf_layers(model)]))


def count_trainable_params(model):
    """Trainable parameters as the paper counts them: BN's gamma and beta, no moving statistics."""
    return int(sum(np.prod(weight.shape) for weight in model.trainable_weights))


def gradient_norms(model, images, labels, loss=None):
    """The L2 norm of the loss gradient for each convolution / dense kernel, input to output.

    This is the measurement behind the vanishing-gradient argument: in a deep
    plain network the gradients reaching the first layers are much smaller
    than those at the top, while shortcuts carry them back undiminished.

    Args:
        model: a Keras model returning logits.
        images: a batch of images.
        labels: integer class labels for the batch.
        loss: a loss; defaults to sparse categorical cross-entropy from logits.

    Returns:
        A list of (kernel path, norm) in the order the model computes them.

    Examples:

    >>> import numpy as np, resnet_keras as rk
    >>> model = rk.CifarResNet(20)
    >>> norms = rk.gradient_norms(model, np.zeros((2, 32, 32, 3)), np.array([0, 1]))
    >>> len(norms)
    20
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model; received {type(model).__name__}.")
    loss = loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    images = np.asarray(images, dtype="float32")
    labels = np.asarray(labels)
    if images.ndim != 4 or labels.shape[:1] != images.shape[:1]:
        raise ValueError(
            "`images` must be a 4D batch and `labels` hold one label per image; received "
            f"shapes {images.shape} and {labels.shape}."
        )
    kernels = [
        layer.kernel
        for layer in _leaf_layers(model)
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
    ]
    gradients = _gradients(model, kernels, images, labels, loss)
    return [
        (kernel.path, float(np.sqrt(np.sum(np.square(np.asarray(gradient, dtype="float64"))))))
        for kernel, gradient in zip(kernels, gradients)
    ]


def _gradients(model, variables, images, labels, loss):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = loss(labels, model(images, training=True))
        return [gradient.numpy() for gradient in tape.gradient(value, variables)]
    if backend == "torch":
        import torch

        model.zero_grad() if hasattr(model, "zero_grad") else None
        value = loss(labels, model(images, training=True))
        gradients = torch.autograd.grad(value, [v.value for v in variables])
        return [gradient.detach().cpu().numpy() for gradient in gradients]
    if backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        positions = {id(v): i for i, v in enumerate(model.trainable_variables)}

        def compute(trainable_values):
            logits, _ = model.stateless_call(trainable_values, non_trainable, images, training=True)
            return loss(labels, logits)

        gradients = jax.grad(compute)(trainable)
        return [np.asarray(gradients[positions[id(v)]]) for v in variables]
    raise ValueError(f"gradient_norms does not support the {backend!r} backend.")
