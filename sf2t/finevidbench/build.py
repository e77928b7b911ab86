"""``sf2t finevidbench build``: a FineVidBench-style benchmark from your own videos.

- **Fragment level**: SF²T task samples (``sf2t.tasks``, through the window sampler) rendered as multiple choice,
  ``per_category`` per task. Frames the task did not change are referenced as (video path, frame indices); frames
  it built (a replaced cell, a pasted target) are written as PNG images, exactly the presented pixels.
- **Scene level**: from ``sf2t.synth`` ground truth (clips made with ``--synthetic N``, and manifest videos that
  have their ``.json`` ground truth next to them): ``object_count``, ``motion_direction``, ``speed_change`` and
  ``appear_disappear`` questions about the whole clip (16 frames spread over it), each also in its variants:

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

import contextlib
import datetime
import json
import os
import random
from pathlib import Path
from typing import Collection, Sequence

from sf2t._checks import check_int
from sf2t._oserror import is_bad_input
from sf2t._plural import counted
from sf2t.finevidbench.format import FORMAT, dumps
from sf2t.finevidbench.place import (
    NotPlaced,
    check_alone,
    is_placed,
    make_stage,
    real_file,
    recover,
    remove_abandoned,
    remove_files,
)
from sf2t.finevidbench.place import commit as _commit

__all__ = [
    "build",
    "NotPlaced",
    "Interrupted",
    "scene_questions",
    "counts_shown",
    "object_count_options",
    "balance_scene",
    "SCENE_FRAMES",
    "OPPOSITE",
]

SCENE_FRAMES = 16


class Interrupted(KeyboardInterrupt):
    """A Ctrl-C that stopped :func:`build` once its benchmark was in place (``placed``: while the earlier build's
    files it no longer uses were removed): the folder holds the new build, not the earlier one. ``left``: those files
    (relative to the benchmark's folder) not removed yet."""

    def __init__(self, out_file: str, placed: bool, left: Sequence[str] = ()):
        super().__init__(out_file)
        self.out_file, self.placed, self.left = out_file, placed, list(left)


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


def _from_bench(path: str, out: Path) -> str:
    """``path`` (absolute, or relative to the working folder, as manifests and labels give it once resolved) as the
    benchmark records it: relative to the benchmark's folder ``out`` when inside it (the folder moves as one), else
    absolute."""
    p = os.path.abspath(path)
    rel = os.path.relpath(p, os.path.abspath(out))
    return p if rel == os.pardir or rel.startswith(os.pardir + os.sep) else rel


def _written_files(bench: dict) -> set[str]:
    """The files a build wrote next to the benchmark (paths relative to its folder): fragment questions' frame images
    and target images under ``frames/``, and synthetic clips ``videos/scene_*`` with their ground truth. Videos the
    benchmark only points at (a manifest's, labels') are not among them."""
    files: set[str] = set()
    for q in bench.get("questions", []):
        v = q.get("video") or {}
        for f in list(v.get("frame_images") or []) + ([q["image"]] if q.get("image") else []):
            if isinstance(f, str) and Path(f).parts[:1] == ("frames",):
                files.add(str(Path(f)))
        p = v.get("path")
        if isinstance(p, str) and Path(p).parent == Path("videos") and Path(p).name.startswith("scene_"):
            files.update({str(Path(p)), str(Path(p).with_suffix(".json"))})
    return files


def _read_bench(path: Path) -> dict | None:
    """A benchmark file's content, or None for a file that is not one (left alone)."""
    try:
        bench = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return bench if isinstance(bench, dict) and bench.get("format") == FORMAT else None


def _earlier_bench(out_file: Path, out_path: str) -> dict | None:
    """The benchmark a build of ``out_file`` (``--out out_path``) replaces: None where there is none (no file, an
    empty one); a ValueError where the file there is not an sf2t benchmark (the build would destroy it)."""
    old = _read_bench(out_file) if out_file.is_file() else None
    if old is None and out_file.is_file() and out_file.stat().st_size:
        raise ValueError(
            f"--out {out_path}: exists and is not an sf2t benchmark (a {FORMAT} JSON file); writing it would destroy "
            "it: pick another path, or remove it first"
        )
    return old


def _check_shared_folder(out_file: Path, frames: bool, clips: bool) -> None:
    """Refuse a build whose frames/ or videos/scene_* would overwrite those of another benchmark in the same folder
    (its questions would then show the new build's pictures)."""
    for other in sorted(out_file.parent.glob("*.json")):
        if other.resolve() == out_file.resolve():
            continue
        bench = _read_bench(other)
        if bench is None:
            continue
        shared = sorted(
            f
            for f in _written_files(bench)
            if (frames and f.startswith("frames" + os.sep)) or (clips and not f.startswith("frames" + os.sep))
        )
        if shared:
            raise ValueError(
                f"{other} is a benchmark in the same folder and this build would overwrite its files (e.g. "
                f"{shared[0]}): a benchmark keeps its frames/ and videos/ next to it, so build into another folder"
            )


def _remove_stale(old: dict | None, new: dict, out: Path) -> None:
    """After a rebuild, remove the files the old build wrote that the new one no longer uses. One that cannot be
    removed is a warning naming it (the new benchmark is in place either way, but no later rebuild knows of it)."""
    if old is None:
        return
    left = [f"{path} ({e.strerror or e})" for path, e in remove_files(out, _written_files(old) - _written_files(new))]
    if left:
        import warnings

        warnings.warn(
            f"{counted(len(left), 'file')} of the earlier build that this one no longer uses could not be removed: "
            f"{'; '.join(left[:3])}{' ...' if len(left) > 3 else ''}; "
            f"remove {'it' if len(left) == 1 else 'them'} by hand",
            stacklevel=2,  # (build()'s placed(): in sf2t, so that the sf2t command shows it)
        )


def _bar(items, total: int, desc: str, on: bool):
    """``items`` with a progress bar on stderr when ``on`` and the work is not tiny."""
    if not on or total < 8:
        return items
    import sys

    from sf2t._progress import progress_bar

    return progress_bar(items, total=total, desc=desc, file=sys.stderr, dynamic_ncols=True, leave=False)


def _fragment_questions(
    manifest: str, stage: Path, tasks, per_category: int, seed: int, decoder: str, log, progress: bool = True
) -> list[dict]:
    """``tasks``: names, or {name: Task} (task parameters, e.g. those a run trained with). Built frames are written
    under ``stage / "frames"`` and recorded relative to ``stage`` (the benchmark's folder once moved there)."""
    from sf2t.tasks import templates
    from sf2t.tasks.export import _sampler, _save
    from sf2t.tasks.scoring import truth_text

    sampler, left_out = _sampler(manifest, tasks, seed, 4, 64, decoder, strict=False)
    if left_out:
        shown = "; ".join(f"{p}: {why}" for p, why in left_out[:5]) + ("; ..." if len(left_out) > 5 else "")
        log(f"fragment level: {len(left_out)} left out, no fragment can come from them: {shown}")
    if sampler is None:
        log("fragment level: no video is long enough for any fragment task; the benchmark has no fragment questions")
        return []
    got: dict[str, int] = {t: 0 for t in sampler.tasks}
    qs: list[dict] = []
    w, max_windows = 0, 40 * per_category * len(got)
    bar = _bar(None, per_category * len(got), "fragment questions", progress)  # (the tasks left out not counted)
    try:
        while min(got.values()) < per_category and w < max_windows:
            for s, frames in sampler.window(w):
                if got[s.task] >= per_category:
                    continue
                qid = f"frag-{s.task}-{got[s.task]:04d}"
                rng = random.Random(f"{seed}:{qid}")
                q, _ = templates.question_for(s.meta, rng)
                _, _, options = templates.multiple_choice(s.task, s.meta, rng, question_text=q)
                answer = options.index(truth_text(s.meta))
                rec: dict = {
                    "id": qid,
                    "level": "fragment",
                    "category": s.task,
                    "variant": "original",
                    "question": q,
                    "options": options,
                    "answer_index": answer,
                    "meta": s.meta,
                }
                if s.frames is None:  # shown as decoded: the video and its frames
                    rec["video"] = {"path": s.meta["source"], "frames": list(s.meta["source_frames"])}
                else:  # built pixels: the presented frames as images
                    d = stage / "frames" / qid
                    d.mkdir(parents=True, exist_ok=True)
                    shown = s.presented(frames)
                    paths = []
                    for k in range(shown.shape[0]):
                        _save(shown[k], d / f"{k:02d}.png", "png")
                        paths.append(str((d / f"{k:02d}.png").relative_to(stage)))
                    rec["video"] = {"frame_images": paths}
                if s.image is not None:
                    d = stage / "frames" / qid
                    d.mkdir(parents=True, exist_ok=True)
                    _save(s.image, d / "target.png", "png")
                    rec["image"] = str((d / "target.png").relative_to(stage))
                qs.append(rec)
                got[s.task] += 1
                if bar is not None:
                    bar.update(1)
            w += 1
    finally:  # closed on an error or Ctrl-C too (its last state is not left on the terminal, under the message)
        if bar is not None:
            bar.close()
        sampler.close()
    short = {t: n for t, n in got.items() if n < per_category}
    if short:
        log(f"fragment level: fewer questions than asked for {short} (videos too short or static for them)")
    return qs


@contextlib.contextmanager
def _removed_if_left_empty(folder: Path):
    """The folders of ``folder``'s path that do not exist yet (made in the block) are removed again, deepest first,
    where the block fails and leaves them empty; a folder that existed before stays, and so does one the failure left
    files in. A path through ``..`` (``new/../there/sub``) names its folders by where they lead once made: ``there``
    (there before, though ``new/../there`` was not) stays, ``new`` and ``there/sub`` are removed."""
    made = []
    p = folder.absolute()
    while not os.path.lexists(p) and p != p.parent:
        if p.name != ".." and not os.path.lexists(os.path.realpath(p)):
            made.append(p)
        p = p.parent
    try:
        yield
    except BaseException:
        for d in made:  # deepest first
            try:
                d.rmdir()
            except OSError:  # not empty (a staging folder kept: its message says so), or gone
                continue
        raise


def build(
    manifest: str | None,
    out_path: str,
    *,
    per_category: int = 20,
    synthetic: int = 0,
    seed: int = 0,
    tasks: Sequence[str] | None = None,
    name: str | None = None,
    decoder: str = "auto",
    task_params: dict | None = None,
    scene_annotations: str | None = None,
    log=print,
    progress: bool = True,
) -> dict:
    """Write the benchmark to ``out_path`` (JSON; frames and synthetic clips next to it) and return it. A build that
    fails or is interrupted leaves the folder as it was (an earlier benchmark with its files; a fresh folder with
    none of this build's; no folder where the build made it): frames and clips are made in a staging folder and put
    in place with the benchmark file last, undone on a failure (:func:`sf2t.finevidbench.place.commit`; a ValueError
    says what was kept); a build killed while it was put in place is rolled back first (:func:`recover`), and the
    staging folders killed builds left are removed (:func:`sf2t.finevidbench.place.remove_abandoned`: logged). A
    second build of the same benchmark while one runs is a ValueError (:func:`sf2t.finevidbench.place.check_alone`).
    A Ctrl-C once the benchmark file is in place (as the earlier build's unused files are removed) is an
    :class:`Interrupted` with ``placed`` set: the folder holds the new build; any other error then has the same
    attributes set on it (``placed``, ``out_file``, ``left``).
    ``progress``: bars (stderr) for the synthetic clips and the fragment-level questions.
    ``out_path`` a symlink: the build goes to its target, in the target's folder (the link stays, pointing at the
    new build); a link to a file that is not there makes it, where its folder exists (else a ValueError).
    ``tasks``: the fragment-level tasks (None: all; names split at commas; none named is an error; given without a
    ``manifest``, which they are made from, a ValueError, as is ``task_params``). ``name``: the
    benchmark's name (default: the file's stem): ASCII letters, digits, '_', '.' and '-', as it names an export's task
    and files (:func:`sf2t._names.check_safe_name`; a name that is not is refused with the name to use).
    ``task_params``: {task: {field: value}} for the fragment-level tasks (e.g. a run's ``train_config.json``
    sections, so the questions use the parameters the model was trained with); absent tasks use the defaults."""
    from sf2t.tasks import TASK_CONFIGS, TASKS, make_task, task_names

    per_category = check_int("per_category", per_category, min_value=1)
    synthetic = check_int("synthetic", synthetic, min_value=0)
    seed = check_int("seed", seed)  # (a bool would seed the questions' draws with "True")
    if synthetic and seed < 0:
        # the clips' seeds are seed * 1000 + i: synth refused -1000 for --seed -1, once clips were being made
        raise ValueError(f"seed must be a non-negative int for synthetic clips, got {seed}")
    if manifest is None and synthetic == 0 and scene_annotations is None:
        raise ValueError(
            "nothing to build from: give a manifest (sf2t index), scene annotations and/or synthetic clips"
        )
    for given, option in ((tasks, "--tasks"), (task_params, "--task-config")):
        if given is not None and manifest is None:  # (they were ignored without a word: scene questions only)
            raise ValueError(
                f"{option}: the fragment-level tasks are made from the videos of --manifest, and there is none: this "
                f"build would have scene questions only, and {option} would change nothing; add --manifest (an sf2t "
                f"index manifest of your videos), or leave {option} out"
            )
    tasks = list(TASKS) if tasks is None else task_names(tasks, "--tasks")  # none named (--tasks alone): an error
    if name is not None:
        from sf2t._names import check_safe_name

        check_safe_name(name, "--name", "an export names its task and files after the benchmark")
    from sf2t._files import check_out_file

    inputs = [manifest, scene_annotations]
    if manifest is not None:
        from sf2t.video.index import expand_videos

        inputs += expand_videos([manifest])
    check_out_file(out_path, "--out", inputs=inputs, text=True)  # never over a video or a list it reads
    out_file = real_file(out_path)  # a symlink: the build goes to its target (the link stays, pointing at it)
    if out_file.is_symlink():
        raise ValueError(f"--out {out_path}: a symlink that leads back to itself (a loop): pass another path")
    if out_file != Path(out_path) and not out_file.parent.is_dir():  # (a link to a file that is not there: made)
        raise ValueError(
            f"--out {out_path}: a symlink to {out_file}, whose folder {out_file.parent} does not exist (a build "
            "writes through the link, to its target): make that folder, or point the link (or --out) elsewhere"
        )
    _earlier_bench(out_file, out_path)  # notes.txt was replaced: refused before any folder is made
    out = out_file.parent
    with _removed_if_left_empty(out):  # a build that fails leaves no folder it made (an empty --out folder was left)
        out.mkdir(parents=True, exist_ok=True)
        # Frames and clips are made in a staging folder and moved into frames/ and videos/ only once every question is
        # made: a build that fails or is interrupted leaves an earlier benchmark in the folder as it was. The folder is
        # this build's while it runs (its owner record): a second build of the benchmark is refused meanwhile.
        import shutil

        stage, owner = make_stage(out, out_file)
        committed = False
        text, stale = None, set()
        try:
            check_alone(stage, out_file)
            undone = recover(out_file)  # a build killed while put in place: the folder as before it (or as after it)
            if undone:
                log(f"a build of {out_file} had been stopped while its files were put in place: {undone}")
            removed, kept = remove_abandoned(out, stage)  # (kill -9 while making frames and clips: left for good)
            if removed:
                log(
                    f"removed {counted(len(removed), 'staging folder')} that stopped builds left in {out}: "
                    + ", ".join(removed)
                )
            for k in kept:
                log(f"left the staging folder {k}")
            # a rebuild: its leftovers are removed after; checked again, as recover may have changed the file
            old = _earlier_bench(out_file, out_path)
            _check_shared_folder(out_file, frames=manifest is not None, clips=synthetic > 0)
            label_questions = []
            if scene_annotations:  # checked (every video probed) before any long work
                label_questions = annotation_questions(scene_annotations, random.Random(f"{seed}:labels"), out)
            questions: list[dict] = []
            scene_sources: list[tuple[dict, str]] = []
            truths: list[str] = []  # the manifest videos' ground truth files read (named by the benchmark: see below)
            if synthetic:
                from sf2t import synth

                clips = _bar(range(synthetic), synthetic, "synthetic clips", progress)
                try:
                    for i in clips:
                        clip = f"scene_{i:04d}"
                        gt = synth.make_clip(stage / "videos" / clip, seed * 1000 + i, width=160, height=120, seconds=5)
                        final = out / "videos" / Path(gt["path"]).name
                        gt["path"] = str(final)  # where it will be; its ground truth file says so too
                        Path(stage / "videos" / clip).with_suffix(".json").write_text(json.dumps(gt, indent=1))
                        scene_sources.append((gt, str(final)))
                finally:  # the bar closed on an error or Ctrl-C too
                    if hasattr(clips, "close"):
                        clips.close()
            if manifest is not None:
                from sf2t.video.index import expand_videos

                for path in expand_videos([manifest]):  # manifest videos with synth ground truth next to them
                    side = Path(path).with_suffix(".json")
                    if side.is_file():
                        try:
                            gt = json.loads(side.read_text(encoding="utf-8"))
                        except (ValueError, UnicodeDecodeError) as e:
                            if not is_bad_input(e):  # io.UnsupportedOperation from the read: a bug, not the file
                                raise
                            raise ValueError(
                                f"{side}: the ground truth next to {path} is not readable JSON ({e}); fix or move it"
                            ) from None
                        if "sprites" in gt and "num_frames" in gt:
                            scene_sources.append((gt, path))
                            truths.append(str(side))
                chosen = {t: make_task(t, TASK_CONFIGS[t](**(task_params or {}).get(t, {}))) for t in tasks}
                questions += _fragment_questions(manifest, stage, chosen, per_category, seed, decoder, log, progress)
            scene: list[dict] = []
            shown = object_count_options(set().union(*(counts_shown(gt) for gt, _ in scene_sources)))
            for i, (gt, video) in enumerate(scene_sources):
                scene += scene_questions(gt, video, f"scene-{i:04d}", random.Random(f"{seed}:scene:{i}"), shown)
            questions += balance_scene(scene, per_category)  # answers balanced: see balance_scene
            questions += label_questions
            for q in questions:  # readers start relative paths from the benchmark's folder, not from where it was built
                v = q.get("video", {})
                if "path" in v:
                    v["path"] = _from_bench(v["path"], out)
            bench = {
                "format": FORMAT,
                "name": name or out_file.stem,
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "description": f"sf2t FineVidBench-style benchmark: seed {seed}, {per_category} per category",
                "questions": questions,
            }
            if truths:  # every one read, also of a clip balance_scene left out: `sf2t eval` never writes over them
                bench["ground_truth"] = sorted({_from_bench(t, out) for t in truths})

            def placed() -> None:  # the build is in place: the files of an earlier build it no longer uses go
                nonlocal committed
                committed = True
                _remove_stale(old, bench, out)

            written = _written_files(bench)  # (a walk of every question: once)
            stale = _written_files(old) - written if old is not None else set()
            text = dumps(bench)
            _commit(stage, out_file, text, written, stale, placed)  # into place, all or nothing
            committed = True
        except KeyboardInterrupt:  # (Ctrl-C) after the last rename: the new build is in place, and the command says so
            if committed or (text is not None and is_placed(stage, out_file, text)):
                committed = True  # (the stage goes: what it held is in place; a journal left completes next time)
                left = sorted(f for f in stale if os.path.lexists(out / f))  # (not removed yet)
                raise Interrupted(str(out_file), placed=True, left=left) from None
            raise
        except Exception as e:  # an error once the benchmark was in place (as the unused files were removed)
            if committed:
                _mark_placed(e, out_file, sorted(f for f in stale if os.path.lexists(out / f)))
            raise
        finally:  # kept only when a failed commit could not move an earlier build's files back (its message says so)
            if committed or not any(p.is_file() for p in (stage / "replaced").rglob("*")):
                shutil.rmtree(stage, ignore_errors=True)
            owner.close()  # (its lock: this build no longer runs)
    cats: dict[str, int] = {}
    for q in questions:
        key = f"{q['level']}/{q['category']}"
        cats[key] = cats.get(key, 0) + 1
    try:
        through = f" (through the symlink {out_path})" if out_file != Path(out_path) else ""
        log(
            f"wrote {out_file}{through}: {counted(len(questions), 'question')}; "
            + ", ".join(f"{k} {v}" for k, v in sorted(cats.items()))
        )
    except Exception as e:  # (stdout to a full disk) the benchmark is in place
        _mark_placed(e, out_file, [])
        raise
    return bench


def _mark_placed(e: BaseException, out_file: Path, left: Sequence[str]) -> None:
    """Mark an error that stopped :func:`build` once its benchmark was in place as :class:`Interrupted` marks a
    Ctrl-C (``placed``, ``out_file``, ``left``), so that the command says the folder holds the new build, not that the
    benchmark was not written."""
    with contextlib.suppress(AttributeError):  # (an exception that takes no attributes: said as any other)
        e.placed, e.out_file, e.left = True, str(out_file), list(left)
