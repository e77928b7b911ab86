"""``disorder`` (docs/tasks.md): F ~ U[count_min, count_max] frames at a uniform stride; with p = p_shuffle they
are presented under a non-identity permutation whose moved frames visibly differ from the frames they
replace. Answer ``"Yes."`` (in order) or ``"No."``.

Solvability: consecutive chronological frames must differ (thumbnail MAD >= tau_motion), else the window
is rejected (``SkipSample(kind="static")``; the data builder resamples and counts videos that never pass).

``perm`` (which shuffles are drawn):

- ``any``: any non-identity permutation (the default).
- ``no_reverse``: any but the full reversal. A reversed clip of reversible motion (a sprite gliding) looks
  like a forward clip of the opposite motion, so reversal is unanswerable from pixels.
- ``strong``: no two chronologically adjacent frames are shown next to each other (|p[i+1] - p[i]| != 1),
  so every step of the presented clip is a jump: the easiest shuffles to detect.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from functools import lru_cache

import torch

from sf2t._checks import check_real
from sf2t.tasks import templates
from sf2t.tasks.base import (
    FramePlan,
    Sample,
    check_frames,
    check_range,
    check_thumbs,
    checked_config,
    plan_uniform_fragment,
)
from sf2t.tasks.guard import TAU_MOTION, PairMAD, require_motion, thumbnails, visible_permutation

__all__ = ["DisorderConfig", "DisorderTask", "PERM_MODES", "allowed_permutations"]

PERM_MODES = ("any", "no_reverse", "strong")
MAX_COUNT = 8  # most frames a shuffled sample may have: allowed_permutations lists them all (8! = 40,320)


@dataclass
class DisorderConfig:
    count_min: int = field(default=4, metadata={"help": "fewest presented frames F"})
    count_max: int = field(default=8, metadata={"help": "most presented frames F (at most 8)"})
    stride_min: int = field(default=1, metadata={"help": "smallest stride between chronological source frames"})
    stride_max: int = field(default=4, metadata={"help": "largest stride (shrunk to fit short videos)"})
    p_shuffle: float = field(default=0.5, metadata={"help": "probability that a sample is shuffled (answer No)"})
    perm: str = field(default="any", metadata={"help": f"which shuffles are drawn: one of {PERM_MODES}"})
    tau_motion: float = field(default=TAU_MOTION, metadata={"help": "motion guard threshold (thumbnail MAD)"})


@lru_cache(maxsize=64)
def allowed_permutations(count: int, mode: str) -> tuple[tuple[int, ...], ...]:
    """All non-identity permutations of ``range(count)`` allowed by ``mode`` (count <= 8: at most 40,320)."""
    if mode not in PERM_MODES:
        raise ValueError(f"disorder perm mode must be one of {PERM_MODES}, got {mode!r}")
    ident = tuple(range(count))
    rev = ident[::-1]
    out = []
    for p in itertools.permutations(ident):
        if p == ident or (mode != "any" and p == rev):
            continue
        if mode == "strong" and any(abs(p[i + 1] - p[i]) == 1 for i in range(count - 1)):
            continue
        out.append(p)
    return tuple(out)


class DisorderTask:
    name = "disorder"

    def __init__(self, cfg: DisorderConfig | None = None):
        c = cfg or DisorderConfig()
        lo, hi = check_range(self.name, "count_min", c.count_min, "count_max", c.count_max, 2)
        if hi > MAX_COUNT:  # every allowed permutation is listed: 9 frames are 362,880, 12 would never finish
            raise ValueError(f"disorder: count_max must be <= {MAX_COUNT} (all permutations are enumerated), got {hi}")
        s_lo, s_hi = check_range(self.name, "stride_min", c.stride_min, "stride_max", c.stride_max, 1)
        c = self.cfg = checked_config(
            c,
            count_min=lo,
            count_max=hi,
            stride_min=s_lo,
            stride_max=s_hi,
            p_shuffle=check_real(f"{self.name}: p_shuffle", c.p_shuffle, 0.0, 1.0),
            tau_motion=check_real(f"{self.name}: tau_motion", c.tau_motion),
        )
        if not isinstance(c.perm, str) or c.perm not in PERM_MODES:
            raise ValueError(f"disorder: perm must be one of {PERM_MODES}, got {c.perm!r}")
        if c.perm == "strong" and c.count_min < 4:
            raise ValueError("disorder: perm='strong' needs count_min >= 4 (no such permutation of 2 or 3 frames)")
        if c.perm == "no_reverse" and c.count_min < 3:
            raise ValueError("disorder: perm='no_reverse' needs count_min >= 3 (the only shuffle of 2 is reversal)")

    def max_presented(self) -> int:  # most frames one sample shows (sf2t.models.context)
        return self.cfg.count_max

    def min_frames(self) -> int:
        return self.cfg.count_min

    def chance(self) -> float:
        return 0.5

    def plan(self, source: str, num_frames: int, rng: random.Random) -> FramePlan:
        return plan_uniform_fragment(self.name, self.cfg, source, num_frames, rng)

    pixels = "thumbs"  # build reads only the frames' thumbnails: the sampler passes those, no frame copy

    def build(
        self,
        plan: FramePlan,
        frames: torch.Tensor | None,
        rng: random.Random,
        extra=None,
        thumbs: torch.Tensor | None = None,
    ) -> Sample:
        c = self.cfg
        count = len(plan.frame_ids)
        check_thumbs(self.name, thumbs, count) if thumbs is not None else check_frames(self.name, frames, count)
        t = thumbs if thumbs is not None else thumbnails(frames)  # [F, th, tw]
        mad = PairMAD(t)  # the pairs the guard and a drawn permutation read, computed as needed (host floats)
        require_motion(plan.source, mad, c.tau_motion)
        shuffled = rng.random() < c.p_shuffle
        perm: tuple[int, ...] = tuple(range(count))
        if shuffled:  # moved frames must differ from the frames whose places they take
            perm = visible_permutation(plan.source, allowed_permutations(count, c.perm), mad, c.tau_motion, rng)
        q, k = templates.question(self.name, rng)
        in_order = not shuffled
        meta = {
            "source": plan.source,
            "source_frames": [plan.frame_ids[i] for i in perm],
            "task": self.name,
            "params": {
                "num_frames": count,
                "stride": plan.params["stride"],
                "window": [plan.frame_ids[0], plan.frame_ids[-1] + 1],
                "permutation": list(perm),
                "perm_mode": c.perm,
                "paraphrase": k,
            },
            "answer": {"in_order": in_order},
        }
        return Sample(self.name, q, templates.disorder_answer(in_order), list(perm), meta)
