"""token_merge across backends: C++ == reference (tokens, positions, gradients), opcheck and torch.compile of the
registered op, backend choice errors, and (on a GPU visit) Triton on CUDA == reference."""

import pytest
import torch

from sf2t.ops.token_merge import _has_cpp, _merge_groups, token_merge
from tests.ops.checks import (
    NUMPY_SCALAR_ERROR,
    InterpreterErrorStandIn,
    assert_names_the_interpreter_versions,
    assert_token_merge_matches_reference,
)


@pytest.mark.skipif(not _has_cpp(), reason="sf2t._C lacks token_merge_plan")
@pytest.mark.parametrize("first_group", ["all", "budget"])
@pytest.mark.parametrize("ratio,window", [(0.5, 2), (0.25, 1), (0.1, 0), (0.77, 3)])
def test_cpp_equals_reference(first_group, ratio, window):
    """Same kept tokens, positions, counts and gradients on several videos of awkward sizes (D = 96)."""
    grid = [[5, 6, 7], [1, 3, 3], [3, 1, 11], [0, 4, 4], [2, 9, 2]]
    n = sum(t * h * w for t, h, w in grid)
    x = torch.randn(n, 96, generator=torch.Generator().manual_seed(3), requires_grad=True)
    assert_token_merge_matches_reference(x, grid, ratio, "cpp", window=window, first_group=first_group)


def _static_video(d: int, seed: int = 5):
    """A video whose groups repeat tokens exactly (a static region) and half-repeat them: every repeated token's
    cosine is 1 but for rounding, which differs between backends."""
    gen = torch.Generator().manual_seed(seed)
    g0 = torch.randn(16, d, generator=gen)
    half = torch.cat([g0[:8], torch.randn(8, d, generator=gen)])
    return torch.cat([g0, g0, half, g0]), [[4, 4, 4]]


@pytest.mark.skipif(not _has_cpp(), reason="sf2t._C lacks token_merge_plan")
@pytest.mark.parametrize("first_group", ["all", "budget"])
@pytest.mark.parametrize("d", [2, 64, 1536])
def test_repeated_tokens_are_kept_alike_on_every_backend(first_group, d):
    """Tokens that repeat the token one group earlier (cosine 1 up to rounding) tie exactly, and the lower positions
    win on every backend: the C++ kernel keeps the reference's tokens in static regions too (it used to follow each
    backend's rounding noise)."""
    x, grid = _static_video(d)
    x.requires_grad_(True)
    assert_token_merge_matches_reference(x, grid, 0.5, "cpp", first_group=first_group)
    _, pos, _ = token_merge(x.detach(), grid, 0.5, backend="reference", first_group=first_group)
    kept = {t: [h * 4 + w for _, h, w in pos[pos[:, 0] == t].tolist()] for t in range(4)}
    assert kept[1] == list(range(8))  # group 1 repeats group 0 throughout: all tie, the lower 8 positions win
    assert kept[2] == kept[3] == list(range(8, 16))  # the first 8 repeat the group before, the last 8 are new


@pytest.mark.skipif(not _has_cpp(), reason="sf2t._C lacks token_merge_plan")
@pytest.mark.parametrize("first_group", ["all", "budget"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_tokens_are_kept_alike_on_every_backend(first_group, bad):
    """A token with NaN or infinite features counts as most novel (its cosines are NaN): every backend keeps the same
    positions (the C++ sort once met NaN in its comparisons: an order that is no order, kept positions that differed
    from the reference's)."""
    x = torch.randn(60, 32, generator=torch.Generator().manual_seed(1))
    x[7] = bad
    x[33, 3] = bad
    grid = [[3, 4, 5]]
    ref = token_merge(x, grid, 0.5, backend="reference", first_group=first_group)
    cpp = token_merge(x, grid, 0.5, backend="cpp", first_group=first_group)
    assert torch.equal(ref[1], cpp[1]) and torch.equal(ref[2], cpp[2])
    kept = {tuple(p) for p in ref[1].tolist()}
    assert (1, 2, 3) in kept  # token 33 = group 1, row 2, column 3: kept, not merged into others


def test_cpp_needs_the_extension_and_cpu():
    with pytest.raises(ValueError, match="backend must be one of"):
        token_merge(torch.zeros(4, 2), [[1, 2, 2]], 0.5, backend="nope")


@pytest.mark.skipif(not _has_cpp(), reason="sf2t._C lacks token_merge_plan")
def test_opcheck_and_compile():
    """The registered op passes opcheck (schema, fake, autograd registration) and token_merge compiles."""
    x = torch.randn(3 * 4 * 5 + 2 * 9, 16, generator=torch.Generator().manual_seed(0))
    grid = [3, 4, 5, 2, 3, 3]
    for first_all in (True, False):
        torch.library.opcheck(torch.ops.sf2t.token_merge_plan.default, (x, grid, 0.5, 2, first_all))
    f = torch.compile(lambda t: token_merge(t, [[3, 4, 5], [2, 3, 3]], 0.5, backend="cpp")[0], backend="eager")
    torch.testing.assert_close(f(x), token_merge(x, [[3, 4, 5], [2, 3, 3]], 0.5, backend="cpp")[0])


def test_triton_backend_needs_cuda_or_the_interpreter(monkeypatch):
    pytest.importorskip("triton")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="TRITON_INTERPRET"):
        token_merge(torch.zeros(4, 2), [[1, 2, 2]], 0.5, backend="triton")


@pytest.mark.parametrize(
    ("interpret", "error", "expected"),
    [
        ("1", NUMPY_SCALAR_ERROR, RuntimeError),
        ("1", "unsupported operand type(s)", InterpreterErrorStandIn),  # any other error: unchanged
        (
            "0",
            "only 0-dimensional arrays can be converted to Python scalars",
            InterpreterErrorStandIn,
        ),  # compiled: unchanged
    ],
)
def test_triton_interpreter_with_a_numpy_it_cannot_run_is_named(monkeypatch, interpret, error, expected):
    """Triton 3.6's interpreter with NumPy 2.4 fails deep inside Triton (an InterpreterError quoting NumPy's
    TypeError): token_merge says which versions and what to install instead (the failing launch is simulated: CI's
    Triton 3.8 runs; checked for real with Triton 3.6 and NumPy 2.4 by hand)."""
    pytest.importorskip("triton")
    import sf2t.kernels.token_merge as kernel

    def fails(*args, **kwargs):
        raise InterpreterErrorStandIn(error)

    monkeypatch.setattr(kernel, "merge_target", fails)
    monkeypatch.setenv("TRITON_INTERPRET", interpret)
    x = torch.randn(2 * 4 * 4, 8, generator=torch.Generator().manual_seed(0))
    with pytest.raises(expected) as info:
        _merge_groups(x.reshape(2, 16, 8), torch.rand(2, 16), 8, 4, 4, 2, kernel="triton")
    if expected is RuntimeError:
        assert_names_the_interpreter_versions(str(info.value), "token_merge backend 'triton'")
    else:
        assert str(info.value) == error


@pytest.mark.gpu
@pytest.mark.parametrize("first_group", ["all", "budget"])
def test_triton_on_cuda_matches_the_cpu_reference(first_group):
    """On a GPU visit: the Triton backend on CUDA tokens keeps the reference's tokens and positions (float32,
    Qwen2-VL-2B's merged width), gradients included; in bf16 the same rows merged as the reference's."""
    grid = [[8, 12, 16], [3, 5, 7]]
    n = sum(t * h * w for t, h, w in grid)
    x = torch.randn(n, 1536, generator=torch.Generator().manual_seed(0))
    ref = token_merge(x.clone().requires_grad_(), grid, 0.5, first_group=first_group, backend="reference")
    xc = x.cuda().requires_grad_()
    got = token_merge(xc, grid, 0.5, first_group=first_group, backend="triton")
    assert torch.equal(got[1].cpu(), ref[1]) and torch.equal(got[2].cpu(), ref[2])
    torch.testing.assert_close(got[0].cpu(), ref[0].detach(), rtol=1e-5, atol=1e-5)
    got[0].sum().backward()
    assert torch.isfinite(xc.grad).all()
    xb = x.cuda().bfloat16()  # bf16: against the reference's tensor ops on the same bf16 tokens
    out_b = token_merge(xb, grid, 0.5, first_group=first_group, backend="triton")
    ref_b = token_merge(xb, grid, 0.5, first_group=first_group, backend="reference")
    assert out_b[0].dtype == torch.bfloat16 and torch.equal(out_b[1], ref_b[1])
    # the same rows merged (CUDA index_add sums in any order: a bf16 step apart at most)
    torch.testing.assert_close(out_b[0].float(), ref_b[0].float(), rtol=1.6e-2, atol=1e-2)


# ------------------------------------------------------------------- token_merge_target (CUDA kernel, CPU twin)

needs_target = pytest.mark.skipif(
    not _has_cpp() or not hasattr(torch.ops.sf2t, "token_merge_target"), reason="sf2t._C lacks token_merge_target"
)


@needs_target
@pytest.mark.parametrize("window", [0, 1, 2, 3])
@pytest.mark.parametrize("shape", [(5, 6, 7, 32), (3, 12, 16, 1536), (2, 1, 9, 5), (4, 3, 3, 8)])
def test_target_op_merges_like_the_dense_reference(window, shape):
    """The merge step of the device backends (``torch.ops.sf2t.token_merge_target``; its CPU twin here runs the
    CUDA kernel's algorithm) gives the dense reference's kept means and positions, gradients included."""
    from sf2t.ops.token_merge import _merge_groups

    g, h, w, d = shape
    gen = torch.Generator().manual_seed(window * 7 + d)
    x = torch.randn(g, h * w, d, generator=gen, dtype=torch.float64).float().requires_grad_()
    nov = torch.randn(g, h * w, generator=gen)
    k = max(1, (h * w) // 3)
    ref, keep_ref = _merge_groups(x, nov, k, h, w, window)
    got, keep = _merge_groups(x, nov, k, h, w, window, kernel="op")
    assert torch.equal(keep, keep_ref)
    torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-6)
    wgt = torch.randn_like(ref)
    (g_ref,) = torch.autograd.grad((ref * wgt).sum(), x)
    (g_got,) = torch.autograd.grad((got * wgt).sum(), x)
    torch.testing.assert_close(g_got, g_ref, rtol=1e-6, atol=1e-6)


@needs_target
def test_target_op_opcheck_and_bad_input():
    unit = torch.nn.functional.normalize(torch.randn(3, 12, 16), dim=-1)
    slot = torch.full((3, 12), -1, dtype=torch.int32)
    slot[:, ::3] = torch.arange(4, dtype=torch.int32)
    torch.library.opcheck(torch.ops.sf2t.token_merge_target.default, (unit, slot, 3, 4, 1))
    out = torch.ops.sf2t.token_merge_target(unit, slot, 3, 4, 1)
    assert out.dtype == torch.int32 and bool((out[:, ::3] == torch.arange(4, dtype=torch.int32)).all())
    assert bool((out >= 0).all() and (out < 4).all())  # every token joins a kept slot
    op = torch.ops.sf2t.token_merge_target
    for args, words in [
        ((unit.double(), slot, 3, 4, 1), "float32"),
        ((unit, slot.long(), 3, 4, 1), "int32"),
        ((unit, slot[:, :6], 3, 4, 1), "matching"),
        ((unit, slot, 3, 5, 1), "h \\* w must equal"),
        ((unit, slot, 3, 4, -1), "window"),
    ]:
        with pytest.raises(RuntimeError, match=words):
            op(*args)


def test_cuda_backend_falls_back_off_the_gpu():
    """``backend="cuda"`` (or SF2T_BACKEND=cuda) with CPU tokens: the CPU choice, not an error."""
    from sf2t.ops.token_merge import choose_backend

    x = torch.randn(12, 8)
    assert choose_backend(x, "cuda") == choose_backend(x)
    out = token_merge(x, [[3, 2, 2]], 0.5, backend="cuda")
    ref = token_merge(x, [[3, 2, 2]], 0.5, backend="reference")
    assert torch.equal(out[1], ref[1])


@pytest.mark.gpu
@pytest.mark.parametrize("first_group", ["all", "budget"])
def test_cuda_kernel_matches_the_cpu_reference(first_group):
    """On a GPU visit: the hand-written CUDA backend (token_merge_target, one warp per token) keeps the reference's
    tokens and positions at Qwen2-VL-2B's merged width, gradients included, and agrees with Triton."""
    from sf2t.ops.token_merge import _has_cuda_kernel, choose_backend

    assert _has_cuda_kernel(), "the extension was built without its CUDA sources"
    grid = [[8, 12, 16], [3, 5, 7]]
    n = sum(t * h * w for t, h, w in grid)
    x = torch.randn(n, 1536, generator=torch.Generator().manual_seed(1))
    x_ref = x.clone().requires_grad_()
    ref = token_merge(x_ref, grid, 0.5, first_group=first_group, backend="reference")
    xc = x.cuda().requires_grad_()
    assert choose_backend(xc, "cuda") == "cuda"
    got = token_merge(xc, grid, 0.5, first_group=first_group, backend="cuda")
    assert torch.equal(got[1].cpu(), ref[1]) and torch.equal(got[2].cpu(), ref[2])
    torch.testing.assert_close(got[0].detach().cpu(), ref[0].detach(), rtol=1e-5, atol=1e-5)
    w = torch.randn_like(ref[0])
    (g_ref,) = torch.autograd.grad((ref[0] * w).sum(), x_ref)
    (g_got,) = torch.autograd.grad((got[0] * w.cuda()).sum(), xc)
    torch.testing.assert_close(g_got.cpu(), g_ref, rtol=1e-5, atol=1e-5)
    tri = token_merge(xc.detach(), grid, 0.5, first_group=first_group, backend="triton")
    assert torch.equal(tri[1], got[1])
