"""The training loop, nanoGPT style: read it top to bottom.

setup (model, LoRA or full fine-tuning, data) -> for each step: lr from the schedule, grad_accum micro-batches
(forward, loss on the answer tokens only, backward), clip, AdamW step -> save the adapter or the weights.

What it calls lives beside it, and each of those names is importable from here too: ``sf2t.train.model_setup`` (the
model made trainable, compressed, sharded), ``sf2t.train.resume`` (whether a checkpoint can be resumed),
``sf2t.train.metrics`` (the loss, metrics.jsonl), ``sf2t.train.distributed`` (torchrun's processes) and
``sf2t.train.trained`` (the finished run saved and loaded back).
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from sf2t._plural import counted
from sf2t.models.qwen2_vl import IGNORE_INDEX
from sf2t.train import series
from sf2t.train.checkpoint import CheckpointManager, rng_state, set_rng_state
from sf2t.train.config import TrainConfig, config_to_dict
from sf2t.train.distributed import FSDP_NEEDS_TORCHRUN, _gather, _init_distributed, _skip_rows, _union
from sf2t.train.metrics import (
    MetricsLog,
    _curve,  # noqa: F401  (re-exported)
    _recent_losses,
    answer_exact,
    per_sample_loss,  # noqa: F401  (re-exported)
    token_loss_sum,
)
from sf2t.train.model_setup import (
    _MODEL_KEYS,
    _in_vision_tower,  # noqa: F401  (re-exported)
    _param_groups,
    apply_compression,
    enable_checkpointing,  # noqa: F401  (re-exported)
    family_of_model,
    full_state_dict,  # noqa: F401  (re-exported)
    make_inputs,
    model_context,
    setup_model,
    shard_model,
)
from sf2t.train.resume import (
    _IDENTITY_KEYS,  # noqa: F401  (re-exported)
    LORA_SHAPE_FIELDS,  # noqa: F401  (re-exported)
    RUN_ONLY_FIELDS,  # noqa: F401  (re-exported)
    SHAPE_FIELDS,  # noqa: F401  (re-exported)
    _check_same_model,  # noqa: F401  (re-exported)
    _check_state,  # noqa: F401  (re-exported)
    check_resume,
    config_changes,
    model_identity,
    saved_world_size,
)
from sf2t.train.series import Series
from sf2t.train.trained import (
    _copy_processor_files,  # noqa: F401  (re-exported)
    load_trained,
    save_trained,
)

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
