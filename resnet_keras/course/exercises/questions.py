"""Conceptual questions: multiple choice and short numeric answers, graded with feedback.

A code exercise checks that a learner can build something; a question checks that they
know why it works. Each wrong choice gets its own explanation (the misconception it
reveals), never a bare "wrong". A question shows itself in a notebook (its
`_repr_markdown_`) and grades an answer when called, through the same `exercise`
decorator as every checker, so "not attempted", a verdict line and no traceback come
for free.

Predict-then-measure: ask the question before the experiment, and let the experiment
that follows assert the outcome the right choice names, so the answer key is itself
checked by a measurement.
"""

from __future__ import annotations

import math
import numbers

from resnet_keras import _validation
from resnet_keras.course.exercises.core import Incorrect, exercise


class MultipleChoice:
    """One question with lettered choices; the learner answers with one letter.

    Args:
        title: the name the notebook shows ("Question 3.1").
        question: the question, in Markdown.
        choices: letter -> choice text, in the order shown.
        answer: the right letter.
        feedback: wrong letter -> why that choice is wrong (every wrong letter needs one).
        success: what the learner reads when right: the reason, in a sentence or two.

    Examples:

    >>> q = MultipleChoice("Q", "1 + 1?", {"a": "2", "b": "3"}, answer="a",
    ...                    feedback={"b": "That adds one twice."}, success="Yes.")
    >>> q("b").message
    ❌ Q: That adds one twice.
    'That adds one twice.'
    >>> q("A").passed
    ✅ Q: Yes.
    True
    """

    def __init__(self, title, question, choices, *, answer, feedback, success):
        _validation.check_instance("choices", choices, dict, "a dict of letter -> text")
        _validation.check_choice("answer", answer, tuple(choices))
        wrong = set(choices) - {answer}
        if set(feedback) != wrong:
            raise ValueError(
                f"`feedback` must explain each wrong choice {sorted(wrong)} and nothing else; "
                f"received {sorted(feedback)}."
            )
        self.title = title
        self.question = question
        self.choices = dict(choices)
        self._answer = answer
        self._feedback = dict(feedback)
        self._check = exercise(title, success)(self._grade)

    def _grade(self, answer):
        letters = ", ".join(repr(letter) for letter in self.choices)
        if not isinstance(answer, str) or answer.strip().lower() not in self.choices:
            raise Incorrect(f"Answer with one letter: {letters}; received {answer!r}.")
        letter = answer.strip().lower()
        if letter != self._answer:
            raise Incorrect(self._feedback[letter])

    def __call__(self, answer=None, *, quiet=False):
        """Grades `answer` (a letter; None means not attempted yet) and returns the Verdict."""
        return self._check(answer, quiet=quiet)

    def _repr_markdown_(self):
        lines = [f"**{self.title}.** {self.question}", ""]
        lines += [f"- **{letter}**: {text}" for letter, text in self.choices.items()]
        return "\n".join(lines)

    def __repr__(self):
        return f"MultipleChoice({self.title!r})"


class NumericAnswer:
    """A question answered with one number, right within a relative tolerance.

    Args:
        title: the name the notebook shows.
        question: the question, in Markdown.
        answer: the right value.
        tolerance: the relative error accepted (0.02 = 2 %), for answers a learner rounds.
        mistakes: (value, feedback) pairs for the usual wrong answers, each recognised with
            the same tolerance.
        hint: what any other wrong answer is told, after "too high" or "too low".
        success: what the learner reads when right.

    Examples:

    >>> q = NumericAnswer("Q", "Parameters of a 3x3 conv, 16 -> 16, no bias?", 2304,
    ...                   mistakes=[(256, "That is a 1x1 kernel: 16 x 16.")],
    ...                   hint="3 x 3 x inputs x outputs.", success="Right.")
    >>> q(256).status
    ❌ Q: That is a 1x1 kernel: 16 x 16.
    'incorrect'
    >>> q(2300).passed
    ✅ Q: Right.
    True
    """

    def __init__(self, title, question, answer, *, mistakes=(), hint, tolerance=0.02, success):
        self.title = title
        self.question = question
        self._answer = _validation.check_number("answer", answer)
        self._tolerance = _validation.check_number("tolerance", tolerance, minimum=0)
        self._mistakes = [(float(value), text) for value, text in mistakes]
        for value, _ in self._mistakes:
            if self._close(value, self._answer):
                raise ValueError(f"`mistakes` holds {value:g}, which is the right answer.")
        self._hint = hint
        self._check = exercise(title, success)(self._grade)

    def _close(self, value, target):
        return math.isclose(value, target, rel_tol=self._tolerance, abs_tol=1e-12)

    def _grade(self, answer):
        if isinstance(answer, bool) or not isinstance(answer, numbers.Real):
            raise Incorrect(f"Answer with one number; received {answer!r}.")
        value = float(answer)
        if self._close(value, self._answer):
            return
        for mistake, text in self._mistakes:
            if self._close(value, mistake):
                raise Incorrect(text)
        direction = "too high" if value > self._answer else "too low"
        raise Incorrect(f"{value:g} is {direction}. {self._hint}")

    def __call__(self, answer=None, *, quiet=False):
        """Grades `answer` (a number; None means not attempted yet) and returns the Verdict."""
        return self._check(answer, quiet=quiet)

    def _repr_markdown_(self):
        return f"**{self.title}.** {self.question}"

    def __repr__(self):
        return f"NumericAnswer({self.title!r})"
