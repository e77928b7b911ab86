"""The model families sf2t supports, as one table: what a trainer needs to know per family.

``FAMILIES[name]`` is a frozen :class:`Family`; :func:`get_family` looks one up with an error listing the known
names. Everything family-specific (tiny checkpoint builder, text assembly, placeholder counts, pixel layout,
LoRA targets) is reached through the table, so training / eval code stays family-agnostic.

Uniform text assembly: ``family.build_sample(tokenizer_or_processor, question, answer, num_frames, height,
width, *, image_tokens=None)`` -> dict of 1-D LongTensors ``input_ids``, ``attention_mask``, ``labels`` (and
``mm_token_type_ids`` where the family's processor returns them), with ``height`` x ``width`` the frame size
after the processor's resize and ``num_frames`` the decoded frames (before any temporal-patch repeat).
``image_tokens``: the user turn also shows one image (before the video) with that many image placeholders.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from sf2t._checks import check_int
from sf2t.models import llava_next_video, llava_onevision, qwen2_5_vl, qwen2_vl, text, tiny
from sf2t.models.tokenizer import IMAGE_PAD, VIDEO_PAD

_QWEN_PATCH, _QWEN_MERGE, _QWEN_TEMPORAL = 14, 2, 2


@dataclass(frozen=True)
class Family:
    """One model family. Callables are plain functions (the table is data, not behaviour)."""

    name: str
    model_class: str  # transformers class name of the conditional-generation model
    processor_class: str  # transformers processor class name (AutoProcessor resolves it from the checkpoint)
    build_tiny: Callable  # (out_dir, *, seed=0, overwrite=False) -> checkpoint Path (offline, tiny, seeded)
    build_sample: Callable  # uniform text assembly, see the module docstring
    image_token: str  # placeholder token of one image patch
    video_token: str  # placeholder token of one video patch
    num_video_tokens: Callable[[int, int, int], int]  # (frames, height, width) after resize -> placeholders
    frame_repeat: int  # frames per temporal patch: Qwen 2 (a clip of F frames is padded to a multiple of 2); LLaVA 1
    has_mm_token_type_ids: bool  # the processor returns mm_token_type_ids (Qwen: 0 text, 1 image, 2 video)
    pixel_layout: str  # "qwen_patches" ([groups*gh*gw, C*tp*p*p] + video_grid_thw) or "fchw" ([F, C, H, W] per video)
    lora_targets_vision: tuple[str, ...]  # short Linear names in the vision tower's blocks
    lora_targets_llm: tuple[str, ...]  # short Linear names in the LLM's decoder layers
    lora_target_modules: Callable  # (model, vision=True, llm=True) -> exact full module names for peft
    chat_format: text.ChatFormat  # how the chat text is rendered and supervised (its answer end: stop generating)
    # (height, width, image_size | None) -> None, a ValueError when the model cannot take frames of that size
    # (LLaVA-NeXT-Video: only its vision tower's image_size square; LLaVA-OneVision: only that square's patch grid;
    # both through sf2t.models._build.check_tower_frame_size); None: the placeholder count's checks are all
    check_frame_size: Callable | None = None


def _check_frame_count_and_size(frames, height, width) -> tuple[int, int, int]:
    """``frames``, ``height``, ``width`` as Python ints >= 1, checked by name: a float frame count gave a float (or
    silently rounded) placeholder count, a bool one frame, a zero size no tokens."""
    return tuple(
        check_int(name, v, min_value=1) for name, v in (("frames", frames), ("height", height), ("width", width))
    )


def _qwen_num_video_tokens(frames: int, height: int, width: int) -> int:
    """``ceil(frames / 2) * (h / 14) * (w / 14) / 4``: the processor pads a clip to a multiple of the temporal patch
    (repeating the last frame) and merges 2x2 patches. ``height`` / ``width`` are multiples of 28 after resize."""
    frames, height, width = _check_frame_count_and_size(frames, height, width)
    unit = _QWEN_PATCH * _QWEN_MERGE
    if height % unit or width % unit:
        raise ValueError(f"height={height}, width={width} must be multiples of {unit} (after the processor's resize)")
    return math.ceil(frames / _QWEN_TEMPORAL) * (height // _QWEN_PATCH) * (width // _QWEN_PATCH) // _QWEN_MERGE**2


def _qwen_build_sample(tokenizer, question, answer, num_frames, height, width, *, image_tokens=None, **kwargs):
    """Uniform wrapper of :func:`sf2t.models.qwen2_vl.build_video_sample` (Qwen2-VL and Qwen2.5-VL)."""
    grid = [math.ceil(num_frames / _QWEN_TEMPORAL), height // _QWEN_PATCH, width // _QWEN_PATCH]
    _qwen_num_video_tokens(num_frames, height, width)  # validates the size
    if image_tokens is not None:
        image_tokens = check_int("image_tokens", image_tokens, min_value=1)
    # only the image's placeholder count matters for the text: any grid with t*h*w/4 == image_tokens will do
    image_grid = None if image_tokens is None else [1, _QWEN_MERGE, _QWEN_MERGE * image_tokens]
    return qwen2_vl.build_video_sample(tokenizer, question, answer, grid, image_grid_thw=image_grid, **kwargs)


def _row(name: str, module, build_tiny: Callable, **layout) -> Family:
    """The :class:`Family` of ``module`` (``MODEL_CLASS``, ``PROCESSOR_CLASS``, LoRA targets), with ``layout``:
    :data:`_QWEN_LAYOUT` or :func:`_llava_layout`."""
    return Family(
        name=name,
        model_class=module.MODEL_CLASS,
        processor_class=module.PROCESSOR_CLASS,
        build_tiny=build_tiny,
        lora_targets_vision=tuple(module.LORA_TARGETS_VISION),
        lora_targets_llm=tuple(module.LORA_TARGETS_LLM),
        lora_target_modules=module.lora_target_modules,
        chat_format=getattr(module, "CHAT_FORMAT", qwen2_vl.CHAT_FORMAT),  # (Qwen2.5-VL: Qwen2-VL's)
        **layout,
    )


# Qwen2-VL and Qwen2.5-VL: same tokens, text assembly, token counts and pixel patches.
_QWEN_LAYOUT = dict(
    build_sample=_qwen_build_sample,
    image_token=IMAGE_PAD,
    video_token=VIDEO_PAD,
    num_video_tokens=_qwen_num_video_tokens,
    frame_repeat=_QWEN_TEMPORAL,
    has_mm_token_type_ids=True,
    pixel_layout="qwen_patches",
)


def _llava_layout(module) -> dict:
    """LLaVA families: ``<image>`` / ``<video>``, the module's own text assembly and token count, [F, C, H, W]."""
    return dict(
        build_sample=module.build_sample,
        image_token=module.IMAGE_TOKEN,
        video_token=module.VIDEO_TOKEN,
        num_video_tokens=module.num_video_tokens,
        check_frame_size=getattr(module, "check_frame_size", None),
        frame_repeat=1,
        has_mm_token_type_ids=False,
        pixel_layout="fchw",
    )


FAMILIES: dict[str, Family] = {
    "qwen2_vl": _row("qwen2_vl", qwen2_vl, tiny.build_tiny_qwen2_vl, **_QWEN_LAYOUT),
    "qwen2_5_vl": _row("qwen2_5_vl", qwen2_5_vl, qwen2_5_vl.build_tiny_qwen2_5_vl, **_QWEN_LAYOUT),
    "llava_onevision": _row(
        "llava_onevision",
        llava_onevision,
        llava_onevision.build_tiny_llava_onevision,
        **_llava_layout(llava_onevision),
    ),
    "llava_next_video": _row(
        "llava_next_video",
        llava_next_video,
        llava_next_video.build_tiny_llava_next_video,
        **_llava_layout(llava_next_video),
    ),
}


def get_family(name: str) -> Family:
    """The :class:`Family` called ``name``; a ``KeyError`` naming the known families otherwise, with the one meant when
    the name is a spelling of it (``"Qwen2-VL"``, ``"qwen2.5_vl"``, a Hub id such as ``"Qwen/Qwen2-VL-2B-Instruct"``)
    or close to one (``"llava_next"``)."""
    try:
        return FAMILIES[name]
    except (KeyError, TypeError):
        pass
    known = ", ".join(sorted(FAMILIES))
    if not isinstance(name, str):
        raise KeyError(
            f"model family must be a name (str), got {type(name).__name__} {name!r}; known families: {known}"
        )
    meant = _family_meant(name)
    hint = f"; did you mean {' or '.join(repr(m) for m in meant)}?" if meant else ""
    if "/" in name or "\\" in name:
        hint += (
            " (get_family takes a family name, not a checkpoint; a local checkpoint's family: "
            "sf2t.models.families.family_of_checkpoint(path))"
        )
    raise KeyError(f"unknown model family {name!r}{hint}; known families: {known}") from None


def _family_meant(name: str) -> list[str]:
    """The family names ``name`` most likely means: the one it spells in another case or with '-' / '.' / ' ' for
    '_', the longest one a Hub model name starts with (``llava-onevision-qwen2-0.5b-ov-hf``), those that start with
    it (``"llava"``), else the close ones."""
    norm = re.sub(r"[-. ]", "_", name.replace("\\", "/").rsplit("/", 1)[-1].strip().lower())
    if norm in FAMILIES:
        return [norm]
    prefixed = [f for f in FAMILIES if norm.startswith(f + "_")]
    if prefixed:
        return [max(prefixed, key=len)]
    started = [f for f in sorted(FAMILIES) if norm and f.startswith(norm)]  # "llava", "qwen"
    return started or difflib.get_close_matches(norm, sorted(FAMILIES), n=2, cutoff=0.6)


def family_of_model_type(model_type, where: str = "model") -> Family:
    """The :class:`Family` of a transformers ``model_type`` (the family names are the model types); a clear error
    naming ``where`` for a type sf2t does not support."""
    if model_type not in FAMILIES:
        raise ValueError(
            f"{where}: model_type {model_type!r} is not supported; sf2t trains {', '.join(sorted(FAMILIES))}"
        )
    return FAMILIES[model_type]


def family_of_checkpoint(path) -> Family:
    """The :class:`Family` of a local checkpoint directory, from its ``config.json`` ``model_type``; a clear error
    for a directory that is not a checkpoint or a model type sf2t does not support."""
    import json

    from sf2t.models._build import check_checkpoint_dir

    cfg_path = check_checkpoint_dir(path) / "config.json"
    try:
        model_type = json.loads(cfg_path.read_text()).get("model_type")
    except (OSError, ValueError) as e:
        raise ValueError(f"{cfg_path}: not a readable JSON model config ({e})") from None
    return family_of_model_type(model_type, str(cfg_path))


def stop_token_ids(family: Family | None, tokenizer, generation_config=None) -> list[int]:
    """The token ids that end a generated answer: the id sf2t supervises after each answer (``family``'s chat format:
    ``<|im_end|>``, LLaVA-NeXT-Video's ``</s>``), then the ``generation_config``'s ``eos_token_id`` (one or several)
    and the tokenizer's eos, without repeats. ``family`` None: the last two only."""
    tok = getattr(tokenizer, "tokenizer", tokenizer)
    ids: list = []
    if family is not None:
        end = text.answer_end(tok, family.chat_format)
        end_id = tok.convert_tokens_to_ids(end)
        if isinstance(end_id, int) and end_id != tok.unk_token_id:  # a token, not a text (Vicuna's " ")
            ids.append(end_id)
    eos = getattr(generation_config, "eos_token_id", None)
    ids += list(eos) if isinstance(eos, (list, tuple)) else [eos]
    ids.append(getattr(tok, "eos_token_id", None))
    return list(dict.fromkeys(int(i) for i in ids if isinstance(i, int) and i >= 0))


def model_class(family: Family):
    """The transformers model class of ``family`` (imported lazily)."""
    import transformers

    return getattr(transformers, family.model_class)


__all__ = [
    "FAMILIES",
    "Family",
    "family_of_checkpoint",
    "family_of_model_type",
    "get_family",
    "model_class",
    "stop_token_ids",
]
