"""How the ``sf2t`` command shows warnings (:func:`cli_warnings`, used by :func:`sf2t.cli.main` only: sf2t used as a
library leaves Python's warnings as they are)."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from typing import Iterator

_PACKAGE = os.path.dirname(os.path.abspath(__file__))

# Commands whose first word is a subcommand: their warnings name it too, as their usage lines do.
_SUBCOMMANDS = {"tasks": ("export", "preview"), "finevidbench": ("build", "export")}


def command_name(argv: list[str]) -> str:
    """``sf2t``, ``sf2t train``, ``sf2t tasks export``, ...: the command ``argv`` runs, as its messages name it."""
    if not argv or argv[0].startswith("-"):
        return "sf2t"
    if len(argv) > 1 and argv[1] in _SUBCOMMANDS.get(argv[0], ()):
        return f"sf2t {argv[0]} {argv[1]}"
    return f"sf2t {argv[0]}"


def _from_sf2t(filename: str) -> bool:
    """Whether a warning is sf2t's own: its ``stacklevel`` points into the sf2t package (not torch, transformers...)."""
    try:
        return os.path.commonpath([os.path.abspath(filename), _PACKAGE]) == _PACKAGE
    except ValueError:  # another drive, or no file ("<string>")
        return False


def _silent_rank() -> bool:
    """Under torchrun, every rank but 0 (``RANK``): each would print the same warnings; rank 0 shows them once. The
    trainer keeps no per-rank log to send them to (ranks other than 0 log nothing)."""
    return os.environ.get("RANK", "0").strip() not in ("", "0")


@contextlib.contextmanager
def cli_warnings(prog: str) -> Iterator[None]:
    """While a command runs: sf2t's own warnings are one line on stderr, ``<prog>: warning: <message>``, like the
    command's errors (Python's default adds the file, line, category and source line); other packages' warnings
    (torch, transformers, peft) keep Python's format. Under torchrun only rank 0 shows warnings (``RANK`` > 0: none).
    The filters (``-W``, ``PYTHONWARNINGS``, ``warnings.filterwarnings``) still decide which warnings are shown and
    how often (Python's default: once per place and text); this only changes how and by which process."""
    before = warnings.showwarning
    silent = _silent_rank()

    def show(message, category, filename, lineno, file=None, line=None):
        if silent:
            return
        if not _from_sf2t(filename):
            before(message, category, filename, lineno, file, line)
            return
        text = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
        try:
            (sys.stderr if file is None else file).write(f"{prog}: warning: {text}\n")
        except (OSError, AttributeError):  # no stderr (closed, or None under pythonw): as Python's own showwarning
            pass

    warnings.showwarning = show
    try:
        yield
    finally:
        if warnings.showwarning is show:  # (not if the command replaced it meanwhile)
            warnings.showwarning = before


# Loggers of the libraries ``sf2t train`` runs that print on their own (Python's logging); transformers' is set through
# its own module (it keeps its handler and level on the "transformers" logger, configured at first use).
_OTHER_LOGGERS = ("peft", "torch.distributed")


@contextlib.contextmanager
def quiet_other_ranks() -> Iterator[None]:
    """While ``sf2t train`` runs under torchrun, on every rank but 0 (``RANK`` > 0): transformers', peft's and
    torch.distributed's log messages below error level are not shown, nor transformers' progress bars ("Loading
    weights"): each rank would print the same ones, N copies under ``--nproc-per-node N``; rank 0 shows them once.
    Errors still show on every rank. Rank 0 (and a run without torchrun) is left as it is; the levels are put back
    after. Used by :func:`sf2t.cli.main` only: sf2t used as a library leaves these libraries' logging alone."""
    if not _silent_rank():
        yield
        return
    import logging

    from transformers.utils import logging as hf_logging  # (imports torch: torch.distributed's level set after
    # torch's own logging setup, which resets it at import)

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    levels = {name: logging.getLogger(name).level for name in _OTHER_LOGGERS}
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    for name in _OTHER_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
