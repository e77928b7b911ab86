"""Training step with visual-token compression (apply_sf2t) at keep 1.0 / 0.5 / 0.25, after the vision tower and
before it, CPU, one run, interleaved.

Issue 6's model: a small Qwen2-VL whose vision-tower / LLM parameter ratio is about Qwen2-VL-2B's (0.45): LLM hidden
256 x 4 layers (MLP 1536), vision tower embed 128 x 11 blocks; 16 frames at 224x224 (8 temporal groups of 16x16
patches: 2048 patches into the tower, 512 merged tokens to the LLM), batch 2, AdamW, full training step. The step
is split into the vision tower (its forward + backward, timed alone on the same pixels), the LLM part (embeddings,
rotary index, decoder and head, forward + backward, timed alone: the model runs on the tower's features computed
beforehand, as leaves), the rest (the merge and the tower-to-LLM hand-over: forward + backward minus both) and the
AdamW step. With stage before_tower the tower part is the selection on pixels plus the tower on the kept patches.
Each compressed setting runs with the first temporal group kept whole (``all``, the default) and, at keep 0.5, also
budgeted like the later groups (``budget``): with the first of 8 groups whole, keep 0.5 sends 288 of 512 video
tokens to the LLM (329 of 553 with the text), so the token count alone bounds the LLM part's speed-up near 1.68x;
budgeted, 256 (297: 1.86x). ``--family qwen2_5_vl``: the same sizes with Qwen2.5-VL's tower (112-pixel windows,
full attention in blocks 3, 7 and 10).

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


def batch(tok, grid, keep, n=2, seed=0, first_group="all"):
    from sf2t.models import build_video_sample, collate

    g = torch.Generator().manual_seed(seed)
    samples = []
    t, h, w = grid
    for i in range(n):
        s = build_video_sample(
            tok,
            f"Sample {i}: how many frames are shown?",
            f"{i + 5}.",
            [grid],
            token_keep_ratio=keep,
            token_first_group=first_group,
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


def _leaves(out):
    """``get_video_features``'s output with every feature tensor replaced by a fresh leaf that wants gradients."""
    if isinstance(out, torch.Tensor):
        return out.detach().requires_grad_()
    if isinstance(out, (tuple, list)):
        return type(out)(_leaves(o) for o in out)
    if hasattr(out, "pooler_output"):
        new = type(out)(**{k: v for k, v in out.items() if k != "pooler_output"})
        new.pooler_output = _leaves(out.pooler_output)
        return new
    return out


def llm_time(model, b) -> tuple[float, float]:
    """(seconds, loss) of forward + backward of everything but the tower and the merge: the model runs with
    ``get_video_features`` answering from features computed beforehand (fresh leaves each call, and the compression
    state the patched method left, so the rotary index is the compressed model's)."""
    from sf2t.models.compress import find_qwen_inner

    inner = find_qwen_inner(model)
    had = "get_video_features" in vars(inner)
    current = inner.get_video_features
    with torch.no_grad():
        out = current(b["pixel_values_videos"], b["video_grid_thw"], return_dict=True)
    state = getattr(inner, "_sf2t_state", None)

    def replay(*args, **kwargs):
        if state is not None:
            inner._sf2t_state = dict(state)
        return _leaves(out)

    inner.get_video_features = replay
    try:
        t = time.perf_counter()
        loss = model(**b).loss
        loss.backward()
        return time.perf_counter() - t, float(loss.detach())
    finally:
        if had:
            inner.get_video_features = current
        else:
            del inner.get_video_features


CONFIGS = (  # (keep, stage, first group)
    (1.0, "after_tower", "all"),
    (0.5, "after_tower", "all"),
    (0.25, "after_tower", "all"),
    (0.5, "before_tower", "all"),
    (0.25, "before_tower", "all"),
    (0.5, "after_tower", "budget"),
    (0.5, "before_tower", "budget"),
)


def row_name(keep: float, stage: str, first_group: str = "all") -> str:
    if keep == 1.0:
        return "1.0"
    return f"{keep} {stage}" + ("" if first_group == "all" else f" {first_group}")


def measure(
    steps: int = 5, grid=(8, 16, 16), size: dict | None = None, configs=CONFIGS, family: str = "qwen2_vl"
) -> dict:
    from sf2t.models import apply_sf2t, remove_sf2t

    model, tok = build(**(size or {}), family=family)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batches = {(k, fg): batch(tok, grid, None if k == 1.0 else k, first_group=fg) for k, _, fg in configs}
    times = {c: {"step": [], "fb": [], "tower": [], "llm": []} for c in configs}
    for rep in range(steps + 1):  # interleaved; the first round warms up
        for k, stage, fg in configs:
            if k == 1.0:
                remove_sf2t(model)
            else:
                apply_sf2t(model, k, stage=stage, first_group=fg)
            b = batches[(k, fg)]
            fb, o = step_time(model, opt, b)
            v = tower_time(model, b, stage if k < 1.0 else "after_tower")
            opt.zero_grad(set_to_none=True)
            m, _ = llm_time(model, b)
            if rep:
                tm = times[(k, stage, fg)]
                tm["step"].append(fb + o)
                tm["fb"].append(fb)
                tm["tower"].append(v)
                tm["llm"].append(m)
    opt.zero_grad(set_to_none=True)
    remove_sf2t(model)
    rows = {}
    for k, stage, fg in configs:
        tm = {name: statistics.median(v) for name, v in times[(k, stage, fg)].items()}
        b = batches[(k, fg)]
        rows[row_name(k, stage, fg)] = {
            "keep": k,
            "stage": stage if k < 1.0 else None,
            "first_group": fg if k < 1.0 else None,
            "step_ms": 1e3 * tm["step"],
            "optimizer_ms": 1e3 * (tm["step"] - tm["fb"]),
            "tower_ms": 1e3 * tm["tower"],
            "llm_ms": 1e3 * tm["llm"],
            "rest_ms": 1e3 * (tm["fb"] - tm["tower"] - tm["llm"]),
            "llm_tokens": int((b["input_ids"] == model.config.video_token_id).sum()) // len(b["input_ids"]),
            "sequence_tokens": int(b["attention_mask"].sum()) // len(b["input_ids"]),
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
        "steps": steps,
        "vision_llm_param_ratio": param_ratio(model),
        "keeps": rows,
    }


def print_table(res: dict) -> None:
    print(
        f"{res.get('family', 'qwen2_vl')}: vision/LLM parameter ratio {res['vision_llm_param_ratio']:.2f}, "
        f"grid {res['grid']}"
    )
    print(
        f"{'keep, stage, first group':>31}{'video/all tok':>14}{'step ms':>9}{'tower ms':>9}{'LLM ms':>8}"
        f"{'rest ms':>8}{'AdamW ms':>9}{'step x':>7}{'tower x':>8}{'LLM x':>7}"
    )
    for k, r in res["keeps"].items():
        tokens = f"{r['llm_tokens']}/{r.get('sequence_tokens', '?')}"
        print(
            f"{k:>31}{tokens:>14}{r['step_ms']:>9.0f}{r['tower_ms']:>9.0f}{r['llm_ms']:>8.0f}"
            f"{r.get('rest_ms', float('nan')):>8.0f}{r['optimizer_ms']:>9.0f}{r['step_speedup']:>7.2f}"
            f"{r['tower_speedup']:>8.2f}{r['llm_speedup']:>7.2f}"
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
    assert set(rows) == {row_name(*c) for c in CONFIGS}
    for stage in ("after_tower", "before_tower"):
        assert rows[f"0.25 {stage}"]["llm_tokens"] < rows[f"0.5 {stage}"]["llm_tokens"] < rows["1.0"]["llm_tokens"]
        assert rows[f"0.5 {stage} budget"]["llm_tokens"] < rows[f"0.5 {stage}"]["llm_tokens"]
    for r in rows.values():
        assert r["llm_ms"] > 0 and r["tower_ms"] > 0


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
def test_llm_part_is_the_same_computation(family):
    """The LLM part, timed on features computed beforehand, computes the model's own loss in every setting (so its
    time is that of the real step's LLM work, not of something else)."""
    pytest.importorskip("transformers")
    from sf2t.models import apply_sf2t, remove_sf2t

    model, tok = build(hidden=64, layers=1, mlp=128, v_embed=32, v_depth=2, family=family)
    for k, stage, fg in CONFIGS:
        b = batch(tok, (2, 8, 8), None if k == 1.0 else k, first_group=fg)
        if k == 1.0:
            remove_sf2t(model)
        else:
            apply_sf2t(model, k, stage=stage, first_group=fg)
        with torch.no_grad():
            want = float(model(**b).loss)
        _, got = llm_time(model, b)
        assert got == pytest.approx(want, abs=1e-6), (k, stage, fg)
        assert ("get_video_features" in vars(model.model)) == (k != 1.0)  # the methods are back as they were


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
