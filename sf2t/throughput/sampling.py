"""The pieces every part of ``sf2t throughput`` shares: the sample shapes, the plain fragment task, the sampler sf2t's
passes open, the plans the baselines are given, and the baselines' modules."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Sequence

import torch

FRAMES, WINDOW, SAMPLES_PER_WINDOW = 16, 64, 4
PROVIDERS = ("sf2t", "llamafactory_style", "qwenvl_utils_style")


class Fragment:
    """A plain 16-frame fragment at a uniform stride (1-4) inside the window."""

    name = "fragment"
    pixels = "none"

    def min_frames(self):
        return FRAMES

    def plan(self, source, num_frames, rng: random.Random):
        from sf2t.tasks.base import FramePlan

        stride = rng.randint(1, max(1, min(4, (num_frames - 1) // (FRAMES - 1))))
        start = rng.randint(0, num_frames - (FRAMES - 1) * stride - 1)
        return FramePlan(self.name, source, [start + i * stride for i in range(FRAMES)], {"stride": stride})

    def build(self, plan, frames, rng):
        from sf2t.tasks.base import Sample

        meta = {"source": plan.source, "source_frames": list(plan.frame_ids), "task": self.name}
        return Sample(self.name, "", "", list(range(len(plan.frame_ids))), meta)

    def chance(self):
        return 0.0


def _baselines():
    """The baseline modules from the clone's bench/baselines (importable from the repo root)."""
    try:
        import bench.baselines.llamafactory_style as lf
        import bench.baselines.qwenvl_utils_style as qv
    except ImportError:
        root = Path(__file__).resolve().parents[2]  # the clone: sf2t/throughput/ is two levels down
        if not (root / "bench" / "baselines").is_dir():
            raise RuntimeError(
                "sf2t throughput's baselines live in the repository's bench/baselines: run it from a clone"
            ) from None
        sys.path.insert(0, str(root))
        import bench.baselines.llamafactory_style as lf
        import bench.baselines.qwenvl_utils_style as qv
    from bench.baselines import processor_for

    return {"llamafactory_style": lf, "qwenvl_utils_style": qv}, processor_for


# Tasks whose presented pixels are a selection of decoded frames (in any order, with repeats), which the baselines
# reproduce from the frame ids; consistency and localization change pixels (a replaced cell, a pasted target).
FRAME_TASKS = ("fragment", "counting", "disorder", "rearrangement", "speed")
FAMILIES = ("qwen2_vl", "qwen2_5_vl")  # one pixel layout: 14-pixel patches, 2 frames a temporal patch, merge 2


def _tasks(names: Sequence[str]) -> dict:
    """The tasks named in ``names``, one name each, as :func:`sf2t.throughput.measure` read and checked them (with
    :func:`sf2t.tasks.task_names`, once a run: not again for every sampler)."""
    from sf2t.tasks import make_task

    return {n: Fragment() if n == "fragment" else make_task(n) for n in names}


def _sampler(
    infos,
    seed: int,
    threads: int = 1,
    tasks: Sequence[str] = ("fragment",),
    device: str = "cpu",
    decoder: str = "auto",
    output: str = "rgb",
):
    from sf2t.video.sampler import WindowSampler

    return WindowSampler(
        infos,
        _tasks(tasks),
        seed=seed,
        samples_per_window=SAMPLES_PER_WINDOW,
        window_frames=WINDOW,
        decoder=decoder,
        threads=threads,
        device=device,
        output=output,
    )


def _decoder_names(s) -> list[str]:
    """The backends the sampler ``s`` has open (torchcodec, pyav, dali, ...): what ``auto`` chose."""
    return sorted({str(getattr(d, "name", type(d).__name__)) for d in s.decoders.open.values()})


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def sample_plans(
    infos, windows: int, seed: int = 0, tasks: Sequence[str] = ("fragment",)
) -> list[tuple[str, list[int]]]:
    """(video, presented frame ids) of each sample sf2t makes in the first ``windows`` windows, for the baselines.
    Plain fragments come from the planner alone; tasks that reorder or pick frames are built (a decode pass) to
    learn the presented order. Tasks that change pixels cannot be reproduced by the baselines: an error."""
    pixel_tasks = [t for t in tasks if t not in FRAME_TASKS]
    if pixel_tasks:
        raise ValueError(
            f"the baselines cannot make {pixel_tasks}' samples (they change pixels); with baselines use "
            f"{', '.join(FRAME_TASKS)}, or --against '' to time sf2t alone"
        )
    s = _sampler(infos, seed, tasks=tasks)
    out = []
    try:
        for w in range(windows):
            wp = s.plan(w)
            if all(t == "fragment" for t in tasks):
                out += [(wp.video.path, list(p.frame_ids)) for p in wp.plans]
                continue
            union = wp.frame_ids  # the rows of the window's shared decode, which src_index points into
            for smp, _ in s.window(w):
                out.append((wp.video.path, [union[i] for i in smp.src_index]))
    finally:
        s.close()
    return out
