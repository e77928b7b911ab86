"""Frame-difference helpers shared by the synthetic generator and its tests.

``thumbnail_mad`` is the solvability guard's measure of motion: both frames are turned grey (BT.601 luma weights),
area-resized so that the short side is 64 px, and the mean absolute difference of the two thumbnails is returned on
the 0-255 scale.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["THUMB_SHORT_SIDE", "thumbnail", "thumbnail_mad", "frame_mads"]

THUMB_SHORT_SIDE = 64
_BT601 = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@lru_cache(maxsize=64)
def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of an exact area resize (like OpenCV's INTER_AREA); each row sums to 1.

    Output pixel i covers input interval [i*r, (i+1)*r) with r = n_in / n_out; input pixel j gets weight
    |[j, j+1) intersect that interval| / r.  Also correct when n_out > n_in (then it is a box-filtered upscale).
    """
    r = n_in / n_out
    lo = np.arange(n_out, dtype=np.float64)[:, None] * r
    hi = lo + r
    j = np.arange(n_in, dtype=np.float64)[None, :]
    overlap = np.clip(np.minimum(hi, j + 1.0) - np.maximum(lo, j), 0.0, None)
    m = overlap / overlap.sum(axis=1, keepdims=True)
    m = m.astype(np.float32)
    m.setflags(write=False)
    return m


def _thumb_size(h: int, w: int, short: int = THUMB_SHORT_SIDE) -> tuple[int, int]:
    if h <= w:
        return short, max(1, int(round(w * short / h)))
    return max(1, int(round(h * short / w))), short


def _gray(frame: np.ndarray) -> np.ndarray:
    a = np.asarray(frame)
    if a.ndim == 3 and a.shape[-1] == 3:
        return a.astype(np.float32) @ _BT601
    if a.ndim == 2:
        return a.astype(np.float32)
    raise ValueError(f"expected an [H, W, 3] RGB or [H, W] grey frame, got shape {a.shape}")


def thumbnail(frame: np.ndarray, short_side: int = THUMB_SHORT_SIDE) -> np.ndarray:
    """Grey float32 thumbnail of an [H, W, 3] RGB (or [H, W] grey) frame with the given short side."""
    g = _gray(frame)
    h, w = g.shape
    th, tw = _thumb_size(h, w, short_side)
    return _area_matrix(h, th) @ g @ _area_matrix(w, tw).T


def thumbnail_mad(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference (0-255 scale) of the 64-px-short-side grey thumbnails of two frames."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"frames differ in shape: {a.shape} vs {b.shape}")
    return float(np.abs(thumbnail(a) - thumbnail(b)).mean())


def frame_mads(frames: np.ndarray, stride: int = 2) -> np.ndarray:
    """``thumbnail_mad(frames[t], frames[t + stride])`` for every t, as a float64 array of length N - stride.

    Vectorized over frames: every thumbnail is computed once.
    """
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4):
        raise ValueError(f"expected [N, H, W, 3] or [N, H, W] frames, got shape {frames.shape}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    n = frames.shape[0]
    if n <= stride:
        return np.zeros(0, dtype=np.float64)
    h, w = frames.shape[1:3]
    th, tw = _thumb_size(h, w)
    my, mx = _area_matrix(h, th), _area_matrix(w, tw)
    thumbs = np.empty((n, th, tw), dtype=np.float32)
    for i in range(n):  # per frame (not per pixel): keeps the float32 working set to one frame
        thumbs[i] = my @ _gray(frames[i]) @ mx.T
    return np.abs(thumbs[stride:] - thumbs[:-stride]).mean(axis=(1, 2)).astype(np.float64)
