"""token_merge, forward + backward, issue 6's shape: one video of 32 temporal groups x 256 tokens (16 x 16) x 1536
dims, keep 0.5, float32, CPU. Only the reference exists so far: this is the baseline the compiled kernels will be
timed against (target: C++ >= 3x the reference).

    pytest bench/bench_token_merge.py
"""

import platform

import pytest
import torch

from sf2t.ops import token_merge

GRID = (32, 16, 16)
DIM = 1536


@pytest.fixture(scope="module")
def tokens():
    g = torch.Generator().manual_seed(0)
    return torch.randn(GRID[0] * GRID[1] * GRID[2], DIM, generator=g)


def _fwd_bwd(x):
    x = x.detach().requires_grad_()
    out, pos, counts = token_merge(x, [GRID], 0.5)
    out.sum().backward()
    return out, pos, counts, x.grad


@pytest.mark.parametrize("provider", ["reference"])
def test_token_merge_fwd_bwd(benchmark, tokens, provider):
    benchmark.extra_info.update(
        grid=GRID, dim=DIM, keep=0.5, machine=platform.platform(), threads=torch.get_num_threads()
    )
    out, pos, counts, grad = benchmark(_fwd_bwd, tokens)
    assert out.shape == (256 + 31 * 128, DIM) and int(counts[0]) == out.shape[0]
    assert grad.shape == tokens.shape and bool(torch.isfinite(grad).all())
