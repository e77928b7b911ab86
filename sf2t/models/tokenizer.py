"""A small, deterministic, in-process trained Qwen2-style byte-level BPE tokenizer.

The tokenizer mirrors Qwen2's pipeline exactly (NFC normaliser, Qwen2's split regex that isolates every
digit, byte-level pre-tokenisation without prefix space, byte-level decoder), so that transformers'
``Qwen2Tokenizer`` rebuilds the very same tokenizer when it loads the saved ``tokenizer.json``.  Only the
vocabulary is tiny (~1.3k entries), trained on an embedded corpus of video question/answer text.

Special tokens follow Qwen2-VL's order and are appended after the BPE vocabulary (as in Qwen2-VL, where
they sit at ids 151643..151656).
"""

from __future__ import annotations

import itertools
from functools import lru_cache

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

# Same regex as transformers.models.qwen2.tokenization_qwen2.PRETOKENIZE_REGEX: ``\p{N}`` alone => one
# token per digit.
QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
VISION_PAD = "<|vision_pad|>"
IMAGE_PAD = "<|image_pad|>"
VIDEO_PAD = "<|video_pad|>"

# Qwen2-VL's special tokens, in Qwen2-VL's id order.
SPECIAL_TOKENS: tuple[str, ...] = (
    ENDOFTEXT,
    IM_START,
    IM_END,
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    VISION_START,
    VISION_END,
    VISION_PAD,
    IMAGE_PAD,
    VIDEO_PAD,
)

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

# Qwen2-VL-*-Instruct's chat template (verbatim).
QWEN2_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

DEFAULT_BPE_VOCAB_SIZE = 1536  # BPE entries (bytes + merges); special tokens come on top.


def _corpus() -> list[str]:
    """Deterministic embedded training corpus (video QA + generic chat)."""
    colors = ["red", "green", "blue", "yellow", "white", "black", "orange", "purple", "gray", "pink"]
    shapes = ["circle", "square", "triangle", "star", "box", "ball", "dot", "object", "shape", "block"]
    regions = ["top-left", "top-right", "bottom-left", "bottom-right", "center", "left", "right", "top", "bottom"]
    ordinals = ["first", "second", "third", "fourth", "last", "same"]
    motions = ["moving", "moves", "left", "right", "up", "down", "static", "still", "rotating", "appears", "disappears"]
    lines: list[str] = []
    # numbers 0..99 in many textual contexts (tokenised digit by digit)
    for n in range(100):
        lines += [
            f"{n}.",
            f"There are {n} frames.",
            f"Frame {n}.",
            f"The answer is {n}.",
            f"It appears {n} times.",
            f"Count: {n}",
        ]
    for a, b in itertools.combinations(range(0, 16), 2):
        lines += [f"Frames {a}-{b}.", f"From frame {a} to frame {b}.", f"Frame {a} and frame {b}."]
    questions = [
        "How many frames are in this video?",
        "How many frames does the clip have?",
        "How many times does the {c} {s} appear?",
        "How many {c} {s}s are in the video?",
        "Which frame shows the {c} {s}?",
        "Which frames are different?",
        "Which frames were shuffled?",
        "In which frames does the {c} {s} appear?",
        "Is frame {i} the same as frame {j}?",
        "Are frames {i} and {j} the same?",
        "Are these two frames the same or different?",
        "Is the video played forward or backward?",
        "Is the video reversed?",
        "Is this clip in the correct order?",
        "Which clip comes first?",
        "Which segment happens first, the first or the second?",
        "What is the correct order of the clips?",
        "Where is the difference between frame {i} and frame {j}?",
        "Where is the {c} {s} in frame {i}?",
        "What color is the {s}?",
        "What shape is moving?",
        "In which direction is the {c} {s} moving?",
        "Does the {c} {s} move {m}?",
        "Did anything change between frame {i} and frame {j}?",
        "Which frames contain the event?",
        "Describe what happens in the video.",
        "Watch the video and answer the question.",
        "Answer with a single number.",
        "Answer with yes or no.",
        "Answer with the frame numbers.",
    ]
    answers = [
        "Yes.",
        "No.",
        "Frames {i}-{j}.",
        "Frame {i}.",
        "{n}.",
        "The first.",
        "The second.",
        "The same.",
        "Same.",
        "Different: {r}.",
        "Different.",
        "The {c} {s} is in the {r}.",
        "The {c} {s} is moving {m}.",
        "Forward.",
        "Backward.",
        "The video is reversed.",
        "The video is played forward.",
        "The order is {i}, {j}, {n}.",
        "First the {c} {s} appears, then it moves {m}.",
    ]
    k = 0
    for q in questions:
        for c, s in itertools.product(colors, shapes):
            k += 1
            i, j, n = k % 16, (k * 7) % 16 + 1, k % 100
            m, r = motions[k % len(motions)], regions[k % len(regions)]
            lines.append(q.format(c=c, s=s, i=i, j=j, m=m, n=n))
            lines.append(answers[k % len(answers)].format(c=c, s=s, i=i, j=j, m=m, n=n, r=r))
    for r in regions:
        lines += [f"Different: {r}.", f"The change is in the {r} corner.", f"Look at the {r} region."]
    for o in ordinals:
        lines += [f"The {o}.", f"The {o} clip.", f"The {o} frame.", f"{o.capitalize()}."]
    chat = [
        "You are a helpful assistant.",
        "Hello! How can I help you today?",
        "Please answer the question about the video.",
        "Sure, here is the answer.",
        "Thank you for the question.",
        "I am not sure, but I think the answer is yes.",
        "The video shows a simple synthetic scene with colored shapes on a plain background.",
        "What do you see in this image?",
        "Please describe the image in detail.",
        "The user asks a question and the assistant answers it.",
        "Let me think step by step.",
        "Okay, I will count the frames one by one.",
        "This is a video of moving objects.",
        "Can you tell me what happens before and after?",
        "There is nothing different between the two frames.",
        "The objects move from left to right and then from top to bottom.",
    ]
    lines += chat * 20
    # generic English: deterministic pseudo-random sentences over a small word list
    words = (
        "the a an this that these those it he she they we you I is are was were be been being have has had do "
        "does did will would can could should may might must not and or but if then so because while when where "
        "what which who whom whose why how all any each every some many much more most few less least one two "
        "three four five six seven eight nine ten zero number numbers count counting counted order ordered "
        "sequence sequences video videos clip clips frame frames image images picture pictures scene scenes "
        "object objects shape shapes color colors colour position positions region regions corner corners "
        "motion moving move moves moved direction speed fast slow time times before after during between "
        "first second third last next previous same different difference differences change changes changed "
        "question questions answer answers answered correct incorrect true false right wrong yes no maybe "
        "please thank thanks sorry hello hi help helpful assistant user system model language vision look "
        "see seen watch watched show shows shown appear appears appeared disappear find found choose choice "
        "select pick tell say said think thought know known describe described explain given give take make "
        "made start end beginning middle shuffle shuffled reverse reversed forward backward play played "
        "segment segments part parts whole event events action actions person people car dog cat ball box "
        "table room background foreground left right top bottom center up down above below inside outside "
        "near far small large big little bright dark light new old good bad best better simple hard easy "
        "here there now again also only just very really still already even about around across through "
        "into onto over under with without from to of in on at by for as like than such other another"
    ).split()
    state = 12345
    for _ in range(3000):
        n = 5 + state % 9
        ws = []
        for _ in range(n):
            state = (1103515245 * state + 12345) % (2**31)
            ws.append(words[(state >> 8) % len(words)])
        sent = " ".join(ws)
        lines.append(sent[0].upper() + sent[1:] + (".", "?", "!", ",")[state % 4])
    return lines


def train_bpe_tokenizer(vocab_size: int = DEFAULT_BPE_VOCAB_SIZE) -> Tokenizer:
    """Train a Qwen2-style byte-level BPE ``tokenizers.Tokenizer`` (no special tokens added yet)."""
    from sf2t._checks import check_int

    vocab_size = check_int("vocab_size", vocab_size, min_value=1)
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return tok


@lru_cache(maxsize=4)
def _trained_vocab_merges(vocab_size: int) -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, str], ...]]:
    import json

    data = json.loads(train_bpe_tokenizer(vocab_size).to_str())
    vocab = tuple(sorted(data["model"]["vocab"].items(), key=lambda kv: kv[1]))
    merges = tuple(tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in data["model"]["merges"])
    return vocab, merges


def build_tokenizer(vocab_size: int = DEFAULT_BPE_VOCAB_SIZE):
    """Return a transformers fast tokenizer (``Qwen2Tokenizer`` when available) with Qwen2-VL's special
    tokens, ``eos = pad = <|endoftext|>`` (as in Qwen2-VL's tokenizer_config), and Qwen2-VL's chat template.

    Note: like the real Qwen2-VL tokenizer, eos is ``<|endoftext|>``; the generation config uses
    ``<|im_end|>`` as an extra stop token.
    """
    return build_qwen2_tokenizer(SPECIAL_TOKENS, QWEN2_VL_CHAT_TEMPLATE, vocab_size)


def build_qwen2_tokenizer(specials, chat_template: str, vocab_size: int = DEFAULT_BPE_VOCAB_SIZE):
    """The trained byte-level BPE as a Qwen2 tokenizer: ``specials[0]`` (``<|endoftext|>``) is eos and pad and gets
    the first id after the BPE vocabulary, the other ``specials`` follow in order as additional special tokens."""
    from tokenizers import AddedToken

    vocab_items, merges = _trained_vocab_merges(vocab_size)
    vocab = dict(vocab_items)
    special = [AddedToken(t, special=True, normalized=False) for t in specials]
    common = dict(
        unk_token=None,
        bos_token=None,
        eos_token=specials[0],
        pad_token=specials[0],
        model_max_length=32768,
        padding_side="right",
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
    )
    try:
        from transformers import Qwen2Tokenizer

        tok = Qwen2Tokenizer(vocab=vocab, merges=list(merges), **common)
    except Exception:  # pragma: no cover - fallback for transformers without the v5 Qwen2Tokenizer API
        from transformers import PreTrainedTokenizerFast

        backend = train_bpe_tokenizer(vocab_size)
        backend.add_special_tokens([special[0]])
        tok = PreTrainedTokenizerFast(tokenizer_object=backend, **common)
    # <|endoftext|> already got the first id after the BPE vocab (eos/pad); the others follow in order,
    # registered as additional special tokens like in Qwen2-VL's tokenizer_config.
    tok.add_special_tokens({"additional_special_tokens": special[1:]})
    tok.chat_template = chat_template
    return tok
