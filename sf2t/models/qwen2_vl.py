"""Qwen2-VL family helpers: LoRA target selection and chat-text assembly for video samples.

Module names (transformers >= 4.52 / 5.x layout of ``Qwen2VLForConditionalGeneration``)::

    model.visual.patch_embed.proj                      Conv3d   (not a LoRA target)
    model.visual.blocks.{i}.attn.qkv                   Linear   fused q/k/v
    model.visual.blocks.{i}.attn.proj                  Linear
    model.visual.blocks.{i}.mlp.fc1 / .fc2             Linear
    model.visual.merger.mlp.0 / .2                     Linear   patch merger (vision -> LLM projector)
    model.language_model.layers.{i}.self_attn.{q,k,v,o}_proj
    model.language_model.layers.{i}.mlp.{gate,up,down}_proj
    lm_head

``mm_token_type_ids`` (transformers 5.x, ``ProcessorMixin.create_mm_token_type_ids`` and
``Qwen2VLModel.get_rope_index``): 0 = text, 1 = image (``<|image_pad|>``), 2 = video (``<|video_pad|>``).
``<|vision_start|>`` / ``<|vision_end|>`` are text (0).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import nn

from sf2t.models.tokenizer import DEFAULT_SYSTEM_PROMPT, IM_END, IMAGE_PAD, QWEN2_VL_CHAT_TEMPLATE, VIDEO_PAD

IGNORE_INDEX = -100

MM_TOKEN_TYPE_TEXT = 0
MM_TOKEN_TYPE_IMAGE = 1
MM_TOKEN_TYPE_VIDEO = 2

LORA_TARGETS_LLM: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Vision tower (per block): fused attention qkv, attention output proj, MLP fc1/fc2.
LORA_TARGETS_VISION: tuple[str, ...] = ("qkv", "proj", "fc1", "fc2")
# Patch merger (vision -> LLM projector) linears; not targeted unless merger=True.
LORA_TARGETS_MERGER: tuple[str, ...] = ("mlp.0", "mlp.2")

# Regexes over full module names; tolerate any prefix (e.g. "base_model.model.") before the family path.
_VISION_RE = r"(?:^|.*\.)visual\.blocks\.\d+\.(?:attn\.(?:qkv|proj)|mlp\.(?:fc1|fc2))"
_MERGER_RE = r"(?:^|.*\.)visual\.merger\.mlp\.(?:0|2)"
# ``language_model.layers`` (transformers >= 4.52) or ``model.layers`` (older layout, LLM at ``model``).
_LLM_RE = (
    r"(?:^|.*\.)(?:language_model|model)\.layers\.\d+\."
    r"(?:self_attn\.(?:q_proj|k_proj|v_proj|o_proj)|mlp\.(?:gate_proj|up_proj|down_proj))"
)


def lora_target_regex(vision: bool = True, llm: bool = True, *, merger: bool = False) -> str:
    """One regex string for ``LoraConfig(target_modules=...)`` (peft full-matches it against module names)."""
    parts = ([_VISION_RE] if vision else []) + ([_MERGER_RE] if merger else []) + ([_LLM_RE] if llm else [])
    if not parts:
        raise ValueError("lora_target_regex: select at least one of vision / llm / merger")
    return "(?:" + "|".join(parts) + ")"


def lora_target_modules(model: nn.Module, vision: bool = True, llm: bool = True, *, merger: bool = False) -> list[str]:
    """Full names of the ``nn.Linear`` modules of ``model`` to wrap with LoRA.

    - ``vision``: every vision block's fused ``attn.qkv``, ``attn.proj``, ``mlp.fc1``, ``mlp.fc2``.
    - ``llm``: every decoder layer's q/k/v/o and gate/up/down projections.
    - ``merger`` (default False): the patch merger MLP (vision->LLM projector). It is left out by default:
      it is the modality bridge (small, usually trained fully or frozen rather than LoRA-adapted) and the
      SF²T recipe adapts the encoder and the LLM.  The ``lm_head``, embeddings and the patch-embedding
      Conv3d are never selected.

    Pass the un-wrapped model (not a ``PeftModel``). The returned list holds exact full module names; peft
    matches a list entry when the module name equals it (or ends with ``"." + entry``), so these select
    exactly those layers.
    """
    if not (vision or llm or merger):
        raise ValueError("lora_target_modules: select at least one of vision / llm / merger")
    pattern = re.compile(lora_target_regex(vision, llm, merger=merger))
    names = [
        name
        for name, module in model.named_modules()
        if type(module) is nn.Linear and pattern.fullmatch(name) and "lora_" not in name
    ]
    if not names:
        raise ValueError(
            "lora_target_modules: no matching Linear layers found; is this a Qwen2-VL model "
            f"(got {type(model).__name__})?"
        )
    return names


def _grid_list(video_grid_thw) -> list[int]:
    g = torch.as_tensor(video_grid_thw)
    if g.dim() == 2 and g.shape[0] == 1:
        g = g[0]
    if g.dim() != 1 or g.shape[0] != 3:
        raise ValueError(f"expected the grid of one video, [t, h, w] or [[t, h, w]]; got shape {tuple(g.shape)}")
    return [int(x) for x in g.tolist()]


def num_video_tokens(grid_thw, merge_size: int = 2) -> int:
    """Number of ``<|video_pad|>`` placeholders for one video: ``t * h * w // merge_size**2``."""
    t, h, w = _grid_list(grid_thw)
    if h % merge_size or w % merge_size:
        raise ValueError(f"grid h={h}, w={w} must be divisible by merge_size={merge_size}")
    return t * h * w // merge_size**2


def _render_chat(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    template = getattr(tokenizer, "chat_template", None) or QWEN2_VL_CHAT_TEMPLATE
    text = tokenizer.apply_chat_template(
        messages, chat_template=template, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    if not isinstance(text, str):  # pragma: no cover - defensive (older/newer return types)
        raise TypeError(f"apply_chat_template(tokenize=False) returned {type(text).__name__}, expected str")
    return text


def build_messages(
    question: str, answer: str | None, system: str | None = DEFAULT_SYSTEM_PROMPT, *, image: bool = False
) -> list[dict]:
    """The conversation ``[system, user: [image?, video, text], assistant: answer]`` (system, image and assistant
    optional; the image, e.g. localization's target, comes before the video)."""
    messages: list[dict] = []
    if system is not None:
        messages.append({"role": "system", "content": system})
    content = ([{"type": "image"}] if image else []) + [{"type": "video"}, {"type": "text", "text": question}]
    messages.append({"role": "user", "content": content})
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return messages


def build_video_sample(
    tokenizer,
    question: str,
    answer: str | None,
    video_grid_thw,
    *,
    system: str | None = DEFAULT_SYSTEM_PROMPT,
    merge_size: int = 2,
    image_grid_thw=None,
) -> dict[str, torch.Tensor]:
    """Token ids for one video QA sample, identical to chat template + ``Qwen2VLProcessor`` output.

    ``image_grid_thw``: the sample also shows one image (before the video; e.g. localization's target), with
    ``t * h * w / merge_size**2`` ``<|image_pad|>`` tokens (``mm_token_type_ids`` 1).

    Returns 1-D LongTensors ``input_ids``, ``attention_mask`` (all 1), ``labels`` and ``mm_token_type_ids``
    (0 text, 2 for each ``<|video_pad|>``).  ``labels`` is ``-100`` everywhere except the answer tokens and
    the assistant turn's closing ``<|im_end|>`` (the ``"\\n"`` after it is not supervised).  With
    ``answer=None`` the text ends with the generation prompt ``<|im_start|>assistant\\n`` and all labels are
    ``-100``.  ``system=None`` omits the system message (the template then inserts the default one).
    """
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # accept a processor too
    n_video = num_video_tokens(video_grid_thw, merge_size)
    n_image = 0 if image_grid_thw is None else num_video_tokens(image_grid_thw, merge_size)
    ids, labels, pads = _encode_with_one_pad(tokenizer, question, answer, system, image_grid_thw is not None)
    # <|video_pad|> / <|image_pad|> are special tokens: the tokenizer splits them out before BPE, so the text around
    # them tokenizes the same whether each appears once or n times. Tokenize with one of each (cached per text) and
    # expand the ids.
    video_id = tokenizer.convert_tokens_to_ids(VIDEO_PAD)
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_PAD)
    id_parts, label_parts, prev = [], [], 0
    for pos, tok_id, n in sorted(
        (p, t, k) for p, t, k in ((pads[0], video_id, n_video), (pads[1], image_id, n_image)) if p >= 0
    ):
        id_parts += [ids[prev:pos], torch.full((n,), tok_id, dtype=torch.long)]
        label_parts += [labels[prev:pos], torch.full((n,), IGNORE_INDEX, dtype=torch.long)]
        prev = pos + 1
    input_ids = torch.cat(id_parts + [ids[prev:]])
    labels = torch.cat(label_parts + [labels[prev:]])
    mm = torch.zeros_like(input_ids)
    mm[input_ids == image_id] = MM_TOKEN_TYPE_IMAGE
    mm[input_ids == video_id] = MM_TOKEN_TYPE_VIDEO
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "labels": labels,
        "mm_token_type_ids": mm,
    }


_ENCODE_CACHE: dict = {}
_ENCODE_CACHE_MAX = 8192  # (question, answer) pairs: paraphrases x answers, a few hundred per task in practice


def _encode_with_one_pad(tokenizer, question: str, answer: str | None, system: str | None, image: bool = False):
    """(input_ids, labels, (position of the single <|video_pad|>, of the single <|image_pad|> or -1)) for the chat
    rendered with one placeholder each; cached per (tokenizer, question, answer, system, image): templates and
    answers repeat across samples."""
    key = (id(tokenizer), getattr(tokenizer, "name_or_path", ""), question, answer, system, image)
    hit = _ENCODE_CACHE.get(key)
    if hit is not None and hit[0] is tokenizer:
        return hit[1]
    messages = build_messages(question, answer, system, image=image)
    text = _render_chat(tokenizer, messages, add_generation_prompt=answer is None)
    for placeholder, want in ((VIDEO_PAD, 1), (IMAGE_PAD, int(image))):
        if text.count(placeholder) != want:
            raise ValueError(f"expected {want} {placeholder} in the rendered prompt, found {text.count(placeholder)}")
    # Supervised span: the assistant answer and its closing <|im_end|> (the last <|im_end|> of the text).
    sup_start = sup_end = None
    if answer is not None:
        sup_end = text.rindex(IM_END) + len(IM_END)
        sup_start = sup_end - len(IM_END) - len(answer)
        if sup_start < 0 or text[sup_start : sup_end - len(IM_END)] != answer:
            raise ValueError("chat template did not render the answer right before the final <|im_end|>")
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=sup_start is not None)
    input_ids = torch.tensor(enc["input_ids"], dtype=torch.long)
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    if sup_start is not None:
        offsets = torch.tensor(enc["offset_mapping"], dtype=torch.long).reshape(-1, 2)
        mask = (offsets[:, 0] >= sup_start) & (offsets[:, 1] <= sup_end) & (offsets[:, 1] > offsets[:, 0])
        labels[mask] = input_ids[mask]
    video_id = tokenizer.convert_tokens_to_ids(VIDEO_PAD)
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_PAD)
    where = (input_ids == video_id).nonzero().flatten()
    where_img = (input_ids == image_id).nonzero().flatten()
    if where.numel() != 1 or where_img.numel() != int(image):  # e.g. a question containing "<|video_pad|>"
        raise ValueError(
            f"sample has {where.numel()} video and {where_img.numel()} image placeholder tokens, expected 1 and "
            f"{int(image)}; question/answer must not contain vision special tokens"
        )
    out = (input_ids, labels, (int(where[0]), int(where_img[0]) if image else -1))
    if len(_ENCODE_CACHE) >= _ENCODE_CACHE_MAX:
        _ENCODE_CACHE.clear()
    _ENCODE_CACHE[key] = (tokenizer, out)
    return out


_PAD_VALUES = {"attention_mask": 0, "labels": IGNORE_INDEX, "mm_token_type_ids": MM_TOKEN_TYPE_TEXT}
_CONCAT_KEYS = ("pixel_values_videos", "video_grid_thw", "pixel_values", "image_grid_thw")


def collate(samples: Sequence[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a list of samples from :func:`build_video_sample` into a batch.

    ``input_ids`` are padded with ``pad_id``, ``attention_mask`` with 0, ``labels`` with -100 and
    ``mm_token_type_ids`` with 0, to the longest sample.  Vision tensors present in the samples
    (``pixel_values_videos``, ``video_grid_thw``, ``pixel_values``, ``image_grid_thw``) are concatenated along
    dim 0, as the model expects (flattened patches of all videos, one grid row per video).
    """
    if not samples:
        raise ValueError("collate: empty batch")
    keys = ["input_ids", "attention_mask", "labels", "mm_token_type_ids"]
    max_len = max(int(s["input_ids"].shape[0]) for s in samples)
    out: dict[str, torch.Tensor] = {}
    for key in keys:
        if not all(key in s for s in samples):
            if any(key in s for s in samples):
                raise KeyError(f"collate: {key!r} present in some samples only")
            continue
        fill = pad_id if key == "input_ids" else _PAD_VALUES[key]
        batch = torch.full((len(samples), max_len), fill, dtype=torch.long)
        for i, s in enumerate(samples):
            v = torch.as_tensor(s[key]).reshape(-1)
            batch[i, : v.shape[0]] = v
        out[key] = batch
    for key in _CONCAT_KEYS:
        present = [s[key] for s in samples if key in s and s[key] is not None]
        if present:
            # videos: every sample has one; images (localization's target) only some: the model takes the
            # images of the batch concatenated, in the order their <|image_pad|> runs appear
            if len(present) != len(samples) and key in ("pixel_values_videos", "video_grid_thw"):
                raise KeyError(f"collate: {key!r} present in some samples only")
            out[key] = torch.cat([torch.as_tensor(v).reshape(-1, *torch.as_tensor(v).shape[-1:]) for v in present])
    return out
