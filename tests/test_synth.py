"""Tests for sf2t.synth: procedural videos with ground truth (fast: small sizes, short clips)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from sf2t.synth import (
    SUPPORTED_CODECS,
    encode_frames,
    frame_mads,
    ground_truth,
    iter_frames,
    make_clip,
    make_clips,
    make_contrast_clip,
    render_contrast_frames,
    render_frames,
    thumbnail,
    thumbnail_mad,
)

av = pytest.importorskip("av")

SMALL = dict(width=96, height=64)
DIRECTIONS = {"left", "right", "up", "down"}


def _decode(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


# ---------------------------------------------------------------------------------------------------------------
# rendering


def test_deterministic_per_seed():
    a, ga = render_frames(7, seconds=1.0, **SMALL)
    b, gb = render_frames(7, seconds=1.0, **SMALL)
    assert a.dtype == np.uint8 and a.shape == (25, 64, 96, 3)
    assert a.tobytes() == b.tobytes()
    assert ga == gb
    c, _ = render_frames(8, seconds=1.0, **SMALL)
    assert not np.array_equal(a, c)


def test_iter_frames_and_ground_truth_match_render_frames():
    frames, gt = render_frames(3, seconds=0.6, **SMALL)
    it, gt2 = iter_frames(3, seconds=0.6, **SMALL)
    assert gt2 == gt == ground_truth(3, seconds=0.6, **SMALL)
    assert np.array_equal(np.stack(list(it)), frames)


def test_forcing_pan_keeps_the_sprites():
    _, g_on = render_frames(5, seconds=0.4, camera_pan=True, events=False, **SMALL)
    _, g_off = render_frames(5, seconds=0.4, camera_pan=False, events=False, **SMALL)
    assert g_on["camera_pan"]["enabled"] and not g_off["camera_pan"]["enabled"]
    assert (g_on["camera_pan"]["dx"], g_on["camera_pan"]["dy"]) != (0.0, 0.0)
    assert g_off["camera_pan"]["dx"] == g_off["camera_pan"]["dy"] == 0.0
    keys = ("shape", "color", "size", "start", "velocity")
    assert [[s[k] for k in keys] for s in g_on["sprites"]] == [[s[k] for k in keys] for s in g_off["sprites"]]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 8])
def test_num_sprites_forced(n):
    gt = ground_truth(11, num_sprites=n, seconds=0.4, **SMALL)
    assert len(gt["sprites"]) == len(gt["positions"]) == len(gt["motion_direction"]) == n
    assert len({tuple(s["color"]) for s in gt["sprites"]}) == n  # distinct colours


def test_static_frames_identical():
    frames, gt = render_frames(4, seconds=1.0, static=True, camera_pan=True, **SMALL)
    assert (frames == frames[0]).all()
    assert gt["static"] is True
    assert gt["camera_pan"] == {"enabled": False, "dx": 0.0, "dy": 0.0}
    assert gt["events"] == []
    for sp in gt["sprites"]:
        assert sp["velocity"] == [0.0, 0.0] and sp["speed_change"] is None
        assert sp["motion_direction"] is None
    assert frame_mads(frames, 2).max() == 0.0


def test_ground_truth_consistent():
    for seed in range(40):
        frames, gt = render_frames(seed, seconds=2.0, **SMALL)
        n, w, h = gt["num_frames"], gt["width"], gt["height"]
        assert frames.shape == (n, h, w, 3) and n == 50 and gt["fps"] == 25 and gt["seconds"] == 2.0
        assert 1 <= len(gt["sprites"]) <= 4
        assert json.loads(json.dumps(gt)) == gt  # JSON-serialisable as is
        assert [e["frame"] for e in gt["events"]] == sorted(e["frame"] for e in gt["events"])
        expected_events = []
        for sp, pos in zip(gt["sprites"], gt["positions"]):
            a, b = sp["appear_frame"], sp["disappear_frame"]
            end = n if b is None else b
            assert 0 <= a < end <= n
            assert len(pos) == n
            assert all(p is None for p in pos[:a]) and all(p is None for p in pos[end:])
            assert all(p is not None for p in pos[a:end])
            half = sp["size"] // 2
            for x, y in pos[a:end]:  # the whole sprite stays inside the frame (bounce)
                assert half <= x <= w - half and half <= y <= h - half
            if a > 0:
                expected_events.append((a, "appear", sp["id"]))
            if b is not None:
                expected_events.append((b, "disappear", sp["id"]))
            if sp["speed_change"] is not None:
                assert a < sp["speed_change"]["frame"] < end
            assert sp["motion_direction"] in DIRECTIONS
            dx, dy = sp["net_displacement"]
            assert (pos[end - 1][0] - pos[a][0], pos[end - 1][1] - pos[a][1]) == (dx, dy)
        assert sorted((e["frame"], e["type"], e["sprite"]) for e in gt["events"]) == sorted(expected_events)
        assert gt["motion_direction"] == [sp["motion_direction"] for sp in gt["sprites"]]
        if not gt["camera_pan"]["enabled"]:  # without a pan the main sprite is always on screen
            assert gt["sprites"][0]["appear_frame"] == 0 and gt["sprites"][0]["disappear_frame"] is None

        # the topmost visible sprite's colour is at its recorded centre
        for t in (0, n // 2, n - 1):
            visible = [i for i, pos in enumerate(gt["positions"]) if pos[t] is not None]
            if visible:
                i = visible[-1]
                x, y = gt["positions"][i][t]
                assert frames[t, y, x].tolist() == gt["sprites"][i]["color"]


def test_events_happen():
    kinds = set()
    for seed in range(30):
        gt = ground_truth(seed, seconds=2.0, **SMALL)
        kinds |= {e["type"] for e in gt["events"]}
        if len(gt["sprites"]) > 1 or gt["camera_pan"]["enabled"]:
            assert gt["events"], seed  # events=True: something appears or disappears when it can
        assert ground_truth(seed, seconds=2.0, events=False, **SMALL)["events"] == []
    assert kinds == {"appear", "disappear"}


def test_speed_changes_go_both_ways_at_the_speeds_of_their_kind():
    """About as many sprites slow down as speed up (the old code slowed down only sprites fast enough to stay above
    their kind's slowest speed: 14 of 224 speed changes over 300 seeds), and still no sprite ever moves slower than
    the slowest speed of its kind (sprite 0, the main one, keeps the clip moving), before or after its change."""
    from collections import Counter

    from sf2t.synth.scene import _MAIN_SPEED, _MIN_SPEED, _SPEED

    ways, factors = Counter(), []
    for seed in range(300):
        gt = ground_truth(seed, width=160, height=120, seconds=5)
        for sp in gt["sprites"]:
            lo, hi = (v * 120 / 240 for v in (_MAIN_SPEED if sp["id"] == 0 else _SPEED))  # px/frame at this size
            speed = math.hypot(*sp["velocity"])
            sc = sp["speed_change"]
            speeds = [speed] if sc is None else [speed, speed * sc["factor"]]
            assert min(speeds) >= max(lo, _MIN_SPEED) * 0.999, (seed, sp["id"], speeds)  # (velocities have 3 decimals)
            assert sc is not None or speed <= hi * 1.001, (seed, sp["id"], speed)  # no change: the drawn speed
            if sc is not None:
                ways["slow" if sc["factor"] < 1 else "fast"] += 1
                factors.append(sc["factor"])
    n = sum(ways.values())
    assert n >= 200 and abs(ways["slow"] / n - 0.5) <= 4 * math.sqrt(0.25 / n), ways  # 4 standard deviations
    assert all(0.5 <= f <= 0.625 or 1.6 <= f <= 2.0 for f in factors)  # a slow-down is a speed-up played backwards


def test_dropped_slow_down_keeps_the_drawn_speed():
    """A slow-down starts faster than the sprite's drawn speed; when the change is dropped (the sprite is visible too
    briefly to show it) the sprite moves at its drawn speed, within its kind's range, like any unchanged sprite."""
    from sf2t.synth.scene import _MAIN_SPEED, _SPEED

    dropped = 0
    for seed in range(300):
        gt = ground_truth(seed, seconds=0.5, **SMALL)  # 12 frames: short visible spans drop their change
        ref = ground_truth(seed, seconds=0.5, events=False, **SMALL)
        for sp, sp_ref in zip(gt["sprites"], ref["sprites"]):
            if sp["speed_change"] is None:
                hi = (_MAIN_SPEED if sp["id"] == 0 else _SPEED)[1] * 64 / 240
                assert math.hypot(*sp["velocity"]) <= hi * 1.001, (seed, sp["id"])
                if sp_ref["speed_change"] is not None and sp_ref["speed_change"]["factor"] < 1:
                    dropped += 1
    assert dropped >= 3


def test_sprite_counts_are_equally_likely():
    """The seed picks 1-4 sprites, each about a quarter of the time (the old code drew 1-3)."""
    from collections import Counter

    got = Counter(len(ground_truth(seed, seconds=0.2, events=False, **SMALL)["sprites"]) for seed in range(400))
    assert set(got) == {1, 2, 3, 4}, got
    for n in got.values():
        assert abs(n / 400 - 0.25) <= 4 * math.sqrt(0.25 * 0.75 / 400), got  # 4 standard deviations


def test_motion_guard_statistics():
    """For >= 95% of seeds, frames 2 apart differ (thumbnail MAD >= 2) on >= 90% of the clip."""
    ok = []
    for seed in range(40):
        frames, _ = render_frames(seed, **SMALL)
        m = frame_mads(frames, 2)
        ok.append((m >= 2.0).mean() >= 0.9)
    assert np.mean(ok) >= 0.95, np.flatnonzero(~np.array(ok))


@pytest.mark.parametrize("size", [(56, 56), (64, 48), (1280, 720)])
def test_sizes(size):
    w, h = size
    frames, gt = render_frames(2, width=w, height=h, seconds=0.2 if w > 500 else 1.0)
    assert frames.shape[1:] == (h, w, 3)
    assert frames.std() > 10  # textured, not blank
    if w < 500:
        assert (frame_mads(frames, 2) >= 2.0).mean() >= 0.9


# ---------------------------------------------------------------------------------------------------------------
# thumbnail_mad


def test_thumbnail_mad():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert thumbnail(a).shape == (64, 85)
    assert thumbnail(a[:, :100]).shape == (154, 64)
    assert thumbnail_mad(a, a) == 0.0
    black, white = np.zeros_like(a), np.full_like(a, 255)
    assert thumbnail_mad(black, white) == pytest.approx(255.0, abs=1e-3)
    # grey weights are BT.601: pure green vs black differs by 0.587 * 255
    green = np.zeros_like(a)
    green[..., 1] = 255
    assert thumbnail_mad(black, green) == pytest.approx(0.587 * 255, abs=1e-2)
    # area averaging: a fine checkerboard is uniform grey at thumbnail size (integral factor 4 here)
    checker = ((np.indices((256, 384)).sum(0) % 2) * 255).astype(np.uint8)
    assert thumbnail(checker).shape == (64, 96)
    assert np.ptp(thumbnail(checker)) < 1e-3
    assert thumbnail_mad(checker, np.full_like(checker, 127)) == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(ValueError):
        thumbnail_mad(a, a[:10])
    m = frame_mads(np.stack([a, black, a, white]), 2)
    assert m.shape == (2,)
    assert m[0] == pytest.approx(thumbnail_mad(a, a), abs=1e-4)
    assert m[1] == pytest.approx(thumbnail_mad(black, white), abs=1e-3)


# ---------------------------------------------------------------------------------------------------------------
# writing


@pytest.mark.parametrize("codec", ["h264", "vp9"])
def test_make_clip_roundtrip(tmp_path, codec):
    ext = SUPPORTED_CODECS[codec][1]
    gt = make_clip(tmp_path / "a", 9, codec=codec, seconds=1.0, gop=10, **SMALL)
    path = tmp_path / f"a{ext}"
    assert gt["path"] == str(path) and path.is_file() and gt["codec"] == codec
    assert json.loads(path.with_suffix(".json").read_text()) == gt
    frames, gt_r = render_frames(9, seconds=1.0, **SMALL)
    assert {k: v for k, v in gt.items() if k not in ("codec", "path", "gop", "crf")} == gt_r
    dec = _decode(path)
    assert dec.shape == frames.shape == (25, 64, 96, 3)
    mad = np.abs(dec.astype(np.int16) - frames.astype(np.int16)).mean()
    assert mad < 6.0, mad
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.name in ("h264", "vp9", "libvpx-vp9")
        keys = [i for i, p in enumerate(c.demux(video=0)) if p.size and p.is_keyframe]
    assert keys[0] == 0 and 10 in keys  # gop honoured


def test_make_clip_static_and_tiny(tmp_path):
    gt = make_clip(tmp_path / "s.mp4", 1, width=56, height=56, seconds=0.4, static=True, crf=10)
    dec = _decode(gt["path"])
    assert dec.shape == (10, 56, 56, 3)
    assert max(thumbnail_mad(d, dec[0]) for d in dec) < 0.5  # static stays (almost) still after coding
    gt = make_clip(tmp_path / "t.webm", 1, codec="vp9", width=64, height=48, seconds=0.4)
    assert _decode(gt["path"]).shape == (10, 48, 64, 3)


def test_make_clips(tmp_path):
    gts = make_clips(tmp_path / "out", 2, seed=5, codec="vp9", seconds=0.2, **SMALL)
    assert [g["seed"] for g in gts] == [5, 6]
    assert [g["path"] for g in gts] == [str(tmp_path / "out" / f"clip_{i:04d}.webm") for i in range(2)]
    for g in gts:
        assert (tmp_path / "out" / g["path"].rsplit("/", 1)[-1]).with_suffix(".json").is_file()
    gts = make_clips(tmp_path / "out2", 1, seconds=0.2, **SMALL)
    assert gts[0]["path"].endswith("clip_0000.mp4")


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(width=95, height=64), "width"),
        (dict(width=96, height=63), "height"),
        (dict(width=0, height=64), "width"),
        (dict(width=96, height=-2), "height"),
        (dict(width=96, height=64, gop=0), "gop"),
    ],
)
def test_make_clip_bad_sizes(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_clip(tmp_path / "x.mp4", 0, seconds=0.2, **kwargs)
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize(
    "frames, kw, words",
    [
        ([np.zeros((96, 160, 3), np.uint8)] * 3, {}, r"frame 0 must be uint8 \[64, 64, 3\]"),  # once rescaled silently
        ([np.zeros((64, 64, 3), np.float32)], {}, "frame 0 must be uint8"),
        ([], {}, "frames is empty"),  # once a path to a file never written
        (
            [np.zeros((64, 64, 3), np.uint8)],
            dict(fps=0),
            "fps must be a positive finite number, got int 0",
        ),  # once 24 fps
        ([np.zeros((64, 64, 3), np.uint8)], dict(fps=float("nan")), "fps"),
        ([np.zeros((64, 64, 3), np.uint8)], dict(width=63), "width must be even for h264"),
    ],
)
def test_encode_frames_bad_input(tmp_path, frames, kw, words):
    from sf2t.synth.generator import encode_frames

    args = dict(width=64, height=64, fps=25)
    args.update(kw)
    with pytest.raises(ValueError, match=words):
        encode_frames(tmp_path / "x.mp4", frames, **args)
    assert not (tmp_path / "x.mp4").exists()


def test_make_clip_bad_codec_and_path(tmp_path):
    with pytest.raises(ValueError, match="codec") as e:
        make_clip(tmp_path / "x.mp4", 0, codec="av1", seconds=0.2, **SMALL)
    assert "h264" in str(e.value) and "vp9" in str(e.value)
    with pytest.raises(ValueError, match="codec"):
        make_clips(tmp_path, 1, codec="mpeg2")
    with pytest.raises(ValueError, match="path"):
        make_clip(tmp_path / "x.mp4", 0, codec="vp9", seconds=0.2, **SMALL)


def test_render_bad_args():
    with pytest.raises(ValueError, match="width"):
        render_frames(0, width=0)
    with pytest.raises(ValueError, match="seed"):
        render_frames(-1)
    with pytest.raises(ValueError, match="num_sprites"):
        render_frames(0, num_sprites=99)
    frames, _ = render_frames(0, width=33, height=17, seconds=0.12)  # odd sizes are fine without yuv420p
    assert frames.shape == (3, 17, 33, 3)


# ---- high-contrast clips (the demo's ordering-task clips) -------------------------------------------------


def test_contrast_frames_deterministic_straight_and_moving():
    from sf2t.synth import render_contrast_frames, thumbnail_mad

    a, gt = render_contrast_frames(3, size=64, num_frames=20)
    b, _ = render_contrast_frames(3, size=64, num_frames=20)
    c, _ = render_contrast_frames(4, size=64, num_frames=20)
    assert a.shape == (20, 64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    pos = np.array(gt["positions"], dtype=float)
    # straight line at constant speed: every step is (about) the same displacement, within rounding
    steps = np.diff(pos, axis=0)
    assert np.abs(steps - steps.mean(axis=0)).max() <= 1.0
    x, y = gt["positions"][0]
    assert (a[0, y : y + gt["size"], x : x + gt["size"]] == 245).all()
    assert thumbnail_mad(a[0], a[-1]) > 2.0


def test_contrast_clip_written_and_bad_args(tmp_path):
    av = pytest.importorskip("av")
    from sf2t.synth import make_contrast_clip, render_contrast_frames

    gt = make_contrast_clip(tmp_path / "c.mp4", 1, size=64, num_frames=12)
    with av.open(gt["path"]) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    frames, _ = render_contrast_frames(1, size=64, num_frames=12)
    assert decoded.shape == frames.shape
    # Per-pixel colour noise cannot survive 4:2:0 chroma subsampling; luma does (crf 18).
    luma = lambda x: x.astype(float) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(luma(decoded) - luma(frames)).mean() < 3
    assert json.loads((tmp_path / "c.json").read_text())["positions"] == gt["positions"]
    with pytest.raises(ValueError, match="size"):
        make_contrast_clip(tmp_path / "d.mp4", 1, size=65)
    with pytest.raises(ValueError, match="num_frames"):
        render_contrast_frames(1, num_frames=1)


def test_slow_downs_off_speeds_every_change_up_and_draws_the_rest_alike():
    """``slow_downs=False`` (the demo's clips): every speed change speeds up, and a scene with no slow-down is the
    same ground truth either way (only the direction's stream is not used)."""
    from sf2t.synth import ground_truth

    kw = dict(width=112, height=112, fps=25, seconds=2.0, num_sprites=1, camera_pan=False, events=False)
    changes = same = 0
    for seed in range(60):
        off, on = ground_truth(seed, slow_downs=False, **kw), ground_truth(seed, **kw)
        factors = [sp["speed_change"]["factor"] for sp in off["sprites"] if sp["speed_change"]]
        changes += len(factors)
        assert all(f > 1 for f in factors), (seed, factors)
        if not any(sp["speed_change"] and sp["speed_change"]["factor"] < 1 for sp in on["sprites"]):
            assert off == on, seed
            same += 1
    assert changes >= 10 and 20 <= same < 60, (changes, same)


I64 = np.int64


@pytest.mark.parametrize(
    "call, refused",
    [
        # numpy integers (a sweep's np.arange, a header's fields) are taken, and come back as Python ints (JSON)
        (lambda p: ground_truth(I64(3), width=I64(64), height=I64(48), seconds=1, num_sprites=I64(2)), None),
        (lambda p: render_contrast_frames(I64(1), size=I64(32), num_frames=I64(3))[1], None),
        (lambda p: make_contrast_clip(p / "c.mp4", I64(1), size=I64(32), num_frames=I64(2), crf=I64(30)), None),
        # a numpy fps too, into the ground truth JSON as a Python number (np.int64 / np.float32 failed to write it)
        (lambda p: make_contrast_clip(p / "f.mp4", 1, size=32, num_frames=2, fps=I64(25)), None),
        (lambda p: make_contrast_clip(p / "h.webm", 1, size=32, num_frames=2, fps=np.float32(12.5), codec="vp9"), None),
        (lambda p: make_clip(p / "f.mp4", 0, fps=np.float32(10.0), **SMALL), None),
        (lambda p: make_clips(p, I64(0), seed=I64(4)), None),
        # bools (True was read as 1), floats and strings are refused, the argument named
        (lambda p: ground_truth(True, **SMALL), "seed must be a non-negative int, got the bool True"),
        (lambda p: ground_truth(0, num_sprites=True, **SMALL), "num_sprites must be an int, got the bool True"),
        (lambda p: ground_truth(0, num_sprites=2.0, **SMALL), "num_sprites must be an int, got float 2.0: pass 2"),
        (lambda p: render_contrast_frames(0, size=32, num_frames=True), "num_frames must be an int >= 2, got the bool"),
        (lambda p: render_contrast_frames(np.True_, size=32), "seed must be a non-negative int, got the bool np.True_"),
        (lambda p: make_clips(p, 1, seed=True), "seed must be a non-negative int, got the bool True"),
        (lambda p: make_clips(p, "2"), "n must be a non-negative int, got the string '2': pass the number 2"),
        (lambda p: encode_frames(p / "e.mp4", [], width=64, height=48, fps=25, crf=True), "crf must be a non-negative"),
        (lambda p: make_clip(p / "g.mp4", 0, gop=True, **SMALL), "gop must be a positive int, got the bool True"),
        (
            lambda p: make_contrast_clip(p / "b.mp4", 1, size=32, fps=True),
            "fps must be a positive finite number, got bool",
        ),
    ],
)
def test_integer_arguments_take_numpy_ints_and_refuse_bools(tmp_path, call, refused):
    if refused is None:
        gt = call(tmp_path)
        json.dumps(gt)  # Python ints in the ground truth: np.int64 is no JSON
        if isinstance(gt, dict) and "path" in gt:  # and the JSON written next to the clip says it back
            assert json.loads(Path(gt["path"]).with_suffix(".json").read_text()) == gt
    else:
        with pytest.raises(ValueError, match=re.escape(refused)):
            call(tmp_path)


@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(fps=math.inf), "fps must be a positive finite number, got float inf"),  # was an OverflowError
        (dict(fps=np.True_), "fps must be a positive finite number, got bool"),
        (dict(fps=0), "fps must be a positive finite number, got int 0"),
        (dict(seconds=True), "seconds must be a positive finite number, got bool True"),  # was read as 1 s
        (dict(seconds=math.nan), "seconds must be a positive finite number, got float nan"),
    ],
)
def test_scene_times_must_be_positive_finite_numbers(kw, words):
    from sf2t.synth.scene import check_args

    args = dict(seed=0, width=64, height=48, fps=25, seconds=1.0, num_sprites=None) | kw
    with pytest.raises(ValueError, match="^" + re.escape(words)):
        check_args(**args)
    assert check_args(0, 64, 48, np.float64(12.5), np.int64(2), None)[2:4] == (12.5, 25)
