"""`python -m resnet_keras.course`: run every notebook (see `resnet_keras.course.runner`)."""

import sys

from resnet_keras.course.runner import main

if __name__ == "__main__":
    sys.exit(main())
