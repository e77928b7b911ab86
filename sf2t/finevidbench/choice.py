"""Which option a free answer to a multiple-choice question names. Self-contained (only ``re``): ``sf2t eval``
uses it, and ``sf2t finevidbench export`` copies this file's code into the lmms-eval ``utils.py`` and the
VLMEvalKit dataset class, so every harness scores a generated answer the same way."""

import re

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# the last line of every multiple-choice prompt (sf2t.tasks.templates.multiple_choice, sf2t eval, both exports): it
# asks for what parse_choice reads, the option's letter or its text (every harness scores with parse_choice)
ANSWER_LINE = "Answer with the option's letter or its text."
# "Final answer: C", "The final answer is B": what follows the last such marker is the answer (as sf2t.tasks.scoring
# reads free answers; "B is my final answer." has none)
_FINAL = re.compile(
    r"\bfinal\s+answer\b\**(?:[ \t]+(?:is|was|would\s+be|will\s+be)\b[ \t]*:?|[ \t]*[:=\-–—]+|[ \t]*\n)\**",
    re.IGNORECASE,
)


def after_final_answer(text):
    """``text`` after its last "final answer" marker; all of it when it has none, or when nothing but punctuation
    follows the marker ("8 frames. Final answer."). sf2t.tasks.scoring's parsers read answers through it too."""
    t, last = str(text or ""), None
    for m in _FINAL.finditer(t):
        last = m
    if last is not None and re.search(r"\w", t[last.end() :]):
        return t[last.end() :]
    return t


# after "answer", "option" or "choice", a capital letter: "Answer: C", "The answer is (B)", "option A". With "is" /
# ":" / "-" before the letter ("The answer is B", "The correct option is C", "Best choice: C"), it states the answer,
# and a later statement revises an earlier one ("Answer: A ... wait, the answer is B." is B); a bare "option A" /
# "choice A" / "answer A" only names an option ("Answer: B. Option A would be too slow." and "The answer is B. Answer
# A is incorrect." are B)
_ASKED = re.compile(r"\b(?i:(answer)|option|choice)(\s+is)?\s*([:\-]\s*)?\(?([A-Z])\)?(?![A-Za-z0-9])")
# ... unless it goes on to call that option right ("Option A is wrong; option C is correct." is C)
_AFFIRMED = re.compile(
    r"[ \t]+(?:(?:is|seems|must[ \t]+be|would[ \t]+be|should[ \t]+be)[ \t]+)?(?:the[ \t]+)?"
    r"(?:correct|right|best|answer)\b(?=[ \t]*(?:[.!;,)\n]|$|because\b|since\b|as\b))",
    re.IGNORECASE,
)
# where a model runs on into a turn of its own making ("B.\n\nQuestion: Which object is red?\nAnswer: C", "B\nUSER:
# ..."): a line opening with a question's or a speaker's label ends the answer
_NEXT_TURN = re.compile(r"\n[ \t]*(?:#+[ \t]*)?(?:question|q|user|human)[ \t]*\d*[ \t]*:", re.IGNORECASE)
# after "answer", "option" or "choice", the article "A" before a lower-case word that may start a noun phrase, when
# an option's text then appears in the answer ("Answer: A total of 9 frames.", "The correct option is A blue cube.":
# parse_choice); a verb, a preposition, a modal, a conjunction or an adverb after it goes on about a letter ("The
# answer is A because the video has 9 frames.", "Answer: A is correct.", "The answer is A in this case.", "Answer: A
# would be my pick.", "Answer: A then.", "Option A rather than a blue cube.")
_ARTICLE = re.compile(
    r"A[ \t]+(?!(?:is|was|seems|looks|appears|fits|matches|describes|shows|best|would|will|should|could|might|may"
    r"|must|can|because|since|as|given|and|or|but|so|if|which|that|while|whereas|with|in|for|of|on|at|to|from|by"
    r"|according|based|here|then|now|too|again|though|however|indeed|definitely|clearly|certainly|obviously"
    r"|probably|likely|surely|not|rather|instead|over|unlike|than)\b)[a-z]"
)
# what makes an option's text, right before it, one the answer rules out ("a blue cube, not a red ball", "9 rather
# than 7", "it isn't the red ball"): searched in the (normalized) few characters before each place the text appears
_NEGATED = re.compile(r"(?:(?:^|[^a-z'])(?:not|never|unlike|rather than|instead of)|n't) (?:(?:a|an|the) )?$")
_NEGATION_REACH = 24  # characters: "instead of the " and the character before it, with room to spare
# a letter with another right after it, joined by "or" or "/" ("The answer is A or B.", "Answer: A (or maybe B)",
# "A/B"): a hedge between two options, which states neither (as the free-answer parsers read "7 or 8")
_OR_ANOTHER = re.compile(
    r"[ \t]*(?:,[ \t]*)?(?:\([ \t]*)?(?:or|/)[ \t]*(?:(?:maybe|perhaps|possibly|probably)[ \t]+)?"
    r"\(?([A-Z])\)?(?![A-Za-z0-9])"
)
# number words, for options whose text has a number ("There are nine frames." names "9"): zero to nineteen, the
# tens, and a ten with a unit ("twenty-one", "twenty one"); never inside another word ("canine", "often", "no-one")
_UNITS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"
_UNITS = (_UNITS + " seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_NUMBER_WORD = re.compile(
    r"(?<![a-z0-9'-])(?:(" + "|".join(_TENS) + r")(?:[- ](" + "|".join(_UNITS[1:10]) + r")(?![a-z0-9'-]))?"
    r"|(" + "|".join(_UNITS) + r"))(?![a-z0-9'-])"
)
# "one" as a pronoun, not a count: after a determiner and at most one word ("the red one", "this one", "no one"), or
# before "of" / "another" ("one of them")
_ONE_BEFORE = re.compile(r"(?:^|[^a-z'])(?:the|this|that|which|each|every|any|another|no|a|an)(?: [a-z]+)? $")
_ONE_AFTER = re.compile(r" (?:of|another)\b")
_ONE_REACH = 40  # characters: a determiner, a word of up to 30 letters, and the character before


def _norm(s):
    """Lower case, spaces collapsed, markdown emphasis, quotes and a final period dropped."""
    s = re.sub(r"\s+", " ", str(s).replace("**", "").strip().strip("`'\"").strip())
    return s.lower().rstrip(" .")


def _spelled(m):
    """A number word's digits ("twenty-one": "21"), or the word where "one" is a pronoun."""
    tens, unit, alone = m.groups()
    if alone == "one":
        s, e = m.span()
        if _ONE_BEFORE.search(m.string, max(0, s - _ONE_REACH), s) or _ONE_AFTER.match(m.string, e):
            return alone
    if alone:
        return str(_UNITS.index(alone))
    return str(10 * (_TENS.index(tens) + 2) + (_UNITS.index(unit) if unit else 0))


def _stated(low, o):
    """Whether the option text ``o`` appears in ``low`` as whole words, at least once not ruled out by a negation
    right before it ("a blue cube, not a red ball" states the cube, not the ball)."""
    for m in re.finditer(r"(?<![a-z0-9])" + re.escape(o) + r"(?![a-z0-9])", low):
        if not _NEGATED.search(low, max(0, m.start() - _NEGATION_REACH), m.start()):
            return True
    return False


def _named(norms, low):
    """The indices of the options whose (normalized) text ``low`` states (:func:`_stated`); where none, those whose
    text has a digit and that ``low`` states in number words ("nine frames": "9 frames"; digits win over words)."""
    hits = [i for i, o in enumerate(norms) if o and _stated(low, o)]
    if hits:
        return hits
    numeric = [i for i, o in enumerate(norms) if re.search(r"[0-9]", o)]
    if numeric:
        spelled = _NUMBER_WORD.sub(_spelled, low)
        if spelled != low:
            return [i for i in numeric if _stated(spelled, norms[i])]
    return []


def _letter(t, n):
    """The match of the letter ``t`` answers with (its last group), or None: the last one it states among the first
    ``n`` letters (leading, "B. ...", or after "answer", or after "option" / "choice" with "is", ":" or "-", or
    followed by "is correct"), else the first it states ("Answer: E" of two options: no option's letter); where it
    states none, the first option it names ("option A")."""
    first = last = re.match(r"\(?([A-Z])(?:\)|[.:])(?:\s|$)", t)
    if last and LETTERS.index(last.group(1)) >= n:
        last = None
    named = None
    for m in _ASKED.finditer(t):
        if m.group(2) or m.group(3) or _AFFIRMED.match(t, m.end()):
            first = first or m
            if LETTERS.index(m.group(4)) < n:
                last = m  # (a revision: "Answer: A ... wait, the answer is B." is B)
        elif named is None:
            named = m
    return last or first or named


def parse_choice(text, options):
    """The index of the option ``text`` names, or None: its text exactly ("12", "Different: top-left."); else a
    letter: alone ("B", "b", "(B)", "B."), leading ("B. ...", "(B) ...", "B: ..."), or after "answer" / "option"
    ("Answer: C", "The answer is B"); else the one option whose text appears in the answer as whole words ("There
    are 15 frames." is "15", not "5"; "I don't know" is not "No."), the longest where one contains the others. After
    "answer" / "option" / "choice" an "A" before a lower-case word is the article, no letter, when an option's text
    appears in the answer ("Answer: A total of 9 frames.", "The correct option is A blue cube." name those options);
    otherwise, or before a word that goes on about a letter ("The answer is A in this case.", "The answer is A because
    the video has 9 frames."), it is the letter ("The answer is A not B."). After a "final answer" marker only what
    follows the last one counts ("I first thought A. Final answer: C" is C).

    The last letter stated wins: a leading letter, one after "answer" / "option" / "choice" with "is", ":" or "-"
    ("The answer is B", "The correct option is C", "Best choice: C"), or an "option A" followed by "is correct" /
    "is right" / "is the answer" where the clause ends ("Answer: A. Wait, the answer is B." is B; "Option A is wrong;
    the answer is C." is C). A bare "option A" / "choice A" / "answer A" only names an option: it is read when no
    letter is stated, the first one ("Answer: B. Option A would be too slow." and "The answer is B. Answer A is
    incorrect." are B), and a letter after "not" states nothing ("The answer is B, not A." is B). A line opening with
    "Question:", "Q:", "User:" or "Human:" after the answer ends it (a model running on into a turn of its own).
    An option's text right after a negation (not, n't, never, unlike, rather than, instead of; an article between)
    is ruled out there ("Answer: A blue cube, not a red ball." is the cube; "Not a red ball." names none). Options
    whose text has a number are read from number words when no option's text is in the answer: zero to nineteen,
    the tens, "twenty-one" / "twenty one" ("There are nine frames." is "9"; "nine ... 11" is "11": digits win),
    never inside another word ("canine", "no-one") nor "one" as a pronoun ("the red one", "one of them"). A letter
    joined to another by "or" or "/" is a hedge and names none ("The answer is A or B.", "Answer: A (or maybe B)",
    "A/B")."""
    t = str(text or "")
    turn = _NEXT_TURN.search(t)
    if turn and t[: turn.start()].strip():
        t = t[: turn.start()]
    t = after_final_answer(t).replace("**", "").strip().strip("`'\"").strip()
    low = _norm(t)
    if not low:
        return None
    norms = [_norm(o) for o in options]
    hits = [i for i, o in enumerate(norms) if o and o == low]
    if len(hits) == 1:
        return hits[0]
    hits = None  # (the options named by their text: looked for only when needed)
    m = re.fullmatch(r"\(?([a-z])\)?[.):]?", low) or _letter(t, len(options))
    k = m and LETTERS.index(m.group(m.lastindex).upper())
    if m and m.re is _ASKED and _ARTICLE.match(t, m.start(4)):
        # (the article: "The correct option is A blue cube." names the option's text, not A; the text after it
        # first: "Answer: C. No, the answer is A blue cube.")
        hits = _named(norms, _norm(t[m.start(4) :])) or _named(norms, low)
        if hits:
            m = None
    if m and k < len(options):
        e = m.end(m.lastindex)
        other = _OR_ANOTHER.match(t, e + t.startswith(")", e))
        if other and other.group(1) != m.group(m.lastindex).upper() and LETTERS.index(other.group(1)) < len(options):
            return None  # (a hedge: "The answer is A or B.")
        return k
    if hits is None:
        hits = _named(norms, low)
    if len(hits) > 1:
        longest = max(hits, key=lambda i: len(norms[i]))
        if all(norms[i] in norms[longest] for i in hits):
            hits = [longest]
    return hits[0] if len(hits) == 1 else None


# an option's letter alone ("B", "B.", "B)", "(B)"), or before its option's text ("B. 12", "B) 12", "(B) 12": as the
# prompt lists them)
_LETTER_FORM = re.compile(r"(?:([A-Z])[.)]?|\(([A-Z])\))")
_LETTER_THEN_TEXT = re.compile(r"(?:([A-Z])[.)]|\(([A-Z])\))[ \t]+(\S.*)", re.DOTALL)


def _plain(s):
    """``s`` as in_form compares option texts: lower case, spaces collapsed, a final period dropped (no markdown or
    quotes dropped, unlike _norm: "**12**" is not the asked form)."""
    return re.sub(r"\s+", " ", str(s).strip()).lower().rstrip(" .")


def in_form(text, options):
    """Whether ``text`` (surrounding whitespace stripped) answers in the form ANSWER_LINE asks for: an existing
    option's letter alone ("B", "(B)", "B.", "B)"), exactly one option's text (case, spaces and a final period aside:
    "different: top-left" for "Different: top-left."), or a letter followed by its own option's text ("B. 12").
    Sentences, "Answer: B", "**B**", a letter with another option's text ("B. 7" when B is 12) or a letter no option
    has are not. Whether the answer is right is parse_choice's to say; reports give the share in form and the strict
    accuracy (right and in form) next to the accuracy, to show how much of it rests on parse_choice's lenient
    reading."""
    t = str(text or "").strip()
    m = _LETTER_FORM.fullmatch(t)
    if m:
        return LETTERS.index(m.group(1) or m.group(2)) < len(options)
    low = _plain(t)
    if low and sum(_plain(o) == low for o in options) == 1:
        return True
    m = _LETTER_THEN_TEXT.fullmatch(t)
    if m:
        k = LETTERS.index(m.group(1) or m.group(2))
        return k < len(options) and _plain(m.group(3)) == _plain(options[k]) != ""
    return False
