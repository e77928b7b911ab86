"""parse_span: the span of frames an answer names (docs/tasks.md, Scoring, parse_span)."""

from __future__ import annotations

import re

from sf2t.tasks.scoring._common import _COULD_BE, _int, after_final_answer

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
# the end's number, maybe after "i.e." / "that is" / "which is" / "namely" ("to the last frame, which is frame 7", "to
# the end, i.e., frame 8") where no span goes on from it ("to the end, i.e. frames 5-8", "namely frames 4, 5, 6, 7 and
# 8" are spans of their own); not a number of frames ("to the end, 8 frames in total")
_END_NUMBER = (
    r"[\s(,:—–]+(?:(?:i\.e\.|that\s+is|which\s+is|namely)[\s,:]*(?:the\s+)?(?:frames?\s*)?"
    r"(?=\d+(?!\d)(?!\s*(?:-|–|to\b|through\b|until\b|(?:,\s*|\band\s+)(?:(?:and|or)\s+)?(?:frames?\s*)?\d)))"
    r"|(?:the\s+)?(?:frames?\s*)?)(\d+)(?!\d)(?!\s*frames\b)"
)
# the end: the clip's ("the end", "the last frame", "the end of the video") or a frame's ("until the end of frame 6":
# 6), before its number
_THE_END = r"(?:end(?:\s+of(?=\s+frame\s*\d))?|(?:last|final)\s+frame)(?:\s+of\s+the\s+(?:video|clip|sequence))?"
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
    r"|(?:until|till|through|to)\s+the\s+(?:very\s+)?" + _THE_END + ")" + _END_NUMBER,
    re.IGNORECASE,
)
# a start with no verb, "from frame 4", right before "to the end" / "until the last frame" and that end's number: "From
# frame 4 to the end, frame 8." is the span 4-8 (read after _START_END; "from frame 4 to the end" alone names frame 4)
_FROM_TO = r"\bfrom\s+(?:the\s+)?(?:frames?\s*)?(\d+)(?!\d)\s*+(?:,\s*+)?(?:until|till|through|to)\s+the\s+(?:very\s+)?"
_FROM_TO_END = re.compile(
    _FROM_TO + _THE_END + _END_NUMBER,
    re.IGNORECASE,
)
# ... and with no number after the end ("The cat appears from frame 5 to the end of the clip."): the span to the clip's
# last frame where parse_span is told the number of frames, else the start alone (as before); only the clip's end
# closing its clause ("end", "end of the video / clip / sequence", "last / final frame", then . ! ; , ( ) or the
# end: not "to the end of frame 6", "to the end of the hallway", "to the last frame it appears in"), and only where
# the answer names no other frame ("From frame 1 to the end, the camera pans; the cat is in frames 4-5.": _span_text)
_FROM_TO_BARE_END = re.compile(
    _FROM_TO
    + r"(?:end|(?:last|final)\s+frame)\b(?:\s+of\s+the\s+(?:video|clip|sequence)\b)?(?=[ \t]*(?:[.!;,()\n]|$))",
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
# "the first frame is 1 ... the last frame is 8" (or "the video's", clip's, sequence's, footage's, movie's) says the
# clip's own ends when a frame is named elsewhere ("The target is in frame 4 only."): those fields are no span
# ("Start: 2, End: 5. Frame 2 shows it entering." is (2, 5))
_CLIP_NOUN = r"(?:video|clip|sequence|footage|movie)"
_THE_FIRST = re.compile(r"(?:\bthe|\b" + _CLIP_NOUN + r"['’]s)[ \t]+$", re.IGNORECASE)
# ... or "its" right after a sentence whose subject is the clip and that gives its number of frames ("The video has 8
# frames. Its first frame is 1 ..."; after "This clip contains the ball." its first frame is the ball's)
_ITS_CLIP = re.compile(
    r"(?:^|(?<=[.!?\n]))[ \t]*(?:the|this)[ \t]+"
    + _CLIP_NOUN
    + r"\b[^.!?\n]{0,80}\b\d+[ \t]+frames\b[^.!?\n]{0,20}[.!?]\s*its[ \t]+$",
    re.IGNORECASE,
)
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
            if named
            and m.group(0)[:5].lower() == "first"
            and (
                _THE_FIRST.search(text, max(0, m.start() - 16), m.start())
                or _ITS_CLIP.search(text, max(0, m.start() - 120), m.start())
            )
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


def _span_text(text: str, num_frames: int | None = None) -> str:
    """``text`` with frames named by ordinals as numbers ("3rd" and "#3" as 3, "the third to the fifth frame" as "the
    3 to the 5 frame") and a span said by its start and end ("starts at frame 3 and ends at frame 5") as "frames
    3-5"; digit spans of another unit or of the numbering are dropped ("(2-3 seconds)", "(frames are numbered 1-8)").
    Ordinal words joined by "and" are read only when the digits name no span: "The first and second frames are
    static; the motion is in frames 3-5." is (3, 5)."""
    text = _NO_FRAME_SPAN.sub("", _DIGIT_ORDINAL.sub(r"\1", text))
    text = _FROM_TO_END.sub(_start_end_span, _START_END.sub(_start_end_span, text))
    if num_frames is not None:  # ("from frame 5 to the end": 5 to the clip's last frame)
        text = _to_last_frame(text, num_frames)
    if not _SPAN_RE.search(text):
        text = _fields_as_span(text)
    if _SPAN_RE.search(text) and not _ORDINAL_SPAN.search(text):
        return _drop_absent(text)
    text = _WORD_ORDINAL.sub(
        lambda m: str(_ORDINALS[m.group(1).lower()]) if m.group(1) else m.group(2) + str(_ORDINALS[m.group(3).lower()]),
        text,
    )
    return _drop_absent(_FROM_TO_END.sub(_start_end_span, _START_END.sub(_start_end_span, text)))


def _to_last_frame(text: str, num_frames: int) -> str:
    """``text`` with its bare "from frame a to the end" (_FROM_TO_BARE_END) as the span "frames a-``num_frames``"
    where it is the only frame the answer names ("From frame 6 to the end, the cat is no longer visible. It is in
    frames 2-5." is left as it is: 2-5 is the answer); the words without their number where the clip is what runs
    there ("The video runs from frame 1 to the end")."""
    ends = list(_FROM_TO_BARE_END.finditer(text))
    if not ends:
        return text
    runs = {m.start() for m in ends if _CLIP_RUNS.search(text, max(0, m.start() - 48), m.start())}
    outside = " ".join(
        text[a.end() if a else 0 : b.start() if b else len(text)] for a, b in zip([None, *ends], [*ends, None])
    )
    alone = len(ends) - len(runs) == 1 and not (
        _FRAME_NAMED.search(outside) or _SPAN_RE.search(outside) or _FRAME_LIST.search(outside)
    )
    return _FROM_TO_BARE_END.sub(
        lambda m: (
            re.sub(r"\d+", "", m.group(0))
            if m.start() in runs
            else f"frames {m.group(1)}-{num_frames}"
            if alone
            else m.group(0)
        ),
        text,
    )


# after a span, another frame number ("Frames 1-2, 3-5", "3-5-7"; not a count: "Frames 3-5; 3 frames in total")
# (or after a hedge, in a sentence or brackets of its own: "Frames 3-5. Or maybe 4-6.", "frames 3-5 (maybe 3-6)",
# "Frames 3-5, but it could be 4-6", also after a revision word: "So frames 3-5. Actually, it could also be frames
# 3-6.")
_SPAN_HEDGE = r"(?:maybe|perhaps|possibly|probably|" + _COULD_BE + ")"
# a revision word (actually, wait, ...: see _SPAN_CONCLUSION)
_REVISED = r"actually|wait|on\s+closer\s+inspection|looking\s+again|on\s+second\s+thought|correction|re-?checking"
_SPAN_MORE = re.compile(
    r"(?:\s*(?:,|/|;|\bor\b|\band\b|-|–)(?:\s*\bor\b)?|[\s.,;:(\[…—–-]{0,8}(?:\bor\b|"
    r"(?:\b(?:" + _REVISED + r")(?:[ \t]*+[,:])?[ \t]++)?(?=" + _SPAN_HEDGE + r"\s)))"
    r"\s*(?:" + _SPAN_HEDGE + r"\s+){0,2}(?:(?:the\s+)?frames?\s*)?\d+(?!\d)(?!\s*frames?\b)",
    re.IGNORECASE,
)


def _same_span(text: str, more: re.Match, span: tuple[int, int]) -> bool:
    """Whether what ``more`` (a _SPAN_MORE match) offers after a span is that span again ("Frames 3-5. Actually, it
    may be frames 3-5.": no other option)."""
    digits = re.search(r"\d+$", more.group(0))
    again = _SPAN_AT.match(text, more.start() + digits.start()) if digits else None
    return again is not None and (int(again.group(1)), int(again.group(2))) == span


_SPAN_LESS = re.compile(r"\d\s*(?:,|/|;|\bor\b)\s*(?:(?:the\s+)?frames?\s*)?$", re.IGNORECASE)
# frame numbers listed with commas ("frames 3, 4 and 5", "3,4,5") or as alternatives ("frames 3 or 4", "3/4")
_FRAME_LIST = re.compile(
    r"(?<![\w.])\d+(?:\s*(?:,\s*(?:and|or)\b|,|/|\bor\b)\s*(?:(?:the\s+)?frames?\s*)?\d+(?!\d))+"
    r"(?:\s*\band\s+(?:(?:the\s+)?frames?\s*)?\d+(?!\d))?",
    re.IGNORECASE,
)
_SPAN_NEXT = re.compile(r"\s*(?:-|–|to\b|through\b|until\b)", re.IGNORECASE)
# a span from its first number ("3-5", "3 to 5", "3 - frame 5")
_SPAN_AT = re.compile(r"(\d+)" + _SPAN_NEXT.pattern + r"\s*(?:frames?\s*)?(\d+)(?!\d)", re.IGNORECASE)
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


# the clip as the subject of "from frame 1 to the end" ("The video runs from frame 1 to the end, frame 8"): its own span
_CLIP_RUNS = re.compile(
    r"\b"
    + _CLIP_NOUN
    + r"\s+(?:(?:itself|also|just|only)\s+)?(?:runs?|goes|go|spans?|lasts?|continues?|plays?|extends?)\s+$",
    re.IGNORECASE,
)


# the clip as the subject of the end ("..., and the video ends at frame 8"): no end of the target's
_CLIP_ENDS = re.compile(
    r"(?:[.!?;,:]|\band\b|\bthen\b)\s*(?:then\s+)?(?:(?:the|this|that|whole|entire|full|given)\s+){0,2}"
    r"(?:video|clip|sequence)(?:'s|’s)?\s+"
    r"(?:(?:itself|also|then|only|just|now)\s+)?(?:end|finish|stop)",
    re.IGNORECASE,
)


# a subject after the start, with and, while, whereas or but ("..., and the ball leaves at frame 7"), its first words
# (group 1), unless the target is the subject again before the end ("and the camera pans until it leaves at frame 6");
# _start_end_span reads whether it is the target again (_same_subject)
_OTHER_SUBJECT = re.compile(
    r"\b(?:and|while|whereas|but)\s+(?:the|a|an)\s+"
    r"(?!(?:frames?|next|following|moment|second|few|bit|little|short|while|couple)\b)"
    r"([^\W\d_]+(?:['’]s)?(?:[ \t]+[^\W\d_]+(?:['’]s)?){0,2})(?:(?!\b(?:it|the\s+(?:target|patch|object))\b).)*$",
    re.IGNORECASE | re.DOTALL,
)
# the start's subject: the last word before the start's verb in its clause, maybe after a modifier ("The red ball
# appears ...": ball, red)
_SUBJECT_BEFORE = re.compile(
    r"((?:[^\W\d_]+[ \t]+){0,3}?)(?!(?:the|a|an|this|that|its)\b)([^\W\d_]+)[ \t]+"
    r"(?:(?:first|also|then|only|just|suddenly|finally|briefly|[^\W\d_]+ly)[ \t]+)?$",
    re.IGNORECASE,
)
_TARGET_NOUNS = {"target", "patch", "object"}
_SAME_WORDS = {"same", "whole", "entire"}
_ARTICLES = {"the", "a", "an", "this", "that", "its"}
_ANOTHER = re.compile(r"\b(?:other|another)\b|\bnext\s+to\b")


def _same_subject(words: str, subject: re.Match | None) -> bool:
    """Whether the end's subject ``words`` (its first words) are the target again: its head noun is target / patch /
    object or the start's subject noun, with at most same / whole / entire and modifiers the start's subject agrees
    with before it ("the red patch" after "The target", "the ball" after "The red ball"; not "the blue patch" after
    "The red patch"), and no other / another / 's / "next to" ("the other car", "the bird's shadow", "the person next
    to him")."""
    low = words.lower().replace("’", "'")
    if "'s" in low or _ANOTHER.search(low):
        return False
    noun = subject.group(2).lower() if subject else None
    modifiers = set(subject.group(1).lower().split()) - _ARTICLES if subject else set()
    split = low.split()
    for i, w in enumerate(split):
        if w in _TARGET_NOUNS or w == noun:
            before = [b for b in split[:i] if b not in _SAME_WORDS and b not in _ARTICLES]
            return not modifiers or all(b in modifiers for b in before)
    return False


def _start_end_span(m: re.Match) -> str:
    """A start-and-end match as the span "frames a-b"; when the video or clip is what starts and ends, its words
    without their frame numbers (they name no target's frames); when the end is another subject's, the start's frame
    and the words without the end's number."""
    if _CLIP_BEFORE.search(m.string, max(0, m.start() - 48), m.start()) or (
        m.re is _FROM_TO_END and _CLIP_RUNS.search(m.string, max(0, m.start() - 48), m.start())
    ):
        return re.sub(r"\d+", "", m.group(0))
    # ("appears in frame 3, and the video ends at frame 8", "is visible in frame 4, and the ball leaves at frame 7";
    # not fields: their "and the last frame is 8" is no other subject)
    after_start = m.end(1) - m.start()
    other = _OTHER_SUBJECT.search(m.group(0), after_start) if m.re is _START_END else None
    if other:  # ("The dog appears in frame 3 and the dog exits at frame 6": the start's subject again)
        subject = _SUBJECT_BEFORE.search(m.string, max(0, m.start() - 40), m.start())
        if _same_subject(other.group(1), subject):
            other = None
    if other or _CLIP_ENDS.search(m.group(0), after_start):
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
_PRESENCE = r"(?:visible|present|there|shown|seen|see|appear\w*|show\w*|contain\w*|detect\w*|includ\w*)\b"
_NOT = r"(?:\bnot|\bcannot|n't|n’t|\bnever)\s+(?!only\b)"
_NOT_VERB = r"(?:(?!(?:and|or|but|then|so)\b)\w+\s+){0,2}?"  # ("not clearly visible"; not "not move and appears")
_ABSENT_WORD = (  # (not "isn't hidden", "no longer hidden"; "partially hidden" is still visible)
    r"(?<!\bnot\s)(?<!\bnever\s)(?<!n't\s)(?<!n’t\s)(?<!\blonger\s)"
    r"(?<!\bpartially\s)(?<!\bpartly\s)(?<!\bhalf\s)(?<!\bslightly\s)(?<!\bsomewhat\s)"
    r"\b(?:absent|missing|invisible|hidden|gone|nowhere|excluded|ruled\s+out|out\s+of\s+(?:view|sight))\b"
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
    r"|\b(?:empty|blank)\b(?=[\s:]*$)|(?:\bnot|n't|n’t)(?=[\s:]*$)|\b(?:are|is|were|was)\s+(?:\w+\s+)?(?:empty|blank)\s+(?:frames?|screens?|images?|scenes?)\b"
    # "have no target", "lack it", "don't have it" ("have no blur" says nothing of the target); "no object" and "no
    # sign" only as "no sign of it / the ball / a patch", ending the clause or before at all / whatsoever / yet /
    # visible / present ("with no object in front of it" says nothing of the target)
    r"|\bno\s+(?:target|patch)\b|\bno\s+(?:object|sign)(?=[\s:]*$|\s+(?:at\s+all|whatsoever|yet|visible|present)\b)"
    r"|\bno\s+(?:object|sign)\s+of\s+(?:it|them|the|a|an)\b"
    r"|(?:\black\w{0,3}|(?:\bnot|n't|n’t)\s+(?:have|has|had))\s+"
    r"(?:it|them|(?:the|a|any)\s+(?:target|patch|object))\b)" + _ELSEWHERE,
    re.IGNORECASE,
)
_TRAIL_END = re.compile(
    r"[.!?;,\n()\[\]—–]|\s-\s|\b(?:but|while|whereas|and|then|though|although|however|where|which|that|who|after)\b",
    re.IGNORECASE,
)


# (what follows a heading's absence: no new clause, "The target is not visible in every frame. It is visible in:",
# "Although it is hidden at first, it is visible in:", "Observations (the target is not visible at first):"; "yet"
# ending it is no clause, "Not visible yet:"; but for "and" and another absence or emptiness, "absent and the road is
# empty:", and ", frames" / ", in frames", "Target absent, frames:"; a remark in brackets may close it: "Not visible
# (hidden behind the car):")
_CLAUSE_WORD = r"[^\d\n:.!?;,()\[\]—–]"
_LAST_CLAUSE = (
    r"(?:(?!\b(?:but|while|whereas|and|then|though|although|however)\b|\byet\b(?![ \t]*(?:[:(]|$)))"
    + _CLAUSE_WORD
    + r"){0,40}?"
)


# an absence said as a heading ("Not visible:", "Frames where the target is not visible:", "## Target absent"): a
# line that ends with ":" (or a markdown heading) covers the list under it, the lines after it (blank ones skipped)
# that are list items ("- ...", "1. ...") or frame numbers alone ("Frames 1-2"), up to a line that ends with ":"
_ABSENT_HEADING = re.compile(
    r"^[ \t]*+(#++[ \t]*+)?(?:[-•+][ \t]+)?[^\d\n]{0,60}?"
    + _ABSENCE
    + _LAST_CLAUSE
    + r"(?:\band\b"
    + _CLAUSE_WORD
    + r"{0,40}?(?:"
    + _ABSENCE
    + r"|\b(?:empty|blank)\b)"
    + _LAST_CLAUSE
    + r")?(?:,[ \t]*(?:(?:in|on|at|from|during)[ \t]+)?(?:the[ \t]+)?frames?[ \t]*)?"
    + r"(?:\([^()\n]{0,40}\))?(?(1)[ \t]*:?|:)[ \t]*$",
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
# final answer (read after absences are dropped: "so frames 1-2 do not contain it" concludes nothing); after a revision
# word a span that is no hedge ("Actually, frames 3-5 contain it." concludes; "Actually, it could be frames 3-6" does
# not), unless its sentence goes on to another conclusion (_last_conclusions); the frames a revision verb takes as its
# object are the ones it looks at again, no conclusion: "Re-checking frames 2-7 carefully, the target is visible in
# frames 3-6." concludes the next span in its sentence, 3-6 (groups 5-6; none when that one is hedged); not one in the
# next sentence, which may be about anything ("Re-checking frames 2-7. Motion blur affects frames 3-4.", "... The
# cat's shadow appears in frames 1-8."): there the examined span is read (2-7)
_SPAN_WORDS = r"(?:[^\W\d_][\w'’]*+\s+){0,5}?frames?\s*:?\s*(\d+)\s*(?:-|–|to|through|until)\s*(?:frames?\s*)?(\d+)"
_EXAMINED = (
    r"\b(?:re-?checking|looking\s+again|on\s+closer\s+inspection)\s+(?:(?:at|of)\s+)?(?:the\s+)?frames?\s*\d+\s*"
    r"(?:-|–|to|through|until)\s*(?:frames?\s*)?\d+"
)
_HEDGE_WORD = r"\b(?:could|might|may|maybe|perhaps)\b"
_SPAN_CONCLUSION = re.compile(
    r"\b(?:so|thus|therefore|hence|i\.e\.|that\s+is|meaning|in\s+other\s+words|in\s+short)(?:\s*[,:])?\s+"
    + _SPAN_WORDS
    + r"|(?!"
    + _EXAMINED
    + r")\b(?:"
    + _REVISED
    + r")(?:\s*[,:])?\s+(?!(?:[^\W\d_][\w'’]*+\s+){0,5}?"
    + _HEDGE_WORD
    + ")"
    + _SPAN_WORDS
    + "|"
    + _EXAMINED
    + r"(?:(?!"
    + _HEDGE_WORD
    + r")[^.!?\n]){0,80}?\bframes?\s*:?\s*(\d+)\s*(?:-|–|to|through|until)\s*(?:frames?\s*)?(\d+)",
    re.IGNORECASE,
)
# an answer line in the canonical form, "Frames 3-5." alone on its line: a conclusion too ("The target enters at frame 4
# and is gone by frame 8.\nFrames 4-8." is (4, 8))
_ANSWER_LINE = re.compile(
    r"^[ \t]*+frames[ \t]*+(\d++)[ \t]*+[-–][ \t]*+(\d++)[ \t]*+\.?[ \t]*+$", re.IGNORECASE | re.MULTILINE
)
# a revision before a conclusion (after the one before it, or in it): it replaces the conclusions before it ("Frames
# 3-6\nWait, ..., so the answer is frames 3-5." is (3, 5))
_REVISION = re.compile(r"\b(?:" + _REVISED + r"|so\s+the\s+answer\s+is)\b", re.IGNORECASE)


_SENTENCE_END = re.compile(r"[.!?\n]")


def _concluded_span(c: re.Match) -> tuple[int, int]:
    """The first and last frame a conclusion names (_SPAN_CONCLUSION: groups 1-2, or 3-4 after a revision word, or
    5-6 after the frames a revision verb looks at again, in its sentence; _ANSWER_LINE: groups 1-2)."""
    first, last = (g for g in c.groups() if g is not None)
    return _int(first), _int(last)


def _last_conclusions(text: str) -> list[re.Match]:
    """The concluding spans and answer lines of ``text`` in order, from the last one that follows a revision on."""
    concluded = sorted([*_SPAN_CONCLUSION.finditer(text), *_ANSWER_LINE.finditer(text)], key=lambda c: c.start())
    # a span after a revision word whose sentence goes on to another conclusion is reasoning ("Actually, frames 1-2
    # show only the background, so frames 3-5." concludes 3-5 alone)
    concluded = [
        c
        for c, after in zip(concluded, concluded[1:] + [None])
        if not (
            c.re is _SPAN_CONCLUSION
            and (c.group(3) or c.group(5))
            and after
            and not _SENTENCE_END.search(text, c.end(), after.start())
        )
    ]
    kept, pos = [], 0
    for c in concluded:
        if kept and _REVISION.search(text, pos, c.end()):
            kept = []
        kept.append(c)
        pos = c.end()
    return kept


def parse_span(text: str, num_frames: int | None = None) -> tuple[int, int] | None:
    """(a, b) from "Frames 3-5", "frames 3 to 5", "3 through 5", "from frame 3 to frame 5", "between frames 3 and 5",
    "frames 3 and 4" (neighbours), also with the number of frames after it ("Frames 3-5/8", "frames 3-5 of 8"); a single
    number n gives (n, n); consecutive frames listed ("frames 3, 4 and 5") give their span. None when the span is one of
    a list ("Frames 1-2, 3-5", "2 or 3-5") or runs on ("3-5-7"), or the frames named are alternatives ("frames 3 or 4")
    or not consecutive ("frames 3, 5", "frames 3 and 5": two frames, not a span). A reversed span ("Frames 5-3") is
    returned as said (it is not the canonical answer: it scores 0). Ordinals name frames ("3rd-5th", "from the third to
    the fifth frame"), and "starts at frame 3 and ends at frame 5" is (3, 5), "From frame 4 to the end, frame 8." (4,
    8), "from frame 3 to the end of frame 6" (3, 6), also after "i.e." / "that is" / "which is" / "namely" ("From
    frame 3 to the end, i.e., frame 8.") unless a span goes on from that number ("to the end, i.e. frames 5-8" reads
    5-8); with no number after "to the end", ``num_frames`` (the number of frames the question showed: score passes
    meta's) ends the span where that end closes its clause and no other frame is named ("from frame 5 to the end of
    the clip." is (5, 8) of 8 frames; (5, 5) when it is not given; not "to the end of the hallway", nor "From frame 1
    to the end, the camera pans; the cat is in frames 4-5.": (4, 5)); spans of
    seconds and the frames' numbering are none ("(2-3 seconds)", "numbered 1-8"). Labelled fields name a
    span ("Start: 2, End: 5"), and frame numbers a clause says the target is absent from are not read ("not visible in
    frames 1-3; it appears in frames 4-6" is (4, 6)), nor those listed under an absence heading ("Not visible:" then "-
    Frames 1-2"). An end names the last frame the target is in ("disappears at 6", "is gone after 6"), but "is gone by /
    in 7" names the first without it (6). A concluding span ("..., so frames 3-5.") or a canonical answer line ("Frames
    3-5." alone on its line) wins over what comes before it; differing ones give None, unless the later one follows a
    revision ("actually", "wait", "so the answer is", ...: _REVISION), which replaces those before it; the frames a
    revision verb looks at again are none: the next span in its sentence concludes ("Re-checking frames 2-7 carefully,
    the target is visible in frames 3-6." is (3, 6)), not one in the next sentence ("Re-checking frames 2-7. Motion
    blur affects frames 3-4." is (2, 7)), and a hedged span after a revision word is another option ("So frames 3-5.
    Actually, it could also be frames 3-6." is None)."""
    text = _span_text(after_final_answer(text).replace("*", ""), num_frames)  # (markdown: "**Start frame:** 3")
    concluded = _last_conclusions(text)
    if len({_concluded_span(c) for c in concluded}) > 1:  # (conclusions that differ: "so frames 3-5 ... so frames 4-6",
        return None  # "Frames 3-5.\nFrames 4-6.")
    if concluded:  # (from the concluded span on: "Re-checking frames 2-7, ..., frames 3-6" reads 3-6)
        last = concluded[-1]
        text = text[last.start(5) if last.re is _SPAN_CONCLUSION and last.group(5) else last.start() :]
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
        more = _SPAN_MORE.match(text, end)
        if (more and not _same_span(text, more, (a, b))) or _SPAN_LESS.search(text, 0, m.start()):
            return None
        return a, b
    n = _SINGLE.search(text)
    return (_int(n.group(0)), _int(n.group(0))) if n else None
