"""The files of a ``sf2t finevidbench build`` (:mod:`sf2t.finevidbench.build`) next to its benchmark: which ones a
build wrote (:func:`_written_files`: ``frames/`` and the synthetic clips ``videos/scene_*``; the videos a benchmark
only points at are not among them), the earlier benchmark a rebuild replaces (:func:`_earlier_bench`; a file there
that is not a benchmark is refused), another benchmark in the same folder whose files a build would overwrite
(:func:`_check_shared_folder`), the earlier build's files a rebuild no longer uses (:func:`_remove_stale`), paths as
the benchmark records them (:func:`_from_bench`) and the ``--out`` folders a failed build made
(:func:`_removed_if_left_empty`). Putting a build in place is :mod:`sf2t.finevidbench.place`.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from sf2t._plural import counted
from sf2t.finevidbench.format import FORMAT
from sf2t.finevidbench.place import remove_files


def _from_bench(path: str, out: Path) -> str:
    """``path`` (absolute, or relative to the working folder, as manifests and labels give it once resolved) as the
    benchmark records it: relative to the benchmark's folder ``out`` when inside it (the folder moves as one), else
    absolute."""
    p = os.path.abspath(path)
    rel = os.path.relpath(p, os.path.abspath(out))
    return p if rel == os.pardir or rel.startswith(os.pardir + os.sep) else rel


def _written_files(bench: dict) -> set[str]:
    """The files a build wrote next to the benchmark (paths relative to its folder): fragment questions' frame images
    and target images under ``frames/``, and synthetic clips ``videos/scene_*`` with their ground truth. Videos the
    benchmark only points at (a manifest's, labels') are not among them."""
    files: set[str] = set()
    for q in bench.get("questions", []):
        v = q.get("video") or {}
        for f in list(v.get("frame_images") or []) + ([q["image"]] if q.get("image") else []):
            if isinstance(f, str) and Path(f).parts[:1] == ("frames",):
                files.add(str(Path(f)))
        p = v.get("path")
        if isinstance(p, str) and Path(p).parent == Path("videos") and Path(p).name.startswith("scene_"):
            files.update({str(Path(p)), str(Path(p).with_suffix(".json"))})
    return files


def _read_bench(path: Path) -> dict | None:
    """A benchmark file's content, or None for a file that is not one (left alone)."""
    try:
        bench = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return bench if isinstance(bench, dict) and bench.get("format") == FORMAT else None


def _earlier_bench(out_file: Path, out_path: str) -> dict | None:
    """The benchmark a build of ``out_file`` (``--out out_path``) replaces: None where there is none (no file, an
    empty one); a ValueError where the file there is not an sf2t benchmark (the build would destroy it)."""
    old = _read_bench(out_file) if out_file.is_file() else None
    if old is None and out_file.is_file() and out_file.stat().st_size:
        raise ValueError(
            f"--out {out_path}: exists and is not an sf2t benchmark (a {FORMAT} JSON file); writing it would destroy "
            "it: pick another path, or remove it first"
        )
    return old


def _check_shared_folder(out_file: Path, frames: bool, clips: bool) -> None:
    """Refuse a build whose frames/ or videos/scene_* would overwrite those of another benchmark in the same folder
    (its questions would then show the new build's pictures)."""
    for other in sorted(out_file.parent.glob("*.json")):
        if other.resolve() == out_file.resolve():
            continue
        bench = _read_bench(other)
        if bench is None:
            continue
        shared = sorted(
            f
            for f in _written_files(bench)
            if (frames and f.startswith("frames" + os.sep)) or (clips and not f.startswith("frames" + os.sep))
        )
        if shared:
            raise ValueError(
                f"{other} is a benchmark in the same folder and this build would overwrite its files (e.g. "
                f"{shared[0]}): a benchmark keeps its frames/ and videos/ next to it, so build into another folder"
            )


def _remove_stale(old: dict | None, new: dict, out: Path) -> None:
    """After a rebuild, remove the files the old build wrote that the new one no longer uses. One that cannot be
    removed is a warning naming it (the new benchmark is in place either way, but no later rebuild knows of it)."""
    if old is None:
        return
    left = [f"{path} ({e.strerror or e})" for path, e in remove_files(out, _written_files(old) - _written_files(new))]
    if left:
        import warnings

        warnings.warn(
            f"{counted(len(left), 'file')} of the earlier build that this one no longer uses could not be removed: "
            f"{'; '.join(left[:3])}{' ...' if len(left) > 3 else ''}; "
            f"remove {'it' if len(left) == 1 else 'them'} by hand",
            stacklevel=2,  # (build()'s placed(): in sf2t, so that the sf2t command shows it)
        )


@contextlib.contextmanager
def _removed_if_left_empty(folder: Path):
    """The folders of ``folder``'s path that do not exist yet (made in the block) are removed again, deepest first,
    where the block fails and leaves them empty; a folder that existed before stays, and so does one the failure left
    files in. A path through ``..`` (``new/../there/sub``) names its folders by where they lead once made: ``there``
    (there before, though ``new/../there`` was not) stays, ``new`` and ``there/sub`` are removed."""
    made = []
    p = folder.absolute()
    while not os.path.lexists(p) and p != p.parent:
        if p.name != ".." and not os.path.lexists(os.path.realpath(p)):
            made.append(p)
        p = p.parent
    try:
        yield
    except BaseException:
        for d in made:  # deepest first
            try:
                d.rmdir()
            except OSError:  # not empty (a staging folder kept: its message says so), or gone
                continue
        raise
