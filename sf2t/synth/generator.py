"""Procedural videos with exact ground truth: a textured background, 1-4 moving sprites, appear/disappear events and
an optional camera pan; rendered with numpy, written with PyAV.

The conventions of the ground truth are documented in :mod:`sf2t.synth.scene`.
"""

from __future__ import annotations

import json
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from sf2t._checks import check_int
from sf2t.synth.raster import Renderer
from sf2t.synth.scene import PALETTE, SHAPES, check_args, check_fps, check_pos_int, ground_truth, sample_scene

__all__ = [
    "SUPPORTED_CODECS",
    "SHAPES",
    "PALETTE",
    "ground_truth",
    "render_frames",
    "iter_frames",
    "make_clip",
    "make_clips",
]


SUPPORTED_CODECS = {"h264": ("libx264", ".mp4", "mp4"), "vp9": ("libvpx-vp9", ".webm", "webm")}


def _prepare(seed, width, height, fps, seconds, num_sprites, camera_pan, events, static, slow_downs=True):
    width, height, fps, n_frames, seed = check_args(seed, width, height, fps, seconds, num_sprites)
    gt, bg_rng = sample_scene(seed, width, height, fps, n_frames, num_sprites, camera_pan, events, static, slow_downs)
    return gt, Renderer(gt, bg_rng)


def iter_frames(
    seed: int,
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 25,
    seconds: float = 5.0,
    num_sprites: int | None = None,
    camera_pan: bool | None = None,
    events: bool = True,
    static: bool = False,
    slow_downs: bool = True,
) -> tuple[Iterator[np.ndarray], dict]:
    """Like ``render_frames`` but lazily: (iterator of fresh [H, W, 3] uint8 frames, ground-truth dict)."""
    gt, r = _prepare(seed, width, height, fps, seconds, num_sprites, camera_pan, events, static, slow_downs)

    def gen():
        for t in range(gt["num_frames"]):
            yield r.render(t, np.empty((gt["height"], gt["width"], 3), dtype=np.uint8))

    return gen(), gt


def render_frames(
    seed: int,
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 25,
    seconds: float = 5.0,
    num_sprites: int | None = None,
    camera_pan: bool | None = None,
    events: bool = True,
    static: bool = False,
    slow_downs: bool = True,
) -> tuple[np.ndarray, dict]:
    """Render a clip: (uint8 RGB frames [N, H, W, 3], ground-truth dict).

    ``num_sprites`` None: the seed picks 1..4 (each equally likely); ``camera_pan`` None: the seed decides (p=0.5),
    True/False forces it; ``events``: let sprites appear/disappear mid-clip; ``static``: nothing moves (all frames
    identical); ``slow_downs`` False: every speed change speeds up (a slow-down starts the sprite at up to twice
    its kind's speed; the rest of the clip is drawn the same).
    """
    gt, r = _prepare(seed, width, height, fps, seconds, num_sprites, camera_pan, events, static, slow_downs)
    frames = np.empty((gt["num_frames"], gt["height"], gt["width"], 3), dtype=np.uint8)
    for t in range(gt["num_frames"]):
        r.render(t, frames[t])
    return frames, gt


# ----------------------------------------------------------------------------------------------------------------
# writing


def _check_codec(codec: str) -> tuple[str, str, str]:
    if codec not in SUPPORTED_CODECS:
        raise ValueError(f"unknown codec {codec!r}; supported codecs: {sorted(SUPPORTED_CODECS)}")
    return SUPPORTED_CODECS[codec]


def _check_even(name: str, v: Any) -> int:
    v = check_pos_int(name, v)
    if v % 2:
        raise ValueError(f"{name} must be even for yuv420p video, got {v}")
    return v


def encode_frames(
    path, frames, *, width: int, height: int, fps, codec: str = "h264", gop: int | None = None, crf: int | None = None
) -> Path:
    """Encode an iterable of uint8 [H, W, 3] RGB frames with PyAV (h264 -> libx264 in .mp4, vp9 -> libvpx-vp9
    in .webm, yuv420p, one encoder thread). Shared by every clip writer of sf2t.synth."""
    import av  # local: rendering alone does not need PyAV

    encoder, _, fmt = _check_codec(codec)
    width, height = check_pos_int("width", width), check_pos_int("height", height)
    gop = None if gop is None else check_pos_int("gop", gop)
    crf = None if crf is None else check_int("crf", crf, min_value=0)  # (the range is the encoder's: x264 0-51)
    for name, v in (("width", width), ("height", height)):
        if codec == "h264" and v % 2:
            raise ValueError(f"{name} must be even for h264 (libx264's yuv420p), got {v}; vp9 takes odd sizes")
    fps = check_fps(fps)  # (a Python number: Fraction() refuses np.float32)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if codec == "h264":
        opts = {"preset": "ultrafast", "crf": str(23 if crf is None else crf)}
    else:
        opts = {
            "deadline": "realtime",
            "cpu-used": "8",
            "lag-in-frames": "0",
            "crf": str(32 if crf is None else crf),
            "b": "0",  # constant-quality mode
            "row-mt": "0",
        }
    rate = Fraction(fps).limit_denominator(1001) if not isinstance(fps, int) else Fraction(fps)
    n = 0
    try:
        with av.open(str(path), mode="w", format=fmt) as container:
            stream = container.add_stream(encoder, rate=rate)
            cc = stream.codec_context
            cc.width, cc.height, cc.pix_fmt = width, height, "yuv420p"
            cc.thread_count = 1
            if gop is not None:
                cc.gop_size = gop
            cc.options = opts
            for t, rgb in enumerate(frames):
                rgb = np.asarray(rgb)
                if rgb.dtype != np.uint8 or rgb.shape != (height, width, 3):
                    raise ValueError(
                        f"frame {t} must be uint8 [{height}, {width}, 3] (height, width, RGB), got {rgb.dtype} "
                        f"{list(rgb.shape)}"  # (PyAV would rescale it silently)
                    )
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = t
                for pkt in stream.encode(frame):
                    container.mux(pkt)
                n += 1
            if n == 0:
                raise ValueError("frames is empty: a video needs at least one frame")
            for pkt in stream.encode(None):
                container.mux(pkt)
            unused = dict(cc.options)  # after opening, PyAV leaves here the options the encoder did not take
    except BaseException:
        path.unlink(missing_ok=True)  # never a half-written clip left behind
        raise
    if unused:
        warnings.warn(f"{encoder} ignored options {unused}", RuntimeWarning, stacklevel=3)
    return path


def make_clip(
    path,
    seed: int,
    *,
    codec: str = "h264",
    width: int = 320,
    height: int = 240,
    fps: int = 25,
    seconds: float = 5.0,
    num_sprites: int | None = None,
    camera_pan: bool | None = None,
    events: bool = True,
    static: bool = False,
    slow_downs: bool = True,
    gop: int | None = None,
    crf: int | None = None,
) -> dict:
    """Render a clip and write it with PyAV (h264 -> .mp4 via libx264, vp9 -> .webm via libvpx-vp9, yuv420p),
    plus its ground truth as JSON at ``path.with_suffix(".json")``.  Returns the ground truth with "path" added.

    ``path`` must end in the codec's extension (.mp4 / .webm) or have no suffix (then it is added).
    ``gop``: keyframe interval in frames; ``crf``: constant-rate factor (x264: 0-51, default 23; vp9: 0-63,
    default 32).
    """
    _, ext, _ = _check_codec(codec)
    width = _check_even("width", width)
    height = _check_even("height", height)
    if gop is not None:
        gop = check_pos_int("gop", gop)
    if crf is not None:
        hi = 51 if codec == "h264" else 63
        crf = check_int("crf", crf)
        if not 0 <= crf <= hi:
            raise ValueError(f"crf for {codec} must be an int in 0..{hi}, got {crf}")
    path = Path(path)
    if path.suffix == "":
        path = path.with_suffix(ext)
    elif path.suffix.lower() != ext:
        raise ValueError(f"path {str(path)!r} must end in {ext!r} for codec {codec!r} (or have no suffix)")
    gt, r = _prepare(seed, width, height, fps, seconds, num_sprites, camera_pan, events, static, slow_downs)
    buf = np.empty((height, width, 3), dtype=np.uint8)

    encode_frames(
        path,
        (r.render(t, buf) for t in range(gt["num_frames"])),
        width=width,
        height=height,
        fps=fps,
        codec=codec,
        gop=gop,
        crf=crf,
    )
    gt["codec"] = codec
    gt["gop"] = gop
    gt["crf"] = crf
    gt["path"] = str(path)
    path.with_suffix(".json").write_text(json.dumps(gt, indent=1))
    return gt


def make_clips(out_dir, n: int, *, seed: int = 0, codec: str = "h264", **kwargs) -> list[dict]:
    """Write ``n`` clips ``out_dir/clip_{i:04d}.mp4`` (or .webm) with seeds ``seed + i``; returns their ground truth."""
    n = check_int("n", n, min_value=0)
    seed = check_int("seed", seed, min_value=0)  # (seed + i below: a bool or a float would pass as a number)
    _, ext, _ = _check_codec(codec)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [make_clip(out / f"clip_{i:04d}{ext}", seed + i, codec=codec, **kwargs) for i in range(n)]
