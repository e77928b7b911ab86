"""The files ``sf2t eval`` (:mod:`sf2t.finevidbench.evaluate`) reads and writes, and what it reports. The answers
file ``<out>.answers.jsonl`` a run resumes from (:func:`_read_answers`; its first line, ``_SETTING_KEY``, says what
made them: the benchmark's :func:`bench_digest`, :func:`checkpoint_fingerprint` of the model and adapter; a resume
under another setting is refused with :func:`_setting_changes`); the files written next to ``--out``
(:func:`side_files`) and the checks that none of them replaces a file it should not (:func:`check_out_files`,
:func:`_is_results`, :func:`bench_files`: the benchmark's own files); the results (:func:`summarize`: accuracy per
level, category, variant and cell, in generate mode also the share of answers in the asked form and the strict
accuracy, sensitivity, coverage; ``_json_safe``: sf2t._files.json_safe), ``report.md`` and the chart
(:func:`write_report`) and two results side by side (:func:`compare_text`).
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from pathlib import Path

from sf2t._files import json_safe as _json_safe  # noqa: F401  (re-exported: sf2t eval writes results with it)
from sf2t._plural import counted
from sf2t.finevidbench.runner import _path

_SETTING_KEY = "sf2t_eval_setting"  # the answers file's first line: what made its answers


def _read_answers(path: Path, log) -> tuple[dict[str, dict], dict | None]:
    """The answers a previous run of the same ``--out`` saved (it resumes after them), and the setting line that
    says what made them (None in a file without one). A crash while a line was being written leaves it cut short:
    that last line is dropped (its question is asked again); a bad line before it is an error naming the line."""
    done: dict[str, dict] = {}
    setting = None
    if not path.is_file():
        return done, setting
    text = path.read_text()
    lines = [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    good = []
    for k, (i, line) in enumerate(lines):
        try:
            rec = json.loads(line)
            if k == 0 and isinstance(rec, dict) and isinstance(rec.get(_SETTING_KEY), dict):
                setting = rec[_SETTING_KEY]
                good.append(line)
                continue
            if not isinstance(rec, dict) or "id" not in rec:
                raise ValueError("not an answer record")
        except ValueError as e:
            if k == len(lines) - 1:
                log(f"{path}:{i}: a cut-short last answer (a crash while writing it): dropped, asked again")
                break
            raise ValueError(f"{path}:{i}: not an sf2t eval answer line ({e}); remove the file to start over") from None
        done[rec["id"]] = rec
        good.append(line)
    if len(good) != len(lines) or (text and not text.endswith("\n")):  # new answers must start on a line of their own
        from sf2t._files import write_text_atomic

        write_text_atomic(path, "".join(line + "\n" for line in good), "answers")
    return done, setting


def bench_digest(bench: dict) -> str:
    """A fingerprint of a benchmark's questions (what is asked, shown and counted right): answers made for another
    benchmark, or for this one rebuilt, are not reused."""
    import hashlib

    qs = json.dumps(bench["questions"], sort_keys=True, default=str).encode()
    return hashlib.sha256(qs).hexdigest()[:16]


def checkpoint_fingerprint(path: str | os.PathLike | None) -> dict | None:
    """Where a checkpoint or adapter folder is, and the size and time of its weight files: answers made by another
    model, or by this folder retrained, are not reused."""
    if path is None:
        return None
    p = Path(path).resolve()
    files = sorted(f for f in p.glob("*") if f.suffix in (".safetensors", ".bin", ".pt") and f.is_file())
    return {"path": str(p), "weights": [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]}


def _setting_changes(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def side_files(out_path: str | os.PathLike, compare: bool = False) -> dict[str, Path]:
    """The files ``sf2t eval --out F`` writes next to F: ``answers`` (``F.answers.jsonl``, resumed from), ``report``
    (``.report.md``), ``chart`` (``.png``) and with ``--compare`` ``compare`` (the side-by-side table,
    ``.compare.md``)."""
    out = Path(out_path)
    files = {"answers": out.with_suffix(".answers.jsonl"), "report": out.with_name(out.stem + ".report.md")}
    files["chart"] = out.with_name(out.stem + ".png")
    return {**files, "compare": out.with_name(out.stem + ".compare.md")} if compare else files


def _is_results(path: Path) -> bool:
    """Whether ``path`` holds an ``sf2t eval`` results JSON (a mapping with a ``table``, as :func:`evaluate` writes)."""
    try:
        res = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(res, dict) and isinstance(res.get("table"), dict)


def check_out_files(out_path: str | os.PathLike, inputs=(), compare: bool = False) -> None:
    """The rule ``--out`` follows (:func:`sf2t._files.check_out_file`: never a folder, one of the command's
    ``inputs``, or a file that is not what would be written), for ``--out`` and each of its :func:`side_files`: a
    ValueError naming the file, checked before the model loads (a folder there was a traceback once every question
    was answered; ``--compare F --out F`` replaced the results compared with)."""
    from sf2t._files import InputFiles, check_out_file, check_replaceable

    inputs = InputFiles(inputs)  # resolved once for the five checks (a benchmark's frames: tens of thousands)
    check_out_file(out_path, "--out", inputs=inputs, text=True)
    if os.path.isfile(out_path) and os.path.getsize(out_path) and not _is_results(Path(out_path)):
        raise ValueError(  # a text file of another kind (a manifest, notes, a config) was replaced
            f"--out {os.fspath(out_path)}: exists and is not an sf2t eval results file (JSON with a 'table'); writing "
            "it would destroy it: pass another --out, or remove it first"
        )
    for f in side_files(out_path, compare).values():  # in --out's folder: checked above that it takes files
        where = f"--out {os.fspath(out_path)}: {f} (written next to it)"
        check_replaceable(f, where, inputs, "png" if f.suffix == ".png" else "text", "pass another --out")


def bench_files(bench: dict) -> list[str]:
    """The files of a loaded benchmark that an evaluation's outputs must never replace: those its questions show
    (frame images, videos: every file its build wrote next to it is one of them, or the ground truth of one) and the
    synthetic ground truth the build read, where it is there: the ``.json`` next to a video a question shows (a
    synthetic clip's) or names as its ``meta.source``, and each file the benchmark's ``ground_truth`` lists (a
    manifest video's, also of a clip whose scene questions balancing left out, which no question names), from the
    benchmark's own folder (``_root``: ``--bench`` may be a link to it from another folder)."""
    root = bench["_root"]
    files: set[str] = set()
    truths: set[str] = {_path(t, root) for t in bench.get("ground_truth", [])}
    for q in bench["questions"]:
        v = q["video"]
        files.update(_path(p, root) for p in [*v.get("frame_images", []), v.get("path"), q.get("image")] if p)
        # as build reads it; meta.source too: a benchmark built before ground_truth was recorded named a manifest
        # video's only there when its fragment questions show built frames
        source = (q.get("meta") or {}).get("source")
        for p in (v.get("path"), source if isinstance(source, str) else None):
            if p:
                truths.add(str(Path(_path(p, root)).with_suffix(".json")))
    return sorted(files | {t for t in truths if os.path.isfile(t)})


def _acc(recs: list[dict]) -> dict:
    """n, correct and accuracy of ``recs``; when every one carries ``in_form`` (generate mode), also the share in
    the asked form (``in_form``) and the strict accuracy, right and in form (``strict_accuracy``)."""
    n = len(recs)
    c = sum(bool(r["correct"]) for r in recs)
    out = {"n": n, "correct": c, "accuracy": c / n if n else float("nan")}
    if recs and all("in_form" in r for r in recs):
        out["in_form"] = sum(bool(r["in_form"]) for r in recs) / n
        out["strict_accuracy"] = sum(bool(r["correct"]) and bool(r["in_form"]) for r in recs) / n
    return out


def summarize(bench: dict, answers: dict[str, dict], missing: dict | None = None, too_long: dict | None = None) -> dict:
    """Accuracy per level, category, variant and cell, sensitivity, and coverage (questions not skipped for
    ``missing`` files or for showing more frames than asked, ``too_long``). Where the answers carry ``in_form``
    (generate mode), each table key also has ``in_form`` and ``strict_accuracy`` (:func:`_acc`)."""
    by = defaultdict(list)
    chance = defaultdict(list)
    qs = {q["id"]: q for q in bench["questions"]}
    for qid, rec in answers.items():
        q = qs.get(qid)
        if q is None:
            continue
        rec = {**rec, "level": q["level"], "category": q["category"], "variant": q["variant"]}
        for key in (
            "overall",
            f"level/{q['level']}",
            f"category/{q['level']}/{q['category']}",
            f"variant/{q['variant']}",
        ):
            by[key].append(rec)
            chance[key].append(1.0 / len(q["options"]))
        by[f"cell/{q['level']}/{q['category']}/{q['variant']}"].append(rec)
    table = {k: {**_acc(v), "chance": sum(chance[k]) / len(chance[k]) if chance[k] else None} for k, v in by.items()}
    # sensitivity: over scene groups answered in the original and the variant
    groups = defaultdict(dict)
    for qid, rec in answers.items():
        q = qs.get(qid)
        if q and q["level"] == "scene" and q.get("group"):
            groups[q["group"]][q["variant"]] = bool(rec["correct"])
    sens = {}
    for v in ("speed_0.5x", "speed_2x", "reversed", "shuffled"):
        pairs = [(g["original"], g[v]) for g in groups.values() if "original" in g and v in g]
        if pairs:
            sens[v] = {"n": len(pairs), "drop": (sum(a for a, _ in pairs) - sum(b for _, b in pairs)) / len(pairs)}
    total = len(bench["questions"])
    return {
        "benchmark": bench["name"],
        "overall": table.get("overall", _acc([])),
        "table": table,
        "sensitivity": sens,
        "coverage": (total - len(set(missing or {}) | set(too_long or {}))) / total if total else 0.0,
        "missing": sorted(missing or {}),
        "too_many_frames": sorted(too_long or {}),
    }


def write_report(res: dict, out: Path) -> None:
    rows = sorted(k for k in res["table"] if k.startswith("category/"))
    lines = [
        f"# {res['benchmark']}: results ({res.get('mode', '')})",
        "",
        f"Overall accuracy {res['overall']['accuracy']:.3f} on {counted(res['overall']['n'], 'question')}; coverage "
        f"{res['coverage']:.0%}"
        + "".join(
            f"; {len(res.get(k) or [])} skipped for {why}"
            for k, why in (("missing", "missing files"), ("too_many_frames", "more frames than --max-frames"))
            if res.get(k)
        )
        + ".",
        "",
    ]
    form = "in_form" in res["overall"]  # (generate mode: the answers' text was read)
    if form:
        lines += [
            f"Answers in the asked form: {100 * res['overall']['in_form']:.1f} % (strict accuracy "
            f"{res['overall']['strict_accuracy']:.3f})",
            "",
            "In the asked form: the option's letter alone (`B`, `(B)`, `B.`), exactly one option's text, or the "
            "letter and its option's text (`B. 12`), as the prompt's last line asks; strict accuracy: right and in "
            "that form. The accuracy reads answers leniently (`There are 12 frames.` is the option `12`).",
            "",
        ]
    lines += [
        "| level / category | n | accuracy |" + (" in form (strict accuracy) |" if form else "") + " chance |",
        "|---|---|---|" + ("---|" if form else "") + "---|",
    ]
    for k in rows:
        r = res["table"][k]
        cells = [str(r["n"]), f"{r['accuracy']:.3f}"]
        if form:
            cells.append("-" if "in_form" not in r else f"{100 * r['in_form']:.1f} % ({r['strict_accuracy']:.3f})")
        lines.append(f"| {k.split('/', 1)[1]} | " + " | ".join(cells) + f" | {r['chance']:.3f} |")
    lines += ["", "| variant | n | accuracy |", "|---|---|---|"]
    for k in sorted(x for x in res["table"] if x.startswith("variant/")):
        r = res["table"][k]
        lines.append(f"| {k.split('/', 1)[1]} | {r['n']} | {r['accuracy']:.3f} |")
    if res["sensitivity"]:
        lines += ["", "Sensitivity (scene level: accuracy on original minus on the variant, same questions):", ""]
        lines += ["| variant | groups | drop |", "|---|---|---|"]
        for v, s in res["sensitivity"].items():
            lines.append(f"| {v} | {s['n']} | {s['drop']:+.3f} |")
    side_files(out)["report"].write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = [k.split("/", 1)[1] for k in rows]
        vals = [res["table"][k]["accuracy"] for k in rows]
        ch = [res["table"][k]["chance"] for k in rows]
        fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(names) + 2), 3.5))
        ax.bar(range(len(names)), vals, color="#4c72b0", label="accuracy")
        ax.scatter(range(len(names)), ch, color="#dd8452", marker="_", s=300, label="chance", zorder=3)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
        ax.set_title(res["benchmark"], fontsize=9)
        fig.tight_layout()
        fig.savefig(side_files(out)["chart"], dpi=100)
        plt.close(fig)
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        pass


def compare_text(a: dict, b: dict, names: tuple[str, str] = ("A", "B")) -> str:
    """A side-by-side table of two results (per category, per variant, overall; the overall share of answers in the
    asked form and strict accuracy where either has them)."""
    keys = sorted(k for k in set(a["table"]) | set(b["table"]) if k.startswith(("category/", "variant/")))
    lines = [f"| | {names[0]} | {names[1]} | diff |", "|---|---|---|---|"]

    def cell(res, k):
        r = res["table"].get(k)
        return r["accuracy"] if r and r["n"] else math.nan

    for k in keys + ["overall"]:
        x, y = cell(a, k), cell(b, k)
        lines.append(f"| {k} | {x:.3f} | {y:.3f} | {y - x:+.3f} |")
    # generate mode's share of answers in the asked form and strict accuracy (nan: the other result has none)
    for key, label in (
        ("in_form", "overall: answers in the asked form"),
        ("strict_accuracy", "overall: strict accuracy"),
    ):
        if key in a["overall"] or key in b["overall"]:
            x, y = (r["overall"].get(key, math.nan) for r in (a, b))
            lines.append(f"| {label} | {x:.3f} | {y:.3f} | {y - x:+.3f} |")
    lines.append(
        f"| questions answered (coverage) | {a['overall']['n']} ({a.get('coverage', math.nan):.0%}) | "
        f"{b['overall']['n']} ({b.get('coverage', math.nan):.0%}) | |"
    )
    da, db = (r.get("setting", {}).get("benchmark") for r in (a, b))
    if da and db and da != db:  # recorded since results carry their setting
        lines += ["", f"Note: {names[0]} and {names[1]} are results of different benchmarks (or of one rebuilt)."]
    elif a["overall"]["n"] != b["overall"]["n"]:
        lines += ["", f"Note: {names[0]} and {names[1]} answered different numbers of questions."]
    return "\n".join(lines)
