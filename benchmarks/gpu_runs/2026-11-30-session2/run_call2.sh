#!/bin/bash
# Second device call of this session: Keras on JAX and plain PyTorch side by side in one process.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
g() { local name=$1 limit=$2; shift 2; echo "=== $name"; timeout $limit python3 -m benchmarks.gpu "$@" --output $OUT/$name.md 2>&1 | grep -v "^WARNING\|^I0000\|^W0000\|cuda_dnn\|cuda_blas\|cuda_fft\|UserWarning\|warnings.warn"; echo "=== $name rc=${PIPESTATUS[0]} at ${SECONDS}s"; }
g f_side_by_side 220 --backend jax plain-pytorch --torch-compile-mode reduce-overhead --depths 20 56 --precisions float32 mixed_bfloat16 --xla on --steps 200 --repeats 5 --budget-s 150
g h_jax_spe 150 --backend jax --depths 20 56 --precisions float32 mixed_bfloat16 --xla on --steps 200 --repeats 5 --steps-per-execution 1 8 --budget-s 100
g g_side_by_side_b512 80 --backend jax plain-pytorch --torch-compile-mode reduce-overhead --depths 20 --precisions float32 mixed_bfloat16 --xla on --batch 512 --steps 100 --repeats 5 --budget-s 55
echo total ${SECONDS}s
