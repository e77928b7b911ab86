"""Pixels for a sampled scene: the periodic background texture, sprite masks/tiles and the per-frame renderer.

All vectorized numpy; a frame is one slice copy of the (2x2-tiled) world texture plus one masked copy per sprite.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Renderer"]

_SHADE = 0.85  # darkening of the concentric rings inside sprites (0: flat colour)
_RING_PERIOD = 0.25  # ring period as a fraction of the sprite size


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
    # r / period = 2 at the inscribed circle: the centre and the band at the edge midpoints keep the full colour
    ring = np.mod(r / period, 1.0) >= 0.5
    shade = np.where(ring, 1.0 - _SHADE, 1.0)
    rgb = np.asarray(sp["color"], dtype=np.float64)
    return np.clip(np.floor(shade[..., None] * rgb[None, None, :] + 0.5), 0, 255).astype(np.uint8)


class Renderer:
    """Draws frame t of a sampled scene (its ground-truth dict) into a preallocated [H, W, 3] uint8 array."""

    def __init__(self, gt: dict, bg_rng: np.random.Generator):
        self.gt = gt
        self.w, self.h = gt["width"], gt["height"]
        tiled = _background(bg_rng, self.w, self.h)
        self.world = tiled
        self.hw, self.ww = tiled.shape[0] // 2, tiled.shape[1] // 2
        self.dx, self.dy = gt["camera_pan"]["dx"], gt["camera_pan"]["dy"]
        self.sprites = [
            (sp["size"], _shape_mask(sp["shape"], sp["size"])[..., None], _sprite_tile(sp)) for sp in gt["sprites"]
        ]

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
