"""``sf2t throughput``: sf2t's input pipeline side by side with what fine-tuning stacks run today, on your videos.

Every provider turns the same SF²T samples (by default 16-frame fragments at a stride of 1-4; ``--tasks`` samples
the real tasks that pick and reorder frames: counting, disorder, rearrangement, speed; 4 samples per 64-frame
window, ``sf2t.video.sampler.WindowSampler``'s planner) into the same Qwen2-VL pixel values
(``pixel_values_videos`` + ``video_grid_thw`` at one target size, 2 frames per temporal patch):

- ``sf2t``: the window sampler (decoder opened once per video and kept; one decode of the window's sorted union of
  frames, shared by its samples) + ``fragment_pack`` gathering each sample's frames from that decode,
- ``llamafactory_style`` / ``qwenvl_utils_style``: ``bench/baselines/`` (per sample: open the file, decode,
  resize with PIL / torch, then transformers' ``Qwen2VLVideoProcessor``).

Outputs are checked to agree (within fragment_pack's tolerance) before anything is timed, on samples spread over the run
(:func:`agreement_windows`: window 0, each further video's first window, the last window; at most 8 windows, one sample
each, two from window 0; the LLaMA-Factory-style baseline through its check twin, which rounds as torch and torchcodec
do where Pillow or PyAV's default conversion would not: portrait videos, odd sizes; its timed function is compared
with that twin on the same samples, rounding apart: ``TWIN_MAX_STEPS``, ``TWIN_MEAN``, JSON ``timed_vs_check_twin``).
Files that cannot be measured are
left out, each with its reason (printed; JSON ``left_out``): unreadable ones (every frame is decoded once first, so a
file broken part way is one), ones shorter than a window and, with baselines, ones they cannot decode as sf2t does
(rotated, above 8 bits, with several video streams where torchcodec's default is not sf2t's, with a cover picture
before the video (LLaMA-Factory-style reads the container's first video stream, as LLaMA-Factory does: the picture),
odd-sized ones whose RGB PyAV and torchcodec make apart: :func:`rgb_disagreement`); the ceilings and that check read
sf2t's stream. Providers run in interleaved rounds; one decoder thread and one torch thread each (``--threads`` for
more); each sample is dropped once made (as a training loop consumes it).
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
``pyav``, no task reads pixels itself (plain fragments; the tasks' guards and edits read RGB) and every video is 8-bit
4:2:0 with even sizes, upright (:func:`planar`; others are converted frame by frame). Samples that share a window's
frames are packed by one ``fragment_pack_many`` call, which resizes each distinct frame once.
Run from a clone (the baselines live in its ``bench/`` folder).
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from typing import Sequence

import torch

from sf2t._checks import check_int, check_int_pair
from sf2t._plural import counted, noun_for
from sf2t.throughput.agreement import (
    AGREE_WINDOWS,  # noqa: F401  (re-exported)
    TWIN_MAX_STEPS,
    TWIN_MEAN,
    agreement_samples,
    agreement_windows,
    check_agreement,
)
from sf2t.throughput.ceiling import (
    RAW_CHUNKS,  # noqa: F401  (re-exported)
    ceiling_decoder,
    combined_fps,
    decoded_by_video,
    pair_rounds,
    raw_decode_fps,
    raw_fps,
)
from sf2t.throughput.command import default_pipelines, main  # noqa: F401  (re-exported)
from sf2t.throughput.report import json_safe, print_table  # noqa: F401  (re-exported)
from sf2t.throughput.runners import (
    _PackInWorker,  # noqa: F401  (re-exported)
    run_baseline,
    run_sf2t,
    run_sf2t_pipelines,
    run_sf2t_workers,
)
from sf2t.throughput.sampling import (
    FAMILIES,
    FRAME_TASKS,  # noqa: F401  (re-exported)
    FRAMES,  # noqa: F401  (re-exported)
    PROVIDERS,
    SAMPLES_PER_WINDOW,  # noqa: F401  (re-exported)
    WINDOW,  # noqa: F401  (re-exported)
    Fragment,
    _baselines,
    _sampler,
    _tasks,  # noqa: F401  (re-exported)
    sample_plans,
)
from sf2t.throughput.videos import (
    RGB_STEPS,  # noqa: F401  (re-exported)
    VERIFY_SLOWDOWN,  # noqa: F401  (re-exported)
    planar,  # noqa: F401  (re-exported)
    resolve_frames,
    rgb_disagreement,  # noqa: F401  (re-exported)
    select_videos,
)

__all__ = ["measure", "main", "Fragment", "PROVIDERS"]


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
    CPU for tasks that read no pixels (plain fragments) where PyAV is installed, the decoder is auto or pyav and
    every video gives planar windows (:func:`planar`), else ``rgb``. ``baseline_streams``: each baseline makes its
    samples in that many threads of this process, each with its share of ``threads`` (torch and decoder threads)
    and of the plans, as a training stack's loader workers would (default: ``pipelines``, or ``workers`` with sf2t
    in worker processes, so sf2t's parallel streams race as many baseline threads)."""
    from sf2t.ops.fragment_pack import QWEN2_VL_STD, qwen2_vl_size_message

    size = check_int_pair("size", size)
    said = qwen2_vl_size_message(size, f"size {tuple(size)}", "size=({h}, {w})")
    if said:  # before the videos are probed (every frame decoded once)
        raise ValueError(said)
    threads = check_int("threads", threads, min_value=1)
    windows, rounds = check_int("windows", windows, min_value=1), check_int("rounds", rounds, min_value=1)
    warmup = check_int("warmup", warmup, min_value=0)
    seed = check_int("seed", seed)
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):  # inf ran forever, nan ran once
        raise ValueError(f"seconds must be a finite number > 0, got {seconds}")
    workers = check_int("workers", workers, min_value=0)
    prefetch = check_int("prefetch", prefetch, min_value=0)
    pipelines = check_int("pipelines", pipelines, min_value=1)
    if baseline_samples is not None:  # (None: every sample)
        baseline_samples = check_int("baseline_samples", baseline_samples, min_value=1)
    if baseline_streams is None:
        baseline_streams = workers if workers else pipelines
    baseline_streams = check_int("baseline_streams", baseline_streams, min_value=1)
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
    from sf2t.tasks import task_names

    tasks = task_names(tasks, "tasks", extra=("fragment",))  # none, or unknown names: an error before any work
    from sf2t.video.backends import BACKENDS, available_decoders

    if decoder != "auto" and decoder not in BACKENDS:
        raise ValueError(f"decoder must be auto or one of {BACKENDS}, got {decoder!r}")
    if decoder != "auto" and decoder not in available_decoders():
        raise ValueError(f"decoder {decoder!r} is not installed here (available: {', '.join(available_decoders())})")
    output = resolve_frames(frames, device, decoder, available_decoders(), tasks)
    mods, processor_for = _baselines()
    unknown = [a for a in against if a not in mods]
    if unknown:  # before the videos are probed (every frame decoded once)
        raise ValueError(f"unknown {noun_for(len(unknown), 'baseline')} {unknown}; known: {sorted(mods)}")
    torch.set_num_threads(threads)
    infos, left_out = select_videos(videos, against)
    videos = [i.path for i in infos]
    output = resolve_frames(frames, device, decoder, available_decoders(), tasks, infos)  # auto: for these videos
    proc = processor_for(size)
    plans = sample_plans(infos, windows, seed, tasks) if against else []
    n_base = min(len(plans), baseline_samples or len(plans))

    # agreement first, on a few samples
    used: dict = {}
    made, decoded_first = run_sf2t(
        infos, 1, size, seed, threads=threads, tasks=tasks, device=device, decoder=decoder, used=used, output=output
    )
    agreement, checked = {}, []
    if against:  # a sample of the run's windows: window 0, each further video's first window, the last one
        sf2t_plan = _sampler(infos, seed, tasks=tasks)
        try:
            checked = agreement_windows(lambda w: sf2t_plan.plan(w).video.path, windows)
        finally:
            sf2t_plan.close()
        t_check = time.perf_counter()
        mine, check_plans, where = agreement_samples(
            infos, checked, size, seed, threads=threads, tasks=tasks, device=device, decoder=decoder, output=output
        )
        outs, twins = {"sf2t": mine}, {}
        for a in against:  # the baselines' check twin where they have one (see bench/baselines)
            make = getattr(mods[a], "check_pixels", mods[a].pixels)
            outs[a] = [make(p, ids, size, proc, threads=threads) for p, ids in check_plans]
            if make is not mods[a].pixels:  # the timed function on the same plans: the twin's computation but
                # for its rounding (colour conversion, resize pass order), so what is timed is like-for-like too
                timed = {
                    "check twin": outs[a],
                    a: [mods[a].pixels(p, i, size, proc, threads=threads) for p, i in check_plans],
                }
                twins[a] = check_agreement(
                    timed, TWIN_MAX_STEPS / 255 / min(QWEN2_VL_STD), TWIN_MEAN, where, "check twin"
                )[a]
        agreement = check_agreement(outs, 2 / 255 / min(QWEN2_VL_STD) + 1e-6, where=where)
        for a, d in twins.items():
            agreement[a]["timed_vs_check_twin"] = d
        log(
            f"agreement: {', '.join(against)} within tolerance of sf2t's on {len(mine)} samples of windows "
            f"{checked} ({counted(len({p for p, _ in check_plans}), 'video')}), checked in "
            f"{time.perf_counter() - t_check:.2f} s"
        )
    times: dict[str, list[float]] = {p: [] for p in ("sf2t", *against)}
    decoded = 0
    paths = sorted({i.path for i in infos})
    num_frames = {i.path: i.num_frames for i in infos}
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
                got = {p: raw_fps(p, threads, device, num_frames.get(p)) for p in paths}
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
                n = len(run_baseline(mods[a], a, plans, size, proc, threads, n_base, False, seconds, baseline_streams))
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
        "agreement_windows": checked,
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
