"""What every task shares: the plan (which source frames to decode), the sample (what the model sees and
must answer), skip reasons, and the seeded random generator keyed by (seed, index).

A task runs in two steps so that only the needed frames are decoded:

1. ``plan(info, rng) -> FramePlan``: from the video's metadata alone, pick a window and the source frames
   (chronological, 0-based, presentation order) and the parameters that do not depend on pixels.
2. ``build(plan, frames, rng) -> Sample``: with those frames decoded (uint8 [N, H, W, 3], row i = frame
   ``plan.frame_ids[i]``, on any device), check solvability, pick pixel-dependent parameters (e.g. a
   permutation whose moved frames visibly differ), and write the question, answer and ``meta``.

``meta`` holds ``source``, ``source_frames`` (source indices in presented order), ``task``, ``params`` and a
structured ``answer``: from ``meta`` alone the answer can be re-derived (``sf2t.tasks.scoring``).
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from sf2t._checks import check_int
from sf2t._plural import counted

__all__ = ["FramePlan", "Sample", "SkipSample", "Task", "make_rng", "uniform_window"]


class SkipSample(Exception):
    """This video cannot give this task a sample. ``kind``: ``too_short``, ``static``, or ``no_whole_change``
    (consistency drew "whole" and no candidate pair changed that much: the video moves, so it is not dropped for
    it); ``reason`` says why."""

    def __init__(self, path: str, kind: str, reason: str):
        self.path = str(path)
        self.kind = kind
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass
class FramePlan:
    """Which source frames a sample needs, decided from metadata only.

    ``extra``: frames of *other* videos the sample needs too, as (path, frame index) pairs (localization's
    target); the caller decodes them and passes ``build(..., extra=[uint8 [h, w, 3] per pair, in order])``."""

    task: str
    source: str  # video path
    frame_ids: list[int]  # source frames to decode, chronological, 0-based presentation order
    params: dict[str, Any] = field(default_factory=dict)
    extra: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Sample:
    """One task sample: what the model is shown and asked, and the answer.

    ``src_index[i]`` is the row of the decoded frames (``plan.frame_ids`` order) shown as presented frame i;
    ``boxes`` are per presented frame crop boxes (x0, y0, x1, y1) in source pixels, or None for whole frames.
    ``frames``: when the task changes pixels (a pasted target, a replaced cell), the presented frames it built
    on the decoded frames' device, uint8 [F', H, W, 3]; ``src_index`` then indexes these rows instead.
    ``image``: a separate image input the question refers to (localization's target), uint8 [h, w, 3].
    """

    task: str
    question: str
    answer: str  # canonical answer text
    src_index: list[int]
    meta: dict[str, Any]
    boxes: list[tuple[int, int, int, int]] | None = None
    frames: torch.Tensor | None = None
    image: torch.Tensor | None = None

    def presented(self, decoded: torch.Tensor) -> torch.Tensor:
        """The presented frames, uint8 [F, H, W, 3], from the decoded frames (``plan.frame_ids`` order)."""
        src = self.frames if self.frames is not None else decoded
        return src.index_select(0, self.src_index_tensor(src.device))

    @property
    def num_presented(self) -> int:
        return len(self.src_index)

    def src_index_tensor(self, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.tensor(self.src_index, dtype=torch.int64, device=device)

    def boxes_tensor(self, device: torch.device | str = "cpu") -> torch.Tensor | None:
        return None if self.boxes is None else torch.tensor(self.boxes, dtype=torch.int64, device=device)


class Task(Protocol):
    """The interface every task module implements (see the module docstring)."""

    name: str

    def min_frames(self) -> int: ...  # shortest video (in frames) this task can use

    def max_presented(self) -> int: ...  # most frames one sample shows (the context check's estimate)

    def plan(self, source: str, num_frames: int, rng: random.Random) -> FramePlan: ...

    def build(self, plan: FramePlan, frames: torch.Tensor, rng: random.Random, extra=None) -> Sample: ...

    # Optional: ``pixels = "none" | "thumbs" | "full"`` (default "full"): what build reads. "thumbs" tasks also
    # take ``build(..., thumbs=[n, th, tw])`` (the guard's thumbnails, computed once per window by the sampler)
    # and may then get ``frames=None``; "none" tasks get ``frames=None``. "full" tasks with
    # ``shared_frames = True`` take ``build(..., rows=[row of frames per plan.frame_ids])``: ``frames`` is then a
    # decode shared with other samples, read only, and ``src_index`` (when ``Sample.frames`` is None) indexes
    # rows of it; without ``rows``, row k holds ``plan.frame_ids[k]``.

    def chance(self) -> float: ...  # exact accuracy of a uniform random guess over the possible answers


def make_rng(seed: int, index: int, salt: str = "") -> random.Random:
    """The planner's generator for sample ``index`` of a run seeded ``seed``.

    Seeded from a string (hashed with SHA-512 by ``random``), so it is the same in every process and Python
    run, independent of ``PYTHONHASHSEED``, and streams for different (seed, index) pairs do not overlap.
    """
    # checked, not int()-ed: a float seed 1.7 was read as 1 (the same samples as seed 1, without a word)
    seed, index = check_int("make_rng: seed", seed), check_int("make_rng: index", index)
    return random.Random(f"sf2t:{salt}:{seed}:{index}")


def uniform_window(
    source: str, num_frames: int, count: int, rng: random.Random, *, stride_min: int, stride_max: int
) -> tuple[list[int], int]:
    """``count`` frames at a uniform stride (drawn from [stride_min, stride_max], shrunk to fit) inside a
    random window of a ``num_frames``-frame video. Returns (frame ids, stride)."""
    if num_frames < count:
        raise SkipSample(
            source, "too_short", f"too short: {counted(num_frames, 'frame')}, the task needs at least {count}"
        )
    hi = max(1, min(stride_max, (num_frames - 1) // max(1, count - 1)))
    lo = max(1, min(stride_min, hi))
    stride = rng.randint(lo, hi)
    span = (count - 1) * stride + 1
    start = rng.randint(0, num_frames - span)
    return [start + i * stride for i in range(count)], stride


def strides_that_fit(num_frames: int, count: int, stride_min: int, stride_max: int) -> tuple[int, int]:
    """The stride range [lo, hi] for ``count`` frames in ``num_frames`` (``stride_max`` shrunk to fit, >= 1)."""
    hi = max(1, min(stride_max, (num_frames - 1) // max(1, count - 1)))
    return max(1, min(stride_min, hi)), hi


def check_range(task: str, lo_name: str, lo: Any, hi_name: str, hi: Any, minimum: int) -> tuple[int, int]:
    """Config check: ``minimum <= lo <= hi``, each an int (numpy integers too; not a bool or a float), with an error
    naming the fields (the rule of ``sf2t._checks.check_int``). Returns (lo, hi) as Python ints."""
    lo, hi = check_int(f"{task}: {lo_name}", lo), check_int(f"{task}: {hi_name}", hi)
    if not minimum <= lo <= hi:
        raise ValueError(f"{task}: need {minimum} <= {lo_name} <= {hi_name}, got {lo_name}={lo}, {hi_name}={hi}")
    return lo, hi


def checked_config(cfg: Any, **values: Any) -> Any:
    """A copy of the config dataclass ``cfg`` with the checked ``values`` (Python ints and floats: a numpy integer
    left in the config made numpy frame indices and a ``meta`` that ``json.dumps`` refuses)."""
    return dataclasses.replace(cfg, **values)


def check_num_frames(task: str, num_frames: Any) -> int:
    """``plan``'s ``num_frames`` as an int (numpy integers too). A float such as 10.5 failed deep in ``random``."""
    return check_int(f"{task}.plan: num_frames", num_frames)


def check_frames(task: str, frames: Any, count: int, rows: Any = None, arg: str = "frames") -> None:
    """``build``'s decoded frames: a uint8 [n, H, W, 3] tensor holding pixels (not on the meta device), with one row
    per plan frame (``n == count``) or, with ``rows``, ``count`` rows in range. Frames of another layout, dtype or
    number failed deep in indexing or the guard, or (float 0-1 frames) read as a still video."""
    if not isinstance(frames, torch.Tensor):
        raise TypeError(f"{task}.build: {arg} must be a uint8 torch.Tensor [n, H, W, 3], got {type(frames).__name__}")
    shape = tuple(frames.shape)
    if frames.dim() != 4 or shape[-1] != 3:
        hint = ": permute(0, 2, 3, 1) it" if frames.dim() == 4 and shape[1] == 3 else ""
        raise ValueError(f"{task}.build: {arg} must be RGB frames [n, H, W, 3], got shape {shape}{hint}")
    if frames.dtype != torch.uint8:
        raise ValueError(
            f"{task}.build: {arg} must be uint8 (decoded 0-255 pixels), got {frames.dtype}: convert them, e.g. "
            "(x * 255).round().clamp(0, 255).to(torch.uint8) for 0-1 floats"
        )
    if frames.is_meta:
        raise ValueError(f"{task}.build: {arg} are on the meta device (no pixels): decode them onto a real device")
    if shape[1] < 1 or shape[2] < 1:
        raise ValueError(f"{task}.build: {arg} must have a positive height and width, got shape {shape}")
    if rows is None:
        if shape[0] != count:
            raise ValueError(
                f"{task}.build: the plan has {count} frames (plan.frame_ids) but {arg} has {shape[0]} rows: pass "
                "the frames of plan.frame_ids, in that order"
            )
        return
    rows = list(rows)
    if len(rows) != count or any(not 0 <= int(r) < shape[0] for r in rows):
        raise ValueError(
            f"{task}.build: rows must give the row of {arg} ({shape[0]} rows) of each of the plan's {count} frames, "
            f"got {len(rows)} rows {rows[:8]}{'...' if len(rows) > 8 else ''}"
        )


def check_thumbs(task: str, thumbs: Any, count: int) -> None:
    """``build``'s ``thumbs``: the thumbnails [count, th, tw] of the plan's frames (``sf2t.tasks.guard.thumbnails``)."""
    if not isinstance(thumbs, torch.Tensor) or thumbs.dim() != 3 or thumbs.shape[0] != count:
        got = tuple(thumbs.shape) if isinstance(thumbs, torch.Tensor) else type(thumbs).__name__
        raise ValueError(
            f"{task}.build: thumbs must be the thumbnails [{count}, th, tw] of the plan's {count} frames "
            f"(sf2t.tasks.guard.thumbnails(frames)), got {got}"
        )
    if thumbs.is_meta:
        raise ValueError(f"{task}.build: thumbs are on the meta device (no values): compute them from decoded frames")


def plan_uniform_fragment(task: str, cfg: Any, source: str, num_frames: int, rng: random.Random) -> FramePlan:
    """The plan shared by tasks that present F ~ U[cfg.count_min, cfg.count_max] frames at a uniform stride
    (``cfg.stride_min``..``cfg.stride_max``) from a random window; params ``num_frames`` and ``stride``."""
    num_frames = check_num_frames(task, num_frames)
    if num_frames < cfg.count_min:
        raise SkipSample(
            source, "too_short", f"too short: {counted(num_frames, 'frame')}, {task} needs {cfg.count_min}"
        )
    count = rng.randint(cfg.count_min, min(cfg.count_max, num_frames))
    ids, stride = uniform_window(source, num_frames, count, rng, stride_min=cfg.stride_min, stride_max=cfg.stride_max)
    return FramePlan(task, source, ids, {"num_frames": count, "stride": stride})
