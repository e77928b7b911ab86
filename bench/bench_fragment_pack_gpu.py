"""fragment_pack on a GPU: CUDA and Triton kernels, each two-pass and tiled single-pass (SF2T_FRAGMENT_PACK_CUDA /
SF2T_FRAGMENT_PACK_TRITON=tiled), achieved bandwidth (bytes read + written over time)
as a fraction of a measured device-to-device copy (issue 5 target: >= 60%). Skips without a GPU.

    pytest bench/bench_fragment_pack_gpu.py --benchmark-json=gpu.json
"""

import pytest
import torch

from sf2t import _ext
from sf2t.ops import fragment_pack

pytestmark = pytest.mark.gpu

CASES = {
    "16x640x360->448x252": (16, 360, 640, 252, 448),
    "32x1280x720->448x448": (32, 720, 1280, 448, 448),
}


@pytest.fixture(scope="module")
def copy_gbps():
    from bench.gpu_ceilings import measure

    return measure()["copy_gbps"]


@pytest.mark.parametrize("backend", ["cuda", "cuda_tiled", "triton", "triton_tiled"])
@pytest.mark.parametrize("case", list(CASES))
def test_fragment_pack_gpu(benchmark, case, backend, copy_gbps, monkeypatch):
    name = backend
    if backend.startswith("cuda"):
        _ext.require("the CUDA benchmark", cuda=True)
    kernel = "tiled" if backend.endswith("_tiled") else "two_pass"
    monkeypatch.setenv("SF2T_FRAGMENT_PACK_CUDA", kernel)
    monkeypatch.setenv("SF2T_FRAGMENT_PACK_TRITON", kernel)
    backend = backend.removesuffix("_tiled")
    n, h, w, oh, ow = CASES[case]
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=gen)
    src = torch.arange(n)
    ref, _ = fragment_pack(frames, src, None, (oh, ow), frame_repeat=1, backend="cpp" if _ext.is_loaded() else None)
    frames_d = frames.cuda()
    out, _ = fragment_pack(frames_d, src, None, (oh, ow), frame_repeat=1, backend=backend)
    torch.testing.assert_close(out.cpu(), ref, atol=2e-6, rtol=0)

    def run():
        fragment_pack(frames_d, src, None, (oh, ow), frame_repeat=1, backend=backend)
        torch.cuda.synchronize()

    benchmark.pedantic(run, rounds=20, iterations=5, warmup_rounds=2)
    moved = frames.numel() + out.numel() * out.element_size()
    gbps = moved / benchmark.stats.stats.median / 1e9
    benchmark.extra_info.update(
        case=case,
        backend=name,
        bytes=moved,
        gbps=gbps,
        copy_gbps=copy_gbps,
        fraction_of_copy=gbps / copy_gbps,
        device=torch.cuda.get_device_name(0),
    )
