"""The benchmark file: versioned JSON, one object with ``format``, ``name`` and ``questions`` (the JSON Schema is
``sf2t/finevidbench/schema.json``; :func:`validate` checks the same rules and names the question and field at
fault). Paths inside are relative to the file's folder. ``ground_truth`` (optional) lists the synthetic ground truth
files next to manifest videos that the build read (``sf2t eval`` never writes over them).

A question::

    {"id": "scene-0003-direction-reversed", "level": "scene", "category": "motion_direction",
     "variant": "reversed", "group": "scene-0003-direction",
     "video": {"path": "videos/clip_0003.mp4", "frames": [124, 116, ...]},   # or {"frame_images": [...]}
     "question": "In which direction does the white triangle move?",
     "options": ["left", "right", "up", "down"], "answer_index": 1, "meta": {...}}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["FORMAT", "LEVELS", "VARIANTS", "BenchmarkError", "validate", "load", "save", "dumps", "schema", "letter"]

FORMAT = "sf2t-finevidbench/1"
LEVELS = ("scene", "fragment")
VARIANTS = ("original", "speed_0.5x", "speed_2x", "reversed", "shuffled")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class BenchmarkError(ValueError):
    """A benchmark file that breaks the format: the message names the question and the field."""


def letter(i: int) -> str:
    return LETTERS[i]


def schema() -> dict:
    """The JSON Schema of the format (draft 2020-12)."""
    return json.loads((Path(__file__).with_name("schema.json")).read_text())


def _where(i: int, q: Any) -> str:
    qid = q.get("id") if isinstance(q, dict) else None
    return f"question {i}" + (f" (id {qid!r})" if qid else "")


def validate(bench: Any) -> None:
    """Raise :class:`BenchmarkError` naming the first question and field that break the format."""
    if not isinstance(bench, dict):
        raise BenchmarkError(f"a benchmark is a JSON object, got {type(bench).__name__}")
    if bench.get("format") != FORMAT:
        raise BenchmarkError(f"field 'format' must be {FORMAT!r}, got {bench.get('format')!r}")
    if not isinstance(bench.get("name"), str) or not bench["name"]:
        raise BenchmarkError("field 'name' must be a non-empty string")
    qs = bench.get("questions")
    if not isinstance(qs, list):
        raise BenchmarkError("field 'questions' must be a list")
    seen: set = set()
    for i, q in enumerate(qs):
        w = _where(i, q)
        if not isinstance(q, dict):
            raise BenchmarkError(f"{w}: must be an object")
        for f in ("id", "level", "category", "variant", "video", "question", "options", "answer_index"):
            if f not in q:
                raise BenchmarkError(f"{w}: field {f!r} is missing")
        if not isinstance(q["id"], str) or not q["id"]:
            raise BenchmarkError(f"{w}: field 'id' must be a non-empty string")
        if q["id"] in seen:
            raise BenchmarkError(f"{w}: field 'id' repeats an earlier question's id")
        seen.add(q["id"])
        if q["level"] not in LEVELS:
            raise BenchmarkError(f"{w}: field 'level' must be one of {LEVELS}, got {q['level']!r}")
        if q["variant"] not in VARIANTS:
            raise BenchmarkError(f"{w}: field 'variant' must be one of {VARIANTS}, got {q['variant']!r}")
        if not isinstance(q["category"], str) or not q["category"]:
            raise BenchmarkError(f"{w}: field 'category' must be a non-empty string")
        if not isinstance(q["question"], str) or not q["question"]:
            raise BenchmarkError(f"{w}: field 'question' must be a non-empty string")
        opts = q["options"]
        if not isinstance(opts, list) or len(opts) < 2 or not all(isinstance(o, str) and o for o in opts):
            raise BenchmarkError(f"{w}: field 'options' must be a list of at least 2 non-empty strings")
        if len(set(opts)) != len(opts):
            raise BenchmarkError(f"{w}: field 'options' has duplicates")
        a = q["answer_index"]
        if isinstance(a, bool) or not isinstance(a, int) or not 0 <= a < len(opts):
            raise BenchmarkError(f"{w}: field 'answer_index' must be an int in [0, {len(opts)}), got {a!r}")
        v = q["video"]
        if not isinstance(v, dict):
            raise BenchmarkError(f"{w}: field 'video' must be an object")
        if "frame_images" in v:
            imgs = v["frame_images"]
            if not isinstance(imgs, list) or not imgs or not all(isinstance(p, str) and p for p in imgs):
                raise BenchmarkError(f"{w}: field 'video.frame_images' must be a non-empty list of paths")
        else:
            if not isinstance(v.get("path"), str) or not v["path"]:
                raise BenchmarkError(f"{w}: field 'video.path' must be a path (or give video.frame_images)")
            fr = v.get("frames")
            if (
                not isinstance(fr, list)
                or not fr
                or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in fr)
            ):
                raise BenchmarkError(f"{w}: field 'video.frames' must be a non-empty list of frame indices >= 0")
        if "image" in q and (not isinstance(q["image"], str) or not q["image"]):
            raise BenchmarkError(f"{w}: field 'image' must be a path")
    truths = bench.get("ground_truth", [])
    if not isinstance(truths, list) or not all(isinstance(p, str) and p for p in truths):
        raise BenchmarkError("field 'ground_truth' must be a list of paths (the ground truth files the build read)")


def load(path: str | os.PathLike) -> dict:
    """Read and validate a benchmark (one with no question is an error too; so is one whose build was killed while it
    was put in place: :func:`sf2t.finevidbench.place.check_not_interrupted`); adds ``_root`` (its folder, which
    relative paths start from)."""
    path = Path(path)
    from sf2t._files import read_text
    from sf2t._oserror import is_bad_input
    from sf2t.finevidbench.place import check_not_interrupted

    try:
        check_not_interrupted(path, str(path))  # the folder may mix two builds
    except ValueError as e:
        raise BenchmarkError(str(e)) from None

    try:
        text = read_text(path, str(path), "a benchmark JSON file")
    except ValueError as e:
        if not is_bad_input(e):
            raise
        raise BenchmarkError(str(e)) from None
    try:
        bench = json.loads(text)
    except json.JSONDecodeError as e:
        from sf2t._files import json_lines_kind, json_lines_noun

        kind = json_lines_kind(text)
        if kind == "manifest":  # `sf2t eval --bench videos.jsonl`: "not JSON: Extra data" said nothing of the file
            raise BenchmarkError(
                f"{path}: {json_lines_noun(text)}, not a benchmark: build a benchmark from it first with `sf2t "
                f"finevidbench build --manifest {path} --out bench/bench.json`, then pass that file"
            ) from None
        if kind is not None:
            raise BenchmarkError(
                f"{path}: {json_lines_noun(text)}, not a benchmark JSON file (sf2t finevidbench build writes them)"
            ) from None
        raise BenchmarkError(f"{path}: not JSON: {e}") from e
    try:
        validate(bench)
    except BenchmarkError as e:  # name the file too: a command may read several
        hint = " (sf2t finevidbench build writes benchmarks)" if "'format'" in str(e) else ""
        raise BenchmarkError(f"{path}: {e}{hint}") from None
    if not bench["questions"]:  # eval scored it "accuracy nan on 0 questions" and exited 0; export wrote empty tasks
        raise BenchmarkError(f"{path}: lists no question (field 'questions' is empty)")
    bench["_root"] = str(path.resolve().parent)
    return bench


def dumps(bench: dict) -> str:
    """The benchmark file's text (fields starting with ``_``, as ``_root``, left out), validated first."""
    out = {k: v for k, v in bench.items() if not k.startswith("_")}
    validate(out)
    return json.dumps(out, indent=1)


def save(bench: dict, path: str | os.PathLike) -> None:
    """Validate and write atomically."""
    from sf2t._files import write_text_atomic

    write_text_atomic(path, dumps(bench), "benchmark")
