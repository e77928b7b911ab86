"""Training and evaluation samples, end to end: video -> needed frames -> task -> fragment_pack -> tokens.

``VideoPool`` probes the videos once and keeps the usable ones; unusable ones (missing, empty, corrupt,
too short, static) are recorded in ``pool.skipped`` with the reason, never silently dropped.
``SampleFactory.sample(index)`` is a pure function of (seed, index) and the pool: it draws a task, a
video and a plan from ``make_rng(seed, index)``, decodes the plan's frames, builds the task sample (the
motion guard resamples windows that fail), packs the frames into Qwen2-VL's pixel layout and assembles
``input_ids`` / ``labels`` (loss on the answer only).
"""

from __future__ import annotations

import contextlib
import queue
import random
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from sf2t._plural import counted, none_of
from sf2t.tasks import make_task
from sf2t.tasks.base import Sample, SkipSample, Task, make_rng
from sf2t.video.backends import DecoderCache
from sf2t.video.decode import VideoError, VideoInfo, probe

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


class NoUsableVideo(RuntimeError):
    """Every video a task may draw from was skipped (missing, broken, too short or too static); the message lists
    them with their reasons."""


@dataclass
class Skip:
    """A video left out, and why (``kind``: a ``VideoError`` kind, ``too_short`` or ``static``). ``task``: left out
    of that task only (too short or too static for it; the other tasks still draw it); None: of every task."""

    path: str
    kind: str
    reason: str
    task: str | None = None

    def to_dict(self) -> dict:
        return {"path": self.path, "kind": self.kind, "reason": self.reason, "task": self.task}


def position(k: int, n: int) -> int:
    """Item ``k`` of a sequence of ``n`` as a position in [0, n) (negative from the end); IndexError past it."""
    if k < 0:
        k += n
    if not 0 <= k < n:
        raise IndexError(k)
    return k


class _Without(Sequence):
    """``infos`` less the entries at ``gone`` (ascending positions), in order: a view, O(len(gone)) per item."""

    def __init__(self, infos: list[VideoInfo], gone: Sequence[int]):
        self._infos, self._gone = infos, gone

    def __len__(self) -> int:
        return len(self._infos) - len(self._gone)

    def __getitem__(self, k: int) -> VideoInfo:
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(len(self)))]
        k = position(k, len(self))
        for g in self._gone:  # the k-th kept entry: step over the removed ones before it
            if g > k:
                break
            k += 1
        return self._infos[k]


@dataclass
class VideoPool:
    """Usable videos (with their metadata) and the skipped ones with reasons.

    :meth:`usable` and :meth:`others` are drawn from on every sample: they are computed once per pool state (not per
    draw: 11.7 ms a sample with 200,000 videos) and made again when :meth:`drop` changes the pool, when ``infos`` is
    replaced or grows, or when a task's ``excluded`` set grows. An edit of ``infos`` in place that keeps its length
    (``infos[i] = ...``) is not seen: call :meth:`changed` after one."""

    infos: list[VideoInfo] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    excluded: dict[str, set[str]] = field(default_factory=dict)  # task -> paths left out of that task only
    # task -> (the state it was made from, the usable list); path -> its positions in infos (for others())
    _usable: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _positions: tuple | None = field(default=None, init=False, repr=False, compare=False)
    _version: int = field(default=0, init=False, repr=False, compare=False)

    @classmethod
    def from_paths(
        cls, paths: Sequence[str], *, min_frames: int = 1, decoder: str = "auto", what: str | None = None
    ) -> VideoPool:
        """Probe ``paths`` (files, folders of videos or ``sf2t index`` manifests:
        :func:`sf2t.video.index.expand_videos`); a video that cannot be read, or is shorter than ``min_frames``, is
        skipped and recorded. A manifest line whose file is unchanged (size and mtime) is used as it is, not probed
        again. sf2t build staging folders left out of a folder's walk are warned about
        (:class:`sf2t.video.index.SkippedStagesWarning`, prefixed with ``what``, the list's name, where given)."""
        from sf2t.video.index import SkippedStagesWarning, expand_video_entries, skipped_stages_text

        stages: list[str] = []
        entries = expand_video_entries(paths, stages)
        if stages:
            text = skipped_stages_text(stages)
            warnings.warn(SkippedStagesWarning(f"{what}: {text}" if what else text), stacklevel=2)
        pool = cls()
        for p, known in entries:
            try:
                info = known if known is not None else probe(p, decoder=decoder)
            except VideoError as e:
                pool.skipped.append(Skip(e.path, e.kind, e.reason))
                continue
            if info.num_frames < min_frames:
                pool.skipped.append(
                    Skip(
                        str(p),
                        "too_short",
                        f"too short: {counted(info.num_frames, 'frame')}, the tasks need {min_frames}",
                    )
                )
                continue
            pool.infos.append(info)
        return pool

    def drop(self, path: str, kind: str, reason: str, task: str | None = None) -> None:
        """Take a video out of the pool and record why: out of every task (``task=None``: it does not decode), or
        out of ``task`` only (too short or too static for that task)."""
        if task is None:
            self.infos = [i for i in self.infos if i.path != path]
        else:
            self.excluded.setdefault(task, set()).add(path)
        if not any(s.path == path and s.task in (None, task) for s in self.skipped):
            self.skipped.append(Skip(path, kind, reason, task))
        # (the lists kept are made again as they are next asked for: a drop out of every task replaces infos, one
        # out of a task grows that task's excluded set; the other tasks' lists are kept)

    def changed(self) -> None:
        """Forget the lists :meth:`usable` and :meth:`others` keep: after an edit of ``infos`` in place that keeps
        its length (a drop, a new ``infos`` list, or one grown, are seen without it)."""
        self._version += 1
        self._usable.clear()
        self._positions = None

    def _state(self, task: str | None) -> tuple:
        ex = self.excluded.get(task) if task is not None else None
        return (self.infos, len(self.infos), ex, len(ex) if ex is not None else 0, self._version)

    @staticmethod
    def _same(a: tuple, b: tuple) -> bool:  # the lists and sets by identity (a new one is a change), counts by value
        return a[0] is b[0] and a[2] is b[2] and a[1:2] + a[3:] == b[1:2] + b[3:]

    def usable(self, task: str | None = None) -> list[VideoInfo]:
        """The videos ``task`` may draw (all usable ones when None), in ``infos``' order. The list is kept until the
        pool changes (and shared: do not modify it)."""
        state = self._state(task)
        hit = self._usable.get(task)
        if hit is not None and self._same(hit[0], state):
            return hit[1]
        out = state[2] or ()
        made = [i for i in self.infos if i.path not in out]
        self._usable[task] = (state, made)
        return made

    def others(self, path: str) -> Sequence[VideoInfo]:
        """The usable videos other than ``path`` (``infos`` less its entries, in order): what a task that takes its
        target from a different video draws from. A view, made in O(1) once the pool's positions are known."""
        state = self._state(None)
        if self._positions is None or not self._same(self._positions[0], state):
            where: dict[str, list[int]] = {}
            for k, i in enumerate(self.infos):
                where.setdefault(i.path, []).append(k)
            self._positions = (state, where)
        return _Without(self.infos, self._positions[1].get(path, ()))

    def __getstate__(self) -> dict:  # sent to DataLoader workers without the kept lists (made again there)
        d = dict(self.__dict__)
        d.update(_usable={}, _positions=None)
        return d

    def __setstate__(self, d: dict) -> None:
        self.__dict__.update(d)

    def skip_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.skipped:
            out[s.kind] = out.get(s.kind, 0) + 1
        return out


class FrameStore:
    """Decoded frames by (video, frame ids).

    Short clips are decoded whole once and kept (LRU within ``cache_mb``); longer ones decode only the
    needed frames on each request. ``max_side`` (optional) reduces every frame returned, long side at most
    ``max_side`` px (antialiased bilinear, each frame on its own): a cached clip is kept reduced (decoded in
    chunks), frames decoded on request are reduced the same way, so the pixels (and the samples made from them) are
    the same whether a clip is cached, evicted, too long for the cache or ``cache_mb`` is 0. For a demo that mixes a
    few large real videos with small clips, so every draw does not decode full-HD frames again. Frame ids and meta
    are unchanged; only the source pixels are smaller.
    """

    def __init__(
        self,
        *,
        cache_mb: int = 256,
        decoder: str = "auto",
        device: str | torch.device = "cpu",
        max_side: int | None = None,
        chunk: int = 32,
    ):
        self.budget = int(cache_mb) * 2**20
        self.decoder = decoder
        self.device = torch.device(device)
        self.max_side = max_side
        self.chunk = chunk
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._bytes = 0
        self.decoders = DecoderCache(decoder, device=self.device)  # no re-open / re-scan per request
        # one caller at a time: a prefetch thread and the evaluation may share the store (decoders are not
        # thread-safe)
        self._lock = threading.RLock()
        self._held = threading.local()  # .frames: per thread, the [frames, fill, bytes left] of holding(), or None

    @contextlib.contextmanager
    def holding(self, frames: dict, fill: bool = False, cap: int | None = None):
        """While inside, in this thread: frames of a clip not cached whole (decoded per request) come from
        ``frames`` (``(path, frame ids)`` -> uint8 frames on the CPU, as :meth:`get` returned them) where it has
        them, a copy on the store's device; with ``fill``, the frames decoded are added to it. The held-out set
        (:class:`sf2t.train.evaluate.EvalSet`) keeps its samples' frames so: on long videos a remake decodes
        nothing again. ``cap`` (bytes; None: no limit): where the frames filled would pass it, ``frames`` is
        emptied and filled no more (they could not all be kept: no copy is made of frames that would be dropped)."""
        # per thread (one slot for all threads: two threads' holdings overlapping left the first one's installed
        # after both had ended, a fill that then grew on that thread's later requests)
        before = getattr(self._held, "frames", None)
        self._held.frames = [frames, fill, cap]
        try:
            yield frames
        finally:
            self._held.frames = before

    def use_cpu(self) -> None:
        """Decode to and cache on the CPU from now on (a DataLoader worker of a GPU run)."""
        if self.device.type == "cpu":
            return
        with self._lock:
            self.device = torch.device("cpu")
            self.decoders = DecoderCache(self.decoder, device=self.device)  # the parent's are not reused here
            self._cache.clear()
            self._bytes = 0

    def _decode(self, info: VideoInfo, frame_ids: Sequence[int]) -> torch.Tensor:
        try:
            frames, _ = self.decoders.get(info).get_frames(list(frame_ids))
        except VideoError:
            self.decoders.forget(info.path)
            raise
        return frames.to(self.device)

    def frame_size(self, info: VideoInfo) -> tuple[int, int]:
        """(h, w) of the frames :meth:`get` returns for ``info`` (reduced when ``max_side`` applies)."""
        h, w = info.height, info.width
        if self.max_side and max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
            h, w = max(1, round(h * scale)), max(1, round(w * scale))
        return h, w

    @staticmethod
    def _reduce(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """uint8 frames [n, H, W, 3] at ``size`` (antialiased bilinear, each frame on its own: the same pixels
        whichever frames are reduced together); unchanged when already that size."""
        if tuple(x.shape[1:3]) == size:
            return x
        x = torch.nn.functional.interpolate(
            x.permute(0, 3, 1, 2).float(), size=size, mode="bilinear", antialias=True, align_corners=False
        )
        return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()

    def _decode_whole(self, info: VideoInfo, size: tuple[int, int]) -> torch.Tensor:
        if size == (info.height, info.width):
            clip = self._decode(info, range(info.num_frames))
            return clip
        parts = []
        for lo in range(0, info.num_frames, self.chunk):
            ids = range(lo, min(lo + self.chunk, info.num_frames))
            parts.append(self._reduce(self._decode(info, ids), size))  # [n, H, W, 3] -> [n, h, w, 3]
        return torch.cat(parts)

    def get(self, info: VideoInfo, frame_ids: Sequence[int]) -> torch.Tensor:
        """uint8 [len(frame_ids), H, W, 3] on the store's device (H, W reduced when ``max_side`` applies)."""
        with self._lock:
            return self._get(info, frame_ids)

    def _get(self, info: VideoInfo, frame_ids: Sequence[int]) -> torch.Tensor:
        h, w = self.frame_size(info)
        clip_bytes = info.num_frames * h * w * 3
        if self.budget and clip_bytes <= self.budget // 8:
            clip = self._cache.get(info.path)
            if clip is None:
                clip = self._decode_whole(info, (h, w))
                self._cache[info.path] = clip
                self._bytes += clip.numel()
                while self._bytes > self.budget and len(self._cache) > 1:
                    _, old = self._cache.popitem(last=False)
                    self._bytes -= old.numel()
            else:
                self._cache.move_to_end(info.path)
            return clip[torch.as_tensor(list(frame_ids), dtype=torch.int64, device=clip.device)]
        held = getattr(self._held, "frames", None)
        key = (info.path, tuple(int(i) for i in frame_ids))
        if held is not None and key in held[0]:
            return held[0][key].to(self.device, copy=True)  # (a copy: a task may change the frames it is given)
        frames = self._decode(info, frame_ids)
        # reduced as a cached clip is: the frames do not depend on whether this clip is (or fits in) the cache
        frames = self._reduce(frames, (h, w)) if (h, w) != (info.height, info.width) else frames
        if held is not None and held[1]:
            size = frames.numel() * frames.element_size()
            if held[2] is not None and size > held[2]:  # they cannot all be kept: none are, and no more are copied
                held[0].clear()
                held[1] = False
            else:
                held[0][key] = frames.to("cpu", copy=True)
                held[2] = None if held[2] is None else held[2] - size
        return frames


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


class _Batches(torch.utils.data.Dataset):
    """Map-style view of a factory for a DataLoader: key ``(indices, tasks)`` -> the collated micro-batch of
    ``factory.sample(i, tasks=tasks)`` (pure functions of the key, so any worker makes the same batch). A worker
    sends whole batches: one transfer of a few tensors per micro-batch, not several per sample."""

    def __init__(self, factory: SampleFactory):
        self.factory = factory

    def __getitem__(self, key):
        indices, tasks = key
        pool = self.factory.pool
        before = len(pool.skipped)
        try:
            batch = _collate(self.factory, [self.factory.sample(i, tasks=tasks) for i in indices])
        except NoUsableVideo as e:  # raised again in the training process, without the worker's traceback
            return {"no_usable_video": str(e)}
        if len(pool.skipped) > before:  # tell the training process (its pool is another copy)
            batch["dropped"] = [(s.path, s.kind, s.reason, s.task) for s in pool.skipped[before:]]
        return batch


def _collate(factory: SampleFactory, items: list[dict]) -> dict:
    chunks = factory.inputs.collate(items, factory.tokenizer.pad_token_id)
    for c in chunks:
        c["tasks"] = [items[i]["task"] for i in c["rows"]]
    return {"chunks": chunks, "tasks": [it["task"] for it in items]}


class _Keys(torch.utils.data.Sampler):
    def __init__(self, keys):
        self.keys = keys

    def __iter__(self):
        return self.keys


def _one(item):
    return item


def _worker_init(worker_id: int) -> None:
    """One torch thread per worker: the workers and the training process share the cores. Workers decode and build
    on the CPU whatever the run's device (a forked worker must not touch the parent's CUDA context); the training
    process moves each batch to the device."""
    torch.set_num_threads(1)
    info = torch.utils.data.get_worker_info()
    if info is not None and isinstance(info.dataset, _Batches):
        info.dataset.factory.store.use_cpu()


def batches(
    factory: SampleFactory,
    batch_size: int,
    *,
    start: int = 0,
    start_step: int = 0,
    tasks_for_step=None,
    skip: int = 0,
    workers: int = 0,
    prefetch: int = 4,
):
    """Endless collated batches; sample indices run ``start, start + 1, ...``, micro-batches count from
    ``start_step`` (a resumed run continues both). ``skip``: indices jumped after each batch (the other ranks'
    share of a distributed global batch). ``tasks_for_step(step)`` may restrict the tasks drawn at a micro-batch
    (curriculum); None: every task, by weight.

    ``workers`` > 0: that many DataLoader worker processes make the micro-batches (decode, task, pack, tokens,
    collate), up to ``prefetch`` each ahead, returned in order: the same batches as ``workers=0`` while no video is
    dropped mid-run. A video a worker drops (static, broken) is dropped from this process's pool too when its batch
    arrives (``factory.pool.skipped`` stays complete); the other workers' pools still hold it, so their later
    samples may differ from a ``workers=0`` run's (each worker drops it when it meets it).

    Each batch is ``{"chunks": [...], "tasks": [...]}``: the forward chunks of ``factory.inputs.collate`` (Qwen: one
    chunk of the whole micro-batch; LLaVA: one per frame count), each with its ``tasks``."""

    def keys():  # (the micro-batch's sample indices, its task restriction)
        index, step = start, start_step
        while True:
            yield list(range(index, index + batch_size)), (tasks_for_step(step) if tasks_for_step else None)
            index += batch_size + skip
            step += 1

    if workers > 0:
        stream = iter(
            torch.utils.data.DataLoader(
                _Batches(factory),
                sampler=_Keys(keys()),
                batch_size=None,
                collate_fn=_one,
                num_workers=workers,
                prefetch_factor=prefetch,
                worker_init_fn=_worker_init,
                persistent_workers=False,
            )
        )
    else:
        stream = (_collate(factory, [factory.sample(i, tasks=t) for i in ids]) for ids, t in keys())
    for batch in stream:
        if "no_usable_video" in batch:
            raise NoUsableVideo(batch["no_usable_video"])
        for path, kind, reason, task in batch.pop("dropped", ()):  # drops seen in a worker, recorded here
            factory.pool.drop(path, kind, reason, task)
        yield batch


class Prefetch:
    """Iterate ``source`` (e.g. :func:`batches`) in a background thread, up to ``depth`` items ahead, so the next
    micro-batch is decoded, built and packed while the model computes (decoders and torch ops release the GIL).
    On CUDA the thread works on its own stream; an item is handed over with an event the consumer's stream waits
    for, and its tensors are marked as used there (``record_stream``), so the allocator does not reuse them early.
    Exceptions in the thread are raised by ``next``. ``close()`` stops the thread (and closes ``source``)."""

    _END = object()

    def __init__(self, source, depth: int = 2, device="cpu"):
        self.source = source
        self.q: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
        self.stop = threading.Event()
        self.cuda = str(device).startswith("cuda") and torch.cuda.is_available()
        self.stream = torch.cuda.Stream(device=device) if self.cuda else None
        self._busy = threading.Lock()  # held by the thread while it makes an item; by paused() between items
        self.thread = threading.Thread(target=self._run, name="sf2t-prefetch", daemon=True)
        self.thread.start()

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:  # (the current CUDA stream is per thread: this thread's work goes to self.stream)
            with torch.cuda.stream(self.stream) if self.cuda else contextlib.nullcontext():
                items = iter(self.source)
                while True:
                    with self._busy:
                        if self.stop.is_set():
                            return
                        item = next(items, self._END)
                        if item is self._END:
                            break
                        event = None
                        if self.cuda:
                            event = torch.cuda.Event()
                            event.record(self.stream)
                    if not self._put((item, event, None)):
                        return
        except BaseException as e:  # handed to the consumer
            self._put((None, None, e))
            return
        self._put((self._END, None, None))

    @contextlib.contextmanager
    def paused(self):
        """Hold the thread between items (the one it is making is finished first) while the caller uses what the
        thread shares: the frame store and its clip cache, the tokenizer, the pool (an evaluation's samples, a
        checkpoint's state). On CUDA the thread's stream is drained first, and waits after for the caller's work
        (clips either side cached on its own stream)."""
        with self._busy:
            if self.cuda:
                self.stream.synchronize()
            try:
                yield
            finally:
                if self.cuda:
                    self.stream.wait_stream(torch.cuda.current_stream())

    def __iter__(self):
        return self

    def __next__(self):
        item, event, err = self.q.get()
        if err is not None:
            raise err
        if item is self._END:
            raise StopIteration
        if event is not None:
            here = torch.cuda.current_stream()
            here.wait_event(event)
            _record_stream(item, here)
        return item

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        close = getattr(self.source, "close", None)
        if close is not None and not self.thread.is_alive():
            close()


def _record_stream(obj, stream) -> None:
    if isinstance(obj, torch.Tensor):
        if obj.is_cuda:
            obj.record_stream(stream)
    elif isinstance(obj, dict):
        for v in obj.values():
            _record_stream(v, stream)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _record_stream(v, stream)
