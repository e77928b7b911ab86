"""Reading configs: ``key=value`` overrides and YAML (or JSON) files turned into field values and merged into a config
dataclass (``TrainConfig``, a task's config), and where a finished run keeps its ``train_config.json``.

Each function takes the dataclass it works on, so nothing here imports ``sf2t.train.config``; that module re-exports
every name (``load_config`` and ``config_help``, whose default is ``TrainConfig``, live there).
"""

from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path
from typing import Any, Sequence


def _task_list(value: Any) -> list:
    """A list-of-task-names field's value: a YAML list, or names split at commas and spaces as ``--tasks`` takes
    them elsewhere (``tasks=counting,disorder``, ``tasks=[counting,disorder]``). Nothing (``tasks=``) is []; a value
    of separators only (``tasks=,``, ``tasks=[,]``) is an error, not YAML's complaint about a ','; so is anything
    else that is not names (``tasks={a: b}``, ``tasks=3``, ``tasks=[[counting]]``), not split as text."""
    import yaml

    from sf2t.tasks import TASKS, split_task_names

    items = value
    if isinstance(value, str):
        try:
            items = yaml.safe_load(value)
        except yaml.YAMLError:  # "[,]", ",": read as names and separators
            items = value
    if items is None:  # tasks= (nothing after it) or a YAML key with no value: empty, not [None] ("unknown task")
        return []
    # a mapping, a number, a nested list, null, true: no names, refused (their str() was split: {a: b} was unknown
    # tasks "{'a':", "'b'}"; [counting, null] was unknown task 'None')
    if isinstance(items, (list, tuple)):
        bad = [i for i in items if not isinstance(i, str)][:1]
        among = f" among them ({items!r})"
    else:
        bad = [] if isinstance(items, str) else [items]
        among = ""
    if bad:
        got = "null" if bad[0] is None else f"{_kind(bad[0])} {bad[0]!r}"
        raise ValueError(
            f"expected task names, got {got}{among}; name one or more of {', '.join(TASKS)}, as counting,disorder or "
            "[counting, disorder]"
        )
    if isinstance(items, str):
        text = items.strip()
        text = text[1:-1] if text.startswith("[") and text.endswith("]") else text
        names = [n.strip("'\"") for n in split_task_names([text])]
    else:
        names = split_task_names(items)  # (a list or tuple: anything else is a str or refused above)
    if not names and items not in ([], ()):  # [] alone is empty as tasks= is; validate() says what it needs
        raise ValueError(
            f"{value!r} names no task; name one or more of {', '.join(TASKS)}, as counting,disorder or "
            "[counting, disorder]"
        )
    return names


def _kind(value: Any) -> str:
    """What ``value`` (read from YAML) is, in words: "a mapping", "a list", "a true/false value", "a number", else
    its type."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple, set)):
        return "a list"
    if isinstance(value, bool):
        return "a true/false value"
    return "a number" if isinstance(value, (int, float)) else f"a {type(value).__name__}"


def _convert(value: Any, typ: Any, default: Any, task_list: bool = False) -> Any:
    """Turn a YAML/CLI value into the field's type (strings from the CLI are parsed as YAML); ``task_list``: a list
    of task names (:func:`_task_list`)."""
    if task_list:
        return _task_list(value)
    if isinstance(value, str) and not (typ is str or isinstance(default, str)):
        import yaml

        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ValueError(f"cannot read {value!r} as a value: {' '.join(str(e).split())}") from None
    if dataclasses.is_dataclass(default):
        if not isinstance(value, dict):
            raise ValueError(f"expected a mapping for {type(default).__name__}, got {value!r}")
        return _from_dict(type(default), value, base=default)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"expected true/false, got {value!r}")
        return value
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if isinstance(value, str):  # what YAML leaves a string: "1e3" (YAML 1.1 floats need a dot), "abc"
            try:
                value = float(value)
            except ValueError:
                pass
        whole = isinstance(default, int)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (whole and isinstance(value, float) and not value.is_integer())
        ):  # null, a list, a word: named as such, not as int()'s or float()'s complaint about its argument
            raise ValueError(f"expected {'a whole number' if whole else 'a number'}, got {value!r}")
        return int(value) if whole else float(value)
    if isinstance(default, list):
        if value is None:  # videos= (nothing after it) or a YAML key with no value: empty, not [None]
            return []
        return list(value) if isinstance(value, (list, tuple)) else [value]
    return value


def _from_dict(cls, data: dict, base=None):
    fields = {f.name: f for f in dataclasses.fields(cls)}
    base = base if base is not None else cls()
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise ValueError(f"{cls.__name__} has no field {key!r}; fields: {sorted(fields)}")
        kwargs[key] = _convert(
            value, fields[key].type, getattr(base, key), fields[key].metadata.get("task_list", False)
        )
    return dataclasses.replace(base, **kwargs)


def apply_overrides(cfg, overrides: Sequence[str]):
    """Return a copy of ``cfg`` with ``key=value`` overrides applied together (dotted keys reach nested
    configs); validation runs once on the result, so ``lora=false full_finetune=true`` works in any order."""
    data: dict = {}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key=value")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return _merge(cfg, data) if data else cfg


def _merge(cfg, data: dict, _validate: bool = True):
    kwargs = {}
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    for key, value in data.items():
        if key not in fields:
            from sf2t._names import did_you_mean

            hint = did_you_mean(key, fields)  # "out" -> out_dir
            raise ValueError(f"{type(cfg).__name__} has no field {key!r}; {hint}fields: {sorted(fields)}")
        cur = getattr(cfg, key)
        if dataclasses.is_dataclass(cur) and isinstance(value, dict):
            try:
                kwargs[key] = _merge(cur, value)
            except ValueError as e:  # which section: "counting: count_min: expected a whole number, got None"
                said = str(e)
                raise ValueError(said if said.startswith(f"TrainConfig.{key}") else f"{key}: {said}") from None
        else:
            try:
                kwargs[key] = _convert(value, fields[key].type, cur, fields[key].metadata.get("task_list", False))
            except (ValueError, TypeError) as e:  # name the field: "lr: could not convert string to float: 'x'"
                raise ValueError(f"{key}: {e}") from None
    # Build without __post_init__ checks, then validate the whole result once.
    out = copy.copy(cfg)
    for k, v in kwargs.items():
        setattr(out, k, v)
    if _validate and hasattr(out, "validate"):
        out.validate()
    return out


def read_mapping(path: str | os.PathLike, what: str = "config") -> dict:
    """The YAML (or JSON) mapping in ``path`` ({} for an empty file). A ValueError that names the file for a missing
    or unreadable file, text that does not parse (with YAML's line and column) and a top level that is not a
    mapping of ``field: value`` lines."""
    import yaml

    from sf2t._files import read_text

    text = read_text(path, f"{what} {path}", "a YAML or JSON file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        from sf2t._files import json_lines_kind, json_lines_noun

        kind = json_lines_kind(text)
        if kind is not None:  # YAML's "expected '<document start>'" did not say what the file was
            hint = (
                " (a manifest lists videos: sf2t train takes it as videos=PATH, sf2t finevidbench build as --manifest "
                "PATH)"
                if kind == "manifest"
                else ""
            )
            raise ValueError(
                f"{what} {path}: {json_lines_noun(text)}, not a YAML or JSON mapping of field: value settings{hint}"
            ) from None
        raise ValueError(f"{what} {path}: not valid YAML: {' '.join(str(e).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(
            f"{what} {path}: expected a mapping of field: value lines at the top level, got a {type(data).__name__}"
        )
    return data


def find_run_config(trained: str | os.PathLike) -> Path | None:
    """The ``train_config.json`` of the sf2t run that made ``trained`` (an adapter or model folder): inside it (a
    merged checkpoint: ``sf2t merge`` copies the run's there) or next to it (``out_dir/adapter``,
    ``out_dir/model``); None when there is neither. ``sf2t eval`` and ``load_trained`` take the run's frame layout
    and token compression from it."""
    trained = Path(trained)
    for path in (trained / "train_config.json", trained.parent / "train_config.json"):
        if path.is_file():
            return path
    return None
