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

Backends (``backend=`` or ``SF2T_BACKEND``): ``reference`` (pure PyTorch, ``_pack_reference``), ``cpp`` (C++ CPU
kernel, threaded), ``cuda`` (CUDA kernel), ``triton`` (``sf2t.kernels.fragment_pack``; CUDA tensors, or
CPU tensors under ``TRITON_INTERPRET=1``). Compiled kernels and the reference give identical uint8
values after the resize; the normalized floats agree to float32 rounding.

The op by concern (every name below is reached from this module too): ``_pack_formats`` (the NV12 and YUV420 inputs),
``_pack_sizes`` (target sizes: Qwen2-VL's, LLaVA's), ``_pack_reference`` (the argument checks and the pure-PyTorch
references), ``_pack_triton`` (the Triton backend's weight tables and launches); the front door here: backend choice,
``fragment_pack``, ``fragment_pack_many``, the fake registrations.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import torch

from sf2t import _ext
from sf2t._checks import check_backend
from sf2t.ops._pack_formats import _YUV_MATRICES, NV12, YUV420  # noqa: F401  (re-exported)
from sf2t.ops._pack_reference import (
    LAYOUTS,  # noqa: F401  (re-exported)
    _check_args,
    _fragment_pack_fchw_reference,
    _fragment_pack_reference,
)
from sf2t.ops._pack_sizes import (
    QWEN2_VL_FACTOR,  # noqa: F401  (re-exported)
    QWEN2_VL_LARGEST_SQUARE,  # noqa: F401  (re-exported)
    QWEN2_VL_SIZE_LIMIT,  # noqa: F401  (re-exported)
    _center_offset,
    llava_target_size,  # noqa: F401  (re-exported)
    nearest_qwen2_vl_size,  # noqa: F401  (re-exported)
    qwen2_vl_size_message,  # noqa: F401  (re-exported)
    qwen2_vl_target_size,  # noqa: F401  (re-exported)
)
from sf2t.ops._pack_triton import (
    _TILED_MAX_ROWS,  # noqa: F401  (re-exported)
    _axis_entries,  # noqa: F401  (re-exported)
    _axis_table,  # noqa: F401  (re-exported)
    _axis_weights,  # noqa: F401  (re-exported)
    _cubic_aa,  # noqa: F401  (re-exported)
    _fragment_pack_triton,
    _fragment_pack_triton_tiled,  # noqa: F401  (re-exported)
    _norm255,  # noqa: F401  (re-exported)
    _resize_args,  # noqa: F401  (re-exported)
    _slice_weights,  # noqa: F401  (re-exported)
    _tile_ranges,  # noqa: F401  (re-exported)
    _tile_size,  # noqa: F401  (re-exported)
    _to_device,  # noqa: F401  (re-exported)
    _triton_kernel,  # noqa: F401  (re-exported)
    triton_available,
    triton_next_pow2,  # noqa: F401  (re-exported)
)

QWEN2_VL_MEAN = (0.48145466, 0.4578275, 0.40821073)
QWEN2_VL_STD = (0.26862954, 0.26130258, 0.27577711)
BACKENDS = ("reference", "cpp", "cuda", "triton")


@functools.lru_cache(maxsize=64)
def _grid_on(t: int, h: int, w: int, device: torch.device) -> torch.Tensor:
    return torch.tensor([[t, h, w]], dtype=torch.int64, device=device)


def _grid(t: int, h: int, w: int, device: torch.device) -> torch.Tensor:
    """``video_grid_thw`` on ``device``: a copy of a cached tensor (a fresh host -> GPU copy from pageable memory
    would wait for the stream's queued kernels and stall a caller that pipelines)."""
    if device.type == "cpu":
        return torch.tensor([[t, h, w]], dtype=torch.int64)
    return _grid_on(t, h, w, device).clone()


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
