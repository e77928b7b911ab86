"""Argument checks shared by sf2t's public functions: one rule, one message, wherever an integer is asked for.

An integer argument takes a Python int or a numpy integer (``np.int64`` from an array, ``np.uint16`` from a header):
both are ``numbers.Integral``. It refuses a bool (Python's ``True`` is an int and was read as 1: a different layout,
no error) and numpy's ``np.bool_``, a float (even ``28.0``: a computed size that should have been rounded on
purpose), a string and a tensor (``int(t)`` would wait for its device; the caller should say so).
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["check_int", "check_int_pair", "check_real", "check_bool", "is_real", "check_backend"]


def _need(min_value: int | None) -> str:
    if min_value is None:
        return "an int"
    if min_value == 1:
        return "a positive int"
    if min_value == 0:
        return "a non-negative int"
    return f"an int >= {min_value}"


def _what_it_is(v: Any) -> str:
    """How a refused value is named in a message, with the fix where there is an obvious one."""
    if isinstance(v, (bool, np.bool_)):
        return f"the bool {v!r} (a bool is not a number here)"
    torch = sys.modules.get("torch")  # (not imported here: sf2t.synth uses these checks without torch)
    if torch is not None and isinstance(v, torch.Tensor):
        return f"a tensor {v!r}: pass int(it)"
    if isinstance(v, numbers.Real) and float(v).is_integer():
        return f"{type(v).__name__} {v!r}: pass {int(v)}"
    if isinstance(v, str):
        try:  # (not str.isdigit: "²" and "+-5" pass it, and int() of them raised its own message, no argument named)
            return f"the string {v!r}: pass the number {int(v)}"
        except ValueError:
            return f"the string {v!r}"
    return f"{type(v).__name__} {v!r}"


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def check_int(name: str, v: Any, *, min_value: int | None = None) -> int:
    """``v`` as a Python int, checked: an int or a numpy integer, not a bool, float, string or tensor; at least
    ``min_value`` when given. A ValueError naming ``name`` and what it got otherwise."""
    if not _is_int(v):
        raise ValueError(f"{name} must be {_need(min_value)}, got {_what_it_is(v)}")
    if min_value is not None and v < min_value:
        raise ValueError(f"{name} must be {_need(min_value)}, got {int(v)}")
    return int(v)


def is_real(v: Any) -> bool:
    """Whether ``v`` is a real number: an int, a float or a numpy one, not a bool (``np.bool_`` either)."""
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def check_real(name: str, v: Any, lo: float = 0.0, hi: float = math.inf) -> float:
    """``v`` as a Python float, checked: a finite real number (:func:`is_real`; not a bool, a string or NaN) in
    [lo, hi]. A NaN threshold failed every comparison (a guard then refused every sample, each counted as a still
    video). A ValueError naming ``name`` and what it got otherwise."""
    if not is_real(v) or not math.isfinite(float(v)) or not lo <= v <= hi:
        need = f"a number in [{lo:g}, {hi:g}]" if math.isfinite(hi) else f"a finite number >= {lo:g}"
        raise ValueError(f"{name} must be {need}, got {type(v).__name__} {v!r}")
    return float(v)


def check_bool(name: str, v: Any) -> bool:
    """``v`` as a Python bool, checked: a bool (numpy's too); a string such as ``"no"`` was read as True."""
    if not isinstance(v, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {type(v).__name__} {v!r}")
    return bool(v)


def check_int_pair(name: str, v: Any, form: str = "(h, w)") -> tuple[int, int]:
    """``v`` as two Python ints, checked: a sequence (tuple, list, torch.Size) or a 1-D numpy array of two ints or
    numpy integers, neither a bool. The values' range is the caller's to check (its message knows the rule).
    ``form`` names the pair's parts in the message, e.g. ``"(out_h, out_w)"``."""
    ok_container = (isinstance(v, Sequence) and not isinstance(v, (str, bytes))) or (
        isinstance(v, np.ndarray) and v.ndim == 1
    )
    if not ok_container or len(v) != 2:
        square = f": pass ({v!r}, {v!r}) for a square" if _is_int(v) else ""
        raise ValueError(f"{name} must be {form} ints, got {type(v).__name__} {v!r}{square}")
    parts = [p.strip() for p in form.strip("()").split(",")]
    for part, x in zip(parts, v):
        if not _is_int(x):
            raise ValueError(f"{name} must be {form} ints, got {tuple(v)!r}: {part} is {_what_it_is(x)}")
    return int(v[0]), int(v[1])


def check_backend(backend: Any, backends: Sequence[str]) -> str | None:
    """``backend`` as a str or None (None and "" ask for the default), checked for its type only: which names an op
    takes (and how it falls back) is the op's to say. Another type is refused: ``backend=False`` (or 0) meant
    "choose for me" before, without a word; ``backends`` names the choices in the message."""
    if backend is None or (isinstance(backend, str) and backend == ""):
        return None
    if not isinstance(backend, str):
        raise ValueError(f"backend must be one of {tuple(backends)} or None, got {type(backend).__name__} {backend!r}")
    return backend
