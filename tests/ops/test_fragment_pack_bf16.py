"""fragment_pack's bfloat16 output on the C++ kernel: the AVX2 writers (Qwen2-VL streamed and plain, fchw) give
bit for bit the scalar writer's values (SF2T_FP_SCALAR=1: c10::BFloat16's round to nearest even per value) and
float32's output cast to bfloat16, for every patch size (p < 8: scalar writer; odd p: plain vector stores at 2-byte
aligned blocks; even p: streamed), frame repeat, input format and fragment_pack_many. The values include exact ties
(the output's low 16 bits 0x8000), so truncation or rounding ties away from zero fails."""

import pytest
import torch

from sf2t import _ext
from sf2t.ops import NV12, YUV420, fragment_pack, fragment_pack_many
from sf2t.video.convert import swscale_coefficients
from tests.ops.test_fragment_pack import random_plan

needs_ext = pytest.mark.skipif(not _ext.is_loaded(), reason=f"sf2t._C not built: {_ext.load_error()}")

# mean / std (per channel, before the 1/255 scale): "ties": red is (x - 0.5) * 1 for the resized uint8 x, so x >= 128
# gives 9 significant bits ending in 1, an exact bfloat16 tie (both parities of the kept bit occur), green and blue
# the model's (values that round up, down); "qwen": the model's; "huge": values up to ~1e38, red's x = 255 at
# 3.3999e38 (finite in float32, past bfloat16's largest finite value: rounds to inf); "inf_nan": 1 / std overflows
# float32 to inf: +-inf, and NaN where x == mean.
VALUES = {
    "ties": ((0.5 / 255, 0.4578275, 0.40821073), (1 / 255, 0.26130258, 0.27577711)),
    "qwen": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    "huge": ((0.0, 0.5, 0.7), (1 / 3.3999e38, 1e-38, 1e-37)),
    "inf_nan": ((100 / 255,) * 3, (1e-300,) * 3),
}


def _frames(kind, n=4, h=62, w=46, seed=0):
    g = torch.Generator().manual_seed(seed)
    if kind == "rgb":
        return torch.randint(0, 256, (n, h + 1, w + 1, 3), dtype=torch.uint8, generator=g)  # odd sizes
    if kind == "yuv420":
        data = torch.randint(0, 256, (n, h * w * 3 // 2), dtype=torch.uint8, generator=g)
        return YUV420(data, h, w, tuple(swscale_coefficients("bt709", False)))
    y = torch.randint(16, 236, (n, h, w), dtype=torch.uint8, generator=g)
    return NV12(y, torch.randint(16, 241, (n, h // 2, w // 2, 2), dtype=torch.uint8, generator=g))


def _bits(x):
    return x.view(torch.int16)


def _assert_bf16_of(got, f32, scalar):
    """got: the vector writer's bfloat16; equal bits to the scalar writer's, and to float32's output cast (whose NaN
    pattern is ATen's, 0xFFFF, not c10::BFloat16's 0x7FC0: NaN positions compared there)."""
    assert got.dtype == torch.bfloat16 and got.shape == f32.shape
    assert torch.equal(_bits(got), _bits(scalar))
    cast = f32.to(torch.bfloat16)
    nan = torch.isnan(f32)
    assert torch.equal(torch.isnan(got), nan)
    assert torch.equal(_bits(got)[~nan], _bits(cast)[~nan])


def _packs(monkeypatch, pack):
    """pack(dtype) on the default path (AVX2, streamed where possible), with plain stores (SF2T_FP_STREAM=0), on the
    scalar path (SF2T_FP_SCALAR=1), and in float32."""
    fast = pack(torch.bfloat16)
    monkeypatch.setenv("SF2T_FP_STREAM", "0")
    plain = pack(torch.bfloat16)
    monkeypatch.delenv("SF2T_FP_STREAM")
    monkeypatch.setenv("SF2T_FP_SCALAR", "1")
    scalar = pack(torch.bfloat16)
    monkeypatch.delenv("SF2T_FP_SCALAR")
    return fast, plain, scalar, pack(torch.float32)


def _assert_ties_and_round_ups(f32):
    """The test's values can tell correct rounding from truncation and from ties rounded away from zero."""
    u = f32.view(torch.int32)
    low, kept_odd = u & 0xFFFF, (u >> 16) & 1
    assert ((low == 0x8000) & (kept_odd == 0)).any() and ((low == 0x8000) & (kept_odd == 1)).any()
    assert (low > 0x8000).any()


@needs_ext
@pytest.mark.parametrize("kind", ["rgb", "yuv420", "nv12"])
@pytest.mark.parametrize("p", [6, 8, 9, 14, 16])
@pytest.mark.parametrize("repeat", [1, 2, 3])
def test_qwen_bf16_writers_are_bit_identical(kind, p, repeat, monkeypatch):
    frames = _frames(kind, seed=p * 10 + repeat)
    gen = torch.Generator().manual_seed(p + repeat)
    h, w = frames.shape[1], frames.shape[2]
    src, boxes = random_plan(gen, frames.shape[0], h, w, 5)
    src, boxes = torch.cat([src, torch.tensor([1])]), torch.cat([boxes, torch.tensor([[0, 0, w, h]])])
    mean, std = VALUES["ties"]

    def pack(dtype):
        kw = dict(mean=mean, std=std, patch_size=p, frame_repeat=repeat, dtype=dtype, backend="cpp")
        return fragment_pack(frames, src, boxes, (6 * p, 8 * p), **kw)[0]

    fast, plain, scalar, f32 = _packs(monkeypatch, pack)
    _assert_ties_and_round_ups(f32)
    _assert_bf16_of(fast, f32, scalar)
    _assert_bf16_of(plain, f32, scalar)


@needs_ext
@pytest.mark.parametrize("values", list(VALUES))
@pytest.mark.parametrize("p,tp", [(14, 2), (16, 1), (9, 3)])
def test_qwen_bf16_extreme_values(values, p, tp, monkeypatch):
    frames = _frames("rgb", seed=3)
    gen = torch.Generator().manual_seed(4)
    src, boxes = random_plan(gen, frames.shape[0], frames.shape[1], frames.shape[2], 4)
    mean, std = VALUES[values]

    def pack(dtype):
        kw = dict(mean=mean, std=std, patch_size=p, temporal_patch_size=tp, frame_repeat=2, dtype=dtype)
        return fragment_pack(frames, src, boxes, (4 * p, 6 * p), backend="cpp", **kw)[0]

    fast, plain, scalar, f32 = _packs(monkeypatch, pack)
    if values == "huge":
        assert f32.abs().max() > 1e37 and torch.isinf(f32.to(torch.bfloat16)).any() and not torch.isinf(f32).any()
    if values == "inf_nan":
        assert torch.isnan(f32).any() and torch.isinf(f32).any()
        assert torch.equal(_bits(scalar)[torch.isnan(f32)].unique(), torch.tensor([0x7FC0], dtype=torch.int16))
    _assert_bf16_of(fast, f32, scalar)
    _assert_bf16_of(plain, f32, scalar)


@needs_ext
@pytest.mark.parametrize("kind", ["rgb", "yuv420", "nv12"])
@pytest.mark.parametrize("p,repeat", [(14, 1), (14, 2), (16, 3), (9, 2)])
def test_many_bf16_is_bit_identical(kind, p, repeat, monkeypatch):
    """fragment_pack_many's writers (one per sample, each distinct crop written into every sample showing it)."""
    frames = _frames(kind, n=6, seed=p)
    h, w = frames.shape[1], frames.shape[2]
    src = [torch.tensor([0, 1, 2, 3, 5]), torch.tensor([3, 2, 1, 0, 0]), torch.tensor([5])]
    boxes = [None, torch.tensor([[1, 2, w - 3, h - 1]] * 5), torch.tensor([[3, 4, 31, 40]])]
    mean, std = VALUES["ties"]

    def pack(dtype):
        kw = dict(mean=mean, std=std, patch_size=p, frame_repeat=repeat, dtype=dtype, backend="cpp")
        return torch.cat([out for out, _ in fragment_pack_many(frames, src, boxes, (4 * p, 6 * p), **kw)])

    fast, plain, scalar, f32 = _packs(monkeypatch, pack)
    _assert_ties_and_round_ups(f32)
    _assert_bf16_of(fast, f32, scalar)
    _assert_bf16_of(plain, f32, scalar)


@needs_ext
@pytest.mark.parametrize("kind", ["rgb", "nv12"])
@pytest.mark.parametrize("size", [(20, 37), (9, 5), (16, 64), (7, 8)])
@pytest.mark.parametrize("repeat", [1, 2])
def test_fchw_bf16_is_bit_identical(kind, size, repeat, monkeypatch):
    """The fchw writer's rows (out_w values each, so 2-byte aligned for odd widths; 8+ values: AVX2)."""
    frames = _frames(kind, seed=size[1])
    gen = torch.Generator().manual_seed(size[0])
    src, boxes = random_plan(gen, frames.shape[0], frames.shape[1], frames.shape[2], 3)
    mean, std = VALUES["ties"]

    def pack(dtype):
        kw = dict(mean=mean, std=std, frame_repeat=repeat, dtype=dtype, backend="cpp")
        return fragment_pack(frames, src, boxes, size, layout="fchw", resize=(size[0] + 2, size[1]), **kw)[0]

    fast, _, scalar, f32 = _packs(monkeypatch, pack)
    _assert_ties_and_round_ups(f32)
    _assert_bf16_of(fast, f32, scalar)
