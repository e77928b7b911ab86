"""A run's per-step or per-sample values (losses, teacher-forced accuracy) in bounded memory, for its curves.

``metrics.jsonl`` is the full record (one line per step). The run itself only needs short curves (the mean over each
tenth of the run), the first value and a recent window; a 200,000-step run kept every step's loss and every sample's
per-task loss and accuracy (millions of floats, rewritten into each checkpoint's ``state.json``). A :class:`Series`
keeps every value while there are at most ``exact`` of them (a short run reports as before: ``curve`` is the mean
over exact tenths); past that, the sums of equal runs of values (at most ``exact`` of them; two neighbours are added
into one, doubling the run, when there would be more) and the last ``window`` values. Its state is a function of the
values appended, in order, so a resumed run (state restored from a checkpoint) continues as an uninterrupted one.
"""

from __future__ import annotations

from collections import deque
from typing import Any

__all__ = ["Series", "EXACT"]

# Values kept one by one before a series goes over to sums of runs: 4,096 floats are ~80 KB of JSON a series in
# state.json; every test run and the demo's per-step losses (4,000 steps) stay below it.
EXACT = 4096


class Series:
    """Values appended one at a time (see the module docstring). ``exact``: values kept one by one (and, past them,
    the most sums kept; default ``EXACT``); ``window``: the last values kept past ``exact`` (for ``tail``)."""

    def __init__(self, exact: int | None = None, window: int = 0):
        exact = EXACT if exact is None else exact
        if exact < 2:
            raise ValueError(f"exact must be >= 2, got {exact}")
        self.exact, self.window = int(exact), int(window)
        self.n = 0
        self.first: float | None = None
        self.values: list[float] | None = []  # every value, while n <= exact; None after
        self.width = 1  # values per sum, past exact
        self.sums: list[float] = []  # past exact: the sums of values [k * width, (k + 1) * width), the last partial
        self.last: deque = deque(maxlen=self.window)

    def __len__(self) -> int:
        return self.n

    def append(self, v: float) -> None:
        v = float(v)
        if self.n == 0:
            self.first = v
        self.n += 1
        self.last.append(v)
        if self.values is not None:
            self.values.append(v)
            if len(self.values) > self.exact:  # over to sums of pairs
                vals, self.values = self.values, None
                self.width = 2
                self.sums = [sum(vals[k : k + 2]) for k in range(0, len(vals), 2)]
            return
        if (self.n - 1) % self.width:  # (the value's position is n - 1) the last run is not full: into it
            self.sums[-1] += v
            return
        self.sums.append(v)
        if len(self.sums) > self.exact:
            s = self.sums
            self.sums = [sum(s[k : k + 2]) for k in range(0, len(s), 2)]
            self.width *= 2

    def tail(self, k: int) -> list[float]:
        """The last ``k`` values (``k`` <= ``window`` once there are more than ``exact``)."""
        if k <= 0:
            return []
        if self.values is not None:
            return self.values[-k:]
        if k > self.window:
            raise ValueError(f"tail({k}): only the last {self.window} values are kept")
        return list(self.last)[-k:]

    def curve(self, points: int = 10) -> list[dict]:
        """A short curve: the mean over ``points`` equal chunks of the values (one point per value when there are
        fewer), ``[{"upto": end of the chunk, "loss": mean}]``. Past ``exact`` values the chunks end at the nearest
        end of a kept run (off by at most ``width / 2`` values, under 1 / exact of the run, from the exact
        tenths)."""
        n = self.n
        if not n:
            return []
        points = min(points, n)
        out = []
        if self.values is not None:
            for i in range(points):
                lo, hi = i * n // points, max(i * n // points + 1, (i + 1) * n // points)
                chunk = self.values[lo:hi]
                if chunk:
                    out.append({"upto": hi, "loss": sum(chunk) / len(chunk)})
            return out
        w, runs = self.width, len(self.sums)
        edges = [min(runs, round(i * n / points / w)) for i in range(points)] + [runs]
        for lo, hi in zip(edges, edges[1:]):
            if hi > lo:
                upto = min(hi * w, n)
                out.append({"upto": upto, "loss": sum(self.sums[lo:hi]) / (upto - lo * w)})
        return out

    # -- checkpoints

    def state(self) -> dict[str, Any]:
        """JSON-ready state (floats round-trip exactly through ``json``)."""
        return {
            "n": self.n,
            "first": self.first,
            "exact": self.exact,
            "window": self.window,
            "values": self.values,
            "width": self.width,
            "sums": self.sums,
            "last": list(self.last) if self.values is None else None,  # (else: the end of values)
        }

    @classmethod
    def from_state(cls, st, *, exact: int | None = None, window: int = 0) -> Series:
        """A series from :meth:`state`, or from a plain list of values (an older checkpoint's), appended again."""
        if isinstance(st, dict):
            s = cls(st["exact"], max(window, st["window"]))  # (a longer window: filled from here on)
            s.n, s.first, s.width = int(st["n"]), st["first"], int(st["width"])
            s.values = None if st["values"] is None else list(st["values"])
            s.sums = list(st["sums"])
            s.last.extend(st["last"] if st["last"] is not None else s.values[-s.window :] if s.window else ())
            return s
        s = cls(exact, window)
        for v in st:
            s.append(v)
        return s
