"""``sf2t demo``'s results: held-out accuracy per task and clip family, the command that makes the run again, the
environment, the table printed on stdout and ``report.md``. Every name here is importable from ``sf2t.demo`` too."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any, Sequence

from sf2t._demo_setup import _family
from sf2t._plural import counted


def _acc(samples: list[dict], task: str, family: str) -> float | None:
    scores = [r["score"] for r in samples if r["task"] == task and _family(r["source"]) == family]
    return sum(scores) / len(scores) if scores else None


def _mean(v: Sequence[float]) -> float | None:
    return sum(v) / len(v) if v else None


def _counts(skipped) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in skipped:
        out[s.kind] = out.get(s.kind, 0) + 1
    return out


def _argv_for(
    out: Path,
    steps: int,
    seed: int,
    quick: bool,
    overrides: Sequence[str] = (),
    threads: int | None = None,
    progress: bool = True,
) -> list[str]:
    """The command line that makes this run again (shell-quoted): ``--threads`` (the threads it ran with: another
    count sums in another order), ``--no-progress`` and the ``--set`` overrides included."""
    import shlex

    argv = ["--out", shlex.quote(str(out)), "--steps", str(steps), "--seed", str(seed)]
    argv += (["--threads", str(threads)] if threads else []) + ([] if progress else ["--no-progress"])
    argv += ["--quick"] if quick else []
    return argv + [a for item in overrides for a in ("--set", shlex.quote(item))]


def _environment(threads: int) -> dict[str, Any]:
    import torch
    import transformers

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": threads,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }
    try:
        import peft

        env["peft"] = peft.__version__
    except ImportError:  # pragma: no cover
        pass
    return env


def _pct(x: float | None) -> str:
    return "  -  " if x is None else f"{100 * x:5.1f}%"


def _table(results: dict[str, dict], chance: dict[str, float], tasks: Sequence[str]) -> str:
    """Chance and each result's accuracy per task, then each result's share of answers in the asked form
    (``in form before``, ...) where its evaluation has one."""
    cols = [(c, "accuracy", c) for c in results]
    cols += [(c, "in_form", f"in form {c}") for c in results if all("in_form" in results[c][t] for t in tasks)]
    w = max(len("task"), *map(len, tasks))  # "rearrangement" (13) pushed its row out of a 10-wide column
    widths = [max(7, len(head)) for _, _, head in cols]
    lines = [f"{'task':<{w}} {'chance':>7} " + " ".join(f"{h:>{n}}" for (_, _, h), n in zip(cols, widths))]
    for t in tasks:
        cells = [f"{_pct(results[c][t][key]):>{n}}" for (c, key, _), n in zip(cols, widths)]
        lines.append(f"{t:<{w}} {_pct(chance[t]):>7} " + " ".join(cells))
    return "\n".join(lines)


def _markdown(r: dict, tasks: Sequence[str]) -> str:
    tr, tm, cfg = r["training"], r["timings_s"], r["config"]
    lines = [
        "# sf2t demo report",
        "",
        f"Command: `{r['command']}`",
        "",
        *([f"![loss and accuracy]({r['plot']})", ""] if r.get("plot") else []),
    ]
    from sf2t.train.report import held_out_table  # sf2t train's report.md has the same table

    # report.json's partial_before / partial_after, in_form_* and strict_*, for the tasks that have them (all the demo's
    # evaluations do; an older report.json has no in_form_*)
    lines += held_out_table(r["accuracy"], tasks, source="report.json's partial_before / partial_after", pct=_pct)
    lines += [
        "",
        "By clip family (held-out; disorder and rearrangement train on contrast clips only: disorder's synth row "
        "tests transfer):",
        "",
        "| family | task | before | after | n |",
        "|---|---|---|---|---|",
    ]
    for fam, per in r["accuracy_by_clip_family"].items():
        for t, a in per.items():
            lines.append(f"| {fam} | {t} | {_pct(a['before'])} | {_pct(a['after'])} | {a['n']} |")
    lines += [
        "",
        "## Training",
        "",
        f"- {counted(tr['steps'], 'step')} x {counted(cfg['batch_size'] * cfg['grad_accum'], 'sample')}, "
        f"lr {cfg['lr']} {cfg['schedule']} "
        f"(warmup {cfg['warmup_steps']}), {'LoRA' if cfg['lora'] else 'full fine-tuning'}, layout `{cfg['layout']}`, "
        f"frames {cfg['frame_size'][0]}x{cfg['frame_size'][1]}",
        f"- trainable parameters: {tr['trainable_parameters']:,}; {tr['tokens_per_second']:.0f} tokens/s",
        f"- loss: first step {tr['loss_first']:.3f}, mean of the last {counted(min(50, tr['steps']), 'step')} "
        f"{tr['loss_last_50']:.3f}",
        "- loss curve (mean per tenth of the run): " + ", ".join(f"{c['loss']:.3f}" for c in tr["loss_curve"]),
    ]
    for t, curve in tr["task_loss_curves"].items():
        lines.append(f"- {t} loss per tenth: " + ", ".join(f"{c['loss']:.3f}" for c in curve))
    lines += [f"- saved: `{tr['saved']}`", "", "## Timings (s)", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in tm.items()]
    lines += ["", "## Skipped videos", ""]
    if r["skipped"]:
        lines += ["| file | left out of | kind | reason |", "|---|---|---|---|"]
        lines += [
            f"| `{s['path']}` | {s.get('task') or 'every task'} | {s['kind']} | {s['reason']} |" for s in r["skipped"]
        ]
    else:
        lines.append("none")
    env = r["environment"]
    lines += ["", "## Environment", "", ", ".join(f"{k} {v}" for k, v in env.items()), ""]
    return "\n".join(lines)
