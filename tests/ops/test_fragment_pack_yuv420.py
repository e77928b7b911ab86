"""fragment_pack on YUV420 windows (a CPU decoder's planes, converted in the C++ kernel's pass in libswscale's
arithmetic) and fragment_pack_many (a window's samples packed together, each distinct crop resized once): both give
exactly the values of packing the RGB frames sample by sample, on every kernel path; bad input; opcheck."""

import numpy as np
import pytest
import torch

from sf2t import _ext
from sf2t.ops import NV12, YUV420, fragment_pack, fragment_pack_many
from sf2t.video.convert import swscale_coefficients, yuv420_to_rgb_reference

needs_ext = pytest.mark.skipif(not _ext.is_loaded(), reason=f"sf2t._C not built: {_ext.load_error()}")
# every width pass (AVX-512 planar where the CPU has it, AVX2 planar 4 or 2 outputs a lane, per pixel) and the
# scalar passes
PATHS = [{}, {"SF2T_FP_AVX512": "0"}, {"SF2T_FP_WIDTH": "pixel"}, {"SF2T_FP_SCALAR": "1"}]


def _yuv(n, h, w, colorspace=1, full=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    data = torch.randint(0, 256, (n, h * w * 3 // 2), dtype=torch.uint8, generator=g)
    data[:, :4] = torch.tensor([0, 255, 16, 235], dtype=torch.uint8)  # extremes: saturation in every channel
    return YUV420(data, h, w, tuple(swscale_coefficients(colorspace, full)))


def _rgb_reference(x: YUV420) -> torch.Tensor:
    return torch.stack([yuv420_to_rgb_reference(x.y[i], x.u[i], x.v[i], x.coeffs) for i in range(len(x))])


def test_planes_and_rgb():
    """y, u, v are views of one frame row each; to_rgb is libswscale's arithmetic, frame by frame."""
    x = _yuv(3, 6, 10)
    assert x.shape == (3, 6, 10, 3) and len(x) == 3
    assert x.y.shape == (3, 6, 10) and x.u.shape == x.v.shape == (3, 3, 5)
    assert torch.equal(x.y[1].reshape(-1), x.data[1, :60])
    assert torch.equal(x.u[2].reshape(-1), x.data[2, 60:75]) and torch.equal(x.v[0].reshape(-1), x.data[0, 75:])
    assert torch.equal(x.uv[..., 0], x.u) and torch.equal(x.uv[..., 1], x.v)
    assert torch.equal(x.to_rgb(), _rgb_reference(x))
    sel = x.index_select(0, torch.tensor([2, 2, 0]))
    assert torch.equal(sel.to_rgb(), x.to_rgb()[[2, 2, 0]])
    assert x.coefficients() == [1, *x.coeffs]


@pytest.mark.parametrize(
    "data, h, w, words",
    [
        (torch.zeros(2, 89, dtype=torch.uint8), 6, 10, r"data must be a uint8 tensor \[N, 90\]"),
        (torch.zeros(2, 90, dtype=torch.uint8), 5, 12, "even height and width"),
        (torch.zeros(2, 90), 6, 10, "data must be a uint8 tensor"),
        (torch.zeros(90, 2, dtype=torch.uint8).t(), 6, 10, "rows must be contiguous"),
        # int() took these before: 6.9 as 6 (a wrong frame size, no error), True as 1
        (torch.zeros(2, 90, dtype=torch.uint8), 6.9, 10, "YUV420 height must be an int, got float 6.9"),
        (torch.zeros(2, 90, dtype=torch.uint8), 6, True, "YUV420 width must be an int, got the bool True"),
    ],
)
def test_bad_yuv420(data, h, w, words):
    with pytest.raises(ValueError, match=words):
        YUV420(data, h, w, tuple(swscale_coefficients(2, False)))


def test_bad_yuv420_constants_and_selection():
    with pytest.raises(ValueError, match="6 16-bit constants"):
        YUV420(torch.zeros(1, 90, dtype=torch.uint8), 6, 10, (1, 2, 3))
    with pytest.raises(ValueError, match="6 16-bit constants"):
        YUV420(torch.zeros(1, 90, dtype=torch.uint8), 6, 10, (1, 2, 3, 4, 5, 1 << 16))
    with pytest.raises(ValueError, match="dim 0"):
        _yuv(2, 6, 10).index_select(1, torch.tensor([0]))


@needs_ext
@pytest.mark.parametrize("env", PATHS, ids=lambda e: ",".join(e) or "default")
@pytest.mark.parametrize("layout", ["qwen2_vl", "fchw"])
@pytest.mark.parametrize(
    "h, w, size, boxes",
    [
        (360, 640, (252, 448), None),  # the planar width pass, 4 outputs a lane
        (144, 420, (56, 140), None),  # 3x narrower: the planar pass, 2 outputs a lane
        (50, 86, (56, 112), [[3, 5, 83, 49], [0, 0, 86, 50], [1, 1, 40, 30], [5, 2, 76, 48]]),  # odd x0, upscale
    ],
)
def test_cpp_fused_equals_packing_the_rgb(env, layout, h, w, size, boxes, monkeypatch):
    """The C++ kernel reading YUV420 gives exactly fragment_pack of the same frames in RGB (the conversion is the
    decoders' bit for bit), on every kernel path, crops starting on odd columns, widths that are not multiples of
    the 32-pixel step, both layouts and output dtypes."""
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    x = _yuv(3, h, w, colorspace=2 if w < 100 else 1, full=w == 420, seed=h)
    rgb = _rgb_reference(x)
    src = torch.tensor([2, 0, 1, 2])
    b = None if boxes is None else torch.tensor(boxes)
    for dtype in (torch.float32, torch.bfloat16):
        kw = dict(layout=layout, dtype=dtype, frame_repeat=2 if layout == "qwen2_vl" else 1)
        got, grid = fragment_pack(x, src, b, size, backend="cpp", **kw)
        want, want_grid = fragment_pack(rgb, src, b, size, backend="cpp", **kw)
        assert torch.equal(got, want), (dtype, (got.float() - want.float()).abs().max())
        assert (grid is None and want_grid is None) or torch.equal(grid, want_grid)


def test_other_backends_convert_first():
    """The reference backend (and the GPU ones) get the RGB: the same values as packing to_rgb()."""
    x = _yuv(2, 28, 56, seed=4)
    src = torch.tensor([1, 0])
    got, _ = fragment_pack(x, src, None, (28, 56), backend="reference")
    want, _ = fragment_pack(x.to_rgb(), src, None, (28, 56), backend="reference")
    assert torch.equal(got, want)


@needs_ext
def test_kernel_checks_and_opcheck():
    x = _yuv(2, 8, 10)
    args = (x.y, torch.tensor([1, 0]), torch.tensor([[0, 0, 10, 8], [1, 2, 9, 7]]), 28, 28, [0.5] * 3, [0.5] * 3)
    args += (14, 2, 2, 2, None, x.uv, x.coefficients())
    torch.library.opcheck(torch.ops.sf2t.fragment_pack.default, args)
    with pytest.raises(RuntimeError, match="is not a 16-bit integer"):
        torch.ops.sf2t.fragment_pack(*args[:13], [1, 0, 0, 0, 0, 0, 70000])
    with pytest.raises(RuntimeError, match=r"\[1, cy, cvr, cub, cvg, cug, yo\]"):
        torch.ops.sf2t.fragment_pack(*args[:13], [2, 0, 0, 0, 0, 0, 0])


# ---- fragment_pack_many ----


def _samples():
    """A window's samples: overlapping frames, repeats, reversed order, crops shared and not, a one-frame sample."""
    src = [torch.tensor([0, 1, 2, 3, 5]), torch.tensor([3, 2, 1, 0, 0, 7]), torch.tensor([5, 9]), torch.tensor([1])]
    boxes = [None, torch.tensor([[0, 0, 160, 96]] * 6), torch.tensor([[3, 4, 101, 90], [0, 0, 160, 96]])]
    return src, boxes + [torch.tensor([[3, 4, 101, 90]])]


@needs_ext
@pytest.mark.parametrize("kind", ["rgb", "yuv420", "nv12"])
@pytest.mark.parametrize("frame_repeat", [1, 2])
@pytest.mark.parametrize("env", [PATHS[0], PATHS[-1]], ids=lambda e: ",".join(e) or "default")
def test_many_equals_sample_by_sample(kind, frame_repeat, env, monkeypatch):
    """Each distinct (frame, crop) resized once and written into every sample that shows it: the same values and
    grids as one fragment_pack a sample, for RGB, YUV420 and NV12 windows, with frame repeats and temporal padding
    (odd sample lengths), float32 and bfloat16."""
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    g = torch.Generator().manual_seed(5)
    if kind == "rgb":
        frames = torch.randint(0, 256, (10, 96, 160, 3), dtype=torch.uint8, generator=g)
    elif kind == "yuv420":
        frames = _yuv(10, 96, 160, seed=5)
    else:
        frames = NV12(
            torch.randint(16, 236, (10, 96, 160), dtype=torch.uint8, generator=g),
            torch.randint(16, 241, (10, 48, 80, 2), dtype=torch.uint8, generator=g),
        )
    src, boxes = _samples()
    for dtype in (torch.float32, torch.bfloat16):
        many = fragment_pack_many(frames, src, boxes, (56, 84), frame_repeat=frame_repeat, dtype=dtype)
        assert len(many) == len(src)
        for (got, grid), i, b in zip(many, src, boxes):
            want, want_grid = fragment_pack(frames, i, b, (56, 84), frame_repeat=frame_repeat, dtype=dtype)
            assert torch.equal(got, want) and torch.equal(grid, want_grid)


def test_many_on_the_reference_backend_and_bad_input():
    frames = torch.randint(0, 256, (10, 28, 56, 3), dtype=torch.uint8)
    src = [torch.tensor([0, 1]), torch.tensor([1, 9])]
    many = fragment_pack_many(frames, src, [None, None], (28, 56), backend="reference")
    for (got, _), i in zip(many, src):
        assert torch.equal(got, fragment_pack(frames, i, None, (28, 56), backend="reference")[0])
    assert fragment_pack_many(frames, [], [], (28, 56)) == []
    with pytest.raises(ValueError, match="one boxes entry per src_index"):
        fragment_pack_many(frames, src, [None], (28, 56))
    with pytest.raises(TypeError, match="frames must be a torch.Tensor, NV12 or YUV420"):
        fragment_pack_many(frames.numpy(), src, [None, None], (28, 56))
    if _ext.is_loaded():
        with pytest.raises(ValueError, match="out of range"):
            fragment_pack_many(frames, [torch.tensor([0]), torch.tensor([10])], [None, None], (28, 56))
        with pytest.raises(ValueError, match="multiples of"):
            fragment_pack_many(frames, src, [None, None], (30, 56))


@needs_ext
def test_many_opcheck():
    frames = torch.randint(0, 256, (4, 28, 56, 3), dtype=torch.uint8)
    src = [torch.tensor([0, 1, 1]), torch.tensor([3])]
    boxes = [torch.tensor([[0, 0, 56, 28]] * 3), torch.tensor([[1, 1, 50, 27]])]
    args = (frames, src, boxes, 28, 56, [0.5] * 3, [0.5] * 3, 14, 2, 2, 1)
    torch.library.opcheck(torch.ops.sf2t.fragment_pack_multi.default, args)
    with pytest.raises(RuntimeError, match="one boxes tensor per src_index"):
        torch.ops.sf2t.fragment_pack_multi(frames, src, boxes[:1], *args[3:])


def test_numpy_sizes_are_python_ints():
    """A YUV420 made from a numpy header (np.int64 height and width) holds Python ints, as its shape says."""
    x = YUV420(torch.zeros(1, 90, dtype=torch.uint8), np.int64(6), np.int32(10), tuple(swscale_coefficients(2, False)))
    assert x.shape == (1, 6, 10, 3) and type(x.height) is int and type(x.width) is int


@pytest.mark.parametrize("backend", ["reference", pytest.param("cpp", marks=needs_ext)])
def test_many_takes_numpy_integers(backend):
    """fragment_pack_many (the C++ one-pass path, too) takes numpy sizes and counts as fragment_pack does."""
    frames = torch.randint(0, 256, (4, 28, 56, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    src = [torch.tensor([0, 1, 3]), torch.tensor([2])]
    want = fragment_pack_many(frames, src, [None, None], (28, 56), frame_repeat=1, backend=backend)
    got = fragment_pack_many(
        frames,
        src,
        [None, None],
        np.array([28, 56]),
        frame_repeat=np.int64(1),
        patch_size=np.int64(14),
        backend=backend,
    )
    for (a, ga), (b, gb) in zip(got, want):
        assert torch.equal(a, b) and torch.equal(ga, gb)
    with pytest.raises(ValueError, match="frame_repeat must be a positive int, got the bool True"):
        fragment_pack_many(frames, src, [None, None], (28, 56), frame_repeat=True, backend=backend)
