"""Solvability guard: frames whose order matters must visibly differ (TASKS.md, common rules).

Motion is measured as the mean absolute difference (MAD, 0-255 scale) of grey thumbnails whose short side
is 64 px: BT.601 luma, then an exact area resize (the same measure as ``sf2t.synth.thumbnail_mad``). It runs
on torch tensors on the frames' device, so the guard costs no host round trip on a GPU.
"""

from __future__ import annotations

import torch

__all__ = [
    "TAU_MOTION",
    "THUMB_SHORT_SIDE",
    "thumbnails",
    "pairwise_mad",
    "consecutive_mad",
    "passes_motion",
    "require_motion",
    "visible_permutation",
]

TAU_MOTION = 2.0  # TASKS.md default; a config field (TaskConfig.tau_motion)
THUMB_SHORT_SIDE = 64


def thumbnails(
    frames: torch.Tensor, short_side: int = THUMB_SHORT_SIDE, *, index: torch.Tensor | None = None
) -> torch.Tensor:
    """Grey float32 thumbnails [N, th, tw] of RGB frames [N, H, W, 3] (or grey [N, H, W]), on their device.

    This is the one implementation of the measure (``sf2t.ops.thumbnail``: a fused C++ kernel on the CPU, tensor
    ops elsewhere); ``sf2t.synth.thumbnail_mad`` wraps it for numpy frames.
    """
    from sf2t.ops.thumbnail import thumbnail

    return thumbnail(frames, short_side, index=index)


def _thumbs(frames: torch.Tensor | None, thumbs: torch.Tensor | None) -> torch.Tensor:
    if thumbs is not None:
        return thumbs
    if frames is None:
        raise ValueError("give frames or their thumbnails (thumbs)")
    return thumbnails(frames)


def pairwise_mad(frames: torch.Tensor | None = None, *, thumbs: torch.Tensor | None = None) -> torch.Tensor:
    """MAD between every pair of frames: float32 [N, N] on the frames' device. ``thumbs``: their thumbnails
    [N, th, tw] when already computed (the window sampler computes them once per window)."""
    t = _thumbs(frames, thumbs).flatten(1)  # [N, th*tw]
    return (t[:, None, :] - t[None, :, :]).abs().mean(dim=-1)


def consecutive_mad(frames: torch.Tensor | None = None, *, thumbs: torch.Tensor | None = None) -> torch.Tensor:
    """MAD between frames i and i+1: float32 [N-1]."""
    t = _thumbs(frames, thumbs)
    return (t[1:] - t[:-1]).abs().mean(dim=(1, 2))


def passes_motion(
    frames: torch.Tensor | None, tau: float = TAU_MOTION, *, thumbs: torch.Tensor | None = None
) -> tuple[bool, float]:
    """True when every consecutive pair of ``frames`` (chronological) has MAD >= ``tau``; also the smallest MAD."""
    n = (thumbs if thumbs is not None else frames).shape[0]
    if n < 2:
        return True, float("inf")
    m = float(consecutive_mad(frames, thumbs=thumbs).min())
    return m >= tau, m


def require_motion(source: str, thumbs: torch.Tensor, tau: float = TAU_MOTION, where: str = "window") -> None:
    """``SkipSample("static")`` unless every consecutive pair of the thumbnails [n, th, tw] (chronological) differs
    by MAD >= ``tau``: frames whose order matters must visibly differ (TASKS.md)."""
    from sf2t.tasks.base import SkipSample

    ok, m = passes_motion(None, tau, thumbs=thumbs)
    if not ok:
        raise SkipSample(source, "static", f"no visible motion in the {where} (min MAD {m:.2f} < tau {tau})")


def visible_permutation(source: str, candidates, mad: torch.Tensor, tau: float, rng, tries: int = 64):
    """A permutation drawn uniformly from ``candidates`` whose moved frames differ visibly from the frames whose
    places they take (``mad[p[i], i] >= tau``, ``mad`` [F, F] on the CPU), redrawn up to ``tries`` times; else
    ``SkipSample("static")``."""
    from sf2t.tasks.base import SkipSample

    for _ in range(tries):
        p = candidates[rng.randrange(len(candidates))]
        if all(float(mad[p[i], i]) >= tau for i in range(len(p)) if p[i] != i):
            return p
    raise SkipSample(source, "static", "no permutation whose moved frames visibly differ")
