#!/usr/bin/env bash
# Prepare the wheels scripts/gpu_run.sh installs on the GPU machine (run here, before the visit; pip reads this
# machine's package index: av 18.1.0 cp311-abi3, 35 MiB, came from it on 2026-12-07).
# The lent GPU machine (Python 3.12, torch 2.11) has no PyAV, no torchcodec and no network: without PyAV the
# throughput clips, the 2B-size training run, the throughput stages and the GPU tests that need it (they skip, and a
# skip there is no pass) all come to nothing. This downloads PyAV (the version this checkout's venv runs, which
# bundles its own FFmpeg) for CPython 3.12 into .whl/ (git-ignored), which gpu_run.sh installs into /tmp/site.
# torchcodec is not brought: it needs FFmpeg's shared libraries on the machine, which that image does not have.
# .whl/ is ignored, so each device call must carry it:
#   run(command="bash scripts/gpu_run.sh", carry=[".whl"])
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$PWD/.venv/bin/python}"  # not realpath: a venv's python resolved is its base Python, without av
AV="${AV_VERSION:-$("$PY" -c 'import av; print(av.__version__)')}"
rm -rf .whl && mkdir -p .whl
echo "== downloading av==$AV for CPython 3.12 (manylinux x86-64)"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl "av==$AV"
ls -la .whl
n=$(ls .whl/*.whl | wc -l)
[ "$n" = 1 ] || { echo "expected one wheel in .whl, got $n" >&2; exit 1; }
echo "== done: carry .whl in the device call (carry=[\".whl\"]); $(du -sm .whl | cut -f1) MiB of the 64 MiB a call carries"
