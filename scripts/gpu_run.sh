#!/usr/bin/env bash
# One GPU visit (GPU.md) in one 10-minute call: build against the machine's own torch, run the GPU tests with
# SF2T_REQUIRE_CUDA=1 (a skip fails), measure the ceilings, the GPU benchmarks (fragment_pack bandwidth,
# token_merge vs the vision tower, the input pipeline with --device cuda, LoRA training at Qwen2-VL-2B size),
# compute-sanitizer on the CUDA kernels, Nsight Compute on fragment_pack's kernels, then the CPU test suite on that
# machine's stack while time is left.
# Stages are skipped, and say so, when the time budget (GPU_BUDGET_S, default 560 s) would not cover them;
# GPU_STAGES=a,b,... runs only those; GPU_TESTS=paths narrows the GPU tests; GPU_TRAIN=0 skips the 2B-size
# preparation; TRAIN_RUNS=DECODER:WORKERS[:KEEP[:STAGE]],... replaces the 2B-size training runs; PACK_TILES=HxW,...
# the tile sizes profile_pack times for the tiled fragment_pack kernels, PACK_DTYPES=float32,bfloat16 its output dtypes. With DALI sent first (scripts/gpu_dali_prepare.sh here, then scripts/gpu_dali_receive.sh once per
# part, back to back) the DALI stages run too.
# Wheels in .whl/ (PyAV: scripts/gpu_wheels_prepare.sh here first; .whl/ is git-ignored, so the call must name it
# in carry) are installed into /tmp/site first; without PyAV the stages that decode video (the clips, train_2b, the
# throughput runs) are skipped and say so, and so do the GPU tests that import it. Logs and JSON go to $OUT (default ./gpu_out),
# bundled into $OUT/results.tgz after each stage (a call returns at most 8 files).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_out}"; mkdir -p "$OUT"
R="${GPU_WORK:-/tmp/sf2t-gpu-out}"; rm -rf "$R"; mkdir -p "$R"  # bundled into $OUT/results.tgz
BUDGET="${GPU_BUDGET_S:-560}"
export MAX_JOBS="${MAX_JOBS:-16}" TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
left() { echo $((BUDGET - SECONDS)); }
bundle() { tar -czf "$OUT/results.tgz.tmp" -C "$R" . && mv "$OUT/results.tgz.tmp" "$OUT/results.tgz"; }
stage() {  # stage NAME MIN_SECONDS_LEFT TIMEOUT CMD...: run CMD under a timeout if the budget allows
  local name=$1 need=$2 lim=$3; shift 3
  if [ -n "${GPU_STAGES:-}" ] && [[ ",$GPU_STAGES," != *",$name,"* ]]; then echo "== $name: not asked for"; return 0; fi
  if [ "$(left)" -lt "$need" ]; then echo "== $name: SKIPPED ($(left) s left, needs $need)"; return 0; fi
  [ "$lim" -gt "$(left)" ] && lim=$(left)
  echo "== $name (limit ${lim}s, at ${SECONDS}s)"
  timeout -k 5 "$lim" "$@" > "$R/$name.log" 2>&1
  local rc=$?
  echo "   rc=$rc after ${SECONDS}s"; tail -n "${TAIL:-6}" "$R/$name.log" | sed 's/^/   /'
  bundle
  return 0
}
av_stage() {  # av_stage NAME ...: stage, or skipped (and said) without PyAV where it was asked for
  if [ "$AV" = 1 ] || { [ -n "${GPU_STAGES:-}" ] && [[ ",$GPU_STAGES," != *",$1,"* ]]; }; then stage "$@"
  else echo "== $1: SKIPPED (no PyAV)"; fi
}
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
# PyAV: the clips, the 2B-size training run and the throughput stages decode video with it (the machine has no
# torchcodec); without it they are skipped, not left to fail one by one, and the GPU tests that need it skip
AV=1
if ! python3 -c "import av" > "$R/pyav.txt" 2>&1; then
  AV=0
  echo "== NO PyAV: run scripts/gpu_wheels_prepare.sh here and name .whl in the call's carry; the clips, train_2b and"
  echo "   throughput stages are skipped, and the GPU tests that import av skip (tests/test_throughput_gpu.py, test_train_gpu.py)"
fi
# DALI, when scripts/gpu_dali_receive.sh unpacked it in an earlier call of this warm machine: on the path, and the
# DALI stages below run (train_2b with DALI decode, throughput with DALI against PyAV)
DALI=0
if [ -d /tmp/site-dali/nvidia/dali ]; then
  export PYTHONPATH="$PYTHONPATH:/tmp/site-dali" && DALI=1 && echo "== DALI from /tmp/site-dali"
fi
nvidia-smi > "$R/nvidia-smi.txt" 2>&1
# CPU-side preparation in the background while the extension builds: the clips, the 2B-size checkpoint.
CLIPS_PID=""
if [ "$AV" = 1 ]; then
  ( timeout 200 python3 -c '
import time; t = time.perf_counter()
from sf2t import synth
for w, h in ((640, 360), (1280, 720)):
    synth.make_clips(f"/tmp/sf2t-gpu/tp{w}", 1, seed=21, width=w, height=h, fps=30, seconds=30, gop=30)
print(f"throughput clips {time.perf_counter() - t:.1f} s")' > "$R/prep_clips.log" 2>&1 ) &
  CLIPS_PID=$!
fi
TRAIN_PID=""
if [ "${GPU_TRAIN:-1}" = 1 ] && [ "$AV" = 1 ]; then
  ( timeout 420 python3 -c '
import torch; torch.set_num_threads(4)
from pathlib import Path
from bench.gpu_train import prepare
print("train clips and 2B-size checkpoint (s):", prepare(Path("/tmp/sf2t-gpu-train"))[3])' > "$R/prep_train.log" 2>&1 ) &
  TRAIN_PID=$!
fi
stage build 60 300 python3 -m pip install -e . --no-build-isolation --no-deps
python3 -c "import torch, sf2t._C" 2>/dev/null || { echo "build failed"; tail -40 "$R/build.log"; bundle; exit 1; }
python3 -m sf2t info --json > "$R/info.json" 2>&1
TAIL=12 stage gpu_tests 40 200 env SF2T_REQUIRE_CUDA=1 python3 -m pytest ${GPU_TESTS:-tests} -q -ra -m gpu -p no:cacheprovider \
  --junitxml="$R/gpu_tests.xml"
TAIL=4 stage sanitizer 60 110 compute-sanitizer --tool memcheck --error-exitcode 7 --print-limit 20 \
  python3 -m pytest -q -p no:cacheprovider -m gpu -k cuda tests/ops/test_fragment_pack.py \
  tests/ops/test_fragment_pack_nv12.py tests/ops/test_fragment_pack_fchw.py tests/ops/test_fragment_pack_tiled.py \
  tests/ops/test_token_merge_backends.py
# the tiled kernel shares memory between its threads: races between its phases would show here (the small cases:
# racecheck runs every shared-memory access through the tool)
TAIL=4 stage racecheck 40 90 compute-sanitizer --tool racecheck --error-exitcode 7 --print-limit 20 \
  python3 -m pytest -q -p no:cacheprovider -m gpu tests/ops/test_fragment_pack_tiled.py \
  -k "cuda_tiled and not triton and (nv12 or (dtype0 and not 720 and not 360))"
stage ceilings 60 60 python3 bench/gpu_ceilings.py --json "$R/ceilings.json"
TAIL=14 stage bench_fragment_pack 60 90 python3 -m pytest bench/bench_fragment_pack_gpu.py -q -p no:cacheprovider \
  --benchmark-json="$R/bench_fragment_pack_gpu.json" --benchmark-columns=median,min,rounds
TAIL=40 stage profile_pack 50 120 python3 bench/gpu_profile_pack.py --json "$R/profile_pack_gpu.json" \
  --src-devices cpu --tiles "${PACK_TILES:-28x56,28x112,56x56}" --dtypes "${PACK_DTYPES:-float32,bfloat16}"
TAIL=30 stage ncu_pack 60 120 ncu --clock-control none -k 'regex:horizontal|vertical|tiled' -c 12 --section SpeedOfLight \
  --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis python3 bench/gpu_pack_once.py
TAIL=8 stage bench_token_merge 50 80 python3 bench/gpu_token_merge.py --json "$R/token_merge_gpu.json"
[ -n "$TRAIN_PID" ] && wait "$TRAIN_PID"
RUNS="pyav:0,pyav:8"; [ "$DALI" = 1 ] && RUNS="dali:0,pyav:8,pyav:0"
RUNS="${TRAIN_RUNS:-$RUNS}"  # e.g. TRAIN_RUNS=pyav:8,pyav:8:0.5:before_tower: token compression at 2B size
TAIL=6 av_stage train_2b 90 180 python3 bench/gpu_train.py --steps 10 --skip 3 --runs "$RUNS" \
  --root /tmp/sf2t-gpu-train --json "$R/train_2b_gpu.json"
[ -n "$CLIPS_PID" ] && wait "$CLIPS_PID"
TAIL=10 av_stage throughput_640 60 75 python3 -m sf2t throughput --videos /tmp/sf2t-gpu/tp640 --device cuda \
  --against llamafactory_style --windows 8 --rounds 2 --warmup 0 --threads 4 --json "$R/throughput_640_cuda.json"
if [ "$DALI" = 1 ]; then  # the same run with sf2t decoding on the CPU (PyAV), for the DALI/NVDEC comparison
  TAIL=10 av_stage throughput_640_pyav 60 75 python3 -m sf2t throughput --videos /tmp/sf2t-gpu/tp640 --device cuda \
    --decoder pyav --against llamafactory_style --windows 8 --rounds 2 --warmup 0 --threads 4 --json "$R/throughput_640_cuda_pyav.json"
fi
TAIL=10 av_stage throughput_640_cpu 60 75 python3 -m sf2t throughput --videos /tmp/sf2t-gpu/tp640 --device cpu \
  --against llamafactory_style --windows 8 --rounds 2 --warmup 0 --threads 4 --json "$R/throughput_640_cpu.json"
TAIL=10 av_stage throughput_1280 60 75 python3 -m sf2t throughput --videos /tmp/sf2t-gpu/tp1280 --device cuda \
  --against llamafactory_style --windows 4 --rounds 2 --warmup 0 --threads 4 --size 448 448 --baseline-samples 4 \
  --json "$R/throughput_1280_cuda.json"
TAIL=4 stage cpu_suite 60 400 python3 -m pytest tests -q -m "not gpu" -p no:cacheprovider -n 12 --timeout 120
echo "== done at ${SECONDS}s"; bundle
