"""Training configuration: one dataclass with help text per field, loadable from YAML, overridable with
``key=value`` strings (``disorder.perm=strong``, ``tasks=[counting,disorder]``).

The reading lives beside it, and each of its names is importable from here too: ``sf2t.train.config_io`` (values
converted to field types, overrides and YAML files merged into a config, a run's ``train_config.json`` found).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import Sequence

from sf2t.tasks.consistency import ConsistencyConfig
from sf2t.tasks.counting import CountingConfig
from sf2t.tasks.disorder import DisorderConfig
from sf2t.tasks.localization import LocalizationConfig
from sf2t.tasks.rearrangement import RearrangementConfig
from sf2t.tasks.speed import SpeedConfig
from sf2t.train.config_io import (
    _convert,  # noqa: F401  (re-exported)
    _from_dict,  # noqa: F401  (re-exported)
    _kind,  # noqa: F401  (re-exported)
    _merge,
    _task_list,  # noqa: F401  (re-exported)
    apply_overrides,
    find_run_config,
    read_mapping,
)

__all__ = ["TrainConfig", "load_config", "apply_overrides", "config_to_dict", "config_help", "find_run_config"]


def _f(default, help: str, task_list: bool = False, **kw):
    """A field with help text; ``task_list``: a list of task names, which also takes ``counting,disorder``."""
    meta = {"help": help, "task_list": task_list}
    if isinstance(default, (list, dict, tuple)) or dataclasses.is_dataclass(default):
        value = default
        return field(default_factory=lambda: _copy(value), metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


def _copy(v):
    if dataclasses.is_dataclass(v):
        return dataclasses.replace(v)
    return type(v)(v) if not isinstance(v, dict) else dict(v)


@dataclass
class TrainConfig:
    # -- what
    model: str = _f(
        "",
        "local Hugging Face checkpoint directory: Qwen2-VL, Qwen2.5-VL, LLaVA-OneVision or LLaVA-NeXT-Video "
        "(the family is read from its config.json)",
    )
    videos: list = _f(
        [], "training videos: files, folders (every video file under them) or sf2t index manifests (.jsonl)"
    )
    eval_videos: list = _f([], "held-out videos for evaluation (as videos; disjoint from them)")
    tasks: list = _f(
        ["counting", "disorder"],
        "tasks to train on (names in docs/tasks.md): tasks=counting,disorder or tasks=[counting, disorder]",
        task_list=True,
    )
    task_weights: list = _f([], "sampling weight per task (same order as tasks); empty: equal")
    task_videos: dict = _f({}, "per task, the videos it may draw from (paths or path prefixes); absent: all")
    counting: CountingConfig = _f(CountingConfig(), "counting task parameters")
    disorder: DisorderConfig = _f(DisorderConfig(), "disorder task parameters")
    consistency: ConsistencyConfig = _f(ConsistencyConfig(), "consistency task parameters")
    localization: LocalizationConfig = _f(LocalizationConfig(), "localization task parameters")
    rearrangement: RearrangementConfig = _f(RearrangementConfig(), "rearrangement task parameters")
    speed: SpeedConfig = _f(SpeedConfig(), "speed task parameters")
    supervised_data: str = _f("", "ordinary video QA to mix in: LLaVA / ShareGPT JSON with video paths (optional)")
    supervised_ratio: float = _f(
        0.0,
        "fraction of samples drawn from supervised_data (0: none; not during curriculum_steps, which train only "
        "curriculum_tasks)",
    )
    supervised_frames: int = _f(8, "frames sampled uniformly from each supervised video")
    curriculum_steps: int = _f(
        0, "first N optimizer steps train only on curriculum_tasks, no supervised_data (0: no curriculum)"
    )
    curriculum_tasks: list = _f(
        ["counting"], "tasks trained during the curriculum phase (as tasks: counting,disorder)", task_list=True
    )
    # -- how long, how fast
    steps: int = _f(1000, "optimizer steps")
    batch_size: int = _f(8, "samples per micro-batch")
    grad_accum: int = _f(1, "micro-batches per optimizer step")
    lr: float = _f(1e-3, "peak learning rate")
    schedule: str = _f("cosine", "learning-rate schedule after warmup: cosine, linear or constant")
    warmup_steps: int = _f(100, "linear warmup steps")
    min_lr_ratio: float = _f(0.1, "final learning rate as a fraction of lr (cosine, linear)")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    betas: list = _f([0.9, 0.95], "AdamW betas")
    vision_lr_scale: float = _f(1.0, "learning-rate multiplier for the vision tower's trainable weights")
    grad_clip: float = _f(1.0, "clip the global gradient norm to this (0: off)")
    # -- which weights
    lora: bool = _f(True, "train LoRA adapters (peft) on the LLM and the vision tower; the base stays frozen")
    lora_rank: int = _f(16, "LoRA rank r")
    lora_alpha: int = _f(32, "LoRA alpha (scale = alpha / r)")
    lora_dropout: float = _f(0.0, "LoRA dropout")
    lora_vision: bool = _f(True, "adapt the vision tower (fused qkv, proj, fc1, fc2)")
    lora_llm: bool = _f(True, "adapt the LLM (q/k/v/o, gate/up/down)")
    full_finetune: bool = _f(False, "train every weight instead (tiny models trained from scratch); needs lora=false")
    # -- input
    frame_size: list = _f(
        [56, 56],
        "presented frame size (h, w), multiples of 28 of at most 12,845,056 pixels, Qwen2-VL checkpoints' max_pixels "
        "(Qwen families; LLaVA families use their processor's size); "
        "the largest sample must fit the model's context (checked at setup)",
    )
    frame_repeat: int = _f(2, "copies of each presented frame (Qwen2-VL temporal patch 2: one frame, one token group)")
    layout: str = _f(
        "repeat", "Qwen token groups: repeat (one frame per group) or pairs (group i = frames i, i+1); LLaVA: repeat"
    )
    token_keep_ratio: float = _f(
        1.0, "visual tokens kept per temporal group after the first (sf2t token merging inside the model; 1.0: off)"
    )
    token_stage: str = _f(
        "after_tower",
        "where token_keep_ratio drops tokens: after_tower (token_merge on the tower's tokens, every family) or "
        "before_tower (Qwen2-VL, Qwen2.5-VL: the tower runs on the kept patches only, so it gets faster too)",
    )
    token_first_group: str = _f(
        "all",
        "with token_keep_ratio < 1, the first temporal group: all (kept whole) or budget (compressed like the rest)",
    )
    decoder: str = _f("auto", "video decoder: auto (DALI on GPU, else torchcodec, else PyAV), torchcodec, pyav or dali")
    workers: int = _f(
        0,
        "DataLoader worker processes making samples (decode, task, pack, tokens) ahead of the model step, in the "
        "same order as workers=0 (0: in the training process)",
    )
    prefetch: int = _f(
        0,
        "micro-batches made ahead in a background thread while the model computes (for CUDA: on a side stream, "
        "decode, tasks and packing overlap the step; on CPU the thread competes with the step: use workers); 0: made "
        "when needed",
    )
    clip_cache_mb: int = _f(
        256,
        "decode short clips whole once and keep them (MiB; 0: decode needed frames only; the frames are the same "
        "either way); the held-out set keeps its samples' frames of longer clips within as much again",
    )
    max_resample: int = _f(8, "windows tried per sample before a video is reported static")
    # -- evaluation
    eval_samples: int = _f(
        64, "held-out samples per task (drawn once; made again from their indices at each evaluation)"
    )
    eval_every: int = _f(0, "evaluate every N steps during training (0: only at the end)")
    max_new_tokens: int = _f(
        0, "tokens generated per evaluation answer (greedy); 0: the longest true answer of the evaluation set + 2"
    )
    # -- run
    seed: int = _f(0, "seed of sampling, planning and initialisation")
    out_dir: str = _f("out/train", "where the adapter or weights, logs and reports go")
    threads: int = _f(0, "torch intra-op threads (0: leave as is)")
    device: str = _f("cpu", "torch device")
    fsdp: bool = _f(
        False,
        "under torchrun, shard weights, gradients and optimizer state over the processes with FSDP2 (fully_shard per "
        "decoder layer and vision block) instead of DDP's full copies; CUDA (CPU only for tests: "
        "SF2T_ALLOW_CPU_FSDP=1)",
    )
    dist_timeout_min: float = _f(
        60.0,
        "under torchrun: minutes a process waits for the others before torch.distributed gives up (rank 0 alone "
        "runs the held-out evaluation and writes checkpoints while the others wait; NCCL's own default is 10)",
    )
    bf16: bool = _f(False, "bf16 autocast of the forward pass (CUDA only; weights and optimizer stay float32)")
    gradient_checkpointing: bool = _f(
        False,
        "recompute the LLM's and vision tower's activations in the backward pass (less memory, one more forward "
        "pass of them per step)",
    )
    log_every: int = _f(
        50,
        "with progress=false, print the mean loss (lr, samples/s, tokens/s, data wait) every N steps (the progress "
        "bar shows them otherwise; metrics.jsonl has every step either way); 0: never",
    )
    tensorboard: bool = _f(True, "also write metrics as TensorBoard events in out_dir/tensorboard (if installed)")
    save_every: int = _f(0, "write a resumable checkpoint every N optimizer steps (0: none)")
    keep_checkpoints: int = _f(2, "checkpoints kept in out_dir/checkpoints (the newest)")
    resume: str = _f(
        "",
        "continue a run: auto (the latest checkpoint in out_dir; with none, from step 0, refused where out_dir holds "
        "a run's weights) or a checkpoint directory; fields changed "
        "since the checkpoint (other than logging, saving and worker settings) are listed when it resumes",
    )
    overwrite: bool = _f(
        False,
        "start afresh in an out_dir that already holds a run (its outputs are removed first: model/ or adapter/, "
        "checkpoints, logs, reports; other files stay); without it sf2t train refuses such an out_dir unless resume "
        "is set",
    )
    progress: bool = _f(True, "show a tqdm progress bar")

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        self._validate_paths()
        if self.lora and self.full_finetune:
            raise ValueError("TrainConfig: lora and full_finetune are exclusive; set lora=false for full fine-tuning")
        if self.overwrite and self.resume:
            raise ValueError(
                "TrainConfig: overwrite and resume are exclusive: resume continues the run, overwrite drops it"
            )
        if not isinstance(self.prefetch, int) or self.prefetch < 0:
            raise ValueError(f"TrainConfig: prefetch must be an int >= 0, got {self.prefetch!r}")
        if not isinstance(self.workers, int) or self.workers < 0:
            raise ValueError(f"TrainConfig: workers must be an int >= 0, got {self.workers!r}")
        if self.fsdp and not str(self.device).startswith("cuda") and os.environ.get("SF2T_ALLOW_CPU_FSDP") != "1":
            raise ValueError(
                f"TrainConfig: fsdp=true is for CUDA devices (device={self.device!r}); on CPU use DDP (fsdp=false: "
                "torchrun alone). SF2T_ALLOW_CPU_FSDP=1 lets tests run FSDP2 over gloo"
            )
        if self.bf16 and not str(self.device).startswith("cuda"):
            raise ValueError(
                f"TrainConfig: bf16=true needs a CUDA device (device={self.device!r}); on CPU train in float32 "
                "(bf16=false)"
            )
        for name in ("steps", "batch_size", "grad_accum"):  # steps=0 would save the untrained weights as a run
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be an int >= 1, got {value!r}")
        if self.schedule not in ("cosine", "linear", "constant"):
            raise ValueError(f"TrainConfig.schedule must be cosine, linear or constant, got {self.schedule!r}")
        if len(self.frame_size) != 2 or not all(type(s) is int for s in self.frame_size):
            raise ValueError(
                f"TrainConfig.frame_size must be (h, w), positive multiples of 28, got {self.frame_size} (Qwen2-VL: "
                "patch 14 x merge 2)"
            )
        from sf2t.ops.fragment_pack import qwen2_vl_size_message

        said = qwen2_vl_size_message(
            self.frame_size, f"TrainConfig.frame_size {self.frame_size}", "frame_size=[{h}, {w}]"
        )
        if said:  # not multiples of 28, or larger frames than Qwen2-VL's processor makes
            raise ValueError(said)
        if self.task_weights and len(self.task_weights) != len(self.tasks):
            raise ValueError("TrainConfig.task_weights must have one weight per task")
        if isinstance(self.token_keep_ratio, bool) or not 0.0 < float(self.token_keep_ratio) <= 1.0:
            raise ValueError(f"TrainConfig.token_keep_ratio must be in (0, 1], got {self.token_keep_ratio!r}")
        if self.token_stage not in ("after_tower", "before_tower"):
            raise ValueError(f"TrainConfig.token_stage must be after_tower or before_tower, got {self.token_stage!r}")
        if self.token_first_group not in ("all", "budget"):
            raise ValueError(f"TrainConfig.token_first_group must be all or budget, got {self.token_first_group!r}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"TrainConfig.lr must be a positive finite number, got {self.lr!r}")
        if isinstance(self.supervised_ratio, bool) or not 0.0 <= float(self.supervised_ratio) < 1.0:
            raise ValueError(f"TrainConfig.supervised_ratio must be in [0, 1), got {self.supervised_ratio!r}")
        if self.supervised_ratio > 0 and not self.supervised_data:
            raise ValueError("TrainConfig.supervised_ratio > 0 needs supervised_data (a JSON file of video QA)")
        if self.supervised_frames < 1:
            raise ValueError("TrainConfig.supervised_frames must be >= 1")
        if self.save_every < 0 or self.keep_checkpoints < 1:
            raise ValueError("TrainConfig: save_every >= 0 and keep_checkpoints >= 1 are required")
        if self.layout not in ("repeat", "pairs"):
            raise ValueError(f"TrainConfig.layout must be repeat or pairs, got {self.layout!r}")
        from sf2t.tasks import TASKS, make_task, task_names

        if not self.tasks:
            raise ValueError(f"TrainConfig.tasks must name at least one task of {sorted(TASKS)}")
        # unknown names as --tasks elsewhere says them: each with the name it most likely meant, then the valid ones
        lists = {"tasks": self.tasks}
        if self.curriculum_steps and self.curriculum_tasks:  # (none: _validate_curriculum says what it needs)
            lists["curriculum_tasks"] = self.curriculum_tasks
        for key, given in lists.items():
            names = task_names(given, f"TrainConfig.{key}")
            if names != list(given):  # TrainConfig(tasks=["counting,disorder"]): the YAML / CLI reading splits them
                raise ValueError(f"TrainConfig.{key} must hold one task name per item, got {list(given)!r}: {names!r}")
        for name in sorted(set(self.tasks) | set(self.curriculum_tasks if self.curriculum_steps else [])):
            try:  # each task checks its own parameters: say so now, not after the model has loaded
                make_task(name, self.task_config(name))
            except (ValueError, TypeError) as e:
                said = str(e)
                said = said[len(name) + 2 :] if said.startswith(f"{name}: ") else said
                raise ValueError(f"TrainConfig.{name}: {said}") from None
        self._validate_curriculum()
        self._validate_task_videos(sorted(TASKS))
        self._validate_numbers()

    def _validate_curriculum(self) -> None:
        """With curriculum_steps > 0 the first steps draw from curriculum_tasks only, by their task_weights: they must
        be tasks of the run (else "'x' is not in list" once the model had loaded) with a weight that is not all 0."""
        if not self.curriculum_steps:
            return
        if not self.curriculum_tasks:
            raise ValueError(
                "TrainConfig.curriculum_tasks is empty but curriculum_steps > 0: name the tasks to start on"
            )
        outside = [t for t in self.curriculum_tasks if t not in self.tasks]
        if outside:
            raise ValueError(
                f"TrainConfig.curriculum_tasks {outside} are not among tasks {list(self.tasks)}: the curriculum "
                "trains tasks of the run (add them to tasks, or curriculum_steps=0)"
            )
        if self.task_weights:
            weight = dict(zip(self.tasks, self.task_weights))
            if not any(weight[t] for t in self.curriculum_tasks):
                raise ValueError(
                    f"TrainConfig.curriculum_tasks {list(self.curriculum_tasks)} all have task_weights 0: the first "
                    f"{self.curriculum_steps} steps would have no task to draw (give one a weight > 0)"
                )

    def _validate_task_videos(self, known: list[str]) -> None:
        """``task_videos``: a mapping from tasks of the run to non-empty lists of paths or path prefixes. A string
        there was read one character per prefix, a misspelt or unselected task was ignored, a list failed later."""
        tv = self.task_videos
        if not isinstance(tv, dict):
            raise ValueError(
                f"TrainConfig.task_videos must be a mapping from task to a list of paths ({{counting: [clips/]}}), "
                f"got {tv!r}"
            )
        for task, paths in tv.items():
            if task not in known:  # as an unknown name in tasks is said (the name it most likely meant)
                from sf2t.tasks import task_names

                task_names([str(task)], "TrainConfig.task_videos")
                raise ValueError(f"TrainConfig.task_videos: {task!r} is not one task name; valid: {', '.join(known)}")
            if task not in self.tasks:
                raise ValueError(
                    f"TrainConfig.task_videos: {task!r} is not among tasks {list(self.tasks)}: add it there or drop "
                    "its entry"
                )
            if not isinstance(paths, (list, tuple)):
                raise ValueError(
                    f"TrainConfig.task_videos.{task} must be a list of paths or path prefixes, got {paths!r}"
                    + (f" (write [{paths}])" if isinstance(paths, str) else "")
                )
            if not paths:
                raise ValueError(
                    f"TrainConfig.task_videos.{task} is empty: list its videos, or drop the entry (absent: all videos)"
                )
            for i, p in enumerate(paths):
                if not isinstance(p, (str, os.PathLike)):
                    raise ValueError(f"TrainConfig.task_videos.{task}[{i}] must be a path (a string), got {p!r}")

    def _validate_paths(self) -> None:
        """Path fields hold strings. A YAML file can give a number or a list there (``out_dir: 2024``,
        ``videos: [clips, 5]``, ``model: [a]``): named here, not a TypeError once the run starts. Numbers are not
        turned into paths (YAML reads ``1.50`` as 1.5, so the path would not be the one written): quote them. On the
        command line ``out_dir=2024`` is a string already."""

        def problem(v) -> str | None:
            if isinstance(v, (str, os.PathLike)):
                return None
            hint = f" (quote it in YAML: '{v}')" if isinstance(v, (int, float)) and not isinstance(v, bool) else ""
            return f"must be a path (a string), got {v!r}{hint}"

        for name in ("model", "out_dir", "supervised_data", "resume"):
            why = problem(getattr(self, name))
            if why:
                raise ValueError(f"TrainConfig.{name} {why}")
        for name in ("videos", "eval_videos"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"TrainConfig.{name} must be a list of paths, got {value!r}")
            for i, item in enumerate(value):
                why = problem(item)
                if why:
                    raise ValueError(f"TrainConfig.{name}[{i}] {why}")

    def _validate_numbers(self) -> None:
        """Ranges of the numeric fields, each error naming the field and what it takes."""

        def finite(v) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        def integer(v) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        checks = [
            ("lora_rank", integer(self.lora_rank) and self.lora_rank >= 1, "an int >= 1"),
            ("lora_alpha", finite(self.lora_alpha) and self.lora_alpha > 0, "a number > 0"),
            ("lora_dropout", finite(self.lora_dropout) and 0 <= self.lora_dropout < 1, "in [0, 1)"),
            ("warmup_steps", integer(self.warmup_steps) and self.warmup_steps >= 0, "an int >= 0"),
            ("min_lr_ratio", finite(self.min_lr_ratio) and 0 <= self.min_lr_ratio <= 1, "in [0, 1]"),
            ("weight_decay", finite(self.weight_decay) and self.weight_decay >= 0, "a number >= 0"),
            ("grad_clip", finite(self.grad_clip) and self.grad_clip >= 0, "a number >= 0 (0: off)"),
            ("vision_lr_scale", finite(self.vision_lr_scale) and self.vision_lr_scale >= 0, "a number >= 0"),
            (
                "betas",
                isinstance(self.betas, (list, tuple))
                and len(self.betas) == 2
                and all(finite(b) and 0 <= b < 1 for b in self.betas),
                "two numbers in [0, 1)",
            ),
            (
                "task_weights",
                all(finite(w) and w >= 0 for w in self.task_weights)
                and (not self.task_weights or sum(self.task_weights) > 0),
                "numbers >= 0, not all 0",
            ),
            ("frame_repeat", integer(self.frame_repeat) and self.frame_repeat >= 1, "an int >= 1"),
            ("threads", integer(self.threads) and self.threads >= 0, "an int >= 0 (0: leave as is)"),
            ("eval_samples", integer(self.eval_samples) and self.eval_samples >= 1, "an int >= 1"),
            ("eval_every", integer(self.eval_every) and self.eval_every >= 0, "an int >= 0 (0: at the end only)"),
            ("max_new_tokens", integer(self.max_new_tokens) and self.max_new_tokens >= 0, "an int >= 0 (0: auto)"),
            ("log_every", integer(self.log_every) and self.log_every >= 0, "an int >= 0"),
            ("clip_cache_mb", integer(self.clip_cache_mb) and self.clip_cache_mb >= 0, "an int >= 0 (0: off)"),
            ("dist_timeout_min", finite(self.dist_timeout_min) and self.dist_timeout_min > 0, "a number > 0"),
            ("max_resample", integer(self.max_resample) and self.max_resample >= 1, "an int >= 1"),
            ("curriculum_steps", integer(self.curriculum_steps) and self.curriculum_steps >= 0, "an int >= 0"),
            ("decoder", self.decoder in ("auto", "torchcodec", "pyav", "dali"), "auto, torchcodec, pyav or dali"),
        ]
        for name, ok, what in checks:
            if not ok:
                raise ValueError(f"TrainConfig.{name} must be {what}, got {getattr(self, name)!r}")
        import torch

        try:
            torch.device(self.device)
        except (RuntimeError, TypeError):
            raise ValueError(
                f"TrainConfig.device {self.device!r} is not a torch device (cpu, cuda, cuda:1, ...)"
            ) from None

    def task_config(self, name: str):
        return getattr(self, name)


def config_to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def load_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = (), cls=TrainConfig):
    """A config from a YAML (or JSON) file, then ``key=value`` overrides."""
    cfg = cls()
    if path:
        cfg = _merge(cfg, read_mapping(path))
    return apply_overrides(cfg, overrides)


def config_help(cls=TrainConfig, prefix: str = "") -> str:
    """One line per field: name, default, help (nested configs flattened with dotted names)."""
    lines = []
    inst = cls()
    for f in dataclasses.fields(cls):
        value = getattr(inst, f.name)
        if dataclasses.is_dataclass(value):
            lines.append(config_help(type(value), prefix + f.name + "."))
        else:
            lines.append(f"  {prefix + f.name:<24} {json.dumps(value):<22} {f.metadata.get('help', '')}")
    return "\n".join(lines)
