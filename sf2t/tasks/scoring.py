"""Scoring model answers against ``meta`` (docs/tasks.md, Scoring): exact score in {0, 1} and a partial score in [0, 1].

Parsing tolerates case, spacing and surrounding words ("There are 7 frames." scores as 7; "yes, it is" as
Yes). An answer that states several different options ("Yes or No", "7 or 8", "Frames 2-3, 4-5", "first, second
or same", a list of every region) states none and parses as None: it scores 0 whichever option is true (as a
verifiable reward, hedging must not pay). Parsing never raises on a string. Both scores are pure functions of
(answer text, meta), so they also serve as verifiable rewards.
"""

from __future__ import annotations

import re

from sf2t.finevidbench.choice import after_final_answer  # ("Final answer: 8": read as sf2t eval reads answers)

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
    "reward",
    "kendall_score",
]

_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
}
# a number (its decimals too: "7.5" is no count of 7, "12.0" is 12) or a number word
_NUMBER = r"(?<![\w.])[-+]?\d+(?:\.\d+)?|\b(?:" + "|".join(_NUMBER_WORDS) + r")\b"
_INT_RE = re.compile(_NUMBER, re.IGNORECASE)
_YES_NO_RE = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def _int(digits: str) -> int:
    """An integer from a run of digits; a run longer than 18 digits (a degenerate generation: Python refuses past
    4300) is capped at +-10**18, which no answer equals."""
    body = digits.lstrip("+-")
    if len(body) <= 18:
        return int(digits)
    return -(10**18) if digits.startswith("-") else 10**18


def _count_value(tok: str) -> int | None:
    tok = tok.lower()
    if tok in _NUMBER_WORDS:
        return _NUMBER_WORDS[tok]
    whole, _, frac = tok.partition(".")
    return _int(whole) if frac.strip("0") == "" else None


# a second number offered as an alternative: "7 or 8", "7/8", "2, 3, 4", "7, maybe 8", "six (or maybe seven)",
# "Six. Or maybe seven.", "Six... perhaps seven" (an "or" or a hedge word after any punctuation; bounded runs: linear)
_COULD_BE = r"(?:(?:but|though|although)\s+)?(?:it\s+)?(?:could|might|may)\s+(?:also\s+)?be"  # ("7, but it could be 8")
_HEDGE = r"(?:(?:maybe|perhaps|possibly|probably|likely|about|around|even|" + _COULD_BE + r")\s+){0,2}"
_SEP = (
    r"(?:\s*(?:,|/|;|\band\b)(?:\s*\bor\b)?|[\s.,;:(\[…—–-]{0,8}\bor\b"
    r"|[\s.,;:(\[…—–-]{1,8}(?=(?:maybe|perhaps|possibly|"
    + _COULD_BE
    + r")\s)|[ \t]+(?=\d))\s*"  # (and "1 2 3": counting aloud)
)
_ALTERNATIVE = re.compile(_SEP + _HEDGE, re.IGNORECASE)
# ... or after the unit, in the same clause: "8 frames or 9", "8 frames, maybe 9", "8 distinct frames or 9 frames"
_UNIT_THEN_ALTERNATIVE = re.compile(r"((?:[ \t]+[^\W\d_]+){1,3}?)" + _SEP + _HEDGE, re.IGNORECASE)
_NEXT_WORD = re.compile(r"[ \t]*([^\W\d_]+)")
# a stated conclusion, whose number is the count whatever came before it (a model counting aloud: "1, 2, 3. So 3
# frames."): "so 3 frames.", "the answer is 8", "answer: 8", "a total of 8", "8 frames in total"; one number each
_N = "(" + _NUMBER + ")"
_UNIT = r"(?:\s+(?:distinct|unique|different|separate|individual))?\s+(?:frames?|images?)"
_IN_TOTAL = r"\s+(?:in\s+total|total|altogether|overall|in\s+all)\b"
# (a clause may go on with its reason: "the answer is 8 because ...")
_CLAUSE_END = r"(?:\s*(?:[.!?,;:)(\n—–]|-\s|$)|\s+(?:because|since|as|given)\b)"
_IN_VIDEO = r"\s+(?:in\s+(?:the|this)\s+(?:given\s+)?(?:video|clip|fragment|sequence)\b|here\b)"
# what may follow the number "there are" concludes with: its unit, "in total", "in the video", "here" (in either order),
# then the clause's end ("there is 1 frame repeated", "there are 2 frames shown twice": a part of the count)
_COUNT_END = f"(?=(?:{_UNIT})?(?:(?:{_IN_TOTAL})?(?:{_IN_VIDEO})?|{_IN_VIDEO}{_IN_TOTAL}){_CLAUSE_END})"
# a number of frames that a verb goes on about is no conclusion ("the answer is 2 frames are repeated", "a total of 2
# frames show the dog": a part of the count)
_NO_CLAIM = (
    r"(?!\.?\d)(?!"
    + _UNIT
    + r"\s+(?:are|is|was|were|show|shows|showed|repeat|repeats|appear|appears|look|looks|have|has|had"
    r"|contain|contains|differ|differs|match|matches)\b)"
)
# a labelled result's number ends its sentence or line, maybe after its unit, "in total", "in the video" (not at a
# comma: "Count: 1, 2, 3, ..." counts aloud)
_LABEL_END = (
    f"(?=(?:{_UNIT})?(?:{_IN_TOTAL})?(?:{_IN_VIDEO})?" + r"(?:\s*(?:[.!?;)\n]|$)|\s+(?:because|since|as|given)\b))"
)
# (its number concludes unless a word naming another thing follows it: _concludes; after "so" it must end its clause
# as after "there are": "so 2 frames repeat", "so 2 of them repeat" say something about part of the frames)
_CONCLUSION = re.compile(
    "|".join(
        [
            r"\b(?:so|thus|therefore|hence|that(?:'s|’s|\s+is|\s+makes|\s+gives))\b,?\s+"
            r"(?:there\s+(?:are|is|were)\s+)?(?:(?:exactly|a\s+total\s+of)\s+)?" + _N + _COUNT_END,
            # "so 7 frames are shown"
            r"\b(?:so|thus|therefore|hence)\b,?\s+"
            + _N
            + f"(?={_UNIT}"
            + r"\s+(?:are|were)\s+(?:shown|displayed|presented)\b)",
            r"\banswer\s*(?:is\s*:?|:|=)\s*" + _N + _NO_CLAIM,
            r"\btotal\s*(?:of|is|:|=)\s*" + _N + _COUNT_END,
            # a labelled result: "Result: 9 frames.", "Count: 8", "The frame count is 8."
            r"\b(?:result|count)\s*(?:is\s*:?|:|=)\s*" + _N + _LABEL_END,
            # "8 frames in total", not a part of them ("visible in 6 frames in total", "3 frames in total show the cat")
            r"(?<!\bin\s)(?<!\bon\s)(?<!\bof\s)"
            + _N
            + f"(?={_UNIT}(?:{_IN_VIDEO})?{_IN_TOTAL}"
            + r"(?!\s+(?:show|shows|are|is|have|has|contain|contains|depict|depicts)\b))",
        ]
    ),
    re.IGNORECASE,
)
# a weaker one, read when there is no conclusion above: "there are 8 frames", "there are 8.", "there are 8 frames in
# this video." (not "there are 2 repeated frames", "there are 2 duplicates", "there is 1 frame repeated", "there are 2
# frames that repeat": a part of the count, which a count stated before it wins over)
_THERE_ARE = re.compile(
    r"\bthere\s+(?:are|is|were|was)\s+"
    r"(?:(?:actually|really|exactly|only|just|still|in\s+total|altogether|a\s+total\s+of)\s+)?" + _N + _COUNT_END,
    re.IGNORECASE,
)


def _singular(word: str) -> str:
    word = word.lower()
    return word[:-1] if word.endswith("s") else word


# a hedged second number ("8. Perhaps 9.", "8, possibly 9 frames") offers another count only when it reads as one: it
# ends its clause, maybe after the unit, "of them", "in total" or "in the clip" ("8, maybe 9 of them."), or goes on
# with a condition, a hedge or a further option ("9 if the first counts", "9 I think", "10 or 11"); "8. Perhaps 2 of
# them repeat.", "8, maybe 2 repeat", "8, maybe 2 seconds" say something about another thing
_NEW_SENTENCE = re.compile(r"[.!?…]")
_HEDGED = re.compile(
    _NEW_SENTENCE.pattern + r"|\b(?:maybe|perhaps|possibly|probably|likely|about|around|even|could|might|may)\b",
    re.IGNORECASE,
)
_COUNT_TAIL = re.compile(
    r"(?:\s+of\s+(?:them|those|these))?"
    r"(?:\s+(?:in\s+total|total|altogether|overall|in\s+all|in\s+(?:the|this)\s+(?:video|clip|sequence)))?"
    r"(?:\s*(?:[.!?,;:)\]…\n(—\"']|$)|\s+[-–]\s|\s+(?:if|depending|counting|including|when"
    r"|i\s+(?:think|guess|believe|suppose))\b)",
    re.IGNORECASE,
)
# a further option after the hedged number ("9. Maybe 10 or 11."): read its tail instead
_ONE_MORE = re.compile(r"\s*(?:/|-|–|\bor\b|\bto\b)\s*(?=[^\W_])", re.IGNORECASE)
_UNIT_RE = re.compile(_UNIT, re.IGNORECASE)
_OR = re.compile(r"\bor\b", re.IGNORECASE)


def _offers_count(text: str, pos: int, new_sentence: bool) -> bool:
    """Whether a hedged number ending at ``pos`` is another count of the frames, not a remark on something else: see
    _COUNT_TAIL, read after any further options ("10 or 11"). With the unit and words after it, it is one in the same
    sentence ("7, maybe 8 frames are shown") but not in a sentence of its own ("6. Perhaps 2 frames show the same
    pose.")."""
    for _ in range(3):  # ("8. Maybe 2 or 3 of them repeat." is a remark: 3's tail decides; bounded: linear)
        more = _ONE_MORE.match(text, pos)
        nxt = _INT_RE.match(text, more.end()) if more else None
        if nxt is None:
            break
        pos = nxt.end()
    unit = _UNIT_RE.match(text, pos)
    if _COUNT_TAIL.match(text, unit.end() if unit else pos):
        return True
    return unit is not None and not new_sentence


# a range's joint, right after a number: "8-9", "8–9", "7 - 8", "7 to 8" (a range when its second number is larger:
# "8 – 2 of them repeat" is a clause's dash)
_RANGE_AFTER = re.compile(r"(?:[ \t]*[-–][ \t]*|[ \t]+to[ \t]+)", re.IGNORECASE)


def _alternative(text: str, end: int, n: int | None) -> re.Match | None:
    """The number different from ``n`` that follows position ``end`` as an alternative, or None: right after it ("7 or
    8"), or after its unit when that second number has no unit or the same one ("8 frames or 9", "1 frame or 2
    frames"; not "8 frames, 2 seconds", "8 frames, 2 of them repeated", "8 frames, numbered 1 to 8"). After a hedge
    word or a sentence's end the second number must read as a count of the frames (_offers_count): "8. Or maybe 9." is
    two options, "8. Perhaps 2 of them repeat." is 8."""
    rng = _RANGE_AFTER.match(text, end)  # ("8-9 frames", "7 to 8 frames in total": a range offers both)
    nxt = _INT_RE.match(text, rng.end()) if rng else None
    if nxt is not None and n is not None and (_count_value(nxt.group(0)) or 0) > n:
        return nxt
    sep = _ALTERNATIVE.match(text, end)
    nxt = _INT_RE.match(text, sep.end()) if sep else None
    if nxt is not None:
        if _count_value(nxt.group(0)) == n:
            return None
        joint = sep.group(0)
        offered = not _HEDGED.search(joint) or _offers_count(text, nxt.end(), bool(_NEW_SENTENCE.search(joint)))
        return nxt if offered else None
    after_unit = _UNIT_THEN_ALTERNATIVE.match(text, end)
    nxt = _INT_RE.match(text, after_unit.end()) if after_unit else None
    if nxt is None or _count_value(nxt.group(0)) == n:
        return None
    joint = text[after_unit.end(1) : after_unit.end()]
    if _HEDGED.search(joint):
        return nxt if _offers_count(text, nxt.end(), bool(_NEW_SENTENCE.search(joint))) else None
    # the second number's words against the whole unit ("4 frames per second and 16 frames in total": no option)
    words, pos = [], nxt.end()
    for _ in after_unit.group(1).split():
        word = _NEXT_WORD.match(text, pos)
        if word is None:
            break
        words.append(_singular(word.group(1)))
        pos = word.end()
    if words and words == [_singular(w) for w in after_unit.group(1).split()]:
        # the same unit, then words that say more than a count ("6 frames; 2 frames are duplicates") after anything
        # but "or": a remark on part of the frames ("1 frame or 2 frames are shown" stays two options)
        return nxt if _OR.search(joint) or _COUNT_TAIL.match(text, pos) else None
    # no unit: an option when it ends as a count does ("8 frames or 9", "8 frames, 9 if you count the blank one"; not "8
    # frames at 2-second intervals") or, after "or", goes on with a linking word ("8 frames, or 9 I think"; not "8
    # frames or 2 seconds of video", "2 people, 3 people or 4 frames")
    if _COUNT_TAIL.match(text, nxt.end()):
        return nxt
    first = _NEXT_WORD.match(text, nxt.end())
    linking = first is not None and first.group(1).lower() in _LINKING_WORDS
    return nxt if _OR.search(joint) and linking else None


# the end of a range of frame numbers ("frames 0 to 7", "0-7"): no count, so no option beside the count after it
_RANGE_BEFORE = re.compile(r"\d\s*(?:-|–|\bto|\bthrough)\s*$", re.IGNORECASE)


def _alternative_to_before(text: str, start: int) -> bool:
    """Whether the number at ``start`` is itself the second of two options ("7 or 8 frames in total", "7, maybe 8
    frames in total"): the number before it, in a short window (linear on long texts), has it as its alternative. The
    end of a range is none ("Frames 0 to 7, 8 frames in total." is 8)."""
    before = list(_INT_RE.finditer(text, max(0, start - 48), start))
    if not before:
        return False
    prev = before[-1]
    if _RANGE_BEFORE.search(text[max(0, prev.start() - 16) : prev.start()]):
        return False
    alt = _alternative(text, prev.end(), _count_value(prev.group(0)))
    return alt is not None and alt.start() == start


# words that may follow a count of the frames without naming another thing ("8 is my answer", "8 in total", "7 for
# this video", "7 here", "8 or 9")
_LINKING_WORDS = frozenset(
    "is are was were be in of and or if as to for with but so because since given then total altogether overall "
    "maybe perhaps possibly probably more again here there now i".split()
)
# the unit, maybe after up to two words that keep the number a count of all the frames ("8 frames", "8 consecutive
# frames", "8 video frames", "Eight key frames", "8 still images"): an allow-list, since any other word may make it a
# part of them ("2 repeated frames", "2 of the frames") or a count of another thing ("3 times between frames 2 and 6",
# "2 seconds frames are static")
_WHOLE_WORDS = (
    "consecutive|successive|sequential|key|video|still|sampled|distinct|unique|separate|individual|different|total"
    "|input|extracted|selected|given|whole|original|clip|visible|displayed|shown|image"
)
_NEAR_UNIT = r"(?:[ \t]+(?:" + _WHOLE_WORDS + r")\b){0,2}\s+(?:frames?|images?)\b"
_NEAR_UNIT_RE = re.compile(_NEAR_UNIT, re.IGNORECASE)
# a number of frames ("10 frames", "twelve distinct images", "8 consecutive frames")
_FRAMES_N = re.compile(_N + f"(?={_NEAR_UNIT})", re.IGNORECASE)
# a frame's or a step's label: a number right after "frame", "step" or "#" ("Frame 4 is the same as frame 3", "Step 1:
# count the frames." count nothing; "#" only right before a digit: "# 8" is a markdown heading), or after a label and
# a range's or list's joint ("Frames 0 to 7", "frames 3 and 4", "frames 1, 2, 3"; a window of 64 characters keeps it
# linear)
_LABEL = r"(?:\b(?:frames?|steps?)[ \t]*#?|#)"
_LABEL_JOINT = r"[ \t]*(?:-|–|,[ \t]*(?:(?:and|or)\b)?|\b(?:to|through|until|and|or)\b)[ \t]*#?"
_LABEL_BEFORE = re.compile(_LABEL + "$", re.IGNORECASE)
_LABEL_LIST_BEFORE = re.compile(_LABEL + r"\d+(?:" + _LABEL_JOINT + r"\d+)*" + _LABEL_JOINT + "$", re.IGNORECASE)
# a factor or term of a product or sum ("2*4 = 8 frames", "a 2*4 grid", "a 3x3 grid", "4 + 5 = 9 frames": markdown's
# other asterisks are removed first)
_FACTOR_AFTER = re.compile(r"\*\d|[ \t]*[x×+][ \t]*\d")
_FACTOR_BEFORE = re.compile(r"\d[ \t]*[*x×+][ \t]*$")
# the pronoun "one" ("the last one", "the odd one out"; not "only one frame"), no number
_ONE_BEFORE = re.compile(
    r"\b(?:the|a|this|that|each|which|last|next|previous|same|other|odd|only|every|any|no)[ \t]+$", re.IGNORECASE
)


def _is_label(text: str, start: int, end: int) -> bool:
    """Whether the number at ``start:end`` names a frame or is no count at all: a frame's label (a number of frames
    after a list of labels is none: "frames 3 and 4, 8 frames in total"), a factor of a product, the pronoun "one"."""
    if _LABEL_BEFORE.search(text, max(0, start - 12), start):
        return True
    if _LABEL_LIST_BEFORE.search(text, max(0, start - 64), start) and not _NEAR_UNIT_RE.match(text, end):
        return True
    if _FACTOR_AFTER.match(text, end) or _FACTOR_BEFORE.search(text, max(0, start - 6), start):
        return True
    if text[start:end].lower() != "one" or _NEAR_UNIT_RE.match(text, end):  # ("only one frame" is a count)
        return False
    return _ONE_BEFORE.search(text, max(0, start - 16), start) is not None


# words that make "N <word> frames" not a count of all the frames: a part of them, a preposition, another unit
_NOT_AN_ADJECTIVE = (
    r"in|on|at|between|across|over|from|to|per|with|for|within|out|among|during|through|and|or|but|of|times?|"
    r"seconds?|secs?|minutes?|people|persons?|scenes?|shots?|repeated|repeating|duplicated?|duplicates?|same|"
    r"identical|more|other|extra|additional|missing|similar"
)
# "8 grayscale frames", "10 blurry frames": one or two describing words, then the unit
_DESCRIBED_UNIT = re.compile(
    r"(?:[ \t]+(?!(?:" + _NOT_AN_ADJECTIVE + r")\b)[^\W\d_][\w-]*){1,2}[ \t]+(?:frames?|images?)\b", re.IGNORECASE
)


def _counts_another_thing(text: str, end: int) -> bool:
    """Whether the number ending at ``end`` is followed by a word other than the unit (_NEAR_UNIT) or a linking word,
    so counts another thing ("4 seconds", "2 people", "3 times", "2 repeats", "2 repeated ones")."""
    word = _NEXT_WORD.match(text, end)
    if word is None or _NEAR_UNIT_RE.match(text, end) or word.start(1) == end:
        return False
    if _DESCRIBED_UNIT.match(text, end):  # ("8 grayscale frames", "12 low-resolution frames": a count of frames)
        return False
    return word.group(1).lower() not in _LINKING_WORDS


def _concludes(text: str, end: int) -> bool:
    """Whether a conclusion's number ending at ``end`` is the count: it ends its clause or goes on with its unit or a
    word that names no other thing ("the answer is 7 here", "so the answer is 7 frames shown"); not "the answer is 2
    repeats", "so 2 of them repeat" (a part of the count)."""
    word = _NEXT_WORD.match(text, end)
    return not _counts_another_thing(text, end) and not (word and word.group(1).lower() == "of")


# a number said not to be the count ("Not 7, it's 8.", "It's not 7 but 8 frames.", "isn't exactly 7", "I don't think
# it's 7", "I don't think the answer is 7", "I wouldn't say 7", "It doesn't look like 7 frames") and a bound, no count
# ("At least 8 frames.", "more than 5", "up to 10")
_NEGATED_BEFORE = re.compile(
    r"(?:\bnot|n't|n’t|\bnever)[ \t]+(?:(?:have|has|see|show|shows|count|contain|contains)[ \t]+"
    r"|(?:(?:think|believe|say)[ \t]+(?:that[ \t]+)?|(?:look|seem)[ \t]+(?:like|to[ \t]+be)[ \t]+)"
    r"(?:(?:it|there|the[ \t]+(?:answer|count|total))[ \t]*(?:'s|’s|is|are|was|were|'re|would[ \t]+be)[ \t]+)?)?"
    r"(?:(?:exactly|quite|just|only|even|really)[ \t]+)?$",
    re.IGNORECASE,
)
_BOUND_BEFORE = re.compile(
    r"(?:\bat[ \t]+(?:least|most)|\b(?:more|fewer|less)[ \t]+than|\bupwards[ \t]+of"
    r"|(?<!\bcount\s)(?<!\bcounted\s)(?<!\bcounting\s)(?<!\bgo\s)(?<!\bgoes\s)(?<!\bwent\s)(?<!\bnumbered\s)"
    r"\bup[ \t]+to)"
    r"[ \t]+$",
    re.IGNORECASE,
)
# a part of the frames that a clause goes on to count ("in the first half there are 4", "of these, there are 2",
# "among them there are 3"): its "there are N" concludes nothing
_PART_BEFORE = re.compile(
    r"(?:\b(?:in|during|within|among|of|for)\s+(?:the\s+|these\s+|those\s+)?(?:first|second|last|final|middle|other|"
    r"latter|former|remaining|later|earlier)\b|(?<!\ball\s)(?<!\beach\s)(?<!\bboth\s)(?<!\bany\s)"
    r"\b(?:of|among)\s+(?:them|these|those|which)\b)(?:(?!\b(?:but|yet|though|although)\b)[^.!?;\n]){0,40}$",
    re.IGNORECASE,
)


def _passed_over(text: str, start: int) -> bool:
    """Whether the number at ``start`` is said not to be the count ("not 7", "doesn't have 7") or is a bound ("at
    least 8", "more than 5"), no count."""
    return (
        _NEGATED_BEFORE.search(text, max(0, start - 48), start) is not None
        or _BOUND_BEFORE.search(text, max(0, start - 24), start) is not None
    )


# a part of the frames: "2 of them", "2 of the frames", "the first 2 frames", "the last 2 frames"
_PART_AFTER = re.compile(r"[ \t]+of[ \t]+(?:them|these|those|the)\b", re.IGNORECASE)
_PART_NUMBER_BEFORE = re.compile(r"\b(?:first|last|next|other|remaining|final|initial|middle)[ \t]+$", re.IGNORECASE)


def _is_part(text: str, start: int, end: int) -> bool:
    """Whether the number at ``start:end`` counts a part of the frames ("2 of them", "the last 2 frames")."""
    return bool(_PART_AFTER.match(text, end) or _PART_NUMBER_BEFORE.search(text, max(0, start - 12), start))


# an ordered list's item number, at a line's start ("1. Look at each frame.\n2. Count them: 8 frames."): a list when
# the number before or after it numbers another line
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*>][ \t]*)?(\d{1,3})[.)][ \t]+(?=\S)", re.MULTILINE)


def _list_items(text: str) -> set[int]:
    """The start of every ordered list item number in ``text`` (one pass: linear)."""
    items = [(int(m.group(1)), m.start(1)) for m in _LIST_ITEM.finditer(text)]
    numbers = {n for n, _ in items}
    return {at for n, at in items if n - 1 in numbers or n + 1 in numbers}


# units that never count images: a lone number of them is no count ("The answer is 3 seconds.", "It bounces 3 times.")
_OTHER_UNIT = re.compile(
    r"[ \t]+(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|milliseconds?|ms|fps|times)\b", re.IGNORECASE
)


# markdown emphasis, not a "*" between digits (a product: "2*4")
_EMPHASIS = re.compile(r"(?<!\d)\*+|\*+(?!\d)")


def parse_count(text: str) -> int | None:
    """The count ``text`` states, or None (docs/tasks.md, parse_count, lists the rules and their known limits).

    1. A stated conclusion gives its number, whatever numbers came before it ("1, 2, 3. So 3 frames." is 3): after
       "the answer is" unless a word naming another thing, or its unit and a verb, follows it (_concludes,
       _NO_CLAIM: "the answer is 7 here" and "... 7 frames shown" are 7, "the answer is 2 repeats" and "... 2
       frames are repeated" are none), before "frames in total", or after "so" / "that's" / "total of" / "total:"
       when it ends its clause, maybe after its unit, "in total", "in the video", "here", or after "Result:" /
       "Count:" when it ends its sentence or line; failing those, "there are N" ending its clause likewise ("8
       frames. There is 1 frame repeated." is 8: a part of the count).
    2. Otherwise the first number that is not a frame's or a step's label ("Frame 4 is the same as frame 3", "Frames
       0 to 7 are shown", "Step 1:" count nothing; _is_label: nor do a product's factors, "2*4", and the pronoun "the
       last one") nor an ordered list's item number, unless it is one of a list, counts a part of the frames ("2 of
       them", "the last 2 frames") or counts another thing ("4 seconds", "2 people"): then the first number of all
       the frames after it ("8 consecutive frames", "Eight key frames"); failing that, a part's number is the count,
       a number of seconds or times none ("The answer is 3 seconds.").
    Any number must be whole ("7.5 frames" is None) and offer no alternative ("7 or 8", "8 frames, maybe 9", "7 or 8
    frames in total", "8 frames, though it could be 9"; not the end of a range: "Frames 0 to 7, 8 frames in total." is
    8); a range offers both ends ("Around 8-9 frames.", "7 to 8 frames in total" are None); conclusions that differ
    give None. A number after "not" (or "I don't think it's") and a bound are passed over ("Not 7, it's 8." is 8; "At
    least 8 frames." alone is None), and a "there are N" about a part ("in the first half there are 4") concludes
    nothing. Markdown emphasis (``**7**``) is ignored, a "*" between digits kept."""
    text = _EMPHASIS.sub("", after_final_answer(text))
    for conclusion in (_CONCLUSION, _THERE_ARE):  # ("There is 1 frame repeated, so 8 frames in total." is 8)
        stated = set()
        for m in conclusion.finditer(text):
            at, end = m.span(m.lastindex)
            if conclusion is _CONCLUSION and not _concludes(text, end):
                continue
            if _FACTOR_AFTER.match(text, end):  # ("the answer is 2*4 = 8": a product)
                continue
            if _passed_over(text, at):  # ("I don't think the answer is 7")
                continue
            # ("in the first half there are 4": a part's "there are", not "..., so the total is 8")
            if conclusion is _THERE_ARE and _PART_BEFORE.search(text, max(0, m.start() - 80), m.start()):
                continue
            n = _count_value(m.group(m.lastindex))
            # ("7 or 8 frames in total": 8 is one of two options, no conclusion)
            alternative = _alternative(text, end, n) is not None or _alternative_to_before(text, at)
            stated.add(None if n is None or alternative else n)
        if stated:  # (conclusions that differ, "The answer is 7. The answer is 8.", are several options)
            return stated.pop() if len(stated) == 1 else None
    # (a number said not to be the count, or a bound, is passed over: "Not 7, it's 8." is 8, "At least 8 frames; I
    # count exactly 8." is 8, "At least 8 frames." is None; so is an ordered list's item number)
    items = _list_items(text)
    m = next(
        (
            m
            for m in _INT_RE.finditer(text)
            if not _is_label(text, m.start(), m.end()) and not _passed_over(text, m.start()) and m.start() not in items
        ),
        None,
    )
    if m is None:
        return None
    n = _count_value(m.group(0))
    listed = _alternative(text, m.end(), n) is not None
    if not listed and not _is_part(text, m.start(), m.end()) and not _counts_another_thing(text, m.end()):
        return n
    # the first number is one of a list ("1 2 3 ... twelve frames"), counts a part of the frames ("2 of them", "the
    # first 2 frames") or another thing ("4 seconds", "2 people", "3 times"): a later number of all the frames is the
    # count ("The video is 4 seconds long and has 10 frames."; not "the last 2 frames")
    frames = next(
        (
            f
            for f in _FRAMES_N.finditer(text, m.end())
            if not _passed_over(text, f.start(1)) and not _is_part(text, f.start(1), f.end(1))
        ),
        None,
    )
    if frames is not None:
        nf = _count_value(frames.group(1))
        alternative = _alternative(text, frames.end(1), nf) is not None or _alternative_to_before(text, frames.start(1))
        return None if nf is None or alternative else nf
    # else the first number, unless it is one of a list or a number of seconds or times ("The answer is 3 seconds.")
    return None if listed or _OTHER_UNIT.match(text, m.end()) else n


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


# ("the 3 frame to the 5 frame": an ordinal's "frame" may come after its number, after "the" only: "moves for 2
# frames until frame 5" names no span 2-5)
_SPAN_RE = re.compile(
    r"(?<!\d)(?:(?<=\bthe\s)(\d++)\s*frames?\b|(\d++))\s*(?:-|–|to|through|and|until|\.{2,3}|…)\s*(?:the\s+)?(?:frames?\s*)?(\d+)",
    re.IGNORECASE,
)
_ORDINALS = {
    w: i
    for i, w in enumerate(
        "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth fourteenth "
        "fifteenth sixteenth seventeenth eighteenth nineteenth twentieth".split(),
        start=1,
    )
}
# a frame named by its ordinal: "3rd", "#3", or a word next to "frame" or a span's joint ("the third to the fifth
# frame", "second to fourth frames", "ends at the fifth"; not "the second half", "First, ...", "at first")
_DIGIT_ORDINAL = re.compile(r"(?<![\w.])#?(\d+)(?:st|nd|rd|th)?\b", re.IGNORECASE)
_SPAN_JOINT = r"(?:-|–|\b(?:to|through|until|and)\b)"
_ORDINAL_WORD = r"(" + "|".join(_ORDINALS) + r")\b"
_WORD_ORDINAL = re.compile(
    r"\b"
    + _ORDINAL_WORD
    + r"(?=\s*(?:frames?\b|"
    + _SPAN_JOINT
    + r"|,\s*(?:(?:and|or)\s+)?(?:"
    + "|".join(_ORDINALS)
    + r")\b))"
    r"|(?<![\w-])((?:to|through|until|and)\s+(?:the\s+)?|at\s+the\s+|[-–]\s*(?:the\s+)?"
    r"|(?:end|finish|stop|leave|disappear|vanish)\w{0,5}\s+after\s+the\s+)" + _ORDINAL_WORD,
    re.IGNORECASE,
)
# "starts at frame 3 and ends at frame 5", "starting at frame 3 and ending at 5", "appears in the second frame and
# leaves at the fifth": the span 3-5 (a bounded gap: linear)
# (also "enters in frame 4 and exits in frame 8", "first appears in frame 4 and is last seen in frame 8", "appears in
# frame 4 and stays until frame 8", "comes into view at frame 3", "is visible from frame 2", "doesn't appear until
# frame 3", "exits the frame at frame 6", "until the end (frame 8)"; the end may follow in the next sentence when it
# opens with "It" or "The target": "first appears in frame 3. It is last seen in frame 6.")
_SCENE = r"(?:\s+(?:the\s+)?(?:scene|frame|view|picture|video|screen))?"
_START_END = re.compile(
    r"(?:\b(?:(?:start|begin|appear|enter|emerge)\w{0,5}" + _SCENE + r"|shows?\s+up"
    r"|c[ao]m\w{0,3}\s+into\s+(?:view|sight|(?:the\s+)?(?:frame|scene|picture))"
    r"|first\s+(?:seen|visible|shown)|(?:(?:is|are|was|becomes?|became)\s+)?(?:visible|present|on\s+screen))"
    r"\s+(?:at|with|from|in|on)"
    r"|(?:\b(?:does|do|did|is|was)(?:n't|n’t|\s+not)|\bnot)\s+(?:appear|show\s+up|enter|(?:become|be)\s+visible|visible"
    r"|come\s+into\s+view)\s+(?:until|till))"
    r"\s+(?:the\s+)?(?:frames?\s*)?(\d+)[^\d.!?;]{0,40}?"
    r"(?:[.;!]\s+(?:(?:then|later|finally|and),?\s+)?(?:it|the\s+(?:target|patch|object))\b[^\d.!?;]{0,40}?)?"
    r"\b(?:(?:end|finish|stop|leave|disappear|vanish|exit)\w{0,5}" + _SCENE + r"\s+(?:at|with|in|on|after)"
    r"|last\s+(?:seen|visible|shown|appears?)\s+(?:at|in|on)"
    r"|(?:remain|stay)\w{0,3}(?:\s+(?:visible|there|present|on\s+screen))?\s+(?:until|till|through)"
    r"|is\s+(?:still\s+)?(?:visible|there|present|on\s+screen)\s+(?:until|till|through)"
    r"|(?:go|goes|went|gone|move|moves|moved|pass|passes|passed)\s+out\s+of\s+(?:view|sight|(?:the\s+)?frame)"
    r"\s+(?:at|in|on|after)"
    r"|(?:does|do|did)(?:n't|n’t|\s+not)\s+(?:disappear|vanish|leave|exit)\s+(?:until|till)"
    r"|is\s+(?:gone|no\s+longer\s+(?:visible|there|present|seen|shown))\s+(?:after|by|in|at|from|on)"
    r"|(?:until|till|through|to)\s+the\s+(?:very\s+)?(?:end|(?:last|final)\s+frame)(?:\s+of\s+the\s+(?:video|clip|sequence))?)"
    r"[\s(,:—–]+(?:the\s+)?(?:frames?\s*)?(\d+)(?!\d)(?!\s*frames\b)",
    re.IGNORECASE,
)
# an end said as the first frame the target is gone from ("is gone by frame 7", "is gone in frame 7", "is no longer
# visible in frame 7"): it was last visible in the frame before (as "is gone after frame 6", "disappears at frame 6"
# and "goes out of view at frame 6" say 6)
_GONE_BY = re.compile(
    r"\b(?:gone|longer\s+\w+)\s+(?:by|in|at|from|on)[\s(,:—–]+(?:the\s+)?(?:frames?\s*)?\d+$", re.IGNORECASE
)
# a span said as labelled fields: "Start: 2, End: 5", "start frame 2, end frame 5", "First frame: 2. Last frame: 5",
# '{"start_frame": 2, "end_frame": 5}' (a label, maybe "frame", then ":", "=" or "is", or "frame" and a space: "the
# first 2 frames ... the last 3" is none); read only when no other span is named ("The first frame is 1 and the last
# frame is 8. The target appears in frames 3-5." is (3, 5)); whitespace runs never meet (linear)
_FIELD = r"(?:[ _]?frame)?(?:[\"']?[ \t]*(?:[:=]|\bis\b)[ \t]*|(?<=frame)[ \t]+)(?:frame[ \t]*)?(\d+)"
_FIELDS = re.compile(
    r"\b(?:start(?:ing)?|begin(?:ning)?|first)" + _FIELD + r"[^\d!?]{0,24}?\b(?:end(?:ing)?|last|final)" + _FIELD,
    re.IGNORECASE,
)
# "the first frame is 1 ... the last frame is 8" says the clip's own ends when a frame is named elsewhere ("The target
# is in frame 4 only."): those fields are no span ("Start: 2, End: 5. Frame 2 shows it entering." is (2, 5))
_THE_FIRST = re.compile(r"(?:\bthe|['’]s|\bits)[ \t]+$", re.IGNORECASE)
_FRAME_NAMED = re.compile(r"\bframes?[ \t]*#?\d", re.IGNORECASE)


def _fields_as_span(text: str) -> str:
    """``text`` with labelled fields as the span "frames a-b" (_FIELDS), or without them when they are the clip's own
    first and last frame (_THE_FIRST, and a frame named outside them)."""
    fields = list(_FIELDS.finditer(text))
    if not fields:
        return text
    outside = "".join(
        text[a.end() if a else 0 : b.start() if b else len(text)] for a, b in zip([None, *fields], [*fields, None])
    )
    named = _FRAME_NAMED.search(outside) is not None
    return _FIELDS.sub(
        lambda m: (
            ""  # (not even their words: "first frame" would read as frame 1)
            if named and m.group(0)[:5].lower() == "first" and _THE_FIRST.search(text, max(0, m.start() - 8), m.start())
            else _start_end_span(m)
        ),
        text,
    )


# a digit span that names no frames: one of another unit ("about 1-2 seconds in", "(2-3 seconds)") or the frames'
# numbering ("frames are numbered 1-8")
_NO_FRAME_SPAN = re.compile(
    r"\bnumbered\s+(?:from\s+)?\d+\s*(?:-|–|to|through|until)\s*\d+"
    r"|(?<![\w.])\d+\s*(?:-|–|to|through|until|and)\s*\d+(?=\s*(?:%|(?:seconds?|secs?|s|minutes?|mins?|ms|hours?"
    r"|people|persons?|times|percent|fps|meters?|m)\b))",
    re.IGNORECASE,
)
# ordinal words that name a span by "to", "-", "through" or "until" ("the third to the fifth frame")
_ORDINAL_SPAN = re.compile(
    r"\b" + _ORDINAL_WORD + r"(?:\s+frames?)?\s*(?:-|–|\b(?:to|through|until)\b)\s*(?:the\s+)?" + _ORDINAL_WORD,
    re.IGNORECASE,
)


def _span_text(text: str) -> str:
    """``text`` with frames named by ordinals as numbers ("3rd" and "#3" as 3, "the third to the fifth frame" as "the
    3 to the 5 frame") and a span said by its start and end ("starts at frame 3 and ends at frame 5") as "frames
    3-5"; digit spans of another unit or of the numbering are dropped ("(2-3 seconds)", "(frames are numbered 1-8)").
    Ordinal words joined by "and" are read only when the digits name no span: "The first and second frames are
    static; the motion is in frames 3-5." is (3, 5)."""
    text = _NO_FRAME_SPAN.sub("", _DIGIT_ORDINAL.sub(r"\1", text))
    text = _START_END.sub(_start_end_span, text)
    if not _SPAN_RE.search(text):
        text = _fields_as_span(text)
    if _SPAN_RE.search(text) and not _ORDINAL_SPAN.search(text):
        return _drop_absent(text)
    text = _WORD_ORDINAL.sub(
        lambda m: str(_ORDINALS[m.group(1).lower()]) if m.group(1) else m.group(2) + str(_ORDINALS[m.group(3).lower()]),
        text,
    )
    return _drop_absent(_START_END.sub(_start_end_span, text))


# after a span, another frame number ("Frames 1-2, 3-5", "3-5-7"; not a count: "Frames 3-5; 3 frames in total")
# (or after a hedge, in a sentence or brackets of its own: "Frames 3-5. Or maybe 4-6.", "frames 3-5 (maybe 3-6)",
# "Frames 3-5, but it could be 4-6")
_SPAN_HEDGE = r"(?:maybe|perhaps|possibly|probably|" + _COULD_BE + ")"
_SPAN_MORE = re.compile(
    r"(?:\s*(?:,|/|;|\bor\b|\band\b|-|–)(?:\s*\bor\b)?|[\s.,;:(\[…—–-]{0,8}(?:\bor\b|(?=" + _SPAN_HEDGE + r"\s)))"
    r"\s*(?:" + _SPAN_HEDGE + r"\s+){0,2}(?:(?:the\s+)?frames?\s*)?\d+(?!\d)(?!\s*frames?\b)",
    re.IGNORECASE,
)
_SPAN_LESS = re.compile(r"\d\s*(?:,|/|;|\bor\b)\s*(?:(?:the\s+)?frames?\s*)?$", re.IGNORECASE)
# frame numbers listed with commas ("frames 3, 4 and 5", "3,4,5") or as alternatives ("frames 3 or 4", "3/4")
_FRAME_LIST = re.compile(
    r"(?<![\w.])\d+(?:\s*(?:,\s*(?:and|or)\b|,|/|\bor\b)\s*(?:(?:the\s+)?frames?\s*)?\d+(?!\d))+"
    r"(?:\s*\band\s+(?:(?:the\s+)?frames?\s*)?\d+(?!\d))?",
    re.IGNORECASE,
)
_SPAN_NEXT = re.compile(r"\s*(?:-|–|to\b|through\b|until\b)", re.IGNORECASE)
# the number of frames after a span: "Frames 3-5/8" ("of 8" is no frame number to _SPAN_MORE already)
_SPAN_TOTAL = re.compile(r"\s*/\s*(\d+)(?!\d)(?!" + _SPAN_NEXT.pattern + ")", re.IGNORECASE)
# a single frame's number: not a number of frames ("moves for 2 frames until frame 5" is frame 5), but "the 3 frame"
# (an ordinal) is one
_SINGLE = re.compile(r"(?<![\w.])(?:(?<=\bthe\s)\d+|\d+(?!\d)(?!\s*frames\b))", re.IGNORECASE)
_BETWEEN = re.compile(r"\bbetween\s+(?:the\s+)?(?:frames?\s*)?$", re.IGNORECASE)


# the video's own start and end ("The clip starts at frame 1 and ends at frame 10."), not the target's
# (the clause's subject: "The clip starts ...", "The whole video itself ends ..."; not "The target in the video starts
# ...", "In this clip it appears ...")
_CLIP_BEFORE = re.compile(
    r"(?:^|(?<=[.!?;,:\n])|\band\b)\s*(?:(?:the|this|that|a|our|whole|entire|full|given)\s+){0,2}"
    r"(?:video|clip|sequence)(?:'s|’s)?\s+(?:(?:itself|also|then|only|just|now)\s+)?$",
    re.IGNORECASE,
)


# the clip as the subject of the end ("..., and the video ends at frame 8"): no end of the target's
_CLIP_ENDS = re.compile(
    r"(?:[.!?;,:]|\band\b|\bthen\b)\s*(?:then\s+)?(?:(?:the|this|that|whole|entire|full|given)\s+){0,2}"
    r"(?:video|clip|sequence)(?:'s|’s)?\s+"
    r"(?:(?:itself|also|then|only|just|now)\s+)?(?:end|finish|stop)",
    re.IGNORECASE,
)


def _start_end_span(m: re.Match) -> str:
    """A start-and-end match as the span "frames a-b"; when the video or clip is what starts and ends, its words
    without their frame numbers (they name no target's frames)."""
    if _CLIP_BEFORE.search(m.string, max(0, m.start() - 48), m.start()):
        return re.sub(r"\d+", "", m.group(0))
    if _CLIP_ENDS.search(m.group(0), m.end(1) - m.start()):  # ("appears in frame 3, and the video ends at frame 8")
        return f"frame {m.group(1)}" + re.sub(r"\d+", "", m.string[m.end(1) : m.end()])
    end = _int(m.group(2))
    if _GONE_BY.search(m.group(0), max(0, len(m.group(0)) - 40)):
        end = max(0, end - 1)
    return f"frames {m.group(1)}-{end}"


# frame numbers said where the target is not: a clause that negates its presence right before them ("The patch is
# not visible in frames 1-3; it appears in frames 4-6.", "absent from frame 2", "I can't see it in frames 1-2"; not
# "not visible at first and then appears in frames 3-5", "it doesn't move in frames 3-5") or after them, before the
# clause ends ("In frames 1-2 the target is not visible; in frames 3-5 it is.", "Frames 1-2: not visible."; not
# "... and is absent elsewhere")
_NUMBER_GROUP = re.compile(
    r"(?<![\w.])\d+(?:\s*(?:-|–|\.{2,3}|…|,\s*(?:and|or)\b|,|/|\b(?:to|through|until|and|or)\b)\s*(?:(?:the\s+)?frames?\s*)?"
    r"\d+(?!\d))*",
    re.IGNORECASE,
)
_PRESENCE = r"(?:visible|present|there|shown|seen|see|appear\w*|show\w*|contain\w*|detect\w*)\b"
_NOT = r"(?:\bnot|\bcannot|n't|n’t|\bnever)\s+(?!only\b)"
_NOT_VERB = r"(?:(?!(?:and|or|but|then|so)\b)\w+\s+){0,2}?"  # ("not clearly visible"; not "not move and appears")
_ABSENT_WORD = (  # (not "isn't hidden", "no longer hidden"; "partially hidden" is still visible)
    r"(?<!\bnot\s)(?<!\bnever\s)(?<!n't\s)(?<!n’t\s)(?<!\blonger\s)"
    r"(?<!\bpartially\s)(?<!\bpartly\s)(?<!\bhalf\s)(?<!\bslightly\s)(?<!\bsomewhat\s)"
    r"\b(?:absent|missing|invisible|hidden|gone|nowhere|out\s+of\s+(?:view|sight))\b"
)
_ABSENCE = (
    "(?:"
    + _NOT
    + r"(?:(?:in|on|at|within|during)\b|"
    + _NOT_VERB
    + _PRESENCE
    + r")|"
    + _ABSENT_WORD
    + r"|\bno\s+longer\b|\bno\s+(?:target|patch|object|image|picture|sign)\b"
    r"|\bwithout\s+(?:the\s+|a\s+|any\s+)?(?:target|patch|object)\b)"
)
_ABSENT_BEFORE = re.compile(
    _ABSENCE + r"(?:[ \t]+(?:it|them))?(?:[ \t]*:)?(?:[ \t]+(?:in|from|on|at|during|for|within))?"
    r"(?:[ \t]*:)?[ \t]+(?:the[ \t]+)?(?:frames?[ \t]*:?[ \t]*)?$",
    re.IGNORECASE,
)
_ELSEWHERE = (
    r"(?!\s+(?:elsewhere|otherwise|before|after|outside|anywhere|in\s+(?:the\s+)?(?:other|rest|remaining|any)))"
)
_ABSENT_AFTER = re.compile(
    "(?:"
    + _NOT
    + _NOT_VERB
    + _PRESENCE
    + "|"
    + _ABSENT_WORD
    # (not an attribute: "the previously hidden object", "the missing patch reappearing")
    + r"(?![ \t]+(?!(?:in|from|on|at|during|for|within|by|behind|under|again|now|here|there|entirely|completely|fully"
    r"|and|or|but|elsewhere|otherwise|before|after|outside|anywhere)\b)[^\W\d_])"
    # empty / blank ending the clause, or said of the frames ("Frames 1-2 are blank screens")
    r"|\b(?:empty|blank)\b(?=[\s:]*$)|(?:\bnot|n't|n’t)(?=[\s:]*$)|\b(?:are|is|were|was)\s+(?:\w+\s+)?(?:empty|blank)\s+(?:frames?|screens?|images?|scenes?)\b)"
    + _ELSEWHERE,
    re.IGNORECASE,
)
_TRAIL_END = re.compile(
    r"[.!?;,\n()\[\]—–]|\s-\s|\b(?:but|while|whereas|and|then|though|although|however|where|which|that|who|after)\b",
    re.IGNORECASE,
)


# an absence said as a heading ("Not visible:", "Frames where the target is not visible:", "## Target absent"): a
# line that ends with ":" (or a markdown heading) covers the list under it, the lines after it (blank ones skipped)
# that are list items ("- ...", "1. ...") or frame numbers alone ("Frames 1-2"), up to a line that ends with ":"
_ABSENT_HEADING = re.compile(
    r"^[ \t]*+(#++[ \t]*+)?(?:[-•+][ \t]+)?[^\d\n]{0,60}?" + _ABSENCE + r"[^\d\n:]{0,40}?(?(1)[ \t]*:?|:)[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_UNDER_HEADING = re.compile(
    r"\n(?:[ \t]*\n)*[ \t]*(?:(?:[-•+]|\d+[.)])[ \t]+[^\n]*|(?:frames?[ \t]*:?[ \t]*)?#?\d+"
    r"(?:[ \t]*(?:-|–|,|&|\b(?:and|to|through)\b)[ \t]*#?\d+)*[ \t]*[.;]?)(?<!:)(?=\n|$)",
    re.IGNORECASE,
)


def _absent_lists(text: str) -> list[tuple[int, int]]:
    """The stretches of ``text`` listed under an absence heading (_ABSENT_HEADING), in order."""
    out = []
    for heading in _ABSENT_HEADING.finditer(text):
        pos = heading.end()
        while line := _UNDER_HEADING.match(text, pos):
            out.append((line.start(), line.end()))
            pos = line.end()
    return out


# a bracket or a dash right after the numbers opens a comment on them ("Frames 1-2 (not visible)", "Frames 1-2 – target
# not visible"): an absence that ends it is theirs
_OPENER = re.compile(r"[ \t]*(?:[(\[—–]|-[ \t])")


def _drop_absent(text: str) -> str:
    """``text`` without the frame numbers a clause says the target is absent from (_ABSENT_BEFORE right before them,
    or _ABSENT_AFTER after them in their clause: a window of 80 characters, linear)."""
    out, last = [], 0
    groups = list(_NUMBER_GROUP.finditer(text))
    listed, j = _absent_lists(text), 0
    for k, g in enumerate(groups):
        while j < len(listed) and listed[j][1] <= g.start():
            j += 1
        if j < len(listed) and listed[j][0] <= g.start():  # (under an absence heading)
            out.append(text[last : g.start()])
            last = g.end()
            continue
        stop = min(groups[k + 1].start() if k + 1 < len(groups) else len(text), g.end() + 80)
        opener = _OPENER.match(text, g.end(), stop)
        end = _TRAIL_END.search(text, opener.end() if opener else g.end(), stop)
        after = _ABSENT_AFTER.search(text, g.end(), end.start() if end else stop)
        if after and k + 1 < len(groups) and _ABSENT_BEFORE.match(text, after.start(), groups[k + 1].start()):
            after = None
        if after and opener and text[after.end() : end.start() if end else stop].strip():
            after = None  # (in a bracket or after a dash: only an absence that ends it, "(not visible)")
        absent = _ABSENT_BEFORE.search(text, max(last, g.start() - 80), g.start()) or after
        out.append(text[last : g.start() if absent else g.end()])
        last = g.end()
    out.append(text[last:])
    return "".join(out)


# a concluding span ("..., so frames 3-5.", "Thus the target is visible in frames 3-5"): read from there on, as after a
# final answer (read after absences are dropped: "so frames 1-2 do not contain it" concludes nothing)
_SPAN_CONCLUSION = re.compile(
    r"\b(?:so|thus|therefore|hence|i\.e\.|that\s+is|meaning|in\s+other\s+words|in\s+short)(?:\s*[,:])?\s+"
    r"(?:[^\W\d_][\w'’]*+\s+){0,5}?frames?\s*:?\s*(\d+)\s*(?:-|–|to|through|until)\s*(?:frames?\s*)?(\d+)",
    re.IGNORECASE,
)


def parse_span(text: str) -> tuple[int, int] | None:
    """(a, b) from "Frames 3-5", "frames 3 to 5", "3 through 5", "from frame 3 to frame 5", "between frames 3 and 5",
    "frames 3 and 4" (neighbours), also with the number of frames after it ("Frames 3-5/8", "frames 3-5 of 8"); a
    single number n gives (n, n); consecutive frames listed ("frames 3, 4 and 5") give their span. None when the span
    is one of a list ("Frames 1-2, 3-5", "2 or 3-5") or runs on ("3-5-7"), or the frames named are alternatives
    ("frames 3 or 4") or not consecutive ("frames 3, 5", "frames 3 and 5": two frames, not a span). A reversed span
    ("Frames 5-3") is returned as said (it is not the canonical answer: it scores 0). Ordinals name frames ("3rd-5th",
    "from the third to the fifth frame"), and "starts at frame 3 and ends at frame 5" is (3, 5); spans of seconds and
    the frames' numbering are none ("(2-3 seconds)", "numbered 1-8"). Labelled fields name a span ("Start: 2, End: 5"),
    and frame numbers a clause says the target is absent from are not read ("not visible in frames 1-3; it appears in
    frames 4-6" is (4, 6)), nor those listed under an absence heading ("Not visible:" then "- Frames 1-2"). An end
    names the last frame the target is in ("disappears at 6", "is gone after 6"), but "is gone by / in 7" names the
    first without it (6). A concluding span ("..., so frames 3-5.") wins over what comes before it."""
    text = _span_text(after_final_answer(text).replace("*", ""))  # (markdown: "**Start frame:** 3")
    concluded = list(_SPAN_CONCLUSION.finditer(text))
    if len({c.groups() for c in concluded}) > 1:  # (conclusions that differ: "so frames 3-5 ... so frames 4-6")
        return None
    if concluded:
        text = text[concluded[-1].start() :]
    m = _SPAN_RE.search(text)
    listed = _FRAME_LIST.search(text)
    if listed and (m is None or listed.start() <= m.start()):  # ("3, 4 and 5": its "4 and 5" is no span)
        nums = [_int(x) for x in re.findall(r"\d+", listed.group(0))]
        alternatives = re.search(r"/|\bor\b", listed.group(0), re.IGNORECASE)
        if alternatives or _SPAN_NEXT.match(text, listed.end()) or nums != list(range(nums[0], nums[0] + len(nums))):
            return None
        return nums[0], nums[-1]
    if m:
        a, b = _int(m.group(1) or m.group(2)), _int(m.group(3))
        # "frames 3 and 5" names two frames, not the span 3-5: "and" joins a span only between neighbours ("frames 3
        # and 4") or after "between" ("between frames 3 and 5")
        joined_by_and = re.match(r"\d+\s*and\b", m.group(0), re.IGNORECASE)
        if joined_by_and and b != a + 1 and not _BETWEEN.search(text[max(0, m.start() - 24) : m.start()]):
            return None
        end = m.end()
        total = _SPAN_TOTAL.match(text, end)
        if total and _int(total.group(1)) >= max(a, b):  # "3-5/8": of 8 frames ("3-5/4" is a list, as "3-5/6-7")
            end = total.end()
        if _SPAN_MORE.match(text, end) or _SPAN_LESS.search(text, 0, m.start()):
            return None
        return a, b
    n = _SINGLE.search(text)
    return (_int(n.group(0)), _int(n.group(0))) if n else None


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
    """The canonical answer text, re-derived from ``meta``."""
    task, ans = meta["task"], meta["answer"]
    if task == "counting":
        return f"{ans['count']}"
    if task == "disorder":
        return "Yes." if ans["in_order"] else "No."
    if task == "consistency":
        k = ans["kind"]
        return (
            "Identical."
            if k == "identical"
            else "Different: whole frame."
            if k == "whole"
            else (f"Different: {ans['cell']}.")
        )
    if task == "localization":
        return f"Frames {ans['start']}-{ans['end']}."
    if task == "rearrangement":
        return ", ".join(str(p) for p in ans["positions"])
    if task == "speed":
        return ans["faster"]
    raise ValueError(f"unknown task {task!r}")


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
        return float(parse_span(answer_text) == (int(ans["start"]), int(ans["end"])))
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
        got = parse_span(answer_text)
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
