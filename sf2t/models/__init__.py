"""Model helpers: the model-family table, tiny offline checkpoints, the tokenizer, LoRA targets and chat-text assembly.

transformers is imported lazily by the functions that need it; importing this package imports torch and
tokenizers. Shared pieces: :mod:`sf2t.models._build` (seeded tiny checkpoints, LoRA selection, offline loading) and
:mod:`sf2t.models.text` (chat-text assembly); :mod:`sf2t.models.families` is the per-family table.
"""

from sf2t.models._build import check_checkpoint_dir, load_processor
from sf2t.models.compress import apply_sf2t, remove_sf2t
from sf2t.models.families import FAMILIES, Family, get_family
from sf2t.models.llava_next_video import build_tiny_llava_next_video
from sf2t.models.llava_onevision import build_tiny_llava_onevision
from sf2t.models.qwen2_5_vl import build_tiny_qwen2_5_vl
from sf2t.models.qwen2_vl import (
    IGNORE_INDEX,
    LORA_TARGETS_LLM,
    LORA_TARGETS_MERGER,
    LORA_TARGETS_VISION,
    MM_TOKEN_TYPE_IMAGE,
    MM_TOKEN_TYPE_TEXT,
    MM_TOKEN_TYPE_VIDEO,
    build_messages,
    build_video_sample,
    collate,
    lora_target_modules,
    lora_target_regex,
    num_video_tokens,
)
from sf2t.models.tiny import build_tiny_config, build_tiny_qwen2_vl, load_model_and_tokenizer
from sf2t.models.tokenizer import (
    DEFAULT_SYSTEM_PROMPT,
    QWEN2_VL_CHAT_TEMPLATE,
    SPECIAL_TOKENS,
    build_tokenizer,
    train_bpe_tokenizer,
)

__all__ = [
    "apply_sf2t",
    "remove_sf2t",
    "DEFAULT_SYSTEM_PROMPT",
    "FAMILIES",
    "Family",
    "IGNORE_INDEX",
    "LORA_TARGETS_LLM",
    "LORA_TARGETS_MERGER",
    "LORA_TARGETS_VISION",
    "MM_TOKEN_TYPE_IMAGE",
    "MM_TOKEN_TYPE_TEXT",
    "MM_TOKEN_TYPE_VIDEO",
    "QWEN2_VL_CHAT_TEMPLATE",
    "SPECIAL_TOKENS",
    "build_messages",
    "build_tiny_config",
    "build_tiny_llava_next_video",
    "build_tiny_llava_onevision",
    "build_tiny_qwen2_5_vl",
    "build_tiny_qwen2_vl",
    "build_tokenizer",
    "build_video_sample",
    "check_checkpoint_dir",
    "collate",
    "get_family",
    "load_model_and_tokenizer",
    "load_processor",
    "lora_target_modules",
    "lora_target_regex",
    "num_video_tokens",
    "train_bpe_tokenizer",
]
