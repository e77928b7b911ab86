"""The ``sf2t`` command: ``sf2t info``, ``sf2t index``, ``sf2t tasks export|preview`` here; ``sf2t demo``, ``sf2t
train``, ``sf2t merge``, ``sf2t finevidbench build|export``, ``sf2t eval`` and ``sf2t throughput`` handed to their
modules (each parses its own options)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from sf2t._args import Parser


def _git_sha_now() -> str | None:
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        return (
            subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=root, stderr=subprocess.DEVNULL).decode().strip()
        )
    except Exception:
        return None


def _decoders() -> dict[str, str]:
    """Video decoders importable here, with their version or the reason they are not usable."""
    out = {}
    for name, module in (
        ("torchcodec", "torchcodec"),
        ("pyav", "av"),
        ("dali", "nvidia.dali"),
    ):
        if importlib.util.find_spec(module.split(".")[0]) is None or (
            "." in module and importlib.util.find_spec(module) is None
        ):
            out[name] = "not installed"
            continue
        try:
            mod = __import__(module, fromlist=["__version__"])
            out[name] = getattr(mod, "__version__", "installed")
        except Exception as e:  # e.g. torchcodec without FFmpeg libraries
            out[name] = f"installed but not usable: {str(e).splitlines()[0][:120]}"
    return out


def collect_info() -> dict:
    import torch

    import sf2t
    from sf2t import _ext

    fp = importlib.import_module("sf2t.ops.fragment_pack")
    th = importlib.import_module("sf2t.ops.thumbnail")
    tm = importlib.import_module("sf2t.ops.token_merge")
    yc = importlib.import_module("sf2t.video.convert")

    build = _ext.build_info()
    cuda_ok = torch.cuda.is_available()
    triton = importlib.util.find_spec("triton")
    info = {
        "sf2t": sf2t.__version__,
        "git_sha": _git_sha_now() or build.get("git_sha"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "build": {k: v for k, v in build.items() if k != "sources"} or None,
        "extension_loaded": _ext.is_loaded(),
        "extension_error": _ext.load_error(),
        "extension_stale": _ext.stale_reasons(),
        "cuda_kernels_compiled": bool(build.get("with_cuda")) and _ext.is_loaded(),
        "backends": {
            "fragment_pack": {
                "cpu": fp.available_backends("cpu"),
                "cuda": fp.available_backends("cuda") if cuda_ok else [],
                "chosen_cpu": fp.choose_backend(torch.device("cpu")),
                # which GPU kernel each GPU backend runs (two-pass or tiled; README "Building")
                "gpu_kernels": {
                    "cuda": os.environ.get("SF2T_FRAGMENT_PACK_CUDA") or "two_pass",
                    "triton": os.environ.get("SF2T_FRAGMENT_PACK_TRITON") or "two_pass",
                    "tile": os.environ.get("SF2T_FRAGMENT_PACK_TILE") or "default",
                },
            },
            "thumbnail": {
                "cpu": ["reference"] + (["cpp"] if _ext.is_loaded() else []),
                "cuda": ["reference"] if cuda_ok else [],
                "chosen_cpu": th.choose_backend(torch.zeros(1, 1, 1, 3, dtype=torch.uint8)),
            },
            "token_merge": {
                "cpu": ["reference"] + (["cpp"] if tm._has_cpp() else []),
                "cuda": (["reference"] + (["triton"] if triton else [])) if cuda_ok else [],
                "chosen_cpu": tm.choose_backend(torch.zeros(1, 1)),
            },
            "yuv420_to_rgb": {  # the pyav backend's RGB conversion (sf2t.video.convert)
                "cpu": ["reference"] + (["cpp"] if yc._has_op() else []),
                "cuda": [],
                "chosen_cpu": "cpp" if yc._has_op() else "reference",
            },
        },
        "triton": __import__("triton").__version__ if triton else None,
        "decoders": _decoders(),
        "device": {
            "cuda_available": cuda_ok,
            "gpu": torch.cuda.get_device_name(0) if cuda_ok else None,
            "cpu_cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
        },
    }
    return info


def cmd_info(args: argparse.Namespace) -> int:
    info = collect_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    b = info["build"] or {}
    print(f"sf2t {info['sf2t']}  (git {info['git_sha'] or 'unknown'})")
    print(f"python {info['python']}, torch {info['torch']} (CUDA {info['torch_cuda'] or 'none'})")
    if b:
        print(
            f"built with torch {b.get('torch')} (CUDA {b.get('torch_cuda') or 'none'}), "
            f"CUDA kernels: {'yes' if b.get('with_cuda') else 'no'} ({b.get('cuda_reason')}), "
            f"arch list {b.get('cuda_arch_list') or '-'}, nvcc {b.get('nvcc') or '-'}, "
            f"git {b.get('git_sha')}, at {b.get('built_at')}"
        )
    else:
        print("built: no build record (sf2t._C was never built here)")
    if info["extension_loaded"]:
        print(
            "extension sf2t._C: loaded"
            + (f" (stale: {'; '.join(info['extension_stale'])})" if info["extension_stale"] else "")
        )
    else:
        print(f"extension sf2t._C: NOT loaded: {info['extension_error']}")
    print(f"CUDA kernels compiled in: {'yes' if info['cuda_kernels_compiled'] else 'no'}")
    no_cuda = "- (CPU only)" if info["device"]["cuda_available"] else "- (no GPU here)"
    for op, d in info["backends"].items():
        kernels = d.get("gpu_kernels")
        print(
            f"op {op}: cpu backends {', '.join(d['cpu'])} (auto: {d['chosen_cpu']}); "
            f"cuda backends {', '.join(d['cuda']) if d['cuda'] else no_cuda}"
            + (
                f"; GPU kernels: cuda {kernels['cuda']}, triton {kernels['triton']}, tile {kernels['tile']}"
                if kernels
                else ""
            )
        )
    print(f"triton: {info['triton'] or 'not installed'}")
    print("decoders: " + ", ".join(f"{k} {v}" for k, v in info["decoders"].items()))
    d = info["device"]
    print(
        f"device: {d['gpu'] if d['cuda_available'] else 'cpu'} ({d['cpu_cores']} CPU cores, "
        f"{d['torch_threads']} torch threads)"
    )
    return 0


def cmd_demo(argv: list[str]) -> int:
    from sf2t import demo

    return demo.main(argv)


def _allocator_defaults() -> None:
    """Transparent huge pages for torch's large CPU allocations (``THP_MEM_ALLOC_ENABLE=1``) unless the user set it:
    every decoded window and packed batch is a fresh tensor of tens to hundreds of MB, which otherwise costs a page
    fault and a page clear per 4 KB (~15 % of sf2t's samples/s on 1280x720 clips here, measured with
    ``sf2t throughput``). torch reads the variable once, at its first allocation, so this runs before torch is
    imported; a process that imported torch already keeps its setting."""
    if "torch" not in sys.modules:
        os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


def main(argv: list[str] | None = None) -> int:
    """The ``sf2t`` command. sf2t's warnings are shown as ``sf2t COMMAND: warning: ...``, once per run (under torchrun
    by rank 0 only): :func:`sf2t._warn.cli_warnings`; under torchrun, ``sf2t train``'s ranks other than 0 show no
    transformers, peft or torch.distributed messages below error level either (:func:`sf2t._warn.quiet_other_ranks`).
    An OSError of the user's files or disk that stops a command is one line, exit 1
    (:func:`sf2t._oserror.is_file_error`; other OSErrors keep their traceback); output piped into a reader that has
    gone (``| head``) ends quietly, exit 1."""
    from sf2t._oserror import is_file_error, os_error_text
    from sf2t._warn import cli_warnings, command_name

    _allocator_defaults()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        with cli_warnings(command_name(argv)):
            return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C where a command has nothing more to say (each says what it kept where it has)
        name = " ".join(["sf2t", *argv[:1]] if argv and not argv[0].startswith("-") else ["sf2t"])
        print(f"\n{name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `sf2t ... | head`: the reader has gone, nobody wants the rest
        if not _output_closed():  # another pipe (a worker's that died): not the user's doing, its traceback
            raise
        _quiet_stdout()
        return 1
    except OSError as e:  # mid-run: a full disk at a write, a folder that takes no file (checked up front, then lost)
        if not is_file_error(e):  # a bug (io.UnsupportedOperation, EBADF), no memory, a network error: its traceback
            raise
        print(f"{command_name(argv)}: {os_error_text(e)}{_kept_after_os_error(argv)}", file=sys.stderr)
        return 1


def _output_closed() -> bool:
    """Whether stdout or stderr is a pipe (or socket) whose reader has gone (``sf2t ... | head`` once head exited):
    poll says POLLERR (Linux) or POLLHUP for it. True where that cannot be asked (no ``select.poll``: Windows), as
    Python's "Note on SIGPIPE" takes every BrokenPipeError."""
    import select

    if not hasattr(select, "poll"):
        return True
    for stream in (sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
            poll = select.poll()
            poll.register(fd, select.POLLOUT)
            if any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poll.poll(0)):
                return True
        except (AttributeError, ValueError, OSError):  # no stream, closed, or no file descriptor (pytest's capture)
            continue
    return False


def _quiet_stdout() -> None:
    """Python's "Note on SIGPIPE": stdout pointed at os.devnull, so the flush at exit raises no second BrokenPipeError
    (``Exception ignored in ... BrokenPipeError``) for the output still buffered."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _command_args(argv: list[str]) -> argparse.Namespace | None:
    """The options of the command in ``argv`` as its own parser took them (``-o X``, ``-oX``, ``--out=X``, ``--ou X``,
    the last one given): for :func:`_kept_after_os_error`, which names the files. None for a command not listed there,
    or options its parser refuses (it took them once already, so not expected)."""
    import contextlib
    import io

    if argv[:1] in (["index"], ["tasks"]):
        parser, rest = _parser(), argv
    elif argv[:1] == ["demo"]:
        from sf2t.demo import build_parser

        parser, rest = build_parser(), argv[1:]
    elif argv[:1] == ["throughput"]:
        from sf2t.throughput.command import build_parser

        parser, rest = build_parser(), argv[1:]
    elif argv[:2] == ["finevidbench", "build"]:
        from sf2t.finevidbench import build_parser

        parser, rest = build_parser(), argv[2:]
    else:
        return None
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            return parser.parse_known_args(rest)[0]
    except SystemExit:
        return None


def _kept_after_os_error(argv: list[str]) -> str:
    """What a command that stopped on an OSError (see main) kept, for those that do not say it themselves."""
    cmd = argv[:2] if argv[:1] in (["tasks"], ["finevidbench"]) else argv[:1]
    args = _command_args(argv)
    if cmd == ["index"]:
        from sf2t.video.index import kept_text

        out = getattr(args, "out", None)
        if not out:
            return ""
        return f"; {kept_text(out)}: once that is fixed, the same command " + (
            "goes on from there" if os.path.isfile(out) else "starts again"
        )
    if cmd == ["demo"]:
        out = getattr(args, "out", None) or "out/demo"
        return f"; what was made so far stays in {out}: once that is fixed, the same command runs the demo again"
    if cmd == ["throughput"]:
        js = getattr(args, "json", None)
        return f"; nothing was written to --json {js}" if js else ""
    if cmd == ["tasks", "export"]:
        out = getattr(args, "out", None) or "--out"
        return f"; the sample frames written to {out} that no data.json lists were removed"
    if cmd == ["finevidbench", "build"]:
        out = getattr(args, "out", None) or "--out"
        return f"; the benchmark {out} was not written (an earlier one there stays as it was)"
    return ""


def _parser() -> Parser:
    """The ``sf2t`` command's parser: ``info``, ``index`` and ``tasks`` parse here; the other commands are listed (for
    ``--help``) and parse their own options."""
    parser = Parser(prog="sf2t", description="Self-supervised fragment fine-tuning of video LLMs.")
    from sf2t._version import __version__

    parser.add_argument("--version", action="version", version=f"sf2t {__version__}")  # (sf2t info: the whole build)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p_info = sub.add_parser("info", help="show the build, backends, decoders and device")
    p_info.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p_index = sub.add_parser(
        "index",
        help="probe video files and folders into a JSONL manifest",
        description="Probe every video (codec, size, rotation, fps, frames, duration, "
        "keyframe interval) and write one JSON line per file, with the reason for each "
        "file that cannot be used. Exit 0 when at least one video is usable.",
    )
    from sf2t.video import index as _index

    _index.add_arguments(p_index)
    p_tasks = sub.add_parser("tasks", help="export SF²T samples for other trainers; preview them as a contact sheet")
    from sf2t.tasks import export as _export

    _export.add_arguments(p_tasks)
    sub.add_parser("demo", help="make clips, build a tiny model, train on SF²T tasks, report accuracy", add_help=False)
    sub.add_parser("train", help="fine-tune on SF²T tasks from a YAML config + key=value overrides", add_help=False)
    sub.add_parser("merge", help="merge a LoRA adapter into its base checkpoint", add_help=False)
    sub.add_parser(
        "finevidbench",
        help="build a FineVidBench-style benchmark (finevidbench build ...) or export it for lmms-eval / VLMEvalKit "
        "(finevidbench export ...)",
        add_help=False,
    )
    sub.add_parser("eval", help="score a model on a FineVidBench-style benchmark", add_help=False)
    sub.add_parser("throughput", help="sf2t's input pipeline vs today's stacks on your videos", add_help=False)
    return parser


def _main(argv: list[str]) -> int:
    if argv and argv[0] == "throughput":
        from sf2t import throughput as _tp

        return _tp.main(argv[1:])
    if argv and argv[0] == "finevidbench":
        from sf2t import finevidbench as _fvb

        if len(argv) < 2 or argv[1] not in ("build", "export"):
            help_asked = argv[1:2] in (["-h"], ["--help"])
            print(
                "usage: sf2t finevidbench build --out bench.json [--manifest M] [--synthetic N] ...\n"
                "       sf2t finevidbench export --bench bench.json --format lmms-eval|vlmevalkit --out DIR\n"
                "(sf2t finevidbench build --help, sf2t finevidbench export --help: the options)",
                file=sys.stdout if help_asked else sys.stderr,
            )
            if help_asked:
                return 0
            if len(argv) > 1:  # `bild`: said, not only the usage
                from sf2t._names import did_you_mean

                hint = did_you_mean(argv[1], ("build", "export")).strip()
                print(
                    f"sf2t finevidbench: error: unknown subcommand {argv[1]!r}" + (f"; {hint}" if hint else ""),
                    file=sys.stderr,
                )
            return 2
        return (_fvb.main_build if argv[1] == "build" else _fvb.main_export)(argv[2:])
    if argv and argv[0] == "eval":
        from sf2t import finevidbench as _fvb

        return _fvb.main_eval(argv[1:])
    if argv and argv[0] == "demo":
        return cmd_demo(argv[1:])
    if argv and argv[0] in ("train", "merge"):
        from sf2t._warn import quiet_other_ranks
        from sf2t.train import cli as _train_cli

        if argv[0] == "train":  # under torchrun: transformers' (peft's, torch.distributed's) messages once, by rank 0
            with quiet_other_ranks():
                return _train_cli.train_main(argv[1:])
        return _train_cli.merge_main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "info":
        return cmd_info(args)
    if args.command == "index":
        from sf2t.video import index as _index

        return _index.main(args)
    if args.command == "tasks":
        from sf2t.tasks import export as _export

        return _export.main(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
