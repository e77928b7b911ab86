"""fragment_pack on CPU: the C++ kernel vs the pure-PyTorch reference vs transformers' Qwen2VLVideoProcessor,
same frames, same target size. Outputs are checked equal (within the fragment_pack tolerance) before timing.

    pytest bench/bench_fragment_pack.py --benchmark-json=out.json

(each case is a benchmark group: its providers side by side; grouping by ``param:case`` fails, as the window
benchmark has no ``case`` parameter)
"""

import platform

import pytest
import torch

from sf2t import _ext
from sf2t.ops import fragment_pack
from sf2t.ops.fragment_pack import QWEN2_VL_STD

CASES = {
    # name: (frames, H, W, out_h, out_w, center-square crop): issue 5's shapes. The 1280x720 -> 448x448
    # case crops the centre square (a plan box for sf2t; a sliced view for the processor, which keeps aspect).
    "16x640x360->448x252": (16, 360, 640, 252, 448, False),
    "32x1280x720->448x448": (32, 720, 1280, 448, 448, True),
}
TOL_MAX = 2 / 255 / min(QWEN2_VL_STD)


def _frames(n, h, w):
    gen = torch.Generator().manual_seed(0)
    base = torch.rand(n, 3, h // 8, w // 8, generator=gen)
    x = torch.nn.functional.interpolate(base, size=(h, w), mode="bilinear") * 255
    return x.round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def _hf_processor(out_h, out_w):
    transformers = pytest.importorskip("transformers")
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    px = out_h * out_w
    return Qwen2VLVideoProcessor(size={"shortest_edge": px, "longest_edge": px}), transformers


PROVIDERS = ["cpp", "reference", "hf_processor"]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("case", list(CASES))
def test_fragment_pack_cpu(benchmark, case, provider):
    n, h, w, oh, ow, square = CASES[case]
    frames = _frames(n, h, w)
    src = torch.arange(n)
    x0 = (w - h) // 2 if square else 0
    box = torch.tensor([[x0, 0, x0 + h, h] if square else [0, 0, w, h]]).expand(n, 4)
    ref, _ = fragment_pack(frames, src, box, (oh, ow), frame_repeat=1, backend="reference")
    if provider == "cpp":
        if not _ext.is_loaded():
            pytest.skip(f"sf2t._C not built: {_ext.load_error()}")
        fn = lambda: fragment_pack(frames, src, box, (oh, ow), frame_repeat=1, backend="cpp")[0]
    elif provider == "reference":
        fn = lambda: fragment_pack(frames, src, box, (oh, ow), frame_repeat=1, backend="reference")[0]
    else:
        proc, transformers = _hf_processor(oh, ow)
        video = frames[:, :, x0 : x0 + h] if square else frames
        video = video.permute(0, 3, 1, 2)
        fn = lambda: proc(videos=[video], return_tensors="pt", do_sample_frames=False, cap_pixels_per_frame=False)[
            "pixel_values_videos"
        ]
    out = fn()
    assert out.shape == ref.shape
    diff = (out - ref).abs()
    assert diff.max() <= TOL_MAX and diff.mean() <= 1e-3, f"{provider} disagrees with the reference"
    benchmark.group = case
    benchmark.extra_info.update(
        case=case,
        provider=provider,
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        machine=platform.processor() or platform.machine(),
        out_bytes=out.numel() * out.element_size(),
        in_bytes=frames.numel(),
    )
    benchmark.pedantic(fn, rounds=15, iterations=1, warmup_rounds=2)


# One decoded 64-frame 640x360 window and its 4 plain 16-frame fragments (strides 1-4, overlapping), the way
# `sf2t throughput` packs them: sample by sample from RGB, in one fragment_pack_many call from RGB, and in one call
# from the decoder's YUV 4:2:0 planes (no RGB window at all). All three give the same pixels.
WINDOW_SAMPLES = [(0, 1), (8, 2), (2, 3), (3, 4)]  # (first frame, stride) of each 16-frame fragment
WINDOW_PROVIDERS = ["per_sample_rgb", "many_rgb", "many_yuv420"]


def _window_yuv(n=64, h=360, w=640):
    from sf2t.ops import YUV420
    from sf2t.video.convert import swscale_coefficients

    gen = torch.Generator().manual_seed(1)
    base = torch.rand(n, 1, h * 3 // 16, w // 8, generator=gen)  # smooth planes, stacked Y / U / V rows
    rows = torch.nn.functional.interpolate(base, size=(h * 3 // 2, w), mode="bilinear")[:, 0] * 255
    data = rows.round().to(torch.uint8).reshape(n, h * w * 3 // 2)
    return YUV420(data, h, w, swscale_coefficients(1, False))


@pytest.mark.parametrize("provider", WINDOW_PROVIDERS)
def test_fragment_pack_window_cpu(benchmark, provider):
    if not _ext.is_loaded():
        pytest.skip(f"sf2t._C not built: {_ext.load_error()}")
    from sf2t.ops import fragment_pack_many

    yuv = _window_yuv()
    rgb = yuv.to_rgb()
    size = (252, 448)
    srcs = [torch.arange(16) * s + a for a, s in WINDOW_SAMPLES]
    boxes = [None] * len(srcs)
    ref = [fragment_pack(rgb, i, None, size, backend="reference")[0] for i in srcs]
    if provider == "per_sample_rgb":
        fn = lambda: [fragment_pack(rgb, i, None, size, backend="cpp")[0] for i in srcs]
    elif provider == "many_rgb":
        fn = lambda: [p for p, _ in fragment_pack_many(rgb, srcs, boxes, size, backend="cpp")]
    else:
        fn = lambda: [p for p, _ in fragment_pack_many(yuv, srcs, boxes, size, backend="cpp")]
    for got, want in zip(fn(), ref):
        diff = (got - want).abs()
        assert diff.max() <= TOL_MAX and diff.mean() <= 1e-3, f"{provider} disagrees with the reference"
    benchmark.group = "4 fragments of a 64x640x360 window -> 252x448"
    benchmark.extra_info.update(
        case=benchmark.group,
        provider=provider,
        torch=torch.__version__,
        threads=torch.get_num_threads(),
        machine=platform.processor() or platform.machine(),
    )
    benchmark.pedantic(fn, rounds=15, iterations=1, warmup_rounds=2)
