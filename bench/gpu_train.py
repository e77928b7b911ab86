"""SF²T LoRA training on a GPU at Qwen2-VL-2B size with random weights (issue 7): samples/s, tokens/s and the
fraction of step time spent waiting for data, per decoder and DataLoader worker count.

The model has Qwen2-VL-2B's shapes (vision depth 32 / embed 1280 / 16 heads; LLM hidden 1536, 28 layers, 12 heads,
2 KV heads, MLP 8960) and the tiny in-process tokenizer (so a small vocabulary). Training: LoRA r16 on the vision
tower and the LLM, bf16 autocast, gradient checkpointing, counting + disorder + rearrangement with up to 16 presented
frames at 448x252, batch 4, on sf2t.synth H.264 clips (640x360, 20 s). Rates are over the steps after the first
``--skip`` (from the run's metrics.jsonl, as in bench_train.py):

    python bench/gpu_train.py [--steps 12] [--skip 3] [--runs pyav:0,pyav:8] [--json OUT] [--small]

(``--runs``: DECODER:WORKERS[:KEEP[:STAGE]] entries, e.g. ``pyav:8:0.5:before_tower`` for token compression at
keep 0.5 before the vision tower; ``--small``: a tiny model and clips, to try the script on CPU.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch

if __package__ in (None, ""):  # run as `python bench/gpu_train.py`: the repository root holds the bench package
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.bench_train import _window  # noqa: E402

SIZE_2B = dict(
    hidden_size=1536,
    num_layers=28,
    num_heads=12,
    num_kv_heads=2,
    intermediate_size=8960,
    vision_depth=32,
    vision_embed_dim=1280,
    vision_heads=16,
)


def prepare(root: Path, small: bool = False):
    """The clips and the checkpoint (reused when already there): (clips, checkpoint, frame size, seconds taken)."""
    from sf2t import synth
    from sf2t.models import build_tiny_qwen2_vl

    t0 = time.perf_counter()
    if small:
        size, clip_kw, frame = {}, dict(width=160, height=96, seconds=3), [56, 84]
    else:
        size, clip_kw, frame = SIZE_2B, dict(width=640, height=360, seconds=20), [252, 448]
    clip_dir = root / ("clips_small" if small else "clips")
    clips = sorted(str(p) for p in clip_dir.glob("clip_*.mp4"))
    if len(clips) != 4:
        clips = [c["path"] for c in synth.make_clips(clip_dir, 4, seed=11, fps=30, gop=30, **clip_kw)]
    t_clips = time.perf_counter() - t0
    t0 = time.perf_counter()
    ckpt = build_tiny_qwen2_vl(root / ("small" if small else "qwen2vl-2b-size"), seed=0, **size)
    return clips, ckpt, frame, (t_clips, time.perf_counter() - t0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--skip", type=int, default=3)
    ap.add_argument("--runs", default="pyav:0,pyav:8")
    ap.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "sf2t-gpu-train"))
    ap.add_argument("--json")
    ap.add_argument("--small", action="store_true")
    args = ap.parse_args(argv)

    from sf2t.tasks.counting import CountingConfig
    from sf2t.train.config import TrainConfig
    from sf2t.train.loop import train

    cuda = torch.cuda.is_available()
    root = Path(args.root)
    clips, ckpt, frame, (t_clips, t_model) = prepare(root, args.small)
    res = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "torch": torch.__version__,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "model": "qwen2_vl " + ("tiny" if args.small else "2B-size (random weights)"),
        "frame_size": frame,
        "setup_s": {"clips": t_clips, "checkpoint": t_model},
        "runs": {},
    }
    print(f"clips {t_clips:.1f} s, checkpoint {t_model:.1f} s", flush=True)
    for spec in args.runs.split(","):
        parts = spec.split(":")
        if len(parts) not in (2, 3, 4):
            raise SystemExit(f"--runs: {spec!r} is not DECODER:WORKERS[:KEEP[:STAGE]]")
        decoder, workers = parts[:2]
        keep = float(parts[2]) if len(parts) > 2 else 1.0
        stage = parts[3] if len(parts) > 3 else "after_tower"
        out = root / f"run_{decoder}_w{workers}_k{keep}_{stage}"
        shutil.rmtree(out, ignore_errors=True)
        cfg = TrainConfig(
            model=str(ckpt),
            videos=clips,
            tasks=["counting", "disorder", "rearrangement"],
            counting=CountingConfig(count_min=8, count_max=16),
            frame_size=frame,
            batch_size=4,
            lr=1e-4,
            warmup_steps=0,
            lora=True,
            steps=args.steps,
            workers=int(workers),
            decoder=decoder,
            token_keep_ratio=keep,
            token_stage=stage,
            clip_cache_mb=0,
            device="cuda" if cuda else "cpu",
            bf16=cuda,
            gradient_checkpointing=cuda,
            threads=0,
            progress=False,
            tensorboard=False,
            log_every=0,
            seed=0,
            out_dir=str(out),
        )
        t0 = time.perf_counter()
        try:
            train(cfg, log=lambda s: None, save=False)
        except Exception as e:  # report and go on with the next configuration
            import traceback

            traceback.print_exc()
            res["runs"][spec] = {"error": f"{type(e).__name__}: {e}"[-800:]}
            print(f"{spec}: {res['runs'][spec]['error']}", flush=True)
            continue
        r = _window(out / "metrics.jsonl", args.skip, cfg.batch_size)
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        r["tokens_per_s_last"] = rows[-1].get("tokens_per_s")
        r["wall_s"] = time.perf_counter() - t0
        if cuda:
            r["max_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
            torch.cuda.reset_peak_memory_stats()
        res["runs"][spec] = r
        print(
            f"{spec:<12} {r['steps_per_s']:.3f} steps/s  {r['samples_per_s']:.2f} samples/s  "
            f"data wait {100 * r['data_wait_fraction']:.1f}%  tokens/s {r['tokens_per_s_last']:.0f}  "
            f"wall {r['wall_s']:.0f} s",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
