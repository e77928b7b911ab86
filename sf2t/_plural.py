"""Counts in what the commands print: ``1 step``, ``2 steps`` (``trained 1 steps`` was printed)."""

from __future__ import annotations

__all__ = ["counted", "none_of", "noun_for", "plural"]


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


def none_of(n: int, noun: str, verb: str, negated: str, *, owner: str = "the", nouns: str | None = None) -> str:
    """That not one of ``n`` things does something, said naturally for one: ``none_of(3, "video", "can be read",
    "cannot be read")`` is ``"none of the 3 videos can be read"``, ``none_of(1, ...)`` ``"the only video cannot be
    read"`` (not ``"none of the 1 video can be read"``). ``owner``: the word before them (``"its"``: ``"its only
    record does not fit"``); ``nouns``: the plural, as in :func:`counted`."""
    if n == 1:
        return f"{owner} only {noun} {negated}"
    return f"none of {owner} {counted(n, noun, nouns)} {verb}"
