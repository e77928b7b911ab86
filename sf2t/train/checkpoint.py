"""Training checkpoints: save every N steps, atomically; resume exactly.

A checkpoint is a directory ``out_dir/checkpoints/step-<N>/`` holding

- ``trainable.pt``: the trainable parameters (LoRA adapters, or every weight when fully fine-tuning),
- ``adapter/``: the same LoRA adapter in peft's format (``PeftModel.from_pretrained(base, dir)`` loads it),
- ``optimizer.pt``: AdamW's state,
- ``state.json``: the step, the data cursor (``next_index``: the next global sample index), the losses so far (each
  a bounded ``sf2t.train.series.Series`` state; an older checkpoint's plain lists load too), the videos dropped from
  the pool (so later draws are the same), torch's and Python's RNG states, the config and the model's identity
  (``model_identity``: its ``config.json``'s type and sizes; a resume on another model is refused before it loads);
  a run of several processes (torchrun) also keeps its ``world_size`` and each rank's dropped videos and RNG states
  (``dropped_by_rank``, ``rng_by_rank``), so that a resume with as many processes is exact too.

It is written into a temporary sibling directory and renamed into place, then ``latest`` (a one-line file) is
replaced atomically: a kill while saving leaves the previous checkpoint and ``latest`` intact (the temporary
directory is removed by the next save; an error or Ctrl-C while saving removes it at once). On CPU a resumed run's
losses and final weights equal an uninterrupted run's: samples are functions of (seed, index), and everything else
that decides them is restored.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import random
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch

__all__ = ["CheckpointManager", "rng_state", "set_rng_state"]


class CheckpointManager:
    def __init__(self, root: str | os.PathLike, keep: int = 2):
        self.root = Path(root)
        self.keep = max(1, int(keep))

    # -- where

    def latest(self) -> Path | None:
        """The newest complete checkpoint, or None: the one ``latest`` names, else (``latest`` missing, unreadable or
        naming a folder without ``state.json``: deleted, or a kill between a checkpoint's rename and ``latest``'s)
        the ``step-N`` folder with the highest N that has its ``state.json``. Returning None there made
        ``resume=auto`` start again from step 0 beside complete checkpoints and then overwrite them."""
        if not self.root.is_dir():
            return None
        try:
            self._restore_replaced()  # a save killed between its two renames
        except OSError:  # another process (rank) restored it first
            pass
        ptr = self.root / "latest"
        try:
            name = ptr.read_text(encoding="utf-8").strip() if ptr.is_file() else ""
        except (OSError, UnicodeDecodeError):
            name = ""
        if name and (self.root / name / "state.json").is_file():
            return self.root / name
        done = sorted(p for p in self.root.glob("step-*") if (p / "state.json").is_file())
        return done[-1] if done else None

    def find(self, resume: str) -> Path | None:
        """``resume``: ``auto`` (the latest here, None when there is none) or a checkpoint directory."""
        if resume == "auto":
            return self.latest()
        path = Path(resume)
        if not (path / "state.json").is_file():
            raise FileNotFoundError(f"resume: {path} is not a checkpoint directory (no state.json in it)")
        return path

    # -- save

    def save(
        self, step: int, model, optimizer, state: dict[str, Any], *, peft: bool, sharded: bool = False, rank: int = 0
    ) -> Path:
        """Write checkpoint ``step`` atomically; keep the newest ``keep``. ``state``: JSON-able run state.
        ``sharded`` (FSDP): every rank calls this (the shards are gathered), rank 0 writes, all wait for it."""
        if sharded:
            import torch.distributed as dist
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                get_model_state_dict,
                get_optimizer_state_dict,
            )

            opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
            msd = get_model_state_dict(model, options=opts)  # rank 0 gets the whole tensors, the others nothing
            osd = get_optimizer_state_dict(model, optimizer, options=opts)
            if rank == 0:
                trainable = {n: msd[n] for n, p in model.named_parameters() if p.requires_grad}
                self._write(step, trainable, osd, state, model if peft else None, msd)
            dist.barrier()
            return self.root / f"step-{step:08d}"
        trainable = {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}
        return self._write(step, trainable, optimizer.state_dict(), state, model if peft else None, None)

    def _write(self, step: int, trainable: dict, optim_state: dict, state: dict, peft_model, full_state) -> Path:
        """Write into a temporary folder, then rename it into place: a failure (a full disk, a kill) leaves the
        previous checkpoints as they were; an ``OSError`` says so."""
        previous, name = self.latest(), f"step-{step:08d}"
        try:
            return self._write_unsafe(step, name, trainable, optim_state, state, peft_model, full_state)
        except BaseException as e:
            # the partial copy (a checkpoint's worth of weights and optimizer state): the disk space back, also on
            # Ctrl-C or any other error, not only at the next save (which a run stopped here may never make)
            for stale in self.root.glob(f".tmp-{name}-*"):
                shutil.rmtree(stale, ignore_errors=True)
            self._restore_replaced()
            from sf2t._oserror import is_file_error, os_error_text

            if not isinstance(e, OSError) or not is_file_error(e):  # (a bug, ENOMEM: their own traceback)
                raise
            import errno

            why = "the disk is full" if e.errno == errno.ENOSPC else os_error_text(e)
            full = e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
            fix = "Free space (or lower keep_checkpoints), then" if full else "Once that is fixed,"
            raise OSError(
                e.errno,
                f"checkpoint {name} not written ({why}); the previous checkpoint is intact: "
                f"{previous or 'none written yet'}. {fix} resume=auto continues from it",
            ) from e

    def _restore_replaced(self) -> None:
        """A checkpoint of the same step moved aside for a new copy (``.old-step-N-*``): back in place when the new
        one did not arrive (a kill or Ctrl-C between the two renames), else deleted."""
        for old in self.root.glob(".old-step-*"):
            final = self.root / old.name[len(".old-") :].rsplit("-", 1)[0]
            if final.exists():
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(old, final)

    def _write_unsafe(self, step, name, trainable, optim_state, state, peft_model, full_state) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(".tmp-*"):  # a save that was killed
            shutil.rmtree(stale, ignore_errors=True)
        self._restore_replaced()
        tmp = self.root / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        torch.save(trainable, tmp / "trainable.pt")
        torch.save(optim_state, tmp / "optimizer.pt")
        if peft_model is not None:
            peft_model.save_pretrained(tmp / "adapter", state_dict=full_state)
        full = dict(state)
        full["step"] = step
        full["rng"] = rng_state()
        with open(tmp / "state.json", "w") as fh:
            json.dump(full, fh)
            fh.flush()
            os.fsync(fh.fileno())
        final = self.root / name
        replaced = None
        if final.exists():  # moved aside, not deleted, until the new copy is in place (see _restore_replaced)
            replaced = self.root / f".old-{name}-{uuid.uuid4().hex[:8]}"
            os.replace(final, replaced)
        os.replace(tmp, final)
        if replaced is not None:
            shutil.rmtree(replaced, ignore_errors=True)
        ptr_tmp = self.root / f".latest-{uuid.uuid4().hex[:8]}"
        ptr_tmp.write_text(name + "\n")
        os.replace(ptr_tmp, self.root / "latest")
        done = sorted(p for p in self.root.glob("step-*") if (p / "state.json").is_file())
        for old in done[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    # -- load

    def load(self, path: Path, model, optimizer, *, sharded: bool = False, group_names=None) -> dict[str, Any]:
        """Restore the trainable parameters, the optimizer and the RNG states from ``path``; return its state.
        ``sharded`` (FSDP): every rank calls this and loads its shards from the whole tensors in the files.
        ``group_names``: ``{name: tensor} -> [[name, ...] per optimizer group]`` (the trainer's grouping); with it,
        LoRA adapters the checkpoint has and this model lacks are left out when they never trained (``lora_B`` all
        zero, no optimizer state: e.g. on vision layers after ``vision_feature_layer``, which older sf2t versions
        targeted), and the returned state's ``idle_adapters_dropped`` counts them."""
        state = json.loads((path / "state.json").read_text())
        trainable = _load_file(path / "trainable.pt", weights_only=True)
        params = dict(model.named_parameters())
        missing = [n for n in trainable if n not in params]
        optim_state = None
        if missing and group_names is not None and not sharded:
            optim_state = _load_file(path / "optimizer.pt", weights_only=False)
            now = {n: p for n, p in model.named_parameters() if p.requires_grad}
            fitted = _without_idle_adapters(trainable, optim_state, missing, group_names, now)
            if fitted is not None:
                trainable, optim_state = fitted
                state["idle_adapters_dropped"] = len(missing)
                missing = []
        if missing:
            raise ValueError(
                f"resume: checkpoint {path} has parameters this model lacks ({missing[:3]}...): a different model "
                "or LoRA configuration"
            )
        wrong = [
            f"{n} {tuple(v.shape)} there, {tuple(params[n].shape)} here"
            for n, v in trainable.items()
            if tuple(v.shape) != tuple(params[n].shape)
        ]
        if wrong:  # said before any weight is copied
            raise ValueError(
                f"resume: checkpoint {path} has weights of other shapes ({'; '.join(wrong[:2])}"
                f"{'; ...' if len(wrong) > 2 else ''}): a different model or LoRA configuration"
            )
        if optim_state is None:
            optim_state = _load_file(path / "optimizer.pt", weights_only=False)
        if sharded:
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                set_model_state_dict,
                set_optimizer_state_dict,
            )

            opts = StateDictOptions(full_state_dict=True, strict=False)
            set_model_state_dict(model, trainable, options=opts)
            set_optimizer_state_dict(model, optimizer, optim_state, options=opts)
        else:
            with torch.no_grad():
                for n, v in trainable.items():
                    params[n].copy_(v.to(params[n].device, params[n].dtype))
            optimizer.load_state_dict(optim_state)
        set_rng_state(state.get("rng", {}))
        return state


def checkpoint_file_problem(path: Path) -> str | None:
    """What is wrong with a checkpoint's ``trainable.pt`` or ``optimizer.pt`` that shows without reading it: missing,
    or not a whole torch file (torch.save writes a zip archive; a copy or save cut short has no central directory).
    Checked before the model loads; torch's own error was a traceback after it."""
    import zipfile

    if not path.is_file():
        return f"{path} is missing"
    if not zipfile.is_zipfile(path):
        return f"{path} is damaged (not a whole torch file: cut short?)"
    return None


def _load_file(path: Path, *, weights_only: bool):
    """``torch.load`` of a checkpoint file; a ValueError naming it when it is missing or does not read."""
    problem = checkpoint_file_problem(path)
    if problem:
        raise ValueError(f"resume: {problem}; resume from another checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except (RuntimeError, EOFError, pickle.UnpicklingError, OSError) as e:
        said = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"resume: {path} does not read ({said}); resume from another checkpoint") from None


def _without_idle_adapters(trainable: dict, optim_state: dict, missing: list[str], group_names, now: dict):
    """(trainable, optimizer state) without the ``missing`` parameters, the optimizer's indices renumbered for the
    parameters ``now`` (this model's trainable ones, grouped by ``group_names`` as the checkpoint's were); None
    unless every missing parameter is a LoRA matrix of an adapter that never trained (its ``lora_B`` all zero, no
    optimizer state) and the rest are exactly this model's trainable parameters."""
    drop = set(missing)
    if not all(".lora_A." in n or ".lora_B." in n for n in drop):
        return None
    if any(".lora_B." in n and bool(trainable[n].any()) for n in drop):
        return None
    kept = {n: v for n, v in trainable.items() if n not in drop}
    if set(kept) != set(now):
        return None
    old_groups, new_groups = group_names(trainable), group_names(now)
    saved_groups, saved = optim_state.get("param_groups", []), optim_state.get("state", {})
    if len(old_groups) != len(saved_groups) or len(new_groups) != len(saved_groups):
        return None
    if any(len(names) != len(g["params"]) for names, g in zip(old_groups, saved_groups)):
        return None
    index = {n: i for names, g in zip(old_groups, saved_groups) for n, i in zip(names, g["params"])}
    if any(index[n] in saved for n in drop):  # an adapter that took a step: its weights matter
        return None
    groups, state, k = [], {}, 0
    for names, g in zip(new_groups, saved_groups):
        ids = []
        for n in names:
            if index[n] in saved:
                state[k] = saved[index[n]]
            ids.append(k)
            k += 1
        groups.append({**g, "params": ids})
    return kept, {**optim_state, "state": state, "param_groups": groups}


def rng_state() -> dict[str, str]:
    """This process's torch (CPU) and Python RNG states, JSON-able (what a checkpoint's ``rng`` holds)."""
    return {
        "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode(),
        "python": base64.b64encode(pickle.dumps(random.getstate())).decode(),
    }


def set_rng_state(rng: dict[str, str]) -> None:
    """Restore the RNG states :func:`rng_state` returned (either part may be absent)."""
    if "torch" in rng:
        import numpy as np

        raw = np.frombuffer(base64.b64decode(rng["torch"]), dtype=np.uint8).copy()
        torch.set_rng_state(torch.from_numpy(raw))
    if "python" in rng:
        random.setstate(pickle.loads(base64.b64decode(rng["python"])))  # noqa: S301 - our own file
