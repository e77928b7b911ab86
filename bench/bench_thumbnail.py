"""The motion guard's measure on CPU: ``thumbnail`` (C++ kernel vs the pure-PyTorch reference) per frame, with the
frames in cache (8 frames, called again and again) and from memory (a walk through 200 frames, each read once per
pass), and ``thumb_mad`` (one C++ call for a sample's pairs vs the tensor ops it replaced). Outputs are checked
against the reference before timing. One thread (the task-building benchmark's setting).

    python -m bench.bench_thumbnail [--json out.json]        # ms per frame, in cache and from memory
    pytest bench/bench_thumbnail.py                          # pytest-benchmark form (CI: once, --benchmark-disable)
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import pytest
import torch

from sf2t import _ext
from sf2t.ops.thumbnail import thumb_mad, thumbnail

SIZES = {"640x272": (272, 640), "640x360": (360, 640), "1280x720": (720, 1280)}
ATOL = 1e-3  # the op tests' tolerance: float sums in another order


def _frames(n, h, w, seed=0):
    return torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def per_frame_ms(h: int, w: int, backend: str = "cpp", walk: int = 200, reps: int = 7) -> dict:
    """ms per frame of ``thumbnail`` in cache (best of ``reps`` passes over 8 frames, 20 calls each) and from memory
    (best of 3 passes over ``walk`` frames, 8 per call, each frame read once a pass)."""
    big = _frames(walk, h, w)
    hot = big[:8].contiguous()
    torch.testing.assert_close(thumbnail(hot, backend=backend), thumbnail(hot, backend="reference"), atol=ATOL, rtol=0)
    best_hot = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(20):
            thumbnail(hot, backend=backend)
        best_hot = min(best_hot, (time.perf_counter() - t) / (20 * 8))
    best_cold = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for s in range(0, walk - 7, 8):
            thumbnail(big, backend=backend, index=torch.arange(s, s + 8))
        best_cold = min(best_cold, (time.perf_counter() - t) / (walk // 8 * 8))
    return {"in_cache_ms": 1e3 * best_hot, "from_memory_ms": 1e3 * best_cold}


def mad_us(pairs: int = 6, reps: int = 2000) -> dict:
    """µs per call of a sample's MAD pairs on 64x151 thumbnails: thumb_mad vs the tensor ops it replaced."""
    t = torch.rand(8, 64, 151) * 255
    a, b = list(range(pairs)), list(range(1, pairs + 1))
    flat = t.flatten(1)

    def ops():
        i, j = torch.tensor(a), torch.tensor(b)
        return (flat.index_select(0, i) - flat.index_select(0, j)).abs().mean(dim=-1).tolist()

    torch.testing.assert_close(torch.tensor(thumb_mad(t, a, b).tolist()), torch.tensor(ops()), rtol=1e-5, atol=1e-4)
    out = {}
    for name, fn in (("thumb_mad", lambda: thumb_mad(t, a, b).tolist()), ("tensor_ops", ops)):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(reps):
                fn()
            best = min(best, (time.perf_counter() - t0) / reps)
        out[name] = 1e6 * best
    return out


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("backend", ["cpp", "reference"])
@pytest.mark.parametrize("size", list(SIZES))
def test_thumbnail_cpu(benchmark, size, backend):
    if backend == "cpp" and not _ext.is_loaded():
        pytest.skip(f"sf2t._C not built: {_ext.load_error()}")
    h, w = SIZES[size]
    frames = _frames(8, h, w)
    ref = thumbnail(frames, backend="reference")
    out = benchmark(thumbnail, frames, backend=backend)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


@pytest.mark.skipif(not _ext.is_loaded(), reason="sf2t._C not built")
def test_thumb_mad_cpu(benchmark):
    t = torch.rand(8, 64, 151) * 255
    got = benchmark(thumb_mad, t, [0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6])
    want = (t[:6] - t[1:7]).abs().mean(dim=(1, 2))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if not _ext.is_loaded():
        raise SystemExit(f"sf2t._C not built: {_ext.load_error()}")
    res = {"machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": 1}, "thumbnail": {}}
    print(f"{'frame':<10}{'backend':<11}{'in cache ms':>12}{'from memory ms':>16}")
    for name, (h, w) in SIZES.items():
        for backend in ("cpp", "reference"):
            r = per_frame_ms(h, w, backend, walk=200 if backend == "cpp" else 40, reps=7 if backend == "cpp" else 2)
            res["thumbnail"][f"{name}/{backend}"] = r
            print(f"{name:<10}{backend:<11}{r['in_cache_ms']:>12.4f}{r['from_memory_ms']:>16.4f}")
    res["mad_us"] = mad_us()
    print(
        f"a sample's 6 MAD pairs on 64x151 thumbnails: thumb_mad {res['mad_us']['thumb_mad']:.1f} us, "
        f"tensor ops {res['mad_us']['tensor_ops']:.1f} us"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
