"""Triton's CPU interpreter (``TRITON_INTERPRET=1``) with a NumPy it cannot run on: one clear message.

Triton 3.6's interpreter keeps kernel scalars as 1-element NumPy arrays and converts them with ``int()``, which
NumPy 2.4 refuses ("only 0-dimensional arrays can be converted to Python scalars"): the tiled fragment_pack kernel
and the token_merge kernel stop there, with Triton's ``InterpreterError`` wrapping NumPy's TypeError. Triton 3.8
(CI's) runs with NumPy 2.4, and compiled kernels (CUDA tensors) are not affected. :func:`interpreter_errors` turns
exactly that error into a RuntimeError that names the versions and the fix; any other error passes through unchanged.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

_NUMPY_SCALAR = "only 0-dimensional arrays can be converted to Python scalars"


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except (ImportError, AttributeError):
        return "?"


def interpreter_message(what: str) -> str:
    """Why ``what`` failed in Triton's interpreter with this NumPy, and what to do."""
    return (
        f"{what}: Triton {_version('triton')}'s interpreter (TRITON_INTERPRET=1) cannot run with NumPy "
        f"{_version('numpy')} ('{_NUMPY_SCALAR}'): install numpy<2.4 or Triton >= 3.8 (compiled kernels on CUDA "
        f"tensors are not affected; backend 'cpp' or 'reference' runs CPU tensors without Triton)"
    )


@contextlib.contextmanager
def interpreter_errors(what: str) -> Iterator[None]:
    """Around a Triton launch (a ``with`` block, or a decorator of the function that launches): under
    ``TRITON_INTERPRET=1``, NumPy's refusal to convert a 1-element array (Triton older than 3.8 with NumPy 2.4; Triton
    wraps it in its InterpreterError, whose text quotes NumPy's) becomes a RuntimeError naming both versions;
    everything else passes unchanged."""
    try:
        yield
    except Exception as e:
        if os.environ.get("TRITON_INTERPRET") == "1" and _NUMPY_SCALAR in str(e):
            raise RuntimeError(interpreter_message(what)) from e
        raise
