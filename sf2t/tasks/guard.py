"""Solvability guard: frames whose order matters must visibly differ (TASKS.md, common rules).

Motion is measured as the mean absolute difference (MAD, 0-255 scale) of grey thumbnails whose short side
is 64 px: BT.601 luma, then an exact area resize (the same measure as ``sf2t.synth.thumbnail_mad``). It runs
on torch tensors on the frames' device, so the guard costs no host round trip on a GPU.
"""

from __future__ import annotations

import torch

__all__ = ["TAU_MOTION", "THUMB_SHORT_SIDE", "thumbnails", "pairwise_mad", "consecutive_mad", "passes_motion"]

TAU_MOTION = 2.0  # TASKS.md default; a config field (TaskConfig.tau_motion)
THUMB_SHORT_SIDE = 64


def thumbnails(frames: torch.Tensor, short_side: int = THUMB_SHORT_SIDE) -> torch.Tensor:
    """Grey float32 thumbnails [N, th, tw] of RGB frames [N, H, W, 3] (or grey [N, H, W]), on their device.

    This is the one implementation of the measure (``sf2t.ops.thumbnail``: a fused C++ kernel on the CPU, tensor
    ops elsewhere); ``sf2t.synth.thumbnail_mad`` wraps it for numpy frames.
    """
    from sf2t.ops.thumbnail import thumbnail

    return thumbnail(frames, short_side)


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
