"""Procedural videos with exact ground truth: a textured background, 1-3 moving sprites, appear/disappear events and
an optional camera pan.

Everything random comes from ``numpy.random.default_rng(seed)`` (split with ``Generator.spawn`` into independent
streams for the background, the sprites, the pan and the events, each always drawing the same numbers in the same
order), so the same seed and arguments give byte-identical frames, and forcing e.g. ``camera_pan`` does not change
the sprites a seed gets.

Conventions (also recorded in the ground truth):

* Coordinates are screen pixels, x to the right, y down; a sprite's position is the centre of its ``size`` x ``size``
  box (sizes are even, so centres are whole pixels).  ``positions[i][t]`` is that centre at frame t, or None while
  sprite i is not visible.
* ``camera_pan``: the camera's offset into the (periodic, larger-than-frame) background grows by (dx, dy) px/frame,
  so the background content appears to move by (-dx, -dy) on screen.  Sprites live in the world: a sprite's
  ``velocity`` is its velocity in the world, and its unbounced screen motion is ``velocity - (dx, dy)`` per frame.
* ``boundary == "bounce"``: the frame edges act as walls; a sprite's unbounced screen trajectory is reflected so the
  whole sprite always stays inside the frame.
* ``speed_change``: from frame ``frame`` on, the sprite's velocity is multiplied by ``factor``.
* A sprite is visible on frames ``appear_frame <= t < disappear_frame`` (``disappear_frame`` None: until the end).
* ``motion_direction``: dominant axis of a sprite's net screen displacement from its first to its last visible
  frame ("left", "right", "up", "down"; ties go to the horizontal axis), None when it does not move at all
  (static videos).  Because of bouncing this can differ from the direction it starts in, which is recorded as
  ``initial_direction``.
* Positions are computed in float and rounded half up to whole pixels for drawing; the rounded values are recorded.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator

import numpy as np

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

SHAPES = ("square", "circle", "triangle", "diamond", "cross")
# (name, RGB): saturated colours, all clearly brighter (BT.601 luma >= ~120) than the dark background.
PALETTE = (
    ("red", (255, 64, 64)),
    ("green", (64, 230, 64)),
    ("blue", (80, 130, 255)),
    ("yellow", (255, 235, 50)),
    ("cyan", (60, 235, 235)),
    ("magenta", (250, 80, 250)),
    ("orange", (255, 150, 30)),
    ("white", (245, 245, 245)),
)
SUPPORTED_CODECS = {"h264": ("libx264", ".mp4", "mp4"), "vp9": ("libvpx-vp9", ".webm", "webm")}
MAX_SPRITES = len(PALETTE)

# Tuning (pixels at a 240-px short side; everything scales with min(width, height) / 240).
_REF_SHORT = 240.0
_SIZE_FRAC = (0.25, 0.36)  # sprite size as a fraction of the short side
_SPEED = (3.5, 6.0)  # sprite speed, px/frame
_PAN_SPEED = (1.5, 4.0)  # camera pan speed, px/frame
_DIR_JITTER_DEG = 30.0  # velocities point within +-this of an axis, so each has a clear dominant direction
_SPEED_CHANGE_P = 0.4
_PAN_P = 0.5
_MIN_SPEED = 0.75  # px/frame floor for sprites and pan at tiny sizes (so 2-frame steps never round to 0)
_SHADE = 0.85  # darkening of the concentric rings inside sprites (0: flat colour)
_RING_PERIOD = 0.25  # ring period as a fraction of the sprite size


# ----------------------------------------------------------------------------------------------------------------
# argument checks


def _check_pos_int(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    if v <= 0:
        raise ValueError(f"{name} must be positive, got {v}")
    return int(v)


def _check_args(seed, width, height, fps, seconds, num_sprites) -> tuple[int, int, int, float, int]:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    width = _check_pos_int("width", width)
    height = _check_pos_int("height", height)
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)) or not fps > 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if not isinstance(seconds, (int, float, np.integer, np.floating)) or not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"seconds must be a positive finite number, got {seconds!r}")
    num_frames = max(1, int(math.floor(float(seconds) * float(fps) + 0.5)))
    if num_sprites is not None:
        if isinstance(num_sprites, bool) or not isinstance(num_sprites, (int, np.integer)):
            raise ValueError(f"num_sprites must be None or an int, got {num_sprites!r}")
        if not 0 <= num_sprites <= MAX_SPRITES:
            raise ValueError(f"num_sprites must be in 0..{MAX_SPRITES}, got {num_sprites}")
    if min(width, height) < 4:
        raise ValueError(f"width and height must be >= 4, got width={width}, height={height}")
    return width, height, fps, num_frames, int(seed)


# ----------------------------------------------------------------------------------------------------------------
# scene sampling (ground truth without pixels)


def _direction(dx: float, dy: float) -> str | None:
    if dx == 0 and dy == 0:
        return None
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def _axis_velocity(rng: np.random.Generator, speed_range: tuple[float, float], scale: float) -> tuple[float, float]:
    """A velocity whose direction is an axis (chosen uniformly) +- _DIR_JITTER_DEG; always draws 3 numbers."""
    speed = max(rng.uniform(*speed_range) * scale, _MIN_SPEED)
    axis = int(rng.integers(0, 4))
    jitter = rng.uniform(-_DIR_JITTER_DEG, _DIR_JITTER_DEG)
    ang = math.radians(axis * 90.0 + jitter)
    return round(speed * math.cos(ang), 3), round(speed * math.sin(ang), 3)


def _fold(u: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Reflect (bounce) an unbounded coordinate into [lo, hi]."""
    span = hi - lo
    if span <= 0:
        return np.full_like(u, (lo + hi) / 2.0)
    m = np.mod(u - lo, 2.0 * span)
    return lo + span - np.abs(m - span)


def _trajectory(sp: dict, pan: tuple[float, float], num_frames: int, width: int, height: int) -> np.ndarray:
    """[N, 2] int64 screen centres (ignoring visibility)."""
    t = np.arange(num_frames, dtype=np.float64)
    v = np.asarray(sp["velocity"], dtype=np.float64)
    sc = sp["speed_change"]
    if sc is None:
        steps = t
        disp = t[:, None] * v[None, :]
    else:
        k, f = float(sc["frame"]), float(sc["factor"])
        steps = np.minimum(t, k) + f * np.maximum(t - k, 0.0)
        disp = steps[:, None] * v[None, :]
    u = np.asarray(sp["start"], dtype=np.float64)[None, :] + disp - t[:, None] * np.asarray(pan)[None, :]
    half = sp["size"] // 2
    x = _fold(u[:, 0], half, width - half)
    y = _fold(u[:, 1], half, height - half)
    return np.floor(np.stack([x, y], axis=1) + 0.5).astype(np.int64)


def _sample_scene(seed, width, height, fps, num_frames, num_sprites, camera_pan, events, static) -> dict:
    rng = np.random.default_rng(seed)
    bg_rng, spr_rng, pan_rng, ev_rng = rng.spawn(4)
    short = min(width, height)
    scale = short / _REF_SHORT
    n_frames = num_frames

    # -- sprites: always draw the parameters of MAX_SPRITES slots, then keep the first n
    n_drawn = int(spr_rng.integers(1, 4))
    n = n_drawn if num_sprites is None else int(num_sprites)
    colours = spr_rng.permutation(len(PALETTE))
    shapes = spr_rng.permutation(len(SHAPES))
    slots = []
    for i in range(MAX_SPRITES):
        frac = spr_rng.uniform(*_SIZE_FRAC)
        size = max(2, 2 * int(round(frac * short / 2.0)))
        size = min(size, 2 * ((short - 2) // 2))
        half = size // 2
        start = (
            round(float(spr_rng.uniform(half, width - half)), 3),
            round(float(spr_rng.uniform(half, height - half)), 3),
        )
        vel = _axis_velocity(spr_rng, _SPEED, scale)
        has_change = spr_rng.random() < _SPEED_CHANGE_P
        k = int(spr_rng.integers(int(0.3 * n_frames), max(int(0.3 * n_frames) + 1, int(0.7 * n_frames))))
        speed = math.hypot(*vel)
        # keep the changed speed inside [_SPEED[0], 2 * _SPEED[1]] (scaled): slow down only fast sprites
        slow = spr_rng.uniform(0.45, 0.65)
        fast = spr_rng.uniform(1.6, 2.0)
        factor = slow if speed * slow >= _SPEED[0] * scale else fast
        name, rgb = PALETTE[int(colours[i])]
        slots.append(
            {
                "id": i,
                "shape": SHAPES[int(shapes[i % len(SHAPES)])],
                "color": list(rgb),
                "color_name": name,
                "size": size,
                "start": list(start),
                "velocity": list(vel),
                "speed_change": (
                    {"frame": k, "factor": round(float(factor), 3)} if has_change and 2 <= k < n_frames else None
                ),
                "appear_frame": 0,
                "disappear_frame": None,
            }
        )
    sprites = slots[:n]

    # -- camera pan
    pan_on = pan_rng.random() < _PAN_P
    pan_v = _axis_velocity(pan_rng, _PAN_SPEED, scale)
    if camera_pan is not None:
        pan_on = bool(camera_pan)

    # -- events: draw for every slot; apply to eligible sprites only
    ev_draws = []
    for _ in range(MAX_SPRITES):
        a_on, d_on = ev_rng.random() < 0.5, ev_rng.random() < 0.5
        a = int(ev_rng.integers(int(0.1 * n_frames), max(int(0.1 * n_frames) + 1, int(0.4 * n_frames))))
        b = int(ev_rng.integers(int(0.6 * n_frames), max(int(0.6 * n_frames) + 1, int(0.9 * n_frames))))
        ev_draws.append((a_on, d_on, a, b))
    forced_kind = ev_rng.random() < 0.5

    if static:
        pan_on = False
        for sp in sprites:
            sp["velocity"] = [0.0, 0.0]
            sp["speed_change"] = None
    pan = (pan_v[0], pan_v[1]) if pan_on else (0.0, 0.0)

    if events and not static and n_frames >= 10 and n > 0:
        # Without a pan, sprite 0 stays visible throughout so that some motion is always on screen.
        eligible = list(range(n)) if pan_on else list(range(1, n))
        applied = False
        for i in eligible:
            a_on, d_on, a, b = ev_draws[i]
            if a_on and a >= 1:
                sprites[i]["appear_frame"] = a
                applied = True
            if d_on and b < n_frames:
                sprites[i]["disappear_frame"] = b
                applied = True
        if not applied and eligible:
            i = eligible[0]
            _, _, a, b = ev_draws[i]
            if forced_kind and a >= 1:
                sprites[i]["appear_frame"] = a
            elif b < n_frames:
                sprites[i]["disappear_frame"] = b

    positions, directions = [], []
    ev_list = []
    for sp in sprites:
        traj = _trajectory(sp, pan, n_frames, width, height)
        a, b = sp["appear_frame"], sp["disappear_frame"]
        end = n_frames if b is None else b
        pos: list[list[int] | None] = [None] * n_frames
        for t in range(a, end):
            pos[t] = [int(traj[t, 0]), int(traj[t, 1])]
        positions.append(pos)
        net = traj[end - 1] - traj[a]
        sp["net_displacement"] = [int(net[0]), int(net[1])]
        sp["motion_direction"] = _direction(float(net[0]), float(net[1]))
        step = traj[min(a + 1, end - 1)] - traj[a]
        v_screen = (sp["velocity"][0] - pan[0], sp["velocity"][1] - pan[1])
        sp["initial_direction"] = _direction(*v_screen) if (step != 0).any() else None
        directions.append(sp["motion_direction"])
        if a > 0:
            ev_list.append({"frame": a, "type": "appear", "sprite": sp["id"]})
        if b is not None:
            ev_list.append({"frame": b, "type": "disappear", "sprite": sp["id"]})
    ev_list.sort(key=lambda e: (e["frame"], e["sprite"], e["type"]))

    gt = {
        "seed": seed,
        "width": width,
        "height": height,
        "fps": fps,
        "num_frames": n_frames,
        "seconds": n_frames / float(fps),
        "static": bool(static),
        "boundary": "bounce",
        "camera_pan": {"enabled": bool(pan_on), "dx": float(pan[0]), "dy": float(pan[1])},
        "sprites": sprites,
        "events": ev_list,
        "positions": positions,
        "motion_direction": directions,
    }
    return gt, bg_rng


def ground_truth(
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
) -> dict:
    """The ground-truth dict ``render_frames`` would return, without rendering any pixels."""
    width, height, fps, n_frames, seed = _check_args(seed, width, height, fps, seconds, num_sprites)
    gt, _ = _sample_scene(seed, width, height, fps, n_frames, num_sprites, camera_pan, events, static)
    return gt


# ----------------------------------------------------------------------------------------------------------------
# pixels


def _periodic_interp(n_out: int, n_grid: int) -> np.ndarray:
    """(n_out, n_grid) smoothstep interpolation weights on a periodic grid (so the texture tiles seamlessly)."""
    u = np.arange(n_out, dtype=np.float64) * (n_grid / n_out)
    i0 = np.floor(u).astype(np.int64)
    f = u - i0
    f = f * f * (3.0 - 2.0 * f)
    m = np.zeros((n_out, n_grid), dtype=np.float64)
    rows = np.arange(n_out)
    np.add.at(m, (rows, i0 % n_grid), 1.0 - f)
    np.add.at(m, (rows, (i0 + 1) % n_grid), f)
    return m


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A periodic world texture [Hw, Ww, 3] uint8, larger than the frame, tiled 2x2 so any window is a slice."""
    short = min(width, height)
    hw = height + max(16, 2 * (height // 4))
    ww = width + max(16, 2 * (width // 4))
    yy = np.arange(hw, dtype=np.float64)[:, None]
    xx = np.arange(ww, dtype=np.float64)[None, :]

    base = rng.uniform(25.0, 65.0, size=3)
    lum = np.zeros((hw, ww))
    # multi-octave smooth noise (luminance)
    for cell_frac, amp in ((0.25, 26.0), (0.11, 18.0), (0.05, 9.0)):
        cell = max(2.0, cell_frac * short)
        gh, gw = max(2, int(round(hw / cell))), max(2, int(round(ww / cell)))
        g = rng.standard_normal((gh, gw))
        lum += amp * (_periodic_interp(hw, gh) @ g @ _periodic_interp(ww, gw).T)
    # stripes with a whole number of periods across the world (so it stays periodic)
    period = rng.uniform(0.12, 0.25) * short
    ang = rng.uniform(0.0, math.pi)
    m = int(round(ww / period * math.cos(ang)))
    k = int(round(hw / period * math.sin(ang)))
    if m == 0 and k == 0:
        m = 1
    phase = rng.uniform(0.0, 2.0 * math.pi)
    lum += 12.0 * np.sin(2.0 * math.pi * (m * xx / ww + k * yy / hw) + phase)
    # slow colour variation
    tint = np.zeros((hw, ww, 3))
    for c in range(3):
        g = rng.standard_normal((3, 3))
        tint[..., c] = 10.0 * (_periodic_interp(hw, 3) @ g @ _periodic_interp(ww, 3).T)
    img = base[None, None, :] + lum[..., None] + tint
    world = np.clip(np.floor(img + 0.5), 0, 255).astype(np.uint8)
    return np.tile(world, (2, 2, 1))


def _shape_mask(shape: str, size: int) -> np.ndarray:
    c = (np.arange(size, dtype=np.float64) + 0.5) / size  # pixel centres in [0, 1]
    y, x = c[:, None], c[None, :]
    if shape == "square":
        m = np.ones((size, size), dtype=bool)
    elif shape == "circle":
        m = (x - 0.5) ** 2 + (y - 0.5) ** 2 <= 0.25
    elif shape == "triangle":  # apex up
        m = np.abs(x - 0.5) <= y / 2.0
    elif shape == "diamond":
        m = np.abs(x - 0.5) + np.abs(y - 0.5) <= 0.5
    elif shape == "cross":
        m = (np.abs(x - 0.5) <= 1.0 / 6.0) | (np.abs(y - 0.5) <= 1.0 / 6.0)
    else:  # pragma: no cover - SHAPES is closed
        raise ValueError(f"unknown shape {shape!r}")
    return np.ascontiguousarray(m)


def _sprite_tile(sp: dict) -> np.ndarray:
    """[s, s, 3] uint8 sprite pixels: its colour with darker concentric rings, so that motion changes its interior too
    (not only its edges) and the change does not vanish for any displacement (rings have every orientation)."""
    s = sp["size"]
    c = np.arange(s, dtype=np.float64) + 0.5 - s / 2.0
    r = np.hypot(c[:, None], c[None, :])
    period = max(4.0, s * _RING_PERIOD)
    ring = np.mod(r / period, 1.0) >= 0.5  # outer band (r < period/2) keeps the full colour, so the outline is clear
    shade = np.where(ring, 1.0 - _SHADE, 1.0)
    rgb = np.asarray(sp["color"], dtype=np.float64)
    return np.clip(np.floor(shade[..., None] * rgb[None, None, :] + 0.5), 0, 255).astype(np.uint8)


class _Renderer:
    def __init__(self, gt: dict, bg_rng: np.random.Generator):
        self.gt = gt
        self.w, self.h = gt["width"], gt["height"]
        tiled = _background(bg_rng, self.w, self.h)
        self.world = tiled
        self.hw, self.ww = tiled.shape[0] // 2, tiled.shape[1] // 2
        self.dx, self.dy = gt["camera_pan"]["dx"], gt["camera_pan"]["dy"]
        self.sprites = [(sp["size"], _shape_mask(sp["shape"], sp["size"])[..., None], _sprite_tile(sp)) for sp in gt["sprites"]]

    def render(self, t: int, out: np.ndarray) -> np.ndarray:
        ox = int(math.floor(self.dx * t + 0.5)) % self.ww
        oy = int(math.floor(self.dy * t + 0.5)) % self.hw
        np.copyto(out, self.world[oy : oy + self.h, ox : ox + self.w])
        for (size, mask, tile), pos in zip(self.sprites, self.gt["positions"]):
            p = pos[t]
            if p is None:
                continue
            x0, y0 = p[0] - size // 2, p[1] - size // 2
            np.copyto(out[y0 : y0 + size, x0 : x0 + size], tile, where=mask)
        return out


def _prepare(seed, width, height, fps, seconds, num_sprites, camera_pan, events, static):
    width, height, fps, n_frames, seed = _check_args(seed, width, height, fps, seconds, num_sprites)
    gt, bg_rng = _sample_scene(seed, width, height, fps, n_frames, num_sprites, camera_pan, events, static)
    return gt, _Renderer(gt, bg_rng)


def iter_frames(seed: int, **kwargs) -> tuple[Iterator[np.ndarray], dict]:
    """Like ``render_frames`` but yields the frames one by one (each a fresh [H, W, 3] uint8 array)."""
    gt, r = _prepare(seed, **_scene_kwargs(kwargs))

    def gen():
        for t in range(gt["num_frames"]):
            yield r.render(t, np.empty((gt["height"], gt["width"], 3), dtype=np.uint8))

    return gen(), gt


def _scene_kwargs(kw: dict) -> dict:
    allowed = ("width", "height", "fps", "seconds", "num_sprites", "camera_pan", "events", "static")
    bad = set(kw) - set(allowed)
    if bad:
        raise TypeError(f"unexpected keyword argument(s): {sorted(bad)}")
    d = {"width": 320, "height": 240, "fps": 25, "seconds": 5.0, "num_sprites": None, "camera_pan": None,
         "events": True, "static": False}
    d.update(kw)
    return d


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
) -> tuple[np.ndarray, dict]:
    """Render a clip: (uint8 RGB frames [N, H, W, 3], ground-truth dict).

    ``num_sprites`` None: the seed picks 1..3; ``camera_pan`` None: the seed decides (p=0.5), True/False forces it;
    ``events``: let sprites appear/disappear mid-clip; ``static``: nothing moves (all frames identical).
    """
    gt, r = _prepare(seed, width, height, fps, seconds, num_sprites, camera_pan, events, static)
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
    v = _check_pos_int(name, v)
    if v % 2:
        raise ValueError(f"{name} must be even for yuv420p video, got {v}")
    return v


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
    gop: int | None = None,
    crf: int | None = None,
) -> dict:
    """Render a clip and write it with PyAV (h264 -> .mp4 via libx264, vp9 -> .webm via libvpx-vp9, yuv420p),
    plus its ground truth as JSON at ``path.with_suffix(".json")``.  Returns the ground truth with "path" added.

    ``path`` must end in the codec's extension (.mp4 / .webm) or have no suffix (then it is added).
    ``gop``: keyframe interval in frames; ``crf``: constant-rate factor (x264: 0-51, default 23; vp9: 0-63,
    default 32).
    """
    import av  # local: rendering alone does not need PyAV

    encoder, ext, fmt = _check_codec(codec)
    width = _check_even("width", width)
    height = _check_even("height", height)
    if gop is not None:
        gop = _check_pos_int("gop", gop)
    if crf is not None:
        hi = 51 if codec == "h264" else 63
        if isinstance(crf, bool) or not isinstance(crf, (int, np.integer)) or not 0 <= crf <= hi:
            raise ValueError(f"crf for {codec} must be an int in 0..{hi}, got {crf!r}")
    path = Path(path)
    if path.suffix == "":
        path = path.with_suffix(ext)
    elif path.suffix.lower() != ext:
        raise ValueError(f"path {str(path)!r} must end in {ext!r} for codec {codec!r} (or have no suffix)")
    gt, r = _prepare(seed, width, height, fps, seconds, num_sprites, camera_pan, events, static)
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
    buf = np.empty((height, width, 3), dtype=np.uint8)
    with av.open(str(path), mode="w", format=fmt) as container:
        stream = container.add_stream(encoder, rate=rate)
        cc = stream.codec_context
        cc.width, cc.height, cc.pix_fmt = width, height, "yuv420p"
        cc.thread_count = 1
        if gop is not None:
            cc.gop_size = gop
        cc.options = opts
        for t in range(gt["num_frames"]):
            frame = av.VideoFrame.from_ndarray(r.render(t, buf), format="rgb24")
            frame.pts = t
            for pkt in stream.encode(frame):
                container.mux(pkt)
        for pkt in stream.encode(None):
            container.mux(pkt)

    gt["codec"] = codec
    gt["gop"] = gop
    gt["crf"] = crf
    gt["path"] = str(path)
    path.with_suffix(".json").write_text(json.dumps(gt, indent=1))
    return gt


def make_clips(out_dir, n: int, *, seed: int = 0, codec: str = "h264", **kwargs) -> list[dict]:
    """Write ``n`` clips ``out_dir/clip_{i:04d}.mp4`` (or .webm) with seeds ``seed + i``; returns their ground truth."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    _, ext, _ = _check_codec(codec)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [make_clip(out / f"clip_{i:04d}{ext}", seed + i, codec=codec, **kwargs) for i in range(n)]
