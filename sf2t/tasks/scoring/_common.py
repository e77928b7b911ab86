"""What the scoring parsers share: number words and numbers (``_NUMBER``, ``_int``), a hedge that offers another
option (``_COULD_BE``) and the final-answer marker (``after_final_answer``)."""

from __future__ import annotations

import re

from sf2t.finevidbench.choice import after_final_answer  # ("Final answer: 8": read as sf2t eval reads answers)

__all__ = ["_NUMBER_WORDS", "_NUMBER", "_INT_RE", "_int", "_COULD_BE", "after_final_answer"]

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


def _int(digits: str) -> int:
    """An integer from a run of digits; a run longer than 18 digits (a degenerate generation: Python refuses past
    4300) is capped at +-10**18, which no answer equals."""
    body = digits.lstrip("+-")
    if len(body) <= 18:
        return int(digits)
    return -(10**18) if digits.startswith("-") else 10**18


# a hedge that offers a second option: in parse_count's _HEDGE and parse_span's _SPAN_HEDGE
_COULD_BE = r"(?:(?:but|though|although)\s+)?(?:it\s+)?(?:could|might|may)\s+(?:also\s+)?be"  # ("7, but it could be 8")
