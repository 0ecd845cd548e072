"""The course's machinery: what only the notebooks and the course's command line use.

The library (`resnet_keras` without this subpackage) never imports it. Here live:

* `profiles`: the run budgets of the course's three kinds of machine (`ci`, `cpu`,
  `gpu`), chosen automatically; `Profile.fit_kwargs()` maps one onto `resnet_keras.fit`;
* `exercises` (and `exercises.solutions`): the notebooks' checked exercises;
* `cli`: `python -m resnet_keras train | info`, training runs sized by profile;
* `runner`: `python -m resnet_keras.course` (`make course`), which executes every
  notebook and renders it to HTML.

Examples:

>>> from resnet_keras.course import get_profile
>>> get_profile("ci").epochs
2
"""

from resnet_keras.course.profiles import PROFILE_NAMES, Profile, detect_profile, get_profile

__all__ = ["PROFILE_NAMES", "Profile", "detect_profile", "get_profile"]
