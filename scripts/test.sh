#!/usr/bin/env bash
# Set everything up (scripts/setup.sh), then run every test pass CI runs:
#   1. pytest over tests/ (C++ kernels vs reference, Triton kernels compiled ahead of time for sm_90, ...)
#   2. the Triton kernels in the interpreter (TRITON_INTERPRET=1)
#   3. the benchmark files once, untimed (--benchmark-disable)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
SECONDS=0
sf2t info
if [ "${CUDA_HOME:-/usr/local/cuda}" != "" ] && [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then
  # A broken .cu must fail CI: the build above compiled the CUDA sources; check they are in.
  python -c "import sf2t._ext as e, sys; i = e.build_info(); sys.exit(0 if i.get('with_cuda') and e.is_loaded() else 'CUDA sources were not compiled: %s' % i.get('cuda_reason'))"
fi
echo "== pytest tests/"
python -m pytest tests -q -ra --durations=15
echo "== Triton kernels in the interpreter"
TRITON_INTERPRET=1 python -m pytest tests/ops/test_triton.py -q -ra
echo "== benchmark files, once, untimed"
python -m pytest bench -q --benchmark-disable -p no:cacheprovider
echo "== all test passes done in ${SECONDS}s"
