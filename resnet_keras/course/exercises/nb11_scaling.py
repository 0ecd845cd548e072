"""Checked exercises of notebook 11, "Scaling out".

1. `check_scaled_setup`: the per-replica batch and the linearly scaled learning rate of a
   data-parallel run (Goyal et al. 2017).
2. `check_same_network_on_two_devices`: choose the data and `rk.fit` settings of a
   two-device run that trains the network a one-device run trains; the checker runs both.

Questions (graded with feedback for every wrong choice): `when_synchronized_batch_norm`,
`why_warm_up`.

Examples:

>>> from resnet_keras.course.exercises.nb11_scaling import check_scaled_setup
>>> check_scaled_setup(lambda global_batch, devices: None).status
⏳ Per-replica batch and scaled learning rate: not attempted yet
'not attempted'
"""

from __future__ import annotations

import concurrent.futures
import math
import multiprocessing

from resnet_keras.course.exercises._stubs import NotAttempted, stub_aware_exercise
from resnet_keras.course.exercises.core import Incorrect
from resnet_keras.course.exercises.questions import MultipleChoice

__all__ = [
    "check_same_network_on_two_devices",
    "check_scaled_setup",
    "when_synchronized_batch_norm",
    "why_warm_up",
]

# (global batch, devices): the notebook's run, a DGX-1, and Goyal et al.'s 256 GPUs.
_SETUPS = ((128, 2), (256, 8), (8192, 256))


def _reference_setup(global_batch, devices):
    return global_batch // devices, 0.1 * global_batch / 256


@stub_aware_exercise(
    "Per-replica batch and scaled learning rate",
    success=(
        "Each device takes its share of the global batch, and the learning rate follows the "
        "global batch, because the gradient is the global batch's average: Goyal et al. ran "
        "8,192 images a step, 32 per GPU, at 3.2."
    ),
)
def check_scaled_setup(scaled_setup):
    """Checks `scaled_setup(global_batch, devices)` -> `(per_replica_batch, learning_rate)`."""
    if not callable(scaled_setup):
        raise Incorrect(
            "Define a function `scaled_setup(global_batch, devices)`; you gave a "
            f"{type(scaled_setup).__name__}."
        )
    for global_batch, devices in _SETUPS:
        got = scaled_setup(global_batch, devices)
        if got is None:
            raise NotAttempted
        if not (isinstance(got, tuple) and len(got) == 2):
            raise Incorrect("Return two numbers: `(per_replica_batch, learning_rate)`.")
        per_replica, learning_rate = got
        expected_batch, expected_rate = _reference_setup(global_batch, devices)
        setup = f"a global batch of {global_batch} on {devices} devices"
        if per_replica == global_batch * devices:
            raise Incorrect(
                f"For {setup} you gave {per_replica} images per device: that is the global "
                "batch times the devices. rk.fit takes GLOBAL batches and splits each one."
            )
        if per_replica != expected_batch:
            raise Incorrect(
                f"For {setup} each device takes {expected_batch} images; you gave {per_replica}."
            )
        if math.isclose(learning_rate, expected_rate, rel_tol=1e-6):
            continue
        if math.isclose(learning_rate, 0.1 * per_replica / 256):
            raise Incorrect(
                f"For {setup} you scaled the learning rate by the per-device batch. The "
                "gradient is averaged over the global batch, so scale by that: 0.1 x global / 256."
            )
        if math.isclose(learning_rate, 0.1 * math.sqrt(global_batch / 256)):
            raise Incorrect(
                "That is the square-root rule (Krizhevsky 2014); Goyal et al.'s rule is linear: "
                "0.1 x global / 256."
            )
        raise Incorrect(
            f"For {setup} the linearly scaled learning rate is {expected_rate:g} "
            f"(0.1 per 256 images); you gave {learning_rate!r}."
        )


_ONE_DEVICE = "`batch_size=16, learning_rate=0.1`, per-replica statistics (one device has one)"


@stub_aware_exercise(
    "The same network on two devices",
    success=(
        "Same global batches, same learning rate, statistics over the global batch: the two "
        "devices compute what one device computes, up to float rounding."
    ),
)
def check_same_network_on_two_devices(two_device_settings):
    """Runs the settings `two_device_settings()` returns on two devices against one device.

    The one-device run is `scaling_runs.TINY`: a tiny ResNet-8, batches of 16, LR 0.1. The
    learner's settings (`batch_size`, `learning_rate`, `synchronized_batch_norm`) train the
    same network from the same seed on two logical CPU devices, in a fresh process (about
    half a minute).
    """
    if not callable(two_device_settings):
        raise Incorrect(
            "Define a function `two_device_settings()` that returns a dict; you gave a "
            f"{type(two_device_settings).__name__}."
        )
    settings = two_device_settings()
    if settings is None:
        raise NotAttempted
    keys = {"batch_size", "learning_rate", "synchronized_batch_norm"}
    if not isinstance(settings, dict) or set(settings) != keys:
        raise Incorrect(f"Return a dict with exactly the keys {sorted(keys)}.")
    if settings["batch_size"] % 2:
        raise Incorrect(
            f"A batch of {settings['batch_size']} does not split over two devices "
            "(rk.fit refuses it): the global batch must be a multiple of the devices."
        )
    from resnet_keras.course import scaling_runs

    # A fresh (spawned) process: TensorFlow's CPU must be split before it starts, and this
    # kernel's has started.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        result = pool.submit(scaling_runs.tiny_runs, **settings).result()
    # Measured: 1e-5 with the right settings (float rounding; the weights move by ~1), 0.3
    # with per-replica statistics, more with another batch or learning rate.
    if result["difference"] < 1e-4:
        return
    hints = []
    if settings["batch_size"] != scaling_runs.TINY["batch_size"]:
        hints.append(
            "rk.fit takes GLOBAL batches: keep the one-device batch, each device gets half"
        )
    if settings["learning_rate"] != scaling_runs.TINY["learning_rate"]:
        hints.append(
            "the global batch did not change, so neither does the learning rate (the linear "
            "rule scales it with the global batch, not with the devices)"
        )
    if not settings["synchronized_batch_norm"]:
        hints.append("each device normalised its own share: synchronise the statistics")
    raise Incorrect(
        f"The one-device run ({_ONE_DEVICE}) and yours ended {result['difference']:.2g} apart "
        f"(rounding is about 1e-5); " + "; ".join(hints or ["measure again"]) + "."
    )


when_synchronized_batch_norm = MultipleChoice(
    "Question 1 · When does synchronised batch normalisation matter?",
    "He et al. (2016) trained ImageNet ResNets on 8 GPUs with batch normalisation per GPU (32 "
    "images each), and it worked. When should a multi-device run synchronise the statistics "
    "over the global batch?",
    {
        "a": "Always: per-device statistics are a bug of data parallelism.",
        "b": "When each device holds only a few images (detection and segmentation fit 1-2 "
        "large images per GPU), so that its own batch statistics are noisy.",
        "c": "Only on TPUs, which have no batch normalisation of their own.",
        "d": "When the learning rate is scaled up with the batch.",
    },
    answer="b",
    feedback={
        "a": "The paper's per-GPU statistics over 32 images worked well; per-device statistics "
        "are a choice (a slightly different network, section 2 measured how different), not a "
        "bug. They hurt when the per-device batch is small (Wu and He 2018).",
        "c": "TPUs run the same Keras layers; the question is how many images each core "
        "normalises over, on any device.",
        "d": "The learning rate follows the global batch; the statistics follow the per-device "
        "batch. With 32+ images per device per-replica statistics are fine at any rate.",
    },
    success=(
        "Wu and He (2018) measured batch statistics degrading below 8-16 images; MegDet (Peng "
        "et al. 2018) synchronised them across GPUs to train detectors with large batches."
    ),
)

why_warm_up = MultipleChoice(
    "Question 2 · Why warm up?",
    "Goyal et al. (2017) scale the learning rate with the batch (0.1 x 8192 / 256 = 3.2) but "
    "reach that rate only after 5 epochs of gradual warm-up. Why?",
    {
        "a": "In the first steps the weights change fast and a large rate makes training "
        "diverge or lose accuracy; the linear rule only holds once the network has settled.",
        "b": "To let batch normalisation's moving statistics converge before they are used.",
        "c": "Warm-up makes every step cheaper at the start.",
        "d": "Without warm-up the large batch would not fit in memory.",
    },
    answer="a",
    feedback={
        "b": "The moving statistics are only used at inference; training normalises with each "
        "batch's statistics from the first step.",
        "c": "A step costs the same at any learning rate.",
        "d": "Memory depends on the batch per device, not on the learning rate.",
    },
    success=(
        "The rule assumes that k small steps are about one step k times larger, which fails "
        "while the gradient changes fast, early on; Goyal et al. found 5 epochs of gradual "
        "warm-up enough up to 8,192 images a step."
    ),
)
