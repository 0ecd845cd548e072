"""`exercise`, plus "not attempted" for stubs that the checker finds still unchanged.

A notebook's function or class placeholder is not `None` itself: it is a stub whose result is
None. `core.exercise` only sees the stub, so a checker raises `NotAttempted` when it finds the
stub untouched, and `stub_aware_exercise` turns that into the "not attempted yet" verdict.
"""

from __future__ import annotations

import functools

from resnet_keras.course.exercises.core import NOT_ATTEMPTED, Verdict, exercise

__all__ = ["NotAttempted", "stub_aware_exercise"]


class NotAttempted(BaseException):  # noqa: N818 - a signal, not an error
    """Raised by a checker for an unchanged stub.

    A BaseException on purpose: `core.exercise` reports every `Exception` raised while
    checking as an error, and an untouched stub is not one.
    """


def stub_aware_exercise(title, success="Correct."):
    """Like `core.exercise`; a checker may also raise `NotAttempted`.

    Examples:

    >>> @stub_aware_exercise("Square")
    ... def check_square(square):
    ...     if square(3) is None:
    ...         raise NotAttempted
    >>> check_square(lambda x: None).status
    ⏳ Square: not attempted yet
    'not attempted'
    """

    def decorate(check):
        checked = exercise(title, success)(check)

        @functools.wraps(check)
        def run(answer=None, *args, quiet=False, **kwargs):
            try:
                return checked(answer, *args, quiet=quiet, **kwargs)
            except NotAttempted:
                verdict = Verdict(title, "not attempted", NOT_ATTEMPTED)
                if not quiet:
                    print(verdict)
                return verdict

        run.title = title
        return run

    return decorate
