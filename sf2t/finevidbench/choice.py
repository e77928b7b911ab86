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
# ... or what makes it one the answer calls wrong, right after it, where the clause ends ("9 is not correct; it is
# 11.", "Left is not the answer, it's right.", "the red ball is wrong", "7 is ruled out"): only a verdict on the option
# (the question's polarity is unknown here: "The red ball does not move, but the blue cube does." answers "which
# does not move?" as well as "which moves?", and names neither)
_NEGATED_AFTER = re.compile(
    r" (?:is|are|was|were|would be|seems|seem)(?:n['’]t| not) (?:the )?(?:(?:correct|right|best|true) )?"
    r"(?:answer|option|choice|one|it|correct|right|true)(?=[ \t]*(?:[.,;:!)\n]|$|because\b|since\b|as\b|either\b))"
    r"| (?:(?:is|are|was|were|seems|seem|would be) )?(?:(?:definitely|clearly|probably|also) )?"
    r"(?:wrong|incorrect|false|ruled out)(?=[ \t]*(?:[.,;:!)\n]|$|because\b|since\b|as\b|either\b))"
)
# a letter with another right after it, joined by "or" or "/" ("The answer is A or B.", "Answer: A (or maybe B)",
# "A/B"): a hedge between two options, which states neither (as the free-answer parsers read "7 or 8")
_OR_ANOTHER = re.compile(
    r"[ \t]*(?:,[ \t]*)?(?:\([ \t]*)?(?:or|/)[ \t]*(?:(?:maybe|perhaps|possibly|probably)[ \t]+)?"
    r"\(?([A-Z])\)?(?![A-Za-z0-9])"
)
# a letter that ends its clause: a punctuation mark, a bracket, the end, or because / since / as ("It is B." and "It is
# B (it rises)." state B; "It is B that I'm unsure about." and "B could also be wrong" do not)
_CLAUSE_ENDS = r"(?=[ \t]*(?:[.,;:!()\n]|$|(?i:because|since|as)\b))"
# ... unless a pick among them follows ("Answer: C or D; I'm leaning towards D.", "The answer is A or B, most likely
# B.", "A or B? It's B."): that one, where its letter ends its clause and no other option's letter follows it ("The
# answer is A, or maybe B.", "I'd say B is less likely." and "Probably C, but it could also be B." have none)
_PICK = re.compile(
    r"\b(?i:lean(?:ing|s)?[ \t]+(?:more[ \t]+)?towards?|most[ \t]+likely|more[ \t]+likely|probably"
    r"|i(?:[ \t]+would|[ \t]+will|['’]d|['’]ll)[ \t]+(?:go[ \t]+with|pick|choose|say)|i[ \t]+(?:pick|choose|prefer)"
    r"|it[ \t]+is|it['’]s)[ \t]+(?:(?i:option|choice)[ \t]+)?\(?([A-Z])\)?(?![A-Za-z0-9])"
    r"(?![ \t]*(?:,[ \t]*)?(?i:or\b|/))" + _CLAUSE_ENDS
)
# an option's letter standing alone (not "A" as an article before a word, nor "I" before a word): after a pick, it
# names another option
_ANY_LETTER = re.compile(r"(?<![A-Za-z0-9'’])\(?([A-Z])\)?(?![A-Za-z0-9'’])(?!(?<=I)[ \t]+[a-z])")
# a letter ruled out, then another one in its place, ending its clause: "The answer is not A; it is C.", "Not option
# B but D." (the later one is stated; "It's not A, but B could also be wrong." states none)
_NOT_THEN = re.compile(
    r"\b(?i:not)[ \t]+(?:(?i:option|choice|answer)[ \t]+)?\(?[A-Z]\)?(?![A-Za-z0-9])[ \t]*(?:[,;:.—–-][ \t]*)?"
    r"(?:(?i:but[ \t]+)?(?i:it[ \t]+is|it['’]s|it[ \t]+must[ \t]+be)[ \t]+|(?i:but|rather|instead)[ \t]+)"
    r"(?:(?i:option|choice)[ \t]+)?\(?([A-Z])\)?(?![A-Za-z0-9])" + _CLAUSE_ENDS
)
# a retraction or a correction ("A. Wait, no. B.", "The answer is B. Or rather, C.", "Nine - no wait, ten.", "I mean",
# "Correction:", "Ten frames? No, nine."): when an answer alone follows it (a letter, an option's text, in its own
# sentence: _answer_alone), only what follows the last such one counts ("Wait, no other option fits." has none)
# ("no" opening a noun phrase is none: "Wait, no sign of going up.", "Actually, no left turn happens.")
_RETRACTION = re.compile(
    r"\b(?:(?:wait|hmm|actually|oh)[ \t]*(?:,[ \t]*)?no\b(?![ \t]+(?!wait\b|it\b|it['’]s\b)[a-z0-9])"
    r"|no[ \t]*(?:,[ \t]*)?wait\b|or[ \t]+rather\b|i[ \t]+mean\b"
    r"|correction[ \t]*:|scratch[ \t]+that\b)|\?[ \t]*no\b",
    re.IGNORECASE,
)
_RETRACTION_SEP = re.compile(r"[\s,.:;!—–-]*")
_SENTENCE_END = re.compile(r"[.!?;\n]|,[ \t]")
# (what may open that answer: "Wait, no, it's B.", "Or rather, option C.")
_LEAD_IN = re.compile(r"(?:it is|it's|it’s|option|choice|the answer is|answer:?) ")
# ... but a sentence that rules an option out or judges one explains, it revises nothing ("B (right). I mean, it never
# goes left.", "Wait, no, left is wrong, so B.", "Is it 7? No, 7 is too few."): a negation or a verdict word in it,
# its answer's own text aside
_NOT_ALONE = re.compile(
    r"\b(?:not|never|cannot|no longer|wrong|incorrect|false|ruled out|unlikely|less likely"
    r"|too (?:few|many|much|little|slow|fast|small|large|big|short|long|early|late))\b|n['’]t\b"
)
# (a letter alone, after any lead-in: "B", "(B).", "`B`")
_LETTER_ALONE = re.compile(r"[`'\"*]*\(?([A-Z])\)?[.):]?[`'\"*]*[ \t]*$")
# (a doubt right after that answer: "..., hard to say.", "..., not sure.", "... - maybe.")
_UNSURE = re.compile(
    r"[ \t]*[,;:—–-]?[ \t]*(?:(?:it['’]?s|it is|that['’]?s|that is)[ \t]+)?(?:hard to (?:say|tell)|(?:i['’]m[ \t]+)?not"
    r"[ \t]+(?:sure|certain)|unsure|uncertain|maybe|perhaps|possibly|i think|i guess)\b",
    re.IGNORECASE,
)
_QUESTION_REACH = 200  # characters: how far back the question before "? No" is read (its options: _after_retraction)
# a per-option verdict list: lines each opening with an option's label ("Option A: incorrect.", "(B) ... This is
# correct.", "C. 9 - wrong") and saying a verdict as their first or last word: the one option said right is the answer
_LABELLED_LINE = re.compile(
    r"^[ \t]*(?:[-*•>][ \t]*)?(?:(?i:option|choice)[ \t]*\(?([A-Z])\)?|\(([A-Z])\)|([A-Z])[.)])(?![A-Za-z0-9])(.*)$",
    re.MULTILINE,
)
_VERDICTS = {"correct": True, "right": True, "true": True, "yes": True}
_VERDICTS.update(dict.fromkeys(("incorrect", "wrong", "false", "no"), False))
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


def _words(o):
    """The option text ``o`` as whole words: a pattern that matches it where no letter or digit touches it."""
    return r"(?<![a-z0-9])" + re.escape(o) + r"(?![a-z0-9])"


def _stated(low, o):
    """Whether the option text ``o`` appears in ``low`` as whole words, at least once with neither a negation right
    before it ("a blue cube, not a red ball" states the cube, not the ball) nor a verdict against it right after it
    (_NEGATED_AFTER: "9 is not correct; it is 11" states 11, not 9)."""
    for m in re.finditer(_words(o), low):
        if not _NEGATED.search(low, max(0, m.start() - _NEGATION_REACH), m.start()):
            if not _NEGATED_AFTER.match(low, m.end()):
                return True
    return False


def _stated_ones(norms, low, among):
    """The indices in ``among`` whose text ``low`` states (_stated)."""
    return [i for i in among if _stated(low, norms[i])]


def _named(norms, low):
    """The indices of the options whose (normalized) text ``low`` states (:func:`_stated_ones`); where none, those
    whose text has a digit and that ``low`` states in number words ("nine frames": "9 frames"; digits win over
    words)."""
    hits = _stated_ones(norms, low, [i for i, o in enumerate(norms) if o])
    if hits:
        return hits
    numeric = [i for i, o in enumerate(norms) if re.search(r"[0-9]", o)]
    if numeric:
        spelled = _NUMBER_WORD.sub(_spelled, low)
        if spelled != low:
            return _stated_ones(norms, spelled, numeric)
    return []


def _letter(t, n):
    """The match of the letter ``t`` answers with (its last group), or None, and whether ``t`` states it: the last one
    it states among the first ``n`` letters (leading, "B. ...", or after "answer", or after "option" / "choice" with
    "is", ":" or "-", or followed by "is correct", or after another letter ruled out: "not A; it is C"), else the
    first it states ("Answer: E" of two options: no option's letter); where it states none, the first option it names
    ("option A")."""
    first = last = re.match(r"\(?([A-Z])(?:\)|[.:])(?:\s|$)", t)
    if last and LETTERS.index(last.group(1)) >= n:
        last = None
    named = None
    for m in sorted([*_ASKED.finditer(t), *_NOT_THEN.finditer(t)], key=lambda m: m.start(m.lastindex)):
        if m.re is _NOT_THEN or m.group(2) or m.group(3) or _AFFIRMED.match(t, m.end()):
            first = first or m
            if LETTERS.index(m.group(m.lastindex)) < n:
                last = m  # (a revision: "Answer: A ... wait, the answer is B." is B)
        elif named is None:
            named = m
    return (last or first, True) if last or first else (named, False)


def _letter_alone(s):
    """The match of the letter ``s`` (a sentence) is, maybe after "it's" / "option" / "the answer is" ("B", "(B).",
    "it's B", "option C"), from where the letter (or its bracket) starts; else None."""
    lead = _LEAD_IN.match(s.lower())
    return _LETTER_ALONE.match(s, lead.end() if lead else 0)


def _answer_alone(s, norms, n):
    """The index of the option ``s`` (a sentence) is alone, maybe after "it's" / "option" / "the answer is": its
    letter (_letter_alone), its text, or its number in words, with at most three other words ("it moves up", "ten
    frames"), and no negation or verdict word besides its text (_NOT_ALONE); else None."""
    low = _norm(s)
    lead = _LEAD_IN.match(low)
    low = low[lead.end() :] if lead else low
    letter = _letter_alone(s.strip().strip("`'\"*").strip())
    if letter:
        k = LETTERS.index(letter.group(1))
        return k if k < n else None
    hits = _named(norms, low) if low else []
    if len(hits) == 1:
        said = _NUMBER_WORD.sub(_spelled, low) if norms[hits[0]] not in low else low
        own = re.sub(_words(norms[hits[0]]), " ", low)
        if len(said.split()) - len(norms[hits[0]].split()) <= 3 and not _NOT_ALONE.search(own):
            return hits[0]
    return None


def _asked_about(t, pos, norms):
    """The indices of the options whose text the question ending at ``pos`` (a "?") names ("Is it 7?": "7"): a "No"
    after it rules those out, it does not answer with them ("Is it 7? No, 7 is too few.")."""
    start = max(t.rfind(c, max(0, pos - _QUESTION_REACH), pos) for c in ".!?\n") + 1
    return _named(norms, _norm(t[max(start, pos - _QUESTION_REACH) : pos]))


def _after_retraction(t, norms):
    """``t`` from the answer alone (_answer_alone) that follows its last retraction (_RETRACTION) on; all of it when
    no retraction is followed by one, or when it names the option the question before "? No" asked about, or when it
    is itself a question ("Is it 9, or rather 11?")."""
    reach = max([len(o) for o in norms] + [0]) + 40
    for m in reversed(list(_RETRACTION.finditer(t))):
        start = _RETRACTION_SEP.match(t, m.end()).end()
        end = _SENTENCE_END.search(t, start, start + reach)
        end = end.start() if end else len(t) if len(t) - start <= reach else None
        k = _answer_alone(t[start:end], norms, len(norms)) if end is not None and end > start else None
        if k is None or t.startswith("?", end) or _UNSURE.match(t, end):
            continue  # (no answer alone; or one asked or doubted: "Is it 9, or rather 11?", "Left? No. Right? Yes.
            # Up? No.", "It's 9 or rather 11, hard to say.")
        if not (t.startswith("?", m.start()) and k in _asked_about(t, m.start(), norms)):
            letter = _letter_alone(t[start:end])  # (from the letter on: "Wait, no, it's B." reads "B.")
            return t[start + letter.start() if letter else start :]
    return t


def _without_echo(t, norms):
    """``t`` without the prompt's option list echoed back: lines each an option's label and exactly its text ("A. Turns
    left\nB. Turns right\n..."), two or more of them; all of ``t`` when nothing else is left."""
    echoed = []
    for m in _LABELLED_LINE.finditer(t):
        k = LETTERS.index(m.group(1) or m.group(2) or m.group(3))
        if k < len(norms) and norms[k] and _norm(re.sub(r"^[\s:.)—–-]+", "", m.group(4))) == norms[k]:
            echoed.append(m)
    if len({m.group(0).strip() for m in echoed}) < 2:
        return t
    rest = "".join(
        t[a.end() if a else 0 : b.start() if b else len(t)] for a, b in zip([None, *echoed], [*echoed, None])
    )
    return rest if rest.strip() else t


def _verdicts(t, norms):
    """From a per-option verdict list (_LABELLED_LINE, at least two of its lines with a verdict): the index of the one
    option said right (None where several are), and where the list ends; None where ``t`` has no such list or it says
    no option right. A line's verdict is read with its own option's text left out ("C. No turn" says no verdict), and
    a verdict word that is an option's text ("right" of left / right) or that asks ("..., right?") is none."""
    said, end = {}, 0
    for m in _LABELLED_LINE.finditer(t):
        k = LETTERS.index(m.group(1) or m.group(2) or m.group(3))
        if k >= len(norms):
            continue
        line = re.sub(r"\s+", " ", m.group(4).lower())
        if norms[k]:
            line = re.sub(_words(norms[k]), " ", line)
        words = list(re.finditer(r"[a-z']+", line))
        verdicts = set()
        for i in (int(bool(words) and words[0].group() in ("is", "this")), len(words) - 1):
            if 0 <= i < len(words):
                w = words[i].group()
                if w in _VERDICTS and w not in norms and not re.match(r"[ \t]*\?", line[words[i].end() :]):
                    negated = i > 0 and words[i - 1].group() in ("not", "isn't")
                    verdicts.add(_VERDICTS[w] != negated)
        if len(verdicts) == 1:
            said[k], end = verdicts.pop(), m.end()
    right = [k for k, v in said.items() if v]
    if len(said) < 2 or not right:
        return None
    return (right[0] if len(right) == 1 else None), end


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
    "A/B"), unless a pick among the two follows ("Answer: C or D; I'm leaning towards D." is D; "most likely B",
    "probably B", "I'd go with B", "It's B"), its letter ending its clause (punctuation, a bracket, the end, because)
    and no other option's letter after it ("It is B that I'm unsure about.", "Probably C, but it could also be B."
    name none). A letter in place of one ruled out, ending its clause too, states it ("The answer is not A; it is C."
    is C, "Not option B but D." is D; "It's not A, but B could also be wrong." states none).

    A retraction or a correction ("wait, no", "no wait", "actually, no", "or rather", "I mean", "correction:",
    "scratch that", a question answered "No,") followed by an answer alone in its own sentence (a letter, maybe
    after "it's" / "option" / "the answer is", an option's text, or its number in words, with at most three other
    words, and no negation or verdict word besides the option's text: _NOT_ALONE) revises the answer: only what
    follows the last one is read ("A. Wait, no. B." is B, "A. Wait, no, it's B." is B, "The answer is B. Or rather,
    C." is C, "Nine - no wait, ten." is "10"; "Answer: A. Wait, no other option fits." is A; "B (right). I mean, it
    doesn't go left." and "Answer: B. Does it move left? No, left is wrong." are no revision, nor is "Is it 7? No, 7
    ..." to 7, the option the question asked about; nor is an answer itself asked or doubted: "Is it 9, or rather
    11?", "It's 9 or rather 11, hard to say."; "Wait, no sign of going up." is no retraction). A per-option verdict
    list (lines opening with "Option A:", "(A)", "A." ... whose first or last word, the line's own option text left
    out, is correct / right / true / yes or incorrect / wrong / false / no and not followed by "?", at least two of
    them) gives the one option said right ("Option A: incorrect.\nOption B: correct.\n..." is B), None where several
    are or where another option's text is named after it, unless a letter is stated after it. The prompt's option
    list echoed back (two or more lines each a label and exactly its option's text) is left out ("A. Left\nB.
    Right\n...\n\nThe ball moves right." is right).
    An option's text followed by a verdict against it ending its clause ("9 is not correct", "left is not the
    answer", "is wrong", "is ruled out": _NEGATED_AFTER) is ruled out ("9 is not correct; it is 11." is 11); a
    negation of what it does or is is none, the question's polarity being unknown ("The red ball does not move, but
    the blue cube does." and "The red ball is not present; the blue cube is." name none; "The red ball does not
    move." is the ball)."""
    t = str(text or "")
    turn = _NEXT_TURN.search(t)
    if turn and t[: turn.start()].strip():
        t = t[: turn.start()]
    norms = [_norm(o) for o in options]
    t = _without_echo(after_final_answer(t).replace("**", ""), norms)
    t = _after_retraction(t, norms).strip().strip("`'\"").strip()
    low = _norm(t)
    if not low:
        return None
    hits = [i for i, o in enumerate(norms) if o and o == low]
    if len(hits) == 1:
        return hits[0]
    hits = None  # (the options named by their text: looked for only when needed)
    m = re.fullmatch(r"\(?([a-z])\)?[.):]?", low)
    stated = m is not None
    if m is None:
        m, stated = _letter(t, len(options))
    listed = _verdicts(t, norms)
    if listed and not (stated and m.start() >= listed[1]):
        # (a verdict list, and no letter stated after it; another option's text after it is a conflict: "Option B:
        # correct.\n...\nSo the answer is 11." names none)
        after = _named(norms, _norm(t[listed[1] :]))
        return None if after and listed[0] not in after else listed[0]
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
            # (a hedge: "The answer is A or B."; a pick among them after it: "..., most likely B.")
            picks = list(_PICK.finditer(t, other.end()))
            pair = {m.group(m.lastindex).upper(), other.group(1)}
            if len({p.group(1) for p in picks}) != 1 or picks[0].group(1) not in pair:
                return None
            pick = picks[0].group(1)
            for later in _ANY_LETTER.finditer(t, picks[-1].end()):
                named = later.group(1)
                if named != pick and LETTERS.index(named) < len(options) and not _ARTICLE.match(t, later.start(1)):
                    return None  # (another option named after the pick: "Probably C, but it could also be B.")
            return LETTERS.index(pick)
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
