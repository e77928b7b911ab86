"""The tiled CUDA kernel of fragment_pack (csrc/ops/fragment_pack_tiled.h).

Its code also runs on the host (sf2t::_fragment_pack_tiled_host: every block in turn, each phase by one "thread",
which computes what the GPU block computes), so here, without a GPU, it is checked bit for bit against the C++ CPU
kernel: both layouts, RGB through both staging paths (aligned 32-bit loads, and bytes for strided or unaligned
frames), NV12, both output dtypes, tiles that do and do not divide the output, up- and downscales, repeats and
temporal padding. On a GPU machine the same cases run through the CUDA kernel itself (SF2T_FRAGMENT_PACK_CUDA=tiled)
and through the Triton tiled kernel (SF2T_FRAGMENT_PACK_TRITON=tiled; tests/ops/test_triton.py runs it in the
interpreter).
"""

import pytest
import torch

from sf2t import _ext
from sf2t.ops import NV12, fragment_pack
from sf2t.ops.fragment_pack import QWEN2_VL_MEAN, QWEN2_VL_STD

needs_host = pytest.mark.skipif(
    not _ext.is_loaded() or not hasattr(torch.ops.sf2t, "_fragment_pack_tiled_host"),
    reason=f"sf2t._C not built with the tiled kernel: {_ext.load_error()}",
)
MEAN, STD = list(QWEN2_VL_MEAN), list(QWEN2_VL_STD)


def _plan(gen, n, h, w, f, *, min_crop=1):
    src = torch.randint(0, n, (f,), generator=gen)
    x0 = torch.randint(0, w - min_crop + 1, (f,), generator=gen)
    y0 = torch.randint(0, h - min_crop + 1, (f,), generator=gen)
    x1 = x0 + min_crop + (torch.rand(f, generator=gen) * (w - x0 - min_crop + 1)).long().clamp(max=w - x0 - min_crop)
    y1 = y0 + min_crop + (torch.rand(f, generator=gen) * (h - y0 - min_crop + 1)).long().clamp(max=h - y0 - min_crop)
    return src, torch.stack([x0, y0, x1, y1], 1)


def _qwen(frames, src, boxes, size, *, tile=(28, 56), repeat=2, tpatch=2, dtype=None, nv12=None, host=True):
    args = (size[0], size[1], MEAN, STD, 14, tpatch, 2, repeat)
    extra = () if nv12 is None else (nv12.uv, nv12.coefficients())
    x = frames if nv12 is None else nv12.y
    if host:
        return torch.ops.sf2t._fragment_pack_tiled_host(
            x, src, boxes, size[0], size[1], 0, 0, *args[:2], *args[2:], False, *tile, dtype, *extra
        )
    return torch.ops.sf2t.fragment_pack(x, src, boxes, *args, dtype, *extra)


def _fchw(frames, src, boxes, size, resize, *, tile=(32, 64), repeat=1, dtype=None, nv12=None, host=True):
    crop = ((resize[0] - size[0]) // 2, (resize[1] - size[1]) // 2)
    extra = () if nv12 is None else (nv12.uv, nv12.coefficients())
    x = frames if nv12 is None else nv12.y
    if host:
        return torch.ops.sf2t._fragment_pack_tiled_host(
            x, src, boxes, *resize, *crop, *size, MEAN, STD, 1, 1, 1, repeat, True, *tile, dtype, *extra
        )
    return torch.ops.sf2t.fragment_pack_fchw(x, src, boxes, *resize, *crop, *size, MEAN, STD, repeat, dtype, *extra)


# (N, H, W, out_h, out_w, F, tile): odd and prime frames, a 1x1 frame (upscale), 720p -> 448 (downscale), tiles of
# one patch, of the default 28 x 56, wider than the output, and not dividing it
QWEN_CASES = [
    (4, 37, 53, 28, 56, 5, (28, 56)),
    (3, 240, 320, 112, 140, 7, (28, 56)),
    (2, 13, 7, 56, 28, 3, (14, 14)),
    (1, 1, 1, 28, 28, 1, (28, 56)),
    (5, 97, 131, 84, 28, 4, (42, 70)),
    (2, 720, 1280, 448, 448, 2, (28, 56)),
    (2, 360, 640, 252, 448, 3, (56, 112)),
]


@needs_host
@pytest.mark.parametrize("case", QWEN_CASES, ids=lambda c: "x".join(map(str, c[:6])) + f"-t{c[6][0]}x{c[6][1]}")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_host_run_equals_cpu_kernel_qwen_layout(case, dtype):
    n, h, w, oh, ow, f, tile = case
    gen = torch.Generator().manual_seed(h * w + f)
    frames = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=gen)
    src, boxes = _plan(gen, n, h, w, f)
    want = _qwen(frames, src, boxes, (oh, ow), dtype=dtype, host=False)
    got = _qwen(frames, src, boxes, (oh, ow), tile=tile, dtype=dtype)
    assert got.dtype == want.dtype and torch.equal(got, want)


@needs_host
@pytest.mark.parametrize("repeat,tpatch,f", [(1, 2, 5), (3, 2, 3), (1, 1, 4), (2, 3, 2)])
def test_host_run_repeats_and_pads_like_the_cpu_kernel(repeat, tpatch, f):
    gen = torch.Generator().manual_seed(repeat * 10 + tpatch)
    frames = torch.randint(0, 256, (3, 50, 70, 3), dtype=torch.uint8, generator=gen)
    src, boxes = _plan(gen, 3, 50, 70, f)
    kw = dict(repeat=repeat, tpatch=tpatch)
    assert torch.equal(_qwen(frames, src, boxes, (28, 56), **kw), _qwen(frames, src, boxes, (28, 56), host=False, **kw))


@needs_host
def test_staging_paths_agree_with_the_cpu_kernel():
    """Aligned packed frames take 32-bit loads (crops starting at every byte offset mod 4, and ending at a row whose
    byte length is not a multiple of 4); a strided view, a view 1 byte off alignment, and channels-first memory take
    byte loads."""
    gen = torch.Generator().manual_seed(11)
    base = torch.randint(0, 256, (4, 41, 53, 3), dtype=torch.uint8, generator=gen)  # a row is 159 bytes
    boxes = torch.tensor([[0, 0, 53, 41], [1, 2, 53, 40], [2, 0, 50, 41], [3, 5, 52, 41], [4, 1, 53, 30]])
    src = torch.tensor([0, 1, 2, 3, 3])
    flat = base.flatten()
    views = {
        "packed": base,
        "strided": torch.randint(0, 256, (4, 45, 60, 3), dtype=torch.uint8, generator=gen)[:, 2:43, 3:56],
        "unaligned": torch.cat([torch.zeros(1, dtype=torch.uint8), flat])[1:].view(4, 41, 53, 3),
        "channels_first": base.permute(0, 3, 1, 2).contiguous().permute(0, 2, 3, 1),
    }
    assert views["unaligned"].data_ptr() % 4 != 0
    for name, frames in views.items():
        want = _qwen(frames.contiguous(), src, boxes, (28, 56), host=False)
        assert torch.equal(_qwen(frames, src, boxes, (28, 56)), want), name


# (N, H, W, resize, size, F, repeat, tile): centre crops, tiles that do not divide the output, a 1x1 output
FCHW_CASES = [
    (3, 37, 53, (30, 40), (24, 31), 4, 1, (32, 64)),
    (2, 240, 320, (224, 298), (224, 224), 3, 2, (32, 64)),
    (2, 13, 7, (56, 28), (56, 28), 2, 2, (7, 5)),
    (1, 1, 1, (5, 5), (1, 1), 1, 1, (32, 64)),
    (4, 97, 131, (64, 64), (63, 62), 5, 1, (1, 3)),
]


@needs_host
@pytest.mark.parametrize("case", FCHW_CASES, ids=lambda c: f"{c[1]}x{c[2]}->{c[3]}->{c[4]}-t{c[7][0]}x{c[7][1]}")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_host_run_equals_cpu_kernel_fchw_layout(case, dtype):
    n, h, w, resize, size, f, repeat, tile = case
    gen = torch.Generator().manual_seed(h + w)
    frames = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=gen)
    src, boxes = _plan(gen, n, h, w, f)
    want = _fchw(frames, src, boxes, size, resize, repeat=repeat, dtype=dtype, host=False)
    got = _fchw(frames, src, boxes, size, resize, repeat=repeat, dtype=dtype, tile=tile)
    assert got.shape == (f * repeat, 3, *size) and torch.equal(got, want)


def _nv12(n, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(16, 236, (n, h, w), dtype=torch.uint8, generator=g)
    uv = torch.randint(16, 241, (n, h // 2, w // 2, 2), dtype=torch.uint8, generator=g)
    return NV12(y, uv, matrix="bt709", full_range=False)


@needs_host
@pytest.mark.parametrize("layout", ["qwen2_vl", "fchw"])
def test_host_run_converts_nv12_like_the_cpu_kernel(layout):
    x = _nv12(3, 42, 64, seed=3)
    gen = torch.Generator().manual_seed(5)
    src, boxes = _plan(gen, 3, 42, 64, 5)
    if layout == "qwen2_vl":
        want = _qwen(None, src, boxes, (28, 56), nv12=x, host=False)
        got = _qwen(None, src, boxes, (28, 56), nv12=x)
    else:
        want = _fchw(None, src, boxes, (20, 30), (24, 34), nv12=x, host=False)
        got = _fchw(None, src, boxes, (20, 30), (24, 34), nv12=x, tile=(8, 16))
    assert torch.equal(got, want)


@needs_host
def test_host_run_empty_plan_and_bad_tiles():
    frames = torch.zeros(2, 30, 40, 3, dtype=torch.uint8)
    none = torch.zeros(0, dtype=torch.int64)
    out = _qwen(frames, none, torch.zeros(0, 4, dtype=torch.int64), (28, 28))
    assert out.shape == (0, 1176)
    src, boxes = torch.tensor([0]), torch.tensor([[0, 0, 40, 30]])
    with pytest.raises(RuntimeError, match="whole patches"):
        _qwen(frames, src, boxes, (28, 28), tile=(28, 20))
    with pytest.raises(RuntimeError, match="tile sizes must be in"):
        _fchw(frames, src, boxes, (28, 28), (28, 28), tile=(0, 8))


@needs_host
def test_launcher_shrinks_tiles_to_fit_shared_memory(monkeypatch):
    """Large downscales: 1080p -> 448x252 needs ~130 KB a 28x56 tile, so the CUDA launcher's choice (tile 0 x 0 here)
    halves the tile until a block fits 96 KB, and the output is the same; 1500 -> 28 fits no tile (the two-pass
    kernels run), and a fixed SF2T_FRAGMENT_PACK_TILE that does not fit is not shrunk."""
    gen = torch.Generator().manual_seed(2)
    frames = torch.randint(0, 256, (1, 1080, 1920, 3), dtype=torch.uint8, generator=gen)
    src, boxes = torch.tensor([0]), torch.tensor([[0, 0, 1920, 1080]])
    want = _qwen(frames, src, boxes, (252, 448), host=False)
    assert torch.equal(_qwen(frames, src, boxes, (252, 448), tile=(0, 0)), want)
    monkeypatch.setenv("SF2T_FRAGMENT_PACK_TILE", "28x56")
    with pytest.raises(RuntimeError, match="no tile fits"):
        _qwen(frames, src, boxes, (252, 448), tile=(0, 0))
    monkeypatch.delenv("SF2T_FRAGMENT_PACK_TILE")
    big = torch.randint(0, 256, (1, 1500, 1500, 3), dtype=torch.uint8, generator=gen)
    with pytest.raises(RuntimeError, match="no tile fits"):
        _qwen(big, src, torch.tensor([[0, 0, 1500, 1500]]), (28, 28), tile=(0, 0))


@pytest.mark.parametrize("value", ["28", "28x", "0x56", "28x56x2", "axb", "-28x56"])
def test_bad_tile_setting_is_named(value, monkeypatch):
    from sf2t.ops.fragment_pack import _tile_size

    monkeypatch.setenv("SF2T_FRAGMENT_PACK_TILE", value)
    with pytest.raises(ValueError, match="SF2T_FRAGMENT_PACK_TILE must be HxW"):
        _tile_size(False, 14, 2)
    monkeypatch.setenv("SF2T_FRAGMENT_PACK_TILE", "28x20")
    with pytest.raises(ValueError, match="whole patches"):
        _tile_size(False, 14, 2)
    monkeypatch.setenv("SF2T_FRAGMENT_PACK_TRITON", "fast")
    from sf2t.ops.fragment_pack import _triton_kernel

    with pytest.raises(ValueError, match="SF2T_FRAGMENT_PACK_TRITON must be tiled or two_pass"):
        _triton_kernel()


# ---- CUDA: the kernel itself, on a GPU machine (SF2T_REQUIRE_CUDA=1 turns skips into failures) ----------------


@pytest.fixture(params=["cuda", "triton"])
def tiled_backend(request, monkeypatch):
    """The tiled kernel of a GPU backend: CUDA (SF2T_FRAGMENT_PACK_CUDA=tiled) or Triton (SF2T_FRAGMENT_PACK_TRITON)."""
    if request.param == "cuda":
        _ext.require("CUDA tests", cuda=True)
    elif not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    monkeypatch.setenv("SF2T_FRAGMENT_PACK_CUDA", "tiled")
    monkeypatch.setenv("SF2T_FRAGMENT_PACK_TRITON", "tiled")
    return request.param


@pytest.mark.gpu
@pytest.mark.parametrize("case", QWEN_CASES, ids=lambda c: "x".join(map(str, c[:6])) + f"-t{c[6][0]}x{c[6][1]}")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_tiled_kernel_equals_cpu_kernel(case, dtype, tiled_backend, monkeypatch):
    n, h, w, oh, ow, f, tile = case
    monkeypatch.setenv("SF2T_FRAGMENT_PACK_TILE", f"{tile[0]}x{tile[1]}")
    gen = torch.Generator().manual_seed(h * w + f)
    frames = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=gen)
    src, boxes = _plan(gen, n, h, w, f)
    want = _qwen(frames, src, boxes, (oh, ow), dtype=dtype, host=False)
    kw = dict(backend=tiled_backend, dtype=dtype)
    got, _ = fragment_pack(frames.cuda(), src.cuda(), boxes.cuda(), (oh, ow), **kw)
    assert got.is_cuda and torch.equal(got.cpu(), want)
    strided = frames.cuda().permute(0, 3, 1, 2).contiguous().permute(0, 2, 3, 1)  # byte staging
    assert torch.equal(fragment_pack(strided, src.cuda(), boxes.cuda(), (oh, ow), **kw)[0].cpu(), want)


@pytest.mark.gpu
@pytest.mark.parametrize("layout", ["qwen2_vl", "fchw"])
def test_cuda_tiled_kernel_nv12_and_fchw(layout, tiled_backend):
    x = _nv12(3, 42, 64, seed=3)
    gx = NV12(x.y.cuda(), x.uv.cuda(), matrix="bt709", full_range=False)
    gen = torch.Generator().manual_seed(5)
    src, boxes = _plan(gen, 3, 42, 64, 5)
    if layout == "qwen2_vl":
        want = _qwen(None, src, boxes, (28, 56), nv12=x, host=False)
        got, _ = fragment_pack(gx, src.cuda(), boxes.cuda(), (28, 56), backend=tiled_backend)
    else:
        want = _fchw(None, src, boxes, (20, 30), (24, 34), nv12=x, host=False)
        kw = dict(layout="fchw", resize=(24, 34), frame_repeat=1, backend=tiled_backend)
        got, _ = fragment_pack(gx, src.cuda(), boxes.cuda(), (20, 30), **kw)
    assert torch.equal(got.cpu(), want)
    frames = torch.randint(0, 256, (3, 97, 131, 3), dtype=torch.uint8, generator=gen)
    src, boxes = _plan(gen, 3, 97, 131, 4)
    want = _fchw(frames, src, boxes, (63, 62), (64, 64), repeat=2, host=False)
    kw = dict(layout="fchw", resize=(64, 64), frame_repeat=2, backend=tiled_backend)
    got, _ = fragment_pack(frames.cuda(), src.cuda(), boxes.cuda(), (63, 62), **kw)
    assert torch.equal(got.cpu(), want)


@pytest.mark.gpu
def test_tiled_kernels_fall_back_on_extreme_downscales(tiled_backend):
    """A tile reading more input than the tiled kernels hold (1500 -> 28: ~1,700 rows a tile) runs the two-pass
    kernels: the same result; 1080p -> 448 x 252 runs the CUDA kernel with smaller tiles."""
    gen = torch.Generator().manual_seed(9)
    frames = torch.randint(0, 256, (1, 1500, 1500, 3), dtype=torch.uint8, generator=gen)
    src, boxes = torch.tensor([0]), torch.tensor([[0, 0, 1500, 1500]])
    want = _qwen(frames, src, boxes, (28, 28), host=False)
    got, _ = fragment_pack(frames.cuda(), src.cuda(), boxes.cuda(), (28, 28), backend=tiled_backend)
    assert torch.equal(got.cpu(), want)
    hd = torch.randint(0, 256, (2, 1080, 1920, 3), dtype=torch.uint8, generator=gen)  # CUDA: smaller tiles
    src, boxes = torch.tensor([1, 0]), torch.tensor([[0, 0, 1920, 1080], [7, 3, 1901, 1077]])
    want = _qwen(hd, src, boxes, (252, 448), host=False)
    got, _ = fragment_pack(hd.cuda(), src.cuda(), boxes.cuda(), (252, 448), backend=tiled_backend)
    assert torch.equal(got.cpu(), want)
