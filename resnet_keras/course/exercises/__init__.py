"""Checked exercises for the course notebooks (one module per notebook).

Each `check_*` function prints a verdict with feedback and returns a `Verdict`;
reference solutions live apart in `resnet_keras.exercises.solutions`.
"""

from resnet_keras.exercises.core import NOT_ATTEMPTED, Incorrect, Verdict, exercise

__all__ = ["NOT_ATTEMPTED", "Incorrect", "Verdict", "exercise"]
