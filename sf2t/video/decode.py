"""Probe a video file and decode exactly the frames a task needs.

Frame k is the k-th frame, 0-based, in presentation (pts) order of the first video stream (TASKS.md).
Backends: torchcodec (``seek_mode="exact"``: it scans the file once, so indices are exact even with
B-frames and open GOPs) and PyAV (sequential decode, keeping the needed frames) as a fallback when
torchcodec is not installed. Neither is imported at module import: a machine with neither can still
import sf2t; asking it to decode raises a ``VideoError`` that says so.

Every failure a caller should handle (missing, empty, unreadable, corrupt file, no video stream,
index out of range) is a ``VideoError`` naming the file and the reason; ``.kind`` is a short code
that reports count skipped videos by.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Sequence

import torch

__all__ = ["VideoError", "VideoInfo", "probe", "decode_frames", "available_decoders"]

Decoder = Literal["auto", "torchcodec", "pyav"]


class VideoError(Exception):
    """A video that cannot be used, with ``path``, a human ``reason`` and a short ``kind`` code.

    kinds: ``missing``, ``empty``, ``unreadable``, ``no_video``, ``no_frames``, ``corrupt``,
    ``out_of_range``, ``no_decoder``.
    """

    def __init__(self, path: str | os.PathLike, reason: str, kind: str = "unreadable"):
        self.path = str(path)
        self.reason = reason
        self.kind = kind
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class VideoInfo:
    """What a planner needs to know about a video: frames are counted in presentation order."""

    path: str
    num_frames: int
    fps: float
    width: int
    height: int
    duration: float  # seconds
    codec: str

    def to_dict(self) -> dict:
        return asdict(self)


def available_decoders() -> list[str]:
    """Backends importable here, in order of preference."""
    return [name for name in ("torchcodec", "av") if importlib.util.find_spec(name) is not None]


def _pick(decoder: Decoder, path: str) -> str:
    have = available_decoders()
    if decoder == "auto":
        if not have:
            raise VideoError(path, "no video decoder installed (pip install torchcodec, or av)", "no_decoder")
        return "torchcodec" if have[0] == "torchcodec" else "pyav"
    if decoder not in ("torchcodec", "pyav"):
        raise ValueError(f"decoder must be 'auto', 'torchcodec' or 'pyav', got {decoder!r}")
    if (decoder == "torchcodec" and "torchcodec" not in have) or (decoder == "pyav" and "av" not in have):
        pkg = "torchcodec" if decoder == "torchcodec" else "av"
        raise VideoError(path, f"decoder={decoder!r} asked for but {pkg} is not installed", "no_decoder")
    return decoder


def _check_file(path: str | os.PathLike) -> str:
    path = str(path)
    if not os.path.exists(path):
        raise VideoError(path, "file not found", "missing")
    if not os.path.isfile(path):
        raise VideoError(path, "not a regular file", "unreadable")
    if os.path.getsize(path) == 0:
        raise VideoError(path, "file is empty (0 bytes)", "empty")
    return path


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    # torchcodec prefixes ffmpeg's message with "Function, /build/path/File.cpp:41, ": drop that.
    line = re.sub(r"^(\S+, )?/\S+:\d+, ", "", text[0] if text else "")
    return f"{type(e).__name__}: {line}"


# ---------------------------------------------------------------------------------------------------
# torchcodec


def _tc_open(path: str):
    from torchcodec.decoders import VideoDecoder

    try:
        # One ffmpeg thread: the machines this runs on have 2 cores shared with the training loop.
        dec = VideoDecoder(path, dimension_order="NHWC", seek_mode="exact", num_ffmpeg_threads=1)
    except Exception as e:  # torchcodec raises ValueError/RuntimeError with ffmpeg's message
        msg = str(e).lower()
        kind = "no_video" if "stream" in msg and "video" in msg else "unreadable"
        raise VideoError(path, f"cannot open as video ({_first_line(e)})", kind) from e
    return dec


def _tc_probe(path: str) -> VideoInfo:
    m = _tc_open(path).metadata
    n = int(m.num_frames or 0)
    fps = float(m.average_fps or 0.0)
    dur = float(m.duration_seconds or (n / fps if fps else 0.0))
    return VideoInfo(path, n, fps, int(m.width or 0), int(m.height or 0), dur, str(m.codec or "unknown"))


def _tc_decode(path: str, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    dec = _tc_open(path)
    n = int(dec.metadata.num_frames or 0)
    if n <= 0:
        raise VideoError(path, "video stream has no frames", "no_frames")
    _check_range(path, idx, n)
    if not idx:
        h, w = dec.metadata.height, dec.metadata.width
        return torch.empty(0, h, w, 3, dtype=torch.uint8), torch.empty(0, dtype=torch.float64)
    try:
        batch = dec.get_frames_at(torch.tensor(idx, dtype=torch.int64))
    except Exception as e:
        raise VideoError(path, f"decoding failed ({_first_line(e)})", "corrupt") from e
    return batch.data, batch.pts_seconds.to(torch.float64)


# ---------------------------------------------------------------------------------------------------
# PyAV (fallback): decode sequentially; decoders emit frames in presentation order.


def _av_open(path: str):
    import av

    try:
        container = av.open(path)
    except Exception as e:
        raise VideoError(path, f"cannot open as video ({_first_line(e)})", "unreadable") from e
    if not container.streams.video:
        container.close()
        raise VideoError(path, "no video stream", "no_video")
    stream = container.streams.video[0]
    stream.thread_count = 1
    return container, stream


def _av_iter(path: str, container, stream):
    try:
        yield from container.decode(stream)
    except Exception as e:
        raise VideoError(path, f"decoding failed ({_first_line(e)})", "corrupt") from e


def _av_probe(path: str) -> VideoInfo:
    container, stream = _av_open(path)
    try:
        n = int(stream.frames or 0)
        if n <= 0:  # WebM/MKV carry no frame count in the header: count by decoding, exactly.
            n = sum(1 for _ in _av_iter(path, container, stream))
        fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        if stream.duration is not None and stream.time_base is not None:
            dur = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            dur = container.duration / 1e6
        else:
            dur = n / fps if fps else 0.0
        return VideoInfo(path, n, fps, stream.codec_context.width, stream.codec_context.height, dur,
                         stream.codec_context.name)
    finally:
        container.close()


def _av_decode(path: str, idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    container, stream = _av_open(path)
    negative = [i for i in idx if i < 0]
    if negative:
        n = int(stream.frames or 0)
        container.close()
        has = f"the video has {n} frames" if n else "indices start at 0"
        raise VideoError(path, f"frame index {negative[0]} out of range: {has}", "out_of_range")
    wanted = set(idx)
    last = max(idx) if idx else -1
    got: dict[int, tuple[torch.Tensor, float]] = {}
    n = 0
    try:
        for k, frame in enumerate(_av_iter(path, container, stream)):
            n = k + 1
            if k in wanted:
                pts = float(frame.pts * frame.time_base) if frame.pts is not None else float("nan")
                got[k] = (torch.from_numpy(frame.to_ndarray(format="rgb24")), pts)
            if k >= last:
                break
    finally:
        container.close()
    if n == 0:
        raise VideoError(path, "video stream has no frames", "no_frames")
    missing = [i for i in idx if i not in got]
    if missing:
        raise VideoError(path, f"frame index {missing[0]} out of range: the video has {n} frames", "out_of_range")
    if not idx:
        h, w = stream.codec_context.height, stream.codec_context.width
        return torch.empty(0, h, w, 3, dtype=torch.uint8), torch.empty(0, dtype=torch.float64)
    frames = torch.stack([got[i][0] for i in idx])
    return frames, torch.tensor([got[i][1] for i in idx], dtype=torch.float64)


# ---------------------------------------------------------------------------------------------------


def _check_range(path: str, idx: list[int], n: int) -> None:
    for i in idx:
        if i < 0 or i >= n:
            raise VideoError(path, f"frame index {i} out of range: the video has {n} frames", "out_of_range")


def probe(path: str | os.PathLike, *, decoder: Decoder = "auto") -> VideoInfo:
    """Read a video's stream metadata: frame count (presentation order), fps, size, duration, codec.

    Raises ``VideoError`` for a missing, empty or unreadable file, or one with no video stream.
    """
    path = _check_file(path)
    backend = _pick(decoder, path)
    info = _tc_probe(path) if backend == "torchcodec" else _av_probe(path)
    if info.num_frames <= 0:
        raise VideoError(path, "video stream has no frames", "no_frames")
    return info


def decode_frames(
    path: str | os.PathLike,
    indices: Sequence[int] | torch.Tensor,
    *,
    decoder: Decoder = "auto",
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode frames ``indices`` (presentation order, 0-based, any order, repeats allowed).

    Returns ``frames`` uint8 [N, H, W, 3] on ``device`` and ``pts`` float64 [N] seconds (CPU), row i
    being frame ``indices[i]``. Raises ``VideoError`` for a bad file or an index out of range.
    """
    path = _check_file(path)
    if isinstance(indices, torch.Tensor):
        if indices.dim() != 1 or indices.dtype.is_floating_point:
            raise ValueError(f"indices must be a 1-D integer tensor, got {indices.dtype} {tuple(indices.shape)}")
        idx = [int(i) for i in indices.tolist()]
    else:
        idx = [int(i) for i in indices]
    backend = _pick(decoder, path)
    if backend == "torchcodec":
        frames, pts = _tc_decode(path, idx)
    else:
        frames, pts = _av_decode(path, idx)
    return frames.to(device), pts


def _main(argv: Sequence[str] | None = None) -> None:  # python -m sf2t.video.decode FILE...
    import sys

    for p in argv if argv is not None else sys.argv[1:]:
        try:
            print(probe(Path(p)))
        except VideoError as e:
            print(f"error: {e}")


if __name__ == "__main__":
    _main()
