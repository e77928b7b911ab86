"""``fragment_pack``: decoded frames + a plan -> the model's pixel input, in one fused op.

Contract (Qwen2-VL layout; ``layout="fchw"`` gives LLaVA-OneVision / LLaVA-NeXT-Video's ``[F, 3, H, W]``, see
:func:`fragment_pack`):

- ``frames``: uint8 ``[N, H, W, 3]`` RGB, CPU or CUDA, any strides.
- ``src_index``: int64 ``[F]``: for each presented frame, which of the N frames it shows (any order,
  repeats allowed: this is how tasks reorder frames).
- ``boxes``: int64 ``[F, 4]`` crop boxes ``(x0, y0, x1, y1)`` in source pixels, end exclusive, or None
  for whole frames.
- ``size``: ``(out_h, out_w)``, multiples of ``patch_size * merge_size`` (28 for Qwen2-VL); pick it
  with :func:`qwen2_vl_target_size`.

Each crop is resized with antialiased bicubic interpolation exactly as torch's uint8 resize does it
(the resize transformers' ``Qwen2VLVideoProcessor`` runs through torchvision), normalized with
``mean``/``std``, repeated ``frame_repeat`` times (so with the default 2 one presented frame is one
temporal token group) and padded to a multiple of ``temporal_patch_size`` by repeating the last frame,
then patchified:

- ``pixel_values_videos``: ``[grid_t * gh * gw, 3 * temporal_patch_size * patch_size**2]``
- ``video_grid_thw``: int64 ``[1, 3]`` = ``(grid_t, out_h // patch_size, out_w // patch_size)``

Backends (``backend=`` or ``SF2T_BACKEND``): ``reference`` (pure PyTorch, this file), ``cpp`` (C++ CPU
kernel, threaded), ``cuda`` (CUDA kernel), ``triton`` (``sf2t.kernels.fragment_pack``; CUDA tensors, or
CPU tensors under ``TRITON_INTERPRET=1``). Compiled kernels and the reference give identical uint8
values after the resize; the normalized floats agree to float32 rounding.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sf2t import _ext
from sf2t._checks import check_backend, check_int, check_int_pair

QWEN2_VL_MEAN = (0.48145466, 0.4578275, 0.40821073)
QWEN2_VL_STD = (0.26862954, 0.26130258, 0.27577711)
BACKENDS = ("reference", "cpp", "cuda", "triton")
LAYOUTS = ("qwen2_vl", "fchw")
# Luma weights (Kr, Kb) of the two matrices hardware decoders use.
_YUV_MATRICES = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}


@dataclass(frozen=True)
class NV12:
    """Frames as hardware decoders (NVDEC) produce them: the Y plane uint8 ``[N, H, W]`` and the interleaved chroma
    ``uv`` uint8 ``[N, H/2, W/2, 2]`` (U then V; H and W even), with ``matrix`` ``"bt601"`` or ``"bt709"`` and
    ``full_range`` (else limited/"TV" range: Y in 16-235, UV in 16-240).

    Conversion to RGB (``to_rgb``, and inside the C++ kernel, in the same pass): nearest chroma (one UV sample per
    2x2 luma block) and Q16 fixed-point constants from the matrix's (Kr, Kb), rounded and clamped to uint8, so
    every backend sees the same RGB; against a float conversion the difference is at most one uint8 step."""

    y: torch.Tensor
    uv: torch.Tensor
    matrix: str = "bt709"
    full_range: bool = False

    def __post_init__(self):
        y, uv = self.y, self.uv
        if not isinstance(y, torch.Tensor) or y.dtype != torch.uint8 or y.dim() != 3:
            raise ValueError(
                f"NV12 y must be a uint8 tensor [N, H, W], got {getattr(y, 'dtype', type(y))} "
                f"{tuple(getattr(y, 'shape', ()))}"
            )
        n, h, w = y.shape
        if h % 2 or w % 2 or h == 0 or w == 0:
            raise ValueError(f"NV12 needs a positive, even height and width, got y of {h}x{w}")
        if not isinstance(uv, torch.Tensor) or uv.dtype != torch.uint8 or tuple(uv.shape) != (n, h // 2, w // 2, 2):
            raise ValueError(
                f"NV12 uv must be uint8 [N, H/2, W/2, 2] = [{n}, {h // 2}, {w // 2}, 2], got "
                f"{getattr(uv, 'dtype', type(uv))} {tuple(getattr(uv, 'shape', ()))}"
            )
        if uv.device != y.device:
            raise ValueError(f"NV12 y and uv must be on one device, got {y.device} and {uv.device}")
        if not isinstance(self.matrix, str) or self.matrix not in _YUV_MATRICES:
            raise ValueError(f"NV12 matrix must be one of {sorted(_YUV_MATRICES)}, got {self.matrix!r}")
        if not isinstance(self.full_range, (bool, np.bool_)):
            # (a string such as "false" was true, and 0/1 an easy slip for a flag: the range must be said plainly)
            raise ValueError(
                f"NV12 full_range must be a bool (True: full/PC range, False: limited/TV range), got "
                f"{type(self.full_range).__name__} {self.full_range!r}"
            )

    @property
    def device(self) -> torch.device:
        return self.y.device

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (*self.y.shape, 3)

    def coefficients(self) -> list[int]:
        """Q16 (ky, kr, kgu, kgv, kb) and the luma offset: R = ky(Y-o) + kr(V-128), G = ky(Y-o) - kgu(U-128) -
        kgv(V-128), B = ky(Y-o) + kb(U-128), then (x + 2^15) >> 16."""
        kr, kb = _YUV_MATRICES[self.matrix]
        kg = 1.0 - kr - kb
        ys, cs, off = (1.0, 1.0, 0) if self.full_range else (255.0 / 219.0, 255.0 / 224.0, 16)
        q = 1 << 16
        return [
            round(ys * q),
            round(2 * (1 - kr) * cs * q),
            round(2 * kb * (1 - kb) / kg * cs * q),
            round(2 * kr * (1 - kr) / kg * cs * q),
            round(2 * (1 - kb) * cs * q),
            off,
        ]

    def to_rgb(self) -> torch.Tensor:
        """uint8 [N, H, W, 3] RGB, the reference conversion (integer arithmetic, as the kernels do it)."""
        ky, kr, kgu, kgv, kb, off = self.coefficients()
        c = self.y.to(torch.int32) - off  # [N, H, W]
        uv = self.uv.to(torch.int32).repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)  # [N, H, W, 2]
        d, e = uv[..., 0] - 128, uv[..., 1] - 128
        half = 1 << 15
        r = (ky * c + kr * e + half) >> 16
        g = (ky * c - kgu * d - kgv * e + half) >> 16
        b = (ky * c + kb * d + half) >> 16
        return torch.stack([r, g, b], dim=-1).clamp_(0, 255).to(torch.uint8)


@dataclass(frozen=True)
class YUV420:
    """8-bit 4:2:0 frames as CPU decoders produce them (yuv420p, yuvj420p), kept planar so that the RGB conversion
    runs inside ``fragment_pack`` for the frames a sample shows, not for every decoded frame: ``data`` uint8
    ``[N, H*W + 2*(H/2)*(W/2)]``, each row one frame's Y plane, then its U plane, then its V plane (rows packed);
    H and W even; ``coeffs``: libswscale's six constants for the stream's colour matrix and range
    (:func:`sf2t.video.convert.swscale_coefficients`).

    The RGB (``to_rgb``, and the C++ kernel's, in the same pass) is libswscale's fixed-point arithmetic: bit for bit
    what FFmpeg, PyAV and torchcodec return for these frames (the pyav backend checks that per stream format before
    it hands out YUV420 windows). The C++ CPU kernel reads it directly; other backends convert it first."""

    data: torch.Tensor
    height: int
    width: int
    coeffs: tuple[int, ...]

    def __post_init__(self):
        d = self.data
        h, w = check_int("YUV420 height", self.height), check_int("YUV420 width", self.width)
        object.__setattr__(self, "height", h)  # (a numpy integer as a Python int: shape, messages, the kernels)
        object.__setattr__(self, "width", w)
        if h <= 0 or w <= 0 or h % 2 or w % 2:
            raise ValueError(f"YUV420 needs a positive, even height and width, got {w}x{h}")
        if not isinstance(d, torch.Tensor) or d.dtype != torch.uint8 or d.dim() != 2 or d.shape[1] != h * w * 3 // 2:
            raise ValueError(
                f"YUV420 data must be a uint8 tensor [N, {h * w * 3 // 2}] (Y, U, V planes of {w}x{h} frames), got "
                f"{getattr(d, 'dtype', type(d).__name__)} {tuple(getattr(d, 'shape', ()))}"
            )
        if d.stride(1) != 1:
            raise ValueError(f"YUV420 data's rows must be contiguous, got strides {d.stride()}")
        if len(self.coeffs) != 6 or not all(-32768 <= int(c) <= 32767 for c in self.coeffs):
            raise ValueError(f"YUV420 coeffs must be libswscale's 6 16-bit constants, got {self.coeffs!r}")

    @classmethod
    def empty(cls, n: int, height: int, width: int, coeffs, device="cpu") -> "YUV420":
        return cls(
            torch.empty(n, height * width * 3 // 2, dtype=torch.uint8, device=device), height, width, tuple(coeffs)
        )

    @property
    def device(self) -> torch.device:
        return self.data.device

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.data.shape[0], self.height, self.width, 3)

    def __len__(self) -> int:
        return self.data.shape[0]

    def _plane(self, offset: int, h: int, w: int) -> torch.Tensor:
        d = self.data
        return d.as_strided((d.shape[0], h, w), (d.stride(0), w, 1), d.storage_offset() + offset)

    @property
    def y(self) -> torch.Tensor:
        """uint8 [N, H, W] luma (a view)."""
        return self._plane(0, self.height, self.width)

    @property
    def u(self) -> torch.Tensor:
        """uint8 [N, H/2, W/2] (a view)."""
        return self._plane(self.height * self.width, self.height // 2, self.width // 2)

    @property
    def v(self) -> torch.Tensor:
        """uint8 [N, H/2, W/2] (a view)."""
        return self._plane(self.height * self.width * 5 // 4, self.height // 2, self.width // 2)

    @property
    def uv(self) -> torch.Tensor:
        """The chroma as the kernels read it: uint8 [N, H/2, W/2, 2] (U, V), a strided view (V a plane after U)."""
        d, hw = self.data, self.height * self.width
        ch, cw = self.height // 2, self.width // 2
        return d.as_strided((d.shape[0], ch, cw, 2), (d.stride(0), cw, 1, ch * cw), d.storage_offset() + hw)

    def coefficients(self) -> list[int]:
        """The kernels' ``yuv`` argument: ``[1, cy, cvr, cub, cvg, cug, yo]`` (1: libswscale's arithmetic)."""
        return [1, *(int(c) for c in self.coeffs)]

    def index_select(self, dim: int, index: torch.Tensor) -> "YUV420":
        if dim != 0:
            raise ValueError(f"YUV420 selects frames (dim 0) only, got dim {dim}")
        return YUV420(self.data.index_select(0, index.to(self.device)), self.height, self.width, self.coeffs)

    def to_rgb(self) -> torch.Tensor:
        """uint8 [N, H, W, 3] RGB in libswscale's arithmetic (:func:`sf2t.video.convert.yuv420_to_rgb`)."""
        from sf2t.video.convert import yuv420_to_rgb

        out = torch.empty(len(self), self.height, self.width, 3, dtype=torch.uint8, device=self.device)
        y, u, v = self.y, self.u, self.v
        for i in range(len(self)):
            yuv420_to_rgb(y[i], u[i], v[i], self.coeffs, out=out[i])
        return out


QWEN2_VL_FACTOR = 28  # a Qwen2-VL frame side: whole merged patches (patch_size 14 x merge_size 2)


def nearest_qwen2_vl_size(size: Sequence[int], factor: int = QWEN2_VL_FACTOR) -> tuple[int, int] | None:
    """None where ``size`` (h, w) is positive multiples of ``factor``; else the (h, w) nearest to it that is (each
    side rounded to the nearest multiple, at least ``factor``): the size a message suggests instead (commands name
    their own option, e.g. ``--size 250 450: use --size 252 448``)."""
    if all(s > 0 and s % factor == 0 for s in size):
        return None
    return tuple(max(factor, (int(s) + factor // 2) // factor * factor) for s in size)


# The most pixels a frame Qwen2-VL's processors make with the checkpoints' own preprocessor_config (max_pixels
# 28 * 28 * 16384: 16,384 merged visual tokens a frame); a larger size is refused (28000 x 28000, 9.4 GB a frame as
# packed float32, ran out of memory)
QWEN2_VL_SIZE_LIMIT = 28 * 28 * 16384
QWEN2_VL_LARGEST_SQUARE = (3584, 3584)  # 128 x 128 of 28: exactly the limit


def qwen2_vl_size_message(size: Sequence[int], given: str, use: str) -> str | None:
    """None where ``size`` (h, w) is positive multiples of 28 of at most ``QWEN2_VL_SIZE_LIMIT`` pixels; else the one
    message every command gives for it: ``given`` (how the user wrote it, e.g. ``--size 250 450``), the rule and its
    reason, and ``use`` (e.g. ``--size {h} {w}``) filled with the size to use instead: :func:`nearest_qwen2_vl_size`,
    or for a larger size the largest of its aspect ratio (:func:`qwen2_vl_target_size`) within the limit, the most
    Qwen2-VL's processors make with the checkpoints' own ``max_pixels``."""
    near = nearest_qwen2_vl_size(size)
    h, w = near or size
    if h * w > QWEN2_VL_SIZE_LIMIT:
        try:
            fit = qwen2_vl_target_size(int(h), int(w), max_pixels=QWEN2_VL_SIZE_LIMIT)
        except ValueError:  # (an aspect ratio above 200)
            fit = QWEN2_VL_LARGEST_SQUARE
        sq = QWEN2_VL_LARGEST_SQUARE
        as28 = "" if near is None else f" (as multiples of 28: {h} x {w})"
        return (
            f"{given}: frames too large for Qwen2-VL: {h * w:,} pixels a frame{as28}, more than its processors make "
            f"(the checkpoints' max_pixels 28*28*16384 = {QWEN2_VL_SIZE_LIMIT:,}; {h * w * 12:,} bytes a frame packed "
            "as float32); use " + use.format(h=fit[0], w=fit[1]) + f" (the largest square: {sq[0]} x {sq[1]})"
        )
    if near is None:
        return None
    return f"{given}: H and W must be positive multiples of 28 for Qwen2-VL (patch 14 x merge 2); use " + use.format(
        h=near[0], w=near[1]
    )


def qwen2_vl_target_size(
    height: int, width: int, *, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 14 * 14 * 4 * 1280
) -> tuple[int, int]:
    """Qwen2-VL's ``smart_resize``: the (h, w) closest to the input's aspect ratio whose sides are
    multiples of ``factor`` and whose area lies in ``[min_pixels, max_pixels]``. Every argument is an int (numpy
    integers too)."""
    height, width = check_int("height", height), check_int("width", width)
    factor = check_int("factor", factor, min_value=1)
    min_pixels = check_int("min_pixels", min_pixels, min_value=0)
    max_pixels = check_int("max_pixels", max_pixels, min_value=1)
    if height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio of {height}x{width} is above 200, which Qwen2-VL does not accept")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def llava_target_size(
    height: int,
    width: int,
    *,
    size: tuple[int, int] | None = None,
    shortest_edge: int | None = None,
    crop: tuple[int, int] | None = None,
) -> tuple[tuple[int, int], tuple[int, int]]:
    """(resize (h, w), output (h, w)) the LLaVA video processors' way, for ``fragment_pack(layout="fchw")``:

    - ``size=(h, w)``: resize to exactly that (LLaVA-OneVision: 384x384), no crop unless ``crop`` is given;
    - ``shortest_edge=s``: the short side to ``s``, the long side to ``int(s * long / short)`` (transformers'
      ``get_resize_output_image_size``), then a centre ``crop`` (LLaVA-NeXT-Video: 224, crop 224x224).

    Sizes are ints (numpy integers too); ``size`` and ``crop`` pairs of them.
    """
    height, width = check_int("height", height), check_int("width", width)
    if height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive, got {height}x{width}")
    if (size is None) == (shortest_edge is None):
        raise ValueError("give exactly one of size=(h, w) or shortest_edge=s")
    if size is not None:
        resize = check_int_pair("size", size)
        if min(resize) <= 0:
            raise ValueError(f"size must be positive, got {resize}")
    else:
        shortest_edge = check_int("shortest_edge", shortest_edge, min_value=1)
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = shortest_edge, int(shortest_edge * long / short)
        resize = (new_long, new_short) if width <= height else (new_short, new_long)
    out = resize if crop is None else check_int_pair("crop", crop)
    if out[0] > resize[0] or out[1] > resize[1] or min(out) <= 0:
        raise ValueError(f"crop {out} must be positive and fit the resized {resize}")
    return resize, out


def _center_offset(resize: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """The processors' centre-crop offsets, (in - out) // 2 (measured: transformers' LLaVA-NeXT-Video video processor
    crops 224 of a 527-wide resize from x = 151, not torchvision's round(151.5) = 152)."""
    return (resize[0] - size[0]) // 2, (resize[1] - size[1]) // 2


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


@functools.lru_cache(maxsize=64)
def _grid_on(t: int, h: int, w: int, device: torch.device) -> torch.Tensor:
    return torch.tensor([[t, h, w]], dtype=torch.int64, device=device)


def _grid(t: int, h: int, w: int, device: torch.device) -> torch.Tensor:
    """``video_grid_thw`` on ``device``: a copy of a cached tensor (a fresh host -> GPU copy from pageable memory
    would wait for the stream's queued kernels and stall a caller that pipelines)."""
    if device.type == "cpu":
        return torch.tensor([[t, h, w]], dtype=torch.int64)
    return _grid_on(t, h, w, device).clone()


@functools.lru_cache(maxsize=256)
def _axis_table(in_size: int, out_size: int, begin: int, count: int) -> tuple[torch.Tensor, int, int]:
    """(int32 [start[count], size[count], weights[count * ksize]], ksize, precision): outputs [begin, begin +
    count) of the resize in_size -> out_size, as the kernels' weight table reads them."""
    aw = _axis_weights(in_size, out_size)
    if (begin, count) != (0, out_size):
        aw = _slice_weights(aw, begin, count)
    ksize, precision, starts, sizes, weights = aw
    return torch.tensor(starts + sizes + weights, dtype=torch.int32), ksize, precision


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


def choose_backend(device: torch.device, backend: str | None = None) -> str:
    """The backend fragment_pack runs on for frames on ``device``: ``backend``, else $SF2T_BACKEND,
    else the compiled kernel for that device when built, else the reference."""
    backend = check_backend(backend, BACKENDS) or os.environ.get("SF2T_BACKEND") or None
    if backend is not None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        return backend
    if device.type == "cuda":
        if _ext.has_cuda_kernels():
            return "cuda"
        return "triton" if triton_available("cuda") else "reference"
    return "cpp" if _ext.is_loaded() else "reference"


def available_backends(device: str = "cpu") -> list[str]:
    """Backends that can run here for frames on ``device`` ("cpu" or "cuda")."""
    out = ["reference"]
    if device == "cpu" and _ext.is_loaded():
        out.append("cpp")
    if device == "cuda" and _ext.has_cuda_kernels():
        out.append("cuda")
    if triton_available(device):
        out.append("triton")
    return out


def fragment_pack(
    frames: torch.Tensor,
    src_index: torch.Tensor,
    boxes: torch.Tensor | None,
    size: tuple[int, int],
    *,
    mean: Sequence[float] = QWEN2_VL_MEAN,
    std: Sequence[float] = QWEN2_VL_STD,
    patch_size: int = 14,
    temporal_patch_size: int = 2,
    merge_size: int = 2,
    frame_repeat: int = 2,
    dtype: torch.dtype = torch.float32,
    backend: str | None = None,
    layout: str = "qwen2_vl",
    resize: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Gather + crop + resize + normalize + patchify (see the module docstring for shapes).

    ``frames`` may be :class:`NV12` (a hardware decoder's output): the compiled (C++, CUDA) and Triton kernels
    convert it in the same pass; the reference converts it first (``NV12.to_rgb``). Or :class:`YUV420` (a CPU
    decoder's planes, the pyav backend's ``output="yuv420"``): the C++ kernel converts it in the same pass, in
    libswscale's arithmetic; other backends convert it first (``YUV420.to_rgb``).

    Returns ``(pixel_values_videos, video_grid_thw)`` on ``frames.device``; frames on the ``meta`` device give
    outputs of the right shapes and dtype (no data: for planning memory or tracing shapes), the values unchecked.
    ``layout="fchw"`` (LLaVA-OneVision, LLaVA-NeXT-Video; pick the sizes with :func:`llava_target_size`): each crop
    resized to ``resize`` (default: ``size``), the centre ``size`` window kept as the processors' centre crop does,
    normalized, each presented frame ``frame_repeat`` times (LLaVA: 1): ``([F * frame_repeat, 3, size[0], size[1]],
    None)``; the patch arguments do not apply.

    ``size``, ``resize`` (pairs), ``patch_size``, ``temporal_patch_size``, ``merge_size`` and ``frame_repeat`` take
    Python ints or numpy integers; a bool, float, string or tensor is refused (ValueError naming the argument).
    """
    nv12 = frames if isinstance(frames, (NV12, YUV420)) else None
    if nv12 is not None:
        # the compiled and Triton kernels read NV12 themselves, the C++ kernel YUV420 too; the others convert first
        which = choose_backend(nv12.device, backend)
        fused = which == "cpp" or (which != "reference" and isinstance(nv12, NV12))
        frames = nv12.y.unsqueeze(-1).expand(-1, -1, -1, 3) if fused else nv12.to_rgb()  # a view for the checks
        if not fused:
            nv12 = None
    if isinstance(frames, torch.Tensor) and frames.is_cuda and choose_backend(frames.device, backend) != "reference":
        # the CUDA and Triton kernels plan on the host: bring the plan back once here (a stream sync each), not
        # once per check below and again in the op
        if isinstance(src_index, torch.Tensor) and src_index.device.type == "cuda":
            src_index = src_index.cpu()
        if isinstance(boxes, torch.Tensor) and boxes.device.type == "cuda":
            boxes = boxes.cpu()
    size, resize, patch_size, temporal_patch_size, merge_size, frame_repeat = _check_args(
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
        layout,
        resize,
    )
    out_h, out_w = size
    n_presented = src_index.numel()
    src_index = src_index.to(torch.int64)
    if boxes is None:
        boxes = torch.tensor([[0, 0, frames.shape[2], frames.shape[1]]], dtype=torch.int64).expand(n_presented, 4)
    boxes = boxes.to(torch.int64).contiguous()
    meta = frames.is_meta  # shapes only (no data to resize): outputs of the right shapes and dtype, on meta
    if layout == "fchw":
        if meta:
            return frames.new_empty((n_presented * frame_repeat, 3, out_h, out_w), dtype=dtype), None
        return _fragment_pack_fchw(
            frames, src_index, boxes, resize, (out_h, out_w), mean, std, frame_repeat, dtype, backend, nv12
        ), None
    total = -(-n_presented * frame_repeat // temporal_patch_size) * temporal_patch_size
    grid = _grid(total // temporal_patch_size, out_h // patch_size, out_w // patch_size, frames.device)
    if meta:
        shape = _qwen_shape(n_presented, out_h, out_w, patch_size, temporal_patch_size, frame_repeat)
        return frames.new_empty(shape, dtype=dtype), grid
    which = choose_backend(frames.device, backend)
    args = (
        out_h,
        out_w,
        [float(v) for v in mean],
        [float(v) for v in std],
        patch_size,
        temporal_patch_size,
        merge_size,
        frame_repeat,
    )
    if which == "reference":
        return _fragment_pack_reference(frames, src_index, boxes, *args, dtype=dtype), grid
    _check_runnable(which, frames.device)
    if which == "triton":
        return _fragment_pack_triton(frames, src_index, boxes, *args, dtype=dtype, nv12=nv12), grid
    if nv12 is not None:  # the Y plane, its chroma and the conversion constants: converted in the same pass
        out = torch.ops.sf2t.fragment_pack(nv12.y, src_index, boxes, *args, dtype, nv12.uv, nv12.coefficients())

    else:
        out = torch.ops.sf2t.fragment_pack(frames, src_index, boxes, *args, dtype)
    return out, grid


def fragment_pack_many(
    frames,
    src_indices: Sequence[torch.Tensor],
    boxes: Sequence[torch.Tensor | None],
    size: tuple[int, int],
    *,
    mean: Sequence[float] = QWEN2_VL_MEAN,
    std: Sequence[float] = QWEN2_VL_STD,
    patch_size: int = 14,
    temporal_patch_size: int = 2,
    merge_size: int = 2,
    frame_repeat: int = 2,
    dtype: torch.dtype = torch.float32,
    backend: str | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The samples of one decoded window: ``[fragment_pack(frames, src_indices[k], boxes[k], size, ...) for k]``
    (Qwen2-VL layout), the same values. The C++ kernel resizes each distinct (source frame, crop box) once and
    writes it into every sample that shows it: a window's samples overlap (4 plain 16-frame fragments in a 64-frame
    window show ~46 distinct frames among their 64), so a window is packed with ~30 % less resizing than sample by
    sample. Other backends (and an extension built before this op) pack sample by sample."""
    if len(src_indices) != len(boxes):
        raise ValueError(f"one boxes entry per src_index: got {len(src_indices)} src_indices and {len(boxes)} boxes")
    kw = dict(
        mean=mean,
        std=std,
        patch_size=patch_size,
        temporal_patch_size=temporal_patch_size,
        merge_size=merge_size,
        frame_repeat=frame_repeat,
        dtype=dtype,
    )
    if not isinstance(frames, (torch.Tensor, NV12, YUV420)):
        raise TypeError(f"frames must be a torch.Tensor, NV12 or YUV420, got {type(frames).__name__}")
    device = frames.device
    if not src_indices or choose_backend(device, backend) != "cpp" or not _has_multi():
        return [fragment_pack(frames, i, b, size, backend=backend, **kw) for i, b in zip(src_indices, boxes)]
    planes = frames if isinstance(frames, (NV12, YUV420)) else None
    view = planes.y.unsqueeze(-1).expand(-1, -1, -1, 3) if planes is not None else frames  # a view for the checks
    idx, bxs = [], []
    for i, b in zip(src_indices, boxes):
        size, _, patch_size, temporal_patch_size, merge_size, frame_repeat = _check_args(
            view,
            i,
            b,
            size,
            mean,
            std,
            patch_size,
            temporal_patch_size,
            merge_size,
            frame_repeat,
            dtype,
            "qwen2_vl",
            None,
        )
        i = i.to(torch.int64)
        if b is None:
            b = torch.tensor([[0, 0, view.shape[2], view.shape[1]]], dtype=torch.int64).expand(i.numel(), 4)
        idx.append(i)
        bxs.append(b.to(torch.int64).contiguous())
    out_h, out_w = size
    args = (
        out_h,
        out_w,
        [float(v) for v in mean],
        [float(v) for v in std],
        patch_size,
        temporal_patch_size,
        merge_size,
        frame_repeat,
        dtype,
    )
    if planes is not None:
        outs = torch.ops.sf2t.fragment_pack_multi(planes.y, idx, bxs, *args, planes.uv, planes.coefficients())
    else:
        outs = torch.ops.sf2t.fragment_pack_multi(view, idx, bxs, *args)
    grids = []
    for i in idx:
        total = -(-i.numel() * frame_repeat // temporal_patch_size) * temporal_patch_size
        grids.append(_grid(total // temporal_patch_size, out_h // patch_size, out_w // patch_size, device))
    return list(zip(outs, grids))


@functools.lru_cache(maxsize=1)
def _has_multi() -> bool:
    """Whether the loaded extension has the fragment_pack_multi op (one built before it does not)."""
    if not _ext.is_loaded():
        return False
    try:
        torch.ops.sf2t.fragment_pack_multi  # noqa: B018
    except (AttributeError, RuntimeError):
        return False
    return True


def _check_runnable(which: str, device: torch.device) -> None:
    """A clear error when backend ``which`` cannot run for frames on ``device`` (a wrong device first: that is the
    caller's error whatever the build; then a missing build)."""
    if which == "triton":
        if not triton_available(device.type):
            raise ValueError(
                f"backend 'triton' cannot run on frames on {device}: it needs a CUDA device, "
                "or TRITON_INTERPRET=1 set before triton is imported for CPU tensors"
            )
    elif which == "cuda":
        if device.type != "cuda":
            raise ValueError(f"backend 'cuda' needs frames on a CUDA device, got frames on {device}")
        _ext.require("fragment_pack backend 'cuda'", cuda=True)
    elif which == "cpp":
        if device.type != "cpu":
            raise ValueError(f"backend 'cpp' needs frames on the CPU, got frames on {device}")
        _ext.require("fragment_pack backend 'cpp'")


def _fragment_pack_fchw(frames, src_index, boxes, resize, size, mean, std, frame_repeat, dtype, backend, nv12=None):
    resize = (int(resize[0]), int(resize[1])) if resize is not None else size
    offset = _center_offset(resize, size)
    which = choose_backend(frames.device, backend)
    if which == "reference":
        return _fragment_pack_fchw_reference(
            frames, src_index, boxes, resize, offset, size, mean, std, frame_repeat, dtype
        )
    _check_runnable(which, frames.device)
    if which == "triton":
        return _fragment_pack_triton(
            frames,
            src_index,
            boxes,
            size[0],
            size[1],
            mean,
            std,
            1,
            1,
            1,
            frame_repeat,
            dtype=dtype,
            window=(resize, offset),
            nv12=nv12,
        )
    if nv12 is not None:
        frames = nv12.y
    return torch.ops.sf2t.fragment_pack_fchw(
        frames,
        src_index,
        boxes,
        resize[0],
        resize[1],
        offset[0],
        offset[1],
        size[0],
        size[1],
        [float(v) for v in mean],
        [float(v) for v in std],
        frame_repeat,
        dtype,
        None if nv12 is None else nv12.uv,
        None if nv12 is None else nv12.coefficients(),
    )


def _qwen_shape(n, out_h, out_w, patch_size, temporal_patch_size, frame_repeat) -> tuple:
    """The Qwen2-VL layout's [rows, cols] for ``n`` presented frames (each ``frame_repeat`` times, the last
    temporal patch padded)."""
    groups = (n * frame_repeat + temporal_patch_size - 1) // temporal_patch_size
    return groups * (out_h // patch_size) * (out_w // patch_size), 3 * temporal_patch_size * patch_size * patch_size


def _register_fake() -> None:
    if not _ext.is_loaded():
        return

    @torch.library.register_fake("sf2t::fragment_pack")
    def _(
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
        dtype=None,
        uv=None,
        yuv=None,
    ):
        torch._check(frames.dtype == torch.uint8, lambda: "frames must be uint8")
        torch._check(frames.dim() == (3 if uv is not None else 4), lambda: "frames must be [N, H, W, 3] (Y [N, H, W])")
        shape = _qwen_shape(src_index.shape[0], out_h, out_w, patch_size, temporal_patch_size, frame_repeat)
        return frames.new_empty(shape, dtype=dtype or torch.float32)

    if _has_multi():

        @torch.library.register_fake("sf2t::fragment_pack_multi")
        def _(
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
            dtype=None,
            uv=None,
            yuv=None,
        ):
            torch._check(frames.dtype == torch.uint8, lambda: "frames must be uint8")
            return [
                frames.new_empty(
                    _qwen_shape(i.shape[0], out_h, out_w, patch_size, temporal_patch_size, frame_repeat),
                    dtype=dtype or torch.float32,
                )
                for i in src_index
            ]

    try:
        torch.ops.sf2t.fragment_pack_fchw  # noqa: B018 - an extension built before this op has no schema for it
    except (AttributeError, RuntimeError):
        return

    @torch.library.register_fake("sf2t::fragment_pack_fchw")
    def _(
        frames,
        src_index,
        boxes,
        resize_h,
        resize_w,
        crop_y,
        crop_x,
        out_h,
        out_w,
        mean,
        std,
        frame_repeat,
        dtype=None,
        uv=None,
        yuv=None,
    ):
        torch._check(frames.dtype == torch.uint8, lambda: "frames must be uint8")
        torch._check(frames.dim() == (3 if uv is not None else 4), lambda: "frames must be [N, H, W, 3] (Y [N, H, W])")
        return frames.new_empty((src_index.shape[0] * frame_repeat, 3, out_h, out_w), dtype=dtype or torch.float32)


_register_fake()
