"""token_merge across backends: C++ == reference (tokens, positions, gradients), opcheck and torch.compile of the
registered op, backend choice errors, and (on a GPU visit) Triton on CUDA == reference."""

import pytest
import torch

from sf2t.ops.token_merge import _has_cpp, token_merge
from tests.ops.checks import assert_token_merge_matches_reference


@pytest.mark.skipif(not _has_cpp(), reason="sf2t._C lacks token_merge_plan")
@pytest.mark.parametrize("first_group", ["all", "budget"])
@pytest.mark.parametrize("ratio,window", [(0.5, 2), (0.25, 1), (0.1, 0), (0.77, 3)])
def test_cpp_equals_reference(first_group, ratio, window):
    """Same kept tokens, positions, counts and gradients on several videos of awkward sizes (D = 96)."""
    grid = [[5, 6, 7], [1, 3, 3], [3, 1, 11], [0, 4, 4], [2, 9, 2]]
    n = sum(t * h * w for t, h, w in grid)
    x = torch.randn(n, 96, generator=torch.Generator().manual_seed(3), requires_grad=True)
    assert_token_merge_matches_reference(x, grid, ratio, "cpp", window=window, first_group=first_group)


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
