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

import numpy as np
import torch
from torch import nn

from sf2t._checks import check_int
from sf2t.models import text
from sf2t.models._build import LORA_TARGETS_LLM  # noqa: F401  (re-exported)
from sf2t.models.text import IGNORE_INDEX
from sf2t.models.tokenizer import DEFAULT_SYSTEM_PROMPT, IM_END, IMAGE_PAD, QWEN2_VL_CHAT_TEMPLATE, VIDEO_PAD
from sf2t.ops.token_merge import _kept_tokens

MODEL_CLASS = "Qwen2VLForConditionalGeneration"
PROCESSOR_CLASS = "Qwen2VLProcessor"

MM_TOKEN_TYPE_TEXT = 0
MM_TOKEN_TYPE_IMAGE = 1
MM_TOKEN_TYPE_VIDEO = 2

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


def _scalar(x):
    """``x`` as its Python number where it is a 0-d tensor (not on the meta device) or a 0-d numpy array: a grid given
    as a list of them was taken as before the grid checks (torch.as_tensor read them), then refused as not integers."""
    if isinstance(x, (torch.Tensor, np.ndarray)) and x.ndim == 0:
        if isinstance(x, torch.Tensor) and x.device.type == "meta":
            return x
        return x.item()
    return x


def _grid_list(video_grid_thw, name: str = "grid_thw") -> list[int]:
    """The (t, h, w) of one video as Python ints, checked: integers >= 1 (a fractional value was cut to an int, a zero
    or negative one gave a placeholder count of 0 or below); ``name`` is the argument named in the error."""
    g = video_grid_thw
    if isinstance(g, torch.Tensor):
        if g.device.type == "meta":
            raise ValueError(f"{name} must hold (t, h, w) values: got a tensor on the meta device, which holds no data")
        if g.dtype.is_floating_point or g.dtype.is_complex or g.dtype == torch.bool:
            raise ValueError(f"{name} must hold integers (t, h, w), got {g.tolist()} ({g.dtype})")
        g = g.tolist()
    elif isinstance(g, np.ndarray):
        g = g.tolist()
    if isinstance(g, (list, tuple)) and len(g) == 1 and isinstance(g[0], (list, tuple, torch.Tensor, np.ndarray)):
        g = g[0]  # [[t, h, w]]
        g = g.tolist() if isinstance(g, (torch.Tensor, np.ndarray)) else g
    # three Python ints (a grid tensor's tolist()) are the common case, once per sample: nothing to read or check
    if not (isinstance(g, (list, tuple)) and len(g) == 3 and all(type(x) is int for x in g)):
        g = _grid_values(g, video_grid_thw, name)
    if min(g) < 1:
        raise ValueError(f"{name} must hold (t, h, w) >= 1 (a video has at least one patch each way), got {list(g)}")
    return [int(x) for x in g]


def _grid_values(g, video_grid_thw, name: str) -> list:
    """The three integers of ``g`` (``video_grid_thw`` read as a list): 0-d tensors as their numbers, checked."""
    if isinstance(g, (list, tuple)):  # 0-d tensors (list(grid[0]), grid[0].unbind()) as their numbers
        g = [_scalar(x) for x in g]
    if not isinstance(g, (list, tuple)) or len(g) != 3 or any(isinstance(x, (list, tuple)) for x in g):
        shape = tuple(np.shape(video_grid_thw)) if isinstance(video_grid_thw, (list, tuple)) else None
        if shape is not None and len(shape) >= 1:
            raise ValueError(f"expected the grid of one video, [t, h, w] or [[t, h, w]]; got shape {shape}")
        raise ValueError(
            f"{name} must be the grid of one video, [t, h, w] or [[t, h, w]] integers; got "
            f"{type(video_grid_thw).__name__} {video_grid_thw!r}"
        )
    if not all(isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)) for x in g):
        raise ValueError(f"{name} must hold integers (t, h, w), got {list(g)}")
    return g


def num_video_tokens(grid_thw, merge_size: int = 2) -> int:
    """Number of ``<|video_pad|>`` placeholders for one video: ``t * h * w // merge_size**2``."""
    return _tokens_of(_grid_list(grid_thw), check_int("merge_size", merge_size, min_value=1))


def _tokens_of(grid: list[int], merge_size: int) -> int:
    """:func:`num_video_tokens` of a grid and merge size already checked (``_grid_list``, ``check_int``): a sample
    checks its grids once (checking each twice cost ~2 us a sample)."""
    t, h, w = grid
    if h % merge_size or w % merge_size:
        raise ValueError(f"grid h={h}, w={w} must be divisible by merge_size={merge_size}")
    return t * h * w // merge_size**2


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


# Qwen2-VL's processor tokenizes without added specials; the supervised span is the answer and the closing
# <|im_end|> (the "\n" after it is not supervised), tokens inside it only.
CHAT_FORMAT = text.ChatFormat(
    build_messages=build_messages,
    template=QWEN2_VL_CHAT_TEMPLATE,
    video_token=VIDEO_PAD,
    image_token=IMAGE_PAD,
    end=IM_END,
    add_special_tokens=False,
    span="inside",
)


def build_video_sample(
    tokenizer,
    question: str,
    answer: str | None,
    video_grid_thw,
    *,
    system: str | None = DEFAULT_SYSTEM_PROMPT,
    merge_size: int = 2,
    image_grid_thw=None,
    device: torch.device | str | None = None,
    token_keep_ratio: float | None = None,
    token_first_group: str = "all",
    more: Sequence[tuple[str, str]] = (),
) -> dict[str, torch.Tensor]:
    """Token ids for one video QA sample, identical to chat template + ``Qwen2VLProcessor`` output, on ``device``
    (default CPU) from pre-tokenized pieces kept there.

    ``token_keep_ratio`` (< 1): the model compresses its video tokens (:func:`sf2t.models.apply_sf2t`); the video
    gets that many fewer placeholders (:func:`sf2t.ops.token_merge.kept_count`, ``token_first_group`` as there).

    ``image_grid_thw``: the sample also shows one image (before the video; e.g. localization's target), with
    ``t * h * w / merge_size**2`` ``<|image_pad|>`` tokens (``mm_token_type_ids`` 1).

    Returns 1-D LongTensors ``input_ids``, ``attention_mask`` (all 1), ``labels`` and ``mm_token_type_ids``
    (0 text, 2 for each ``<|video_pad|>``).  ``labels`` is ``-100`` everywhere except the answer tokens and
    the assistant turn's closing ``<|im_end|>`` (the ``"\\n"`` after it is not supervised).  With
    ``answer=None`` the text ends with the generation prompt ``<|im_start|>assistant\\n`` and all labels are
    ``-100``.  ``system=None`` omits the system message (the template then inserts the default one).
    ``more``: later ``(question, answer)`` turns (multi-turn; each answer and its ``<|im_end|>`` supervised).
    """
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # accept a processor too
    grid = _grid_list(video_grid_thw, "video_grid_thw")
    merge_size = check_int("merge_size", merge_size, min_value=1)
    n_image = None if image_grid_thw is None else _tokens_of(_grid_list(image_grid_thw, "image_grid_thw"), merge_size)
    keep = text.check_token_keep(token_keep_ratio, token_first_group)
    n_video = _tokens_of(grid, merge_size)
    if keep is not None:  # sf2t token merging (apply_sf2t): the static budget of kept tokens, known before the tower
        t, h, w = grid  # (kept_count's count, of the grid checked above: kept_count would check it again)
        n_video = _kept_tokens(t, (h // merge_size) * (w // merge_size), keep, token_first_group)
    return text.build_sample(
        tokenizer,
        CHAT_FORMAT,
        question,
        answer,
        system,
        n_video,
        n_image,
        device=device,
        type_ids={IMAGE_PAD: MM_TOKEN_TYPE_IMAGE, VIDEO_PAD: MM_TOKEN_TYPE_VIDEO},
        more=more,
    )


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
    if isinstance(pad_id, bool) or not isinstance(pad_id, (int, np.integer)):
        raise ValueError(
            f"collate: pad_id must be the tokenizer's pad token id (an int), got {type(pad_id).__name__} {pad_id!r}; "
            "a tokenizer without one (pad_token_id None) can pad with its eos_token_id"
        )
    pad_id = int(pad_id)
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
