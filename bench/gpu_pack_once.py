"""fragment_pack's CUDA kernels, each case once after a warm-up: a small driver for Nsight Compute on a GPU visit
(scripts/gpu_run.sh's ncu stage), so the profiler sees a handful of launches:

    ncu --clock-control none -k regex:'horizontal|vertical|tiled' -c 12 python bench/gpu_pack_once.py

Both CUDA kernels: the two-pass pair, then the tiled one (SF2T_FRAGMENT_PACK_CUDA=tiled).
"""

import os

import torch

from sf2t.ops import fragment_pack

CASES = ((16, 360, 640, 252, 448), (32, 720, 1280, 448, 448))

if __name__ == "__main__":
    for kernel in ("two_pass", "tiled"):
        os.environ["SF2T_FRAGMENT_PACK_CUDA"] = kernel
        for n, h, w, oh, ow in CASES:
            frames = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, device="cuda")
            src = torch.arange(n)
            fragment_pack(frames, src, None, (oh, ow), frame_repeat=1, backend="cuda")  # warm-up
            torch.cuda.synchronize()
            fragment_pack(frames, src, None, (oh, ow), frame_repeat=1, backend="cuda")
            torch.cuda.synchronize()
    print("done")
