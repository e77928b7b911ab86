"""``sf2t eval``: score a model on a FineVidBench-style benchmark.

Modes: ``likelihood`` (each option's mean log-probability as the answer to the question with its options listed; the
best wins) and ``generate`` (greedy answer, parsed as an option letter or an option's text; each answer is also
flagged ``in_form`` when written as the prompt asks, and the report gives that share and the strict accuracy). Per
level, category and variant accuracy, overall, and the sensitivity to each variant (accuracy on ``original`` minus
on the variant, over the scene-level groups). Answers are appended to ``<out>.answers.jsonl`` as they come, so a
crashed run resumes where it stopped. Writes ``results.json``, ``report.md`` and a bar chart PNG next to it;
``compare`` prints two results side by side. Questions whose video files are missing, and with ``max_frames`` those
that show more frames, are listed and skipped (thinning them would change their answers: a count, a span, a speed);
the coverage is reported.

What it calls lives beside it, and each of those names is importable from here too: ``sf2t.finevidbench.runner``
(the model that answers, what a question shows it, which questions can be asked) and ``sf2t.finevidbench.results``
(the answers file a run resumes from, the files next to ``--out``, the results, the report and the comparison).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch

from sf2t._checks import check_int
from sf2t._plural import counted
from sf2t.finevidbench.choice import in_form, parse_choice
from sf2t.finevidbench.format import load
from sf2t.finevidbench.results import (
    _SETTING_KEY,
    _acc,  # noqa: F401  (re-exported)
    _is_results,  # noqa: F401  (re-exported)
    _json_safe,
    _read_answers,
    _setting_changes,
    bench_digest,
    bench_files,
    check_out_files,
    checkpoint_fingerprint,  # noqa: F401  (re-exported)
    compare_text,
    side_files,
    summarize,
    write_report,
)
from sf2t.finevidbench.runner import (
    VIDEO_FAMILIES,  # noqa: F401  (re-exported)
    QwenRunner,
    VideoRunner,
    _missing,
    _num_frames,
    _path,  # noqa: F401  (re-exported)
    check_askable,
    checkpoint_kind,  # noqa: F401  (re-exported)
    load_media,
    render_question,
)

__all__ = [
    "evaluate",
    "check_out_files",
    "bench_files",
    "side_files",
    "VideoRunner",
    "QwenRunner",
    "summarize",
    "compare_text",
    "parse_choice",
    "render_question",
]


def evaluate(
    bench_path: str,
    out_path: str,
    *,
    runner: QwenRunner | None = None,
    predictor: Callable[[dict, torch.Tensor, torch.Tensor | None], tuple[int | None, dict]] | None = None,
    mode: str = "likelihood",
    max_frames: int | None = None,
    batch_size: int = 4,
    log=print,
    setting: dict | None = None,
) -> dict:
    """Answer every question of the benchmark (resuming from ``<out>.answers.jsonl``) and write the results.
    ``predictor(q, frames, image) -> (option index or None, extra)`` replaces the model (tests, oracles).
    ``setting``: what else makes the answers (model, adapter, frame size, ...: :func:`checkpoint_fingerprint`); it is
    recorded with the answers with the benchmark's fingerprint and the mode, and a resume under another setting is
    refused (it would mix two models' answers)."""
    if mode not in ("likelihood", "generate"):
        raise ValueError(f"mode must be likelihood or generate, got {mode!r}")
    if runner is None and predictor is None:
        raise ValueError("give a runner (a model) or a predictor")
    if max_frames is not None:
        max_frames = check_int("max_frames", max_frames, min_value=1)
    batch_size = check_int("batch_size", batch_size, min_value=1)
    from sf2t._files import write_text_atomic

    bench = load(bench_path)
    root = bench["_root"]
    out = Path(out_path)
    check_out_files(out_path, inputs=[bench_path, *bench_files(bench)])  # as the command: no input replaced
    out.parent.mkdir(parents=True, exist_ok=True)
    answers_path = side_files(out)["answers"]
    done, made_by = _read_answers(answers_path, log)
    now = {"benchmark": bench_digest(bench), "mode": mode if predictor is None else "predictor", **(setting or {})}
    now = json.loads(json.dumps(now, default=str))  # as the file holds it (tuples as lists)
    if made_by is not None and made_by != now:
        raise ValueError(
            f"--out {out_path}: its answers ({answers_path.name}) were made by another setting ("
            + "; ".join(_setting_changes(made_by, now))
            + "): pass another --out, or remove the answers file to start over"
        )
    if made_by is None and done:
        log(
            f"{answers_path}: {counted(len(done), 'answer')} from an sf2t that did not record what made them: reused "
            "as they are (remove the file if they are another model's)"
        )
    missing = {q["id"]: _missing(q, root) for q in bench["questions"]}
    missing = {k: v for k, v in missing.items() if v}
    if missing:
        files = sorted({p for v in missing.values() for p in v})
        more = " ..." if len(files) > 5 else ""
        log(f"{counted(len(missing), 'question')} skipped: missing {counted(len(files), 'file')} {files[:5]}{more}")
    too_long = {}
    if max_frames is not None:
        too_long = {q["id"]: n for q in bench["questions"] if (n := _num_frames(q)) > max_frames}
        if too_long:
            log(
                f"{counted(len(too_long), 'question')} skipped: {'it shows' if len(too_long) == 1 else 'they show'} "
                f"more than {max_frames} frames (up to "
                f"{max(too_long.values())}), and fewer frames would change their answers"
            )
        if len(too_long) == len(bench["questions"]):
            raise ValueError(
                f"max_frames {max_frames}: every question shows more frames (the fewest: {min(too_long.values())})"
            )
    # not asked now, nor counted if an earlier run answered them (before their files went missing, or without a cap)
    skipped = missing.keys() | too_long.keys()
    done = {k: v for k, v in done.items() if k not in skipped}
    todo = [q for q in bench["questions"] if q["id"] not in done and q["id"] not in skipped]
    if predictor is None and mode == "generate":  # answers an older sf2t saved without the flag: from their text
        qs = {q["id"]: q for q in bench["questions"]}
        for qid, rec in done.items():
            if "in_form" not in rec and isinstance(rec.get("text"), str) and qid in qs:
                rec["in_form"] = in_form(rec["text"], qs[qid]["options"])
    from sf2t._progress import progress_bar

    step = batch_size if (predictor is None and mode == "likelihood") else 1
    bar = progress_bar(total=len(todo), auto=True, desc="eval", leave=False, disable=len(todo) < 20)
    with open(answers_path, "a") as fh:
        if fh.tell() == 0:  # a new file: first, what makes its answers
            fh.write(json.dumps({_SETTING_KEY: now}) + "\n")
        for b0 in range(0, len(todo), step):
            chunk = []
            for q in todo[b0 : b0 + step]:
                frames, image = load_media(q, root)
                chunk.append((q, frames, image))
            if predictor is not None:
                results = [predictor(q, f, i) for q, f, i in chunk]
            elif mode == "likelihood":  # the chunk's questions in one forward pass
                results = [
                    (max(range(len(sc)), key=lambda i, sc=sc: sc[i]), {"scores": sc})
                    for sc in runner.likelihood_batch(chunk)
                ]
            else:
                results = []
                for q, f, i in chunk:
                    text = runner.generate(q, f, i)
                    extra = {"text": text, "in_form": in_form(text, q["options"])}
                    results.append((parse_choice(text, q["options"]), extra))
            for (q, _, _), (pred, extra) in zip(chunk, results):
                rec = {"id": q["id"], "pred": pred, "correct": pred == q["answer_index"], **extra}
                fh.write(json.dumps(rec) + "\n")
                done[q["id"]] = rec
            fh.flush()  # a crash loses at most the chunk in flight
            bar.update(len(chunk))
    bar.close()
    if not done:
        check_askable(bench)  # (called without the command's precheck)
    res = summarize(bench, done, missing, too_long)
    res["mode"] = mode if predictor is None else "predictor"
    res["setting"] = now
    write_text_atomic(out, json.dumps(_json_safe(res), indent=1, allow_nan=False), "--out")
    write_report(res, out)
    o = res["overall"]
    form = "" if "in_form" not in o else f"; in the asked form {o['in_form']:.0%} (strict {o['strict_accuracy']:.3f})"
    log(f"accuracy {o['accuracy']:.3f} on {counted(o['n'], 'question')} (coverage {res['coverage']:.0%}){form}; {out}")
    return res
