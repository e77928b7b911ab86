"""Family-independent chat-text assembly for one video QA sample.

Every family renders its chat template once with ONE placeholder token per vision input, tokenizes that text
(cached: questions and answers repeat across samples), supervises the tokens of the answer and the text the
template closes the assistant turn with, then repeats each placeholder id as many times as the processor would.
Valid because the placeholders are special tokens, split out before BPE: the text around them tokenizes the same
whether each appears once or n times (the tests check every family against its own processor, token for token).
A family describes its format with one :class:`ChatFormat`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

IGNORE_INDEX = -100


@dataclass(frozen=True)
class ChatFormat:
    """How one family renders and tokenizes a video QA conversation."""

    build_messages: Callable  # (question, answer, system, *, image) -> messages for apply_chat_template
    template: str  # chat template used when the tokenizer has none
    video_token: str  # placeholder of one video patch
    image_token: str  # placeholder of one image patch
    end: str  # text the template closes the assistant turn with (supervised together with the answer)
    add_special_tokens: bool  # tokenize as the processor does (a Llama tokenizer adds <s>)
    # Supervised tokens: those overlapping ``answer + end`` ("overlap", for tokenizers that glue a space onto the
    # next word) or only those inside it ("inside").
    span: str = "overlap"


def render_chat(tokenizer, fmt: ChatFormat, question: str, answer: str | None, system: str | None, image: bool):
    """The chat text of ``[system?, user: [image?, video, text], assistant?: answer]`` with ONE placeholder each
    (the generation prompt at the end when ``answer`` is None)."""
    text = tokenizer.apply_chat_template(
        fmt.build_messages(question, answer, system, image=image),
        chat_template=getattr(tokenizer, "chat_template", None) or fmt.template,
        tokenize=False,
        add_generation_prompt=answer is None,
    )
    if not isinstance(text, str):  # pragma: no cover - defensive (older/newer return types)
        raise TypeError(f"apply_chat_template(tokenize=False) returned {type(text).__name__}, expected str")
    for tok, want in ((fmt.video_token, 1), (fmt.image_token, int(image))):
        if text.count(tok) != want:
            raise ValueError(f"expected {want} {tok} in the rendered prompt, found {text.count(tok)}")
    return text


_ENCODE_CACHE: dict = {}
_ENCODE_CACHE_MAX = 8192  # (question, answer) pairs: paraphrases x answers, a few hundred per task in practice


def encode_once(
    tokenizer, fmt: ChatFormat, question: str, answer: str | None, system: str | None, image: bool
) -> tuple[torch.Tensor, torch.Tensor, dict[str, int]]:
    """(input_ids, labels, {placeholder: position}) of :func:`render_chat`'s text; cached per (tokenizer, format,
    template, texts). The supervised span is the last occurrence of ``answer + fmt.end`` in the text; with
    ``answer=None`` every label is -100."""
    template = getattr(tokenizer, "chat_template", None) or fmt.template
    key = (id(tokenizer), fmt, template, question, answer, system, image)
    hit = _ENCODE_CACHE.get(key)
    if hit is not None and hit[0] is tokenizer:
        return hit[1]
    text = render_chat(tokenizer, fmt, question, answer, system, image)
    enc = tokenizer(text, add_special_tokens=fmt.add_special_tokens, return_offsets_mapping=answer is not None)
    ids = torch.tensor(enc["input_ids"], dtype=torch.long)
    labels = torch.full_like(ids, IGNORE_INDEX)
    if answer is not None:
        start = text.rfind(answer + fmt.end)
        if start < 0:
            raise ValueError(f"chat template did not render the answer followed by {fmt.end!r}")
        stop = start + len(answer) + len(fmt.end)
        off = torch.tensor(enc["offset_mapping"], dtype=torch.long).reshape(-1, 2)
        if fmt.span == "overlap":
            mask = (off[:, 1] > start) & (off[:, 0] < stop)
        else:
            mask = (off[:, 0] >= start) & (off[:, 1] <= stop)
        mask &= off[:, 1] > off[:, 0]
        labels[mask] = ids[mask]
    pos = {}
    for tok, want in ((fmt.video_token, 1), (fmt.image_token, int(image))):
        where = (ids == tokenizer.convert_tokens_to_ids(tok)).nonzero().flatten()
        if where.numel() != want:
            raise ValueError(f"sample has {where.numel()} {tok} tokens, expected {want}; texts must not contain it")
        if want:
            pos[tok] = int(where[0])
    out = (ids, labels, pos)
    if len(_ENCODE_CACHE) >= _ENCODE_CACHE_MAX:
        _ENCODE_CACHE.clear()
    _ENCODE_CACHE[key] = (tokenizer, out)
    return out


_DEVICE_PIECES: dict = {}


def _on_device(ids: torch.Tensor, labels: torch.Tensor, device: torch.device):
    """The cached pieces' copies on ``device`` (keyed by the cached CPU tensors, which live as long as the cache)."""
    key = (id(ids), id(labels), str(device))
    hit = _DEVICE_PIECES.get(key)
    if hit is None or hit[0] is not ids:
        if len(_DEVICE_PIECES) > 8192:
            _DEVICE_PIECES.clear()
        hit = _DEVICE_PIECES[key] = (ids, ids.to(device), labels.to(device))
    return hit[1], hit[2]


def expand_placeholders(tokenizer, ids, labels, pos: dict[str, int], counts: dict[str, int]) -> dict:
    """Repeat each single placeholder token ``counts[token]`` (>= 1) times, labels -100; attention mask all ones."""
    id_parts, label_parts, prev = [], [], 0
    for p, tok in sorted((p, t) for t, p in pos.items()):
        n = counts[tok]
        if n < 1:
            raise ValueError(f"need >= 1 {tok} token, got {n}")
        tok_id = tokenizer.convert_tokens_to_ids(tok)
        id_parts += [ids[prev:p], torch.full((n,), tok_id, dtype=torch.long, device=ids.device)]
        label_parts += [labels[prev:p], torch.full((n,), IGNORE_INDEX, dtype=torch.long, device=ids.device)]
        prev = p + 1
    input_ids = torch.cat(id_parts + [ids[prev:]])
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "labels": torch.cat(label_parts + [labels[prev:]]),
    }


def build_sample(
    tokenizer,
    fmt: ChatFormat,
    question: str,
    answer: str | None,
    system: str | None,
    video_tokens: int,
    image_tokens: int | None = None,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """1-D LongTensors ``input_ids``, ``attention_mask`` (all 1) and ``labels`` of one sample whose user turn shows
    one video with ``video_tokens`` placeholders, preceded by one image with ``image_tokens`` placeholders unless
    that is None. ``tokenizer`` may be the processor. ``device``: assemble there, from the pre-tokenized pieces
    kept on that device (copied once per distinct text, then only the placeholder runs are made)."""
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    ids, labels, pos = encode_once(tokenizer, fmt, question, answer, system, image_tokens is not None)
    if device is not None and torch.device(device) != ids.device:
        ids, labels = _on_device(ids, labels, torch.device(device))
    counts = {fmt.video_token: video_tokens, fmt.image_token: image_tokens}
    return expand_placeholders(tokenizer, ids, labels, pos, counts)
