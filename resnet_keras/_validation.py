"""Argument checks shared by every public function of the library and the course.

Every public entry point validates its arguments with these helpers so that a
mistake is reported as a ValueError or TypeError that names the argument and the
values it accepts, instead of failing deep inside a convolution. One message style:
"`name` must be <what is allowed>; received <value>." A value of the wrong type is a
TypeError, a value of the right type outside the allowed range a ValueError.
"""

from __future__ import annotations

import math
import numbers
import os


def check_choice(name, value, allowed):
    """Returns `value` if it is one of `allowed`, else raises ValueError."""
    if value not in allowed:
        allowed_text = ", ".join(repr(option) for option in allowed)
        raise ValueError(f"`{name}` must be one of {allowed_text}; received {value!r}.")
    return value


def _check_int(name, value, minimum, wording):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be {wording}; received {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be {wording} (>= {minimum}); received {value}.")
    return int(value)


def check_int(name, value, minimum):
    """Returns `value` as int if it is an integer >= `minimum` (bools rejected), else raises."""
    return _check_int(name, value, minimum, f"an integer >= {minimum}")


def check_optional_int(name, value, minimum, none_means):
    """Like `check_int`, but None is allowed too (and returned); `none_means` says what for."""
    if value is None:
        return None
    return _check_int(name, value, minimum, f"None ({none_means}) or an integer >= {minimum}")


def check_number(
    name, value, *, minimum=None, maximum=None, open_minimum=False, open_maximum=False
):
    """Returns `value` as float if it is a finite real number in the given interval.

    Examples:
        >>> check_number("smoothing", 0.5, minimum=0, maximum=1, open_maximum=True)
        0.5
    """
    low = "" if minimum is None else ("(" if open_minimum else "[") + f"{minimum:g}"
    high = "" if maximum is None else f"{maximum:g}" + (")" if open_maximum else "]")
    if minimum is not None and maximum is not None:
        wording = f"a number in {low}, {high}"
    elif minimum is not None:
        wording = f"a number {'>' if open_minimum else '>='} {minimum:g}"
    elif maximum is not None:
        wording = f"a number {'<' if open_maximum else '<='} {maximum:g}"
    else:
        wording = "a finite number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be {wording}; received {value!r}.")
    too_low = minimum is not None and (value <= minimum if open_minimum else value < minimum)
    too_high = maximum is not None and (value >= maximum if open_maximum else value > maximum)
    if not math.isfinite(value) or too_low or too_high:
        raise ValueError(f"`{name}` must be {wording}; received {value!r}.")
    return float(value)


def check_path(name, value, *, optional=False):
    """Returns `value` if it is a path (str or os.PathLike), or None when `optional`."""
    if value is None and optional:
        return None
    if not isinstance(value, (str, os.PathLike)):
        wording = "None or a path (str or Path)" if optional else "a path (str or Path)"
        raise TypeError(f"`{name}` must be {wording}; received {value!r}.")
    return value


def check_instance(name, value, types, description):
    """Returns `value` if it is an instance of `types`, else raises TypeError."""
    if not isinstance(value, types):
        raise TypeError(f"`{name}` must be {description}; received {type(value).__name__}.")
    return value


def check_positive_int(name, value):
    """Returns `value` if it is an int >= 1 (bools rejected), else raises."""
    return _check_int(name, value, 1, "a positive integer")


def check_non_negative_int(name, value):
    """Returns `value` if it is an int >= 0 (bools rejected), else raises."""
    return _check_int(name, value, 0, "a non-negative integer")


def check_strides(name, value):
    """Returns the stride as an int if it is 1 or 2 (or (1, 1) / (2, 2))."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(
                f"`{name}` must be 1 or 2 (or a square tuple (1, 1) / (2, 2)); received {value!r}."
            )
        value = value[0]
    if isinstance(value, bool) or value not in (1, 2):
        raise ValueError(f"`{name}` must be 1 or 2; received {value!r}.")
    return int(value)


def check_bool(name, value):
    """Returns `value` if it is a bool, else raises TypeError."""
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False; received {value!r}.")
    return value


def check_image_input_shape(layer_name, input_shape):
    """Checks that a layer receives a batch of images in NHWC layout."""
    if len(input_shape) != 4:
        raise ValueError(
            f"{layer_name} expects a 4D input (batch, height, width, channels); "
            f"received an input of rank {len(input_shape)} with shape {tuple(input_shape)}."
        )
    if input_shape[-1] is None:
        raise ValueError(
            f"{layer_name} needs a known number of input channels (last axis); "
            f"received shape {tuple(input_shape)}."
        )
