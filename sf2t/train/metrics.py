"""What a run measures and records: the next-token loss on the answer tokens, teacher-forced exact answers,
``metrics.jsonl`` (and TensorBoard) one line per step, and the short loss curves of the result.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from sf2t.models.qwen2_vl import IGNORE_INDEX
from sf2t.train.series import Series

__all__ = ["MetricsLog", "answer_exact", "per_sample_loss", "token_loss_sum"]


def per_sample_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token cross-entropy on the supervised (answer) tokens.

    logits [B, T, V], labels [B, T] (-100 = not supervised). Returns (mean loss over all supervised tokens of
    the batch, as the HF models compute it; per-sample mean loss [B], detached).
    """
    total, count, per = token_loss_sum(logits, labels)
    return total / max(count, 1), per


def answer_exact(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per sample, whether every supervised token is the argmax of the previous position's logits (teacher-forced
    exact answer): bool [B]; samples without supervised tokens count as wrong."""
    pred = logits[:, :-1].argmax(-1)
    target = labels[:, 1:]
    mask = target != IGNORE_INDEX
    return ((pred == target) | ~mask).all(dim=1) & mask.any(dim=1)


def token_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int, torch.Tensor]:
    """(sum of next-token cross-entropy over the supervised tokens, their count, per-sample mean loss [B] detached)."""
    logits = logits[:, :-1].float()
    target = labels[:, 1:]
    tok = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=IGNORE_INDEX, reduction="none")  # [B, T-1]
    mask = (target != IGNORE_INDEX).float()
    n = mask.sum(dim=1).clamp_min(1.0)
    return tok.sum(), int(mask.sum()), (tok.detach() * mask).sum(dim=1) / n


class MetricsLog:
    """``out_dir/metrics.jsonl`` (one JSON line per optimizer step: step, loss, lr, samples/s, tokens/s, the fraction
    of time spent waiting for data, per-task loss) and, when the ``tensorboard`` package is installed and
    ``tensorboard`` is on, the same scalars as TensorBoard events under ``out_dir/tensorboard``. A resumed run first
    drops the lines past its checkpoint, so the file has each step once."""

    def __init__(self, out: Path, start_step: int, *, tensorboard: bool = True, log=print):
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / "metrics.jsonl"
        if self.path.is_file():  # a cut-short last line (a kill while writing it) is dropped, with a note
            from sf2t.train.report import read_metrics

            keep = [row for row in read_metrics(out, log) if row["step"] <= start_step] if start_step else []
            self.path.write_text("".join(json.dumps(row) + "\n" for row in keep))
        self.fh = open(self.path, "a")
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tensorboard"), purge_step=start_step + 1 if start_step else None)
            except ImportError:
                log("tensorboard is not installed: metrics go to metrics.jsonl only (pip install tensorboard)")

    def write(self, step: int, values: dict) -> None:
        self.fh.write(json.dumps({"step": step, **values}) + "\n")
        self.fh.flush()
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        self.fh.close()
        if self.tb is not None:
            self.tb.close()


def _recent_losses(losses: Series, window: int) -> dict:
    """``losses`` (the last ``window`` steps' losses, every one while the series keeps them all) and ``losses_start``
    (the steps before them). A run resumed with a wider window (a larger ``log_every``) has only the saved window's
    values past ``series.EXACT``: ``losses_start`` counts from what is there."""
    kept = losses.tail(min(len(losses), window))
    return {"losses": kept, "losses_start": len(losses) - len(kept)}


def _curve(values: list[float], points: int = 10) -> list[dict]:
    """A short loss curve: mean loss over ``points`` equal chunks of the run (one point per value when there are
    fewer); ``Series.curve`` of every value."""
    return Series.from_state(values, exact=max(2, len(values))).curve(points)
