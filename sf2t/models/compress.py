"""``apply_sf2t``: visual-token compression (:func:`sf2t.ops.token_merge`) inside a Hugging Face video LLM, between
the vision tower and the LLM, in training and inference.

Qwen2-VL and Qwen2.5-VL (the model's inner ``*Model`` with ``visual``, ``get_video_features`` and
``get_rope_index``), patched on the instance (other instances and the class are untouched):

- ``get_video_features``: the tower's merged tokens of each video (t, h / merge, w / merge) go through
  ``token_merge``; each later temporal group keeps ``ceil(keep * h * w / merge^2)`` tokens (a static budget: the text
  has exactly :func:`sf2t.ops.token_merge.kept_count` placeholders per video, see
  ``build_video_sample(..., token_keep_ratio=)``), dropped tokens are averaged into similar kept ones. Gradients
  reach the tower through the kept and merged tokens.
- ``get_rope_index``: the 3-D rotary positions are those the tokens had in the uncompressed model. The model's own
  ``get_rope_index`` runs on the sequence with every video's placeholder run expanded back to its full length, and
  the positions of the dropped tokens are removed; text after a video keeps its position too (the model advances
  positions by the grid's extent, not by the token count), and ``rope_deltas`` are recomputed for generation.

``keep_ratio=1.0`` keeps every token in place: outputs equal the unpatched model's. The patch works under peft
(LoRA) and gradient checkpointing (it only wraps two methods of the inner model).

``stage="before_tower"`` (Qwen2-VL): ``get_video_features`` picks the kept tokens from the pixels of their
``merge x merge`` patches (:func:`sf2t.ops.token_merge.select_tokens`, the same rule and budgets) and runs the
tower on those patches only: each temporal group becomes one attention block of its kept patches (a grid of
``[1, merge, merge * K]`` for the tower's block sizes) and the patches keep their true rotary (h, w), passed to the
tower as ``position_ids``. Attention inside a group then sees only the kept patches, so a kept token's features
differ from the full tower's; the rotary index and the text are the same as after the tower.

LLaVA-OneVision and LLaVA-NeXT-Video (the inner ``*Model`` with ``vision_tower`` and ``get_video_features``): the
pooled per-frame tokens of each video (frames as temporal groups of the square per-frame grid) go through
``token_merge``; OneVision's trailing newline token stays. Positions are 1-D (the LLM numbers the shorter sequence),
so nothing else changes; the text has the kept count of ``<video>`` tokens (``build_sample(..., token_keep_ratio=)``
of ``sf2t.models.llava_onevision`` / ``llava_next_video``).
"""

from __future__ import annotations

import functools
import inspect
import types
import weakref

import numpy as np
import torch

from sf2t._plural import counted

__all__ = ["apply_sf2t", "remove_sf2t", "check_compression", "find_qwen_inner", "find_llava_inner"]


def find_qwen_inner(model):
    """The module holding the vision tower and the rotary index (Qwen2-VL / Qwen2.5-VL ``*Model``), through peft
    wrappers; None when the model has none."""
    for m in model.modules():
        if hasattr(m, "visual") and hasattr(m, "get_rope_index") and hasattr(m, "get_video_features"):
            return m
    return None


def find_llava_inner(model):
    """The LLaVA-OneVision / LLaVA-NeXT-Video ``*Model`` (vision tower, projector, ``get_video_features``) inside
    ``model``, through peft wrappers; None when there is none."""
    for m in model.modules():
        if hasattr(m, "vision_tower") and hasattr(m, "multi_modal_projector") and hasattr(m, "get_video_features"):
            return m
    return None


def _check_model(model, fn: str) -> None:
    if not isinstance(model, torch.nn.Module):
        load = (
            " (a checkpoint name or folder: load the model first, e.g. with from_pretrained)"
            if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__")
            else ""
        )
        raise TypeError(f"{fn}: model must be the loaded torch.nn.Module, got {type(model).__name__}{load}")


def _find_inner(model):
    inner = find_qwen_inner(model)
    return (inner, "qwen") if inner is not None else (find_llava_inner(model), "llava")


STAGES = ("after_tower", "before_tower")


def apply_sf2t(
    model,
    token_keep_ratio: float = 0.5,
    *,
    window: int = 2,
    first_group: str = "all",
    stage: str = "after_tower",
):
    """Patch ``model`` (in place; also returned) to compress its video tokens. Calling it again changes the
    settings; :func:`remove_sf2t` restores the original methods.

    ``stage="after_tower"`` (default): the tower sees every patch; its merged tokens go through ``token_merge``
    (dropped tokens are averaged into kept ones). ``stage="before_tower"`` (Qwen2-VL and Qwen2.5-VL): the same
    selection rule runs on the pixels of each merged token's patches (``m x m`` patches, cosine against the same place
    in the previous temporal group), and the tower runs on the kept patches only, each temporal group attending within
    its kept patches at their original rotary positions (Qwen2.5-VL's window layers within the kept patches of each
    window), so the tower's work shrinks with the LLM's. Dropped tokens are not merged (the tower never sees them).
    The kept counts, and so the text, are the same in both stages.

    Qwen families: the rotary index of a forward pass follows the videos its ``get_video_features`` compressed, so
    call the model with ``pixel_values_videos``. Video features computed ahead and passed as ``mm_encoder_outputs``
    are not supported: with other grids than the last compressed videos that is an error, with the same grids the
    positions would be those videos'."""
    from sf2t.ops.token_merge import FIRST_GROUP, _check_ratio, _check_window

    _check_model(model, "apply_sf2t")
    token_keep_ratio = _check_ratio(token_keep_ratio)
    window = _check_window(window)
    if first_group not in FIRST_GROUP:
        raise ValueError(f"first_group must be one of {FIRST_GROUP}, got {first_group!r}")
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    inner, kind = _find_inner(model)
    if inner is None:
        raise NotImplementedError(
            f"apply_sf2t supports Qwen2-VL, Qwen2.5-VL, LLaVA-OneVision and LLaVA-NeXT-Video models; "
            f"{type(model).__name__} has no inner module with visual / get_rope_index or vision_tower / "
            "multi_modal_projector, and get_video_features"
        )
    if stage == "before_tower" and (
        kind != "qwen"
        or not _is_window_tower(inner.visual)
        and not type(inner.visual).__name__.startswith("Qwen2Vision")
    ):
        raise NotImplementedError(
            f"stage='before_tower' supports Qwen2-VL and Qwen2.5-VL (their towers attend within each temporal group, "
            f"and Qwen2.5-VL's windows within it, so a group's kept patches can run alone); {type(inner).__name__} "
            "needs stage='after_tower'"
        )
    if stage == "before_tower" and not _tower_takes_position_ids(type(inner.visual)):
        import transformers

        raise NotImplementedError(
            f"stage='before_tower' needs a Qwen2-VL / Qwen2.5-VL tower that takes precomputed rotary position ids and "
            f"attention layout (transformers >= 5.17); this is transformers {transformers.__version__}"
        )
    if kind == "llava":
        if not hasattr(inner, "_sf2t_orig"):  # (get_video_features, no rotary index, get_placeholder_mask)
            inner._sf2t_orig = (inner.get_video_features, None, getattr(inner, "get_placeholder_mask", None))
            inner.get_video_features = types.MethodType(_llava_get_video_features, inner)
            if inner._sf2t_orig[2] is not None:
                inner.get_placeholder_mask = types.MethodType(_get_placeholder_mask, inner)
        inner._sf2t_cfg = {"keep": float(token_keep_ratio), "window": window, "first_group": first_group}
        inner._sf2t_newline = type(inner).__name__.startswith("LlavaOnevision")  # one newline token per video
        return model
    if not hasattr(inner, "_sf2t_orig"):
        inner._sf2t_orig = (
            inner.get_video_features,
            inner.get_rope_index,
            getattr(inner, "get_placeholder_mask", None),
        )
        inner.get_video_features = types.MethodType(_get_video_features, inner)
        inner.get_rope_index = types.MethodType(_get_rope_index, inner)
        if inner._sf2t_orig[2] is not None:
            inner.get_placeholder_mask = types.MethodType(_get_placeholder_mask, inner)
    inner._sf2t_cfg = {"keep": float(token_keep_ratio), "window": window, "first_group": first_group, "stage": stage}
    inner._sf2t_state = None
    return model


def remove_sf2t(model):
    """Undo :func:`apply_sf2t` (no-op for an unpatched model)."""
    _check_model(model, "remove_sf2t")
    inner, kind = _find_inner(model)
    if inner is not None and hasattr(inner, "_sf2t_orig"):
        del inner.get_video_features  # back to the class's methods
        if kind == "qwen":
            del inner.get_rope_index
        if inner._sf2t_orig[2] is not None:  # (both kinds keep (features, rope index, placeholder mask))
            del inner.get_placeholder_mask
        for name in ("_sf2t_orig", "_sf2t_cfg", "_sf2t_state", "_sf2t_newline"):
            if hasattr(inner, name):
                delattr(inner, name)
    return model


def check_compression(model, token_keep_ratio: float, first_group: str = "all") -> None:
    """A ValueError when ``model`` does not compress its video tokens as text built for ``token_keep_ratio`` /
    ``first_group`` expects (``build_video_sample(..., token_keep_ratio=)``, the family's ``build_sample(...,
    token_keep_ratio=)``, ``ModelInputs(..., token_keep_ratio=)``: < 1, fewer placeholders than the video's tokens):
    saying to call :func:`apply_sf2t` with the same ratio (or :func:`remove_sf2t` for uncompressed text).

    Without it an unpatched model meets such text in transformers' bare "Video features and video tokens do not
    match" (measured: tiny LLaVA-NeXT-Video, 8 frames, keep 0.5: "tokens: 18, features: 2048", its 32 video tokens'
    64 values). A model of no family :func:`apply_sf2t` knows is not checked."""
    _check_model(model, "check_compression")
    inner, _ = _find_inner(model)
    if inner is None:
        return
    want = 1.0 if token_keep_ratio is None else float(token_keep_ratio)
    cfg = getattr(inner, "_sf2t_cfg", None)  # (set by apply_sf2t, removed by remove_sf2t)
    have = 1.0 if cfg is None else float(cfg["keep"])
    same_group = want == 1.0 or cfg is None or cfg["first_group"] == first_group
    if have == want and same_group:
        return
    if want == 1.0:
        fix = "call sf2t.models.remove_sf2t(model), or build the text with the model's token_keep_ratio"
    else:
        group = "" if first_group == "all" else f", first_group={first_group!r}"
        fix = f"call sf2t.models.apply_sf2t(model, token_keep_ratio={want}{group}) first, with the text's ratio"
    said = "is not compressed (no apply_sf2t)" if cfg is None else f"compresses with keep {have}"
    group_said = "" if want == 1.0 or same_group else f", first_group {cfg['first_group']!r} vs {first_group!r}"
    raise ValueError(
        f"the text was built with token_keep_ratio={want} (its videos have that share of placeholders) but the model "
        f"{said}{group_said}: its video features would not match the placeholders; {fix}"
    )


def _llava_get_video_features(self, pixel_values_videos, *args, **kwargs):
    """LLaVA: pooled tokens [B, F * S (+ 1 newline), D] -> [B, kept (+ 1), D]; every video of the batch has the same
    frame count and size, so the kept count is the same for all."""
    import math

    from sf2t.ops.token_merge import token_merge

    out = self._sf2t_orig[0](pixel_values_videos, *args, **kwargs)
    pooled = out.pooler_output if hasattr(out, "pooler_output") else out
    b, frames = int(pixel_values_videos.shape[0]), int(pixel_values_videos.shape[1])
    as_tuple = isinstance(pooled, (tuple, list))  # transformers 5.17 NeXT-Video: per video [F, S, D]
    if as_tuple:
        pooled = torch.stack([p.flatten(0, 1) for p in pooled])
    # OneVision: the newline token is in the features (transformers 5.2x) or appended later by forward (5.17)
    newline = self._sf2t_newline and _mentions(type(self).get_video_features, "image_newline")
    feats = pooled[:, :-1] if newline else pooled
    s = feats.shape[1] // frames
    side = math.isqrt(s)
    gh, gw = (side, side) if side * side == s else (1, s)  # the pooled per-frame grid is square
    cfg = self._sf2t_cfg
    kept, positions, counts = token_merge(
        feats.reshape(b * frames * s, feats.shape[-1]),
        [[frames, gh, gw]] * b,
        cfg["keep"],
        window=cfg["window"],
        first_group=cfg["first_group"],
    )
    self._sf2t_state = {"positions": positions.cpu(), "counts": counts.cpu()}
    kept = kept.reshape(b, int(counts[0]), feats.shape[-1])
    new = torch.cat([kept, pooled[:, -1:]], dim=1) if newline else kept
    if as_tuple:  # as it came: one [1, kept, D] per video (forward flattens each)
        new = tuple(new[i : i + 1] for i in range(b))
    if hasattr(out, "pooler_output"):
        out.pooler_output = new
        return out
    return new


def _state_for(self, pixel_values_videos):
    """The compression state of this very pixel tensor (same object, unmodified), else None."""
    st = self._sf2t_state
    if st is None or pixel_values_videos is None:
        return None
    if st["ref"]() is not pixel_values_videos or st["version"] != pixel_values_videos._version:
        return None
    return st


def _get_video_features(self, pixel_values_videos, video_grid_thw=None, *args, **kwargs):
    from sf2t.ops.token_merge import token_merge

    st = _state_for(self, pixel_values_videos)
    if st is not None and st.get("out") is not None:  # computed for the rotary index (generation): use it once
        out, st["out"] = st["out"], None
        return out
    orig = self._sf2t_orig[0]
    cfg = self._sf2t_cfg
    merge = int(self.visual.spatial_merge_size)
    grid = video_grid_thw.detach().to("cpu", torch.int64).clone()
    grid[:, 1:] //= merge
    if cfg.get("stage") == "before_tower":
        kept, positions, counts = _before_tower(self, pixel_values_videos, video_grid_thw, grid, cfg)
        pooled = ()  # per video, as the original returns them (split below)
        out = None
        if kwargs.get("return_dict") or _mentions(type(self).get_video_features, "pooler_output"):
            from transformers.modeling_outputs import BaseModelOutputWithPooling

            out = BaseModelOutputWithPooling()
    else:
        out = orig(pixel_values_videos, video_grid_thw, *args, **kwargs)
        pooled = out.pooler_output if hasattr(out, "pooler_output") else out
        feats = torch.cat(list(pooled)) if isinstance(pooled, (tuple, list)) else pooled
        kept, positions, counts = token_merge(
            feats, grid, cfg["keep"], window=cfg["window"], first_group=cfg["first_group"]
        )
    self._sf2t_state = {
        "ref": weakref.ref(pixel_values_videos),
        "version": pixel_values_videos._version,
        "grid": grid,
        "positions": positions.cpu(),
        "counts": counts.cpu(),
        "out": None,
    }
    split = torch.split(kept, counts.tolist())
    if hasattr(out, "pooler_output"):
        out.pooler_output = split if isinstance(pooled, (tuple, list)) else kept
        return out
    return split if isinstance(pooled, (tuple, list)) else kept


@functools.lru_cache(maxsize=None)
def _mentions(fn, name: str) -> bool:
    """Whether the source of ``fn`` (a transformers method) mentions ``name``: how sf2t tells versions apart where
    they return the same thing in different shapes."""
    try:
        return name in inspect.getsource(fn)
    except (OSError, TypeError):
        return False


def _is_window_tower(visual) -> bool:
    """Qwen2.5-VL's tower: window attention (``window_size`` pixels a side) except in ``fullatt_block_indexes``."""
    return type(visual).__name__.startswith("Qwen2_5_Vision") and hasattr(visual, "window_size")


def _tower_takes_position_ids(cls) -> bool:
    """Whether the tower's forward reads precomputed rotary ``position_ids`` from its kwargs (transformers 5.17+:
    ``get_vision_position_ids(..., kwargs=kwargs)``), and for Qwen2.5-VL also its attention blocks and windows
    (``cu_seqlens``, ``window_index``, ``cu_window_seqlens``: ``get_vision_window_index(..., kwargs=kwargs)``)."""
    import sys

    mod = sys.modules[cls.__module__]
    ok = hasattr(mod, "get_vision_position_ids") and _mentions(cls.forward, "get_vision_position_ids")
    if cls.__name__.startswith("Qwen2_5_Vision"):
        ok = ok and hasattr(mod, "get_vision_window_index") and _mentions(cls.forward, "get_vision_window_index")
    return ok


def _vision_position_ids(visual, grid_thw: torch.Tensor) -> torch.Tensor:
    """(h, w) of every patch row of ``grid_thw`` (patch units) in the tower's order, [rows, 2]: the tower's own
    helper, which its forward calls when no ``position_ids`` are given."""
    import sys

    helper = sys.modules[type(visual).__module__].get_vision_position_ids
    return helper(grid_thw, int(visual.spatial_merge_size))


def _run_tower(self, pixels: torch.Tensor, fake_grid: torch.Tensor, pos: torch.Tensor, windows=None):
    """The tower's merged tokens for ``pixels`` (patch rows) laid out as ``fake_grid`` (one [1, m, m * K] entry per
    kept temporal group: its attention block), with ``pos`` [rows, 2] as every row's rotary (h, w). ``windows``
    (Qwen2.5-VL): the kept tokens' (window_index, cu_window_seqlens), passed with the groups' ``cu_seqlens``."""
    visual = self.visual
    pixels = pixels.type(visual.dtype)
    dev = pixels.device
    kw = {}
    if windows is not None:
        rows = fake_grid[:, 1] * fake_grid[:, 2]
        cu = torch.nn.functional.pad(rows.cumsum(0, dtype=torch.int32), (1, 0))
        kw = dict(cu_seqlens=cu.to(dev), window_index=windows[0].to(dev), cu_window_seqlens=windows[1].to(dev))
    out = visual(pixels, grid_thw=fake_grid.to(dev), position_ids=pos.to(dev), **kw)
    return out.pooler_output if hasattr(out, "pooler_output") else out


def _window_plan(visual, kept: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Qwen2.5-VL's window attention over the kept merged tokens: (window_index, cu_window_seqlens) as its tower's
    get_vision_window_index makes them for a full grid, with the dropped tokens left out. ``kept``: per video, the
    kept (t, h, w) positions in merged-token units, in the order the tower gets them. Tokens are ordered by (video,
    group, window row, window column), raster order inside a window; a window holds the kept tokens of its
    ``window_size`` x ``window_size`` pixels; empty windows vanish."""
    m = int(visual.spatial_merge_size)
    side = int(visual.window_size) // m // int(visual.patch_size)  # merged tokens per window side
    kp = torch.cat(kept) if kept else torch.zeros(0, 3, dtype=torch.int64)
    video = torch.cat([torch.full((len(k),), v, dtype=torch.int64) for v, k in enumerate(kept)])
    t, h, w = kp[:, 0], kp[:, 1], kp[:, 2]
    window = torch.stack([video, t, h // side, w // side], 1)
    inside = (h % side) * side + w % side
    order = torch.from_numpy(np.lexsort((inside.numpy(), *window.flip(1).T.numpy())))
    _, sizes = torch.unique_consecutive(window[order], dim=0, return_counts=True)
    cu = torch.nn.functional.pad((sizes * m * m).cumsum(0, dtype=torch.int32), (1, 0))
    return order, cu


def _before_tower(self, pixel_values_videos, video_grid_thw, grid, cfg):
    """stage='before_tower': choose the kept merged tokens from their patches' pixels with token_merge's rule
    (:func:`sf2t.ops.token_merge.select_tokens`), run
    the tower on those patches only. Returns (kept [M, D], positions, counts)."""
    from sf2t.ops.token_merge import select_tokens

    m = int(self.visual.spatial_merge_size)
    unit = m * m
    dim = pixel_values_videos.shape[-1]
    units = pixel_values_videos.detach().reshape(-1, unit * dim)  # one row per merged token: its m x m patches
    positions, counts = select_tokens(units, grid, cfg["keep"], first_group=cfg["first_group"])  # on the host
    rows, fake, offset, start, per_video = [], [], 0, 0, []
    for v, (t, h, w) in enumerate(grid.tolist()):
        kp = positions[start : start + int(counts[v])]
        per_video.append(kp)
        start += int(counts[v])
        u = offset + kp[:, 0] * (h * w) + kp[:, 1] * w + kp[:, 2]  # unit index of each kept token
        rows.append((u[:, None] * unit + torch.arange(unit)).reshape(-1))
        per_group = torch.bincount(kp[:, 0], minlength=t)
        fake += [[1, m, m * int(k)] for k in per_group.tolist() if k > 0]
        offset += t * h * w
    rows = torch.cat(rows).to(pixel_values_videos.device)
    pos = _vision_position_ids(self.visual, video_grid_thw.detach().to("cpu", torch.int64))[rows.cpu()]
    windows = _window_plan(self.visual, per_video) if _is_window_tower(self.visual) else None
    kept = _run_tower(self, pixel_values_videos[rows], torch.tensor(fake, dtype=torch.int64), pos, windows)
    if isinstance(kept, (tuple, list)):
        kept = torch.cat(list(kept))
    return kept, positions, counts


def _get_placeholder_mask(self, *args, **kwargs):
    try:
        return self._sf2t_orig[2](*args, **kwargs)
    except Exception as e:  # the model's own count check: say why video counts differ under compression
        if "video" not in str(e).lower():
            raise
        raise ValueError(
            f"{e} (sf2t token compression is on, keep {self._sf2t_cfg['keep']}: build the text with the same "
            "token_keep_ratio, build_video_sample(..., token_keep_ratio=), the family's build_sample(..., "
            "token_keep_ratio=) or ModelInputs(..., token_keep_ratio=), so each video has its kept-token count of "
            "placeholders)"
        ) from e


def _get_rope_index(self, *args, **kwargs):
    orig = self._sf2t_orig[1]
    bound = inspect.signature(orig).bind(*args, **kwargs)
    a = bound.arguments
    video_grid_thw = a.get("video_grid_thw")
    if video_grid_thw is None:
        return orig(*args, **kwargs)
    extra = a.get("kwargs") or {}
    pixels = a.get("pixel_values_videos", extra.get("pixel_values_videos"))
    state = _state_for(self, pixels) if pixels is not None else self._sf2t_state
    if state is None:
        if pixels is None:
            raise RuntimeError(
                "sf2t: the rotary index of compressed videos needs the videos' kept tokens; call the model with "
                "pixel_values_videos (they are compressed in the same pass)"
            )
        # generation computes positions before the forward pass: compress now, hand the features to the forward
        out = self.get_video_features(pixels, video_grid_thw)
        state = self._sf2t_state
        state["out"] = out
    input_ids = a["input_ids"]
    mm = a.get("mm_token_type_ids")
    attn = a.get("attention_mask")
    video_id = int(self.config.video_token_id)
    is_video = (mm == 2) if mm is not None else (input_ids == video_id)
    counts = state["counts"].tolist()
    grid = state["grid"]
    full = (grid[:, 0] * grid[:, 1] * grid[:, 2]).tolist()
    merged = video_grid_thw.detach().to("cpu", torch.int64).clone()
    merged[:, 1:] //= int(self.visual.spatial_merge_size)
    if len(counts) != video_grid_thw.shape[0] or not torch.equal(merged, grid):
        raise RuntimeError(
            f"sf2t: the videos of this forward pass (grids {video_grid_thw.tolist()}) are not the ones last compressed "
            f"({counted(len(counts), 'video')}, merged grids {grid.tolist()}): under token compression the model "
            "must get pixel_values_videos (precomputed video features, e.g. mm_encoder_outputs, are not supported)"
        )
    b, length = input_ids.shape
    dev = input_ids.device
    valid = attn.bool() if attn is not None else torch.ones_like(input_ids, dtype=torch.bool)
    # Per row: the expanded sequence (each video run back to its full length) and where each token of the
    # compressed sequence sits in it.
    rows_ids, rows_mm, rows_map, v = [], [], [], 0
    for r in range(b):
        idx = valid[r].nonzero().flatten()
        ids_r = input_ids[r, idx]
        vid_r = is_video[r, idx]
        mm_r = mm[r, idx] if mm is not None else None
        pieces_ids, pieces_mm, mapping, pos_full, k = [], [], [], 0, 0
        n = ids_r.numel()
        while k < n:
            if not bool(vid_r[k]):
                j = k
                while j < n and not bool(vid_r[j]):
                    j += 1
                pieces_ids.append(ids_r[k:j])
                if mm_r is not None:
                    pieces_mm.append(mm_r[k:j])
                mapping.append(torch.arange(pos_full, pos_full + (j - k)))
                pos_full += j - k
                k = j
                continue
            j = k
            while j < n and bool(vid_r[j]):
                j += 1
            if v >= len(counts) or j - k != counts[v]:
                want = counts[v] if v < len(counts) else "none"
                raise ValueError(
                    f"sf2t: video {v} has {j - k} placeholder tokens but the compressed video has {want} tokens; "
                    "build the text with the same token_keep_ratio (build_video_sample(..., token_keep_ratio=))"
                )
            t_, h_, w_ = grid[v].tolist()
            start = sum(counts[:v])
            kp = state["positions"][start : start + counts[v]]  # (t, h, w) of the kept tokens
            flat = kp[:, 0] * (h_ * w_) + kp[:, 1] * w_ + kp[:, 2]
            pieces_ids.append(torch.full((full[v],), video_id, dtype=input_ids.dtype, device=dev))
            if mm_r is not None:
                pieces_mm.append(torch.full((full[v],), 2, dtype=mm_r.dtype, device=dev))
            mapping.append(pos_full + flat)
            pos_full += full[v]
            v += 1
            k = j
        rows_ids.append(torch.cat(pieces_ids) if pieces_ids else ids_r)
        rows_mm.append(torch.cat(pieces_mm) if pieces_mm else None)
        rows_map.append(torch.cat(mapping).to(dev) if mapping else torch.zeros(0, dtype=torch.long, device=dev))
    lf = max(x.numel() for x in rows_ids)
    ids_full = torch.zeros(b, lf, dtype=input_ids.dtype, device=dev)
    attn_full = torch.zeros(b, lf, dtype=attn.dtype if attn is not None else torch.long, device=dev)
    mm_full = torch.zeros(b, lf, dtype=mm.dtype, device=dev) if mm is not None else None
    for r in range(b):
        n = rows_ids[r].numel()
        ids_full[r, :n] = rows_ids[r]
        attn_full[r, :n] = 1
        if mm_full is not None:
            mm_full[r, :n] = rows_mm[r]
    a["input_ids"] = ids_full
    a["attention_mask"] = attn_full
    if mm is not None:
        a["mm_token_type_ids"] = mm_full
    pos_full_ids, deltas = orig(*bound.args, **bound.kwargs)
    position_ids = torch.zeros(3, b, length, dtype=pos_full_ids.dtype, device=pos_full_ids.device)
    new_deltas = []
    for r in range(b):
        idx = valid[r].nonzero().flatten()
        p = pos_full_ids[:, r, rows_map[r]]
        position_ids[:, r, idx] = p
        new_deltas.append((p.max() + 1 - idx.numel()) if idx.numel() else torch.zeros((), dtype=p.dtype))
    deltas = torch.stack(new_deltas).reshape(deltas.shape).to(deltas.device, deltas.dtype)
    return position_ids, deltas
