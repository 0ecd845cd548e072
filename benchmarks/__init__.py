"""Side-by-side speed benchmarks that keep resnet_keras honest (`python -m benchmarks --list`).

`resnet20`: ResNet-20 against the same network in plain PyTorch, one ablation per CPU
default, the JAX and torch backends; `resnet50`: `rk.ResNet50` against
`keras.applications.ResNet50`; `pipeline`: tf.data against ResNet-20 training; `predict`:
single-image prediction latency of ResNet-20, three calls side by side; `distribute`:
ResNet-20 through `rk.fit` with and without the data-parallel engines; `descendants`: the
descendant blocks against the same networks in stock Keras layers.
`python -m benchmarks.gpu` is a one-shot GPU script. Numbers: `benchmarks/RESULTS.md`.
"""

BENCHMARK_NAMES = ("resnet20", "resnet50", "pipeline", "predict", "distribute", "descendants")
