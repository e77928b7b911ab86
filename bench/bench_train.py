"""Training steps/s and the fraction of step time spent waiting for data, on CPU, DataLoader workers 0 vs 2:

- ``demo``: the ``sf2t demo`` configuration (tiny Qwen2-VL, LLM hidden 64, full fine-tuning, 56x56 frames, pairs
  layout, batch 8, the demo's tasks (all six; counting + disorder until 2026-11-25) on its contrast and sf2t.synth
  clips, clip cache on);
- ``h256_f16``: a larger tiny Qwen2-VL (LLM hidden 256, 4 layers, vision embed 64) with LoRA on both towers,
  counting with 16 presented frames at 112x112, batch 4, on 320x180 H.264 clips of 8 s decoded per sample (no
  clip cache).

Rates are over the steps after the first ``--skip`` (worker start-up and first decodes excluded), from the run's
metrics.jsonl:

    python -m bench.bench_train [--steps 40] [--skip 5] [--runs 2:0:0,2:2:0,1:1:0,2:0:2] [--json out.json]

(``--runs``: training-process torch threads : DataLoader workers : prefetch-thread depth; on 2 cores, 2 threads +
2 workers oversubscribe.)

pytest-benchmark form (CI runs it once with --benchmark-disable): ``pytest bench/bench_train.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

import pytest
import torch


def _clips(root: Path, kind: str) -> tuple[list[str], Path | None]:
    from sf2t import synth

    if kind == "demo":
        from sf2t.demo import _make_clips

        train, _, _ = _make_clips(root / "demo", 0, (12, 0), (3, 0))
        return train, root / "demo"
    kw = dict(width=320, height=180, fps=30, seconds=8, num_sprites=2, gop=30)
    return [c["path"] for c in synth.make_clips(root / "h256", 3, seed=7, **kw)], None


def _config(root: Path, kind: str, steps: int, workers: int, threads: int, prefetch: int = 0):
    from sf2t.demo import demo_config
    from sf2t.models import build_tiny_qwen2_vl
    from sf2t.tasks.counting import CountingConfig
    from sf2t.train.config import TrainConfig

    videos, clips_dir = _clips(root / "clips", kind)
    out = root / f"run_{kind}_w{workers}_p{prefetch}"
    common = dict(steps=steps, workers=workers, threads=threads, prefetch=prefetch, seed=0)
    common.update(progress=False, tensorboard=False)
    if kind == "demo":
        model = build_tiny_qwen2_vl(root / "tiny-demo", seed=0)
        return demo_config(out, str(model), videos, [], clips_dir, curriculum_steps=0, warmup_steps=0, **common)
    model = build_tiny_qwen2_vl(
        root / "tiny-h256", hidden_size=256, num_layers=4, intermediate_size=512, vision_embed_dim=64, seed=0
    )
    return TrainConfig(
        model=str(model),
        videos=videos,
        tasks=["counting"],
        counting=CountingConfig(count_min=16, count_max=16),
        frame_size=[112, 112],
        batch_size=4,
        lr=1e-4,
        warmup_steps=0,
        clip_cache_mb=0,
        out_dir=str(out),
        log_every=0,
        **common,
    )


def _window(metrics: Path, skip: int, batch: int) -> dict:
    """steps/s, samples/s and data-wait fraction over steps (skip, last], from the cumulative rates logged."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    first, last = rows[skip - 1], rows[-1]

    def clock(r):  # (elapsed seconds, data seconds) at that step
        elapsed = r["step"] * batch / r["samples_per_s"]
        return elapsed, elapsed * r["data_wait_fraction"]

    (e0, d0), (e1, d1) = clock(first), clock(last)
    steps = last["step"] - first["step"]
    return {
        "steps_per_s": steps / (e1 - e0),
        "samples_per_s": steps * batch / (e1 - e0),
        "data_wait_fraction": (d1 - d0) / (e1 - e0),
        "steps_measured": steps,
    }


def measure(
    root: Path, kind: str, workers: int, steps: int = 40, skip: int = 5, threads: int = 2, prefetch: int = 0
) -> dict:
    import shutil

    from sf2t.train.loop import train

    cfg = _config(root, kind, steps, workers, threads, prefetch)
    shutil.rmtree(cfg.out_dir, ignore_errors=True)
    train(cfg, log=lambda s: None, save=False)
    return _window(Path(cfg.out_dir) / "metrics.jsonl", skip, cfg.batch_size * cfg.grad_accum)


# (training-process torch threads, DataLoader workers, prefetch-thread depth)
RUNS = ((2, 0, 0), (2, 2, 0), (1, 1, 0), (2, 0, 2))


def run(root: Path, steps: int, skip: int, kinds=("demo", "h256_f16"), runs=RUNS) -> dict:
    rows = {}
    for kind in kinds:
        for threads, w, pf in runs:
            rows[f"{kind}/threads={threads},workers={w},prefetch={pf}"] = measure(
                root, kind, w, steps, skip, threads, pf
            )
    return {
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
        "steps": steps,
        "skip": skip,
        "runs": rows,
    }


def print_table(res: dict) -> None:
    print(f"{'configuration':<45}{'steps/s':>9}{'samples/s':>11}{'data wait':>11}")
    for name, r in res["runs"].items():
        print(f"{name:<45}{r['steps_per_s']:>9.2f}{r['samples_per_s']:>11.1f}{100 * r['data_wait_fraction']:>10.1f}%")


@pytest.fixture(scope="module")
def root():
    pytest.importorskip("av")
    pytest.importorskip("transformers")
    return Path(tempfile.mkdtemp(prefix="sf2t-bench-train-"))


@pytest.mark.parametrize("workers", [0, 2])
def test_train_steps(benchmark, root, workers):
    r = benchmark.pedantic(measure, args=(root, "h256_f16", workers, 4, 1, 1), rounds=1, iterations=1)
    assert r["steps_measured"] == 3 and r["steps_per_s"] > 0 and 0.0 <= r["data_wait_fraction"] <= 1.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--skip", type=int, default=5)
    ap.add_argument(
        "--runs",
        default=",".join(":".join(str(v) for v in r) for r in RUNS),
        help="THREADS:WORKERS:PREFETCH: the training process's torch threads, DataLoader workers, prefetch depth",
    )
    ap.add_argument("--only", choices=["demo", "h256_f16"])
    ap.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "sf2t-bench-train"))
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    kinds = (args.only,) if args.only else ("demo", "h256_f16")
    runs = tuple(tuple(int(v) for v in r.split(":")) for r in args.runs.split(","))
    res = run(Path(args.root), args.steps, args.skip, kinds, runs)
    print_table(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
