"""token_merge (reference and C++ backends): identity at keep_ratio 1, static budgets, which tokens survive, the
merge against a brute-force loop, gradients (gradcheck in float64), several videos, bad input, C++ == reference."""

import math

import pytest
import torch
import torch.nn.functional as F

from sf2t.ops.token_merge import _has_cpp, kept_count, select_tokens, token_merge

BACKENDS = ["reference", pytest.param("cpp", marks=pytest.mark.skipif(not _has_cpp(), reason="sf2t._C lacks it"))]


@pytest.fixture(autouse=True, params=BACKENDS)
def backend(request, monkeypatch):
    """Every test runs on each backend (SF2T_BACKEND picks it inside token_merge)."""
    monkeypatch.setenv("SF2T_BACKEND", request.param)
    return request.param


def _tokens(t, h, w, d=8, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(t * h * w, d, generator=g, dtype=dtype)


@pytest.mark.parametrize("grid", [(1, 3, 5), (4, 4, 4), (3, 7, 2)])
def test_keep_all_is_identity(grid):
    x = _tokens(*grid)
    out, pos, counts = token_merge(x, [grid], 1.0)
    assert torch.equal(out, x)
    t, h, w = grid
    want = torch.stack(torch.meshgrid(torch.arange(t), torch.arange(h), torch.arange(w), indexing="ij"), -1)
    assert torch.equal(pos, want.reshape(-1, 3)) and counts.tolist() == [t * h * w]


@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.5, 0.77, 1.0])
@pytest.mark.parametrize("first_group", ["all", "budget"])
def test_static_budgets(ratio, first_group):
    grids = [(5, 4, 6), (1, 3, 3), (2, 1, 1)]
    x = torch.cat([_tokens(*g, seed=i) for i, g in enumerate(grids)])
    out, pos, counts = token_merge(x, grids, ratio, first_group=first_group)
    assert counts.tolist() == kept_count(grids, ratio, first_group=first_group)
    assert out.shape == (sum(counts.tolist()), 8) and pos.shape == (out.shape[0], 3)
    for t, h, w in grids:
        k = max(1, math.ceil(ratio * h * w - 1e-9))
        first = h * w if first_group == "all" else k
        assert kept_count([(t, h, w)], ratio, first_group=first_group) == [first + (t - 1) * k]


def test_the_novel_tokens_survive_at_their_positions():
    t, h, w = 2, 4, 4
    x = _tokens(t, h, w).reshape(t, h * w, -1)
    x[1] = x[0] + 1e-3 * torch.randn_like(x[0])  # group 1 repeats group 0 ...
    changed = [1, 6, 11, 14]
    x[1, changed] = torch.randn(4, x.shape[-1], dtype=x.dtype) * 5  # ... except at these positions
    out, pos, counts = token_merge(x.reshape(-1, x.shape[-1]), [(t, h, w)], 0.25)
    later = pos[pos[:, 0] == 1]
    assert (later[:, 1] * w + later[:, 2]).tolist() == changed
    assert counts.tolist() == [16 + 4]


def _brute_force(x, t, h, w, ratio, window):
    """An independent loop over tokens: the contract of the module docstring, first group kept whole."""
    x = x.reshape(t, h * w, -1)
    s = h * w
    k = max(1, math.ceil(ratio * s - 1e-9))
    out = [x[0]]
    for g in range(1, t):
        sims = [float(F.cosine_similarity(x[g, i], x[g - 1, i], dim=0)) for i in range(s)]
        keep = sorted(sorted(range(s), key=lambda i: (sims[i], i))[:k])
        groups = {j: [j] for j in keep}
        for i in range(s):
            if i in groups:
                continue
            near = [j for j in keep if abs(i // w - j // w) <= window and abs(i % w - j % w) <= window]
            cands = near or keep
            best = max(cands, key=lambda j: (float(F.cosine_similarity(x[g, i], x[g, j], dim=0)), -cands.index(j)))
            groups[best].append(i)
        out.append(torch.stack([x[g, groups[j]].mean(0) for j in keep]))
    return torch.cat(out)


@pytest.mark.parametrize("window", [0, 1, 2, 10])
@pytest.mark.parametrize("ratio", [0.2, 0.5])
def test_merge_matches_brute_force(window, ratio):
    t, h, w = 3, 5, 6
    x = _tokens(t, h, w, seed=window)
    out, _, _ = token_merge(x, [(t, h, w)], ratio, window=window)
    torch.testing.assert_close(out, _brute_force(x, t, h, w, ratio, window))


def test_gradcheck_and_gradients_reach_dropped_tokens():
    t, h, w = 3, 3, 4
    x = _tokens(t, h, w, d=5, seed=7).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: token_merge(v, [(t, h, w)], 0.5)[0], (x,))
    token_merge(x, [(t, h, w)], 0.5)[0].sum().backward()
    assert bool((x.grad.abs().sum(dim=1) > 0).all())  # every input token, kept or merged, gets a gradient


def test_several_videos_equal_one_at_a_time():
    grids = [(3, 4, 4), (2, 2, 5)]
    xs = [_tokens(*g, seed=i) for i, g in enumerate(grids)]
    out, pos, counts = token_merge(torch.cat(xs), grids, 0.4)
    parts = [token_merge(x, [g], 0.4) for x, g in zip(xs, grids)]
    assert torch.equal(out, torch.cat([p[0] for p in parts]))
    assert torch.equal(pos, torch.cat([p[1] for p in parts]))
    assert counts.tolist() == [int(p[2]) for p in parts]


@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.77, 1.0])
@pytest.mark.parametrize("first_group", ["all", "budget"])
def test_select_tokens_is_token_merges_selection(ratio, first_group, backend):
    """select_tokens keeps the tokens token_merge keeps, in its order, on several videos (float32, the dtype it
    computes in). Against the reference, a group that repeats half of the previous one makes exact ties, so the
    tie rule counts; the C++ backend's cosines round differently, so its ties may fall otherwise (no ties for it)."""
    grids = [(4, 3, 5), (1, 2, 2), (3, 4, 4)]
    xs = [_tokens(*g, seed=i, dtype=torch.float32) for i, g in enumerate(grids)]
    if backend == "reference":
        xs[2][16:24] = xs[2][0:8]  # group 1 repeats half of group 0: ties at the lowest novelty
    x = torch.cat(xs)
    pos, counts = select_tokens(x, grids, ratio, first_group=first_group)
    _, ref_pos, ref_counts = token_merge(x, grids, ratio, first_group=first_group)
    assert torch.equal(pos, ref_pos.cpu()) and torch.equal(counts, ref_counts)
    assert counts.tolist() == kept_count(grids, ratio, first_group=first_group)
    with pytest.raises(ValueError, match="keep_ratio"):
        select_tokens(x, grids, 0.0)


def test_bf16_keeps_its_dtype():
    x = _tokens(3, 4, 4, dtype=torch.bfloat16)
    out, _, _ = token_merge(x, [(3, 4, 4)], 0.5)
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(keep_ratio=0.0), "keep_ratio"),
        (dict(keep_ratio=1.5), "keep_ratio"),
        (dict(keep_ratio=True), "keep_ratio"),
        (dict(grid=[(2, 2, 3)]), "describes 12 tokens"),
        (dict(grid=[(1.0, 2.0, 2.0)]), "grid must be integer"),
        (dict(window=-1), "window"),
        (dict(first_group="some"), "first_group"),
        (dict(tokens=torch.zeros(8, 4, dtype=torch.int64)), "floating point"),
        (dict(tokens=torch.zeros(8, 0)), "at least one feature"),
        (dict(keep_ratio=float("nan")), "keep_ratio"),
        (dict(grid=[(2**62, 4, 1)], tokens=torch.zeros(0, 4)), "too many to index"),  # wrapped round to 0 once
        (dict(grid=[(2, -2, -2)]), "non-negative"),
        (dict(grid=[(2, 2)]), "grid must be integer"),
        (dict(grid="abc"), "grid must be integer"),
        # raw errors from inside the op before (bincount / copy out of meta): meta tensors hold no values to select by
        (dict(tokens=torch.zeros(8, 4, device="meta")), "meta device"),
        (dict(grid=torch.tensor([(2, 2, 2)], device="meta")), "meta device"),
        (dict(keep_ratio=torch.tensor(0.5)), "pass float"),
        (dict(keep_ratio="0.5"), "keep_ratio"),
        (dict(window=True), "window must be a non-negative int, got the bool True"),
        (dict(window=2.0), r"window must be a non-negative int, got float 2.0: pass 2"),
        # taken as "choose for me" before ($SF2T_BACKEND or the default), without a word
        (dict(backend=False), r"backend must be one of .* or None, got bool False"),
        (dict(backend=0), r"backend must be one of .* or None, got int 0"),
    ],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_input(kw, words, backend):
    args = dict(tokens=_tokens(2, 2, 2), grid=[(2, 2, 2)], keep_ratio=0.5, backend=backend)
    args.update(kw)
    with pytest.raises(ValueError, match=words):
        token_merge(args.pop("tokens"), args.pop("grid"), args.pop("keep_ratio"), **args)


def test_kept_count_matches_token_merge_and_checks_the_grid(backend):
    """The placeholder count the text assembler writes is what token_merge returns, empty groups included; grids
    token_merge refuses, kept_count refuses too (it once answered 1 for an empty group, -14 for a negative one)."""
    from sf2t.ops.token_merge import kept_count

    grid = [(2, 0, 5), (3, 2, 3), (0, 4, 4), (1, 1, 1)]
    n = sum(t * h * w for t, h, w in grid)
    for first_group in ("all", "budget"):
        _, _, counts = token_merge(_tokens(1, 1, n), grid, 0.5, backend=backend, first_group=first_group)
        assert kept_count(grid, 0.5, first_group=first_group) == counts.tolist()
    for bad, words in (([(2, -3, 5)], "non-negative"), ([(2.7, 3, 5)], "integer"), ([(2**62, 2, 1)], "too many")):
        with pytest.raises(ValueError, match=words):
            kept_count(bad, 0.5)


def test_numpy_scalars_and_an_empty_grid_list_are_taken(backend):
    """numpy's float32 / int64 are numbers (they were refused as "not a number"), and ``grid=[]`` is no videos (it
    was read as a float tensor and refused)."""
    import numpy as np

    x = _tokens(3, 2, 3)
    want = token_merge(x, [(3, 2, 3)], 0.5, window=1, backend=backend)
    got = token_merge(x, [(3, 2, 3)], np.float32(0.5), window=np.int64(1), backend=backend)
    for a, b in zip(want, got):
        torch.testing.assert_close(a, b)
    assert kept_count([(3, 2, 3)], np.float32(0.5)) == want[2].tolist() == [12]
    kept, pos, counts = token_merge(x[:0], [], 0.5, backend=backend)
    assert kept.shape == (0, 8) and pos.shape == (0, 3) and counts.shape == (0,)


@pytest.mark.parametrize("at", [20, 25])  # group 1, position 0 (the first place a neighbourhood scan looks) or 5
@pytest.mark.parametrize("merge_backend", ["reference", "cpp"])  # triton: in test_triton.py (CI's interpreter pass)
def test_no_token_is_merged_into_a_nan_token(merge_backend, at):
    """A token with NaN features is kept (the most novel); the reference, Triton and the C++ plan merged finite
    neighbours into it too (argmax took the NaN similarity as the largest; the kernels' first candidate NaN was never
    beaten), turning their means into NaN. (The CUDA kernel has the C++ fix; it runs on a GPU only.)"""
    x = _tokens(3, 4, 5, dtype=torch.float32)
    x[at, 3] = float("nan")
    x = x.requires_grad_()
    kept, _, _ = token_merge(x, [(3, 4, 5)], 0.5, backend=merge_backend)
    bad = kept.isnan().any(1)
    assert int(bad.sum()) == 1
    (kept[bad].nan_to_num(0)).sum().backward()
    assert (x.grad.abs().sum(1) > 0).nonzero().flatten().tolist() == [at]  # the NaN token's row holds it alone
