"""LLaVA-OneVision family: tiny offline checkpoint, tokenizer, chat template, text assembly, LoRA targets.

Architecture (transformers 5.x ``LlavaOnevisionForConditionalGeneration``): SigLIP vision tower ->
2-layer MLP projector -> Qwen2 LLM. Pixels are ``[F, C, H, W]`` per video (``pixel_values_videos``
``[B, F, C, H, W]``), every frame resized (no crop) to the vision tower's ``image_size`` square: the model takes
only frames of that square's patch grid (:func:`check_frame_size`).

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
    model.multi_modal_projector.linear_1 / .linear_2                   projector (not LoRA)
    model.language_model.layers.{i}.self_attn.{q,k,v,o}_proj, .mlp.{gate,up,down}_proj
    lm_head
"""

from __future__ import annotations

import functools
import math
import os
import pathlib
import re

import torch
from torch import nn

from sf2t._checks import check_int
from sf2t.models import text
from sf2t.models._build import (
    LLM_LORA_RE,
    LORA_TARGETS_LLM,  # noqa: F401  (re-exported)
    build_tiny_checkpoint,
    check_tower_frame_size,
    tiny_sizes,
    tower_lora_modules,
)
from sf2t.models.tiny import qwen2_text_config
from sf2t.models.tokenizer import ENDOFTEXT, IM_END, IM_START, build_qwen2_tokenizer
from sf2t.ops.token_merge import _kept_tokens

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

# SigLIP (OneVision) and CLIP (NeXT-Video) encoder layers have the same Linear names.
LORA_TARGETS_VISION: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")
VISION_LORA_RE = (
    r"(?:^|.*\.)vision_tower\.(?:vision_model\.)?encoder\.layers\.\d+\."
    r"(?:self_attn\.(?:q_proj|k_proj|v_proj|out_proj)|mlp\.(?:fc1|fc2))"
)

PATCH_SIZE = 14
TINY_IMAGE_SIZE = 56  # 4x4 patches -> 2x2 pooled tokens per frame
TINY_GRID_PINPOINTS = [[56, 56], [56, 112], [112, 56], [112, 112]]


def lora_target_modules(model: nn.Module, vision: bool = True, llm: bool = True) -> list[str]:
    """Exact full names of the vision-encoder and/or decoder-layer Linears for LoRA (projector excluded). Encoder
    layers after the one the features are taken from (``vision_feature_layer``: -2 for LLaVA-NeXT-Video, whose last
    layer's output is never read) are left out: their adapters would never get a gradient."""
    names = tower_lora_modules(model, VISION_LORA_RE, LLM_LORA_RE, vision, llm)
    used = _vision_layers_used(model)
    if used is None:
        return names
    layer = re.compile(r"vision_tower\.(?:vision_model\.)?encoder\.layers\.(\d+)\.")
    keep = [n for n in names if (m := layer.search(n)) is None or int(m.group(1)) < used]
    if vision and not llm and not keep:
        raise ValueError("lora_target_modules: the vision tower has no layer before vision_feature_layer")
    return keep


def _vision_layers_used(model: nn.Module) -> int | None:
    """How many encoder layers (from the first) the features read: hidden state k of ``vision_feature_layer`` is
    the output of layer k - 1 (state 0: the embeddings); None where the config does not say."""
    cfg = getattr(model, "config", None)
    vcfg = getattr(cfg, "vision_config", None)
    fl = getattr(cfg, "vision_feature_layer", None)
    total = getattr(vcfg, "num_hidden_layers", None)
    if fl is None or not isinstance(total, int):
        return None
    states = [fl] if isinstance(fl, int) else list(fl)
    if not states or not all(isinstance(k, int) for k in states):
        return None
    return max(k % (total + 1) for k in states)


def _frame_tokens(frames, height, width, patch_size, pooled=None) -> tuple[int, int, int, int]:
    """(frames, height, width, tokens per frame), checked by name: ints >= 1 (a float frame count gave a float count
    or a torch error, a bool one frame) and a frame of at least one token (a frame smaller than the patch gave a video
    of no tokens). ``pooled``: the tokens of a frame of (height // patch, width // patch) patches; default OneVision's,
    the grid pooled 2x2 rounded up (LLaVA-NeXT-Video's rounds down)."""
    frames, height, width, patch_size = (
        check_int(name, v, min_value=1)
        for name, v in (("frames", frames), ("height", height), ("width", width), ("patch_size", patch_size))
    )
    gh, gw = height // patch_size, width // patch_size
    per_frame = math.ceil(gh / 2) * math.ceil(gw / 2) if pooled is None else pooled(gh, gw)
    if per_frame < 1:
        raise ValueError(
            f"height={height}, width={width} is smaller than one video token (patch {patch_size}, pooled 2x2): pass "
            "the frame size after the processor's resize (the vision tower's image_size)"
        )
    return frames, height, width, per_frame


def num_video_tokens(frames: int, height: int, width: int, patch_size: int = PATCH_SIZE) -> int:
    """``<video>`` tokens for ``frames`` frames of ``height x width`` (after the processor's resize, = the vision
    tower's image_size): ``frames * ceil(h/p/2) * ceil(w/p/2) + 1`` (pooled patches, one trailing newline)."""
    frames, height, width, per_frame = _frame_tokens(frames, height, width, patch_size)
    return frames * per_frame + 1


def check_frame_size(height: int, width: int, image_size: int | None = None) -> None:
    """A ValueError naming ``height x width`` and the size that works when LLaVA-OneVision's model cannot take frames
    of that size: only sizes with the patch grid of the vision tower's ``image_size`` square work (``image_size=None``,
    unknown: only a non-square patch grid is refused).

    Measured with the tiny model (transformers 5.23, ``image_size`` 56, a 4x4 grid): 56x56 to 69x69 run (SigLIP's
    patch convolution drops the pixels past the last whole patch); 28x28, 42x42, 70x70, 84x84, 112x112, 56x70, 56x84,
    56x112 and 112x56 all fail in SigLIP's embeddings ("The size of tensor a (64) must match the size of tensor b
    (16)": its position embeddings are for the one patch grid and ``get_video_features`` passes no
    ``interpolate_pos_encoding``); a non-square grid of the same patch count (28x112: 2x8) runs, but ``apply_pooling``
    views each frame's features as the tower's square grid, mixing its rows (14x224: 1x16 features against sf2t's 17
    placeholders, "Video features and video tokens do not match"). The processor's placeholder count is the tower's
    grid's whatever the frame size; :func:`num_video_tokens` is the frame's: the same for the sizes that work."""
    check_tower_frame_size(
        height,
        width,
        image_size,
        model="LLaVA-OneVision",
        why="SigLIP's position embeddings are for that one patch grid, and the pooler views each frame's features as "
        "that square grid",
        fix="set the processor's video size to {size} (height and width), as the checkpoint's own processor does",
        patch_size=PATCH_SIZE,
    )


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


# Tokenized with added specials like the processor (a no-op for Qwen2's tokenizer, <s> for Llama's); supervised: the
# answer and the closing <|im_end|>, every token overlapping them.
CHAT_FORMAT = text.ChatFormat(
    build_messages=build_messages,
    template=LLAVA_ONEVISION_CHAT_TEMPLATE,
    video_token=VIDEO_TOKEN,
    image_token=IMAGE_TOKEN,
    end=IM_END,
    add_special_tokens=True,
)


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
    token_keep_ratio: float | None = None,
    token_first_group: str = "all",
    more=(),
) -> dict[str, torch.Tensor]:
    """Token ids for one video QA sample, identical to the OneVision chat template + ``LlavaOnevisionProcessor``.

    ``token_keep_ratio`` (< 1): the model compresses its video tokens (:func:`sf2t.models.apply_sf2t`): the video
    has its kept-token count of placeholders (frames as temporal groups of the pooled per-frame grid) + 1 newline.

    ``height`` / ``width``: frame size after the processor's resize (the vision tower's ``image_size``).
    ``image_tokens``: the user turn also shows one image (rendered before the video) with this many ``<image>``
    tokens (:func:`num_image_tokens`). ``tokenizer`` may be the processor.

    Returns 1-D LongTensors ``input_ids``, ``attention_mask`` (all 1) and ``labels``: -100 except the answer
    tokens and the assistant's closing ``<|im_end|>``. With ``answer=None`` the text ends with the generation
    prompt ``<|im_start|>assistant\\n`` and all labels are -100. OneVision's processor returns no
    ``mm_token_type_ids``.
    ``more``: later ``(question, answer)`` turns of a multi-turn conversation (text only; every answer
    supervised).
    """
    n_video = num_video_tokens(num_frames, height, width, patch_size)
    token_keep_ratio = text.check_token_keep(token_keep_ratio, token_first_group)
    if token_keep_ratio is not None:
        # (kept_count's count; the sizes were checked by num_video_tokens above)
        side_h, side_w = math.ceil(height // patch_size / 2), math.ceil(width // patch_size / 2)
        n_video = _kept_tokens(int(num_frames), int(side_h * side_w), token_keep_ratio, token_first_group) + 1
    return text.build_sample(tokenizer, CHAT_FORMAT, question, answer, system, n_video, image_tokens, more=more)


# ------------------------------------------------------------------------------------------ tokenizer, model


def build_tokenizer():
    """Qwen2-style BPE tokenizer (the same trained vocabulary as :mod:`sf2t.models.tokenizer`) with
    LLaVA-OneVision's specials: ``<|endoftext|>`` (pad), ``<|im_start|>``, ``<|im_end|>`` (eos), ``<image>``,
    ``<video>``, and the OneVision chat template."""
    tok = build_qwen2_tokenizer(SPECIAL_TOKENS, LLAVA_ONEVISION_CHAT_TEMPLATE)
    tok.eos_token = IM_END  # llava-hf OneVision: eos <|im_end|>, pad <|endoftext|>
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

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (IMAGE_TOKEN, VIDEO_TOKEN)}
    text_config = qwen2_text_config(
        tokenizer,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_layers=num_layers,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
    )
    text_config.update(model_type="qwen2", tie_word_embeddings=False)
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
        generation_tokens={"eos_token_id": [IM_END, ENDOFTEXT], "pad_token_id": ENDOFTEXT},
        seed=seed,
        overwrite=overwrite,
    )
