"""``sf2t tasks export`` and ``sf2t tasks preview``: SF²T samples for other trainers, and for people to look at.

Export writes ``DIR/data.json``, a list of records::

    {"id": "consistency-000003", "task": "consistency",
     "messages": [{"role": "user", "content": "<video>Are these two frames identical? ..."},
                  {"role": "assistant", "content": "Different: top-left."}],
     "videos": [["frames/consistency-000003/00.png", "frames/consistency-000003/01.png"]],
     "images": ["frames/localization-000007/target.png"],   # localization only
     "meta": {...}}                                           # docs/tasks.md: source, source_frames, params, answer

and the presented frames under ``DIR/frames/<id>/`` (PNG: exactly the presented pixels; JPEG: quality 95). Paths
are relative to DIR. ``--format llamafactory`` (the default) is LLaMA-Factory's sharegpt-style format with
``messages`` (role/content), ``videos`` as lists of frame images and ``images``; a ``dataset_info.json`` entry
is written next to it, so ``dataset_dir=DIR, dataset=sf2t`` loads it without conversion. ``--format sharegpt``
writes the classic ``conversations`` ([{"from": "human"|"gpt", "value": ...}]) instead, with the same
``videos`` / ``images`` lists and its own ``dataset_info.json`` entry (from / value tags); it is not LLaVA's
single-``image`` layout. ``images`` appears in the entry only when some sample has a target image.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import textwrap
from collections import Counter, defaultdict
from pathlib import Path
from typing import Sequence

import torch

from sf2t._checks import check_int
from sf2t._oserror import is_bad_input
from sf2t._plural import counted
from sf2t.tasks import TASKS, make_task, task_names

__all__ = ["export", "preview", "add_arguments", "main"]

FORMATS = ("llamafactory", "sharegpt")


def _save(img: torch.Tensor, path: Path, fmt: str) -> None:
    from PIL import Image

    arr = img.detach().to("cpu").contiguous().numpy()
    im = Image.fromarray(arr, mode="RGB")
    if fmt == "png":
        im.save(path, format="PNG", compress_level=1)
    else:
        im.save(path, format="JPEG", quality=95)


def _sampler(
    manifest: str, tasks, seed: int, samples_per_window: int, window_frames: int, decoder: str, strict: bool = True
):
    """The window sampler over the manifest's videos that some task can use, and the videos left out as
    ``[(path, reason)]`` (too short for every task: :func:`_long_enough`). ``strict=False`` (a benchmark build,
    whose scene level needs no fragment): no error, the sampler has only the tasks some video is long enough for
    (None when no video is), and each task left out is listed as ``("task NAME", reason)``."""
    from sf2t.video.index import manifest_videos
    from sf2t.video.sampler import WindowSampler

    tasks = dict(tasks) if isinstance(tasks, dict) else {n: make_task(n) for n in tasks}
    videos = manifest_videos(manifest, decoder=decoder)
    need, longest = _min_frames(tasks), max((v.num_frames for v in videos), default=0)
    dropped = []
    if not strict:
        dropped = [
            (f"task {n}", f"needs videos of at least {m} frames, the longest has {longest}")
            for n, m in need.items()
            if m > longest
        ]
        need = {n: m for n, m in need.items() if m <= longest}
        tasks = {n: tasks[n] for n in need}
        if not tasks:
            return None, dropped + [(v.path, f"too short: {counted(v.num_frames, 'frame')}") for v in videos]
    videos, skipped = _long_enough(videos, need, longest, manifest)
    sampler = WindowSampler(
        videos, tasks, seed=seed, samples_per_window=samples_per_window, window_frames=window_frames, decoder=decoder
    )
    return sampler, dropped + skipped


def _min_frames(tasks: dict) -> dict[str, int]:
    return {n: int(t.min_frames()) if hasattr(t, "min_frames") else 1 for n, t in tasks.items()}


def _long_enough(videos, need: dict[str, int], longest: int, manifest) -> tuple[list, list[tuple[str, str]]]:
    """The ``videos`` some task can use (at least its ``min_frames``: ``need``, :func:`_min_frames`), and the others
    with the reason, known from the index's frame counts before any window is tried: a video too short for every task
    was drawn window after window (``50 * num + 100`` of them) before the export gave up. ``longest``: the most
    frames of any of ``videos``. A ValueError when no video is left, or when a task can use none of them (its samples
    would all fail, the others taking its share), naming the videos or the task and the fix."""
    shortest = min(need.values())
    kept = [v for v in videos if v.num_frames >= shortest]
    needs = ", ".join(f"{n} {m}" for n, m in need.items())
    skipped = [
        (v.path, f"too short: {counted(v.num_frames, 'frame')}, the tasks need at least: {needs}")
        for v in videos
        if v.num_frames < shortest
    ]
    if not kept:
        shown = "; ".join(f"{p}: {why}" for p, why in skipped[:5]) + ("; ..." if len(skipped) > 5 else "")
        raise ValueError(
            f"{manifest}: no video can give a sample, {len(skipped)} left out: {shown}. Add longer videos (sf2t index "
            "records each one's frame count)"
        )
    short = [n for n, m in need.items() if m > longest]  # (the longest video is kept: some video is)
    if short:
        fit = [n for n in need if n not in short]
        raise ValueError(
            f"--tasks: {', '.join(f'{n} needs videos of at least {need[n]} frames' for n in short)}, and the longest "
            f"video of {manifest} has {longest}: add longer videos, or leave it out (--tasks {' '.join(fit)})"
        )
    return kept, skipped


def _check(num: int, tasks: Sequence[str]) -> tuple[int, list[str]]:
    """``num`` as an int and the task names (:func:`sf2t.tasks.task_names`: commas split them), checked."""
    return check_int("num", num, min_value=1), task_names(tasks, "--tasks")


def _user_content(sample, fmt: str) -> str:
    tags = ("<image>" if sample.image is not None else "") + "<video>"
    return tags + sample.question


def export(
    manifest: str,
    out: str | os.PathLike,
    *,
    num: int,
    tasks: Sequence[str] = tuple(TASKS),
    seed: int = 0,
    fmt: str = "llamafactory",
    frames: str = "png",
    samples_per_window: int = 4,
    window_frames: int = 64,
    decoder: str = "auto",
    progress: bool = True,
    max_windows: int | None = None,
    frame_repeat: int = 1,
) -> dict:
    """Write ``num`` samples (task mix: equal weights over ``tasks``) to ``out`` (see the module docstring).
    Returns the summary: per task, samples made and samples skipped by reason. ``frame_repeat``: each presented
    frame listed that many times in ``videos`` (the same file): 2 for the Qwen2-VL family, whose processors fuse
    pairs of frames into one token group (and pad an odd count with the last frame), so that one presented frame is
    one group, as sf2t trains (docs/tasks.md: temporal patches)."""
    num, tasks = _check(num, tasks)
    frame_repeat = check_int("frame_repeat", frame_repeat, min_value=1)
    if max_windows is not None:
        max_windows = check_int("max_windows", max_windows, min_value=1)
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    if frames not in ("png", "jpg"):
        raise ValueError(f"frames must be png or jpg, got {frames!r}")
    out = Path(out)
    _check_out(out)
    sampler, left_out = _sampler(manifest, tasks, seed, samples_per_window, window_frames, decoder)
    made_out = not out.exists()
    for name in ("data.json", "dataset_info.json", "summary.json"):  # an earlier export's index: this one replaces
        (out / name).unlink(missing_ok=True)  # it, and its frames are overwritten as this one goes (no stale mix)
    (out / "frames").mkdir(parents=True, exist_ok=True)
    records, made = [], Counter()
    max_windows = max_windows if max_windows is not None else 50 * num + 100
    bar = None
    if progress:
        from sf2t._progress import progress_bar

        bar = progress_bar(total=num, desc="export", unit="sample", file=sys.stderr, dynamic_ncols=True)
    w = 0
    try:
        while len(records) < num:
            if w >= max_windows:
                raise RuntimeError(
                    f"only {len(records)} of {counted(num, 'sample')} after {counted(w, 'window')}: "
                    f"{_skips_text(sampler.failures)}"
                )
            for sample, fr in sampler.window(w):
                if len(records) >= num:
                    break
                sid = f"{sample.task}-{len(records):06d}"
                d = out / "frames" / sid
                if d.is_dir():  # an earlier export's sample of the same id
                    shutil.rmtree(d)
                d.mkdir(parents=True)
                shown = sample.presented(fr)  # [F, H, W, 3]
                paths = []
                for k in range(shown.shape[0]):
                    p = d / f"{k:02d}.{frames}"
                    _save(shown[k], p, frames)
                    paths.append(p.relative_to(out).as_posix())
                rec = {"id": sid, "task": sample.task}
                user = _user_content(sample, fmt)
                if fmt == "llamafactory":
                    rec["messages"] = [
                        {"role": "user", "content": user},
                        {"role": "assistant", "content": sample.answer},
                    ]
                else:
                    rec["conversations"] = [{"from": "human", "value": user}, {"from": "gpt", "value": sample.answer}]
                rec["videos"] = [[q for q in paths for _ in range(frame_repeat)]]
                if sample.image is not None:
                    p = d / f"target.{frames}"
                    _save(sample.image, p, frames)
                    rec["images"] = [p.relative_to(out).as_posix()]
                rec["meta"] = sample.meta
                records.append(rec)
                made[sample.task] += 1
                if bar is not None:
                    bar.update(1)
            w += 1
        from sf2t._files import write_text_atomic

        # in the try: a data.json that cannot be written (a full disk) leaves no sample folders it would have listed
        write_text_atomic(out / "data.json", json.dumps(records, indent=1), "data.json")
    except BaseException:  # Ctrl-C or an error half way: no sample folders are left without a data.json listing them
        if bar is not None:
            bar.close()
        _remove_samples(out, set(), ignore_errors=True)  # this run's, and the earlier export's (its index is gone)
        for d in [out / "frames"] + ([out] if made_out else []):
            try:
                d.rmdir()  # only when empty (a folder of yours in frames/ stays)
            except OSError:
                pass
        raise
    finally:
        if bar is not None:
            bar.close()
        sampler.close()
    _remove_samples(out, {r["id"] for r in records})  # frames of an earlier, larger export into the same folder
    # LLaMA-Factory's dataset entry for the rows (both formats are its "sharegpt" formatting, with its default tags
    # for the sharegpt format). "images" is listed only when some row has one: LLaMA-Factory reads a listed column
    # from every row (a KeyError when no localization sample was exported).
    columns = {"messages": "messages" if fmt == "llamafactory" else "conversations", "videos": "videos"}
    if any("images" in r for r in records):
        columns["images"] = "images"
    tags = (
        {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}
        if fmt == "llamafactory"
        else {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}
    )
    info = {"sf2t": {"file_name": "data.json", "formatting": "sharegpt", "columns": columns, "tags": tags}}
    (out / "dataset_info.json").write_text(json.dumps(info, indent=1))
    skipped: dict[str, Counter] = defaultdict(Counter)
    for f in sampler.failures:
        skipped[f.task or "?"][f.kind] += 1
    summary = {
        "samples": len(records),
        "windows": w,
        "tasks": list(tasks),
        "made": dict(made),
        "skipped": {t: dict(c) for t, c in skipped.items()},
        "videos_left_out": [{"path": p, "reason": why} for p, why in left_out],
        "out": str(out),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _provenance(meta: dict) -> str:
    """What the source frames leave out: where a replaced cell or a pasted target came from."""
    p, ans = meta.get("params", {}), meta.get("answer", {})
    if meta.get("task") == "consistency" and ans.get("kind") == "cell":
        return f" (frame 2: its {ans['cell']} cell from frame {p.get('j')})"
    if meta.get("task") == "localization" and "target_source" in p:
        return f" (target: {os.path.basename(p['target_source'])} frame {p.get('target_frame')})"
    return ""


def _remove_samples(out: Path, keep: set[str], ignore_errors: bool = False) -> None:
    """Remove the sample folders under ``out/frames`` (by their names: ``<task>-<6 digits>``; other folders there
    are yours) except those in ``keep``."""
    if not (out / "frames").is_dir():
        return
    for d in (out / "frames").iterdir():
        if d.is_dir() and d.name not in keep and re.fullmatch(r"[a-z_]+-\d{6}", d.name):
            shutil.rmtree(d, ignore_errors=ignore_errors)


_EXPORT_FILES = {"frames", "data.json", "data.json.tmp", "dataset_info.json", "summary.json"}


def _temporary(name: str) -> bool:
    """A temporary file a killed export left (``write_text_atomic``'s ``.data.json.<id>.tmp``)."""
    return name.startswith(".data.json.") and name.endswith(".tmp")


def _check_out(out: Path) -> None:
    """``out`` must be a new or empty folder, or one holding only what an export writes (an earlier or interrupted
    export, which this one replaces): writing into a folder of other files (the videos, say) would mix the export
    with them."""
    from sf2t._files import check_out_folder

    check_out_folder(out, "--out")
    if out.is_dir():
        other = sorted(p.name for p in out.iterdir() if p.name not in _EXPORT_FILES and not _temporary(p.name))
        if other:
            raise ValueError(
                f"--out {out}: the folder holds files that are not an sf2t export ({', '.join(other[:3])}"
                f"{', ...' if len(other) > 3 else ''}); give a new or empty folder"
            )


def _skips_text(failures) -> str:
    c = Counter((f.task, f.kind) for f in failures)
    return "; ".join(f"{t} {k}: {n}" for (t, k), n in c.most_common()) or "no failures recorded"


def summary_text(summary: dict) -> str:
    """The export's summary as printed: a line per task asked for, those that made no sample too (with why: every
    try skipped, or never drawn), then the videos left out."""
    lines = [
        f"{counted(summary['samples'], 'sample')} from {counted(summary['windows'], 'window')} -> {summary['out']}"
    ]
    asked = list(summary.get("tasks") or [])  # (a summary.json of an older sf2t has no "tasks")
    for t in asked + sorted((set(summary["made"]) | set(summary["skipped"])) - set(asked)):
        sk = summary["skipped"].get(t, {})
        why = ", ".join(f"{k} {n}" for k, n in sorted(sk.items())) or "none"
        made = summary["made"].get(t, 0)
        if made:
            lines.append(f"  {t:<14} made {made:>6}   skipped (replaced by later samples): {why}")
        elif sk:
            lines.append(f"  {t:<14} made {0:>6}   every try was skipped: {why}")
        else:  # the tasks are drawn at random, equal weights: a few samples may not reach every task
            said = "never drawn (each sample's task is drawn at random; a larger --num reaches it)"
            lines.append(f"  {t:<14} made {0:>6}   {said}")
    gone = summary.get("videos_left_out") or []
    if gone:
        lines.append(f"  left out: {counted(len(gone), 'video')} no task can use (listed in summary.json)")
        lines += [f"    {g['path']}: {g['reason']}" for g in gone[:5]] + (["    ..."] if len(gone) > 5 else [])
    return "\n".join(lines)


PREVIEW_MAX = 64  # samples on one contact sheet: 500 made an 80 MB, 1980 x 166056 PNG that PIL refuses to open


def preview(
    manifest: str,
    task: str,
    out: str | os.PathLike,
    *,
    num: int = 4,
    seed: int = 0,
    decoder: str = "auto",
    per_line: int = 12,
) -> Path:
    """A contact sheet PNG: ``num`` samples of ``task``, each its presented frames (all of them, ``per_line`` to a
    line) after the target image for localization, with the question and the answer below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sf2t._files import check_out_file

    num, _ = _check(num, [task])
    per_line = check_int("per_line", per_line, min_value=1)
    if num > PREVIEW_MAX:
        raise ValueError(f"num: a contact sheet shows at most {PREVIEW_MAX} samples, got {num} (export them instead)")
    check_out_file(out, "--out", inputs=[manifest])
    out = Path(out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".pdf", ".svg"):
        out = out.with_name(out.name + ".png")  # the file written is the one named back
        check_out_file(out, "--out", inputs=[manifest])
    sampler, _ = _sampler(manifest, [task], seed, 2, 64, decoder)
    rows = []
    w = 0
    try:
        while len(rows) < num and w < 50 * num + 50:
            for s, fr in sampler.window(w):
                if len(rows) < num:
                    rows.append((s, s.presented(fr).cpu()))
            w += 1
    finally:
        sampler.close()
    if not rows:
        raise RuntimeError(f"no {task} sample could be made: {_skips_text(sampler.failures)}")
    # every presented frame is shown: a sample with more than ``per_line`` images wraps onto further lines
    items = [
        ([("target", s.image.cpu())] if s.image is not None else [])
        + [(f"frame {k + 1}", shown[k]) for k in range(shown.shape[0])]
        for s, shown in rows
    ]
    ncols = max(min(per_line, max(len(ims) for ims in items)), 6)
    lines = [max(1, -(-len(ims) // ncols)) for ims in items]
    width = 1.5 * ncols
    fig, axes = plt.subplots(
        sum(lines), ncols, figsize=(width, 2.4 * sum(lines)), squeeze=False, gridspec_kw={"hspace": 1.1, "wspace": 0.08}
    )
    top = 0
    for (s, _), ims, n_lines in zip(rows, items, lines):
        for j in range(n_lines * ncols):
            ax = axes[top + j // ncols][j % ncols]
            ax.axis("off")
            if j < len(ims):
                ax.imshow(ims[j][1].numpy())
                ax.set_title(ims[j][0], fontsize=7)
        src = os.path.basename(s.meta["source"])
        caption = "\n".join(textwrap.wrap(f"Q: {s.question}", int(width * 15))[:3])
        text = f"{src}, source frames {s.meta['source_frames']}{_provenance(s.meta)}\n{caption}\nA: {s.answer}"
        axes[top + n_lines - 1][0].annotate(text, (0, -0.08), xycoords="axes fraction", va="top", ha="left", fontsize=7)
        top += n_lines
    fig.suptitle(f"sf2t {task}: {counted(len(rows), 'sample')} (seed {seed})", fontsize=9)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def add_arguments(p) -> None:
    from sf2t._args import positive_int

    sub = p.add_subparsers(dest="tasks_command", metavar="{export,preview}")
    e = sub.add_parser("export", help="write SF²T samples as LLaMA-Factory/ShareGPT JSON with frame images")
    e.add_argument("--manifest", required=True, help="manifest from sf2t index")
    e.add_argument("--out", required=True, help="output folder (data.json, frames/, dataset_info.json)")
    e.add_argument("--num", type=positive_int, required=True, help="number of samples")
    e.add_argument(
        "--tasks",
        nargs="+",
        default=list(TASKS),
        help=f"task mix, equal weights, separated by spaces or commas (default: all: {' '.join(TASKS)})",
    )
    e.add_argument("--seed", type=int, default=0, help="seed of the windows, tasks and their draws (default 0)")
    e.add_argument(
        "--format",
        dest="fmt",
        choices=FORMATS,
        default="llamafactory",
        help="llamafactory: messages with role/content; sharegpt: conversations with from/value (default llamafactory)",
    )
    e.add_argument("--frames", choices=("png", "jpg"), default="png", help="png: exactly the presented pixels")
    e.add_argument(
        "--samples-per-window", type=positive_int, default=4, help="samples served by one decoded window (default 4)"
    )
    e.add_argument("--decoder", default="auto", help="auto, torchcodec, pyav or dali")
    e.add_argument(
        "--frame-repeat",
        type=positive_int,
        default=1,
        help="list each presented frame N times in videos: 2 for Qwen2-VL / Qwen2.5-VL, whose processors fuse frame "
        "pairs (and pad odd counts), so one presented frame is one token group as sf2t trains (default 1)",
    )
    e.add_argument("--quiet", action="store_true", help="no progress bar")
    v = sub.add_parser("preview", help="a contact sheet of a few samples of one task, with question and answer")
    v.add_argument("--manifest", required=True, help="manifest from sf2t index")
    v.add_argument("--task", required=True, choices=list(TASKS))
    v.add_argument(
        "--out",
        required=True,
        help="the contact sheet to write: a PNG (.jpg, .pdf or .svg by the name's extension; another extension gets "
        ".png added, and the name written is printed)",
    )
    v.add_argument("--num", type=positive_int, default=4, help="samples on the sheet (at most 64; default 4)")
    v.add_argument("--seed", type=int, default=0, help="seed of the samples drawn (default 0)")
    v.add_argument("--decoder", default="auto", help="auto, torchcodec, pyav or dali")


def main(args) -> int:
    try:
        if args.tasks_command == "export":
            s = export(
                args.manifest,
                args.out,
                num=args.num,
                tasks=args.tasks,
                seed=args.seed,
                fmt=args.fmt,
                frames=args.frames,
                samples_per_window=args.samples_per_window,
                decoder=args.decoder,
                progress=not args.quiet,
                frame_repeat=args.frame_repeat,
            )
            print(summary_text(s))
            return 0
        if args.tasks_command == "preview":
            p = preview(args.manifest, args.task, args.out, num=args.num, seed=args.seed, decoder=args.decoder)
            print(f"contact sheet: {p}")
            return 0
    except (ValueError, RuntimeError, FileNotFoundError) as e:
        if not is_bad_input(e):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.tasks_command == "export":
            what = f"no export was made: the sample frames written to {args.out} were removed"
        else:
            what = f"no contact sheet was written to {args.out}"
        print(f"\nsf2t tasks {args.tasks_command}: interrupted; {what}", file=sys.stderr)
        return 130
    print("usage: sf2t tasks {export,preview} ... (--help for the options)", file=sys.stderr)
    return 2
