"""Build a tiny, randomly initialised Qwen2-VL checkpoint that loads like a real one (offline).

The checkpoint directory contains everything ``from_pretrained`` / ``AutoTokenizer`` / ``AutoProcessor``
need: ``config.json``, ``model.safetensors``, ``generation_config.json``, the tokenizer files, the chat
template, ``preprocessor_config.json`` (image processor) and ``video_preprocessor_config.json`` (video
processor), plus ``processor_config.json`` when transformers writes one.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile

import torch

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

_REQUIRED_FILES = ("config.json",)


def _mrope_section(head_dim: int) -> list[int]:
    """Split ``head_dim // 2`` rotary frequencies over (t, h, w) like Qwen2-VL's [16, 24, 24] for 128."""
    half = head_dim // 2
    if half < 3:
        raise ValueError(f"head_dim={head_dim} too small for M-RoPE (needs head_dim >= 6)")
    t = max(1, round(half * 16 / 64))
    h = (half - t) // 2
    w = half - t - h
    return [t, h, w]


def _pad_to_multiple(n: int, m: int) -> int:
    return ((n + m - 1) // m) * m


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
    ids = {
        t: tokenizer.convert_tokens_to_ids(t)
        for t in (ENDOFTEXT, IM_END, VISION_START, VISION_END, VISION_PAD, IMAGE_PAD, VIDEO_PAD)
    }
    head_dim = hidden_size // num_heads
    # Like Qwen2-VL (config vocab 151936 > 151657 tokens) the embedding table is padded to a multiple of 64.
    vocab_size = _pad_to_multiple(len(tokenizer), 64)
    text_config = dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        hidden_act="silu",
        max_position_embeddings=32768,
        initializer_range=0.02,
        rms_norm_eps=1e-6,
        use_cache=True,
        use_sliding_window=False,
        sliding_window=None,
        max_window_layers=num_layers,
        attention_dropout=0.0,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": _mrope_section(head_dim)},
        bos_token_id=ids[ENDOFTEXT],
        eos_token_id=ids[IM_END],
        pad_token_id=ids[ENDOFTEXT],
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


def _build_processor(tokenizer):
    from transformers import Qwen2VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    common = dict(
        min_pixels=TINY_MIN_PIXELS,
        max_pixels=TINY_MAX_PIXELS,
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=_CLIP_MEAN,
        image_std=_CLIP_STD,
    )
    image_processor = Qwen2VLImageProcessor(**common)
    video_kwargs = dict(common)
    if hasattr(Qwen2VLVideoProcessor, "cap_pixels_per_frame"):
        # transformers >= ~5.20 warns unless this is set; the cap is irrelevant for <= 224x224 frames.
        video_kwargs["cap_pixels_per_frame"] = False
    video_processor = Qwen2VLVideoProcessor(**video_kwargs)
    return Qwen2VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=tokenizer.chat_template,
    )


def _generation_config(tokenizer):
    from transformers import GenerationConfig

    eot = tokenizer.convert_tokens_to_ids(ENDOFTEXT)
    im_end = tokenizer.convert_tokens_to_ids(IM_END)
    # Qwen2-VL stops on <|im_end|> or <|endoftext|>; greedy by default here (tiny random model).
    return GenerationConfig(bos_token_id=eot, eos_token_id=[im_end, eot], pad_token_id=eot, do_sample=False)


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
    from transformers import Qwen2VLForConditionalGeneration

    out = pathlib.Path(out_dir)
    if (out / "config.json").is_file() and not overwrite:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)

    tokenizer = build_tokenizer()
    config = build_tiny_config(
        tokenizer,
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        intermediate_size=intermediate_size,
        vision_depth=vision_depth,
        vision_embed_dim=vision_embed_dim,
        vision_heads=vision_heads,
    )
    config.architectures = ["Qwen2VLForConditionalGeneration"]

    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2VLForConditionalGeneration(config)
        model.to(torch.float32)
        # Explicit seeded N(0, 0.02) init (independent of transformers' init internals); norms stay at 1.
        with torch.no_grad():
            for name, p in model.named_parameters():
                if p.dim() == 1 and name.endswith("weight"):  # RMSNorm / LayerNorm scales
                    p.fill_(1.0)
                elif name.endswith("bias"):
                    p.zero_()
                else:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    model.generation_config = _generation_config(tokenizer)

    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        processor = _build_processor(tokenizer)
        processor.save_pretrained(tmp)
        # Make sure the classic per-component files exist whatever the transformers version writes.
        if not (tmp / "preprocessor_config.json").is_file():
            processor.image_processor.save_pretrained(tmp)
        if not (tmp / "video_preprocessor_config.json").is_file():
            processor.video_processor.save_pretrained(tmp)
        if not (tmp / "tokenizer_config.json").is_file():
            tokenizer.save_pretrained(tmp)
        for fname in ("preprocessor_config.json", "video_preprocessor_config.json"):
            _add_processor_class(tmp / fname)
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


def _add_processor_class(path: pathlib.Path) -> None:
    if not path.is_file():
        return
    data = json.loads(path.read_text())
    if data.get("processor_class") != "Qwen2VLProcessor":
        data["processor_class"] = "Qwen2VLProcessor"
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def check_checkpoint_dir(path: str | os.PathLike) -> pathlib.Path:
    """Return ``path`` as a Path, raising a clear error if it is not a local HF checkpoint directory."""
    p = pathlib.Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model checkpoint path does not exist: {str(p)!r}")
    if not p.is_dir():
        raise NotADirectoryError(f"model checkpoint path is not a directory: {str(p)!r}")
    missing = [f for f in _REQUIRED_FILES if not (p / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"model checkpoint directory {str(p)!r} lacks {', '.join(missing)} "
            "(not a Hugging Face checkpoint; build one with sf2t.models.build_tiny_qwen2_vl)"
        )
    return p


def load_model_and_tokenizer(path: str | os.PathLike, dtype: torch.dtype = torch.float32):
    """Load ``(model, tokenizer)`` from a local Qwen2-VL checkpoint directory, offline."""
    from transformers import AutoTokenizer, Qwen2VLForConditionalGeneration

    p = check_checkpoint_dir(path)
    model = Qwen2VLForConditionalGeneration.from_pretrained(p, dtype=dtype, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(p, local_files_only=True)
    return model, tokenizer


def load_processor(path: str | os.PathLike):
    """Load the ``Qwen2VLProcessor`` of a local checkpoint directory, offline."""
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(check_checkpoint_dir(path), local_files_only=True)
