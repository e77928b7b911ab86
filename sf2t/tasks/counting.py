"""``counting`` (docs/tasks.md): F ~ U[count_min, count_max] frames at a uniform stride in a random window;
the answer is ``"{F}"``. Order does not matter, so no motion guard is needed (``guard=True`` adds one)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch

from sf2t._checks import check_bool, check_real
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
from sf2t.tasks.guard import TAU_MOTION, require_motion, thumbnails

__all__ = ["CountingConfig", "CountingTask"]


@dataclass
class CountingConfig:
    count_min: int = field(default=2, metadata={"help": "fewest presented frames F"})
    count_max: int = field(default=16, metadata={"help": "most presented frames F"})
    stride_min: int = field(default=1, metadata={"help": "smallest stride between presented source frames"})
    stride_max: int = field(default=4, metadata={"help": "largest stride (shrunk to fit short videos)"})
    guard: bool = field(default=False, metadata={"help": "also require visible motion between frames"})
    tau_motion: float = field(default=TAU_MOTION, metadata={"help": "motion guard threshold (thumbnail MAD)"})


class CountingTask:
    name = "counting"

    def __init__(self, cfg: CountingConfig | None = None):
        c = cfg or CountingConfig()
        lo, hi = check_range(self.name, "count_min", c.count_min, "count_max", c.count_max, 1)
        s_lo, s_hi = check_range(self.name, "stride_min", c.stride_min, "stride_max", c.stride_max, 1)
        self.cfg = checked_config(
            c,
            count_min=lo,
            count_max=hi,
            stride_min=s_lo,
            stride_max=s_hi,
            guard=check_bool(f"{self.name}: guard", c.guard),
            tau_motion=check_real(f"{self.name}: tau_motion", c.tau_motion),
        )

    @property
    def pixels(self) -> str:  # only the optional motion guard looks at the frames, through their thumbnails
        return "thumbs" if self.cfg.guard else "none"

    def max_presented(self) -> int:  # most frames one sample shows (sf2t.models.context)
        return self.cfg.count_max

    def min_frames(self) -> int:
        return self.cfg.count_min

    def chance(self) -> float:
        return 1.0 / (self.cfg.count_max - self.cfg.count_min + 1)

    def plan(self, source: str, num_frames: int, rng: random.Random) -> FramePlan:
        return plan_uniform_fragment(self.name, self.cfg, source, num_frames, rng)

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
        if thumbs is not None:
            check_thumbs(self.name, thumbs, count)
        elif frames is not None or c.guard:  # (frames are not read without the guard, but must fit the plan)
            check_frames(self.name, frames, count)
        if c.guard:
            require_motion(plan.source, thumbs if thumbs is not None else thumbnails(frames), c.tau_motion)
        q, k = templates.question(self.name, rng)
        meta = {
            "source": plan.source,
            "source_frames": list(plan.frame_ids),
            "task": self.name,
            "params": {
                "num_frames": count,
                "stride": plan.params["stride"],
                "window": [plan.frame_ids[0], plan.frame_ids[-1] + 1],
                "count_range": [c.count_min, c.count_max],
                "paraphrase": k,
            },
            "answer": {"count": count},
        }
        return Sample(self.name, q, templates.counting_answer(count), list(range(count)), meta)
