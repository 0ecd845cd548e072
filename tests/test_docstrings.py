"""Every Examples section in the library's docstrings runs and prints what it shows.

The examples are the first code a Keras user copies; run here, they cannot drift from
the code they describe.
"""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import resnet_keras

MODULES = sorted(
    module.name for module in pkgutil.walk_packages(resnet_keras.__path__, "resnet_keras.")
)


def test_the_package_has_modules_with_examples():
    with_examples = [
        name for name in MODULES if ">>>" in inspect.getsource(importlib.import_module(name))
    ]
    # Layers, models, data, training and plots all document themselves by example.
    assert len(with_examples) >= 20, with_examples


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, report=False
    )
    # doctest prints each failing example with what it got instead (shown by pytest).
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
    if ">>>" in inspect.getsource(module):
        found = sum(len(test.examples) for test in doctest.DocTestFinder().find(module))
        assert found > 0, f"{name} has examples that doctest did not find"
