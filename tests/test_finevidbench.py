"""FineVidBench-style benchmarks: build from synthetic and indexed videos, the format and its errors, variants that
are what they say, evaluation with oracles, resumption, missing files, and the tiny model end to end."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sf2t import cli
from sf2t.finevidbench import BenchmarkError, load, schema, validate
from sf2t.finevidbench.build import OPPOSITE, build
from sf2t.finevidbench.choice import ANSWER_LINE
from sf2t.finevidbench.evaluate import VideoRunner, evaluate, parse_choice

pytest.importorskip("av")
synth = pytest.importorskip("sf2t.synth")
I64 = np.int64


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("fvb")
    for i in range(3):
        synth.make_clip(root / "v" / f"c{i}", 30 + i, width=96, height=64, seconds=3, gop=12)
    assert cli.main(["index", str(root / "v"), "-o", str(root / "m.jsonl"), "--quiet", "--workers", "0"]) == 0
    out = root / "b" / "bench.json"
    build(str(root / "m.jsonl"), str(out), per_category=3, synthetic=2, seed=0, log=lambda s: None)
    return out


def test_built_benchmark_follows_the_format(bench):
    b = load(bench)
    qs = b["questions"]
    validate({k: v for k, v in b.items() if not k.startswith("_")})
    sch = schema()
    assert set(sch["properties"]["questions"]["items"]["required"]) == {
        "id", "level", "category", "variant", "video", "question", "options", "answer_index",
    }  # fmt: skip
    cats = {(q["level"], q["category"]) for q in qs}
    for t in ("counting", "consistency", "localization", "disorder", "rearrangement", "speed"):
        assert ("fragment", t) in cats
    assert ("scene", "object_count") in cats and ("scene", "speed_change") in cats
    for q in qs:
        assert q["options"][q["answer_index"]] is not None and len(set(q["options"])) == len(q["options"])
        if q["level"] == "fragment":
            from sf2t.tasks.scoring import truth_text

            assert q["options"][q["answer_index"]] == truth_text(q["meta"])  # the task engine's answer
            if q["category"] == "speed":  # the question says where its two parts are
                n1, n2 = q["meta"]["params"]["parts"]
                assert all(str(n) in q["question"] for n in (n1, n1 + 1, n1 + n2)), q["question"]
    # built pixels are images next to the file, decoded frames are (path, indices)
    assert any("frame_images" in q["video"] for q in qs) and any("path" in q["video"] for q in qs)
    loc = [q for q in qs if q["category"] == "localization"]
    assert loc and all((bench.parent / q["image"]).is_file() for q in loc)


def test_variants_are_what_they_say(bench):
    qs = load(bench)["questions"]
    groups: dict = {}
    for q in qs:
        if q["level"] == "scene":
            groups.setdefault(q["group"], {})[q["variant"]] = q
    assert groups
    for g in groups.values():
        o = g["original"]
        fo = o["video"]["frames"]
        assert g["speed_2x"]["video"]["frames"] == fo[::2]  # stride x2
        assert g["speed_0.5x"]["video"]["frames"] == [f for f in fo for _ in range(2)]  # stride x0.5
        if "reversed" in g:
            assert g["reversed"]["video"]["frames"] == fo[::-1]
        if "shuffled" in g:
            fs = g["shuffled"]["video"]["frames"]
            assert sorted(fs) == sorted(fo) and fs != fo
        ans = {v: q["options"][q["answer_index"]] for v, q in g.items()}
        cat = o["category"]
        if cat == "motion_direction":
            assert ans["reversed"] == OPPOSITE[ans["original"]] and ans["speed_2x"] == ans["original"]
        elif cat in ("speed_change", "appear_disappear"):
            assert ans["reversed"] != ans["original"] and ans["speed_0.5x"] == ans["original"]
        elif cat == "object_count":
            assert ans["speed_0.5x"] == ans["original"] == ans["reversed"]
        elif cat == "event_order":
            assert "reversed" not in g and ans["speed_2x"] == ans["original"] == ans["speed_0.5x"]


@pytest.mark.parametrize(
    "mutate,words",
    [
        (lambda q: q.pop("options"), "field 'options' is missing"),
        (lambda q: q.update(answer_index=9), "field 'answer_index'"),
        (lambda q: q.update(variant="slow"), "field 'variant'"),
        (lambda q: q.update(level="clip"), "field 'level'"),
        (lambda q: q.update(video={"path": "a.mp4", "frames": []}), "video.frames"),
        (lambda q: q.update(options=["x", "x"]), "duplicates"),
    ],
)
def test_schema_violations_name_question_and_field(bench, mutate, words):
    b = json.loads(bench.read_text())
    mutate(b["questions"][2])
    with pytest.raises(BenchmarkError, match=rf"question 2 \(id '[^']+'\).*{words}" if "field" in words else words):
        validate(b)
    b2 = json.loads(bench.read_text())
    b2["questions"][3]["id"] = b2["questions"][0]["id"]
    with pytest.raises(BenchmarkError, match="repeats"):
        validate(b2)


def test_oracle_scores_100_and_resumes(bench, tmp_path):
    calls = []

    def oracle(q, frames, image):
        calls.append(q["id"])
        assert frames.dtype == torch.uint8 and frames.dim() == 4 and frames.shape[0] >= 1
        if len(calls) == 7 and not hasattr(oracle, "crashed"):
            oracle.crashed = True
            raise RuntimeError("crash")
        return q["answer_index"], {}

    out = tmp_path / "r" / "oracle.json"
    with pytest.raises(RuntimeError):
        evaluate(str(bench), str(out), predictor=oracle, log=lambda s: None)
    first = len(calls) - 1  # answered before the crash
    res = evaluate(str(bench), str(out), predictor=oracle, log=lambda s: None)
    n = len(load(bench)["questions"])
    assert res["overall"]["accuracy"] == 1.0 and res["overall"]["n"] == n
    assert len(calls) == n + 1 and first == 6  # nothing answered twice except the crashed one
    assert out.with_name("oracle.report.md").is_file() and out.with_name("oracle.png").is_file()
    assert all(s["drop"] == 0.0 for s in res["sensitivity"].values())
    # a crash while an answer line was written leaves it cut short: dropped and asked again, the rest kept
    answers = out.with_suffix(".answers.jsonl")
    kept = answers.read_text().splitlines()[:6]  # the setting line, then 5 answers
    assert "sf2t_eval_setting" in kept[0]
    answers.write_text("\n".join(kept) + "\n" + kept[5][:17])
    calls.clear()
    lines = []
    res = evaluate(str(bench), str(out), predictor=oracle, log=lines.append)
    assert res["overall"]["accuracy"] == 1.0 and len(calls) == n - 5
    assert any("cut-short last answer" in line for line in lines)
    calls.clear()
    again = evaluate(str(bench), str(out), predictor=oracle, log=lambda s: None)  # the file stayed whole
    assert again["overall"]["accuracy"] == 1.0 and calls == []
    assert len(answers.read_text().splitlines()) == n + 1
    answers.write_text(kept[0] + "\nnot json\n" + kept[1] + "\n")  # damage before the end: named, not guessed at
    with pytest.raises(ValueError, match=r"answers.jsonl:2: not an sf2t eval answer line"):
        evaluate(str(bench), str(out), predictor=oracle, log=lambda s: None)
    with pytest.raises(ValueError, match="is a folder"):
        evaluate(str(bench), str(tmp_path), predictor=oracle, log=lambda s: None)
    assert not list(out.parent.glob(".*.tmp"))  # results written through a temporary file, none left


def test_max_frames_skips_questions_instead_of_thinning_them(bench, tmp_path):
    """A question whose answer depends on its frames (a count, a span, a speed variant) is not thinned to
    --max-frames: it is skipped and listed, so an oracle that reads the frames still scores 100 % on what is asked."""
    b = load(bench)
    shown = {q["id"]: len(q["video"].get("frame_images") or q["video"].get("frames")) for q in b["questions"]}
    cap = sorted(shown.values())[len(shown) // 2]

    def counter(q, frames, image):  # counting answered from the frames it gets
        assert frames.shape[0] == shown[q["id"]] <= cap
        if q["category"] == "counting":
            return q["options"].index(str(frames.shape[0])), {}
        return q["answer_index"], {}

    lines = []
    res = evaluate(str(bench), str(tmp_path / "r.json"), predictor=counter, max_frames=cap, log=lines.append)
    longer = sorted(k for k, n in shown.items() if n > cap)
    assert longer and res["too_many_frames"] == longer
    assert res["overall"]["accuracy"] == 1.0 and res["overall"]["n"] == len(shown) - len(longer)
    assert res["coverage"] == pytest.approx(1 - len(longer) / len(shown))
    said = f"{len(longer)} questions skipped: they show" if len(longer) > 1 else "1 question skipped: it shows"
    assert any(f"{said} more than {cap} frames" in x for x in lines), lines
    assert f"{len(longer)} skipped for more frames than --max-frames" in (tmp_path / "r.report.md").read_text()
    with pytest.raises(ValueError, match="every question shows more frames"):
        evaluate(str(bench), str(tmp_path / "r2.json"), predictor=counter, max_frames=1, log=lambda s: None)


def test_compare_says_when_results_are_not_alike(bench, tmp_path):
    """--compare's table shows each side's answered questions and coverage, and says when the two results are of
    different benchmarks (their recorded fingerprints) or answered different numbers of questions."""
    from sf2t.finevidbench.evaluate import compare_text

    def oracle(q, f, i):
        return q["answer_index"], {}

    a = evaluate(str(bench), str(tmp_path / "a.json"), predictor=oracle, log=lambda s: None)
    assert "Note:" not in compare_text(a, a) and f"| {a['overall']['n']} (100%) |" in compare_text(a, a)
    other = json.loads(json.dumps(a))
    other["setting"]["benchmark"] = "0" * 16
    assert "different benchmarks" in compare_text(a, other, ("a", "b"))
    fewer = evaluate(str(bench), str(tmp_path / "c.json"), predictor=oracle, max_frames=16, log=lambda s: None)
    assert "answered different numbers of questions" in compare_text(a, fewer)


@pytest.mark.parametrize(
    "text, options, want",
    [
        ("12", ["2", "12", "3", "5"], 1),  # an option's exact text (not its substring "2")
        ("There are 15 frames.", ["11", "5", "8", "15"], 3),  # whole words: "5" is no hit inside "15"
        ("12 frames", ["2", "12", "3", "5"], 1),
        ("I don't know", ["Yes.", "No."], None),  # "no" inside "know" is no answer
        ("Not sure", ["Yes.", "No."], None),
        ("A blue ball", ["A red ball", "A blue ball"], 1),  # an article is no letter
        ("A square moves down", ["left", "right", "up", "down"], 3),
        ("A single object.", ["2", "1", "3", "5"], None),
        ("Answer: C", ["a", "b", "c", "d"], 2),
        ("The answer is B", ["x", "y", "z"], 1),
        ("b", ["x", "y"], 1),
        ("(b)", ["x", "y"], 1),
        ("**B**", ["x", "y"], 1),
        ("B. y", ["x", "y"], 1),
        ("The answer is a cat", ["dog", "cat"], 1),  # lower-case "a" after "answer is": the word, not a letter
        ("Different: top-left.", ["Different: top.", "Different: top-left.", "Identical."], 1),
        ("It is different: top-left", ["Different: top.", "Different: top-left.", "Identical."], 1),  # the longest
        ("Frames 1-10.", ["Frames 1-1.", "Frames 1-10."], 1),
        ("2", ["4", "3", "2", "1"], 2),  # a number that is an option's text is that option, not letter B
        ("E", ["x", "y"], None),  # a letter past the options
        ("I first thought A. Final answer: C", ["a", "b", "c", "d"], 2),  # the last "final answer" decides
        ("The answer is A? **Final answer:** (B)", ["x", "y"], 1),
        ("Maybe 5. Final answer: 15 frames.", ["11", "5", "8", "15"], 3),
        ("Final answer: B. No, final answer: A", ["x", "y"], 0),
        ("C. Final answer: unsure", ["x", "y", "z"], None),  # what follows the marker alone decides
        ("(B) is my final answer.", ["x", "y"], 1),  # no marker: nothing follows it
        ("B. Final answer:", ["x", "y"], 1),
        ("Final answer — C", ["a", "b", "c"], 2),
        ("Final answer -- B", ["x", "y"], 1),
        ("", ["x", "y"], None),
    ],
)
def test_parse_choice_cases(text, options, want):
    assert parse_choice(text, options) == want


@pytest.mark.parametrize(
    "text, want",
    [
        # the article "A" starting a noun phrase after "Answer:" is no letter
        ("Answer: A total of 9 frames.", 1),
        ("The answer is A total of 9 frames.", 1),
        ("Answer: A single frame.", 0),  # (no option's text follows: the letter, as "The answer is A not B.")
        # a letter
        ("Answer: A", 0),
        ("Answer: A.", 0),
        ("Answer: (A)", 0),
        ("Answer: A) 9 frames", 0),
        ("Answer: A - 9 frames", 0),
        ("**Answer: A**", 0),
        ("Answer: A, 9 frames", 0),
        ("Answer: (A) total of 9 frames", 0),
        ("The answer is A because the video has 9 frames.", 0),
        ("The answer is A since there are 9 frames.", 0),
        ("Answer: A is correct.", 0),
        ("Answer: B total", 1),
    ],
)
def test_choice_answers_stop31(text, want):
    """Choices a review found misread: "Answer: A total of 9 frames." read as option A."""
    assert parse_choice(text, ["7", "9", "8", "6"]) == want


@pytest.mark.parametrize(
    "text, want",
    [
        # after "option" / "choice" a capital A is always the letter
        ("Option A fits the video best.", 0),
        ("Option A matches what I see.", 0),
        ("Choice A describes the motion.", 0),
        ("I'd pick option A to be safe.", 0),
        ("The best option is A according to the frames.", 0),
        # after "answer", a function word after it keeps it the letter
        ("The answer is A in this case.", 0),
        ("The correct answer is A for this clip.", 0),
        ("The answer is A of course.", 0),
        ("The answer is A for sure.", 0),
        ("Answer: A would be my pick.", 0),
        ("Answer: A then.", 0),
        # the article when its noun phrase names an option; else the letter (review31b)
        ("Answer: A move to the right.", 1),
        ("Answer: A single frame.", 0),
    ],
)
def test_choice_review31(text, want):
    """Choices review31 found read right before this session's article rule and wrong after: "Option A fits ...",
    "The answer is A in this case." name option A; the article rule is for "Answer: A total of 9 frames."."""
    assert parse_choice(text, ["Left", "Right", "Up", "Down"]) == want


MOTION = ["Left", "Right", "Up", "Down"]
OBJECTS = ["A red ball", "A blue cube", "A green cone", "A yellow star"]


@pytest.mark.parametrize(
    "text, options, want",
    [
        # a word after the letter that no list names: the letter, unless an option's text then appears
        ("The answer is A not B.", MOTION, 0),
        ("The answer is A due to the leftward motion.", MOTION, 0),
        ("The answer is A only.", MOTION, 0),
        ("The answer is A rather than D.", MOTION, 0),
        ("The answer is A after reviewing the frames.", MOTION, 0),
        ("The answer is A when considering the direction.", MOTION, 0),
        ("The answer is A judging by the shadows.", MOTION, 0),
        # the article, after answer, option or choice alike, when an option's text follows: that option
        ("The correct option is A blue cube.", OBJECTS, 1),
        ("Best choice: A green cone.", OBJECTS, 2),
        ("My choice is A yellow star.", OBJECTS, 3),
        ("The answer is A yellow star, i.e. option D.", OBJECTS, 3),
        ("Option: A red ball", OBJECTS, 0),
        ("Answer: A total of 9 frames.", ["7 frames", "8 frames", "9 frames", "10 frames"], 2),
        ("Answer: A total of 9 frames.", ["7", "9", "8", "6"], 1),
        ("Option A fits the video best.", OBJECTS, 0),
    ],
)
def test_choice_review31b(text, options, want):
    """Choices review31b found misread: a letter A followed by a word read as the article ("The answer is A not B.")
    and the article after "option" / "choice" read as the letter ("The correct option is A blue cube.")."""
    assert parse_choice(text, options) == want


@pytest.mark.parametrize(
    "text, options, want",
    [
        # a letter A before not / rather / over / instead / unlike / than is the letter, not the article
        ("Option A rather than a blue cube.", OBJECTS, 0),
        ("The answer is A not a blue cube.", OBJECTS, 0),
        ("The answer is A not 8, since I count 7 frames.", ["7", "8", "9", "10"], 0),
        ("Option A over a blue cube: the ball is clearly red.", OBJECTS, 0),
        ("The answer is A instead of a blue cube.", OBJECTS, 0),
        ("The correct option is A green cone.", OBJECTS, 2),
    ],
)
def test_choice_review31c(text, options, want):
    """Choices review31c found misread: "Option A rather than a blue cube." named option B (the article rule read "A"
    as an article because an option's text appears after it)."""
    assert parse_choice(text, options) == want


PLAIN = ["red ball", "blue cube", "green cone", "yellow star"]  # (option texts without an article)
FRAMES = ["7", "9", "11", "12"]
COUNTS = ["1", "2", "3", "4"]
SPEED = ["first", "second", "same"]


@pytest.mark.parametrize(
    "text, options, want",
    [
        # 1. the last letter stated wins: a revision (each read the first letter before)
        ("Answer: A\nWait, looking again, the answer is B.", MOTION, 1),
        ("The answer is A. Actually, the answer is C.", MOTION, 2),
        ("Answer: A. Hmm, Answer: D", MOTION, 3),
        ("Option A is wrong; the answer is C.", MOTION, 2),
        ("Option A looks plausible, but option C is right.", MOTION, 2),
        ("Answer: A\nWait, option C is correct.", MOTION, 2),
        ("B. Wait, the answer is C.", MOTION, 2),
        ("A. Left\nB. Right\nAnswer: B", MOTION, 1),  # the options echoed, then the answer
        ("Answer: C. No, the answer is A blue cube.", OBJECTS, 1),  # the article in the last statement
        ("Answer: A red ball. No wait, the answer is A blue cube.", OBJECTS, 1),
        # ... not a bare "option A" after it, nor a letter after "not", nor a letter past the options (as before)
        ("The answer is B, not A.", MOTION, 1),
        ("Answer: B. Option A would be too slow.", MOTION, 1),
        ("Answer: B, not option A.", MOTION, 1),
        ("Option A is right, but option C is tempting.", MOTION, 0),
        ("Option A is correct, not option C.", MOTION, 0),
        ("Option B is the answer.", MOTION, 1),
        ("Answer: C\nWait, the answer is I think D", MOTION, 2),
        ("Answer: E, not option A", MOTION, None),
        ("A or B", MOTION, None),  # a hedge stays unread
        ("Either A or B.", MOTION, None),
        # 2. an option's text after a negation is ruled out (each read None, or the negated option, before)
        ("Answer: A blue cube, not a red ball.", OBJECTS, 1),
        ("A blue cube, not a red ball.", OBJECTS, 1),
        ("Answer: blue cube, not red ball.", PLAIN, 1),
        ("Answer: A blue cube, not a red ball.", PLAIN, 1),
        ("It is not a red ball but a blue cube.", OBJECTS, 1),
        ("It isn't the red ball, it's the blue cube.", PLAIN, 1),
        ("A blue cube rather than a red ball.", OBJECTS, 1),
        ("A blue cube instead of a red ball.", OBJECTS, 1),
        ("Unlike a red ball, a blue cube.", OBJECTS, 1),
        ("A blue cube, never a red ball.", OBJECTS, 1),
        ("Right, not left.", MOTION, 1),
        ("11 frames, not 9.", FRAMES, 2),
        ("Not a red ball.", OBJECTS, None),  # only a negated option: none
        ("It is not the same.", SPEED, None),
        # ... only right after the negation, and an option's own "not" is its text (as before)
        ("Not sure, but left.", MOTION, 0),
        ("It is not moving.", ["Moving", "Not moving", "Left", "Right"], 1),
        ("Moving.", ["Moving", "Not moving", "Left", "Right"], 0),
        ("The ball moves over 9 frames.", FRAMES, 1),
        ("I don't think it moves left.", MOTION, 0),
        # 3. number words for options that are numbers (each read None before)
        ("There are nine frames.", FRAMES, 1),
        ("I count twelve.", FRAMES, 3),
        ("Answer: eleven", FRAMES, 2),
        ("seven", FRAMES, 0),
        ("Nine frames, not seven.", FRAMES, 1),
        ("About nine frames.", ["7 frames", "9 frames", "11 frames", "12 frames"], 1),
        ("Answer: A total of nine frames.", FRAMES, 1),  # the article, then the count in words
        ("twenty-one", ["20", "21", "22", "1"], 1),
        ("Twenty one frames.", ["20", "21", "22", "1"], 1),
        ("twenty", ["20", "21", "22", "1"], 0),
        ("Thirty.", ["30", "3", "13", "40"], 0),
        ("There is one object.", COUNTS, 0),
        ("There are three objects; the red one moves.", COUNTS, 2),  # "the red one": a pronoun
        ("Two objects: a red one and a blue one.", COUNTS, 1),
        # ... digits win, never inside a word, "one" as a pronoun is no count, a hedge stays unread (as before)
        ("There are nine frames, so 9.", FRAMES, 1),
        ("Nine? No: 11 frames.", FRAMES, 2),
        ("Its weight is often constant; a canine.", ["8", "10", "9", "1"], None),
        ("ninety frames", FRAMES, None),
        ("A nine-frame clip.", FRAMES, None),
        ("None of them.", COUNTS, None),
        ("No one moves.", COUNTS, None),
        ("One of them moves.", COUNTS, None),
        ("one or two", COUNTS, None),
        ("The first one is faster.", SPEED, 0),  # no option is a number: words are words
        ("two", ["Yes.", "No."], None),
    ],
)
def test_choice_review33(text, options, want):
    """Choices review33 found misread: a revised letter ("Answer: A ... wait, the answer is B.") read as the first, an
    option ruled out by "not" read with the one stated ("Answer: A blue cube, not a red ball." read None), and counts
    in words read as nothing ("There are nine frames." with the option "9")."""
    assert parse_choice(text, options) == want


@pytest.mark.parametrize(
    "text, options, want",
    [
        # a bare "answer A" names an option, it does not revise a stated one (review33b: read A, B, A, D)
        ("The answer is B. Answer A is incorrect because the ball moves right.", MOTION, 1),
        ("The answer is (A). Answer (B) would need more frames.", ["7", "8", "9", "10"], 0),
        ("Answer: B. Answer A would mean the ball moves left, which it does not.", MOTION, 1),
        ("The correct answer is C. Answer D is close, but the ball goes down only at the end.", MOTION, 2),
        ("Answer A", MOTION, 0),  # named, and nothing else: read
        # "option X is the answer" states X only where its clause ends (read C, A)
        ("Choice: B\nReason: option C is the answer only if frames repeat.", ["7", "8", "9", "10"], 1),
        ("Answer: B. Option A is the answer for the other video.", MOTION, 1),
        ("Option A is wrong; option C is correct.", MOTION, 2),
        ("Option A is correct because it moves left.", MOTION, 0),
        # a run-on into a turn of the model's own making ends the answer (read C, A)
        ("B. The ball moves right.\n\nQuestion: Which object is red?\nAnswer: C", MOTION, 1),
        ("B\n\nUSER: Which direction does the cube move?\nASSISTANT: Answer: A", MOTION, 1),
        ("Question: which way does it move?\nAnswer: C", MOTION, 2),  # a restated question opens the answer
    ],
)
def test_choice_review33b(text, options, want):
    """Review33b's regressions of the last-stated-letter rule, and run-on turns."""
    assert parse_choice(text, options) == want


NINE = ["8", "9", "10", "11"]


@pytest.mark.parametrize(
    "text, options, want",
    [
        # 1. a retraction ("wait, no", "no wait", "actually, no", "? No,") or a correction ("or rather", "I mean",
        # "correction:") followed by an answer alone: only what follows the last one counts (read A, B, A, A, B, None,
        # None, None, B)
        ("A. Wait, no. B.", MOTION, 1),
        ("The answer is B. Or rather, C.", MOTION, 2),
        ("Answer: A. Actually, no: C.", MOTION, 2),
        ("A. No wait, B.", MOTION, 1),
        ("The answer is B. I mean C.", MOTION, 2),
        ("Nine - no wait, ten.", NINE, 2),
        ("Ten frames? No, nine.", NINE, 1),
        ("The first. Wait, no, the second.", SPEED, 1),
        ("Answer: B. Correction: D.", MOTION, 3),
        # ... not without an answer alone after it, nor a plain "No" (as before)
        ("Answer: A. No other option fits.", MOTION, 0),
        ("Answer: A. Wait, no other option fits.", MOTION, 0),
        ("B. Wait, no, option A is wrong, so B.", MOTION, 1),
        ("Answer: D. Or option C? No, D.", MOTION, 3),
        ("Answer: B. I mean the ball moves right.", MOTION, 1),
        ("A. Wait, no. E.", MOTION, 0),  # E is no option of four
        ("The answer is B. Or rather, C. Hmm, no: the answer is D.", MOTION, 3),  # a later statement still wins
        # 2. another letter in place of one ruled out (read None, None, B)
        ("The answer is not A; it is C.", MOTION, 2),
        ("The answer is not A, but C.", MOTION, 2),
        ("Not option B but D.", MOTION, 3),
        # ... "not A" alone states nothing (as before)
        ("The answer is B, not A.", MOTION, 1),
        ("Option A is wrong; the answer is C.", MOTION, 2),
        ("Answer: C. Not A, not B.", MOTION, 2),
        # 3. a hedge between letters, then a pick among them (read None each)
        ("Answer: C or D; I'm leaning towards D.", MOTION, 3),
        ("The answer is A or B, most likely B.", MOTION, 1),
        ("The answer is A or B, probably B.", MOTION, 1),
        ("Answer: A or B; I'd go with B.", MOTION, 1),
        ("Answer: A or B? It's B.", MOTION, 1),
        # ... a hedge with no pick, or a pick of neither, stays unread (as before)
        ("The answer is A or B, but it's hard to say.", MOTION, None),
        ("The answer is A, or maybe B.", MOTION, None),
        ("A or B, most likely C.", MOTION, None),
        ("A or B; it's A or B.", MOTION, None),
        # 4. a per-option verdict list: the one option said right (read A, A, A, A)
        ("Option A: incorrect.\nOption B: correct.\nOption C: incorrect.\nOption D: incorrect.", FRAMES, 1),
        (
            "Option A - the ball moves left. This is incorrect.\nOption B - the ball moves right. This is correct.",
            MOTION,
            1,
        ),
        ("A) 7 - too few\nB) 9 - correct\nC) 11 - wrong", FRAMES, 1),
        ("- Option A: No\n- Option B: Yes\n- Option C: No", FRAMES, 1),
        ("Option A: correct.\nOption B: correct.\nOption C: incorrect.", FRAMES, None),  # (read A) two said right
        # ... a letter stated after the list wins, a list with none right leaves the answer, echoed options are no
        # list (as before)
        ("Option A: incorrect.\nOption B: correct.\nThe answer is C.", FRAMES, 2),
        ("Answer: B\nOption A: wrong\nOption C: wrong", FRAMES, 1),
        ("A. Left\nB. Right\nAnswer: B", MOTION, 1),
        # 5. an option's text with a verdict against it after it, where another is stated without one (read None,
        # None)
        ("9 is not correct; it is 11.", FRAMES, 2),
        ("Left is not the answer, it's right.", MOTION, 1),
        # ... not a negation of what the option does or is: the question's polarity is unknown ("which does not
        # move?"), so both stay stated and none is read (review34 found the first rule read these as the other one)
        ("The red ball is not present; the blue cube is.", PLAIN, None),
        ("The blue cube moves, while the red ball does not.", PLAIN, None),
        ("The yellow star. The red ball never moves.", PLAIN, None),
        # ... alone, it is still that option (as before: the question may ask for what does not move)
        ("The red ball does not move.", PLAIN, 0),
        ("It is not the red ball.", PLAIN, None),
    ],
)
def test_choice_resid34(text, options, want):
    """Choices resid34 found misread: a retracted or corrected letter ("A. Wait, no. B."), a letter in place of one
    ruled out ("not A; it is C"), a pick after a hedge ("A or B, most likely B"), a per-option verdict list, and an
    option ruled out by a negation after its text; with nearby answers the new rules leave as they were."""
    assert parse_choice(text, options) == want


TURNS = ["Turns left", "Turns right", "No turn", "Reverses"]
MOVES = ["Moves left", "Moves right", "No movement", "Moves up"]
ARTICLED = ["A red ball", "A blue cube", "A green cone", "A yellow star"]


@pytest.mark.parametrize(
    "text, options, want",
    [
        # A. a sentence after a retraction that rules an option out or judges one explains, it revises nothing (read
        # A, C, A, A; the next two A and D)
        ("The answer is B (right). I mean, it doesn't go left.", MOTION, 1),
        ("Answer: C (up). Is there any leftward motion? No, left is ruled out.", MOTION, 2),
        ("B. Wait, no, left is wrong, so B.", MOTION, 1),
        ("Answer: B. Does it move left? No, left is wrong.", MOTION, 1),
        ("It slows down. Does it speed up at any point? No, speeds up is wrong.", ["speeds up", "slows down"], 1),
        ("B (right). I mean, it never goes left.", MOTION, None),  # (both directions named: unread, as before)
        # ... nor one that names the option the question before "? No" asked about (read first, 7)
        ("Answer: second. Is the first one faster? No, the first is slower.", SPEED, None),
        ("Answer: 9. Is it 7? No, 7 is too few.", FRAMES, None),
        # ... and a letter alone after "it's" / "option" is an answer alone, as the rule says (read A, A, None)
        ("A. Wait, no, it's B.", MOTION, 1),
        ("A. Or rather, option C.", MOTION, 2),
        ("Could the answer be C? No, it's D.", MOTION, 3),
        # B. echoed option lists are no verdicts (their "right", "No" are option text) and are left out; a question
        # ("..., right?") is no verdict; another option's text after a verdict list is a conflict (read B, None, A, A,
        # B)
        ("A. Turns left\nB. Turns right\nC. No turn\nD. Reverses\n\nThe car turns left.", TURNS, 0),
        ("A. The frames show a red ball, right?\nB. Yes, a blue cube too.\nThe red ball moves.", PLAIN, 0),
        ("A. Moves left\nB. Moves right\nC. No movement\nD. Moves up\n\nIt moves up.", MOVES, 3),
        ("A. Left\nB. Right\nC. Up\nD. Down\n\nThe ball moves right.", MOTION, 1),
        (
            "Option A: incorrect.\nOption B: correct.\nOption C: incorrect.\nOption D: incorrect.\n\n"
            "So the answer is 11.",
            FRAMES,
            None,
        ),
        # E. a pick after a hedge ends its clause, and no other option's letter follows it (read B, C, A, B)
        ("The answer is A or B. It is B that I'm unsure about.", MOTION, None),
        ("Answer: B or C. Probably C, but it could also be B.", MOTION, None),
        ("Answer: A or C. Most likely A is wrong, so C.", MOTION, None),
        ("The answer is A or B. I'd say B is less likely.", MOTION, None),
        # F. a negation after an option's text that is no verdict on it ("does not move", "isn't visible") rules
        # nothing out: the question may ask what does not move (read C, B, B, A, B, B, D)
        ("The yellow star won't move, and neither will the green cone.", PLAIN, None),
        ("The red ball does not move, but the blue cube does.", PLAIN, None),
        ("The red ball isn't visible at the end, while the blue cube remains.", PLAIN, None),
        ("The blue cube is not moving. The red ball moves.", PLAIN, None),
        ("The red ball never moves; the blue cube moves to the left.", PLAIN, None),
        ("A red ball can't be seen after frame 3, but a blue cube is visible throughout.", ARTICLED, None),
        (
            "The green cone was not there at the start; it appears in frame 4. The yellow star is there all along.",
            PLAIN,
            None,
        ),
        # G. the letter in place of one ruled out ends its clause (read B)
        ("It's not A, but B could also be wrong. C is correct.", MOTION, None),
    ],
)
def test_choice_review34(text, options, want):
    """Choices review34 found the resid34 rules misread (a regression, or None read as a wrong option): an explaining
    sentence after a retraction, echoed option lists and questions read as verdicts, picks that do not end their
    clause or are hedged again, negations of what an option does read as verdicts, and "not A, but B could ...". Rows
    with None are answers whose options the rules leave unread (as before resid34)."""
    assert parse_choice(text, options) == want


@pytest.mark.parametrize(
    "text, options, want",
    [
        # "no" opening a noun phrase is no retraction (read 2, 0, 2, 0, 1)
        ("Answer: A. Wait, no sign of going up.", ["left", "right", "up", "down"], "left"),
        ("B. Hmm, no hint of left motion.", ["left", "right", "up", "down"], "right"),
        ("Answer: B. Wait, no way it's up.", ["left", "right", "up", "down"], "right"),
        ("Answer: B. Actually, no left turn happens.", ["left", "right", "up", "down"], "right"),
        ("Answer: C. Hmm, no movement to the right.", ["left", "right", "up", "down"], "up"),
        # ... "no, it's" / "no wait" still retract
        ("Up. Wait no it is down.", ["left", "right", "up", "down"], "down"),
        ("Answer: 7. Wait, no. Nine.", ["7", "9", "11", "12"], "9"),
        # a "revision" asked, not answered, revises nothing (read up, 11, 11, 11, down)
        ("Left or rather up? Hard to say.", ["left", "right", "up", "down"], None),
        ("Is it 9, or rather 11?", ["7", "9", "11", "12"], None),
        ("The answer is 9, or rather 11? Not sure.", ["7", "9", "11", "12"], None),
        ("Answer: 9. Wait, no, 11? I'm not sure.", ["7", "9", "11", "12"], None),
        ("Answer: up. Hmm, no. Down?", ["left", "right", "up", "down"], None),
        # ... or doubted right after it (read 11)
        ("It's 9 or rather 11, hard to say.", ["7", "9", "11", "12"], None),
        ("Answer: 9. Wait, no, 11 - not sure.", ["7", "9", "11", "12"], None),
        # (a doubt in a later sentence does not undo it)
        ("Answer: 9. Wait, no, 11. The frames were hard to count, though.", ["7", "9", "11", "12"], "11"),
        # checklists of questions answered yes / no (read down, down, 12, yellow star: the last item asked)
        ("Left? No. Right? Yes. Up? No. Down? No.", ["left", "right", "up", "down"], None),
        ("Is it 7? No. 9? Yes. 11? No. 12? No.", ["7", "9", "11", "12"], None),
    ],
)
def test_choice_review34b(text, options, want):
    """Choices review34b found the retraction rule misread: "no" opening a noun phrase ("Wait, no sign of ...") and an
    answer after a retraction that is itself a question ("Is it 9, or rather 11?", yes/no checklists) revise nothing.
    (Checklists stay unread: the yes among them is not read as the answer.)"""
    want = None if want is None else options.index(want)
    assert parse_choice(text, options) == want


@pytest.mark.parametrize(
    "text, options",
    [
        # (review34's rules: verdicts after an option's text, picks that end their clause, answers alone after a
        # retraction, echoed lists, questions before "? No", letters after "not A, but")
        ("red ball is not the answer " * 1900, PLAIN),
        ("red ball is wrong " * 2800, PLAIN),
        ("red ball" + " " * 50000 + "is wrong", PLAIN),
        ("A or B, probably B " * 2600, MOTION),
        ("A or B, probably B." + " C" * 25000, MOTION),
        ("I mean, it never goes left. " * 1800, MOTION),
        ("Is it 7? No, 7 is too few. " * 1900, FRAMES),
        ("Is it " + "7 " * 25000 + "? No, 7.", FRAMES),
        ("A. Left\nB. Right\n" * 3000, MOTION),
        ("A. left, right?\n" * 3500, MOTION),
        ("not A, but B could " * 2700, MOTION),
        ("not A, but B" + " " * 50000 + "could", MOTION),
    ],
)
def test_parse_choice_is_fast_on_review34_repetitions(text, options):
    """Review34's rules read a generated answer that loops on their own words in milliseconds."""
    import time

    t0 = time.perf_counter()
    parse_choice(text, options)
    assert time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize(
    "text, want",
    [
        ("The answer is A or B.", None),  # read A before
        ("Answer: A or B", None),  # read A before
        ("The answer is A, or maybe B.", None),  # read A before
        ("Answer: A (or B).", None),  # read A before
        ("Answer: (A) or (B)", None),  # read A before
        ("Answer: A/B", None),  # read A before
        ("B) or C)", None),  # read B before
        ("A or B", None),
        ("The answer is B, not A.", 1),  # "not": a letter ruled out, no hedge
        ("The answer is A or A.", 0),  # the same letter twice
        ("Answer: A or E", 0),  # E is no option of four
        ("Answer: A, or rather the left one.", 0),
        ("The answer is A. Or B? No: A.", 0),  # the last stated letter, joined to none
    ],
)
def test_choice_letters_joined_by_or_are_a_hedge(text, want):
    """Two options' letters joined by "or" / "/" name neither: hedging must not pay (as "7 or 8" in Scoring)."""
    assert parse_choice(text, MOTION) == want


@pytest.mark.parametrize(
    "options",
    [
        MOTION,
        OBJECTS,
        PLAIN,
        FRAMES,
        COUNTS,
        ["11", "13", "14", "2"],
        ["Different: bottom-right.", "Different: whole frame.", "Different: bottom-left.", "Identical."],
        ["3, 2, 1, 4", "1, 4, 3, 2", "4, 3, 1, 2", "4, 1, 2, 3"],
        ["Moving", "Not moving", "Still", "Gone"],
        ["Frames 1-1.", "Frames 1-10.", "Frames 2-5.", "Frames 3-4."],
    ],
)
def test_choice_reads_every_canonical_answer(options):
    """Each option of a 4-option list, as its text, its letter ("B", "(B)", "B.", "B. text"), in bold, after "Final
    answer:" or "Answer:", is read as that option."""
    for i, x in enumerate(options):
        b = "ABCD"[i]
        for said in (
            x,
            b,
            f"({b})",
            f"{b}.",
            f"{b}. {x}",
            f"**{x}**",
            f"**{b}**",
            f"Final answer: {x}",
            f"Final answer: {b}",
            f"Answer: {b}",
            f"Answer: {x}",
            f"The answer is {b}.",
        ):
            assert parse_choice(said, options) == i, said


@pytest.mark.parametrize(
    "text",
    [
        "answer" + " " * 25000 + "3",
        "final" + " " * 25000 + "answer" + " " * 25000 + "3",
        "final answer" + "\t" * 50000,
        "Answer: A" + " " * 50000 + "total",
        "answer: A total " * 4000,
        "answer: A " + "then " * 10000,
        "option A " * 6000 + "total",
        "The correct option is A " + "x " * 25000 + "1",
        "choice: A 1 " * 5000,
        "answer: A not " * 4000 + "a blue cube",
        "answer: A rather than a " * 2500,
        # (review33's rules: revisions, negations, number words)
        "answer: A " * 5000,
        "option A" + " " * 50000 + "correct",
        "option A is the " * 3200,
        "not 1 " * 8400,
        "not " * 12500 + "1",
        "twenty-one " * 4600,
        "nine-" * 10000,
        "the red one " * 4200,
        "Answer: A" + " " * 25000 + "," + " " * 25000 + "(",
        "answer: A or " * 4000,
        "B" + "\n" * 25000 + " " * 25000 + "question:",
        "B\n # " * 12000,
        "one " * 12500,
        "no " * 17000 + "one",
        # (resid34's rules: retractions, a letter in place of another, picks, verdict lists, negations after)
        "wait, no " * 5600,
        "Or rather, " * 4600,
        "? no " * 10000,
        "wait" + " " * 50000 + "no",
        "nine - no wait, ten. " * 2400,
        "not A; it is " * 3900,
        "not A" + " " * 50000 + "but C",
        "A or B, most likely " * 2500,
        "A or B" + " " * 50000 + "probably B",
        "Option A: incorrect.\n" * 2400,
        "(A) correct\n" * 4200,
        "red ball does not " * 2800,
        "red ball" + " " * 50000 + "is not",
    ],
)
def test_parse_choice_is_fast_on_long_whitespace_runs(text):
    """A generated answer that loops on whitespace is parsed in milliseconds (an "answer" before a run of 25k spaces
    took 16 s: two whitespace runs met in one pattern)."""
    import time

    t0 = time.perf_counter()
    parse_choice(text, ["1", "2", "3"])
    assert time.perf_counter() - t0 < 2.0


def test_generate_parsing_agrees_with_the_answer(bench, tmp_path):
    """An oracle that writes the canonical option text (or its letter) is parsed back to the right option."""
    for i, q in enumerate(load(bench)["questions"]):
        truth = q["options"][q["answer_index"]]
        assert parse_choice(truth, q["options"]) == q["answer_index"]
        assert parse_choice(f"{'ABCD'[q['answer_index']]}.", q["options"]) == q["answer_index"]
        assert parse_choice(f"The answer is {truth}", q["options"]) in (q["answer_index"], None)
        if i > 40:
            break


@pytest.mark.parametrize(
    "text, want",
    [
        ("B", True),
        ("(B)", True),
        ("B.", True),
        ("B)", True),
        (" B\n", True),  # surrounding whitespace, a trailing newline
        ("12", True),  # exactly one option's text
        ("12.", True),  # a final period
        ("different:  TOP-LEFT", True),  # case and spaces
        ("Different: top-left.", True),
        ("B. 12", True),  # a letter with its own option's text
        ("(C) Different: top-left.", True),
        ("B) 12", True),
        ("E", False),  # no option E
        ("b", False),
        ("B. 7", False),  # a letter with another option's text
        ("B: 12", False),
        ("B 12", False),
        ("Answer: B", False),
        ("The answer is B.", False),
        ("There are 12 frames.", False),
        ("**B**", False),
        ("**12**", False),
        ("Final answer: B", False),
        ("", False),
    ],
)
def test_choice_in_form(text, want):
    """in_form: an option's letter alone, exactly one option's text (case, spaces, a final period aside), or a
    letter with its own option's text, as ANSWER_LINE asks; anything else (sentences, "Answer: B", markdown, a letter
    with another option's text) is not, whatever parse_choice reads from it."""
    from sf2t.finevidbench.choice import in_form

    assert in_form(text, ["7", "12", "Different: top-left.", "Frames 3-5."]) is want


class _Answerer:
    """A stand-in model for generate mode: answers each question as ``how(q)`` says; likelihood scores for likelihood
    mode (the right option best)."""

    def __init__(self, how):
        self.how, self.asked = how, 0

    def generate(self, q, frames, image):
        self.asked += 1
        return self.how(q)

    def likelihood_batch(self, chunk):
        return [[float(i == q["answer_index"]) for i in range(len(q["options"]))] for q, _, _ in chunk]


def _how(q):
    """Right in the asked form (the letter) for a third of the questions, right but in a sentence for another third
    (parse_choice reads the option's text), wrong in form (another letter) for the rest."""
    k, right = int(q["id"].encode().hex(), 16) % 3, q["answer_index"]
    if k == 0:
        return "ABCD"[right]
    if k == 1:
        return f"I am sure: {q['options'][right]}"
    return "ABCD"[(right + 1) % len(q["options"])]


def test_generate_mode_reports_answers_in_form_and_strict_accuracy(bench, tmp_path):
    """Generate mode flags each answer in_form (as ANSWER_LINE asks) and reports, per table key, the share in form and
    the strict accuracy (right and in form) next to the accuracy: a line in report.md and a column of its category
    table. An answers file of an older sf2t (no flag) is resumed with the flag made from each answer's text.
    Likelihood mode and a predictor have no text: no flag, and nothing said about the form."""
    from sf2t.finevidbench.choice import in_form

    qs = {q["id"]: q for q in load(bench)["questions"]}
    out = tmp_path / "gen.json"
    lines = []
    res = evaluate(str(bench), str(out), runner=_Answerer(_how), mode="generate", log=lines.append)
    recs = [json.loads(x) for x in out.with_suffix(".answers.jsonl").read_text().splitlines()[1:]]
    assert len(recs) == len(qs)
    for r in recs:
        q = qs[r["id"]]
        assert r["in_form"] is in_form(r["text"], q["options"])
        assert r["in_form"] is (r["text"] in "ABCD")  # the letters; not the sentences
    n = len(recs)
    form = sum(r["in_form"] for r in recs) / n
    strict = sum(r["in_form"] and r["correct"] for r in recs) / n
    o = res["overall"]
    assert o["accuracy"] == sum(r["correct"] for r in recs) / n > strict > 0
    assert o["in_form"] == pytest.approx(form) and o["strict_accuracy"] == pytest.approx(strict) and 0 < form < 1
    for key, row in res["table"].items():  # every key: its own records' shares
        assert 0 <= row["strict_accuracy"] <= min(row["in_form"], row["accuracy"]), key
    saved = json.loads(out.read_text())
    assert saved["overall"]["in_form"] == pytest.approx(form)
    md = out.with_name("gen.report.md").read_text()
    assert f"Answers in the asked form: {100 * form:.1f} % (strict accuracy {strict:.3f})" in md
    assert "| level / category | n | accuracy | in form (strict accuracy) | chance |" in md
    cat = res["table"]["category/fragment/counting"]
    row = f"| fragment/counting | {cat['n']} | {cat['accuracy']:.3f} | {100 * cat['in_form']:.1f} % "
    assert row + f"({cat['strict_accuracy']:.3f}) | {cat['chance']:.3f} |" in md
    assert any(f"in the asked form {form:.0%}" in x for x in lines), lines

    # an older sf2t's answers file: no flag; resumed, the flag comes from the stored text (nothing asked again)
    answers = out.with_suffix(".answers.jsonl")
    old = answers.read_text().splitlines()
    answers.write_text(
        "\n".join([old[0]] + [json.dumps({k: v for k, v in json.loads(x).items() if k != "in_form"}) for x in old[1:]])
        + "\n"
    )
    again = _Answerer(_how)
    res2 = evaluate(str(bench), str(out), runner=again, mode="generate", log=lambda s: None)
    assert again.asked == 0 and res2["table"] == res["table"]

    # likelihood mode and a predictor: no text, no flag, no word on the form
    for kw in ({"runner": _Answerer(_how), "mode": "likelihood"}, {"predictor": lambda q, f, i: (0, {})}):
        name = "lik" if "runner" in kw else "pred"
        r = evaluate(str(bench), str(tmp_path / f"{name}.json"), log=lambda s: None, **kw)
        assert all("in_form" not in row and "strict_accuracy" not in row for row in r["table"].values())
        recs = (tmp_path / f"{name}.answers.jsonl").read_text().splitlines()[1:]
        assert all("in_form" not in json.loads(x) for x in recs)
        md = (tmp_path / f"{name}.report.md").read_text()
        assert "asked form" not in md and "| level / category | n | accuracy | chance |" in md


def test_compare_shows_the_form_share_and_strict_accuracy(bench, tmp_path):
    """--compare's table has the overall share of answers in the asked form and the strict accuracy where either
    result has them (a likelihood result: nan), and no such rows between two results without them."""
    from sf2t.finevidbench.evaluate import compare_text

    gen = evaluate(str(bench), str(tmp_path / "g.json"), runner=_Answerer(_how), mode="generate", log=lambda s: None)
    lik = evaluate(str(bench), str(tmp_path / "l.json"), runner=_Answerer(_how), log=lambda s: None)
    text = compare_text(lik, gen, ("lik", "gen"))
    o = gen["overall"]
    assert f"| overall: answers in the asked form | nan | {o['in_form']:.3f} | +nan |" in text
    assert f"| overall: strict accuracy | nan | {o['strict_accuracy']:.3f} | +nan |" in text
    same = compare_text(gen, gen)
    assert f"| overall: strict accuracy | {o['strict_accuracy']:.3f} | {o['strict_accuracy']:.3f} | +0.000 |" in same
    assert "asked form" not in compare_text(lik, lik)


def test_missing_files_are_listed_and_skipped(bench, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(bench.parent, copy)
    b = json.loads((copy / "bench.json").read_text())
    img_q = next(q for q in b["questions"] if "frame_images" in q["video"])
    (copy / img_q["video"]["frame_images"][0]).unlink()
    lines = []
    res = evaluate(
        str(copy / "bench.json"), str(tmp_path / "r.json"), predictor=lambda q, f, i: (0, {}), log=lines.append
    )
    assert res["missing"] == [img_q["id"]] and res["coverage"] < 1.0
    assert any("1 question skipped: missing 1 file" in line for line in lines), lines
    # answered first, missing at a resume: not counted (n said 70 with 1 skipped)
    full = copy / "full"
    shutil.copytree(bench.parent, full)
    args = dict(predictor=lambda q, f, i: (q["answer_index"], {}), log=lambda s: None)
    assert evaluate(str(full / "bench.json"), str(tmp_path / "f.json"), **args)["overall"]["n"] == len(b["questions"])
    (full / img_q["video"]["frame_images"][0]).unlink()
    res = evaluate(str(full / "bench.json"), str(tmp_path / "f.json"), **args)
    assert res["overall"]["n"] == len(b["questions"]) - 1 and res["missing"] == [img_q["id"]]


def test_generate_has_room_for_the_longest_option(bench, tiny_qwen2_vl, monkeypatch):
    """Generate mode's token budget fits the question's longest option (a fixed 8 cut "4, 5, 2, 3, 1" short)."""
    import sf2t.train.evaluate as tev
    from sf2t.finevidbench.evaluate import VideoRunner, load_media

    b = load(bench)
    q = next(q for q in b["questions"] if q["category"] == "rearrangement")
    runner = VideoRunner(str(tiny_qwen2_vl))
    seen = {}
    monkeypatch.setattr(tev, "generate_answer", lambda *a, **k: seen.update(k) or "")
    runner.generate(q, *load_media(q, b["_root"]))
    longest = max(len(runner.tok(o, add_special_tokens=False)["input_ids"]) for o in q["options"])
    assert seen["max_new_tokens"] > longest > 8


def test_tiny_model_end_to_end_near_chance_and_compare(bench, tmp_path, tiny_qwen2_vl, capsys):
    """`sf2t eval` on the untrained tiny model (likelihood mode) scores near chance (a binomial bound at the
    benchmark's size); generate mode runs; --compare prints both."""
    out = tmp_path / "base.json"
    assert cli.main(["eval", "--model", str(tiny_qwen2_vl), "--bench", str(bench), "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    for key, r in res["table"].items():  # overall and per category: a 4-sigma binomial bound at its size
        if key == "overall" or key.startswith("category/"):
            p, n = r["chance"], r["n"]
            assert abs(r["accuracy"] - p) <= 4 * math.sqrt(p * (1 - p) / n) + 1 / n, key
    out2 = tmp_path / "gen.json"
    args = ["eval", "--model", str(tiny_qwen2_vl), "--bench", str(bench), "--out", str(out2), "--mode", "generate"]
    assert cli.main(args + ["--compare", str(out)]) == 0
    assert "| overall |" in capsys.readouterr().out
    assert "| overall |" in (tmp_path / "gen.compare.md").read_text()
    assert cli.main(["eval", "--model", str(tmp_path / "none"), "--bench", str(bench), "--out", str(out2)]) == 2
    assert (
        cli.main(
            [
                "eval",
                "--model",
                str(tiny_qwen2_vl),
                "--adapter",
                str(tmp_path),
                "--bench",
                str(bench),
                "--out",
                str(out2),
            ]
        )
        == 2
    )


@pytest.mark.parametrize(
    "case, words",
    [
        ("missing", "no such file"),
        ("folder", "is a folder"),
        ("binary", "not a text file"),
        ("list", "a benchmark is a JSON object"),
        ("other-json", "b.json: field 'format' must be 'sf2t-finevidbench/1', got None (sf2t finevidbench build"),
        ("compare-missing", "--compare"),
        ("compare-not-results", "not an sf2t eval results file"),
        ("batch", "--batch-size must be >= 1"),
        ("device", "--device: device 'tpu' is not a torch device"),
        ("out-is-bench", "is an input of this command"),  # the results once replaced the benchmark
        # the benchmark's own files: a synthetic clip's ground truth, once replaced by the results; a question's frame
        # image, once replaced by the chart written next to --out
        ("out-is-ground-truth", "is an input of this command"),
        ("chart-is-a-frame", "(written next to it): is an input of this command"),
        # --bench a link to the benchmark from another folder: its files are those next to the file linked to
        ("linked-bench-ground-truth", "is an input of this command"),
        ("all-missing", "none of the"),  # once exit 0 with accuracy NaN on 0 questions
        ("empty", "b.json: lists no question (field 'questions' is empty)"),  # the same, from a benchmark of none
        # a size the Qwen families cannot pack: in the option's terms, with the nearest one (once named frame_size)
        (
            "frame-size",
            "--frame-size 50 450: H and W must be positive multiples of 28 for Qwen2-VL (patch 14 x merge "
            "2); use --frame-size 56 448",
        ),
        # frames larger than Qwen2-VL's processors make (max_pixels): once accepted, to run out of memory
        (
            "frame-size-huge",
            "--frame-size 28000 28000: frames too large for Qwen2-VL: 784,000,000 pixels a frame, more than its "
            "processors make (the checkpoints' max_pixels 28*28*16384 = 12,845,056;",
        ),
    ],
)
def test_eval_bad_files_fail_before_the_model_loads(bench, tmp_path, capsys, case, words):
    """The benchmark, --compare and the numbers are checked first: the model path here does not exist, so an error
    about the file (not the model) shows the check came before loading it."""
    b, extra = str(bench), []
    if case == "missing":
        b = str(tmp_path / "nope.json")
    elif case == "folder":
        b = str(tmp_path)
    elif case == "binary":
        (tmp_path / "b.json").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
        b = str(tmp_path / "b.json")
    elif case == "list":
        (tmp_path / "b.json").write_text("[1, 2]")
        b = str(tmp_path / "b.json")
    elif case == "other-json":
        (tmp_path / "b.json").write_text('{"x": 1}')
        b = str(tmp_path / "b.json")
    elif case == "compare-missing":
        extra = ["--compare", str(tmp_path / "none.json")]
    elif case == "compare-not-results":
        (tmp_path / "r.json").write_text('{"table": [1]}')
        extra = ["--compare", str(tmp_path / "r.json")]
    elif case == "batch":
        extra = ["--batch-size", "0"]
    elif case == "device":
        extra = ["--device", "tpu"]
    elif case == "frame-size":
        extra = ["--frame-size", "50", "450"]
    elif case == "frame-size-huge":
        extra = ["--frame-size", "28000", "28000"]
    out = str(tmp_path / "o.json")
    if case == "out-is-bench":
        b = out = str(tmp_path / "b.json")
        shutil.copy(bench, b)
    elif case == "out-is-ground-truth":
        out = str(sorted((bench.parent / "videos").glob("scene_*.json"))[0])
    elif case == "linked-bench-ground-truth":
        (tmp_path / "b.json").symlink_to(bench)
        b = str(tmp_path / "b.json")
        out = str(sorted((bench.parent / "videos").glob("scene_*.json"))[0])
    elif case == "chart-is-a-frame":
        out = str(sorted((bench.parent / "frames").rglob("*.png"))[0].with_suffix(".json"))
    elif case == "all-missing":  # moved without its frames and videos (the questions that show files under it)
        data = json.loads(bench.read_text())
        data["questions"] = [
            q for q in data["questions"] if "frame_images" in q["video"] or not q["video"]["path"].startswith("/")
        ]
        (tmp_path / "b.json").write_text(json.dumps(data))
        b = str(tmp_path / "b.json")
    elif case == "empty":
        data = json.loads(bench.read_text())
        (tmp_path / "b.json").write_text(json.dumps({**data, "questions": []}))
        b = str(tmp_path / "b.json")
    argv = ["eval", "--model", str(tmp_path / "no-model"), "--bench", b, "--out", out, *extra]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and "no-model" not in err and "Traceback" not in err
    if case == "empty":  # export wrote task files with no question in them
        argv = ["finevidbench", "export", "--bench", b, "--format", "lmms-eval", "--out", str(tmp_path / "x")]
        assert cli.main(argv) == 2
        assert words in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_export_for_lmms_eval(bench, tmp_path):
    import importlib.util

    import yaml

    from sf2t.finevidbench.export import LMMS_REQUIRED_KEYS
    from sf2t.video import probe

    qs = load(bench)["questions"]
    out = tmp_path / "lmms"
    assert cli.main(["finevidbench", "export", "--bench", str(bench), "--format", "lmms-eval", "--out", str(out)]) == 0

    class Loader(yaml.SafeLoader):  # lmms-eval's loader resolves `!function module.name`
        pass

    Loader.add_constructor("!function", lambda loader, node: ("function", loader.construct_scalar(node)))
    (cfg_path,) = out.glob("*.yaml")
    cfg = yaml.load(cfg_path.read_text(), Loader=Loader)
    assert set(LMMS_REQUIRED_KEYS) <= set(cfg)
    assert cfg["dataset_path"] == "json" and cfg["output_type"] == "generate_until"
    data = cfg["dataset_kwargs"]["data_files"][cfg["test_split"]]
    rows = [json.loads(line) for line in open(data)]
    assert len(rows) == len(qs)
    spec = importlib.util.spec_from_file_location("sf2t_lmms_utils", out / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    for q, r in zip(qs, rows):
        vis = utils.doc_to_visual(r)
        assert all(__import__("os").path.isfile(v) for v in vis)
        n = len(q["video"].get("frames") or q["video"]["frame_images"])
        assert probe(vis[-1]).num_frames == n  # the presented frames, one video frame each
        assert utils.doc_to_text(r).startswith(q["question"]) and utils.doc_to_text(r).endswith("\n" + ANSWER_LINE)
        assert utils.process_results(r, [r["answer"] + "."])["accuracy"] == 1.0
        wrong = (r["answer_index"] + 1) % len(r["options"])
        assert utils.process_results(r, [r["options"][wrong]])["accuracy"] == 0.0
        for said in (f"({r['answer']})", f"Answer: {r['answer']}", r["options"][r["answer_index"]], "I don't know"):
            assert utils.parse_choice(said, r["options"]) == parse_choice(said, r["options"])  # sf2t's own parser
            assert utils.process_results(r, [said])["accuracy"] == float(said != "I don't know"), said


def test_export_for_vlmevalkit(bench, tmp_path):
    import csv
    import importlib.util
    import py_compile

    qs = load(bench)["questions"]
    out2 = tmp_path / "vlm"
    assert (
        cli.main(["finevidbench", "export", "--bench", str(bench), "--format", "vlmevalkit", "--out", str(out2)]) == 0
    )
    (tsv,) = out2.glob("*.tsv")
    with open(tsv) as fh:
        table = list(csv.DictReader(fh, delimiter="\t"))
    assert len(table) == len(qs) and {"index", "video", "question", "A", "B", "answer"} <= set(table[0])
    for q, row in zip(qs, table):
        assert row["answer"] == "ABCDEFGH"[q["answer_index"]] and row[row["answer"]] == q["options"][q["answer_index"]]
        assert (out2 / row["video"]).is_file()
    py_compile.compile(str(out2 / "sf2t_vlmevalkit.py"), doraise=True)
    pytest.importorskip("pandas")  # the dataset class reads the TSV with pandas, as VLMEvalKit does
    spec = importlib.util.spec_from_file_location("sf2t_vlm", out2 / "sf2t_vlmevalkit.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ds = mod.SF2TFineVidBench()
    assert len(ds) == len(qs)
    msg = ds.build_prompt(0)
    assert msg[0]["type"] == "video" and __import__("os").path.isfile(msg[0]["value"])
    assert msg[1]["value"].startswith(qs[0]["question"]) and msg[1]["value"].endswith("\n" + ANSWER_LINE)
    pred = ds.data.copy()
    pred["prediction"] = pred["answer"]
    pred.to_csv(tmp_path / "pred.tsv", sep="\t", index=False)
    acc = ds.evaluate(str(tmp_path / "pred.tsv"))
    assert (acc["accuracy"] == 1.0).all()
    with pytest.raises(SystemExit) as e:  # argparse names the allowed formats
        cli.main(["finevidbench", "export", "--bench", str(bench), "--format", "nope", "--out", str(out2)])
    assert e.value.code == 2
    # predictions scored as sf2t eval parses them: "(B)", "Answer: B", option text; a wrong option whose text starts
    # with the right letter ("Different: top." when D is right) is wrong (the class read the first character)
    for i, form in enumerate(["({})", "Answer: {}", "text", "wrong-text"]):
        rows = []
        for q in qs:
            right = q["answer_index"]
            if form == "text":
                rows.append(q["options"][right])
            elif form == "wrong-text":
                rows.append(q["options"][(right + 1) % len(q["options"])])
            else:
                rows.append(form.format("ABCDEFGH"[right]))
        pred = ds.data.copy()
        pred["prediction"] = rows
        pred.to_csv(tmp_path / f"pred{i}.tsv", sep="\t", index=False)
        acc = ds.evaluate(str(tmp_path / f"pred{i}.tsv"))
        assert (acc["accuracy"] == (0.0 if form == "wrong-text" else 1.0)).all(), form


def test_export_numeric_options_and_the_out_folder(bench, tmp_path, capsys):
    """A counting-only benchmark has numbers for every option: the VLMEvalKit class must still read them as options
    (pandas read them as integers, and the class kept none). An export never writes into a folder of other files
    (a user's utils.py was replaced), and a re-export replaces the earlier one's files, none lingering."""
    import importlib.util

    pytest.importorskip("pandas")
    manifest = str(bench.parent.parent / "m.jsonl")
    counting = tmp_path / "c" / "bench.json"
    argv = ["finevidbench", "build", "--manifest", manifest, "--tasks", "counting", "--quiet"]
    assert cli.main([*argv, "--per-category", "3", "--out", str(counting)]) == 0
    qs = load(counting)["questions"]
    out = tmp_path / "vlm"
    export = ["finevidbench", "export", "--bench", str(counting), "--format", "vlmevalkit", "--out", str(out)]
    assert cli.main(export) == 0
    spec = importlib.util.spec_from_file_location("sf2t_vlm_numeric", out / "sf2t_vlmevalkit.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ds = mod.SF2TFineVidBench()
    for i, q in enumerate(qs):
        assert ds.options(ds.data.iloc[i]) == q["options"]
        assert "A. " + q["options"][0] in ds.build_prompt(i)[1]["value"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "utils.py").write_text("def mine(): pass\n")
    other = ["finevidbench", "export", "--bench", str(bench), "--format", "lmms-eval", "--out", str(mine)]
    assert cli.main(other) == 2
    assert "not an earlier sf2t finevidbench export" in capsys.readouterr().err
    assert (mine / "utils.py").read_text() == "def mine(): pass\n" and not (mine / "videos").exists()
    bigger = ["finevidbench", "export", "--bench", str(bench), "--format", "lmms-eval", "--out", str(out)]
    assert cli.main(bigger) == 0
    assert cli.main(export) == 0  # back to the small one: the bigger export's files are gone
    videos = sorted(p.stem for p in (out / "videos").glob("*.mp4"))
    assert videos == sorted(q["id"] for q in qs) and not list(out.glob("*.yaml"))


def test_task_parameters_and_model_layouts(bench, tmp_path, tiny_qwen2_vl):
    """--task-config takes a run's task parameters; eval packs frames as the model was trained (pairs, fixed size)."""
    manifest = bench.parent.parent / "m.jsonl"
    cfg = tmp_path / "train_config.json"
    cfg.write_text(json.dumps({"counting": {"count_min": 3, "count_max": 4}, "lr": 0.1}))
    out = tmp_path / "b" / "bench.json"
    args = ["finevidbench", "build", "--manifest", str(manifest), "--out", str(out), "--tasks", "counting"]
    assert cli.main(args + ["--per-category", "6", "--task-config", str(cfg)]) == 0
    qs = load(out)["questions"]
    counts = {q["options"][q["answer_index"]] for q in qs if q["category"] == "counting"}
    assert counts and counts <= {"3", "4"}
    res = tmp_path / "r.json"
    ev = ["eval", "--model", str(tiny_qwen2_vl), "--bench", str(out), "--out", str(res)]
    assert cli.main(ev + ["--layout", "pairs", "--frame-size", "56", "56"]) == 0
    assert json.loads(res.read_text())["overall"]["n"] == len(qs)
    with pytest.raises(ValueError, match="multiples of 28"):
        from sf2t.finevidbench.evaluate import QwenRunner

        QwenRunner(str(tiny_qwen2_vl), frame_size=(50, 56))


def test_scene_annotations(bench, tmp_path):
    """User labels become scene questions: the label among distractors from the other labels, every variant
    inside the labelled span; bad lines are named."""
    videos = sorted((bench.parent.parent / "v").glob("*.mp4"))
    ann = tmp_path / "labels.jsonl"
    rows = [
        {"video": str(videos[0]), "label": "a busy street", "start": 5, "end": 60},
        {"video": str(videos[1]), "label": "a quiet room"},
        {"video": str(videos[2]), "label": "a dog running", "category": "activity"},
    ]
    ann.write_text("".join(json.dumps(r) + "\n" for r in rows))
    b = build(None, str(tmp_path / "b" / "bench.json"), scene_annotations=str(ann), log=lambda s: None)
    qs = b["questions"]
    assert len(qs) == 3 * 5 and {q["category"] for q in qs} == {"label", "activity"}
    for q in qs:
        label = q["meta"]["label"]
        assert q["options"][q["answer_index"]] == label and len(q["options"]) == 3  # 3 labels in all
        if q["meta"]["annotation_line"] == 1:
            assert all(5 <= f < 60 for f in q["video"]["frames"])
    ann.write_text(json.dumps({"video": str(videos[0])}) + "\n")
    with pytest.raises(ValueError, match="line 1 needs 'video'"):
        build(None, str(tmp_path / "c.json"), scene_annotations=str(ann), log=lambda s: None)


def test_event_order_questions_follow_the_ground_truth():
    import random

    from sf2t.finevidbench.build import scene_questions
    from sf2t.synth.scene import ground_truth

    found = 0
    for seed in range(20):
        gt = ground_truth(seed, width=160, height=120, seconds=5)
        qs = [
            q for q in scene_questions(gt, "v.mp4", f"s{seed}", random.Random(seed)) if q["category"] == "event_order"
        ]
        if not qs:
            continue
        found += 1
        assert {q["variant"] for q in qs} == {"original", "speed_2x", "speed_0.5x"}
        (a, b) = qs[0]["meta"]["events"]
        assert a[0] < b[0]  # the first event in time is the first in the correct option
        truth = qs[0]["options"][qs[0]["answer_index"]]
        verb = "appears" if a[1] == "appear" else "disappears"
        assert truth.startswith("First the ") and truth.split(",")[0].endswith(verb)
        for q in qs:  # each variant shows a frame between the two events: the order can be seen
            shown = q["video"]["frames"]
            assert any(f < a[0] for f in shown) and any(a[0] <= f < b[0] for f in shown), q["variant"]
            assert any(f >= b[0] for f in shown)
    assert found >= 3
    # 125 frames: the original shows 0, 8, 17, ...; speed_2x 0, 17, 33, ...: events at 1 and 17 are 2 original
    # strides apart, yet no 2x frame falls between them, so that variant cannot show their order: not asked
    gt = ground_truth(0, width=160, height=120, seconds=5)
    assert gt["num_frames"] == 125
    gt["events"] = [{"frame": 1, "type": "appear", "sprite": 0}, {"frame": 17, "type": "appear", "sprite": 1}]
    assert not [q for q in scene_questions(gt, "v.mp4", "s", random.Random(0)) if q["category"] == "event_order"]


def test_lmms_eval_own_loader_reads_the_export(bench, tmp_path):
    """lmms-eval's task-config loader (lmms_eval.utils.load_yaml_config, mode "full": `!function` resolved from the
    task folder's utils.py) reads the export; every key is a field of lmms-eval's TaskConfig (read from its source
    without importing its dataset stack)."""
    import ast
    import importlib.util

    lmms_utils = pytest.importorskip("lmms_eval.utils")
    out = tmp_path / "lmms"
    assert cli.main(["finevidbench", "export", "--bench", str(bench), "--format", "lmms-eval", "--out", str(out)]) == 0
    (cfg_path,) = out.glob("*.yaml")
    cfg = lmms_utils.load_yaml_config(str(cfg_path), mode="full")
    for key in ("doc_to_visual", "doc_to_text", "process_results"):
        assert callable(cfg[key]), key
    task_py = importlib.util.find_spec("lmms_eval").submodule_search_locations[0] + "/api/task.py"
    tree = ast.parse(open(task_py).read())
    cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "TaskConfig")
    fields = {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign)}
    assert set(cfg) <= fields, set(cfg) - fields
    rows = [json.loads(line) for line in open(cfg["dataset_kwargs"]["data_files"][cfg["test_split"]])]
    r = rows[0]
    assert cfg["process_results"](r, [r["answer"]])["accuracy"] == 1.0
    assert all(__import__("os").path.isfile(v) for v in cfg["doc_to_visual"](r))


def test_batched_likelihood_equals_one_at_a_time_and_model_checks(bench, tmp_path, tiny_qwen2_vl):
    from sf2t.finevidbench.evaluate import QwenRunner, load_media

    b = load(bench)
    runner = QwenRunner(str(tiny_qwen2_vl))
    items = [(q, *load_media(q, b["_root"])) for q in b["questions"][:5]]  # incl. a localization image or not
    batched = runner.likelihood_batch(items)
    for (q, f, i), got in zip(items, batched):
        torch.testing.assert_close(torch.tensor(got), torch.tensor(runner.likelihood(q, f, i)), atol=1e-4, rtol=0)
    fake = tmp_path / "llm"
    fake.mkdir()
    (fake / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ValueError, match="llama checkpoint.*video"):
        QwenRunner(str(fake))


def test_eval_uses_the_runs_token_compression(bench, tmp_path, tiny_qwen2_vl, capsys):
    """A run trained with token compression is scored with it: `sf2t eval` reads the run's train_config.json
    (frame size, layout, keep ratio, stage), patches the model and writes the kept number of video placeholders;
    the command line overrides the run."""
    import shutil

    from sf2t.finevidbench import _run_settings, main_eval
    from sf2t.finevidbench.evaluate import QwenRunner, load_media
    from sf2t.models.compress import find_qwen_inner
    from sf2t.models.qwen2_vl import VIDEO_PAD
    from sf2t.ops.token_merge import kept_count

    run = tmp_path / "run"
    shutil.copytree(tiny_qwen2_vl, run / "model")  # a full fine-tune's layout: out_dir/model + train_config.json
    settings = {"frame_size": [56, 84], "layout": "repeat", "token_keep_ratio": 0.5, "token_stage": "before_tower"}
    settings["token_first_group"] = "budget"
    (run / "train_config.json").write_text(json.dumps({**settings, "lr": 0.1}))
    out = tmp_path / "r.json"
    argv = ["--model", str(run / "model"), "--bench", str(bench), "--out", str(out)]
    assert main_eval(argv) == 0
    assert "as the run was trained" in capsys.readouterr().err
    assert json.loads(out.read_text())["overall"]["n"] == len(load(bench)["questions"])

    class Args:
        adapter, model, frame_size, layout, token_keep_ratio, token_stage, token_first_group = (
            None,
            str(run / "model"),
            None,
            None,
            0.25,
            None,
            None,
        )

    assert _run_settings(Args) == {**settings, "token_keep_ratio": 0.25}  # the command line wins
    Args.model = str(tiny_qwen2_vl)  # a base checkpoint: no run, the defaults
    Args.token_keep_ratio = None
    assert _run_settings(Args) == {
        "frame_size": None,
        "layout": "repeat",
        "token_keep_ratio": 1.0,
        "token_stage": "after_tower",
        "token_first_group": "all",
    }

    kw = dict(frame_size=(56, 84), token_keep_ratio=0.5, token_stage="before_tower", token_first_group="budget")
    runner = QwenRunner(str(run / "model"), **kw)
    assert find_qwen_inner(runner.model)._sf2t_cfg["stage"] == "before_tower"
    assert find_qwen_inner(runner.model)._sf2t_cfg["first_group"] == "budget"
    b = load(bench)
    q = next(q for q in b["questions"] if len(q["video"]["frames"]) >= 3)
    frames, image = load_media(q, b["_root"])
    s = runner._sample(q, frames, image, q["options"][0])
    vid = runner.tok.convert_tokens_to_ids(VIDEO_PAD)
    t, h, w = s["video_grid_thw"][0].tolist()
    n_kept = kept_count([[t, h // 2, w // 2]], 0.5, first_group="budget")[0]
    assert n_kept < kept_count([[t, h // 2, w // 2]], 0.5)[0]  # the first group budgeted too
    assert int((s["input_ids"] == vid).sum()) == n_kept
    full = QwenRunner(str(run / "model"), frame_size=(56, 84))
    item = [(q, frames, image)]
    assert runner.likelihood_batch(item) != full.likelihood_batch(item)  # the compressed model saw fewer tokens
    with pytest.raises(ValueError, match="token_keep_ratio must be in"):
        QwenRunner(str(run / "model"), token_keep_ratio=0.0)
    # the demo's folder: the base checkpoint sits next to the run's config, and is scored as a base
    shutil.copytree(tiny_qwen2_vl, run / "base")
    (run / "train_config.json").write_text(json.dumps({**settings, "model": str(run / "base")}))
    Args.model = str(run / "base")
    assert _run_settings(Args)["token_keep_ratio"] == 1.0 and _run_settings(Args)["frame_size"] is None
    Args.model = str(run / "model")
    assert _run_settings(Args)["token_keep_ratio"] == 0.5  # the run's result is scored as trained
    # with an adapter, only the adapter's run counts (not a config next to the base)
    (tmp_path / "lora").mkdir()
    (tmp_path / "lora" / "adapter").mkdir()
    Args.model, Args.adapter = str(run / "base"), str(tmp_path / "lora" / "adapter")
    assert _run_settings(Args)["token_keep_ratio"] == 1.0
    (tmp_path / "lora" / "train_config.json").write_text(json.dumps({"token_keep_ratio": 0.25}))
    assert _run_settings(Args)["token_keep_ratio"] == 0.25
    Args.adapter = None
    (run / "train_config.json").write_text("[1, 2]")
    assert main_eval(argv) == 2 and "not a run's settings" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["llava_onevision", "llava_next_video"])
def test_eval_runs_the_llava_families(bench, tmp_path, name, capsys):
    """`sf2t eval` on tiny LLaVA-OneVision / LLaVA-NeXT-Video checkpoints: every question scored (frames at the
    processor's size, localization's target image as the processor's anyres tiles), batched likelihood equal to one
    question at a time, a run's token compression applied, and Qwen-only options refused by name."""
    from sf2t.finevidbench.evaluate import VideoRunner, load_media
    from sf2t.models import FAMILIES
    from sf2t.models.compress import find_llava_inner

    ckpt = FAMILIES[name].build_tiny(tmp_path / name, seed=0)
    out = tmp_path / "r.json"
    assert cli.main(["eval", "--model", str(ckpt), "--bench", str(bench), "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["overall"]["n"] == len(load(bench)["questions"]) and res["coverage"] == 1.0
    b = load(bench)
    runner = VideoRunner(str(ckpt))
    img_q = next(q for q in b["questions"] if q.get("image"))
    items = [(q, *load_media(q, b["_root"])) for q in [img_q, *b["questions"][:3]]]
    batched = runner.likelihood_batch(items)
    for (q, f, i), got in zip(items, batched):
        torch.testing.assert_close(torch.tensor(got), torch.tensor(runner.likelihood(q, f, i)), atol=1e-4, rtol=0)
    # a run trained with compression (train_config.json next to the model): scored compressed, its frame size unused
    run = tmp_path / "run"
    shutil.copytree(ckpt, run / "model")
    (run / "train_config.json").write_text(json.dumps({"frame_size": [56, 56], "token_keep_ratio": 0.5}))
    capsys.readouterr()
    argv = ["eval", "--model", str(run / "model"), "--bench", str(bench), "--out", str(tmp_path / "c.json")]
    assert cli.main(argv) == 0
    assert "token_keep_ratio=0.5" in capsys.readouterr().err
    small = VideoRunner(str(run / "model"), token_keep_ratio=0.5)
    assert find_llava_inner(small.model)._sf2t_cfg["keep"] == 0.5
    assert small.likelihood_batch(items[1:2]) != runner.likelihood_batch(items[1:2])
    with pytest.raises(ValueError, match="processor's size"):
        VideoRunner(str(ckpt), frame_size=(56, 56))
    with pytest.raises(ValueError, match="processor's size"):
        VideoRunner(str(ckpt), layout="pairs")


def test_export_out_and_fps_are_checked(bench, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    argv = ["finevidbench", "export", "--bench", str(bench), "--format", "lmms-eval"]
    assert cli.main([*argv, "--out", str(tmp_path / "file")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert cli.main([*argv, "--out", str(tmp_path / "file" / "x")]) == 2  # a NotADirectoryError traceback before
    err = capsys.readouterr().err
    assert f"{tmp_path / 'file'} is a file, not a folder" in err and "Traceback" not in err
    assert cli.main([*argv, "--out", str(tmp_path / "x"), "--fps", "0"]) == 2
    assert "--fps must be >= 1" in capsys.readouterr().err and not (tmp_path / "x").exists()
    for task in ("../../evil", 'a"b', "x/y", ".hidden", ""):  # a path out of --out, or code in the generated files
        assert cli.main([*argv, "--out", str(tmp_path / "x"), "--task", task]) == 2
        assert "a name is ASCII letters, digits" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not list(tmp_path.parent.glob("evil*"))


def test_build_tasks_given_empty_is_an_error_with_a_suggestion(bench, tmp_path, capsys):
    """--tasks with no name (alone, "", ",") built all six tasks without a word: it is an error listing the valid
    names, and a mistyped name gets the one it most likely meant. Commas separate names too."""
    from sf2t.tasks import TASKS

    manifest = str(bench.parent.parent / "m.jsonl")
    argv = ["finevidbench", "build", "--manifest", manifest, "--per-category", "1", "--quiet"]
    for given in ([], [""], [","], [" , "]):
        assert cli.main([*argv, "--tasks", *given, "--out", str(tmp_path / "b.json")]) == 2, given
        err = capsys.readouterr().err
        assert "--tasks: no task names given; name one or more of: " + ", ".join(TASKS) in err, (given, err)
        assert not (tmp_path / "b.json").exists()
    assert cli.main([*argv, "--tasks", "countng", "--out", str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'countng' (did you mean 'counting'?); valid: counting, " in err and "Traceback" not in err
    with pytest.raises(ValueError, match="no task names given"):
        build(manifest, str(tmp_path / "b.json"), tasks=[], log=lambda s: None, progress=False)
    assert cli.main([*argv, "--tasks", "counting,speed", "--out", str(tmp_path / "b.json")]) == 0
    qs = load(tmp_path / "b.json")["questions"]
    assert {q["category"] for q in qs if q["level"] == "fragment"} == {"counting", "speed"}


def test_names_are_used_as_given_or_refused_with_the_safe_one(bench, tmp_path, capsys):
    """build --name and export --task follow one rule (they name an export's task and files): a name that is not
    ASCII letters, digits, '_', '.', '-' is refused with the name to use; a benchmark's own name (the file's stem, or
    from elsewhere) that export has to make safe is said, with the task name it used (it was changed silently)."""
    argv = ["finevidbench", "build", "--synthetic", "1", "--per-category", "1", "--quiet"]
    assert cli.main([*argv, "--name", "my task/v1", "--out", str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err
    assert "--name 'my task/v1': a name is ASCII letters, digits, '_', '.' and '-'" in err and "'my_task_v1'" in err
    assert not (tmp_path / "b.json").exists()
    exp = ["finevidbench", "export", "--bench", str(bench), "--format", "lmms-eval", "--out", str(tmp_path / "x")]
    assert cli.main([*exp, "--task", "my task/v1"]) == 2
    assert "--task 'my task/v1': a name is ASCII" in capsys.readouterr().err and not (tmp_path / "x").exists()
    # a benchmark named otherwise (by hand, or the stem of "my bench.json"): its derived task name is said
    data = json.loads(bench.read_text())
    q = next(q for q in data["questions"] if "path" in q.get("video", {}))
    q["video"]["path"] = str((bench.parent / q["video"]["path"]).resolve())
    named = tmp_path / "named.json"
    named.write_text(json.dumps({**data, "name": "My task/v1 é", "questions": [q]}))
    exp = ["finevidbench", "export", "--bench", str(named), "--format", "lmms-eval", "--out", str(tmp_path / "y")]
    assert cli.main(exp) == 0
    out = capsys.readouterr().out
    assert "task name 'sf2t_my_task_v1': the benchmark's name 'My task/v1 é' made a safe name" in out, out
    assert "as task 'sf2t_my_task_v1'" in out and (tmp_path / "y" / "sf2t_my_task_v1.yaml").is_file()
    named.write_text(json.dumps({**data, "name": "b" * 128, "questions": [q]}))  # a safe name of the most length
    exp[-1] = str(tmp_path / "z")
    assert cli.main(exp) == 0
    long = "sf2t_" + "b" * 123  # the rule's 128 characters, not 133 ("sf2t_" and the 128 of the name)
    assert f"as task '{long}'" in capsys.readouterr().out and (tmp_path / "z" / f"{long}.yaml").is_file()


def test_build_task_config_sections_are_checked(bench, tmp_path, capsys):
    """--task-config's task sections are converted and checked as sf2t train checks them: a field the task does not
    have was a TypeError traceback once the clips were made; a section that is not a mapping was silently ignored."""
    manifest = str(bench.parent.parent / "m.jsonl")
    argv = ["finevidbench", "build", "--manifest", manifest, "--per-category", "1", "--quiet"]
    cases = [
        ("counting: {bogus: 1}", "counting: CountingConfig has no field 'bogus'"),
        ("counting: 5", "counting: expected a mapping of the task's fields, got 5"),
        ("counting: {count_min: abc}", "counting: count_min: expected a whole number, got 'abc'"),
        ("disorder: {perm: 7}", "disorder: perm must be one of"),
    ]
    for text, words in cases:
        (tmp_path / "t.yaml").write_text(text + "\nlr: 0.001\n")
        assert cli.main([*argv, "--task-config", str(tmp_path / "t.yaml"), "--out", str(tmp_path / "b.json")]) == 2
        err = capsys.readouterr().err
        assert f"--task-config {tmp_path / 't.yaml'}: {words}" in err and "Traceback" not in err, err
        assert not (tmp_path / "b.json").exists()
    (tmp_path / "t.yaml").write_text("counting: {count_min: '3', count_max: 4}\nlr: 0.001\n")  # a string, as train
    args = [*argv, "--tasks", "counting", "--task-config", str(tmp_path / "t.yaml"), "--out", str(tmp_path / "b.json")]
    assert cli.main(args) == 0
    qs = load(tmp_path / "b.json")["questions"]
    counts = [q["meta"]["answer"] for q in qs if q["category"] == "counting"]
    assert counts and all(3 <= a["count"] <= 4 for a in counts), counts


def test_outputs_never_replace_a_file_that_is_not_text(bench, tmp_path, capsys):
    """eval --out, finevidbench build --out and throughput --json naming an existing video (or any file that is not
    text) that the command does not read: refused before any work (the results or figures replaced the video)."""
    video = tmp_path / "holiday.mp4"
    shutil.copy(sorted((bench.parent.parent / "v").rglob("*.mp4"))[0], video)
    before = video.read_bytes()
    words = f"{video}: exists and is not a text file (a video? an image?); writing it would destroy it"
    runs = [
        ["eval", "--model", str(tmp_path / "no-model"), "--bench", str(bench), "--out", str(video)],
        ["finevidbench", "build", "--synthetic", "1", "--quiet", "--out", str(video)],
        ["throughput", "--videos", str(bench.parent.parent / "v"), "--windows", "1", "--json", str(video)],
    ]
    for argv in runs:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert words in err and "no-model" not in err, err
    assert video.read_bytes() == before
    results = tmp_path / "r.json"  # an earlier results file (text) is replaced as before
    results.write_text("{}")
    from sf2t._files import check_out_file

    check_out_file(results, "--out", text=True)
    cut = tmp_path / "cut.txt"  # text whose first 64 KiB end inside a character
    cut.write_bytes(b"a" * ((1 << 16) - 1) + "é".encode())
    check_out_file(cut, "--out", text=True)


def test_out_checks_resolve_the_inputs_once(tmp_path, monkeypatch):
    """check_out_files (--out and its four side files) resolves a benchmark's inputs once, and only when a file it
    would write exists: each check resolved every input again (os.path.exists + realpath of each of 20,000 frame
    images, five times: 2.3 s before the model loaded). The messages still name the input as it was given: a link,
    a relative path."""
    import os

    from sf2t.finevidbench.evaluate import check_out_files, side_files

    frames = tmp_path / "frames"
    frames.mkdir()
    inputs = []
    for k in range(300):
        (frames / f"{k}.png").write_bytes(b"\x89PNG\r\n\x1a\n")
        inputs.append(str(frames / f"{k}.png"))
    out = tmp_path / "r.json"
    resolved = []
    real_realpath, real_stat = os.path.realpath, os.stat

    def realpath(p, *a, **k):
        resolved.append(p)
        return real_realpath(p, *a, **k)

    def stat(p, *a, **k):
        resolved.append(p)
        return real_stat(p, *a, **k)

    for existing in (False, True):
        if existing:  # a rerun: every file written exists
            out.write_text(json.dumps({"table": {}}))  # an earlier results file
            for f in side_files(out, True).values():
                f.write_bytes(b"\x89PNG\r\n\x1a\n" if f.suffix == ".png" else b"notes")
        resolved.clear()
        with monkeypatch.context() as m:
            m.setattr(os.path, "realpath", realpath)
            m.setattr(os, "stat", stat)
            check_out_files(out, inputs=inputs, compare=True)
        per_input = sum(p in inputs for p in resolved)
        assert per_input == (len(inputs) if existing else 0), (existing, per_input)
    link = tmp_path / "link.png"
    link.symlink_to(frames / "7.png")
    monkeypatch.chdir(tmp_path)
    for given, out in ((str(link), frames / "7.json"), ("frames/8.png", frames / "8.json")):
        with pytest.raises(ValueError, match=re.escape(f"(written next to it): is an input of this command ({given})")):
            check_out_files(out, inputs=[*inputs[10:], given])  # (7 and 8 named only so)


def test_build_refuses_bad_tasks_outputs_and_annotations(bench, tmp_path, capsys):
    """Unknown tasks, an --out that is one of the videos or lists it reads, and annotation lines that name an
    unusable video or frame indices that are no indices: one line each naming the problem (tracebacks before)."""
    root = bench.parent.parent
    manifest = str(root / "m.jsonl")
    video = str(sorted((root / "v").glob("*.mp4"))[0])
    before = open(video, "rb").read()
    argv = ["finevidbench", "build", "--manifest", manifest, "--per-category", "1", "--quiet"]
    assert cli.main([*argv, "--tasks", "bogus", "--out", str(tmp_path / "b.json")]) == 2
    assert "unknown task 'bogus'; valid: counting, " in capsys.readouterr().err
    assert cli.main([*argv, "--synthetic", "1", "--seed", "-1", "--out", str(tmp_path / "b.json")]) == 2
    assert "seed must be a non-negative int for synthetic clips, got -1\n" in capsys.readouterr().err  # said -1000
    for out in (video, manifest):
        assert cli.main([*argv, "--out", out]) == 2
        assert "is an input of this command" in capsys.readouterr().err
    assert open(video, "rb").read() == before
    (tmp_path / "empty.mp4").write_bytes(b"")
    cases = [
        ({"video": str(tmp_path / "empty.mp4"), "label": "a"}, "line 1: " + str(tmp_path / "empty.mp4")),
        ({"video": video, "label": "a", "start": 2, "end": 1}, "start (2) must be before end (1)"),
        ({"video": video, "label": "a", "start": 1.5}, "start must be a frame index (an int), got 1.5"),
        ({"video": video, "label": "a", "end": "x"}, "end must be a frame index"),
        ({"video": video, "label": "a", "end": 10**6}, "outside the video's"),
    ]
    for row, words in cases:
        ann = tmp_path / "labels.jsonl"
        ann.write_text(json.dumps(row) + "\n" + json.dumps({"video": video, "label": "b"}) + "\n")
        argv = ["finevidbench", "build", "--scene-annotations", str(ann), "--out", str(tmp_path / "c.json")]
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err, (row, err)


def test_out_that_is_a_text_file_of_another_kind_is_kept(bench, tmp_path, capsys):
    """finevidbench build --out and eval --out replace only what they wrote: an existing text file that is no
    benchmark (build) or no results JSON (eval), e.g. the manifest of another set or a notes file, is refused before
    anything runs (both replaced it, and build put its frames/ beside it). An empty file is taken."""
    notes = tmp_path / "notes.txt"
    for words, argv in (
        ("is not an sf2t benchmark", ["finevidbench", "build", "--synthetic", "1", "--quiet", "--out", str(notes)]),
        (
            "is not an sf2t eval results file",
            ["eval", "--model", str(tmp_path / "no-model"), "--bench", str(bench), "--out", str(notes)],
        ),
    ):
        notes.write_text('{"my": "notes"}\n')
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert f"--out {notes}: exists and {words}" in err and "Traceback" not in err, err
        assert notes.read_text() == '{"my": "notes"}\n'
        assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    notes.write_text("")  # past the --out check: the model is what is missing
    assert cli.main(["eval", "--model", str(tmp_path / "no-model"), "--bench", str(bench), "--out", str(notes)]) == 2
    err = capsys.readouterr().err
    assert "no-model" in err and "results file" not in err, err


def test_eval_side_files_follow_the_out_rule(bench, tmp_path, capsys):
    """The files eval writes next to --out F (F.answers.jsonl, .report.md, .png, .compare.md) follow --out's rule,
    checked before the model loads: never a folder (a traceback once every question was answered), a file of another
    kind, or an input (--compare F --out F replaced the results compared with). The model path does not exist: an
    error about the file, not the model, shows the check came first."""
    out = tmp_path / "r.json"
    argv = ["eval", "--model", str(tmp_path / "no-model"), "--bench", str(bench), "--out", str(out)]
    for side in ("r.answers.jsonl", "r.report.md", "r.png"):
        (tmp_path / side).mkdir()
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert f"--out {out}: {tmp_path / side} (written next to it): is a folder; pass another --out" in err, (
            side,
            err,
        )
        assert "no-model" not in err and "Traceback" not in err
        (tmp_path / side).rmdir()
    (tmp_path / "r.png").write_text("my notes")
    assert cli.main(argv) == 2
    assert "r.png (written next to it): exists and is not a PNG image" in capsys.readouterr().err
    assert (tmp_path / "r.png").read_text() == "my notes"
    (tmp_path / "r.png").unlink()
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps({"table": {"overall": {"accuracy": 0.5, "n": 2}}}))
    same = ["eval", "--model", str(tmp_path / "no-model"), "--bench", str(bench), "--out", str(earlier)]
    assert cli.main([*same, "--compare", str(earlier)]) == 2
    err = capsys.readouterr().err
    assert f"--out {earlier}: is an input of this command" in err and "no-model" not in err, err
    (tmp_path / "r.compare.md").mkdir()
    assert cli.main([*argv, "--compare", str(earlier)]) == 2
    assert "r.compare.md (written next to it): is a folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier.json", "r.compare.md"]
    asked = []
    (tmp_path / "r.report.md").mkdir()  # through the API too: refused before any question is asked
    with pytest.raises(ValueError, match=r"r\.report\.md \(written next to it\): is a folder"):
        evaluate(str(bench), str(out), predictor=lambda q, f, i: asked.append(q) or (0, {}), log=lambda s: None)
    assert asked == [] and not out.exists()


def test_eval_api_never_replaces_the_benchmarks_files(bench, tmp_path):
    """evaluate() (the library call) refuses an --out, or a file written next to it, that is one of the files it
    reads, as `sf2t eval` does: a synthetic clip's ground truth, a question's frame image (the chart F.png next to
    --out F.json). It used to protect the benchmark file only, and replaced them."""
    frame = sorted((bench.parent / "frames").rglob("*.png"))[0]
    truth = sorted((bench.parent / "videos").glob("scene_*.json"))[0]
    cases = [
        (truth, f"--out {truth}: is an input of this command"),
        (frame.with_suffix(".json"), f"{frame} (written next to it): is an input of this command"),
        (bench, f"--out {bench}: is an input of this command"),
    ]
    before = {p: p.read_bytes() for p in (frame, truth, bench)}
    asked = []
    for out, words in cases:
        with pytest.raises(ValueError, match=re.escape(words)):
            evaluate(str(bench), str(out), predictor=lambda q, f, i: asked.append(q) or (0, {}), log=lambda s: None)
    assert asked == [] and all(p.read_bytes() == b for p, b in before.items())


def test_eval_never_replaces_a_manifest_videos_ground_truth(bench, tmp_path, capsys):
    """The ground truth .json next to a video given through --manifest (the build read it to ask scene questions)
    is an input of `sf2t eval` and evaluate(): --out there is refused as one (it was not among the files protected,
    only a synthetic clip's made by the build)."""
    qs = load(bench)["questions"]
    videos = {Path(q["video"]["path"]) for q in qs if Path(q["video"].get("path", "x")).is_absolute()}
    truths = sorted(v.with_suffix(".json") for v in videos if v.with_suffix(".json").is_file())
    assert truths, videos  # the fixture's manifest videos are synthetic clips with their ground truth
    truth = truths[0]
    before = truth.read_bytes()
    asked = []
    with pytest.raises(ValueError, match=re.escape(f"--out {truth}: is an input of this command")):
        evaluate(str(bench), str(truth), predictor=lambda q, f, i: asked.append(q) or (0, {}), log=lambda s: None)
    argv = ["eval", "--model", str(tmp_path / "no-model"), "--bench", str(bench), "--out", str(truth)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"--out {truth}: is an input of this command" in err and "Traceback" not in err, err
    assert asked == [] and truth.read_bytes() == before


def test_eval_never_replaces_the_ground_truth_of_a_clip_balanced_away(tmp_path):
    """Every manifest video's ground truth the build read is an input of `sf2t eval`, also one whose scene questions
    balancing left out (no question names its video): the benchmark lists them (ground_truth). Before, bench_files
    did not name them, so only the results-file check stood between --out and them."""
    from sf2t.finevidbench.evaluate import bench_files

    for i in range(4):
        synth.make_clip(tmp_path / "v" / f"c{i}", 30 + i, width=96, height=64, seconds=3, gop=12)
    assert cli.main(["index", str(tmp_path / "v"), "-o", str(tmp_path / "m.jsonl"), "--quiet", "--workers", "0"]) == 0
    out = tmp_path / "b" / "bench.json"
    build(str(tmp_path / "m.jsonl"), str(out), per_category=1, tasks=["counting"], log=lambda s: None, progress=False)
    b = load(out)
    truths = sorted((tmp_path / "v").glob("*.json"))
    named = {Path(q["video"]["path"]).with_suffix(".json") for q in b["questions"] if "path" in q["video"]}
    away = [t for t in truths if t not in named]
    assert len(truths) == 4 and away, named  # the case: ground truth read, its clip's questions all left out
    assert b["ground_truth"] == [str(t) for t in truths]
    assert set(map(str, truths)) <= set(bench_files(b))
    asked = []
    with pytest.raises(ValueError, match=re.escape(f"--out {away[0]}: is an input of this command")):
        evaluate(str(out), str(away[0]), predictor=lambda q, f, i: asked.append(q) or (0, {}), log=lambda s: None)
    assert asked == []


def _one_frame_question(**extra) -> dict:
    """A minimal fragment question showing one built frame image (``frames/q/00.png``), plus ``extra`` fields."""
    return {
        "id": "q",
        "level": "fragment",
        "category": "consistency",
        "variant": "original",
        "video": {"frame_images": ["frames/q/00.png"]},
        "question": "Are they the same?",
        "options": ["Yes.", "No."],
        "answer_index": 0,
        **extra,
    }


def test_bench_files_name_the_ground_truth_of_a_question_source(tmp_path):
    """A benchmark built before ground_truth was recorded: the ground truth next to a question's meta.source (a
    fragment question that shows built frame images names its video only there) is protected too; a ground_truth
    that is not a list of paths is a format error naming the field."""
    from sf2t.finevidbench.evaluate import bench_files

    video, png = tmp_path / "v" / "c.mp4", tmp_path / "b" / "frames" / "q" / "00.png"
    for f in (video, video.with_suffix(".json"), png):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("{}")
    q = _one_frame_question(meta={"source": str(video)})
    (tmp_path / "b" / "bench.json").write_text(
        json.dumps({"format": "sf2t-finevidbench/1", "name": "b", "questions": [q]})
    )
    assert bench_files(load(tmp_path / "b" / "bench.json")) == sorted([str(png), str(video.with_suffix(".json"))])
    with pytest.raises(BenchmarkError, match="field 'ground_truth' must be a list of paths"):
        validate({"format": "sf2t-finevidbench/1", "name": "b", "questions": [q], "ground_truth": "c.json"})


def test_eval_a_hub_id_says_how_to_get_the_checkpoint(bench, tmp_path, capsys):
    """No hub downloads: a hub id is refused with the command that fetches it; a plain missing folder is named."""
    argv = ["eval", "--bench", str(bench), "--out", str(tmp_path / "o.json")]
    assert cli.main([*argv, "--model", "Qwen/Qwen2-VL-2B-Instruct"]) == 2
    err = capsys.readouterr().err
    assert (
        "not a local checkpoint directory" in err
        and "`hf download Qwen/Qwen2-VL-2B-Instruct --local-dir ./ckpt`) and pass --model ./ckpt" in err
    )
    assert cli.main([*argv, "--model", str(tmp_path / "gone")]) == 2
    err = capsys.readouterr().err
    assert "gone' is not a local checkpoint directory" in err and "hf download" not in err


def test_eval_an_adapter_of_another_base_is_named(bench, tmp_path, tiny_qwen2_vl, capsys):
    """An adapter trained on another base model (other shapes): one line naming both folders and the first mismatch,
    not peft's list of every tensor."""
    from peft import LoraConfig, get_peft_model

    from sf2t.models import build_tiny_qwen2_vl, load_model_and_tokenizer

    model, _ = load_model_and_tokenizer(tiny_qwen2_vl)
    lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    lora.save_pretrained(tmp_path / "adapter")
    wider = build_tiny_qwen2_vl(tmp_path / "wider", hidden_size=96)
    argv = ["eval", "--model", str(wider), "--adapter", str(tmp_path / "adapter"), "--bench", str(bench)]
    assert cli.main([*argv, "--out", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("sf2t eval: adapter ") and "does not fit the base model" in err and "wider" in err
    assert "size mismatch" in err and "more)" in err and "Traceback" not in err


def test_loading_an_adapter_shows_no_warning_of_peft_about_transformers(tmp_path, tiny_qwen2_vl):
    """peft reads transformers' deprecated ``is_gradient_checkpointing`` when it loads an adapter: a FutureWarning the
    user can do nothing about, which sf2t eval --adapter showed (training filters it). Other warnings still pass."""
    import warnings

    from peft import LoraConfig, get_peft_model

    from sf2t.models import load_model_and_tokenizer
    from sf2t.models._build import load_adapter

    model, _ = load_model_and_tokenizer(tiny_qwen2_vl)
    get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj"])).save_pretrained(tmp_path / "a")
    model, _ = load_model_and_tokenizer(tiny_qwen2_vl)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        load_adapter(model, tmp_path / "a", tiny_qwen2_vl)
    assert not [w for w in said if "is_gradient_checkpointing" in str(w.message)], [str(w.message) for w in said]


def test_eval_interrupted_says_how_to_go_on(bench, tmp_path, capsys, monkeypatch):
    import sf2t.finevidbench.evaluate as ev

    def stopped(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ev, "evaluate", stopped)
    monkeypatch.setattr(ev, "VideoRunner", lambda *a, **k: None)
    out = tmp_path / "r.json"
    (tmp_path / "model").mkdir()
    assert cli.main(["eval", "--model", str(tmp_path / "model"), "--bench", str(bench), "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert f"interrupted; the answers so far are in {tmp_path / 'r.answers.jsonl'}" in err


def test_build_shows_progress_unless_quiet(bench, tmp_path, capsys):
    """A build large enough to take a while shows its progress on stderr (fragment questions); --quiet shows none;
    both give the same benchmark."""
    manifest = str(bench.parent.parent / "m.jsonl")
    argv = ["finevidbench", "build", "--manifest", manifest, "--per-category", "2", "--tasks", "counting", "disorder"]
    argv += ["speed", "consistency"]
    assert cli.main([*argv, "--out", str(tmp_path / "a" / "b.json")]) == 0
    assert "fragment questions" in capsys.readouterr().err
    assert cli.main([*argv, "--out", str(tmp_path / "q" / "b.json"), "--quiet"]) == 0
    assert "fragment questions" not in capsys.readouterr().err
    a, q = load(tmp_path / "a" / "b.json"), load(tmp_path / "q" / "b.json")
    assert [x["id"] for x in a["questions"]] == [x["id"] for x in q["questions"]]


def test_relative_paths_resolve_from_the_benchmark(bench, tmp_path, monkeypatch):
    """A manifest and labels written with paths relative to the working folder (as `sf2t index videos/` writes them)
    give a benchmark whose video paths resolve from the benchmark's own folder: none is missing when it is read from
    elsewhere, and a benchmark folder moved as a whole (its synthetic clips inside it) still finds its clips."""
    from sf2t.finevidbench.evaluate import _missing

    shutil.copytree(bench.parent.parent / "v", tmp_path / "videos")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["index", "videos", "-o", "m.jsonl", "--quiet", "--workers", "0"]) == 0
    assert json.loads((tmp_path / "m.jsonl").read_text().splitlines()[0])["path"].startswith("videos")
    ann = tmp_path / "labels.jsonl"
    ann.write_text("".join(json.dumps({"video": f"videos/c{i}.mp4", "label": f"label {i}"}) + "\n" for i in range(2)))
    argv = ["finevidbench", "build", "--manifest", "m.jsonl", "--per-category", "1", "--synthetic", "1"]
    argv += ["--tasks", "counting", "--scene-annotations", "labels.jsonl", "--quiet", "--out", "out/b.json"]
    assert cli.main(argv) == 0
    monkeypatch.chdir(tmp_path / "videos")  # read from elsewhere
    b = load(tmp_path / "out" / "b.json")
    paths = {q["video"]["path"] for q in b["questions"] if "path" in q["video"]}
    assert str(tmp_path / "videos" / "c0.mp4") in paths and "videos/scene_0000.mp4" in paths
    assert all(not _missing(q, b["_root"]) for q in b["questions"])
    shutil.move(str(tmp_path / "out"), str(tmp_path / "moved"))
    b = load(tmp_path / "moved" / "b.json")
    assert all(not _missing(q, b["_root"]) for q in b["questions"])


def test_rebuilds_clean_up_and_benchmarks_do_not_share_a_folder(bench, tmp_path, capsys):
    """A build writes frame images under frames/ and synthetic clips under videos/ next to the benchmark. A second,
    different benchmark built into the same folder would overwrite them (the first one's questions would show the new
    pictures): it is refused, naming the first. Rebuilding the same benchmark with fewer questions removes the files
    only the old build used."""
    from sf2t.finevidbench.build import _written_files

    manifest = str(bench.parent.parent / "m.jsonl")
    argv = ["finevidbench", "build", "--manifest", manifest, "--synthetic", "2", "--quiet"]
    out = tmp_path / "b" / "first.json"
    assert cli.main([*argv, "--per-category", "3", "--out", str(out)]) == 0
    first = _written_files(json.loads(out.read_text()))
    assert any(f.startswith("frames/") for f in first) and "videos/scene_0001.mp4" in first
    snapshot = {f: (out.parent / f).read_bytes() for f in first}
    assert cli.main([*argv, "--per-category", "1", "--seed", "7", "--out", str(tmp_path / "b" / "second.json")]) == 2
    err = capsys.readouterr().err
    assert f"{out} is a benchmark in the same folder" in err and "Traceback" not in err
    assert not (tmp_path / "b" / "second.json").exists()
    assert all((out.parent / f).read_bytes() == b for f, b in snapshot.items())  # nothing of the first touched
    argv[argv.index("--synthetic") + 1] = "1"
    assert cli.main([*argv, "--per-category", "1", "--out", str(out)]) == 0  # the same benchmark, smaller
    now = _written_files(json.loads(out.read_text()))
    assert now < first
    on_disk = {str(p.relative_to(out.parent)) for p in out.parent.rglob("*") if p.is_file()} - {out.name}
    assert on_disk == now


def test_synthetic_build_keeps_its_name_and_only_the_clips_it_uses(tmp_path):
    """The benchmark's name is --name, else the file's stem, also with --synthetic (the clip loop used to overwrite
    it with its last clip's name, scene_000N). Synthetic clips no question uses (their categories were full) are not
    left in videos/: the folder holds what the benchmark uses, so a rebuild can clean up after it."""
    from sf2t.finevidbench.build import _written_files

    out = tmp_path / "b" / "mybench.json"
    b = build(None, str(out), per_category=1, synthetic=3, seed=0, log=lambda s: None, progress=False)
    assert b["name"] == "mybench" and load(out)["name"] == "mybench"
    on_disk = {str(p.relative_to(out.parent)) for p in out.parent.rglob("*") if p.is_file()} - {out.name}
    assert on_disk == _written_files(b)
    assert len({f for f in on_disk if f.endswith(".mp4")}) < 3  # one question per category: not every clip is used
    b = build(None, str(out), per_category=1, synthetic=3, seed=0, name="given", log=lambda s: None, progress=False)
    assert b["name"] == "given"


def test_eval_does_not_mix_answers_of_two_settings(bench, tmp_path, capsys):
    """The answers file records what made its answers (model and adapter fingerprints, settings, mode, the benchmark's
    fingerprint). Resuming under another one is refused: a second model evaluated into the same --out used to get the
    first one's score without a question asked. An --out inside the model's folder is refused too."""
    calls = []

    def oracle(q, frames, image):
        calls.append(q["id"])
        return q["answer_index"], {}

    out = tmp_path / "r.json"
    evaluate(str(bench), str(out), predictor=oracle, setting={"model": "a"}, log=lambda s: None)
    n = len(calls)
    with pytest.raises(ValueError, match=r"were made by another setting \(model: 'a' -> 'b'\)"):
        evaluate(str(bench), str(out), predictor=oracle, setting={"model": "b"}, log=lambda s: None)
    res = evaluate(str(bench), str(out), predictor=oracle, setting={"model": "a"}, log=lambda s: None)
    assert len(calls) == n and res["setting"]["model"] == "a"  # the same setting resumes: nothing asked again
    copy = tmp_path / "copy"
    shutil.copytree(bench.parent, copy)
    b = json.loads((copy / "bench.json").read_text())
    b["questions"][0]["answer_index"] = (b["questions"][0]["answer_index"] + 1) % len(b["questions"][0]["options"])
    (copy / "bench.json").write_text(json.dumps(b))
    with pytest.raises(ValueError, match="benchmark: "):
        evaluate(str(copy / "bench.json"), str(out), predictor=oracle, setting={"model": "a"}, log=lambda s: None)
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    argv = ["eval", "--model", str(model), "--bench", str(bench), "--out", str(model / "config.json")]
    assert cli.main(argv) == 2
    assert "inside the --model folder" in capsys.readouterr().err
    assert (model / "config.json").read_text() == "{}"


def test_a_failed_rebuild_leaves_the_benchmark_as_it_was(bench, tmp_path, capsys, monkeypatch, interrupt_after):
    """Frames and clips are made in a staging folder and moved in only when every question is made: a rebuild that
    is interrupted half way, or whose labels file is bad, leaves the earlier benchmark and its files untouched (it
    used to leave the old questions showing the new build's pictures). The labels are checked before any work."""
    import sf2t.tasks.export as export_mod

    manifest = str(bench.parent.parent / "m.jsonl")
    out = tmp_path / "b" / "bench.json"
    argv = ["finevidbench", "build", "--manifest", manifest, "--per-category", "2", "--synthetic", "1", "--quiet"]
    assert cli.main([*argv, "--out", str(out)]) == 0

    def state():
        return {str(p.relative_to(out.parent)): p.read_bytes() for p in out.parent.rglob("*") if p.is_file()}

    before = state()
    saved = interrupt_after(export_mod, "_save", 3)
    with pytest.raises(KeyboardInterrupt):
        build(manifest, str(out), per_category=2, synthetic=1, seed=7, log=lambda s: None, progress=False)
    monkeypatch.undo()
    assert len(saved) == 4 and state() == before  # nothing moved in, no staging folder left
    video = str(sorted((bench.parent.parent / "v").glob("*.mp4"))[0])
    labels = tmp_path / "labels.jsonl"
    labels.write_text(
        json.dumps({"video": video, "label": "a"}) + "\n" + json.dumps({"video": "nothere.mp4", "label": "b"}) + "\n"
    )
    assert cli.main([*argv, "--seed", "7", "--scene-annotations", str(labels), "--out", str(out)]) == 2
    assert "line 2" in capsys.readouterr().err and state() == before


def test_stale_files_that_cannot_be_removed_are_said(tmp_path, monkeypatch):
    """A rebuild removes the files the earlier build wrote that it no longer uses; one it cannot remove (no
    permission) is a warning naming it (it was passed over without a word, and no later rebuild knows of it); one
    gone already is not."""
    import errno

    from sf2t.finevidbench import files as b  # (where _remove_stale reads _written_files)

    (tmp_path / "frames").mkdir()
    for name in ("a", "b", "c"):
        (tmp_path / "frames" / f"{name}.png").write_bytes(b"")
    monkeypatch.setattr(b, "_written_files", lambda bench: set(bench["files"]))
    real_unlink = Path.unlink

    def unlink(self, *a, **k):
        if self.name == "b.png":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_unlink(self, *a, **k)

    monkeypatch.setattr(Path, "unlink", unlink)
    old = {"files": ["frames/a.png", "frames/b.png", "frames/c.png", "frames/gone.png"]}
    words = "1 file of the earlier build that this one no longer uses could not be removed: "
    words += f"{tmp_path / 'frames' / 'b.png'} (Permission denied); remove it by hand"
    with pytest.warns(UserWarning, match=f"^{re.escape(words)}$"):
        b._remove_stale(old, {"files": ["frames/c.png"]}, tmp_path)
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["b.png", "c.png"]


def test_putting_a_build_in_place_looks_for_each_folder_once(tmp_path, monkeypatch):
    """The move of a build's frames into the benchmark's folder looks for each folder once, not for every ancestor of
    every frame (up to the root: 440,000 lstat calls for 20,000 frames, a second of the move's three); over an
    earlier build too, whose frames it moves aside; the frames land where they belong."""
    import os

    from sf2t.finevidbench.build import _commit

    out = tmp_path / "a" / "b" / "bench"
    stage = out / ".build-x"
    names = [f"frames/clip{d}/{k:02d}.png" for d in range(3) for k in range(20)]
    looked = []
    real = os.path.lexists
    monkeypatch.setattr(os.path, "lexists", lambda p: looked.append(p) or real(p))
    for rebuild in (False, True):
        for name in names:
            (stage / name).parent.mkdir(parents=True, exist_ok=True)
            (stage / name).write_text(f"{rebuild}")
        looked.clear()
        _commit(stage, out / "b.json", "{}", set())
        assert len(looked) <= len(names) + 10, (rebuild, len(looked))  # each file's namesake, and a few folders
        assert all((out / name).read_text() == f"{rebuild}" for name in names)


@pytest.mark.parametrize("fail_at", ["benchmark", "second-file"])
def test_a_build_that_cannot_be_put_in_place_leaves_the_folder_consistent(tmp_path, capsys, monkeypatch, fail_at):
    """A failure while the build is put in place (a full disk at the benchmark file's write, or at a clip's move) is
    undone: a fresh folder keeps none of the build's files, a rebuilt one its earlier benchmark with its own files
    (the clips used to be moved in, then the benchmark's write failed: the old questions showed the new clips, or a
    fresh folder held clips no benchmark named). One line says what was kept."""
    import os

    real = os.replace

    def fail_in(folder):
        moved = []

        def replace(src, dst, *a, **k):
            dst = Path(dst)
            if dst.parent.parent == folder or dst.parent == folder:  # a move into the folder, not into the staging
                moved.append(dst)
                if (fail_at == "benchmark" and dst.suffix == ".json" and dst.parent == folder) or (
                    fail_at == "second-file" and len(moved) == 2
                ):
                    raise OSError(28, "No space left on device")
            return real(src, dst, *a, **k)

        return replace

    def state(folder):
        return {str(p.relative_to(folder)): p.is_file() and p.read_bytes() for p in folder.rglob("*")}  # folders too

    argv = ["finevidbench", "build", "--synthetic", "2", "--per-category", "1", "--quiet"]
    fresh = tmp_path / "fresh"
    monkeypatch.setattr(os, "replace", fail_in(fresh))
    assert cli.main([*argv, "--out", str(fresh / "b.json")]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and f"nothing of it was left in {fresh}" in err, err
    assert "Traceback" not in err and not fresh.exists()  # the folder the build made is removed too
    monkeypatch.undo()
    rebuilt = tmp_path / "rebuilt"
    assert cli.main([*argv, "--out", str(rebuilt / "b.json")]) == 0
    before = state(rebuilt)
    monkeypatch.setattr(os, "replace", fail_in(rebuilt))
    assert cli.main([*argv, "--seed", "5", "--out", str(rebuilt / "b.json")]) == 1
    err = capsys.readouterr().err
    assert f"{rebuilt} was left as it was (b.json and the files it uses unchanged)" in err, err
    monkeypatch.undo()
    assert state(rebuilt) == before and load(rebuilt / "b.json")["description"].endswith("seed 0, 1 per category")


_KILLED_BUILD = """
import os, pathlib, sys
real_replace, real_unlink, renames = os.replace, pathlib.Path.unlink, []
def replace(src, dst, *a, **k):  # a move out of the staging folder (not the journal's or the owner record's write)
    if "/.build-" in str(src) and not str(src).endswith(("journal.tmp", "owner.json.tmp")):
        renames.append(src)
        if sys.argv[2] == str(len(renames)):
            os._exit(9)  # as kill -9: no except, no finally
    return real_replace(src, dst, *a, **k)
def unlink(self, *a, **k):
    if sys.argv[2] == "journal" and self.name.endswith(".journal"):
        os._exit(9)
    return real_unlink(self, *a, **k)
os.replace, pathlib.Path.unlink = replace, unlink
import sf2t.finevidbench.build as b
if sys.argv[2] == "stale":  # right after the last rename, as the earlier build's files it no longer uses are removed
    b._remove_stale = lambda *a: os._exit(9)
# 4 clips, seed 1: it keeps scene_0000 alone, so the earlier build's scene_0001 is stale
clips, seed = (4, 1) if sys.argv[2] == "stale" else (2, 5)
b.build(None, sys.argv[1], per_category=1, synthetic=clips, seed=seed, log=lambda s: None, progress=False)
"""


@pytest.mark.parametrize("kill_at", ["1", "3", "stale", "journal"])
def test_a_build_killed_while_put_in_place_is_rolled_back_or_completed(tmp_path, capsys, kill_at):
    """A build over an earlier one killed (kill -9: no undo runs) at its first rename, half way through its renames
    (one new clip in, the next still the old one: two builds mixed), or after the last (the new benchmark file in;
    the earlier build's clip it no longer uses not yet removed, or its journal not yet removed) leaves a journal:
    eval refuses the benchmark saying how to recover, and the next build (or recover()) puts the folder back as it
    was before (or keeps the finished new build, without the earlier one's leftovers). Before, the mixed folder was
    taken for the earlier benchmark."""
    import os
    import subprocess
    import sys

    import sf2t
    from sf2t.finevidbench.place import journal_path, recover

    def state(folder):
        return {str(p.relative_to(folder)): p.is_file() and p.read_bytes() for p in folder.rglob("*")}

    out = tmp_path / "b" / "b.json"
    build(None, str(out), per_category=1, synthetic=2, seed=0, log=lambda s: None, progress=False)
    before = state(out.parent)
    env = {**os.environ, "PYTHONPATH": str(Path(sf2t.__file__).parent.parent), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", _KILLED_BUILD, str(out), kill_at], env=env, capture_output=True)
    assert run.returncode == 9, run.stderr.decode()
    assert journal_path(out).is_file() and state(out.parent) != before  # the case: stopped half way
    with pytest.raises(BenchmarkError, match="a build of it was stopped while its files were put in place"):
        load(out)
    argv = ["eval", "--model", str(tmp_path / "no-model"), "--bench", str(out), "--out", str(tmp_path / "r.json")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert (
        "run the same `sf2t finevidbench build` again (it first rolls the stopped build back, or completes it" in err
    ), err
    assert "Traceback" not in err
    if kill_at in ("stale", "journal"):  # the new build was whole: it stays
        from sf2t.finevidbench.build import _written_files
        from sf2t.finevidbench.evaluate import bench_files

        if kill_at == "stale":  # the case: the earlier build's scene_0001 is not the new one's
            assert (out.parent / "videos" / "scene_0001.mp4").is_file()
        assert recover(out) == "completed"
        b = load(out)
        assert b["description"].startswith(
            f"sf2t FineVidBench-style benchmark: seed {5 if kill_at == 'journal' else 1}"
        )
        assert not list(out.parent.glob(".build-*")) and not journal_path(out).exists()
        assert all(Path(f).is_file() for f in bench_files(b))
        on_disk = {str(p.relative_to(out.parent)) for p in out.parent.rglob("*") if p.is_file()}
        assert on_disk == {"b.json"} | _written_files(b), on_disk  # no leftover of the earlier build
    elif kill_at == "1":
        assert recover(out) == "rolled back" and recover(out) is None
        assert state(out.parent) == before
    else:  # the next build rolls the killed one back first, then builds
        logs = []
        build(None, str(out), per_category=1, synthetic=2, seed=0, log=logs.append, progress=False)
        assert any("had been stopped while its files were put in place: rolled back" in s for s in logs), logs
        after = state(out.parent)
        assert set(after) == set(before) and load(out)["description"].startswith(
            "sf2t FineVidBench-style benchmark: seed 0"
        )
        assert all(after[k] == before[k] for k in before if k.startswith("videos"))  # the same clips again


def test_a_killed_build_is_refused_through_a_symlink_from_another_folder(tmp_path, capsys):
    """``--bench`` a symlink (in another folder) to a benchmark whose build was killed while put in place: the journal
    is looked for next to the real file, so the benchmark is refused as in its own folder. Before, the journal was
    looked for next to the link and the mixed folder was read as a whole benchmark."""
    from sf2t.finevidbench.place import journal_path

    q = _one_frame_question()
    out = tmp_path / "b" / "bench.json"
    out.parent.mkdir()
    out.write_text(json.dumps({"format": "sf2t-finevidbench/1", "name": "b", "questions": [q]}))
    link = tmp_path / "elsewhere" / "link.json"
    link.parent.mkdir()
    link.symlink_to(out)
    assert load(link)["_root"] == str(out.parent.resolve())  # the case: the link reads the benchmark
    journal_path(out).write_text("{}")  # a build of it killed while its files were put in place
    for path in (out, link):
        with pytest.raises(BenchmarkError, match="a build of it was stopped while its files were put in place"):
            load(path)
    argv = ["eval", "--model", str(tmp_path / "no-model"), "--bench", str(link), "--out", str(tmp_path / "r.json")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"{link}: a build of it was stopped" in err and "Traceback" not in err, err


def test_a_build_through_a_symlinked_out_goes_to_its_target(tmp_path, capsys):
    """``--out`` a symlink (in another folder) to a benchmark: the build goes to the link's target, in its folder (its
    frames and clips, staging folder and journal too), and the link stays, pointing at the new build. Before, the
    clips went next to the link and the benchmark file was renamed over the link: the target stayed the earlier
    build, and the link became a regular file."""
    import os

    from sf2t.finevidbench.evaluate import bench_files

    real = tmp_path / "real" / "b.json"
    build(None, str(real), per_category=1, synthetic=2, seed=0, log=lambda s: None, progress=False)
    link = tmp_path / "elsewhere" / "link.json"
    link.parent.mkdir()
    link.symlink_to(real)
    argv = ["finevidbench", "build", "--synthetic", "2", "--per-category", "1", "--seed", "5", "--quiet"]
    assert cli.main([*argv, "--out", str(link)]) == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert f"wrote {real} (through the symlink {link}): " in capsys.readouterr().out
    b = load(link)
    assert b["description"].startswith("sf2t FineVidBench-style benchmark: seed 5") and b["_root"] == str(real.parent)
    assert all(Path(f).is_file() and Path(f).parent.parent == real.parent for f in bench_files(b))
    assert sorted(p.name for p in link.parent.iterdir()) == ["link.json"]  # no clip, staging folder, journal there
    # a link to a file that is not there: made, where its folder exists; refused where it does not
    (tmp_path / "new").mkdir()
    dangling = tmp_path / "elsewhere" / "dangling.json"
    dangling.symlink_to(tmp_path / "new" / "n.json")
    assert cli.main([*argv, "--out", str(dangling)]) == 0
    capsys.readouterr()
    assert dangling.is_symlink() and load(dangling)["_root"] == str(tmp_path / "new")
    assert (tmp_path / "new" / "videos").is_dir() and not (tmp_path / "elsewhere" / "videos").exists()
    nowhere = tmp_path / "elsewhere" / "nowhere.json"
    nowhere.symlink_to(tmp_path / "missing" / "n.json")
    assert cli.main([*argv, "--out", str(nowhere)]) == 2
    err = capsys.readouterr().err
    assert f"--out {nowhere}: a symlink to {tmp_path / 'missing' / 'n.json'}, whose folder " in err, err
    assert "make that folder" in err and "Traceback" not in err
    assert not (tmp_path / "missing").exists() and nowhere.is_symlink()


def test_a_build_killed_through_a_symlinked_out_is_recovered_through_it(tmp_path, capsys):
    """A build through a symlinked ``--out`` killed half way through putting its files in place: its journal is next
    to the target, where eval looks, and recover(link) and the next build through the link roll it back. Before, the
    journal went next to the link, where load() (which looks next to the target) did not see it."""
    import os
    import subprocess
    import sys

    import sf2t
    from sf2t.finevidbench.place import journal_path, recover

    def state(folder):
        return {str(p.relative_to(folder)): p.is_file() and p.read_bytes() for p in folder.rglob("*")}

    real = tmp_path / "real" / "b.json"
    build(None, str(real), per_category=1, synthetic=2, seed=0, log=lambda s: None, progress=False)
    before = state(real.parent)
    link = tmp_path / "elsewhere" / "link.json"
    link.parent.mkdir()
    link.symlink_to(real)
    env = {**os.environ, "PYTHONPATH": str(Path(sf2t.__file__).parent.parent), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", _KILLED_BUILD, str(link), "3"], env=env, capture_output=True)
    assert run.returncode == 9, run.stderr.decode()
    assert journal_path(link) == journal_path(real) and journal_path(real).is_file()
    assert sorted(p.name for p in link.parent.iterdir()) == ["link.json"] and state(real.parent) != before
    with pytest.raises(BenchmarkError, match="a build of it was stopped while its files were put in place"):
        load(link)
    assert recover(link) == "rolled back" and recover(link) is None
    assert state(real.parent) == before and link.is_symlink()


def test_tasks_and_task_config_without_a_manifest_are_refused(tmp_path, capsys):
    """--tasks and --task-config choose and set the fragment-level tasks, which are made from the --manifest videos:
    without --manifest they changed nothing (scene questions only), without a word. They are refused, naming the
    option and the one it needs."""
    (tmp_path / "t.yaml").write_text("counting: {count_min: 3}\n")
    argv = ["finevidbench", "build", "--synthetic", "1", "--per-category", "1", "--quiet"]
    for given, option in ((["--tasks", "counting"], "--tasks"), (["--task-config", str(tmp_path / "t.yaml")], None)):
        option = option or "--task-config"
        assert cli.main([*argv, *given, "--out", str(tmp_path / "b.json")]) == 2, given
        err = capsys.readouterr().err
        assert (
            f"sf2t finevidbench build: {option}: the fragment-level tasks are made from the videos of --manifest" in err
        )
        assert f"add --manifest (an sf2t index manifest of your videos), or leave {option} out" in err, err
        assert "Traceback" not in err and not (tmp_path / "b.json").exists()
    with pytest.raises(ValueError, match="--tasks: the fragment-level tasks are made from"):
        build(None, str(tmp_path / "b.json"), synthetic=1, tasks=["counting"], log=lambda s: None, progress=False)


def test_folders_that_link_outside_the_benchmarks_folder_are_never_written_or_emptied(tmp_path, capsys):
    """A folder in the benchmark's folder that is a symlink to another folder (videos/ -> ../mine): recover() and
    the removal of stale files (place.remove_files) do not delete or replace files through it, and a build does not
    put its files there. Before, a rollback unlinked mine/scene_0000.mp4, a completion removed the stale files there
    (and their folder, left empty), and a build moved its clips there, the user's files aside."""
    import sf2t.finevidbench.place as place

    out = tmp_path / "b"
    mine = tmp_path / "mine"
    (mine / "q").mkdir(parents=True)
    for f in ("scene_0000.mp4", "q/1.png"):
        (mine / f).write_text("mine")
    out.mkdir()
    (out / "videos").symlink_to(mine)
    failed = place.remove_files(out, ["videos/scene_0000.mp4", "videos/q/1.png"])
    assert sorted(str(p.relative_to(out)) for p, _ in failed) == ["videos/q/1.png", "videos/scene_0000.mp4"]
    assert all(f"its folder leads outside {out}, to {mine}" in e.strerror for _, e in failed), failed
    # a journal whose moves go through the link: refused before anything is undone
    stage = out / ".build-x"
    stage.mkdir()
    text = '{"format": "sf2t-finevidbench/1"}'
    (out / "b.json").write_text("{}")
    (stage / "benchmark.tmp").write_text(text)
    place._write_journal(stage, place.journal_path(out / "b.json"), [("videos/scene_0000.mp4", False)], [], text)
    with pytest.raises(ValueError, match=re.escape(f"leads outside {out}, to {mine} (a symlink): recovering would")):
        place.recover(out / "b.json")
    assert place.journal_path(out / "b.json").exists()
    place.journal_path(out / "b.json").unlink()
    shutil.rmtree(stage)
    (out / "b.json").unlink()
    # a build into the folder: refused before a file moves
    argv = ["finevidbench", "build", "--synthetic", "1", "--per-category", "1", "--quiet", "--out", str(out / "b.json")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"its folder {out / 'videos'} leads outside {out}, to {mine} (a symlink): this build would write" in err
    assert "Traceback" not in err and not (out / "b.json").exists() and not list(out.glob(".build-*"))
    assert sorted(str(p.relative_to(mine)) for p in mine.rglob("*")) == ["q", "q/1.png", "scene_0000.mp4"]
    assert all((mine / f).read_text() == "mine" for f in ("scene_0000.mp4", "q/1.png"))


def test_recover_rolls_back_a_build_whose_benchmark_text_equals_the_earlier_one(tmp_path):
    """A rebuild killed half way whose benchmark file would be the same text as the earlier one (the same second):
    the benchmark file in place is then not proof that the build got to its last rename, so recover() rolls it back
    (the staged benchmark file is still in the stage). Before, it kept the half-moved frames: two builds mixed."""
    from sf2t.finevidbench.place import _write_journal, journal_path, recover

    out = tmp_path / "b"
    stage = out / ".build-x"
    (stage / "replaced" / "frames").mkdir(parents=True)
    (out / "frames").mkdir()
    text = '{"format": "sf2t-finevidbench/1"}'
    (out / "b.json").write_text(text)
    (stage / "benchmark.tmp").write_text(text)
    moves = [("frames/1.png", True), ("frames/2.png", True)]
    _write_journal(stage, journal_path(out / "b.json"), moves, [], text)
    # killed after the first file's move: its old one aside, the new one in; the second one still the old one
    (stage / "replaced" / "frames" / "1.png").write_text("old 1")
    (out / "frames" / "1.png").write_text("new 1")
    (out / "frames" / "2.png").write_text("old 2")
    (stage / "frames").mkdir()
    (stage / "frames" / "2.png").write_text("new 2")
    assert recover(out / "b.json") == "rolled back"
    assert [(out / "frames" / f).read_text() for f in ("1.png", "2.png")] == ["old 1", "old 2"]
    assert not stage.exists() and not journal_path(out / "b.json").exists()


@pytest.mark.parametrize(
    "field, entry",
    [
        ("moves", ["../victim.txt", False]),
        ("moves", ["{abs}", False]),
        ("made", "../victim_dir"),
        ("made", ""),
        ("stale", "../victim.txt"),
    ],
)
def test_recover_refuses_a_journal_naming_a_path_outside_the_folder(tmp_path, field, entry):
    """Every path a journal names is checked (relative, no '..', not empty) before anything is undone, as its stale
    files were: a rollback of a move "../victim.txt" unlinked the file next to the benchmark's folder, of a folder
    "../victim_dir" (or "": the benchmark's folder itself) removed it."""
    from sf2t.finevidbench.place import journal_path, recover

    out = tmp_path / "b"
    (out / ".build-x").mkdir(parents=True)
    (out / "b.json").write_text("{}")
    victim, victim_dir = tmp_path / "victim.txt", tmp_path / "victim_dir"
    victim.write_text("mine")
    victim_dir.mkdir()
    if isinstance(entry, list) and entry[0] == "{abs}":
        entry = [str(victim), False]
    plan = {"stage": ".build-x", "benchmark_sha256": "0" * 64, "moves": [], "made": [], "stale": []}
    plan[field].append(entry)
    journal = journal_path(out / "b.json")
    journal.write_text(json.dumps(plan))
    words = f"{journal}: the journal of an interrupted build cannot be read (a "
    with pytest.raises(ValueError, match=re.escape(words) + ".* outside the benchmark's folder"):
        recover(out / "b.json")
    assert victim.read_text() == "mine" and victim_dir.is_dir() and out.is_dir() and journal.exists()


def test_stale_files_are_removed_by_one_helper(tmp_path, monkeypatch):
    """The removal of an earlier build's files that a new one no longer uses (then of their folders left empty,
    deepest first) is one helper, place.remove_files, used by a build (which warns about the files it cannot remove)
    and by recover() completing a build (which does not): it was written twice."""
    import sf2t.finevidbench.files as b  # (where _remove_stale reads remove_files and _written_files)
    import sf2t.finevidbench.place as place

    out = tmp_path / "b"
    for f in ("frames/q/1.png", "frames/q/2.png", "frames/r/1.png", "videos/scene_0001.mp4", "videos/keep.txt"):
        (out / f).parent.mkdir(parents=True, exist_ok=True)
        (out / f).write_text("x")
    (out / "frames" / "q" / "sub").mkdir()  # a folder of the user's: frames/q stays
    stale = ["frames/q/1.png", "frames/q/2.png", "frames/r/1.png", "videos/scene_0001.mp4", "videos/gone.mp4"]
    assert place.remove_files(out, stale) == []
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert left == ["frames", "frames/q", "frames/q/sub", "videos", "videos/keep.txt"], left
    calls = []
    monkeypatch.setattr(place, "remove_files", lambda out, files: calls.append(sorted(files)) or [])
    monkeypatch.setattr(b, "remove_files", place.remove_files)
    monkeypatch.setattr(b, "_written_files", lambda bench: set(bench["files"]))
    b._remove_stale({"files": ["frames/a.png", "frames/c.png"]}, {"files": ["frames/c.png"]}, out)
    (out / ".build-x").mkdir()
    text = '{"format": "sf2t-finevidbench/1"}'
    (out / "b.json").write_text(text)
    place._write_journal(out / ".build-x", place.journal_path(out / "b.json"), [], [], text, ["frames/z.png"])
    assert place.recover(out / "b.json") == "completed"
    assert calls == [["frames/a.png"], ["frames/z.png"]]


def test_the_recover_hint_is_valid_for_a_path_with_a_quote(tmp_path):
    """The way out eval and export give for a benchmark a stopped build left (its journal) is a command that runs
    for a folder whose name has a quote in it: the path is a Python literal (repr), the code one shell word. It was
    recover('{path}'): a syntax error for it's/b.json."""
    import ast
    import shlex

    from sf2t.finevidbench.place import _write_journal, check_not_interrupted, journal_path

    out = tmp_path / 'it\'s "both"'
    (out / ".build-x").mkdir(parents=True)
    text = '{"format": "sf2t-finevidbench/1"}'
    (out / "b.json").write_text(text)
    _write_journal(out / ".build-x", journal_path(out / "b.json"), [], [], "another text")  # a build to roll back
    with pytest.raises(ValueError) as e:
        check_not_interrupted(out / "b.json", "--bench")
    (command,) = re.findall(r"`(python -c .*)`$", str(e.value))
    python, c, code = shlex.split(command)
    (call,) = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call)]
    assert ast.literal_eval(call.args[0]) == str(out / "b.json")
    exec(code, {})  # as the command runs it
    assert not journal_path(out / "b.json").exists() and not (out / ".build-x").exists()


def test_check_not_interrupted_names_the_real_folder_of_a_symlinked_benchmark(tmp_path):
    """``check_not_interrupted`` given a symlink (in another folder) to a benchmark whose build was killed while put in
    place: the folder it says may mix two builds, and the path its recover hint names, are the real benchmark's (the
    journal's), not the link's. Before, only ``load`` resolved the link first; the function named the link's folder."""
    from sf2t.finevidbench.place import _write_journal, check_not_interrupted, journal_path

    out = tmp_path / "b" / "bench.json"
    (out.parent / ".build-x").mkdir(parents=True)
    out.write_text('{"format": "sf2t-finevidbench/1"}')
    link = tmp_path / "elsewhere" / "link.json"
    link.parent.mkdir()
    link.symlink_to(out)
    _write_journal(out.parent / ".build-x", journal_path(out), [], [], "another text")
    with pytest.raises(ValueError) as e:
        check_not_interrupted(link, "--bench")
    assert f"{out.parent} may mix two builds" in str(e.value), str(e.value)
    assert f"recover({str(out)!r})" in str(e.value), str(e.value)


_KILLED_MAKING = """
import os, sys
import sf2t.synth as synth
real, made = synth.make_clip, []
def make_clip(*a, **k):  # killed (kill -9: no except, no finally) as it makes its second clip
    made.append(1)
    if len(made) == 2:
        os._exit(9)
    return real(*a, **k)
synth.make_clip = make_clip
import sf2t.finevidbench.build as b
b.build(None, sys.argv[1], per_category=1, synthetic=3, seed=0, log=lambda s: None, progress=False)
"""


def test_staging_folders_of_killed_builds_are_removed_by_the_next_build(tmp_path, capsys):
    """A build killed (kill -9) while it made its clips left its staging folder .build-* in --out for good: the next
    build into the folder removes it, and says so. It leaves a staging folder whose build runs (another benchmark's,
    in the same folder), one a stopped build's journal names (its earlier files are in it), and one with no owner
    record (an older sf2t's) while it changed lately; it removes an unowned one untouched for long. Eval, export and
    bench_files never list what is in them."""
    import os
    import subprocess
    import sys
    import tempfile
    import time

    import sf2t
    from sf2t.finevidbench.evaluate import bench_files
    from sf2t.finevidbench.export import export
    from sf2t.finevidbench.place import UNOWNED_AFTER_S, make_stage

    out = tmp_path / "b" / "b.json"
    env = {**os.environ, "PYTHONPATH": str(Path(sf2t.__file__).parent.parent), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", _KILLED_MAKING, str(out)], env=env, capture_output=True)
    assert run.returncode == 9, run.stderr.decode()
    (killed,) = out.parent.glob(".build-*")  # the case: left, with the clip it had made
    assert (killed / "videos" / "scene_0000.mp4").is_file()
    assert json.loads((killed / "owner.json").read_text())["benchmark"] == "b.json"
    running, owner = make_stage(out.parent, out.parent / "other.json")  # a build of another benchmark, running
    # (named as make_stage names them: any other .build-* with no owner record is the user's)
    old_unowned, new_unowned = (Path(tempfile.mkdtemp(prefix=".build-", dir=out.parent)) for _ in range(2))
    for d in (old_unowned, new_unowned):
        (d / "videos").mkdir(parents=True)
        (d / "videos" / "scene_0000.mp4").write_bytes(b"x" * 10)
    long_ago = time.time() - UNOWNED_AFTER_S - 60
    os.utime(old_unowned, (long_ago, long_ago))
    journaled = out.parent / ".build-journaled"
    (journaled / "replaced").mkdir(parents=True)
    (out.parent / ".c.json.journal").write_text(json.dumps({"stage": journaled.name}))
    try:
        logs = []
        build(None, str(out), per_category=1, synthetic=2, seed=0, log=logs.append, progress=False)
        assert not killed.exists() and not old_unowned.exists()
        assert running.is_dir() and new_unowned.is_dir() and journaled.is_dir()
        said = [s for s in logs if s.startswith("removed 2 staging folders that stopped builds left in")]
        assert said and killed.name in said[0] and f"{old_unowned.name} (10 bytes)" in said[0], logs
        assert any(s.startswith(f"left the staging folder {journaled.name}: a stopped build's journal") for s in logs)
        b = load(out)
        assert not any(".build-" in f for f in bench_files(b))
        export(str(out), str(tmp_path / "x"), "lmms-eval", log=lambda s: None)
        assert not any(".build-" in str(p) for p in (tmp_path / "x").rglob("*"))
    finally:
        owner.close()


def test_a_folder_named_like_a_staging_folder_with_no_owner_record_is_removed_only_if_a_builds(tmp_path):
    """A build removed any .build-* folder with no owner record untouched for 10 minutes, a user's own too
    (.build-mine/notes.txt; sf2t index takes such a folder for the user's): one with no record is removed only where
    its name is as make_stage gives it (tempfile.mkdtemp) and it holds only what a build puts there; any other is
    kept, and said."""
    import os
    import tempfile
    import time

    from sf2t.finevidbench.place import UNOWNED_AFTER_S, make_stage, remove_abandoned

    def stage_named_as_a_build():
        return Path(tempfile.mkdtemp(prefix=".build-", dir=tmp_path))

    mine = tmp_path / ".build-mine"  # the finding's case
    mine.mkdir()
    (mine / "notes.txt").write_text("notes")
    mine_in_build_form = tmp_path / ".build-frames"  # a build's contents, but a name mkdtemp does not give
    (mine_in_build_form / "videos").mkdir(parents=True)
    (mine_in_build_form / "videos" / "scene_0000.mp4").write_bytes(b"x")
    named_as_a_build = {}  # a mkdtemp name, and what it holds
    for what in ("notes", "a clip named otherwise", "a symlink", "a folder in videos/", "a leftover", "empty"):
        d = named_as_a_build[what] = stage_named_as_a_build()
        if what == "notes":
            (d / "notes.txt").write_text("notes")
        elif what == "a clip named otherwise":
            (d / "videos").mkdir()
            (d / "videos" / "holiday.mp4").write_bytes(b"x")
        elif what == "a symlink":
            (d / "videos").symlink_to(tmp_path / "elsewhere")
        elif what == "a folder in videos/":
            (d / "videos" / "mine").mkdir(parents=True)
        elif what == "a leftover":  # all a build puts there (killed before its owner record had its name)
            (d / "owner.json.tmp").write_text("{}")
            (d / "benchmark.tmp").write_text("{}")
            (d / "journal.tmp").write_text("{}")
            (d / "frames" / "frag-counting-0000").mkdir(parents=True)
            for name in ("00.png", "01.png", "target.png"):
                (d / "frames" / "frag-counting-0000" / name).write_bytes(b"x" * 10)
            (d / "videos").mkdir()
            (d / "videos" / "scene_0000.mp4").write_bytes(b"x" * 10)
            (d / "videos" / "scene_0000.json").write_text("{}")
            (d / "replaced" / "frames" / "frag-counting-0000").mkdir(parents=True)
            (d / "replaced" / "videos").mkdir()
    long_ago = time.time() - UNOWNED_AFTER_S - 60
    for d in (mine, mine_in_build_form, *named_as_a_build.values()):
        os.utime(d, (long_ago, long_ago))
    own, owner = make_stage(tmp_path, tmp_path / "b.json")
    try:
        removed, kept = remove_abandoned(tmp_path, own)
    finally:
        owner.close()
    gone = {named_as_a_build["a leftover"], named_as_a_build["empty"]}
    assert sorted(removed) == sorted(
        [f"{named_as_a_build['a leftover'].name} (48 bytes)", f"{named_as_a_build['empty'].name} (0 bytes)"]
    )
    assert (mine / "notes.txt").read_text() == "notes"
    for d in (mine, mine_in_build_form, *named_as_a_build.values()):
        assert d.exists() != (d in gone), d
    yours = "no build's after all: it has no owner record (owner.json), and its name or what it holds is not what "
    assert sorted(kept) == sorted(
        f"{d.name}: {yours}a build leaves: taken for yours, not removed (rename it to stop this line)"
        for d in (mine, mine_in_build_form, *named_as_a_build.values())
        if d not in gone
    ), kept


def test_a_staging_folders_owner_is_not_signalled_on_windows(tmp_path, monkeypatch):
    """Where files cannot be locked, a staging folder's build was taken as alive while ``os.kill(pid, 0)`` worked:
    on Windows signal 0 is CTRL_C_EVENT, a Ctrl-C sent to the owner (and its console group). There no signal is
    sent: the process is asked for otherwise (here, not Windows, it cannot be: taken as alive, the folder left);
    elsewhere a pid that is gone still makes the folder abandoned."""
    import json
    import os
    import socket
    import sys

    import sf2t.finevidbench.staging as staging  # (where _owner reads _lock)

    stage = tmp_path / ".build-abcd1234"
    stage.mkdir()
    (stage / "owner.json").write_text(
        json.dumps({"benchmark": "b.json", "pid": 2**22 + 7, "host": socket.gethostname()})
    )
    monkeypatch.setattr(staging, "_lock", lambda f, block: None)  # (no flock, as on Windows)
    signalled = []

    def kill(pid, sig):
        signalled.append((pid, sig))
        raise ProcessLookupError(pid)

    monkeypatch.setattr(os, "kill", kill)
    monkeypatch.setattr(sys, "platform", "win32")
    record, f, alive = staging._owner(stage)
    assert signalled == [] and alive and f is None and record["pid"] == 2**22 + 7
    monkeypatch.setattr(sys, "platform", "linux")
    record, f, alive = staging._owner(stage)
    f.close()
    assert signalled == [(2**22 + 7, 0)] and not alive


def test_a_second_build_of_a_benchmark_while_one_runs_is_refused(tmp_path, capsys):
    """Two builds of one benchmark at once put their files in place over each other (and the second took the
    first's journal, while it put its files in place, for a stopped build's, and rolled it back): the second is
    refused, naming the first; once that one is gone (its staging folder's owner), it builds, removing the folder."""
    import os

    from sf2t.finevidbench.place import make_stage

    out = tmp_path / "b" / "b.json"
    out.parent.mkdir()
    first, owner = make_stage(out.parent, out)
    argv = ["finevidbench", "build", "--synthetic", "1", "--per-category", "1", "--quiet", "--out", str(out)]
    try:
        assert cli.main(argv) == 2
    finally:
        owner.close()
    err = capsys.readouterr().err
    assert f"--out {out}: another build of it is running (pid {os.getpid()} on" in err, err
    assert "wait for it to end" in err and "Traceback" not in err
    assert not out.exists() and [p.name for p in out.parent.glob(".build-*")] == [first.name]
    assert cli.main(argv) == 0 and not first.exists()
    assert "removed 1 staging folder that stopped builds left in" in capsys.readouterr().out


_PAUSED_BUILD = """
import os, sys, time
from pathlib import Path
real_replace, out = os.replace, Path(sys.argv[1])
def replace(src, dst, *a, **k):  # paused after its first move out of the staging folder, until told to go on
    r = real_replace(src, dst, *a, **k)
    if "/.build-" in str(src) and "/videos/" in str(src) and not (out.parent / "paused").exists():
        (out.parent / "paused").write_text("")
        t = time.time()
        while not (out.parent / "go").exists() and time.time() - t < 60:
            time.sleep(0.05)
    return r
os.replace = replace
import sf2t.finevidbench.build as b
b.build(None, sys.argv[1], per_category=1, synthetic=2, seed=5, log=lambda s: None, progress=False)
"""


def test_a_build_being_put_in_place_is_not_taken_for_a_stopped_one(tmp_path):
    """recover() (which every build runs first) while another process puts a build in place (its journal there, half
    its files moved): it refuses, naming that process, and the build finishes whole. It rolled the running build
    back under it: a folder mixing two builds, with no journal left to say so."""
    import os
    import subprocess
    import sys
    import time

    import sf2t
    from sf2t.finevidbench.place import recover

    out = tmp_path / "b" / "b.json"
    build(None, str(out), per_category=1, synthetic=2, seed=0, log=lambda s: None, progress=False)
    env = {**os.environ, "PYTHONPATH": str(Path(sf2t.__file__).parent.parent), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _PAUSED_BUILD, str(out)], env=env, stderr=subprocess.PIPE)
    try:
        t = time.time()
        while not (out.parent / "paused").exists() and proc.poll() is None and time.time() - t < 60:
            time.sleep(0.05)
        assert (out.parent / "paused").exists(), proc.stderr.read().decode()
        with pytest.raises(ValueError, match=f"a build of {out} is putting its files in place now \\(pid {proc.pid} "):
            recover(out)
    finally:
        (out.parent / "go").write_text("")
        assert proc.wait(60) == 0, proc.stderr.read().decode()
    b = load(out)
    assert b["description"].startswith("sf2t FineVidBench-style benchmark: seed 5")
    from sf2t.finevidbench.build import _written_files

    on_disk = {str(p.relative_to(out.parent)) for p in out.parent.rglob("*") if p.is_file()}
    assert on_disk == {"b.json", "paused", "go"} | _written_files(b), on_disk


@pytest.mark.parametrize("when", ["removing", "renamed"])
def test_build_interrupted_after_it_was_put_in_place_says_so(tmp_path, capsys, monkeypatch, when):
    """Ctrl-C as the earlier build's files the new one no longer uses are removed (after the benchmark file was
    renamed in; or right after that rename, before the removal began): the folder holds the new build, and the
    message says so and names the files left. It said "was not written (an earlier one there stays as it was)"."""
    import sf2t.finevidbench.build as b

    out = tmp_path / "b" / "b.json"
    argv = ["finevidbench", "build", "--per-category", "1", "--quiet", "--out", str(out)]
    assert cli.main([*argv, "--synthetic", "2", "--seed", "0"]) == 0
    capsys.readouterr()

    def stopped(*a):
        raise KeyboardInterrupt

    if when == "removing":
        monkeypatch.setattr(b, "_remove_stale", stopped)
    else:
        real = b._commit
        monkeypatch.setattr(b, "_commit", lambda *a: real(*a[:5], stopped))
    # 4 clips, seed 1: it keeps scene_0000 alone, so the earlier build's scene_0001 is stale
    assert cli.main([*argv, "--synthetic", "4", "--seed", "1"]) == 130
    err = capsys.readouterr().err
    assert f"interrupted once {out} was in place: it holds the new build; 2 files of the earlier build" in err, err
    assert "e.g. videos/scene_0001.json: remove them by hand" in err and "not written" not in err
    assert load(out)["description"].startswith("sf2t FineVidBench-style benchmark: seed 1")
    assert not list(out.parent.glob(".build-*")) and not list(out.parent.glob(".*.journal"))


class _NoteLessBug(RuntimeError):
    """An exception as Python 3.10 has them (setup.py: python_requires >= 3.10): no ``add_note`` (3.11 on)."""

    def __getattribute__(self, name):
        if name == "add_note":
            raise AttributeError(name)
        return super().__getattribute__(name)


@pytest.mark.parametrize("error", ["file", "bug", "bug on Python 3.10"])
def test_build_failing_after_it_was_put_in_place_says_so(tmp_path, capsys, monkeypatch, error):
    """An error as the earlier build's files the new one no longer uses are removed (after the benchmark file was
    renamed in): the folder holds the new build, and the message says so (a file error: one line, exit 1, the files
    left named; a bug: its traceback, with a note saying so; on Python 3.10, which has no notes, the line on stderr:
    it was an AttributeError there, for ``add_note``). It said "the benchmark ... was not written (an earlier one
    there stays as it was)"."""
    import errno

    import sf2t.finevidbench.build as b

    out = tmp_path / "b" / "b.json"
    argv = ["finevidbench", "build", "--per-category", "1", "--quiet", "--out", str(out)]
    assert cli.main([*argv, "--synthetic", "2", "--seed", "0"]) == 0
    capsys.readouterr()

    def failed(*a):
        if error == "file":
            raise OSError(errno.EIO, "Input/output error", str(out.parent / "videos"))
        raise (RuntimeError if error == "bug" else _NoteLessBug)("a bug")

    monkeypatch.setattr(b, "_remove_stale", failed)
    argv += ["--synthetic", "4", "--seed", "1"]  # it keeps scene_0000 alone, so the earlier build's scene_0001 is stale
    holds = f"{out} was in place: it holds the new build; 2 files of the earlier build"
    if error == "file":
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"sf2t finevidbench build: {out.parent / 'videos'}: Input/output error; {holds}"), err
        assert "e.g. videos/scene_0001.json: remove them by hand" in err and "not written" not in err
    elif error == "bug":
        with pytest.raises(RuntimeError, match="a bug") as e:
            cli.main(argv)
        assert any(holds in n for n in e.value.__notes__), e.value.__notes__
    else:
        with pytest.raises(_NoteLessBug, match="a bug"):
            cli.main(argv)
        assert f"sf2t finevidbench build: this error came once {holds}" in capsys.readouterr().err
    assert load(out)["description"].startswith("sf2t FineVidBench-style benchmark: seed 1")
    assert not list(out.parent.glob(".build-*")) and not list(out.parent.glob(".*.journal"))


def test_build_interrupted_is_one_line_and_closes_its_bar(bench, tmp_path, capsys, monkeypatch, interrupt_after):
    """Ctrl-C during `sf2t finevidbench build`: one line and exit 130 as the other commands (it was a traceback), no
    staging folder left, and the fragment questions' progress bar closed (it was left open on any error)."""
    import sf2t._progress as progress
    import sf2t.tasks.export as export_mod

    bars, real = [], progress.progress_bar

    def recorded(*a, **k):
        bars.append(real(*a, **k))
        return bars[-1]

    monkeypatch.setattr(progress, "progress_bar", recorded)
    manifest = str(bench.parent.parent / "m.jsonl")
    out = tmp_path / "b" / "bench.json"
    interrupt_after(export_mod, "_save", 3)
    argv = ["finevidbench", "build", "--manifest", manifest, "--per-category", "2", "--out", str(out)]
    assert cli.main(argv) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and "sf2t finevidbench build: interrupted" in err
    assert not out.parent.exists()  # the staging folder is removed, and the folder the build made
    with pytest.raises(KeyboardInterrupt):  # (the traceback keeps the bar alive: closed by the build, not by GC)
        build(manifest, str(out), per_category=2, seed=1, log=lambda s: None, progress=True)
    assert [b.desc for b in bars][-1] == "fragment questions" and all(b.disable for b in bars)


def test_export_interrupted_removes_what_it_wrote(bench, tmp_path, capsys, monkeypatch, interrupt_after):
    """Ctrl-C during `sf2t finevidbench export`: one line, exit 130, and the videos it wrote are removed: they were
    left without the folder's marker, and the same command then refused the folder as "other files"."""
    import sf2t.finevidbench.export as fexport

    out = tmp_path / "x"
    argv = ["finevidbench", "export", "--bench", str(bench), "--format", "lmms-eval", "--out", str(out)]
    interrupt_after(fexport, "_write_video", 2)
    assert cli.main(argv) == 130
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert "Traceback" not in err and "sf2t finevidbench export: interrupted" in err
    assert not out.exists()  # made by the export: removed with what it wrote
    assert cli.main(argv) == 0


def _scene_qs(seeds):
    import random

    from sf2t.finevidbench.build import scene_questions
    from sf2t.synth.scene import ground_truth

    for seed in seeds:
        gt = ground_truth(seed, width=160, height=120, seconds=5)
        yield gt, scene_questions(gt, "v.mp4", f"s{seed}", random.Random(f"0:scene:{seed}"))


def test_scene_answers_are_what_the_shown_frames_show():
    """motion_direction: the net displacement between the first and the last frame a variant shows (speed_2x ends
    before the last frame), clear; speed_change: two shown frames before the change and two from it on."""
    seen = {"motion_direction": 0, "speed_change": 0}
    for gt, qs in _scene_qs(range(40)):
        for q in qs:
            shown, truth = q["video"]["frames"], q["options"][q["answer_index"]]
            if q["category"] == "motion_direction":
                pos = gt["positions"][q["meta"]["sprite"]]
                dx, dy = (pos[shown[-1]][k] - pos[shown[0]][k] for k in (0, 1))
                assert max(abs(dx), abs(dy)) >= 1.5 * min(abs(dx), abs(dy)) and max(abs(dx), abs(dy)) >= 12
                assert truth == (("right" if dx > 0 else "left") if abs(dx) > abs(dy) else ("down" if dy > 0 else "up"))
            elif q["category"] == "speed_change":
                sp = gt["sprites"][q["meta"]["sprite"]]
                vis = sorted({f for f in shown if gt["positions"][sp["id"]][f] is not None})
                k = sp["speed_change"]["frame"]
                assert sum(f < k for f in vis) >= 2 and sum(f >= k for f in vis) >= 2, q["id"]
            else:
                continue
            seen[q["category"]] += 1
    assert min(seen.values()) >= 20


def test_scene_questions_give_nothing_away():
    """event_order names its two events in either order and pairs events of one kind (every appearance comes before
    every disappearance); object_count offers the same options whatever the count."""
    first_named, asked = 0, 0
    for _, qs in _scene_qs(range(60)):
        for q in qs:
            if q["category"] == "object_count":
                assert sorted(q["options"]) == ["1", "2", "3", "4"]  # sf2t.synth makes 1-4: no never-right 5
            if q["category"] == "event_order" and q["variant"] == "original":
                (a, b) = q["meta"]["events"]
                assert a[1] == b[1] and a[2] != b[2]
                asked += 1
                truth = q["options"][q["answer_index"]]
                first_named += truth.startswith("First " + q["question"].split(": ", 1)[1].split(" or ")[0])
    assert asked >= 8 and 0 < first_named < asked


def test_scene_speed_change_and_count_questions_are_many_before_balancing():
    """Enough speed_change questions survive balancing to measure a model: sf2t.synth slows down about as many sprites
    as it speeds up. Before, 300 seeds asked 133 "It speeds up." and 7 "It slows down.", so a build kept 15 groups (a
    confidence interval of about +-13 points); object_count answers 1-4 (sf2t.synth drew 1-3 sprites)."""
    from collections import Counter

    from sf2t.finevidbench.build import balance_scene

    qs = [q for _, qs in _scene_qs(range(300)) for q in qs]
    answers = {
        cat: Counter(q["meta"]["answer"] for q in qs if q["category"] == cat and q["variant"] == "original")
        for cat in ("speed_change", "object_count")
    }
    speed = answers["speed_change"]
    n = sum(speed.values())
    assert n >= 120 and abs(speed["It slows down."] / n - 0.5) <= 4 * math.sqrt(0.25 / n), speed
    assert set(answers["object_count"]) == {"1", "2", "3", "4"} and min(answers["object_count"].values()) >= 50
    kept = {q["group"] for q in balance_scene(qs, 1000) if q["category"] == "speed_change"}
    assert len(kept) >= 100, len(kept)


def test_scene_answers_are_balanced(tmp_path, monkeypatch):
    """A blind model gains nothing from a constant answer: in a synthetic build (ground truth as --synthetic makes
    it; the pixels, which no answer depends on, are not rendered) the most frequent correct answer of each scene
    category with a fixed answer set is right about as often as chance, 1 / the number of options. Before the
    build balanced them: speed_change 73 % "It speeds up.", motion_direction 37 % "left" (of 4), object_count never
    4 (of 1-4)."""
    from collections import Counter
    from pathlib import Path

    from sf2t import synth
    from sf2t.synth.scene import ground_truth

    def fake_clip(path, seed, *, width, height, seconds, **kw):
        path = Path(path).with_suffix(".mp4")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        return {**ground_truth(seed, width=width, height=height, seconds=seconds), "path": str(path)}

    monkeypatch.setattr(synth, "make_clip", fake_clip)
    b = build(
        None, str(tmp_path / "b.json"), per_category=1000, synthetic=600, seed=0, log=lambda s: None, progress=False
    )
    qs = [q for q in b["questions"] if q["level"] == "scene"]
    for cat in ("object_count", "motion_direction", "speed_change", "appear_disappear"):
        got = [q for q in qs if q["category"] == cat]
        n, k = len(got), len(got[0]["options"])
        assert n >= 40 and all(len(q["options"]) == k for q in got), (cat, n)
        best = max(Counter(q["options"][q["answer_index"]] for q in got).values()) / n
        tol = 4 * math.sqrt((1 / k) * (1 - 1 / k) / n)  # 4 standard deviations of a chance-level answer rate
        assert best <= 1 / k + tol, (cat, n, best, 1 / k)
        by_place = max(Counter(q["answer_index"] for q in got).values()) / n  # nor a constant option letter
        assert by_place <= 1 / k + tol, (cat, n, by_place)


@pytest.mark.parametrize("sprites", ["1-3", "1-3 and one of 5"])
def test_count_options_are_the_builds_counts(tmp_path, monkeypatch, sprites):
    """object_count offers every clip of a build the same options, the counts its clips show. Clips of an older
    sf2t.synth (1-3 sprites; given through --manifest with their ground truth) got 1-4: a 4 that is never the
    answer (a blind model rules it out), and balancing (each answer at most one clip more than the rarest) then kept
    one clip per answer, 3 of 60. A clip showing 5 objects drew its options from 1-6 alone: a 5 or 6 gave its
    count away; then, with the others showing 1-3, every clip drew from 1-5: a 4 that no clip shows."""
    from collections import Counter

    from sf2t import synth
    from sf2t.synth.scene import ground_truth

    def fake_clip(path, seed, *, width, height, seconds, **kw):  # the ground truth only: no pixels are asked about
        path = Path(path).with_suffix(".mp4")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        many = sprites != "1-3" and seed == 7
        gt = ground_truth(seed, width=width, height=height, seconds=seconds, num_sprites=5 if many else 1 + seed % 3)
        return {**gt, "path": str(path)}

    monkeypatch.setattr(synth, "make_clip", fake_clip)
    b = build(None, str(tmp_path / "b.json"), per_category=1000, synthetic=60, seed=0, log=lambda s: None)
    got = [q for q in b["questions"] if q["category"] == "object_count"]
    shown = {q["meta"]["answer"] for q in got}  # every clip's count, in each variant (the 5 clip is kept)
    pool = {"1", "2", "3"} | ({"5"} if sprites != "1-3" else set())
    assert shown == pool  # (the 5 objects clip shows 5 in every variant: no 4 anywhere)
    assert all(set(q["options"]) <= pool and len(q["options"]) == min(4, len(pool)) for q in got)
    assert {o for q in got for o in q["options"]} == pool  # (1-5 offered a 4 that is never right)
    if sprites == "1-3":
        kept = Counter(q["meta"]["answer"] for q in got if q["variant"] == "original")
        assert set(kept) == {"1", "2", "3"} and min(kept.values()) >= 15, kept


def test_build_goes_on_without_the_fragments_its_videos_are_too_short_for(tmp_path):
    """A manifest whose videos are too short for some fragment tasks (or all) still builds: those tasks are left out
    and said, the others and the scene level are built (the shared export check stopped the whole build)."""
    from sf2t import cli

    for name, seconds in (("one", 0.04), ("three", 0.12)):  # 1 frame, 3 frames at 25 fps
        synth.make_clip(tmp_path / "short" / name, 5, width=96, height=64, seconds=seconds, fps=25)
    short = tmp_path / "short.jsonl"
    assert cli.main(["index", str(tmp_path / "short"), "-o", str(short), "--quiet", "--workers", "0"]) == 0
    logs: list[str] = []
    b = build(
        str(short), str(tmp_path / "b.json"), per_category=1, synthetic=1, seed=0, log=logs.append, progress=False
    )
    frag = {q["category"] for q in b["questions"] if q["level"] == "fragment"}
    assert frag == {"counting", "rearrangement"}, frag
    assert any(q["level"] == "scene" for q in b["questions"])
    said = " ".join(logs)
    assert "task speed: needs videos of at least 7 frames, the longest has 3" in said, said
    one = tmp_path / "one.jsonl"
    one.write_text(next(line for line in short.read_text().splitlines() if "one.mp4" in line) + "\n")
    logs.clear()
    b = build(
        str(one), str(tmp_path / "c" / "c.json"), per_category=1, synthetic=1, seed=0, log=logs.append, progress=False
    )
    assert not [q for q in b["questions"] if q["level"] == "fragment"] and b["questions"]
    assert any("no video is long enough for any fragment task" in s for s in logs), logs


def test_a_full_disk_mid_build_is_one_line(tmp_path, capsys, monkeypatch):
    """sf2t finevidbench build stopped by an OSError (ENOSPC writing the benchmark) says so in one line, with what was
    kept, exit 1 as any command stopped by a file error; a programming error is not swallowed into that line."""
    import errno

    real = Path.write_text

    def failing(exc):
        def write_text(self, *a, **k):
            if self.name == "benchmark.tmp":  # the benchmark's text, written in the staging folder before the renames
                raise exc
            return real(self, *a, **k)

        return write_text

    monkeypatch.setattr(Path, "write_text", failing(OSError(errno.ENOSPC, "No space left on device")))
    out = tmp_path / "b.json"
    argv = ["finevidbench", "build", "--synthetic", "1", "--per-category", "1", "--quiet", "--out", str(out)]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"sf2t finevidbench build: {out}: the benchmark could not be put in place (No space left on device); nothing "
        f"of it was left in {tmp_path}. Fix that (free space? write permission?) and run the same command again"
    ), err
    assert not out.exists() and list(tmp_path.iterdir()) == []

    monkeypatch.setattr(Path, "write_text", failing(TypeError("a bug")))
    with pytest.raises(TypeError, match="a bug"):
        cli.main(argv)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_making_the_benchmark_is_one_line(tmp_path, capsys, monkeypatch):
    """sf2t finevidbench build stopped by an OSError while it makes the benchmark (ENOSPC writing a synthetic clip)
    says so in one line, with what was kept, exit 1, and leaves no staging folder; a programming error is not
    swallowed into that line. (A full disk while the build is put in place: test_a_full_disk_mid_build_is_one_line,
    test_a_build_that_cannot_be_put_in_place_leaves_the_folder_consistent.)"""
    import errno

    from sf2t import synth

    def full(path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(synth, "make_clip", full)
    out = tmp_path / "b.json"
    argv = ["finevidbench", "build", "--synthetic", "1", "--per-category", "1", "--quiet", "--out", str(out)]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    clip = next(iter(re.findall(r"build: (\S+): No space", err)), "")
    assert Path(clip).name == "scene_0000" and err == (
        f"sf2t finevidbench build: {clip}: No space left on device; the benchmark {out} was not written (an earlier "
        "one there stays as it was)"
    ), err
    assert list(tmp_path.iterdir()) == []

    def bug(path, *a, **k):
        raise TypeError("a bug")

    monkeypatch.setattr(synth, "make_clip", bug)
    with pytest.raises(TypeError, match="a bug"):
        cli.main(argv)


def _oracle(q, frames, image):
    return q["answer_index"], {}


@pytest.mark.parametrize(
    "call, refused",
    [
        # numpy integers (a sweep's np.arange) are taken; what is written stays JSON
        (lambda b, p: evaluate(b, p / "r.json", predictor=_oracle, max_frames=I64(99), batch_size=I64(2)), None),
        (lambda b, p: build(None, p / "b.json", per_category=I64(1), synthetic=I64(1), seed=I64(3), progress=0), None),
        # bools (True read as 1), floats and strings are refused by name, before any work
        (lambda b, p: evaluate(b, p / "r.json", predictor=_oracle, max_frames=True), "max_frames must be a positive"),
        (lambda b, p: evaluate(b, p / "r.json", predictor=_oracle, batch_size=2.0), "batch_size must be a positive"),
        (lambda b, p: build(None, p / "b.json", per_category=True), "per_category must be a positive int, got the b"),
        (lambda b, p: build(None, p / "b.json", synthetic=np.True_), "synthetic must be a non-negative int, got the"),
        (lambda b, p: build(None, p / "b.json", synthetic=1, seed=False), "seed must be an int, got the bool False"),
        (lambda b, p: VideoRunner(str(p), frame_size=("56", "56")), "frame_size must be (h, w) ints, got ('56', '56')"),
        (lambda b, p: VideoRunner(str(p), frame_size=(True, 28)), "frame_size must be (h, w) ints, got (True, 28): h"),
        (lambda b, p: VideoRunner(str(p), max_pixels=True), "max_pixels must be a positive int, got the bool True"),
    ],
)
def test_integer_arguments_take_numpy_ints_and_refuse_bools(bench, tmp_path, call, refused):
    if refused is None:
        call(str(bench), tmp_path)
        for f in tmp_path.glob("*.json"):
            json.loads(f.read_text())
    else:
        with pytest.raises(ValueError, match=re.escape(refused)):
            call(str(bench), tmp_path)


def test_json_lines_given_for_a_json_file_are_named_with_what_to_do(tmp_path, capsys):
    """A JSON-lines file where one JSON document (or a YAML mapping) is read says what the file is, not json's "not
    JSON: Extra data: line 2 column 1" (or YAML's "expected '<document start>'"): an sf2t index manifest given as
    --bench gets the build command that makes a benchmark of it; --compare, --task-config, a train config too; and
    a benchmark given where JSON lines are read (--manifest, --scene-annotations) is named as one JSON document."""
    from sf2t.finevidbench import _read_results
    from sf2t.train.config import read_mapping

    manifest = tmp_path / "m.jsonl"
    line = {"path": "a.mp4", "status": "error", "error": "no such file", "error_kind": "missing"}
    manifest.write_text(json.dumps(line) + "\n" + json.dumps({**line, "path": "b.mp4"}) + "\n")
    other = tmp_path / "o.jsonl"
    other.write_text('{"a": 1}\n{"a": 2}\n')
    for argv in (["eval", "--bench", str(manifest), "--model", "m", "--out", str(tmp_path / "r.json")],):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err == (
            f"sf2t eval: {manifest}: an sf2t index manifest (JSON lines, one video a line), not a benchmark: build a "
            f"benchmark from it first with `sf2t finevidbench build --manifest {manifest} --out bench/bench.json`, "
            "then pass that file"
        ), err
    with pytest.raises(BenchmarkError, match=r"o\.jsonl: a JSON-lines file \(one JSON value a line\), not a bench"):
        load(other)
    with pytest.raises(ValueError, match=r"--compare .*m\.jsonl: an sf2t index manifest .*, not an sf2t eval results"):
        _read_results(str(manifest))
    with pytest.raises(ValueError, match=r"m\.jsonl: an sf2t index manifest .*, not a YAML or JSON mapping.*videos="):
        read_mapping(manifest, "--task-config")
    pretty = tmp_path / "b.json"
    pretty.write_text(json.dumps({"format": "x", "questions": []}, indent=1))
    argv = ["finevidbench", "build", "--manifest", str(pretty), "--out", str(tmp_path / "b" / "b.json")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"sf2t finevidbench build: {pretty}: one JSON document over several lines (a benchmark? a config?), not a "
        "JSON-lines file (one JSON value on each line)"
    ), err


def test_a_failed_build_leaves_no_folder_it_made(tmp_path, capsys):
    """A build refused after its --out folder was made (a manifest with no usable video, a manifest that is no
    manifest, bad scene annotations) removes the folders it made (an empty one was left behind); a folder that was
    there before stays."""
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"path": "a.mp4", "status": "error", "error": "x", "error_kind": "missing"}) + "\n")
    pretty = tmp_path / "p.json"
    pretty.write_text(json.dumps({"format": "x"}, indent=1))
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"video": "a.mp4"}\n')
    for given in (["--manifest", str(manifest)], ["--manifest", str(pretty)], ["--scene-annotations", str(notes)]):
        out = tmp_path / "new" / "deeper" / "b.json"
        assert cli.main(["finevidbench", "build", *given, "--out", str(out), "--quiet"]) == 2
        assert "sf2t finevidbench build: " in capsys.readouterr().err
        assert not (tmp_path / "new").exists(), given
        (tmp_path / "there").mkdir(exist_ok=True)
        assert cli.main(["finevidbench", "build", *given, "--out", str(tmp_path / "there" / "b.json"), "--quiet"]) == 2
        assert (tmp_path / "there").is_dir() and not any((tmp_path / "there").iterdir())


def test_a_failed_build_through_dotdot_keeps_the_folder_that_was_there(tmp_path, capsys):
    """--out new/../there/sub/b.json: "new/../there" did not exist before the build (new did not), but it is the
    folder "there", which did; a failed build removed it (empty) with the folders it made. It stays now; the folders
    the build made (new, there/sub) are removed."""
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"path": "a.mp4", "status": "error", "error": "x", "error_kind": "missing"}) + "\n")
    (tmp_path / "there").mkdir()
    out = tmp_path / "new" / ".." / "there" / "sub" / "b.json"
    assert cli.main(["finevidbench", "build", "--manifest", str(manifest), "--out", str(out), "--quiet"]) == 2
    assert "sf2t finevidbench build: " in capsys.readouterr().err
    assert (tmp_path / "there").is_dir() and not any((tmp_path / "there").iterdir())
    assert not (tmp_path / "new").exists()


def test_one_question_that_cannot_be_asked_is_said_in_the_singular(tmp_path):
    """A benchmark of one question whose files are missing: "the only question cannot be asked: the files it shows
    are missing", not "none of the 1 questions can be asked: the files they show"."""
    from sf2t.finevidbench.evaluate import check_askable

    bench = {"questions": [{"video": {"frame_images": ["frames/a.png"]}}], "_root": str(tmp_path)}
    with pytest.raises(
        ValueError, match=r"^the only question cannot be asked: the files it shows are missing \(e\.g\. "
    ):
        check_askable(bench)


def test_a_bug_while_an_adapter_loads_keeps_its_traceback(tmp_path, monkeypatch):
    """io.UnsupportedOperation (a ValueError and an OSError both: a bug, not the input) raised while peft reads an
    adapter is raised as it is, not said as "adapter ... does not fit the base model" (sf2t._oserror.is_bad_input);
    a plain ValueError from peft still is."""
    import io

    from peft import PeftModel

    from sf2t.models._build import load_adapter

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "adapter_model.safetensors").write_bytes(b"")
    for e, raised in ((io.UnsupportedOperation("fileno"), io.UnsupportedOperation), (ValueError("x"), ValueError)):

        def fail(*args, _e=e, **kwargs):
            raise _e

        monkeypatch.setattr(PeftModel, "from_pretrained", fail)
        with pytest.raises(raised) as got:
            load_adapter(torch.nn.Linear(2, 2), tmp_path / "a", tmp_path / "base")
        assert isinstance(got.value, io.UnsupportedOperation) == (raised is io.UnsupportedOperation)
        assert ("does not fit the base model" in str(got.value)) == (raised is ValueError), got.value
