"""Model helpers: tiny Qwen2-VL checkpoints, the tokenizer, LoRA targets and chat-text assembly.

transformers / tokenizers are imported lazily by the functions that need them, except that importing
this package imports torch.
"""

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
from sf2t.models.tiny import (
    build_tiny_config,
    build_tiny_qwen2_vl,
    check_checkpoint_dir,
    load_model_and_tokenizer,
    load_processor,
)
from sf2t.models.tokenizer import (
    DEFAULT_SYSTEM_PROMPT,
    QWEN2_VL_CHAT_TEMPLATE,
    SPECIAL_TOKENS,
    build_tokenizer,
    train_bpe_tokenizer,
)

__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
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
    "build_tiny_qwen2_vl",
    "build_tokenizer",
    "build_video_sample",
    "check_checkpoint_dir",
    "collate",
    "load_model_and_tokenizer",
    "load_processor",
    "lora_target_modules",
    "lora_target_regex",
    "num_video_tokens",
    "train_bpe_tokenizer",
]
