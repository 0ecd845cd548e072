"""resnet_keras._validation: one module, one message style for every argument check."""

import pathlib
import re

import pytest

from resnet_keras import _validation as v

LIBRARY = pathlib.Path(v.__file__).parent


def test_integers_reject_bools_floats_and_small_values():
    assert v.check_int("steps", 3, 3) == 3
    with pytest.raises(TypeError, match=r"`steps` must be an integer >= 3; received True"):
        v.check_int("steps", True, 3)
    with pytest.raises(ValueError, match="`steps` must be an integer >= 3"):
        v.check_int("steps", 2, 3)
    assert v.check_optional_int("train_size", None, 1, "all images") is None
    with pytest.raises(TypeError, match=r"None \(all images\) or an integer >= 1"):
        v.check_optional_int("train_size", 2.0, 1, "all images")


@pytest.mark.parametrize(
    ("kwargs", "good", "bad", "wording"),
    [
        ({"minimum": 0, "maximum": 1, "open_maximum": True}, 0.0, 1.0, r"a number in \[0, 1\)"),
        ({"minimum": 0, "open_minimum": True}, 1e-9, 0.0, "a number > 0"),
        ({"minimum": 1}, 1, 0.5, "a number >= 1"),
        ({}, -3.0, float("nan"), "a finite number"),
    ],
)
def test_numbers_say_which_interval(kwargs, good, bad, wording):
    assert v.check_number("x", good, **kwargs) == float(good)
    with pytest.raises(ValueError, match=rf"`x` must be {wording}; received"):
        v.check_number("x", bad, **kwargs)
    with pytest.raises(TypeError, match=rf"`x` must be {wording}"):
        v.check_number("x", "0.5", **kwargs)


def test_paths_and_instances():
    assert v.check_path("out_dir", None, optional=True) is None
    assert v.check_path("out_dir", pathlib.Path("runs")) == pathlib.Path("runs")
    with pytest.raises(TypeError, match=r"`out_dir` must be None or a path \(str or Path\)"):
        v.check_path("out_dir", 3, optional=True)
    with pytest.raises(TypeError, match="`model` must be a keras.Model; received int"):
        v.check_instance("model", 3, (list, dict), "a keras.Model")


def test_every_message_of_the_library_says_received():
    # One style: "`name` must be ...; received ...". A message in the old "got" style is a
    # check that bypasses this module.
    offenders = [
        f"{path.relative_to(LIBRARY)}:{number}"
        for path in sorted(LIBRARY.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"""[,;] got \{|f["']got \{""", line)
    ]
    assert offenders == []
