"""Where fragment_pack's GPU time goes: per backend and case, the wall time of one call (synchronized), the device
time of its kernels and copies (torch.profiler), and each kernel's share; the bandwidth of the kernels alone and of
the whole call against a device-to-device copy. Prints a table, writes JSON:

    python bench/gpu_profile_pack.py [--json OUT] [--reps 30] [--tiles 28x56,28x112] [--src-devices cpu,cuda]
        [--dtypes float32,bfloat16]

Backends: ``cuda`` and ``triton`` (the two-pass kernels), ``cuda_tiled`` and ``triton_tiled`` (the tiled single-pass
kernels, SF2T_FRAGMENT_PACK_CUDA / SF2T_FRAGMENT_PACK_TRITON=tiled; one row per ``--tiles`` size, default their own).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import time

import torch

from sf2t.ops import fragment_pack

CASES = {
    "16x640x360->448x252": (16, 360, 640, 252, 448),
    "32x1280x720->448x448": (32, 720, 1280, 448, 448),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--tiles", default="", help="tile sizes HxW for cuda_tiled rows (default: the kernel's own)")
    ap.add_argument("--src-devices", default="cpu,cuda", help="where the plan's src_index lives")
    ap.add_argument("--backends", default="cuda,cuda_tiled,triton,triton_tiled")
    ap.add_argument("--dtypes", default="float32", help="output dtypes, e.g. float32,bfloat16 (training's on GPU)")
    args = ap.parse_args(argv)
    variants = []  # (row name, backend, environment)
    for b in args.backends.split(","):
        if b.endswith("_tiled"):
            for tile in args.tiles.split(",") if args.tiles else [""]:
                env = {"SF2T_FRAGMENT_PACK_CUDA": "tiled", "SF2T_FRAGMENT_PACK_TRITON": "tiled"}
                env["SF2T_FRAGMENT_PACK_TILE"] = tile
                variants.append((f"{b}{'@' + tile if tile else ''}", b.removesuffix("_tiled"), env))
        else:
            env = {"SF2T_FRAGMENT_PACK_CUDA": "two_pass", "SF2T_FRAGMENT_PACK_TRITON": "two_pass"}
            variants.append((b, b, {**env, "SF2T_FRAGMENT_PACK_TILE": ""}))
    from torch.profiler import ProfilerActivity, profile

    from bench.gpu_ceilings import measure

    copy_gbps = measure()["copy_gbps"]
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "copy_gbps": copy_gbps, "rows": {}}
    for case, (n, h, w, oh, ow) in CASES.items():
        frames = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, device="cuda")
        src = torch.arange(n)
        for name, backend, env in variants:
            os.environ.update(env)
            for src_dev, dtype_name in itertools.product(args.src_devices.split(","), args.dtypes.split(",")):
                s = src if src_dev == "cpu" else src.cuda()
                dtype = getattr(torch, dtype_name)

                def call(frames=frames, s=s, size=(oh, ow), backend=backend, dtype=dtype):
                    return fragment_pack(frames, s, None, size, frame_repeat=1, backend=backend, dtype=dtype)

                out, _ = call()
                moved = frames.numel() + out.numel() * out.element_size()
                for _ in range(3):
                    call()
                torch.cuda.synchronize()
                t = time.perf_counter()
                for _ in range(args.reps):
                    call()
                    torch.cuda.synchronize()
                wall = (time.perf_counter() - t) / args.reps
                t = time.perf_counter()  # back to back, one sync at the end: host work overlaps the kernels
                for _ in range(args.reps):
                    call()
                torch.cuda.synchronize()
                pipelined = (time.perf_counter() - t) / args.reps
                with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                    for _ in range(10):
                        call()
                    torch.cuda.synchronize()
                dev = collections.Counter()
                for e in prof.events():
                    if e.device_type == torch.autograd.DeviceType.CUDA:
                        dev[e.name[:60]] += e.device_time / 10 / 1e6  # seconds per call
                kernels = sum(dev.values())
                host = sorted(prof.key_averages(), key=lambda a: -a.self_cpu_time_total)[:8]
                host_parts = {a.key[:50]: a.self_cpu_time_total / 10 / 1e6 for a in host}
                row = {
                    "bytes": moved,
                    "wall_s": wall,
                    "pipelined_s": pipelined,
                    "device_s": kernels,
                    "device_parts_s": dict(dev.most_common(6)),
                    "host_self_s": host_parts,
                    "fraction_of_copy_wall": moved / wall / 1e9 / copy_gbps,
                    "fraction_of_copy_pipelined": moved / pipelined / 1e9 / copy_gbps,
                    "fraction_of_copy_device": (moved / kernels / 1e9 / copy_gbps) if kernels else None,
                }
                key = f"{case}/{name}/src_{src_dev}" + ("" if dtype_name == "float32" else f"/{dtype_name}")
                res["rows"][key] = row
                parts = ", ".join(f"{k} {v * 1e6:.1f}" for k, v in row["device_parts_s"].items())
                print(
                    f"{key:<44} wall {wall * 1e6:8.1f} us  pipelined {pipelined * 1e6:8.1f} us  device "
                    f"{kernels * 1e6:7.1f} us ({100 * (row['fraction_of_copy_device'] or 0):.1f}% of copy; wall "
                    f"{100 * row['fraction_of_copy_wall']:.1f}%)  [{parts}]",
                    flush=True,
                )
                print("    host self us/call: " + ", ".join(f"{k} {v * 1e6:.1f}" for k, v in host_parts.items()))
                if args.json:  # after every row: a run stopped by its time limit keeps what it measured
                    with open(args.json, "w") as f:
                        json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
