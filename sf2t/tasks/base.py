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
from typing import Any, Protocol, TypeVar

import torch

from sf2t._checks import check_int

__all__ = ["FramePlan", "Sample", "SkipSample", "Task", "make_rng", "uniform_window"]

T = TypeVar("T")


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
    return random.Random(f"sf2t:{salt}:{int(seed)}:{int(index)}")


def uniform_window(
    source: str, num_frames: int, count: int, rng: random.Random, *, stride_min: int, stride_max: int
) -> tuple[list[int], int]:
    """``count`` frames at a uniform stride (drawn from [stride_min, stride_max], shrunk to fit) inside a
    random window of a ``num_frames``-frame video. Returns (frame ids, stride)."""
    if num_frames < count:
        raise SkipSample(source, "too_short", f"too short: {num_frames} frames, the task needs at least {count}")
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


def check_range(task: str, cfg: T, lo_name: str, hi_name: str, minimum: int) -> T:
    """Config check: ``minimum <= cfg.lo <= cfg.hi``, with an error naming the fields. Returns a copy of ``cfg`` with
    both as Python ints (:func:`sf2t._checks.check_int`: a numpy integer from a sweep is taken, a bool is not), so a
    sample's params stay JSON."""
    lo, hi = (check_int(f"{task}: {n}", getattr(cfg, n)) for n in (lo_name, hi_name))
    if not minimum <= lo <= hi:
        raise ValueError(f"{task}: need {minimum} <= {lo_name} <= {hi_name}, got {lo_name}={lo}, {hi_name}={hi}")
    return dataclasses.replace(cfg, **{lo_name: lo, hi_name: hi})


def plan_uniform_fragment(task: str, cfg: Any, source: str, num_frames: int, rng: random.Random) -> FramePlan:
    """The plan shared by tasks that present F ~ U[cfg.count_min, cfg.count_max] frames at a uniform stride
    (``cfg.stride_min``..``cfg.stride_max``) from a random window; params ``num_frames`` and ``stride``."""
    if num_frames < cfg.count_min:
        raise SkipSample(source, "too_short", f"too short: {num_frames} frames, {task} needs {cfg.count_min}")
    count = rng.randint(cfg.count_min, min(cfg.count_max, num_frames))
    ids, stride = uniform_window(source, num_frames, count, rng, stride_min=cfg.stride_min, stride_max=cfg.stride_max)
    return FramePlan(task, source, ids, {"num_frames": count, "stride": stride})
