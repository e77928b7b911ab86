"""Scoring model answers against ``meta`` (docs/tasks.md, Scoring): exact score in {0, 1} and a partial score in [0, 1].

Parsing tolerates case, spacing and surrounding words ("There are 7 frames." scores as 7; "yes, it is" as
Yes). An answer that states several different options ("Yes or No", "7 or 8", "Frames 2-3, 4-5", "first, second
or same", a list of every region) states none and parses as None: it scores 0 whichever option is true (as a
verifiable reward, hedging must not pay). Parsing never raises on a string. Both scores are pure functions of
(answer text, meta), so they also serve as verifiable rewards.

``in_form`` says whether an answer is written exactly in the canonical form the question asks for (the lenient
parsers above read much more): reports show its share next to each accuracy, and the strict accuracy (correct and in
form), so a reader sees how much of an accuracy rests on the lenient parsing.

The package by concern: ``count`` (parse_count), ``span`` (parse_span), ``_common`` (what they share: numbers,
hedges, the final-answer marker); the other parsers, the scores and the reward here.
"""

from __future__ import annotations

import re

from sf2t.tasks import templates
from sf2t.tasks.scoring._common import _int, after_final_answer
from sf2t.tasks.scoring.count import parse_count
from sf2t.tasks.scoring.span import parse_span

__all__ = [
    "parse_count",
    "parse_yes_no",
    "parse_consistency",
    "parse_span",
    "parse_positions",
    "parse_speed",
    "score",
    "partial_score",
    "truth_text",
    "in_form",
    "reward",
    "kendall_score",
]

_YES_NO_RE = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def parse_yes_no(text: str) -> bool | None:
    """True when ``text`` says a standalone "yes", False when it says "no" (case-insensitive); None when it says
    neither or both ("Yes or No", "yes/no", "Yes. No."). A "no" before a word ("there is no shuffle", "no idea")
    is not the answer No, unless it opens the answer ("No it is not"; "no idea" never is)."""
    t = after_final_answer(text)
    said = set()
    for m in _YES_NO_RE.finditer(t):
        if m.group(1).lower() == "no":
            rest = t[m.end() :]
            before_a_word = re.match(r"[ \t]+[^\W\d_]", rest) is not None
            if before_a_word and (t[: m.start()].strip() or re.match(r"\s+(?:idea|clue)\b", rest, re.IGNORECASE)):
                continue
        said.add(m.group(1).lower() == "yes")
    return said.pop() if len(said) == 1 else None


_CELL_RE = re.compile(
    r"\b(?:(top|upper|bottom|lower)[\s_-]*(left|right)|(top|upper|bottom|lower|left|right|center|centre|middle))\b",
    re.IGNORECASE,
)
_CANON = {"upper": "top", "lower": "bottom", "centre": "center", "middle": "center"}


_SAME_RE = re.compile(r"\bidentical\b|\bsame\b|\bno differences?\b|\bexact copy\b|\bunchanged\b")
_NOT_SAME_RE = re.compile(r"\bdiffer|\bnot\b|n't\b|\bnever\b")
# a sameness that leaves a region out: "the same except for ...", "but ...", "... the rest is identical"
_EXCEPT_RE = re.compile(
    r"\b(?:except|apart from|other than|aside from|save for|besides|but|however|only|the rest|elsewhere|"
    r"everything else|otherwise|remaining)\b"
)


def parse_consistency(text: str) -> tuple[str, str | None] | None:
    """("identical", None), ("whole", None) or ("cell", name) from free text, or None when unparseable or when it
    states more than one of them ("Identical. Different: top-left.", a list of every region, "center-left": two
    cells). "Identical" / "same" / "no difference" count in a clause that does not negate them or say "different"
    ("not identical", "they aren't the same"), and not when a region is named as the exception ("the same except for
    the top-left", "the same, but the top-left changed": the region)."""
    t = after_final_answer(text).lower()
    said = set()
    if re.search(r"\bwhole\b|\bentire\b|\ball of\b|\bcompletely\b", t):
        said.add(("whole", None))
    for m in _CELL_RE.finditer(t):
        if m.group(1):
            said.add(("cell", f"{_CANON.get(m.group(1), m.group(1))}-{m.group(2)}"))
        else:
            said.add(("cell", _CANON.get(m.group(3), m.group(3))))
    regions = bool(said)
    for clause in re.split(r"[.,;:!?\n]|\bbut\b", t):
        # ("no difference" says identical: its "differ" is no negation)
        if _SAME_RE.search(clause) and not _NOT_SAME_RE.search(re.sub(r"\bno differences?\b", "", clause)):
            if not (regions and _EXCEPT_RE.search(t)):  # "the same except for the top-left": the top-left differs
                said.add(("identical", None))
        elif re.search(
            r"\b(?:identical|same)\s+or\s+(?:\w+\s+)?differ|\bdiffer\w*\s+or\s+(?:\w+\s+)?(?:identical|same)", clause
        ):
            said |= {("identical", None), ("different", None)}  # both options offered: no answer
    return said.pop() if len(said) == 1 else None


def parse_positions(text: str) -> list[int] | None:
    """All integers in ``text`` in order ("2, 4, 1, 3" or "2 4 1 3" or "[2,4,1,3]"), or None if there are none."""
    nums = [_int(x) for x in re.findall(r"(?<![\w.])\d+", after_final_answer(text))]
    return nums or None


_PART = r"\b(first|1st|second|2nd)\b"
_OPTION = r"\b(first|1st|second|2nd|same|equal|neither|identical)\b"
# options offered, not chosen: "first, second or same", "the first or the second part", "same/first"
_OPTIONS_LISTED = re.compile(_OPTION + r"(?:\s+(?:one|part|half))?\s*(?:,\s*or\b|,|/|\bor\b)\s*(?:the\s+)?" + _OPTION)
_NOT_OPTION = re.compile(r"(?:\bnot|n't)\s+(?:the\s+)?" + _OPTION)
_NEGATION = re.compile(r"\bnot\b|n't\b|\bnever\b")
# (a part said to be faster: that part; said to be slower: the other one)
_COMPARISONS = (
    (re.compile(r"\b(?:faster|quicker|higher speed)\b"), True),
    (re.compile(r"\b(?:slower|lower speed)\b"), False),
)


def parse_speed(text: str) -> str | None:
    """ "first", "second" or "same" (also "1st", "2nd", "equal", "neither") from free text, or None. A part said to
    be faster (in the same clause: "the second part is faster") wins; else one said to be slower gives the other
    ("the first part is slower, ..."); a negated clause ("the first is not faster") says neither. Else the first
    of the words above ("part 1" too; "the first and second parts" name neither); None when the options are listed
    ("first, second or same", "the first or the second") or one is negated ("not the first")."""
    t = re.sub(r"\bpart\s*(?:1|one)\b", "first part", after_final_answer(text).lower())  # "part 1 is faster"
    t = re.sub(r"\bpart\s*(?:2|two)\b", "second part", t)
    clauses = re.split(r"[.,;:!?\n]|\bbut\b|\bwhile\b|\bwhereas\b", t)
    negated = False
    for words, same_part in _COMPARISONS:
        for clause in clauses:
            m = re.search(_PART, clause)  # (then a word after it: "part.*word" was quadratic on "first " * 8000)
            m = m if m and words.search(clause, m.end()) else None
            if m and _NEGATION.search(clause):
                negated = True  # "the first is not faster": slower, or the same?
            elif m:
                first = m.group(1) in ("first", "1st")
                return "first" if first == same_part else "second"
    if negated:
        return None
    if _OPTIONS_LISTED.search(t) or _NOT_OPTION.search(t):
        return None
    # the option named first ("the second part, since the first skips frames": the other part is the comparison);
    # both parts named together name neither ("the first and second parts play at the same speed")
    m = re.search(_OPTION, re.sub(r"\b(?:first|1st|second|2nd)\s+and\s+(?:the\s+)?(?:first|1st|second|2nd)\b", "", t))
    if m is None:
        return None
    w = m.group(1)
    return "first" if w in ("first", "1st") else "second" if w in ("second", "2nd") else "same"


def kendall_score(got: list[int], truth: list[int]) -> float:
    """1 - (discordant pairs / all pairs) between two orders of the same items (normalised Kendall tau in [0, 1]);
    0 when ``got`` is not a permutation of ``truth``'s items."""
    if sorted(got) != sorted(truth) or len(truth) < 2:
        return float(got == truth)
    rank = {v: i for i, v in enumerate(got)}
    r = [rank[v] for v in truth]
    n = len(r)
    disc = sum(1 for i in range(n) for j in range(i + 1, n) if r[i] > r[j])
    return 1.0 - disc / (n * (n - 1) / 2)


def truth_text(meta: dict) -> str:
    """The canonical answer text, re-derived from ``meta`` (the templates' ``*_answer``, as the tasks write it)."""
    task, ans = meta["task"], meta["answer"]
    if task == "counting":
        return templates.counting_answer(ans["count"])
    if task == "disorder":
        return templates.disorder_answer(ans["in_order"])
    if task == "consistency":
        return templates.consistency_answer(ans["kind"], ans.get("cell"))
    if task == "localization":
        return templates.localization_answer(ans["start"], ans["end"])
    if task == "rearrangement":
        return templates.rearrangement_answer(ans["positions"])
    if task == "speed":
        return templates.speed_answer(ans["faster"])
    raise ValueError(f"unknown task {task!r}")


# per task: the parser of free answers, and the canonical answer text of the value it reads (sf2t.tasks.templates)
_FORMS = {
    "counting": (parse_count, templates.counting_answer),
    "disorder": (parse_yes_no, templates.disorder_answer),
    "consistency": (parse_consistency, lambda v: templates.consistency_answer(*v)),
    "localization": (parse_span, lambda v: templates.localization_answer(*v)),
    "rearrangement": (parse_positions, templates.rearrangement_answer),
    "speed": (parse_speed, templates.speed_answer),
}


def in_form(task: str, text: str, meta: dict) -> bool:
    """Whether ``text``, stripped of surrounding whitespace (a trailing newline too), is exactly the canonical answer
    text (sf2t.tasks.templates: "7", "Yes.", "Different: top-left.", "Frames 3-5.", "2, 4, 1, 3", "first") of the
    value the task's lenient parser reads from it: False when it reads None. "There are 7 frames.", "7 frames, I
    think", "**7**", "seven", "yes" and "Final answer: 7" parse as answers but are not in form. A wrong answer may be
    in form ("8" when the count is 7). sf2t's generation already cuts an answer before its end token, so no end token
    is stripped. Pure, like ``score``: reports give the share of answers in form and the strict accuracy (correct and
    in form) next to each accuracy, as a measure of how much of it rests on the lenient parsing."""
    if task != meta.get("task", task):
        raise ValueError(f"in_form: task {task!r} but meta is for {meta['task']!r}")
    if task not in _FORMS:
        raise ValueError(f"unknown task {task!r}")
    parse, canonical = _FORMS[task]
    got = parse(text)
    return got is not None and str(text or "").strip() == canonical(got)


def _num_frames(meta: dict) -> int | None:
    """The number of frames the question showed (``meta["params"]["num_frames"]``, as the tasks write it), or None:
    parse_span reads "from frame 5 to the end" as 5 to that last frame."""
    n = (meta.get("params") or {}).get("num_frames")
    return int(n) if isinstance(n, int) or (isinstance(n, str) and n.isdigit()) else None


def score(task: str, answer_text: str, meta: dict) -> float:
    """Exact score: 1.0 when the parsed answer equals the truth in ``meta``, else 0.0."""
    if task != meta.get("task", task):
        raise ValueError(f"score: task {task!r} but meta is for {meta['task']!r}")
    if task == "counting":
        return float(parse_count(answer_text) == int(meta["answer"]["count"]))
    ans = meta["answer"]
    if task == "disorder":
        got = parse_yes_no(answer_text)
        return float(got is not None and got == bool(ans["in_order"]))
    if task == "consistency":
        return float(parse_consistency(answer_text) == (ans["kind"], ans.get("cell")))
    if task == "localization":
        return float(parse_span(answer_text, _num_frames(meta)) == (int(ans["start"]), int(ans["end"])))
    if task == "rearrangement":
        return float(parse_positions(answer_text) == [int(p) for p in ans["positions"]])
    if task == "speed":
        return float(parse_speed(answer_text) == ans["faster"])
    raise ValueError(f"unknown task {task!r}")


def partial_score(task: str, answer_text: str, meta: dict) -> float:
    """Partial credit for reports: counting 1 - |n - F| / F clipped to [0, 1]; localization the temporal IoU of
    the spans; rearrangement the normalised Kendall tau (``kendall_score``); other tasks as ``score``."""
    if task == "counting":
        n, f = parse_count(answer_text), int(meta["answer"]["count"])
        return 0.0 if n is None else max(0.0, min(1.0, 1.0 - abs(n - f) / f))
    if task == "localization":
        got = parse_span(answer_text, _num_frames(meta))
        if got is None or got[0] > got[1]:
            return 0.0
        a, b = int(meta["answer"]["start"]), int(meta["answer"]["end"])
        inter = max(0, min(b, got[1]) - max(a, got[0]) + 1)
        return inter / (max(b, got[1]) - min(a, got[0]) + 1)
    if task == "rearrangement":
        got = parse_positions(answer_text)
        return 0.0 if got is None else kendall_score(got, [int(p) for p in meta["answer"]["positions"]])
    return score(task, answer_text, meta)


def _completion_text(c) -> str:
    """The answer text of a completion: a string, a chat message dict, or a list of messages (TRL's formats)."""
    if isinstance(c, str):
        return c
    if isinstance(c, dict):
        content = c.get("content", "")
        if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
            return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)
    if isinstance(c, (list, tuple)):
        msgs = [m for m in c if isinstance(m, dict) and m.get("role", "assistant") == "assistant"]
        return _completion_text(msgs[-1]) if msgs else ""
    raise TypeError(f"a completion must be a string or chat messages, got {type(c).__name__}")


def reward(completions, meta, *, partial: bool = False, **kwargs) -> list[float]:
    """Verifiable rewards for a batch: one float per completion, scored against its ``meta`` (docs/tasks.md).

    Usable as a TRL-style reward function (``reward_funcs=[sf2t.tasks.reward]``): TRL passes ``completions``
    and the dataset's columns as keyword arguments, so a dataset with a ``meta`` column works as is. A
    completion may be a string or chat messages. ``partial=True`` gives partial credit (``partial_score``)."""
    if isinstance(meta, dict):
        meta = [meta] * len(completions)
    if len(meta) != len(completions):
        raise ValueError(f"reward: {len(completions)} completions but {len(meta)} metas")
    fn = partial_score if partial else score
    return [fn(m["task"], _completion_text(c), m) for c, m in zip(completions, meta)]
