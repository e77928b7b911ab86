"""Solvability guard: frames whose order matters must visibly differ (TASKS.md, common rules).

Motion is measured as the mean absolute difference (MAD, 0-255 scale) of grey thumbnails whose short side
is 64 px: BT.601 luma, then an exact area resize (the same measure as ``sf2t.synth.thumbnail_mad``). It runs
on torch tensors on the frames' device, so the guard costs no host round trip on a GPU.
"""

from __future__ import annotations

from functools import lru_cache

import torch

__all__ = ["TAU_MOTION", "THUMB_SHORT_SIDE", "thumbnails", "pairwise_mad", "consecutive_mad", "passes_motion"]

TAU_MOTION = 2.0  # TASKS.md default; a config field (TaskConfig.tau_motion)
THUMB_SHORT_SIDE = 64
_BT601 = (0.299, 0.587, 0.114)


@lru_cache(maxsize=32)
def _area_matrix_cpu(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) exact area-resize weights: output pixel i averages input span [i*r, (i+1)*r), r = n_in/n_out."""
    r = n_in / n_out
    lo = torch.arange(n_out, dtype=torch.float64)[:, None] * r
    j = torch.arange(n_in, dtype=torch.float64)[None, :]
    overlap = (torch.minimum(lo + r, j + 1.0) - torch.maximum(lo, j)).clamp_min(0.0)
    return (overlap / overlap.sum(dim=1, keepdim=True)).to(torch.float32)


def _thumb_size(h: int, w: int, short: int) -> tuple[int, int]:
    if h <= w:
        return short, max(1, round(w * short / h))
    return max(1, round(h * short / w)), short


def thumbnails(frames: torch.Tensor, short_side: int = THUMB_SHORT_SIDE) -> torch.Tensor:
    """Grey float32 thumbnails [N, th, tw] of RGB frames [N, H, W, 3] (or grey [N, H, W]), on their device.

    This is the one implementation of the measure; ``sf2t.synth.thumbnail_mad`` wraps it for numpy frames.
    """
    if frames.dim() == 4 and frames.shape[-1] == 3:
        weights = torch.tensor(_BT601, dtype=torch.float32, device=frames.device)
        grey = frames.to(torch.float32) @ weights  # [N, H, W]
    elif frames.dim() == 3:
        grey = frames.to(torch.float32)
    else:
        raise ValueError(f"frames must be [N, H, W, 3] RGB or [N, H, W] grey, got {tuple(frames.shape)}")
    n, h, w = grey.shape
    th, tw = _thumb_size(h, w, short_side)
    my = _area_matrix_cpu(h, th).to(frames.device)  # [th, H]
    mx = _area_matrix_cpu(w, tw).to(frames.device)  # [tw, W]
    return my @ grey @ mx.T  # [N, th, tw]


def pairwise_mad(frames: torch.Tensor) -> torch.Tensor:
    """MAD between every pair of frames: float32 [N, N] on the frames' device."""
    t = thumbnails(frames).flatten(1)  # [N, th*tw]
    return (t[:, None, :] - t[None, :, :]).abs().mean(dim=-1)


def consecutive_mad(frames: torch.Tensor) -> torch.Tensor:
    """MAD between frames i and i+1: float32 [N-1]."""
    t = thumbnails(frames)
    return (t[1:] - t[:-1]).abs().mean(dim=(1, 2))


def passes_motion(frames: torch.Tensor, tau: float = TAU_MOTION) -> tuple[bool, float]:
    """True when every consecutive pair of ``frames`` (chronological) has MAD >= ``tau``; also the smallest MAD."""
    if frames.shape[0] < 2:
        return True, float("inf")
    m = float(consecutive_mad(frames).min())
    return m >= tau, m
