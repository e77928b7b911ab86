"""Frame-difference helpers shared by the synthetic generator and its tests.

``thumbnail_mad`` is the solvability guard's measure of motion: both frames are turned grey (BT.601 luma weights),
area-resized so that the short side is 64 px, and the mean absolute difference of the two thumbnails is returned on
the 0-255 scale.
"""

from __future__ import annotations

import numpy as np
import torch

from sf2t.tasks.guard import THUMB_SHORT_SIDE, thumbnails

__all__ = ["THUMB_SHORT_SIDE", "thumbnail", "thumbnail_mad", "frame_mads"]

_CHUNK = 16  # frames per thumbnail batch in frame_mads: bounds the float32 working set


def _as_frames(a: np.ndarray) -> torch.Tensor:
    a = np.asarray(a)
    if not ((a.ndim == 3 and a.shape[-1] == 3) or a.ndim == 2):
        raise ValueError(f"expected an [H, W, 3] RGB or [H, W] grey frame, got shape {a.shape}")
    return torch.from_numpy(np.ascontiguousarray(a))[None]


def thumbnail(frame: np.ndarray, short_side: int = THUMB_SHORT_SIDE) -> np.ndarray:
    """Grey float32 thumbnail of an [H, W, 3] RGB (or [H, W] grey) frame with the given short side."""
    return thumbnails(_as_frames(frame), short_side)[0].numpy()


def thumbnail_mad(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference (0-255 scale) of the 64-px-short-side grey thumbnails of two frames."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"frames differ in shape: {a.shape} vs {b.shape}")
    return float((thumbnails(_as_frames(a)) - thumbnails(_as_frames(b))).abs().mean())


def frame_mads(frames: np.ndarray, stride: int = 2) -> np.ndarray:
    """``thumbnail_mad(frames[t], frames[t + stride])`` for every t, as a float64 array of length N - stride.

    Every thumbnail is computed once, a chunk of frames at a time.
    """
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4):
        raise ValueError(f"expected [N, H, W, 3] or [N, H, W] frames, got shape {frames.shape}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    n = frames.shape[0]
    if n <= stride:
        return np.zeros(0, dtype=np.float64)
    t = torch.from_numpy(np.ascontiguousarray(frames))
    thumbs = torch.cat([thumbnails(t[i : i + _CHUNK]) for i in range(0, n, _CHUNK)])
    return (thumbs[stride:] - thumbs[:-stride]).abs().mean(dim=(1, 2)).double().numpy()
