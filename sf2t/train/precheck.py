"""The checks ``sf2t train`` and ``sf2t merge`` make before anything loads.

Each ``_precheck_*`` returns what is wrong, in one line (the command prints it and exits 2), or None: ``out_dir`` and
the video lists (:func:`_precheck_paths`), ``resume``, the supervised QA file, the device, what the checkpoint's
family can do and its weights, and ``sf2t merge``'s paths (:func:`_precheck_merge`). ``sf2t.train.cli`` calls them
(and tests reach them there): each name is importable from it too.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from sf2t._oserror import is_bad_input
from sf2t._plural import counted, none_of
from sf2t.train.outputs import RUN_OUTPUTS, run_files


def _precheck_paths(cfg) -> str | None:
    """What is wrong with ``out_dir`` or the video lists that shows without decoding anything (checked before the
    model loads): an ``out_dir`` that is a file or the model's folder, a folder with no videos or a broken manifest
    in ``videos`` / ``eval_videos``, or no training video that is an existing, non-empty file. Held-out videos that
    are also training videos, and sf2t build staging folders left out of a folder's walk, are warned about on
    stderr."""
    from sf2t._files import check_out_folder, is_within
    from sf2t.train.checkpoint import CheckpointManager
    from sf2t.video.index import expand_videos, skipped_stages_text

    out = Path(cfg.out_dir)
    if out.exists() and not out.is_dir():
        return f"out_dir {cfg.out_dir!r} exists and is not a folder"
    try:  # under a file, or where no folder can be made: said now, not as a traceback after training
        check_out_folder(out, "out_dir")
    except ValueError as e:
        if not is_bad_input(e):
            raise
        return str(e)
    if cfg.model and os.path.realpath(out) == os.path.realpath(cfg.model):
        return (
            f"out_dir {cfg.out_dir!r} is the model folder: the run's files (adapter/, train_config.json, reports) "
            "would go among the checkpoint's, and a train_config.json there (the settings sf2t eval reads for it) "
            "would be replaced; pick another out_dir"
        )
    held = run_files(out)
    if cfg.overwrite:  # the previous run's outputs go: not when this run reads from them (model=out_dir/model)
        inputs = [("model", cfg.model), ("supervised_data", cfg.supervised_data)]
        inputs += [("videos", v) for v in cfg.videos] + [("eval_videos", v) for v in cfg.eval_videos]
        for name in RUN_OUTPUTS:
            for field, value in inputs:
                if value and is_within(value, out / name):
                    return (
                        f"overwrite=true would remove {out / name}, which holds {field} {value!r}: move it out of "
                        "out_dir, or pick another out_dir"
                    )
    resumable = "checkpoints" in held and CheckpointManager(out / "checkpoints").latest() is not None
    if held and not cfg.resume and not cfg.overwrite:
        return f"out_dir {cfg.out_dir!r} already holds a run ({', '.join(held)}): " + (
            "resume=auto continues it, overwrite=true starts afresh there, or pick another out_dir"
            if resumable
            else "it has no checkpoint to resume from (save_every=N writes them): overwrite=true starts afresh "
            "there (its outputs are removed), or pick another out_dir"
        )
    weights = [name for name in ("adapter", "model", "train_result.json") if name in held]
    if cfg.resume == "auto" and weights and not resumable:  # it trained from step 0 and replaced the run's weights
        return (
            f"resume=auto: out_dir {cfg.out_dir!r} holds a run ({', '.join(weights)}) but no checkpoint to resume from "
            "(save_every=N writes them): it would train from step 0 and replace that run's weights. overwrite=true "
            "starts afresh there, or pick another out_dir"
        )
    stages: dict[str, list[str]] = {"videos": [], "eval_videos": []}  # sf2t build staging folders left out
    try:
        videos = expand_videos(cfg.videos, stages["videos"])
        held_out = expand_videos(cfg.eval_videos, stages["eval_videos"])
    except ValueError as e:
        if not is_bad_input(e):
            raise
        return str(e)
    if not videos:
        return f"videos {cfg.videos} list no video (a manifest with no ok line?)"
    for field, skipped in stages.items():
        if skipped and os.environ.get("RANK", "0") == "0":  # said here once (the pools' warning is ignored then)
            print(f"sf2t train: warning: {field}: {skipped_stages_text(skipped)}", file=sys.stderr)
    both = sorted({os.path.realpath(v) for v in videos} & {os.path.realpath(v) for v in held_out})
    if both and os.environ.get("RANK", "0") == "0":  # under torchrun: said once
        also = "is also a training video" if len(both) == 1 else "are also training videos"
        print(
            f"sf2t train: warning: {counted(len(both), 'held-out video')} {also} (e.g. {both[0]}): the held-out "
            "accuracy then measures memory, not generalization",
            file=sys.stderr,
        )
    why = []
    for v in videos:
        p = Path(v)
        if not p.exists():
            why.append(f"{v}: no such file")
        elif not p.is_file():
            why.append(f"{v}: not a file")
        elif p.stat().st_size == 0:
            why.append(f"{v}: empty (0 bytes)")
        else:
            return None
    shown = "; ".join(why[:5]) + (f"; ... ({len(why) - 5} more)" if len(why) > 5 else "")
    return f"{none_of(len(why), 'training video', 'can be read', 'cannot be read')}: {shown}"


def _precheck_resume(cfg) -> str | None:
    """A ``resume`` that cannot be resumed (not a checkpoint; past ``steps``; saved with another LoRA rank, targets
    or training mode; a damaged ``metrics.jsonl``), said before the model loads."""
    from sf2t.train.loop import check_resume
    from sf2t.train.report import read_metrics

    try:
        if check_resume(cfg) is not None:
            read_metrics(cfg.out_dir)  # damage before its last line (a cut-short last line is dropped when it resumes)
    except (FileNotFoundError, ValueError) as e:
        if not is_bad_input(e):
            raise
        return str(e)
    return None


def _precheck_supervised(cfg) -> str | None:
    """The supervised QA file read (and checked) before the model loads; set without a ratio it would be unused."""
    if not cfg.supervised_data:
        return None
    if cfg.supervised_ratio <= 0:
        if os.environ.get("RANK", "0") == "0":
            print(
                f"sf2t train: warning: supervised_data={cfg.supervised_data} is set but supervised_ratio is 0, so "
                "none of it is mixed in (set supervised_ratio to the fraction wanted)",
                file=sys.stderr,
            )
        return None
    from sf2t.train.supervised import load_supervised

    try:
        load_supervised(cfg.supervised_data)
    except (ValueError, FileNotFoundError) as e:
        if not is_bad_input(e):
            raise
        return str(e)
    return None


def _precheck_device(cfg) -> str | None:
    """A device this machine does not have, or fsdp=true outside torchrun, said before the model loads."""
    from sf2t._device import device_problem

    if cfg.fsdp and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        from sf2t.train.loop import FSDP_NEEDS_TORCHRUN

        return FSDP_NEEDS_TORCHRUN
    return device_problem(cfg.device)


def _precheck_model(cfg) -> str | None:
    """What the checkpoint's family cannot do that shows before it loads: an unsupported model type, or token
    compression before the tower (Qwen2-VL and Qwen2.5-VL only)."""
    from sf2t.models.families import family_of_checkpoint

    try:
        family = family_of_checkpoint(cfg.model)
    except (ValueError, FileNotFoundError) as e:
        if not is_bad_input(e):
            raise
        return str(e)
    if (
        cfg.token_keep_ratio < 1.0
        and cfg.token_stage == "before_tower"
        and family.name not in ("qwen2_vl", "qwen2_5_vl")
    ):
        return (
            f"token_stage=before_tower compresses Qwen2-VL and Qwen2.5-VL towers; {cfg.model} is {family.name}: "
            "use token_stage=after_tower"
        )
    if family.pixel_layout != "qwen_patches":  # LLaVA families: each frame once, at the processor's size
        if cfg.layout != "repeat":
            return f"layout={cfg.layout} groups frames for the Qwen families; {family.name} takes each frame once"
        from sf2t.train.config import TrainConfig

        if list(cfg.frame_size) != list(TrainConfig().frame_size) and os.environ.get("RANK", "0") == "0":
            print(
                f"sf2t train: warning: frame_size={list(cfg.frame_size)} is not used: {family.name} frames are sized "
                "as its processor sizes them",
                file=sys.stderr,
            )
    return None


def _precheck_weights(cfg) -> str | None:
    """The checkpoint's weights missing or cut short, said before anything is loaded (or an overwrite clears out_dir);
    loading them was a transformers OSError or a SafetensorError traceback."""
    from sf2t.models._build import checkpoint_weights_problem

    problem = checkpoint_weights_problem(cfg.model)
    return f"model checkpoint: {problem}" if problem else None


def _precheck_merge(args) -> str | None:
    """What is wrong with ``sf2t merge``'s paths, before anything loads."""
    from sf2t.models._build import check_checkpoint_dir

    cfg_file = Path(args.adapter) / "adapter_config.json"
    if not cfg_file.is_file():
        from sf2t.models._build import not_an_adapter_hint

        hint = not_an_adapter_hint(args.adapter)
        return f"{args.adapter} is not a LoRA adapter directory (no adapter_config.json){hint}"
    try:
        cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return f"{cfg_file}: not a readable JSON file ({e}): the adapter is damaged"
    if not isinstance(cfg, dict) or "peft_type" not in cfg:
        return f"{cfg_file}: not a peft adapter config (a JSON object with peft_type): the adapter is damaged"
    try:
        check_checkpoint_dir(args.base)
    except OSError as e:
        return f"--base: {e}"
    from sf2t.models._build import checkpoint_weights_problem

    problem = checkpoint_weights_problem(args.base)
    if problem:
        return f"--base: {problem}"
    out = Path(args.out).resolve()
    if out.exists() and not out.is_dir():
        return f"--out {args.out} exists and is not a folder"
    from sf2t._files import check_out_folder

    try:  # under a file, or where no folder can be made: said before the model loads
        check_out_folder(args.out, "--out")
    except ValueError as e:
        if not is_bad_input(e):
            raise
        return str(e)
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        return f"--out {args.out} is a folder that is not empty: pass a new or empty one, or --overwrite to replace it"
    from sf2t._files import is_within

    for name, q in (("--base", args.base), ("--adapter", args.adapter), ("the working folder", ".")):
        q = Path(q).resolve()
        if is_within(q, out):  # replacing --out would delete it
            what = "is" if q == out else "holds"
            return f"--out {args.out} {what} {name} ({q}): replacing --out would delete it; pass another folder"
    return None
