#!/bin/bash
# One device call: benchmarks/gpu.py runs for this session (2026-11-30, second GPU session).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > $OUT/nvidia_smi.txt 2>&1
g() { local name=$1 limit=$2; shift 2; echo "=== $name"; timeout $limit python3 -m benchmarks.gpu "$@" --output $OUT/$name.md 2>&1 | grep -v "^WARNING\|^I0000\|^W0000\|cuda_dnn\|cuda_blas\|cuda_fft"; echo "=== $name rc=${PIPESTATUS[0]} at ${SECONDS}s"; }
g b_jax_spe 170 --backend jax --depths 20 56 --precisions float32 mixed_bfloat16 --xla on --steps 200 --steps-per-execution 1 8 --budget-s 110
g a_torch_cg 90 --backend plain-pytorch --torch-compile-mode reduce-overhead --depths 20 --precisions float32 mixed_bfloat16 --xla both --steps 200 --budget-s 60
g c_jax_b512 70 --backend jax --depths 20 --precisions float32 mixed_bfloat16 --xla on --batch 512 --steps 100 --budget-s 45
g d_torch_cg_b512 70 --backend plain-pytorch --torch-compile-mode reduce-overhead --depths 20 --precisions float32 mixed_bfloat16 --xla on --batch 512 --steps 100 --budget-s 45
g e_jax_steps40 45 --backend jax --depths 20 --precisions float32 --xla on --steps 40 --budget-s 30
echo total ${SECONDS}s
