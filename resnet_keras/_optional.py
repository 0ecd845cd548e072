"""Optional dependencies: one clear line when a module needs a package that is not installed.

`import resnet_keras` needs only Keras and NumPy. The input pipelines and the trainer need
TensorFlow (tf.data) and tensorflow-datasets, the digits scikit-learn, the plots matplotlib;
they are installed with the package's extras (`pip install "resnet_keras[tensorflow]"`,
`[plots]`, or `[course]` for everything the course uses).
"""

from __future__ import annotations

import importlib

EXTRAS = {
    "tensorflow": "tensorflow",
    "tensorflow_datasets": "tensorflow",
    "sklearn": "tensorflow",
    "matplotlib": "plots",
}
"""Top-level module -> the extra of resnet_keras that installs it."""


def import_module(name):
    """Imports `name`; a missing optional package becomes one line that says what to install.

    Args:
        name: A module path, e.g. "resnet_keras.data".

    Returns:
        The module.

    Raises:
        ModuleNotFoundError: naming the missing package and the extra that installs it.

    Examples:
        >>> import_module("resnet_keras.layers").__name__
        'resnet_keras.layers'
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        extra = EXTRAS.get((error.name or "").split(".")[0])
        if extra is None:
            raise
        raise ModuleNotFoundError(
            f"{name} needs {error.name}, which is not installed: "
            f'pip install "resnet_keras[{extra}]"',
            name=error.name,
        ) from None
