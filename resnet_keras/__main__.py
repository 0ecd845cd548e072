"""`python -m resnet_keras` and the `resnet-keras` console script (see `resnet_keras.cli`)."""

import sys

from resnet_keras.cli import main as _cli_main


def main(argv=None) -> int:
    """Runs the command line and returns its exit status (see `resnet_keras.cli.main`).

    Examples:
        >>> main(["info", "--no-probe"])  # doctest: +SKIP
        0
    """
    return _cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
