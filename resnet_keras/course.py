"""Facts about the course itself, kept in one place."""

REPOSITORY = "https://github.com/resnet-keras-course/resnet-keras-course"
COLAB_BASE = "https://colab.research.google.com/github/resnet-keras-course/resnet-keras-course/blob/main"
