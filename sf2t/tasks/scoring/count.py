"""parse_count: the number of frames an answer states (docs/tasks.md, Scoring, parse_count)."""

from __future__ import annotations

import re

from sf2t.tasks.scoring._common import _COULD_BE, _INT_RE, _NUMBER, _NUMBER_WORDS, _int, after_final_answer


def _count_value(tok: str) -> int | None:
    tok = tok.lower()
    if tok in _NUMBER_WORDS:
        return _NUMBER_WORDS[tok]
    whole, _, frac = tok.partition(".")
    return _int(whole) if frac.strip("0") == "" else None


# a second number offered as an alternative: "7 or 8", "7/8", "2, 3, 4", "7, maybe 8", "six (or maybe seven)",
# "Six. Or maybe seven.", "Six... perhaps seven" (an "or" or a hedge word after any punctuation; bounded runs: linear)
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
            # a labelled result: "Result: 9 frames.", "Count: 8" (at a sentence's or line's start, maybe after a list
            # marker), "the count is 8" anywhere (after the or my, maybe then overall / correct / final / total / frame
            # / image: "so the count is 8", "and the overall count is 10"), "Frame count: 8", "Image count: 8", "Final
            # result: 8", "Total frames: 11" ("Duplicate count: 2.", "the duplicate count is 2" and "The result is 2."
            # label another thing)
            r"(?:(?:^|(?<=[.!?\n]))[ \t]*+(?:[-*>#]+[ \t]*+)?(?:result|count)"
            r"|\b(?:the|my)[ \t]+(?:(?:overall|correct|final|total|frame|image)[ \t]+)?count"
            r"|\b(?:frame|image|final|total)[ \t]+(?:result|count)|\btotal[ \t]+(?:frames|images))"
            r"\s*(?:is\s*:?|:|=)\s*" + _N + _LABEL_END,
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
    # ("9 I think." and "9 I think because ..." end its clause, and so does "9 I think as one is ...": "as" then a
    # clause, its subject and a verb; "3 I think show the dog", "2 I think as duplicates" and "2 I think because of
    # motion blur look the same" go on: "because of" and a few words, then the number's own verb and more words)
    r"(?:\s+i\s+(?:think|guess|believe|suppose)(?:\s+so)?\s+(?:because\b(?!\s+of(?:\s+[^\W\d_][\w'’-]*){1,3}?\s+"
    r"(?:look|looks|are|is|was|were|show|shows|appear|appears|repeat|repeats|seem|seems)[ \t]+[^\W\d_])|since\b|given\b"
    r"|as(?=(?:\s+[^\W\d_][\w'’-]*){1,3}?\s+(?:is|are|was|were)\b))"
    r"|(?:\s+i\s+(?:think|guess|believe|suppose)(?:\s+so)?\b)?"
    r"(?:\s*(?:[.!?,;:)\]…\n(—\"']|$)|\s+[-–]\s|\s+(?:if|depending|counting|including|when)\b))",
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
    # frames or 2 seconds of video", "2 people, 3 people or 4 frames"), but for each or every part or in a named one
    # ("8 frames, or 4 in each half", "10 frames, or 5 for each scene", "8 frames, or 4 in the first half")
    if _COUNT_TAIL.match(text, nxt.end()):
        return nxt
    first = _NEXT_WORD.match(text, nxt.end())
    linking = first is not None and first.group(1).lower() in _LINKING_WORDS
    return nxt if _OR.search(joint) and linking and not _PER_PART.match(text, nxt.end()) else None


# a number for each or every part of the frames, or in a named part ("4 in each half", "2 for every second", "4 in the
# first half", "4 in the first few frames", "6 in the other camera angle"; but "9 in the final count" / tally / total /
# answer / estimate / version / reading / number / interpretation / way / definition is another count)
_PER_PART = re.compile(
    r"[ \t]+(?:in|for|of|on|at|during|within)[ \t]+(?:each|every|(?:the[ \t]+)?(?:first|second|last|final|middle"
    r"|other|remaining)[ \t]+(?!(?:count|tally|total|answer|estimate|version|reading|number|interpretation|way"
    r"|definition|pass|passes|attempts?|scenarios?|cases?|analysis|look|glance|try|tries)\b)(?=\w))\b",
    re.IGNORECASE,
)


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

# a part of the frames (or a thing in them) that a clause's "the/my count is N" counts: "Among the blurry ones, the
# count is 3", "For the frames with the dog, my count is 4", "for the red car alone the count is 5" (not the whole
# video or clip)
_PART_PHRASE = re.compile(
    r"\b(?:among|for|within|(?<!\beach\s)(?<!\ball\s)(?<!\bevery\s)of)\s+(?:the|these|those|them)\b"
    r"(?!\s+(?:whole|entire|full|complete)\b)"
    r"[^.!?;\n]{0,60}$",
    re.IGNORECASE,
)
_THE_COUNT = re.compile(r"(?:the|my)[ \t]", re.IGNORECASE)


# the numbers of a list ending in "or" ("7 or 8", "6, 7, or 8", "6, 7 or 8"; not "7, 8": "Not 7, 8." corrects 7)
_LIST_JOINT = r"[ \t]*(?:,[ \t]*(?:or[ \t]+)?|or[ \t]+)"
_JOINED_BEFORE = re.compile("(?:" + _NUMBER + ")" + _LIST_JOINT + "$", re.IGNORECASE)
_JOINED_AFTER = re.compile(_LIST_JOINT + "(?:" + _NUMBER + ")", re.IGNORECASE)


def _not_a_count(text: str, start: int) -> bool:
    """Whether the number at ``start`` is itself said not to be the count or is a bound (see _passed_over)."""
    return bool(
        _NEGATED_BEFORE.search(text, max(0, start - 48), start) or _BOUND_BEFORE.search(text, max(0, start - 24), start)
    )


def _passed_over(text: str, start: int) -> bool:
    """Whether the number at ``start`` is said not to be the count ("not 7", "doesn't have 7") or is a bound ("at
    least 8", "more than 5"), no count; so is each number of a list ending in "or" whose first number is ("I don't
    think it's 7 or 8" passes over both, "Not 6, 7, or 8" all three; "Not 7, 8." only 7)."""
    if _not_a_count(text, start):
        return True
    near = text[max(0, start - 320) : start].lower()  # (no negation or bound near: no list to walk, the common case)
    if not any(w in near for w in ("not", "n't", "n’t", "never", "least", "most", "than", "upwards", "up")):
        return False
    first, joints = start, ""
    for _ in range(8):  # (a list of at most 8 numbers each way, bounded: linear)
        if not text[max(0, first - 8) : first].rstrip(" \t").lower().endswith((",", "or")):
            break  # (no joint right before it, without the search below)
        joined = _JOINED_BEFORE.search(text, max(0, first - 32), first)
        if joined is None:
            break
        first, joints = joined.start(), text[joined.start() : start]
    if first == start or not _not_a_count(text, first):
        return False
    pos = _INT_RE.match(text, start).end()
    for _ in range(8):
        joined = _JOINED_AFTER.match(text, pos)
        if joined is None:
            break
        joints, pos = joints + joined.group(0), joined.end()
    return _OR.search(joints) is not None


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


# units that never count images: a lone number of them is no count ("The answer is 3 seconds.", "It bounces 3 times.",
# "It lasts 4 s."; "4s" stays a number)
_OTHER_UNIT = re.compile(
    r"[ \t]+(?:seconds?|secs?|s|minutes?|mins?|hours?|hrs?|milliseconds?|ms|fps|times)\b", re.IGNORECASE
)


# a count labelled with another thing's name ("People count: 3", "The duplicate count is 2", "Car count = 4"; not
# "Frame count:", "Total count:", "My count:", "Let me count:"): the number counts that thing, not the frames
_OTHER_COUNT_BEFORE = re.compile(
    r"\b(?!(?:the|my|our|your|its|their|a|an|this|that|me|us|i|we|you|they|to|and|or|so|frames?|images?|final|total"
    r"|overall|correct|exact|actual|true|unique|distinct|answer)\b)[^\W\d_]+[ \t]+count[ \t]*(?:is[ \t]*:?|:|=)[ \t]*$",
    re.IGNORECASE,
)


# what says a number of frames is the whole clip's: "has 7 frames", "contains 7", "there are 7", "I count 7", "a total
# of 7" (not "2 frames look alike", "though 2 frames")
_WHOLE_CLIP_BEFORE = re.compile(
    r"\b(?:has|have|had|contains?|contained|consists[ \t]+of|shows?|showed|there[ \t]+(?:are|were)|count(?:ed)?|see|saw"
    r"|total[ \t]+of|totals?)[ \t]+(?:(?:only|exactly|just|about|a[ \t]+total[ \t]+of)[ \t]+)?$",
    re.IGNORECASE,
)


def _another_things_count(text: str, start: int, end: int) -> bool:
    """Whether the number at ``start:end`` follows another thing's count label and no unit follows it ("People count:
    3"; "Duplicate count: 2 frames" counts frames). The X of "X count" may be only an adjective ("Manual count: 9"):
    parse_count passes such a number over only for a later number of frames said of the whole clip
    (_WHOLE_CLIP_BEFORE)."""
    return bool(_OTHER_COUNT_BEFORE.search(text, max(0, start - 40), start)) and not _NEAR_UNIT_RE.match(text, end)


# markdown emphasis, not a "*" between digits (a product: "2*4")
_EMPHASIS = re.compile(r"(?<!\d)\*+|\*+(?!\d)")


def parse_count(text: str) -> int | None:
    """The count ``text`` states, or None (docs/tasks.md, parse_count, lists the rules and their known limits).

    1. A stated conclusion gives its number, whatever numbers came before it ("1, 2, 3. So 3 frames." is 3): after
       "the answer is" unless a word naming another thing, or its unit and a verb, follows it (_concludes,
       _NO_CLAIM: "the answer is 7 here" and "... 7 frames shown" are 7, "the answer is 2 repeats" and "... 2
       frames are repeated" are none), before "frames in total", or after "so" / "that's" / "total of" / "total:"
       when it ends its clause, maybe after its unit, "in total", "in the video", "here", or after "Result:" /
       "Count:" at a sentence's or line's start, "the count is" anywhere (or "Frame count:", "Final result:", "Total
       frames:") when it ends its sentence or line; failing those, "there are N" ending its clause likewise ("8
       frames. There is 1 frame repeated." is 8: a part of the count).
    2. Otherwise the first number that is not a frame's or a step's label ("Frame 4 is the same as frame 3", "Frames
       0 to 7 are shown", "Step 1:" count nothing; _is_label: nor do a product's factors, "2*4", and the pronoun "the
       last one") nor an ordered list's item number, unless it is one of a list, counts a part of the frames ("2 of
       them", "the last 2 frames") or counts another thing ("4 seconds", "2 people", "People count: 3"): then the
       first number of all the frames after it ("8 consecutive frames", "Eight key frames"); failing that, a part's
       number is the count, a number of seconds or times none ("The answer is 3 seconds.", "It lasts 4 s.").
    Any number must be whole ("7.5 frames" is None) and offer no alternative ("7 or 8", "8 frames, maybe 9", "7 or 8
    frames in total", "8 frames, though it could be 9"; not the end of a range: "Frames 0 to 7, 8 frames in total." is
    8); a range offers both ends ("Around 8-9 frames.", "7 to 8 frames in total" are None); conclusions that differ give
    None. A number after "not" (or "I don't think it's") and a bound are passed over ("Not 7, it's 8." is 8; "At least 8
    frames." alone is None), with the rest of a list ending in "or" ("Not 7 or 8, but 9." is 9), and a "there are N"
    about a part ("in the first half there are 4") concludes nothing. Markdown emphasis (``**7**``) is ignored, a "*"
    between digits kept."""
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
            # ("Among the blurry ones, the count is 3", "for the red car alone the count is 5": a part's count)
            if (
                conclusion is _CONCLUSION
                and _THE_COUNT.match(m.group(0))
                and _PART_PHRASE.search(text, max(0, m.start() - 80), m.start())
            ):
                continue
            n = _count_value(m.group(m.lastindex))
            # ("7 or 8 frames in total": 8 is one of two options, no conclusion)
            alternative = _alternative(text, end, n) is not None or _alternative_to_before(text, at)
            stated.add(None if n is None or alternative else n)
        if stated:  # (conclusions that differ, "The answer is 7. The answer is 8.", are several options: in answers
            # laid out in steps too, where a later step may count another thing or hedge)
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
    labelled_other = False
    if not listed and not _is_part(text, m.start(), m.end()) and not _counts_another_thing(text, m.end()):
        labelled_other = _another_things_count(text, m.start(), m.end())
        if not labelled_other:
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
    if labelled_other and (
        frames is None or not _WHOLE_CLIP_BEFORE.search(text, max(0, frames.start(1) - 40), frames.start(1))
    ):
        # ("Manual count: 9, though 2 frames look alike.": "manual" is no other thing; only a later number said of
        # the whole clip replaces it: "People count: 3. The clip has 7 frames.")
        return n
    if frames is not None:
        nf = _count_value(frames.group(1))
        alternative = _alternative(text, frames.end(1), nf) is not None or _alternative_to_before(text, frames.start(1))
        return None if nf is None or alternative else nf
    # else the first number, unless it is one of a list or a number of seconds or times ("The answer is 3 seconds.")
    return None if listed or _OTHER_UNIT.match(text, m.end()) else n
