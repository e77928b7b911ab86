"""Video probing, indexing, decoder backends and frame-exact window sampling; importing needs no decoder."""

from sf2t.video.backends import available_decoders, choose_decoder, decoder_threads, open_decoder
from sf2t.video.decode import decode_frames, probe
from sf2t.video.errors import VideoError
from sf2t.video.probe import VideoInfo

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
