"""sf2t.tasks: planners and builders follow docs/tasks.md; meta re-derives the answer; guard; templates; scoring.

Randomised properties are checked statistically over many (seed, index) pairs, not on one frozen draw.
"""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest
import torch

from sf2t.finevidbench.choice import ANSWER_LINE
from sf2t.tasks import (
    CountingConfig,
    CountingTask,
    DisorderConfig,
    DisorderTask,
    SkipSample,
    make_rng,
    make_task,
    parse_count,
    parse_yes_no,
    partial_score,
    score,
    templates,
    truth_text,
)
from sf2t.tasks.disorder import allowed_permutations
from sf2t.tasks.guard import consecutive_mad, pairwise_mad, passes_motion, thumbnails

synth = pytest.importorskip("sf2t.synth")
N_FRAMES = 75


@pytest.fixture(scope="module")
def video():
    """In-memory frames of a synthetic clip (the builders only see decoded frames)."""
    frames, gt = synth.render_frames(3, width=96, height=72, seconds=3.0, num_sprites=2, camera_pan=False)
    assert len(frames) == N_FRAMES
    return torch.from_numpy(frames), gt


def _sample(task, frames, index, seed=0):
    """Plan and build like the data builder: a window that fails the motion guard is redrawn."""
    rng = make_rng(seed, index)
    for _ in range(20):
        plan = task.plan("clip.mp4", frames.shape[0], rng)
        try:
            return plan, task.build(plan, frames[plan.frame_ids], rng)
        except SkipSample as e:
            assert e.kind == "static"
    raise AssertionError("no window passed the guard in 20 tries")


def test_make_rng_is_keyed_and_stable():
    a = [make_rng(1, i).random() for i in range(5)]
    assert a == [make_rng(1, i).random() for i in range(5)]
    assert len(set(a)) == 5
    assert make_rng(1, 0).random() != make_rng(2, 0).random()
    assert make_rng(0, 0, "train").random() != make_rng(0, 0, "eval").random()


# -- counting


def test_counting_follows_tasks_md(video):
    frames, _ = video
    task = CountingTask()
    counts = Counter()
    for i in range(600):
        plan, s = _sample(task, frames, i)
        f = s.meta["params"]["num_frames"]
        counts[f] += 1
        assert 2 <= f <= 16
        src = s.meta["source_frames"]
        assert len(src) == f == s.num_presented
        assert all(0 <= k < N_FRAMES for k in src)
        assert len({b - a for a, b in zip(src, src[1:])}) <= 1  # uniform stride
        assert s.answer == f"{f}" == truth_text(s.meta)
        assert s.meta["answer"] == {"count": f}
        assert set(s.meta) >= {"source", "source_frames", "task", "params", "answer"}
        assert s.question in templates.QUESTIONS["counting"]
        assert score("counting", s.answer, s.meta) == 1.0
    # F ~ U[2, 16]: every value appears and none is far from 600/15 = 40 (5 sigma ~ 30)
    assert set(counts) == set(range(2, 17))
    assert all(abs(c - 40) < 30 for c in counts.values())


def test_counting_short_video_and_config():
    task = CountingTask(CountingConfig(count_min=3, count_max=5))
    with pytest.raises(SkipSample, match="too short") as e:
        task.plan("short.mp4", 2, random.Random(0))
    assert e.value.kind == "too_short" and "short.mp4" in str(e.value)
    # a video just long enough: F is capped by its length
    plan = task.plan("ok.mp4", 3, random.Random(0))
    assert plan.frame_ids == [0, 1, 2]
    assert task.chance() == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        CountingTask(CountingConfig(count_min=5, count_max=3))


# -- disorder


def test_disorder_follows_tasks_md(video):
    frames, _ = video
    task = DisorderTask()
    n_shuffled, sizes = 0, Counter()
    n = 600
    for i in range(n):
        plan, s = _sample(task, frames, i)
        f = s.meta["params"]["num_frames"]
        sizes[f] += 1
        assert 4 <= f <= 8
        perm = s.meta["params"]["permutation"]
        src = s.meta["source_frames"]
        assert sorted(perm) == list(range(f)) and s.src_index == perm
        assert src == [plan.frame_ids[p] for p in perm]
        in_order = src == sorted(src)
        assert s.meta["answer"] == {"in_order": in_order}  # re-derivable from meta alone
        assert s.answer == ("Yes." if in_order else "No.") == truth_text(s.meta)
        if not in_order:
            n_shuffled += 1
            mad = pairwise_mad(frames[plan.frame_ids])
            moved = [j for j in range(f) if perm[j] != j]
            assert moved and all(float(mad[perm[j], j]) >= task.cfg.tau_motion for j in moved)
    # p = 0.5: within 5 sigma (sigma = sqrt(n)/2 ~ 12)
    assert abs(n_shuffled - n / 2) < 5 * math.sqrt(n) / 2
    assert set(sizes) == set(range(4, 9))


@pytest.mark.parametrize("mode", ["any", "no_reverse", "strong"])
def test_disorder_permutation_modes(mode):
    for f in range(4, 9):
        perms = allowed_permutations(f, mode)
        ident, rev = tuple(range(f)), tuple(range(f))[::-1]
        assert ident not in perms and perms
        if mode == "any":
            assert len(perms) == math.factorial(f) - 1
        else:
            assert rev not in perms
        if mode == "strong":
            assert all(abs(p[i + 1] - p[i]) != 1 for p in perms for i in range(f - 1))
    with pytest.raises(ValueError):
        DisorderTask(DisorderConfig(count_min=3, perm="strong"))
    with pytest.raises(ValueError):
        DisorderTask(DisorderConfig(perm="bogus"))


def test_disorder_static_window_is_rejected():
    frames = torch.full((6, 40, 50, 3), 90, dtype=torch.uint8)
    task = DisorderTask()
    plan = task.plan("static.mp4", 6, random.Random(0))
    with pytest.raises(SkipSample, match="no visible motion") as e:
        task.build(plan, frames[plan.frame_ids], random.Random(0))
    assert e.value.kind == "static" and "static.mp4" in str(e.value)


def test_disorder_p_shuffle_extremes(video):
    frames, _ = video
    for p, expect in ((0.0, True), (1.0, False)):
        task = DisorderTask(DisorderConfig(p_shuffle=p))
        assert all(_sample(task, frames, i)[1].meta["answer"]["in_order"] is expect for i in range(30))


# -- guard


def test_guard_matches_synth_thumbnail_mad(video):
    frames, _ = video
    sub = frames[:6]
    ours = consecutive_mad(sub)
    ref = [synth.thumbnail_mad(sub[i].numpy(), sub[i + 1].numpy()) for i in range(5)]
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-4, atol=1e-4)
    assert thumbnails(sub).shape[1:] == (64, 85)
    ok, m = passes_motion(sub)
    assert ok and m > 2.0
    ok, m = passes_motion(sub[[0, 0]])
    assert not ok and m == 0.0
    pm = pairwise_mad(sub)
    assert torch.allclose(pm, pm.T) and float(pm.diagonal().abs().max()) == 0.0


def test_guard_rows_and_shared_pairs(video):
    """passes_motion over chosen rows (speed's parts) and through a PairMAD (shared with the permutation draw) gives
    the MADs of the pairs it names, from the thumbnails in any float dtype; a repeated frame is static."""
    from sf2t.tasks.guard import PairMAD

    frames, _ = video
    t = thumbnails(frames[:6])
    pm = pairwise_mad(thumbs=t)
    rows = [0, 2, 5, 3]
    want = min(float(pm[a, b]) for a, b in zip(rows[:-1], rows[1:]))
    for thumbs in (t, t.double(), PairMAD(t)):
        ok, m = passes_motion(None, thumbs=thumbs, rows=rows)
        assert ok == (want >= 2.0) and m == pytest.approx(want, rel=1e-5)
    mad = PairMAD(t)
    passes_motion(None, thumbs=mad, rows=rows)
    assert set(mad.cache) == {(0, 2), (2, 5), (3, 5)}  # cached for a later permutation check
    assert passes_motion(None, thumbs=t, rows=[1, 1])[1] == 0.0


# -- templates and scoring


@pytest.mark.parametrize("task", ["counting", "disorder"])
def test_paraphrases(task):
    qs = templates.QUESTIONS[task]
    assert len(set(qs)) >= 3
    seen = {templates.question(task, random.Random(i))[0] for i in range(100)}
    assert seen == set(qs)


def test_multiple_choice(video):
    frames, _ = video
    for name in ("counting", "disorder"):
        for i in range(20):
            _, s = _sample(make_task(name), frames, i)
            q, letter, options = templates.multiple_choice(name, s.meta, random.Random(i))
            assert f"{letter}. " in q and q.splitlines()[-1] == ANSWER_LINE  # (what parse_choice reads: sf2t eval's)
            correct = options["ABCD".index(letter)]
            assert score(name, correct, s.meta) == 1.0
            assert sum(score(name, o, s.meta) for o in options) == 1.0


@pytest.mark.parametrize(
    "text, value",
    [
        ("7", 7),
        (" 12 ", 12),
        ("There are 9 frames.", 9),
        ("FIVE", 5),
        ("eleven frames", 11),
        ("none", None),
        ("", None),
    ],
)
def test_parse_count(text, value):
    assert parse_count(text) == value


@pytest.mark.parametrize(
    "text, value",
    [
        ("Yes.", True),
        ("yes", True),
        ("  NO. ", False),
        ("No, they are shuffled", False),
        ("Yes it is", True),
        ("nothing", None),
        ("maybe", None),
    ],
)
def test_parse_yes_no(text, value):
    assert parse_yes_no(text) is value


def test_degenerate_long_numbers_score_zero():
    """A generation of thousands of digits (RL rollouts produce them) scores 0; it once raised Python's 4300-digit
    int limit and took the whole reward batch down."""
    from sf2t.tasks.scoring import reward

    digits = "1" * 5000
    assert reward([digits, "7"], {"task": "counting", "answer": {"count": 7}}) == [0.0, 1.0]
    assert reward([digits], {"task": "counting", "answer": {"count": 7}}, partial=True) == [0.0]
    loc = {"task": "localization", "answer": {"start": 1, "end": 3}}
    assert reward([f"frames {digits} to 3", f"frame {digits}"], loc, partial=True) == [0.0, 0.0]
    rea = {"task": "rearrangement", "answer": {"positions": [2, 3, 1]}}
    assert reward([f"2, {digits}, 1"], rea) == [0.0]
    assert parse_count("-" + digits) == -(10**18)


def test_score_and_partial():
    meta = {"task": "counting", "answer": {"count": 8}, "params": {}}
    assert score("counting", "8", meta) == 1.0
    assert score("counting", "I count 8 frames", meta) == 1.0
    assert score("counting", "9", meta) == 0.0
    assert partial_score("counting", "6", meta) == pytest.approx(0.75)
    assert partial_score("counting", "30", meta) == 0.0
    assert partial_score("counting", "?", meta) == 0.0
    dmeta = {"task": "disorder", "answer": {"in_order": False}}
    assert score("disorder", "no.", dmeta) == 1.0
    assert score("disorder", "Yes.", dmeta) == 0.0
    assert score("disorder", "", dmeta) == 0.0
    with pytest.raises(ValueError):
        score("disorder", "Yes.", meta)


# -- the asked form (in_form)


def _every_answer():
    """A meta for every answer each task can have: counts 1-40, both orders, every region, every span in 16 frames,
    every order of 2-5 frames, every speed answer."""
    import itertools

    from sf2t.tasks import TASKS
    from sf2t.tasks.consistency import CELLS

    metas = [{"task": "counting", "answer": {"count": n}} for n in range(1, 41)]
    metas += [{"task": "disorder", "answer": {"in_order": b}} for b in (True, False)]
    metas += [{"task": "consistency", "answer": {"kind": k, "cell": None}} for k in ("identical", "whole")]
    metas += [{"task": "consistency", "answer": {"kind": "cell", "cell": c}} for c in CELLS]
    metas += [{"task": "localization", "answer": {"start": a, "end": b}} for a in range(1, 17) for b in range(a, 17)]
    metas += [
        {"task": "rearrangement", "answer": {"positions": list(p)}}
        for n in range(2, 6)
        for p in itertools.permutations(range(1, n + 1))
    ]
    metas += [{"task": "speed", "answer": {"faster": f}} for f in ("first", "second", "same")]
    assert {m["task"] for m in metas} == set(TASKS)  # every task sf2t has
    return metas


def test_every_canonical_answer_is_in_form():
    """Each task's canonical answer (truth_text: the templates' *_answer, what the tasks train on) is in the asked
    form, also with surrounding whitespace or a trailing newline; so is a wrong answer written in that form."""
    from sf2t.tasks.scoring import in_form

    metas = _every_answer()
    for meta in metas:
        task, text = meta["task"], truth_text(meta)
        assert score(task, text, meta) == 1.0, text
        assert in_form(task, text, meta) and in_form(task, f" {text}\n", meta), text
    assert in_form("counting", "8", {"task": "counting", "answer": {"count": 7}})  # wrong, in form
    assert in_form("localization", "Frames 5-3.", {"task": "localization", "answer": {"start": 3, "end": 5}})


@pytest.mark.parametrize(
    "task, answer, text",
    [
        ("counting", {"count": 7}, "There are 7 frames."),
        ("counting", {"count": 7}, "7 frames, I think"),
        ("counting", {"count": 7}, "**7**"),
        ("counting", {"count": 7}, "seven"),
        ("counting", {"count": 7}, "07"),
        ("counting", {"count": 7}, "7."),
        ("counting", {"count": 7}, "Final answer: 7"),
        ("disorder", {"in_order": True}, "Yes"),
        ("disorder", {"in_order": True}, "yes."),
        ("disorder", {"in_order": False}, "No, they are shuffled."),
        ("consistency", {"kind": "identical", "cell": None}, "identical"),
        ("consistency", {"kind": "cell", "cell": "top-left"}, "Different: top left."),
        ("consistency", {"kind": "cell", "cell": "top-left"}, "The top-left cell changed."),
        ("consistency", {"kind": "whole", "cell": None}, "Different: whole frame"),
        ("localization", {"start": 3, "end": 5}, "Frames 3 to 5."),
        ("localization", {"start": 3, "end": 5}, "frames 3-5."),
        ("localization", {"start": 3, "end": 5}, "Frames 3-5"),
        ("localization", {"start": 3, "end": 5}, "3-5"),
        ("rearrangement", {"positions": [2, 4, 1, 3]}, "2,4,1,3"),
        ("rearrangement", {"positions": [2, 4, 1, 3]}, "[2, 4, 1, 3]"),
        ("rearrangement", {"positions": [2, 4, 1, 3]}, "2 4 1 3"),
        ("speed", {"faster": "first"}, "First"),
        ("speed", {"faster": "first"}, "The first part is faster."),
        ("speed", {"faster": "same"}, "equal"),
    ],
)
def test_lenient_answers_are_right_but_not_in_form(task, answer, text):
    """An answer the lenient parser reads right (it scores 1) but that is not the canonical text is not in form:
    the strict accuracy does not count it."""
    from sf2t.tasks.scoring import in_form

    meta = {"task": task, "answer": answer}
    assert score(task, text, meta) == 1.0
    assert not in_form(task, text, meta)


@pytest.mark.parametrize(
    "task, text",
    [("counting", "7 or 8"), ("counting", ""), ("disorder", "Yes or No."), ("speed", "first, second or same")],
)
def test_unparsed_answers_are_not_in_form(task, text):
    from sf2t.tasks.scoring import in_form

    assert not in_form(task, text, {"task": task})


def test_in_form_refuses_an_unknown_task_or_another_tasks_meta():
    from sf2t.tasks.scoring import in_form

    with pytest.raises(ValueError, match="unknown task 'supervised'"):
        in_form("supervised", "7", {"task": "supervised"})
    with pytest.raises(ValueError, match="meta is for 'disorder'"):
        in_form("counting", "7", {"task": "disorder"})
