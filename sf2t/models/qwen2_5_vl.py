"""Qwen2.5-VL family: tiny offline checkpoint, text assembly, LoRA targets.

Qwen2.5-VL keeps Qwen2-VL's tokenizer, special tokens, chat template and processor token rule
(``t * h * w / merge_size**2`` ``<|video_pad|>`` per video), so text assembly is
:func:`sf2t.models.qwen2_vl.build_video_sample` unchanged; ``tests/models/test_families.py`` checks it
token-for-token (``input_ids``, ``attention_mask``, ``mm_token_type_ids``) against ``Qwen2_5_VLProcessor``.

What differs from Qwen2-VL:

- the vision tower uses window attention (``window_size`` pixels per window side, full attention only in
  ``fullatt_block_indexes``), RMSNorm and a SwiGLU MLP, and its merger projects to ``out_hidden_size``;
- the processor also returns ``second_per_grid_ts`` per video: ``temporal_patch_size / fps``, where ``fps`` is
  the video metadata's sampled fps (transformers falls back to 24 fps when no metadata is passed, so a bare
  uint8 array gets ``2 / 24``). The model uses it for the temporal rotary positions of video tokens
  (``t * second_per_grid_ts * tokens_per_second``); see :func:`second_per_grid_ts`.

Module names (transformers 5.x ``Qwen2_5_VLForConditionalGeneration``)::

    model.visual.patch_embed.proj                          Conv3d   (not a LoRA target)
    model.visual.blocks.{i}.attn.qkv / .attn.proj          Linear   fused q/k/v, attention output
    model.visual.blocks.{i}.mlp.{gate,up,down}_proj        Linear   SwiGLU MLP (with bias)
    model.visual.merger.mlp.0 / .2                         Linear   patch merger (vision -> LLM projector)
    model.language_model.layers.{i}.self_attn.{q,k,v,o}_proj
    model.language_model.layers.{i}.mlp.{gate,up,down}_proj
    lm_head

The vision MLP reuses the LLM's names (``gate_proj`` ...), so short names alone would select both towers:
:func:`lora_target_modules` returns exact full names from per-tower regexes instead.
"""

from __future__ import annotations

import functools
import os
import pathlib

from torch import nn

from sf2t.models._build import (
    LLM_LORA_RE,
    LORA_TARGETS_LLM,  # noqa: F401  (re-exported)
    build_tiny_checkpoint,
    tiny_sizes,
    tower_lora_modules,
)
from sf2t.models.qwen2_vl import build_video_sample, num_video_tokens  # noqa: F401  (re-exported: same tokens)
from sf2t.models.tiny import QWEN_GENERATION_TOKENS, _mrope_section, qwen2_text_config
from sf2t.models.tiny import build_processor as _build_qwen_processor
from sf2t.models.tokenizer import IMAGE_PAD, VIDEO_PAD, VISION_END, VISION_START, build_tokenizer

MODEL_CLASS = "Qwen2_5_VLForConditionalGeneration"
PROCESSOR_CLASS = "Qwen2_5_VLProcessor"

# Vision tower (per block): fused attention qkv, attention output proj, SwiGLU MLP.
LORA_TARGETS_VISION: tuple[str, ...] = ("qkv", "proj", "gate_proj", "up_proj", "down_proj")
VISION_LORA_RE = r"(?:^|.*\.)visual\.blocks\.\d+\.(?:attn\.(?:qkv|proj)|mlp\.(?:gate_proj|up_proj|down_proj))"


def second_per_grid_ts(fps: float, temporal_patch_size: int = 2) -> float:
    """Seconds covered by one temporal patch of a video sampled at ``fps``: ``temporal_patch_size / fps``.

    This is ``Qwen2_5_VLProcessor``'s ``second_per_grid_ts`` (one value per video); pass it to the model as a
    1-D tensor with one entry per video in the batch. The processor uses 24 fps when given no video metadata.
    """
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    return temporal_patch_size / fps


def lora_target_modules(model: nn.Module, vision: bool = True, llm: bool = True) -> list[str]:
    """Exact full names of the vision-block and/or decoder-layer Linears to wrap with LoRA (merger excluded)."""
    return tower_lora_modules(model, VISION_LORA_RE, LLM_LORA_RE, vision, llm)


# ------------------------------------------------------------------------------------------ tiny Qwen2.5-VL


def build_tiny_config(
    tokenizer,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    vision_depth: int = 2,
    vision_embed_dim: int = 32,
    vision_heads: int = 2,
    window_size: int = 56,
    fullatt_block_indexes: tuple[int, ...] | None = None,
    tokens_per_second: int = 2,
):
    """A ``Qwen2_5_VLConfig`` sized for tests, token ids taken from ``tokenizer``.

    ``window_size`` is in pixels (Qwen2.5-VL: 112 = 4x4 merged tokens); the tiny default 56 (2x2 merged
    tokens) puts frames larger than 56x56 over several windows so window attention is exercised.
    ``fullatt_block_indexes`` defaults to the last block only (Qwen2.5-VL: every 8th block).
    ``tokens_per_second`` as in the released Qwen2.5-VL configs (2).
    """
    from transformers import Qwen2_5_VLConfig

    if hidden_size % num_heads or num_heads % num_kv_heads:
        raise ValueError(f"hidden_size={hidden_size}, num_heads={num_heads}, num_kv_heads={num_kv_heads} do not divide")
    if vision_embed_dim % vision_heads or (vision_embed_dim // vision_heads) % 4:
        raise ValueError(f"vision_embed_dim={vision_embed_dim} / vision_heads={vision_heads}: head dim must be % 4")
    if window_size % 28:
        raise ValueError(f"window_size={window_size} must be a multiple of patch 14 * merge 2")
    if fullatt_block_indexes is None:
        fullatt_block_indexes = (vision_depth - 1,)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD)}
    head_dim = hidden_size // num_heads
    text_config = qwen2_text_config(
        tokenizer,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_layers=num_layers,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
    )
    text_config.update(
        max_window_layers=num_layers,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": _mrope_section(head_dim)},
    )
    vision_config = dict(
        depth=vision_depth,
        hidden_size=vision_embed_dim,
        intermediate_size=2 * vision_embed_dim,
        num_heads=vision_heads,
        hidden_act="silu",
        in_channels=3,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        tokens_per_second=tokens_per_second,
        window_size=window_size,
        out_hidden_size=hidden_size,  # merger output = LLM hidden size
        fullatt_block_indexes=list(fullatt_block_indexes),
    )
    return Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids[IMAGE_PAD],
        video_token_id=ids[VIDEO_PAD],
        vision_start_token_id=ids[VISION_START],
        vision_end_token_id=ids[VISION_END],
        tie_word_embeddings=False,
    )


def build_processor(tokenizer=None):
    """``Qwen2_5_VLProcessor`` with Qwen2-VL's image / video processors (as the released checkpoints) and the tiny
    pixel budget (frames of 56x56 .. 224x224 keep their size)."""
    return _build_qwen_processor(tokenizer, PROCESSOR_CLASS)


def build_tiny_qwen2_5_vl(
    out_dir: str | os.PathLike,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    vision_depth: int = 2,
    vision_embed_dim: int = 32,
    seed: int = 0,
    overwrite: bool = False,
) -> pathlib.Path:
    """Build a tiny random-weight Qwen2.5-VL checkpoint (model, tokenizer, processor) in ``out_dir``.

    An existing checkpoint (``config.json``) is reused unless ``overwrite``. Loads offline with
    ``Qwen2_5_VLForConditionalGeneration.from_pretrained`` / ``AutoProcessor.from_pretrained``.
    """
    config = functools.partial(
        build_tiny_config,
        **tiny_sizes(
            hidden_size=hidden_size,
            num_layers=num_layers,
            vision_depth=vision_depth,
            vision_embed_dim=vision_embed_dim,
        ),
    )
    return build_tiny_checkpoint(
        out_dir,
        model_class=MODEL_CLASS,
        processor_class=PROCESSOR_CLASS,
        build_tokenizer=build_tokenizer,
        build_config=config,
        build_processor=build_processor,
        generation_tokens=QWEN_GENERATION_TOKENS,
        seed=seed,
        overwrite=overwrite,
    )
