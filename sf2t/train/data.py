"""Training and evaluation samples, end to end: video -> needed frames -> task -> fragment_pack -> tokens.

``VideoPool`` probes the videos once and keeps the usable ones; unusable ones (missing, empty, corrupt,
too short, static) are recorded in ``pool.skipped`` with the reason, never silently dropped.
``SampleFactory.sample(index)`` is a pure function of (seed, index) and the pool: it draws a task, a
video and a plan from ``make_rng(seed, index)``, decodes the plan's frames, builds the task sample (the
motion guard resamples windows that fail), packs the frames into Qwen2-VL's pixel layout and assembles
``input_ids`` / ``labels`` (loss on the answer only).
"""

from __future__ import annotations

import random
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from sf2t.tasks import make_task
from sf2t.tasks.base import Sample, SkipSample, Task, make_rng
from sf2t.video.decode import VideoError, VideoInfo, decode_frames, probe

__all__ = ["Skip", "VideoPool", "FrameStore", "SampleFactory", "batches"]


@dataclass
class Skip:
    """A video left out, and why (``kind``: a ``VideoError`` kind, ``too_short`` or ``static``)."""

    path: str
    kind: str
    reason: str

    def to_dict(self) -> dict:
        return {"path": self.path, "kind": self.kind, "reason": self.reason}


@dataclass
class VideoPool:
    """Usable videos (with their metadata) and the skipped ones with reasons."""

    infos: list[VideoInfo] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)

    @classmethod
    def from_paths(cls, paths: Sequence[str], *, min_frames: int = 1, decoder: str = "auto") -> VideoPool:
        pool = cls()
        for p in paths:
            try:
                info = probe(p, decoder=decoder)
            except VideoError as e:
                pool.skipped.append(Skip(e.path, e.kind, e.reason))
                continue
            if info.num_frames < min_frames:
                pool.skipped.append(
                    Skip(str(p), "too_short", f"too short: {info.num_frames} frames, the tasks need {min_frames}")
                )
                continue
            pool.infos.append(info)
        return pool

    def drop(self, path: str, kind: str, reason: str) -> None:
        """Take a video out of the pool (e.g. it never passed the motion guard) and record why."""
        self.infos = [i for i in self.infos if i.path != path]
        if not any(s.path == path for s in self.skipped):
            self.skipped.append(Skip(path, kind, reason))

    def skip_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.skipped:
            out[s.kind] = out.get(s.kind, 0) + 1
        return out


class FrameStore:
    """Decoded frames by (video, frame ids). Short clips are decoded whole once and kept (LRU, ``cache_mb``);
    longer ones decode only the needed frames on each request."""

    def __init__(self, *, cache_mb: int = 256, decoder: str = "auto", device: str | torch.device = "cpu"):
        self.budget = int(cache_mb) * 2**20
        self.decoder = decoder
        self.device = torch.device(device)
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._bytes = 0

    def get(self, info: VideoInfo, frame_ids: Sequence[int]) -> torch.Tensor:
        """uint8 [len(frame_ids), H, W, 3] on the store's device."""
        clip_bytes = info.num_frames * info.height * info.width * 3
        if self.budget and clip_bytes <= self.budget // 8:
            clip = self._cache.get(info.path)
            if clip is None:
                clip, _ = decode_frames(info.path, range(info.num_frames), decoder=self.decoder, device=self.device)
                self._cache[info.path] = clip
                self._bytes += clip.numel()
                while self._bytes > self.budget and len(self._cache) > 1:
                    _, old = self._cache.popitem(last=False)
                    self._bytes -= old.numel()
            else:
                self._cache.move_to_end(info.path)
            return clip[torch.as_tensor(list(frame_ids), dtype=torch.int64, device=clip.device)]
        frames, _ = decode_frames(info.path, list(frame_ids), decoder=self.decoder, device=self.device)
        return frames


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
        seed: int = 0,
        salt: str = "train",
        weights: Sequence[float] | None = None,
        store: FrameStore | None = None,
        max_resample: int = 8,
    ):
        self.pool = pool
        self.tasks = {name: make_task(name) for name in tasks} if not isinstance(tasks, dict) else dict(tasks)
        self.names = list(self.tasks)
        self.weights = list(weights) if weights else [1.0] * len(self.names)
        self.tokenizer = tokenizer
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.frame_repeat = frame_repeat
        self.seed = seed
        self.salt = salt
        self.store = store or FrameStore()
        self.max_resample = max_resample
        self._fails: dict[str, int] = {}

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
        while True:
            if not self.pool.infos:
                raise RuntimeError(
                    "no usable videos left; skipped: " + "; ".join(f"{s.path}: {s.reason}" for s in self.pool.skipped)
                )
            info = self.pool.infos[rng.randrange(len(self.pool.infos))]
            got = self._try_video(t, info, rng)
            if got is not None:
                return got

    def _try_video(self, t: Task, info: VideoInfo, rng: random.Random):
        last: SkipSample | None = None
        for _ in range(self.max_resample):
            try:
                plan = t.plan(info.path, info.num_frames, rng)
                frames = self.store.get(info, plan.frame_ids)
                sample = t.build(plan, frames, rng)
                self._fails.pop(info.path, None)
                return sample, frames
            except SkipSample as e:
                last = e
                if e.kind == "too_short":
                    break
            except VideoError as e:  # a file that probes but does not decode: out of the pool for good
                self.pool.drop(info.path, e.kind, e.reason)
                return None
        # No window of this video passed: report it and stop drawing it.
        assert last is not None
        reason = last.reason if last.kind == "too_short" else f"{last.reason}, {self.max_resample} windows tried"
        self.pool.drop(info.path, last.kind, f"{t.name}: {reason}")
        return None

    # -- packed, tokenized samples

    def pack(self, sample: Sample, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from sf2t.ops.fragment_pack import fragment_pack

        return fragment_pack(
            frames,
            sample.src_index_tensor(frames.device),
            sample.boxes_tensor(frames.device),
            self.frame_size,
            frame_repeat=self.frame_repeat,
        )

    def sample(
        self, index: int, *, task: str | None = None, tasks: Sequence[str] | None = None, with_answer: bool = True
    ) -> dict[str, Any]:
        """A model-ready sample: input_ids, attention_mask, labels, mm_token_type_ids, pixel_values_videos,
        video_grid_thw, plus ``task``, ``question``, ``answer`` and ``meta`` for scoring."""
        from sf2t.models.qwen2_vl import build_video_sample

        s, frames = self.task_sample(index, task=task, tasks=tasks)
        pixels, grid = self.pack(s, frames)  # [grid_t*gh*gw, 3*2*14*14], [1, 3]
        out: dict[str, Any] = build_video_sample(self.tokenizer, s.question, s.answer if with_answer else None, grid)
        out["pixel_values_videos"] = pixels
        out["video_grid_thw"] = grid
        out.update(task=s.task, question=s.question, answer=s.answer, meta=s.meta)
        return out


_TENSOR_KEYS = ("input_ids", "attention_mask", "labels", "mm_token_type_ids", "pixel_values_videos", "video_grid_thw")


def batches(factory: SampleFactory, batch_size: int, *, start: int = 0, tasks_for_step=None):
    """Endless collated batches; sample indices run ``start, start + 1, ...``. ``tasks_for_step(step)`` may
    restrict the tasks drawn at a step (curriculum); None: every task, by weight."""
    from sf2t.models.qwen2_vl import collate

    pad_id = factory.tokenizer.pad_token_id
    index, step = start, 0
    while True:
        tasks = tasks_for_step(step) if tasks_for_step else None
        items = []
        for _ in range(batch_size):
            items.append(factory.sample(index, tasks=tasks))
            index += 1
        batch = collate([{k: it[k] for k in _TENSOR_KEYS} for it in items], pad_id)
        batch["tasks"] = [it["task"] for it in items]
        yield batch
        step += 1
