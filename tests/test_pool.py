"""sf2t.train.data.VideoPool: the lists drawn from on every sample (usable videos per task, a task's task_videos
subset, the other videos a localization target comes from) are kept between draws, not rebuilt (O(videos) a sample:
11.7 ms with 200,000 videos), and made again when the pool changes, so the draws are the same as before."""

from __future__ import annotations

import zlib

import pytest
import torch

from sf2t.tasks import TASKS
from sf2t.train.data import SampleFactory, VideoPool
from sf2t.video.decode import VideoError
from sf2t.video.probe import VideoInfo

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Uncached(VideoPool):
    """The pool as it was: every list made again on every call."""

    def usable(self, task=None):
        out = self.excluded.get(task, ()) if task is not None else ()
        return [i for i in self.infos if i.path not in out]

    def others(self, path):
        return [i for i in self.infos if i.path != path]


class _Store:
    """Frames without decoding: noise fixed by (video, frame); videos named bad* do not decode."""

    def get(self, info, frame_ids):
        if "bad" in info.path:
            raise VideoError(info.path, "does not decode", "decode_error")
        out = torch.empty(len(frame_ids), info.height, info.width, 3, dtype=torch.uint8)
        for n, k in enumerate(frame_ids):
            g = torch.Generator().manual_seed(zlib.crc32(f"{info.path}:{k}".encode()))
            out[n] = torch.randint(0, 256, (info.height, info.width, 3), generator=g, dtype=torch.uint8)
        return out


def _info(path: str, frames: int = 48) -> VideoInfo:
    return VideoInfo(path, frames, 24.0, 32, 32, frames / 24.0, "h264")


def _factory(pool, **kw):
    return SampleFactory(pool, list(TASKS), None, store=_Store(), seed=3, **kw)


def test_draws_are_those_of_the_uncached_pool_through_drops():
    """The same samples as a pool that makes every list again on every draw, while videos drop out (one that does
    not decode: out of every task; one too short for a task: out of that task) and one is dropped by hand; with a
    task_videos subset for one task and localization's second video."""
    infos = [_info(f"/v/{'a' if i % 3 else 'b'}/{i:03d}.mp4") for i in range(24)]
    infos += [_info("/v/a/bad1.mp4"), _info("/v/b/bad2.mp4"), _info("/v/a/short.mp4", 5)]
    kw = dict(task_videos={"counting": ["/v/b/"]})
    new, old = VideoPool(infos=list(infos)), _Uncached(infos=list(infos))
    fn, fo = _factory(new, **kw), _factory(old, **kw)
    for idx in range(80):
        if idx == 40:  # dropped by hand (a resumed run replays its checkpoint's drops so)
            for pool in (new, old):
                pool.drop("/v/b/003.mp4", "decode_error", "by hand")
                pool.drop("/v/a/004.mp4", "static", "by hand", task="speed")
        a, b = fn.task_sample(idx)[0], fo.task_sample(idx)[0]
        assert (a.task, a.meta) == (b.task, b.meta), idx
    assert new.skipped == old.skipped and new.excluded == old.excluded
    assert {s.path for s in new.skipped} >= {"/v/a/bad1.mp4", "/v/b/bad2.mp4", "/v/a/short.mp4", "/v/b/003.mp4"}
    for task in [None, *TASKS]:  # and what it hands out is the fresh computation
        assert new.usable(task) == old.usable(task)
    dup = _Uncached(infos=infos[:3] + infos[1:2] + infos[5:7])  # a path twice: both entries left out
    assert list(VideoPool(infos=list(dup.infos)).others(infos[1].path)) == dup.others(infos[1].path)
    for path in ("/v/a/001.mp4", "/v/b/003.mp4", "/nowhere.mp4"):
        others = new.others(path)
        assert list(others) == old.others(path) and len(others) == len(old.others(path))
        assert [others[k] for k in range(-len(others), len(others))] == old.others(path) * 2


class _Counted(list):
    """A list that counts the passes over it."""

    passes = 0

    def __iter__(self):
        type(self).passes += 1
        return super().__iter__()


@pytest.mark.parametrize("n", [50, 5000])
def test_a_draw_does_not_go_over_the_whole_pool(n):
    """Drawing does not pass over the pool's videos once a sample: a few passes in all (one per task's list, one
    for the positions localization's second video is drawn from), whatever the pool's size and the draws' count;
    a drop makes them again once."""
    infos = _Counted(_info(f"/v/{'a' if i % 2 else 'b'}/{i:05d}.mp4") for i in range(n))
    pool = VideoPool(infos=infos)
    factory = _factory(pool, task_videos={"counting": ["/v/b/"]})
    _Counted.passes = 0
    for idx in range(60):
        factory.task_sample(idx)
    assert _Counted.passes <= len(TASKS) + 1, _Counted.passes
    assert not pool.skipped  # (nothing dropped: the counted list is the pool's all along)
    pool.drop("/v/a/00001.mp4", "static", "by hand", task="disorder")
    _Counted.passes = 0
    for idx in range(60, 120):
        factory.task_sample(idx)
    assert _Counted.passes <= 2, _Counted.passes  # disorder's list and localization's positions again, once


def test_a_target_video_that_does_not_decode_is_the_one_dropped():
    """Localization pastes a frame of another video: when that one fails to decode, it leaves the pool, not the video
    the sample was drawn for (which dropped good videos one by one while the broken one stayed)."""
    from sf2t.tasks.base import make_rng

    good, bad = _info("/v/good.mp4"), _info("/v/bad.mp4")
    pool = VideoPool(infos=[good, bad])
    f = SampleFactory(pool, ["localization"], None, store=_Store(), seed=3)
    assert f._try_video(f.tasks["localization"], good, make_rng(0, 0, "t")) is None  # its target failed
    assert [s.path for s in pool.skipped] == ["/v/bad.mp4"]
    assert [i.path for i in pool.usable("localization")] == ["/v/good.mp4"]


def test_supervised_draw_not_exhausted_by_drops_of_other_files():
    """A resume replays every supervised drop of its checkpoint, also of videos the current supervised_data no longer
    names: they must not count toward "every supervised video is bad" (a count did: NoUsableVideo at once)."""
    from sf2t.train.data import SUPERVISED, NoUsableVideo
    from sf2t.train.supervised import SupervisedRecord

    pool = VideoPool(infos=[_info("/v/a.mp4")])
    recs = [SupervisedRecord("/new/x.mp4", "q", "a", "0"), SupervisedRecord("/new/y.mp4", "q", "a", "1")]
    f = SampleFactory(pool, ["counting"], None, store=_Store(), seed=0, supervised=recs, supervised_ratio=1.0)
    for p in ("/old/a.mp4", "/old/b.mp4"):
        pool.drop(p, "missing", "supervised_data: gone", task=SUPERVISED)
    f._supervised_sample = lambda rec, with_answer: {"video": rec.video}  # no decoding: which record was drawn
    assert f.sample(0)["video"] in ("/new/x.mp4", "/new/y.mp4")
    for p in ("/new/x.mp4", "/new/y.mp4"):
        pool.drop(p, "missing", "gone", task=SUPERVISED)
    with pytest.raises(NoUsableVideo):
        f.sample(1)


def test_dist_timeout_is_not_a_config_change_on_resume():
    from sf2t.train.config import TrainConfig, config_to_dict
    from sf2t.train.loop import config_changes

    now = config_to_dict(TrainConfig())
    older = {k: v for k, v in now.items() if k != "dist_timeout_min"}  # a checkpoint from before the field
    assert config_changes(older, now) == []
    assert config_changes({**now, "dist_timeout_min": 5.0}, now) == []


def test_records_made_in_code_never_share_a_skip():
    """A record made in code (no position in a file) is skipped under a key of its own: two records of one video
    with other texts get two keys (the position default 0 gave both "record 0": a skip of one left out the other),
    the same record gets the same key in every process, and a record of a file keeps its position."""
    import subprocess
    import sys

    from sf2t.train.supervised import SupervisedRecord

    a, b = SupervisedRecord("/v/x.mp4", "q1", "a", "0"), SupervisedRecord("/v/x.mp4", "q2", "a", "0")
    assert a.key != b.key and a.key == SupervisedRecord("/v/x.mp4", "q1", "a", "0").key
    code = "from sf2t.train.supervised import SupervisedRecord as R; print(R('/v/x.mp4', 'q1', 'a', '0').key)"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == a.key
    assert SupervisedRecord("/v/x.mp4", "q1", "a", "0", index=3).key == "/v/x.mp4 (record 3)"
