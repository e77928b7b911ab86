"""``sf2t throughput``: sf2t's input pipeline side by side with what fine-tuning stacks run today, on your videos.

Every provider turns the same SF²T samples (by default 16-frame fragments at a stride of 1-4; ``--tasks`` samples
the real tasks that pick and reorder frames: counting, disorder, rearrangement, speed; 4 samples per 64-frame
window, ``sf2t.video.sampler.WindowSampler``'s planner) into the same Qwen2-VL pixel values
(``pixel_values_videos`` + ``video_grid_thw`` at one target size, 2 frames per temporal patch):

- ``sf2t``: the window sampler (decoder opened once per video and kept; one decode of the window's sorted union of
  frames, shared by its samples) + ``fragment_pack`` gathering each sample's frames from that decode,
- ``llamafactory_style`` / ``qwenvl_utils_style``: ``bench/baselines/`` (per sample: open the file, decode,
  resize with PIL / torch, then transformers' ``Qwen2VLVideoProcessor``).

Outputs are checked to agree (within fragment_pack's tolerance) before anything is timed; providers run in
interleaved rounds; one decoder thread and one torch thread each (``--threads`` for more); each sample is
dropped once made (as a training loop consumes it).
Reported: samples/s, frames delivered/s, pixel bytes/s, the ratio of sf2t to each baseline, and the machine's ceiling:
the raw decoder's all-frames rate on the same files (:func:`raw_fps`, measured in every round: its best; over several
videos, total frames over total time with each video weighed by the frames sf2t decoded from it, :func:`combined_fps`)
divided by the frames sf2t's codec decodes per sample, GOP lead-ins included (the frames from the keyframe before a
window to the frames it needs: counted by the pyav backend, computed from the keyframe index by the torchcodec one; DALI
reports the frames asked for, a lower bound; ~1.8x the frames asked for on a GOP 30 clip). On the CPU a second, stricter
ceiling is reported too: PyAV decoding every frame with no conversion at all (``raw_decode_fps``), over the same frames
per sample. The headline fractions set sf2t's median round against the best ceiling pass (the strict reading); since the
machine's speed can drift between the two, each round's ceiling is also measured right after sf2t's pass and the median
of the per-round ratios is reported as the *paired* fraction (:func:`pair_rounds`; JSON ``per_round``). sf2t's pipeline
runs in this thread, with ``--prefetch`` (decode ahead in a thread), ``--pipelines`` (threads that each decode, build
and pack their share of the windows) or ``--workers`` (DataLoader processes).

``--frames`` picks what sf2t's decoder hands over: ``rgb`` windows, or ``yuv420`` windows (the PyAV backend's 8-bit
4:2:0 planes, no RGB at all; ``fragment_pack`` converts each output pixel's taps in FFmpeg's own arithmetic, so the
pixels match the RGB path's). ``auto`` takes ``yuv420`` on the CPU when PyAV is installed, the decoder is ``auto`` or
``pyav`` and no task reads pixels itself (plain fragments; the tasks' guards and edits read RGB). Samples that share
a window's frames are packed by one ``fragment_pack_many`` call, which resizes each distinct frame once.
Run from a clone (the baselines live in its ``bench/`` folder).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
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


# Tasks whose presented pixels are a selection of decoded frames (in any order, with repeats), which the baselines
# reproduce from the frame ids; consistency and localization change pixels (a replaced cell, a pasted target).
FRAME_TASKS = ("fragment", "counting", "disorder", "rearrangement", "speed")
FAMILIES = ("qwen2_vl", "qwen2_5_vl")  # one pixel layout: 14-pixel patches, 2 frames a temporal patch, merge 2


def _tasks(names: Sequence[str]) -> dict:
    from sf2t.tasks import TASKS, make_task

    unknown = [n for n in names if n != "fragment" and n not in TASKS]
    if unknown or not names:
        raise ValueError(f"unknown task(s) {unknown}; known: {sorted(('fragment', *TASKS))}")
    return {n: Fragment() if n == "fragment" else make_task(n) for n in names}


def _sampler(
    infos,
    seed: int,
    threads: int = 1,
    tasks: Sequence[str] = ("fragment",),
    device: str = "cpu",
    decoder: str = "auto",
    output: str = "rgb",
):
    from sf2t.video.sampler import WindowSampler

    return WindowSampler(
        infos,
        _tasks(tasks),
        seed=seed,
        samples_per_window=SAMPLES_PER_WINDOW,
        window_frames=WINDOW,
        decoder=decoder,
        threads=threads,
        device=device,
        output=output,
    )


def _decoder_names(s) -> list[str]:
    """The backends the sampler ``s`` has open (torchcodec, pyav, dali, ...): what ``auto`` chose."""
    return sorted({str(getattr(d, "name", type(d).__name__)) for d in s.decoders.open.values()})


def _more(done: int, count: int, t0: float, seconds: float | None) -> bool:
    """Go on: ``count`` items, or with ``seconds`` until that time has passed since ``t0`` (at least one item)."""
    return done < count if seconds is None else (done == 0 or time.perf_counter() - t0 < seconds)


def _pack(smp, fr: torch.Tensor, size):
    """(pixels, grid): fragment_pack of one sample from the frames it indexes (its window's shared decode)."""
    from sf2t.ops.fragment_pack import fragment_pack

    return fragment_pack(fr, smp.src_index_tensor(fr.device), smp.boxes_tensor(fr.device), size, frame_repeat=1)


def _pack_window(pairs, size) -> list:
    """(pixels, grid) of each of a window's (sample, frames) pairs: the samples that index the window's shared
    decode packed together (:func:`~sf2t.ops.fragment_pack.fragment_pack_many`: each distinct frame resized once),
    a sample with frames of its own alone."""
    from sf2t.ops.fragment_pack import fragment_pack_many

    out: list = []
    i = 0
    while i < len(pairs):
        fr = pairs[i][1]
        j = i
        while j < len(pairs) and pairs[j][1] is fr:
            j += 1
        group = [smp for smp, _ in pairs[i:j]]
        out += fragment_pack_many(
            fr,
            [smp.src_index_tensor(fr.device) for smp in group],
            [smp.boxes_tensor(fr.device) for smp in group],
            size,
            frame_repeat=1,
        )
        i = j
    return out


def _no_sample(failures) -> RuntimeError:
    if not failures:
        return RuntimeError("sf2t made no sample")
    f = failures[0]
    return RuntimeError(f"sf2t made no sample: {f.path}: {f.reason} ({len(failures)} failures)")


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _tally(used: dict | None, path: str, pairs, before: dict, after: dict) -> None:
    """Add one window's work to ``used``: its video's frames decoded / requested (``used["by_video"]``: the
    ceiling weighs each video's raw decode rate by them) and its samples' presented frames
    (``used["presented"]``: [frames, samples])."""
    if used is None:
        return
    d = used.setdefault("by_video", {}).setdefault(path, [0, 0])
    d[0] += after["frames_decoded"] - before["frames_decoded"]
    d[1] += after["frames_requested"] - before["frames_requested"]
    pr = used.setdefault("presented", [0, 0])
    pr[0] += sum(len(smp.src_index) for smp, _ in pairs)
    pr[1] += len(pairs)


def decoded_by_video(used: dict) -> dict[str, int]:
    """Frames sf2t's codec decoded per video (the frames asked for where the decoder does not count its own, as
    for the total)."""
    by = used.get("by_video") or {}
    k = 0 if any(d[0] for d in by.values()) else 1
    return {p: d[k] for p, d in by.items()}


def combined_fps(fps: dict, weights: dict | None = None) -> float:
    """The raw decoder's rate over several videos: ``weights[p]`` frames of each video ``p`` decoded at its own rate
    ``fps[p]``, total frames over total time (a weighted harmonic mean; equal weights where ``weights`` gives none,
    as the planner draws videos uniformly). The arithmetic mean of the rates overstated a ceiling mixing a fast
    small video with a slow large one (one 160x96 and one 960x540 clip: 4,550 frames/s against each alone's 4,343
    and 401)."""
    fps = {p: v for p, v in fps.items() if v == v}  # nan: not measured
    if not fps:
        return float("nan")
    w = {p: float((weights or {}).get(p, 0)) for p in fps}
    if not any(w.values()):
        w = dict.fromkeys(fps, 1.0)
    took = sum(w[p] / fps[p] if fps[p] > 0 else math.inf for p in fps if w[p])
    return sum(w.values()) / took


def run_sf2t(
    infos,
    windows: int,
    size,
    seed: int = 0,
    keep: bool = True,
    threads: int = 1,
    tasks: Sequence[str] = ("fragment",),
    device: str = "cpu",
    seconds: float | None = None,
    prefetch: int = 0,
    decoder: str = "auto",
    used: dict | None = None,
    output: str = "rgb",
):
    """(per-sample (pixels, grid), frames decoded) of sf2t's pipeline over ``windows`` windows (or, with
    ``seconds``, as many windows as fit in that time, at least one). ``keep=False``: each sample is dropped once
    made, as a training loop consumes it (only the first is returned). Video pixels only: localization's separate
    target image is not packed. ``prefetch`` > 0: a background thread decodes and builds up to that many windows
    ahead (the trainer's :class:`~sf2t.train.data.Prefetch` thread) while this thread packs; ``threads`` is split
    between them (``threads // 2`` decoder threads, the rest torch threads, at least one each). ``decoder``: the
    sampler's decoder (auto, torchcodec, pyav, dali); ``used["decoders"]`` gets the backends it opened. ``output``:
    the sampler's window format (``"yuv420"``: planar windows from the pyav backend, converted inside
    fragment_pack)."""
    from sf2t.train.data import Prefetch

    # with a prefetch thread, decoding overlaps packing: the thread budget is split between the two (at least one
    # each), so the pipeline uses as many threads as a provider without one
    dec_threads = max(1, threads // 2) if prefetch else threads
    torch_before = torch.get_num_threads()
    if prefetch:
        torch.set_num_threads(max(1, threads - dec_threads))
    s = _sampler(infos, seed, dec_threads, tasks, device, decoder, output)
    out = []
    t0 = time.perf_counter()
    wins = itertools.count() if seconds is not None else range(windows)
    # (window, its samples, the sampler's counters after it, its video): made in the Prefetch thread when prefetching
    windows_made = ((w, s.window(w), dict(s.stats), s.plan(w).video.path) for w in wins)
    pf = Prefetch(windows_made, prefetch, device) if prefetch else None
    source = pf if pf is not None else windows_made
    w, decoded = 0, 0
    before = {"frames_decoded": 0, "frames_requested": 0}  # a fresh sampler's (the Prefetch thread may have begun)
    try:
        for _, pairs, stats, path in source:
            _tally(used, path, pairs, before, stats)
            before = stats
            for got in _pack_window(pairs, size):
                if keep or not out:
                    out.append(got)
                else:
                    out.append(None)
            w += 1
            decoded = stats["frames_decoded"] or stats["frames_requested"]
            if used is not None and w == 1:
                used["decoders"] = _decoder_names(s)
            if not _more(w, windows, t0, seconds):
                break
    finally:
        if pf is not None:
            pf.close()  # windows made ahead but not consumed are not counted
        torch.set_num_threads(torch_before)
    _sync(device)
    if s.failures and not out:
        raise _no_sample(s.failures)
    # (a decoder that does not count its own decodes, GOP lead-ins included: the frames asked for, a lower bound)
    s.close()
    return out, decoded


def run_sf2t_pipelines(
    infos,
    windows: int,
    size,
    pipelines: int,
    seed: int = 0,
    keep: bool = True,
    threads: int = 1,
    tasks: Sequence[str] = ("fragment",),
    seconds: float | None = None,
    decoder: str = "auto",
    used: dict | None = None,
    output: str = "rgb",
):
    """(per-sample (pixels, grid), frames decoded) of sf2t's pipeline in ``pipelines`` threads of this process (CPU):
    thread i has its own sampler (its own decoders) and decodes, builds and packs windows i, i + P, i + 2P, ... (the
    sampler's ``iterate(first=i, step=P)`` split; a window's samples do not depend on who makes them). Decoders
    and fragment_pack release the GIL, so the threads run on separate cores; the packed samples stay in this
    process (no copy, unlike DataLoader workers). ``threads`` is split between the pipelines (at least one torch
    and one decoder thread each). Samples are returned in window order; ``keep=False`` keeps only the first."""
    import threading

    per = max(1, threads // pipelines)
    torch_before = torch.get_num_threads()
    torch.set_num_threads(per)  # process-wide: each pipeline's fragment_pack runs ``per`` threads
    samplers = [_sampler(infos, seed, per, tasks, "cpu", decoder, output) for _ in range(pipelines)]
    results: dict[int, list] = {}
    errors: list[BaseException] = []
    stop = threading.Event()
    lock = threading.Lock()
    kept = []
    t0 = time.perf_counter()

    def work(i: int) -> None:
        s = samplers[i]
        try:
            done = 0
            for w in itertools.count(i, pipelines):
                if stop.is_set() or (seconds is None and w >= windows):
                    break
                if seconds is not None and done > 0 and time.perf_counter() - t0 >= seconds:
                    break
                got = []
                before = dict(s.stats)
                pairs = s.window(w)
                if used is not None:
                    with lock:
                        _tally(used, s.plan(w).video.path, pairs, before, s.stats)
                for px in _pack_window(pairs, size):
                    if not keep:
                        with lock:
                            if not kept:
                                kept.append(px)
                        px = None
                    got.append(px)
                results[w] = got
                done += 1
        except BaseException as e:  # raised in the caller
            errors.append(e)
            stop.set()

    try:
        _run_threads(work, pipelines, stop, "sf2t-pipeline")  # interrupted (Ctrl-C): they stop after their window
    finally:
        torch.set_num_threads(torch_before)
    if used is not None:
        used["decoders"] = sorted({n for s in samplers for n in _decoder_names(s)})
    decoded = sum(s.stats["frames_decoded"] or s.stats["frames_requested"] for s in samplers)
    failures = [f for s in samplers for f in s.failures]
    for s in samplers:
        s.close()
    if errors:
        raise errors[0]
    out = [x for w in sorted(results) for x in results[w]]
    if not out:
        raise _no_sample(failures)
    if not keep:
        out = kept[:1] + [None] * (len(out) - 1)
    return out, decoded


def _run_threads(target, n: int, stop, name: str) -> None:
    """``target(i)`` for i < ``n`` in daemon threads, until all return. Left early (Ctrl-C in this thread), ``stop``
    is set and the threads are given up to a minute to finish the item they are on."""
    import threading

    threads = [threading.Thread(target=target, args=(i,), name=f"{name}-{i}", daemon=True) for i in range(n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        stop.set()
        for t in threads:
            if t.is_alive():
                t.join(timeout=60)


class _PackInWorker:
    """fragment_pack of one sample, run in a DataLoader worker (picklable)."""

    def __init__(self, size):
        self.size = tuple(size)

    def __call__(self, smp, fr):
        px, grid = _pack(smp, fr, self.size)
        return {"pixels": px, "grid": grid}


def run_sf2t_workers(
    infos,
    windows: int,
    size,
    workers: int,
    seed: int = 0,
    tasks: Sequence[str] = ("fragment",),
    device: str = "cpu",
    seconds: float | None = None,
    decoder: str = "auto",
    output: str = "rgb",
) -> tuple[int, float]:
    """(samples made, seconds) of sf2t's pipeline in ``workers`` DataLoader processes (one torch and one decoder
    thread each; the same windows and samples as in process): on the CPU each worker decodes, builds and packs and
    the packed pixels travel to this process, as a training loop would receive them; on a GPU the workers decode
    and build, and this process packs on the device. Timed from the first sample received (worker start-up, a
    one-off cost of a run, is not counted)."""
    from sf2t.video.sampler import FragmentDataset, make_loader

    on_gpu = str(device).startswith("cuda")
    ds = FragmentDataset(
        infos,
        _tasks(tasks),
        num_windows=None if seconds is not None else windows,
        transform=None if on_gpu else _PackInWorker(size),
        seed=seed,
        samples_per_window=SAMPLES_PER_WINDOW,
        window_frames=WINDOW,
        threads=1,
        decoder=decoder,
        output=output if not on_gpu else "rgb",
    )
    it = iter(make_loader(ds, workers, prefetch_factor=4))
    n, t0 = 0, None
    try:
        for item in it:
            if "failure" in item:
                continue
            if on_gpu:
                fr = item["frames"].to(device, non_blocking=True)
                smp = item["sample"]
                _pack(smp, fr, size)
            if t0 is None:  # the first sample: the workers are up
                _sync(device)
                t0 = time.perf_counter()
                continue
            n += 1
            if seconds is not None and time.perf_counter() - t0 >= seconds:
                break
    finally:
        del it  # shuts the workers down
    _sync(device)
    if t0 is None or n == 0:
        raise RuntimeError("sf2t (workers) made fewer than two samples: nothing to time (more --windows or --seconds)")
    return n, time.perf_counter() - t0


def sample_plans(
    infos, windows: int, seed: int = 0, tasks: Sequence[str] = ("fragment",)
) -> list[tuple[str, list[int]]]:
    """(video, presented frame ids) of each sample sf2t makes in the first ``windows`` windows, for the baselines.
    Plain fragments come from the planner alone; tasks that reorder or pick frames are built (a decode pass) to
    learn the presented order. Tasks that change pixels cannot be reproduced by the baselines: an error."""
    pixel_tasks = [t for t in tasks if t not in FRAME_TASKS]
    if pixel_tasks:
        raise ValueError(
            f"the baselines cannot make {pixel_tasks}' samples (they change pixels); with baselines use "
            f"{', '.join(FRAME_TASKS)}, or --against '' to time sf2t alone"
        )
    s = _sampler(infos, seed, tasks=tasks)
    out = []
    try:
        for w in range(windows):
            wp = s.plan(w)
            if all(t == "fragment" for t in tasks):
                out += [(wp.video.path, list(p.frame_ids)) for p in wp.plans]
                continue
            union = wp.frame_ids  # the rows of the window's shared decode, which src_index points into
            for smp, _ in s.window(w):
                out.append((wp.video.path, [union[i] for i in smp.src_index]))
    finally:
        s.close()
    return out


RAW_CHUNKS = (1, 4, 16)  # frames per torchcodec call in the ceiling's passes


def raw_fps(path: str, threads: int = 1, device: str = "cpu") -> float:
    """The raw decoder's all-frames rate on ``path`` (torchcodec, sequential, ``threads`` decoder threads, on
    ``device``): the ceiling. Where torchcodec is not installed, PyAV's on the CPU (the decoder sf2t then uses).
    The best of passes that ask for 1, 4 and 16 frames a call (``RAW_CHUNKS``): each call returns a fresh tensor,
    and the first touch of a large one costs the decoder up to a third of its rate here (one 640x360 file, 2
    threads: 2,760-3,900 frames/s in 64-frame calls, 4,900-5,300 in 1-4 frame calls; 1280x720: 820-1,080 against
    1,690), so the ceiling is what the decoder can do, not what its allocations allow."""
    try:
        from torchcodec.decoders import VideoDecoder
    except ImportError:
        return max(_raw_fps_pyav(path, threads) for _ in range(2))

    kw = {"device": device} if str(device) != "cpu" else {}
    best = 0.0
    for chunk in RAW_CHUNKS:
        dec = VideoDecoder(path, dimension_order="NHWC", num_ffmpeg_threads=threads, seek_mode="approximate", **kw)
        n = dec.metadata.num_frames or 0
        t = time.perf_counter()
        got = 0
        for lo in range(0, n, chunk):
            got += dec.get_frames_in_range(lo, min(lo + chunk, n)).data.shape[0]
        _sync(device)
        best = max(best, got / (time.perf_counter() - t))
    return best


def raw_decode_fps(path: str, threads: int = 1) -> float:
    """The decoder's all-frames rate on ``path`` without any RGB conversion (PyAV, sequential, ``threads`` decoder
    threads, frames left in the codec's YUV): what the codec alone allows. sf2t's ``yuv420`` windows skip the
    conversion of the frames decoded only to reach a window (GOP lead-ins) and convert the frames a sample shows
    inside fragment_pack, so this is the strict bound for that pipeline; ``nan`` where PyAV is not installed."""
    try:
        import av
    except ImportError:
        return float("nan")
    with av.open(path) as c:
        st = c.streams.video[0]
        st.thread_type, st.thread_count = "AUTO", threads
        t = time.perf_counter()
        got = sum(1 for f in c.decode(st) if f is not None)
        return got / (time.perf_counter() - t)


def _raw_fps_pyav(path: str, threads: int) -> float:
    import av

    with av.open(path) as c:
        st = c.streams.video[0]
        st.thread_type, st.thread_count = "AUTO", threads
        t = time.perf_counter()
        got = sum(1 for f in c.decode(st) if f.to_ndarray(format="rgb24") is not None)
        return got / (time.perf_counter() - t)


def ceiling_decoder() -> str:
    """The decoder :func:`raw_fps` uses here."""
    try:
        import torchcodec.decoders  # noqa: F401
    except ImportError:
        return "pyav"
    return "torchcodec"


def _unlike(info) -> str:
    """Why the baselines cannot make sf2t's pixels from this video ("": they can)."""
    if info.rotation:
        return f"rotated {info.rotation} degrees (the baselines ignore the display rotation; sf2t turns frames upright)"
    if info.bit_depth > 8:
        return f"{info.bit_depth}-bit (PyAV and torchcodec convert it to RGB differently)"
    return ""


def check_agreement(outs: dict, tol_max: float, tol_mean: float = 1e-3) -> dict:
    """Max and mean |difference| of each baseline's first samples to sf2t's (same plans); over fragment_pack's
    tolerance (max ``tol_max``, mean ``tol_mean`` per sample, as its tests hold it to the processor): an error."""
    res = {}
    ref = outs["sf2t"]
    for name, got in outs.items():
        if name == "sf2t":
            continue
        mx = mean = 0.0
        for (a, ga), (b, gb) in zip(ref, got):
            if not torch.equal(ga.reshape(-1), gb.reshape(-1)) or a.shape != b.shape:
                raise RuntimeError(
                    f"{name}: grid {gb.tolist()} / shape {tuple(b.shape)} differ from sf2t's: not a like-for-like "
                    "comparison on these videos"
                )
            d = (a.float() - b.float()).abs()
            mx, mean = max(mx, float(d.max())), max(mean, float(d.mean()))
        if mx > tol_max or mean > tol_mean:
            raise RuntimeError(
                f"{name}: pixel values differ from sf2t's by max {mx:.4f}, mean {mean:.2e} (tolerance {tol_max:.4f}, "
                f"mean {tol_mean:.0e}): not a like-for-like comparison on these videos"
            )
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
    tasks: Sequence[str] = ("fragment",),
    family: str = "qwen2_vl",
    device: str = "cpu",
    seconds: float | None = None,
    workers: int = 0,
    prefetch: int = 0,
    pipelines: int = 1,
    decoder: str = "auto",
    warmup: int = 1,
    frames: str = "auto",
    baseline_streams: int | None = None,
    log=print,
) -> dict:
    """Samples/s of sf2t and the baselines on the same plans (see the module docstring). ``threads``: torch threads
    and decoder threads of every provider (and of the ceiling's raw decode). ``tasks``: the SF²T tasks sampled
    (mixed evenly; ``fragment`` is a plain 16-frame fragment). ``device``: where sf2t decodes and packs (the
    baselines are CPU stacks). ``seconds``: each provider's time per round (instead of ``windows`` windows for sf2t
    and the first ``baseline_samples`` plans for the baselines; the plans repeat). ``workers``: sf2t's pipeline in
    that many DataLoader processes (:func:`run_sf2t_workers`; 0: in this process). ``prefetch``: sf2t decodes up
    to that many windows ahead in a background thread while it packs (:func:`run_sf2t`; 0: one after the other).
    ``warmup``: untimed rounds of every provider first (the process's first use of its working memory, the decoders'
    first opening: a training run's steady state is what is measured). ``pipelines`` > 1: sf2t's pipeline in that
    many threads of this process, each decoding, building and packing its share of the windows
    (:func:`run_sf2t_pipelines`; CPU). ``decoder``: sf2t's decoder (auto: DALI on a GPU where installed, else
    torchcodec, else PyAV); the result's ``sf2t_decoder`` names what it opened. ``frames``: the sampler's windows,
    ``rgb`` or ``yuv420`` (planar, from the pyav backend: the RGB conversion runs inside fragment_pack for the
    frames samples show, not for every decoded frame; the same pixels bit for bit); ``auto``: ``yuv420`` on the
    CPU for tasks that read no pixels (plain fragments) where PyAV is installed and the decoder is auto or pyav,
    else ``rgb``. ``baseline_streams``: each baseline makes its samples in that many threads of this process, each
    with its share of ``threads`` (torch and decoder threads) and of the plans, as a training stack's loader workers
    would (default: ``pipelines``, or ``workers`` with sf2t in worker processes, so sf2t's parallel streams race as
    many baseline threads)."""
    from sf2t.ops.fragment_pack import QWEN2_VL_STD
    from sf2t.video import probe

    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if windows < 1 or rounds < 1:
        raise ValueError(f"windows and rounds must be >= 1, got {windows} and {rounds}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an int >= 0, got {warmup!r}")
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):  # inf ran forever, nan ran once
        raise ValueError(f"seconds must be a finite number > 0, got {seconds}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be an int >= 0, got {workers!r}")
    if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
        raise ValueError(f"prefetch must be an int >= 0, got {prefetch!r}")
    if isinstance(pipelines, bool) or not isinstance(pipelines, int) or pipelines < 1:
        raise ValueError(f"pipelines must be an int >= 1, got {pipelines!r}")
    if baseline_samples is not None and (isinstance(baseline_samples, bool) or baseline_samples < 1):
        raise ValueError(f"baseline_samples must be >= 1 (or None: every sample), got {baseline_samples!r}")
    if baseline_streams is None:
        baseline_streams = workers if workers else pipelines
    if isinstance(baseline_streams, bool) or not isinstance(baseline_streams, int) or baseline_streams < 1:
        raise ValueError(f"baseline_streams must be an int >= 1, got {baseline_streams!r}")
    if sum(bool(x) for x in (workers, prefetch, pipelines > 1)) > 1:
        raise ValueError("workers, prefetch and pipelines are three ways to overlap decoding: choose one")
    if pipelines > 1 and str(device) != "cpu":
        raise ValueError("pipelines run sf2t's CPU pipeline in threads; on a GPU use --prefetch or --workers")
    if family not in FAMILIES:
        raise ValueError(
            f"family {family!r} is not measured: the baselines make Qwen2-VL-layout pixels ({', '.join(FAMILIES)})"
        )
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ValueError(f"device must be cpu or cuda, got {device!r}")
    from sf2t._device import require_device

    require_device(device)
    _tasks(tasks)  # unknown names: an error before any work
    from sf2t.video.backends import BACKENDS, available_decoders

    if decoder != "auto" and decoder not in BACKENDS:
        raise ValueError(f"decoder must be auto or one of {BACKENDS}, got {decoder!r}")
    if decoder != "auto" and decoder not in available_decoders():
        raise ValueError(f"decoder {decoder!r} is not installed here (available: {', '.join(available_decoders())})")
    output = resolve_frames(frames, device, decoder, available_decoders(), tasks)
    torch.set_num_threads(threads)
    from sf2t.video.errors import VideoError

    def said(why: dict) -> str:  # the first three, and how many more
        shown = "; ".join(f"{p}: {r}" for p, r in list(why.items())[:3])
        return shown + (f" (and {len(why) - 3} more)" if len(why) > 3 else "")

    infos, unusable = [], {}  # a broken or short file is left out (and said), not the end of the run
    for p in videos:
        try:
            info = probe(p)
        except VideoError as e:
            unusable[str(p)] = e.reason
            continue
        if info.num_frames < WINDOW:
            unusable[info.path] = f"{info.num_frames} frames, shorter than a {WINDOW}-frame window"
            continue
        infos.append(info)
    if not infos:
        raise ValueError(f"no usable video: {said(unusable)}")
    if unusable:
        print(f"sf2t throughput: left out (not readable or too short): {said(unusable)}")
    left_out = dict(unusable)
    if against:  # like for like only: what the baselines cannot decode as sf2t does is measured by none
        unlike = {i.path: _unlike(i) for i in infos if _unlike(i)}
        infos = [i for i in infos if i.path not in unlike]
        if unlike:
            print(f"sf2t throughput: left out of the comparison: {said(unlike)}")
        if not infos:
            raise ValueError(
                "no video the baselines decode as sf2t does (all are rotated or above 8 bits): measure sf2t alone "
                "with --against ''"
            )
        left_out.update(unlike)
    videos = [i.path for i in infos]
    mods, processor_for = _baselines()
    unknown = [a for a in against if a not in mods]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; known: {sorted(mods)}")
    proc = processor_for(size)
    plans = sample_plans(infos, windows, seed, tasks) if against else []
    n_base = min(len(plans), baseline_samples or len(plans))

    def run_base(name, k, keep=True, budget=None, streams=1):
        """``k`` samples (or ``budget`` seconds) of baseline ``name``, in ``streams`` threads (stream s makes plans
        s, s + streams, ...; one stream: in this thread), ``threads`` split between them (process-wide torch
        threads). ``keep=False``: each sample is dropped once made, as a training loop consumes it."""
        import threading

        per = max(1, threads // streams)
        made = [[] for _ in range(streams)]
        errors: list[BaseException] = []
        stop = threading.Event()  # set when this thread leaves early (Ctrl-C): the streams end after their sample
        t0 = time.perf_counter()

        def stream(s):
            try:
                i = s
                while (
                    not errors
                    and not stop.is_set()
                    and (i < k if budget is None else (i == s or time.perf_counter() - t0 < budget))
                ):
                    p, ids = plans[i % len(plans)]
                    got = mods[name].pixels(p, ids, size, proc, threads=per)
                    made[s].append(got if keep else None)
                    i += streams
            except BaseException as e:  # raised again in the calling thread
                errors.append(e)

        if streams == 1:
            stream(0)
        else:
            torch_before = torch.get_num_threads()
            torch.set_num_threads(per)
            try:
                _run_threads(stream, streams, stop, f"baseline-{name}")
            finally:
                torch.set_num_threads(torch_before)
        if errors:
            raise errors[0]
        return [x for xs in made for x in xs]

    # agreement first, on a few samples
    used: dict = {}
    made, decoded_first = run_sf2t(
        infos, 1, size, seed, threads=threads, tasks=tasks, device=device, decoder=decoder, used=used, output=output
    )
    first = {"sf2t": [(a.cpu(), g.cpu()) for a, g in made[:2]]}
    for a in against:
        first[a] = run_base(a, 2)
    agreement = check_agreement(first, 2 / 255 / min(QWEN2_VL_STD) + 1e-6) if against else {}
    times: dict[str, list[float]] = {p: [] for p in ("sf2t", *against)}
    decoded = 0
    paths = sorted({i.path for i in infos})
    fps: dict[str, float] = {}
    decode_fps: dict[str, float] = {}
    round_fps: list[float] = []  # per timed round: the raw decode's all-frames rate (over the videos, weighted)
    round_decode_fps: list[float] = []
    out, n_made = None, 0
    ran: dict = {}  # sf2t's last pass: frames decoded per video, presented frames (see _tally)
    done = None  # the state after the last complete timed round (Ctrl-C: its figures are reported)
    try:
        for r in range(warmup + rounds):
            if r == warmup:  # the warm-up rounds' times are dropped
                times = {p: [] for p in times}
            ran_now: dict = {}
            if workers:
                n_made, took = run_sf2t_workers(
                    infos, windows, size, workers, seed, tasks, device, seconds, decoder, output
                )
                times["sf2t"].append(took / n_made)
            else:
                t = time.perf_counter()
                common = dict(
                    keep=False,
                    threads=threads,
                    tasks=tasks,
                    seconds=seconds,
                    decoder=decoder,
                    output=output,
                    used=ran_now,
                )
                if pipelines > 1:
                    out, decoded = run_sf2t_pipelines(infos, windows, size, pipelines, seed, **common)
                else:
                    out, decoded = run_sf2t(infos, windows, size, seed, device=device, prefetch=prefetch, **common)
                times["sf2t"].append((time.perf_counter() - t) / len(out))
                n_made = len(out)
            ran = ran_now
            if r >= warmup:
                # the ceiling's raw decode right after sf2t's pass (the machine's speed drifts; see pair_rounds): its
                # best round counts for the headline ceiling, each round's own for the paired fractions
                weights = decoded_by_video(ran)  # workers: none known, the videos weigh equally
                got = {p: raw_fps(p, threads, device) for p in paths}
                got_dec = {p: raw_decode_fps(p, threads) for p in paths} if str(device) == "cpu" else {}
                got_dec = {p: v for p, v in got_dec.items() if v == v}  # nan: PyAV is not installed
                for p in paths:
                    fps[p] = max(fps.get(p, 0.0), got[p])
                    if got_dec:
                        decode_fps[p] = max(decode_fps.get(p, 0.0), got_dec[p])
                round_fps.append(combined_fps(got, weights))
                round_decode_fps.append(combined_fps(got_dec, weights) if got_dec else float("nan"))
            for a in against:
                t = time.perf_counter()
                n = len(run_base(a, n_base, keep=False, budget=seconds, streams=baseline_streams))
                times[a].append((time.perf_counter() - t) / n)
            what = f"warm-up round {r + 1}/{warmup}" if r < warmup else f"round {r - warmup + 1}/{rounds}"
            log(f"{what}: " + ", ".join(f"{k} {1 / v[-1]:.1f} samples/s" for k, v in times.items()))
            if r >= warmup:
                done = (r - warmup + 1, {k: list(v) for k, v in times.items()}, dict(fps), dict(decode_fps))
                done += (list(round_fps), list(round_decode_fps), out, decoded, n_made, ran)
    except KeyboardInterrupt:
        if done is None:  # no timed round finished: nothing to report
            raise
    rounds_done, times, fps, decode_fps, round_fps, round_decode_fps, out, decoded, n_made, ran = done
    per_sample = {k: statistics.median(v) for k, v in times.items()}
    weights = decoded_by_video(ran)
    if workers:  # the in-process pass above: the same windows and samples
        out, decoded = made, decoded_first
        weights = {}
    pixels, grid = out[0]
    packed_frames = int(grid[0, 0]) * 2  # frames in sf2t's first sample, temporal padding included
    if plans:  # the samples the baselines made: the same frames/s basis for every provider
        frames = statistics.mean(len(ids) for _, ids in plans)
    elif (ran.get("presented") or used.get("presented") or [0, 0])[1]:  # sf2t's own samples' presented frames
        shown, n_shown = ran.get("presented") or used["presented"]
        frames = shown / n_shown
    else:
        frames = float(packed_frames)
    pix_bytes = pixels.numel() * pixels.element_size() / packed_frames * frames  # per sample, at the mean count
    frames_per_sample = decoded / len(out)
    ceiling_fps = combined_fps(fps, weights)
    decode_ceiling_fps = combined_fps(decode_fps, weights) if decode_fps else float("nan")
    ceiling = ceiling_fps / frames_per_sample
    decode_ceiling = decode_ceiling_fps / frames_per_sample
    paired = pair_rounds(times["sf2t"], round_fps, round_decode_fps, frames_per_sample)
    rows = {}
    for k, s in per_sample.items():
        rows[k] = {
            "samples_per_s": 1 / s,
            "frames_per_s": frames / s,
            "pixel_mb_per_s": pix_bytes / s / 1e6,
            "sf2t_speedup": per_sample[k] / per_sample["sf2t"],
        }
    return {
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__},
        "threads": threads,
        "workers": workers,
        "prefetch": prefetch,
        "pipelines": pipelines,
        "baseline_streams": baseline_streams,
        "warmup_rounds": warmup,
        "rounds": rounds_done,
        "interrupted": rounds_done < rounds,  # Ctrl-C: the figures are of the rounds that finished
        "rounds_asked": rounds,
        "device": str(device),
        "family": family,
        "tasks": list(tasks),
        "videos": list(videos),
        "left_out": left_out,
        "size": list(size),
        "samples": n_made,
        "frames_per_sample": frames,
        "baseline_samples": n_base,
        "agreement": agreement,
        "providers": rows,
        "sf2t_frames_decoded_per_sample": frames_per_sample,
        "sf2t_frames_decoded_by_video": weights,
        "raw_fps": fps,
        "ceiling_fps": ceiling_fps,  # raw_fps over the videos, each weighed by the frames sf2t decoded from it
        "ceiling_decoder": ceiling_decoder(),
        "sf2t_decoder": ",".join(used.get("decoders", [])) or decoder,
        "ceiling_samples_per_s": ceiling,
        "sf2t_fraction_of_ceiling": rows["sf2t"]["samples_per_s"] / ceiling,
        "frames": output,
        "raw_decode_fps": decode_fps,
        "decode_only_ceiling_fps": decode_ceiling_fps,
        "decode_only_ceiling_samples_per_s": decode_ceiling,
        "sf2t_fraction_of_decode_only_ceiling": rows["sf2t"]["samples_per_s"] / decode_ceiling
        if decode_fps
        else float("nan"),
        **paired,
    }


def pair_rounds(
    sf2t_seconds: Sequence[float],
    round_fps: Sequence[float],
    round_decode_fps: Sequence[float],
    frames_per_sample: float,
) -> dict:
    """sf2t against the ceiling round by round. The headline fraction sets sf2t's median round against the best
    raw-decode pass of all rounds, the strictest reading; on a machine whose speed drifts (this 2-core VM: one
    decoder thread gave 3,760 and 6,590 frames/s in runs a minute apart) it mixes a slow moment of one with a fast
    moment of the other. Here each round's sf2t rate is set against the ceiling measured right after it, and the
    median of those ratios is reported too (``sf2t_fraction_of_ceiling_paired``; ``..._decode_only_ceiling_paired``).
    """
    per_round = []
    for k, sec in enumerate(sf2t_seconds):
        rate = 1 / sec
        ceil = round_fps[k] / frames_per_sample if k < len(round_fps) else float("nan")
        dec = round_decode_fps[k] / frames_per_sample if k < len(round_decode_fps) else float("nan")
        per_round.append(
            {
                "sf2t_samples_per_s": rate,
                "ceiling_samples_per_s": ceil,
                "fraction_of_ceiling": rate / ceil,
                "decode_only_ceiling_samples_per_s": dec,
                "fraction_of_decode_only_ceiling": rate / dec,
            }
        )

    def med(key: str) -> float:
        vals = [r[key] for r in per_round if r[key] == r[key]]  # nan: not measured
        return statistics.median(vals) if vals else float("nan")

    return {
        "per_round": per_round,
        "sf2t_fraction_of_ceiling_paired": med("fraction_of_ceiling"),
        "sf2t_fraction_of_decode_only_ceiling_paired": med("fraction_of_decode_only_ceiling"),
    }


def default_pipelines(threads: int, device: str, workers: int = 0, prefetch: int = 0) -> int:
    """``sf2t throughput``'s pipelines when ``--pipelines`` is not given: on the CPU, one pipeline thread per
    ``--threads`` (each decodes, builds and packs its own windows with one thread: the fastest way to use several
    cores here, e.g. 2 pipelines 171 against 109 samples/s with a prefetch thread on 640x360), unless another way
    to overlap decoding (``--prefetch``, ``--workers``) was asked for; on a GPU, 1."""
    if str(device) != "cpu" or workers or prefetch or threads < 2:
        return 1
    return threads


def resolve_frames(frames: str, device: str, decoder: str, have, tasks: Sequence[str] = ("fragment",)) -> str:
    """The sampler's window format for ``--frames`` (see :func:`measure`). ``auto`` takes ``yuv420`` only where no
    task reads pixels (plain fragments): a task that does (the guards' thumbnails) needs the window in RGB, which
    torchcodec decodes faster than the pyav backend (~300 against ~245 samples/s for the four frame tasks here)."""
    if frames not in ("auto", "rgb", "yuv420"):
        raise ValueError(f"frames must be auto, rgb or yuv420, got {frames!r}")
    cpu = str(device) == "cpu"
    if frames == "auto":
        no_pixels = all(getattr(t, "pixels", "full") == "none" for t in _tasks(tasks).values())
        return "yuv420" if cpu and no_pixels and "pyav" in have and decoder in ("auto", "pyav") else "rgb"
    if frames == "yuv420":
        if not cpu:
            raise ValueError("frames yuv420: planar windows are a CPU path (on a GPU the decoders give RGB)")
        if "pyav" not in have or decoder not in ("auto", "pyav"):
            raise ValueError(
                f"frames yuv420: planar windows come from the pyav backend (decoder auto or pyav, PyAV installed), "
                f"not decoder {decoder!r}"
            )
    return frames


def print_table(res: dict) -> None:
    t = res.get("threads", 1)
    each = "one thread each" if t == 1 else f"{t} torch and decoder threads each"
    if res.get("workers"):
        each = f"sf2t in {res['workers']} worker processes of one thread, the baselines {each}"
    elif res.get("prefetch"):
        each += f"; sf2t decodes {res['prefetch']} window(s) ahead in a thread while it packs, threads split"
    elif res.get("pipelines", 1) > 1:
        each += f"; sf2t runs {res['pipelines']} pipeline threads (decode, build, pack), threads split"
    if res.get("baseline_streams", 1) > 1:
        each += f"; each baseline runs {res['baseline_streams']} threads, threads split"
    tasks = ", ".join(res.get("tasks", ["fragment"]))
    print(
        f"{res['samples']} samples ({tasks}; {res.get('frames_per_sample', FRAMES):.1f} frames each) -> "
        f"{res.get('family', 'qwen2_vl')} pixels at {res['size']} on {res.get('device', 'cpu')}, {each}; "
        f"sf2t decodes with {res.get('sf2t_decoder', 'auto')} ({res.get('frames', 'rgb')} windows)"
    )
    print(f"{'provider':<22}{'samples/s':>11}{'frames/s':>10}{'pixel MB/s':>12}{'sf2t x':>9}")
    for k, r in res["providers"].items():
        print(
            f"{k:<22}{r['samples_per_s']:>11.1f}{r['frames_per_s']:>10.0f}{r['pixel_mb_per_s']:>12.1f}"
            f"{r['sf2t_speedup']:>9.2f}"
        )
    print(
        f"ceiling: raw all-frames decode ({res.get('ceiling_decoder', 'torchcodec')}) "
        f"{res.get('ceiling_fps', statistics.mean(res['raw_fps'].values())):.0f} frames/s / "
        f"{res['sf2t_frames_decoded_per_sample']:.1f} frames decoded per sample = "
        f"{res['ceiling_samples_per_s']:.1f} samples/s; sf2t reaches {100 * res['sf2t_fraction_of_ceiling']:.0f}%"
        " (its median round against the best raw-decode pass)"
    )
    rounds = res.get("per_round") or []
    fp = res.get("sf2t_fraction_of_ceiling_paired", float("nan"))
    if rounds and fp == fp:  # not nan
        each = ", ".join(f"{100 * r['fraction_of_ceiling']:.0f}%" for r in rounds)
        print(
            f"paired by round (each round's sf2t rate against the ceiling measured right after it): median "
            f"{100 * fp:.0f}% ({each})"
        )
    dc = res.get("decode_only_ceiling_samples_per_s", float("nan"))
    if dc == dc:  # not nan
        print(
            f"decode-only ceiling: raw all-frames decode without RGB conversion (pyav) "
            f"{res.get('decode_only_ceiling_fps', statistics.mean(res['raw_decode_fps'].values())):.0f} frames/s -> "
            f"{dc:.1f} samples/s; sf2t reaches "
            f"{100 * res['sf2t_fraction_of_decode_only_ceiling']:.0f}% (sf2t's windows: {res.get('frames', 'rgb')}; "
            f"paired by round: {100 * res.get('sf2t_fraction_of_decode_only_ceiling_paired', float('nan')):.0f}%)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sf2t throughput", description=__doc__.split("\n\n")[0])
    p.add_argument("--videos", nargs="+", required=True, help="video files or folders")
    p.add_argument("--windows", type=int, default=4, help="64-frame windows per round (4 samples each)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--warmup", type=int, default=1, help="untimed rounds of every provider before the timed ones (default 1)"
    )
    p.add_argument(
        "--against",
        default="llamafactory_style,qwenvl_utils_style",
        help="comma-separated baselines (default: llamafactory_style,qwenvl_utils_style; '' for none)",
    )
    p.add_argument("--size", type=int, nargs=2, default=[252, 448], metavar=("H", "W"), help="target size (x28)")
    p.add_argument("--baseline-samples", type=int, help="time the baselines on the first N samples only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads", type=int, default=1, help="torch and decoder threads of every provider and of the raw decode"
    )
    p.add_argument(
        "--tasks",
        nargs="+",
        default=["fragment"],
        help=f"SF²T tasks to sample, mixed evenly (fragment: a plain 16-frame fragment); the baselines make "
        f"{', '.join(FRAME_TASKS)}",
    )
    p.add_argument("--family", default="qwen2_vl", choices=FAMILIES, help="model family (one pixel layout)")
    p.add_argument("--device", default="cpu", help="where sf2t decodes and packs: cpu or cuda")
    p.add_argument(
        "--decoder",
        default="auto",
        choices=("auto", "torchcodec", "pyav", "dali"),
        help="sf2t's decoder (auto: DALI on a GPU where installed, else torchcodec, else PyAV)",
    )
    p.add_argument(
        "--prefetch",
        type=int,
        default=0,
        help="sf2t decodes up to N windows ahead in a background thread while it packs (--threads split between them)",
    )
    p.add_argument(
        "--pipelines",
        type=int,
        default=None,
        help="run sf2t's pipeline in N threads of this process, each decoding, building and packing its share of the "
        "windows (--threads split between them; CPU). Default: one per --threads on the CPU unless --prefetch or "
        "--workers is given, else 1",
    )
    p.add_argument(
        "--baseline-streams",
        type=int,
        default=None,
        help="each baseline makes its samples in N threads of this process (--threads split between them), as a "
        "training stack's loader workers would. Default: as many as sf2t's --pipelines (or --workers)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="run sf2t's pipeline in this many DataLoader processes, one thread each (0: in process, --threads)",
    )
    p.add_argument(
        "--seconds", type=float, help="each provider's time per round (instead of --windows / --baseline-samples)"
    )
    p.add_argument(
        "--frames",
        default="auto",
        choices=("auto", "rgb", "yuv420"),
        help="sf2t's windows: yuv420 keeps the decoder's planes and converts inside fragment_pack, for the frames "
        "samples show only (pyav backend, CPU); auto: yuv420 for plain fragments on the CPU, else rgb",
    )
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    from sf2t._files import check_out_file, write_text_atomic
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
    if args.json:
        try:
            check_out_file(args.json, "--json", inputs=videos, text=True)  # before the measurement, not after it
        except ValueError as e:
            print(f"sf2t throughput: {e}", file=sys.stderr)
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
            tasks=args.tasks,
            family=args.family,
            device=args.device,
            workers=args.workers,
            prefetch=args.prefetch,
            pipelines=default_pipelines(args.threads, args.device, args.workers, args.prefetch)
            if args.pipelines is None
            else args.pipelines,
            warmup=args.warmup,
            seconds=args.seconds,
            decoder=args.decoder,
            frames=args.frames,
            baseline_streams=args.baseline_streams,
        )
    except (ValueError, RuntimeError, VideoError) as e:
        print(f"sf2t throughput: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before a timed round finished (else measure returns those rounds' figures)
        print("\nsf2t throughput: interrupted before a timed round finished: nothing to report", file=sys.stderr)
        return 130
    print_table(res)
    if args.json:  # strict JSON: nan (a ceiling not measured here) as null
        write_text_atomic(args.json, json.dumps(json_safe(res), indent=1, allow_nan=False), "--json")
    if res.get("interrupted"):
        print(
            f"sf2t throughput: interrupted: the figures are of the {res['rounds']} of {res['rounds_asked']} timed "
            "round(s) that finished",
            file=sys.stderr,
        )
        return 130
    return 0


def json_safe(v):
    """``v`` with NaN / infinite floats as null (strict JSON readers refuse a bare NaN: the decode-only ceiling where
    PyAV is missing or on a GPU)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    return v
