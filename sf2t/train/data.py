"""Training and evaluation samples, end to end: video -> needed frames -> task -> fragment_pack -> tokens.

``VideoPool`` probes the videos once and keeps the usable ones; unusable ones (missing, empty, corrupt,
too short, static) are recorded in ``pool.skipped`` with the reason, never silently dropped.
``SampleFactory.sample(index)`` is a pure function of (seed, index) and the pool: it draws a task, a
video and a plan from ``make_rng(seed, index)``, decodes the plan's frames, builds the task sample (the
motion guard resamples windows that fail), packs the frames into Qwen2-VL's pixel layout and assembles
``input_ids`` / ``labels`` (loss on the answer only).

This module holds ``SampleFactory`` and the frame layouts; the pool and the frame store live in
:mod:`sf2t.train.pool`, the micro-batches (``batches``, DataLoader workers, ``Prefetch``) in
:mod:`sf2t.train.batching`. Their names are re-exported here.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

import torch

from sf2t._plural import none_of
from sf2t.tasks import make_task
from sf2t.tasks.base import Sample, SkipSample, Task, make_rng
from sf2t.train.batching import (
    Prefetch,
    _Batches,  # noqa: F401  (re-exported)
    _collate,  # noqa: F401  (re-exported)
    _Keys,  # noqa: F401  (re-exported)
    _one,  # noqa: F401  (re-exported)
    _record_stream,  # noqa: F401  (re-exported)
    _worker_init,  # noqa: F401  (re-exported)
    batches,
)
from sf2t.train.pool import (
    FrameStore,
    NoUsableVideo,
    Skip,
    VideoPool,
    _Without,  # noqa: F401  (re-exported)
    position,  # noqa: F401  (re-exported)
)
from sf2t.video.decode import VideoError, VideoInfo

__all__ = ["LAYOUTS", "Skip", "VideoPool", "FrameStore", "SampleFactory", "batches", "pair_layout_index", "Prefetch"]

# How presented frames become Qwen2-VL token groups (its Conv3d fuses temporal_patch_size = 2 frames):
# - "repeat": each presented frame twice, one frame per token group (the default, docs/tasks.md; F groups).
# - "pairs":  overlapping consecutive pairs, group i = presented frames (i, i+1) (F - 1 groups), so the
#   vision tower sees every frame-to-frame change inside one token. A tiny model trained from scratch
#   learns disorder with it and stays at chance without it (sf2t/train/NOTES.md).
LAYOUTS = ("repeat", "pairs")
SUPERVISED = "supervised"  # the task name of the supervised video QA mixed in (sf2t.train.supervised)


def pair_layout_index(num_frames: int, device=None) -> torch.Tensor:
    """[0, 1, 1, 2, 2, ..., F-1]: the presented-frame order of the "pairs" layout (2F - 2 entries)."""
    i = torch.arange(1, num_frames - 1, device=device).repeat_interleave(2)
    return torch.cat(
        [
            torch.zeros(1, dtype=torch.int64, device=device),
            i,
            torch.full((1,), num_frames - 1, dtype=torch.int64, device=device),
        ]
    )


class _RecordTooLong(Exception):
    """A supervised record's sample does not fit the model's context (what it exceeds, in words)."""


def _lower(inputs, name: str, task) -> str:
    """The settings that shorten a sample of task ``name`` (``task``) of ``inputs``' family: its ``count_max`` only
    where its config has one (consistency always shows two frames)."""
    count = f"{name}.count_max" if hasattr(getattr(task, "cfg", None), "count_max") else ""
    if inputs.qwen:
        return f"{count}{', ' if count else ''}frame_size or frame_repeat (token_keep_ratio keeps the M-RoPE positions)"
    return f"{count} or token_keep_ratio" if count else "token_keep_ratio"


class SampleFactory:
    """Model-ready samples from a pool of videos and a set of tasks (see the module docstring)."""

    def __init__(
        self,
        pool: VideoPool,
        tasks: dict[str, Task] | Sequence[str],
        tokenizer,
        *,
        frame_size: Sequence[int] = (56, 56),
        frame_repeat: int = 2,
        layout: str = "repeat",
        seed: int = 0,
        salt: str = "train",
        weights: Sequence[float] | None = None,
        store: FrameStore | None = None,
        max_resample: int = 8,
        task_videos: dict[str, Sequence[str]] | None = None,
        token_keep_ratio: float = 1.0,
        supervised=None,
        supervised_ratio: float = 0.0,
        supervised_frames: int = 8,
        inputs=None,
    ):
        self.pool = pool
        self.tasks = {name: make_task(name) for name in tasks} if not isinstance(tasks, dict) else dict(tasks)
        self.names = list(self.tasks)
        self.weights = list(weights) if weights else [1.0] * len(self.names)
        self.tokenizer = tokenizer
        self.seed = seed
        self.salt = salt
        self.store = store or FrameStore()
        self.max_resample = max_resample
        # per task, the paths (or path prefixes) it may draw from; tasks not listed draw from every video
        self.task_videos = {k: tuple(str(p) for p in v) for k, v in (task_videos or {}).items()}
        self._allowed_cache: dict[str, tuple[list[VideoInfo], list[VideoInfo]]] = {}  # task -> (usable, under paths)
        # ordinary video QA mixed in (sf2t.train.supervised): drawn for a supervised_ratio share of the indices
        self.supervised = list(supervised or [])
        self.supervised_ratio = float(supervised_ratio)
        self.supervised_frames = int(supervised_frames)
        self._supervised_frames_of: dict[str, int] = {}  # frame count of each supervised video, once probed
        self._left: tuple | None = None  # (skipped set, its size, whether any record is left)
        self._budgets: dict[tuple, Any] = {}  # (task, context) -> its TargetBudget (target_budget)
        if inputs is None:  # Qwen2-VL (the default family) at frame_size, frame_repeat, layout, token_keep_ratio
            from sf2t.models.families import FAMILIES
            from sf2t.models.inputs import ModelInputs

            inputs = ModelInputs(
                FAMILIES["qwen2_vl"],
                frame_size=frame_size,
                frame_repeat=frame_repeat,
                layout=layout,
                token_keep_ratio=token_keep_ratio,  # < 1: the model compresses its video tokens (apply_sf2t)
            )
        # how the model takes pixels and text (sf2t.models.inputs.ModelInputs: Qwen or LLaVA families); its frame
        # size, repeat, layout and token_keep_ratio are the ones that count (the keywords above build the default)
        self.inputs = inputs

    # -- task samples (no pixels packed yet)

    def task_sample(
        self, index: int, *, task: str | None = None, tasks: Sequence[str] | None = None
    ) -> tuple[Sample, torch.Tensor]:
        """The (Sample, decoded frames) for ``index``: ``task`` if given, else drawn by weight from ``tasks``
        (default: all the factory's tasks)."""
        rng = make_rng(self.seed, index, self.salt)
        if task is None:
            names = list(tasks) if tasks else self.names
            weights = [self.weights[self.names.index(n)] for n in names]
            task = rng.choices(names, weights=weights)[0]
        t = self.tasks[task]
        allowed = self.task_videos.get(task)
        while True:
            usable = self.pool.usable(task)
            infos = usable if allowed is None else self._allowed(task, usable, allowed)
            if not infos:
                where = f" for {task}" + ("" if allowed is None else f" (task_videos: {list(allowed)})")
                skipped = "; ".join(f"{s.path}: {s.reason}" for s in self.pool.skipped)
                if allowed is not None and usable and not any(i.path.startswith(allowed) for i in usable):
                    why = none_of(
                        len(usable), "usable video", "is under task_videos' paths", "is not under task_videos' paths"
                    )
                else:
                    why = f"skipped: {skipped}" if skipped else "none was given"
                raise NoUsableVideo(f"no usable videos left{where}; {why}")
            info = infos[rng.randrange(len(infos))]
            got = self._try_video(t, info, rng)
            if got is not None:
                return got

    def _allowed(self, task: str, usable: list[VideoInfo], allowed: tuple[str, ...]) -> list[VideoInfo]:
        """``usable`` under ``task``'s task_videos paths; kept while the pool hands out the same usable list."""
        hit = self._allowed_cache.get(task)
        if hit is None or hit[0] is not usable:
            hit = self._allowed_cache[task] = (usable, [i for i in usable if i.path.startswith(allowed)])
        return hit[1]

    def target_budget(self, t: Task):
        """The :class:`sf2t.models.context.TargetBudget` of task ``t`` when its target image's tokens follow its size
        (localization, LLaVA families) and samples are checked against a context; else None. Kept per task and
        context (a new context, a new budget)."""
        context = self.inputs.context
        if context is None or self.inputs.qwen or not getattr(t, "sized_target", False):
            return None
        key = (t.name, context)
        got = self._budgets.get(key)
        if got is None:
            from sf2t.models.context import TargetBudget

            got = self._budgets[key] = TargetBudget(context, self.inputs, self.tokenizer, t)
        return got

    def _try_video(self, t: Task, info: VideoInfo, rng: random.Random):
        last: SkipSample | None = None
        moved = False  # some window moved but missed only the drawn kind (consistency's "whole"): keep the video
        # A LLaVA localization target too large for the context: the plan draws the side only among those that fit
        # (budget.fraction: the size distribution cut off above; the draws, and so every other choice, unchanged);
        # a made sample still over (its own text: the cap assumes the longest) is a failed window, drawn again from
        # the same rng: which sample an index gets depends on the pool alone, as for any failing window.
        budget = self.target_budget(t)
        size = self.store.frame_size(info) if budget is not None else None
        if budget is not None and budget.smallest_over(size, info.num_frames):
            # (setup leaves such videos out: sf2t.train.targets; here for a factory made without that step)
            over = "; ".join(budget.smallest_over(size, info.num_frames))
            why = f"{t.name}: even its smallest target image cannot fit the model's context ({over})"
            self.pool.drop(info.path, "too_large", why, task=t.name)
            return None
        too_large = 0
        for _ in range(self.max_resample):
            try:
                extra = None
                if getattr(t, "needs_other_video", False):
                    others = self.pool.others(info.path)
                    if not others:
                        raise ValueError(
                            f"task {t.name!r} takes its target from a different video, but the pool has "
                            "only one usable video"
                        )
                    other = others[rng.randrange(len(others))]
                    kw = {} if budget is None else {"side_max": lambda count: budget.fraction(size, count)}
                    plan = t.plan(info.path, info.num_frames, rng, other=(other.path, other.num_frames), **kw)
                    try:
                        extra = [self.store.get(other, [k])[0] for _, k in plan.extra]
                    except VideoError as e:  # the target's video fails, not this one: that one leaves the pool
                        self.pool.drop(other.path, e.kind, e.reason)
                        return None
                else:
                    plan = t.plan(info.path, info.num_frames, rng)
                frames = self.store.get(info, plan.frame_ids)
                s = t.build(plan, frames, rng, extra=extra) if extra is not None else t.build(plan, frames, rng)
                if budget is not None and s.image is not None and budget.over_sample(s, size):
                    too_large += 1
                    continue
                return s, (s.frames if s.frames is not None else frames)
            except SkipSample as e:
                if e.kind == "no_whole_change":
                    moved = True
                    continue
                last = e
                if e.kind == "too_short":
                    break
            except VideoError as e:  # a file that probes but does not decode: out of the pool for good
                self.pool.drop(info.path, e.kind, e.reason)
                return None
        # No window of this video passed: report it and stop drawing it; unless every failure was a drawn "whole"
        # that no pair reached (a moving video: 2 of 3 kinds pass), or a target too large (its window was visible),
        # where the caller just draws again; every window's target too large: out of the task (the cap's estimate
        # fell short for it; otherwise a pool of such videos would be drawn forever).
        if too_large and too_large == self.max_resample:
            why = f"{t.name}: every target image drawn was too large for the model's context, {too_large} windows tried"
            self.pool.drop(info.path, "too_large", why, task=t.name)
            return None
        if too_large or (last is None and moved):
            return None
        assert last is not None
        reason = last.reason if last.kind == "too_short" else f"{last.reason}, {self.max_resample} windows tried"
        self.pool.drop(info.path, last.kind, f"{t.name}: {reason}", task=t.name)
        return None

    # -- packed, tokenized samples

    def pack(self, sample: Sample, frames: torch.Tensor) -> dict[str, Any]:
        """Pixels of the presented frames in the model's layout (``self.inputs.video``; Qwen: see ``LAYOUTS``)."""
        return self.inputs.video(frames, sample.src_index_tensor(frames.device), sample.boxes_tensor(frames.device))

    def sample(
        self, index: int, *, task: str | None = None, tasks: Sequence[str] | None = None, with_answer: bool = True
    ) -> dict[str, Any]:
        """A model-ready sample: input_ids, attention_mask, labels, the family's vision tensors (Qwen:
        mm_token_type_ids, pixel_values_videos, video_grid_thw), plus ``task``, ``question``, ``answer`` and ``meta``
        for scoring."""
        if self.supervised and task is None and tasks is None:
            rng = make_rng(self.seed, index, self.salt + ":mix")
            if rng.random() < self.supervised_ratio:
                return self._supervised_draw(rng, with_answer)
        s, frames = self.task_sample(index, task=task, tasks=tasks)
        return self._assemble(s, frames, s.question, s.answer if with_answer else None)

    def _assemble(
        self, s: Sample, frames: torch.Tensor, question: str, answer: str | None, **text_kw
    ) -> dict[str, Any]:
        vision = self.pack(s, frames)
        image_inputs, image_tokens = {}, None
        if s.image is not None:  # localization's target: one image, its own token run before the video
            image_inputs, image_tokens = self.inputs.image(s.image.to(frames.device))
        out: dict[str, Any] = self.inputs.text(
            self.tokenizer, question, answer, vision, image_tokens, image_inputs.get("image_grid_thw"), **text_kw
        )
        out.update(image_inputs)
        out.update(vision)
        context = self.inputs.context
        if context is not None and s.task == SUPERVISED:  # a record setup let through (its estimate fell short)
            over = context.over(*context.extent(out))
            if over:
                raise _RecordTooLong("; ".join(over))
        elif context is not None:  # the per-sample guard: a question's text, an image's tiles
            context.check(out, s.task, _lower(self.inputs, s.task, self.tasks.get(s.task)))
        out.update(task=s.task, question=s.question, answer=s.answer, meta=s.meta)
        return out

    def _supervised_draw(self, rng: random.Random, with_answer: bool) -> dict[str, Any]:
        """A record drawn from ``rng``; one whose video is missing or does not decode is recorded in
        ``pool.skipped`` (task ``supervised``) and another is drawn, and so is one whose sample turns out too long
        for the model's context (recorded under the record's ``key``: the video's other records stay). Which record
        an index gets depends on the files and the records only, not on which were met before (a known bad one is
        passed over as a failing one would be), so workers and a resumed run draw the same."""
        bad = self.pool.excluded.get(SUPERVISED, set())
        while True:
            if not self._supervised_left(bad):  # (bad may hold other files: drops a checkpoint replays)
                skipped = "; ".join(f"{s.path}: {s.reason}" for s in self.pool.skipped if s.task == SUPERVISED)
                raise NoUsableVideo(f"no usable records left for supervised_data; skipped: {skipped}")
            rec = self.supervised[rng.randrange(len(self.supervised))]
            if rec.video in bad or rec.key in bad:
                continue
            try:
                return self._supervised_sample(rec, with_answer)
            except VideoError as e:
                self.pool.drop(rec.video, e.kind, f"supervised_data: {e.reason}", task=SUPERVISED)
            except _RecordTooLong as e:
                why = f"supervised_data record id {rec.id!r}: too long for the model's context when made: {e}"
                self.pool.drop(rec.key, "too_long", why, task=SUPERVISED)
            bad = self.pool.excluded[SUPERVISED]

    def _supervised_left(self, bad: set[str]) -> bool:
        """Whether some record is neither in ``bad`` nor has its video there (kept per state of ``bad``, which only
        grows: the first usable record ends the scan)."""
        if self._left is None or self._left[0] is not bad or self._left[1] != len(bad):
            self._left = (bad, len(bad), any(r.video not in bad and r.key not in bad for r in self.supervised))
        return self._left[2]

    def _supervised_sample(self, rec, with_answer: bool) -> dict[str, Any]:
        """Record ``rec`` of the supervised data: ``supervised_frames`` frames spread over the video, packed like the
        tasks' frames, the record's turns (every answer supervised) and system text. Prompt only
        (``with_answer=False``): its first question."""
        from sf2t.video import decode_frames, probe

        n = self._supervised_frames_of.get(rec.video)
        if n is None:  # probed once per video (it reads the whole container to count the frames)
            n = self._supervised_frames_of[rec.video] = probe(rec.video).num_frames
        if n < 1:
            raise VideoError(rec.video, "no frames", "no_frames")
        f = min(self.supervised_frames, n)
        ids = [round(i * (n - 1) / max(1, f - 1)) for i in range(f)]
        frames, _ = decode_frames(rec.video, ids)
        meta = {"source": rec.video, "source_frames": ids, "task": SUPERVISED, "id": rec.id}
        shown = Sample(SUPERVISED, rec.question, rec.answer, list(range(f)), meta)
        # the same layout (repeat / pairs) and size as the tasks' frames
        if not with_answer:
            return self._assemble(shown, frames, rec.question, None, system=rec.system)
        return self._assemble(shown, frames, rec.question, rec.answer, more=rec.more, system=rec.system)
