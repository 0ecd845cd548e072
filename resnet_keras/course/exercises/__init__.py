"""Checked exercises for the course notebooks (one module per notebook).

Each `check_*` function prints a verdict with feedback and returns a `Verdict`;
reference solutions live apart in `resnet_keras.course.exercises.solutions`.
"""

from resnet_keras.course.exercises.core import NOT_ATTEMPTED, Incorrect, Verdict, exercise

__all__ = ["NOT_ATTEMPTED", "Incorrect", "Verdict", "exercise"]
