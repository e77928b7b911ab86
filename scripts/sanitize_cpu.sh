#!/usr/bin/env bash
# Build the C++ kernels with AddressSanitizer + UndefinedBehaviorSanitizer in a scratch clone and run the
# op tests against that build (issue 5's "never a read outside the input" check; the YUV -> RGB op too; the CUDA tiled
# kernel's code run on the host, so its indexing of the input and of its shared memory is checked too). Needs
# .venv (setup.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
git clone -q "$ROOT" "$WORK/sf2t"
cd "$WORK/sf2t"
. "$ROOT/.venv/bin/activate"
SF2T_SANITIZE=1 SF2T_NO_CUDA=1 MAX_JOBS="${MAX_JOBS:-2}" python setup.py -q build_ext --inplace
LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
PYTHONPATH="$WORK/sf2t" python -m pytest tests/ops/test_fragment_pack.py tests/ops/test_fragment_pack_fchw.py tests/ops/test_fragment_pack_nv12.py tests/ops/test_fragment_pack_yuv420.py tests/ops/test_fragment_pack_bf16.py tests/ops/test_fragment_pack_tiled.py tests/ops/test_thumbnail.py tests/ops/test_token_merge.py tests/ops/test_token_merge_backends.py tests/video/test_convert.py tests/video/test_backends.py -q -p no:cacheprovider
