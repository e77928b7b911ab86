"""A finished run's model on disk: ``save_trained`` writes ``out_dir/adapter`` (LoRA) or ``out_dir/model`` (full
fine-tuning) and ``train_config.json``; ``load_trained`` loads it back, with the run's token compression.

(The resumable checkpoints written while training are ``sf2t.train.checkpoint``'s.)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sf2t.train.config import TrainConfig, config_to_dict
from sf2t.train.model_setup import apply_compression, full_state_dict

__all__ = ["save_trained", "load_trained"]


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
