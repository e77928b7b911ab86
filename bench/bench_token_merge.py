"""token_merge, forward + backward, issue 6's shape: one video of 32 temporal groups x 256 tokens (16 x 16) x 1536
dims, keep 0.5, float32, CPU: the C++ backend (selection in C++ without dense similarity matrices, the mean as
index_add) against the reference (target: C++ >= 3x). Outputs are checked equal before timing.

    OMP_NUM_THREADS=2 pytest bench/bench_token_merge.py --benchmark-columns=median,min,rounds
"""

import platform

import pytest
import torch

from sf2t.ops import token_merge
from sf2t.ops.token_merge import _has_cpp

GRID = (32, 16, 16)
DIM = 1536


@pytest.fixture(scope="module")
def tokens():
    g = torch.Generator().manual_seed(0)
    return torch.randn(GRID[0] * GRID[1] * GRID[2], DIM, generator=g)


def _fwd_bwd(x, backend):
    x = x.detach().requires_grad_()
    out, pos, counts = token_merge(x, [GRID], 0.5, backend=backend)
    out.sum().backward()
    return out, pos, counts, x.grad


@pytest.mark.parametrize("provider", ["cpp", "reference"])
def test_token_merge_fwd_bwd(benchmark, tokens, provider):
    if provider == "cpp" and not _has_cpp():
        pytest.skip("sf2t._C lacks token_merge_plan")
    benchmark.extra_info.update(
        grid=GRID, dim=DIM, keep=0.5, machine=platform.platform(), threads=torch.get_num_threads()
    )
    if provider == "cpp":  # same result as the reference before anything is timed
        ref, got = _fwd_bwd(tokens, "reference"), _fwd_bwd(tokens, "cpp")
        assert torch.equal(ref[1], got[1])
        torch.testing.assert_close(got[0], ref[0])
        torch.testing.assert_close(got[3], ref[3])
    out, pos, counts, grad = benchmark(_fwd_bwd, tokens, provider)
    assert out.shape == (256 + 31 * 128, DIM) and int(counts[0]) == out.shape[0]
    assert grad.shape == tokens.shape and bool(torch.isfinite(grad).all())
