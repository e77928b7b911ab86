"""The run's model: loaded and made trainable (LoRA or every weight), its video tokens compressed, its activations
checkpointed, sharded with FSDP2; the optimizer's parameter groups; the model inputs and context its samples are made
for.

``setup_model`` is what ``sf2t.train.loop.train`` calls first; ``apply_compression`` is also what evaluation before
training, reloading a run and ``sf2t eval`` use.
"""

from __future__ import annotations

import warnings

import torch

from sf2t.train.config import TrainConfig

__all__ = [
    "setup_model",
    "apply_compression",
    "shard_model",
    "full_state_dict",
    "enable_checkpointing",
    "family_of_model",
    "make_inputs",
    "model_context",
]


# peft 0.21 reads transformers 5.2x's deprecated ``is_gradient_checkpointing`` each time it wraps or loads a model:
# a warning the user can do nothing about
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


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
