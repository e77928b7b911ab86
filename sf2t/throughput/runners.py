"""sf2t's pipeline and the baselines made and timed: in this thread, in pipeline threads, in DataLoader worker
processes, and the baselines in as many streams."""

from __future__ import annotations

import itertools
import time
from typing import Sequence

import torch

from sf2t.throughput.sampling import SAMPLES_PER_WINDOW, WINDOW, _decoder_names, _sampler, _sync, _tasks


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


def run_baseline(mod, name: str, plans, size, proc, threads: int, k, keep=True, budget=None, streams=1):
    """``k`` samples (or ``budget`` seconds) of baseline ``name`` (its module ``mod``) from ``plans`` (repeated where
    ``k`` is more), in ``streams`` threads (stream s makes plans s, s + streams, ...; one stream: in this thread),
    ``threads`` split between them (process-wide torch threads). ``keep=False``: each sample is dropped once made, as
    a training loop consumes it."""
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
                got = mod.pixels(p, ids, size, proc, threads=per)
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
