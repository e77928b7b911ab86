"""``rearrangement`` (docs/tasks.md): F ~ U[count_min, count_max] frames at a uniform stride, presented under a
non-identity permutation whose moved frames visibly differ from the frames whose places they take. The answer
lists the presented positions (1-based) in chronological order: presented order (frame 3, frame 1, frame 2)
is answered ``"2, 3, 1"`` (the earliest frame is shown 2nd, the next 3rd, the last 1st)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

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
from sf2t.tasks.disorder import MAX_COUNT, allowed_permutations
from sf2t.tasks.guard import TAU_MOTION, PairMAD, require_motion, thumbnails, visible_permutation

__all__ = ["RearrangementConfig", "RearrangementTask", "positions_answer"]


@dataclass
class RearrangementConfig:
    count_min: int = field(default=3, metadata={"help": "fewest presented frames F"})
    count_max: int = field(default=6, metadata={"help": "most presented frames F (at most 8)"})
    stride_min: int = field(default=1, metadata={"help": "smallest stride between chronological source frames"})
    stride_max: int = field(default=4, metadata={"help": "largest stride (shrunk to fit short videos)"})
    tau_motion: float = field(default=TAU_MOTION, metadata={"help": "motion guard threshold (thumbnail MAD)"})


def positions_answer(perm: list[int] | tuple[int, ...]) -> list[int]:
    """Presented positions (1-based) of the chronological frames 0..F-1, for presented order ``perm``."""
    pos = [0] * len(perm)
    for p, c in enumerate(perm):
        pos[c] = p + 1
    return pos


class RearrangementTask:
    name = "rearrangement"

    def __init__(self, cfg: RearrangementConfig | None = None):
        c = cfg or RearrangementConfig()
        lo, hi = check_range(self.name, "count_min", c.count_min, "count_max", c.count_max, 2)
        if hi > MAX_COUNT:
            raise ValueError(
                f"rearrangement: count_max must be <= {MAX_COUNT} (all permutations are enumerated), got {hi}"
            )
        s_lo, s_hi = check_range(self.name, "stride_min", c.stride_min, "stride_max", c.stride_max, 1)
        tau = check_real(f"{self.name}: tau_motion", c.tau_motion)
        self.cfg = checked_config(c, count_min=lo, count_max=hi, stride_min=s_lo, stride_max=s_hi, tau_motion=tau)

    def max_presented(self) -> int:  # most frames one sample shows (sf2t.models.context)
        return self.cfg.count_max

    def min_frames(self) -> int:
        return self.cfg.count_min

    def chance(self) -> float:
        sizes = range(self.cfg.count_min, self.cfg.count_max + 1)
        return sum(1.0 / len(allowed_permutations(n, "any")) for n in sizes) / len(sizes)

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
        mad = PairMAD(t)  # the pairs the guard and a drawn permutation read, computed as needed
        require_motion(plan.source, mad, c.tau_motion)
        perm = visible_permutation(plan.source, allowed_permutations(count, "any"), mad, c.tau_motion, rng)
        pos = positions_answer(perm)
        q, k = templates.question(self.name, rng)
        meta = {
            "source": plan.source,
            "source_frames": [plan.frame_ids[i] for i in perm],
            "task": self.name,
            "params": {
                "num_frames": count,
                "stride": plan.params["stride"],
                "window": [plan.frame_ids[0], plan.frame_ids[-1] + 1],
                "permutation": list(perm),
                "paraphrase": k,
            },
            "answer": {"positions": pos},
        }
        return Sample(self.name, q, templates.rearrangement_answer(pos), list(perm), meta)
