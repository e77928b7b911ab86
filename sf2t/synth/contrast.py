"""High-contrast clips: one near-white square gliding in a straight line (any direction, no bounce) over a
static dark-noise background.

A tiny vision tower trained from scratch learns frame order (``disorder``) on these and not on the main
generator's coloured, ring-shaded, bouncing sprites (measurements in ``sf2t/train/NOTES.md``), so the demo
trains its ordering task on them. Ground truth as the main generator's: per-frame positions and the
motion direction.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from sf2t._checks import check_int
from sf2t.synth.generator import encode_frames
from sf2t.synth.scene import check_fps


def render_contrast_frames(
    seed: int, *, size: int = 112, num_frames: int = 40, angles: tuple[float, float] = (0.0, 360.0)
) -> tuple[np.ndarray, dict]:
    """Frames uint8 [num_frames, size, size, 3] and the ground truth (square side, per-frame top-left
    positions, direction in degrees, ``motion_direction`` as left/right/up/down by the dominant axis).

    ``angles``: the range the motion direction is drawn from, in degrees (0 = right, 90 = down in image
    coordinates). The default, any direction, makes an order and its reverse equally plausible; a narrow range
    (say 45-135: things fall) gives the clips an arrow of time, so the true order of shuffled frames is
    decidable (``rearrangement``)."""
    lo, hi = (float(a) for a in angles)
    if not lo < hi <= lo + 360.0:
        raise ValueError(f"angles must be (lo, hi) degrees with lo < hi <= lo + 360, got {angles!r}")
    seed = check_int("seed", seed, min_value=0)  # (Python ints in the ground truth: it is written as JSON)
    size = check_int("size", size, min_value=16)
    num_frames = check_int("num_frames", num_frames, min_value=2)
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
    side = int(rng.integers(size // 5, size // 3))
    free = size - side
    angle = math.radians(rng.uniform(lo, hi)) if (lo, hi) != (0.0, 360.0) else rng.uniform(0.0, 2.0 * math.pi)
    travel = rng.uniform(0.6, 1.0) * free  # path length over the clip, centred: never leaves the frame
    dx, dy = math.cos(angle) * travel, math.sin(angle) * travel
    frames = np.repeat(background[None], num_frames, axis=0)
    positions = []
    for t in range(num_frames):
        u = t / (num_frames - 1) - 0.5
        x = min(max(int(round(free / 2 + dx * u)), 0), free)
        y = min(max(int(round(free / 2 + dy * u)), 0), free)
        positions.append([x, y])
        frames[t, y : y + side, x : x + side] = 245
    if abs(dx) >= abs(dy):
        direction = "right" if dx > 0 else "left"
    else:
        direction = "down" if dy > 0 else "up"
    gt = {
        "kind": "contrast",
        "seed": seed,
        "width": size,
        "height": size,
        "num_frames": num_frames,
        "size": side,
        "angle_deg": math.degrees(angle),
        "positions": positions,
        "motion_direction": direction,
    }
    return frames, gt


def make_contrast_clip(
    path,
    seed: int,
    *,
    size: int = 112,
    num_frames: int = 40,
    fps: int = 25,
    codec: str = "h264",
    crf: int = 18,
    angles: tuple[float, float] = (0.0, 360.0),
) -> dict:
    """Render and write a contrast clip (H.264 .mp4 or VP9 .webm) plus its ground truth JSON next to it;
    returns the ground truth with ``path``. ``angles``: see :func:`render_contrast_frames`."""
    size = check_int("size", size, min_value=16)
    if size % 2:
        raise ValueError(f"size must be even for yuv420p, got {size}")
    fps = check_fps(fps)  # (a Python number: the ground truth is written as JSON)
    frames, gt = render_contrast_frames(seed, size=size, num_frames=num_frames, angles=angles)
    crf = check_int("crf", crf, min_value=0)
    path = Path(path)
    encode_frames(path, iter(frames), width=size, height=size, fps=fps, codec=codec, crf=crf)
    gt.update(path=str(path), fps=fps, codec=codec, crf=crf)
    path.with_suffix(".json").write_text(json.dumps(gt, indent=1))
    return gt
