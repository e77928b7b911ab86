"""Decode once, serve many: a window's samples come from one decode of the sorted union of their frames,
equal to decoding each sample alone; failures fail samples, not the stream; DataLoader workers are safe."""

from __future__ import annotations

import os

import pytest
import torch

from sf2t.tasks import make_task
from sf2t.tasks.base import make_rng
from sf2t.video import decode_frames, probe
from sf2t.video.sampler import FragmentDataset, WindowSampler, make_loader, plan_window
from tests.video import media

pytest.importorskip("av")
synth = pytest.importorskip("sf2t.synth")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("sv")
    paths = [synth.make_clip(root / f"c{i}", 10 + i, width=96, height=64, seconds=4, gop=12)["path"] for i in range(3)]
    return [probe(p) for p in paths]


def test_window_plans_share_one_window(videos):
    tasks = {n: make_task(n) for n in ("counting", "disorder")}
    for w in range(20):
        wp = plan_window(w, videos, tasks, make_rng(0, w, "t"), samples_per_window=4, window_frames=48)
        assert len(wp.plans) == 4
        ids = wp.frame_ids
        assert ids == sorted(set(ids))
        assert all(wp.start <= i < wp.start + wp.length for i in ids)
        assert {t.task for t in wp.plans} <= {"counting", "disorder"}


@pytest.mark.parametrize("decoder", ["torchcodec", "pyav"])
def test_union_decode_serves_each_sample_its_own_frames(videos, decoder):
    s = WindowSampler(videos, seed=3, samples_per_window=4, window_frames=48, decoder=decoder)
    n = 0
    for w in range(6):
        got = s.window(w)
        assert len({fr.data_ptr() for _, fr in got}) == 1  # the samples share the window's one decode
        for sample, frames in got:
            ref, _ = decode_frames(sample.meta["source"], sample.meta["source_frames"], decoder=decoder)
            assert torch.equal(sample.presented(frames), ref)  # presented order, from the shared decode
            n += 1
    assert n >= 20 and not s.failures
    # one decode per window: requested frames are the unions, fewer than the samples' frames added up
    assert s.stats["windows"] == 6 and s.stats["frames_requested"] < sum(
        len(p.frame_ids) for w in range(6) for p in s.plan(w).plans
    )
    s.close()


def test_same_seed_same_samples(videos):
    a = [
        (x.meta["source"], x.meta["source_frames"], x.answer)
        for x, _ in WindowSampler(videos, seed=5).iterate(num_windows=5)
    ]
    b = [
        (x.meta["source"], x.meta["source_frames"], x.answer)
        for x, _ in WindowSampler(videos, seed=5).iterate(num_windows=5)
    ]
    c = [(x.meta["source"], x.meta["source_frames"]) for x, _ in WindowSampler(videos, seed=6).iterate(num_windows=5)]
    assert a == b and [t[:2] for t in a] != c


def test_bad_file_fails_its_samples_not_the_run(videos, tmp_path):
    from dataclasses import replace

    gone = tmp_path / "gone.mp4"
    gone.write_bytes(open(videos[0].path, "rb").read())
    ghost = replace(probe(gone), path=str(gone))
    os.remove(gone)  # indexed, then deleted before training
    s = WindowSampler(videos + [ghost], seed=0, samples_per_window=2)
    got = list(s.iterate(num_windows=24))
    assert got, "good videos still give samples"
    assert s.failures and all(f.path == str(gone) and f.kind == "missing" for f in s.failures)
    assert all(x.meta["source"] != str(gone) for x, _ in got)


def test_corrupt_frame_fails_only_the_samples_that_need_it(tmp_path):
    """A damaged packet mid-file: with the pyav backend, the window's union decode fails, the samples are
    decoded one by one, and only those that need a damaged frame fail, with the reason."""
    good = media.encode(tmp_path / "good.mp4", media.moving_frames(120, 96, 128), gop=10)
    bad = media.corrupt_middle(good, tmp_path / "bad.mp4", nbytes=6000, seed=1)
    info = probe(bad)  # not verified: the sampler finds the damage itself
    s = WindowSampler([info], ["counting"], seed=1, samples_per_window=4, window_frames=120, decoder="pyav")
    got = list(s.iterate(num_windows=6))
    assert s.failures, "some samples touch the damaged frames"
    assert all(f.kind == "corrupt" and "bad.mp4" in f.path for f in s.failures)
    assert got, "samples away from the damage are served"
    # with the index's verify, the damaged frames are known up front and fail their samples before decoding
    v = probe(bad, verify=True)
    assert v.corrupt_frames
    s2 = WindowSampler([v], ["counting"], seed=1, samples_per_window=4, window_frames=120)
    list(s2.iterate(num_windows=6))
    assert any("sf2t index --verify" in f.reason for f in s2.failures)


def _items(loader):
    samples, failures = [], []
    for it in loader:
        if "failure" in it:
            failures.append(it["failure"])
        else:
            samples.append(
                (
                    it["window"],
                    it["sample"].meta["source"],
                    tuple(it["sample"].meta["source_frames"]),
                    it["frames"].shape,
                )
            )
    return sorted(samples), failures


def test_dataloader_workers_give_the_same_samples(videos):
    ds = FragmentDataset(videos, num_windows=8, seed=2, samples_per_window=3)
    ref, _ = _items(make_loader(ds, 0))
    two, _ = _items(make_loader(FragmentDataset(videos, num_windows=8, seed=2, samples_per_window=3), 2, timeout=120))
    assert ref == two and len(ref) >= 16


def test_fork_after_decoding_in_the_parent_does_not_deadlock(videos):
    """The parent decodes with threads first, then forks workers: decoders are opened in the workers, so
    the loader finishes (the DataLoader timeout turns a deadlock into a failure, not a hang)."""
    torch.set_num_threads(2)
    decode_frames(videos[0].path, list(range(0, 40, 3)), threads=2)
    ds = FragmentDataset(videos, num_windows=4, seed=4, samples_per_window=2)
    got, _ = _items(make_loader(ds, 2, timeout=120, mp_context="fork"))
    assert len(got) >= 6


def test_bad_arguments(videos):
    with pytest.raises(ValueError, match="videos is empty"):
        WindowSampler([])
    with pytest.raises(ValueError, match="samples_per_window"):
        WindowSampler(videos, samples_per_window=0)
    with pytest.raises(ValueError, match="unknown task"):
        WindowSampler(videos, ["nope"])
    # decoder, output and device are checked when the sampler is made, not at the first decode
    with pytest.raises(ValueError, match="decoder must be 'auto' or one of"):
        WindowSampler(videos, decoder="nope")
    with pytest.raises(ValueError, match="output must be one of"):
        WindowSampler(videos, output="bgr")
    with pytest.raises(ValueError, match="device 'tpu' is not a torch device"):
        WindowSampler(videos, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no CUDA device"):
            WindowSampler(videos, device="cuda")
    # the DataLoader dataset makes the same checks in the main process, not in a worker later
    from sf2t.video.sampler import FragmentDataset

    with pytest.raises(ValueError, match="unknown task"):
        FragmentDataset(videos, ["nope"])
    with pytest.raises(ValueError, match="decoder must be"):
        FragmentDataset(videos, decoder="nope")


def test_yuv420_windows_pack_to_the_same_pixels(videos):
    """output="yuv420": windows of plain fragments stay planar (YUV420) and fragment_pack gives exactly the pixels
    of the RGB windows; a task that reads pixels gets RGB windows (converted as decoded) and the same samples."""
    from sf2t import _ext
    from sf2t.ops import YUV420, fragment_pack
    from sf2t.throughput import Fragment

    if not _ext.is_loaded():
        pytest.skip(f"sf2t._C not built: {_ext.load_error()}")
    for tasks in ({"fragment": Fragment()}, ("counting", "disorder")):
        kw = dict(seed=1, samples_per_window=4, window_frames=48, decoder="pyav")
        rgb = WindowSampler(videos, tasks, **kw)
        yuv = WindowSampler(videos, tasks, output="yuv420", **kw)
        for w in range(3):
            a, b = rgb.window(w), yuv.window(w)
            assert [s.meta for s, _ in a] == [s.meta for s, _ in b] and len(a) == 4
            planar = isinstance(tasks, dict)
            for (sa, fa), (sb, fb) in zip(a, b):
                assert isinstance(fb, YUV420) == planar and isinstance(fa, torch.Tensor)
                pa, _ = fragment_pack(fa, sa.src_index_tensor(), sa.boxes_tensor(), (56, 84))
                pb, _ = fragment_pack(fb, sb.src_index_tensor(), sb.boxes_tensor(), (56, 84))
                assert torch.equal(pa, pb)
        assert rgb.stats["frames_decoded"] == yuv.stats["frames_decoded"]
        rgb.close()
        yuv.close()


def test_endless_dataset_does_not_keep_the_failures_it_yielded(videos, tmp_path, monkeypatch):
    """An endless FragmentDataset (num_windows=None, a long training run) yields each failure as an item and keeps
    none: its sampler's failure list grew by every failed sample for the life of the worker."""
    from dataclasses import replace

    from sf2t.video import sampler as sampler_mod

    gone = tmp_path / "gone.mp4"
    gone.write_bytes(open(videos[0].path, "rb").read())
    ghost = replace(probe(gone), path=str(gone))
    os.remove(gone)  # every sample of it fails
    made = []

    class Recording(WindowSampler):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

    monkeypatch.setattr(sampler_mod, "WindowSampler", Recording)
    ds = FragmentDataset(videos + [ghost], num_windows=None, seed=0, samples_per_window=2)
    made.clear()
    it, failed = iter(ds), 0
    for _ in range(80):
        failed += "failure" in next(it)
    assert failed >= 10
    assert len(made) == 1 and len(made[0].failures) <= 2  # at most the window being yielded
    it.close()
