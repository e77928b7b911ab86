"""Which video files a list of paths names: a folder walk (every file with a video extension, sf2t build staging
folders left out), one file named twice kept once, and video lists as users write them (files, folders, ``sf2t index``
manifests: :func:`expand_videos`, :func:`manifest_videos`). Importable from ``sf2t.video.index`` too.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterable, Sequence

from sf2t._plural import counted
from sf2t.video.errors import VideoError
from sf2t.video.manifest import _manifest_path, _unchanged, read_manifest
from sf2t.video.probe import VideoInfo

__all__ = [
    "VIDEO_EXTENSIONS",
    "find_files",
    "is_build_stage",
    "skipped_stages_text",
    "SkippedStagesWarning",
    "expand_videos",
    "expand_video_entries",
    "manifest_videos",
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
