"""CPU defaults that TensorFlow reads once, when it is imported; this runs before that.

TensorFlow ships Intel's oneDNN kernels for x86 CPUs but turns them on by default
only on CPUs with AVX-512 (Cascade Lake and newer). Everywhere else convolutions
fall back to Eigen, which trained ResNet-20 at about half the speed of oneDNN and of
plain PyTorch on an AVX2 machine (benchmarks/RESULTS.md). The
model computes the same function either way; only the float rounding of the
kernels differs.

`import resnet_keras` therefore sets `TF_ENABLE_ONEDNN_OPTS=1`, but only when
all of these hold, so that it never overrides a decision:

* the variable is not set already (the user's choice wins, `0` included);
* TensorFlow has not been imported yet (it reads the variable only at import, so
  import resnet_keras before keras or tensorflow to get the fast kernels);
* the CPU is x86-64 (oneDNN's TensorFlow build targets it).
"""

from __future__ import annotations

import os
import platform
import sys

ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
_X86_MACHINES = {"x86_64", "amd64", "x64", "i686", "i386"}


def prefer_onednn(environ=None, modules=None, machine=None) -> bool:
    """Turns on TensorFlow's oneDNN CPU kernels when nobody has decided yet.

    Args:
        environ: the environment to update (default `os.environ`).
        modules: the loaded modules (default `sys.modules`).
        machine: the CPU architecture (default `platform.machine()`).

    Returns:
        True if this call set the variable, False if it left things as they were.

    Examples:

    >>> prefer_onednn(environ={}, modules={}, machine="x86_64")
    True
    >>> prefer_onednn(environ={"TF_ENABLE_ONEDNN_OPTS": "0"}, modules={}, machine="x86_64")
    False
    """
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    machine = (platform.machine() if machine is None else machine).lower()
    if ONEDNN_VARIABLE in environ or "tensorflow" in modules or machine not in _X86_MACHINES:
        return False
    environ[ONEDNN_VARIABLE] = "1"
    return True


def onednn_enabled() -> bool | None:
    """Whether the running TensorFlow uses its oneDNN kernels (None if it cannot tell).

    Examples:

    >>> onednn_enabled() in (True, False, None)
    True
    """
    if "tensorflow" not in sys.modules:
        return None
    try:
        # TensorFlow has no public query; this private helper is what its own tests use.
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


prefer_onednn()
