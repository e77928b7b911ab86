"""A build's staging folder ``.build-*`` in the benchmark's folder, and whose it is (:mod:`sf2t.finevidbench.place`
puts what a build made there in place).

A build's staging folder is its own while it runs (:func:`make_stage`: an owner record, ``owner.json``, naming the
benchmark, the process, its host and start, locked while the process lives): a second build of the same benchmark
is refused while the first runs (:func:`check_alone`), and a build removes the staging folders a stopped build left
(:func:`remove_abandoned`: killed while it made its frames and clips, they stayed for good; a ``.build-*`` folder
with no owner record only where its name and what it holds are a build's: any other is the user's, and stays)."""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

__all__ = ["STAGE_PREFIX", "OWNER", "make_stage", "check_alone", "remove_abandoned"]

STAGE_PREFIX = ".build-"
OWNER = "owner.json"
# a staging folder with no owner record (made by an sf2t before the records, or a build stopped between making the
# folder and recording itself, a moment) is taken as abandoned once it has not changed for this long (seconds); only
# one that is a build's by its name and contents (:func:`_is_unowned_build`): any other .build-* folder is the user's
UNOWNED_AFTER_S = 600.0
# the name tempfile.mkdtemp gives a staging folder (make_stage): the prefix, then 8 of "a-z0-9_"
_STAGE_NAME = re.compile(re.escape(STAGE_PREFIX) + r"[a-z0-9_]{8}")
# what a build puts in its staging folder, at its top (make_stage, build, commit, _write_journal)
_STAGE_FILES = frozenset((OWNER, OWNER + ".tmp", "benchmark.tmp", "journal.tmp"))
# in frames/<question id>/: the presented frames and the target image (build._fragment_questions); in videos/: the
# synthetic clips and their ground truth (build: synth.make_clip)
_FRAME_FILE = re.compile(r"\d{2,}\.png|target\.png")
_CLIP_FILE = re.compile(r"scene_\d{4,}\.(mp4|json)")


def make_stage(out: Path, out_file: Path) -> tuple[Path, IO[str]]:
    """A new staging folder ``.build-*`` in ``out`` for a build of ``out_file``, with its owner record (the benchmark's
    name, this process's pid, host and start time), and the record's open file, locked (``flock``) while it is open:
    keep it open for the build, close it at the end. The record is written and locked before it gets its name, so a
    folder never has an owner record that is not locked yet."""
    stage = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=out))
    try:
        tmp = stage / (OWNER + ".tmp")
        f = open(tmp, "w", encoding="utf-8")  # noqa: SIM115 (kept open: its lock says the build runs)
        _lock(f, block=True)
        record = {
            "benchmark": out_file.name,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        f.write(json.dumps(record))
        f.flush()
        os.replace(tmp, stage / OWNER)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return stage, f


def _lock(f: IO[str], block: bool) -> bool | None:
    """Lock ``f`` (exclusive): True, False where another process holds it (``block``: wait), None where this system
    has no ``flock``."""
    try:
        import fcntl
    except ImportError:  # (not Linux / macOS)
        return None
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError:  # a file system with no locks: as no flock
        return None
    return True


def _owner(stage: Path) -> tuple[dict | None, IO[str] | None, bool]:
    """A staging folder's owner record, and whether its build still runs: ``(record, file, alive)``; ``file``: the
    record's file, opened and locked by this process where the build is gone (close it once the folder is removed).
    A folder with no record (or none readable) is alive while it changed in the last ``UNOWNED_AFTER_S`` seconds.
    Where locks cannot be had, a build runs while its pid does on this host, and one of another host always does."""
    try:
        f = open(stage / OWNER, encoding="utf-8")  # noqa: SIM115
    except OSError:
        try:
            return None, None, time.time() - stage.stat().st_mtime < UNOWNED_AFTER_S
        except OSError:  # gone
            return None, None, True
    try:
        record = json.loads(f.read())
        if not isinstance(record, dict):
            record = None
    except (ValueError, UnicodeDecodeError, OSError):
        record = None
    locked = _lock(f, block=False)
    if locked is None:  # no locks here: the pid, on this host
        alive = True
        if record is not None and record.get("host") == socket.gethostname() and isinstance(record.get("pid"), int):
            alive = _pid_alive(record["pid"])
    else:
        alive = not locked
    if alive:
        f.close()
        return record, None, True
    return record, f, False


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` (of this host) runs; True where that cannot be told. No signal is sent on Windows:
    there ``os.kill(pid, 0)`` is ``CTRL_C_EVENT``, a Ctrl-C to the process (and its console group); its exit code is
    asked for instead."""
    if sys.platform == "win32":
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)  # signal 0: checks the process is there, sends nothing
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # (a process of another user: EPERM; a pid out of range: taken as there)
        pass
    return True


def _windows_pid_alive(pid: int) -> bool:
    """:func:`_pid_alive` on Windows: OpenProcess, then GetExitCodeProcess is STILL_ACTIVE; True where the process
    cannot be asked (access denied: it is there; no ctypes, a call that fails)."""
    try:
        import ctypes
        from ctypes import wintypes

        k32 = ctypes.WinDLL("kernel32", use_last_error=True)
        k32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
        k32.OpenProcess.restype = wintypes.HANDLE
        k32.GetExitCodeProcess.argtypes = (wintypes.HANDLE, ctypes.POINTER(wintypes.DWORD))
        k32.GetExitCodeProcess.restype = wintypes.BOOL
        k32.CloseHandle.argtypes = (wintypes.HANDLE,)
        handle = k32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.get_last_error() != 87  # ERROR_INVALID_PARAMETER: no process has that id
        try:
            code = wintypes.DWORD()
            return not k32.GetExitCodeProcess(handle, ctypes.byref(code)) or code.value == 259  # STILL_ACTIVE
        finally:
            k32.CloseHandle(handle)
    except Exception:  # (not Windows after all, no ctypes: as alive, never removed)
        return True


def _is_unowned_build(stage: Path) -> bool:
    """Whether ``stage``, a ``.build-*`` folder with no owner record, is a build's all the same (one made by an sf2t
    before the records, or stopped between making the folder and recording itself): its name is as
    :func:`make_stage` gives it (``tempfile.mkdtemp``), and it holds only what a build puts there (no symlink):
    ``owner.json.tmp``, ``benchmark.tmp``, ``journal.tmp``, ``frames/<question>/NN.png`` and ``target.png``,
    ``videos/scene_NNNN.mp4`` and ``.json``, and ``replaced/frames`` and ``replaced/videos`` as those. Any other is the
    user's."""
    if not _STAGE_NAME.fullmatch(stage.name):
        return False
    try:
        for top in stage.iterdir():
            if top.name in _STAGE_FILES and top.is_file() and not top.is_symlink():
                continue
            if top.is_symlink() or not top.is_dir():
                return False
            if top.name == "replaced":  # an earlier build's frames and clips, moved aside: as frames/ and videos/
                if not all(d.name in ("frames", "videos") and _holds_only(d) for d in top.iterdir()):
                    return False
            elif top.name not in ("frames", "videos") or not _holds_only(top):
                return False
    except OSError:  # (gone, or not readable: not taken for a build's)
        return False
    return True


def _holds_only(folder: Path) -> bool:
    """Whether ``folder``, a build's ``frames`` (or ``videos``), holds only what a build writes there: folders, one
    per question, of frames (``NN.png``, ``target.png``) (or the synthetic clips, with their ground truth); no
    symlink. An OSError where it cannot be read."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    for root, dirs, files in os.walk(folder, onerror=_raise):
        if any(os.path.islink(os.path.join(root, n)) for n in dirs + files):
            return False
        if folder.name == "frames":
            top = Path(root) == folder
            ok = not (files if top else dirs) and all(_FRAME_FILE.fullmatch(f) for f in files)
        else:
            ok = not dirs and all(_CLIP_FILE.fullmatch(f) for f in files)
        if not ok:
            return False
    return True


def _raise(e: OSError) -> None:
    raise e


def _who(record: dict | None) -> str:
    if not record:
        return "a process"
    return f"pid {record.get('pid')} on {record.get('host')}, started {record.get('started')}"


def check_alone(stage: Path, out_file: Path) -> None:
    """A ValueError where another build of the benchmark ``out_file`` runs now (a live staging folder of it next to
    ``stage``, this build's own, made first: two builds started at once both see the other, and both stop): they
    would put their files in place over each other, and one would take the other's journal for a stopped build."""
    for other in sorted(out_file.parent.glob(STAGE_PREFIX + "*")):
        if other == stage or not other.is_dir():
            continue
        record, f, alive = _owner(other)
        if f is not None:
            f.close()
        if alive and record is not None and record.get("benchmark") == out_file.name:
            raise ValueError(
                f"--out {out_file}: another build of it is running ({_who(record)}; its staging folder is {other}): "
                "two builds of one benchmark at once would mix their files: wait for it to end (or stop it), then "
                "run this one again"
            )


def remove_abandoned(out: Path, own: Path) -> tuple[list[str], list[str]]:
    """Remove the staging folders ``.build-*`` in ``out`` whose build is gone (killed while it made its frames and
    clips: a Ctrl-C or an error removes its own), except ``own`` (this build's), one a journal names (the stopped
    build's earlier files are in it: its :func:`recover` needs them), one holding files moved aside and one with no
    owner record that is not a build's by its name and contents (:func:`_is_unowned_build`: the user's). Returns
    ``(removed, kept)``: each as ``"name (size)"`` / ``"name: why"``, for the build to say."""
    named = set()
    for j in out.glob(".*.journal"):
        try:
            named.add(str(json.loads(j.read_text(encoding="utf-8"))["stage"]))
        except (OSError, ValueError, UnicodeDecodeError, KeyError, TypeError):
            pass
    removed, kept = [], []
    for stage in sorted(out.glob(STAGE_PREFIX + "*")):
        if stage == own or not stage.is_dir() or stage.is_symlink():
            continue
        if stage.name in named:
            kept.append(f"{stage.name}: a stopped build's journal names it (the same build, run again, recovers it)")
            continue
        if not (stage / OWNER).is_file() and not _is_unowned_build(stage):
            kept.append(
                f"{stage.name}: no build's after all: it has no owner record ({OWNER}), and its name or what it "
                "holds is not what a build leaves: taken for yours, not removed (rename it to stop this line)"
            )
            continue
        record, f, alive = _owner(stage)
        try:
            if alive:  # (a build running now; or one with no owner record that changed lately: made a moment ago)
                continue
            if any(p.is_file() for p in (stage / "replaced").rglob("*")):
                kept.append(f"{stage.name}: it holds an earlier build's files, in its replaced/: move them back")
                continue
            size = 0
            for root, _, files in os.walk(stage):
                for name in files:
                    try:
                        size += os.lstat(os.path.join(root, name)).st_size
                    except OSError:
                        pass
            shutil.rmtree(stage, ignore_errors=True)
            if os.path.lexists(stage):
                kept.append(f"{stage.name}: could not be removed completely: remove it by hand")
            else:
                removed.append(f"{stage.name} ({_size(size)})")
        finally:
            if f is not None:
                f.close()
    return removed, kept


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} TB"  # (not reached)
