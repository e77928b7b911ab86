"""Names a user gives: a close match for a mistyped one, and the rule for names sf2t writes into files."""

from __future__ import annotations

import re
from typing import Iterable

# a name that becomes a file name and goes into generated YAML / Python (finevidbench export's task name)
_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
SAFE_NAME_CHARS = "ASCII letters, digits, '_', '.' and '-' ('.' and '-' not first), at most 128 characters"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"did you mean 'x'? "`` for the choice ``word`` most likely meant (a prefix either way, as ``out`` for
    ``out_dir``, else a close spelling), or ``""`` when none is close."""
    import difflib

    choices = list(choices)
    starts = sorted(c for c in choices if word and (c.startswith(word) or word.startswith(c)))
    near = starts if len(starts) == 1 else difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {near[0]!r}? " if near else ""


def safe_name(text: str) -> str:
    """``text`` made a safe name: each run of other characters (a space, a '/', a non-ASCII letter) becomes one
    '_', leading and trailing '_', '.' and '-' dropped, cut to 128 characters; ``""`` when nothing is left."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.-")[:128]


def check_safe_name(name: str, label: str, why: str = "it names files and goes into generated YAML / Python") -> str:
    """``name`` when it follows the rule (:data:`SAFE_NAME_CHARS`); else a ValueError naming ``label``, the characters
    allowed, ``why`` and the name it would be made into (:func:`safe_name`): a name is used as given or refused, never
    changed without a word."""
    if _SAFE.fullmatch(name):
        return name
    fixed = safe_name(name)
    hint = f"; e.g. {fixed!r}" if fixed else ""
    raise ValueError(f"{label} {name!r}: a name is {SAFE_NAME_CHARS} ({why}){hint}")
