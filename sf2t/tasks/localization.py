"""``localization`` (docs/tasks.md): a target image (a square crop, side 1/4-1/3 of the short side, from a frame of a
*different* video), then F ~ U[count_min, count_max] frames at a uniform stride; the target is pasted at one
random position into presented frames a..b (1 <= a <= b <= F). Answer ``"Frames {a}-{b}."``.

The crop comes from the other video's frame at its own resolution and is resized (PIL-style bilinear: a triangle
filter, widened when shrinking; fixed-point weights, so the frames' device does not change a pixel) so its side is
the same fraction of this video's short side. It must be visible: the mean
grey MAD between the target and the region it covers, over frames a..b, is at least ``tau_region``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from sf2t._checks import check_real, is_real
from sf2t._plural import counted
from sf2t.tasks import templates
from sf2t.tasks.base import (
    FramePlan,
    Sample,
    SkipSample,
    check_frames,
    check_num_frames,
    check_range,
    checked_config,
    uniform_window,
)
from sf2t.tasks.consistency import TAU_REGION, _grey

__all__ = ["LocalizationConfig", "LocalizationTask"]


@dataclass
class LocalizationConfig:
    count_min: int = field(default=6, metadata={"help": "fewest presented frames F"})
    count_max: int = field(default=12, metadata={"help": "most presented frames F"})
    stride_min: int = field(default=1, metadata={"help": "smallest stride between presented source frames"})
    stride_max: int = field(default=4, metadata={"help": "largest stride (shrunk to fit short videos)"})
    side_min: float = field(default=0.25, metadata={"help": "smallest target side, fraction of the short side"})
    side_max: float = field(default=1 / 3, metadata={"help": "largest target side, fraction of the short side"})
    tau_region: float = field(default=TAU_REGION, metadata={"help": "the pasted target must differ by this MAD"})


WEIGHT_BITS = 14


def _triangle_weights(n_in: int, n_out: int) -> torch.Tensor:
    """[n_out, n_in] fixed-point (2**WEIGHT_BITS) weights of a bilinear (triangle) filter that widens by the scale
    when shrinking (PIL's bilinear resize), computed in float64 on the CPU."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    w = torch.zeros(n_out, n_in, dtype=torch.float64)
    j = torch.arange(n_in, dtype=torch.float64)
    for i in range(n_out):
        center = (i + 0.5) * scale
        row = (1.0 - ((j + 0.5 - center) / support).abs()).clamp_(min=0.0)
        w[i] = row / row.sum()
    return (w * 2**WEIGHT_BITS).round_()


def resize_square(img: torch.Tensor, side: int) -> torch.Tensor:
    """uint8 [s, s, 3] -> uint8 [side, side, 3] on ``img``'s device: separable triangle-filter resize, width then
    height, with integer weights and rounding to uint8 between the passes. Every sum is an integer below 2**53, so
    float64 arithmetic is exact and CPU and GPU give the same pixels."""
    s = int(img.shape[0])
    w = _triangle_weights(s, side).to(img.device)  # [side, s]
    half, one = 2.0 ** (WEIGHT_BITS - 1), 2.0**WEIGHT_BITS
    x = img.to(torch.float64).permute(2, 0, 1)  # [3, s, s]
    x = ((x @ w.T + half) / one).floor_().clamp_(0, 255)  # width: [3, s, side]
    x = ((w @ x + half) / one).floor_().clamp_(0, 255)  # height: [3, side, side]
    return x.to(torch.uint8).permute(1, 2, 0).contiguous()


class LocalizationTask:
    name = "localization"
    needs_other_video = True  # the planner must hand ``plan`` a different video for the target

    def __init__(self, cfg: LocalizationConfig | None = None):
        c = cfg or LocalizationConfig()
        lo, hi = check_range(self.name, "count_min", c.count_min, "count_max", c.count_max, 1)
        s_lo, s_hi = check_range(self.name, "stride_min", c.stride_min, "stride_max", c.stride_max, 1)
        if not (is_real(c.side_min) and is_real(c.side_max) and 0.0 < c.side_min <= c.side_max < 1.0):
            raise ValueError(f"localization: need 0 < side_min <= side_max < 1, got {c.side_min!r}, {c.side_max!r}")
        self.cfg = checked_config(
            c,
            count_min=lo,
            count_max=hi,
            stride_min=s_lo,
            stride_max=s_hi,
            side_min=float(c.side_min),
            side_max=float(c.side_max),
            tau_region=check_real(f"{self.name}: tau_region", c.tau_region),
        )

    def max_presented(self) -> int:  # most frames one sample shows (sf2t.models.context)
        return self.cfg.count_max

    def min_frames(self) -> int:
        return self.cfg.count_min

    def chance(self) -> float:
        f = range(self.cfg.count_min, self.cfg.count_max + 1)
        return sum(2.0 / (n * (n + 1)) for n in f) / len(f)

    # plan takes ``side_max=``: the target's model tokens follow its size (LLaVA anyres), so a sample factory with
    # a context to fit caps the side per video (sf2t.models.context.TargetBudget)
    sized_target = True

    def plan(
        self,
        source: str,
        num_frames: int,
        rng: random.Random,
        other: tuple[str, int] | None = None,
        side_max: Callable[[int], float] | None = None,
    ) -> FramePlan:
        """``other``: (path, number of frames) of a different video, for the target. ``side_max(count)``: the largest
        side fraction a sample of ``count`` presented frames may draw (below the config's ``side_max`` where larger
        targets cannot fit the model's context; never below ``side_min``): the side is then uniform in what is
        left, and everything else drawn as without it (the same random draws)."""
        c = self.cfg
        if other is None or other[0] == source:
            raise ValueError(
                "localization needs a second video for its target image: give plan(..., other=(path, "
                "num_frames)) with a different video (a task mix with one video cannot use it)"
            )
        num_frames = check_num_frames(self.name, num_frames)
        if num_frames < c.count_min:
            raise SkipSample(
                source, "too_short", f"too short: {counted(num_frames, 'frame')}, localization needs {c.count_min}"
            )
        count = rng.randint(c.count_min, min(c.count_max, num_frames))
        ids, stride = uniform_window(source, num_frames, count, rng, stride_min=c.stride_min, stride_max=c.stride_max)
        # (a, b) uniform over the count * (count + 1) / 2 spans: drawing a, then b in a..count, made late and
        # one-frame spans several times as likely as early ones (a model could learn "the end" without looking)
        a, b = rng.choice([(a, b) for a in range(1, count + 1) for b in range(a, count + 1)])
        params = {
            "num_frames": count,
            "stride": stride,
            "span": [a, b],
            "side": rng.uniform(
                c.side_min, c.side_max if side_max is None else max(c.side_min, min(c.side_max, side_max(count)))
            ),
            "u": [rng.random(), rng.random(), rng.random(), rng.random()],
            "target_source": other[0],
            "target_frame": rng.randrange(max(1, other[1])),
        }
        return FramePlan(self.name, source, ids, params, extra=[(other[0], params["target_frame"])])

    shared_frames = True  # build takes ``rows=`` and reads the caller's frames in place (see ``build``)

    def build(self, plan: FramePlan, frames: torch.Tensor, rng: random.Random, extra=None, rows=None) -> Sample:
        """``frames``: the decoded frames, uint8 [n, H, W, 3]; ``rows[k]``: the row of ``frames`` holding
        ``plan.frame_ids[k]`` (default: row k). ``frames`` is only read: the presented frames are gathered into
        one new tensor (the only copy) and the target is pasted there."""
        c = self.cfg
        if not extra:
            raise ValueError("localization.build needs extra=[target source frame] (decoded plan.extra)")
        check_frames(self.name, frames, len(plan.frame_ids), rows)
        check_frames(self.name, extra[0][None] if isinstance(extra[0], torch.Tensor) else extra[0], 1, arg="extra[0]")
        src = extra[0].to(frames.device)  # [h2, w2, 3]
        p = plan.params
        h, w = int(frames.shape[1]), int(frames.shape[2])
        if rows is None:
            rows = range(len(plan.frame_ids))
        h2, w2 = int(src.shape[0]), int(src.shape[1])
        side = max(1, round(p["side"] * min(h, w)))  # the target's side in this video's pixels
        side2 = max(1, round(p["side"] * min(h2, w2)))  # the crop's side in the other video's pixels
        u = p["u"]
        cx, cy = int(u[0] * (w2 - side2 + 1)), int(u[1] * (h2 - side2 + 1))
        crop = src[cy : cy + side2, cx : cx + side2]  # [side2, side2, 3]
        target = resize_square(crop, side) if side2 != side else crop.contiguous()
        px, py = int(u[2] * (w - side + 1)), int(u[3] * (h - side + 1))
        a, b = p["span"]
        # [F, H, W, 3], chronological = presented order: one gathered copy, on the frames' device
        presented = frames.index_select(0, torch.tensor([int(r) for r in rows], device=frames.device))
        region = presented[a - 1 : b, py : py + side, px : px + side]  # [b-a+1, side, side, 3]
        m = float((_grey(region) - _grey(target)[None]).abs().mean())
        if m < c.tau_region:
            raise SkipSample(
                plan.source, "static", f"the target would not be visible (MAD {m:.2f} < tau_region {c.tau_region})"
            )
        region.copy_(target.expand_as(region))
        q, k = templates.question(self.name, rng)
        count = len(plan.frame_ids)
        meta = {
            "source": plan.source,
            "source_frames": list(plan.frame_ids),
            "task": self.name,
            "params": {
                "num_frames": count,
                "stride": p["stride"],
                "window": [plan.frame_ids[0], plan.frame_ids[-1] + 1],
                "target_source": p["target_source"],
                "target_frame": p["target_frame"],
                "target_box": [cx, cy, cx + side2, cy + side2],
                "paste_box": [px, py, px + side, py + side],
                "paraphrase": k,
            },
            "answer": {"start": a, "end": b},
        }
        return Sample(
            self.name, q, templates.localization_answer(a, b), list(range(count)), meta, frames=presented, image=target
        )
