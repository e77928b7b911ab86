"""``speed`` (docs/tasks.md): two parts from the same start frame, F1, F2 ~ U[count_min, count_max] frames at strides
s1, s2 with s2 / s1 in {1/2, 1, 2} (each ratio equally likely). The part with the larger stride plays faster:
the answer is ``"first"``, ``"second"`` or ``"same"``. Both parts must show visible motion between consecutive
frames (else "same" could not be told from "faster")."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch

from sf2t._checks import check_real
from sf2t._plural import counted
from sf2t.tasks import templates
from sf2t.tasks.base import (
    FramePlan,
    Sample,
    SkipSample,
    check_frames,
    check_num_frames,
    check_range,
    check_thumbs,
    checked_config,
)
from sf2t.tasks.guard import TAU_MOTION, PairMAD, require_motion, thumbnails

__all__ = ["SpeedConfig", "SpeedTask", "RATIOS"]

RATIOS = ("half", "same", "double")  # s2 / s1 = 1/2, 1, 2


@dataclass
class SpeedConfig:
    count_min: int = field(default=4, metadata={"help": "fewest frames per part"})
    count_max: int = field(default=8, metadata={"help": "most frames per part"})
    stride_min: int = field(default=1, metadata={"help": "smallest stride of the slower part"})
    stride_max: int = field(default=3, metadata={"help": "largest stride of the slower part (shrunk to fit)"})
    tau_motion: float = field(default=TAU_MOTION, metadata={"help": "motion guard threshold (thumbnail MAD)"})


class SpeedTask:
    name = "speed"

    def __init__(self, cfg: SpeedConfig | None = None):
        c = cfg or SpeedConfig()
        lo, hi = check_range(self.name, "count_min", c.count_min, "count_max", c.count_max, 2)
        s_lo, s_hi = check_range(self.name, "stride_min", c.stride_min, "stride_max", c.stride_max, 1)
        tau = check_real(f"{self.name}: tau_motion", c.tau_motion)
        self.cfg = checked_config(c, count_min=lo, count_max=hi, stride_min=s_lo, stride_max=s_hi, tau_motion=tau)

    def max_presented(self) -> int:  # most frames one sample shows (sf2t.models.context)
        return 2 * self.cfg.count_max  # the two parts, one after the other

    def min_frames(self) -> int:
        return 2 * (self.cfg.count_min - 1) + 1  # the fast part at stride 2

    def chance(self) -> float:
        return 1.0 / 3.0

    def plan(self, source: str, num_frames: int, rng: random.Random) -> FramePlan:
        c = self.cfg
        num_frames = check_num_frames(self.name, num_frames)
        if num_frames < self.min_frames():
            raise SkipSample(
                source, "too_short", f"too short: {counted(num_frames, 'frame')}, speed needs {self.min_frames()}"
            )
        ratio = RATIOS[rng.randrange(3)]
        m1, m2 = {"half": (2, 1), "same": (1, 1), "double": (1, 2)}[ratio]  # stride multipliers of the parts
        # shrunk to fit a part at stride 2, whatever the ratio: the lengths are stated in the question, so they
        # must not depend on the answer (a cap per ratio made the shorter part the faster one on short videos)
        fit = (num_frames - 1) // 2 + 1
        n1 = min(rng.randint(c.count_min, c.count_max), fit)
        n2 = min(rng.randint(c.count_min, c.count_max), fit)
        if min(n1, n2) < c.count_min:
            raise SkipSample(
                source, "too_short", f"too short: {counted(num_frames, 'frame')} for two parts of {c.count_min}"
            )
        units = max((n1 - 1) * m1, (n2 - 1) * m2, 1)
        s_hi = max(1, min(c.stride_max, (num_frames - 1) // units))
        s = rng.randint(max(1, min(c.stride_min, s_hi)), s_hi)
        s1, s2 = m1 * s, m2 * s
        span = units * s + 1
        start = rng.randint(0, num_frames - span)
        part1 = [start + k * s1 for k in range(n1)]
        part2 = [start + k * s2 for k in range(n2)]
        ids = sorted(set(part1) | set(part2))
        row = {f: i for i, f in enumerate(ids)}
        # params refer to rows of frame_ids (not frame numbers), so a planner may shift frame_ids by a window start
        rows = {"rows1": [row[f] for f in part1], "rows2": [row[f] for f in part2]}
        return FramePlan(self.name, source, ids, {**rows, "strides": [s1, s2], "ratio": ratio})

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
        idx1, idx2 = plan.params["rows1"], plan.params["rows2"]
        p1 = [plan.frame_ids[r] for r in idx1]
        p2 = [plan.frame_ids[r] for r in idx2]
        if thumbs is None:
            check_frames(self.name, frames, len(plan.frame_ids))
            thumbs = thumbnails(frames)  # [n, th, tw], once for both parts (they share their first frames)
        else:
            check_thumbs(self.name, thumbs, len(plan.frame_ids))
        mad = PairMAD(thumbs)  # both parts' consecutive pairs, read in place (no gathered copy of the thumbnails)
        for part, idx in (("first", idx1), ("second", idx2)):
            require_motion(plan.source, mad, c.tau_motion, f"{part} part", rows=idx)
        s1, s2 = plan.params["strides"]
        faster = "first" if s1 > s2 else "second" if s2 > s1 else "same"
        q, k = templates.question(self.name, rng, n1=len(p1), n2=len(p2))
        meta = {
            "source": plan.source,
            "source_frames": list(p1) + list(p2),
            "task": self.name,
            "params": {"parts": [len(p1), len(p2)], "strides": [s1, s2], "start": p1[0], "paraphrase": k},
            "answer": {"faster": faster},
        }
        return Sample(self.name, q, templates.speed_answer(faster), idx1 + idx2, meta)
