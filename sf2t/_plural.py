"""Counts in what the commands print: ``1 step``, ``2 steps`` (``trained 1 steps`` was printed)."""

from __future__ import annotations

__all__ = ["counted", "noun_for", "plural"]


def plural(noun: str) -> str:
    """The English plural of a regular ``noun``: ``step`` -> ``steps``, ``entry`` -> ``entries``, ``pass`` ->
    ``passes``."""
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        return noun[:-1] + "ies"
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    return noun + "s"


def noun_for(n: int | float, noun: str, nouns: str | None = None) -> str:
    """``noun`` for a count ``n`` said elsewhere (a list shown after it): singular for 1, else plural (``nouns``,
    default :func:`plural`): ``noun_for(1, "task")`` is ``"task"``, ``noun_for(2, "task")`` ``"tasks"``."""
    return noun if n == 1 else (nouns or plural(noun))


def counted(n: int | float, noun: str, nouns: str | None = None, fmt: str = "") -> str:
    """``n`` and ``noun``, singular for 1, else plural (``nouns``, default :func:`plural`): ``counted(1, "step")`` is
    ``"1 step"``, ``counted(0, "video")`` ``"0 videos"``. ``fmt``: the number's format spec (``","``: ``1,024``)."""
    return f"{n:{fmt}} {noun_for(n, noun, nouns)}"
