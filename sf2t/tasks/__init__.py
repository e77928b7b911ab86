"""Self-supervised fragment tasks (``shared/docs/TASKS.md``): planners, builders, templates, scorers, guard."""

from sf2t.tasks.base import FramePlan, Sample, SkipSample, Task, make_rng
from sf2t.tasks.counting import CountingConfig, CountingTask
from sf2t.tasks.disorder import DisorderConfig, DisorderTask
from sf2t.tasks.scoring import parse_count, parse_yes_no, partial_score, score, truth_text

TASKS = {"counting": CountingTask, "disorder": DisorderTask}
TASK_CONFIGS = {"counting": CountingConfig, "disorder": DisorderConfig}


def make_task(name: str, cfg=None) -> Task:
    """The task called ``name`` with its config (default config when None)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}")
    return TASKS[name](cfg)


__all__ = [
    "TASKS",
    "TASK_CONFIGS",
    "CountingConfig",
    "CountingTask",
    "DisorderConfig",
    "DisorderTask",
    "FramePlan",
    "Sample",
    "SkipSample",
    "Task",
    "make_rng",
    "make_task",
    "parse_count",
    "parse_yes_no",
    "partial_score",
    "score",
    "truth_text",
]
