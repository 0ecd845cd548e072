"""TensorFlow's start-up without the C++ log lines that read as errors on a CPU machine.

Importing TensorFlow and listing its devices prints, from C++ straight to file
descriptor 2 and before Python can configure anything, lines such as:

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
    E0000 ... cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: ...
    I0000 ... port.cc:153] oneDNN custom operations are on. ...

On a machine without a GPU none of them is a problem, yet a learner reads "E" and
"CUDA error" as a broken install. `TF_CPP_MIN_LOG_LEVEL` does not reach the absl
line, and hides every error when set high enough to hide the cuInit one. So when
`import resnet_keras` is what starts TensorFlow, it imports TensorFlow and lists its
devices with descriptor 2 sent to a temporary file, then writes back every line
that is not one of the known harmless ones (`HARMLESS`). A failed cuInit on a
machine that has an NVIDIA device is kept: there it means the GPU is invisible.
It also sets `TF_CPP_MIN_LOG_LEVEL=1` when nobody has set it, which drops TensorFlow's
informational C++ lines later on and keeps its warnings and errors.

`RESNET_KERAS_NATIVE_LOGS=1` turns this off (every line is shown). The package's
`__init__` imports this module right after `_runtime`, which must set its variables
before TensorFlow is imported.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import json
import os
import re
import sys
import tempfile

OPT_OUT_VARIABLE = "RESNET_KERAS_NATIVE_LOGS"

HARMLESS = (
    re.compile(r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(r"Could not find cuda drivers on your machine, GPU will not be used"),
    re.compile(r"oneDNN custom operations are on"),
    re.compile(r"This TensorFlow binary is optimized to use available CPU instructions"),
    re.compile(r"^To enable the following instructions: .* rebuild TensorFlow"),
    # CUDA builds that register their plugins twice (Colab's TensorFlow): not an error.
    re.compile(r"Unable to register cu(DNN|FFT|BLAS) factory: Attempting to register"),
    re.compile(r"computation placer already registered"),
    re.compile(r"TF-TRT Warning: Could not find TensorRT"),
)
"""Lines dropped from TensorFlow's start-up output (matched anywhere in the line)."""

_CUINIT = re.compile(r"failed call to cuInit")


def _has_nvidia_device() -> bool:
    return bool(glob.glob("/dev/nvidia[0-9]*")) or os.path.exists("/proc/driver/nvidia")


def harmless(line: str, has_gpu_device: bool | None = None) -> bool:
    """Whether a line of TensorFlow's start-up output is one of the known harmless ones.

    Examples:
        >>> harmless("I0000 00:00:1.2 1 port.cc:153] oneDNN custom operations are on. ...")
        True
        >>> harmless("E0000 cuda_platform.cc:52] failed call to cuInit: ...", has_gpu_device=False)
        True
        >>> harmless("E0000 cuda_platform.cc:52] failed call to cuInit: ...", has_gpu_device=True)
        False
        >>> harmless("ImportError: libcudnn.so.9: cannot open shared object file")
        False
    """
    if _CUINIT.search(line):
        return not (_has_nvidia_device() if has_gpu_device is None else has_gpu_device)
    return any(pattern.search(line) for pattern in HARMLESS)


@contextlib.contextmanager
def filtered_native_stderr():
    """Sends file descriptor 2 to a temporary file, then writes back the lines that matter.

    Python's own `sys.stderr` is flushed first, so the order of what it printed is kept.
    In a Jupyter kernel descriptor 2 is the kernel's pipe to the notebook; it is restored
    as it was.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no descriptor 2 (some embedded Pythons)
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines() if line.strip() and not harmless(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()


def _keras_backend() -> str:
    """The backend Keras will use, found as Keras finds it, without importing Keras."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as handle:
            return json.load(handle).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def start_tensorflow_quietly() -> bool:
    """Imports TensorFlow and finds its devices with the harmless start-up lines dropped.

    Does nothing when TensorFlow is already imported, is not installed, is not the Keras
    backend, or `RESNET_KERAS_NATIVE_LOGS=1` is set.

    Returns:
        True if this call started TensorFlow.
    """
    if (
        os.environ.get(OPT_OUT_VARIABLE) == "1"
        or "tensorflow" in sys.modules
        or _keras_backend() != "tensorflow"
        or importlib.util.find_spec("tensorflow") is None
    ):
        return False
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    with filtered_native_stderr():
        import tensorflow as tf

        # Finding the devices is what calls cuInit; it leaves the logical-device
        # configuration (tf.config.set_logical_device_configuration) open.
        tf.config.list_physical_devices()
    return True


start_tensorflow_quietly()
