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


_ASKED = re.compile(r"\b(?i:answer|option|choice)(?:\s+is)?\s*(?:[:\-]\s*)?\(?([A-Z])\)?(?![A-Za-z0-9])")
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


def _norm(s):
    """Lower case, spaces collapsed, markdown emphasis, quotes and a final period dropped."""
    s = re.sub(r"\s+", " ", str(s).replace("**", "").strip().strip("`'\"").strip())
    return s.lower().rstrip(" .")


def _named(norms, low):
    """The indices of the options whose (normalized) text appears in ``low`` as whole words."""
    return [i for i, o in enumerate(norms) if o and re.search(r"(?<![a-z0-9])" + re.escape(o) + r"(?![a-z0-9])", low)]


def parse_choice(text, options):
    """The index of the option ``text`` names, or None: its text exactly ("12", "Different: top-left."); else a
    letter: alone ("B", "b", "(B)", "B."), leading ("B. ...", "(B) ...", "B: ..."), or after "answer" / "option"
    ("Answer: C", "The answer is B"); else the one option whose text appears in the answer as whole words ("There
    are 15 frames." is "15", not "5"; "I don't know" is not "No."), the longest where one contains the others. After
    "answer" / "option" / "choice" an "A" before a lower-case word is the article, no letter, when an option's text
    appears in the answer ("Answer: A total of 9 frames.", "The correct option is A blue cube." name those options);
    otherwise, or before a word that goes on about a letter ("The answer is A in this case.", "The answer is A because
    the video has 9 frames."), it is the letter ("The answer is A not B."). After a "final answer" marker only what
    follows the last one counts ("I first thought A. Final answer: C" is C)."""
    t = after_final_answer(text).replace("**", "").strip().strip("`'\"").strip()
    low = _norm(t)
    if not low:
        return None
    norms = [_norm(o) for o in options]
    hits = [i for i, o in enumerate(norms) if o and o == low]
    if len(hits) == 1:
        return hits[0]
    m = re.fullmatch(r"\(?([a-z])\)?[.):]?", low) or re.match(r"\(?([A-Z])(?:\)|[.:])(?:\s|$)", t) or _ASKED.search(t)
    hits = None  # (the options named by their text: looked for only when needed)
    if m and m.re is _ASKED and _ARTICLE.match(t, m.start(1)):
        hits = _named(norms, low)
        if hits:
            m = None  # (the article: "The correct option is A blue cube." names the option's text, not A)
    if m:
        k = LETTERS.index(m.group(1).upper())
        if k < len(options):
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
