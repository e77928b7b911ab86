"""The fragment tasks added for the task engine (consistency, localization, rearrangement, speed) next to counting
and disorder: over many seeded samples, the answer re-derived from ``meta`` and from the presented frames (matched
back to the source frames) equals the label; multiple-choice sets hold the answer once; distributions follow
docs/tasks.md; scorers and the reward entry point; config errors name the field."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random
import re
from collections import Counter

import numpy as np
import pytest
import torch

from sf2t.tasks import (
    TASK_CONFIGS,
    ConsistencyConfig,
    ConsistencyTask,
    LocalizationConfig,
    LocalizationTask,
    RearrangementConfig,
    RearrangementTask,
    SkipSample,
    SpeedConfig,
    SpeedTask,
    make_rng,
    make_task,
    partial_score,
    reward,
    score,
    templates,
    truth_text,
)
from sf2t.tasks.consistency import CELLS, cell_box, cell_mads
from sf2t.tasks.export import export, preview
from sf2t.tasks.rearrangement import positions_answer
from sf2t.tasks.scoring import kendall_score, parse_consistency, parse_positions, parse_span, parse_speed
from sf2t.video.probe import VideoInfo
from sf2t.video.sampler import WindowSampler

N, H, W = 64, 24, 36
ALL = ["counting", "consistency", "localization", "disorder", "rearrangement", "speed"]
ONE = [VideoInfo("a.mp4", N, 25.0, W, H, N / 25, "h264")]


@pytest.fixture(scope="module")
def videos():
    """Two in-memory 'videos' of distinct noise frames: presented frames can be matched to their source exactly."""
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (N, H, W, 3), dtype=torch.uint8, generator=g)
    b = torch.randint(0, 256, (40, 30, 40, 3), dtype=torch.uint8, generator=g)
    return {"a.mp4": a, "b.mp4": b}


def plan_on_a(task, videos, rng):
    """(plan on video a, the target frames from b for tasks that take one, else None)."""
    if getattr(task, "needs_other_video", False):
        plan = task.plan("a.mp4", N, rng, other=("b.mp4", videos["b.mp4"].shape[0]))
        return plan, [videos[p][k] for p, k in plan.extra]
    return task.plan("a.mp4", N, rng), None


def make(task, videos, index, seed=0):
    """Plan and build one sample of ``task`` on video a (target from b), as the samplers do."""
    rng = make_rng(seed, index, "t")
    src = videos["a.mp4"]
    for _ in range(20):
        plan, extra = plan_on_a(task, videos, rng)
        frames = src[plan.frame_ids]
        try:
            s = task.build(plan, frames, rng, extra=extra)
        except SkipSample as e:
            assert e.kind == "static"
            continue
        return plan, s, s.presented(frames)
    raise AssertionError("no sample in 20 tries")


def match_source(frame, video):
    """Index of the source frame equal to ``frame`` (noise frames are all distinct), or None."""
    eq = (video == frame[None]).flatten(1).all(dim=1).nonzero()
    return int(eq[0]) if len(eq) == 1 else None


@pytest.mark.parametrize("name", ALL)
def test_answer_rederived_from_meta_and_pixels(videos, name):
    task = make_task(name)
    a = videos["a.mp4"]
    for i in range(2000):  # thousands of seeded samples per task
        plan, s, shown = make(task, videos, i)
        m = s.meta
        assert m["task"] == name and m["source"] == "a.mp4"
        assert truth_text(m) == s.answer and score(name, s.answer, m) == 1.0
        assert shown.shape[1:] == (H, W, 3) and shown.dtype == torch.uint8
        matched = [match_source(f, a) for f in shown]
        if name in ("counting", "disorder", "rearrangement", "speed"):
            assert matched == m["source_frames"]  # presented pixels are exactly the source frames named in meta
        if name == "counting":
            assert m["answer"]["count"] == len(shown)
        elif name == "disorder":
            assert m["answer"]["in_order"] == (matched == sorted(matched))
        elif name == "rearrangement":
            order = sorted(range(len(matched)), key=lambda p: matched[p])  # presented positions, chronologically
            assert m["answer"]["positions"] == [p + 1 for p in order] and matched != sorted(matched)
        elif name == "speed":
            n1, n2 = m["params"]["parts"]
            p1, p2 = matched[:n1], matched[n1:]
            assert p1[0] == p2[0] and len(p2) == n2  # same start
            s1, s2 = p1[1] - p1[0], p2[1] - p2[0]
            assert all(b - a_ == s1 for a_, b in zip(p1, p1[1:])) and all(b - a_ == s2 for a_, b in zip(p2, p2[1:]))
            assert s2 / s1 in (0.5, 1.0, 2.0)
            assert m["answer"]["faster"] == ("first" if s1 > s2 else "second" if s2 > s1 else "same")
        elif name == "consistency":
            A, B = shown[0], shown[1]
            assert matched[0] == m["params"]["a"]
            diff = (A != B).any(dim=-1)  # [H, W]
            kind = m["answer"]["kind"]
            if kind == "identical":
                assert not diff.any()
            elif kind == "whole":
                assert matched[1] == m["params"]["j"] != m["params"]["a"]
            else:
                x0, y0, x1, y1 = cell_box(CELLS.index(m["answer"]["cell"]), H, W)
                outside = diff.clone()
                outside[y0:y1, x0:x1] = False
                assert not outside.any() and diff[y0:y1, x0:x1].any()
                assert torch.equal(B[y0:y1, x0:x1], a[m["params"]["j"], y0:y1, x0:x1])
        elif name == "localization":
            x0, y0, x1, y1 = m["params"]["paste_box"]
            target = s.image
            assert target.shape == (y1 - y0, x1 - x0, 3)
            has = [bool(torch.equal(f[y0:y1, x0:x1], target)) for f in shown]
            frames_with = [k + 1 for k, h in enumerate(has) if h]
            assert frames_with == list(range(m["answer"]["start"], m["answer"]["end"] + 1))
            for k, f in enumerate(shown):  # outside the paste, every presented frame is its source frame
                src = a[m["source_frames"][k]].clone()
                if has[k]:
                    src[y0:y1, x0:x1] = target
                assert torch.equal(f, src)
            tx0, ty0, tx1, ty1 = m["params"]["target_box"]
            assert m["params"]["target_source"] == "b.mp4" and tx1 - tx0 == ty1 - ty0


@pytest.mark.parametrize("name", ALL)
def test_multiple_choice_holds_the_answer_once(videos, name):
    task = make_task(name)
    for i in range(60):
        _, s, _ = make(task, videos, i)
        q, letter, options = templates.multiple_choice(name, s.meta, random.Random(i))
        assert len(options) == len(set(options)) >= 2
        assert sum(score(name, o, s.meta) for o in options) == 1.0
        assert score(name, options["ABCDEFGH".index(letter)], s.meta) == 1.0
        assert f"{letter}. " in q


@pytest.mark.parametrize("frames", [7, 10, 15, 64])
def test_speed_part_lengths_do_not_give_the_answer_away(frames):
    """The question states both parts' lengths: they must not depend on which part is faster. On short videos a cap
    per ratio made "the shorter part is the faster one" right 63 % of the time (chance 33 %)."""
    task = make_task("speed")
    by = {r: Counter() for r in ("first", "second", "same")}
    for i in range(3000):
        p = task.plan("v.mp4", frames, make_rng(5, i, "s"))
        s1, s2 = p.params["strides"]
        faster = "first" if s1 > s2 else "second" if s2 > s1 else "same"
        by[faster][(len(p.params["rows1"]), len(p.params["rows2"]))] += 1
    pairs = set().union(*by.values())
    for pair in pairs:  # the same length distribution under each answer
        shares = [by[r][pair] / max(1, sum(by[r].values())) for r in by]
        assert max(shares) - min(shares) < 0.05, (pair, shares)


def test_rearrangement_choices_never_offer_the_identity(videos):
    """The frames are always shuffled, so "1, 2, 3" is never right: as an option it could be ruled out unseen."""
    task = make_task("rearrangement")
    for i in range(80):
        _, s, _ = make(task, videos, i)
        n = len(s.meta["answer"]["positions"])
        _, _, options = templates.multiple_choice("rearrangement", s.meta, random.Random(i))
        assert ", ".join(str(k) for k in range(1, n + 1)) not in options and len(options) == 4


@pytest.mark.parametrize("name", ALL)
def test_paraphrases(name):
    qs = templates.QUESTIONS[name]
    assert len(set(qs)) >= 3
    seen = {templates.question(name, random.Random(i), n1=4, n2=5)[0] for i in range(200)}
    assert len(seen) == len(qs)


def _within(counts: Counter, probs: dict, n: int, sigmas: float = 5.0):
    for k, p in probs.items():
        sd = math.sqrt(n * p * (1 - p))
        assert abs(counts[k] - n * p) <= sigmas * sd + 1, (k, counts[k], n * p)


def test_class_balance(videos):
    n = 900
    cons = Counter(make(make_task("consistency"), videos, i)[1].meta["answer"]["kind"] for i in range(n))
    _within(cons, {"identical": 1 / 3, "cell": 1 / 3, "whole": 1 / 3}, n)
    speed = Counter(make(make_task("speed"), videos, i)[1].meta["answer"]["faster"] for i in range(n))
    _within(speed, {"first": 1 / 3, "second": 1 / 3, "same": 1 / 3}, n)
    dis = Counter(make(make_task("disorder"), videos, i)[1].meta["answer"]["in_order"] for i in range(n))
    _within(dis, {True: 1 / 2, False: 1 / 2}, n)


def test_consistency_stays_balanced_where_pairs_fail():
    """A video whose frames differ only in one corner in their first half and not at all in the second: many pairs
    fail the cell check, most the whole-frame check. "Identical." and a cell must stay equally likely (a pair that
    failed the cell check still served "identical", so its share grew with the failures), "whole" may only fall
    short; and a still video gives no sample at all, of any kind (it gave "Identical." only)."""
    g = torch.Generator().manual_seed(1)
    n = 64
    v = torch.full((n, 48, 48, 3), 100, dtype=torch.uint8)
    v[: n // 2, :16, :16] = torch.randint(0, 256, (n // 2, 16, 16, 3), dtype=torch.uint8, generator=g)
    task = make_task("consistency")
    kinds, failed = Counter(), 0
    for i in range(1500):
        rng = make_rng(0, i, "c")
        plan = task.plan("v.mp4", n, rng)
        try:
            kinds[task.build(plan, v[plan.frame_ids], rng).meta["answer"]["kind"]] += 1
        except SkipSample as e:
            assert e.kind in ("static", "no_whole_change")
            failed += 1
    assert failed > 300  # the video does make pairs fail
    pair = kinds["identical"] + kinds["cell"]
    _within(Counter(identical=kinds["identical"], cell=kinds["cell"]), {"identical": 0.5, "cell": 0.5}, pair)
    assert kinds["whole"] <= kinds["cell"]
    still = torch.full((n, 48, 48, 3), 100, dtype=torch.uint8)
    for i in range(30):
        rng = make_rng(0, i, "s")
        plan = task.plan("still.mp4", n, rng)  # every kind, each plan trying ``tries`` frames j
        with pytest.raises(SkipSample, match="no cell differs"):
            task.build(plan, still[plan.frame_ids], rng)


def _sprite_video(n: int = 64, size: int = 48, side: int = 8, amp: int = 8, period: int = 20) -> torch.Tensor:
    """A still grey background and one small white square (side 8 of 48: 3 % of the frame) swinging left and right:
    every pair of frames a few apart changes a cell, but only pairs with the square far apart reach whole-frame MAD
    8 (about half of them)."""
    v = torch.full((n, size, size, 3), 100, dtype=torch.uint8)
    for t in range(n):
        x = size // 2 - side // 2 + round(amp * math.sin(2 * math.pi * t / period))
        v[t, 20 : 20 + side, x : x + side] = 255
    return v


def _consistency_kinds(task, v, n, seed=0):
    """Answers of ``n`` samples drawn as ``SampleFactory`` does (a SkipSample re-plans on the same video, same rng)."""
    out = []
    for i in range(n):
        rng = make_rng(seed, i, "sprite")
        for _ in range(8):
            plan = task.plan("sprite.mp4", v.shape[0], rng)
            try:
                s = task.build(plan, v[plan.frame_ids], rng)
            except SkipSample as e:
                assert e.kind in ("static", "no_whole_change")
                continue
            out.append(
                (s.meta["answer"]["kind"], s.meta["answer"]["cell"], s.meta["params"]["a"], s.meta["params"]["j"])
            )
            break
    return out


def test_consistency_balanced_on_a_small_sprite_over_a_still_background():
    """Small objects on a still background: fewer pairs reach the whole-frame MAD than change a cell. With one pair
    per plan, a "whole" plan that failed was re-drawn as any kind, so "whole" fell to ~20 % (identical and cell ~40 %
    each); the drawn kind is now tried on every pair of the plan's frames, which keeps the three at 1/3. Same seed,
    same samples."""
    v = _sprite_video()
    task = make_task("consistency")
    n = 900
    got = _consistency_kinds(task, v, n)
    assert len(got) == n
    _within(Counter(k for k, *_ in got), {"identical": 1 / 3, "cell": 1 / 3, "whole": 1 / 3}, n)
    for kind, cell, a, j in got:  # the presented pair does qualify for its kind
        cells, whole = cell_mads(v[a], v[j])
        assert float(cells.max()) >= 8.0 and (kind != "whole" or whole >= 8.0)
        assert kind != "cell" or float(cells[CELLS.index(cell)]) >= 8.0
    assert _consistency_kinds(make_task("consistency"), v, 100) == got[:100]


def test_consistency_never_drops_a_moving_video_that_cannot_give_whole():
    """A small sprite whose pairs never reach the whole-frame MAD: a drawn "whole" skips as ``no_whole_change``
    (not "static"), and the sample factory draws again instead of counting it as a still window. Counted as one,
    ``max_resample`` such draws in a row (1 in 3 each) dropped the video from consistency for good, so a long run
    lost every such video sooner or later."""
    from sf2t.train.data import SampleFactory, VideoPool
    from sf2t.video.probe import VideoInfo

    v = _sprite_video(size=48, side=4, amp=3)
    task = make_task("consistency")
    plan = task.plan("sprite.mp4", v.shape[0], make_rng(0, 0, "w"))
    with pytest.raises(SkipSample) as e:  # a "whole" plan on this video
        while plan.params["kind"] != "whole":
            plan = task.plan("sprite.mp4", v.shape[0], make_rng(0, plan.frame_ids[0] + 1, "w"))
        task.build(plan, v[plan.frame_ids], random.Random(0))
    assert e.value.kind == "no_whole_change" and "whole-frame MAD" in e.value.reason

    class Store:
        def get(self, info, ids):
            return v[list(ids)]

    info = VideoInfo("sprite.mp4", v.shape[0], 25.0, v.shape[2], v.shape[1], v.shape[0] / 25, "h264")
    pool = VideoPool(infos=[info])
    f = SampleFactory(pool, {"consistency": task}, None, store=Store(), max_resample=2)
    kinds = Counter(f.task_sample(i)[0].meta["answer"]["kind"] for i in range(150))
    assert not pool.skipped and pool.usable("consistency") == [info]
    assert set(kinds) == {"identical", "cell"}


def test_rearrangement_permutations_uniform(videos):
    task = RearrangementTask(RearrangementConfig(count_min=3, count_max=3))
    n = 1000
    perms = Counter(tuple(make(task, videos, i)[1].meta["params"]["permutation"]) for i in range(n))
    expected = [p for p in itertools.permutations(range(3)) if p != (0, 1, 2)]
    assert set(perms) == set(expected)
    _within(perms, {p: 1 / 5 for p in expected}, n)


def test_counts_uniform(videos):
    n = 1000
    f = Counter(make(make_task("localization"), videos, i)[1].meta["params"]["num_frames"] for i in range(n))
    _within(f, {k: 1 / 7 for k in range(6, 13)}, n)
    spans = [make(make_task("localization"), videos, i)[1].meta["answer"] for i in range(300)]
    assert all(1 <= s["start"] <= s["end"] for s in spans)


def test_localization_spans_uniform():
    """Every span a..b of the F presented frames is equally likely (a then b in a..F made late and one-frame spans
    several times likelier, so "the last frame" was right far above chance without looking)."""
    task = LocalizationTask(LocalizationConfig(count_min=6, count_max=6))
    n = 4200
    spans = Counter(
        tuple(task.plan("a.mp4", 64, make_rng(3, i, "l"), other=("b.mp4", 40)).params["span"]) for i in range(n)
    )
    every = [(a, b) for a in range(1, 7) for b in range(a, 7)]
    assert set(spans) == set(every)
    _within(spans, {s: 1 / len(every) for s in every}, n)
    assert abs(task.chance() - 1 / len(every)) < 1e-12


def test_task_mix_follows_weights(videos):
    from sf2t.video.probe import VideoInfo
    from sf2t.video.sampler import plan_window

    infos = [VideoInfo(p, v.shape[0], 25.0, v.shape[2], v.shape[1], v.shape[0] / 25, "h264") for p, v in videos.items()]
    tasks = {n: make_task(n) for n in ("counting", "speed", "localization")}
    got = Counter()
    for w in range(400):
        wp = plan_window(
            w, infos, tasks, make_rng(0, w, "mix"), samples_per_window=4, window_frames=40, weights=[0.5, 0.25, 0.25]
        )
        got.update(p.task for p in wp.plans)
        for p in wp.plans:
            if p.task == "localization":
                assert p.extra[0][0] != wp.video.path  # the target comes from the other video
    _within(got, {"counting": 0.5, "speed": 0.25, "localization": 0.25}, sum(got.values()))


@pytest.mark.parametrize(
    "name, text, meta, exact, partial",
    [
        ("consistency", "Identical.", {"answer": {"kind": "identical", "cell": None}}, 1, 1),
        ("consistency", "they are the same", {"answer": {"kind": "identical", "cell": None}}, 1, 1),
        ("consistency", "Different: top-left.", {"answer": {"kind": "cell", "cell": "top-left"}}, 1, 1),
        ("consistency", "The upper left corner differs", {"answer": {"kind": "cell", "cell": "top-left"}}, 1, 1),
        ("consistency", "different in the centre", {"answer": {"kind": "cell", "cell": "center"}}, 1, 1),
        ("consistency", "Different: top.", {"answer": {"kind": "cell", "cell": "top-left"}}, 0, 0),
        ("consistency", "the whole frame changed", {"answer": {"kind": "whole", "cell": None}}, 1, 1),
        ("consistency", "Identical.", {"answer": {"kind": "whole", "cell": None}}, 0, 0),
        ("localization", "Frames 3-5.", {"answer": {"start": 3, "end": 5}}, 1, 1),
        ("localization", "it appears in frames 3 to 5", {"answer": {"start": 3, "end": 5}}, 1, 1),
        ("localization", "Frames 4-5.", {"answer": {"start": 3, "end": 5}}, 0, 2 / 3),
        ("localization", "Frames 7-9.", {"answer": {"start": 3, "end": 5}}, 0, 0),
        ("localization", "frame 4", {"answer": {"start": 4, "end": 4}}, 1, 1),
        ("rearrangement", "2, 4, 1, 3", {"answer": {"positions": [2, 4, 1, 3]}}, 1, 1),
        ("rearrangement", "The order is 2 4 1 3.", {"answer": {"positions": [2, 4, 1, 3]}}, 1, 1),
        ("rearrangement", "4, 2, 1, 3", {"answer": {"positions": [2, 4, 1, 3]}}, 0, 5 / 6),
        ("rearrangement", "1, 1, 1, 1", {"answer": {"positions": [2, 4, 1, 3]}}, 0, 0),
        ("speed", "first", {"answer": {"faster": "first"}}, 1, 1),
        ("speed", "The second part is faster.", {"answer": {"faster": "second"}}, 1, 1),
        ("speed", "They play at equal speed", {"answer": {"faster": "same"}}, 1, 1),
        ("speed", "second", {"answer": {"faster": "first"}}, 0, 0),
        # a negation is not the answer it negates; two cells named are no cell; a clause decides the speed
        ("consistency", "They are not identical.", {"answer": {"kind": "identical", "cell": None}}, 0, 0),
        ("consistency", "No, they aren't the same", {"answer": {"kind": "identical", "cell": None}}, 0, 0),
        ("consistency", "Different: center-left.", {"answer": {"kind": "cell", "cell": "center"}}, 0, 0),
        ("consistency", "Different: center-left.", {"answer": {"kind": "cell", "cell": "left"}}, 0, 0),
        ("localization", "From frame 3 to frame 5.", {"answer": {"start": 3, "end": 5}}, 1, 1),
        ("speed", "The first part is slower, the second faster", {"answer": {"faster": "second"}}, 1, 1),
        ("speed", "The second one is slower than the first", {"answer": {"faster": "first"}}, 1, 1),
        ("speed", "the first is faster than the second", {"answer": {"faster": "first"}}, 1, 1),
        ("counting", "7.5", {"answer": {"count": 7}}, 0, 0),
        ("counting", "12.0 frames", {"answer": {"count": 12}}, 1, 1),
    ],
)
def test_scorers(name, text, meta, exact, partial):
    meta = {"task": name, **meta}
    assert score(name, text, meta) == exact
    assert partial_score(name, text, meta) == pytest.approx(partial)


def test_parsers_and_kendall():
    assert parse_consistency("nothing to see") is None
    assert parse_span("no idea") is None and parse_positions("none") is None and parse_speed("dunno") is None
    assert kendall_score([1, 2, 3], [1, 2, 3]) == 1.0 and kendall_score([3, 2, 1], [1, 2, 3]) == 0.0
    assert positions_answer((2, 0, 1)) == [2, 3, 1]  # presented (frame 3, frame 1, frame 2)


def test_reward_entry_point():
    metas = [
        {"task": "counting", "answer": {"count": 5}, "params": {}},
        {"task": "speed", "answer": {"faster": "same"}},
    ]
    assert reward(["5", "first"], metas) == [1.0, 0.0]
    chat = [[{"role": "assistant", "content": "There are 4 frames."}], [{"role": "assistant", "content": "same"}]]
    assert reward(chat, metas) == [0.0, 1.0]
    assert reward(chat, metas, partial=True) == [pytest.approx(0.8), 1.0]
    assert reward(completions=["5"], meta=metas[:1], prompts=["q"]) == [1.0]  # TRL passes columns as kwargs
    with pytest.raises(ValueError, match="completions"):
        reward(["5"], metas)


@pytest.mark.parametrize(
    "cls, cfg, field",
    [
        (ConsistencyTask, ConsistencyConfig(gap_min=0), "gap_min"),
        (ConsistencyTask, ConsistencyConfig(gap_min=5, gap_max=3), "gap_max"),
        (ConsistencyTask, ConsistencyConfig(candidate_frames=1), "candidate_frames"),
        (LocalizationTask, LocalizationConfig(count_min=-1), "count_min"),
        (LocalizationTask, LocalizationConfig(side_min=0.5, side_max=0.4), "side_min"),
        (RearrangementTask, RearrangementConfig(count_max=9), "count_max"),
        (SpeedTask, SpeedConfig(count_min=5, count_max=4), "count_max"),
        (SpeedTask, SpeedConfig(stride_min=0), "stride_min"),
    ],
)
def test_bad_configs_name_the_field(cls, cfg, field):
    with pytest.raises(ValueError, match=field):
        cls(cfg)


@pytest.mark.parametrize("name", ["counting", "disorder", "rearrangement", "speed", "localization", "consistency"])
def test_config_ints_take_numpy_ints_and_refuse_bools(name):
    """A config's int fields take numpy integers (a sweep's np.arange) and keep Python ints (a plan's params are
    JSON); a bool (True read as 1) is refused with the field named; the counts and strides of every task checked."""
    cls = TASK_CONFIGS[name]
    ints = {f.name: f.default for f in dataclasses.fields(cls) if type(f.default) is int}
    task = make_task(name, cls(**{k: np.int64(v) for k, v in ints.items()}))
    assert {k: (type(getattr(task.cfg, k)), getattr(task.cfg, k)) for k in ints} == {
        k: (int, v) for k, v in ints.items()
    }
    for k in ints:
        with pytest.raises(ValueError, match=f"{name}: {k} must be an int.*, got the bool True"):
            make_task(name, cls(**{k: True}))
    lo = "count_min" if "count_min" in ints else "gap_min"
    with pytest.raises(ValueError, match=f"{name}: {lo} must be an int, got float 3.0: pass 3"):
        make_task(name, cls(**{lo: 3.0}))
    if "stride_min" in ints:  # (counting and disorder did not check their strides)
        with pytest.raises(ValueError, match=f"{name}: need 1 <= stride_min <= stride_max, got stride_min=0"):
            make_task(name, cls(stride_min=0))


@pytest.mark.parametrize(
    "call, refused",
    [
        (lambda p: export(str(p / "m.jsonl"), p / "out", num=True), "num must be a positive int, got the bool True"),
        (
            lambda p: export("m.jsonl", p / "o", num=2, frame_repeat=2.0),
            "frame_repeat must be a positive int, got float",
        ),
        (
            lambda p: export("m.jsonl", p / "o", num=2, max_windows=True),
            "max_windows must be a positive int, got the bool",
        ),
        (
            lambda p: preview("m.jsonl", "counting", p / "a.png", num=np.True_),
            "num must be a positive int, got the bool",
        ),
        (
            lambda p: WindowSampler(ONE, samples_per_window=True),
            "samples_per_window must be a positive int, got the bool",
        ),
        (
            lambda p: WindowSampler(ONE, window_frames=64.0),
            "window_frames must be a positive int, got float 64.0: pass 64",
        ),
        (lambda p: WindowSampler(ONE, seed=False), "seed must be an int, got the bool False"),
    ],
)
def test_export_and_sampler_ints_refuse_bools(tmp_path, call, refused):
    with pytest.raises(ValueError, match=re.escape(refused)):
        call(tmp_path)


def test_sampler_takes_numpy_ints():
    s = WindowSampler(ONE * 2, seed=np.int64(3), samples_per_window=np.int64(2), window_frames=np.int64(32))
    assert [(type(v), v) for v in (s.seed, s.samples_per_window, s.window_frames)] == [(int, 3), (int, 2), (int, 32)]


def test_localization_needs_two_videos(videos):
    from sf2t.video.probe import VideoInfo
    from sf2t.video.sampler import WindowSampler

    one = [VideoInfo("a.mp4", N, 25.0, W, H, N / 25, "h264")]
    with pytest.raises(ValueError, match="only one usable video"):
        WindowSampler(one, ["counting", "localization"])
    with pytest.raises(ValueError, match="second video"):
        make_task("localization").plan("a.mp4", N, random.Random(0))


def test_too_short_videos_skip_with_reason():
    for name, n in (("speed", 6), ("consistency", 3), ("localization", 4), ("rearrangement", 2)):
        t = make_task(name)
        with pytest.raises(SkipSample) as e:
            if name == "localization":
                t.plan("x.mp4", n, random.Random(0), other=("y.mp4", 10))
            else:
                t.plan("x.mp4", n, random.Random(0))
        assert e.value.kind == "too_short" and "too short" in e.value.reason


def test_window_too_small_for_a_task_is_an_error_before_work():
    from sf2t.video.probe import VideoInfo
    from sf2t.video.sampler import WindowSampler

    vids = [VideoInfo(f"{c}.mp4", N, 25.0, W, H, N / 25, "h264") for c in "ab"]
    with pytest.raises(ValueError, match="'speed' needs at least 7 frames"):
        WindowSampler(vids, ["counting", "speed"], window_frames=6)
    with pytest.raises(ValueError, match="count_min"):
        WindowSampler(
            vids,
            {
                "counting": make_task(
                    "counting", __import__("sf2t.tasks").tasks.CountingConfig(count_min=20, count_max=20)
                )
            },
            window_frames=16,
        )


@pytest.mark.parametrize("name", ["consistency", "localization"])
def test_shared_frames_build_equals_own_copy(videos, name):
    """The window sampler's path (``rows=`` into a decode shared by several samples, read in place) shows the
    same pixels, asks the same and leaves the shared frames untouched."""
    task = make_task(name)
    a = videos["a.mp4"]
    kinds = set()
    for i in range(80):
        rng = make_rng(7, i, "shared")
        plan, extra = plan_on_a(task, videos, rng)
        state = rng.getstate()
        try:
            own = task.build(plan, a[plan.frame_ids], rng, extra=extra)
        except SkipSample:
            continue
        # the shared decode: the plan's frames at scattered rows among other frames
        shared = a.flip(0).clone()
        rows = [N - 1 - f for f in plan.frame_ids]
        before = shared.clone()
        rng.setstate(state)
        got = task.build(plan, shared, rng, extra=extra, rows=rows)
        assert torch.equal(shared, before)  # read only
        assert (got.question, got.answer, got.meta) == (own.question, own.answer, own.meta)
        assert torch.equal(got.presented(shared), own.presented(a[plan.frame_ids]))
        kinds.add(got.meta["answer"].get("kind", "pasted"))
    assert kinds == ({"identical", "cell", "whole"} if name == "consistency" else {"pasted"})


@pytest.mark.parametrize("s,side", [(40, 13), (57, 19), (12, 12 * 2 + 5), (31, 30), (9, 1)])
def test_localization_target_resize_is_pils_bilinear(s, side):
    """The target's resize (fixed-point weights, exact in float64 on any device) is PIL's bilinear resize (a
    triangle filter widened when shrinking) to within one uint8 step; a flat image stays flat."""
    import numpy as np
    from PIL import Image

    from sf2t.tasks.localization import resize_square

    g = torch.Generator().manual_seed(s * 100 + side)
    img = torch.randint(0, 256, (s, s, 3), dtype=torch.uint8, generator=g)
    got = resize_square(img, side)
    assert got.shape == (side, side, 3) and got.dtype == torch.uint8
    pil = torch.from_numpy(np.array(Image.fromarray(img.numpy()).resize((side, side), Image.BILINEAR)))
    diff = (got.int() - pil.int()).abs()
    assert int(diff.max()) <= 1, int(diff.max())
    flat = torch.full((s, s, 3), 77, dtype=torch.uint8)
    assert bool((resize_square(flat, side) == 77).all())
