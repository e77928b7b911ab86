#!/usr/bin/env bash
# One GPU visit (GPU.md), fits one 10-minute call: build against the machine's own torch, run the GPU
# tests with SF2T_REQUIRE_CUDA=1 (a skip fails), measure the ceilings, run the GPU benchmarks; JSON and
# logs go to $OUT (default ./gpu_out).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_out}"; mkdir -p "$OUT"
export MAX_JOBS="${MAX_JOBS:-16}" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
python -m pip install -e . --no-build-isolation --no-deps > "$OUT/build.log" 2>&1 || { tail -50 "$OUT/build.log"; exit 1; }
sf2t info --json > "$OUT/info.json"
SF2T_REQUIRE_CUDA=1 python -m pytest tests -q -ra -m gpu --junitxml="$OUT/gpu_tests.xml" > "$OUT/gpu_tests.log" 2>&1
echo "gpu tests rc=$?"; tail -5 "$OUT/gpu_tests.log"
python -m pytest tests -q -ra -x > "$OUT/all_tests.log" 2>&1; echo "all tests rc=$?"; tail -3 "$OUT/all_tests.log"
python bench/gpu_ceilings.py --json "$OUT/ceilings.json"
python -m pytest bench/bench_fragment_pack_gpu.py -q --benchmark-json="$OUT/bench_fragment_pack_gpu.json" \
  > "$OUT/bench.log" 2>&1; echo "bench rc=$?"; tail -15 "$OUT/bench.log"
