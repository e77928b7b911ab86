"""Decode once, serve many: fragment sampling by windows.

A *window* is a span of ``window_frames`` consecutive frames of one video. For window ``w`` the planner
(seeded by (seed, rank, w), CPU, metadata only) picks a video and a start, then plans ``samples_per_window``
samples of the configured tasks inside it. The decoder is asked once for the sorted union of their frames;
each sample gets its rows of that one decode. With a keyframe every G frames, per-sample decoding pays the
seek (up to G - 1 frames decoded for nothing) and the open once per sample; here once per window.

Failures never stop the stream: a file that fails to open or decode fails its window's samples with the
``VideoError`` reason; a corrupt frame fails only the samples that need it (the union decode is retried per
sample, with the same backend: never a silent switch to another decoder); frames the index found corrupt
(``sf2t index --verify``) fail their samples up front. Each failure is recorded (``sampler.failures``, or a
``{"failure": ...}`` item from ``FragmentDataset``).

``FragmentDataset`` is the DataLoader form: decoders are opened inside each worker (never inherited across a
fork), torch threads are set to 1 in workers and decoder threads to the cores shared by the workers.
"""

from __future__ import annotations

import bisect
import logging
import os
import random
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch

from sf2t._checks import check_int
from sf2t.ops.fragment_pack import YUV420
from sf2t.tasks import make_task
from sf2t.tasks.base import FramePlan, Sample, SkipSample, Task, make_rng
from sf2t.video.backends import DecoderCache, decoder_threads
from sf2t.video.errors import VideoError
from sf2t.video.probe import VideoInfo

__all__ = ["WindowPlan", "Failure", "WindowSampler", "FragmentDataset", "plan_window", "worker_init", "make_loader"]

log = logging.getLogger("sf2t.video")


@dataclass
class WindowPlan:
    """One window: the video, the span, each sample's task plan (absolute frame ids) and their sorted union."""

    window: int
    video: VideoInfo
    start: int
    length: int
    plans: list[FramePlan]
    failures: list[Failure] = field(default_factory=list)  # samples that could not be planned

    @property
    def frame_ids(self) -> list[int]:
        return sorted({i for p in self.plans for i in p.frame_ids})


@dataclass
class Failure:
    """A sample (or a window's samples) that could not be made, and why."""

    path: str
    kind: str
    reason: str
    window: int
    task: str | None = None

    def to_dict(self) -> dict:
        return {"path": self.path, "kind": self.kind, "reason": self.reason, "window": self.window, "task": self.task}


def plan_window(
    w: int,
    videos: Sequence[VideoInfo],
    tasks: dict[str, Task],
    rng: random.Random,
    *,
    samples_per_window: int = 4,
    window_frames: int = 64,
    weights: Sequence[float] | None = None,
) -> WindowPlan:
    """Plan window ``w``: a video drawn uniformly, a start, and ``samples_per_window`` task plans inside
    [start, start + window_frames). Each sample's task is drawn by ``weights``; each task plans as if the
    window were the whole video, and its frame ids are shifted by ``start``."""
    vi = rng.randrange(len(videos))
    info = videos[vi]
    length = min(int(window_frames), info.num_frames)
    start = rng.randint(0, info.num_frames - length)
    names = list(tasks)
    plans, failures = [], []
    for _ in range(samples_per_window):
        name = rng.choices(names, weights=weights)[0] if weights else names[rng.randrange(len(names))]
        task = tasks[name]
        try:
            if getattr(task, "needs_other_video", False):
                if len(videos) < 2:
                    raise ValueError(f"task {name!r} needs at least two videos (its target comes from another one)")
                k = rng.randrange(len(videos) - 1)
                other = videos[k if k < vi else k + 1]
                p = task.plan(info.path, length, rng, other=(other.path, other.num_frames))
            else:
                p = task.plan(info.path, length, rng)
        except SkipSample as e:
            failures.append(Failure(info.path, e.kind, e.reason, w, name))
            continue
        p.frame_ids = [start + i for i in p.frame_ids]
        p.params = {**p.params, "window": [start, start + length]}
        plans.append(p)
    return WindowPlan(w, info, start, length, plans, failures)


def _as_tasks(tasks: dict[str, Task] | Sequence[str]) -> dict[str, Task]:
    if isinstance(tasks, dict):
        return dict(tasks)
    return {name: make_task(name) for name in tasks}


class WindowSampler:
    """Task samples from indexed videos, ``samples_per_window`` per decoded window (see the module docstring).

    ``videos``: ``VideoInfo`` of usable videos (``sf2t.video.index.usable(read_manifest(path))``).
    ``window(w)`` returns the (Sample, frames) pairs of window ``w``; ``__iter__`` runs windows
    ``first, first + step, ...``. Decoders stay open (LRU, ``max_open`` files) across windows.

    ``output="yuv420"``: where the backend and stream allow it (PyAV, 8-bit 4:2:0, even sizes, no rotation), a
    window whose tasks read no pixels (``task.pixels == "none"``: plain fragments) comes as a
    :class:`sf2t.ops.YUV420` (the decoder's planes, no RGB conversion), which ``fragment_pack`` converts per output
    pixel with the same arithmetic; windows of tasks that edit or guard pixels are RGB as before."""

    def __init__(
        self,
        videos: Sequence[VideoInfo],
        tasks: dict[str, Task] | Sequence[str] = ("counting", "disorder"),
        *,
        seed: int = 0,
        rank: int = 0,
        samples_per_window: int = 4,
        window_frames: int = 64,
        weights: Sequence[float] | None = None,
        decoder: str = "auto",
        device: str | torch.device = "cpu",
        threads: int = 1,
        timeout: float | None = 60.0,
        max_open: int = 8,
        output: str = "rgb",
    ):
        if not videos:
            raise ValueError("videos is empty: no usable video to sample from (check the index's errors)")
        samples_per_window = check_int("samples_per_window", samples_per_window, min_value=1)
        window_frames = check_int("window_frames", window_frames, min_value=1)
        seed, rank = check_int("seed", seed), check_int("rank", rank, min_value=0)
        from sf2t._device import require_device

        require_device(device)
        self.videos = list(videos)
        self.tasks = _as_tasks(tasks)
        if not self.tasks:
            raise ValueError("tasks is empty")
        for n, t in self.tasks.items():  # a plan that can never fit the window: say so before any work
            need = int(t.min_frames()) if hasattr(t, "min_frames") else 1
            if need > window_frames:
                raise ValueError(
                    f"task {n!r} needs at least {need} frames (its count_min / gap_min) but "
                    f"window_frames is {window_frames}: raise window_frames or lower the task's minimum"
                )
        needs_two = [n for n, t in self.tasks.items() if getattr(t, "needs_other_video", False)]
        if needs_two and len(self.videos) < 2:
            raise ValueError(
                f"task {needs_two[0]!r} takes its target from a different video, but there is only one "
                "usable video: add videos or drop the task"
            )
        self.seed, self.rank = seed, rank
        self.samples_per_window = samples_per_window
        self.window_frames = window_frames
        self.weights = list(weights) if weights else None
        self.decoders = DecoderCache(
            decoder, device=device, threads=threads, timeout=timeout, max_open=max_open, output=output
        )
        self.failures: list[Failure] = []
        self.stats = {"windows": 0, "samples": 0, "failed": 0, "frames_requested": 0, "frames_decoded": 0}

    # -- decoders, opened lazily in the process that uses them
    def _forget(self, path: str) -> None:
        self.decoders.forget(path)

    def close(self) -> None:
        self.decoders.close()

    def plan(self, w: int) -> WindowPlan:
        rng = make_rng(self.seed, w, f"window:{self.rank}")
        return plan_window(
            w,
            self.videos,
            self.tasks,
            rng,
            samples_per_window=self.samples_per_window,
            window_frames=self.window_frames,
            weights=self.weights,
        )

    def _fail(self, f: Failure) -> None:
        self.failures.append(f)
        self.stats["failed"] += 1
        log.info("sample skipped: %s: %s (%s)", f.path, f.reason, f.kind)

    def _get(self, info: VideoInfo, ids: list[int], rgb: bool = True):
        """Frames ``ids`` of ``info``: RGB, or with ``rgb=False`` what the decoder gives (YUV420 planes with
        ``output="yuv420"`` where the backend and stream allow it)."""
        dec = self.decoders.get(info)
        before = getattr(dec, "frames_decoded", None)
        # a backend that gives YUV420 is asked for RGB (converted as it decodes) when the window's pixels are read
        yuv = getattr(dec, "output", "rgb") != "rgb"
        frames, _ = dec.get_frames(ids, output="rgb") if rgb and yuv else dec.get_frames(ids)
        if before is not None:
            self.stats["frames_decoded"] += dec.frames_decoded - before
        self.stats["frames_requested"] += len(ids)
        return frames.to_rgb() if rgb and isinstance(frames, YUV420) else frames

    def _reads_pixels(self, plans: list[FramePlan]) -> bool:
        """Whether building any of ``plans`` reads pixels (then the window is converted to RGB once, for all)."""
        return any(getattr(self.tasks[p.task], "pixels", "full") != "none" for p in plans)

    def window(self, w: int) -> list[tuple[Sample, torch.Tensor]]:
        """The samples of window ``w`` as (Sample, frames): ``frames`` uint8 [n, H, W, 3] on the sampler's device
        (or a ``YUV420`` of n frames, see the class docstring) is what ``sample.src_index`` indexes
        (``sample.presented(frames)`` gives the presented frames; pass both
        to ``fragment_pack``): the window's one union decode, shared by its samples without a copy, or the
        frames a task built (``sample.frames``). Failures go to ``self.failures``."""
        wp = self.plan(w)
        self.stats["windows"] += 1
        for f in wp.failures:
            self._fail(f)
        info = wp.video
        plans = []
        for p in wp.plans:  # frames the index found corrupt: fail those samples before decoding anything
            bad = sorted(set(p.frame_ids) & set(info.corrupt_frames))
            if bad:
                self._fail(
                    Failure(
                        info.path, "corrupt", f"frame {bad[0]} is corrupt (found by sf2t index --verify)", w, p.task
                    )
                )
            else:
                plans.append(p)
        if not plans:
            return []
        union = sorted({i for p in plans for i in p.frame_ids})
        decoded: list[tuple[FramePlan, torch.Tensor, list[int]]] = []  # (plan, frames, rows of its frame_ids)
        rgb = self._reads_pixels(plans)  # else YUV420 windows stay planar (output="yuv420"): fragment_pack converts
        try:
            frames = self._get(info, union, rgb)  # [len(union), H, W, 3], shared by the window's samples
            for p in plans:
                decoded.append((p, frames, [bisect.bisect_left(union, i) for i in p.frame_ids]))
        except VideoError as e:
            if e.kind != "corrupt" or len(plans) == 1:
                for p in plans:
                    self._fail(Failure(e.path, e.kind, e.reason, w, p.task))
                if e.kind not in ("corrupt", "out_of_range", "timeout"):
                    self._forget(info.path)
                return []
            # A damaged frame somewhere in the union: find the samples it belongs to, decode the rest.
            self._forget(info.path)
            for p in plans:
                try:
                    fr = self._get(info, list(p.frame_ids), rgb)
                    decoded.append((p, fr, list(range(len(p.frame_ids)))))
                except VideoError as e2:
                    self._fail(Failure(e2.path, e2.kind, e2.reason, w, p.task))
                    self._forget(info.path)
        thumbs = self._shared_thumbnails(decoded)
        out = []
        for i, (p, fr, rows) in enumerate(decoded):
            rng = make_rng(self.seed, w, f"build:{self.rank}:{i}")
            task = self.tasks[p.task]
            need = getattr(task, "pixels", "full")
            try:
                kw = {}
                if p.extra:
                    kw["extra"] = [self._extra(path, k) for path, k in p.extra]
                if need == "thumbs":  # the guard's thumbnails, computed once per window for all its samples
                    t_rows, t_all = thumbs[id(fr)]
                    kw["thumbs"] = t_all.index_select(0, torch.tensor([t_rows[r] for r in rows], device=t_all.device))
                shared = need == "full" and getattr(task, "shared_frames", False)
                if shared:  # the task reads rows of the window decode in place: no per-sample gathered copy
                    s = task.build(p, fr, rng, rows=list(rows), **kw)
                else:
                    mine = (  # [n, H, W, 3]
                        fr.index_select(0, torch.tensor(rows, device=fr.device)) if need == "full" else None
                    )
                    s = task.build(p, mine, rng, **kw)
            except SkipSample as e:
                self._fail(Failure(info.path, e.kind, e.reason, w, p.task))
                continue
            except VideoError as e:  # the other video of a localization target
                self._fail(Failure(e.path, e.kind, e.reason, w, p.task))
                continue
            if s.frames is None:  # index the shared window decode directly: no per-sample copy of the frames
                if not shared:  # src_index is in rows of the plan's frames; a shared build gave rows of ``fr``
                    s.src_index = [rows[j] for j in s.src_index]
                out.append((s, fr))
            else:
                out.append((s, s.frames))
        self.stats["samples"] += len(out)
        return out

    def _shared_thumbnails(self, decoded) -> dict:
        """Per decoded tensor: ({row: position}, thumbnails [m, th, tw]) of the rows that "thumbs" tasks read,
        each frame's thumbnail computed once for the window (samples overlap; no per-sample frame copy)."""
        from sf2t.tasks.guard import thumbnails

        want: dict[int, tuple[torch.Tensor, set]] = {}
        for p, fr, rows in decoded:
            if getattr(self.tasks[p.task], "pixels", "full") == "thumbs":
                want.setdefault(id(fr), (fr, set()))[1].update(rows)
        out = {}
        for key, (fr, rs) in want.items():
            order = sorted(rs)
            index = None if len(order) == fr.shape[0] else torch.tensor(order)  # read in place: no gathered copy
            out[key] = ({r: i for i, r in enumerate(order)}, thumbnails(fr, index=index))
        return out

    def _extra(self, path: str, k: int) -> torch.Tensor:
        """One frame of another video (a localization target): [H, W, 3] on the sampler's device."""
        info = next((v for v in self.videos if v.path == path), None)
        if info is None:
            raise VideoError(path, "not one of the sampler's videos", "missing")
        return self._get(info, [k])[0]

    def __iter__(self) -> Iterator[tuple[Sample, torch.Tensor]]:
        return self.iterate()

    def iterate(self, first: int = 0, step: int = 1, num_windows: int | None = None):
        w, k = first, 0
        while num_windows is None or k < num_windows:
            yield from self.window(w)
            w += step
            k += 1


def worker_init(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: one torch thread per worker (the decoders get the cores)."""
    torch.set_num_threads(1)


class FragmentDataset(torch.utils.data.IterableDataset):
    """Iterable dataset of fragment samples: items ``{"sample", "frames", "video", "window"}`` or
    ``{"failure": {...}}``. Worker i of n runs windows i, i + n, ... of its rank's stream, so the items are the
    same whatever the number of workers (only their order changes). Holds only configuration: decoders are
    opened in the worker that uses them. Use with ``batch_size=None`` (``make_loader``). ``transform``: a picklable
    ``(sample, frames) -> dict`` run in the worker (e.g. fragment_pack); its dict replaces ``frames`` in the item."""

    def __init__(
        self,
        videos: Sequence[VideoInfo],
        tasks: Sequence[str] = ("counting", "disorder"),
        *,
        num_windows: int | None = None,
        num_workers: int = 0,
        transform=None,
        **sampler_kw,
    ):
        super().__init__()
        self.transform = transform
        if not videos:
            raise ValueError("videos is empty: no usable video to sample from (check the index's errors)")
        self.videos = list(videos)
        self.tasks = list(tasks) if not isinstance(tasks, dict) else tasks
        self.num_windows = num_windows
        self.num_workers = num_workers
        self.sampler_kw = sampler_kw
        WindowSampler(self.videos, self.tasks, **sampler_kw).close()  # its checks, here rather than in a worker

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid, n = (0, 1) if info is None else (info.id, info.num_workers)
        kw = dict(self.sampler_kw)
        kw.setdefault("threads", decoder_threads(max(n, self.num_workers)))
        sampler = WindowSampler(self.videos, self.tasks, **kw)
        try:
            w = wid
            while self.num_windows is None or w < self.num_windows:
                pairs = sampler.window(w)
                failures, sampler.failures = sampler.failures, []  # yielded, not kept: an endless stream's grew
                for f in failures:
                    yield {"failure": f.to_dict()}
                for s, fr in pairs:
                    item = {"sample": s, "video": s.meta.get("source"), "window": w}
                    if self.transform is None:
                        item["frames"] = fr
                    else:  # done in the worker; only its result travels
                        item.update(self.transform(s, fr))
                    yield item
                w += n
        finally:
            sampler.close()


def make_loader(
    dataset: FragmentDataset, num_workers: int = 0, *, timeout: float = 0, mp_context: str | None = None, **kw
) -> torch.utils.data.DataLoader:
    """A DataLoader over ``dataset`` (no batching: items pass through). Workers start with ``forkserver`` by
    default: a clean process, not a fork of a parent that may hold decoder or OpenMP threads."""
    if num_workers > 0:
        kw.setdefault("multiprocessing_context", mp_context or ("forkserver" if os.name == "posix" else "spawn"))
        kw.setdefault("worker_init_fn", worker_init)
        kw.setdefault("persistent_workers", False)
    dataset.num_workers = num_workers
    return torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=num_workers, timeout=timeout, **kw)
