"""FineVidBench-style benchmarks (issue 8): a versioned JSON format with its JSON Schema (``format``), building one
from your videos (``build``: fragment-level SF²T questions, scene-level questions from sf2t.synth ground truth with
speed and frame-order variants), exporting it for lmms-eval or VLMEvalKit (``export``) and scoring a model on it
(``evaluate``). CLI: ``sf2t finevidbench build``, ``sf2t finevidbench export`` and ``sf2t eval``."""

from sf2t._oserror import is_bad_input
from sf2t.finevidbench.format import FORMAT, LEVELS, VARIANTS, BenchmarkError, load, save, schema, validate

__all__ = [
    "FORMAT",
    "LEVELS",
    "VARIANTS",
    "BenchmarkError",
    "load",
    "save",
    "schema",
    "validate",
    "build_parser",
    "main_build",
    "main_eval",
]


def build_parser():
    """``sf2t finevidbench build``'s options (also read by :func:`sf2t.cli.main` to say what a build stopped by a file
    error kept)."""
    from sf2t._args import Parser

    p = Parser(prog="sf2t finevidbench build", description="Build a FineVidBench-style benchmark.")
    p.add_argument("--manifest", help="sf2t index manifest of your videos (fragment-level questions)")
    p.add_argument(
        "--out",
        required=True,
        help="the benchmark JSON (its frames/ and videos/ go next to it: one benchmark a folder); a symlink: the "
        "build goes to its target, next to it, and the link stays",
    )
    p.add_argument("--synthetic", type=int, default=0, help="synthetic clips with ground truth for scene level")
    p.add_argument(
        "--per-category",
        type=int,
        default=20,
        help="at most this many questions per category (original variant); scene categories with rare answers get "
        "fewer, as their answers are balanced",
    )
    p.add_argument(
        "--tasks",
        nargs="*",
        help="fragment-level tasks, separated by spaces or commas (default, without --tasks: all six); made from "
        "the --manifest videos, so it needs --manifest",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--name",
        help="benchmark name (default: the file's stem): ASCII letters, digits, '_', '.', '-' (an export's task and "
        "files are named after it)",
    )
    p.add_argument(
        "--scene-annotations",
        help='user labels, JSONL: {"video": path, "label": text, "start"?, "end"?, "category"?}; start and end are '
        "frame indices (the clip is frames start..end-1; default: the whole video)",
    )
    p.add_argument(
        "--task-config",
        help="a run's train_config.json (or YAML): its task sections set the fragment tasks' parameters (needs "
        "--manifest)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main_build(argv=None) -> int:
    import sys

    from sf2t.finevidbench.build import NotPlaced, build

    args = build_parser().parse_args(argv)
    params = None
    if args.task_config:
        from sf2t.tasks import TASKS
        from sf2t.train.config import read_mapping

        try:
            raw = read_mapping(args.task_config, "--task-config")
        except ValueError as e:
            if not is_bad_input(e):
                raise
            print(f"sf2t finevidbench build: {e}", file=sys.stderr)
            return 2
        params = {}
        for name, section in raw.items():
            if name not in TASKS:  # a run's other settings (lr, steps, ...): not the benchmark's
                continue
            try:
                params[name] = _task_section(name, section)
            except ValueError as e:
                if not is_bad_input(e):
                    raise
                print(f"sf2t finevidbench build: --task-config {args.task_config}: {name}: {e}", file=sys.stderr)
                return 2
    try:
        try:
            build(
                args.manifest,
                args.out,
                per_category=args.per_category,
                synthetic=args.synthetic,
                seed=args.seed,
                tasks=args.tasks,
                name=args.name,
                task_params=params,
                scene_annotations=args.scene_annotations,
                progress=not args.quiet,
            )
        except Exception as e:  # once the benchmark was in place (as the earlier build's unused files were removed)
            if not getattr(e, "placed", False):
                raise
            from sf2t._oserror import is_file_error, os_error_text

            holds = f"{args.out} was in place: it holds the new build{_left_text(getattr(e, 'left', []))}"
            if isinstance(e, OSError) and is_file_error(e):  # (main would say "was not written" for it)
                print(f"sf2t finevidbench build: {os_error_text(e)}; {holds}", file=sys.stderr)
                return 1
            note = f"sf2t finevidbench build: this error came once {holds}"  # a bug: its traceback, and this
            add_note = getattr(e, "add_note", None)  # (Python 3.11 on; 3.10 has no notes: the line goes before it)
            if add_note is not None:
                add_note(note)
            else:
                print(note, file=sys.stderr)
            raise
    except NotPlaced as e:  # a file error at the end: exit 1, as main gives any other (its message says what was kept)
        print(f"sf2t finevidbench build: {e}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as e:
        if not is_bad_input(e) or getattr(e, "placed", False):
            raise
        print(f"sf2t finevidbench build: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # the frames and clips made so far were in a staging folder, removed
        if getattr(e, "placed", False):  # after the last rename: the new build is in place
            print(
                f"\nsf2t finevidbench build: interrupted once {args.out} was in place: it holds the new build"
                + _left_text(getattr(e, "left", [])),
                file=sys.stderr,
            )
            return 130
        print(
            f"\nsf2t finevidbench build: interrupted; {args.out} was not written (the frames and clips made so far "
            "were removed): the same command builds it again",
            file=sys.stderr,
        )
        return 130
    return 0


def _left_text(left: list[str]) -> str:
    """``; N files of the earlier build ... e.g. X: remove them by hand`` for the earlier build's unused files a build
    stopped once in place left (``left``), or nothing."""
    from sf2t._plural import counted

    if not left:
        return ""
    it, are = ("it", "is") if len(left) == 1 else ("them", "are")
    return (
        f"; {counted(len(left), 'file')} of the earlier build that it no longer uses (no question shows {it}) {are} "
        f"left next to it, e.g. {left[0]}: remove {it} by hand"
    )


def _task_section(name: str, section) -> dict:
    """A task's section of ``--task-config`` with its values converted as ``sf2t train`` converts them; a ValueError
    (as train's config check says it) for one that is not a mapping, names a field the task does not have, or holds a
    value of the wrong type or out of range. Unchecked, a wrong field was a TypeError traceback once clips were made."""
    from sf2t.tasks import TASK_CONFIGS, make_task
    from sf2t.train.config import _merge

    if not isinstance(section, dict):
        raise ValueError(f"expected a mapping of the task's fields, got {section!r}")
    try:
        cfg = _merge(TASK_CONFIGS[name](), section)
        make_task(name, cfg)
    except (ValueError, TypeError) as e:
        said = str(e)
        raise ValueError(said[len(name) + 2 :] if said.startswith(f"{name}: ") else said) from None
    return {k: getattr(cfg, k) for k in section}


def main_export(argv=None) -> int:
    import os
    import sys

    from sf2t._args import Parser
    from sf2t.finevidbench.export import FORMATS, export

    p = Parser(prog="sf2t finevidbench export", description="Export for lmms-eval or VLMEvalKit.")
    p.add_argument("--bench", required=True, help="the benchmark JSON")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--fps", type=int, default=2, help="frame rate of the per-question videos")
    p.add_argument(
        "--task",
        help="task / dataset name: ASCII letters, digits, '_', '.', '-' (default: sf2t_<benchmark name>, made safe)",
    )
    args = p.parse_args(argv)
    try:
        if os.path.exists(args.out) and not os.path.isdir(args.out):
            raise ValueError(f"--out {args.out} exists and is not a folder")
        from sf2t._files import check_out_folder

        check_out_folder(args.out, "--out")  # under a file: a NotADirectoryError traceback once the export began
        if args.fps < 1:
            raise ValueError(f"--fps must be >= 1, got {args.fps}")
        export(args.bench, args.out, args.format, fps=args.fps, task=args.task)
    except (ValueError, FileNotFoundError) as e:
        if not is_bad_input(e):
            raise
        print(f"sf2t finevidbench export: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # what it wrote was removed (sf2t.finevidbench.export)
        print(
            f"\nsf2t finevidbench export: interrupted; no export was made (what it wrote to {args.out} was removed)",
            file=sys.stderr,
        )
        return 130
    return 0


def _read_results(path: str) -> dict:
    """An earlier ``sf2t eval`` results JSON (for --compare); a ValueError naming the file otherwise."""
    import json

    from sf2t._files import read_text

    text = read_text(path, f"--compare {path}", "a results JSON file")
    try:
        res = json.loads(text)
    except json.JSONDecodeError as e:
        from sf2t._files import json_lines_noun

        noun = json_lines_noun(text)
        if noun:  # (an answers file: the results JSON is the .json beside it)
            raise ValueError(
                f"--compare {path}: {noun}, not an sf2t eval results file (the JSON file sf2t eval --out wrote)"
            ) from None
        raise ValueError(f"--compare {path}: not a JSON file ({e})") from None
    table = res.get("table") if isinstance(res, dict) else None
    if not isinstance(table, dict) or not all(
        isinstance(r, dict) and "accuracy" in r and "n" in r for r in table.values()
    ):
        raise ValueError(f"--compare {path}: not an sf2t eval results file (no 'table' of accuracies)")
    return res


def _is_qwen(model_dir: str) -> bool:
    from sf2t.finevidbench.evaluate import checkpoint_kind

    try:
        return checkpoint_kind(model_dir) in ("qwen2_vl", "qwen2_5_vl")
    except (ValueError, FileNotFoundError):
        return True  # the runner says what is wrong with the checkpoint


def _same_path(a: str, b: str) -> bool:
    import os

    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _run_settings(args) -> dict:
    """How the model sees a video: the command line's choices, else those of the sf2t run that trained it (the
    ``train_config.json`` next to ``--adapter``; without an adapter, inside ``--model`` for a merged one (``sf2t
    merge`` puts it there), else next to ``--model`` for a full fine-tune, unless
    ``--model`` is that run's base checkpoint, as the demo's folder holds both), else the defaults. Says which
    settings came from the run."""
    import sys

    from sf2t.train.config import find_run_config, read_mapping

    keys = ("frame_size", "layout", "token_keep_ratio", "token_stage", "token_first_group")
    got = {k: getattr(args, k) for k in keys}
    run, source = {}, None
    trained = args.adapter or args.model
    cfg = find_run_config(trained)  # inside a merged checkpoint, else next to the adapter or model folder
    if cfg is not None:
        found = read_mapping(cfg, "not a run's settings:")
        base = found.get("model")
        is_base = not args.adapter and isinstance(base, str) and base and _same_path(base, args.model)
        if not is_base:
            run, source = found, cfg
    taken = {k: run[k] for k in keys if got[k] is None and run.get(k) is not None}
    if taken and not _is_qwen(args.model):  # LLaVA runs: the processor's size, one frame per group
        taken = {k: v for k, v in taken.items() if k not in ("frame_size", "layout")}
    if taken:
        shown = ", ".join(f"{k}={v}" for k, v in taken.items())
        print(f"sf2t eval: as the run was trained ({source}): {shown}", file=sys.stderr)
    got.update(taken)
    defaults = {"layout": "repeat", "token_keep_ratio": 1.0, "token_stage": "after_tower", "token_first_group": "all"}
    return {k: defaults.get(k) if got[k] is None else got[k] for k in keys}


def main_eval(argv=None) -> int:
    import sys

    from sf2t._args import Parser
    from sf2t.finevidbench.evaluate import VideoRunner, check_out_files, compare_text, evaluate, side_files
    from sf2t.finevidbench.format import load as load_bench

    p = Parser(prog="sf2t eval", description="Score a model on a FineVidBench-style benchmark.")
    p.add_argument(
        "--model",
        required=True,
        help="a local checkpoint directory: Qwen2-VL, Qwen2.5-VL, LLaVA-OneVision or LLaVA-NeXT-Video",
    )
    p.add_argument("--adapter", help="a LoRA adapter trained on it")
    p.add_argument("--bench", required=True, help="the benchmark JSON")
    p.add_argument("--out", required=True, help="results JSON (report .md and chart .png next to it)")
    p.add_argument("--mode", choices=("likelihood", "generate"), default="likelihood")
    p.add_argument(
        "--max-frames",
        type=int,
        help="skip (and list) questions that show more frames than this: fewer frames would change their answers",
    )
    p.add_argument("--batch-size", type=int, default=4, help="questions per forward pass (likelihood mode)")
    p.add_argument("--max-pixels", type=int, default=224 * 224, help="frame size budget (Qwen's smart resize)")
    p.add_argument(
        "--frame-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="pack frames at this size (x28, at most 12,845,056 pixels); default: the run's",
    )
    p.add_argument(
        "--layout", choices=("repeat", "pairs"), help="as the model was trained (default: the run's, or repeat)"
    )
    p.add_argument(
        "--token-keep-ratio", type=float, help="compress video tokens as in training (default: the run's, or 1.0: off)"
    )
    p.add_argument(
        "--token-stage", choices=("after_tower", "before_tower"), help="where tokens are dropped (default: the run's)"
    )
    p.add_argument(
        "--token-first-group",
        choices=("all", "budget"),
        help="the first temporal group kept whole or compressed (default: the run's, or all)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--compare", help="another results JSON: print both side by side")
    args = p.parse_args(argv)
    try:
        for name in ("batch_size", "max_frames", "max_pixels"):
            v = getattr(args, name)
            if v is not None and v < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {v}")
        from sf2t.ops.fragment_pack import qwen2_vl_size_message

        fs = args.frame_size
        said = fs and qwen2_vl_size_message(fs, f"--frame-size {fs[0]} {fs[1]}", "--frame-size {h} {w}")
        if said:  # before the benchmark and the model are read
            raise ValueError(said)
        from sf2t._device import require_device

        require_device(args.device, "--device: ")
        from sf2t.finevidbench.evaluate import check_askable

        bench = load_bench(args.bench)
        check_askable(bench)  # a bad or unusable benchmark, or --compare file, fails before the model
        # --out and the files next to it (answers, report, chart, comparison): never a folder, an input (--compare
        # --out F replaced the results compared with; the benchmark's own frames and clips' ground truth too) or a
        # file of another kind
        from pathlib import Path

        from sf2t._files import is_within
        from sf2t.finevidbench.evaluate import bench_files

        for name, folder in (("--model", args.model), ("--adapter", args.adapter)):  # said first: the likelier slip
            if folder is not None and Path(folder).is_dir():
                if is_within(Path(args.out).resolve().parent, folder):
                    raise ValueError(
                        f"--out {args.out}: inside the {name} folder {folder}: the results (and their .answers.jsonl, "
                        ".report.md, .png) would go among the checkpoint's files, or replace one; pass another path"
                    )
        check_out_files(args.out, inputs=[args.bench, args.compare, *bench_files(bench)], compare=bool(args.compare))
        other = _read_results(args.compare) if args.compare else None
        run = _run_settings(args)
        runner = VideoRunner(
            args.model,
            args.adapter,
            device=args.device,
            max_pixels=args.max_pixels,
            frame_size=run["frame_size"],
            layout=run["layout"],
            token_keep_ratio=run["token_keep_ratio"],
            token_stage=run["token_stage"],
            token_first_group=run["token_first_group"],
        )
        from sf2t.finevidbench.evaluate import checkpoint_fingerprint

        setting = {
            "model": checkpoint_fingerprint(args.model) if Path(args.model).is_dir() else args.model,
            "adapter": checkpoint_fingerprint(args.adapter),
            "max_pixels": args.max_pixels,
            **run,
        }
        res = evaluate(
            args.bench,
            args.out,
            runner=runner,
            mode=args.mode,
            max_frames=args.max_frames,
            batch_size=args.batch_size,
            setting=setting,
        )
    except (ValueError, FileNotFoundError) as e:
        if not is_bad_input(e):
            raise
        print(f"sf2t eval: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        answers = side_files(args.out)["answers"]
        print(
            f"\nsf2t eval: interrupted; the answers so far are in {answers}: the same command goes on from them",
            file=sys.stderr,
        )
        return 130
    if args.compare:
        from sf2t._files import write_text_atomic

        table = compare_text(other, res, (args.compare, args.out))
        write_text_atomic(
            side_files(args.out, compare=True)["compare"],
            f"# {res['benchmark']}: {args.compare} vs {args.out}\n\n{table}\n",
        )
        print(table)
    return 0
