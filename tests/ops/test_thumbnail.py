"""thumbnail (the motion guard's measure): the C++ kernel against the pure-PyTorch reference over awkward
shapes and layouts, the reference against a float64 area resize computed independently, opcheck, bad input."""

import numpy as np
import pytest
import torch

from sf2t import _ext
from sf2t.ops.thumbnail import thumbnail, thumbnail_size

needs_ext = pytest.mark.skipif(not _ext.is_loaded(), reason=f"sf2t._C not built: {_ext.load_error()}")

# Both sum float32 products of values <= 255 in a different order: a few ulps of numbers below 256.
ATOL = 1e-3

# (N, H, W, short side): odd, prime, 1x1, upscaling (H < 64), very wide, 640x360, portrait
SHAPES = [
    (3, 37, 53, 64),
    (2, 1, 1, 64),
    (2, 13, 7, 64),
    (1, 20, 500, 64),
    (2, 360, 640, 64),
    (2, 641, 359, 64),
    (4, 97, 131, 17),
    (1, 64, 64, 64),
]


def _frames(n, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=g)


def _independent(frames, th, tw):
    """Area resize in float64 from its definition: integrate the luma image over each output box."""
    x = frames.double()
    grey = x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114  # [N, H, W]

    def weights(n_in, n_out):
        r = n_in / n_out
        m = torch.zeros(n_out, n_in, dtype=torch.float64)
        for i in range(n_out):
            lo, hi = i * r, (i + 1) * r
            for j in range(int(lo), min(n_in, int(hi) + 1)):
                m[i, j] = max(0.0, min(hi, j + 1) - max(lo, j))
        return m / m.sum(1, keepdim=True)

    return weights(grey.shape[1], th) @ grey @ weights(grey.shape[2], tw).T


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_reference_matches_the_definition(shape):
    n, h, w, short = shape
    x = _frames(n, h, w)
    th, tw = thumbnail_size(h, w, short)
    ref = thumbnail(x, short, backend="reference")
    assert ref.shape == (n, th, tw) and ref.dtype == torch.float32
    torch.testing.assert_close(ref.double(), _independent(x, th, tw), atol=ATOL, rtol=0)


@needs_ext
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_cpp_matches_reference(shape):
    n, h, w, short = shape
    x = _frames(n, h, w, seed=1)
    torch.testing.assert_close(
        thumbnail(x, short, backend="cpp"), thumbnail(x, short, backend="reference"), atol=ATOL, rtol=0
    )


@needs_ext
def test_cpp_strided_layouts_and_empty():
    big = _frames(3, 50, 70, seed=2)
    views = [
        big[:, 3:-4, 5:-2, :],  # a crop: row stride of the big frame
        big.permute(0, 3, 1, 2).contiguous().permute(0, 2, 3, 1),  # planar memory, NHWC view (channel stride H*W)
        big[::2],  # every other frame
    ]
    for v in views:
        assert not v.is_contiguous() or v is views[-1]
        torch.testing.assert_close(
            thumbnail(v, backend="cpp"), thumbnail(v.contiguous(), backend="reference"), atol=ATOL, rtol=0
        )
    empty = thumbnail(big[:0], backend="cpp")
    assert empty.shape == (0, 64, 90)


@needs_ext
def test_auto_uses_the_kernel_and_grey_input_the_reference():
    from sf2t.ops.thumbnail import choose_backend

    x = _frames(1, 20, 30)
    assert choose_backend(x) == "cpp"
    assert choose_backend(x[..., 0]) == "reference"
    grey = x[..., 0].float()
    torch.testing.assert_close(
        thumbnail(grey), _independent(torch.stack([x[..., 0]] * 3, -1), 64, 96).float(), atol=ATOL, rtol=0
    )


@needs_ext
def test_opcheck():
    torch.library.opcheck(torch.ops.sf2t.thumbnail.default, (_frames(2, 30, 40), 16, 21))


@pytest.mark.parametrize(
    "frames, kw, words",
    [
        (torch.zeros(2, 5, 5, 4, dtype=torch.uint8), {}, "frames must be"),
        (torch.zeros(5, 5, dtype=torch.uint8), {}, "frames must be"),
        (torch.zeros(1, 0, 5, 3, dtype=torch.uint8), {}, "positive height"),
        (torch.zeros(1, 5, 5, 3, dtype=torch.uint8), {"short_side": 0}, "short_side"),
        (torch.zeros(1, 5, 5, 3, dtype=torch.uint8), {"backend": "magic"}, "backend"),
        ([[1, 2]], {}, "torch.Tensor"),
        (torch.zeros(1, 5, 5, 3, dtype=torch.bool), {}, "RGB frames must be real numbers"),
        (torch.full((1, 10, 10), float("nan")), {}, "NaN or infinite"),  # once NaN thumbnails: a NaN motion guard
        (torch.full((1, 10, 10, 3), float("inf")), {}, "NaN or infinite"),
    ],
)
def test_bad_input(frames, kw, words):
    with pytest.raises((ValueError, TypeError), match=words):
        thumbnail(frames, **kw)


@needs_ext
def test_cpp_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="uint8"):
        thumbnail(torch.zeros(1, 5, 5, 3), backend="cpp")
    with pytest.raises(RuntimeError, match="uint8"):
        torch.ops.sf2t.thumbnail(torch.zeros(1, 5, 5, 3), 4, 4)
    with pytest.raises(RuntimeError, match="positive"):
        torch.ops.sf2t.thumbnail(torch.zeros(1, 5, 5, 3, dtype=torch.uint8), 0, 4)


@pytest.mark.parametrize("backend", ["reference", pytest.param("cpp", marks=needs_ext)])
def test_index_reads_rows_in_place(backend):
    x = _frames(6, 41, 59, seed=4)
    idx = torch.tensor([5, 0, 5, 2])
    torch.testing.assert_close(
        thumbnail(x, index=idx, backend=backend), thumbnail(x[idx], backend="reference"), atol=ATOL, rtol=0
    )
    assert thumbnail(x, index=torch.tensor([], dtype=torch.int64), backend=backend).shape == (0, 64, 92)
    for bad in (torch.tensor([6]), torch.tensor([-1]), torch.tensor([1.0]), torch.tensor([[1]])):
        with pytest.raises(ValueError, match="index"):
            thumbnail(x, index=bad, backend=backend)


@needs_ext
def test_opcheck_with_index():
    torch.library.opcheck(torch.ops.sf2t.thumbnail.default, (_frames(3, 30, 40), 16, 21, torch.tensor([2, 0])))
    with pytest.raises(RuntimeError, match="out of range"):
        torch.ops.sf2t.thumbnail(_frames(3, 30, 40), 16, 21, torch.tensor([3]))


@needs_ext
@pytest.mark.parametrize(
    "shape",
    [
        (3, 272, 640, 64),  # 4.25x rows: the paired vertical pass; 151 outputs a row: a partial group of 8
        (2, 360, 640, 64),
        (2, 37, 53, 64),  # 159 bytes a row: every tail (64-byte steps, 32, scalar)
        (2, 100, 85, 64),  # 255 bytes a row
        (2, 641, 359, 64),  # portrait: weights up to 114, too big for the paired pass (one row at a time)
        (2, 293, 400, 64),  # 293 -> 64 rows: 255 * denom > 65535, the float path
    ],
    ids=lambda s: "x".join(map(str, s)),
)
def test_cpp_vector_paths_give_the_same_bits(shape, monkeypatch):
    """The AVX2 vertical passes (two rows at a time with vpmaddubsw, one row at a time) and the scalar code compute
    the same integer sums and combine the horizontal taps in the same order: identical floats, not just close."""
    n, h, w, short = shape
    x = _frames(n, h, w, seed=7)
    got = {}
    for name, env in [("auto", {}), ("rows", {"SF2T_THUMB_PAIRS": "0"}), ("scalar", {"SF2T_THUMB_SCALAR": "1"})]:
        for k in ("SF2T_THUMB_PAIRS", "SF2T_THUMB_SCALAR"):
            monkeypatch.delenv(k, raising=False)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        got[name] = thumbnail(x, short, backend="cpp")
    assert torch.equal(got["auto"], got["rows"]) and torch.equal(got["auto"], got["scalar"])
    torch.testing.assert_close(got["auto"], thumbnail(x, short, backend="reference"), atol=ATOL, rtol=0)


# ------------------------------------------------------------------------------------------------ thumb_mad


def _mad_reference(t, a, b):
    x = t.double().flatten(1)
    return (x[a] - x[b]).abs().mean(dim=1)


@pytest.mark.parametrize("shape", [(5, 64, 151), (4, 3, 5), (3, 7)], ids=lambda s: "x".join(map(str, s)))
def test_thumb_mad_matches_the_definition(shape):
    """MADs of pairs (any order, repeats, a == b) against a float64 computation, on the kernel (CPU) and on the
    tensor-op path (what a GPU runs), including row lengths that are not multiples of 8."""
    from sf2t.ops.thumbnail import thumb_mad

    g = torch.Generator().manual_seed(3)
    t = torch.rand(shape, generator=g) * 255
    n = shape[0]
    a = [0, 1, n - 1, 2, 0]
    b = [1, 0, 0, 2, n - 1]
    want = _mad_reference(t, a, b)
    got = thumb_mad(t, a, b)
    assert got.dtype == torch.float32 and got.shape == (5,)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-4)
    assert float(got[3]) == 0.0 and float(got[0]) == float(got[1])
    strided = t.transpose(-1, -2) if t.dim() == 3 else t[:, ::2]  # non-contiguous views are read correctly
    torch.testing.assert_close(
        thumb_mad(strided, a, b).double(), _mad_reference(strided.contiguous(), a, b), rtol=1e-5, atol=1e-4
    )
    assert thumb_mad(t, [], []).shape == (0,)


@needs_ext
def test_thumb_mad_kernel_paths_and_opcheck(monkeypatch):
    from sf2t.ops.thumbnail import thumb_mad

    t = torch.rand(6, 64, 90) * 255
    a, b = [0, 1, 2, 5], [3, 4, 5, 0]
    auto = torch.ops.sf2t.thumb_mad(t, a, b)
    monkeypatch.setenv("SF2T_THUMB_SCALAR", "1")
    assert torch.equal(torch.ops.sf2t.thumb_mad(t, a, b), auto)  # the same lane sums, the same order
    monkeypatch.delenv("SF2T_THUMB_SCALAR")
    torch.testing.assert_close(thumb_mad(t, a, b).double(), _mad_reference(t, a, b), rtol=1e-5, atol=1e-4)
    torch.library.opcheck(torch.ops.sf2t.thumb_mad.default, (t, a, b))


@pytest.mark.parametrize(
    "thumbs, a, b, words",
    [
        (torch.zeros(3, 4, 4, dtype=torch.float64), [0], [1], "float32"),
        (torch.zeros(3), [0], [1], "at least 2 dims"),
        ([[0.0]], [0], [0], "float32"),
        (torch.zeros(3, 4), [0, 1], [1], "same length"),
        (torch.zeros(3, 4), [0], [3], "out of range"),
        (torch.zeros(3, 4), [-1], [0], "out of range"),
        (torch.zeros(3, 0), [0], [1], "empty"),
        (torch.zeros(3, 4), [0.7], [1], "a must hold thumbnail indices"),  # once silently frame 0
        (torch.zeros(3, 4), [0], [True], "b must hold thumbnail indices"),
    ],
)
def test_thumb_mad_bad_input(thumbs, a, b, words):
    from sf2t.ops.thumbnail import thumb_mad

    with pytest.raises(ValueError, match=words):
        thumb_mad(thumbs, a, b)


@needs_ext
def test_thumb_mad_kernel_refuses_bad_input():
    with pytest.raises(RuntimeError, match="out of range"):
        torch.ops.sf2t.thumb_mad(torch.zeros(3, 4), [0], [7])
    with pytest.raises(RuntimeError, match="float32"):
        torch.ops.sf2t.thumb_mad(torch.zeros(3, 4, dtype=torch.float64), [0], [1])
    with pytest.raises(RuntimeError, match="same length"):
        torch.ops.sf2t.thumb_mad(torch.zeros(3, 4), [0, 1], [1])


@pytest.mark.parametrize("backend", ["reference", pytest.param("cpp", marks=needs_ext)])
def test_short_side_takes_numpy_integers_and_no_bool_float_or_string(backend):
    frames = _frames(2, 30, 40)
    want = thumbnail(frames, 16, backend=backend)
    assert torch.equal(thumbnail(frames, np.int64(16), backend=backend), want)  # refused before
    for bad, match in (
        (True, "short_side must be a positive int, got the bool True"),
        (np.bool_(True), "short_side must be a positive int, got the bool"),
        (16.0, "short_side must be a positive int, got float 16.0: pass 16"),
        ("16", "short_side must be a positive int, got the string '16': pass the number 16"),
    ):
        with pytest.raises(ValueError, match=match):
            thumbnail(frames, bad, backend=backend)
    with pytest.raises(ValueError, match="backend must be one of .* or None, got bool False"):
        thumbnail(frames, 16, backend=False)
