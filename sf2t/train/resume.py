"""Whether a checkpoint can be resumed, checked before any model loads.

``check_resume`` finds the checkpoint ``resume`` names and refuses one that is damaged, past ``steps``, written with
other weight shapes (:data:`SHAPE_FIELDS`) or on another model (``model_identity``, saved in each ``state.json``);
``config_changes`` lists the other settings a resume changes, for the log; ``saved_world_size`` says how many processes
wrote a checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from sf2t.train.checkpoint import CheckpointManager
from sf2t.train.config import TrainConfig, config_to_dict
from sf2t.train.series import Series

__all__ = [
    "check_resume",
    "config_changes",
    "model_identity",
    "saved_world_size",
    "RUN_ONLY_FIELDS",
    "SHAPE_FIELDS",
    "LORA_SHAPE_FIELDS",
]


def saved_world_size(state: dict, world: int, batch_size: int) -> int:
    """How many processes wrote the checkpoint ``state``: its ``world_size``; an older checkpoint (none saved) is
    taken as written by 1 process when its batch_size is this run's global batch (``world`` x ``batch_size``: a
    single-process run resumed under torchrun), else by as many processes as this run has."""
    if "world_size" in state:
        return int(state["world_size"])
    saved_batch = (state.get("config") or {}).get("batch_size")
    return 1 if world > 1 and saved_batch == world * batch_size else world


# fields that change how a run is watched or saved, not what it computes: a resume may change them freely
RUN_ONLY_FIELDS = frozenset(
    "resume out_dir progress log_every save_every keep_checkpoints eval_every eval_samples tensorboard threads "
    "workers prefetch clip_cache_mb overwrite dist_timeout_min".split()
)


def config_changes(saved: dict | None, now: dict, prefix: str = "") -> list[str]:
    """``"field: old -> new"`` for each field (dotted into task sections) whose value differs between a checkpoint's
    config and this run's, leaving out :data:`RUN_ONLY_FIELDS`; [] when ``saved`` is None (an older checkpoint)."""
    if saved is None:
        return []
    from sf2t.tasks import TASKS

    used = set(now.get("tasks") or ()) | set(now.get("curriculum_tasks") or ())
    out = []
    for key in sorted(set(saved) | set(now)):
        if not prefix and key in RUN_ONLY_FIELDS:
            continue
        if not prefix and key in TASKS and key not in used:  # the settings of a task this run does not train
            continue
        a, b = saved.get(key, "(absent)"), now.get(key, "(absent)")
        if f"{prefix}{key}" == "consistency.candidate_frames" and a == "(absent)":
            a = "(absent: 2 before candidate_frames existed)"
        if isinstance(a, dict) and isinstance(b, dict) and key != "task_videos":
            out.extend(config_changes(a, b, f"{prefix}{key}."))
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


# fields that set the shapes of the trained weights (LoRA's targets and rank, or every weight) and the optimizer's
# parameter groups: a checkpoint resumes only with the values it was written with
SHAPE_FIELDS = ("lora", "full_finetune")


LORA_SHAPE_FIELDS = ("lora_rank", "lora_llm", "lora_vision")


# config.json keys (top level and in its *_config sections) that tell one model from another: the family and the
# sizes that set the weights' shapes. Names and dtypes are left out: the same model copied to another folder, or
# saved again in another dtype, is the same model to resume on.
_IDENTITY_KEYS = (
    "model_type",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
    "depth",
    "embed_dim",
    "num_heads",
    "patch_size",
    "spatial_merge_size",
    "temporal_patch_size",
    "out_hidden_size",
)


def model_identity(model: str | os.PathLike) -> dict | None:
    """What tells the model in folder ``model`` from another, read from its ``config.json`` alone (no weights): its
    ``model_type`` and architecture sizes (:data:`_IDENTITY_KEYS`, ``vision_config.depth`` for a section's), with
    ``sha256``, a hash of those. Saved in each checkpoint's ``state.json`` (``model_identity``) so that a resume on
    another model is refused before it loads; None where there is no readable ``config.json`` (not checked)."""
    import hashlib

    try:
        raw = json.loads((Path(model) / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(raw, dict):
        return None
    ident = {k: raw[k] for k in _IDENTITY_KEYS if k in raw}
    for section, sub in sorted(raw.items()):
        if section.endswith("_config") and isinstance(sub, dict):
            ident.update({f"{section}.{k}": sub[k] for k in _IDENTITY_KEYS if k in sub})
    ident["sha256"] = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()
    return ident


def _check_state(state: dict) -> None:
    """Read a checkpoint's ``state.json`` as :func:`train` restores it (its losses, counts, dropped videos and RNG
    states), without a model: a KeyError, TypeError or ValueError for one that parses but is not whole (edited, or
    written by something else), which was a traceback once the model had loaded and the weights were restored."""
    import base64
    import binascii
    import pickle
    import random

    Series.from_state(state["losses"])
    for v in dict(state["task_loss"]).values():  # (train reads it as state["task_loss"]: required)
        Series.from_state(v)
    for v in dict(state.get("task_acc", {})).values():  # (older checkpoints have none)
        Series.from_state(v)
    list(state["evals"])
    int(state["tokens"]), float(state["data_seconds"])
    if state.get("next_index") is not None:
        int(state["next_index"])
    if "world_size" in state:  # a resume with as many processes reads rank r's entries of the per-rank lists
        world = int(state["world_size"])
        for part in ("dropped_by_rank", "rng_by_rank"):
            if state.get(part) and len(state[part]) != world:
                raise ValueError(f"{part} has {len(state[part])} entries for world_size {world}")
    for entries in [state["dropped"], *(state.get("dropped_by_rank") or [])]:
        for entry in entries:
            _path, _kind, _reason, *_ = entry  # (path, kind, reason[, task])
    size = torch.get_rng_state().numel()
    for rng in [state.get("rng", {}), *(state.get("rng_by_rank") or [])]:
        try:
            if "torch" in rng and len(base64.b64decode(rng["torch"], validate=True)) != size:
                raise ValueError(f"an RNG state of {len(base64.b64decode(rng['torch']))} bytes, not {size}")
            if "python" in rng:
                random.Random().setstate(pickle.loads(base64.b64decode(rng["python"], validate=True)))  # noqa: S301
        except (binascii.Error, pickle.UnpicklingError, EOFError) as e:
            raise ValueError(f"an RNG state that does not read ({e})") from None


def check_resume(cfg: TrainConfig) -> Path | None:
    """The checkpoint ``cfg.resume`` names (None without resume, or when ``auto`` finds none), checked without
    loading any model: a FileNotFoundError for a path that is not a checkpoint, a ValueError for a damaged
    ``state.json``, a checkpoint past ``cfg.steps`` or a saved config whose :data:`SHAPE_FIELDS` (with LoRA also
    :data:`LORA_SHAPE_FIELDS`) differ from ``cfg``'s (the weights or the optimizer state would not fit: a
    size-mismatch or parameter-group error once loaded), or ``cfg.model`` another model than the checkpoint's
    (:func:`model_identity`)."""
    if not cfg.resume:
        return None
    path = CheckpointManager(Path(cfg.out_dir) / "checkpoints").find(cfg.resume)
    if path is None:
        return None
    try:
        state = json.loads((path / "state.json").read_text())
        step = int(state["step"])
        _check_state(state)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        said = f"{type(e).__name__}: {e}" if isinstance(e, (KeyError, IndexError)) else str(e)
        raise ValueError(f"resume: {path / 'state.json'} is damaged ({said}); resume from another checkpoint") from None
    from sf2t.train.checkpoint import checkpoint_file_problem

    for name in ("trainable.pt", "optimizer.pt"):  # torch's error was a traceback once the model had loaded
        problem = checkpoint_file_problem(path / name)
        if problem:
            raise ValueError(f"resume: {problem}; resume from another checkpoint")
    if step > cfg.steps:  # nothing to train, and the finished run's weights would be replaced by older ones
        raise ValueError(
            f"resume: checkpoint {path} is at step {step} > steps={cfg.steps}: nothing would be trained and the run's "
            f"weights would be replaced by the checkpoint's; set steps >= {step}"
        )
    saved = state.get("config")
    if isinstance(saved, dict):  # older checkpoints have none: the load itself then says what does not fit
        now = config_to_dict(cfg)
        keys = SHAPE_FIELDS + (LORA_SHAPE_FIELDS if cfg.lora and saved.get("lora") else ())
        diff = [
            f"{k} is {saved[k]!r} in the checkpoint, {now[k]!r} now" for k in keys if k in saved and saved[k] != now[k]
        ]
        if diff:
            raise ValueError(
                f"resume: {'; '.join(diff)} ({path}): that changes the shape of the trained weights or of the "
                "optimizer state; resume with the checkpoint's value, or start afresh (overwrite=true or another "
                "out_dir)"
            )
    _check_same_model(cfg, path, state)
    return path


def _check_same_model(cfg: TrainConfig, path: Path, state: dict) -> None:
    """A ValueError when ``cfg.model`` is another model than the one checkpoint ``path`` was trained on (by
    :func:`model_identity`, saved in its ``state.json``; older checkpoints have none and are checked by the weights'
    names and shapes once the model loads). The same model in another folder resumes."""
    saved = state.get("model_identity")
    now = model_identity(cfg.model)
    if not isinstance(saved, dict) or now is None or saved.get("sha256") == now.get("sha256"):
        return
    config = state.get("config")
    run_model = config.get("model") if isinstance(config, dict) else None
    differ = [
        f"{k} is {saved[k]!r} in the checkpoint's model, {now[k]!r} in this one"
        for k in sorted(set(saved) & set(now) - {"sha256"})
        if saved[k] != now[k]
    ] or ["their config.json differ in the sizes of their weights"]
    kind = f" ({saved['model_type']})" if saved.get("model_type") else ""
    use = f"model={run_model}" if run_model else "the model the run used"
    raise ValueError(
        f"resume: checkpoint {path} was trained on {run_model or 'another model'}{kind}; model={cfg.model} is "
        f"another model ({'; '.join(differ)}): resume with {use}, or train this model in a new out_dir (or "
        "overwrite=true)"
    )
