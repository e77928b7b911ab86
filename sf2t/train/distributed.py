"""Several processes under torchrun: the process group (gloo on the CPU, NCCL on CUDA) and gathering each rank's
values (its dropped videos, its samples' losses) so that rank 0 logs, saves and reports the whole run.
"""

from __future__ import annotations

import datetime
import os

import torch

from sf2t.train.config import TrainConfig

__all__ = ["FSDP_NEEDS_TORCHRUN"]


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
