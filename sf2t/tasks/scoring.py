"""Scoring model answers against ``meta`` (TASKS.md): exact score in {0, 1} and a partial score in [0, 1].

Parsing tolerates case, spacing and surrounding words ("There are 7 frames." scores as 7; "yes, it is" as
Yes). Both scores are pure functions of (answer text, meta), so they also serve as verifiable rewards.
"""

from __future__ import annotations

import re

__all__ = ["parse_count", "parse_yes_no", "score", "partial_score", "truth_text"]

_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
}
_INT_RE = re.compile(r"(?<![\w.])[-+]?\d+|\b(?:" + "|".join(_NUMBER_WORDS) + r")\b", re.IGNORECASE)
_YES_NO_RE = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def parse_count(text: str) -> int | None:
    """First integer in ``text`` (digits or an English number word up to twenty), or None."""
    m = _INT_RE.search(text or "")
    if m is None:
        return None
    tok = m.group(0).lower()
    return _NUMBER_WORDS[tok] if tok in _NUMBER_WORDS else int(tok)


def parse_yes_no(text: str) -> bool | None:
    """True for the first standalone "yes", False for the first "no" (case-insensitive), else None."""
    m = _YES_NO_RE.search(text or "")
    return None if m is None else m.group(1).lower() == "yes"


def truth_text(meta: dict) -> str:
    """The canonical answer text, re-derived from ``meta``."""
    task, ans = meta["task"], meta["answer"]
    if task == "counting":
        return f"{ans['count']}"
    if task == "disorder":
        return "Yes." if ans["in_order"] else "No."
    raise ValueError(f"unknown task {task!r}")


def score(task: str, answer_text: str, meta: dict) -> float:
    """Exact score: 1.0 when the parsed answer equals the truth in ``meta``, else 0.0."""
    if task != meta.get("task", task):
        raise ValueError(f"score: task {task!r} but meta is for {meta['task']!r}")
    if task == "counting":
        return float(parse_count(answer_text) == int(meta["answer"]["count"]))
    if task == "disorder":
        got = parse_yes_no(answer_text)
        return float(got is not None and got == bool(meta["answer"]["in_order"]))
    raise ValueError(f"unknown task {task!r}")


def partial_score(task: str, answer_text: str, meta: dict) -> float:
    """Partial credit for reports: counting 1 - |n - F| / F clipped to [0, 1]; other tasks as ``score``."""
    if task == "counting":
        n, f = parse_count(answer_text), int(meta["answer"]["count"])
        return 0.0 if n is None else max(0.0, min(1.0, 1.0 - abs(n - f) / f))
    return score(task, answer_text, meta)
