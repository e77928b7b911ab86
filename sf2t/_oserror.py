"""Which OSErrors are the user's files or disk (said in one line by the commands) and how they are said: shared by
the ``sf2t`` command (:func:`sf2t.cli.main`) and the library code that turns such an error into a message of its own
(a checkpoint save, ``sf2t train``, ``sf2t index``); and which ValueErrors the commands may say as bad input
(:func:`is_bad_input`)."""

from __future__ import annotations

import errno


def _errnos(*names: str) -> frozenset[int]:
    return frozenset(getattr(errno, n) for n in names if hasattr(errno, n))  # (EDQUOT, ESTALE: not on Windows)


# The errors of the files and disks a command was given: the user's to fix, said in one line.
_FILE_ERRNOS = _errnos(
    *("ENOSPC", "EDQUOT", "EFBIG", "EROFS", "EACCES", "EPERM", "ENOENT", "EEXIST", "EIO", "EISDIR", "ENOTDIR"),
    *("ENOTEMPTY", "ENAMETOOLONG", "ELOOP", "EXDEV", "EMFILE", "ENFILE", "ETXTBSY", "EBUSY", "ESTALE", "ENXIO"),
)
# Packages whose "cannot load" OSErrors (no errno: "Can't load image processor for ...") are messages of their own.
_LOADERS = ("transformers", "huggingface_hub")


def is_file_error(e: OSError) -> bool:
    """Whether an OSError that stopped a command is one :func:`main` says in one line: it names a file
    (``e.filename``), has a file or disk errno (:data:`_FILE_ERRNOS`: ``ENOSPC``, ``EACCES``, ...), was raised
    ``from`` such an error (a checkpoint save's own message, which names the file in its text), or is a transformers
    / huggingface_hub load error (raised there, no errno). Other OSErrors are not the user's files: a programming
    error (``io.UnsupportedOperation``, ``EBADF``), ``ENOMEM``, a connection or socket error, a pipe to a process
    that died; their traceback shows where they came from."""
    if isinstance(e, BrokenPipeError):
        return False
    if e.filename is not None or e.errno in _FILE_ERRNOS:
        return True
    if isinstance(e.__cause__, OSError) and e.__cause__ is not e and is_file_error(e.__cause__):
        return True  # a message of its own said for a file error (a checkpoint save's, its file named in the text)
    return e.errno is None and type(e) is OSError and _raised_in(e, _LOADERS)


def is_bad_input(e: BaseException) -> bool:
    """Whether an error a command caught as a ValueError may be said as the user's bad input (one line, exit 2): every
    one but an ``io.UnsupportedOperation``, which is a ValueError and an OSError both (``fileno`` of a pipe or a
    StringIO, ``read`` of a file opened for writing): a bug, not the input, raised on for its traceback (it was
    ``sf2t X: fileno``, exit 2). Each such handler starts ``if not is_bad_input(e): raise``; an OSError it also catches
    (``FileNotFoundError``) is no ValueError and stays the user's."""
    return not (isinstance(e, ValueError) and isinstance(e, OSError))


def _raised_in(e: BaseException, packages: tuple[str, ...]) -> bool:
    """Whether ``e`` was raised by code of one of ``packages`` (its traceback's innermost frame)."""
    tb = e.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = str(tb.tb_frame.f_globals.get("__name__", ""))
    return module.split(".")[0] in packages


def os_error_text(e: OSError) -> str:
    """``what failed: the error`` of an OSError, in one line: the file it names (both, for a rename) and the system's
    words for it (``No space left on device``), not its repr; a message of its own (transformers' "cannot load" ones
    run over several lines) joined into one."""
    said = " ".join((e.strerror or str(e)).split())
    if e.filename is None:
        return said
    where = str(e.filename) + (f" -> {e.filename2}" if getattr(e, "filename2", None) else "")
    return f"{where}: {said}"
