"""Checked exercises of notebook 09, "Transfer learning".

1. `check_switch_loss`: measure the BatchNormalization switch yourself: how much the loss
   changes when a trained head's base moves from inference-mode to batch statistics.
2. `check_preprocess`: the preprocessing that must travel with an exported model.

Questions (graded with feedback for every wrong choice): `training_false_in_keras3`,
`when_to_freeze_batch_norm`.

Examples:

>>> from resnet_keras.course.exercises.nb09_transfer import check_preprocess
>>> check_preprocess(lambda pixels, mean, std: None).status
⏳ Preprocessing: not attempted yet
'not attempted'
"""

from __future__ import annotations

import numpy as np

from resnet_keras.course.exercises._stubs import NotAttempted, stub_aware_exercise
from resnet_keras.course.exercises.core import Incorrect
from resnet_keras.course.exercises.questions import MultipleChoice

__all__ = [
    "check_preprocess",
    "check_switch_loss",
    "training_false_in_keras3",
    "when_to_freeze_batch_norm",
]


def _switch_problem(seed):
    """A small frozen base with non-trivial moving statistics, a head, and a batch."""
    import keras

    import resnet_keras as rk

    keras.utils.set_random_seed(seed)
    base = rk.transfer.feature_extractor(rk.CifarResNet(8, num_classes=3, input_shape=(8, 8, 3)))
    generator = np.random.default_rng(seed)
    for layer in base.layers:
        # Moving statistics unlike any batch's, as after pretraining on other images.
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(generator.normal(0.5, 0.3, layer.moving_mean.shape))
            layer.moving_variance.assign(generator.uniform(0.5, 2.0, layer.moving_variance.shape))
    model = rk.transfer.new_classifier(base, num_classes=3)
    images = generator.normal(size=(16, 8, 8, 3)).astype("float32")
    labels = generator.integers(0, 3, size=16).astype("int32")
    return model, base, images, labels


def _reference_switch_loss(model, base, images, labels):
    # The measurement notebook 09's runs make (course.transfer_runs), as one difference.
    from resnet_keras.course.transfer_runs import _switch_losses

    inference, batch_statistics = _switch_losses(model, base, images, labels)
    return batch_statistics - inference


@stub_aware_exercise(
    "The BatchNormalization switch",
    success=(
        "That is the jump the Keras guide warns of: the head was trained on features "
        "normalised with the moving statistics, and unfreezing BatchNormalization hands it "
        "features normalised with each batch's own. Section 3 measured it on the digits."
    ),
)
def check_switch_loss(switch_loss):
    """Checks `switch_loss(model, base, images, labels)` on two small frozen networks."""
    if not callable(switch_loss):
        raise Incorrect(
            "Define a function `switch_loss(model, base, images, labels)`; you gave a "
            f"{type(switch_loss).__name__}."
        )
    for seed in (0, 1):
        model, base, images, labels = _switch_problem(seed)
        expected_model, expected_base, _, _ = _switch_problem(seed)
        expected = _reference_switch_loss(expected_model, expected_base, images, labels)
        before = [np.array(w) for w in base.get_weights()]
        got = switch_loss(model, base, images, labels)
        if got is None:
            if seed == 0:
                raise NotAttempted
            raise Incorrect("Your function returned None: finish it with a `return` statement.")
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise Incorrect(f"Return one number (a float), not {type(got).__name__}.") from None
        after = base.get_weights()
        moved = any(not np.array_equal(a, b) for a, b in zip(before, after))
        if abs(got) < 1e-7 and abs(expected) > 1e-4:
            raise Incorrect(
                "Your difference is 0: a frozen BatchNormalization layer runs in inference mode "
                "whatever `training` says. Make the BN layers trainable first "
                "(`rk.transfer.unfreeze(base, batch_norm=True)`), then call with training=True."
            )
        if np.isclose(got, -expected, rtol=1e-3, atol=1e-5):
            raise Incorrect(
                "The sign is swapped: return the loss with batch statistics minus the loss "
                "with the moving statistics."
            )
        if not np.isclose(got, expected, rtol=1e-3, atol=1e-5):
            raise Incorrect(
                f"For this network the difference is {expected:.4f}; yours is {got:.4f}. "
                "Use SparseCategoricalCrossentropy(from_logits=True): the model outputs logits."
            )
        if moved:
            raise Incorrect(
                "The number is right, but the base's weights changed: a forward pass in training "
                "mode moves the moving statistics. Save `base.get_weights()` first and put them "
                "back with `base.set_weights(...)` afterwards."
            )


def _reference_preprocess(pixels, mean, std):
    return (np.asarray(pixels, "float32") / 255.0 - np.asarray(mean)) / np.asarray(std)


@stub_aware_exercise(
    "Preprocessing",
    success=(
        "The network was trained on these numbers, not on pixels: an exported model must "
        "compute them itself (`rk.inference.with_preprocessing` puts Keras' Rescaling and "
        "Normalization layers in front), or every caller must know mean and std."
    ),
)
def check_preprocess(preprocess):
    """Checks `preprocess(pixels, mean, std)` against the input pipeline's normalisation."""
    if not callable(preprocess):
        raise Incorrect(
            "Define a function `preprocess(pixels, mean, std)`; you gave a "
            f"{type(preprocess).__name__}."
        )
    generator = np.random.default_rng(0)
    pixels = generator.integers(0, 256, size=(4, 8, 8, 3)).astype("uint8")
    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    got = preprocess(pixels.copy(), mean, std)
    if got is None:
        raise NotAttempted
    got = np.asarray(got, "float64")
    if got.shape != pixels.shape:
        raise Incorrect(
            f"Return an array of the images' shape {pixels.shape}; yours is {got.shape}."
        )
    expected = _reference_preprocess(pixels, mean, std)
    if np.allclose(got, expected, atol=1e-4):
        return
    m, s = np.asarray(mean), np.asarray(std)
    slips = [
        ((pixels - m) / s, "Scale the pixels to 0..1 first (divide by 255): mean and std are on "
         "the 0..1 scale."),
        ((pixels / 255.0 - m) / s**2, "Divide by the standard deviation, not the variance."),
        ((pixels / 255.0 - m) * s, "Divide by std; you multiplied."),
        (pixels / 255.0 - m, "Subtract the mean, then divide by std: the second step is missing."),
        ((pixels / 255.0) / s - m, "Subtract the mean before dividing by std."),
    ]  # fmt: skip
    for wrong, message in slips:
        if np.allclose(got, wrong, atol=1e-4):
            raise Incorrect(message)
    raise Incorrect("Compute (pixels / 255 - mean) / std per channel; yours differs.")


training_false_in_keras3 = MultipleChoice(
    "Question 1 · What does training=False do here?",
    "A head is put on a pretrained base with `features = base(inputs, training=False)`, as the "
    "Keras guide writes it. Then `base.trainable = True` (BatchNormalization included) and "
    "`model.fit(...)` runs in Keras 3. In which mode do the base's BatchNormalization layers "
    "run during fit?",
    {
        "a": "Inference mode: the `training=False` of the call is stored in the model and wins.",
        "b": "Training mode: Keras 3's functional model passes fit's training=True down to every "
        "layer it calls, over the stored False; only a frozen BN layer stays in inference mode.",
        "c": "Inference mode, because `trainable=True` does not affect BatchNormalization.",
        "d": "It alternates: training mode on even steps, inference mode on odd ones.",
    },
    answer="b",
    feedback={
        "a": "That is what the guide expects, and what Keras 2 did. Section 3 measured Keras 3: "
        "the moving statistics move during fit, so the layers ran in training mode.",
        "c": "It does: a BatchNormalization layer runs in inference mode exactly while it is "
        "frozen (`trainable=False`); unfrozen, it follows the training flag it receives.",
        "d": "Nothing alternates; the mode is fixed by the training flag and the layer's "
        "`trainable`.",
    },
    success=(
        "Keras 3 passes the outer training flag down (keras-team/keras#20285); keep the BN "
        "layers in inference mode with their own `trainable = False`, as "
        "`rk.transfer.unfreeze` does by default."
    ),
)

when_to_freeze_batch_norm = MultipleChoice(
    "Question 2 · When do frozen statistics help?",
    "On the digits, fine-tuning with BatchNormalization frozen at the source's statistics did "
    "worse than letting it adapt. When is freezing it the better choice?",
    {
        "a": "Never: BatchNormalization should always adapt to the new data.",
        "b": "Always: the Keras guide says so.",
        "c": "When the fine-tuning batches are too small for good batch statistics and the new "
        "images look like the pretraining ones (a photo classifier from ImageNet weights, "
        "a detector trained with a few images per GPU).",
        "d": "When the new task has more classes than the old one.",
    },
    answer="c",
    feedback={
        "a": "With a few images per batch, batch statistics are noisy (Wu and He 2018): that is "
        "why torchvision's detection models freeze them (FrozenBatchNorm2d).",
        "b": "Measure it: section 3 found the opposite on digits whose statistics differ "
        "from the source's.",
        "d": "The head, not BatchNormalization, depends on the number of classes.",
    },
    success=(
        "Frozen statistics are right when they describe the new images; re-estimating them "
        "helps when the images differ (Li et al. 2016, AdaBN), and needs batches large enough "
        "to estimate them."
    ),
)
