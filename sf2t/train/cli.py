"""``sf2t train`` and ``sf2t merge``.

``sf2t train [--config run.yaml] [key=value | --key value ...] [--print-config]``: a TrainConfig from the YAML file
and the overrides (dotted keys reach the task configs: ``disorder.perm=strong``), then training; the adapter (or
the weights), ``train_config.json``, ``train_result.json`` and the report (``report.md`` + ``report.png``: loss,
per-task train loss and accuracy, held-out exact accuracy before / during / after, and partial credit, the share of
answers in the asked form and the strict accuracy before / after when ``eval_videos`` is set) go to ``out_dir``.
``--print-config`` shows every field with its default and help, then the resolved config, and trains nothing.
``resume=auto`` continues from the latest checkpoint (``save_every=N`` writes them).

``sf2t merge --base BASE --adapter DIR --out OUT``: the LoRA adapter merged into the base weights, written as a
full checkpoint (with the base's tokenizer and processor files, and the run's ``train_config.json`` so that
``sf2t eval --model OUT`` sees videos as the run did) that loads like the base one.

The checks made before a run starts live in ``sf2t.train.precheck``, the files a run leaves in ``out_dir`` in
``sf2t.train.outputs``; each of those names is importable from here too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from sf2t._args import Parser
from sf2t._oserror import is_bad_input
from sf2t._plural import counted
from sf2t.train.outputs import (
    RUN_FILES,  # noqa: F401  (re-exported)
    RUN_OUTPUTS,  # noqa: F401  (re-exported)
    _clear_run,
    run_files,  # noqa: F401  (re-exported)
)
from sf2t.train.precheck import (
    _precheck_device,
    _precheck_merge,
    _precheck_model,
    _precheck_paths,
    _precheck_resume,
    _precheck_supervised,
    _precheck_weights,
)

__all__ = ["run_training", "train_main", "merge_main"]


def _split_overrides(rest: Sequence[str]) -> list[str]:
    """``--key value`` / ``--key=value`` / ``key=value`` -> ``key=value`` strings (``-`` in keys becomes ``_``)."""
    out, i = [], 0
    rest = list(rest)
    while i < len(rest):
        a = rest[i]
        if a.startswith("--"):
            key = a[2:]
            if "=" in key:
                k, v = key.split("=", 1)
                out.append(f"{k.replace('-', '_')}={v}")
            elif i + 1 < len(rest) and not rest[i + 1].startswith("--"):
                out.append(f"{key.replace('-', '_')}={rest[i + 1]}")
                i += 1
            else:
                raise ValueError(f"{a} needs a value (--{key} VALUE or --{key}=VALUE)")
        elif "=" in a:
            out.append(a)
        else:
            raise ValueError(f"unexpected argument {a!r}: overrides look like key=value or --key value")
        i += 1
    return out


def run_training(cfg, log=print) -> dict:
    """``sf2t train``'s run: with ``eval_videos``, the held-out evaluation before training (a resumed run takes it
    from the checkpoint), every ``eval_every`` steps and after; then ``train_result.json`` and the report
    (``report.md`` + ``report.png``) in ``out_dir``. Under torchrun rank 0 evaluates and reports; with ``fsdp`` (a
    sharded model cannot run on one rank) the evaluations during training are skipped and the final one runs on the
    saved, gathered adapter."""
    import os

    from sf2t.models import load_model_and_tokenizer
    from sf2t.train.checkpoint import CheckpointManager
    from sf2t.train.evaluate import build_eval_set, evaluate
    from sf2t.train.loop import apply_compression, make_factories, train
    from sf2t.train.report import eval_summary, write_report

    rank = int(os.environ.get("RANK", "0"))
    if cfg.overwrite and rank == 0:
        _clear_run(Path(cfg.out_dir), log)
    model, tok = load_model_and_tokenizer(cfg.model)
    train_f, eval_f = make_factories(cfg, tok)
    chance = {name: t.chance() for name, t in train_f.tasks.items()}
    eval_fn, before = None, None
    if eval_f is not None and rank == 0:
        from sf2t.train.data import NoUsableVideo

        try:
            eval_set = build_eval_set(eval_f, cfg.tasks, cfg.eval_samples, cfg.max_new_tokens)
        except NoUsableVideo as e:  # say which set ran out: the held-out one
            raise NoUsableVideo(f"held-out set (eval_videos): {e}") from None

        def eval_fn(m, step):
            rep = evaluate(m, tok, eval_set, max_new_tokens=cfg.max_new_tokens, device=cfg.device, chance=chance)
            rep.pop("samples", None)
            log(f"held-out at step {step}: {eval_summary(rep, cfg.tasks)}")
            return rep

        resuming = cfg.resume and CheckpointManager(Path(cfg.out_dir) / "checkpoints").find(cfg.resume) is not None
        if not resuming:  # the model as it starts (LoRA's B = 0: the base), with the run's token compression
            before = {
                "step": 0,
                **eval_fn(
                    apply_compression(
                        model.to(cfg.device), cfg.token_keep_ratio, cfg.token_stage, cfg.token_first_group
                    ),
                    0,
                ),
            }
    sharded = cfg.fsdp and int(os.environ.get("WORLD_SIZE", "1")) > 1
    if sharded and eval_fn is not None and cfg.eval_every:
        log("fsdp: no held-out evaluation during training (the model is sharded); the final one uses the saved run")
    res = train(
        cfg,
        model=model,
        tokenizer=tok,
        factory=train_f,
        eval_fn=None if sharded else eval_fn,
        log=log,
        initial_evals=[before] if before else [],  # kept in the checkpoints: a resumed run reports it too
    )
    trained = res.pop("model")
    if rank != 0:
        return res
    evals = list(res.get("evals", []))
    if eval_fn is not None:
        if sharded:  # the adapter (or weights) gathered from the shards and saved by train()
            from sf2t.train.loop import load_trained

            trained, _ = load_trained(cfg.model, res["saved"])
            trained.to(cfg.device)
        evals.append({"step": cfg.steps, **eval_fn(trained, cfg.steps)})
    res["evals"] = evals
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_result.json").write_text(json.dumps(res, indent=1, default=str))
    res["report"] = str(write_report(cfg, res, evals, chance))
    return res


def train_main(argv: Sequence[str] | None = None) -> int:
    """``sf2t train``. Under torchrun (``WORLD_SIZE`` > 1) the process ends here, once the run is over and its files
    are closed, without the interpreter's teardown (:func:`_leave`)."""
    code = _train_main(argv)
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        _leave(code)
    return code


def _leave(code: int) -> None:
    """End this process now with ``code`` (streams flushed, no interpreter teardown). A torchrun rank whose run was
    complete (checkpoint, report and metrics closed, process group destroyed) was seen abort in teardown now and
    then ("terminate called without an active exception", SIGABRT: twice in CI, 2-process gloo DDP and FSDP, after
    the final barrier; not reproduced in 54 runs here), which torchrun reports as a failed job."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _last_checkpoint(cfg) -> Path | None:
    """The checkpoint ``resume=auto`` would continue from (None: none, or the folder cannot be read)."""
    from sf2t.train.checkpoint import CheckpointManager

    try:
        return CheckpointManager(Path(cfg.out_dir) / "checkpoints").latest()
    except OSError:
        return None


def _said_os_error(cfg, e: OSError) -> bool:
    """Whether ``sf2t train`` said an OSError that stopped the run (exit 1), as :func:`sf2t.cli.main` does for every
    command: the user's files or disk (:func:`sf2t._oserror.is_file_error`) in one line, with the checkpoint
    ``resume=auto`` continues from; ``ENOMEM`` (the host's memory ran out: DataLoader workers started, a file mapped)
    its traceback, which says where, then that checkpoint, as the run can go on once memory is free. False for the
    rest, raised on to main(): a reader of stdout that has gone (``sf2t train ... | head -1``) ends quietly there,
    anything else (a bug such as io.UnsupportedOperation, a pipe to a process that died) shows its traceback."""
    import errno

    from sf2t._oserror import is_file_error, os_error_text

    said = os_error_text(e)
    if e.errno == errno.ENOMEM:
        import traceback

        traceback.print_exception(e, file=sys.stderr)
        last = _last_checkpoint(cfg)
        where = f"the last checkpoint is {last}: resume=auto continues from it" if last else "no checkpoint was written"
        print(
            f"sf2t train: the host ran out of memory ({said}: the traceback above says where); {where}. Free some "
            "(fewer workers=, other programs closed) and run it again",
            file=sys.stderr,
        )
        return True
    if not is_file_error(e):
        return False
    last = _last_checkpoint(cfg) if "resume=auto" not in said else None  # (a failed save says it already)
    where = f"; the last checkpoint is {last}: resume=auto continues from it once that is fixed" if last else ""
    print(f"sf2t train: {said}{where}", file=sys.stderr)
    return True


def _no_checkpoint(model: str) -> str:
    """What to do when ``model=`` names no folder. sf2t loads checkpoints offline, so a Hub id (``org/name``) is
    downloaded first with huggingface_hub's ``hf`` command (the pinned huggingface_hub 2.x has no ``huggingface-cli``
    any more); a path (``./Qwen2-VL-2B-Instruct``, the README's example) is a folder not downloaded yet or a typo."""
    from sf2t._files import hub_download_hint, looks_like_hub_id

    if looks_like_hub_id(model):
        return (
            f"model {model!r} is not a local directory. sf2t loads checkpoints offline: "
            f"{hub_download_hint(model, 'model=')}"
        )
    return (
        f"model {model!r} is not a local directory (no such folder): model= takes a downloaded checkpoint's folder, "
        f"e.g. `hf download ORG/NAME --local-dir {model}` first"
    )


def _train_main(argv: Sequence[str] | None = None) -> int:
    from sf2t.train.config import config_help, config_to_dict, load_config

    p = argparse.ArgumentParser(prog="sf2t train", description=__doc__.split("\n\n")[1])
    p.add_argument("--config", help="YAML (or JSON) file with TrainConfig fields")
    p.add_argument("--print-config", action="store_true", help="show every field (default, help), then this config")
    args, rest = p.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    try:
        cfg = load_config(args.config, _split_overrides(rest))
    except (ValueError, FileNotFoundError) as e:
        if not is_bad_input(e):
            raise
        print(f"sf2t train: {e}", file=sys.stderr)
        return 2
    if args.print_config:
        import yaml

        print("fields (name, default, help):")
        print(config_help())
        print("\nthis config:")
        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False).rstrip())
        return 0
    if not cfg.model:
        print("sf2t train: no model: set model=PATH (a local Hugging Face checkpoint directory)", file=sys.stderr)
        return 2
    if Path(cfg.model).is_file():
        print(
            f"sf2t train: model {cfg.model!r} is a file; model= takes the checkpoint's folder (the one holding "
            "config.json and the weights)",
            file=sys.stderr,
        )
        return 2
    if not Path(cfg.model).is_dir():
        print(f"sf2t train: {_no_checkpoint(cfg.model)}", file=sys.stderr)
        return 2
    if not cfg.videos:
        print("sf2t train: no training videos: set videos=[a.mp4,b.mp4] (or a list in the YAML file)", file=sys.stderr)
        return 2
    problem = (
        _precheck_paths(cfg)
        or _precheck_resume(cfg)
        or _precheck_device(cfg)
        or _precheck_supervised(cfg)
        or _precheck_model(cfg)
        or _precheck_weights(cfg)
    )
    if problem:
        print(f"sf2t train: {problem}", file=sys.stderr)
        return 2
    import warnings

    from sf2t._progress import library_bars
    from sf2t.train.data import NoUsableVideo
    from sf2t.video.index import SkippedStagesWarning

    try:
        with library_bars(cfg.progress), warnings.catch_warnings():  # progress=false: transformers' "Loading weights"
            # bars too; the staging folders _precheck_paths said are not said again when the pools walk the folders
            warnings.simplefilter("ignore", SkippedStagesWarning)
            res = run_training(cfg)
    except (NoUsableVideo, FloatingPointError) as e:  # the data ran out, or the loss went NaN: the message says it all
        print(f"sf2t train: {e}", file=sys.stderr)
        return 1
    except NotImplementedError as e:  # an option this model or transformers version cannot do (apply_sf2t says which)
        print(f"sf2t train: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # a setting the data cannot serve (one video for a task that needs two, ...)
        if not is_bad_input(e):
            raise
        print(f"sf2t train: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # stopped by the user: where to pick it up
        last = _last_checkpoint(cfg)
        where = (
            f"the last checkpoint is {last}: resume=auto continues from it"
            if last is not None
            else "no checkpoint was written (save_every=N writes them)"
        )
        print(f"\nsf2t train: interrupted; {where}", file=sys.stderr)
        return 130
    except OSError as e:  # a full disk, a folder that takes no file (out_dir on a read-only or root-squashed mount)
        if not _said_os_error(cfg, e):  # not the user's files: main() ends `| head` quietly, shows other tracebacks
            raise
        return 1
    if res.get("rank", 0) != 0 or os.environ.get("RANK", "0") != "0":  # under torchrun: said once, by rank 0
        return 0
    last = res["losses"][-50:]
    print(
        f"trained {counted(res['steps'], 'step')} in {res['seconds']:.1f} s"
        + (f" (resumed from step {res['resumed_from']})" if res["resumed_from"] else "")
        + f"; final loss {sum(last) / max(1, len(last)):.4f}; saved {res.get('saved')}"
        + (f"; report {res['report']}" if res.get("report") else "")
    )
    return 0


def merge_main(argv: Sequence[str] | None = None) -> int:
    p = Parser(prog="sf2t merge", description=__doc__.split("\n\n")[2])
    p.add_argument("--base", required=True, help="the base checkpoint directory the adapter was trained on")
    p.add_argument("--adapter", required=True, help="the LoRA adapter directory (out_dir/adapter of a run)")
    p.add_argument("--out", required=True, help="where the merged checkpoint goes (a new or empty folder)")
    p.add_argument("--overwrite", action="store_true", help="replace what --out holds")
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    problem = _precheck_merge(args)
    if problem:
        print(f"sf2t merge: {problem}", file=sys.stderr)
        return 2
    import shutil
    import uuid

    from sf2t.models import load_model_and_tokenizer
    from sf2t.models._build import load_adapter
    from sf2t.train.config import find_run_config
    from sf2t.train.trained import _copy_processor_files

    out = Path(args.out).resolve()
    interrupted = f"\nsf2t merge: interrupted; nothing was changed in {out}"
    run_cfg = find_run_config(args.adapter)  # the run's settings, next to its adapter
    try:
        model, tok = load_model_and_tokenizer(args.base)
        merged = load_adapter(model, args.adapter, args.base).merge_and_unload()
    except ValueError as e:  # shapes or module names of another model
        if not is_bad_input(e):
            raise
        print(f"sf2t merge: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    # written next to --out, then moved into place: a failure leaves --out as it was. A --out replaced is moved aside
    # first and removed once the new one is in place (removed first, a Ctrl-C there lost both)
    tag = uuid.uuid4().hex[:8]
    tmp, old = out.with_name(f".{out.name}.tmp-{tag}"), None
    try:
        tmp.mkdir(parents=True)
        merged.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        _copy_processor_files(args.base, tmp)
        if run_cfg is not None:  # sf2t eval --model OUT then sees the video as the run did (layout, compression)
            shutil.copy(run_cfg, tmp / "train_config.json")
        if out.exists():
            old = out.with_name(f".{out.name}.old-{tag}")
            out.rename(old)
        tmp.rename(out)
    except BaseException as e:  # Ctrl-C or any error too: the partial copy of the merged model is not left behind
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists() and not out.exists():
            old.rename(out)  # --out as it was
        if isinstance(e, KeyboardInterrupt):
            print(interrupted, file=sys.stderr)
            return 130
        from sf2t._oserror import is_file_error, os_error_text

        if not isinstance(e, OSError) or not is_file_error(e):  # (a bug, ENOMEM: their traceback, via sf2t.cli.main)
            raise
        # (the file it names too: a base checkpoint's file that cannot be read, the temporary copy's)
        print(f"sf2t merge: cannot write {out}: {os_error_text(e)}; nothing was changed there", file=sys.stderr)
        return 1
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    print(f"merged {args.adapter} into {args.base}: {out}" + (f" (with the run's {run_cfg.name})" if run_cfg else ""))
    return 0
