"""The scene-level questions of ``sf2t finevidbench build`` (:mod:`sf2t.finevidbench.build`; its fragment-level
questions, from SF²T task samples, are made there). From ``sf2t.synth`` ground truth (clips made with ``--synthetic
N``, and manifest videos that have their ``.json`` ground truth next to them, :func:`scene_questions`):
``object_count``, ``motion_direction``, ``speed_change`` and ``appear_disappear`` questions about the whole clip (16
frames spread over it), each also in its variants (:func:`variant_frames`):

- ``speed_2x``: every other frame of the original (stride x2: the same span plays twice as fast),
- ``speed_0.5x``: each original frame twice (stride x0.5),
- ``reversed``: the original frames in reverse order (direction, speed change and appear / disappear answers flip),
- ``shuffled``: a seeded permutation (only for ``object_count``, whose answer does not depend on order).

``event_order`` (which of two events comes first) has the speed variants only: reversal turns appearances
into disappearances. User labels (``--scene-annotations``, :func:`annotation_questions`) give ``label``
questions in every variant.

A variant's answer is what its frames show (``object_count`` counts the objects visible in its frames,
``motion_direction`` is the net displacement from its first to its last frame, asked only when clear in every
variant; ``speed_change`` is asked only when every variant shows two frames before the change and two after).

The synthetic scene questions are balanced (:func:`balance_scene`): ``object_count``, ``motion_direction``,
``speed_change`` and ``appear_disappear`` keep as many clips of each answer (of the original variant, at most
one more than the rarest answer has), so that no constant answer beats chance by much. That leaves some clips
out: of 300, about 287 ``object_count`` groups (options 1-4), 75 ``motion_direction``, 141 ``speed_change``
(sf2t.synth slows down about as many sprites as it speeds up) and 217 ``appear_disappear``, before
``per_category``. ``object_count`` offers every clip of a build the same options, the counts its clips show (in
any variant; up to 4 of them per question): 1-4 for sf2t.synth's clips, 1-3 for clips of an older sf2t.synth
(1-3 sprites) given through a manifest, and never a count no clip shows (clips of 1, 2, 3 and 5 objects: no 4),
but where every clip shows the same count n: then 1..n (1 and 2 for n = 1), as a question needs other options
(:func:`object_count_options`).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Collection, Sequence

__all__ = [
    "scene_questions",
    "annotation_questions",
    "balance_scene",
    "counts_shown",
    "object_count_options",
    "variant_frames",
    "SCENE_FRAMES",
    "OPPOSITE",
    "BALANCED",
]

SCENE_FRAMES = 16


OPPOSITE = {
    "left": "right",
    "right": "left",
    "up": "down",
    "down": "up",
    "up-left": "down-right",
    "down-right": "up-left",
    "up-right": "down-left",
    "down-left": "up-right",
}


DIRECTIONS = ["left", "right", "up", "down"]


def _visible(sp: dict, f: int) -> bool:
    end = sp["disappear_frame"]
    return sp["appear_frame"] <= f and (end is None or f < end)


def _shown_direction(pos: list, shown: list[int], min_px: float) -> str | None:
    """The dominant direction of a sprite's net screen displacement from the first to the last shown frame, or None
    when it is not clear there (under ``min_px`` along the dominant axis, or under 1.5x the other axis)."""
    a, b = pos[shown[0]], pos[shown[-1]]
    if a is None or b is None:
        return None
    dx, dy = b[0] - a[0], b[1] - a[1]
    major, minor = max(abs(dx), abs(dy)), min(abs(dx), abs(dy))
    if major < min_px or major < 1.5 * minor:
        return None
    if abs(dx) > abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def _name(sp: dict) -> str:
    return f"{sp['color_name']} {sp['shape']}"


def _spread(n: int, frames: int = SCENE_FRAMES) -> list[int]:
    """The original variant's frames of an ``n``-frame clip: ``frames`` spread over it (all of a shorter one)."""
    count = min(frames, n)
    return [round(k * (n - 1) / max(1, count - 1)) for k in range(count)]


def counts_shown(gt: dict) -> set[int]:
    """The answers a clip's ``object_count`` questions have: how many objects each variant shows (visible in at least
    one of its frames). Those of the original and of ``speed_2x`` (every other frame: an object seen only in the
    others is not counted); the other variants show the original's frames."""
    orig = _spread(int(gt["num_frames"]))
    return {sum(any(_visible(sp, f) for f in fr) for sp in gt["sprites"]) for fr in (orig, orig[::2])}


def object_count_options(shown: Collection[int]) -> set[int]:
    """The counts a build's ``object_count`` options are drawn from (every clip the same), from the counts its clips
    show (:func:`counts_shown` of each): those counts; where they are one count n (every clip shows n objects), 1..n
    instead (1 and 2 for n = 1), as a question needs other options: the one case where a count no clip shows is
    offered."""
    shown = set(shown)
    return shown if len(shown) >= 2 else set(range(1, max([2, *shown]) + 1))


def variant_frames(n: int, rng: random.Random, frames: int = SCENE_FRAMES) -> dict[str, list[int]]:
    """Frame indices per variant for an ``n``-frame clip (see the module docstring)."""
    orig = _spread(n, frames)
    shuffled = orig[:]
    while len(shuffled) > 1 and shuffled == orig:
        rng.shuffle(shuffled)
    return {
        "original": orig,
        "speed_2x": orig[::2],
        "speed_0.5x": [f for f in orig for _ in range(2)],
        "reversed": orig[::-1],
        "shuffled": shuffled,
    }


def _options(truth: str, pool: Sequence[str], k: int, rng: random.Random) -> tuple[list[str], int]:
    others = [p for p in pool if p != truth]
    rng.shuffle(others)
    opts = others[: k - 1] + [truth]
    rng.shuffle(opts)
    return opts, opts.index(truth)


def scene_questions(
    gt: dict, video: str, qid: str, rng: random.Random, count_options: int | Collection[int] | None = None
) -> list[dict]:
    """The scene-level questions (all variants) of one synthetic clip's ground truth. ``count_options``: the counts
    the ``object_count`` options are drawn from (up to 4 of them, the truth among them): those given (a build gives
    every clip the same: :func:`object_count_options`, from the counts its clips show), or an int n: 1..n; None:
    1..4, or up to the clip's count where it shows more. The clip's own counts are always among them."""
    n = int(gt["num_frames"])
    sprites = gt["sprites"]
    vf = variant_frames(n, rng)
    out: list[dict] = []

    def add(cat: str, question: str, per_variant: dict[str, str], pool: Sequence[str], meta: dict, k: int = 4):
        group = f"{qid}-{cat}"
        order = list(pool)
        for variant, truth in per_variant.items():
            opts, ans = _options(truth, order, min(k, len(order)), random.Random(f"{group}:{variant}"))
            out.append(
                {
                    "id": f"{group}-{variant}",
                    "level": "scene",
                    "category": cat,
                    "variant": variant,
                    "group": group,
                    "video": {"path": video, "frames": vf[variant]},
                    "question": question,
                    "options": opts,
                    "answer_index": ans,
                    "meta": {**meta, "answer": truth},
                }
            )

    # object_count: objects visible in at least one shown frame
    counts = {v: sum(any(_visible(sp, f) for f in fr) for sp in sprites) for v, fr in vf.items()}
    # one option set for the whole build, the counts its clips show: options that depend on the count would give it
    # away, and an option that is never the answer is one a blind model learns to skip (a 4 for an older
    # sf2t.synth's clips, which had 1-3 sprites, given through --manifest: balance_scene then kept one clip per
    # answer; a 4 in a build whose clips show 1, 2, 3 and 5 objects)
    if count_options is None or isinstance(count_options, int):
        pool = set(range(1, max(count_options or 4, *counts.values()) + 1))
    else:
        pool = set(count_options) | set(counts.values())
    add(
        "object_count",
        "How many moving objects appear in the video? Count each object once.",
        {v: str(c) for v, c in counts.items()},
        [str(i) for i in sorted(pool)],
        {"source": video, "counts": counts},
    )
    # motion_direction: an object visible in every shown frame with a clear net direction
    # (its net displacement between the first and the last frame each variant shows: speed_2x ends earlier)
    asked = ("original", "speed_2x", "speed_0.5x", "reversed")
    min_px = 0.1 * min(int(gt["width"]), int(gt["height"]))
    steady = []
    for i, sp in enumerate(sprites):
        if sp["motion_direction"] in OPPOSITE and all(_visible(sp, f) for f in vf["original"]):
            per = {v: _shown_direction(gt["positions"][i], vf[v], min_px) for v in asked}
            if all(per.values()):
                steady.append((sp, per))
    if steady:
        sp, per = steady[0]
        d = sp["motion_direction"]
        pool = DIRECTIONS
        add(
            "motion_direction",
            f"Overall, in which direction does the {_name(sp)} move?",
            per,
            pool,
            {"source": video, "sprite": sp["id"], "direction": d},
        )

    # speed_change: an object whose speed changes while it is visible
    # (two shown frames before the change and two from it on, in every variant: else its speeds cannot be compared)
    def speed_seen(sp: dict) -> bool:
        k = sp["speed_change"]["frame"]
        for v in ("original", "speed_2x"):
            shown = sorted({f for f in vf[v] if _visible(sp, f)})
            if sum(f < k for f in shown) < 2 or sum(f >= k for f in shown) < 2:
                return False
        return True

    # the first changing sprite: sf2t.synth slows down as many as it speeds up, so preferring a slowing-down sprite
    # (as when slow-downs were rare) would now tilt the answers to "slows down"
    changing = [sp for sp in sprites if sp["speed_change"] is not None and speed_seen(sp)]
    if changing:
        sp = changing[0]
        faster = sp["speed_change"]["factor"] > 1.0
        up, down = "It speeds up.", "It slows down."
        per = {
            v: ((down if faster else up) if v == "reversed" else (up if faster else down))
            for v in ("original", "speed_2x", "speed_0.5x", "reversed")
        }
        add(
            "speed_change",
            f"Does the {_name(sp)} speed up or slow down during the video?",
            per,
            [up, down],
            {"source": video, "sprite": sp["id"], "speed_change": sp["speed_change"]},
        )
    # appear_disappear: an object that only appears, or only disappears, inside the shown span
    orig = vf["original"]
    single = []
    for sp in sprites:
        a, b = sp["appear_frame"], sp["disappear_frame"]
        appears = orig[0] < a <= orig[-1] and any(_visible(sp, f) for f in orig)
        disappears = b is not None and orig[0] < b <= orig[-1] and any(_visible(sp, f) for f in orig)
        if appears != disappears:
            single.append((sp, "appears" if appears else "disappears"))
    if single:
        sp, what = single[0]
        yes = {"appears": "It appears.", "disappears": "It disappears."}
        flip = {"appears": "disappears", "disappears": "appears"}
        per = {
            v: yes[flip[what]] if v == "reversed" else yes[what]
            for v in ("original", "speed_2x", "speed_0.5x", "reversed")
        }
        add(
            "appear_disappear",
            f"Does the {_name(sp)} appear or disappear during the video?",
            per,
            list(yes.values()),
            {"source": video, "sprite": sp["id"], "event": what},
        )
    # event_order: which of two events (an appearance, a disappearance) inside the shown span comes first. Reversal
    # turns appearances into disappearances, so this category has the speed variants only.
    evs = (
        sorted({(e["frame"], e["type"], e["sprite"]) for e in gt.get("events", []) if orig[0] < e["frame"] <= orig[-2]})
        if len(orig) > 2
        else []
    )

    def told_apart(a, b, shown) -> bool:  # a frame before a, one between (a seen, b not yet) and one from b on
        return any(f < a[0] for f in shown) and any(a[0] <= f < b[0] for f in shown) and any(f >= b[0] for f in shown)

    # the order must show in every variant asked (speed_0.5x shows the original's frames, twice each)
    firsts = [
        (a, b)
        for i, a in enumerate(evs)
        for b in evs[i + 1 :]
        if b[0] > a[0] and a[1] == b[1] and told_apart(a, b, orig) and told_apart(a, b, orig[::2])
    ]  # two events of one kind: every appearance comes before every disappearance, so a mixed pair is a giveaway
    if firsts:
        a, b = firsts[0]
        by_id = {sp["id"]: sp for sp in sprites}

        def said(e):
            return f"the {_name(by_id[e[2]])} {'appears' if e[1] == 'appear' else 'disappears'}"

        first, second = said(a), said(b)
        opts = [f"First {first}, then {second}.", f"First {second}, then {first}."]
        named = [first, second] if random.Random(f"{qid}-event_order").random() < 0.5 else [second, first]
        add(
            "event_order",
            f"Which happens first: {named[0]} or {named[1]}?",  # not always the first event first: a giveaway
            {v: opts[0] for v in ("original", "speed_2x", "speed_0.5x")},
            opts,
            {"source": video, "events": [list(a), list(b)]},
        )
    return out


BALANCED = ("object_count", "motion_direction", "speed_change", "appear_disappear")


def balance_scene(questions: list[dict], per_category: int) -> list[dict]:
    """The synthetic scene questions a build keeps: at most ``per_category`` groups (a clip's question with all its
    variants) per category, and for the categories with a fixed answer set (``BALANCED``) as many groups of each
    answer of the original variant, so that no constant answer beats chance (1 / the number of options).

    The answers balanced are those every original question of the category offers, and any other answer that
    occurs. A category keeps at most one more group per answer than its rarest answer has (one group of slack, so a
    build from a few clips still asks each category), taking the answers in turn and each answer's groups in clip
    order (in a round, the answer whose next group comes first first: a small build uses the first clips).
    Questions of other categories (``event_order``, whose options name its own events) keep their first
    ``per_category`` groups. Which clip a seed makes is unchanged: the build leaves out the clips it does not ask
    about."""
    groups: dict[str, list[dict]] = {}
    for q in questions:
        groups.setdefault(q["group"], []).append(q)
    by_cat: dict[str, list[str]] = {}
    for g, qs in groups.items():
        by_cat.setdefault(qs[0]["category"], []).append(g)
    keep: set[str] = set()
    for cat, gs in by_cat.items():
        if cat not in BALANCED:
            keep.update(gs[:per_category])
            continue
        originals = [next(q for q in groups[g] if q["variant"] == "original") for g in gs]
        by_answer: dict[str, list[str]] = {}
        for g, q in zip(gs, originals):
            by_answer.setdefault(q["meta"]["answer"], []).append(g)
        answers = set.intersection(*(set(q["options"]) for q in originals)) | set(by_answer)
        cap = min(len(by_answer.get(a, [])) for a in answers) + 1
        place = {g: i for i, g in enumerate(gs)}
        chosen: list[str] = []
        for r in range(cap):
            for g in sorted((by_answer[a][r] for a in answers if r < len(by_answer.get(a, []))), key=place.get):
                if len(chosen) < per_category:
                    chosen.append(g)
        keep.update(chosen)
    return [q for q in questions if q["group"] in keep]


def annotation_questions(path: str, rng: random.Random, root: Path) -> list[dict]:
    """Scene-level questions from user labels: a JSONL file of ``{"video": path, "label": text, "start": frame,
    "end": frame, "category": name}`` (start / end / category optional). Each clip is asked which label describes
    it, with distractors drawn from the other labels, in every variant; a variant keeps the clip's label (it
    measures how much the answer depends on speed and frame order)."""
    from sf2t.video import VideoError, probe
    from sf2t.video.index import iter_jsonl

    rows = []
    for line, r in iter_jsonl(path):
        ok = isinstance(r, dict) and isinstance(r.get("video"), str) and isinstance(r.get("label"), str)
        if not ok or not r["label"]:
            raise ValueError(f"{path}: line {line} needs 'video' (a path) and 'label' (text)")
        rows.append((line, r))
    labels = sorted({r["label"] for _, r in rows})
    if len(labels) < 2:
        raise ValueError(f"{path}: needs at least 2 distinct labels (distractors come from the other labels)")
    out = []
    for i, (line, r) in enumerate(rows):
        video = r["video"] if Path(r["video"]).is_absolute() else str(Path(path).parent / r["video"])
        try:
            n = probe(video).num_frames
        except VideoError as e:
            raise ValueError(f"{path}: line {line}: {e}") from None
        for key in ("start", "end"):
            v = r.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise ValueError(f"{path}: line {line}: {key} must be a frame index (an int), got {v!r}")
        start, end = r.get("start", 0), r.get("end", n)
        if start >= end:
            raise ValueError(f"{path}: line {line}: start ({start}) must be before end ({end}): frames start..end-1")
        if not 0 <= start < end <= n:
            raise ValueError(f"{path}: line {line}: start/end ({start}, {end}) outside the video's {n} frames")
        vf = {k: [start + f for f in v] for k, v in variant_frames(end - start, rng).items()}
        group = f"label-{i:04d}"
        for variant, fr in vf.items():
            opts, ans = _options(r["label"], labels, 4, random.Random(f"{group}:{variant}"))
            out.append(
                {
                    "id": f"{group}-{variant}",
                    "level": "scene",
                    "category": r.get("category", "label"),
                    "variant": variant,
                    "group": group,
                    "video": {"path": video, "frames": fr},
                    "question": "Which description fits the video best?",
                    "options": opts,
                    "answer_index": ans,
                    "meta": {"source": video, "label": r["label"], "annotation_line": i + 1},
                }
            )
    return out
