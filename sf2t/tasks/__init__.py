"""Self-supervised fragment tasks (defined in ``docs/tasks.md``): planners, builders, templates, scorers, guard."""

from sf2t._plural import noun_for
from sf2t.tasks.base import FramePlan, Sample, SkipSample, Task, make_rng
from sf2t.tasks.consistency import ConsistencyConfig, ConsistencyTask
from sf2t.tasks.counting import CountingConfig, CountingTask
from sf2t.tasks.disorder import DisorderConfig, DisorderTask
from sf2t.tasks.localization import LocalizationConfig, LocalizationTask
from sf2t.tasks.rearrangement import RearrangementConfig, RearrangementTask
from sf2t.tasks.scoring import parse_count, parse_yes_no, partial_score, reward, score, truth_text
from sf2t.tasks.speed import SpeedConfig, SpeedTask

TASKS = {
    "counting": CountingTask,
    "consistency": ConsistencyTask,
    "localization": LocalizationTask,
    "disorder": DisorderTask,
    "rearrangement": RearrangementTask,
    "speed": SpeedTask,
}
TASK_CONFIGS = {
    "counting": CountingConfig,
    "consistency": ConsistencyConfig,
    "localization": LocalizationConfig,
    "disorder": DisorderConfig,
    "rearrangement": RearrangementConfig,
    "speed": SpeedConfig,
}


def split_task_names(values) -> list[str]:
    """The names in ``values``, in order, each value split at commas and spaces (``counting,speed``, ``counting
    speed``); empty pieces dropped (``","`` gives none). Names are not checked: :func:`task_names` does that."""
    import re

    return [n for v in values for n in re.split(r"[,\s]+", str(v)) if n]


def task_names(values, label: str = "tasks", extra: tuple[str, ...] = ()) -> list[str]:
    """The task names in ``values`` (each may hold several, split at commas and spaces: ``counting,speed``), in
    order. A ValueError naming ``label`` when none is given (``--tasks`` alone, ``""``, ``","``) or one is unknown
    (with the name it most likely meant); each lists the valid names: ``extra`` (a command's own, ``fragment`` for
    ``sf2t throughput``), then :data:`TASKS`."""
    from sf2t._names import did_you_mean

    valid = (*extra, *TASKS)
    names = split_task_names(values)
    if not names:
        raise ValueError(f"{label}: no task names given; name one or more of: {', '.join(valid)}")
    unknown = [
        f"{n!r}" + (f" ({hint.strip()})" if (hint := did_you_mean(n, valid)) else "") for n in names if n not in valid
    ]
    if unknown:
        raise ValueError(
            f"{label}: unknown {noun_for(len(unknown), 'task')} {', '.join(unknown)}; valid: {', '.join(valid)}"
        )
    return names


def make_task(name: str, cfg=None) -> Task:
    """The task called ``name`` with its config (default config when None)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}")
    return TASKS[name](cfg)


__all__ = [
    "TASKS",
    "TASK_CONFIGS",
    "split_task_names",
    "task_names",
    "ConsistencyConfig",
    "ConsistencyTask",
    "CountingConfig",
    "CountingTask",
    "DisorderConfig",
    "DisorderTask",
    "FramePlan",
    "LocalizationConfig",
    "LocalizationTask",
    "RearrangementConfig",
    "RearrangementTask",
    "SpeedConfig",
    "SpeedTask",
    "Sample",
    "SkipSample",
    "Task",
    "make_rng",
    "make_task",
    "parse_count",
    "parse_yes_no",
    "partial_score",
    "reward",
    "score",
    "truth_text",
]
