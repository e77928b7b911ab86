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
