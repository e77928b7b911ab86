"""token_merge on the GPU as a fraction of the vision tower's time at Qwen2-VL-2B sizes (issue 6).

Qwen2-VL-2B's vision tower (depth 32, embed 1280, 16 heads, merger to 1536) with random bf16 weights runs 16 frames
at 448x252 (grid t=8, h=18, w=32: 4,608 patches, 1,152 merged tokens); token_merge (keep 0.5) runs on its 1,152 x
1536 output, per backend, forward and forward + backward. Also issue 6's kernel shape [32 x 256 x 1536]. Times are
CUDA-event medians. Prints a table and writes JSON:

    python bench/gpu_token_merge.py [--json OUT] [--small]   (--small: a tiny tower, to try the script on CPU)
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch

from sf2t.ops import token_merge


def _time(fn, reps: int, device: str) -> float:
    """Median seconds of ``fn()`` over ``reps`` runs after 2 warm-ups (CUDA events on a GPU)."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(reps):
        if device == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            torch.cuda.synchronize()
            times.append(a.elapsed_time(b) / 1e3)
        else:
            import time

            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def vision_tower(small: bool, device: str, dtype):
    from transformers.models.qwen2_vl.configuration_qwen2_vl import Qwen2VLVisionConfig
    from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VisionTransformerPretrainedModel

    if small:
        cfg = Qwen2VLVisionConfig(depth=2, embed_dim=64, hidden_size=96, num_heads=2)
    else:  # Qwen2-VL-2B-Instruct's vision_config
        cfg = Qwen2VLVisionConfig(depth=32, embed_dim=1280, hidden_size=1536, num_heads=16, mlp_ratio=4)
    cfg._attn_implementation = "sdpa"
    with torch.device(device):
        model = Qwen2VisionTransformerPretrainedModel(cfg).to(dtype)
    return model, cfg


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json")
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model, cfg = vision_tower(args.small, device, dtype)
    t, h, w = (8, 18, 32) if not args.small else (4, 6, 8)
    grid = torch.tensor([[t, h, w]], device=device)
    patch_dim = cfg.in_channels * cfg.temporal_patch_size * cfg.patch_size**2
    g = torch.Generator(device=device).manual_seed(0)
    pixels = torch.randn(t * h * w, patch_dim, generator=g, device=device, dtype=dtype)

    def tower():
        out = model(pixels, grid_thw=grid)
        return out.pooler_output if hasattr(out, "pooler_output") else out

    with torch.no_grad():
        merged = tower()
    merged_grid = (t, h // 2, w // 2)
    assert merged.shape[0] == t * (h // 2) * (w // 2), merged.shape
    res = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "torch": torch.__version__}
    res["vision_grid_thw"] = [t, h, w]
    res["vision_params"] = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        res["vision_fwd_s"] = _time(tower, args.reps, device)

    def tower_fwd_bwd():
        model.zero_grad(set_to_none=True)
        tower().float().sum().backward()

    res["vision_fwd_bwd_s"] = _time(tower_fwd_bwd, max(3, args.reps // 2), device)
    shapes = {"qwen2vl_2b_16x448x252": (merged.detach(), merged_grid)}
    if not args.small:
        big = torch.randn(32 * 256, 1536, generator=g, device=device, dtype=dtype)
        shapes["issue6_32x256x1536"] = (big, (32, 16, 16))
    backends = ["reference", "triton", "cuda"] if device == "cuda" else ["reference", "cpp"]
    rows = {}
    for name, (x, gr) in shapes.items():
        for be in backends:
            if be == "cuda":
                from sf2t.ops.token_merge import _has_cuda_kernel

                if not _has_cuda_kernel():  # "cuda" would fall back to Triton: not this row
                    rows[f"{name}/{be}"] = {"error": "the extension has no CUDA token_merge_target kernel"}
                    continue
            try:
                with torch.no_grad():
                    fwd = _time(lambda x=x, gr=gr, be=be: token_merge(x, [gr], 0.5, backend=be), args.reps, device)

                def fb(x=x, gr=gr, be=be):
                    xx = x.detach().requires_grad_()
                    out, _, _ = token_merge(xx, [gr], 0.5, backend=be)
                    out.float().sum().backward()

                fwd_bwd = _time(fb, args.reps, device)
            except Exception as e:  # a backend missing on this machine: say so in the table
                rows[f"{name}/{be}"] = {"error": f"{type(e).__name__}: {e}"[:300]}
                continue
            rows[f"{name}/{be}"] = {
                "fwd_s": fwd,
                "fwd_bwd_s": fwd_bwd,
                "fwd_fraction_of_vision_fwd": fwd / res["vision_fwd_s"],
                "fwd_bwd_fraction_of_vision_fwd_bwd": fwd_bwd / res["vision_fwd_bwd_s"],
            }
    res["token_merge"] = rows
    print(
        f"vision tower ({res['vision_params'] / 1e6:.0f}M params, grid {t}x{h}x{w}, {dtype}): "
        f"fwd {res['vision_fwd_s'] * 1e3:.2f} ms, fwd+bwd {res['vision_fwd_bwd_s'] * 1e3:.2f} ms"
    )
    for k, r in rows.items():
        if "error" in r:
            print(f"{k:<45} {r['error']}")
        else:
            print(
                f"{k:<45} fwd {r['fwd_s'] * 1e3:8.3f} ms ({100 * r['fwd_fraction_of_vision_fwd']:.2f}% of tower)"
                f"  fwd+bwd {r['fwd_bwd_s'] * 1e3:8.3f} ms ({100 * r['fwd_bwd_fraction_of_vision_fwd_bwd']:.2f}%)"
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
