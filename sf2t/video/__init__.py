"""Video probing, indexing, decoder backends and frame-exact window sampling; importing needs no decoder.

Names are imported lazily (PEP 562), so ``sf2t index``'s worker processes, which only probe, start without
importing torch."""

from __future__ import annotations

import importlib

import sf2t.video.probe  # noqa: F401 - load the submodule now, so the function ``probe`` below keeps the name
from sf2t.video.errors import VideoError
from sf2t.video.probe import VideoInfo

_WHERE = {
    "available_decoders": "sf2t.video.backends",
    "choose_decoder": "sf2t.video.backends",
    "decoder_threads": "sf2t.video.backends",
    "open_decoder": "sf2t.video.backends",
    "decode_frames": "sf2t.video.decode",
}

__all__ = [
    "VideoError",
    "VideoInfo",
    "available_decoders",
    "choose_decoder",
    "decode_frames",
    "decoder_threads",
    "open_decoder",
    "probe",
]


def probe(path, *, decoder: str = "auto", verify: bool = False, timeout: float | None = 60.0) -> VideoInfo:
    """Probe one video file (``sf2t.video.decode.probe``): frame count, fps, size, rotation, codec, ..."""
    from sf2t.video.decode import probe as _probe

    return _probe(path, decoder=decoder, verify=verify, timeout=timeout)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'sf2t.video' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_WHERE))
