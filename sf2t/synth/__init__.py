"""Procedural synthetic videos with exact ground truth (sprites, events, camera pan) for tests and demos."""

from sf2t.synth.contrast import make_contrast_clip, render_contrast_frames
from sf2t.synth.generator import (
    PALETTE,
    SHAPES,
    SUPPORTED_CODECS,
    encode_frames,
    ground_truth,
    iter_frames,
    make_clip,
    make_clips,
    render_frames,
)
from sf2t.synth.metrics import frame_mads, thumbnail, thumbnail_mad

__all__ = [
    "PALETTE",
    "SHAPES",
    "SUPPORTED_CODECS",
    "encode_frames",
    "frame_mads",
    "ground_truth",
    "iter_frames",
    "make_clip",
    "make_clips",
    "make_contrast_clip",
    "render_contrast_frames",
    "render_frames",
    "thumbnail",
    "thumbnail_mad",
]
