"""``consistency`` (TASKS.md): two presented frames, A = source frame i and B, which is with probability 1/3
each an identical copy of A, A with one cell of a 3x3 grid replaced by the same cell of frame j (cell MAD >=
``tau_region``), or frame j itself (whole-frame MAD >= ``tau_region``). Answers ``"Identical."``,
``"Different: {cell}."`` or ``"Different: whole frame."``. Every pair (i, j) must pass the cell check, whichever kind
was drawn, so "identical" and "cell" fail alike and a still video gives no sample (see ``build``).

B is built on the frames' device (a slice assignment into a new tensor, only for a replaced cell; identical and
whole-frame samples show the decoded frames as they are): no host round trip for pixels. MAD here is
measured like the motion guard's, on the 64-px-short-side grey thumbnails (``sf2t.ops.thumbnail``), 0-255 scale:
a cell's MAD over the thumbnail pixels of that cell of the grid.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch

from sf2t.tasks import templates
from sf2t.tasks.base import FramePlan, Sample, SkipSample, check_range
from sf2t.tasks.guard import thumbnails

__all__ = ["ConsistencyConfig", "ConsistencyTask", "CELLS", "TAU_REGION", "cell_box", "KINDS"]

TAU_REGION = 8.0  # TASKS.md default
CELLS = ("top-left", "top", "top-right", "left", "center", "right", "bottom-left", "bottom", "bottom-right")
KINDS = ("identical", "cell", "whole")
_LUMA = (0.299, 0.587, 0.114)


@dataclass
class ConsistencyConfig:
    gap_min: int = field(default=4, metadata={"help": "fewest source frames between A (frame i) and frame j"})
    gap_max: int = field(default=32, metadata={"help": "most source frames between frames i and j (shrunk to fit)"})
    tau_region: float = field(default=TAU_REGION, metadata={"help": "a changed cell / frame must differ by this MAD"})


def cell_box(cell: int, height: int, width: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of cell ``cell`` (row-major, 0 = top-left) of a 3x3 grid over a height x width frame."""
    r, c = divmod(cell, 3)
    return (c * width // 3, r * height // 3, (c + 1) * width // 3, (r + 1) * height // 3)


def _grey(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of uint8 RGB [..., 3] as float32 [...], channel by channel (faster than a K=3 matmul)."""
    g = x[..., 0].to(torch.float32).mul_(_LUMA[0])
    return g.add_(x[..., 1], alpha=_LUMA[1]).add_(x[..., 2], alpha=_LUMA[2])


def cell_mads(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Thumbnail MAD of each of the 9 cells between frames a and b ([H, W, 3]): (float32 [9], whole-frame MAD)."""
    return _cell_mads(thumbnails(torch.stack([a, b])))


def _cell_mads(t: torch.Tensor) -> tuple[torch.Tensor, float]:
    """:func:`cell_mads` from the two frames' thumbnails [2, th, tw]."""
    d = (t[0] - t[1]).abs()
    th, tw = d.shape
    cells = torch.stack([d[y0:y1, x0:x1].mean() for x0, y0, x1, y1 in (cell_box(k, th, tw) for k in range(9))])
    return cells, float(d.mean())


class ConsistencyTask:
    name = "consistency"

    def __init__(self, cfg: ConsistencyConfig | None = None):
        self.cfg = cfg or ConsistencyConfig()
        check_range(self.name, "gap_min", self.cfg.gap_min, "gap_max", self.cfg.gap_max, 1)

    def min_frames(self) -> int:
        return self.cfg.gap_min + 1

    def chance(self) -> float:
        # a uniform guess over the 11 answers: 1/3 identical, 1/3 whole, 1/3 spread over 9 cells
        return (1 / 3 + 1 / 3 + 1 / 3) / 11

    def plan(self, source: str, num_frames: int, rng: random.Random) -> FramePlan:
        c = self.cfg
        if num_frames < self.min_frames():
            raise SkipSample(
                source,
                "too_short",
                f"too short: {num_frames} frames, consistency needs {self.min_frames()} (gap_min {c.gap_min})",
            )
        gap = rng.randint(c.gap_min, min(c.gap_max, num_frames - 1))
        lo = rng.randint(0, num_frames - 1 - gap)
        i, j = (lo, lo + gap) if rng.random() < 0.5 else (lo + gap, lo)  # A may come before or after j
        kind = KINDS[rng.randrange(3)]
        # params refer to rows of frame_ids (not frame numbers), so a planner may shift frame_ids by a window start
        return FramePlan(self.name, source, sorted((i, j)), {"a_row": int(i > j), "j_row": int(j > i), "kind": kind})

    shared_frames = True  # build takes ``rows=`` and reads the caller's frames in place (see ``build``)

    def build(self, plan: FramePlan, frames: torch.Tensor, rng: random.Random, extra=None, rows=None) -> Sample:
        """``frames``: the decoded frames, uint8 [n, H, W, 3]; ``rows[k]``: the row of ``frames`` holding
        ``plan.frame_ids[k]`` (default: row k). ``frames`` is only read. Identical and whole-frame samples show
        rows of ``frames`` as they are (``Sample.frames`` None, ``src_index`` in rows of ``frames``); a cell
        sample builds its two presented frames (one new tensor, each frame written once)."""
        c = self.cfg
        ra, rj, kind = plan.params["a_row"], plan.params["j_row"], plan.params["kind"]
        i, j = plan.frame_ids[ra], plan.frame_ids[rj]
        fa, fj = (ra, rj) if rows is None else (int(rows[ra]), int(rows[rj]))  # rows of ``frames``
        a, other = frames[fa], frames[fj]  # [H, W, 3] views
        h, w = a.shape[0], a.shape[1]
        cell = None
        presented = None
        src_index = [fa, fa]
        # Every kind needs a pair with a changed cell (cell MAD >= tau_region), "identical" too: were a pair that
        # fails it still usable as "identical", failures would tilt the answers toward "Identical." and a static
        # video would give nothing else. "whole" also needs the whole-frame MAD, which small objects on a still
        # background rarely reach: such videos give fewer "whole" samples (required of every kind, it left them
        # with no consistency sample at all). The two frames' thumbnails, read in place (no gathered copy).
        mads, whole = _cell_mads(thumbnails(frames, index=torch.tensor([fa, fj], device=frames.device)))
        mads = mads.cpu()
        ok = [k for k in range(9) if float(mads[k]) >= c.tau_region and min(h, w) >= 3]
        if not ok:
            raise SkipSample(
                plan.source,
                "static",
                f"no cell differs between frames {i} and {j} "
                f"(max cell MAD {float(mads.max()):.2f} < tau_region {c.tau_region})",
            )
        if kind == "whole" and whole < c.tau_region:
            raise SkipSample(
                plan.source, "static", f"frames {i} and {j} differ by MAD {whole:.2f} < tau_region {c.tau_region}"
            )
        if kind == "cell":
            cell = ok[rng.randrange(len(ok))]
            x0, y0, x1, y1 = cell_box(cell, h, w)
            presented = torch.empty((2, h, w, 3), dtype=frames.dtype, device=frames.device)  # on the frames' device
            presented[0] = a
            presented[1] = a
            presented[1, y0:y1, x0:x1] = other[y0:y1, x0:x1]
            src_index = [0, 1]
        elif kind == "whole":
            src_index = [fa, fj]
        q, k = templates.question(self.name, rng)
        answer = {"kind": kind, "cell": None if cell is None else CELLS[cell]}
        meta = {
            "source": plan.source,
            "source_frames": [i, j if kind == "whole" else i],
            "task": self.name,
            "params": {
                "a": i,
                "j": j,
                "kind": kind,
                "cell_box": None if cell is None else list(cell_box(cell, h, w)),
                "tau_region": c.tau_region,
                "paraphrase": k,
            },
            "answer": answer,
        }
        return Sample(
            self.name, q, templates.consistency_answer(kind, answer["cell"]), src_index, meta, frames=presented
        )
