"""Solvability guard: frames whose order matters must visibly differ (docs/tasks.md, Solvability guard).

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
    "PairMAD",
    "consecutive_mad",
    "passes_motion",
    "require_motion",
    "visible_permutation",
]

TAU_MOTION = 2.0  # the default of the tasks' config field tau_motion (docs/tasks.md)
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
    [N, th, tw] when already computed (the window sampler computes them once per window). Computed over the
    N(N-1)/2 pairs i < j only (MAD is symmetric; the diagonal is 0)."""
    t = _thumbs(frames, thumbs).flatten(1)  # [N, th*tw]
    n = t.shape[0]
    out = torch.zeros(n, n, dtype=torch.float32, device=t.device)
    if n > 1:
        i, j = torch.triu_indices(n, n, offset=1, device=t.device)
        v = (t.index_select(0, i) - t.index_select(0, j)).abs().mean(dim=-1).to(torch.float32)
        out[i, j] = v
        out[j, i] = v
    return out


def _mads(t: torch.Tensor, i: list[int], j: list[int]) -> list[float]:
    """MADs between rows ``i[k]`` and ``j[k]`` of thumbnails ``t`` [N, ...], as host floats: one
    :func:`sf2t.ops.thumbnail.thumb_mad` call (C++ on the CPU, tensor ops on the thumbnails' device elsewhere)."""
    from sf2t.ops.thumbnail import thumb_mad

    if not i:
        return []
    return thumb_mad(t if t.dtype == torch.float32 else t.float(), i, j).tolist()


class PairMAD:
    """MADs between pairs of thumbnails [N, th, tw], computed on demand (one batched computation per call for the
    pairs not seen yet) and cached: checking a permutation reads at most N of the N*N pairs, so a task that draws
    one or two permutations need not compute the whole matrix (8 frames: ~0.05 ms instead of ~1 ms)."""

    def __init__(self, thumbs: torch.Tensor):
        self.t = thumbs.flatten(1)
        self.n = thumbs.shape[0]
        self.cache: dict[tuple[int, int], float] = {}

    def get(self, pairs) -> list[float]:
        """The MADs of ``pairs`` [(a, b), ...] as floats on the host (0.0 where a == b)."""
        keys = [(a, b) if a < b else (b, a) for a, b in pairs]
        todo = sorted({k for k in keys if k[0] != k[1] and k not in self.cache})
        if todo:
            self.cache.update(zip(todo, _mads(self.t, [a for a, _ in todo], [b for _, b in todo])))
        return [0.0 if a == b else self.cache[(a, b)] for a, b in keys]


def consecutive_mad(frames: torch.Tensor | None = None, *, thumbs: torch.Tensor | None = None) -> torch.Tensor:
    """MAD between frames i and i+1: float32 [N-1]."""
    t = _thumbs(frames, thumbs)
    return (t[1:] - t[:-1]).abs().mean(dim=(1, 2))


def passes_motion(
    frames: torch.Tensor | None,
    tau: float = TAU_MOTION,
    *,
    thumbs: torch.Tensor | PairMAD | None = None,
    rows: list[int] | None = None,
) -> tuple[bool, float]:
    """True when every consecutive pair of ``frames`` (chronological) has MAD >= ``tau``; also the smallest MAD.
    ``thumbs``: their thumbnails, or a :class:`PairMAD` of them (its cached pairs are reused, the new ones kept);
    ``rows``: check consecutive pairs of these rows only (in this order) instead of all of them."""
    mad = thumbs if isinstance(thumbs, PairMAD) else None
    if mad is None:
        t = _thumbs(frames, thumbs)
        n = t.shape[0]
    else:
        n = mad.n
    order = list(range(n)) if rows is None else list(rows)
    if len(order) < 2:
        return True, float("inf")
    pairs = list(zip(order[:-1], order[1:]))
    vals = mad.get(pairs) if mad is not None else _mads(t.flatten(1), order[:-1], order[1:])
    m = min(vals)
    return m >= tau, m


def require_motion(
    source: str,
    thumbs: torch.Tensor | PairMAD,
    tau: float = TAU_MOTION,
    where: str = "window",
    rows: list[int] | None = None,
) -> None:
    """``SkipSample("static")`` unless every consecutive pair of the thumbnails [n, th, tw] (chronological; or of
    their ``rows``, in that order) differs by MAD >= ``tau``: frames whose order matters must visibly differ
    (docs/tasks.md). ``thumbs`` may be a :class:`PairMAD`, whose cache then holds these pairs for later checks."""
    from sf2t.tasks.base import SkipSample

    ok, m = passes_motion(None, tau, thumbs=thumbs, rows=rows)
    if not ok:
        raise SkipSample(source, "static", f"no visible motion in the {where} (min MAD {m:.2f} < tau {tau})")


def visible_permutation(source: str, candidates, mad, tau: float, rng, tries: int = 64):
    """A permutation drawn uniformly from ``candidates`` whose moved frames differ visibly from the frames whose
    places they take (``mad[p[i], i] >= tau``), redrawn up to ``tries`` times; else ``SkipSample("static")``.
    ``mad``: a :class:`PairMAD` of the frames' thumbnails (pairs computed as needed) or an [F, F] tensor."""
    from sf2t.tasks.base import SkipSample

    for _ in range(tries):
        p = candidates[rng.randrange(len(candidates))]
        pairs = [(p[i], i) for i in range(len(p)) if p[i] != i]
        if isinstance(mad, PairMAD):
            vals = mad.get(pairs)
        else:
            vals = [float(mad[a, b]) for a, b in pairs]
        if all(v >= tau for v in vals):
            return p
    raise SkipSample(source, "static", "no permutation whose moved frames visibly differ")
