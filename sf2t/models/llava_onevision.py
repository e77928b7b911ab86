"""LLaVA-OneVision family: tiny offline checkpoint, tokenizer, chat template, text assembly, LoRA targets.

Architecture (transformers 5.x ``LlavaOnevisionForConditionalGeneration``): SigLIP vision tower ->
2-layer MLP projector -> Qwen2 LLM. Pixels are ``[F, C, H, W]`` per video (``pixel_values_videos``
``[B, F, C, H, W]``), every frame resized (no crop) to the vision tower's ``image_size`` square.

Video placeholder count (``LlavaOnevisionProcessor.replace_video_token`` and
``LlavaOnevisionModel.get_video_features``): each frame gives ``(image_size / patch)**2`` patch tokens,
bilinearly pooled to ``ceil(side / 2)**2``; ONE ``image_newline`` token is appended after the whole video
(not per frame): ``frames * ceil(side / 2)**2 + 1`` ``<video>`` tokens (real model: 384 / 14 -> 27 -> 14:
``196 * frames + 1``). ``vision_feature_select_strategy="full"`` (SigLIP has no CLS token).

Images go through "anyres": a base view plus tiles chosen from ``image_grid_pinpoints``, unpadded, with a
newline token per row; the count depends on the original image size: :func:`num_image_tokens`.

Chat template (``llava-hf/llava-onevision-qwen2-*-ov-hf``, as written by transformers'
``convert_llava_onevision_weights_to_hf.py``): ``<|im_start|>{role}\\n`` then every image as ``<image>\\n``,
then every video as ``<video>\\n``, then the text items, then ``<|im_end|>\\n``; no default system turn.
Message contents must be lists of typed items (a plain string content renders as nothing).
Supervised per sample: the answer tokens and the closing ``<|im_end|>`` (the ``\\n`` after it is not).

Module names::

    model.vision_tower.encoder.layers.{i}.self_attn.{q,k,v,out}_proj   Linear
    model.vision_tower.encoder.layers.{i}.mlp.fc1 / .fc2               Linear
    model.multi_modal_projector.linear_1 / .linear_2                                projector (not LoRA)
    model.language_model.layers.{i}.self_attn.{q,k,v,o}_proj, .mlp.{gate,up,down}_proj
    lm_head
"""

from __future__ import annotations

import math
import os
import pathlib

import torch
from torch import nn

from sf2t.models.qwen2_5_vl import build_model_seeded, save_checkpoint_dir, select_linear_modules
from sf2t.models.qwen2_vl import IGNORE_INDEX
from sf2t.models.tiny import _pad_to_multiple
from sf2t.models.tokenizer import ENDOFTEXT, IM_END, IM_START

MODEL_CLASS = "LlavaOnevisionForConditionalGeneration"
PROCESSOR_CLASS = "LlavaOnevisionProcessor"
IMAGE_TOKEN = "<image>"
VIDEO_TOKEN = "<video>"
# Qwen2's three chat specials, then LLaVA-OneVision's two added placeholders (real ids 151643..151647).
SPECIAL_TOKENS: tuple[str, ...] = (ENDOFTEXT, IM_START, IM_END, IMAGE_TOKEN, VIDEO_TOKEN)

LLAVA_ONEVISION_CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{# Render all video then #}{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}"
    "{{ '<video>\n' }}{% endfor %}"
    "{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}"
    "{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] }}{% endgeneration %}{% endfor %}{% endif %}"
    "{{'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

LORA_TARGETS_VISION: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
LORA_TARGETS_LLM: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
VISION_LORA_RE = (
    r"(?:^|.*\.)vision_tower\.(?:vision_model\.)?encoder\.layers\.\d+\."
    r"(?:self_attn\.(?:q_proj|k_proj|v_proj|out_proj)|mlp\.(?:fc1|fc2))"
)
LLM_LORA_RE = (
    r"(?:^|.*\.)language_model\.(?:model\.)?layers\.\d+\."
    r"(?:self_attn\.(?:q_proj|k_proj|v_proj|o_proj)|mlp\.(?:gate_proj|up_proj|down_proj))"
)

PATCH_SIZE = 14
TINY_IMAGE_SIZE = 56  # 4x4 patches -> 2x2 pooled tokens per frame
TINY_GRID_PINPOINTS = [[56, 56], [56, 112], [112, 56], [112, 112]]


def lora_target_modules(model: nn.Module, vision: bool = True, llm: bool = True) -> list[str]:
    """Exact full names of the vision-encoder and/or decoder-layer Linears for LoRA (projector excluded)."""
    parts = ([VISION_LORA_RE] if vision else []) + ([LLM_LORA_RE] if llm else [])
    if not parts:
        raise ValueError("lora_target_modules: select at least one of vision / llm")
    return select_linear_modules(model, "(?:" + "|".join(parts) + ")", "lora_target_modules")


def num_video_tokens(frames: int, height: int, width: int, patch_size: int = PATCH_SIZE) -> int:
    """``<video>`` tokens for ``frames`` frames of ``height x width`` (after the processor's resize, = the vision
    tower's image_size): ``frames * ceil(h/p/2) * ceil(w/p/2) + 1`` (pooled patches, one trailing newline)."""
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    return frames * math.ceil(height // patch_size / 2) * math.ceil(width // patch_size / 2) + 1


def num_image_tokens(processor, height: int, width: int) -> int:
    """``<image>`` tokens of one image of original size ``height x width`` (anyres), as the processor counts them."""
    return int(processor._get_num_multimodal_tokens(image_sizes=[(height, width)])["num_image_tokens"][0])


# -------------------------------------------------------------------------------------------- text assembly


def build_messages(question: str, answer: str | None, system: str | None = None, *, image: bool = False) -> list:
    """``[system?, user: [image?, video, text], assistant?: [text]]`` with typed list contents (the LLaVA
    templates select items by ``type``, so plain string contents would render empty)."""
    messages: list[dict] = []
    if system is not None:
        messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
    content = ([{"type": "image"}] if image else []) + [{"type": "video"}, {"type": "text", "text": question}]
    messages.append({"role": "user", "content": content})
    if answer is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages


_ENCODE_CACHE: dict = {}
_ENCODE_CACHE_MAX = 8192


def encode_once(
    tokenizer, template: str, question: str, answer: str | None, system: str | None, image: bool, end: str
) -> tuple[torch.Tensor, torch.Tensor, dict[str, int]]:
    """(input_ids, labels, {placeholder: position}) of the chat rendered with ONE ``<image>`` (if ``image``) and
    ONE ``<video>``; cached per (tokenizer, texts). The supervised span is the last occurrence of
    ``answer + end`` in the rendered text (``end``: the assistant turn's closing text); every token overlapping
    it is supervised. Tokenized with ``add_special_tokens=True`` like the processor (Llama adds ``<s>``)."""
    key = (id(tokenizer), template, question, answer, system, image, end)
    hit = _ENCODE_CACHE.get(key)
    if hit is not None and hit[0] is tokenizer:
        return hit[1]
    text = tokenizer.apply_chat_template(
        build_messages(question, answer, system, image=image),
        chat_template=template,
        tokenize=False,
        add_generation_prompt=answer is None,
    )
    for tok, want in ((VIDEO_TOKEN, 1), (IMAGE_TOKEN, int(image))):
        if text.count(tok) != want:
            raise ValueError(f"expected {want} {tok} in the rendered prompt, found {text.count(tok)}")
    enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=answer is not None)
    ids = torch.tensor(enc["input_ids"], dtype=torch.long)
    labels = torch.full_like(ids, IGNORE_INDEX)
    if answer is not None:
        start = text.rfind(answer + end)
        if start < 0:
            raise ValueError(f"chat template did not render the answer followed by {end!r}")
        stop = start + len(answer) + len(end)
        off = torch.tensor(enc["offset_mapping"], dtype=torch.long).reshape(-1, 2)
        mask = (off[:, 1] > start) & (off[:, 0] < stop) & (off[:, 1] > off[:, 0])
        labels[mask] = ids[mask]
    pos = {}
    for tok, want in ((VIDEO_TOKEN, 1), (IMAGE_TOKEN, int(image))):
        where = (ids == tokenizer.convert_tokens_to_ids(tok)).nonzero().flatten()
        if where.numel() != want:  # e.g. a question containing "<video>"
            raise ValueError(f"sample has {where.numel()} {tok} tokens, expected {want}; texts must not contain it")
        if want:
            pos[tok] = int(where[0])
    out = (ids, labels, pos)
    if len(_ENCODE_CACHE) >= _ENCODE_CACHE_MAX:
        _ENCODE_CACHE.clear()
    _ENCODE_CACHE[key] = (tokenizer, out)
    return out


def expand_placeholders(tokenizer, ids, labels, pos: dict[str, int], counts: dict[str, int]) -> dict:
    """Repeat each single placeholder token ``counts[token]`` times (labels -100); attention mask all ones.

    Valid because the placeholders are special tokens, split out before BPE: the text around them tokenizes the
    same whether each appears once or n times (the tests check it against the processor)."""
    id_parts, label_parts, prev = [], [], 0
    for p, tok in sorted((p, t) for t, p in pos.items()):
        n = counts[tok]
        if n < 1:
            raise ValueError(f"need >= 1 {tok} token, got {n}")
        id_parts += [ids[prev:p], torch.full((n,), tokenizer.convert_tokens_to_ids(tok), dtype=torch.long)]
        label_parts += [labels[prev:p], torch.full((n,), IGNORE_INDEX, dtype=torch.long)]
        prev = p + 1
    input_ids = torch.cat(id_parts + [ids[prev:]])
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "labels": torch.cat(label_parts + [labels[prev:]]),
    }


def build_sample(
    tokenizer,
    question: str,
    answer: str | None,
    num_frames: int,
    height: int = TINY_IMAGE_SIZE,
    width: int = TINY_IMAGE_SIZE,
    *,
    image_tokens: int | None = None,
    system: str | None = None,
    patch_size: int = PATCH_SIZE,
) -> dict[str, torch.Tensor]:
    """Token ids for one video QA sample, identical to the OneVision chat template + ``LlavaOnevisionProcessor``.

    ``height`` / ``width``: frame size after the processor's resize (the vision tower's ``image_size``).
    ``image_tokens``: the user turn also shows one image (rendered before the video) with this many ``<image>``
    tokens (:func:`num_image_tokens`). ``tokenizer`` may be the processor.

    Returns 1-D LongTensors ``input_ids``, ``attention_mask`` (all 1) and ``labels``: -100 except the answer
    tokens and the assistant's closing ``<|im_end|>``. With ``answer=None`` the text ends with the generation
    prompt ``<|im_start|>assistant\\n`` and all labels are -100. OneVision's processor returns no
    ``mm_token_type_ids``.
    """
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    template = getattr(tokenizer, "chat_template", None) or LLAVA_ONEVISION_CHAT_TEMPLATE
    ids, labels, pos = encode_once(tokenizer, template, question, answer, system, image_tokens is not None, IM_END)
    counts = {VIDEO_TOKEN: num_video_tokens(num_frames, height, width, patch_size)}
    if image_tokens is not None:
        counts[IMAGE_TOKEN] = image_tokens
    return expand_placeholders(tokenizer, ids, labels, pos, counts)


# ------------------------------------------------------------------------------------------ tokenizer, model


def build_tokenizer():
    """Qwen2-style BPE tokenizer (the same trained vocabulary as :mod:`sf2t.models.tokenizer`) with
    LLaVA-OneVision's specials: ``<|endoftext|>`` (pad), ``<|im_start|>``, ``<|im_end|>`` (eos), ``<image>``,
    ``<video>``, and the OneVision chat template."""
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    from sf2t.models.tokenizer import DEFAULT_BPE_VOCAB_SIZE, _trained_vocab_merges

    vocab_items, merges = _trained_vocab_merges(DEFAULT_BPE_VOCAB_SIZE)
    tok = Qwen2Tokenizer(
        vocab=dict(vocab_items),
        merges=list(merges),
        unk_token=None,
        bos_token=None,
        eos_token=ENDOFTEXT,
        pad_token=ENDOFTEXT,
        model_max_length=32768,
        padding_side="right",
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
    )
    tok.add_special_tokens(
        {"additional_special_tokens": [AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS[1:]]}
    )
    tok.eos_token = IM_END  # llava-hf OneVision: eos <|im_end|>, pad <|endoftext|>
    tok.chat_template = LLAVA_ONEVISION_CHAT_TEMPLATE
    return tok


def build_processor(tokenizer=None, image_size: int = TINY_IMAGE_SIZE, grid_pinpoints=None):
    from transformers import LlavaOnevisionProcessor
    from transformers.models.llava_onevision.image_processing_llava_onevision import LlavaOnevisionImageProcessor
    from transformers.models.llava_onevision.video_processing_llava_onevision import LlavaOnevisionVideoProcessor

    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    size = {"height": image_size, "width": image_size}
    pinpoints = grid_pinpoints or TINY_GRID_PINPOINTS
    return LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=pinpoints),
        tokenizer=tokenizer,
        video_processor=LlavaOnevisionVideoProcessor(size=size),
        num_image_tokens=(image_size // PATCH_SIZE) ** 2,
        vision_feature_select_strategy="full",
        chat_template=LLAVA_ONEVISION_CHAT_TEMPLATE,
        vision_aspect_ratio="anyres_max_9",
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
    image_size: int = TINY_IMAGE_SIZE,
):
    """A ``LlavaOnevisionConfig`` (tiny SigLIP + tiny Qwen2) with token ids from ``tokenizer``."""
    from transformers import LlavaOnevisionConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    text_config = dict(
        model_type="qwen2",
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
        bos_token_id=ids[ENDOFTEXT],
        eos_token_id=ids[IM_END],
        pad_token_id=ids[ENDOFTEXT],
        tie_word_embeddings=False,
    )
    vision_config = dict(
        model_type="siglip_vision_model",
        hidden_size=vision_embed_dim,
        intermediate_size=2 * vision_embed_dim,
        num_hidden_layers=vision_depth,
        num_attention_heads=vision_heads,
        image_size=image_size,
        patch_size=PATCH_SIZE,
        vision_use_head=False,
    )
    return LlavaOnevisionConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_index=ids[IMAGE_TOKEN],
        video_token_index=ids[VIDEO_TOKEN],
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        image_grid_pinpoints=TINY_GRID_PINPOINTS,
        vision_aspect_ratio="anyres_max_9",
        tie_word_embeddings=False,
    )


def build_tiny_llava_onevision(
    out_dir: str | os.PathLike,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    vision_depth: int = 2,
    vision_embed_dim: int = 32,
    seed: int = 0,
    overwrite: bool = False,
) -> pathlib.Path:
    """Build a tiny random-weight LLaVA-OneVision checkpoint (model, tokenizer, processor) in ``out_dir``;
    an existing one is reused unless ``overwrite``."""
    from transformers import GenerationConfig, LlavaOnevisionForConditionalGeneration

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
    model = build_model_seeded(LlavaOnevisionForConditionalGeneration, config, seed)
    eot, im_end = tokenizer.convert_tokens_to_ids(ENDOFTEXT), tokenizer.convert_tokens_to_ids(IM_END)
    model.generation_config = GenerationConfig(eos_token_id=[im_end, eot], pad_token_id=eot, do_sample=False)
    return save_checkpoint_dir(
        model, build_processor(tokenizer), out, processor_class=PROCESSOR_CLASS, overwrite=overwrite
    )
