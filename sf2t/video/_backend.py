"""What every decoder backend shares: the :class:`Backend` base, whose ``get_frames`` checks a request
(:func:`as_index_list`, :func:`check_range`, :func:`check_output`), decodes its sorted unique frames once and hands the
rows back in the order asked; the keyframe arithmetic a decoder's seeks follow (:func:`key_at_or_before`,
:func:`decodes_forward`); and the rotation that turns frames upright (:func:`_rotate`).

The backends themselves live in ``sf2t.video.backends`` (torchcodec; the choice and the opening of a decoder, which
re-exports these names), ``sf2t.video.pyav`` and ``sf2t.video.dali``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Sequence

import numpy as np
import torch

from sf2t._checks import check_int
from sf2t.ops.fragment_pack import YUV420
from sf2t.video.errors import VideoError
from sf2t.video.probe import Deadline, VideoInfo, check_file

# what get_frames returns: RGB tensors, or (pyav backend, CPU, 8-bit 4:2:0 streams) YUV420 planes, RGB otherwise
OUTPUTS = ("rgb", "yuv420")


def as_index_list(path: str, indices: Sequence[int] | torch.Tensor) -> list[int]:
    """``indices`` (a sequence of ints, a 1-D integer numpy array or tensor; empty ones of any dtype) as ints."""
    if isinstance(indices, (torch.Tensor, np.ndarray)):
        kind = "tensor" if isinstance(indices, torch.Tensor) else "numpy array"
        if isinstance(indices, torch.Tensor) and indices.device.type == "meta":
            raise ValueError("indices must hold frame numbers: got a tensor on the meta device, which holds no data")
        integer = (
            not (indices.dtype.is_floating_point or indices.dtype.is_complex or indices.dtype == torch.bool)
            if kind == "tensor"
            else indices.dtype.kind in "iu"
        )
        if indices.ndim != 1 or not (integer or indices.shape[0] == 0):
            raise ValueError(f"indices must be a 1-D integer {kind}, got {indices.dtype} {tuple(indices.shape)}")
        return [int(i) for i in indices.tolist()]
    if isinstance(indices, (str, bytes)) or not isinstance(indices, Iterable):
        raise ValueError(
            f"indices must be a sequence of frame numbers (list, numpy array or tensor), got {type(indices).__name__}"
            f" {indices!r:.60}; for one frame pass [i]"
        )
    out = []
    for i in indices:
        if isinstance(i, bool) or type(i).__name__ == "bool_" or not hasattr(i, "__index__"):
            raise ValueError(f"indices must be integers, got {i!r}")
        out.append(int(i))
    return out


def check_output(output: str | None) -> None:
    """``get_frames``' ``output`` argument: None (the backend's own) or one of :data:`OUTPUTS`."""
    if output is not None and output not in OUTPUTS:
        raise ValueError(f"output must be None (the backend's own) or one of {OUTPUTS}, got {output!r}")


def check_range(path: str, idx: list[int], n: int) -> None:
    for i in idx:
        if i < 0 or i >= n:
            raise VideoError(path, f"frame index {i} out of range: the video has {n} frames", "out_of_range")


def key_at_or_before(keyframes: list[int], k: int) -> int:
    """The keyframe a decoder seeks to for frame ``k`` (``keyframes`` sorted, the first at or before any frame)."""
    return keyframes[max(0, bisect.bisect_right(keyframes, k) - 1)]


def decodes_forward(keyframes: list[int], pos: int, k: int) -> bool:
    """Whether a decoder standing at frame ``pos`` (-1: nowhere) reaches frame ``k`` by decoding forward, without a
    seek: ``k`` lies ahead and no keyframe lies in (pos, k] (torchcodec's ``canWeAvoidSeeking``; the pyav backend
    follows the same rule)."""
    return pos < k and key_at_or_before(keyframes, k) <= pos


def _rotate(frames: torch.Tensor | YUV420, rotation: int) -> torch.Tensor | YUV420:
    """Upright frames: rotation (degrees counter-clockwise, the display matrix's) applied to [N, H, W, 3], or to a
    :class:`~sf2t.ops.YUV420`'s planes (each plane turned alike: the same RGB as turning the converted frames, since
    each chroma sample covers a 2x2 block of an even-sized frame, which a quarter turn maps onto a 2x2 block)."""
    k = (int(rotation) // 90) % 4
    if k == 0:
        return frames
    if isinstance(frames, YUV420):
        h, w = (frames.width, frames.height) if k % 2 else (frames.height, frames.width)
        # (flatten, not reshape(n, -1): a window of no frames has no -1 to infer)
        planes = [torch.rot90(p, k, dims=(1, 2)).flatten(1) for p in (frames.y, frames.u, frames.v)]
        return YUV420(torch.cat(planes, dim=1), h, w, frames.coeffs)
    return torch.rot90(frames, k, dims=(1, 2)).contiguous()


class Backend:
    """One open file. Subclasses implement ``_decode(sorted unique indices) -> (frames, pts)``."""

    name = "?"

    def __init__(
        self,
        path: str,
        *,
        device: str | torch.device = "cpu",
        threads: int = 1,
        info: VideoInfo | None = None,
        timeout: float | None = None,
    ):
        self.path = check_file(path)
        self.device = torch.device(device)
        self.threads = check_int("threads", threads, min_value=1)
        self.info = info
        self.timeout = timeout
        self.num_frames = 0
        self.frames_decoded = 0  # frames the codec decoded, GOP lead-ins included (for throughput reports)

    output = "rgb"  # what get_frames returns (OUTPUTS; only the pyav backend gives "yuv420")

    def get_frames(
        self, indices: Sequence[int] | torch.Tensor, output: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames ``indices`` (any order, repeats allowed): uint8 [N, H, W, 3] on the backend's device (or, from a
        backend opened with ``output="yuv420"``, :class:`~sf2t.ops.YUV420` where the stream allows it) and float64
        [N] presentation times in seconds (CPU); row i is frame ``indices[i]``. ``output="rgb"``: RGB this time."""
        check_output(output)
        idx = as_index_list(self.path, indices)
        check_range(self.path, idx, self.num_frames)
        uniq = sorted(set(idx))
        self._call_output = output or self.output
        try:
            frames, pts = self._decode(uniq, Deadline(self.path, self.timeout, "decoding"))
        finally:
            self._call_output = None
        if uniq != idx:
            rows = torch.tensor([bisect.bisect_left(uniq, i) for i in idx], dtype=torch.int64)
            frames = frames.index_select(0, rows.to(frames.device))
            pts = pts.index_select(0, rows)
        return frames, pts

    def _decode(self, uniq: list[int], deadline: Deadline) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
