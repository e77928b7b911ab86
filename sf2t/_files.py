"""Reading a user-named text file with an error that names the file and the problem."""

from __future__ import annotations

import os


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


def check_out_file(path: str | os.PathLike, label: str) -> None:
    """A ValueError ``"{label} PATH: is a folder ..."`` when ``path``, meant for a file sf2t will write, is a folder
    (checked before long work, so it does not fail at the end)."""
    if os.path.isdir(path):
        raise ValueError(f"{label} {os.fspath(path)}: is a folder; give the path of the file to write")


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
