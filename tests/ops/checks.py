"""Checks shared by the op tests."""

from __future__ import annotations

import torch


def assert_token_merge_matches_reference(x: torch.Tensor, grid, keep: float, backend: str, **kw) -> None:
    """``token_merge`` with ``backend`` gives the reference's kept tokens, positions and counts, and the same
    gradient to ``x`` (which must require grad)."""
    from sf2t.ops import token_merge

    ref = token_merge(x, grid, keep, backend="reference", **kw)
    got = token_merge(x, grid, keep, backend=backend, **kw)
    assert torch.equal(got[1], ref[1]) and torch.equal(got[2], ref[2])
    torch.testing.assert_close(got[0], ref[0], rtol=1e-6, atol=1e-6)
    w = torch.randn_like(ref[0])
    (g_ref,) = torch.autograd.grad((ref[0] * w).sum(), x)
    (g_got,) = torch.autograd.grad((got[0] * w).sum(), x)
    torch.testing.assert_close(g_got, g_ref, rtol=1e-6, atol=1e-6)


class InterpreterErrorStandIn(Exception):
    """Stands for Triton's InterpreterError, which wraps NumPy's TypeError in its text (Triton 3.6's interpreter with
    NumPy 2.4; CI's Triton 3.8 runs, so the tests raise this from a patched launch)."""


# the InterpreterError's text on that pair
NUMPY_SCALAR_ERROR = "TypeError('only 0-dimensional arrays can be converted to Python scalars')"


def assert_names_the_interpreter_versions(message: str, what: str) -> None:
    """``message`` is sf2t's error for that pair: what failed, both versions, and the fix."""
    import numpy as np
    import triton

    assert message.startswith(f"{what}: Triton ") and "TRITON_INTERPRET=1" in message
    assert f"NumPy {np.__version__}" in message and "numpy<2.4" in message and "Triton >= 3.8" in message
    assert f"Triton {triton.__version__}'s interpreter" in message
