"""The one error type for videos that cannot be used: every reader, probe and backend raises it."""

from __future__ import annotations

import os
import re

__all__ = ["VideoError", "first_line"]


class VideoError(Exception):
    """A video that cannot be used, with ``path``, a human ``reason`` and a short ``kind`` code.

    kinds: ``missing``, ``empty``, ``unreadable``, ``permission``, ``not_video`` (an image, audio-only or other
    non-video file), ``no_video``, ``no_frames``, ``truncated``, ``corrupt``, ``unsupported`` (the chosen
    backend cannot decode this codec / pixel format), ``out_of_range``, ``timeout``, ``no_decoder``.
    """

    def __init__(self, path: str | os.PathLike, reason: str, kind: str = "unreadable"):
        self.path = str(path)
        self.reason = reason
        self.kind = kind
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):  # picklable across DataLoader / index worker processes
        return (VideoError, (self.path, self.reason, self.kind))


def first_line(e: BaseException) -> str:
    """``Type: first line of the message``, without torchcodec's ``Function, /build/path/File.cpp:41, `` prefix
    and without PyAV's ``[Errno N] ...: 'path'`` wrapping (the path is in the VideoError already)."""
    strerror = getattr(e, "strerror", None)
    if isinstance(strerror, str) and strerror and type(e).__module__.startswith("av"):
        return strerror
    text = str(e).strip().splitlines()
    line = re.sub(r"^(\S+, )?/\S+:\d+, ", "", text[0] if text else "")
    return f"{type(e).__name__}: {line}"
