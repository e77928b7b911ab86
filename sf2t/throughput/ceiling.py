"""The machine's ceiling: the raw decoder's all-frames rate on the same files (with RGB and, on the CPU, without any
conversion), combined over the videos, and sf2t set against it round by round."""

from __future__ import annotations

import math
import statistics
import time
from typing import Sequence

from sf2t.throughput.sampling import _sync


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


RAW_CHUNKS = (1, 4, 16)  # frames per torchcodec call in the ceiling's passes


def raw_fps(path: str, threads: int = 1, device: str = "cpu", num_frames: int | None = None) -> float:
    """The raw decoder's all-frames rate on ``path`` (torchcodec, sequential, ``threads`` decoder threads, on
    ``device``): the ceiling. Where torchcodec is not installed, PyAV's on the CPU (the decoder sf2t then uses).
    The best of passes that ask for 1, 4 and 16 frames a call (``RAW_CHUNKS``): each call returns a fresh tensor,
    and the first touch of a large one costs the decoder up to a third of its rate here (one 640x360 file, 2
    threads: 2,760-3,900 frames/s in 64-frame calls, 4,900-5,300 in 1-4 frame calls; 1280x720: 820-1,080 against
    1,690), so the ceiling is what the decoder can do, not what its allocations allow. ``num_frames``: the probe's
    count, where known: torchcodec's approximate mode takes the count from the header's duration, which a truncated
    file overstates (a Matroska file cut to 108 of its 200 frames: asking for frame 108 stopped the whole run); a
    pass that still runs out of frames counts those it got."""
    try:
        import torchcodec.decoders  # noqa: F401
    except ImportError:
        return max(_raw_fps_pyav(path, threads) for _ in range(2))
    from sf2t.video.tc import tc_open  # the stream sf2t reads (torchcodec's default may be another)

    kw = {"device": device} if str(device) != "cpu" else {}
    best = 0.0
    for chunk in RAW_CHUNKS:
        dec = tc_open(path, dimension_order="NHWC", num_ffmpeg_threads=threads, seek_mode="approximate", **kw)
        n = dec.metadata.num_frames or 0
        n = min(n, num_frames) if n and num_frames else n or num_frames or 0
        t = time.perf_counter()
        got = 0
        for lo in range(0, n, chunk):
            try:
                got += dec.get_frames_in_range(lo, min(lo + chunk, n)).data.shape[0]
            except RuntimeError:  # fewer frames than promised: the end of what decodes
                break
        _sync(device)
        best = max(best, got / (time.perf_counter() - t))
    return best


def raw_decode_fps(path: str, threads: int = 1) -> float:
    """The decoder's all-frames rate on ``path`` without any RGB conversion (PyAV, sequential, ``threads`` decoder
    threads, frames left in the codec's YUV): what the codec alone allows. sf2t's ``yuv420`` windows skip the
    conversion of the frames decoded only to reach a window (GOP lead-ins) and convert the frames a sample shows
    inside fragment_pack, so this is the strict bound for that pipeline; ``nan`` where PyAV is not installed. Decodes
    the stream sf2t reads (``av_open``'s): the container's first video stream, read before, is a cover picture in a
    file with cover art before the video (one picture decoded: a still image's rate as the ceiling)."""
    try:
        import av  # noqa: F401
    except ImportError:
        return float("nan")
    from sf2t.video.probe import av_open

    c, st = av_open(path)
    with c:
        st.thread_type, st.thread_count = "AUTO", threads
        t = time.perf_counter()
        got = sum(1 for f in c.decode(st) if f is not None)
        return got / (time.perf_counter() - t)


def _raw_fps_pyav(path: str, threads: int) -> float:
    from sf2t.video.probe import av_open  # the stream sf2t reads (not a cover picture before the video)

    c, st = av_open(path)
    with c:
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
