"""Triton kernels (fragment_pack, token_merge): run in the interpreter against the reference (TRITON_INTERPRET=1,
as CI's second pytest pass does; skipped otherwise since the interpreter must be chosen before triton is imported),
and compile ahead of time for sm_90 with no GPU (in a subprocess, so the interpreter setting cannot leak in)."""

import json
import os
import subprocess
import sys

import pytest
import torch

from sf2t.ops import fragment_pack

triton = pytest.importorskip("triton")
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
needs_interpreter = pytest.mark.skipif(not INTERPRET, reason="run with TRITON_INTERPRET=1 (CI's Triton pass)")

ATOL_F32 = 2e-6


@pytest.fixture(params=["two_pass", "tiled", "tiled@14x14"])
def kernel(request, monkeypatch):
    """fragment_pack's Triton kernels: the two passes, or the tiled single pass (its default tile, and one patch)."""
    name, _, tile = request.param.partition("@")
    monkeypatch.setenv("SF2T_FRAGMENT_PACK_TRITON", name)
    monkeypatch.setenv("SF2T_FRAGMENT_PACK_TILE", tile)
    return request.param


@needs_interpreter
@pytest.mark.parametrize(
    "n,h,w,oh,ow,f,crop",
    [
        (3, 20, 30, 28, 56, 3, True),
        (2, 61, 47, 56, 28, 2, False),
        (1, 1, 1, 28, 28, 1, False),
        (4, 17, 23, 28, 28, 5, True),
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_triton_interpreter_matches_reference(n, h, w, oh, ow, f, crop, dtype, kernel):
    gen = torch.Generator().manual_seed(n * 100 + h)
    frames = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=gen)
    src = torch.randint(0, n, (f,), generator=gen)
    if crop:
        x0 = torch.randint(0, w // 2, (f,), generator=gen)
        y0 = torch.randint(0, h // 2, (f,), generator=gen)
        boxes = torch.stack(
            [
                x0,
                y0,
                x0 + 1 + torch.randint(0, w // 2, (f,), generator=gen),
                y0 + 1 + torch.randint(0, h // 2, (f,), generator=gen),
            ],
            1,
        )
    else:
        boxes = None
    out, g1 = fragment_pack(frames, src, boxes, (oh, ow), backend="triton", dtype=dtype)
    ref, g2 = fragment_pack(frames, src, boxes, (oh, ow), backend="reference", dtype=dtype)
    assert torch.equal(g1, g2)
    if dtype == torch.float32:
        torch.testing.assert_close(out, ref, atol=ATOL_F32, rtol=0)
    else:
        ref32, _ = fragment_pack(frames, src, boxes, (oh, ow), backend="reference")
        err_k = (out.double() - ref32.double()).abs().max()
        err_t = (ref32.bfloat16().double() - ref32.double()).abs().max()
        assert err_k <= 2 * err_t + 1e-12


@needs_interpreter
def test_triton_interpreter_strided_and_empty(kernel):
    gen = torch.Generator().manual_seed(9)
    frames = torch.randint(0, 256, (4, 3, 20, 26), dtype=torch.uint8, generator=gen).permute(0, 2, 3, 1)[::2]
    src = torch.tensor([1, 0])
    out, _ = fragment_pack(frames, src, None, (28, 28), backend="triton")
    ref, _ = fragment_pack(frames.contiguous(), src, None, (28, 28), backend="reference")
    torch.testing.assert_close(out, ref, atol=ATOL_F32, rtol=0)
    empty, grid = fragment_pack(frames, torch.zeros(0, dtype=torch.int64), None, (28, 28), backend="triton")
    assert empty.shape == (0, 1176) and grid.tolist() == [[0, 2, 2]]


@needs_interpreter
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    "n,h,w,resize,size,repeat",
    [(2, 20, 30, (24, 33), (21, 30), 1), (1, 1, 1, (3, 3), (2, 2), 2), (3, 17, 23, (17, 23), (17, 23), 1)],
)
def test_triton_interpreter_fchw_layout(n, h, w, resize, size, repeat, dtype, kernel):
    """The LLaVA layout (resize, centre window, [F * repeat, 3, H, W]) against the reference."""
    gen = torch.Generator().manual_seed(h * 7 + w)
    frames = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=gen)
    src = torch.randint(0, n, (3,), generator=gen)
    kw = dict(layout="fchw", resize=resize, frame_repeat=repeat, dtype=dtype)
    out, grid = fragment_pack(frames, src, None, size, backend="triton", **kw)
    ref, _ = fragment_pack(frames, src, None, size, backend="reference", **kw)
    assert grid is None and out.shape == ref.shape == (3 * repeat, 3, *size)
    if dtype == torch.float32:
        torch.testing.assert_close(out, ref, atol=ATOL_F32, rtol=0)
    else:
        ref32, _ = fragment_pack(
            frames, src, None, size, backend="reference", layout="fchw", resize=resize, frame_repeat=repeat
        )
        err_k = (out.double() - ref32.double()).abs().max()
        err_t = (ref32.bfloat16().double() - ref32.double()).abs().max()
        assert err_k <= 2 * err_t + 1e-12


@needs_interpreter
@pytest.mark.parametrize("layout", ["qwen2_vl", "fchw"])
def test_triton_interpreter_nv12(layout, kernel):
    """NV12 input converted inside the horizontal pass equals converting first, then the reference."""
    from sf2t.ops import NV12

    gen = torch.Generator().manual_seed(11)
    y = torch.randint(16, 236, (2, 14, 20), dtype=torch.uint8, generator=gen)
    uv = torch.randint(16, 241, (2, 7, 10, 2), dtype=torch.uint8, generator=gen)
    x = NV12(y, uv, "bt601", full_range=False)
    src = torch.tensor([1, 0, 1])
    boxes = torch.tensor([[0, 0, 20, 14], [3, 1, 17, 13], [5, 4, 6, 5]])
    kw = dict(layout=layout) if layout == "qwen2_vl" else dict(layout=layout, resize=(16, 22), frame_repeat=1)
    size = (28, 28) if layout == "qwen2_vl" else (13, 19)
    out, _ = fragment_pack(x, src, boxes, size, backend="triton", **kw)
    ref, _ = fragment_pack(x.to_rgb(), src, boxes, size, backend="reference", **kw)
    torch.testing.assert_close(out, ref, atol=ATOL_F32, rtol=0)


@pytest.mark.skipif(INTERPRET, reason="ahead-of-time compilation runs in the non-interpreter pass")
def test_triton_kernels_compile_for_sm90():
    """Every kernel in sf2t.kernels' AOT_SPECS compiles to a cubin for sm_90 without a GPU."""
    code = r"""
import json, os
os.environ.pop("TRITON_INTERPRET", None)
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
import sf2t.kernels.fragment_pack as kfp
import sf2t.kernels.token_merge as ktm
out = {}
for name, (fn, sig, consts) in {**kfp.AOT_SPECS, **ktm.AOT_SPECS}.items():
    k = triton.compile(ASTSource(fn=fn, signature=sig, constexprs=consts), target=GPUTarget("cuda", 90, 32))
    out[name] = {"cubin_bytes": len(k.asm["cubin"]), "has_ptx": "ptx" in k.asm}
print(json.dumps(out))
"""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    compiled = json.loads(res.stdout.strip().splitlines()[-1])
    from sf2t.kernels import fragment_pack as kfp
    from sf2t.kernels import token_merge as ktm

    assert set(compiled) == set(kfp.AOT_SPECS) | set(ktm.AOT_SPECS)
    for name, info in compiled.items():
        assert info["cubin_bytes"] > 1000 and info["has_ptx"], name


@needs_interpreter
@pytest.mark.parametrize("window", [0, 1, 2])
@pytest.mark.parametrize("keep,first_group", [(0.5, "all"), (0.25, "budget")])
def test_triton_token_merge_matches_reference(window, keep, first_group):
    """token_merge's Triton targets (neighbourhood dot products) give the reference's kept tokens, positions and
    gradients, on several small videos (the interpreter runs one program per token)."""
    from tests.ops.checks import assert_token_merge_matches_reference

    grid = [[3, 3, 4], [2, 2, 5], [1, 3, 3]]
    n = sum(t * h * w for t, h, w in grid)
    x = torch.randn(n, 24, generator=torch.Generator().manual_seed(window), requires_grad=True)
    assert_token_merge_matches_reference(x, grid, keep, "triton", window=window, first_group=first_group)


@needs_interpreter
@pytest.mark.parametrize("at", [20, 25])  # the first place a neighbourhood scan looks, and another
def test_triton_token_merge_merges_no_token_into_a_nan_token(at):
    """The Triton targets rank a NaN similarity last (its first candidate NaN was never beaten): the same check as the
    reference's and the C++ plan's (tests/ops/test_token_merge.py), here where CI runs the interpreter."""
    from tests.ops.test_token_merge import test_no_token_is_merged_into_a_nan_token

    test_no_token_is_merged_into_a_nan_token("triton", at)
