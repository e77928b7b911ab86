"""``fragment_pack``'s argument checks (``_check_args``: every argument, ValueError naming it) and its pure-PyTorch
references, one per layout (``_fragment_pack_reference``: Qwen2-VL patches; ``_fragment_pack_fchw_reference``: the
LLaVA layout), the ``reference`` backend the compiled and Triton kernels are tested against. The front door is
``sf2t.ops.fragment_pack``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sf2t._checks import check_int, check_int_pair
from sf2t.ops._pack_sizes import nearest_qwen2_vl_size

LAYOUTS = ("qwen2_vl", "fchw")


def _check_args(
    frames,
    src_index,
    boxes,
    size,
    mean,
    std,
    patch_size,
    temporal_patch_size,
    merge_size,
    frame_repeat,
    dtype,
    layout="qwen2_vl",
    resize=None,
) -> tuple[tuple[int, int], tuple[int, int] | None, int, int, int, int]:
    """Checks every argument (ValueError naming it); returns the integer ones as Python ints, numpy integers
    converted: ``(size, resize, patch_size, temporal_patch_size, merge_size, frame_repeat)``."""
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"frames must be a torch.Tensor, got {type(frames).__name__}")
    if frames.dtype != torch.uint8:
        raise ValueError(f"frames must be uint8 [N, H, W, 3], got dtype {frames.dtype}")
    if frames.dim() != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape [N, H, W, 3], got {tuple(frames.shape)}")
    if not isinstance(src_index, torch.Tensor) or src_index.dim() != 1:
        raise ValueError("src_index must be a 1-D integer tensor [F]")
    if src_index.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"src_index must be an integer tensor, got dtype {src_index.dtype}")
    n_presented = src_index.numel()
    if n_presented and frames.shape[0] and (frames.shape[1] == 0 or frames.shape[2] == 0):
        # torch's resize (reference) or the boxes check (C++, about boxes the caller never gave) said it otherwise
        raise ValueError(f"frames must have a positive height and width, got shape {tuple(frames.shape)}")
    for name, t in (("src_index", src_index), ("boxes", boxes)):
        if isinstance(t, torch.Tensor) and t.device.type != "cpu" and t.device != frames.device:
            raise ValueError(f"{name} must be on the CPU or on frames' device ({frames.device}), got {t.device}")
    if boxes is not None:
        if not isinstance(boxes, torch.Tensor) or boxes.shape != (n_presented, 4):
            shape = tuple(boxes.shape) if isinstance(boxes, torch.Tensor) else type(boxes).__name__
            raise ValueError(
                f"boxes must be an integer tensor [F, 4] with F = len(src_index) = {n_presented}, got {shape}"
            )
        if boxes.dtype.is_floating_point or boxes.dtype == torch.bool:
            raise ValueError(f"boxes must be an integer tensor (x0, y0, x1, y1), got dtype {boxes.dtype}")
    patch_size = check_int("patch_size", patch_size, min_value=1)
    temporal_patch_size = check_int("temporal_patch_size", temporal_patch_size, min_value=1)
    merge_size = check_int("merge_size", merge_size, min_value=1)
    frame_repeat = check_int("frame_repeat", frame_repeat, min_value=1)
    size = check_int_pair("size", size, "(out_h, out_w)")
    if not isinstance(layout, str) or layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    factor = patch_size * merge_size
    if layout == "qwen2_vl":
        if resize is not None:
            raise ValueError("resize applies to layout='fchw' only (the Qwen2-VL layout resizes straight to size)")
        if size[0] <= 0 or size[1] <= 0 or size[0] % factor or size[1] % factor:
            raise ValueError(
                f"size {size} must be positive multiples of patch_size * merge_size = {factor} (nearest: "
                f"{nearest_qwen2_vl_size(size, factor)}); use qwen2_vl_target_size() to pick one"
            )
    else:
        if size[0] <= 0 or size[1] <= 0:
            raise ValueError(f"size must be positive, got {size}")
        if resize is not None:
            resize = check_int_pair("resize", resize)
            if resize[0] < size[0] or resize[1] < size[1]:
                raise ValueError(
                    f"resize {resize} must be at least size {size} (size is a centre crop "
                    "of the resized frame); use llava_target_size() to pick both"
                )
    # sizes whose products overflow the kernels' int64 arithmetic (absurd, but they must not reach it)
    h_out, w_out = resize if layout == "fchw" and resize is not None else size
    frames_out = n_presented * frame_repeat + temporal_patch_size
    for what, v in (
        ("frames out (len(src_index) * frame_repeat, padded)", frames_out),
        ("values per frame out (3 * out_h * out_w)", 3 * h_out * w_out),
        ("values per patch (3 * temporal_patch_size * patch_size**2)", 3 * temporal_patch_size * patch_size**2),
        ("output values", frames_out * 3 * h_out * w_out * temporal_patch_size),
    ):
        if v >= 2**62:
            raise ValueError(
                f"{what} = {v} is too large to address: check frame_repeat, temporal_patch_size, patch_size and size"
            )
    try:
        values = [float(v) for v in mean] + [float(v) for v in std]
    except (TypeError, ValueError):
        values = None
    if values is None or len(mean) != 3 or len(std) != 3 or not all(map(math.isfinite, values)) or min(values[3:]) <= 0:
        raise ValueError(f"mean and std must be 3 finite numbers each, std positive; got mean={mean!r}, std={std!r}")
    if dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"dtype must be torch.float32 or torch.bfloat16, got {dtype}")
    if n_presented and not any(isinstance(t, torch.Tensor) and t.is_meta for t in (frames, src_index, boxes)):
        # (on the meta device only shapes exist: fragment_pack gives outputs of the right shapes, unchecked values)
        n, h, w = frames.shape[0], frames.shape[1], frames.shape[2]
        lo, hi = int(src_index.min()), int(src_index.max())
        if lo < 0 or hi >= n:
            bad = lo if lo < 0 else hi
            raise ValueError(f"src_index holds {bad}, out of range for {n} frames")
        if boxes is not None:
            b = boxes.to("cpu", torch.int64)
            ok = (
                (b[:, 0] >= 0)
                & (b[:, 0] < b[:, 2])
                & (b[:, 2] <= w)
                & (b[:, 1] >= 0)
                & (b[:, 1] < b[:, 3])
                & (b[:, 3] <= h)
            )
            if not bool(ok.all()):
                i = int((~ok).nonzero()[0, 0])
                raise ValueError(
                    f"boxes[{i}] = {tuple(b[i].tolist())} is empty or outside the {w}x{h} frame "
                    "(need 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H)"
                )
    return size, resize, patch_size, temporal_patch_size, merge_size, frame_repeat


def _fragment_pack_reference(
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
):
    """Pure PyTorch: crop, torch's uint8 antialiased bicubic resize, normalize, repeat, patchify."""
    p, tp, m = patch_size, temporal_patch_size, merge_size
    n_presented = src_index.numel()
    gh, gw = out_h // p, out_w // p
    if n_presented == 0:
        return torch.empty(0, 3 * tp * p * p, dtype=dtype, device=frames.device)
    resized = []
    for f in range(n_presented):
        x0, y0, x1, y1 = (int(v) for v in boxes[f].tolist())
        crop = frames[int(src_index[f]), y0:y1, x0:x1].permute(2, 0, 1).unsqueeze(0).cpu().contiguous()
        resized.append(F.interpolate(crop, size=(out_h, out_w), mode="bicubic", antialias=True, align_corners=False))
    video = torch.cat(resized).repeat_interleave(frame_repeat, dim=0)  # [F*r, 3, out_h, out_w] uint8
    if pad := -video.shape[0] % tp:
        video = torch.cat([video, video[-1:].expand(pad, -1, -1, -1)])
    # Normalization as transformers' fused rescale+normalize: (x - mean/rescale) / (std/rescale).
    mean255 = torch.tensor(mean, dtype=torch.float32) * (1.0 / (1 / 255))
    std255 = torch.tensor(std, dtype=torch.float32) * (1.0 / (1 / 255))
    x = (video.float() - mean255.view(1, 3, 1, 1)) / std255.view(1, 3, 1, 1)
    gt = x.shape[0] // tp
    x = x.view(gt, tp, 3, gh // m, m, p, gw // m, m, p)
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)  # [gt, gh/m, gw/m, m, m, C, tp, p, p]
    return x.reshape(gt * gh * gw, 3 * tp * p * p).to(dtype=dtype, device=frames.device)


def _fragment_pack_fchw_reference(
    frames, src_index, boxes, resize, offset, size, mean, std, frame_repeat, dtype=torch.float32
):
    """Pure PyTorch, LLaVA layout: crop, resize (torch's uint8 antialiased bicubic), centre window, normalize, repeat:
    [F * frame_repeat, 3, out_h, out_w]."""
    (rh, rw), (cy, cx), (oh, ow) = resize, offset, size
    n_presented = src_index.numel()
    if n_presented == 0:
        return torch.empty(0, 3, oh, ow, dtype=dtype, device=frames.device)
    out = []
    for f in range(n_presented):
        x0, y0, x1, y1 = (int(v) for v in boxes[f].tolist())
        crop = frames[int(src_index[f]), y0:y1, x0:x1].permute(2, 0, 1).unsqueeze(0).cpu().contiguous()
        r = F.interpolate(crop, size=(rh, rw), mode="bicubic", antialias=True, align_corners=False)
        out.append(r[:, :, cy : cy + oh, cx : cx + ow])
    video = torch.cat(out).repeat_interleave(frame_repeat, dim=0)  # [F*r, 3, oh, ow] uint8
    mean255 = torch.tensor(mean, dtype=torch.float32) * (1.0 / (1 / 255))
    std255 = torch.tensor(std, dtype=torch.float32) * (1.0 / (1 / 255))
    x = (video.float() - mean255.view(1, 3, 1, 1)) / std255.view(1, 3, 1, 1)
    return x.to(dtype=dtype, device=frames.device)
