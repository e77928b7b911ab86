"""A run's report: ``report.md`` + ``report.png`` (loss, per-task train loss and accuracy, held-out accuracy over
the run) from ``out_dir/metrics.jsonl`` and the held-out evaluations (``evals``: ``{"step", task: {accuracy,
partial, in_form, strict_accuracy, ...}}``); report.md's held-out table (:func:`held_out_table`) has exact accuracy,
partial credit, the share of answers in the asked form and the strict accuracy before and after (an older run's
evaluations lack the last two: not shown, or "-").

``sf2t train`` writes it at the end of a run (with held-out evaluations when ``eval_videos`` is set: before
training, every ``eval_every`` steps and after); ``sf2t demo`` adds the same figure and table to its report.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sf2t._plural import counted

__all__ = ["read_metrics", "plot_run", "held_out_table", "write_report"]


def read_metrics(out_dir: str | Path, log=None) -> list[dict]:
    """The rows of ``out_dir/metrics.jsonl`` (one per optimizer step); [] when there is none. A process killed while
    writing leaves the last line cut short: it is dropped (said to ``log``); a damaged line before it is a ValueError
    naming the file and the line."""
    path = Path(out_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    lines = [(i, line) for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1) if line.strip()]
    rows = []
    for k, (i, line) in enumerate(lines):
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or isinstance(row.get("step"), bool) or not isinstance(row.get("step"), int):
                raise ValueError("not a JSON object with a step")
        except ValueError as e:
            if k == len(lines) - 1:
                if log is not None:
                    log(f"{path}:{i}: a cut-short last line (the run was stopped while writing it): dropped")
                break
            raise ValueError(
                f"{path}:{i}: not a metrics line ({e}); repair or delete that line (or the file) to go on"
            ) from None
        rows.append(row)
    return rows


def _smooth(values: Sequence[float], window: int) -> list[float]:
    out, acc = [], []
    for v in values:
        acc.append(v)
        if len(acc) > window:
            acc.pop(0)
        out.append(sum(acc) / len(acc))
    return out


def _series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    pts = [(r["step"], r[key]) for r in rows if key in r]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_run(
    out_dir: str | Path,
    tasks: Sequence[str],
    evals: Sequence[dict] = (),
    chance: dict[str, float] | None = None,
    *,
    name: str = "report.png",
) -> Path | None:
    """Four panels into ``out_dir/name``: loss per step (and its moving mean), per-task train loss, per-task
    teacher-forced train accuracy (moving means over ~5 % of the run), held-out exact accuracy at each evaluation
    (chance dashed). Returns the path, or None without metrics or matplotlib."""
    rows = read_metrics(out_dir)
    if not rows:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        return None
    window = max(1, len(rows) // 20)
    colors = {t: f"C{i}" for i, t in enumerate(tasks)}
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    ax = axes[0][0]
    steps, loss = _series(rows, "loss")
    ax.plot(steps, loss, color="0.75", lw=0.8, label="per step")
    ax.plot(steps, _smooth(loss, window), color="C0", lw=1.5, label=f"mean of {window}")
    ax.set_title("training loss")
    ax.set_xlabel("step")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    for ax, prefix, title in (
        (axes[0][1], "loss/", "train loss per task"),
        (axes[1][0], "train_acc/", "train accuracy per task (teacher-forced)"),
    ):
        for t in tasks:
            s, v = _series(rows, prefix + t)
            if s:
                ax.plot(s, _smooth(v, window), color=colors[t], lw=1.3, label=t)
        ax.set_title(title)
        ax.set_xlabel("step")
        if prefix == "train_acc/":
            ax.set_ylim(-0.02, 1.02)
        else:
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    ax = axes[1][1]
    got = False
    for t in tasks:
        pts = [(e["step"], e[t]["accuracy"]) for e in evals if isinstance(e.get(t), dict)]
        if pts:
            got = True
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=colors[t], label=t)
            if chance and t in chance:
                ax.axhline(chance[t], color=colors[t], ls="--", lw=0.8)
    ax.set_title("held-out exact accuracy" + ("" if got else " (no eval_videos)"))
    ax.set_xlabel("step")
    ax.set_ylim(-0.02, 1.02)
    if got:
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(out_dir) / name
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def held_out_table(
    rows: dict[str, dict], tasks: Sequence[str], *, source: str, span: str = "", pct: Callable[[Any], str] = _pct
) -> list[str]:
    """The markdown lines of a report's held-out table, ``sf2t train``'s and ``sf2t demo``'s: per task of ``tasks``
    with a row in ``rows`` (``{chance, before, after, n}``, and ``partial_before`` / ``partial_after``, the mean
    partial credit, ``in_form_before`` / ``in_form_after``, the share of answers in the asked form, and
    ``strict_before`` / ``strict_after``, the strict accuracy, where known), chance, exact accuracy before and after,
    where any row has ``partial_after``, partial credit before and after with a note on what it is, and where any row
    has ``in_form_after``, the form share and the strict accuracy before and after with a note; ``source``: where the
    partial values are kept (for the note), ``span``: what the heading adds in brackets (the steps), ``pct``: a value
    as text (None: missing)."""
    partial = any(rows[t].get("partial_after") is not None for t in tasks if t in rows)
    form = any(rows[t].get("in_form_after") is not None for t in tasks if t in rows)
    lines = [
        "## Held-out exact accuracy" + (" and partial credit" if partial else "") + (f" ({span})" if span else ""),
        "",
        "| task | chance | before | after |"
        + (" partial before | partial after |" if partial else "")
        + (" in form before | in form after | strict before | strict after |" if form else "")
        + " n |",
        "|---|---|---|---|" + ("---|---|" if partial else "") + ("---|---|---|---|" if form else "") + "---|",
    ]
    for t in tasks:
        if t not in rows:
            continue
        a = rows[t]
        cells = [pct(a.get("chance")), pct(a.get("before")), pct(a.get("after"))]
        if partial:
            cells += [pct(a.get("partial_before")), pct(a.get("partial_after"))]
        if form:
            cells += [pct(a.get(k)) for k in ("in_form_before", "in_form_after", "strict_before", "strict_after")]
        lines.append(f"| {t} | " + " | ".join(cells) + f" | {a['n']} |")
    if partial:
        lines += [
            "",
            "Partial: the mean partial credit (counting `1 - |answer - count| / count`, localization the spans' "
            f"temporal IoU, rearrangement the normalised Kendall tau; the other tasks as exact), {source}.",
        ]
    if form:
        lines += [
            "",
            "In form: the share of answers written exactly in the task's canonical form (`7`, `Yes.`, `Frames 3-5.`: "
            "sf2t.tasks.scoring.in_form); strict: the share both right and in form. The exact accuracy reads answers "
            "leniently (`There are 7 frames.` is 7): the gap between it and the strict accuracy is what rests on that "
            "(docs/tasks.md, Scoring).",
        ]
    return lines


def write_report(cfg, result: dict, evals: Sequence[dict], chance: dict[str, float]) -> Path:
    """``out_dir/report.md`` (+ ``report.png``): held-out exact accuracy, partial credit, the share of answers in the
    asked form and the strict accuracy before / after (exact accuracy at each evaluation too), the training summary,
    skipped videos. ``result``: what ``train`` returned."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = plot_run(out, cfg.tasks, evals, chance)
    lines = ["# sf2t train report", "", f"Model: `{cfg.model}`; output: `{out}`", ""]
    if png is not None:
        lines += [f"![loss and accuracy]({png.name})", ""]
    if evals:
        # "before" is the first evaluation only when there are two (a run resumed from a checkpoint written before
        # step-0 evaluations were kept has only its last one)
        first, last = (evals[0] if len(evals) > 1 else {}), evals[-1]
        span = f"step {first['step']} -> step {last['step']}" if first else f"step {last['step']}; none before"
        rows = {}
        for t in cfg.tasks:
            a, b = first.get(t), last.get(t)
            if isinstance(b, dict):
                a = a if isinstance(a, dict) else {}
                rows[t] = {
                    "chance": chance.get(t),
                    "before": a.get("accuracy"),
                    "after": b["accuracy"],
                    "n": b["n"],
                    "partial_before": a.get("partial"),
                    "partial_after": b.get("partial"),
                    # (an evaluation of an older run, resumed, has neither: "-", or no columns)
                    "in_form_before": a.get("in_form"),
                    "in_form_after": b.get("in_form"),
                    "strict_before": a.get("strict_accuracy"),
                    "strict_after": b.get("strict_accuracy"),
                }
        lines += held_out_table(rows, cfg.tasks, span=span, source="train_result.json's evals' `partial`")
        if len(evals) > 2:  # exact accuracy at each evaluation
            lines += ["", "| step | " + " | ".join(cfg.tasks) + " |", "|---" * (len(cfg.tasks) + 1) + "|"]
            for e in evals:
                cells = [_pct(e[t]["accuracy"]) if isinstance(e.get(t), dict) else "-" for t in cfg.tasks]
                lines.append(f"| {e['step']} | " + " | ".join(cells) + " |")
        lines.append("")
    else:
        lines += ["No held-out evaluation (set eval_videos to get one before, during and after training).", ""]
    losses = result.get("losses", [])
    last = losses[-50:]
    lines += [
        "## Training",
        "",
        f"- {counted(result.get('steps') or 0, 'step')} x {counted(cfg.batch_size * cfg.grad_accum, 'sample')}, "
        f"lr {cfg.lr} {cfg.schedule} "
        f"(warmup {cfg.warmup_steps}), {'LoRA' if cfg.lora else 'full fine-tuning'}, tasks {', '.join(cfg.tasks)}",
        f"- trainable parameters: {result.get('trainable_parameters', 0):,} of {result.get('total_parameters', 0):,}",
        f"- {result.get('seconds', 0.0):.1f} s, {result.get('tokens_per_second', 0.0):.0f} tokens/s, waiting for data "
        f"{result.get('data_seconds', 0.0):.1f} s",
        f"- loss: first step {result.get('loss_first', losses[0] if losses else 0.0):.4f}, mean of the last "
        f"{counted(len(last), 'step')} {sum(last) / len(last):.4f}"
        if losses
        else "- no steps run",
        f"- saved: `{result.get('saved')}`",
        "",
        "## Skipped videos",
        "",
    ]
    skipped = result.get("skipped", [])
    if skipped:
        lines += ["| file | left out of | kind | reason |", "|---|---|---|---|"]
        lines += [f"| `{s['path']}` | {s.get('task') or 'every task'} | {s['kind']} | {s['reason']} |" for s in skipped]
    else:
        lines.append("none")
    path = out / "report.md"
    # errors=: a file name that is not UTF-8 (its bytes as surrogates) is written escaped, not a UnicodeEncodeError
    # after the run
    path.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="backslashreplace")
    return path


def eval_summary(rep: dict[str, Any], tasks: Sequence[str]) -> str:
    """One line: ``task acc`` per task of an ``evaluate`` result, with ``(in form F)``, the share of answers in the
    asked form, where the result has it."""
    return ", ".join(
        f"{t} {_pct(rep[t]['accuracy'])}" + (f" (in form {_pct(rep[t]['in_form'])})" if "in_form" in rep[t] else "")
        for t in tasks
        if isinstance(rep.get(t), dict)
    )
