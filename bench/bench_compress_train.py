"""Training step with visual-token compression (apply_sf2t) at keep 1.0 / 0.5 / 0.25, after the vision tower and
before it, CPU, one run, interleaved.

Issue 6's model: a small Qwen2-VL whose vision-tower / LLM parameter ratio is about Qwen2-VL-2B's (0.45): LLM hidden
256 x 4 layers (MLP 1536), vision tower embed 128 x 11 blocks; 16 frames at 224x224 (8 temporal groups of 16x16
patches: 2048 patches into the tower, 512 merged tokens to the LLM), batch 2, AdamW, full training step. The step
is split into the vision tower (its forward + backward, timed alone on the same pixels), the LLM part (embeddings,
decoder, head and the merge: forward + backward minus the tower) and the AdamW step. With stage before_tower the
tower part is the selection on pixels plus the tower on the kept patches. ``--family qwen2_5_vl``: the same sizes with
Qwen2.5-VL's tower (112-pixel windows, full attention in blocks 3, 7 and 10).

    python -m bench.bench_compress_train [--steps 5] [--family qwen2_5_vl] [--json out.json]

pytest-benchmark form (CI runs it once, untimed, at a smaller size):

    pytest bench/bench_compress_train.py
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import pytest
import torch

PATCH_DIM = 3 * 2 * 14 * 14


def build(hidden=256, layers=4, mlp=1536, v_embed=128, v_depth=11, seed=0, family="qwen2_vl"):
    """The issue-6 training model: Qwen2-VL, or Qwen2.5-VL (window attention over 112-pixel windows, full attention
    in every fourth block and the last, as the released models' every eighth of 32)."""
    from sf2t.models.tokenizer import build_tokenizer

    tok = build_tokenizer()
    kw = dict(
        hidden_size=hidden,
        num_layers=layers,
        num_heads=4,
        num_kv_heads=2,
        intermediate_size=mlp,
        vision_depth=v_depth,
        vision_embed_dim=v_embed,
        vision_heads=4,
    )
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLForConditionalGeneration as cls

        from sf2t.models.qwen2_5_vl import build_tiny_config

        full = tuple(sorted({i for i in range(3, v_depth, 4)} | {v_depth - 1}))
        cfg = build_tiny_config(tok, **kw, window_size=112, fullatt_block_indexes=full)
    else:
        from transformers import Qwen2VLForConditionalGeneration as cls

        from sf2t.models.tiny import build_tiny_config

        cfg = build_tiny_config(tok, **kw)
    torch.manual_seed(seed)
    return cls(cfg), tok


def param_ratio(model) -> float:
    vis = sum(p.numel() for p in model.model.visual.parameters())
    llm = sum(p.numel() for p in model.model.language_model.parameters())
    return vis / llm


def batch(tok, grid, keep, n=2, seed=0):
    from sf2t.models import build_video_sample, collate

    g = torch.Generator().manual_seed(seed)
    samples = []
    t, h, w = grid
    for i in range(n):
        s = build_video_sample(
            tok, f"Sample {i}: how many frames are shown?", f"{i + 5}.", [grid], token_keep_ratio=keep
        )
        s.update(
            pixel_values_videos=torch.randn(t * h * w, PATCH_DIM, generator=g), video_grid_thw=torch.tensor([grid])
        )
        samples.append(s)
    return collate(samples, pad_id=tok.pad_token_id)


def step_time(model, opt, b) -> tuple[float, float]:
    """(forward + backward seconds, optimizer step seconds)."""
    opt.zero_grad(set_to_none=True)
    t = time.perf_counter()
    model(**b).loss.backward()
    t1 = time.perf_counter()
    opt.step()
    return t1 - t, time.perf_counter() - t1


def tower_time(model, b, stage: str = "after_tower") -> float:
    """The vision tower's forward + backward alone on the batch's pixels. ``before_tower``: the patched
    ``get_video_features`` (the selection on pixels, then the tower on the kept patches only)."""
    inner = model.model
    t = time.perf_counter()
    if stage == "before_tower":
        out = inner.get_video_features(b["pixel_values_videos"], b["video_grid_thw"], return_dict=True)
        y = torch.cat(list(out.pooler_output))
    else:
        out = inner.visual(b["pixel_values_videos"], grid_thw=b["video_grid_thw"])
        y = out.pooler_output if hasattr(out, "pooler_output") else out
    y.float().square().mean().backward()
    return time.perf_counter() - t


CONFIGS = (
    (1.0, "after_tower"),
    (0.5, "after_tower"),
    (0.25, "after_tower"),
    (0.5, "before_tower"),
    (0.25, "before_tower"),
)


def measure(
    steps: int = 5, grid=(8, 16, 16), size: dict | None = None, configs=CONFIGS, family: str = "qwen2_vl"
) -> dict:
    from sf2t.models import apply_sf2t, remove_sf2t

    model, tok = build(**(size or {}), family=family)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    keeps = sorted({k for k, _ in configs}, reverse=True)
    batches = {k: batch(tok, grid, None if k == 1.0 else k) for k in keeps}
    times = {c: {"step": [], "fb": [], "tower": []} for c in configs}
    for rep in range(steps + 1):  # interleaved; the first round warms up
        for k, stage in configs:
            if k == 1.0:
                remove_sf2t(model)
            else:
                apply_sf2t(model, k, stage=stage)
            fb, o = step_time(model, opt, batches[k])
            v = tower_time(model, batches[k], stage if k < 1.0 else "after_tower")
            if rep:
                times[(k, stage)]["step"].append(fb + o)
                times[(k, stage)]["fb"].append(fb)
                times[(k, stage)]["tower"].append(v)
    remove_sf2t(model)
    rows = {}
    for k, stage in configs:
        tm = times[(k, stage)]
        step = statistics.median(tm["step"])
        fb = statistics.median(tm["fb"])
        tower = statistics.median(tm["tower"])
        rows[str(k) if k == 1.0 else f"{k} {stage}"] = {
            "keep": k,
            "stage": stage if k < 1.0 else None,
            "step_ms": 1e3 * step,
            "optimizer_ms": 1e3 * (step - fb),
            "tower_ms": 1e3 * tower,
            "llm_ms": 1e3 * (fb - tower),
            "llm_tokens": int((batches[k]["input_ids"] == model.config.video_token_id).sum()) // 2,
        }
    base = rows["1.0"]
    for r in rows.values():
        r["step_speedup"] = base["step_ms"] / r["step_ms"]
        r["llm_speedup"] = base["llm_ms"] / r["llm_ms"]
        r["tower_speedup"] = base["tower_ms"] / r["tower_ms"]
    return {
        "machine": {"platform": platform.platform(), "threads": torch.get_num_threads(), "torch": torch.__version__},
        "family": family,
        "grid": list(grid),
        "vision_llm_param_ratio": param_ratio(model),
        "keeps": rows,
    }


def print_table(res: dict) -> None:
    print(
        f"{res.get('family', 'qwen2_vl')}: vision/LLM parameter ratio {res['vision_llm_param_ratio']:.2f}, "
        f"grid {res['grid']}"
    )
    print(
        f"{'keep, stage':>18}{'video tokens':>14}{'step ms':>10}{'tower ms':>10}{'LLM ms':>9}{'AdamW ms':>10}"
        f"{'step x':>8}{'tower x':>9}{'LLM x':>8}"
    )
    for k, r in res["keeps"].items():
        print(
            f"{k:>18}{r['llm_tokens']:>14}{r['step_ms']:>10.0f}{r['tower_ms']:>10.0f}{r['llm_ms']:>9.0f}"
            f"{r['optimizer_ms']:>10.0f}{r['step_speedup']:>8.2f}{r['tower_speedup']:>9.2f}{r['llm_speedup']:>8.2f}"
        )


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
def test_compress_train_step(benchmark, family):
    pytest.importorskip("transformers")
    res = benchmark.pedantic(
        measure,
        kwargs=dict(
            steps=1,
            grid=(2, 4, 4),
            size=dict(hidden=64, layers=1, mlp=128, v_embed=32, v_depth=1),
            family=family,
        ),
        rounds=1,
        iterations=1,
    )
    rows = res["keeps"]
    assert set(rows) == {"1.0", "0.5 after_tower", "0.25 after_tower", "0.5 before_tower", "0.25 before_tower"}
    for stage in ("after_tower", "before_tower"):
        assert rows[f"0.25 {stage}"]["llm_tokens"] < rows[f"0.5 {stage}"]["llm_tokens"] < rows["1.0"]["llm_tokens"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--family", choices=("qwen2_vl", "qwen2_5_vl"), default="qwen2_vl")
    args = ap.parse_args(argv)
    res = measure(args.steps, family=args.family)
    print_table(res)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
