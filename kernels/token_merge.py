"""Triton kernel of token_merge: where each token of a temporal group goes (its kept slot). The selection of the kept
tokens (novelty, a stable sort) runs as tensor ops in ``sf2t.ops.token_merge``; this kernel replaces the reference's
dense [S, K] similarity matrices with, per dropped token, dot products against the kept tokens of its
(2 WIN + 1)^2 neighbourhood only (all kept tokens of the group when none is that close). Ties go to the lower
position, as the reference's argmax. One program per token; the contract and checks live in sf2t.ops.token_merge.
"""

import torch
import triton
import triton.language as tl


@triton.jit
def _dot(unit_ptr, a, b, D, BLOCK_D: tl.constexpr):
    # <unit[a], unit[b]> in float32, BLOCK_D features at a time
    acc = tl.zeros((BLOCK_D,), dtype=tl.float32)
    offs = tl.arange(0, BLOCK_D)
    for d0 in range(0, D, BLOCK_D):
        m = d0 + offs < D
        xa = tl.load(unit_ptr + a * D + d0 + offs, mask=m, other=0.0)
        xb = tl.load(unit_ptr + b * D + d0 + offs, mask=m, other=0.0)
        acc += xa * xb
    return tl.sum(acc, axis=0)


@triton.jit
def _merge_target(
    unit_ptr,  # float32 [G * S, D]: unit-normalized tokens, group after group
    slot_ptr,  # int32 [G * S]: kept slot (0..K-1) of each token, -1 for dropped ones
    target_ptr,  # int32 [G * S] out: the slot each token is averaged into
    S,
    H,
    W,
    D,
    WIN: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    pid = tl.program_id(0)
    g = pid // S
    i = pid % S
    base = g * S
    own = tl.load(slot_ptr + pid)
    best = own
    if own < 0:  # a dropped token: the most similar kept token nearby
        hi = i // W
        wi = i % W
        best_sim = tl.full([], -1.0e30, tl.float32)
        for dy in tl.static_range(2 * WIN + 1):
            for dx in tl.static_range(2 * WIN + 1):
                y = hi + dy - WIN
                x = wi + dx - WIN
                inside = (y >= 0) & (y < H) & (x >= 0) & (x < W)
                p = y * W + x
                sl = tl.load(slot_ptr + base + p, mask=inside, other=-1)
                if sl >= 0:
                    sim = _dot(unit_ptr, base + i, base + p, D, BLOCK_D)
                    sim = tl.where(sim != sim, -2.0, sim)  # NaN (a NaN / inf token) ranks last
                    if (best < 0) | (sim > best_sim):
                        best = sl
                        best_sim = sim
        if best < 0:  # none within the window: the most similar kept token of the group
            for p in range(0, S):
                sl = tl.load(slot_ptr + base + p)
                if sl >= 0:
                    sim = _dot(unit_ptr, base + i, base + p, D, BLOCK_D)
                    sim = tl.where(sim != sim, -2.0, sim)  # NaN (a NaN / inf token) ranks last
                    if (best < 0) | (sim > best_sim):
                        best = sl
                        best_sim = sim
    tl.store(target_ptr + pid, best)


def merge_target(unit: torch.Tensor, slot: torch.Tensor, h: int, w: int, window: int) -> torch.Tensor:
    """unit float32 [G, S, D] (contiguous), slot int32 [G, S] -> target int32 [G, S] (kept slot per token)."""
    g, s, d = unit.shape
    target = torch.empty((g, s), dtype=torch.int32, device=unit.device)
    if g * s == 0:
        return target
    block = min(1024, triton.next_power_of_2(max(16, d)))
    _merge_target[(g * s,)](unit, slot, target, s, h, w, d, WIN=window, BLOCK_D=block)
    return target


def _signature() -> dict:
    return {
        "unit_ptr": "*fp32",
        "slot_ptr": "*i32",
        "target_ptr": "*i32",
        "S": "i32",
        "H": "i32",
        "W": "i32",
        "D": "i32",
        "WIN": "constexpr",
        "BLOCK_D": "constexpr",
    }


# Ahead-of-time compile specs (tests compile them for sm_90 without a GPU): the default window and Qwen2-VL-2B's
# merged token width (1536 -> BLOCK_D 1024 per step).
AOT_SPECS = {
    "_merge_target": (_merge_target, _signature(), {"WIN": 2, "BLOCK_D": 1024}),
}
