"""Loading of the compiled extension ``sf2t._C``.

Importing sf2t never fails because of the extension: a missing, unloadable or stale build is recorded
here and turned into an error that says how to rebuild only when a compiled path is asked for.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent
REBUILD_HINT = (
    "rebuild it from the source checkout with: "
    "CUDA_HOME=/usr/local/cuda MAX_JOBS=2 pip install -e . --no-build-isolation "
    "(SF2T_NO_CUDA=1 for a CPU-only build)"
)


class ExtensionError(RuntimeError):
    """A compiled sf2t kernel was asked for but the extension is missing, stale or lacks that backend."""


def build_info() -> dict:
    """What setup.py recorded about the build (empty when sf2t was never built)."""
    path = _PKG / "_build_info.json"
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def sources_digest(root) -> str:
    """SHA-256 over every C++/CUDA source under ``root``; setup.py records it, stale_reasons compares."""
    h = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(root, "**", "*"), recursive=True)):
        if os.path.isfile(path) and path.endswith((".cpp", ".cu", ".h", ".cuh")):
            h.update(os.path.relpath(path, root).encode())
            with open(path, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def stale_reasons() -> list[str]:
    """Why the compiled extension may not match what is running (empty when it matches)."""
    import torch

    info = build_info()
    reasons = []
    if not info:
        return reasons
    if info.get("torch") and info["torch"] != torch.__version__:
        reasons.append(f"built against torch {info['torch']}, running torch {torch.__version__}")
    csrc = _PKG.parent / "csrc"
    if csrc.is_dir() and info.get("sources_sha256") and sources_digest(csrc) != info["sources_sha256"]:
        reasons.append("C++/CUDA sources in csrc/ changed since the build")
    return reasons


@functools.lru_cache(maxsize=None)
def _load() -> tuple[bool, str | None]:
    import torch  # noqa: F401  (the extension links against torch's libraries)

    try:
        from sf2t import _C  # noqa: F401
    except ImportError as e:  # missing or built against another torch
        return False, f"sf2t._C could not be loaded ({e})"
    stale = stale_reasons()
    if any(r.startswith("built against torch") for r in stale):
        # Loading worked, but the ABI may differ: refuse to run its kernels.
        return False, "sf2t._C is stale: " + "; ".join(stale)
    return True, None


def is_loaded() -> bool:
    return _load()[0]


def load_error() -> str | None:
    return _load()[1]


def has_cuda_kernels() -> bool:
    return is_loaded() and bool(build_info().get("with_cuda"))


def require(what: str = "this sf2t op", cuda: bool = False) -> None:
    """Raise ExtensionError with the fix when the extension (or its CUDA part) is not usable."""
    ok, err = _load()
    if not ok:
        raise ExtensionError(f"{what} needs the compiled extension, but {err}; {REBUILD_HINT}")
    if cuda and not build_info().get("with_cuda"):
        reason = build_info().get("cuda_reason", "unknown")
        raise ExtensionError(
            f"{what} needs CUDA kernels, but sf2t._C was built without CUDA ({reason}); {REBUILD_HINT}"
        )
