"""LLaVA-NeXT-Video family: tiny offline checkpoint, Llama-style tokenizer, Vicuna chat template, text assembly,
LoRA targets.

Architecture (transformers 5.x ``LlavaNextVideoForConditionalGeneration``): CLIP vision tower (features of
layer ``vision_feature_layer=-2``, CLS dropped: ``vision_feature_select_strategy="default"``) -> 2x2 average
pooling (``spatial_pool_stride=2``) -> MLP projector -> Llama LLM. Pixels are ``[F, C, H, W]`` per video; the
video processor resizes the shortest edge then center-crops to the vision tower's ``image_size`` square.

Video placeholder count (``LlavaNextVideoProcessor.replace_video_token``):
``(h // patch) * (w // patch) // 4 * frames`` ``<video>`` tokens, no newline token (real model: 336 / 14 = 24 ->
144 per frame). A frame whose patch grid has an odd side is refused (:func:`num_video_tokens`): the model's stride-2
pooling drops its last row / column, so the count no longer matches its features. Images use LLaVA-NeXT anyres
(base view + tiles + one newline per row): :func:`num_image_tokens`.

Chat template (``llava-hf/LLaVA-NeXT-Video-7B-hf``, Vicuna style)::

    [system text + " "] "USER: " + "<image>\\n"* + "<video>\\n"* + question + " " + "ASSISTANT: " + answer + " "

and with ``add_generation_prompt`` the text ends with ``"ASSISTANT:"``. The processor's tokenizer prepends
``<s>`` (Llama ``add_bos_token``). Contents must be lists of typed items.

End of an answer: the HF template emits no end-of-turn token (its ``" "`` after the answer is only the separator
before the next ``USER:``), but the model stops generating at ``</s>``: LLaVA's own training (``conv_vicuna_v1``,
sep ``" "``, sep2 ``"</s>"``: ``... ASSISTANT: answer</s>USER: ...``), LLaMA-Factory's ``llava_next_video``
template and TRL's SFT all supervise ``</s>`` after each answer. Supervising the template's ``" "`` instead taught a
fine-tuned model never to stop (generation ran to ``max_new_tokens``). So a supervised text is the template's
with the tokenizer's eos written right after each answer (``CHAT_FORMAT.eos_after_answer``)::

    ... "ASSISTANT: " + answer + "</s>" + " USER: " + question2 + " ASSISTANT: " + answer2 + "</s>"

and the supervised span of each turn is its answer tokens then the eos id (one token, id 2 in Llama). The
template's separator is kept after an inner ``</s>`` and dropped at the end of the text: with the checkpoint's
non-legacy Llama tokenizer (Metaspace, ``prepend_scheme="first"``) ``"</s> USER"`` tokenizes the next turn as
``</s> ▁USER``, the same ``▁USER`` token as the template's ``"answer USER"`` and as original LLaVA's legacy
tokenizer gave for ``"</s>USER"``, whereas ``"</s>USER"`` here would split into an unseen ``U S E R``; a trailing
``" "`` after the last ``</s>`` would only add an unsupervised ``▁`` token. The tokens are thus the template's with
each answer's separator ``▁`` replaced by ``</s>`` (multi-turn: ``</s>`` inserted before ``▁USER``). The generation
prompt (``answer=None``) is the template's own, token for token the processor's.

Module names::

    model.vision_tower.encoder.layers.{i}.self_attn.{q,k,v,out}_proj, .mlp.fc1/.fc2     Linear (CLIP)
    model.multi_modal_projector.linear_1 / .linear_2                                   projector (not LoRA)
    model.language_model.layers.{i}.self_attn.{q,k,v,o}_proj, .mlp.{gate,up,down}_proj
    lm_head
"""

from __future__ import annotations

import functools
import os
import pathlib

import torch

from sf2t.models import text
from sf2t.models._build import (  # noqa: F401  (the LLM names re-exported)
    LLM_LORA_RE,
    LORA_TARGETS_LLM,
    build_tiny_checkpoint,
    check_tower_frame_size,
    pad_to_multiple,
    tiny_sizes,
)

# SigLIP and CLIP encoder layers share their Linear names: LoRA targets and their selection are OneVision's.
from sf2t.models.llava_onevision import (  # noqa: F401  (re-exported)
    IMAGE_TOKEN,
    LORA_TARGETS_VISION,
    PATCH_SIZE,
    TINY_GRID_PINPOINTS,
    TINY_IMAGE_SIZE,
    VIDEO_TOKEN,
    VISION_LORA_RE,
    _frame_tokens,
    build_messages,
    lora_target_modules,
    num_image_tokens,
)
from sf2t.models.tiny import _CLIP_MEAN, _CLIP_STD
from sf2t.ops.token_merge import _kept_tokens

MODEL_CLASS = "LlavaNextVideoForConditionalGeneration"
PROCESSOR_CLASS = "LlavaNextVideoProcessor"
UNK, BOS, EOS = "<unk>", "<s>", "</s>"

LLAVA_NEXT_VIDEO_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{# Render all video then #}{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}"
    "{{ '<video>\n' }}{% endfor %}"
    "{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}"
    "{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

DEFAULT_BPE_VOCAB_SIZE = 1536


def num_video_tokens(frames: int, height: int, width: int, patch_size: int = PATCH_SIZE) -> int:
    """``<video>`` tokens for ``frames`` frames of ``height x width`` after the processor's resize + center crop:
    ``(h // p) * (w // p) // 4 * frames`` (2x2 average pooling, no newline token).

    A ValueError for a frame whose patch grid has an odd side (``h // p`` or ``w // p`` odd): the processor counts
    ``gh * gw // 4`` placeholders but the model pools with stride 2 into ``(gh // 2) * (gw // 2)`` features, so its
    forward fails ("Video features and video tokens do not match", measured with the tiny model: 42x42 frames, 4
    placeholders and 2 features; 70x70, 12 and 8). Even grids (the real model's 336 / 14 = 24) count as the processor.
    """
    frames, height, width, per_frame = _frame_tokens(frames, height, width, patch_size, lambda gh, gw: gh * gw // 4)
    _check_even_grid(height, width, patch_size)
    return per_frame * frames


def _check_even_grid(height: int, width: int, patch_size: int) -> None:
    """A ValueError naming the frame size, and the sizes near it that work, when its patch grid has an odd side."""
    grid = (height // patch_size, width // patch_size)
    if all(g % 2 == 0 for g in grid):
        return
    near = sorted({(g + d) * patch_size for g in grid if g % 2 for d in (-1, 1) if g + d > 0})
    raise ValueError(
        f"height={height}, width={width}: a {grid[0]}x{grid[1]} patch grid (patch {patch_size}) with an odd side; "
        "LLaVA-NeXT-Video pools each frame's grid 2x2 with stride 2, dropping the odd last row or column of patches, "
        "so its video features do not match the processor's placeholders and the model fails on them: use a frame "
        f"size (the processor's crop_size, the vision tower's image_size) whose sides // {patch_size} are even, "
        f"multiples of {2 * patch_size} (here {' or '.join(map(str, near))}; the real model's 336)"
    )


def check_frame_size(height: int, width: int, image_size: int | None = None) -> None:
    """A ValueError naming ``height x width`` and the size that works when LLaVA-NeXT-Video's model cannot take
    frames of that size: only the vision tower's ``image_size`` square works (``image_size=None``, unknown: only a
    non-square size is refused).

    Measured with the tiny model (transformers 5.23, ``image_size`` 56): 56x56 runs; 112x112, 84x84, 28x28, 56x112 and
    112x56 all fail in CLIP's embeddings ("Input image size (112*112) doesn't match model (56*56)"; its position
    embeddings are for the one patch grid and ``get_video_features`` passes no ``interpolate_pos_encoding``). A
    non-square frame could not work even then: the pooler views each frame's features as a square grid. The
    placeholder count (:func:`num_video_tokens`) is the processor's for any size: this is the model's limit."""
    check_tower_frame_size(
        height,
        width,
        image_size,
        model="LLaVA-NeXT-Video",
        why="CLIP's position embeddings are for that one patch grid, and the pooler reshapes each frame's features to "
        "a square",
        fix="set the processor's video crop_size to {size} (do_center_crop on, shortest_edge the same), as the "
        "checkpoint's own processor does",
    )


# Llama's tokenizer adds <s> (as the processor's); the template has no end-of-turn token (its " " separates turns):
# sf2t writes </s> after each answer and supervises it (see the module docstring); Metaspace glues the space before
# the answer onto its first word, so every token overlapping the answer is supervised.
CHAT_FORMAT = text.ChatFormat(
    build_messages=build_messages,
    template=LLAVA_NEXT_VIDEO_CHAT_TEMPLATE,
    video_token=VIDEO_TOKEN,
    image_token=IMAGE_TOKEN,
    end=" ",
    add_special_tokens=True,
    eos_after_answer=True,
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
    """Token ids for one video QA sample: the generation prompt identical to the Vicuna template +
    ``LlavaNextVideoProcessor`` (``<s>`` first, as the processor's Llama tokenizer adds it); a supervised sample the
    template's text with ``</s>`` after each answer (module docstring).

    ``token_keep_ratio`` (< 1): the model compresses its video tokens (:func:`sf2t.models.apply_sf2t`): the video
    has its kept-token count of placeholders (frames as temporal groups of the pooled per-frame grid).

    ``height`` / ``width``: frame size after the processor's resize + crop. ``image_tokens``: the user turn also
    shows one image (rendered before the video) with this many ``<image>`` tokens (:func:`num_image_tokens`).
    ``system``: optional system text, rendered bare before ``USER:`` (the template adds no role for it).

    ``labels``: -100 except the answer tokens and the eos ``</s>`` after them (the last supervised id is
    ``tokenizer.eos_token_id``). With ``answer=None`` the text ends with ``ASSISTANT:`` and all labels are -100.
    The processor returns no ``mm_token_type_ids``.
    ``more``: later ``(question, answer)`` turns of a multi-turn conversation (text only; every answer and its
    ``</s>`` supervised).
    """
    n_video = num_video_tokens(num_frames, height, width, patch_size)
    token_keep_ratio = text.check_token_keep(token_keep_ratio, token_first_group)
    if token_keep_ratio is not None:
        # (kept_count's count; the sizes were checked by num_video_tokens above)
        side_h, side_w = height // patch_size // 2, width // patch_size // 2
        n_video = _kept_tokens(int(num_frames), int(side_h * side_w), token_keep_ratio, token_first_group)
    return text.build_sample(tokenizer, CHAT_FORMAT, question, answer, system, n_video, image_tokens, more=more)


# ------------------------------------------------------------------------------------------ tokenizer, model


@functools.lru_cache(maxsize=2)
def _trained_llama_vocab_merges(vocab_size: int):
    """Vocab / merges of a sentencepiece-like BPE (``▁`` word prefix, byte fallback) trained on the embedded
    corpus: ids 0..2 ``<unk> <s> </s>``, 3..258 the byte-fallback tokens ``<0x00>..<0xFF>`` (as in Llama)."""
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from sf2t.models.tokenizer import _corpus

    tok = Tokenizer(models.BPE(unk_token=UNK, fuse_unk=True, byte_fallback=True))
    # split=True while training: merges never cross a word boundary (sentencepiece's split_by_whitespace)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    specials = [UNK, BOS, EOS] + [f"<0x{i:02X}>" for i in range(256)]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size + len(specials), min_frequency=2, show_progress=False, special_tokens=specials
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    data = json.loads(tok.to_str())
    vocab = tuple(sorted(data["model"]["vocab"].items(), key=lambda kv: kv[1]))
    merges = tuple(tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in data["model"]["merges"])
    return vocab, merges


def build_tokenizer(vocab_size: int = DEFAULT_BPE_VOCAB_SIZE):
    """A transformers ``LlamaTokenizer`` (Metaspace, byte fallback, ``<s>`` added in front) with LLaVA-NeXT-Video's
    added ``<video>`` then ``<image>`` special tokens (real ids 32000, 32001), ``pad = <unk>`` and the Vicuna
    video chat template."""
    from tokenizers import AddedToken
    from transformers import LlamaTokenizer

    vocab, merges = _trained_llama_vocab_merges(vocab_size)
    tok = LlamaTokenizer(
        vocab=dict(vocab),
        merges=list(merges),
        unk_token=UNK,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=UNK,
        add_bos_token=True,
        add_eos_token=False,
        legacy=False,
        model_max_length=4096,
        padding_side="right",
    )
    added = [AddedToken(t, special=True, normalized=False) for t in (VIDEO_TOKEN, IMAGE_TOKEN)]
    tok.add_special_tokens({"additional_special_tokens": added})
    tok.chat_template = LLAVA_NEXT_VIDEO_CHAT_TEMPLATE
    return tok


def build_processor(tokenizer=None, image_size: int = TINY_IMAGE_SIZE, grid_pinpoints=None):
    from transformers import LlavaNextVideoProcessor
    from transformers.models.llava_next.image_processing_llava_next import LlavaNextImageProcessor
    from transformers.models.llava_next_video.video_processing_llava_next_video import LlavaNextVideoVideoProcessor

    tokenizer = tokenizer if tokenizer is not None else build_tokenizer()
    common = dict(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        image_mean=_CLIP_MEAN,
        image_std=_CLIP_STD,
    )
    return LlavaNextVideoProcessor(
        video_processor=LlavaNextVideoVideoProcessor(**common),
        image_processor=LlavaNextImageProcessor(**common, image_grid_pinpoints=grid_pinpoints or TINY_GRID_PINPOINTS),
        tokenizer=tokenizer,
        chat_template=LLAVA_NEXT_VIDEO_CHAT_TEMPLATE,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token
    )


def build_tiny_config(
    tokenizer,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 4,
    intermediate_size: int = 128,
    vision_depth: int = 2,
    vision_embed_dim: int = 32,
    vision_heads: int = 2,
    image_size: int = TINY_IMAGE_SIZE,
):
    """A ``LlavaNextVideoConfig`` (tiny CLIP + tiny Llama) with token ids from ``tokenizer``."""
    from transformers import LlavaNextVideoConfig

    side = image_size // PATCH_SIZE
    text_config = dict(
        model_type="llama",
        vocab_size=pad_to_multiple(len(tokenizer), 64),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        hidden_act="silu",
        max_position_embeddings=4096,
        rms_norm_eps=1e-5,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    vision_config = dict(
        model_type="clip_vision_model",
        hidden_size=vision_embed_dim,
        intermediate_size=2 * vision_embed_dim,
        num_hidden_layers=vision_depth,
        num_attention_heads=vision_heads,
        image_size=image_size,
        patch_size=PATCH_SIZE,
        projection_dim=vision_embed_dim,
        hidden_act="quick_gelu",
    )
    return LlavaNextVideoConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        video_token_index=tokenizer.convert_tokens_to_ids(VIDEO_TOKEN),
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        image_grid_pinpoints=TINY_GRID_PINPOINTS,
        spatial_pool_mode="average",
        spatial_pool_stride=2,
        image_seq_length=side * side,
        video_seq_length=(side // 2) ** 2,
        tie_word_embeddings=False,
    )


def build_tiny_llava_next_video(
    out_dir: str | os.PathLike,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    vision_depth: int = 2,
    vision_embed_dim: int = 32,
    seed: int = 0,
    overwrite: bool = False,
) -> pathlib.Path:
    """Build a tiny random-weight LLaVA-NeXT-Video checkpoint (model, tokenizer, processor) in ``out_dir``;
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
        generation_tokens={"bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": UNK},
        seed=seed,
        overwrite=overwrite,
    )
