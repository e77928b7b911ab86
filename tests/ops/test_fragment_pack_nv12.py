"""fragment_pack on NV12 input (a hardware decoder's native output): the conversion against its float definition,
the C++ kernel's fused conversion against the reference (convert, then pack), both layouts, bad input, opcheck."""

import numpy as np
import pytest
import torch

from sf2t import _ext
from sf2t.ops import NV12, fragment_pack

needs_ext = pytest.mark.skipif(not _ext.is_loaded(), reason=f"sf2t._C not built: {_ext.load_error()}")
ATOL_F32 = 2e-6
KRB = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}


def _nv12(n, h, w, matrix="bt709", full_range=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    lo, hi = (0, 256) if full_range else (16, 236)
    y = torch.randint(lo, hi, (n, h, w), dtype=torch.uint8, generator=g)
    clo, chi = (0, 256) if full_range else (16, 241)
    uv = torch.randint(clo, chi, (n, h // 2, w // 2, 2), dtype=torch.uint8, generator=g)
    return NV12(y, uv, matrix=matrix, full_range=full_range)


@pytest.mark.parametrize("matrix", ["bt601", "bt709"])
@pytest.mark.parametrize("full_range", [False, True])
def test_conversion_matches_the_float_definition(matrix, full_range):
    x = _nv12(2, 8, 10, matrix, full_range)
    kr, kb = KRB[matrix]
    kg = 1 - kr - kb
    yf = x.y.double()
    uv = x.uv.double().repeat_interleave(2, 1).repeat_interleave(2, 2)
    u, v = uv[..., 0] - 128, uv[..., 1] - 128
    if full_range:
        yp, pb, pr = yf, u, v
    else:
        yp, pb, pr = (yf - 16) * 255 / 219, u * 255 / 224, v * 255 / 224
    r = yp + 2 * (1 - kr) * pr
    b = yp + 2 * (1 - kb) * pb
    g = yp - 2 * kb * (1 - kb) / kg * pb - 2 * kr * (1 - kr) / kg * pr
    want = torch.stack([r, g, b], -1).round().clamp(0, 255)
    got = x.to_rgb().double()
    assert (got - want).abs().max() <= 1  # Q16 constants: at most one uint8 step from the float conversion
    assert x.to_rgb().shape == (2, 8, 10, 3)


def test_grey_and_primaries():
    # limited range: Y=16 black, Y=235 white, no chroma
    y = torch.tensor([[[16, 235], [126, 126]]], dtype=torch.uint8)
    uv = torch.full((1, 1, 1, 2), 128, dtype=torch.uint8)
    rgb = NV12(y, uv, "bt709").to_rgb()
    assert rgb[0, 0, 0].tolist() == [0, 0, 0] and rgb[0, 0, 1].tolist() == [255, 255, 255]
    assert len(set(rgb[0, 1, 0].tolist())) == 1  # grey stays grey


@needs_ext
@pytest.mark.parametrize("layout", ["qwen2_vl", "fchw"])
@pytest.mark.parametrize("matrix,full_range", [("bt601", False), ("bt709", True)])
def test_cpp_fused_matches_reference(layout, matrix, full_range):
    x = _nv12(3, 42, 64, matrix, full_range, seed=3)
    src = torch.tensor([2, 0, 1, 2])
    boxes = torch.tensor([[0, 0, 64, 42], [3, 5, 40, 37], [1, 0, 2, 1], [10, 2, 63, 41]])
    size = (28, 56) if layout == "qwen2_vl" else (20, 30)
    kw = dict(layout=layout) if layout == "qwen2_vl" else dict(layout=layout, resize=(24, 34), frame_repeat=1)
    for bx in (None, boxes):
        out, g1 = fragment_pack(x, src, bx, size, backend="cpp", **kw)
        ref, g2 = fragment_pack(x.to_rgb(), src, bx, size, backend="reference", **kw)
        torch.testing.assert_close(out, ref, atol=ATOL_F32, rtol=0)
        assert (g1 is None and g2 is None) or torch.equal(g1, g2)
    auto, _ = fragment_pack(x, src, boxes, size, **kw)  # auto picks the fused C++ kernel on the CPU
    torch.testing.assert_close(auto, out, atol=0, rtol=0)


@needs_ext
def test_strided_planes():
    big = _nv12(2, 40, 60, seed=4)
    x = NV12(big.y[:, 2:-6, 4:-2], big.uv[:, 1:-3, 2:-1], "bt709")  # crops of both planes: not contiguous
    src = torch.tensor([1, 0])
    out, _ = fragment_pack(x, src, None, (28, 28), backend="cpp")
    ref, _ = fragment_pack(x.to_rgb(), src, None, (28, 28), backend="reference")
    torch.testing.assert_close(out, ref, atol=ATOL_F32, rtol=0)


def test_reference_backend_converts_first():
    x = _nv12(1, 10, 12)
    a, _ = fragment_pack(x, torch.tensor([0]), None, (28, 28), backend="reference")
    b, _ = fragment_pack(x.to_rgb(), torch.tensor([0]), None, (28, 28), backend="reference")
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda: NV12(torch.zeros(1, 5, 6, dtype=torch.uint8), torch.zeros(1, 2, 3, 2, dtype=torch.uint8)), "even"),
        (lambda: NV12(torch.zeros(1, 4, 6, dtype=torch.uint8), torch.zeros(1, 2, 2, 2, dtype=torch.uint8)), "uv"),
        (lambda: NV12(torch.zeros(1, 4, 6), torch.zeros(1, 2, 3, 2, dtype=torch.uint8)), "y must be"),
        (lambda: NV12(torch.zeros(4, 6, dtype=torch.uint8), torch.zeros(2, 3, 2, dtype=torch.uint8)), "y must be"),
        (
            lambda: NV12(torch.zeros(1, 4, 6, dtype=torch.uint8), torch.zeros(1, 2, 3, 2, dtype=torch.uint8), "srgb"),
            "matrix",
        ),
        # a string flag was truthy (full range for "false"), an int a slip: said plainly now
        (
            lambda: NV12(
                torch.zeros(1, 4, 6, dtype=torch.uint8), torch.zeros(1, 2, 3, 2, dtype=torch.uint8), "bt709", "false"
            ),
            r"NV12 full_range must be a bool \(True: full/PC range, False: limited/TV range\), got str 'false'",
        ),
        (
            lambda: NV12(
                torch.zeros(1, 4, 6, dtype=torch.uint8), torch.zeros(1, 2, 3, 2, dtype=torch.uint8), "bt709", 1
            ),
            "NV12 full_range must be a bool",
        ),
    ],
)
def test_bad_nv12(make, words):
    with pytest.raises(ValueError, match=words):
        make()


@needs_ext
def test_kernel_checks_and_opcheck():
    x = _nv12(2, 8, 10)
    args = (
        x.y,
        torch.tensor([1, 0]),
        torch.tensor([[0, 0, 10, 8], [2, 2, 9, 7]]),
        28,
        28,
        [0.5] * 3,
        [0.5] * 3,
        14,
        2,
        2,
        2,
        None,
        x.uv,
        x.coefficients(),
    )
    torch.library.opcheck(torch.ops.sf2t.fragment_pack.default, args)
    with pytest.raises(RuntimeError, match="uv must be"):
        torch.ops.sf2t.fragment_pack(*args[:12], x.uv[:, :1], x.coefficients())
    with pytest.raises(RuntimeError, match="even"):
        torch.ops.sf2t.fragment_pack(x.y[:, :7], *args[1:12], x.uv, x.coefficients())
    with pytest.raises(RuntimeError, match="the 6 Q16 conversion constants"):
        torch.ops.sf2t.fragment_pack(*args[:12], x.uv, [1, 2])
    with pytest.raises(RuntimeError, match="is not a 16-bit integer"):  # libswscale's constants: [1, 6 x int16]
        torch.ops.sf2t.fragment_pack(*args[:12], x.uv, [1, 9535, 13074, 16531, -6660, -3203, 1 << 20])
    with pytest.raises(RuntimeError, match="is not a 32-bit integer"):  # once truncated to int32 silently
        torch.ops.sf2t.fragment_pack(*args[:12], x.uv, [2**40, 0, 0, 0, 0, 0])
    rgb = x.to_rgb()
    with pytest.raises(RuntimeError, match="yuv .* given without uv"):  # once ignored silently
        torch.ops.sf2t.fragment_pack(rgb, *args[1:12], None, x.coefficients())


@pytest.mark.gpu
@pytest.mark.parametrize("layout", ["qwen2_vl", "fchw"])
@pytest.mark.parametrize("backend", ["cuda", "triton"])
def test_gpu_kernels_read_nv12(layout, backend):
    x = _nv12(3, 42, 64, "bt709", False, seed=8)
    src = torch.tensor([2, 0, 1])
    boxes = torch.tensor([[0, 0, 64, 42], [3, 5, 40, 37], [10, 2, 63, 41]])
    size = (28, 56) if layout == "qwen2_vl" else (20, 30)
    kw = dict(layout=layout) if layout == "qwen2_vl" else dict(layout=layout, resize=(24, 34), frame_repeat=1)
    ref, _ = fragment_pack(x.to_rgb(), src, boxes, size, backend="reference", **kw)
    gx = NV12(x.y.cuda(), x.uv.cuda(), "bt709", False)
    out, _ = fragment_pack(gx, src.cuda(), boxes.cuda(), size, backend=backend, **kw)
    torch.testing.assert_close(out.cpu(), ref, atol=ATOL_F32, rtol=0)


@needs_ext
@pytest.mark.parametrize("matrix,full_range", [("bt601", False), ("bt709", True)])
def test_cpp_nv12_paths_agree(matrix, full_range, monkeypatch):
    """The AVX2 conversion of NV12 rows straight into the planar width pass (8 pixels a step, odd crop starts and
    tails done one pixel at a time; the AVX-512 width and height passes where the CPU has them, the AVX2 ones with
    SF2T_FP_AVX512=0), the per-pixel pass (SF2T_FP_WIDTH=pixel) and the scalar one (SF2T_FP_SCALAR=1) give the same
    output, equal to the reference on the converted frames."""
    x = _nv12(2, 30, 202, matrix, full_range, seed=8)
    src = torch.tensor([0, 1, 1])
    boxes = torch.tensor([[0, 0, 202, 30], [3, 1, 190, 29], [1, 2, 110, 30]])
    fast, _ = fragment_pack(x, src, boxes, (28, 140), backend="cpp")
    ref, _ = fragment_pack(x.to_rgb(), src, boxes, (28, 140), backend="reference")
    torch.testing.assert_close(fast, ref, atol=ATOL_F32, rtol=0)
    for env in ({"SF2T_FP_AVX512": "0"}, {"SF2T_FP_WIDTH": "pixel"}, {"SF2T_FP_SCALAR": "1"}):
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        slow, _ = fragment_pack(x, src, boxes, (28, 140), backend="cpp")
        assert torch.equal(fast, slow), env
        for k in env:
            monkeypatch.delenv(k)


@needs_ext
def test_cpp_i420_planes_as_strided_uv():
    """I420 (U and V planes of their own, as software decoders give them) passes as a strided uv view without a
    copy and converts like the same chroma interleaved."""
    x = _nv12(2, 30, 202, "bt601", False, seed=9)
    planes = x.uv.permute(0, 3, 1, 2).contiguous()  # [N, 2, H/2, W/2]: the U plane, then the V plane
    i420 = NV12(x.y, planes.permute(0, 2, 3, 1), "bt601")  # strides (.., W/2, 1, H/2 * W/2)
    assert i420.uv.stride(2) == 1 and torch.equal(i420.uv, x.uv)
    src = torch.tensor([1, 0])
    boxes = torch.tensor([[5, 1, 199, 30], [0, 0, 202, 30]])
    a, _ = fragment_pack(i420, src, boxes, (28, 140), backend="cpp")
    b, _ = fragment_pack(x, src, boxes, (28, 140), backend="cpp")
    assert torch.equal(a, b)


def test_nv12_full_range_takes_a_numpy_bool():
    y, uv = torch.zeros(1, 4, 6, dtype=torch.uint8), torch.zeros(1, 2, 3, 2, dtype=torch.uint8)
    assert NV12(y, uv, full_range=np.bool_(True)).coefficients() == NV12(y, uv, full_range=True).coefficients()
