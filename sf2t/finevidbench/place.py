"""Putting a finished build in place over an earlier one, all or nothing (:func:`commit`), and what happens if a
``kill -9`` (any end of the process that runs no cleanup) stops it half way (:func:`recover`).

A build is made in a staging folder ``.build-*`` in the benchmark's folder; :func:`commit` then renames its frames
and clips over their namesakes (moved aside into ``stage/replaced``) and the benchmark file last. An error or Ctrl-C
is undone in the same process. A kill is not: the folder would mix two builds (the earlier benchmark file with some of
the new frames). So before the first rename :func:`commit` writes a journal, ``.<benchmark file name>.journal`` next to
the benchmark file (atomically: a temporary file renamed), listing the renames, and removes it after the last one.
A journal left behind means a build of that benchmark was killed while it was put in place: :func:`recover` rolls
it back (the earlier benchmark and its files as they were) or, where the new benchmark file had been renamed in
already, completes it; the next build does so first, and :func:`sf2t.finevidbench.format.load` (``sf2t eval``,
``export``) refuses the benchmark with the way out (:func:`check_not_interrupted`).

A build's staging folder, whose it is, and the folders stopped builds left (:func:`make_stage`, :func:`check_alone`,
:func:`remove_abandoned`) are :mod:`sf2t.finevidbench.staging`; each of its names is importable from here too.

A benchmark file that is a symlink is its target (:func:`real_file`): the build, its staging folder and its journal
go to the target's folder. Nothing here writes, removes or replaces a file through a folder of the benchmark's that
is a symlink leading outside it (:func:`commit` refuses the build, :func:`recover` the journal, :func:`remove_files`
leaves the file)."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path
from typing import Callable, Collection

from sf2t.finevidbench.staging import (  # noqa: F401  (re-exported: the module's names before the split)
    _CLIP_FILE,
    _FRAME_FILE,
    _STAGE_FILES,
    _STAGE_NAME,
    OWNER,
    STAGE_PREFIX,
    UNOWNED_AFTER_S,
    _holds_only,
    _is_unowned_build,
    _lock,
    _owner,
    _pid_alive,
    _raise,
    _size,
    _who,
    _windows_pid_alive,
    check_alone,
    make_stage,
    remove_abandoned,
)

__all__ = [
    "NotPlaced",
    "commit",
    "recover",
    "journal_path",
    "check_not_interrupted",
    "make_stage",
    "check_alone",
    "remove_abandoned",
    "is_placed",
    "remove_files",
    "real_file",
]


class NotPlaced(ValueError):
    """A build that was made but could not be put in place (a full disk, a permission at the last renames): its
    message says what the folder holds now. ``sf2t finevidbench build`` exits 1 on it, as on any file error."""


def is_placed(stage: Path, out_file: Path, text: str) -> bool:
    """Whether :func:`commit` of ``text`` from ``stage`` got to its last rename: the benchmark file has the new text,
    and the staged one is no longer in the stage (an interrupt stops the undo too once it did)."""
    return _renamed_in(stage, out_file, _digest(text))


def _renamed_in(stage: Path, out_file: Path, digest: str) -> bool:
    """Whether the benchmark file staged in ``stage`` was renamed over ``out_file``: it is no longer in the stage,
    and ``out_file`` has its text (``digest``: :func:`_digest`; an earlier build of the same text is not it)."""
    try:
        return not os.path.lexists(stage / "benchmark.tmp") and _digest(out_file.read_text(encoding="utf-8")) == digest
    except (OSError, UnicodeDecodeError):
        return False


def real_file(out_file: str | os.PathLike) -> Path:
    """The benchmark file ``out_file`` names: its target where it is a symlink (followed to the end; the target need
    not exist), else ``out_file`` itself. A build writes through a symlink, as most tools do: the build, its staging
    folder and its journal go to the target's folder, and the link stays, pointing at the new build (a build put its
    journal next to the link and renamed its benchmark file over the link, leaving the target the earlier build)."""
    out_file = Path(out_file)
    return Path(os.path.realpath(out_file)) if out_file.is_symlink() else out_file


def journal_path(out_file: str | os.PathLike) -> Path:
    """Where :func:`commit` keeps the journal of its renames of the benchmark ``out_file``: next to it (next to its
    target where it is a symlink: :func:`real_file`), hidden."""
    out_file = real_file(out_file)
    return out_file.with_name(f".{out_file.name}.journal")


def check_not_interrupted(out_file: str | os.PathLike, label: str) -> None:
    """A ValueError ``"{label}: ..."`` when a build of the benchmark ``out_file`` was killed while it was put in place
    (its journal is left: the folder may mix two builds), saying how to recover. ``out_file`` a symlink (``--bench``
    from another folder): the folder and the path it names are its target's, where the journal is."""
    out_file = Path(out_file).resolve()
    j = journal_path(out_file)
    if os.path.lexists(j):
        # the path as a Python literal (repr): one with a quote in it broke the hint's code
        code = f"from sf2t.finevidbench.place import recover; recover({str(out_file)!r})"
        raise ValueError(
            f"{label}: a build of it was stopped while its files were put in place ({j} is left), so "
            f"{out_file.parent} may mix two builds: run the same `sf2t finevidbench build` again (it first "
            f"rolls the stopped build back, or completes it if it got to its last rename), or do only that with "
            f"`python -c {_shell_quoted(code)}`"
        )


def _shell_quoted(text: str) -> str:
    """``text`` as one shell word: in double quotes where none of the characters a shell reads inside them is in it
    (easier to read), else as :func:`shlex.quote` gives it."""
    import shlex

    return f'"{text}"' if not set(text) & set('"$`\\!') else shlex.quote(text)


def commit(
    stage: Path,
    out_file: Path,
    text: str,
    used: set[str],
    stale: Collection[str] = (),
    then: Callable[[], None] | None = None,
) -> None:
    """Put a build made in ``stage`` (a folder in the benchmark's folder) in place, all or nothing. The benchmark's
    ``text`` goes to a temporary file in ``stage`` first (a full disk fails there, before the folder changed); then
    each frame and clip made (the synthetic clips in ``used``) replaces its namesake, which is moved aside into
    ``stage / "replaced"``; the benchmark file is renamed over ``out_file`` last. Renames only, so a failure at any
    step is undone by moving back what the steps before moved: the folder then holds the earlier benchmark with its
    files, or, fresh, none of this build's. The failure is a :class:`NotPlaced` saying what was kept. The renames
    are listed in a journal first (:func:`journal_path`), removed once they are done or undone: a kill leaves it,
    and :func:`recover` undoes them. ``stale``: the earlier build's files (relative to the folder) this one no longer
    uses, which ``then`` (run once the build is in place, before the journal is removed) removes: the journal lists
    them, so that :func:`recover` removes them too when it completes the build. ``out_file`` a symlink: its target
    (:func:`real_file`), in the folder of ``stage``; a file to move in whose folder there leads outside it (a symlink
    to another folder) is a ValueError before anything is moved."""
    out_file = real_file(out_file)
    out = out_file.parent
    had = os.path.lexists(out_file)
    tmp = stage / "benchmark.tmp"
    journal = journal_path(out_file)
    # the plan, made before any rename (the journal lists it): the files to move in, (path relative to the folder,
    # whether a namesake is there to move aside), and the folders to make in the benchmark's folder, in order
    moves: list[tuple[str, bool]] = []
    to_make: list[Path] = []
    # folders known to be there (found or made), each looked for once: not every ancestor of each of a benchmark's
    # tens of thousands of frames (20,000 frames: 440,000 lstat calls, 1 s of the move's 3 s here)
    there: set[Path] = {out}
    top = os.path.realpath(out)
    new_dirs: set[Path] = set()  # folders to make: nothing is in them yet
    done: list[tuple[Path, Path | None]] = []  # (file put in place, the one it replaced, moved aside: None if none)
    made: list[Path] = []  # folders made in the benchmark's folder
    try:
        tmp.write_text(text, encoding="utf-8")
        for new in sorted(p for d in ("frames", "videos") for p in (stage / d).rglob("*") if p.is_file()):
            rel = new.relative_to(stage)
            if rel.parts[0] == "videos" and str(rel) not in used:  # a synthetic clip no question kept: left out
                continue
            dest = out / rel
            if dest.parent not in there:
                missing, d = [], dest.parent
                while d not in there and not os.path.lexists(d):
                    missing.append(d)
                    d = d.parent
                elsewhere = d not in there and _outside(top, d)
                if elsewhere:  # (a folder that is a symlink): the file would go there, and a rollback delete it there
                    raise ValueError(
                        f"{out / rel}: its folder {d} leads outside {out}, to {elsewhere} (a symlink): this build "
                        f"would write there; make {d} a real folder (or remove it), then run the same command again"
                    )
                to_make += reversed(missing)
                new_dirs.update(missing)
                there.update(missing)  # (made below, before any file moves)
                there.add(dest.parent)
            moves.append((str(rel), dest.parent not in new_dirs and os.path.lexists(dest)))
        _write_journal(stage, journal, moves, to_make, text, stale)
        for d in to_make:
            d.mkdir()
            made.append(d)
        for rel, aside_needed in moves:
            new, dest = stage / rel, out / rel
            aside = stage / "replaced" / rel if aside_needed else None
            if aside is not None and aside.parent not in there:
                aside.parent.mkdir(parents=True, exist_ok=True)
                there.add(aside.parent)
            done.append((dest, aside))  # before the renames: the undo checks which of them happened
            if aside is not None:
                os.replace(dest, aside)
            os.replace(new, dest)
        os.replace(tmp, out_file)  # the build is in place: nothing after this is undone
    except BaseException as e:
        stuck = []
        for dest, aside in reversed(done):
            try:
                if aside is None:
                    dest.unlink(missing_ok=True)
                elif os.path.lexists(aside):
                    os.replace(aside, dest)
            except OSError as u:
                stuck.append(f"{dest} ({u.strerror or u})")
        for d in reversed(made):
            try:
                d.rmdir()
            except OSError:  # not empty: a file that could not be moved back
                pass
        if not stuck:  # (else it stays: the next build finishes the undo)
            try:
                journal.unlink(missing_ok=True)
            except OSError:
                pass
        if not isinstance(e, OSError):  # Ctrl-C: the command says it
            raise
        why = f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "")
        if stuck:
            kept = (
                f"moving the earlier files back failed too for {len(stuck)} ({'; '.join(stuck[:3])}): they are in "
                f"{stage / 'replaced'}; {out} now mixes two builds: move them back, or run the same command again"
            )
        elif had:
            kept = f"{out} was left as it was ({out_file.name} and the files it uses unchanged)"
        else:
            kept = f"nothing of it was left in {out}"
        raise NotPlaced(
            f"{out_file}: the benchmark could not be put in place ({why}); {kept}. Fix that (free space? write "
            "permission?) and run the same command again"
        ) from None
    try:
        if then is not None:
            then()
    finally:
        try:  # (a kill before it: recover() finds the new benchmark file in place, and completes)
            journal.unlink()
        except OSError:  # left: the next build completes it; eval refuses the benchmark until then
            pass


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _write_journal(
    stage: Path,
    journal: Path,
    moves: list[tuple[str, bool]],
    to_make: list[Path],
    text: str,
    stale: Collection[str] = (),
) -> None:
    """The journal, written whole or not at all: a temporary file in ``stage`` renamed next to the benchmark. It names
    the new benchmark by its digest: the benchmark file that has it was renamed in, after every other file."""
    out = journal.parent
    plan = {
        "stage": stage.name,
        "benchmark_sha256": _digest(text),
        "moves": [[rel, aside] for rel, aside in moves],
        "made": [str(d.relative_to(out)) for d in to_make],
        "stale": sorted(stale),
    }
    tmp = stage / "journal.tmp"
    tmp.write_text(json.dumps(plan), encoding="utf-8")
    os.replace(tmp, journal)


def _in_folder(rel) -> bool:
    """Whether ``rel`` (a path a journal names) is a path inside the benchmark's folder: a non-empty relative one
    with no ``..``."""
    if not isinstance(rel, str):
        return False
    p = Path(rel)
    return bool(p.parts) and not p.anchor and os.pardir not in p.parts


def _outside(top: str, folder: Path) -> str | None:
    """Where ``folder`` (a folder in the benchmark's folder, whose real path is ``top``) really is, where a symlink on
    its way leads outside ``top`` (a ``frames`` that links to another folder); else None."""
    real = os.path.realpath(folder)
    return None if real == top or real.startswith(top.rstrip(os.sep) + os.sep) else real


def remove_files(out: Path, files: Collection[str]) -> list[tuple[Path, OSError]]:
    """Remove ``files`` (paths relative to the folder ``out``; one gone already is fine), then their folders left
    empty, deepest first. Returns the files that could not be removed, with the error: the caller says them or not.
    A file whose folder leads outside ``out`` (a symlink to another folder) is not removed (its error says so): it
    is not the build's, and neither is its folder."""
    failed = []
    top = os.path.realpath(out)
    away: dict[Path, str | None] = {}  # each folder looked up once
    for f in sorted(files):
        parent = (out / f).parent
        if parent not in away:
            away[parent] = _outside(top, parent)
        if away[parent]:
            why = f"not removed: its folder leads outside {out}, to {away[parent]} (a symlink)"
            failed.append((out / f, OSError(errno.EXDEV, why, str(out / f))))
            continue
        try:
            (out / f).unlink()
        except FileNotFoundError:  # gone already
            pass
        except OSError as e:
            failed.append((out / f, e))
    for d in sorted(away, key=lambda d: -len(d.parts)):
        if away[d]:
            continue
        try:
            d.rmdir()  # only when empty
        except OSError:
            pass
    return failed


def recover(out_file: str | os.PathLike) -> str | None:
    """Finish what a build of the benchmark ``out_file`` killed while :func:`commit` put it in place left (its
    journal): roll it back, so that the folder holds the earlier benchmark with its files (or, fresh, none of the
    build's), or, where the benchmark file had been renamed already (the kill came after the last rename), keep the
    new build. Each step checks what is there, so a recovery stopped half way can run again. Returns what it did
    (None: there was nothing to do); a ValueError names a journal it cannot read or a file it cannot move back."""
    out_file = real_file(out_file)  # (a symlink: its target's folder, where the build went)
    out = out_file.parent
    journal = journal_path(out_file)
    if not os.path.lexists(journal):
        return None
    unread: ValueError | OSError | None = None  # (said below, where no build is putting its files in place now)
    try:
        plan = json.loads(journal.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        plan, unread = None, e
    try:
        running = plan["stage"]
        record, f, alive = _owner(out / str(running)) if os.path.isdir(out / str(running)) else (None, None, False)
        if f is not None:
            f.close()
    except (OSError, ValueError, UnicodeDecodeError, KeyError, TypeError):  # (said below)
        record, alive = None, False
    if alive and record is not None:  # not stopped: being put in place now
        raise ValueError(
            f"{journal}: a build of {out_file} is putting its files in place now ({_who(record)}): wait for it to end"
        )
    fix = f"check {out} by hand (the earlier files are in its .build-*/replaced), then remove {journal}"
    try:
        if unread is not None:
            raise unread
        stage = out / plan["stage"]
        moves = [(str(rel), bool(aside)) for rel, aside in plan["moves"]]
        to_make = [out / d for d in plan["made"]]
        digest = str(plan["benchmark_sha256"])
        stale = [str(f) for f in plan.get("stale", [])]
        # every path it names is one in the benchmark's folder: a rollback unlinks them (a move "../x" unlinked x
        # next to the folder), a completion removes them
        for kind, paths in (("move", [rel for rel, _ in moves]), ("folder", plan["made"]), ("stale file", stale)):
            outside = [str(f) for f in paths if not _in_folder(f)]
            if outside:
                raise ValueError(f"a {kind} {outside[0]!r} outside the benchmark's folder")
        if (
            Path(plan["stage"]).name != plan["stage"]
            or not plan["stage"].startswith(STAGE_PREFIX)
            or stage.is_symlink()
        ):
            raise ValueError(f"stage {plan['stage']!r} is no staging folder of the benchmark's folder")
    except (OSError, ValueError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{journal}: the journal of an interrupted build cannot be read ({e}): {fix}") from None
    # and none leads outside it through a symlinked folder (frames/ a link to another folder): a rollback unlinks
    # and replaces files there, removes folders there (the stale files of a completion: remove_files skips them)
    top = os.path.realpath(out)
    for kind, paths in (("file", [out / rel for rel, _ in moves]), ("folder", to_make)):
        for parent in sorted({p.parent for p in paths}):
            elsewhere = _outside(top, parent)
            if elsewhere:
                raise ValueError(
                    f"{journal}: a {kind} of the interrupted build, in {parent}, leads outside {out}, to {elsewhere} "
                    f"(a symlink): recovering would change files there, so nothing was done: {fix}"
                )
    # the new benchmark file renamed in: every other file was in place before it: the earlier build's files it no
    # longer uses go
    if _renamed_in(stage, out_file, digest):
        what = "completed"
        remove_files(out, stale)  # (one left is a leftover, not a mix: the new benchmark does not use it)
    else:
        what = "rolled back"
        try:
            for rel, aside_needed in reversed(moves):
                dest, aside = out / rel, stage / "replaced" / rel
                if aside_needed:
                    if os.path.lexists(aside):  # moved aside: back (over the new file, if that came in)
                        os.replace(aside, dest)
                elif not os.path.lexists(stage / rel):  # moved in, with nothing there before: removed
                    dest.unlink(missing_ok=True)
        except OSError as e:
            raise ValueError(
                f"{journal}: rolling back the interrupted build failed ({e.strerror or e}: {e.filename}): fix that and "
                f"run it again, or {fix}"
            ) from None
        for d in reversed(to_make):
            try:
                d.rmdir()
            except OSError:  # gone, or not empty (files put there since)
                pass
    shutil.rmtree(stage, ignore_errors=True)
    journal.unlink(missing_ok=True)
    return what
