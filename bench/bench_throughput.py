"""The whole input pipeline (decode + plan + pack to Qwen2-VL pixels) per provider, pytest-benchmark form of
``sf2t throughput`` (which prints the ratio table on your videos):

    pytest bench/bench_throughput.py --benchmark-json=out.json
"""

import tempfile
from pathlib import Path

import pytest

PROVIDERS = ["sf2t", "llamafactory_style", "qwenvl_utils_style"]
SIZE = (252, 448)


@pytest.fixture(scope="module")
def clip():
    pytest.importorskip("av")
    pytest.importorskip("torchcodec")
    from sf2t import synth

    root = Path(tempfile.gettempdir()) / "sf2t-bench-clips"
    p = root / "throughput_640x360_10s.mp4"
    if not p.exists():
        synth.make_clip(p, 7, width=640, height=360, fps=30, seconds=10, gop=30)
    return str(p)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_pipeline(benchmark, clip, provider):
    from bench.baselines import llamafactory_style, processor_for, qwenvl_utils_style
    from sf2t.throughput import run_sf2t, sample_plans
    from sf2t.video import probe

    info = probe(clip)
    if provider == "sf2t":
        out = benchmark(lambda: run_sf2t([info], 2, SIZE)[0])
    else:
        mod = {"llamafactory_style": llamafactory_style, "qwenvl_utils_style": qwenvl_utils_style}[provider]
        plans = sample_plans([info], 2)
        proc = processor_for(SIZE)
        out = benchmark(lambda: [mod.pixels(p, ids, SIZE, proc) for p, ids in plans])
    assert len(out) == 8 and out[0][1].tolist() == [[8, 18, 32]]
