"""sf2t's progress bars (sf2t._progress): into a log (a stream that is not a terminal) they redraw at a log's pace,
not tqdm's ten times a second; on a terminal they are tqdm's as before. Every bar of sf2t is made by the helper."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

pytest.importorskip("tqdm")

from sf2t._progress import LOG_INTERVAL_S, is_terminal, progress_bar  # noqa: E402


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(bar, n: int) -> None:
    for i in range(n):
        if i % 10 == 0:  # as the train loop does
            bar.set_postfix(loss=f"{1 / (i + 1):.3f}", refresh=not bar.log_paced)
        bar.update(1)
    bar.close()


def test_bar_into_a_log_redraws_a_bounded_number_of_times(monkeypatch):
    """Into a file, N quick items and a postfix every 10 make a handful of redraws (tqdm's default wrote one per
    0.1 s, and every set_postfix forced one more); the bar still ends on the final count and postfix."""
    clock = iter(range(10**6))
    monkeypatch.setattr("tqdm.std.time", lambda: next(clock) * 0.05)  # tqdm's clock: a read every 0.05 s
    log = io.StringIO()
    n = 2000  # minutes at the fake clock: hundreds of redraws at tqdm's 0.1 s
    bar = progress_bar(total=n, desc="x", file=log)
    assert bar.log_paced and bar.mininterval == LOG_INTERVAL_S and bar.maxinterval >= LOG_INTERVAL_S
    _run(bar, n)
    out = log.getvalue()
    assert out.count("\r") <= 12, out.count("\r")
    assert f"{n}/{n}" in out.rsplit("\r", 1)[-1] and "loss=0.001" in out.rsplit("\r", 1)[-1]


def test_bar_on_a_terminal_keeps_tqdm_pace():
    tty = _Terminal()
    bar = progress_bar(total=3, file=tty)
    assert not bar.log_paced and bar.mininterval == 0.1 and bar.maxinterval == 10.0  # tqdm's defaults
    bar.close()
    bar = progress_bar(total=3, file=io.StringIO(), mininterval=0.5)  # a caller's own interval wins
    assert not bar.log_paced and bar.mininterval == 0.5
    bar.close()
    assert is_terminal(tty) and not is_terminal(io.StringIO()) and not is_terminal(object())


def test_every_bar_of_sf2t_goes_through_the_helper():
    """sf2t makes no tqdm bar of its own (train loop, index, finevidbench build, eval, tasks export, demo): each is
    sf2t._progress.progress_bar, which paces bars written into a log."""
    root = Path(__file__).resolve().parent.parent / "sf2t"
    direct = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "_progress.py":
            continue
        for k, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\btqdm\b", line) and not line.lstrip().startswith("#") and "tqdm progress bar" not in line:
                direct.append(f"{path.relative_to(root.parent)}:{k}: {line.strip()}")
    assert not direct, "tqdm used directly:\n" + "\n".join(direct)
