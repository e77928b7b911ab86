"""RGB of decoded 8-bit 4:2:0 frames, bit-identical to FFmpeg's own conversion, without its per-frame cost.

PyAV's ``frame.to_ndarray(format="rgb24")`` and torchcodec run libswscale's unscaled yuv420p -> rgb24 converter
for even-sized 4:2:0 frames, then hand back a freshly allocated array (that the backend then copies into its
window tensor). On this project's 2-core machine that conversion and its allocation took ~75 % of a 640x360 H.264
frame's decode time (PyAV: 7,500 frames/s without conversion, ~1,900 with it; one thread). sf2t converts the
decoder's planes itself instead, in the same fixed-point arithmetic (``csrc/ops/cpu/yuv_rgb_kernel.cpp``: 16-bit
lanes, Q13 coefficients applied by a high-half multiply, saturating adds, nearest chroma), straight into the
window tensor.

Exactness is not assumed: :class:`SwscaleRGB` checks its result against PyAV's conversion on the first frame of
each stream format (size, pixel format, colour matrix, range) and falls back to PyAV's conversion for a format
where the two differ (odd sizes take swscale's scaled path, other CPUs or FFmpeg builds may round otherwise), so
the frames are always the ones the decoder itself would give.

``swscale_coefficients(colorspace, full_range)`` computes the converter's coefficients from FFmpeg's public
coefficient table (``ff_yuv2rgb_coeffs``, indexed by the stream's AVColorSpace value) with its default contrast,
brightness and saturation; ``yuv420_to_rgb`` runs the C++ op on the CPU (the PyTorch reference elsewhere or without
the extension).
"""

from __future__ import annotations

import functools
import logging
import operator

import torch

from sf2t import _ext

__all__ = [
    "swscale_coefficients",
    "yuv420_to_rgb",
    "yuv420_to_rgb_reference",
    "SwscaleRGB",
    "FAST_FORMATS",
    "copy_planes",
]

log = logging.getLogger("sf2t.video")

# {crv, cbu, cgu, cgv} x 65536 per AVColorSpace value (libswscale's table; 8 is YCgCo, which it does not convert
# this way): BT.601 for unspecified and the 601-family values, BT.709 (1), FCC (4), SMPTE 240M (7), BT.2020 (9, 10)
_BT601 = (104597, 132201, 25675, 53279)
_SWS_TABLE = {
    0: _BT601,
    1: (117489, 138438, 13975, 34925),
    2: _BT601,
    3: _BT601,
    4: (104448, 132798, 24759, 53109),
    5: _BT601,
    6: _BT601,
    7: (117579, 136230, 16907, 35559),
    9: (110013, 140363, 12277, 42626),
    10: (110013, 140363, 12277, 42626),
}
_SWS_DEFAULT = 5  # SWS_CS_DEFAULT: what libswscale uses for a value it has no row for
# FFmpeg's colorspace names (as PyAV and ffprobe print them) and the matrix names NV12 uses
_COLORSPACE_NAMES = {
    "rgb": 0,
    "gbr": 0,
    "bt709": 1,
    "unspecified": 2,
    "unknown": 2,
    "reserved": 3,
    "fcc": 4,
    "bt470bg": 5,
    "bt601": 6,
    "smpte170m": 6,
    "smpte240m": 7,
    "bt2020nc": 9,
    "bt2020_ncl": 9,
    "bt2020c": 10,
    "bt2020_cl": 10,
}
FAST_FORMATS = ("yuv420p", "yuvj420p")


def _cdiv(a: int, b: int) -> int:
    """C's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _round_int16(f: int) -> int:
    r = (f + (1 << 15)) >> 16
    return max(-0x7FFF, min(0x7FFF, r))


def swscale_coefficients(colorspace: int | str | None, full_range: bool) -> list[int]:
    """(cy, cvr, cub, cvg, cug, yo): the 16-bit constants of libswscale's yuv -> rgb converter for an
    AVColorSpace value or its FFmpeg name (``"bt709"``, ``"bt601"``, ``"smpte170m"``, ``"bt470bg"``,
    ``"bt2020nc"``, ...; None or one it has no row for: its default, BT.601) and a range (full: "pc"/JPEG; else
    limited, Y in 16-235), at its default contrast, brightness and saturation."""
    if isinstance(colorspace, str):
        key = colorspace.strip().lower().replace("-", "").replace(".", "")
        if key not in _COLORSPACE_NAMES:
            raise ValueError(
                f"colorspace {colorspace!r} is not one of FFmpeg's names {sorted(_COLORSPACE_NAMES)} (or pass its "
                "AVColorSpace number)"
            )
        colorspace = _COLORSPACE_NAMES[key]
    elif colorspace is not None:
        try:
            if isinstance(colorspace, bool):
                raise TypeError
            colorspace = operator.index(colorspace)  # an int, an IntEnum (PyAV's), a numpy integer
        except TypeError:
            raise ValueError(f"colorspace must be an AVColorSpace number, a name or None, got {colorspace!r}") from None
    cs = _SWS_DEFAULT if colorspace is None or int(colorspace) not in _SWS_TABLE else int(colorspace)
    crv, cbu, cgu, cgv = _SWS_TABLE[cs]
    cgu, cgv = -cgu, -cgv
    cy, oy = 1 << 16, 0
    if not full_range:
        cy, oy = _cdiv(cy * 255, 219), 16 << 16
    else:
        crv, cbu, cgu, cgv = (_cdiv(c * 224, 255) for c in (crv, cbu, cgu, cgv))
    # contrast and saturation 1.0 (1 << 16), brightness 0: (c * 2^16 * 2^16) >> 32 leaves each value as it is
    return [
        _round_int16(cy << 13),
        _round_int16(crv << 13),
        _round_int16(cbu << 13),
        _round_int16(cgv << 13),
        _round_int16(cgu << 13),
        _round_int16(oy << 3),
    ]


def _check(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, coeffs) -> tuple[int, int]:
    for name, t in (("y", y), ("u", u), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.dtype != torch.uint8 or t.dim() != 2:
            raise ValueError(
                f"{name} must be a uint8 plane [rows, cols], got {getattr(t, 'dtype', type(t).__name__)} "
                f"{tuple(getattr(t, 'shape', ()))}"
            )
    h, w = y.shape
    ch, cw = (h + 1) // 2, (w + 1) // 2
    for name, t in (("u", u), ("v", v)):
        if tuple(t.shape) != (ch, cw):
            raise ValueError(f"{name} must be [{ch}, {cw}] for a {h}x{w} luma plane (4:2:0), got {tuple(t.shape)}")
    if len(coeffs) != 6 or any(not -32768 <= int(c) <= 32767 for c in coeffs):
        raise ValueError(f"coeffs must be 6 16-bit integers (swscale_coefficients), got {list(coeffs)}")
    return h, w


def yuv420_to_rgb_reference(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, coeffs) -> torch.Tensor:
    """uint8 [H, W, 3]: the converter's arithmetic in PyTorch integer ops (the definition the kernel is tested
    against)."""
    h, w = _check(y, u, v, coeffs)
    cy, cvr, cub, cvg, cug, yo = (int(c) for c in coeffs)

    def wrap16(x):
        return ((x + 32768) & 0xFFFF) - 32768

    def sat16(x):
        return x.clamp(-32768, 32767)

    def hi(a, c):
        return (a * c) >> 16  # floor, as pmulhw

    yy = hi(wrap16((y.to(torch.int32) << 3) - yo), cy)
    uu = sat16((u.to(torch.int32) << 3) - 1024)
    vv = sat16((v.to(torch.int32) << 3) - 1024)
    r = hi(vv, cvr)
    g = sat16(hi(uu, cug) + hi(vv, cvg))
    b = hi(uu, cub)
    chroma = torch.stack([r, g, b], dim=-1)  # [H/2, W/2, 3]: nearest chroma, each sample for a 2x2 block
    chroma = chroma.repeat_interleave(2, dim=0)[:h].repeat_interleave(2, dim=1)[:, :w]
    return sat16(yy.unsqueeze(-1) + chroma).clamp(0, 255).to(torch.uint8)


@functools.lru_cache(maxsize=None)
def _has_op() -> bool:
    if not _ext.is_loaded():
        return False
    try:
        torch.ops.sf2t.yuv420_to_rgb_  # noqa: B018 - an extension built before this op has no schema for it
    except (AttributeError, RuntimeError):
        return False
    return True


def yuv420_to_rgb(
    y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, coeffs, out: torch.Tensor | None = None
) -> torch.Tensor:
    """uint8 [H, W, 3] RGB of 8-bit 4:2:0 planes (y [H, W], u and v [(H+1)/2, (W+1)/2], rows contiguous, any row
    stride) in libswscale's arithmetic (``coeffs`` from :func:`swscale_coefficients`), written into ``out`` when
    given (uint8 [H, W, 3], packed rows). The C++ op on the CPU; the reference elsewhere."""
    h, w = _check(y, u, v, coeffs)
    if out is not None and (
        not isinstance(out, torch.Tensor) or out.dtype != torch.uint8 or tuple(out.shape) != (h, w, 3)
    ):
        raise ValueError(
            f"out must be a uint8 tensor [{h}, {w}, 3], got {getattr(out, 'dtype', type(out).__name__)} "
            f"{tuple(getattr(out, 'shape', ()))}"
        )
    devices = {t.device for t in (y, u, v)} | ({out.device} if out is not None else set())
    if len(devices) > 1:
        raise ValueError(f"y, u, v and out must be on one device, got {sorted(str(d) for d in devices)}")
    coeffs = [int(c) for c in coeffs]
    if y.device.type == "cpu" and _has_op():
        dst = out if out is not None and out.stride(2) == 1 and (out.stride(1) == 3 or w == 1) else None
        dst = dst if dst is not None else torch.empty(h, w, 3, dtype=torch.uint8)
        y, u, v = (t if t.stride(1) == 1 or t.shape[1] == 1 else t.contiguous() for t in (y, u, v))
        torch.ops.sf2t.yuv420_to_rgb_(y, u, v, coeffs, dst)
        if out is not None and dst is not out:
            out.copy_(dst)
            return out
        return dst
    rgb = yuv420_to_rgb_reference(y, u, v, coeffs)
    if out is not None:
        out.copy_(rgb)
        return out
    return rgb


def _plane(plane, rows: int, cols: int) -> torch.Tensor:
    """A PyAV plane as a uint8 [rows, cols] view of the frame's memory (its line size as the row stride)."""
    import numpy as np

    a = np.frombuffer(plane, dtype=np.uint8)
    ls = plane.line_size
    if a.size < (rows - 1) * ls + cols:
        raise ValueError(f"plane of {a.size} bytes is too small for {rows} rows of {cols} (line size {ls})")
    # a view of the decoder's buffer (only read here; PyAV's planes are writable buffers, so no copy and no warning)
    a = np.lib.stride_tricks.as_strided(a, shape=(rows, cols), strides=(ls, 1), writeable=a.flags.writeable)
    return torch.from_numpy(a) if a.flags.writeable else torch.from_numpy(a.copy())


def copy_planes(frame, out) -> None:
    """A PyAV 8-bit 4:2:0 frame's Y, U and V planes (even size) packed into ``out``: a uint8 numpy array or CPU
    tensor [H*W*3/2], one row of :class:`sf2t.ops.YUV420`'s ``data`` (one memcpy a plane where its rows are
    packed, as they are for widths that are multiples of the decoder's alignment)."""
    import numpy as np

    dst = out.numpy() if isinstance(out, torch.Tensor) else out
    h, w = frame.height, frame.width
    at = 0
    for i, (rows, cols) in enumerate(((h, w), (h // 2, w // 2), (h // 2, w // 2))):
        plane, n = frame.planes[i], rows * cols
        if plane.line_size == cols:
            dst[at : at + n] = np.frombuffer(plane, dtype=np.uint8, count=n)
        else:
            dst[at : at + n].reshape(rows, cols)[:] = _plane(plane, rows, cols).numpy()
        at += n


def _register_fake() -> None:
    if not _has_op():
        return

    @torch.library.register_fake("sf2t::yuv420_to_rgb_")
    def _(y, u, v, coeffs, out):
        torch._check(y.dim() == 2 and out.dim() == 3, lambda: "y must be [H, W] and out [H, W, 3]")
        return None


_register_fake()


class SwscaleRGB:
    """RGB of PyAV frames into a caller's tensor: sf2t's converter where it is verified to give the same bits as
    PyAV's own conversion ``fallback(frame)`` for that stream format, else the fallback. One instance per decoder
    (its verdicts are per format: width, height, pixel format, colour matrix, range)."""

    def __init__(self, fallback, enabled: bool = True):
        self.fallback = fallback
        self.enabled = enabled and _has_op()
        self.verdict: dict[tuple, list[int] | None] = {}

    def _check_format(self, frame, key: tuple, out: torch.Tensor) -> None:
        """The first frame of a format: converted by both into ``out``, compared, the verdict kept (PyAV's bytes
        stay in ``out`` either way)."""
        full = key[2] == "yuvj420p" or key[4] == 2  # AVCOL_RANGE_JPEG
        k = swscale_coefficients(frame.colorspace, full)
        theirs = torch.from_numpy(self.fallback(frame))
        same = self._convert(frame, k, out) is not None and torch.equal(out, theirs)
        self.verdict[key] = k if same else None
        if not same:
            out.copy_(theirs)
            log.info(
                "RGB conversion: %dx%d %s (colorspace %s, range %s) converted by PyAV (sf2t's converter differs "
                "from it for this format)",
                *key,
            )

    @staticmethod
    def _convert(frame, k, out):
        h, w = frame.height, frame.width
        ch, cw = (h + 1) // 2, (w + 1) // 2
        try:
            y = _plane(frame.planes[0], h, w)
            u = _plane(frame.planes[1], ch, cw)
            v = _plane(frame.planes[2], ch, cw)
        except ValueError:
            return None
        return yuv420_to_rgb(y, u, v, k, out=out)

    def exact(self, frame) -> list[int] | None:
        """libswscale's constants for ``frame``'s format where sf2t's conversion is verified to give PyAV's RGB for
        it (checked on this frame when the format is new), else None."""
        key = self._key(frame)
        if key is None:
            return None
        if key not in self.verdict:
            self._check_format(frame, key, torch.empty(frame.height, frame.width, 3, dtype=torch.uint8))
        return self.verdict[key]

    def _key(self, frame) -> tuple | None:
        if not self.enabled or frame.format.name not in FAST_FORMATS:
            return None
        return (frame.width, frame.height, frame.format.name, int(frame.colorspace or 0), int(frame.color_range or 0))

    def __call__(self, frame, out: torch.Tensor) -> torch.Tensor:
        """Frame's RGB written into ``out`` (uint8 [H, W, 3])."""
        k = None
        key = self._key(frame)
        if key is not None:
            if key not in self.verdict:
                self._check_format(frame, key, out)
                return out
            k = self.verdict[key]
        if k is None or self._convert(frame, k, out) is None:
            out.copy_(torch.from_numpy(self.fallback(frame)))
        return out
