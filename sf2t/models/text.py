"""Family-independent chat-text assembly for one video QA sample.

Every family renders its chat template once with ONE placeholder token per vision input, tokenizes that text
(cached: questions and answers repeat across samples), supervises the tokens of the answer and the text the
template closes the assistant turn with (or, for a template without an end-of-turn token, the tokenizer's eos that
sf2t writes after the answer: ``ChatFormat.eos_after_answer``), then repeats each placeholder id as many times as
the processor would. Valid because the placeholders are special tokens, split out before BPE: the text around them
tokenizes the same whether each appears once or n times (the tests check every family against its own processor,
token for token).
A family describes its format with one :class:`ChatFormat`.
"""

from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch

from sf2t._checks import check_int
from sf2t.ops.token_merge import FIRST_GROUP, _check_ratio  # (at import: check_token_keep runs once per sample)

IGNORE_INDEX = -100


@dataclass(frozen=True)
class ChatFormat:
    """How one family renders and tokenizes a video QA conversation."""

    build_messages: Callable  # (question, answer, system, *, image) -> messages for apply_chat_template
    template: str  # chat template used when the tokenizer has none
    video_token: str  # placeholder of one video patch
    image_token: str  # placeholder of one image patch
    end: str  # text the template closes the assistant turn with (supervised with the answer, unless eos_after_answer)
    add_special_tokens: bool  # tokenize as the processor does (a Llama tokenizer adds <s>)
    # Supervised tokens: those overlapping ``answer + end`` ("overlap", for tokenizers that glue a space onto the
    # next word) or only those inside it ("inside").
    span: str = "overlap"
    # The template emits no end-of-turn token (``end`` is a mere separator): in a supervised text sf2t writes the
    # tokenizer's eos right after each answer (before ``end``; in place of ``end`` where that would end the text)
    # and supervises answer + eos, so that the model learns to stop; a generation prompt stays the template's own.
    eos_after_answer: bool = False


def check_token_keep(token_keep_ratio, token_first_group: str = "all") -> float | None:
    """``token_keep_ratio`` of a sample's text, checked like :func:`sf2t.apply_sf2t`'s (a number in (0, 1], numpy's
    too, not a bool: ``True == 1.0`` passed as "no compression"), with ``token_first_group``; None when the video is
    not compressed (None or 1)."""
    if not isinstance(token_first_group, str) or token_first_group not in FIRST_GROUP:
        raise ValueError(f"token_first_group must be one of {FIRST_GROUP}, got {token_first_group!r}")
    if token_keep_ratio is None:
        return None
    try:
        keep = _check_ratio(token_keep_ratio)
    except ValueError as e:
        raise ValueError(f"token_{e} (the fraction of video tokens apply_sf2t keeps; None or 1 for all)") from None
    return None if keep == 1.0 else keep


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
        found = text.count(tok)
        if found > want:  # the template writes each placeholder once: the rest came in with the texts
            raise ValueError(
                f"expected {want} {tok} in the rendered prompt, found {found}: the question, answer or system text "
                f"contains {tok}; leave it out (sf2t places the video's and image's placeholders itself)"
            )
        if found < want:
            raise ValueError(
                f"expected {want} {tok} in the rendered prompt, found {found}: the chat template of this tokenizer "
                f"({type(tokenizer).__name__}) writes no {tok}; is it the tokenizer of this model family's checkpoint?"
            )
    return text


def answer_end(tokenizer, fmt: ChatFormat) -> str:
    """The text supervised right after each answer: the tokenizer's eos for a format with ``eos_after_answer``,
    else ``fmt.end``."""
    if not fmt.eos_after_answer:
        return fmt.end
    eos = getattr(getattr(tokenizer, "tokenizer", tokenizer), "eos_token", None)
    if not eos:
        raise ValueError(
            "the tokenizer has no eos_token, which this chat format writes after each answer: set the checkpoint's "
            "tokenizer_config.json eos_token (Llama: </s>)"
        )
    return str(eos)


def _close_answer(tokenizer, fmt: ChatFormat, after: str) -> str:
    """The text after an answer, ``after`` as the template rendered it (``fmt.end`` + the rest), with the answer's
    supervised end: unchanged, or (``eos_after_answer``) eos + ``after``, eos alone where ``after`` is ``fmt.end``."""
    if not fmt.eos_after_answer:
        return after
    if not after.startswith(fmt.end):
        raise ValueError(f"chat template did not close an assistant turn with {fmt.end!r}")
    return answer_end(tokenizer, fmt) + (after if after[len(fmt.end) :] else "")


def _closed(tokenizer, fmt: ChatFormat, text: str, answer: str) -> str:
    """A rendered supervised ``text`` with its last ``answer`` closed by :func:`_close_answer`."""
    if not fmt.eos_after_answer:
        return text
    start = text.rfind(answer + fmt.end)
    if start < 0:
        raise ValueError(f"chat template did not render the answer followed by {fmt.end!r}")
    cut = start + len(answer)
    return text[:cut] + _close_answer(tokenizer, fmt, text[cut:])


def _check_eos(tokenizer, fmt: ChatFormat, id_list: list[int], label_list: list[int]) -> None:
    """With ``eos_after_answer``: the last supervised id must be the tokenizer's eos id (not its text in pieces)."""
    if not fmt.eos_after_answer:
        return
    sup = [t for t in label_list if t != IGNORE_INDEX]
    eos_id = tokenizer.eos_token_id
    if not sup or sup[-1] != eos_id:
        raise ValueError(
            f"the tokenizer did not encode its eos_token {tokenizer.eos_token!r} after the answer as its id {eos_id} "
            "(does it split special tokens? set split_special_tokens=False)"
        )


_TOKENIZER_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_PINNED: dict = {}  # id -> (tokenizer, key) for one that takes no weak reference (kept alive: its id is not reused)
_SERIAL = itertools.count()


def _tok_key(tokenizer) -> int:
    """A key for ``tokenizer`` in the caches below that no later tokenizer gets: ``id()`` alone is reused once an object
    is freed, and a new tokenizer at a freed one's address would be given the old one's token ids."""
    try:
        key = _TOKENIZER_KEYS.get(tokenizer)
        if key is None:
            key = _TOKENIZER_KEYS[tokenizer] = next(_SERIAL)
        return key
    except TypeError:  # not hashable or not weakly referenceable
        return _PINNED.setdefault(id(tokenizer), (tokenizer, next(_SERIAL)))[1]


_ENCODE_CACHE: OrderedDict = OrderedDict()
# (question, answer) pairs, least recently used dropped first: paraphrases x answers, a few thousand over all tasks
# (rearrangement's orders are the most: ~870 for 3-6 frames); ~2 KB each
_ENCODE_CACHE_MAX = 16384


def _lru_put(cache: OrderedDict, key, value, cap: int = _ENCODE_CACHE_MAX) -> None:
    """``cache[key] = value``, dropping the oldest entry first when ``cache`` holds ``cap``."""
    if len(cache) >= cap:
        cache.popitem(last=False)
    cache[key] = value


_RENDER_CACHE: OrderedDict = OrderedDict()
_RENDER_OK: dict = {}  # (_tok_key(tokenizer), fmt, template) -> whether splicing the answer into a render is exact
_SENTINEL = "\ue000sf2t-answer\ue001"  # private-use characters: no template or text contains them


def _render_spliced(tokenizer, fmt: ChatFormat, question: str, answer: str, system: str | None, image: bool) -> str:
    """:func:`render_chat`'s text, from one render per (question, system, image) with a sentinel answer, the answer
    spliced in (templates insert the assistant's content verbatim). The first render of each (tokenizer, format,
    template) is checked against a direct render; a template that transforms the content is then always rendered
    directly."""
    template = getattr(tokenizer, "chat_template", None) or fmt.template
    fkey = (_tok_key(tokenizer), fmt, template)
    ok = _RENDER_OK.get(fkey)
    if ok is False or answer != answer.strip():  # (a template may trim the content)
        return render_chat(tokenizer, fmt, question, answer, system, image)
    key = (fkey, question, system, image)
    parts = _RENDER_CACHE.get(key)
    if parts is None:
        text = render_chat(tokenizer, fmt, question, _SENTINEL, system, image)
        if text.count(_SENTINEL) != 1:
            _RENDER_OK[fkey] = False
            return render_chat(tokenizer, fmt, question, answer, system, image)
        parts = tuple(text.split(_SENTINEL))
        _lru_put(_RENDER_CACHE, key, parts, 4096)
    spliced = parts[0] + answer + parts[1]
    if ok is None:
        direct = render_chat(tokenizer, fmt, question, answer, system, image)
        _RENDER_OK[fkey] = ok = spliced == direct
        if not ok:
            return direct
    return spliced


def _labels(enc, text: str, answer: str, fmt: ChatFormat, end: str) -> list[int]:
    """Labels of ``enc`` (with offsets) over ``text``: the tokens of the last ``answer + end`` supervised (``end``:
    :func:`answer_end`)."""
    id_list = list(enc["input_ids"])
    label_list = [IGNORE_INDEX] * len(id_list)
    start = text.rfind(answer + end)
    if start < 0:
        raise ValueError(f"chat template did not render the answer followed by {end!r}")
    stop = start + len(answer) + len(end)
    overlap = fmt.span == "overlap"
    for k, (a, b) in enumerate(enc["offset_mapping"]):
        if b > a and ((b > start and a < stop) if overlap else (a >= start and b <= stop)):
            label_list[k] = id_list[k]
    return label_list


def encode_turns(
    tokenizer, fmt: ChatFormat, turns: Sequence[tuple[str, str]], system: str | None, image: bool
) -> tuple[torch.Tensor, torch.Tensor, dict[str, int]]:
    """:func:`encode_once` of a conversation of several ``(question, answer)`` turns: the first user turn shows the
    video (and the image), the later ones only their text; every answer with the text closing its turn
    (:func:`answer_end`) is supervised, every user turn, the system text and the template's markers are -100.
    Rendered by the chat template itself (not cached: multi-turn records are a share of the supervised data)."""
    if not turns:
        raise ValueError("encode_turns: no turns")
    marks = [f"\ue000sf2t-answer-{k}\ue001" for k in range(len(turns))]

    def messages(answers):
        msgs = list(fmt.build_messages(turns[0][0], answers[0], system, image=image))
        for (q, _), a in zip(turns[1:], answers[1:]):
            user, reply = fmt.build_messages(q, a, None, image=False)[-2:]
            if isinstance(user.get("content"), list):  # the media belong to the first turn only
                user = {**user, "content": [c for c in user["content"] if c.get("type") not in ("video", "image")]}
            msgs += [user, reply]
        return msgs

    template = getattr(tokenizer, "chat_template", None) or fmt.template

    def render(answers):
        text = tokenizer.apply_chat_template(
            messages(answers), chat_template=template, tokenize=False, add_generation_prompt=False
        )
        for tok, want in ((fmt.video_token, 1), (fmt.image_token, int(image))):
            if text.count(tok) != want:
                raise ValueError(f"expected {want} {tok} in the rendered conversation, found {text.count(tok)}")
        return text

    marked = render(marks)
    if any(marked.count(m) != 1 for m in marks):
        raise ValueError("chat template did not render each assistant turn once")
    heads, rest = [], marked
    for m in marks:  # heads[k]: the text before answer k (after answer k - 1, starting with fmt.end)
        head, rest = rest.split(m)
        heads.append(head)
        if not rest.startswith(fmt.end):
            raise ValueError(f"chat template did not close an assistant turn with {fmt.end!r}")
    answers = [a for _, a in turns]
    if "".join(h + a for h, a in zip(heads, answers)) + rest != render(answers):
        raise ValueError("chat template changes the answers' text; multi-turn samples cannot be labelled")
    end = answer_end(tokenizer, fmt)
    text, spans = "", []
    for k, (head, answer) in enumerate(zip(heads, answers)):
        text += head if k == 0 else _close_answer(tokenizer, fmt, head)
        spans.append((len(text), len(text) + len(answer) + len(end)))
        text += answer
    text += _close_answer(tokenizer, fmt, rest)
    enc = tokenizer(text, add_special_tokens=fmt.add_special_tokens, return_offsets_mapping=True)
    id_list = list(enc["input_ids"])
    label_list = [IGNORE_INDEX] * len(id_list)
    overlap = fmt.span == "overlap"
    for k, (a, b) in enumerate(enc["offset_mapping"]):
        if b > a and any(((b > lo and a < hi) if overlap else (a >= lo and b <= hi)) for lo, hi in spans):
            label_list[k] = id_list[k]
    _check_eos(tokenizer, fmt, id_list, label_list)
    pos = _placeholders(tokenizer, fmt, id_list, image)
    return torch.tensor(id_list, dtype=torch.long), torch.tensor(label_list, dtype=torch.long), pos


def _placeholders(tokenizer, fmt: ChatFormat, id_list: list[int], image: bool) -> dict[str, int]:
    pos = {}
    for tok, want in ((fmt.video_token, 1), (fmt.image_token, int(image))):
        tok_id = tokenizer.convert_tokens_to_ids(tok)
        where = [k for k, t in enumerate(id_list) if t == tok_id]
        if len(where) != want:
            raise ValueError(f"sample has {len(where)} {tok} tokens, expected {want}; texts must not contain it")
        if want:
            pos[tok] = where[0]
    return pos


def _encode_direct(tokenizer, fmt, question, answer, system, image) -> tuple[list[int], list[int]]:
    if answer is None:
        text = render_chat(tokenizer, fmt, question, answer, system, image)
    else:
        text = _closed(tokenizer, fmt, _render_spliced(tokenizer, fmt, question, answer, system, image), answer)
    enc = tokenizer(text, add_special_tokens=fmt.add_special_tokens, return_offsets_mapping=answer is not None)
    id_list = list(enc["input_ids"])
    if answer is None:
        return id_list, [IGNORE_INDEX] * len(id_list)
    label_list = _labels(enc, text, answer, fmt, answer_end(tokenizer, fmt))
    _check_eos(tokenizer, fmt, id_list, label_list)
    return id_list, label_list


# Composed encoding: a tokenizer splits its text at added tokens (the chat markers, the placeholders) before
# normalizing and BPE, and tokenizes the pieces between them independently. So the text before the answer, cut
# right after its last added token, tokenizes the same on its own (cached per question) as inside the whole text,
# and the rest (e.g. "assistant\n" + answer + "<|im_end|>\n", cached per answer) likewise: a new (question,
# answer) pair costs no tokenizer call once its question and answer have been seen. Checked against the direct
# encoding on the first sample of each (tokenizer, format, template); a tokenizer for which it differs (a
# pre-tokenizer that treats the first piece of a text specially, a post-processor adding tokens) is always encoded
# directly.
_COMPOSE_OK: dict = {}  # (_tok_key(tokenizer), fmt, template) -> whether composing equals the direct encoding
_HEADS: OrderedDict = OrderedDict()  # (fkey, question, system, image) -> (split offset, head ids) or None
_TAILS: OrderedDict = OrderedDict()  # (fkey, tail text) -> (ids, labels)
_SPLITTERS: dict = {}  # _tok_key(tokenizer) -> added tokens usable as split points (the key is never reused: no
# reference to the tokenizer is kept, which would keep every tokenizer ever used alive)


def _split_tokens(tokenizer) -> list[str]:
    """The tokenizer's added tokens after which a text can be cut: not stripping the whitespace that follows."""
    key = _tok_key(tokenizer)
    hit = _SPLITTERS.get(key)
    if hit is not None:
        return hit
    # a tokenizer that tokenizes its special tokens as text (split_special_tokens) has no safe cut points
    decoder = (
        {}
        if getattr(tokenizer, "split_special_tokens", False)
        else getattr(tokenizer, "added_tokens_decoder", None) or {}
    )
    toks = sorted(
        {
            str(t)
            for t in decoder.values()
            if str(t) and not getattr(t, "rstrip", False) and not getattr(t, "single_word", False)
        }
    )
    _SPLITTERS[key] = toks
    return toks


def _encode_composed(tokenizer, fmt, question, answer, system, image) -> tuple[list[int], list[int]] | None:
    template = getattr(tokenizer, "chat_template", None) or fmt.template
    fkey = (_tok_key(tokenizer), fmt, template)
    if _COMPOSE_OK.get(fkey) is False or answer != answer.strip():
        return None
    rkey = (fkey, question, system, image)
    parts = _RENDER_CACHE.get(rkey)
    if parts is None:
        _render_spliced(tokenizer, fmt, question, answer, system, image)  # fills the render cache where it can
        parts = _RENDER_CACHE.get(rkey)
    if parts is None or _RENDER_OK.get(fkey) is not True:
        return None
    head = _HEADS.get(rkey, ())
    if head == ():
        cut = max((parts[0].rfind(t) + len(t) for t in _split_tokens(tokenizer) if t in parts[0]), default=-1)
        head = None
        if cut > 0:
            ids = tokenizer(parts[0][:cut], add_special_tokens=fmt.add_special_tokens)["input_ids"]
            head = (cut, list(ids))
        _lru_put(_HEADS, rkey, head)
    if head is None:
        return None
    cut, head_ids = head
    tail_text = parts[0][cut:] + answer + _close_answer(tokenizer, fmt, parts[1])
    tkey = (fkey, tail_text)
    tail = _TAILS.get(tkey)
    if tail is None:
        enc = tokenizer(tail_text, add_special_tokens=False, return_offsets_mapping=True)
        tail = (list(enc["input_ids"]), _labels(enc, tail_text, answer, fmt, answer_end(tokenizer, fmt)))
        _lru_put(_TAILS, tkey, tail)
    out = (head_ids + tail[0], [IGNORE_INDEX] * len(head_ids) + tail[1])
    if fkey not in _COMPOSE_OK:
        direct = _encode_direct(tokenizer, fmt, question, answer, system, image)
        _COMPOSE_OK[fkey] = out == direct
        return direct
    return out


def encode_once(
    tokenizer, fmt: ChatFormat, question: str, answer: str | None, system: str | None, image: bool
) -> tuple[torch.Tensor, torch.Tensor, dict[str, int]]:
    """(input_ids, labels, {placeholder: position}) of :func:`render_chat`'s text; cached per (tokenizer, format,
    template, texts). The supervised span is the last occurrence of ``answer`` + :func:`answer_end` in the text; with
    ``answer=None`` every label is -100. A new pair of known question and answer is composed from cached pieces
    (see ``_encode_composed``)."""
    template = getattr(tokenizer, "chat_template", None) or fmt.template
    key = (_tok_key(tokenizer), fmt, template, question, answer, system, image)
    hit = _ENCODE_CACHE.get(key)  # (the key's _tok_key is this tokenizer's alone: no identity check, no reference)
    if hit is not None:
        _ENCODE_CACHE.move_to_end(key)
        return hit
    got = None if answer is None else _encode_composed(tokenizer, fmt, question, answer, system, image)
    id_list, label_list = got if got is not None else _encode_direct(tokenizer, fmt, question, answer, system, image)
    pos = _placeholders(tokenizer, fmt, id_list, image)
    out = (torch.tensor(id_list, dtype=torch.long), torch.tensor(label_list, dtype=torch.long), pos)
    _lru_put(_ENCODE_CACHE, key, out)
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


_ASSEMBLED: OrderedDict = OrderedDict()  # whole samples by (texts, placeholder counts, device): LRU, cloned out
_ASSEMBLED_MAX = 8192


def _check_more(more) -> tuple[tuple[str, str], ...]:
    """``more`` as a tuple of ``(question, answer)`` string pairs, checked: a string of two characters unpacked into a
    question and an answer of one character each, and None became the text "None"."""
    if isinstance(more, (str, bytes)) or not isinstance(more, Iterable):
        raise TypeError(f"more must be a sequence of (question, answer) pairs, got {type(more).__name__} {more!r}")
    turns = []
    for k, turn in enumerate(more):
        if (
            isinstance(turn, (str, bytes))
            or not isinstance(turn, Sequence)
            or len(turn) != 2
            or not all(isinstance(x, str) for x in turn)
        ):
            raise TypeError(
                f"more[{k}] must be a (question, answer) pair of strings, got {type(turn).__name__} {turn!r}: "
                "pass more=[(question, answer), ...]"
            )
        turns.append((turn[0], turn[1]))
    return tuple(turns)


def build_sample(
    tokenizer,
    fmt: ChatFormat,
    question: str,
    answer: str | None,
    system: str | None,
    video_tokens: int,
    image_tokens: int | None = None,
    device: torch.device | str | None = None,
    type_ids: dict[str, int] | None = None,
    more: Sequence[tuple[str, str]] = (),
) -> dict[str, torch.Tensor]:
    """1-D LongTensors ``input_ids``, ``attention_mask`` (all 1) and ``labels`` of one sample whose user turn shows
    one video with ``video_tokens`` placeholders, preceded by one image with ``image_tokens`` placeholders unless
    that is None. ``more``: later ``(question, answer)`` turns of a multi-turn conversation (text only; every answer
    supervised: :func:`encode_turns`; needs ``answer``). ``tokenizer`` may be the processor. ``device``: assemble
    there, from the pre-tokenized pieces kept on that device (copied once per distinct text, then only the
    placeholder runs are made).
    ``type_ids``: also ``mm_token_type_ids``, ``type_ids[token]`` at each placeholder of ``token``, 0 elsewhere.

    Samples repeat (a task has a few thousand distinct texts and a few frame counts), so the assembled tensors
    are kept (least recently used dropped) and each call returns fresh copies of them."""
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    if not hasattr(tokenizer, "apply_chat_template"):
        raise TypeError(
            f"tokenizer must be the checkpoint's tokenizer or processor (transformers), got {type(tokenizer).__name__}"
        )
    for name, value, may_be_none in (("question", question, False), ("answer", answer, True), ("system", system, True)):
        if not (isinstance(value, str) or (may_be_none and value is None)):
            raise TypeError(f"{name} must be a string{' or None' if may_be_none else ''}, got {type(value).__name__}")
    if image_tokens is not None:  # a float or bool count was a torch error about sizes
        image_tokens = check_int("image_tokens", image_tokens, min_value=1)
    dev = None if device is None else torch.device(device)
    template = getattr(tokenizer, "chat_template", None) or fmt.template
    tkey = None if type_ids is None else tuple(sorted(type_ids.items()))
    more = _check_more(more)
    if more and answer is None:
        raise ValueError("later turns (more) need the first turn's answer")
    key = (
        _tok_key(tokenizer),
        fmt,
        template,
        question,
        answer,
        system,
        video_tokens,
        image_tokens,
        str(dev),
        tkey,
        more,
    )
    hit = _ASSEMBLED.get(key)
    if hit is not None:
        _ASSEMBLED.move_to_end(key)
        return {k: v.clone() for k, v in hit.items()}
    if more:
        ids, labels, pos = encode_turns(tokenizer, fmt, ((question, answer), *more), system, image_tokens is not None)
    else:
        ids, labels, pos = encode_once(tokenizer, fmt, question, answer, system, image_tokens is not None)
    if dev is not None and dev != ids.device:
        ids, labels = _on_device(ids, labels, dev)
    counts = {fmt.video_token: video_tokens, fmt.image_token: image_tokens}
    out = expand_placeholders(tokenizer, ids, labels, pos, counts)
    if type_ids is not None:
        mm = torch.zeros_like(out["input_ids"])
        for tok, v in type_ids.items():
            mm[out["input_ids"] == tokenizer.convert_tokens_to_ids(tok)] = v
        out["mm_token_type_ids"] = mm
    _lru_put(_ASSEMBLED, key, out, _ASSEMBLED_MAX)
    return {k: v.clone() for k, v in out.items()}
