"""The agreement check: sf2t's samples and the baselines' made from the same plans must agree (within fragment_pack's
tolerance) before anything is timed."""

from __future__ import annotations

from typing import Sequence

import torch

from sf2t.throughput.runners import _pack_window
from sf2t.throughput.sampling import _sampler


def check_agreement(
    outs: dict, tol_max: float, tol_mean: float = 1e-3, where: Sequence[str] | None = None, ref_name: str = "sf2t"
) -> dict:
    """Max and mean |difference| of each baseline's samples to ``ref_name``'s (sf2t's; same plans, in the same order);
    over fragment_pack's tolerance (max ``tol_max``, mean ``tol_mean`` per sample, as its tests hold it to the
    processor): an error naming the first sample out of it (``where[i]``: sample i's video and window)."""
    res = {}
    ref = outs[ref_name]
    for name, got in outs.items():
        if name == ref_name:
            continue
        mx = mean = 0.0
        for i, ((a, ga), (b, gb)) in enumerate(zip(ref, got)):
            at = f" ({where[i]})" if where else ""
            if not torch.equal(ga.reshape(-1), gb.reshape(-1)) or a.shape != b.shape:
                raise RuntimeError(
                    f"{name}: grid {gb.tolist()} / shape {tuple(b.shape)} differ from {ref_name}'s{at}: not a "
                    "like-for-like comparison on these videos"
                )
            d = (a.float() - b.float()).abs()
            dmx, dmean = float(d.max()), float(d.mean())
            if dmx > tol_max or dmean > tol_mean:
                raise RuntimeError(
                    f"{name}: pixel values differ from {ref_name}'s by max {dmx:.4f}, mean {dmean:.2e}{at} (tolerance "
                    f"{tol_max:.4f}, mean {tol_mean:.0e}): not a like-for-like comparison on these videos"
                )
            mx, mean = max(mx, dmx), max(mean, dmean)
        res[name] = {"max_abs": mx, "mean_abs": mean, "samples": min(len(ref), len(got))}
    return res


# A baseline's timed function against its check twin (bench/baselines: the same decode, resize and processor with
# sf2t's rounding): at most this many uint8 steps anywhere and this mean |difference| (normalised) per sample. Seen:
# 0 on landscape camera clips; portrait (resize pass order) max 0.14 / mean 0.003; odd-sized VP9 (chroma conversion)
# max 0.28 / mean 0.029. Wrong frames, channels, sizes or normalisation are far outside.
TWIN_MAX_STEPS = 32
TWIN_MEAN = 0.05

AGREE_WINDOWS = 8  # windows the agreement check compares at most (one baseline sample each, two from window 0)


def agreement_windows(video_of, windows: int, most: int = AGREE_WINDOWS) -> list[int]:
    """The windows the agreement check compares, out of ``windows``: window 0, the first window of every other video
    (``video_of(w)``: window w's video, from the planner: no decode) and the last window; at most ``most``, spread
    evenly over those (window 0 and the last kept). A bug in later windows or in one video's pixels (its size, its
    format) is caught, at the cost of a few baseline samples (window 0 alone was checked before)."""
    picked, seen = [0], {video_of(0)}
    for w in range(1, windows):
        v = video_of(w)
        if v not in seen:
            seen.add(v)
            picked.append(w)
    if windows - 1 not in picked:
        picked.append(windows - 1)
    if len(picked) > most:
        picked = [picked[round(k * (len(picked) - 1) / (most - 1))] for k in range(most)]
    return sorted(set(picked))


def agreement_samples(infos, ws: Sequence[int], size, seed: int = 0, per_window: int = 1, **sampler_kw):
    """(sf2t's (pixels, grid) on the CPU, the baselines' (video, presented frame ids), labels) of the first
    ``per_window`` samples of each window in ``ws`` (two from window 0), from one sampler (its
    ``seed``, ``tasks``, ``device``, ``decoder``, ``output``, ``threads``: as the timed passes)."""
    s = _sampler(infos, seed, **sampler_kw)
    outs, plans, where = [], [], []
    try:
        for w in ws:
            wp = s.plan(w)
            union = wp.frame_ids  # the rows of the window's shared decode, which src_index points into
            pairs = s.window(w)[: max(per_window, 2 if w == 0 else 1)]
            for (smp, _), (px, grid) in zip(pairs, _pack_window(pairs, size)):
                outs.append((px.cpu(), grid.cpu()))
                plans.append((wp.video.path, [union[i] for i in smp.src_index]))
                where.append(f"{wp.video.path}, window {w}")
    finally:
        s.close()
    return outs, plans, where
