"""Reading and writing user-named files, with errors that name the file and the problem."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable


def read_text(path: str | os.PathLike, label: str, kind: str) -> str:
    """The UTF-8 text of ``path``. A ValueError ``"{label}: ..."`` for a missing file, a folder, a file that is not
    text (``kind``, e.g. ``"a JSON-lines file"``, is what was expected) or one that cannot be read."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        raise ValueError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{label}: is a folder, not {kind}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{label}: not a text file ({kind} expected)") from None
    except OSError as e:
        raise ValueError(f"{label}: cannot read it: {e.strerror or e}") from None


def json_lines_kind(text: str) -> str | None:
    """What a text that did not parse as one JSON (or YAML) document is, where it is JSON lines (two or more lines,
    each a JSON value): ``"manifest"`` (an ``sf2t index`` manifest: objects with ``path`` and ``status``),
    ``"answers"`` (an ``sf2t eval`` answers file) or ``"lines"`` (other JSON lines); None for anything else. For the
    messages of the readers of user-named JSON files: json's own ("Extra data: line 2 column 1") did not say what the
    file was."""
    import json

    lines = [line for line in text.splitlines() if line.strip()][:2]
    if len(lines) < 2:
        return None
    try:
        first = [json.loads(line) for line in lines][0]
    except ValueError:
        return None
    if isinstance(first, dict) and "path" in first and "status" in first:
        return "manifest"
    if isinstance(first, dict) and ("sf2t_eval_setting" in first or {"id", "pred"} <= set(first)):
        return "answers"
    return "lines"


def json_lines_noun(text: str) -> str | None:
    """:func:`json_lines_kind` in words (``"an sf2t index manifest (JSON lines, one video a line)"``, ...) for a
    message ``"{file}: {noun}, not {what was expected}"``; None where the text is not JSON lines."""
    kind = json_lines_kind(text)
    return None if kind is None else _JSON_LINES_NOUNS[kind]


_JSON_LINES_NOUNS = {
    "manifest": "an sf2t index manifest (JSON lines, one video a line)",
    "answers": "an sf2t eval answers file (JSON lines, one answer a line)",
    "lines": "a JSON-lines file (one JSON value a line)",
}


def _is_text(path: str | os.PathLike) -> bool:
    """Whether the file's first 64 KiB are UTF-8 text without NUL bytes (a character cut at the end is allowed)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return True  # unreadable: the write says why
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start >= len(head) - 3 and len(head) == 1 << 16
    return True


def is_within(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether ``path`` is ``folder`` or lies under it, both resolved (links, ``..``): what replacing or filling
    ``folder`` would reach."""
    p, f = os.path.realpath(path), os.path.realpath(folder)
    return p == f or p.startswith(f.rstrip(os.sep) + os.sep)


def _is_png(path: str | os.PathLike) -> bool:
    """Whether the file starts as a PNG image does (or is empty)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(8) in (b"\x89PNG\r\n\x1a\n", b"")
    except OSError:
        return True  # unreadable: the write says why


# what a file written may replace: (how the message names the kind, the test)
_KINDS = {"text": ("a text file (a video? an image?)", _is_text), "png": ("a PNG image", _is_png)}


class InputFiles:
    """The files a command reads, as :func:`check_replaceable` asks about them: which of them a file to write is
    (the same file, links and ``..`` resolved). Resolved once, and only when a file to write already exists (one that
    does not is none of them): a benchmark's tens of thousands of frame images were resolved again for each of the
    up to five files ``sf2t eval`` checks, seconds before anything ran. Give one to each check of a command."""

    def __init__(self, paths=()):
        self._paths = [p for p in paths if p is not None]
        self._by_file: dict[tuple[int, int], list] | None = None  # (device, inode) -> the inputs that are that file

    def which(self, path: str | os.PathLike) -> str | None:
        """The input ``path`` is, as it was named (the first so named), or None."""
        try:
            st = os.stat(path)
        except (OSError, ValueError):  # missing (or a name no file can have): it is no existing input
            return None
        if self._by_file is None:
            self._by_file = {}
            for p in self._paths:
                try:
                    s = os.stat(p)
                except (OSError, ValueError):  # a missing input: nothing to destroy
                    continue
                self._by_file.setdefault((s.st_dev, s.st_ino), []).append(p)
        same = self._by_file.get((st.st_dev, st.st_ino), ())
        if same:  # (a hard link is the same inode under another name: the resolved paths decide, as they always did)
            real = os.path.realpath(path)
            for p in same:
                if os.path.realpath(p) == real:
                    return os.fspath(p)
        return None


def check_replaceable(
    path: str | os.PathLike, where: str, inputs: InputFiles | Iterable = (), kind: str | None = None, fix: str = ""
) -> None:
    """A ValueError ``"{where}: ..."`` when writing the file ``path`` would destroy something: it is a folder, one of
    ``inputs`` (files the same command reads: paths, or an :class:`InputFiles` made once for the command's checks),
    or an existing file that is not of ``kind`` (``"text"``: JSON, JSON lines, Markdown; ``"png"``; None: any).
    ``fix``: what to do instead (default: give another path). :func:`check_out_file` applies it to a file named on
    the command line; a command checks the files it writes next to that one with it too."""
    if os.path.isdir(path):
        raise ValueError(f"{where}: is a folder; {fix or 'give the path of the file to write'}")
    found = (inputs if isinstance(inputs, InputFiles) else InputFiles(inputs)).which(path)
    if found is not None:
        said = f": {fix}" if fix else ""
        raise ValueError(f"{where}: is an input of this command ({found}); writing it would destroy it{said}")
    if kind is not None and os.path.isfile(path) and not _KINDS[kind][1](path):
        raise ValueError(
            f"{where}: exists and is not {_KINDS[kind][0]}; writing it would destroy it: {fix or 'pick another path'}, "
            "or remove it first"
        )


def check_out_file(path: str | os.PathLike, label: str, inputs: InputFiles | Iterable = (), text: bool = False) -> None:
    """A ValueError naming ``label`` and ``path`` when ``path``, meant for a file sf2t will write, cannot be: a folder,
    under a file, one of ``inputs`` (files the same command reads: writing it would destroy them), or in a folder
    that takes no new file. ``text``: the file written is text (JSON, JSON lines), so an existing file that is not
    text (a video, an image, weights: a slip of the argument) is refused rather than replaced
    (:func:`check_replaceable`). Checked before long work, so it does not fail at the end."""
    shown = os.fspath(path)
    check_replaceable(path, f"{label} {shown}", inputs, "text" if text else None)
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):  # the nearest folder that exists: where the missing ones would be made
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"{label} {shown}: {parent} is a file, not a folder")
    if os.path.dirname(os.path.abspath(path)) == parent:  # the file's own folder exists: can a file be made in it?
        import tempfile

        try:
            fd, probe = tempfile.mkstemp(prefix=".sf2t-write-check-", dir=parent)
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            raise ValueError(f"{label} {shown}: cannot write in {parent} ({e.strerror or e})") from None
    elif not os.access(parent, os.W_OK):
        raise ValueError(f"{label} {shown}: cannot make folders in {parent} (no write permission)")
    else:  # a folder made and removed there (see check_out_folder: os.access says yes to root where mkdir fails)
        import tempfile

        try:
            os.rmdir(tempfile.mkdtemp(prefix=".sf2t-write-check-", dir=parent))
        except OSError as e:
            raise ValueError(f"{label} {shown}: cannot make folders in {parent} ({e.strerror or e})") from None


def check_out_folder(path: str | os.PathLike, label: str) -> None:
    """A ValueError naming ``label`` and ``path`` when ``path``, a folder sf2t will write into, cannot be one: a file,
    under a file, or where no folder can be made."""
    shown = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{label} {shown}: exists and is not a folder")
    parent = os.path.abspath(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"{label} {shown}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"{label} {shown}: cannot write in {parent} (no write permission)")
    # a folder made and removed there: root passes os.access where the file system still refuses (a root-squashed
    # NFS share, /sys), which was a traceback once the model had loaded
    import tempfile

    try:
        os.rmdir(tempfile.mkdtemp(prefix=".sf2t-write-check-", dir=parent))
    except OSError as e:
        raise ValueError(f"{label} {shown}: cannot write in {parent} ({e.strerror or e})") from None


def write_text_atomic(path: str | os.PathLike, text: str, label: str = "output") -> None:
    """Write ``text`` to ``path`` through a temporary file next to it, then rename it into place: a failure (a full
    disk, a kill) leaves what was at ``path`` before and no temporary file behind."""
    import uuid

    check_out_file(path, label)
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def looks_like_hub_id(name: str) -> bool:
    """``org/name`` that is no path here: a Hugging Face Hub id (sf2t loads checkpoints offline, from folders)."""
    from pathlib import Path

    name = str(name)
    return name.count("/") == 1 and not name.startswith((".", "/", "~")) and not Path(name).parent.exists()


def hub_download_hint(name: str, option: str) -> str:
    """How to get ``name`` (a Hub id) as a folder to pass as ``option``: huggingface_hub's ``hf`` command (its 2.x
    has no ``huggingface-cli`` any more)."""
    return f"download it first (e.g. `hf download {name} --local-dir ./ckpt`) and pass {option}./ckpt"


def json_safe(v):
    """``v`` with NaN / infinite floats as null, for ``json.dumps(..., allow_nan=False)``: strict JSON readers refuse a
    bare NaN (an accuracy over 0 questions in ``sf2t eval``'s results, the decode-only ceiling where PyAV is missing in
    ``sf2t throughput --json``)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    return v
