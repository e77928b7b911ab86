"""Progress bars (tqdm) that suit a log file as well as a terminal.

On a terminal a bar redraws in place, at tqdm's pace (at most every 0.1 s). Into a stream that is not a terminal
(``nohup sf2t train ... > log 2>&1``, a CI log, a pipe) every redraw is a line more in the file: there the bars of
sf2t redraw at most every :data:`LOG_INTERVAL_S` seconds (and on close, which shows the final state). Such a bar has
``log_paced`` set: update its postfix with ``set_postfix(..., refresh=not bar.log_paced)`` (a refresh forces a redraw
whatever the interval; a terminal's bar redraws as before).
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Iterable, Iterator

__all__ = ["progress_bar", "is_terminal", "library_bars", "LOG_INTERVAL_S"]

LOG_INTERVAL_S = 30.0  # seconds between redraws of a bar written into a file or a pipe


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an interactive terminal (a stream without ``isatty``, or a closed one, is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def progress_bar(iterable: Iterable | None = None, *, auto: bool = False, **kw):
    """A tqdm bar over ``iterable`` (or a manual one, with ``total=``): ``tqdm(iterable, **kw)``, except that into
    a stream that is not a terminal (``file``, default stderr) it redraws at most every :data:`LOG_INTERVAL_S`
    seconds unless ``mininterval`` is given (the bar's ``log_paced`` says so). ``auto``: ``tqdm.auto`` (a widget in a
    notebook, paced as tqdm paces it) rather than the text bar."""
    if auto:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm
    notebook = any(c.__module__ == "tqdm.notebook" for c in tqdm.__mro__)
    stream = kw.get("file")
    if stream is None:
        stream = sys.stderr
    paced = not notebook and "mininterval" not in kw and not is_terminal(stream)
    if paced:
        kw["mininterval"] = LOG_INTERVAL_S
        # tqdm's monitor thread forces a redraw of a bar not redrawn for maxinterval (10 s by default)
        kw["maxinterval"] = max(float(kw.get("maxinterval", LOG_INTERVAL_S)), LOG_INTERVAL_S)
    bar = tqdm(iterable, **kw)
    bar.log_paced = paced
    return bar


@contextlib.contextmanager
def library_bars(enabled: bool) -> Iterator[None]:
    """transformers' own progress bars ("Loading weights", "Writing model shards") on as they are, or off for the
    block when sf2t's are off (``sf2t demo --no-progress``, ``sf2t train progress=false``: they were still drawn);
    put back after. For the commands: sf2t used as a library leaves transformers' settings alone."""
    if enabled:
        yield
        return
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()
