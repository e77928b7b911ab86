#!/usr/bin/env bash
# Prepare DALI for a GPU visit (issues 7 and 9: DALI/NVDEC figures). The lent GPU machine has no DALI, reaches no
# network, and a device call carries at most 64 MiB, while nvidia-dali-cuda130 2.4.0 and the wheels it needs are
# ~270 MB. This script (run here, ~3 min) downloads them for that machine's Python 3.12, unpacks them into one
# site folder, drops the extension modules of other Pythons, packs the folder as tar.xz (~187 MB: 3 parts) and splits it
# into parts of at most PART_MB MiB (default 61: a part and the ~1 MB working tree stay under the 64 MiB a call carries) under .gpu_carry/dali/ (git-ignored), with SHA256SUMS.
#
# On the GPU machine, one call per part, back to back (the machine is handed back after ~30 s idle, and /tmp goes
# with it), each carrying one part and SHA256SUMS:
#   run(command="bash scripts/gpu_dali_receive.sh", carry=[".gpu_carry/dali/SHA256SUMS", ".gpu_carry/dali/part-00"])
#   ... part-01, part-02 ...
# The call that completes the set unpacks it into /tmp/site-dali and imports nvidia.dali; scripts/gpu_run.sh then
# puts /tmp/site-dali on PYTHONPATH and adds the DALI stages (run it in the next call, still back to back).
set -euo pipefail
cd "$(dirname "$0")/.."
PART_MB="${PART_MB:-61}"
PY="$(realpath "${PYTHON:-.venv/bin/python}")"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "== downloading nvidia-dali-cuda130==2.4.0 and its wheels for CPython 3.12"
"$PY" -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$WORK/wheels" "nvidia-dali-cuda130==2.4.0" 2>&1 | grep -v "^WARNING: Location" || true
ls "$WORK"/wheels/nvidia_dali_cuda130-*.whl >/dev/null
# the GPU machine's torch stack already has these (and pip's own)
rm -f "$WORK"/wheels/numpy-* "$WORK"/wheels/packaging-* "$WORK"/wheels/typing_extensions-* "$WORK"/wheels/PyYAML-* \
  "$WORK"/wheels/pyyaml-* "$WORK"/wheels/wheel-* "$WORK"/wheels/six-*
mkdir -p "$WORK/site"
for w in "$WORK"/wheels/*.whl; do
  echo "   $(basename "$w") ($(du -m "$w" | cut -f1) MB)"
  (cd "$WORK/site" && "$PY" -m zipfile -e "$w" .)  # a wheel is a zip of its site-packages files
done
# extension modules built for other Pythons (DALI ships one per version): not loaded on 3.12; 3.11 kept for a
# local import check
find "$WORK/site" -name '*.cpython-3*.so' ! -name '*cpython-312-*' ! -name '*cpython-311-*' -delete
echo "== packing $(du -sh "$WORK/site" | cut -f1) with xz"
rm -rf .gpu_carry/dali && mkdir -p .gpu_carry/dali
tar -C "$WORK/site" -cf - . | xz -T"$(nproc)" -6 | split -b "${PART_MB}M" -d -a 2 - .gpu_carry/dali/part-
(cd .gpu_carry/dali && sha256sum part-* > SHA256SUMS)
ls -la .gpu_carry/dali
echo "== done: $(ls .gpu_carry/dali/part-* | wc -l) parts; carry each with SHA256SUMS (see the top of this script)"
