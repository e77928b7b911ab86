"""``consistency`` (docs/tasks.md): two presented frames, A = source frame i and B, which is with probability 1/3
each an identical copy of A, A with one cell of a 3x3 grid replaced by the same cell of frame j (cell MAD >=
``tau_region``), or frame j itself (whole-frame MAD >= ``tau_region``). Answers ``"Identical."``,
``"Different: {cell}."`` or ``"Different: whole frame."``.

Balance. The kind is drawn first, then ``candidate_frames`` source frames: a pair (i, j) drawn as gap ~ U[gap_min,
gap_max], a start and an order, and further frames at gaps ~ U[gap_min, gap_max] on either side of i. Every pair of
them whose gap is in [gap_min, gap_max] is a candidate: (i, j) first, then the others in a seeded order, each with a
seeded choice of which frame is A. ``build`` takes the first candidate that qualifies *for the drawn kind*: a changed
cell (cell MAD >= ``tau_region``) for "identical" and "cell", a changed cell and whole-frame MAD >= ``tau_region`` for
"whole". So a kind that fewer pairs satisfy ("whole", on small objects against a still background) is tried on every
candidate before the plan gives up, rather than lost to an easier kind when one pair fails; and "identical" and "cell"
need the same event, so they stay equally likely. A plan none of whose candidates qualifies for its kind gives no
sample (``SkipSample("static")``, or ``"no_whole_change"`` when cells changed but "whole" was drawn and no pair
reaches the whole-frame MAD: not a still video, so callers do not drop the video for it) and the caller draws again,
kind included: a still video gives no sample of any kind; a video with no whole-frame change of ``tau_region`` between
frames at most ``gap_max`` apart (e.g. one small sprite on a still background) cannot give "whole" and gives
"identical" and "cell" 1/2 each; where such pairs exist but are rare, "whole" falls short by the share of plans whose
candidates miss them all. ``candidate_frames=2`` is the one-pair plan (no search).

B is built on the frames' device (a slice assignment into a new tensor, only for a replaced cell; identical and
whole-frame samples show the decoded frames as they are): no host round trip for pixels. MAD here is
measured like the motion guard's, on the 64-px-short-side grey thumbnails (``sf2t.ops.thumbnail``), 0-255 scale:
a cell's MAD over the thumbnail pixels of that cell of the grid.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

import torch

from sf2t._checks import check_int, check_real
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
)
from sf2t.tasks.guard import thumbnails

__all__ = ["ConsistencyConfig", "ConsistencyTask", "CELLS", "TAU_REGION", "cell_box", "KINDS"]

TAU_REGION = 8.0  # the default of ConsistencyConfig / LocalizationConfig.tau_region (docs/tasks.md)
CELLS = ("top-left", "top", "top-right", "left", "center", "right", "bottom-left", "bottom", "bottom-right")
KINDS = ("identical", "cell", "whole")
_LUMA = (0.299, 0.587, 0.114)


@dataclass
class ConsistencyConfig:
    gap_min: int = field(default=4, metadata={"help": "fewest source frames between A (frame i) and frame j"})
    gap_max: int = field(default=32, metadata={"help": "most source frames between frames i and j (shrunk to fit)"})
    tau_region: float = field(default=TAU_REGION, metadata={"help": "a changed cell / frame must differ by this MAD"})
    candidate_frames: int = field(
        default=5,
        metadata={"help": "frames decoded per sample; their pairs are tried for the drawn kind (2: one pair)"},
    )


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
    cells, whole = _pair_mads(thumbnails(torch.stack([a, b])), [(0, 1)])
    return cells[0], float(whole[0])


def _pair_mads(t: torch.Tensor, pairs: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Between the thumbnails t[a] and t[b] ([n, th, tw]) of each pair (a, b): the 9 cells' MADs (float32 [p, 9])
    and the whole-frame MADs (float32 [p])."""
    ia, ib = (torch.tensor(x, device=t.device) for x in zip(*pairs))
    d = (t.index_select(0, ia) - t.index_select(0, ib)).abs()
    th, tw = d.shape[1:]
    boxes = (cell_box(k, th, tw) for k in range(9))
    cells = torch.stack([d[:, y0:y1, x0:x1].mean(dim=(1, 2)) for x0, y0, x1, y1 in boxes], dim=1)
    return cells, d.mean(dim=(1, 2))


class ConsistencyTask:
    name = "consistency"

    def __init__(self, cfg: ConsistencyConfig | None = None):
        c = cfg or ConsistencyConfig()
        lo, hi = check_range(self.name, "gap_min", c.gap_min, "gap_max", c.gap_max, 1)
        self.cfg = checked_config(
            c,
            gap_min=lo,
            gap_max=hi,
            tau_region=check_real(f"{self.name}: tau_region", c.tau_region),
            candidate_frames=check_int(f"{self.name}: candidate_frames", c.candidate_frames, min_value=2),
        )

    def max_presented(self) -> int:  # most frames one sample shows (sf2t.models.context)
        return 2  # frame A and frame B

    def min_frames(self) -> int:
        return self.cfg.gap_min + 1

    def chance(self) -> float:
        # a uniform guess over the 11 answers: 1/3 identical, 1/3 whole, 1/3 spread over 9 cells
        return (1 / 3 + 1 / 3 + 1 / 3) / 11

    def plan(self, source: str, num_frames: int, rng: random.Random) -> FramePlan:
        c = self.cfg
        num_frames = check_num_frames(self.name, num_frames)
        if num_frames < self.min_frames():
            raise SkipSample(
                source,
                "too_short",
                f"too short: {counted(num_frames, 'frame')}, consistency needs {self.min_frames()} "
                f"(gap_min {c.gap_min})",
            )
        # The kind first: the candidates below are drawn alike for every kind, and build tries them all for this
        # kind, so a kind that fewer pairs satisfy is not swapped for another when one pair fails.
        kind = KINDS[rng.randrange(3)]
        top = min(c.gap_max, num_frames - 1)
        gap = rng.randint(c.gap_min, top)
        lo = rng.randint(0, num_frames - 1 - gap)
        i, j = (lo, lo + gap) if rng.random() < 0.5 else (lo + gap, lo)  # A may come before or after j
        picked = [i, j]
        reach = min(top, max(i, num_frames - 1 - i))  # >= gap: each further gap fits on at least one side of i
        for _ in range(c.candidate_frames - 2):
            g = rng.randint(c.gap_min, reach)
            sides = [f for f in (i - g, i + g) if 0 <= f < num_frames]
            picked.append(sides[rng.randrange(len(sides))])
        picked = list(dict.fromkeys(picked))  # repeats dropped
        ids = sorted(picked)
        row = {f: r for r, f in enumerate(ids)}
        others = [
            (x, y) if rng.random() < 0.5 else (y, x)  # (A, j)
            for x, y in itertools.combinations(picked, 2)
            if (x, y) != (i, j) and c.gap_min <= abs(x - y) <= c.gap_max
        ]
        rng.shuffle(others)
        pairs = [[row[x], row[y]] for x, y in [(i, j), *others]]
        # params refer to rows of frame_ids (not frame numbers), so a planner may shift frame_ids by a window start;
        # pairs: the candidates (A row, j row) in the order build tries them
        return FramePlan(self.name, source, ids, {"pairs": pairs, "kind": kind})

    shared_frames = True  # build takes ``rows=`` and reads the caller's frames in place (see ``build``)

    def _first_fit(self, frames: torch.Tensor, pairs: list[tuple[int, int]], kind: str):
        """(position, its 9 cell MADs, seen) of the first of ``pairs`` (A row, j row of ``frames``) that qualifies
        for ``kind``; position None when none does. ``seen``: (max cell MAD, whole MAD) of each pair measured.
        Every kind needs a changed cell ("identical" too: a pair without one, were it usable as "identical", would
        tilt the answers toward "Identical." and let a still video give samples); "whole" also needs the
        whole-frame MAD. The first pair is measured alone (it usually qualifies), the others at once; thumbnails
        read ``frames`` in place (no gathered copy), each frame's once."""
        tau = self.cfg.tau_region
        seen: tuple[list[float], list[float]] = ([], [])
        order = list(pairs[0])  # thumbnail k is of row order[k]
        t = thumbnails(frames, index=torch.tensor(order, device=frames.device))
        for lo, hi in ((0, 1), (1, len(pairs))):
            if lo >= hi:
                break
            if lo:  # the other frames' thumbnails, after the first pair's
                rest = sorted({r for p in pairs for r in p} - set(order))
                t = torch.cat([t, thumbnails(frames, index=torch.tensor(rest, device=frames.device))])
                order += rest
            at = {r: k for k, r in enumerate(order)}
            cells, whole = _pair_mads(t, [(at[a], at[b]) for a, b in pairs[lo:hi]])
            cells, whole = cells.cpu().tolist(), whole.cpu().tolist()  # one transfer per step
            for k, (cs, wh) in enumerate(zip(cells, whole)):
                seen[0].append(max(cs))
                seen[1].append(wh)
                if max(cs) >= tau and (kind != "whole" or wh >= tau):
                    return lo + k, cs, seen
        return None, None, seen

    def build(self, plan: FramePlan, frames: torch.Tensor, rng: random.Random, extra=None, rows=None) -> Sample:
        """``frames``: the decoded frames, uint8 [n, H, W, 3]; ``rows[k]``: the row of ``frames`` holding
        ``plan.frame_ids[k]`` (default: row k). ``frames`` is only read. Identical and whole-frame samples show
        rows of ``frames`` as they are (``Sample.frames`` None, ``src_index`` in rows of ``frames``); a cell
        sample builds its two presented frames (one new tensor, each frame written once)."""
        c = self.cfg
        pairs, kind = plan.params["pairs"], plan.params["kind"]
        check_frames(self.name, frames, len(plan.frame_ids), rows)
        at = (lambda r: r) if rows is None else (lambda r: int(rows[r]))  # row of ``frames`` of a plan row
        h, w = frames.shape[1], frames.shape[2]
        if min(h, w) < 3:  # (counted as a video that cannot give a sample, like a still one)
            raise SkipSample(
                plan.source, "static", f"frames of {w}x{h} px are too small for a 3x3 grid of cells (need 3x3 px)"
            )
        pick, cells, seen = self._first_fit(frames, [(at(a), at(b)) for a, b in pairs], kind)
        if pick is None:
            tried = ", ".join(f"{plan.frame_ids[a]}-{plan.frame_ids[b]}" for a, b in pairs)
            if max(seen[0]) < c.tau_region:
                raise SkipSample(
                    plan.source,
                    "static",
                    f"no cell differs between the frames of any pair {tried} "
                    f"(max cell MAD {max(seen[0]):.2f} < tau_region {c.tau_region})",
                )
            raise SkipSample(
                plan.source,
                "no_whole_change",
                f"no pair {tried} differs by whole-frame MAD >= tau_region {c.tau_region} "
                f"(max {max(seen[1]):.2f}; 'whole' drawn, tried on each)",
            )
        ra, rj = pairs[pick]
        i, j = plan.frame_ids[ra], plan.frame_ids[rj]
        fa, fj = at(ra), at(rj)
        a, other = frames[fa], frames[fj]  # [H, W, 3] views
        ok = [k for k in range(9) if cells[k] >= c.tau_region]
        cell = None
        presented = None
        src_index = [fa, fa]
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
