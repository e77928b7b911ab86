"""``sf2t index``: walk files and folders, probe every video, write a JSONL manifest.

One line per file: the probe's fields (``sf2t.video.probe.VideoInfo``) with ``"status": "ok"``, or
``"status": "error"`` with a human-readable ``"error"`` and its ``"error_kind"``. Re-running on the same
paths reuses the lines of files whose size and mtime did not change (errors included, unless
``--retry-errors``). Probing runs in worker processes, one file at a time each, so a file that hangs a decoder
is killed at the per-file time limit (``timeout``) and recorded as an error; the rest go on.

What it calls lives beside it, and each of those names is importable from here too: ``sf2t.video.find`` (the files a
list of paths names: folder walks, staging folders left out, video lists with manifests in them) and
``sf2t.video.manifest`` (a manifest read back and checked line by line).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Iterator, Sequence

from sf2t._oserror import is_bad_input
from sf2t._plural import counted
from sf2t.video.errors import VideoError
from sf2t.video.find import (
    VIDEO_EXTENSIONS,
    SkippedStagesWarning,  # noqa: F401  (re-exported)
    _first_of_each_file,  # noqa: F401  (re-exported)
    _left_out,
    _same_file_key,  # noqa: F401  (re-exported)
    _stage_above,  # noqa: F401  (re-exported)
    expand_video_entries,  # noqa: F401  (re-exported)
    expand_videos,  # noqa: F401  (re-exported)
    find_files,
    is_build_stage,  # noqa: F401  (re-exported)
    manifest_videos,  # noqa: F401  (re-exported)
    skipped_stages_text,
)
from sf2t.video.manifest import (
    _OK_FIELDS,  # noqa: F401  (re-exported)
    _OPTIONAL_FIELDS,  # noqa: F401  (re-exported)
    _is_int,  # noqa: F401  (re-exported)
    _is_number,  # noqa: F401  (re-exported)
    _looks_like_jsonl,
    _manifest_path,  # noqa: F401  (re-exported)
    _one_json_document,  # noqa: F401  (re-exported)
    _unchanged,
    iter_jsonl,  # noqa: F401  (re-exported)
    read_manifest,
    usable,  # noqa: F401  (re-exported)
)
from sf2t.video.probe import probe

__all__ = [
    "VIDEO_EXTENSIONS",
    "IndexResult",
    "find_files",
    "is_build_stage",
    "skipped_stages_text",
    "SkippedStagesWarning",
    "expand_videos",
    "expand_video_entries",
    "manifest_videos",
    "index_paths",
    "read_manifest",
    "usable",
    "kept_text",
    "main",
]


def _entry(path: str, verify: bool, timeout: float | None) -> dict:
    t0 = time.perf_counter()
    try:
        d = probe(path, verify=verify, timeout=timeout).to_dict()
        d["status"] = "ok"
    except VideoError as e:
        d = {"path": path, "status": "error", "error": e.reason, "error_kind": e.kind}
    except Exception as e:  # a bug or an unexpected library error: still one line, never a stopped run
        d = {
            "path": path,
            "status": "error",
            "error": f"unexpected {type(e).__name__}: {e}",
            "error_kind": "unexpected",
        }
    if d["status"] == "error":
        try:
            st = os.stat(path)
            d["size"], d["mtime_ns"] = int(st.st_size), int(st.st_mtime_ns)
        except OSError:
            pass
    d["probe_s"] = round(time.perf_counter() - t0, 4)
    return d


def _worker(conn, verify: bool, timeout: float | None) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    while True:
        try:
            path = conn.recv()
        except EOFError:
            return
        if path is None:
            return
        conn.send(_entry(path, verify, timeout))


@dataclass
class IndexResult:
    entries: list[dict] = field(default_factory=list)
    reused: int = 0
    probed: int = 0
    seconds: float = 0.0
    skipped_stages: list[str] = field(default_factory=list)  # sf2t build staging folders left out of the walk

    @property
    def ok(self) -> list[dict]:
        return [e for e in self.entries if e.get("status") == "ok"]

    def summary(self) -> str:
        ok = self.ok
        errors = Counter(e.get("error_kind", "error") for e in self.entries if e.get("status") != "ok")
        hours = sum(float(e.get("duration") or 0.0) for e in ok) / 3600
        lines = [
            f"{len(ok)} ok, {counted(sum(errors.values()), 'error')} of {counted(len(self.entries), 'file')}; "
            f"{hours:.3f} hours of usable video; {self.probed} probed, {self.reused} reused, "
            f"{self.seconds:.1f} s"
        ]
        for kind, n in errors.most_common():
            example = next(e for e in self.entries if e.get("status") != "ok" and e.get("error_kind") == kind)
            lines.append(f"  {kind}: {n}  (e.g. {example['path']}: {example['error']})")
        if self.skipped_stages:
            lines.append(skipped_stages_text(self.skipped_stages))
        return "\n".join(lines)


def _probe_all(todo: list[str], workers: int, verify: bool, timeout: float | None, target=None) -> Iterator[dict]:
    """Entries for ``todo`` in completion order. workers == 0: in this process (the time limit is then checked
    between packets/frames only); else in worker processes killed when one file exceeds ``timeout``."""
    if workers <= 0:
        for p in todo:
            yield _entry(p, verify, timeout)
        return
    ctx = mp.get_context("spawn")  # no fork: the parent may hold decoder or torch threads
    hard = None if timeout is None else float(timeout) * 1.5 + 5.0  # a hung C call never reaches the soft check
    queue = list(reversed(todo))
    slots: list[dict] = []

    def start():
        a, b = ctx.Pipe()
        proc = ctx.Process(target=target or _worker, args=(b, verify, timeout), daemon=True)
        proc.start()
        b.close()
        return {"proc": proc, "conn": a, "path": None, "since": 0.0}

    def give(s):
        if not queue:
            s["path"] = None
            return
        path = queue.pop()
        try:
            s["conn"].send(path)
        except OSError:  # (BrokenPipeError) the worker died after its last answer: the file goes to a new one
            s["conn"].close()
            s["proc"].kill()
            s["proc"].join()
            s.update(start())
            s["conn"].send(path)
        s["path"], s["since"] = path, time.monotonic()

    try:
        for _ in range(min(workers, len(todo))):
            s = start()
            slots.append(s)
            give(s)
        while any(s["path"] is not None for s in slots):
            busy = [s for s in slots if s["path"] is not None]
            ready = wait([s["conn"] for s in busy], timeout=0.5)
            for s in busy:
                if s["conn"] in ready:
                    try:
                        yield s["conn"].recv()
                    except (EOFError, OSError):  # the worker died (a crash in a decoder library)
                        code = s["proc"].exitcode
                        yield {
                            "path": s["path"],
                            "status": "error",
                            "error_kind": "crash",
                            "error": f"the probing process died (exit code {code}) while reading this file",
                        }
                        s.update(start())
                    give(s)
                elif hard is not None and time.monotonic() - s["since"] > hard:
                    s["proc"].kill()
                    s["proc"].join()
                    yield {
                        "path": s["path"],
                        "status": "error",
                        "error_kind": "timeout",
                        "error": f"probing did not finish within {hard:g} s (killed)",
                    }
                    s.update(start())
                    give(s)
    finally:
        for s in slots:
            try:
                s["conn"].send(None)
            except Exception:
                pass
        for s in slots:
            s["proc"].join(timeout=2)
            if s["proc"].is_alive():
                s["proc"].kill()


def index_paths(
    paths: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    workers: int = 0,
    verify: bool = False,
    timeout: float | None = 60.0,
    retry_errors: bool = False,
    progress: bool = True,
) -> IndexResult:
    """Index ``paths`` into the manifest ``out`` (see the module docstring). The manifest is rewritten
    atomically at the end; lines are in the order files were found."""
    from sf2t._files import check_out_file, write_text_atomic

    t0 = time.perf_counter()
    skipped: list[str] = []
    files = find_files(paths, skipped)
    if not files:  # only empty folders given: nothing to write a manifest of
        raise ValueError(
            f"no video files under {', '.join(str(p) for p in paths)} (looked for "
            f"{', '.join(sorted(VIDEO_EXTENSIONS))}; a file named explicitly is probed whatever its extension"
            f"{_left_out(skipped)})"
        )
    check_out_file(out, "manifest", inputs=files)  # before probing, not after
    out = Path(out)
    old: dict[str, dict] = {}
    if out.exists():
        if not _looks_like_jsonl(out):
            raise ValueError(
                f"manifest {out}: exists and is not a manifest (not JSON lines: a video?); pick another path, or "
                "remove it first"
            )
        try:
            old = {e["path"]: e for e in read_manifest(out)}
        except ValueError as e:
            if not is_bad_input(e):
                raise
            print(f"warning: {e}; probing everything again", file=sys.stderr)
        listed = set(files)  # once: a set per entry made this quadratic (~40 s for 50k lines)
        gone = [p for p in old if p not in listed]
        if gone:
            one = len(gone) == 1
            print(
                f"warning: {counted(len(gone), 'line')} of {out} {'is for a file' if one else 'are for files'} not "
                f"under the paths given this time (e.g. {gone[0]}): the new manifest leaves {'it' if one else 'them'} "
                f"out (give {'its path' if one else 'their paths'} too to keep {'it' if one else 'them'})",
                file=sys.stderr,
            )
    res = IndexResult(skipped_stages=skipped)
    done: dict[str, dict] = {}
    todo = []
    for p in files:
        e = old.get(p)
        if (
            e is not None
            and _unchanged(e)
            and not (retry_errors and e.get("status") != "ok")
            and (not verify or e.get("verified") or e.get("status") != "ok")
        ):
            done[p] = e
            res.reused += 1
        else:
            todo.append(p)
    bar = None
    if progress and todo:
        from sf2t._progress import progress_bar

        bar = progress_bar(total=len(todo), desc="indexing", unit="file", file=sys.stderr, dynamic_ncols=True)

    def save(entries) -> None:
        write_text_atomic(out, "".join(json.dumps(e) + "\n" for e in entries), "manifest")

    def so_far() -> list[dict]:  # probed lines, and the old lines of files not reached yet (checked again next run)
        return [done.get(p) or old[p] for p in files if p in done or p in old]

    saved_at = time.monotonic()
    errors = sum(1 for d in done.values() if d.get("status") != "ok")  # kept as it goes: a sum per file is O(n^2)
    try:
        for e in _probe_all(todo, workers, verify, timeout):
            errors += e.get("status") != "ok"
            done[e["path"]] = e
            res.probed += 1
            if bar is not None:
                # refresh=False: the bar redraws at its own pace (every file was a forced redraw: a line per file in
                # a log that is not a terminal)
                bar.set_postfix(errors=errors, refresh=False)
                bar.update(1)
            if time.monotonic() - saved_at > SAVE_EVERY_S:  # a long index keeps its progress on disk
                save(so_far())
                saved_at = time.monotonic()
    except KeyboardInterrupt:
        res.entries = so_far()
        save(res.entries)  # what was probed is kept: the next run reuses it
        raise IndexInterrupted(res) from None
    finally:
        if bar is not None:
            bar.close()
    res.entries = [done[p] for p in files]
    save(res.entries)
    res.seconds = time.perf_counter() - t0
    return res


def kept_text(out: str | os.PathLike) -> str:
    """What the manifest ``out`` holds after a run that stopped early (a file error, Ctrl-C outside the probing): what
    was last saved, by this run or an earlier one, where the file exists (it is written whole or not at all), else
    that nothing was saved (a first run stopped before its first save)."""
    if os.path.isfile(out):  # (False where it cannot be asked: a name too long, a folder without access)
        return f"{out} holds what was last saved (it is written whole or not at all)"
    return f"nothing was saved yet ({out} was not written)"


SAVE_EVERY_S = 60.0  # seconds between saves of a long index's manifest


class IndexInterrupted(KeyboardInterrupt):
    """Ctrl-C during :func:`index_paths`: the manifest holds what was probed so far (``result``)."""

    def __init__(self, result: IndexResult):
        super().__init__("interrupted")
        self.result = result


def add_arguments(p) -> None:
    p.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="video files and folders (searched recursively, sf2t build staging folders .build-* left out)",
    )
    p.add_argument("-o", "--out", required=True, help="manifest to write (JSONL); reused entries are read from it")
    p.add_argument(
        "--workers", type=int, default=None, help="probing processes (default: min(4, cores); 0 = in this process)"
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="decode every frame and record corrupt frames (slow: a full decode of every file)",
    )
    p.add_argument("--timeout", type=float, default=60.0, help="seconds allowed per file (default 60)")
    p.add_argument("--retry-errors", action="store_true", help="probe files that failed before again")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args) -> int:
    workers = args.workers if args.workers is not None else min(4, os.cpu_count() or 1)
    if workers < 0:
        print("error: --workers must be >= 0", file=sys.stderr)
        return 2
    if not args.timeout > 0:
        print(f"error: --timeout must be > 0 seconds, got {args.timeout}", file=sys.stderr)
        return 2
    try:
        res = index_paths(
            args.paths,
            args.out,
            workers=workers,
            verify=args.verify,
            timeout=args.timeout,
            retry_errors=args.retry_errors,
            progress=not args.quiet,
        )
    except ValueError as e:  # (an OSError, a full disk at a save: sf2t.cli.main says it in one line, or its traceback)
        if not is_bad_input(e):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except IndexInterrupted as e:
        r = e.result
        print(
            f"\ninterrupted: {counted(r.probed, 'file')} probed this run; {args.out} holds "
            f"{counted(len(r.entries), 'line')}. Run the same command again to go on (finished lines are reused)",
            file=sys.stderr,
        )
        return 130
    except KeyboardInterrupt:  # listing the files, reading the earlier manifest, or writing the final one
        again = "to go on" if os.path.isfile(args.out) else "to start"
        print(f"\ninterrupted; {kept_text(args.out)}: run the same command again {again}", file=sys.stderr)
        return 130
    print(res.summary())
    print(f"manifest: {args.out}")
    errors = len(res.entries) - len(res.ok)
    hint = (
        f" ({counted(res.reused, 'entry')} {'was' if res.reused == 1 else 'were'} reused from {args.out}, errors "
        "included: --retry-errors probes them again)"
        if errors and res.reused
        else ""
    )
    if not res.ok:
        print(f"error: no usable video{hint}", file=sys.stderr)
        return 1
    if hint:
        print(f"note:{hint[:-1].replace(' (', ' ', 1)}", file=sys.stderr)
    return 0
