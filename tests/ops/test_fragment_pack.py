"""fragment_pack: every backend against the reference, the reference against transformers' processor,
opcheck, and bad input."""

import numpy as np
import pytest
import torch

from sf2t import _ext
from sf2t.ops import fragment_pack, qwen2_vl_target_size
from sf2t.ops.fragment_pack import QWEN2_VL_MEAN, QWEN2_VL_STD
from tests.ops.checks import NUMPY_SCALAR_ERROR, InterpreterErrorStandIn, assert_names_the_interpreter_versions

needs_ext = pytest.mark.skipif(not _ext.is_loaded(), reason=f"sf2t._C not built: {_ext.load_error()}")

# Compiled kernels reproduce torch's uint8 resize bit for bit, so after normalization the only
# difference is float32 rounding of (x - mean) / std vs (x - mean) * (1 / std): a few ulps of values
# in about [-2, 2.2].
ATOL_F32 = 2e-6


def random_plan(gen, n, h, w, f):
    src = torch.randint(0, n, (f,), generator=gen)
    x0 = torch.randint(0, w, (f,), generator=gen)
    y0 = torch.randint(0, h, (f,), generator=gen)
    x1 = x0 + 1 + (torch.rand(f, generator=gen) * (w - x0)).long().clamp(max=w - x0 - 1)
    y1 = y0 + 1 + (torch.rand(f, generator=gen) * (h - y0)).long().clamp(max=h - y0 - 1)
    return src, torch.stack([x0, y0, x1, y1], 1)


# (N, H, W, out_h, out_w, F): odd, prime, 1-pixel, upscaling, downscaling, one presented frame.
SHAPES = [
    (4, 37, 53, 28, 56, 5),
    (3, 240, 320, 112, 140, 7),
    (2, 13, 7, 56, 28, 3),
    (1, 1, 1, 28, 28, 1),
    (5, 97, 131, 84, 28, 4),
    (2, 360, 640, 252, 448, 2),
]


@needs_ext
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("seed", range(3))
def test_cpp_matches_reference(shape, seed):
    n, h, w, oh, ow, f = shape
    gen = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=gen)
    src, boxes = random_plan(gen, n, h, w, f)
    ref, grid_ref = fragment_pack(frames, src, boxes, (oh, ow), backend="reference")
    out, grid = fragment_pack(frames, src, boxes, (oh, ow), backend="cpp")
    assert torch.equal(grid, grid_ref)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, atol=ATOL_F32, rtol=0)


@needs_ext
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_cpp_vector_and_scalar_width_pass_agree(shape, monkeypatch):
    """The AVX2 width pass (rows read in place where a padded read stays inside the frames, else copied) and the
    scalar one (SF2T_FP_SCALAR=1) compute the same integers: identical outputs, incl. crops that end at the very
    last byte of the frames' memory and NV12."""
    n, h, w, oh, ow, f = shape
    gen = torch.Generator().manual_seed(11)
    frames = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=gen)
    src, boxes = random_plan(gen, n, h, w, f)
    src = torch.cat([src, torch.tensor([n - 1])])  # the last frame, whole: its last row ends the memory
    boxes = torch.cat([boxes, torch.tensor([[0, 0, w, h]])])
    fast, _ = fragment_pack(frames, src, boxes, (oh, ow), backend="cpp")
    fchw_fast = torch.ops.sf2t.fragment_pack_fchw(
        frames, src, boxes, oh, ow, 0, 0, oh, ow, [0.5] * 3, [0.5] * 3, 1, None, None, None
    )
    monkeypatch.setenv("SF2T_FP_SCALAR", "1")
    slow, _ = fragment_pack(frames, src, boxes, (oh, ow), backend="cpp")
    fchw_slow = torch.ops.sf2t.fragment_pack_fchw(
        frames, src, boxes, oh, ow, 0, 0, oh, ow, [0.5] * 3, [0.5] * 3, 1, None, None, None
    )
    assert torch.equal(fast, slow) and torch.equal(fchw_fast, fchw_slow)


@needs_ext
@pytest.mark.parametrize("crop_w", [45, 150, 313, 629, 640])
def test_cpp_width_pass_paths_agree(crop_w, monkeypatch):
    """Each width-pass path of the C++ kernel gives the same integers: the planar AVX-512 pass where the CPU has
    it (16 outputs a 64-byte window: downscales up to ~3.5x and upscales), the planar AVX2 pass (SF2T_FP_AVX512=0, or
    no AVX-512: 4 outputs a lane for downscales up to ~2.1x, 2 for up to ~3x: here 640 -> 448 and 629 -> 224; larger
    ones and upscales take the per-pixel pass), the per-pixel AVX2 pass (SF2T_FP_WIDTH=pixel) and the scalar one
    (SF2T_FP_SCALAR=1), against the reference; crop widths that are not multiples of the 32-pixel split step, in
    both layouts."""
    gen = torch.Generator().manual_seed(crop_w)
    frames = torch.randint(0, 256, (3, 60, 640, 3), dtype=torch.uint8, generator=gen)
    src = torch.tensor([0, 2, 1, 2])
    boxes = torch.tensor(
        [[0, 0, crop_w, 60], [640 - crop_w, 3, 640, 57], [1, 0, 1 + crop_w // 2, 60], [640 - crop_w, 0, 640, 60]]
    )
    outs = {}
    paths = (
        ("planar", {}),
        ("avx2", {"SF2T_FP_AVX512": "0"}),
        ("pixel", {"SF2T_FP_WIDTH": "pixel"}),
        ("scalar", {"SF2T_FP_SCALAR": "1"}),
    )
    for path, env in paths:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        for ow in (448, 224, 112):
            outs[path, ow] = fragment_pack(frames, src, boxes, (28, ow), backend="cpp")[0]
            outs[path, "fchw", ow] = torch.ops.sf2t.fragment_pack_fchw(
                frames, src, boxes, 30, ow, 1, 0, 28, ow, [0.5] * 3, [0.5] * 3, 1, None, None, None
            )
        for k in env:
            monkeypatch.delenv(k)
    for ow in (448, 224, 112):
        ref, _ = fragment_pack(frames, src, boxes, (28, ow), backend="reference")
        torch.testing.assert_close(outs["planar", ow], ref, atol=ATOL_F32, rtol=0)
        for path in ("avx2", "pixel", "scalar"):
            assert torch.equal(outs[path, ow], outs["planar", ow]), (path, ow)
            assert torch.equal(outs[path, "fchw", ow], outs["planar", "fchw", ow]), (path, ow)


@needs_ext
@pytest.mark.parametrize("repeat,tp", [(1, 2), (2, 2), (3, 2), (1, 1), (2, 3)])
def test_cpp_repeat_and_temporal_padding(repeat, tp):
    gen = torch.Generator().manual_seed(7)
    frames = torch.randint(0, 256, (3, 30, 45, 3), dtype=torch.uint8, generator=gen)
    src, boxes = random_plan(gen, 3, 30, 45, 3)
    kw = dict(frame_repeat=repeat, temporal_patch_size=tp)
    ref, g1 = fragment_pack(frames, src, boxes, (28, 56), backend="reference", **kw)
    out, g2 = fragment_pack(frames, src, boxes, (28, 56), backend="cpp", **kw)
    assert torch.equal(g1, g2) and g1[0, 0].item() == -(-3 * repeat // tp)
    torch.testing.assert_close(out, ref, atol=ATOL_F32, rtol=0)


@needs_ext
def test_cpp_strided_frames():
    gen = torch.Generator().manual_seed(3)
    base = torch.randint(0, 256, (6, 3, 50, 80), dtype=torch.uint8, generator=gen)
    frames = base.permute(0, 2, 3, 1)[::2, :, 1:]  # channels-first storage, every other frame, offset column
    assert not frames.is_contiguous()
    src, boxes = random_plan(gen, frames.shape[0], frames.shape[1], frames.shape[2], 4)
    ref, _ = fragment_pack(frames.contiguous(), src, boxes, (56, 56), backend="reference")
    out, _ = fragment_pack(frames, src, boxes, (56, 56), backend="cpp")
    torch.testing.assert_close(out, ref, atol=ATOL_F32, rtol=0)


@needs_ext
def test_cpp_bfloat16_is_rounded_float32():
    gen = torch.Generator().manual_seed(5)
    frames = torch.randint(0, 256, (3, 61, 47, 3), dtype=torch.uint8, generator=gen)
    src, boxes = random_plan(gen, 3, 61, 47, 4)
    ref, _ = fragment_pack(frames, src, boxes, (56, 28), backend="reference")
    out, _ = fragment_pack(frames, src, boxes, (56, 28), backend="cpp", dtype=torch.bfloat16)
    assert out.dtype == torch.bfloat16
    # STYLE.md rule: the kernel's bf16 error vs an fp64 truth is at most ~2x PyTorch's own bf16 cast error.
    truth = ref.double()
    err_kernel = (out.double() - truth).abs().max()
    err_torch = (ref.bfloat16().double() - truth).abs().max()
    assert err_kernel <= 2 * err_torch + 1e-12


@needs_ext
def test_empty_plan():
    frames = torch.zeros(2, 10, 10, 3, dtype=torch.uint8)
    src = torch.zeros(0, dtype=torch.int64)
    for backend in ("reference", "cpp"):
        out, grid = fragment_pack(frames, src, None, (28, 28), backend=backend)
        assert out.shape == (0, 3 * 2 * 14 * 14)
        assert grid.tolist() == [[0, 2, 2]]


def test_whole_frame_default_and_grid():
    gen = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (4, 56, 84, 3), dtype=torch.uint8, generator=gen)
    src = torch.tensor([3, 0, 2])
    out, grid = fragment_pack(frames, src, None, (56, 84))
    assert grid.tolist() == [[3, 4, 6]]  # 3 presented frames x repeat 2 = 3 temporal groups
    assert out.shape == (3 * 4 * 6, 1176)
    # Identity resize: each patch row holds the normalized pixels of the right frame.
    x = (frames.float() / 255 - torch.tensor(QWEN2_VL_MEAN)) / torch.tensor(QWEN2_VL_STD)  # [N, H, W, C]
    # First row of output: temporal group 0 (= frame 3 twice), top-left patch, channel 0, patch row 0.
    torch.testing.assert_close(out[0, :14], x[3, 0, :14, 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[0, 196:210], x[3, 0, :14, 0], atol=1e-5, rtol=0)  # the repeat


def test_reference_matches_transformers_processor():
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torchvision")
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    gen = torch.Generator().manual_seed(11)
    # Smooth content (not pure noise) so this is like real frames; 8 frames of 120x160.
    base = torch.rand(8, 3, 12, 16, generator=gen)
    frames = (torch.nn.functional.interpolate(base, size=(120, 160), mode="bilinear") * 255).round().to(torch.uint8)
    frames = frames.permute(0, 2, 3, 1).contiguous()
    oh, ow = qwen2_vl_target_size(120, 160, min_pixels=56 * 56, max_pixels=112 * 140)
    proc = Qwen2VLVideoProcessor(
        min_pixels=56 * 56, max_pixels=112 * 140, size={"shortest_edge": 56 * 56, "longest_edge": 112 * 140}
    )
    hf = proc(
        videos=[frames.permute(0, 3, 1, 2)], return_tensors="pt", do_sample_frames=False, cap_pixels_per_frame=False
    )
    assert hf["video_grid_thw"].tolist() == [[4, oh // 14, ow // 14]], transformers.__version__
    ours, grid = fragment_pack(frames, torch.arange(8), None, (oh, ow), frame_repeat=1, backend="reference")
    assert grid.tolist() == hf["video_grid_thw"].tolist()
    diff = (ours - hf["pixel_values_videos"]).abs()
    assert diff.max() <= 2 / 255 / min(QWEN2_VL_STD) and diff.mean() <= 1e-3


@needs_ext
def test_opcheck():
    gen = torch.Generator().manual_seed(2)
    frames = torch.randint(0, 256, (3, 33, 41, 3), dtype=torch.uint8, generator=gen)
    src, boxes = random_plan(gen, 3, 33, 41, 3)
    args = (frames, src, boxes, 28, 56, list(QWEN2_VL_MEAN), list(QWEN2_VL_STD), 14, 2, 2, 2, None)
    torch.library.opcheck(torch.ops.sf2t.fragment_pack.default, args)
    args_bf16 = args[:-1] + (torch.bfloat16,)
    torch.library.opcheck(torch.ops.sf2t.fragment_pack.default, args_bf16)


@needs_ext
def test_torch_compile_fullgraph():
    gen = torch.Generator().manual_seed(4)
    frames = torch.randint(0, 256, (3, 40, 40, 3), dtype=torch.uint8, generator=gen)
    src, boxes = random_plan(gen, 3, 40, 40, 2)

    def f(fr, s, b):
        return torch.ops.sf2t.fragment_pack(fr, s, b, 28, 28, list(QWEN2_VL_MEAN), list(QWEN2_VL_STD), 14, 2, 2, 2) * 2

    out = torch.compile(f, fullgraph=True, backend="eager")(frames, src, boxes)
    torch.testing.assert_close(out, 2 * fragment_pack(frames, src, boxes, (28, 28))[0])


# ---- bad input: errors that name the argument -------------------------------------------------


def _ok():
    return torch.zeros(2, 30, 40, 3, dtype=torch.uint8), torch.tensor([0, 1]), torch.tensor([[0, 0, 40, 30]] * 2)


@pytest.mark.parametrize("backend", ["reference", pytest.param("cpp", marks=needs_ext)])
@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda f, s, b: (f.float(), s, b, (28, 28)), "frames must be uint8"),
        (lambda f, s, b: (f[..., :2], s, b, (28, 28)), r"frames must have shape"),
        (lambda f, s, b: (f[0], s, b, (28, 28)), r"frames must have shape"),
        (lambda f, s, b: (f, torch.tensor([0, 2]), b, (28, 28)), "src_index holds 2, out of range for 2 frames"),
        (lambda f, s, b: (f, torch.tensor([-1, 0]), b, (28, 28)), "src_index holds -1"),
        (lambda f, s, b: (f, s.float(), b, (28, 28)), "src_index must be an integer tensor"),
        (lambda f, s, b: (f, s, b[:1], (28, 28)), "boxes must be an integer tensor"),
        (lambda f, s, b: (f, s, torch.tensor([[0, 0, 41, 30]] * 2), (28, 28)), r"boxes\[0\].*outside the 40x30"),
        (lambda f, s, b: (f, s, torch.tensor([[0, 0, 40, 30], [5, 5, 5, 9]]), (28, 28)), r"boxes\[1\].*empty"),
        (lambda f, s, b: (f, s, b.float(), (28, 28)), "boxes must be an integer tensor"),
        (lambda f, s, b: (f, s, b, (30, 28)), r"size \(30, 28\) must be positive multiples"),
        (lambda f, s, b: (f, s, b, (0, 28)), "size"),
        # a torch resize error (reference) or one about boxes never given (C++) before
        (
            lambda f, s, b: (f[:, :0], s, None, (28, 28)),
            r"frames must have a positive height and width.*\(2, 0, 40, 3\)",
        ),
        (lambda f, s, b: (f[:, :, :0], s, None, (28, 28)), "frames must have a positive height and width"),
        # a plan on another device than the frames (meta stands in for a GPU here): "Tensor.item() ... meta" before
        (lambda f, s, b: (f, s.to("meta"), b, (28, 28)), r"src_index must be on the CPU or on frames' device \(cpu\)"),
        (lambda f, s, b: (f, s, b.to("meta"), (28, 28)), r"boxes must be on the CPU or on frames' device \(cpu\)"),
        (lambda f, s, b: (f, s, b, (True, 28)), r"size must be \(out_h, out_w\) ints"),  # read as 1 before
    ],
)
def test_bad_input_names_the_argument(backend, mutate, match):
    frames, src, boxes, size = mutate(*_ok())
    with pytest.raises(ValueError, match=match):
        fragment_pack(frames, src, boxes, size, backend=backend)


@pytest.mark.parametrize("backend", ["reference", pytest.param("cpp", marks=needs_ext)])
@pytest.mark.parametrize("layout", ["qwen2_vl", "fchw"])
@pytest.mark.parametrize(
    "mean, std",
    [
        ((0.5, 0.5, 0.5), (float("nan"), 1.0, 1.0)),  # NaN passes a "std > 0" test the wrong way round
        ((float("nan"), 0.5, 0.5), (1.0, 1.0, 1.0)),
        ((0.5, 0.5, 0.5), (1.0, float("inf"), 1.0)),
        ((0.5, 0.5, 0.5), (1.0, 0.0, 1.0)),
        ((0.5, 0.5, 0.5), (1.0, -1.0, 1.0)),
        ((0.5, 0.5), (1.0, 1.0, 1.0)),
        ("abc", (1.0, 1.0, 1.0)),
    ],
)
def test_mean_and_std_must_be_finite(backend, layout, mean, std):
    """Normalization constants that would make every output NaN or infinite are refused by name, on every path."""
    frames, src, boxes = _ok()
    with pytest.raises(ValueError, match="mean and std must be 3 finite numbers each, std positive"):
        fragment_pack(frames, src, boxes, (28, 28), mean=mean, std=std, backend=backend, layout=layout)


@needs_ext
def test_compiled_op_checks_mean_and_std_itself():
    frames, src, boxes = _ok()
    mean, std = list(QWEN2_VL_MEAN), list(QWEN2_VL_STD)
    for m, s_ in ((mean, [float("nan"), 1.0, 1.0]), ([0.5, float("inf"), 0.5], std), (mean, [1.0, 0.0, 1.0])):
        with pytest.raises(RuntimeError, match="mean and std must be finite and std positive"):
            torch.ops.sf2t.fragment_pack(frames, src, boxes, 28, 28, m, s_, 14, 2, 2, 2)


@needs_ext
def test_compiled_op_checks_plan_itself():
    """Called directly (no front door), the kernel still refuses bad plans instead of reading out of bounds."""
    frames, src, boxes = _ok()
    mean, std = list(QWEN2_VL_MEAN), list(QWEN2_VL_STD)
    with pytest.raises(RuntimeError, match=r"src_index\[1\] = 5 is out of range"):
        torch.ops.sf2t.fragment_pack(frames, torch.tensor([0, 5]), boxes, 28, 28, mean, std, 14, 2, 2, 2)
    with pytest.raises(RuntimeError, match=r"boxes\[0\]"):
        torch.ops.sf2t.fragment_pack(frames, src, torch.tensor([[0, 0, 50, 30]] * 2), 28, 28, mean, std, 14, 2, 2, 2)
    with pytest.raises(RuntimeError, match="frames must be uint8"):
        torch.ops.sf2t.fragment_pack(frames.float(), src, boxes, 28, 28, mean, std, 14, 2, 2, 2)
    with pytest.raises(RuntimeError, match="multiples of patch_size"):
        torch.ops.sf2t.fragment_pack(frames, src, boxes, 30, 28, mean, std, 14, 2, 2, 2)


@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(frame_repeat=2**62), "frames out"),
        (dict(temporal_patch_size=2**62), "frames out"),
        (dict(patch_size=2**31, size=(2**32, 2**32), merge_size=2), "values per frame out"),
        (dict(layout="fchw", frame_repeat=2**61), "frames out"),
    ],
)
def test_sizes_too_large_to_address_are_refused(kw, words):
    """Sizes whose products overflow int64 (they once wrapped round to a short buffer the kernel wrote past: a
    segfault) are refused by name, before any work."""
    frames, src, boxes = _ok()
    size = kw.pop("size", (28, 28))
    with pytest.raises(ValueError, match=f"{words}.*too large to address"):
        fragment_pack(frames, src, boxes, size, **kw)


@needs_ext
def test_compiled_op_refuses_sizes_too_large_to_address():
    frames, src, boxes = _ok()
    mean, std = list(QWEN2_VL_MEAN), list(QWEN2_VL_STD)
    for p, tp, m, r in ((14, 2**62, 2, 2), (14, 2, 2, 2**62), (14, 2**61, 2, 3)):
        with pytest.raises(RuntimeError, match="too large to address"):
            torch.ops.sf2t.fragment_pack(frames, src, boxes, 28, 28, mean, std, p, tp, m, r)
    with pytest.raises(RuntimeError, match="too large to address"):
        torch.ops.sf2t.fragment_pack_fchw(frames, src, boxes, 28, 28, 0, 0, 28, 28, mean, std, 2**62)


def test_unknown_backend_and_wrong_device():
    frames, src, boxes = _ok()
    with pytest.raises(ValueError, match="backend must be one of"):
        fragment_pack(frames, src, boxes, (28, 28), backend="magic")
    if _ext.has_cuda_kernels():
        with pytest.raises(ValueError, match="backend 'cuda' needs frames on a CUDA device"):
            fragment_pack(frames, src, boxes, (28, 28), backend="cuda")


def test_missing_extension_error_says_how_to_rebuild(monkeypatch):
    monkeypatch.setattr(_ext, "_load", lambda: (False, "sf2t._C could not be loaded (No module named 'sf2t._C')"))
    frames, src, boxes = _ok()
    with pytest.raises(_ext.ExtensionError, match="pip install -e . --no-build-isolation"):
        fragment_pack(frames, src, boxes, (28, 28), backend="cpp")
    # The reference still works without the extension, and auto-selection falls back to it.
    out, _ = fragment_pack(frames, src, boxes, (28, 28))
    assert out.shape[1] == 1176


@pytest.mark.parametrize("layout", ["qwen2_vl", "fchw"])
@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (NUMPY_SCALAR_ERROR, RuntimeError),
        ("unsupported operand type(s)", InterpreterErrorStandIn),  # any other error: unchanged
    ],
)
def test_triton_interpreter_with_a_numpy_it_cannot_run_is_named(monkeypatch, layout, error, expected):
    """Triton 3.6's interpreter with NumPy 2.4 fails inside Triton (an InterpreterError quoting NumPy's TypeError):
    fragment_pack says which versions and what to install instead, for both layouts (the failing launch is
    simulated: CI's Triton 3.8 runs; checked for real with Triton 3.6 and NumPy 2.4 by hand)."""
    pytest.importorskip("triton")
    from sf2t.kernels import fragment_pack as kernel

    def fails(*args, **kwargs):
        raise InterpreterErrorStandIn(error)

    monkeypatch.setattr(kernel, "launch_fragment_pack", fails)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.delenv("SF2T_FRAGMENT_PACK_TRITON", raising=False)
    frames, src, boxes = _ok()
    with pytest.raises(expected) as info:
        fragment_pack(frames, src, boxes, (28, 28), layout=layout, backend="triton")
    if expected is RuntimeError:
        assert_names_the_interpreter_versions(str(info.value), "fragment_pack backend 'triton'")
    else:
        assert str(info.value) == error


def test_target_size_matches_transformers():
    pytest.importorskip("transformers")
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import smart_resize

    for h, w in [(240, 320), (360, 640), (720, 1280), (56, 56), (13, 7), (1080, 1920), (100, 2000)]:
        for mn, mx in [(56 * 56, 112 * 140), (128 * 28 * 28, 768 * 28 * 28)]:
            assert qwen2_vl_target_size(h, w, min_pixels=mn, max_pixels=mx) == smart_resize(
                h, w, factor=28, min_pixels=mn, max_pixels=mx
            )


# ---- CUDA: runs on a GPU machine; SF2T_REQUIRE_CUDA=1 turns skips into failures ---------------


@pytest.mark.gpu
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_matches_cpp(shape, dtype):
    _ext.require("CUDA tests", cuda=True)
    n, h, w, oh, ow, f = shape
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=gen)
    src, boxes = random_plan(gen, n, h, w, f)
    cpu, g1 = fragment_pack(frames, src, boxes, (oh, ow), backend="cpp", dtype=dtype)
    gpu, g2 = fragment_pack(frames.cuda(), src.cuda(), boxes.cuda(), (oh, ow), backend="cuda", dtype=dtype)
    assert gpu.is_cuda and torch.equal(g1, g2.cpu())
    torch.testing.assert_close(gpu.cpu(), cpu, atol=ATOL_F32 if dtype == torch.float32 else 0.0, rtol=0)


@pytest.mark.gpu
def test_cuda_strided_and_empty():
    _ext.require("CUDA tests", cuda=True)
    gen = torch.Generator().manual_seed(3)
    base = torch.randint(0, 256, (6, 3, 50, 80), dtype=torch.uint8, generator=gen).cuda()
    frames = base.permute(0, 2, 3, 1)[::2, :, 1:]
    src, boxes = random_plan(gen, frames.shape[0], frames.shape[1], frames.shape[2], 4)
    ref, _ = fragment_pack(frames.cpu().contiguous(), src, boxes, (56, 56), backend="reference")
    out, _ = fragment_pack(frames, src, boxes, (56, 56), backend="cuda")
    torch.testing.assert_close(out.cpu(), ref, atol=ATOL_F32, rtol=0)
    empty, grid = fragment_pack(frames, torch.zeros(0, dtype=torch.int64), None, (28, 28), backend="cuda")
    assert empty.shape == (0, 1176) and grid.tolist() == [[0, 2, 2]]
    torch.library.opcheck(
        torch.ops.sf2t.fragment_pack.default,
        (frames, src.cuda(), boxes.cuda(), 28, 56, list(QWEN2_VL_MEAN), list(QWEN2_VL_STD), 14, 2, 2, 2, None),
    )


@pytest.mark.parametrize("backend", ["reference", pytest.param("cpp", marks=needs_ext)])
def test_a_bool_patch_argument_is_refused(backend):
    """``patch_size=True`` was taken as 1 (bool is an int), a different layout with no error."""
    frames, src, boxes = _ok()
    with pytest.raises(ValueError, match="patch_size must be a positive int"):
        fragment_pack(frames, src, boxes, (28, 28), patch_size=True, merge_size=28, backend=backend)


@pytest.mark.parametrize("backend", ["reference", pytest.param("cpp", marks=needs_ext)])
def test_meta_frames_give_outputs_of_the_right_shapes(backend):
    """Frames on the meta device (shapes only) give meta outputs of the real shapes, as the registered fakes do; they
    failed inside the reference ("Cannot copy out of meta tensor"), the range check (``Tensor.item()``) or the
    backend choice before."""
    frames, src, boxes = _ok()
    real, grid = fragment_pack(frames, src, boxes, (28, 56), backend=backend)
    meta, mgrid = fragment_pack(frames.to("meta"), src.to("meta"), boxes.to("meta"), (28, 56), backend=backend)
    assert meta.is_meta and meta.shape == real.shape and meta.dtype == real.dtype
    assert mgrid.is_meta and mgrid.shape == grid.shape
    fchw, _ = fragment_pack(frames.to("meta"), src, None, (20, 30), layout="fchw", frame_repeat=3, backend=backend)
    assert fchw.is_meta and fchw.shape == (6, 3, 20, 30)


@pytest.mark.parametrize("backend", ["reference", pytest.param("cpp", marks=needs_ext)])
def test_numpy_integers_are_ints(backend):
    """Sizes and counts read from numpy (``np.int64`` from an array) give what Python ints give; they were refused
    ("size must be (out_h, out_w) ints"), while token_merge took them."""
    frames, src, boxes = _ok()
    want, grid = fragment_pack(frames, src, boxes, (28, 56), frame_repeat=1, backend=backend)
    for size in ((np.int64(28), np.int32(56)), np.array([28, 56]), [np.uint16(28), 56]):
        got, g = fragment_pack(
            frames,
            src,
            boxes,
            size,
            frame_repeat=np.int64(1),
            patch_size=np.int64(14),
            temporal_patch_size=np.int8(2),
            merge_size=np.int64(2),
            backend=backend,
        )
        assert torch.equal(got, want) and torch.equal(g, grid)
    assert qwen2_vl_target_size(np.int64(120), np.int64(160), min_pixels=np.int64(3136)) == qwen2_vl_target_size(
        120, 160, min_pixels=3136
    )


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(frame_repeat=True), r"frame_repeat must be a positive int, got the bool True"),
        (dict(frame_repeat=np.bool_(True)), r"frame_repeat must be a positive int, got the bool"),
        (dict(frame_repeat=2.0), r"frame_repeat must be a positive int, got float 2.0: pass 2"),
        (dict(frame_repeat="2"), r"frame_repeat must be a positive int, got the string '2': pass the number 2"),
        # strings str.isdigit takes that int() refuses: int()'s own message, no argument named, was raised
        (dict(frame_repeat="²"), r"^frame_repeat must be a positive int, got the string '²'$"),
        (dict(frame_repeat="+-2"), r"^frame_repeat must be a positive int, got the string '\+-2'$"),
        (dict(frame_repeat=torch.tensor(2)), r"frame_repeat must be a positive int, got a tensor .*: pass int\(it\)"),
        (dict(frame_repeat=np.int64(0)), r"frame_repeat must be a positive int, got 0"),
        (dict(temporal_patch_size=2.5), r"temporal_patch_size must be a positive int, got float 2.5"),
        (dict(merge_size=np.float64(2)), r"merge_size must be a positive int, got float64"),
        (dict(size=(28.0, 28)), r"size must be \(out_h, out_w\) ints, got \(28.0, 28\): out_h is float 28.0: pass 28"),
        (dict(size=(28, np.bool_(True))), r"size must be \(out_h, out_w\) ints, .*out_w is the bool"),
        (dict(size=28), r"size must be \(out_h, out_w\) ints, got int 28: pass \(28, 28\) for a square"),
        (dict(size="28"), r"size must be \(out_h, out_w\) ints, got str"),
        (dict(backend=False), r"backend must be one of .* or None, got bool False"),  # was: choose for me
        (dict(layout=["fchw"]), r"layout must be one of"),
    ],
)
def test_bad_integer_arguments_name_the_argument_and_what_it_got(kw, match):
    frames, src, boxes = _ok()
    size = kw.pop("size", (28, 28))
    with pytest.raises(ValueError, match=match):
        fragment_pack(frames, src, boxes, size, backend=kw.pop("backend", "reference"), **kw)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(height=120.0), r"height must be an int, got float 120.0: pass 120"),
        (dict(width=True), r"width must be an int, got the bool True"),
        (dict(factor=np.bool_(True)), r"factor must be a positive int, got the bool"),
        (dict(factor=0), r"factor must be a positive int, got 0"),
        (dict(min_pixels=3136.0), r"min_pixels must be a non-negative int, got float 3136.0: pass 3136"),
        (dict(max_pixels=1e6), r"max_pixels must be a positive int, got float 1000000.0: pass 1000000"),
        (dict(max_pixels="1003520"), r"max_pixels must be a positive int, got the string"),
    ],
)
def test_qwen2_vl_target_size_checks_its_integers(kw, match):
    args = {"height": 120, "width": 160} | kw
    h, w = args.pop("height"), args.pop("width")
    with pytest.raises(ValueError, match=match):
        qwen2_vl_target_size(h, w, **args)
