"""Build a tiny, randomly initialised Qwen2-VL checkpoint that loads like a real one (offline).

The checkpoint directory contains everything ``from_pretrained`` / ``AutoTokenizer`` / ``AutoProcessor``
need: ``config.json``, ``model.safetensors``, ``generation_config.json``, the tokenizer files, the chat
template, ``preprocessor_config.json`` (image processor) and ``video_preprocessor_config.json`` (video
processor), plus ``processor_config.json`` when transformers writes one.
"""

from __future__ import annotations

import functools
import os
import pathlib

import torch

from sf2t.models import _build
from sf2t.models._build import build_tiny_checkpoint, pad_to_multiple, tiny_sizes
from sf2t.models.qwen2_vl import MODEL_CLASS, PROCESSOR_CLASS
from sf2t.models.tokenizer import (
    ENDOFTEXT,
    IM_END,
    IMAGE_PAD,
    VIDEO_PAD,
    VISION_END,
    VISION_PAD,
    VISION_START,
    build_tokenizer,
)

# Processor pixel budget: frames of 56x56 .. 224x224 keep their size (factor 28 = patch 14 * merge 2).
TINY_MIN_PIXELS = 56 * 56
TINY_MAX_PIXELS = 224 * 224
# OpenAI CLIP normalisation, as in Qwen2-VL.
_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
# Qwen2-VL (and Qwen2.5-VL) stop on <|im_end|> or <|endoftext|>; greedy by default here (tiny random model).
QWEN_GENERATION_TOKENS = {"bos_token_id": ENDOFTEXT, "eos_token_id": [IM_END, ENDOFTEXT], "pad_token_id": ENDOFTEXT}


def _mrope_section(head_dim: int) -> list[int]:
    """Split ``head_dim // 2`` rotary frequencies over (t, h, w) like Qwen2-VL's [16, 24, 24] for 128."""
    half = head_dim // 2
    if half < 3:
        raise ValueError(f"head_dim={head_dim} too small for M-RoPE (needs head_dim >= 6)")
    t = max(1, round(half * 16 / 64))
    h = (half - t) // 2
    w = half - t - h
    return [t, h, w]


def qwen2_text_config(tokenizer, *, hidden_size, intermediate_size, num_layers, num_heads, num_kv_heads) -> dict:
    """The Qwen2 LLM fields shared by the tiny Qwen2-VL, Qwen2.5-VL and LLaVA-OneVision configs: sizes, SiLU,
    RMSNorm eps 1e-6, no sliding window, bos = pad = ``<|endoftext|>``, eos = ``<|im_end|>``. Like Qwen2-VL (config
    vocab 151936 > 151657 tokens) the embedding table is padded to a multiple of 64."""
    return dict(
        vocab_size=pad_to_multiple(len(tokenizer), 64),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        hidden_act="silu",
        max_position_embeddings=32768,
        rms_norm_eps=1e-6,
        use_sliding_window=False,
        bos_token_id=tokenizer.convert_tokens_to_ids(ENDOFTEXT),
        eos_token_id=tokenizer.convert_tokens_to_ids(IM_END),
        pad_token_id=tokenizer.convert_tokens_to_ids(ENDOFTEXT),
    )


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
):
    """Return a ``Qwen2VLConfig`` sized for tests, with token ids taken from ``tokenizer``."""
    from transformers import Qwen2VLConfig

    if hidden_size % num_heads:
        raise ValueError(f"hidden_size={hidden_size} not divisible by num_heads={num_heads}")
    if num_heads % num_kv_heads:
        raise ValueError(f"num_heads={num_heads} not divisible by num_kv_heads={num_kv_heads}")
    if vision_embed_dim % vision_heads or (vision_embed_dim // vision_heads) % 4:
        raise ValueError(
            f"vision_embed_dim={vision_embed_dim} / vision_heads={vision_heads} must give a head dim divisible by 4"
        )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (VISION_START, VISION_END, VISION_PAD, IMAGE_PAD, VIDEO_PAD)}
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
        initializer_range=0.02,
        use_cache=True,
        sliding_window=None,
        max_window_layers=num_layers,
        attention_dropout=0.0,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": _mrope_section(head_dim)},
    )
    vision_config = dict(
        depth=vision_depth,
        embed_dim=vision_embed_dim,
        hidden_size=hidden_size,  # output of the patch merger = LLM hidden size
        hidden_act="quick_gelu",
        mlp_ratio=4,
        num_heads=vision_heads,
        in_channels=3,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        initializer_range=0.02,
    )
    return Qwen2VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=ids[IMAGE_PAD],
        video_token_id=ids[VIDEO_PAD],
        vision_start_token_id=ids[VISION_START],
        vision_end_token_id=ids[VISION_END],
        tie_word_embeddings=False,
    )


def build_processor(tokenizer=None, processor_class: str = PROCESSOR_CLASS):
    """``processor_class`` (``Qwen2VLProcessor`` or ``Qwen2_5_VLProcessor``) with Qwen2-VL's image / video
    processors (as the released checkpoints of both) and the tiny pixel budget (frames of 56x56 .. 224x224 keep
    their size)."""
    import transformers
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
        # transformers >= ~5.20 warns unless this is set; the cap is irrelevant for <= 224x224 frames.
        video_kwargs["cap_pixels_per_frame"] = False
    return getattr(transformers, processor_class)(
        image_processor=Qwen2VLImageProcessor(**common),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(**video_kwargs),
        chat_template=tokenizer.chat_template,
    )


def build_tiny_qwen2_vl(
    out_dir: str | os.PathLike,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    vision_depth: int = 2,
    vision_embed_dim: int = 32,
    vision_heads: int = 2,
    seed: int = 0,
    overwrite: bool = False,
) -> pathlib.Path:
    """Build a tiny random-weight Qwen2-VL checkpoint in ``out_dir`` and return its path.

    If ``out_dir`` already holds a checkpoint (``config.json``) and ``overwrite`` is false, it is reused as is.
    The directory is written atomically (built in a sibling temp dir, then renamed).
    """
    config = functools.partial(
        build_tiny_config,
        **tiny_sizes(
            hidden_size=hidden_size,
            num_layers=num_layers,
            num_heads=num_heads,
            num_kv_heads=num_kv_heads,
            intermediate_size=intermediate_size,
            vision_depth=vision_depth,
            vision_embed_dim=vision_embed_dim,
            vision_heads=vision_heads,
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


def load_model_and_tokenizer(path: str | os.PathLike, dtype: torch.dtype = torch.float32):
    """Load ``(model, tokenizer)`` from a local checkpoint directory of any supported family (Qwen2-VL, Qwen2.5-VL,
    LLaVA-OneVision, LLaVA-NeXT-Video: the family is read from its ``config.json``), offline."""
    from sf2t.models.families import family_of_checkpoint

    return _build.load_checkpoint(path, family_of_checkpoint(path).model_class, dtype)
