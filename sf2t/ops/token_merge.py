"""``token_merge``: compress redundant visual tokens between the vision tower and the LLM (issue 6).

Contract (reference implementation; compiled kernels and the model patches come next):

- ``tokens``: float ``[N, D]``, the visual tokens of one or more videos as the vision tower hands them to the LLM
  (Qwen2-VL: after the 2x2 patch merger), video after video, each in (t, h, w) row-major order.
- ``grid``: int ``[V, 3]``, per video ``(t, h, w)`` in token units (for Qwen2-VL: ``video_grid_thw`` with h and w
  divided by the merge size); ``sum(t * h * w) == N``.
- ``keep_ratio`` in (0, 1]: every temporal group after the first keeps ``K = ceil(keep_ratio * h * w)`` tokens,
  a static budget, so the number of placeholder tokens is known before the vision tower runs
  (:func:`kept_count`). The first group is kept whole (``first_group="all"``) or budgeted too (``"budget"``).

Which tokens survive: in group g >= 1, the K tokens least similar (cosine) to the token at the same (h, w) in
group g - 1 (the most novel ones; ties broken by position). In a budgeted first group, the K least similar to
the group's mean token. Each dropped token is merged into the most similar kept token of its group within a
``window`` (Chebyshev distance in (h, w), default 2); when no kept token is that close, into the most similar
kept token of the group. A kept token's output is the size-weighted mean of itself and the tokens merged into it
(all sizes 1 here, so the plain mean). The selection is discrete; gradients reach the kept and merged inputs
through the means.

Returns ``(kept [M, D], positions [M, 3] int64 (t, h, w) of each kept token in its video's grid, counts [V])``:
kept tokens in (group, position) order, per video, so ``positions`` are what the model's rotary positions
should use (the kept tokens' original places, not a dense grid).
"""

from __future__ import annotations

import functools
import math
import numbers
import os

import numpy as np
import torch
import torch.nn.functional as F

from sf2t import _ext
from sf2t._checks import check_backend, check_int

__all__ = ["token_merge", "select_tokens", "kept_count", "choose_backend", "BACKENDS"]

FIRST_GROUP = ("all", "budget")


def _budget(keep_ratio: float, s: int) -> int:
    return max(1, min(s, math.ceil(keep_ratio * s - 1e-9)))


def kept_count(grid, keep_ratio: float, *, first_group: str = "all") -> list[int]:
    """Tokens kept per video for ``grid`` rows ``(t, h, w)``: what the text assembler writes as placeholders."""
    keep_ratio = _check_ratio(keep_ratio)
    if not isinstance(first_group, str) or first_group not in FIRST_GROUP:
        raise ValueError(f"first_group must be one of {FIRST_GROUP}, got {first_group!r}")
    return [_kept_tokens(t, h * w, keep_ratio, first_group) for t, h, w in _grid_rows(grid).tolist()]


def _kept_tokens(t: int, s: int, keep_ratio: float, first_group: str) -> int:
    """Tokens kept of one video of ``t`` temporal groups of ``s`` tokens, its arguments already checked (the text
    assemblers of sf2t.models check them once per sample: :func:`kept_count` checked its grid a second time)."""
    if t <= 0 or s <= 0:
        return 0
    k = _budget(keep_ratio, s)
    return (s if first_group == "all" else k) + (t - 1) * k


def _grid_rows(grid) -> torch.Tensor:
    """``grid`` as int64 (t, h, w) rows [V, 3] on the CPU, checked: integers, none negative, each row's token count
    small enough to index (2**62: an absurd grid must not wrap round to a plausible one)."""
    if isinstance(grid, torch.Tensor) and grid.device.type == "meta":
        raise ValueError("grid must hold (t, h, w) values: got a tensor on the meta device, which holds no data")
    if isinstance(grid, (list, tuple)) and len(grid) == 0:
        grid = torch.zeros(0, 3, dtype=torch.int64)  # no videos (torch.as_tensor([]) would be float)
    try:
        g = torch.as_tensor(grid)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"grid must be integer (t, h, w) rows [V, 3], got {grid!r} ({e})") from None
    if g.dtype.is_floating_point or g.dtype.is_complex or g.dtype == torch.bool or g.dim() not in (1, 2):
        raise ValueError(f"grid must be integer (t, h, w) rows [V, 3], got {tuple(g.shape)} {g.dtype}")
    if g.shape[-1] != 3:
        raise ValueError(f"grid must be integer (t, h, w) rows [V, 3], got {tuple(g.shape)} {g.dtype}")
    g = g.reshape(-1, 3).to("cpu", torch.int64)
    if bool((g < 0).any()):
        raise ValueError(f"grid values must be non-negative, got {g.tolist()}")
    for t, h, w in g.tolist():
        if t * h * w >= 2**62:
            raise ValueError(f"grid row {[t, h, w]} describes {t * h * w} tokens: too many to index")
    return g


def _check_ratio(keep_ratio) -> float:
    """``keep_ratio`` as a float, checked: a real number (numpy's too) in (0, 1]; not a bool, string or tensor."""
    if isinstance(keep_ratio, torch.Tensor):
        raise ValueError(f"keep_ratio must be a Python number in (0, 1], got a tensor {keep_ratio!r}: pass float(it)")
    if isinstance(keep_ratio, (bool, np.bool_)) or not isinstance(keep_ratio, numbers.Real):
        raise ValueError(f"keep_ratio must be a number in (0, 1], got {type(keep_ratio).__name__} {keep_ratio!r}")
    if not 0.0 < float(keep_ratio) <= 1.0:
        raise ValueError(f"keep_ratio must be a number in (0, 1], got {keep_ratio!r}")
    return float(keep_ratio)


def _check_window(window) -> int:
    """``window`` as an int, checked: a non-negative integer (numpy's too), not a bool."""
    return check_int("window", window, min_value=0)


def _check(tokens, grid, keep_ratio, window, first_group) -> tuple[torch.Tensor, float, int]:
    """The grid rows (:func:`_grid_rows`), ``keep_ratio`` as a float and ``window`` as an int, every argument
    checked."""
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2:
        raise ValueError(f"tokens must be a 2-D tensor [N, D], got {getattr(tokens, 'shape', type(tokens))}")
    if not tokens.dtype.is_floating_point:
        raise ValueError(f"tokens must be floating point, got {tokens.dtype}")
    if tokens.shape[1] == 0:
        raise ValueError(f"tokens must have at least one feature, got {tuple(tokens.shape)}")
    if tokens.device.type == "meta":
        raise ValueError(
            "tokens are on the meta device, which holds no data: token_merge picks tokens by their values, so it "
            "needs CPU or CUDA tokens (kept_count(grid, keep_ratio) gives the output sizes without them)"
        )
    keep_ratio, window = _check_ratio(keep_ratio), _check_window(window)
    if not isinstance(first_group, str) or first_group not in FIRST_GROUP:
        raise ValueError(f"first_group must be one of {FIRST_GROUP}, got {first_group!r}")
    g = _grid_rows(grid)
    total = sum(t * h * w for t, h, w in g.tolist())
    if total != tokens.shape[0]:
        raise ValueError(f"grid {g.tolist()} describes {total} tokens but tokens has {tokens.shape[0]}")
    return g, keep_ratio, window


def _merge_groups(
    x: torch.Tensor, novelty: torch.Tensor, k: int, gh: int, gw: int, window: int, kernel: str | None = None
):
    """Groups at once: x [G, S, D], novelty [G, S]; keep the k most novel tokens of each group (ties: lower
    position) and merge the rest into them. Returns (kept means [G, k, D], kept positions [G, k] ascending).
    ``kernel``: ``"triton"`` (``sf2t.kernels.token_merge``) or ``"op"`` (``torch.ops.sf2t.token_merge_target``: the
    CUDA kernel on CUDA tensors, its CPU twin on CPU ones) computes the targets from neighbourhood dot products
    instead of dense similarity matrices; the same result."""
    g, s, d = x.shape
    dev = x.device
    if k >= s:
        return x, torch.arange(s, device=dev).expand(g, s)
    keep = _most_novel(novelty.detach(), k)  # [G, k]
    unit = F.normalize(x.detach().float(), dim=-1)  # [G, S, D]
    if kernel is not None:
        slot = torch.full((g, s), -1, dtype=torch.int32, device=dev)
        slot.scatter_(1, keep, torch.arange(k, dtype=torch.int32, device=dev).expand(g, k).contiguous())
        if kernel == "triton":
            from sf2t._triton_interp import interpreter_errors
            from sf2t.kernels.token_merge import merge_target

            with interpreter_errors("token_merge backend 'triton'"):
                target = merge_target(unit.contiguous(), slot, gh, gw, window)
        else:
            target = torch.ops.sf2t.token_merge_target(unit.contiguous(), slot, gh, gw, window)
        return _mean_into(x, target.long(), g, k), keep
    kept_unit = torch.gather(unit, 1, keep[..., None].expand(g, k, d))  # [G, k, D]
    # a NaN similarity (a token with NaN or infinite features) ranks below every number: no token is merged into a
    # kept NaN token while a finite one is near (argmax would take NaN as the largest and lose the token to NaN)
    sim = torch.bmm(unit, kept_unit.transpose(1, 2)).nan_to_num(nan=-2.0)  # [G, S, k]
    pos = torch.arange(s, device=dev)
    dh = (pos // gw)[None, :, None] - (keep // gw)[:, None, :]
    dw = (pos % gw)[None, :, None] - (keep % gw)[:, None, :]
    near = (dh.abs() <= window) & (dw.abs() <= window)  # [G, S, k]
    masked = sim.masked_fill(~near, float("-inf"))
    target = torch.where(near.any(dim=2), masked.argmax(dim=2), sim.argmax(dim=2))  # [G, S]
    target.scatter_(1, keep, torch.arange(k, device=dev).expand(g, k))  # a kept token stays itself
    return _mean_into(x, target, g, k), keep


def _most_novel(novelty: torch.Tensor, k: int) -> torch.Tensor:
    """Positions [G, k] (ascending) of the ``k`` most novel tokens of each group; ties go to the lower position."""
    order = torch.sort(novelty, dim=1, descending=True, stable=True).indices
    return torch.sort(order[:, :k], dim=1).values


SAME_COS = 1e-6  # cosines within this of +-1 count as exactly +-1 (see _snap)


def _snap(cos: torch.Tensor) -> torch.Tensor:
    """Cosines within :data:`SAME_COS` of 1 (or -1) made exactly 1 (-1): a token that repeats the one before it
    (a static region: bit-identical pixels, or features equal but for rounding) then ties exactly with every other
    repeat, and ties go to the lower position, so every backend keeps the same tokens (rounding noise in the last
    bits would otherwise decide, differently per backend). A NaN cosine (a token with NaN or infinite features)
    counts as -1: such a token is among the most novel, kept rather than merged into others, on every backend."""
    one = torch.ones_like(cos)
    return torch.where(cos >= 1 - SAME_COS, one, torch.where((cos <= SAME_COS - 1) | cos.isnan(), -one, cos))


def _novelty(x: torch.Tensor, first: bool = True) -> torch.Tensor:
    """[t, S] novelty of groups x [t, S, D] (float): group 0 against its mean token (a budgeted first group; 0 when
    ``first`` is False, the group being kept whole), later groups against the same position one group earlier
    (negated cosine: higher is more novel; see :func:`_snap`)."""
    nov = torch.zeros(x.shape[:2], device=x.device)
    if first:
        nov[0] = -_snap(F.cosine_similarity(x[0], x[0].mean(dim=0, keepdim=True), dim=-1))
    if x.shape[0] > 1:
        nov[1:] = -_snap(F.cosine_similarity(x[1:], x[:-1], dim=-1))
    return nov


def _mean_into(x: torch.Tensor, target: torch.Tensor, g: int, k: int) -> torch.Tensor:
    """Size-weighted means: x [G, S, D], target [G, S] (kept slot per token) -> [G, k, D] (differentiable)."""
    _, s, d = x.shape
    flat = (target + torch.arange(g, device=x.device)[:, None] * k).reshape(-1)  # [G*S] -> slot in [G*k]
    sums = torch.zeros(g * k, d, dtype=x.dtype, device=x.device).index_add(0, flat, x.reshape(g * s, d))
    sizes = torch.bincount(flat, minlength=g * k).to(x.dtype)  # [G*k], >= 1
    return (sums / sizes[:, None]).reshape(g, k, d)


BACKENDS = ("reference", "cpp", "triton", "cuda")


def _triton_ok(tokens: torch.Tensor) -> bool:
    """Triton runs CUDA tensors, or CPU tensors under TRITON_INTERPRET=1."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return tokens.device.type == "cuda" or (tokens.device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1")


def choose_backend(tokens: torch.Tensor, backend: str | None = None) -> str:
    """``backend`` or ``SF2T_BACKEND`` when set (``reference`` | ``cpp`` | ``triton`` | ``cuda``); else ``cpp`` for
    CPU tensors when the extension has the op, ``triton`` for CUDA tensors when Triton is installed, ``reference``
    otherwise (it runs on any device as tensor ops). ``cuda``: the extension's CUDA kernel for CUDA tokens
    (``token_merge_target``); where it is missing (an extension built without CUDA) or the tokens are not on a GPU,
    the same choice as without a backend. (The default for CUDA tokens stays Triton until the CUDA kernel has been
    measured against it on a GPU.)"""
    backend = check_backend(backend, BACKENDS) or os.environ.get("SF2T_BACKEND") or None
    if backend == "cuda" and not (tokens.device.type == "cuda" and _has_cuda_kernel()):
        backend = None
    if backend is not None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "triton" and not _triton_ok(tokens):
            raise ValueError(
                f"backend 'triton' needs Triton and CUDA tokens (or TRITON_INTERPRET=1 for CPU ones); tokens are on "
                f"{tokens.device}"
            )
        return backend
    if tokens.device.type == "cpu" and _has_cpp():
        return "cpp"
    if tokens.device.type == "cuda" and _triton_ok(tokens):
        return "triton"
    return "reference"


@functools.lru_cache(maxsize=1)
def _has_cuda_kernel() -> bool:
    """The loaded extension registered a CUDA kernel for token_merge_target (it was built with its CUDA sources).
    Asked of the dispatcher once: ``choose_backend`` runs on every call."""
    return _has_target_op() and torch._C._dispatch_has_kernel_for_dispatch_key("sf2t::token_merge_target", "CUDA")


def _has_op(name: str) -> bool:
    """The loaded extension has the op ``sf2t::name`` (an extension built before the op has no schema for it)."""
    if not _ext.is_loaded():
        return False
    try:
        getattr(torch.ops.sf2t, name)
    except (AttributeError, RuntimeError):
        return False
    return True


def _has_target_op() -> bool:
    return _has_op("token_merge_target")


def _has_cpp() -> bool:
    return _has_op("token_merge_plan")


def _token_merge_cpp(tokens, g, keep_ratio, window, first_group):
    """The C++ plan (which slot each token joins: no dense similarity matrices), then the size-weighted mean as
    differentiable tensor ops (index_add's backward is a gather)."""
    target, positions, counts = torch.ops.sf2t.token_merge_plan(
        tokens.detach(), [int(v) for v in g.reshape(-1).tolist()], float(keep_ratio), int(window), first_group == "all"
    )
    m = positions.shape[0]
    sums = tokens.new_zeros(m, tokens.shape[1]).index_add(0, target, tokens)
    sizes = torch.bincount(target, minlength=m).to(tokens.dtype)
    return sums / sizes[:, None], positions, counts


def token_merge(
    tokens: torch.Tensor,
    grid,
    keep_ratio: float,
    *,
    window: int = 2,
    first_group: str = "all",
    backend: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Kept (merged) tokens, their (t, h, w) positions and the count per video; see the module docstring.
    ``backend``: ``reference``, ``cpp``, ``triton`` or ``cuda`` (default: :func:`choose_backend`)."""
    g, keep_ratio, window = _check(tokens, grid, keep_ratio, window, first_group)
    which = choose_backend(tokens, backend)
    if which == "cpp":
        _ext.require("token_merge backend 'cpp'")
        if tokens.device.type != "cpu":
            raise ValueError(f"backend 'cpp' needs tokens on the CPU, got {tokens.device}")
        return _token_merge_cpp(tokens, g, keep_ratio, window, first_group)
    kernel = {"triton": "triton", "cuda": "op"}.get(which)
    kept, positions, counts = [], [], []
    start = 0
    dev = tokens.device
    for t, gh, gw in g.tolist():
        s = gh * gw
        n = t * s
        x = tokens[start : start + n].reshape(t, s, -1) if n else tokens[start:start]
        start += n
        if n == 0:
            counts.append(0)
            continue
        k = _budget(keep_ratio, s)
        pos_h = torch.arange(s, device=dev) // gw
        pos_w = torch.arange(s, device=dev) % gw
        # novelty [t, S]: group 0 against its mean token, later groups against the same place one group earlier
        nov = _novelty(x.detach().float(), first=first_group != "all") if k < s else None
        # group 0: whole, or its k tokens least similar to the group's mean token
        if first_group == "all" or k >= s:
            first, keep0 = x[:1], torch.arange(s, device=dev)[None]
        else:
            first, keep0 = _merge_groups(x[:1], nov[:1], k, gh, gw, window, kernel=kernel)
        outs, keeps = [first[0]], [keep0[0]]
        if t > 1:  # groups 1..t-1 at once
            rest, keep = _merge_groups(x[1:], nov[1:] if nov is not None else None, k, gh, gw, window, kernel=kernel)
            outs.append(rest.reshape(-1, rest.shape[-1]))
            keeps += list(keep.unbind(0))
        c = 0
        for ti, kp in enumerate(keeps):
            positions.append(torch.stack([torch.full_like(kp, ti), pos_h[kp], pos_w[kp]], dim=1))
            c += kp.numel()
        kept += outs
        counts.append(c)
    if kept:
        out_tokens = torch.cat(kept)
        out_pos = torch.cat(positions).to(torch.int64)
    else:
        out_tokens = tokens[:0]
        out_pos = torch.empty(0, 3, dtype=torch.int64, device=dev)
    return out_tokens, out_pos, torch.tensor(counts, dtype=torch.int64)


def select_tokens(tokens: torch.Tensor, grid, keep_ratio: float, *, first_group: str = "all"):
    """The selection of :func:`token_merge` alone, without the merge: ``(positions [M, 3] int64 (t, h, w), counts
    [V])`` of the tokens it keeps, in the same order (the same rule: the ``K`` least similar to the same place one
    group earlier, ties to the lower position; a budgeted first group against its mean token). Cheap (one cosine per
    token), on any device, no gradient; ``stage="before_tower"`` of :func:`sf2t.models.apply_sf2t` uses it on
    pixels."""
    g, keep_ratio, _ = _check(tokens, grid, keep_ratio, 0, first_group)
    positions, counts, start = [], [], 0
    x_all = tokens.detach()
    for t, gh, gw in g.tolist():
        s = gh * gw
        n = t * s
        if n == 0:
            counts.append(0)
            continue
        x = x_all[start : start + n].reshape(t, s, -1).float()
        start += n
        keep = _most_novel(_novelty(x, first=first_group != "all"), _budget(keep_ratio, s)).cpu()  # [t, k]
        k = keep.shape[1]
        rows = [torch.arange(s)] if first_group == "all" or k >= s else [keep[0]]
        rows += list(keep[1:].unbind(0))
        for ti, kp in enumerate(rows):
            positions.append(torch.stack([torch.full_like(kp, ti), kp // gw, kp % gw], dim=1))
        counts.append(sum(r.numel() for r in rows))
    pos = torch.cat(positions).to(torch.int64) if positions else torch.empty(0, 3, dtype=torch.int64)
    return pos, torch.tensor(counts, dtype=torch.int64)


def _register_fake() -> None:
    if _has_target_op():

        @torch.library.register_fake("sf2t::token_merge_target")
        def _(unit, slot, h, w, window):
            torch._check(unit.dim() == 3 and slot.dim() == 2, lambda: "unit must be [G, S, D], slot [G, S]")
            return torch.empty_like(slot)

    if not _has_cpp():
        return

    @torch.library.register_fake("sf2t::token_merge_plan")
    def _(tokens, grid, keep_ratio, window, first_all):
        torch._check(tokens.dim() == 2, lambda: "tokens must be [N, D]")
        m = 0
        for i in range(0, len(grid), 3):
            t, h, w = grid[i : i + 3]
            s = h * w
            if t > 0 and s > 0:
                k = _budget(keep_ratio, s)
                m += (s if first_all else k) + (t - 1) * k
        long = dict(dtype=torch.int64, device=tokens.device)
        return (
            tokens.new_empty((tokens.shape[0],), **long),
            tokens.new_empty((m, 3), **long),
            tokens.new_empty((len(grid) // 3,), **long),
        )


_register_fake()
