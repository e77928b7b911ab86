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

import json
import os
import pathlib
import re
import shutil
import tempfile

import torch
from torch import nn

from sf2t.models.qwen2_vl import build_video_sample, num_video_tokens  # noqa: F401  (re-exported: same tokens)
from sf2t.models.tiny import _CLIP_MEAN, _CLIP_STD, TINY_MAX_PIXELS, TINY_MIN_PIXELS, _mrope_section, _pad_to_multiple
from sf2t.models.tokenizer import (
    ENDOFTEXT,
    IM_END,
    IMAGE_PAD,
    VIDEO_PAD,
    VISION_END,
    VISION_START,
    build_tokenizer,
)

MODEL_CLASS = "Qwen2_5_VLForConditionalGeneration"
PROCESSOR_CLASS = "Qwen2_5_VLProcessor"

LORA_TARGETS_LLM: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Vision tower (per block): fused attention qkv, attention output proj, SwiGLU MLP.
LORA_TARGETS_VISION: tuple[str, ...] = ("qkv", "proj", "gate_proj", "up_proj", "down_proj")

VISION_LORA_RE = r"(?:^|.*\.)visual\.blocks\.\d+\.(?:attn\.(?:qkv|proj)|mlp\.(?:gate_proj|up_proj|down_proj))"
LLM_LORA_RE = (
    r"(?:^|.*\.)language_model\.(?:model\.)?layers\.\d+\."
    r"(?:self_attn\.(?:q_proj|k_proj|v_proj|o_proj)|mlp\.(?:gate_proj|up_proj|down_proj))"
)


def second_per_grid_ts(fps: float, temporal_patch_size: int = 2) -> float:
    """Seconds covered by one temporal patch of a video sampled at ``fps``: ``temporal_patch_size / fps``.

    This is ``Qwen2_5_VLProcessor``'s ``second_per_grid_ts`` (one value per video); pass it to the model as a
    1-D tensor with one entry per video in the batch. The processor uses 24 fps when given no video metadata.
    """
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    return temporal_patch_size / fps


def select_linear_modules(model: nn.Module, pattern: str, what: str = "LoRA") -> list[str]:
    """Full names of the plain ``nn.Linear`` modules of ``model`` whose name fully matches ``pattern``."""
    rx = re.compile(pattern)
    names = [n for n, m in model.named_modules() if type(m) is nn.Linear and rx.fullmatch(n) and "lora_" not in n]
    if not names:
        raise ValueError(f"{what}: no Linear layer of {type(model).__name__} matches {pattern!r}")
    return names


def lora_target_modules(model: nn.Module, vision: bool = True, llm: bool = True) -> list[str]:
    """Exact full names of the vision-block and/or decoder-layer Linears to wrap with LoRA (merger excluded)."""
    parts = ([VISION_LORA_RE] if vision else []) + ([LLM_LORA_RE] if llm else [])
    if not parts:
        raise ValueError("lora_target_modules: select at least one of vision / llm")
    return select_linear_modules(model, "(?:" + "|".join(parts) + ")", "lora_target_modules")


# ------------------------------------------------------------------------------------ tiny checkpoint helpers
# (generic; shared by the LLaVA family modules)


def seeded_init_(model: nn.Module, seed: int) -> None:
    """Deterministic N(0, 0.02) init of every weight, independent of transformers' init internals.

    1-D ``*weight`` parameters (LayerNorm / RMSNorm scales) are set to 1, biases to 0; other parameters (also
    1-D non-weight parameters such as LLaVA's ``image_newline``) are drawn from one seeded generator in
    ``named_parameters`` order.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and name.endswith("weight"):
                p.fill_(1.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)


def save_checkpoint_dir(model, processor, out: pathlib.Path, *, processor_class: str, overwrite: bool) -> pathlib.Path:
    """Save ``model`` and ``processor`` into ``out`` atomically (built in a sibling temp dir, then renamed).

    Besides what ``save_pretrained`` writes, makes sure the classic per-component files exist
    (``preprocessor_config.json``, ``video_preprocessor_config.json``, ``tokenizer_config.json``) and name
    ``processor_class`` so ``AutoProcessor.from_pretrained(out, local_files_only=True)`` finds the processor.
    If another builder finished ``out`` first (and ``overwrite`` is false), its checkpoint is kept.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        if not (tmp / "preprocessor_config.json").is_file() and getattr(processor, "image_processor", None):
            processor.image_processor.save_pretrained(tmp)
        if not (tmp / "video_preprocessor_config.json").is_file() and getattr(processor, "video_processor", None):
            processor.video_processor.save_pretrained(tmp)
        if not (tmp / "tokenizer_config.json").is_file():
            processor.tokenizer.save_pretrained(tmp)
        for fname in ("preprocessor_config.json", "video_preprocessor_config.json"):
            path = tmp / fname
            if path.is_file():
                data = json.loads(path.read_text())
                if data.get("processor_class") != processor_class:
                    data["processor_class"] = processor_class
                    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        if out.exists():
            if not overwrite and (out / "config.json").is_file():
                return out  # a concurrent builder finished first
            shutil.rmtree(out)
        try:
            os.replace(tmp, out)
        except OSError:
            if not (out / "config.json").is_file():  # not a lost race with a concurrent builder
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def build_model_seeded(model_cls, config, seed: int):
    """``model_cls(config)`` in float32 with :func:`seeded_init_` weights, without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config)
    model.to(torch.float32)
    seeded_init_(model, seed)
    return model


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
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (ENDOFTEXT, IM_END, VISION_START, VISION_END, IMAGE_PAD)}
    ids[VIDEO_PAD] = tokenizer.convert_tokens_to_ids(VIDEO_PAD)
    head_dim = hidden_size // num_heads
    text_config = dict(
        vocab_size=_pad_to_multiple(len(tokenizer), 64),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        hidden_act="silu",
        max_position_embeddings=32768,
        rms_norm_eps=1e-6,
        use_sliding_window=False,
        max_window_layers=num_layers,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": _mrope_section(head_dim)},
        bos_token_id=ids[ENDOFTEXT],
        eos_token_id=ids[IM_END],
        pad_token_id=ids[ENDOFTEXT],
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
    from transformers import Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    common = dict(
        min_pixels=TINY_MIN_PIXELS,
        max_pixels=TINY_MAX_PIXELS,
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=_CLIP_MEAN,
        image_std=_CLIP_STD,
    )
    video_kwargs = dict(common)
    if hasattr(Qwen2VLVideoProcessor, "cap_pixels_per_frame"):
        video_kwargs["cap_pixels_per_frame"] = False  # transformers >= ~5.20 warns unless set
    return Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(**common),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(**video_kwargs),
        chat_template=tokenizer.chat_template,
    )


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
    from transformers import GenerationConfig, Qwen2_5_VLForConditionalGeneration

    out = pathlib.Path(out_dir)
    if (out / "config.json").is_file() and not overwrite:
        return out
    tokenizer = build_tokenizer()
    config = build_tiny_config(
        tokenizer,
        hidden_size=hidden_size,
        num_layers=num_layers,
        vision_depth=vision_depth,
        vision_embed_dim=vision_embed_dim,
    )
    config.architectures = [MODEL_CLASS]
    model = build_model_seeded(Qwen2_5_VLForConditionalGeneration, config, seed)
    eot, im_end = tokenizer.convert_tokens_to_ids(ENDOFTEXT), tokenizer.convert_tokens_to_ids(IM_END)
    model.generation_config = GenerationConfig(
        bos_token_id=eot, eos_token_id=[im_end, eot], pad_token_id=eot, do_sample=False
    )
    return save_checkpoint_dir(
        model, build_processor(tokenizer), out, processor_class=PROCESSOR_CLASS, overwrite=overwrite
    )
