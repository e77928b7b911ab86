"""``fragment_pack``'s ``triton`` backend, the host side: the resize weight tables (the same numbers as
csrc/ops/fragment_pack_common.h), the per-call int32 tables, the choice of kernel (two-pass or tiled,
``SF2T_FRAGMENT_PACK_TRITON``, ``SF2T_FRAGMENT_PACK_TILE``) and the launches of ``sf2t.kernels.fragment_pack``.
The front door is ``sf2t.ops.fragment_pack``."""

from __future__ import annotations

import functools
import importlib.util
import math
import os

import numpy as np
import torch

from sf2t._triton_interp import interpreter_errors


def _cubic_aa(x: float) -> float:
    a = -0.5
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    if x < 2.0:
        return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    return 0.0


@functools.lru_cache(maxsize=1024)
def _axis_weights(in_size: int, out_size: int) -> tuple[int, int, list[int], list[int], list[int]]:
    """(ksize, precision, start, size, int16 weights): the same numbers as compute_axis_weights in
    csrc/ops/fragment_pack_common.h (torch's uint8 antialiased bicubic weights)."""
    scale = in_size / out_size
    support = 2.0 * scale if scale >= 1.0 else 2.0
    invscale = 1.0 / scale if scale >= 1.0 else 1.0
    ksize = int(math.ceil(support)) * 2 + 1
    starts, sizes, wd = [], [], []
    wt_max = 0.0
    for i in range(out_size):
        center = scale * (i + 0.5)
        xmin = max(int(center - support + 0.5), 0)
        xsize = min(max(min(int(center + support + 0.5), in_size) - xmin, 0), ksize)
        w = [_cubic_aa((j + xmin - center + 0.5) * invscale) for j in range(xsize)]
        total = sum(w)
        if total != 0.0:
            w = [v / total for v in w]
            wt_max = max([wt_max] + w)
        starts.append(xmin)
        sizes.append(xsize)
        wd.extend(w + [0.0] * (ksize - xsize))
    precision = 0
    while precision < 22 and int(0.5 + wt_max * (1 << (precision + 1))) < (1 << 15):
        precision += 1
    scaled = [v * (1 << precision) for v in wd]
    weights = [int(-0.5 + v) if v < 0 else int(0.5 + v) for v in scaled]
    return ksize, precision, starts, sizes, weights


def _slice_weights(aw, begin: int, count: int):
    """Outputs [begin, begin + count) of one axis's weights (a window of the resized axis), like
    slice_axis_weights in csrc/ops/fragment_pack_common.h."""
    ksize, precision, starts, sizes, weights = aw
    return (
        ksize,
        precision,
        starts[begin : begin + count],
        sizes[begin : begin + count],
        weights[begin * ksize : (begin + count) * ksize],
    )


@functools.lru_cache(maxsize=256)
def _axis_table(in_size: int, out_size: int, begin: int, count: int) -> tuple[torch.Tensor, int, int]:
    """(int32 [start[count], size[count], weights[count * ksize]], ksize, precision): outputs [begin, begin +
    count) of the resize in_size -> out_size, as the kernels' weight table reads them."""
    aw = _axis_weights(in_size, out_size)
    if (begin, count) != (0, out_size):
        aw = _slice_weights(aw, begin, count)
    ksize, precision, starts, sizes, weights = aw
    return torch.tensor(starts + sizes + weights, dtype=torch.int32), ksize, precision


@interpreter_errors("fragment_pack backend 'triton'")  # (Triton 3.6's interpreter with NumPy 2.4)
def _fragment_pack_triton(
    frames,
    src_index,
    boxes,
    out_h,
    out_w,
    mean,
    std,
    patch_size,
    temporal_patch_size,
    merge_size,
    frame_repeat,
    dtype=torch.float32,
    window=None,
    nv12=None,
):
    """``window=((resize_h, resize_w), (crop_y, crop_x))``: the LLaVA layout [F * repeat, 3, out_h, out_w] of that
    window of each resized crop (weights of the full resize, sliced), instead of Qwen2-VL patches."""
    from sf2t.kernels import fragment_pack as tk

    n_presented = src_index.numel()
    if window is None:
        total = -(-n_presented * frame_repeat // temporal_patch_size) * temporal_patch_size
        rows = total // temporal_patch_size * (out_h // patch_size) * (out_w // patch_size)
        out = torch.empty(rows, 3 * temporal_patch_size * patch_size**2, dtype=dtype, device=frames.device)
    else:
        total = n_presented * frame_repeat
        out = torch.empty(total, 3, out_h, out_w, dtype=dtype, device=frames.device)
    if n_presented == 0:
        return out
    if _triton_kernel() == "tiled":
        done = _fragment_pack_triton_tiled(
            frames, src_index, boxes, out, out_h, out_w, mean, std, patch_size, temporal_patch_size, merge_size,
            frame_repeat, total, window, nv12,
        )  # fmt: skip
        if done is not None:
            return done
    src = src_index.tolist()
    bx = boxes.to("cpu").tolist()
    axes, pieces, used, (kx_max, ky_max), _ = _axis_entries(bx, out_h, out_w, window, n_presented * tk.META)
    meta, crop_hs, row_offset = [], [], 0
    for f, ((ox, _, kx, px), (oy, _, ky, py)) in enumerate(axes):
        x0, y0, _, y1 = bx[f]
        meta.append([src[f], x0, y0, y1 - y0, row_offset, kx, px, ky, py, ox, oy])
        crop_hs.append(y1 - y0)
        row_offset += y1 - y0
    row_frame = torch.from_numpy(np.repeat(np.arange(n_presented, dtype=np.int32), crop_hs))  # row -> frame
    dev = frames.device
    both = _to_device(torch.cat([torch.tensor(meta, dtype=torch.int32).reshape(-1), *pieces, row_frame]), dev)
    table_t, row_frame_t = both[:used], both[used:]
    tmp = torch.empty(row_offset, out_w, 3, dtype=torch.uint8, device=dev)
    mean255, inv_std255 = _norm255(mean, std)
    return tk.launch_fragment_pack(
        frames if nv12 is None else nv12.y,
        table_t,
        row_frame_t,
        out,
        tmp,
        presented=n_presented,
        out_h=out_h,
        out_w=out_w,
        repeat=frame_repeat,
        total_frames=total,
        kx_max=triton_next_pow2(kx_max),
        ky_max=triton_next_pow2(ky_max),
        mean255=mean255,
        inv_std255=inv_std255,
        patch=patch_size,
        tpatch=temporal_patch_size,
        merge=merge_size,
        fchw=window is not None,
        uv=None if nv12 is None else nv12.uv,
        yuv=None if nv12 is None else nv12.coefficients(),
    )


def _resize_args(axis: int, crop: int, n_out: int, window) -> tuple[int, int, int, int]:
    """(in, resize, begin, count) of one axis for _axis_table: the crop resized straight to the output, or (the LLaVA
    layout, ``window=((resize_h, resize_w), (crop_y, crop_x))``) to the resize size with the output's window kept."""
    if window is None:
        return crop, n_out, 0, n_out
    (rh, rw), (cy, cx) = window
    return (crop, rw, cx, n_out) if axis == 0 else (crop, rh, cy, n_out)


def _axis_entries(bx, out_h: int, out_w: int, window, used: int, tile: tuple[int, int] | None = None):
    """The per-axis parts of a Triton kernel's table for crop boxes ``bx`` ([x0, y0, x1, y1] per presented frame).

    Weights depend on the crop size alone, so each distinct (axis, crop size) adds its weight table once (and, with
    ``tile`` = (TH, TW) for the tiled kernel, its tile ranges), placed from offset ``used`` on. Returns (per frame,
    each axis's (weights offset, ranges offset or -1, ksize, precision); the pieces in table order; the table's end;
    the largest ksize per axis; the largest tile span per axis)."""
    pieces: list[torch.Tensor] = []
    seen: dict[tuple, tuple[int, int, int, int]] = {}
    axes, k_max, span_max = [], [1, 1], [0, 0]
    for x0, y0, x1, y1 in bx:
        ax = []
        for axis, (crop, n_out) in enumerate(((x1 - x0, out_w), (y1 - y0, out_h))):
            key = (axis, crop)
            if key not in seen:
                args = _resize_args(axis, crop, n_out, window)
                t, k, prec = _axis_table(*args)
                pieces.append(t)
                seen[key] = (used, -1 if tile is None else used + t.numel(), k, prec)
                used += t.numel()
                if tile is not None:
                    ranges, span = _tile_ranges(*args, tile[1] if axis == 0 else tile[0])
                    pieces.append(ranges)
                    used += ranges.numel()
                    span_max[axis] = max(span_max[axis], span)
                k_max[axis] = max(k_max[axis], k)
            ax.append(seen[key])
        axes.append(ax)
    return axes, pieces, used, k_max, span_max


def _to_device(host: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A kernel's int32 table on ``device``; from pinned memory on a GPU, so the copy is queued without waiting for
    the stream (a pageable copy would)."""
    if device.type == "cuda":
        host = host.pin_memory()
    return host.to(device, non_blocking=True)


def _norm255(mean, std) -> tuple[list[float], list[float]]:
    """mean * 255 and 1 / (std * 255) rounded to float32, as the C++ and CUDA kernels hold them."""
    mean255 = [float(torch.tensor(m * 255.0, dtype=torch.float32)) for m in mean]
    inv_std255 = [float(torch.tensor(1.0 / (s * 255.0), dtype=torch.float32)) for s in std]
    return mean255, inv_std255


def _triton_kernel() -> str:
    """Which Triton kernel runs: SF2T_FRAGMENT_PACK_TRITON=tiled (the single-pass tiled kernel) or two_pass (the
    default until the tiled kernel's bandwidth is measured on a GPU; bench/bench_fragment_pack_gpu.py times both)."""
    v = os.environ.get("SF2T_FRAGMENT_PACK_TRITON", "") or "two_pass"
    if v not in ("tiled", "two_pass"):
        raise ValueError(f"SF2T_FRAGMENT_PACK_TRITON must be tiled or two_pass, got {v!r}")
    return v


def _tile_size(fchw: bool, patch: int, merge: int) -> tuple[int, int]:
    """(TH, TW) of the tiled kernels (as csrc/ops/fragment_pack_tiled_host.h: default_tile): Qwen2-VL one merge
    block high and two wide, the LLaVA layout 32 x 64; SF2T_FRAGMENT_PACK_TILE="HxW" overrides it."""
    th, tw = (32, 64) if fchw else (patch * merge, 2 * patch * merge)
    env = os.environ.get("SF2T_FRAGMENT_PACK_TILE", "")
    if env:
        try:
            th, tw = (int(v) for v in env.lower().split("x"))
        except ValueError:
            th = tw = 0
        if th <= 0 or tw <= 0:
            raise ValueError(f"SF2T_FRAGMENT_PACK_TILE must be HxW with positive H and W (e.g. 28x56), got {env!r}")
    if not fchw and (th % patch or tw % patch):
        raise ValueError(f"the Qwen2-VL layout needs tiles of whole patches ({patch}), got {th}x{tw}")
    return th, tw


@functools.lru_cache(maxsize=1024)
def _tile_ranges(in_size: int, out_size: int, begin: int, count: int, tile: int) -> tuple[torch.Tensor, int]:
    """Per tile of ``tile`` outputs along one axis, [first input index, count] its taps read; and the largest count."""
    t, _, _ = _axis_table(in_size, out_size, begin, count)
    s, z = t[:count].long(), t[count : 2 * count].long()
    n = -(-count // tile)
    big = 1 << 40
    lo = torch.nn.functional.pad(torch.where(z > 0, s, big), (0, n * tile - count), value=big).view(n, tile).amin(1)
    hi = torch.nn.functional.pad(torch.where(z > 0, s + z, 0), (0, n * tile - count), value=0).view(n, tile).amax(1)
    lo = torch.where(lo > hi, hi, lo)
    return torch.stack([lo, hi - lo], 1).flatten().to(torch.int32), int((hi - lo).max())


_TILED_MAX_ROWS = 512  # a tile reading more input rows (extreme downscales) runs the two-pass kernels


def _fragment_pack_triton_tiled(
    frames, src_index, boxes, out, out_h, out_w, mean, std, patch, tpatch, merge, repeat, total, window, nv12
):
    """The tiled Triton kernel (sf2t.kernels.fragment_pack._fragment_pack_tiled) into ``out``; None (nothing run)
    when a tile would read more than _TILED_MAX_ROWS input rows."""
    from sf2t.kernels import fragment_pack as tk

    fchw = window is not None
    th, tw = _tile_size(fchw, patch, merge)
    n = src_index.numel()
    src = src_index.tolist()
    bx = boxes.to("cpu").tolist()
    axes, pieces, _, k_max, span_max = _axis_entries(bx, out_h, out_w, window, n * tk.META, tile=(th, tw))
    meta = [
        [src[f], bx[f][0], bx[f][1], kx, px, ky, py, wxo, wyo, txo, tyo]
        for f, ((wxo, txo, kx, px), (wyo, tyo, ky, py)) in enumerate(axes)
    ]
    if span_max[1] > _TILED_MAX_ROWS:
        return None
    table = _to_device(torch.cat([torch.tensor(meta, dtype=torch.int32).reshape(-1), *pieces]), frames.device)
    mean255, inv_std255 = _norm255(mean, std)
    return tk.launch_fragment_pack_tiled(
        frames if nv12 is None else nv12.y,
        table,
        out,
        presented=n,
        out_h=out_h,
        out_w=out_w,
        repeat=repeat,
        total_frames=total,
        tile=(th, tw),
        kx_max=triton_next_pow2(k_max[0]),
        ky_max=triton_next_pow2(k_max[1]),
        r_max=max(1, span_max[1]),
        mean255=mean255,
        inv_std255=inv_std255,
        patch=patch,
        tpatch=tpatch,
        merge=merge,
        fchw=fchw,
        uv=None if nv12 is None else nv12.uv,
        yuv=None if nv12 is None else nv12.coefficients(),
        programs=None if frames.device.type == "cuda" else 3,
    )


def triton_next_pow2(n: int) -> int:
    # Round loop bounds up so differently sized crops share compiled variants.
    return 1 << max(0, (n - 1).bit_length())


def triton_available(device: str = "cuda") -> bool:
    """Triton can run fragment_pack for tensors on ``device`` (CPU only in the interpreter)."""
    if importlib.util.find_spec("triton") is None:
        return False
    if device == "cpu":
        return os.environ.get("TRITON_INTERPRET") == "1"
    return torch.cuda.is_available()
