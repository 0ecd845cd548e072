"""`python -m resnet_keras` and the `resnet-keras` console script.

The command line sizes its runs by the course's profiles, so it lives with the course
(`resnet_keras.course.cli`); `import resnet_keras` never imports this module.
"""

import sys

from resnet_keras.course.cli import main as _cli_main


def main(argv=None) -> int:
    """Runs the command line and returns its exit status (see `resnet_keras.course.cli.main`).

    Examples:
        >>> main(["info", "--no-probe"])  # doctest: +SKIP
        0
    """
    return _cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
