"""The checker machinery shared by every exercise.

An exercise checker is a function decorated with `@exercise(...)`. It receives
the learner's answer and either returns normally (correct) or raises
`Incorrect` with feedback that teaches. The decorator turns that into a short
printed verdict and a `Verdict` object, and never lets a wrong or missing
answer crash the notebook: `None` or `...` means "not attempted yet", and an
unexpected exception inside the learner's code is reported, not raised.
"""

from __future__ import annotations

import dataclasses
import functools
import traceback

NOT_ATTEMPTED = "not attempted yet"


class Incorrect(Exception):
    """Raised by a checker with feedback for the learner."""


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of one check: `status` is "correct", "incorrect", "not attempted" or "error"."""

    exercise: str
    status: str
    message: str

    @property
    def passed(self):
        return self.status == "correct"

    def __bool__(self):
        return self.passed

    def __str__(self):
        symbol = {"correct": "✅", "incorrect": "❌", "not attempted": "⏳", "error": "⚠️"}
        return f"{symbol.get(self.status, '')} {self.exercise}: {self.message}"

    def _repr_markdown_(self):
        return str(self)


def is_unattempted(answer):
    """True for the placeholders a learner leaves in an exercise cell."""
    return answer is None or answer is Ellipsis


def exercise(title, success="Correct."):
    """Decorates a checker: `check(answer, ...)` -> `Verdict`, printed, never raising.

    Args:
        title: the exercise's name as the notebook shows it.
        success: the message printed when the answer is right (may explain why).

    Examples:

    >>> @exercise("Double it")
    ... def check_double(answer):
    ...     if answer != 4:
    ...         raise Incorrect(f"2 doubled is 4, not {answer}.")
    >>> check_double(None).status
    ⏳ Double it: not attempted yet
    'not attempted'
    """

    def decorate(checker):
        @functools.wraps(checker)
        def run(answer=None, *args, quiet=False, **kwargs):
            if is_unattempted(answer):
                verdict = Verdict(title, "not attempted", NOT_ATTEMPTED)
            else:
                try:
                    extra = checker(answer, *args, **kwargs)
                    message = success if extra is None else f"{success} {extra}"
                    verdict = Verdict(title, "correct", message)
                except Incorrect as problem:
                    verdict = Verdict(title, "incorrect", str(problem))
                except Exception as error:  # noqa: BLE001 - a learner's bug must not crash the notebook
                    last = traceback.format_exception_only(type(error), error)[-1].strip()
                    verdict = Verdict(
                        title, "error", f"your answer raised an error while being checked: {last}"
                    )
            if not quiet:
                print(verdict)
            return verdict

        run.title = title
        return run

    return decorate
