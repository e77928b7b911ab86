"""The two ceilings GPU figures are reported against (GPU.md): device-to-device copy bandwidth (bytes read +
written per second) and a large bf16 matmul (TFLOP/s). Prints JSON; used by scripts/gpu_run.sh.

    python bench/gpu_ceilings.py [--json OUT]
"""

import argparse
import json

import torch


def _time(fn, iters=20):
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / iters


def measure() -> dict:
    if not torch.cuda.is_available():
        raise SystemExit("gpu_ceilings: no CUDA device")
    n = 1 << 30  # 1 GiB
    a = torch.empty(n, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    t_copy = _time(lambda: b.copy_(a))
    m = 8192
    x = torch.randn(m, m, dtype=torch.bfloat16, device="cuda")
    y = torch.randn(m, m, dtype=torch.bfloat16, device="cuda")
    t_mm = _time(lambda: x @ y, iters=10)
    return {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "copy_bytes": 2 * n,
        "copy_gbps": 2 * n / t_copy / 1e9,
        "matmul_shape": [m, m, m],
        "matmul_bf16_tflops": 2 * m**3 / t_mm / 1e12,
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    args = ap.parse_args()
    res = measure()
    print(json.dumps(res, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)
