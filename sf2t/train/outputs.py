"""The files a training run leaves in ``out_dir``.

:func:`run_files` says whether a folder already holds a run (checked before a new one starts there, see
``sf2t.train.precheck``); :data:`RUN_OUTPUTS` is what ``sf2t train`` writes there, and what ``overwrite=true`` clears
(:func:`_clear_run`) before a run starts afresh. Importable from ``sf2t.train.cli`` too.
"""

from __future__ import annotations

from pathlib import Path

RUN_FILES = ("checkpoints", "adapter", "model", "train_result.json", "metrics.jsonl", "tensorboard")


def run_files(out: Path) -> list[str]:
    """What of a training run ``out`` holds (its checkpoints, weights and logs); [] for a new or unrelated folder, and
    for a run that stopped before its first step (no video could be read, a wrong setting found once the model had
    loaded): its empty ``metrics.jsonl`` and ``tensorboard/`` made the same command, corrected, refused there."""
    if not out.is_dir():
        return []
    held = [name for name in RUN_FILES if (out / name).exists()]
    if "checkpoints" in held and not any((out / "checkpoints").glob("step-*")):
        held.remove("checkpoints")
    metrics = out / "metrics.jsonl"
    if set(held) <= {"metrics.jsonl", "tensorboard"} and (not metrics.is_file() or metrics.stat().st_size == 0):
        return []  # no step logged: nothing to resume or to lose
    return held


# what sf2t train writes into out_dir: overwrite=true removes these (and nothing else the folder holds)
RUN_OUTPUTS = (
    "checkpoints",
    "adapter",
    "model",
    "tensorboard",
    "metrics.jsonl",
    "train_result.json",
    "train_config.json",
    "report.md",
    "report.png",
)


def _clear_run(out: Path, log=print) -> None:
    """overwrite=true: remove the previous run's outputs (:data:`RUN_OUTPUTS`: checkpoints, weights, logs, reports),
    so a later resume=auto cannot pick up the old run's checkpoint, the logs hold this run only, and a LoRA run does
    not leave a full fine-tune's ``model/`` (nor the other way round) beside its own weights. Other files stay."""
    import shutil

    gone = []
    for name in RUN_OUTPUTS:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
        else:
            continue
        gone.append(name)
    if gone:
        log(f"overwrite: removed the previous run's {', '.join(gone)} from {out}")
