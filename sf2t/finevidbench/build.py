"""``sf2t finevidbench build``: a FineVidBench-style benchmark from your own videos.

- **Fragment level**: SF²T task samples (``sf2t.tasks``, through the window sampler) rendered as multiple choice,
  ``per_category`` per task. Frames the task did not change are referenced as (video path, frame indices); frames
  it built (a replaced cell, a pasted target) are written as PNG images, exactly the presented pixels.
- **Scene level**: from ``sf2t.synth`` ground truth (clips made with ``--synthetic N``, and manifest videos that
  have their ``.json`` ground truth next to them) and from user labels (``--scene-annotations``): questions about
  the whole clip, each also in its variants (``speed_2x``, ``speed_0.5x``, ``reversed``, ``shuffled``), balanced
  across answers: :mod:`sf2t.finevidbench.questions` makes them, and says how.

A build is made in a staging folder and put in place all or nothing (:mod:`sf2t.finevidbench.place`); the files it
writes next to the benchmark, and those of the earlier build it replaces, are :mod:`sf2t.finevidbench.files`'s.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import random
from pathlib import Path
from typing import Sequence

from sf2t._checks import check_int
from sf2t._oserror import is_bad_input
from sf2t._plural import counted
from sf2t.finevidbench.files import (
    _check_shared_folder,
    _earlier_bench,
    _from_bench,
    _read_bench,  # noqa: F401  (re-exported: the module's names before the split)
    _remove_stale,
    _removed_if_left_empty,
    _written_files,
)
from sf2t.finevidbench.format import FORMAT, dumps
from sf2t.finevidbench.place import (
    NotPlaced,
    check_alone,
    is_placed,
    make_stage,
    real_file,
    recover,
    remove_abandoned,
)
from sf2t.finevidbench.place import commit as _commit
from sf2t.finevidbench.questions import (  # noqa: F401  (re-exported: the module's names before the split)
    BALANCED,
    DIRECTIONS,
    OPPOSITE,
    SCENE_FRAMES,
    _name,
    _options,
    _shown_direction,
    _spread,
    _visible,
    annotation_questions,
    balance_scene,
    counts_shown,
    object_count_options,
    scene_questions,
    variant_frames,
)

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


class Interrupted(KeyboardInterrupt):
    """A Ctrl-C that stopped :func:`build` once its benchmark was in place (``placed``: while the earlier build's
    files it no longer uses were removed): the folder holds the new build, not the earlier one. ``left``: those files
    (relative to the benchmark's folder) not removed yet."""

    def __init__(self, out_file: str, placed: bool, left: Sequence[str] = ()):
        super().__init__(out_file)
        self.out_file, self.placed, self.left = out_file, placed, list(left)


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
