"""The frame formats ``fragment_pack`` takes besides RGB: :class:`NV12` (a hardware decoder's planes) and
:class:`YUV420` (a CPU decoder's planes), with their reference conversions to RGB. Public through
``sf2t.ops.fragment_pack`` (and ``sf2t.ops``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sf2t._checks import check_int

# Luma weights (Kr, Kb) of the two matrices hardware decoders use.
_YUV_MATRICES = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}


@dataclass(frozen=True)
class NV12:
    """Frames as hardware decoders (NVDEC) produce them: the Y plane uint8 ``[N, H, W]`` and the interleaved chroma
    ``uv`` uint8 ``[N, H/2, W/2, 2]`` (U then V; H and W even), with ``matrix`` ``"bt601"`` or ``"bt709"`` and
    ``full_range`` (else limited/"TV" range: Y in 16-235, UV in 16-240).

    Conversion to RGB (``to_rgb``, and inside the C++ kernel, in the same pass): nearest chroma (one UV sample per
    2x2 luma block) and Q16 fixed-point constants from the matrix's (Kr, Kb), rounded and clamped to uint8, so
    every backend sees the same RGB; against a float conversion the difference is at most one uint8 step."""

    y: torch.Tensor
    uv: torch.Tensor
    matrix: str = "bt709"
    full_range: bool = False

    def __post_init__(self):
        y, uv = self.y, self.uv
        if not isinstance(y, torch.Tensor) or y.dtype != torch.uint8 or y.dim() != 3:
            raise ValueError(
                f"NV12 y must be a uint8 tensor [N, H, W], got {getattr(y, 'dtype', type(y))} "
                f"{tuple(getattr(y, 'shape', ()))}"
            )
        n, h, w = y.shape
        if h % 2 or w % 2 or h == 0 or w == 0:
            raise ValueError(f"NV12 needs a positive, even height and width, got y of {h}x{w}")
        if not isinstance(uv, torch.Tensor) or uv.dtype != torch.uint8 or tuple(uv.shape) != (n, h // 2, w // 2, 2):
            raise ValueError(
                f"NV12 uv must be uint8 [N, H/2, W/2, 2] = [{n}, {h // 2}, {w // 2}, 2], got "
                f"{getattr(uv, 'dtype', type(uv))} {tuple(getattr(uv, 'shape', ()))}"
            )
        if uv.device != y.device:
            raise ValueError(f"NV12 y and uv must be on one device, got {y.device} and {uv.device}")
        if not isinstance(self.matrix, str) or self.matrix not in _YUV_MATRICES:
            raise ValueError(f"NV12 matrix must be one of {sorted(_YUV_MATRICES)}, got {self.matrix!r}")
        if not isinstance(self.full_range, (bool, np.bool_)):
            # (a string such as "false" was true, and 0/1 an easy slip for a flag: the range must be said plainly)
            raise ValueError(
                f"NV12 full_range must be a bool (True: full/PC range, False: limited/TV range), got "
                f"{type(self.full_range).__name__} {self.full_range!r}"
            )

    @property
    def device(self) -> torch.device:
        return self.y.device

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (*self.y.shape, 3)

    def coefficients(self) -> list[int]:
        """Q16 (ky, kr, kgu, kgv, kb) and the luma offset: R = ky(Y-o) + kr(V-128), G = ky(Y-o) - kgu(U-128) -
        kgv(V-128), B = ky(Y-o) + kb(U-128), then (x + 2^15) >> 16."""
        kr, kb = _YUV_MATRICES[self.matrix]
        kg = 1.0 - kr - kb
        ys, cs, off = (1.0, 1.0, 0) if self.full_range else (255.0 / 219.0, 255.0 / 224.0, 16)
        q = 1 << 16
        return [
            round(ys * q),
            round(2 * (1 - kr) * cs * q),
            round(2 * kb * (1 - kb) / kg * cs * q),
            round(2 * kr * (1 - kr) / kg * cs * q),
            round(2 * (1 - kb) * cs * q),
            off,
        ]

    def to_rgb(self) -> torch.Tensor:
        """uint8 [N, H, W, 3] RGB, the reference conversion (integer arithmetic, as the kernels do it)."""
        ky, kr, kgu, kgv, kb, off = self.coefficients()
        c = self.y.to(torch.int32) - off  # [N, H, W]
        uv = self.uv.to(torch.int32).repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)  # [N, H, W, 2]
        d, e = uv[..., 0] - 128, uv[..., 1] - 128
        half = 1 << 15
        r = (ky * c + kr * e + half) >> 16
        g = (ky * c - kgu * d - kgv * e + half) >> 16
        b = (ky * c + kb * d + half) >> 16
        return torch.stack([r, g, b], dim=-1).clamp_(0, 255).to(torch.uint8)


@dataclass(frozen=True)
class YUV420:
    """8-bit 4:2:0 frames as CPU decoders produce them (yuv420p, yuvj420p), kept planar so that the RGB conversion
    runs inside ``fragment_pack`` for the frames a sample shows, not for every decoded frame: ``data`` uint8
    ``[N, H*W + 2*(H/2)*(W/2)]``, each row one frame's Y plane, then its U plane, then its V plane (rows packed);
    H and W even; ``coeffs``: libswscale's six constants for the stream's colour matrix and range
    (:func:`sf2t.video.convert.swscale_coefficients`).

    The RGB (``to_rgb``, and the C++ kernel's, in the same pass) is libswscale's fixed-point arithmetic: bit for bit
    what FFmpeg, PyAV and torchcodec return for these frames (the pyav backend checks that per stream format before
    it hands out YUV420 windows). The C++ CPU kernel reads it directly; other backends convert it first."""

    data: torch.Tensor
    height: int
    width: int
    coeffs: tuple[int, ...]

    def __post_init__(self):
        d = self.data
        h, w = check_int("YUV420 height", self.height), check_int("YUV420 width", self.width)
        object.__setattr__(self, "height", h)  # (a numpy integer as a Python int: shape, messages, the kernels)
        object.__setattr__(self, "width", w)
        if h <= 0 or w <= 0 or h % 2 or w % 2:
            raise ValueError(f"YUV420 needs a positive, even height and width, got {w}x{h}")
        if not isinstance(d, torch.Tensor) or d.dtype != torch.uint8 or d.dim() != 2 or d.shape[1] != h * w * 3 // 2:
            raise ValueError(
                f"YUV420 data must be a uint8 tensor [N, {h * w * 3 // 2}] (Y, U, V planes of {w}x{h} frames), got "
                f"{getattr(d, 'dtype', type(d).__name__)} {tuple(getattr(d, 'shape', ()))}"
            )
        if d.stride(1) != 1:
            raise ValueError(f"YUV420 data's rows must be contiguous, got strides {d.stride()}")
        if len(self.coeffs) != 6 or not all(-32768 <= int(c) <= 32767 for c in self.coeffs):
            raise ValueError(f"YUV420 coeffs must be libswscale's 6 16-bit constants, got {self.coeffs!r}")

    @classmethod
    def empty(cls, n: int, height: int, width: int, coeffs, device="cpu") -> "YUV420":
        return cls(
            torch.empty(n, height * width * 3 // 2, dtype=torch.uint8, device=device), height, width, tuple(coeffs)
        )

    @property
    def device(self) -> torch.device:
        return self.data.device

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.data.shape[0], self.height, self.width, 3)

    def __len__(self) -> int:
        return self.data.shape[0]

    def _plane(self, offset: int, h: int, w: int) -> torch.Tensor:
        d = self.data
        return d.as_strided((d.shape[0], h, w), (d.stride(0), w, 1), d.storage_offset() + offset)

    @property
    def y(self) -> torch.Tensor:
        """uint8 [N, H, W] luma (a view)."""
        return self._plane(0, self.height, self.width)

    @property
    def u(self) -> torch.Tensor:
        """uint8 [N, H/2, W/2] (a view)."""
        return self._plane(self.height * self.width, self.height // 2, self.width // 2)

    @property
    def v(self) -> torch.Tensor:
        """uint8 [N, H/2, W/2] (a view)."""
        return self._plane(self.height * self.width * 5 // 4, self.height // 2, self.width // 2)

    @property
    def uv(self) -> torch.Tensor:
        """The chroma as the kernels read it: uint8 [N, H/2, W/2, 2] (U, V), a strided view (V a plane after U)."""
        d, hw = self.data, self.height * self.width
        ch, cw = self.height // 2, self.width // 2
        return d.as_strided((d.shape[0], ch, cw, 2), (d.stride(0), cw, 1, ch * cw), d.storage_offset() + hw)

    def coefficients(self) -> list[int]:
        """The kernels' ``yuv`` argument: ``[1, cy, cvr, cub, cvg, cug, yo]`` (1: libswscale's arithmetic)."""
        return [1, *(int(c) for c in self.coeffs)]

    def index_select(self, dim: int, index: torch.Tensor) -> "YUV420":
        if dim != 0:
            raise ValueError(f"YUV420 selects frames (dim 0) only, got dim {dim}")
        return YUV420(self.data.index_select(0, index.to(self.device)), self.height, self.width, self.coeffs)

    def to_rgb(self) -> torch.Tensor:
        """uint8 [N, H, W, 3] RGB in libswscale's arithmetic (:func:`sf2t.video.convert.yuv420_to_rgb`)."""
        from sf2t.video.convert import yuv420_to_rgb

        out = torch.empty(len(self), self.height, self.width, 3, dtype=torch.uint8, device=self.device)
        y, u, v = self.y, self.u, self.v
        for i in range(len(self)):
            yuv420_to_rgb(y[i], u[i], v[i], self.coeffs, out=out[i])
        return out
