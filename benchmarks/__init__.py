"""Benchmarks of resnet_keras against plain PyTorch, keras.applications and the machine's limits.

Run them all with `python -m benchmarks` (what `make bench` does), one with
`python -m benchmarks NAME`, a fast smoke run with `python -m benchmarks --quick`.
Every benchmark measures its contenders side by side, alternating, and reports
medians and ratios; see `benchmarks/RESULTS.md` for the numbers of this machine.

Benchmarks (`python -m benchmarks --list`):

* `resnet20`: ResNet-20 (CIFAR, batch 128) training and inference images/s on the
  TensorFlow, JAX and PyTorch Keras backends against the same network written
  in PyTorch, plus effective GFLOP/s against the measured fp32 matrix-product rate.
* `breakdown`: where a ResNet-20 training step spends its time, op by op
  (TensorFlow profiler).
* `kernels`: ResNet-20's convolutions one by one, forward and both gradients,
  in TensorFlow and PyTorch (the same oneDNN kernels), at 2 threads and 1.
* `resnet50`: `rk.ResNet50` against `keras.applications.ResNet50`.
* `pipeline`: the tf.data input pipeline against ResNet-20 training.
* `first_step`: a new model's first training step, with the optimizer's state made
  before the step is traced (as `fit` does) and in it (Keras' default).
* `notebooks`: wall time of each notebook in the `ci` profile.

`python -m benchmarks.gpu` is a separate one-shot GPU script.
"""

BENCHMARK_NAMES = (
    "resnet20",
    "breakdown",
    "kernels",
    "resnet50",
    "pipeline",
    "first_step",
    "notebooks",
)
