"""Run profiles: how much data and how many epochs a run of the course uses.

The same notebooks run in three places: in continuous integration (two CPU cores, a
few minutes for everything), on a learner's laptop, and on a GPU where the paper's
full CIFAR-10 schedule is affordable. A `Profile` bundles the numbers that differ
between those places, so a notebook asks for `get_profile()` once and never hard-codes
an epoch count.

Selection order of `get_profile()` / `detect_profile()`:

1. the `name` argument,
2. the environment variable `RESNET_KERAS_PROFILE` (`ci`, `cpu` or `gpu`),
3. `ci` when the environment variable `CI` is set to anything but an empty string,
   `0`, `false`, `no` or `off` (CI services set `CI=true`),
4. `gpu` when TensorFlow sees a GPU,
5. `cpu` otherwise.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from resnet_keras._validation import (
    check_bool,
    check_choice,
    check_instance,
    check_optional_int,
    check_positive_int,
)

PROFILE_NAMES = ("ci", "cpu", "gpu")
"""The names `get_profile` accepts."""

ENV_VAR = "RESNET_KERAS_PROFILE"
"""Environment variable that overrides the automatic choice."""

_CI_FALSE_VALUES = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class Profile:
    """The data sizes and training settings of one kind of machine.

    Attributes:
        name: `"ci"`, `"cpu"` or `"gpu"`.
        description: One sentence on where the profile is meant to run.
        train_size: Number of training images, or `None` for all of them.
        validation_size: Number of images held out of the training split for
            validation, or `None` to use `resnet_keras.data.load`'s `validation_split`.
        test_size: Number of test images, or `None` for the whole test split.
        epochs: Number of passes over the training images.
        batch_size: Images per gradient step (the paper uses 128).
        mixed_precision: Whether to train with the `"mixed_float16"` dtype policy
            (only worth it on a GPU with tensor cores).
        jit_compile: Whether to compile the train step with XLA.
        dataset: Dataset name passed to `resnet_keras.data.load` (`"auto"` picks
            CIFAR-10 when it is available and an offline dataset otherwise).

    Examples:
        >>> from resnet_keras.course.profiles import Profile
        >>> tiny = Profile(name="ci", description="smoke test", train_size=256,
        ...                validation_size=64, test_size=128, epochs=1, batch_size=64,
        ...                mixed_precision=False, jit_compile=False)
        >>> tiny.data_kwargs()["train_size"]
        256
    """

    name: str
    description: str
    train_size: int | None
    validation_size: int | None
    test_size: int | None
    epochs: int
    batch_size: int
    mixed_precision: bool
    jit_compile: bool
    dataset: str = "auto"

    def __post_init__(self):
        check_choice("name", self.name, PROFILE_NAMES)
        check_instance("description", self.description, str, "a string")
        check_optional_int("train_size", self.train_size, 1, "all images")
        check_optional_int("validation_size", self.validation_size, 0, "from validation_split")
        check_optional_int("test_size", self.test_size, 1, "all images")
        check_positive_int("epochs", self.epochs)
        check_positive_int("batch_size", self.batch_size)
        check_bool("mixed_precision", self.mixed_precision)
        check_bool("jit_compile", self.jit_compile)
        check_instance("dataset", self.dataset, str, "a dataset name")

    def data_kwargs(self):
        """Returns the keyword arguments of `resnet_keras.data.load` for this profile.

        Returns:
            A dict with `name`, `batch_size`, `train_size`, `validation_size`,
            `test_size` and `shrink_to_fit=True`: the sizes are CIFAR-10's, and on a
            smaller dataset (the offline digits) the validation set keeps its share
            rather than its size.

        Examples:
            >>> from resnet_keras.course.profiles import get_profile
            >>> sorted(get_profile("ci").data_kwargs())
            ['batch_size', 'name', 'shrink_to_fit', 'test_size', 'train_size', 'validation_size']
        """
        return {
            "name": self.dataset,
            "batch_size": self.batch_size,
            "train_size": self.train_size,
            "validation_size": self.validation_size,
            "test_size": self.test_size,
            "shrink_to_fit": True,
        }

    def fit_kwargs(self, **overrides):
        """Returns the keyword arguments of `resnet_keras.fit` for this profile.

        Args:
            **overrides: Arguments that replace the profile's (`epochs=1`, say).

        Returns:
            A dict with `epochs` and `jit_compile` (XLA only where a GPU is visible).

        Examples:
            >>> from resnet_keras.course.profiles import get_profile
            >>> get_profile("ci").fit_kwargs(epochs=1)
            {'epochs': 1, 'jit_compile': False}
        """
        jit_compile = self.accelerator_settings()["jit_compile"]
        return {"epochs": self.epochs, "jit_compile": jit_compile, **overrides}

    def accelerator_settings(self):
        """The profile's mixed precision and XLA, kept only where a GPU is visible.

        Examples:
            >>> from resnet_keras.course.profiles import get_profile
            >>> get_profile("ci").accelerator_settings()
            {'mixed_precision': False, 'jit_compile': False}
        """
        from resnet_keras.training import accelerator_settings

        return accelerator_settings(self.mixed_precision, self.jit_compile)

    def replace(self, **changes):
        """Returns a copy with some fields changed (the profile itself is frozen).

        Examples:
            >>> from resnet_keras.course.profiles import get_profile
            >>> get_profile("cpu").replace(epochs=1).epochs
            1
        """
        return dataclasses.replace(self, **changes)


PROFILES = {
    # Enough to show that every notebook runs end to end on two CPU cores (nbval in CI);
    # the accuracies it produces are not meant to be read.
    "ci": Profile(
        name="ci",
        description=(
            "Continuous integration: 2,000 training images, 2 epochs; checks that "
            "everything runs, in minutes on two CPU cores. Accuracies are meaningless."
        ),
        train_size=2_000,
        validation_size=200,
        test_size=1_000,
        epochs=2,
        batch_size=128,
        mixed_precision=False,
        jit_compile=False,
    ),
    # A ResNet-20 trains at a few hundred images per second on a laptop CPU, so 10k
    # images for 5 epochs is a few minutes and already shows the learning curves.
    "cpu": Profile(
        name="cpu",
        description=(
            "A learner's laptop without a GPU: 10,000 training images, 5 epochs; "
            "a few minutes per ResNet-20, enough to see the curves move."
        ),
        train_size=10_000,
        validation_size=1_000,
        test_size=None,
        epochs=5,
        batch_size=128,
        mixed_precision=False,
        jit_compile=False,
    ),
    # He et al. 2016 (Sec. 4.2): 45k/5k train/validation split, batch 128, 64k
    # iterations = about 182 epochs; float16 and XLA are what make that affordable.
    "gpu": Profile(
        name="gpu",
        description=(
            "A GPU: full CIFAR-10 (45,000 train / 5,000 validation / 10,000 test) and the "
            "paper's schedule of about 182 epochs (64k iterations at batch 128), "
            "mixed float16 and XLA."
        ),
        train_size=None,
        validation_size=5_000,
        test_size=None,
        epochs=182,
        batch_size=128,
        mixed_precision=True,
        jit_compile=True,
    ),
}


def _gpu_devices():
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover - tensorflow is a dependency
        return []
    return tf.config.list_physical_devices("GPU")


def _normalise_name(name, source):
    if not isinstance(name, str):
        raise TypeError(
            f"`{source}` must be a string, one of {', '.join(map(repr, PROFILE_NAMES))}; "
            f"received {name!r}."
        )
    key = name.strip().lower()
    if key not in PROFILE_NAMES:
        raise ValueError(
            f"`{source}` must be one of {', '.join(map(repr, PROFILE_NAMES))}; received {name!r}."
        )
    return key


def detect_profile(name=None):
    """Decides which profile applies and says why.

    Args:
        name: An explicit profile name (`"ci"`, `"cpu"`, `"gpu"`), or `None` to decide
            from the environment and the hardware.

    Returns:
        A tuple `(name, reason)`; `reason` is a short sentence for `info` output.

    Raises:
        ValueError: If `name` or `RESNET_KERAS_PROFILE` is not a known profile.
        TypeError: If `name` is neither a string nor `None`.

    Examples:
        >>> from resnet_keras.course.profiles import detect_profile
        >>> detect_profile("cpu")
        ('cpu', 'requested explicitly')
    """
    if name is not None:
        return _normalise_name(name, "name"), "requested explicitly"
    env_value = os.environ.get(ENV_VAR, "")
    if env_value.strip():
        return _normalise_name(env_value, ENV_VAR), f"set by the environment variable {ENV_VAR}"
    ci_value = os.environ.get("CI", "")
    if ci_value.strip().lower() not in _CI_FALSE_VALUES:
        return "ci", f"the environment variable CI is set ({ci_value!r})"
    gpus = _gpu_devices()
    if gpus:
        return "gpu", f"TensorFlow sees {len(gpus)} GPU(s)"
    return "cpu", "no GPU visible to TensorFlow and not running in CI"


def get_profile(name=None):
    """Returns the `Profile` for `name`, or the one that fits this machine.

    Args:
        name: `"ci"`, `"cpu"`, `"gpu"`, a `Profile` (returned unchanged), or `None`
            for automatic selection (see the module docstring for the order).

    Returns:
        A frozen `Profile`.

    Raises:
        ValueError: If the name (argument or `RESNET_KERAS_PROFILE`) is unknown; the
            message lists the allowed names.

    Examples:
        >>> from resnet_keras.course.profiles import get_profile
        >>> profile = get_profile("ci")
        >>> profile.epochs, profile.mixed_precision
        (2, False)
    """
    if isinstance(name, Profile):
        return name
    key, _ = detect_profile(name)
    return PROFILES[key]
