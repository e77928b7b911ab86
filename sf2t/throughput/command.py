"""The ``sf2t throughput`` command line."""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Sequence

from sf2t._args import Parser
from sf2t._oserror import is_bad_input
from sf2t._plural import counted
from sf2t.throughput.report import json_safe, print_table
from sf2t.throughput.sampling import FAMILIES, FRAME_TASKS


def default_pipelines(threads: int, device: str, workers: int = 0, prefetch: int = 0) -> int:
    """``sf2t throughput``'s pipelines when ``--pipelines`` is not given: on the CPU, one pipeline thread per
    ``--threads`` (each decodes, builds and packs its own windows with one thread: the fastest way to use several
    cores here, e.g. 2 pipelines 171 against 109 samples/s with a prefetch thread on 640x360), unless another way
    to overlap decoding (``--prefetch``, ``--workers``) was asked for; on a GPU, 1."""
    if str(device) != "cpu" or workers or prefetch or threads < 2:
        return 1
    return threads


def _option_problem(args) -> str:
    """What is wrong with ``sf2t throughput``'s options, in their own terms ("": nothing): counts below their least,
    a time that is not a finite number of seconds > 0, a ``--size`` Qwen2-VL cannot pack (with the nearest one that it
    can), an empty ``--json``, a ``--tasks`` that names no task or an unknown one."""
    from sf2t.ops.fragment_pack import qwen2_vl_size_message

    least = {"windows": 1, "rounds": 1, "warmup": 0, "threads": 1, "workers": 0, "prefetch": 0, "pipelines": 1}
    least.update(baseline_streams=1, baseline_samples=1)
    for name, low in least.items():
        value = getattr(args, name)
        if value is not None and value < low:
            return f"--{name.replace('_', '-')} must be >= {low}, got {value}"
    if args.seconds is not None and not (math.isfinite(args.seconds) and args.seconds > 0):
        return f"--seconds must be a finite number of seconds > 0, got {args.seconds}"
    said = qwen2_vl_size_message(args.size, f"--size {args.size[0]} {args.size[1]}", "--size {h} {w}")
    if said:  # the op's own message names a Python helper
        return said
    if args.json is not None and not args.json.strip():
        return "--json '': give the path of the file to write the figures to"
    from sf2t.tasks import task_names

    try:  # --tasks "" or ",": none named (it was "unknown tasks []"), or an unknown name
        task_names(args.tasks, "--tasks", extra=("fragment",))
    except ValueError as e:
        return str(e)
    return ""


def build_parser() -> Parser:
    """``sf2t throughput``'s options (also read by :func:`sf2t.cli.main` to say what a run stopped by a file error
    kept)."""
    from sf2t import throughput  # the package: its docstring

    p = Parser(prog="sf2t throughput", description=throughput.__doc__.split("\n\n")[0])
    p.add_argument(
        "--videos",
        nargs="+",
        required=True,
        help="video files, folders or sf2t index manifests (.jsonl: their ok lines)",
    )
    p.add_argument(
        "--windows",
        type=int,
        default=4,
        help="64-frame windows per round (4 samples each; the agreement check compares samples of up to 8 of them)",
    )
    p.add_argument("--rounds", type=int, default=3, help="timed rounds (default 3; samples/s: their median)")
    p.add_argument(
        "--warmup", type=int, default=1, help="untimed rounds of every provider before the timed ones (default 1)"
    )
    p.add_argument(
        "--against",
        default="llamafactory_style,qwenvl_utils_style",
        help="comma-separated baselines (default: llamafactory_style,qwenvl_utils_style; '' for none)",
    )
    p.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=[252, 448],
        metavar=("H", "W"),
        help="target size (multiples of 28, at most 12,845,056 pixels: Qwen2-VL checkpoints' max_pixels)",
    )
    p.add_argument("--baseline-samples", type=int, help="time the baselines on the first N samples only")
    p.add_argument("--seed", type=int, default=0, help="the sampler's seed (which windows and frames)")
    p.add_argument(
        "--threads", type=int, default=1, help="torch and decoder threads of every provider and of the raw decode"
    )
    p.add_argument(
        "--tasks",
        nargs="+",
        default=["fragment"],
        help="SF²T tasks to sample, mixed evenly, separated by spaces or commas (fragment: a plain 16-frame fragment); "
        f"the baselines make {', '.join(FRAME_TASKS)}",
    )
    p.add_argument("--family", default="qwen2_vl", choices=FAMILIES, help="model family (one pixel layout)")
    p.add_argument("--device", default="cpu", help="where sf2t decodes and packs: cpu or cuda")
    p.add_argument(
        "--decoder",
        default="auto",
        choices=("auto", "torchcodec", "pyav", "dali"),
        help="sf2t's decoder (auto: DALI on a GPU where installed, else torchcodec, else PyAV; PyAV for yuv420 "
        "windows, which --frames auto takes for plain fragments on the CPU)",
    )
    p.add_argument(
        "--prefetch",
        type=int,
        default=0,
        help="sf2t decodes up to N windows ahead in a background thread while it packs (--threads split between them)",
    )
    p.add_argument(
        "--pipelines",
        type=int,
        default=None,
        help="run sf2t's pipeline in N threads of this process, each decoding, building and packing its share of the "
        "windows (--threads split between them; CPU). Default: one per --threads on the CPU unless --prefetch or "
        "--workers is given, else 1",
    )
    p.add_argument(
        "--baseline-streams",
        type=int,
        default=None,
        help="each baseline makes its samples in N threads of this process (--threads split between them), as a "
        "training stack's loader workers would. Default: as many as sf2t's --pipelines (or --workers)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        help="run sf2t's pipeline in this many DataLoader processes, one thread each (0: in process, --threads)",
    )
    p.add_argument(
        "--seconds", type=float, help="each provider's time per round (instead of --windows / --baseline-samples)"
    )
    p.add_argument(
        "--frames",
        default="auto",
        choices=("auto", "rgb", "yuv420"),
        help="sf2t's windows: yuv420 keeps the decoder's planes and converts inside fragment_pack, for the frames "
        "samples show only (pyav backend, CPU); auto: yuv420 for plain fragments on the CPU where every video is 8-bit "
        "4:2:0 with even sizes and upright, else rgb",
    )
    p.add_argument("--json", help="write the figures here")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from sf2t import throughput  # the package: measure where tests patch its helpers

    args = build_parser().parse_args(argv)
    from sf2t._files import check_out_file, write_text_atomic

    problem = _option_problem(args)
    if problem:  # in the options' terms, before any video is probed (measure's messages name its arguments)
        print(f"sf2t throughput: {problem}", file=sys.stderr)
        return 2
    from sf2t.video.errors import VideoError
    from sf2t.video.index import expand_videos, skipped_stages_text

    missing = [v for v in args.videos if not os.path.exists(v)]
    if missing:
        print(f"sf2t throughput: no such file or folder: {missing}", file=sys.stderr)
        return 2
    stages: list[str] = []  # sf2t build staging folders left out of a folder's walk
    try:  # as sf2t train's videos=: a manifest gives its ok lines (it was probed as a video: "cannot open")
        videos = expand_videos(args.videos, stages)
    except ValueError as e:  # a folder without videos, a broken manifest
        if not is_bad_input(e):
            raise
        print(f"sf2t throughput: --videos {e}", file=sys.stderr)
        return 2
    if not videos:
        print(f"sf2t throughput: --videos {args.videos} list no video (a manifest with no ok line?)", file=sys.stderr)
        return 2
    if stages:  # as sf2t train says it
        print(f"sf2t throughput: warning: --videos: {skipped_stages_text(stages)}", file=sys.stderr)
    if args.json is not None:
        try:
            check_out_file(args.json, "--json", inputs=videos, text=True)  # before the measurement, not after it
        except ValueError as e:
            if not is_bad_input(e):
                raise
            print(f"sf2t throughput: {e}", file=sys.stderr)
            return 2
    try:
        res = throughput.measure(
            videos,
            windows=args.windows,
            rounds=args.rounds,
            against=[a.strip() for a in args.against.split(",") if a.strip()],
            size=tuple(args.size),
            seed=args.seed,
            baseline_samples=args.baseline_samples,
            threads=args.threads,
            tasks=args.tasks,
            family=args.family,
            device=args.device,
            workers=args.workers,
            prefetch=args.prefetch,
            pipelines=default_pipelines(args.threads, args.device, args.workers, args.prefetch)
            if args.pipelines is None
            else args.pipelines,
            warmup=args.warmup,
            seconds=args.seconds,
            decoder=args.decoder,
            frames=args.frames,
            baseline_streams=args.baseline_streams,
        )
    except (ValueError, RuntimeError, VideoError) as e:
        if not is_bad_input(e):
            raise
        print(f"sf2t throughput: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before a timed round finished (else measure returns those rounds' figures)
        print("\nsf2t throughput: interrupted before a timed round finished: nothing to report", file=sys.stderr)
        return 130
    print_table(res)
    if args.json is not None:  # strict JSON: nan (a ceiling not measured here) as null
        write_text_atomic(args.json, json.dumps(json_safe(res), indent=1, allow_nan=False), "--json")
    if res.get("interrupted"):
        print(
            f"sf2t throughput: interrupted: the figures are of the {res['rounds']} of "
            f"{counted(res['rounds_asked'], 'timed round')} that finished",
            file=sys.stderr,
        )
        return 130
    return 0
