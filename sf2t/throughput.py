"""``sf2t throughput``: sf2t's input pipeline side by side with what fine-tuning stacks run today, on your videos.

Every provider turns the same SF²T sample plans (16-frame fragments at a stride of 1-4, 4 samples per 64-frame
window, ``sf2t.video.sampler.WindowSampler``'s planner) into the same Qwen2-VL pixel values
(``pixel_values_videos`` + ``video_grid_thw`` at one target size, 2 frames per temporal patch):

- ``sf2t``: the window sampler (decoder opened once per video and kept; one decode of the window's sorted union of
  frames, shared by its samples) + ``fragment_pack`` gathering each sample's frames from that decode,
- ``llamafactory_style`` / ``qwenvl_utils_style``: ``bench/baselines/`` (per sample: open the file, decode,
  resize with PIL / torch, then transformers' ``Qwen2VLVideoProcessor``).

Outputs are checked to agree (within fragment_pack's tolerance) before anything is timed; providers run in
interleaved rounds; one decoder thread and one torch thread each (``--threads`` for more); each sample is
dropped once made (as a training loop consumes it).
Reported: samples/s, frames delivered/s, pixel bytes/s, the ratio of sf2t to each baseline, and the machine's
ceiling: the raw decoder's all-frames rate on the same files divided by the frames sf2t decodes per sample.
Run from a clone (the baselines live in its ``bench/`` folder).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Sequence

import torch

__all__ = ["measure", "main", "Fragment", "PROVIDERS"]

FRAMES, WINDOW, SAMPLES_PER_WINDOW = 16, 64, 4
PROVIDERS = ("sf2t", "llamafactory_style", "qwenvl_utils_style")


class Fragment:
    """A plain 16-frame fragment at a uniform stride (1-4) inside the window."""

    name = "fragment"
    pixels = "none"

    def min_frames(self):
        return FRAMES

    def plan(self, source, num_frames, rng: random.Random):
        from sf2t.tasks.base import FramePlan

        stride = rng.randint(1, max(1, min(4, (num_frames - 1) // (FRAMES - 1))))
        start = rng.randint(0, num_frames - (FRAMES - 1) * stride - 1)
        return FramePlan(self.name, source, [start + i * stride for i in range(FRAMES)], {"stride": stride})

    def build(self, plan, frames, rng):
        from sf2t.tasks.base import Sample

        meta = {"source": plan.source, "source_frames": list(plan.frame_ids), "task": self.name}
        return Sample(self.name, "", "", list(range(len(plan.frame_ids))), meta)

    def chance(self):
        return 0.0


def _baselines():
    """The baseline modules from the clone's bench/baselines (importable from the repo root)."""
    try:
        import bench.baselines.llamafactory_style as lf
        import bench.baselines.qwenvl_utils_style as qv
    except ImportError:
        root = Path(__file__).resolve().parent.parent
        if not (root / "bench" / "baselines").is_dir():
            raise RuntimeError(
                "sf2t throughput's baselines live in the repository's bench/baselines: run it from a clone"
            ) from None
        sys.path.insert(0, str(root))
        import bench.baselines.llamafactory_style as lf
        import bench.baselines.qwenvl_utils_style as qv
    from bench.baselines import processor_for

    return {"llamafactory_style": lf, "qwenvl_utils_style": qv}, processor_for


def _sampler(infos, seed: int, threads: int = 1):
    from sf2t.video.sampler import WindowSampler

    return WindowSampler(
        infos,
        {"fragment": Fragment()},
        seed=seed,
        samples_per_window=SAMPLES_PER_WINDOW,
        window_frames=WINDOW,
        threads=threads,
    )


def run_sf2t(infos, windows: int, size, seed: int = 0, keep: bool = True, threads: int = 1):
    """(per-sample (pixels, grid), frames decoded) of sf2t's pipeline over ``windows`` windows. ``keep=False``:
    each sample is dropped once made, as a training loop consumes it (only the first is returned)."""
    from sf2t.ops.fragment_pack import fragment_pack

    s = _sampler(infos, seed, threads)
    out = []
    for w in range(windows):
        for smp, fr in s.window(w):
            got = fragment_pack(fr, smp.src_index_tensor(fr.device), None, size, frame_repeat=1)
            if keep or not out:
                out.append(got)
            else:
                out.append(None)
    decoded = s.stats["frames_decoded"]
    s.close()
    return out, decoded


def sample_plans(infos, windows: int, seed: int = 0) -> list[tuple[str, list[int]]]:
    s = _sampler(infos, seed)
    out = []
    for w in range(windows):
        wp = s.plan(w)
        out += [(wp.video.path, list(p.frame_ids)) for p in wp.plans]
    return out


def raw_fps(path: str, threads: int = 1) -> float:
    """The raw decoder's all-frames rate on ``path`` (torchcodec, sequential, ``threads`` decoder threads): the
    ceiling."""
    from torchcodec.decoders import VideoDecoder

    dec = VideoDecoder(path, dimension_order="NHWC", num_ffmpeg_threads=threads, seek_mode="approximate")
    n = dec.metadata.num_frames or 0
    t = time.perf_counter()
    got = 0
    for lo in range(0, n, 64):
        got += dec.get_frames_in_range(lo, min(lo + 64, n)).data.shape[0]
    return got / (time.perf_counter() - t)


def check_agreement(outs: dict, tol_max: float) -> dict:
    """Max and mean |difference| of each baseline's first samples to sf2t's (same plans)."""
    res = {}
    ref = outs["sf2t"]
    for name, got in outs.items():
        if name == "sf2t":
            continue
        mx = mean = 0.0
        for (a, ga), (b, gb) in zip(ref, got):
            if not torch.equal(ga.reshape(-1), gb.reshape(-1)) or a.shape != b.shape:
                raise AssertionError(f"{name}: grid {gb.tolist()} / shape {tuple(b.shape)} differ from sf2t's")
            d = (a.float() - b.float()).abs()
            mx, mean = max(mx, float(d.max())), max(mean, float(d.mean()))
        if mx > tol_max or mean > 1e-2:
            raise AssertionError(f"{name}: pixel values differ from sf2t's by max {mx:.4f} (tolerance {tol_max:.4f})")
        res[name] = {"max_abs": mx, "mean_abs": mean}
    return res


def measure(
    videos: Sequence[str],
    *,
    windows: int = 4,
    rounds: int = 3,
    against: Sequence[str] = ("llamafactory_style", "qwenvl_utils_style"),
    size: tuple[int, int] = (252, 448),
    seed: int = 0,
    baseline_samples: int | None = None,
    threads: int = 1,
    log=print,
) -> dict:
    """Samples/s of sf2t and the baselines on the same plans (see the module docstring). ``threads``: torch threads
    and decoder threads of every provider (and of the ceiling's raw decode)."""
    from sf2t.ops.fragment_pack import QWEN2_VL_STD
    from sf2t.video import probe

    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    infos = [probe(p) for p in videos]
    short = [i.path for i in infos if i.num_frames < WINDOW]
    if short:
        raise ValueError(f"videos shorter than {WINDOW} frames: {short}")
    mods, processor_for = _baselines()
    unknown = [a for a in against if a not in mods]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; known: {sorted(mods)}")
    proc = processor_for(size)
    plans = sample_plans(infos, windows, seed)
    n_base = min(len(plans), baseline_samples or len(plans))

    def run_base(name, k, keep=True):
        out = []
        for p, ids in plans[:k]:
            got = mods[name].pixels(p, ids, size, proc, threads=threads)
            out.append(got if keep or not out else None)  # consumed, as a training loop would
        return out

    # agreement first, on a few samples
    first = {"sf2t": run_sf2t(infos, 1, size, seed, threads=threads)[0][:2]}
    for a in against:
        first[a] = run_base(a, 2)
    agreement = check_agreement(first, 2 / 255 / min(QWEN2_VL_STD) + 1e-6)
    times: dict[str, list[float]] = {p: [] for p in ("sf2t", *against)}
    decoded = 0
    for r in range(rounds):
        t = time.perf_counter()
        out, decoded = run_sf2t(infos, windows, size, seed, keep=False, threads=threads)
        times["sf2t"].append((time.perf_counter() - t) / len(out))
        for a in against:
            t = time.perf_counter()
            run_base(a, n_base, keep=False)
            times[a].append((time.perf_counter() - t) / n_base)
        log(f"round {r + 1}/{rounds}: " + ", ".join(f"{k} {1 / v[-1]:.1f} samples/s" for k, v in times.items()))
    per_sample = {k: statistics.median(v) for k, v in times.items()}
    pix_bytes = out[0][0].numel() * out[0][0].element_size()
    frames_per_sample = decoded / len(out)
    fps = {p: raw_fps(p, threads) for p in {i.path for i in infos}}
    ceiling = statistics.mean(fps.values()) / frames_per_sample
    rows = {}
    for k, s in per_sample.items():
        rows[k] = {
            "samples_per_s": 1 / s,
            "frames_per_s": FRAMES / s,
            "pixel_mb_per_s": pix_bytes / s / 1e6,
            "sf2t_speedup": per_sample[k] / per_sample["sf2t"],
        }
    return {
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__},
        "threads": threads,
        "videos": list(videos),
        "size": list(size),
        "samples": len(out),
        "baseline_samples": n_base,
        "agreement": agreement,
        "providers": rows,
        "sf2t_frames_decoded_per_sample": frames_per_sample,
        "raw_fps": fps,
        "ceiling_samples_per_s": ceiling,
        "sf2t_fraction_of_ceiling": rows["sf2t"]["samples_per_s"] / ceiling,
    }


def print_table(res: dict) -> None:
    t = res.get("threads", 1)
    each = "one thread each" if t == 1 else f"{t} torch and decoder threads each"
    print(f"{res['samples']} samples of {FRAMES} frames -> Qwen2-VL pixels at {res['size']}, {each}")
    print(f"{'provider':<22}{'samples/s':>11}{'frames/s':>10}{'pixel MB/s':>12}{'sf2t x':>9}")
    for k, r in res["providers"].items():
        print(
            f"{k:<22}{r['samples_per_s']:>11.1f}{r['frames_per_s']:>10.0f}{r['pixel_mb_per_s']:>12.1f}"
            f"{r['sf2t_speedup']:>9.2f}"
        )
    print(
        f"ceiling: raw all-frames decode {statistics.mean(res['raw_fps'].values()):.0f} frames/s / "
        f"{res['sf2t_frames_decoded_per_sample']:.1f} frames decoded per sample = "
        f"{res['ceiling_samples_per_s']:.1f} samples/s; sf2t reaches {100 * res['sf2t_fraction_of_ceiling']:.0f}%"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sf2t throughput", description=__doc__.split("\n\n")[0])
    p.add_argument("--videos", nargs="+", required=True, help="video files or folders")
    p.add_argument("--windows", type=int, default=4, help="64-frame windows per round (4 samples each)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--against", default="llamafactory_style,qwenvl_utils_style", help="comma-separated baselines")
    p.add_argument("--size", type=int, nargs=2, default=[252, 448], metavar=("H", "W"), help="target size (x28)")
    p.add_argument("--baseline-samples", type=int, help="time the baselines on the first N samples only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads", type=int, default=1, help="torch and decoder threads of every provider and of the raw decode"
    )
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    from sf2t.video.errors import VideoError
    from sf2t.video.index import find_files

    missing = [v for v in args.videos if not os.path.exists(v)]
    if missing:
        print(f"sf2t throughput: no such file or folder: {missing}", file=sys.stderr)
        return 2
    videos = find_files(args.videos)
    if not videos:
        print(f"sf2t throughput: no video files in {args.videos}", file=sys.stderr)
        return 2
    try:
        res = measure(
            videos,
            windows=args.windows,
            rounds=args.rounds,
            against=[a for a in args.against.split(",") if a],
            size=tuple(args.size),
            seed=args.seed,
            baseline_samples=args.baseline_samples,
            threads=args.threads,
        )
    except (ValueError, RuntimeError, VideoError) as e:
        print(f"sf2t throughput: {e}", file=sys.stderr)
        return 2
    print_table(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0
