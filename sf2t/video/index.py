"""``sf2t index``: walk files and folders, probe every video, write a JSONL manifest.

One line per file: the probe's fields (``sf2t.video.probe.VideoInfo``) with ``"status": "ok"``, or
``"status": "error"`` with a human-readable ``"error"`` and its ``"error_kind"``. Re-running on the same
paths reuses the lines of files whose size and mtime did not change (errors included, unless
``--retry-errors``). Probing runs in worker processes, one file at a time each, so a file that hangs a decoder
is killed at the per-file time limit (``timeout``) and recorded as an error; the rest go on.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from sf2t._oserror import is_bad_input
from sf2t._plural import counted
from sf2t.video.errors import VideoError
from sf2t.video.probe import VideoInfo, probe

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

# What a folder walk picks up. Files named explicitly are always probed, whatever their extension.
VIDEO_EXTENSIONS = frozenset(
    (
        ".mp4 .m4v .mov .mkv .webm .avi .mpg .mpeg .vob .m2v .ts .mts .m2ts .flv .f4v .wmv .asf .3gp .3g2 .ogv .dv "
        ".gif .y4m .mxf .hevc .h264"
    ).split()
)


def is_build_stage(folder: Path) -> bool:
    """Whether ``folder`` is an sf2t build's staging folder (:func:`sf2t.finevidbench.place.make_stage`: ``.build-*``
    holding its owner record, ``owner.json``): a FineVidBench build's half-written clips, or an earlier build's clips
    moved aside in its ``replaced/``; a walk leaves them out. A ``.build-*`` folder without the record is the user's."""
    from sf2t.finevidbench.place import OWNER, STAGE_PREFIX

    return folder.name.startswith(STAGE_PREFIX) and (folder / OWNER).is_file()


def _stage_above(root: Path, file: Path, known: dict[Path, bool]) -> Path | None:
    """The first sf2t build staging folder (:func:`is_build_stage`) between ``root`` and ``file`` (None: none); only
    a folder whose name starts with a dot is looked at, each once (``known``: those looked at, and what they are)."""
    rel = file.relative_to(root).parts[:-1]  # the folders between root and file (root itself, if given, is walked)
    for i, name in enumerate(rel):
        if name.startswith("."):
            folder = root.joinpath(*rel[: i + 1])
            if folder not in known:
                known[folder] = is_build_stage(folder)
            if known[folder]:
                return folder
    return None


def skipped_stages_text(skipped: Sequence[str]) -> str:
    """The line that says a walk left out sf2t build staging folders (``skipped``, from :func:`find_files`): ``sf2t
    index``'s summary, and the warning of ``sf2t train``, ``sf2t throughput`` and
    :meth:`sf2t.train.data.VideoPool.from_paths` (``sf2t demo``)."""
    return (
        f"skipped {counted(len(skipped), 'sf2t build staging folder')} (.build-* with an owner.json: a FineVidBench "
        f"build's unfinished or replaced clips), e.g. {skipped[0]}"
    )


class SkippedStagesWarning(UserWarning):
    """A walk of a video list left out sf2t build staging folders (:func:`skipped_stages_text`): warned by
    :meth:`sf2t.train.data.VideoPool.from_paths`. ``sf2t train`` says it before the model loads and ignores this one
    (once is enough)."""


def _left_out(skipped: Sequence[str]) -> str:
    """What a "no video files" error adds when the walk left out sf2t build staging folders (``skipped``): "" if
    none."""
    return f"; left out {counted(len(skipped), 'sf2t build staging folder')}, e.g. {skipped[0]}" if skipped else ""


def find_files(paths: Iterable[str | os.PathLike], skipped: list[str] | None = None) -> list[str]:
    """Files to index: each file given, and under each folder every file with a video extension (sorted), except
    those inside an sf2t build's staging folder (:func:`is_build_stage`; ``skipped``, where given, gets each such
    folder that held any). A path that does not exist is kept, so it becomes a ``missing`` entry rather than
    vanishing."""
    out: list[str] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            # broken links, link loops and what is no regular file (a FIFO named clip.mp4) are kept too: they become
            # error lines, not files silently left out
            found = [q for q in p.rglob("*") if q.suffix.lower() in VIDEO_EXTENSIONS and not q.is_dir()]
            stages: dict[Path, bool] = {}  # each folder below p named like a staging folder: is it one
            said = set(skipped or ())  # (skipped, as a set: each file's stage looked up in it)
            kept = []
            for q in found:
                stage = _stage_above(p, q, stages)
                if stage is None:
                    kept.append(q)
                elif skipped is not None and str(stage) not in said:
                    said.add(str(stage))
                    skipped.append(str(stage))
            out.extend(str(q) for q in sorted(kept))
        else:
            out.append(str(p))
    return _first_of_each_file(out, lambda p: p)


def _first_of_each_file(items: list, path_of) -> list:
    """``items`` without those naming a file an earlier one names (``path_of``: an item's path): one file under
    several spellings (./a, /abs/a, a link to its folder) counts once, the first kept."""
    seen: set[str] = set()
    kept = []
    for item in items:
        key = _same_file_key(path_of(item))  # (a realpath: once per item)
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept


def _same_file_key(path: str) -> str:
    if os.path.exists(path):
        return os.path.realpath(path)
    head, name = os.path.split(os.path.abspath(path))  # a broken link or a missing file: its folder resolved
    return os.path.join(os.path.realpath(head), name)


def expand_videos(paths: Iterable[str | os.PathLike], skipped: list[str] | None = None) -> list[str]:
    """A video list as users write it, as files: a folder gives every file with a video extension under it (sorted;
    a folder with none is an error naming it; an sf2t build's staging folder inside it is left out, as
    :func:`find_files` does, and added to ``skipped`` where given), a ``.jsonl`` file is an ``sf2t index`` manifest
    and gives its ok lines' paths (a relative path that does not exist from here is taken relative to the manifest's
    folder), anything else is a file path as given (a missing or broken file is the reader's to report). Duplicates
    are dropped, the first kept."""
    return [p for p, _ in expand_video_entries(paths, skipped)]


def expand_video_entries(
    paths: Iterable[str | os.PathLike], skipped: list[str] | None = None
) -> list[tuple[str, VideoInfo | None]]:
    """:func:`expand_videos` with what a manifest already knows: ``(path, info)``, where ``info`` is the manifest
    line's metadata when the file's size and mtime still match it (so it need not be probed again), else None.
    ``skipped``: as :func:`expand_videos`'s."""
    out: list[tuple[str, VideoInfo | None]] = []
    for p in paths:
        q = Path(p)
        if q.is_dir():
            stages: list[str] = []
            found = find_files([q], stages)
            if not found:
                raise ValueError(
                    f"{p}: a folder with no video files (looked for {', '.join(sorted(VIDEO_EXTENSIONS))} under "
                    f"it{_left_out(stages)})"
                )
            if skipped is not None:
                skipped.extend(s for s in stages if s not in skipped)
            out.extend((f, None) for f in found)
        elif q.suffix.lower() == ".jsonl" and q.is_file():
            for e in read_manifest(q):
                if e["status"] == "ok":
                    path = _manifest_path(e, q)
                    e = {**e, "path": path}
                    out.append((path, VideoInfo.from_dict(e) if _unchanged(e) else None))
        else:
            out.append((str(p), None))
    return _first_of_each_file(out, lambda e: e[0])


def _manifest_path(e: dict, manifest: Path) -> str:
    """Where a manifest line's file is from here. ``sf2t index`` records paths as given on its command line, so a
    relative one may start from the working folder or from the manifest's: the one whose size and time match the
    line wins (another file of the same name elsewhere is not taken for it); else the first that exists, the working
    folder's first; else the manifest folder's (named missing by whoever reads it)."""
    v = Path(e["path"])
    if v.is_absolute():
        return e["path"]
    found = [str(c) for c in (v, manifest.parent / v) if c.exists()]
    same = [c for c in found if _unchanged({**e, "path": c})]
    return (same or found or [str(manifest.parent / v)])[0]


def manifest_videos(manifest: str | os.PathLike, *, decoder: str = "auto", warn=None) -> list[VideoInfo]:
    """The usable videos of an ``sf2t index`` manifest, as readers need them: relative paths taken from the manifest's
    folder when they do not exist from here, and a file changed since the index (size or mtime) probed again, so a
    stale frame count never reaches a decoder; one that no longer reads is left out and said through ``warn``
    (default: a line on stderr). Errors name an empty manifest or one with no usable video."""
    entries = read_manifest(manifest)
    if not entries:
        raise ValueError(f"{manifest}: the manifest lists no video (make one with sf2t index VIDEOS --out {manifest})")
    if warn is None:

        def warn(msg: str) -> None:
            print(f"warning: {msg}", file=sys.stderr)

    out: list[VideoInfo] = []
    for path, info in expand_video_entries([manifest]):
        if info is None:
            from sf2t.video.decode import probe as probe_with

            try:
                info = probe_with(path, decoder=decoder)
            except VideoError as e:
                if e.kind == "missing":
                    warn(
                        f"{path}: not found (its line's path, from here or from the manifest's folder: sf2t index "
                        "records paths as given on its command line; index with absolute paths, or run from the "
                        "folder the index ran in); left out"
                    )
                else:
                    warn(f"{path}: changed since the index and no longer usable ({e.reason}); left out")
                continue
        out.append(info)
    if not out:
        raise ValueError(f"{manifest}: no usable video (every entry has status 'error'; see sf2t index's summary)")
    return out


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


def iter_jsonl(path: str | os.PathLike):
    """(line number, value) of each non-blank line of a JSON-lines file; a line that is not JSON is an error
    naming it, and so is a missing file, a folder or a file that is not text."""
    from sf2t._files import read_text

    text = read_text(path, str(path), "a JSON-lines file")
    first = True
    for i, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            yield i, json.loads(line)
        except json.JSONDecodeError as e:
            if first and _one_json_document(text):  # a benchmark or a config given for a manifest: say so
                raise ValueError(
                    f"{path}: one JSON document over several lines (a benchmark? a config?), not a JSON-lines file "
                    "(one JSON value on each line)"
                ) from None
            raise ValueError(f"{path}:{i}: not a JSON line ({e.msg})") from e
        first = False


def _one_json_document(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# what an ok line must carry for the readers, and how each is checked
_OK_FIELDS = {
    "num_frames": ("a positive integer (below 2**40)", lambda v: _is_int(v) and 1 <= v < 2**40),
    "width": ("a positive integer", lambda v: _is_int(v) and v >= 1),
    "height": ("a positive integer", lambda v: _is_int(v) and v >= 1),
    "fps": ("a positive number", lambda v: _is_number(v) and v > 0),
    "duration": ("a non-negative number", lambda v: _is_number(v) and v >= 0),
    "codec": ("a string", lambda v: isinstance(v, str)),
}
# fields an ok line may leave out (VideoInfo's defaults), checked when present
_OPTIONAL_FIELDS = {
    "container": ("a string", lambda v: isinstance(v, str)),
    "pix_fmt": ("a string", lambda v: isinstance(v, str)),
    "bit_depth": ("a positive integer", lambda v: _is_int(v) and v >= 1),
    "rotation": ("0, 90, 180 or 270", lambda v: _is_int(v) and v in (0, 90, 180, 270)),
    "vfr": ("true or false", lambda v: isinstance(v, bool)),
    "keyframe_interval": ("a positive number or null", lambda v: v is None or (_is_number(v) and v > 0)),
    "start": ("a number", lambda v: _is_number(v)),
    "size": ("a non-negative integer", lambda v: _is_int(v) and v >= 0),
    "mtime_ns": ("an integer", lambda v: _is_int(v)),
    "corrupt_frames": (
        "a list of frame indices",
        lambda v: isinstance(v, list) and all(_is_int(x) and x >= 0 for x in v),
    ),
    "verified": ("true or false", lambda v: isinstance(v, bool)),
}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """Entries of a manifest; a malformed line is an error naming the line (and, for an ok line, the fields it lacks
    or has wrong: a hand-written or foreign line must carry what ``sf2t index`` writes)."""
    out = []
    for i, d in iter_jsonl(path):
        if not isinstance(d, dict) or "path" not in d or "status" not in d:
            raise ValueError(f"{path}:{i}: a manifest line needs 'path' and 'status'")
        if not isinstance(d["path"], str) or not d["path"]:
            raise ValueError(f"{path}:{i}: 'path' must be a non-empty string, got {d['path']!r}")
        if d["status"] == "ok":
            missing = [k for k in _OK_FIELDS if k not in d]
            checks = {**_OK_FIELDS, **_OPTIONAL_FIELDS}.items()
            wrong = [f"{k} must be {what}, got {d[k]!r}" for k, (what, ok) in checks if k in d and not ok(d[k])]
            if missing or wrong:
                said = ([f"missing {', '.join(missing)}"] if missing else []) + wrong
                raise ValueError(
                    f"{path}:{i}: {d['path']}: an ok line {'; '.join(said)} (sf2t index VIDEOS --out MANIFEST writes "
                    "complete lines)"
                )
        out.append(d)
    return out


def usable(entries: Iterable[dict]) -> list[VideoInfo]:
    """``VideoInfo`` of every ok entry."""
    return [VideoInfo.from_dict(e) for e in entries if e.get("status") == "ok"]


def _unchanged(e: dict) -> bool:
    try:
        st = os.stat(e["path"])
    except OSError:
        return e.get("error_kind") == "missing"
    return e.get("size") == st.st_size and e.get("mtime_ns") == st.st_mtime_ns


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


def _looks_like_jsonl(path: Path) -> bool:
    """Whether an existing file may be a manifest: empty (or blank), or UTF-8 text whose first non-blank line is a
    JSON object with a ``path``, as every manifest line is: what index may overwrite. A pretty-printed JSON file (a
    benchmark, a clip's ground truth, a config) opens with a lone ``{`` and was overwritten."""
    try:
        with open(path, "rb") as fh:
            for raw in iter(lambda: fh.readline(1 << 20), b""):
                line = raw.decode("utf-8", errors="strict").strip()
                if line:
                    first = json.loads(line)
                    return isinstance(first, dict) and "path" in first
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return True


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
