"""Task building on frames already decoded (no decode): plan + build (guards, reordering, pasting) + text assembly
(Qwen2-VL token ids, labels, mm_token_type_ids), per task, against the decode time of the same frames.

Issue 4's target: building costs under 10 % of decoding the same frames. Both are measured here in one run, on
a 640x360 H.264 clip (sf2t.synth, GOP 30), one thread:

    python -m bench.bench_tasks [--samples 200] [--json out.json]

pytest-benchmark form (CI runs it once with --benchmark-disable):

    pytest bench/bench_tasks.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import pytest
import torch

from sf2t.tasks import TASKS, SkipSample, make_rng, make_task

WINDOW = 300  # decoded frames kept in memory (640x360: 207 MB)


def setup(root: Path, frames: int = WINDOW):
    """(decoded frames [WINDOW, H, W, 3], the clip's path, a second clip's frame for localization, a tokenizer)."""
    from sf2t import synth
    from sf2t.models.tokenizer import build_tokenizer
    from sf2t.video import decode_frames

    root.mkdir(parents=True, exist_ok=True)
    path = root / "tasks_640x360_gop30.mp4"
    if not path.exists():
        synth.make_clip(path, 1, width=640, height=360, fps=30, seconds=frames / 30 + 0.5, gop=30)
    video, _ = decode_frames(path, list(range(frames)))
    other = video[frames // 2].flip(0).contiguous()  # stands in for a frame of another video
    return video, str(path), other, build_tokenizer()


def build_samples(name: str, video, other, tokenizer, n: int, seed: int = 0):
    """n samples of ``name``: plan, build and text assembly. Returns (samples, list of each sample's frame ids)."""
    from sf2t.models.qwen2_vl import build_video_sample

    task = make_task(name)
    out, ids = [], []
    i = 0
    while len(out) < n:
        rng = make_rng(seed, i, "bench")
        i += 1
        if getattr(task, "needs_other_video", False):
            plan = task.plan("a.mp4", video.shape[0], rng, other=("b.mp4", 1))
            extra = [other]
        else:
            plan = task.plan("a.mp4", video.shape[0], rng)
            extra = None
        # the sampler hands a task its own frames only when it looks at pixels
        frames = video.index_select(0, torch.tensor(plan.frame_ids)) if getattr(task, "uses_pixels", True) else None
        try:
            s = task.build(plan, frames, rng, extra=extra)
        except SkipSample:
            continue
        f = len(s.src_index)
        grid = torch.tensor([[f, 18, 32]])  # 448x252 at patch 14: what fragment_pack would give
        out.append(build_video_sample(tokenizer, s.question, s.answer, grid))
        ids.append(plan.frame_ids)
    return out, ids


def decode_time(path: str, ids: list[list[int]]) -> float:
    """Seconds to decode each sample's frames with an open decoder (torchcodec, 1 thread)."""
    from sf2t.video import open_decoder

    with open_decoder(path, "auto", threads=1) as dec:
        t = time.perf_counter()
        for f in ids:
            dec.get_frames(f)
        return time.perf_counter() - t


def measure(root: Path, samples: int = 200) -> dict:
    torch.set_num_threads(1)
    video, path, other, tok = setup(root)
    rows = {}
    for name in TASKS:
        build_samples(name, video, other, tok, 5)  # warm up
        t = time.perf_counter()
        _, ids = build_samples(name, video, other, tok, samples)
        build_s = time.perf_counter() - t
        dec_s = decode_time(path, ids)
        rows[name] = {
            "samples_per_s": samples / build_s,
            "build_ms": 1e3 * build_s / samples,
            "decode_ms": 1e3 * dec_s / samples,
            "build_over_decode": build_s / dec_s,
        }
    return {
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "threads": 1,
        },
        "frame_size": list(video.shape[1:3]),
        "samples": samples,
        "tasks": rows,
    }


def print_table(res: dict) -> None:
    print(f"{'task':<15}{'samples/s':>11}{'build ms':>10}{'decode ms':>11}{'build/decode':>14}")
    for name, r in res["tasks"].items():
        print(
            f"{name:<15}{r['samples_per_s']:>11.0f}{r['build_ms']:>10.2f}{r['decode_ms']:>11.2f}"
            f"{100 * r['build_over_decode']:>13.1f}%"
        )


@pytest.fixture(scope="module")
def env():
    pytest.importorskip("torchcodec")
    pytest.importorskip("av")
    root = Path(os.environ.get("SF2T_BENCH_CLIPS", Path(tempfile.gettempdir()) / "sf2t-bench-clips"))
    return setup(root, frames=60)


@pytest.mark.parametrize("name", list(TASKS))
def test_task_build(benchmark, env, name):
    video, _, other, tok = env
    out, _ = benchmark(build_samples, name, video, other, tok, 8)
    assert len(out) == 8 and all(int((o["labels"] != -100).sum()) >= 1 for o in out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--json")
    ap.add_argument("--clips", default=str(Path(tempfile.gettempdir()) / "sf2t-bench-clips"))
    args = ap.parse_args(argv)
    res = measure(Path(args.clips), args.samples)
    print_table(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
