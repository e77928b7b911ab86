"""The training loop, nanoGPT style: read it top to bottom.

setup (model, LoRA or full fine-tuning, data) -> for each step: lr from the schedule, grad_accum micro-batches
(forward, loss on the answer tokens only, backward), clip, AdamW step -> save the adapter or the weights.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from sf2t._plural import counted
from sf2t.models.qwen2_vl import IGNORE_INDEX
from sf2t.train import series
from sf2t.train.checkpoint import CheckpointManager, rng_state, set_rng_state
from sf2t.train.config import TrainConfig, config_to_dict
from sf2t.train.series import Series

# peft 0.21 reads transformers 5.2x's deprecated ``is_gradient_checkpointing`` each time it wraps or loads a model:
# a warning the user can do nothing about
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)

__all__ = [
    "lr_at",
    "setup_model",
    "apply_compression",
    "make_factories",
    "train",
    "save_trained",
    "load_trained",
    "TrainResult",
]

_MODEL_KEYS = (
    "input_ids",
    "attention_mask",
    "mm_token_type_ids",
    "pixel_values_videos",
    "video_grid_thw",
    "pixel_values",  # images (localization's target), present when the batch has any
    "image_grid_thw",
    "image_sizes",  # LLaVA: the images' original sizes (anyres)
)


def _in_vision_tower(name: str) -> bool:
    """Whether a parameter belongs to the vision tower (Qwen ``visual``, LLaVA ``vision_tower``)."""
    return ".visual." in f".{name}" or ".vision_tower." in f".{name}"


def _param_groups(named: dict) -> list[tuple[list[str], bool, bool]]:
    """(names, vision, decay) of each optimizer group of the trainable parameters ``named`` (name -> tensor), in
    order: weight decay only on matrices, the vision tower apart (its own learning-rate scale)."""
    out = []
    for vision in (False, True):
        for decay in (True, False):
            names = [n for n, p in named.items() if _in_vision_tower(n) == vision and (p.dim() >= 2) == decay]
            if names:
                out.append((names, vision, decay))
    return out


def saved_world_size(state: dict, world: int, batch_size: int) -> int:
    """How many processes wrote the checkpoint ``state``: its ``world_size``; an older checkpoint (none saved) is
    taken as written by 1 process when its batch_size is this run's global batch (``world`` x ``batch_size``: a
    single-process run resumed under torchrun), else by as many processes as this run has."""
    if "world_size" in state:
        return int(state["world_size"])
    saved_batch = (state.get("config") or {}).get("batch_size")
    return 1 if world > 1 and saved_batch == world * batch_size else world


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate at optimizer step ``step`` (0-based): linear warmup, then cosine/linear decay or constant."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.lr * cfg.min_lr_ratio
    if cfg.schedule == "linear":
        return floor + (cfg.lr - floor) * (1.0 - progress)
    return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def apply_compression(model, token_keep_ratio: float, token_stage: str = "after_tower", token_first_group: str = "all"):
    """Compress the model's video tokens (``sf2t.models.apply_sf2t``, after or before the vision tower; the first
    temporal group kept whole or budgeted) when the run asks for it (< 1); the one place training, evaluation before
    training, reloading a run and ``sf2t eval`` do it."""
    if token_keep_ratio < 1.0:
        from sf2t.models import apply_sf2t

        apply_sf2t(model, token_keep_ratio, stage=token_stage, first_group=token_first_group)
    return model


def setup_model(cfg: TrainConfig, model=None, tokenizer=None):
    """Load the checkpoint (unless given) and make the right weights trainable.

    LoRA (``cfg.lora``): peft adapters on the LLM's projections and the vision tower's blocks (fused ``qkv``
    included), from ``sf2t.models.qwen2_vl.lora_target_modules``. Full fine-tuning: every weight.
    Returns (model, tokenizer).
    """
    from sf2t.models import load_model_and_tokenizer

    if model is None or tokenizer is None:
        model, tokenizer = load_model_and_tokenizer(cfg.model)
    family = family_of_model(model)
    if cfg.gradient_checkpointing:
        enable_checkpointing(model)
    torch.manual_seed(cfg.seed)  # LoRA A matrices are drawn here
    if cfg.lora:
        from peft import LoraConfig, get_peft_model

        targets = family.lora_target_modules(model, vision=cfg.lora_vision, llm=cfg.lora_llm)
        lcfg = LoraConfig(
            r=cfg.lora_rank,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=targets,
            bias="none",
        )
        model = get_peft_model(model, lcfg)
    elif cfg.full_finetune:
        for p in model.parameters():
            p.requires_grad_(True)
    else:
        raise ValueError("TrainConfig: set lora=true or full_finetune=true (nothing would be trained)")
    apply_compression(model, cfg.token_keep_ratio, cfg.token_stage, cfg.token_first_group)
    model.to(cfg.device)
    model.train()
    return model, tokenizer


def shard_model(model) -> None:
    """FSDP2 in place: ``fully_shard`` on every decoder layer and vision block (the classes the model lists in
    ``_no_split_modules``), then on the whole model. Parameters become DTensors sharded over the process group."""
    from torch.distributed.fsdp import fully_shard

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    names = set(getattr(base, "_no_split_modules", None) or ())
    units = [m for m in model.modules() if type(m).__name__ in names]
    if not units:
        raise ValueError(f"{type(base).__name__} lists no _no_split_modules: no layers to shard with FSDP")
    for m in units:
        fully_shard(m)
    fully_shard(model)


def full_state_dict(model) -> dict:
    """The whole state dict of an FSDP-sharded model as plain CPU tensors (a collective: every rank calls it)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def enable_checkpointing(model) -> None:
    """Activation (gradient) checkpointing of the LLM's decoder layers and the vision tower's blocks, non-reentrant
    (frozen inputs under LoRA need no input-grad hooks). transformers >= 5.2x calls it
    ``activation_checkpointing_enable``; earlier 5.x ``gradient_checkpointing_enable``."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def family_of_model(model):
    """The :class:`sf2t.models.Family` of a (possibly peft-wrapped) model, from its config's ``model_type``."""
    from sf2t.models.families import family_of_model_type

    return family_of_model_type(getattr(getattr(model, "config", None), "model_type", None), type(model).__name__)


def make_inputs(cfg: TrainConfig, family=None, context=None):
    """The run's :class:`sf2t.models.inputs.ModelInputs`: ``family`` (default: read from ``cfg.model``'s config), the
    checkpoint's processor for the LLaVA families, the config's frame size / repeat / layout / token_keep_ratio, and
    the model's ``context`` (:class:`sf2t.models.context.Context`) each sample is checked against."""
    from sf2t.models import load_processor
    from sf2t.models.families import family_of_checkpoint
    from sf2t.models.inputs import ModelInputs

    if family is None:  # a run without a checkpoint path (a model passed in) is Qwen2-VL unless told
        from sf2t.models import FAMILIES

        family = family_of_checkpoint(cfg.model) if cfg.model else FAMILIES["qwen2_vl"]
    processor = None if family.pixel_layout == "qwen_patches" else load_processor(cfg.model)
    return ModelInputs(
        family,
        processor,
        frame_size=cfg.frame_size,
        frame_repeat=cfg.frame_repeat,
        layout=cfg.layout,
        token_keep_ratio=cfg.token_keep_ratio,
        token_first_group=cfg.token_first_group,
        context=context,
    )


def model_context(cfg: TrainConfig, tokenizer):
    """The :class:`sf2t.models.context.Context` of ``cfg.model`` (its config.json) and ``tokenizer``; None for a run
    without a checkpoint path (a model passed in)."""
    if not cfg.model:
        return None
    from transformers import AutoConfig

    from sf2t.models.context import Context

    return Context.of(AutoConfig.from_pretrained(cfg.model), tokenizer)


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


def make_factories(cfg: TrainConfig, tokenizer, family=None):
    """(train factory, eval factory) over ``cfg.videos`` / ``cfg.eval_videos`` with the config's tasks, for
    ``family``'s model (default: the family of ``cfg.model``)."""
    from sf2t.tasks import make_task
    from sf2t.train.data import FrameStore, SampleFactory, VideoPool

    tasks = {name: make_task(name, cfg.task_config(name)) for name in cfg.tasks}
    min_frames = min(t.min_frames() for t in tasks.values())
    store = FrameStore(cache_mb=cfg.clip_cache_mb, decoder=cfg.decoder, device=cfg.device)
    # frame size, repeat, layout and token_keep_ratio live in the model inputs (make_inputs)
    context = model_context(cfg, tokenizer)
    inputs = make_inputs(cfg, family, context)
    mixed = bool(cfg.supervised_data and cfg.supervised_ratio > 0)
    if context is not None:  # before any video is read: a run whose largest sample cannot fit is refused here
        from sf2t.models.context import check_run_fits

        curriculum = {n: make_task(n, cfg.task_config(n)) for n in cfg.curriculum_tasks if cfg.curriculum_steps}
        check_run_fits(context, tasks | curriculum, inputs, tokenizer, cfg.supervised_frames if mixed else None)
    common = dict(store=store, max_resample=cfg.max_resample, task_videos=cfg.task_videos, inputs=inputs)
    supervised = None
    if mixed:
        from sf2t.train.supervised import load_supervised

        supervised = load_supervised(cfg.supervised_data)
    train_pool = VideoPool.from_paths(cfg.videos, min_frames=min_frames, decoder=cfg.decoder, what="videos")
    if supervised and context is not None:  # records too long to fit: left out now, recorded in the pool's skips
        from sf2t.train.supervised import leave_out_long

        supervised = leave_out_long(supervised, context, inputs, tokenizer, cfg.supervised_frames, train_pool)
    train_f = SampleFactory(
        train_pool,
        tasks,
        tokenizer,
        seed=cfg.seed,
        salt="train",
        weights=cfg.task_weights or None,
        supervised=supervised,
        supervised_ratio=cfg.supervised_ratio,
        supervised_frames=cfg.supervised_frames,
        **common,
    )
    from sf2t.train.targets import leave_out_large_targets

    # LLaVA localization: videos none of whose target images can fit the context are left out of that task now
    leave_out_large_targets(train_f, "videos")
    eval_f = None
    if cfg.eval_videos:
        eval_pool = VideoPool.from_paths(
            cfg.eval_videos, min_frames=min_frames, decoder=cfg.decoder, what="eval_videos"
        )
        eval_f = SampleFactory(eval_pool, tasks, tokenizer, seed=cfg.seed, salt="eval", **common)
        leave_out_large_targets(eval_f, "eval_videos")
    return train_f, eval_f


def per_sample_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token cross-entropy on the supervised (answer) tokens.

    logits [B, T, V], labels [B, T] (-100 = not supervised). Returns (mean loss over all supervised tokens of
    the batch, as the HF models compute it; per-sample mean loss [B], detached).
    """
    total, count, per = token_loss_sum(logits, labels)
    return total / max(count, 1), per


class TrainResult(dict):
    """What ``train`` returns: losses, timings, skipped videos, where things were saved, and ``model`` (the
    trained model; everything else is JSON-serialisable). After a resume, ``losses`` and ``evals`` cover the whole
    run, while ``seconds``, ``data_seconds`` and ``tokens_per_second`` are this session's. ``losses``: every step's
    loss, or past ``sf2t.train.series.EXACT`` steps the last ones (``losses_start`` steps in; ``loss_first``: the
    first step's; metrics.jsonl has them all)."""


def train(
    cfg: TrainConfig,
    *,
    model=None,
    tokenizer=None,
    factory=None,
    eval_fn: Callable[[Any, int], dict] | None = None,
    log: Callable[[str], None] = print,
    save: bool = True,
    initial_evals: Sequence[dict] = (),
) -> TrainResult:
    """Train for ``cfg.steps`` optimizer steps; returns a ``TrainResult`` (and saves to ``cfg.out_dir``).
    ``initial_evals``: held-out evaluations made before training (``sf2t train``'s step 0): they start the result's
    ``evals`` and go into every checkpoint, so a resumed run reports them too (it does not evaluate step 0 again)."""
    from sf2t._progress import progress_bar
    from sf2t.train.data import SUPERVISED, Skip, batches

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.fsdp and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        raise ValueError(FSDP_NEEDS_TORCHRUN)
    started_dist, rank, world = _init_distributed(cfg)
    if rank != 0:  # one voice: rank 0 logs, shows progress, writes metrics, checkpoints and the result
        log = lambda *_a, **_k: None  # noqa: E731
    resume_from = check_resume(cfg)  # before the model is set up: a checkpoint that cannot be resumed is named
    model, tokenizer = setup_model(cfg, model, tokenizer)
    if factory is None:
        factory, _ = make_factories(cfg, tokenizer, family_of_model(model))
    train_model = model
    if cfg.fsdp:
        shard_model(model)  # in place: parameters become DTensors, sharded over the ranks
    elif world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # The LLaVA families take the vision tower's features from a hidden layer (vision_feature_layer: -2 for
        # LLaVA-NeXT-Video, -1 before post_layernorm for LLaVA-OneVision): the layers after it never get a gradient,
        # which DDP refuses at the second step unless it looks for unused parameters.
        unused = family_of_model(model).pixel_layout != "qwen_patches"
        train_model = DistributedDataParallel(model, find_unused_parameters=unused)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    n_train = sum(p.numel() for p in params)
    n_total = sum(p.numel() for p in model.parameters())
    per_step = cfg.batch_size * cfg.grad_accum  # samples per optimizer step, on each rank
    log(
        f"training {n_train:,} of {n_total:,} parameters ({'LoRA' if cfg.lora else 'full fine-tuning'}), "
        f"{counted(cfg.steps, 'step')} x {counted(per_step * world, 'sample')}"
        f"{f' ({world} processes x {per_step})' if world > 1 else ''}, "
        f"lr {cfg.lr:g} {cfg.schedule}"
    )
    # Weight decay only on matrices (nanoGPT): norms and biases are left alone. The vision tower may get its
    # own learning-rate scale (cfg.vision_lr_scale).
    by_name = dict(named)
    groups = [
        {
            "params": [by_name[n] for n in names],
            "weight_decay": cfg.weight_decay if decay else 0.0,
            "lr_scale": cfg.vision_lr_scale if vision else 1.0,
        }
        for names, vision, decay in _param_groups(by_name)
    ]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas))

    def tasks_for_step(micro_step: int):
        if cfg.curriculum_steps and micro_step // cfg.grad_accum < cfg.curriculum_steps:
            return list(cfg.curriculum_tasks)
        return None

    # bf16 autocast of the forward pass (CUDA; TrainConfig refuses bf16 elsewhere)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cfg.bf16 else contextlib.nullcontext()
    # per-step losses and per-sample task losses and accuracies, bounded (sf2t.train.series): metrics.jsonl has
    # every step's values; the run keeps what its curves, logs and result need
    loss_window = max(series.EXACT, cfg.log_every, 50)  # (the progress bar shows the mean of the last 50)
    losses = Series(window=loss_window)
    task_loss: dict[str, Series] = {}
    task_acc: dict[str, Series] = {}
    evals: list[dict] = list(initial_evals)
    t_data = 0.0
    n_tokens = 0
    start_step = 0
    cursor = None  # the global index of the first sample this session draws (None: from the step, a new run)
    ckpt = CheckpointManager(Path(cfg.out_dir) / "checkpoints", keep=cfg.keep_checkpoints)
    if cfg.resume:
        path = resume_from
        if path is None:
            log(f"resume=auto: no checkpoint in {ckpt.root}; starting from step 0")
        else:
            st = ckpt.load(
                path, model, opt, sharded=cfg.fsdp, group_names=lambda d: [names for names, *_ in _param_groups(d)]
            )
            if st.get("idle_adapters_dropped"):
                log(
                    f"resume: left out {st['idle_adapters_dropped']} LoRA matrices of the checkpoint on modules this "
                    "version does not adapt (vision layers after vision_feature_layer, whose output the model never "
                    "reads); they never trained (lora_B all zero), so the weights are the same"
                )
            start_step = int(st["step"])
            # (an older checkpoint's plain lists are appended again)
            losses = Series.from_state(st["losses"], window=loss_window)
            task_loss = {k: Series.from_state(v) for k, v in st["task_loss"].items()}
            task_acc = {k: Series.from_state(v) for k, v in st.get("task_acc", {}).items()}  # older: this session on
            evals = list(st["evals"])
            n_tokens, t_data = int(st["tokens"]), float(st["data_seconds"])
            saved_batch = (st.get("config") or {}).get("batch_size", cfg.batch_size)
            saved_world = saved_world_size(st, world, cfg.batch_size)
            same_world = saved_world == world
            if "world_size" not in st and not same_world:
                log(
                    f"resume: the checkpoint (an older sf2t's) does not record its process count; its batch_size "
                    f"{saved_batch} is this run's global batch ({world} x {cfg.batch_size}), so it is taken as "
                    "written by 1 process"
                )
            # each rank's own pool and RNG when the process count is the same (torchrun: ranks drop videos and
            # draw dropout masks independently); else the union of the ranks' drops and rank 0's RNG
            by_rank = st.get("dropped_by_rank")
            in_pool = {i.path for i in factory.pool.infos}
            for path_, kind, reason, *task in by_rank[rank] if same_world and by_rank else st["dropped"]:
                # later draws see the same pool (supervised records' videos are not in the pool's infos)
                if path_ in in_pool or (task and task[0] == SUPERVISED):
                    factory.pool.drop(path_, kind, reason, task[0] if task else None)
            if same_world and st.get("rng_by_rank"):
                set_rng_state(st["rng_by_rank"][rank])
            if st.get("next_index") is not None:  # older checkpoints: from the step (same processes and batch)
                cursor = int(st["next_index"])
            log(f"resumed from {path} at step {start_step} of {cfg.steps}")
            changed = config_changes(st.get("config"), config_to_dict(cfg))
            if not same_world:
                if saved_world * saved_batch == world * cfg.batch_size:  # the same global batches: the same run
                    changed = [c for c in changed if not c.startswith("batch_size:")]
                    log(
                        f"resume: the checkpoint was written by {counted(saved_world, 'process')} x batch_size "
                        f"{saved_batch}, this run has {world} x {cfg.batch_size}: the same global batch of "
                        f"{counted(world * cfg.batch_size, 'sample')}, drawn from where the checkpoint stopped"
                    )
                else:
                    changed.append(
                        f"global batch (processes x batch_size): {saved_world} x {saved_batch} -> "
                        f"{world} x {cfg.batch_size}"
                    )
            if changed:
                log(
                    f"resume: the config differs from the checkpoint's ({'; '.join(changed)}); the run goes on with "
                    "the new values, so it will not equal an uninterrupted run with the old ones"
                )
    micro0 = start_step * cfg.grad_accum
    # rank r of W takes samples [(m W + r) B, (m W + r + 1) B) of micro-batch m: the global batch of W B samples is
    # the one a single process with batch_size W B would draw, in the same order. A resumed run starts where the
    # checkpoint's run stopped (its next_index), whatever the processes and batch size were then: no sample twice.
    if cursor is None:
        cursor = micro0 * world * cfg.batch_size
    cursor0, step0 = cursor, start_step
    data = batches(
        factory,
        cfg.batch_size,
        start=cursor0 + rank * cfg.batch_size,
        start_step=micro0,
        tasks_for_step=tasks_for_step,
        skip=(world - 1) * cfg.batch_size,
        workers=cfg.workers,
    )
    if cfg.prefetch:
        from sf2t.train.data import Prefetch

        data = Prefetch(data, cfg.prefetch, cfg.device)
    held = getattr(data, "paused", contextlib.nullcontext)  # the prefetch thread held between items
    peft = cfg.lora and hasattr(model, "peft_config")

    identity = model_identity(cfg.model)

    def run_state(step_done: int) -> dict:
        """The checkpoint's state after ``step_done`` steps (a collective under torchrun: every rank calls it)."""
        by_rank = _gather((_skip_rows(factory.pool.skipped), rng_state()), world)
        return {
            "losses": losses.state(),
            "task_loss": {k: v.state() for k, v in task_loss.items()},
            "task_acc": {k: v.state() for k, v in task_acc.items()},
            "evals": evals,
            "tokens": n_tokens,
            "data_seconds": t_data,
            # videos dropped while training (static, broken): a resumed run drops them too (skipped-at-start
            # ones are not in its pool anyway); every rank's (each draws its own samples), and all of them together
            "dropped": _union(d for d, _ in by_rank),
            "dropped_by_rank": [d for d, _ in by_rank],
            "rng_by_rank": [r for _, r in by_rank],
            "world_size": world,
            "next_index": cursor0 + (step_done - step0) * cfg.grad_accum * world * cfg.batch_size,
            "config": config_to_dict(cfg),
            "model_identity": identity,  # a resume on another model is refused before it loads (check_resume)
        }

    metrics = MetricsLog(Path(cfg.out_dir), start_step, tensorboard=cfg.tensorboard, log=log) if rank == 0 else None
    t_start = time.perf_counter()
    t_data_start, tokens_start = t_data, n_tokens
    bar = progress_bar(
        range(start_step, cfg.steps),
        auto=True,
        desc="train",
        disable=not cfg.progress or rank != 0,
        dynamic_ncols=True,
        leave=False,
        initial=start_step,
        total=cfg.steps,
    )
    for step in bar:
        lr = lr_at(step, cfg)
        for g in opt.param_groups:
            g["lr"] = lr * g["lr_scale"]
        step_loss = 0.0
        t_step = time.perf_counter()
        step_tasks: dict[str, list[float]] = {}
        step_acc: dict[str, list[float]] = {}
        step_samples: list[list[tuple[str, float, float]]] = []  # per micro-batch: (task, loss, exact) per sample
        step_tokens = 0
        for _ in range(cfg.grad_accum):
            micro_samples: list[tuple[str, float, float]] = []
            step_samples.append(micro_samples)
            t0 = time.perf_counter()
            batch = next(data)
            t_data += time.perf_counter() - t0
            chunks = batch["chunks"]  # one forward each (LLaVA: one per frame count; Qwen: the whole batch)
            # normalised by the global batch's supervised tokens (all ranks): the mean a single process with the
            # whole global batch would take; x world because DDP averages the ranks' gradients
            # (labels are still on the host: no device sync; the reduction runs on the run's device, as NCCL needs)
            count = float(sum(int((c["labels"][:, 1:] != IGNORE_INDEX).sum()) for c in chunks))
            if world > 1:
                count_t = torch.tensor(count, dtype=torch.float64, device=cfg.device)
                torch.distributed.all_reduce(count_t)
                count = float(count_t)
            total = max(count, 1.0)
            loss_sum = torch.zeros((), dtype=torch.float64, device=cfg.device)
            for k, c in enumerate(chunks):
                inputs = {key: c[key].to(cfg.device) for key in _MODEL_KEYS if key in c}
                labels = c["labels"].to(cfg.device)  # [B, T]
                # DDP / FSDP: gradients sync once, on the micro-batch's last chunk (ranks may have different chunk
                # counts)
                last_chunk = k == len(chunks) - 1
                quiet = contextlib.nullcontext()
                if cfg.fsdp:
                    model.set_requires_gradient_sync(last_chunk)
                elif world > 1 and not last_chunk:
                    quiet = train_model.no_sync()
                with quiet:
                    with autocast:
                        logits = train_model(**inputs).logits  # [B, T, V]
                    tok_sum, _, per = token_loss_sum(logits, labels)
                    (tok_sum * world / total / cfg.grad_accum).backward()
                loss_sum += tok_sum.detach().double()
                step_tokens += int(c["attention_mask"].sum())
                exact = answer_exact(logits.detach(), labels).tolist()  # teacher-forced: every answer token right
                micro_samples.extend(
                    (name, value, float(ok)) for name, value, ok in zip(c["tasks"], per.tolist(), exact)
                )
            if world > 1:
                torch.distributed.all_reduce(loss_sum)
            step_loss += float(loss_sum) / total / cfg.grad_accum
        if not math.isfinite(step_loss):
            data.close()
            last = ckpt.latest()
            raise FloatingPointError(
                f"loss is {step_loss} at step {step + 1}; last good checkpoint: {last or 'none (save_every=0)'}. "
                "Lower lr, keep grad_clip on, or check the data; resume=auto continues from the checkpoint."
            )
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(step_loss)
        # per-task loss and accuracy and the token count over the global batch (every rank's samples, in the order
        # one process with the whole global batch would see them), not rank 0's share only
        gathered = _gather((step_samples, step_tokens), world)
        for m in range(cfg.grad_accum):
            for samples, _ in gathered:
                for name, value, ok in samples[m]:
                    task_loss.setdefault(name, Series()).append(value)
                    step_tasks.setdefault(name, []).append(value)
                    step_acc.setdefault(name, []).append(ok)
                    task_acc.setdefault(name, Series()).append(ok)
        n_tokens += sum(t for _, t in gathered)
        elapsed = time.perf_counter() - t_start
        done_steps = step + 1 - start_step
        samples_s = done_steps * per_step * world / elapsed if elapsed else 0.0
        tokens_s = (n_tokens - tokens_start) / elapsed if elapsed else 0.0
        wait = (t_data - t_data_start) / elapsed if elapsed else 0.0
        if metrics is not None:
            metrics.write(
                step + 1,
                {
                    "loss": step_loss,
                    "lr": lr,
                    "samples_per_s": samples_s,
                    "tokens_per_s": tokens_s,
                    "data_wait_fraction": wait,
                    "step_seconds": time.perf_counter() - t_step,
                    **{f"loss/{k}": sum(v) / len(v) for k, v in step_tasks.items()},
                    **{f"train_acc/{k}": sum(v) / len(v) for k, v in step_acc.items()},
                },
            )
        if step % 10 == 0 or step == cfg.steps - 1:
            recent = losses.tail(50)
            bar.set_postfix(
                loss=f"{sum(recent) / len(recent):.3f}",
                lr=f"{lr:.2g}",
                sps=f"{samples_s:.1f}",
                tps=f"{tokens_s:.0f}",
                wait=f"{100 * wait:.0f}%",
                refresh=not bar.log_paced,  # into a log: shown at the bar's next redraw (a refresh is a line more)
            )
        if cfg.log_every and (step + 1) % cfg.log_every == 0 and not cfg.progress:
            recent = losses.tail(cfg.log_every)
            log(
                f"step {step + 1:>6}  loss {sum(recent) / len(recent):.4f}  lr {lr:.3g}  {samples_s:.1f} samples/s  "
                f"{tokens_s:.0f} tokens/s  data wait {100 * wait:.0f}%"
            )
        if eval_fn is not None and cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.steps:
            with held():  # the held-out samples are made now, from the frame store the prefetch thread uses
                evals.append({"step": step + 1, **eval_fn(model, step + 1)})
        if cfg.save_every and (step + 1) % cfg.save_every == 0 and step + 1 < cfg.steps:
            with held():  # every rank: their dropped videos and RNG states are gathered
                state = run_state(step + 1)
            if cfg.fsdp:  # every rank takes part in gathering the shards; rank 0 writes
                ckpt.save(step + 1, model, opt, state, peft=peft, sharded=True, rank=rank)
            elif rank == 0:
                ckpt.save(step + 1, model, opt, state, peft=peft)
    bar.close()
    data.close()  # stops DataLoader workers (workers > 0)
    # the videos every rank dropped (each meets its own), for the result and the report
    skipped = [Skip(*e).to_dict() for e in _union(_gather(_skip_rows(factory.pool.skipped), world))]
    if metrics is not None:
        metrics.close()
    seconds = time.perf_counter() - t_start

    result = TrainResult(
        steps=cfg.steps,
        resumed_from=start_step,
        seconds=seconds,
        data_seconds=t_data - t_data_start,
        samples=cfg.steps * per_step * world,
        # this session's tokens over this session's seconds (a resumed run restored the earlier sessions' count)
        tokens_per_second=(n_tokens - tokens_start) / seconds if seconds else 0.0,
        trainable_parameters=n_train,
        total_parameters=n_total,
        # every step's loss up to series.EXACT steps; past that the last loss_window (losses_start: steps before)
        **_recent_losses(losses, loss_window),
        loss_first=losses.first,
        task_losses={k: v.curve() for k, v in task_loss.items()},
        task_train_accuracy={k: v.curve() for k, v in task_acc.items()},
        loss_curve=losses.curve(),
        evals=evals,
        skipped=skipped,
    )
    result["rank"], result["world_size"] = rank, world
    if save and cfg.fsdp:  # the shards gathered on every rank, written by rank 0
        result["saved"] = str(save_trained(model, tokenizer, cfg, rank=rank, sharded=True))
    elif save and rank == 0:
        result["saved"] = str(save_trained(model, tokenizer, cfg))
    if train_model is not model:
        # DDP's wrapper sits in reference cycles: left to the garbage collector, it could be freed at interpreter
        # exit, where its reducer's gloo work aborted the process (std::terminate in a 2-process CI run). Freed here,
        # before the group is torn down.
        train_model = None
        gc.collect()
    if started_dist:
        # every rank reaches this point before any tears the group down: a rank that leaves while rank 0 still
        # writes the gathered checkpoint was seen once abort at exit (std::terminate in a 2-process gloo test)
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    result["model"] = model
    return result


FSDP_NEEDS_TORCHRUN = (
    "fsdp=true shards the model over torchrun's processes, and this is one process (WORLD_SIZE unset or 1): run "
    "it under torchrun --nproc_per_node N, or set fsdp=false"
)


def _gather(obj, world: int) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` (every rank calls it under torchrun); ``[obj]`` in one process."""
    if world <= 1:
        return [obj]
    out: list = [None] * world
    torch.distributed.all_gather_object(out, obj)
    return out


def _skip_rows(skipped) -> list[list]:
    """A pool's skipped videos as JSON rows ``[path, kind, reason, task]`` (a checkpoint's ``dropped``)."""
    return [[s.path, s.kind, s.reason, s.task] for s in skipped]


def _union(lists) -> list:
    """The rows of ``lists`` (each rank's :func:`_skip_rows`), each (path, task) once, in rank order."""
    out, seen = [], set()
    for rows in lists:
        for row in rows:
            if (row[0], row[3]) not in seen:
                seen.add((row[0], row[3]))
                out.append(row)
    return out


def _init_distributed(cfg: TrainConfig) -> tuple[bool, int, int]:
    """(whether this call started the process group, rank, world size). Under torchrun (WORLD_SIZE > 1): gloo on
    the CPU, NCCL on CUDA; every rank plans its own disjoint share of each global batch."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return False, 0, 1
    started = False
    if not dist.is_initialized():
        backend = "nccl" if str(cfg.device).startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        # rank 0 evaluates and saves alone while the others wait at the next collective: NCCL's 10-minute default
        # would kill a run whose held-out evaluation of a real model takes longer
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=float(cfg.dist_timeout_min)))
        started = True
    return started, dist.get_rank(), dist.get_world_size()


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


def save_trained(model, tokenizer, cfg: TrainConfig, *, rank: int = 0, sharded: bool = False) -> Path:
    """LoRA: ``out_dir/adapter`` (``PeftModel.save_pretrained``; load with ``PeftModel.from_pretrained(base, dir)``).
    Full fine-tuning: ``out_dir/model`` (``save_pretrained`` + tokenizer; loads like any checkpoint).
    ``sharded`` (FSDP): every rank calls this (the weights are gathered from the shards); rank 0 writes."""
    out = Path(cfg.out_dir)
    path = out / ("adapter" if cfg.lora else "model")
    state = full_state_dict(model) if sharded else None
    if rank != 0:
        return path
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, state_dict=state)
    if not cfg.lora:
        tokenizer.save_pretrained(path)
        _copy_processor_files(cfg.model, path)
    with open(out / "train_config.json", "w") as fh:
        json.dump(config_to_dict(cfg), fh, indent=1)
    return path


def _copy_processor_files(src: str, dst: Path) -> None:
    """Carry the processor configs over, so the fine-tuned checkpoint loads like the base one."""
    import shutil

    for name in (
        "preprocessor_config.json",
        "video_preprocessor_config.json",
        "processor_config.json",
        "chat_template.json",
        "chat_template.jinja",
    ):
        if src and os.path.isfile(os.path.join(src, name)) and not (dst / name).exists():
            shutil.copy(os.path.join(src, name), dst / name)


def load_trained(base: str, trained: str | os.PathLike):
    """(model, tokenizer) of a saved run: a LoRA adapter dir on ``base``, or a full checkpoint dir."""
    from sf2t.models import load_model_and_tokenizer

    trained = Path(trained)
    if (trained / "adapter_config.json").is_file():
        from sf2t.models._build import load_adapter

        model, tokenizer = load_model_and_tokenizer(base)
        model = load_adapter(model, trained, base)
    else:
        model, tokenizer = load_model_and_tokenizer(trained)
    # a run trained with token compression is evaluated with it (its train_config.json says so)
    from sf2t.train.config import find_run_config

    run_cfg = find_run_config(trained)
    if run_cfg is not None:
        run = json.loads(run_cfg.read_text())
        keep, stage = float(run.get("token_keep_ratio", 1.0)), run.get("token_stage", "after_tower")
        apply_compression(model, keep, stage, run.get("token_first_group", "all"))
    return model, tokenizer
