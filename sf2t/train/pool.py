"""The videos samples are drawn from, and their decoded frames.

``VideoPool`` probes the videos once and keeps the usable ones; unusable ones (missing, empty, corrupt,
too short, static) are recorded in ``pool.skipped`` with the reason (a ``Skip``), never silently dropped;
``NoUsableVideo`` is raised when a task is left with none. ``FrameStore`` decodes the frames a sample needs (short
clips whole, kept in an LRU cache) and reduces them to ``max_side``. Both are re-exported by :mod:`sf2t.train.data`.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Sequence

import torch

from sf2t._plural import counted
from sf2t.video.backends import DecoderCache
from sf2t.video.decode import VideoError, VideoInfo, probe

__all__ = ["NoUsableVideo", "Skip", "VideoPool", "FrameStore", "position"]


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
