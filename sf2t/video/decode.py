"""One-call decoding: ``decode_frames(path, indices)`` and ``probe(path)``.

Frame k is the k-th frame, 0-based, in presentation (pts) order of the first video stream (docs/tasks.md). This
opens a backend (``sf2t.video.backends``), decodes, and closes it: for many requests on one file, keep a
backend open (``open_decoder``) or use the window sampler (``sf2t.video.sampler``), which decodes the sorted
union of several samples' frames once.

Every failure a caller should handle (missing, empty, unreadable, corrupt file, no video stream, index out of
range) is a ``VideoError`` naming the file and the reason; ``.kind`` is a short code reports count by.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Sequence

import torch

from sf2t.video.backends import available_decoders, open_decoder
from sf2t.video.errors import VideoError
from sf2t.video.probe import VideoInfo, check_file
from sf2t.video.probe import probe as _probe

__all__ = ["VideoError", "VideoInfo", "probe", "decode_frames", "available_decoders"]

Decoder = Literal["auto", "torchcodec", "pyav", "dali"]


def probe(
    path: str | os.PathLike, *, decoder: Decoder = "auto", verify: bool = False, timeout: float | None = 60.0
) -> VideoInfo:
    """Read a video's metadata (``sf2t.video.probe.probe``). ``decoder`` picks the reader used to probe
    (``pyav`` or ``torchcodec``; ``auto``/``dali``: PyAV when installed, else torchcodec)."""
    path = check_file(path)
    if decoder not in ("auto", "torchcodec", "pyav", "dali"):
        raise ValueError(f"decoder must be 'auto', 'torchcodec', 'pyav' or 'dali', got {decoder!r}")
    prober = decoder if decoder in ("torchcodec", "pyav") else "auto"
    if prober != "auto" and decoder not in available_decoders():
        raise VideoError(path, f"decoder={decoder!r} asked for but it is not installed", "no_decoder")
    if prober == "auto" and not any(d in available_decoders() for d in ("torchcodec", "pyav")):
        raise VideoError(path, "no video decoder installed (pip install torchcodec, or av)", "no_decoder")
    return _probe(path, verify=verify, timeout=timeout, prober=prober)


def decode_frames(
    path: str | os.PathLike,
    indices: Sequence[int] | torch.Tensor,
    *,
    decoder: Decoder = "auto",
    device: str | torch.device = "cpu",
    info: VideoInfo | None = None,
    threads: int = 1,
    timeout: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode frames ``indices`` (presentation order, 0-based, any order, repeats allowed).

    Returns ``frames`` uint8 [N, H, W, 3] on ``device`` and ``pts`` float64 [N] seconds (CPU), row i being
    frame ``indices[i]``. Raises ``VideoError`` for a bad file or an index out of range."""
    with open_decoder(path, decoder, device=device, threads=threads, info=info, timeout=timeout) as dec:
        frames, pts = dec.get_frames(indices)
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
