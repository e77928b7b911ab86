"""Family-independent helpers for tiny offline checkpoints, LoRA target selection and the LLaVA vision towers'
frame-size check (:func:`check_tower_frame_size`).

Every family module builds its tiny checkpoint with :func:`build_tiny_checkpoint`: tokenizer -> config ->
seeded float32 model (:func:`build_model_seeded`) -> greedy generation config -> processor, saved atomically by
:func:`save_checkpoint_dir` so that ``from_pretrained`` / ``AutoProcessor.from_pretrained`` load it offline.
"""

from __future__ import annotations

import errno
import json
import os
import pathlib
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from sf2t._checks import check_int
from sf2t._oserror import is_bad_input, is_file_error

_REQUIRED_FILES = ("config.json",)
# What AutoProcessor reads besides config.json (one of them at least).
_PROCESSOR_FILES = (
    "processor_config.json",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
    "tokenizer_config.json",
    "tokenizer.json",
)

# Decoder-layer Linears of transformers' Qwen2 / Llama LLMs (all four families), as short names and as a regex over
# full names at ``language_model.layers`` (any prefix, e.g. peft's "base_model.model.").
LORA_TARGETS_LLM: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LLM_LORA_RE = (
    r"(?:^|.*\.)language_model\.(?:model\.)?layers\.\d+\."
    r"(?:self_attn\.(?:q_proj|k_proj|v_proj|o_proj)|mlp\.(?:gate_proj|up_proj|down_proj))"
)


def pad_to_multiple(n: int, m: int) -> int:
    """``n`` rounded up to a multiple of ``m`` (embedding tables are padded like the released configs)."""
    return ((n + m - 1) // m) * m


def select_linear_modules(model: nn.Module, pattern: str, what: str = "LoRA") -> list[str]:
    """Full names of the plain ``nn.Linear`` modules of ``model`` whose name fully matches ``pattern``."""
    rx = re.compile(pattern)
    names = [n for n, m in model.named_modules() if type(m) is nn.Linear and rx.fullmatch(n) and "lora_" not in n]
    if not names:
        raise ValueError(f"{what}: no Linear layer of {type(model).__name__} matches {pattern!r}")
    return names


def tower_lora_modules(model: nn.Module, vision_re: str, llm_re: str, vision: bool, llm: bool) -> list[str]:
    """Exact full names of the Linears matching ``vision_re`` (if ``vision``) and/or ``llm_re`` (if ``llm``)."""
    parts = ([vision_re] if vision else []) + ([llm_re] if llm else [])
    if not parts:
        raise ValueError("lora_target_modules: select at least one of vision / llm")
    return select_linear_modules(model, "(?:" + "|".join(parts) + ")", "lora_target_modules")


def check_tower_frame_size(
    height: int,
    width: int,
    image_size: int | None,
    *,
    model: str,
    why: str,
    fix: str,
    patch_size: int | None = None,
) -> None:
    """The LLaVA families' ``check_frame_size``: a ValueError naming ``height x width`` and the size that works when
    ``model``'s vision tower, whose position embeddings are for the one patch grid of its ``image_size`` square, cannot
    take frames of that size. ``patch_size`` None: only that square (CLIP checks the pixel size); given: any size with
    the square's patch grid (SigLIP's patch convolution drops the pixels past the last whole patch, as the real
    OneVision's 384 / 14 does). ``image_size`` None (the config unknown): only a non-square frame (patch grid) is
    refused. ``why``: the model's reason, ``fix``: what to do, with ``{size}`` for the size that works."""
    p = 1 if patch_size is None else patch_size  # compared in patches (CLIP: in pixels)
    grid, side = (height // p, width // p), None if image_size is None else image_size // p
    if (grid == (side, side)) if side is not None else (grid[0] == grid[1]):
        return
    if image_size is None:
        good = "that square"
        takes = "the vision tower's image_size, a square"
        if patch_size is not None:
            takes = f"a square grid of {p}-pixel patches (the vision tower's image_size square)"
    else:
        good = f"{image_size}x{image_size}"
        takes = f"the vision tower's image_size {good}"
        if patch_size is not None:
            low, high = side * p, side * p + p - 1
            takes += f" (or another size of its {side}x{side} grid of {p}-pixel patches: {low} to {high} a side)"
    raise ValueError(f"{model} takes frames of {takes}; got {height}x{width} ({why}): {fix.format(size=good)}")


def seeded_init_(model: nn.Module, seed: int) -> None:
    """Deterministic N(0, 0.02) init of every weight, independent of transformers' init internals.

    1-D ``*weight`` parameters (LayerNorm / RMSNorm scales) are set to 1, biases to 0; other parameters (also
    1-D non-weight parameters such as LLaVA's ``image_newline``) are drawn from one seeded generator in
    ``named_parameters`` order.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and name.endswith("weight"):
                p.fill_(1.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)


def build_model_seeded(model_cls, config, seed: int):
    """``model_cls(config)`` in float32 with :func:`seeded_init_` weights, without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config)
    model.to(torch.float32)
    seeded_init_(model, seed)
    return model


def _add_processor_class(path: pathlib.Path, processor_class: str) -> None:
    """Name ``processor_class`` in the component config ``path`` (if it exists) so AutoProcessor resolves it."""
    if not path.is_file():
        return
    data = json.loads(path.read_text())
    if data.get("processor_class") != processor_class:
        data["processor_class"] = processor_class
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def save_checkpoint_dir(model, processor, out: pathlib.Path, *, processor_class: str, overwrite: bool) -> pathlib.Path:
    """Save ``model`` and ``processor`` into ``out`` atomically (built in a sibling temp dir, then renamed).

    Besides what ``save_pretrained`` writes, makes sure the classic per-component files exist
    (``preprocessor_config.json``, ``video_preprocessor_config.json``, ``tokenizer_config.json``) and name
    ``processor_class`` so ``AutoProcessor.from_pretrained(out, local_files_only=True)`` finds the processor.
    If another builder finished ``out`` first (and ``overwrite`` is false), its checkpoint is kept.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        if not (tmp / "preprocessor_config.json").is_file() and getattr(processor, "image_processor", None):
            processor.image_processor.save_pretrained(tmp)
        if not (tmp / "video_preprocessor_config.json").is_file() and getattr(processor, "video_processor", None):
            processor.video_processor.save_pretrained(tmp)
        if not (tmp / "tokenizer_config.json").is_file():
            processor.tokenizer.save_pretrained(tmp)
        for fname in ("preprocessor_config.json", "video_preprocessor_config.json"):
            _add_processor_class(tmp / fname, processor_class)
        if out.exists():
            if not overwrite and (out / "config.json").is_file():
                return out  # a concurrent builder finished first
            shutil.rmtree(out)
        try:
            os.replace(tmp, out)
        except OSError:
            if not (out / "config.json").is_file():  # not a lost race with a concurrent builder
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def tiny_sizes(**sizes: Any) -> dict[str, int]:
    """A tiny builder's sizes (``hidden_size=64, num_layers=2, ...``) as Python ints, each checked positive
    (:func:`sf2t._checks.check_int`): a numpy integer from a sweep is taken, a bool or a float is refused by name
    before anything is built (the config is written as JSON, which takes no numpy integer)."""
    return {name: check_int(name, v, min_value=1) for name, v in sizes.items()}


def build_tiny_checkpoint(
    out_dir: str | os.PathLike,
    *,
    model_class: str,
    processor_class: str,
    build_tokenizer: Callable,
    build_config: Callable,
    build_processor: Callable,
    generation_tokens: Mapping[str, str | list[str]],
    seed: int,
    overwrite: bool,
) -> pathlib.Path:
    """Build a tiny random-weight checkpoint (model, tokenizer, processor) in ``out_dir`` and return its path.

    ``build_tokenizer()`` -> tokenizer; ``build_config(tokenizer)`` -> model config; ``build_processor(tokenizer)``
    -> processor. ``generation_tokens``: ``GenerationConfig`` id fields given as token strings (a list for several
    ids), e.g. ``{"eos_token_id": [IM_END, ENDOFTEXT]}``; decoding is greedy (``do_sample=False``).
    An existing checkpoint (``config.json``) is reused unless ``overwrite``.
    """
    import transformers

    seed = check_int("seed", seed)
    out = pathlib.Path(out_dir)
    if (out / "config.json").is_file() and not overwrite:
        return out
    tokenizer = build_tokenizer()
    config = build_config(tokenizer)
    config.architectures = [model_class]
    model = build_model_seeded(getattr(transformers, model_class), config, seed)
    ids = {key: tokenizer.convert_tokens_to_ids(tok) for key, tok in generation_tokens.items()}
    model.generation_config = transformers.GenerationConfig(**ids, do_sample=False)
    return save_checkpoint_dir(
        model, build_processor(tokenizer), out, processor_class=processor_class, overwrite=overwrite
    )


def not_a_model_hint(path: str | os.PathLike) -> str | None:
    """What a folder without config.json is when it is sf2t's own output, and what to pass instead: a LoRA adapter
    (``adapter_config.json``) or a ``sf2t train`` run folder (``adapter/`` or ``model/`` in it); None otherwise."""
    p = pathlib.Path(path)
    if (p / "adapter_config.json").is_file():
        try:
            base = json.loads((p / "adapter_config.json").read_text(encoding="utf-8")).get("base_model_name_or_path")
        except (OSError, ValueError, AttributeError):
            base = None
        trained_on = f" ({base})" if isinstance(base, str) and base else ""
        return (
            f"{str(p)!r} is a LoRA adapter, not a model: pass the base model it was trained on{trained_on} as the "
            "model, with this folder as sf2t eval's --adapter, or merge the two first (sf2t merge)"
        )
    if (p / "model" / "config.json").is_file():
        return f"{str(p)!r} is a sf2t train run folder: its fine-tuned model is {str(p / 'model')!r}"
    if (p / "adapter" / "adapter_config.json").is_file():
        return (
            f"{str(p)!r} is a sf2t train run folder: its LoRA adapter is {str(p / 'adapter')!r}; pass the base model "
            "as the model, with the adapter as sf2t eval's --adapter, or merge the two first (sf2t merge)"
        )
    return None


def not_an_adapter_hint(path: str | os.PathLike) -> str:
    """What the path given as an adapter is instead: ``; no such file or folder``, ``; it is a file`` (with the folder
    to pass when it is an adapter's file), ``; it is a sf2t train run folder: its adapter is DIR/adapter``, else
    ``""``."""
    p = pathlib.Path(path)
    if not p.exists():
        return "; no such file or folder"
    if p.is_file():
        fits = (p.parent / "adapter_config.json").is_file()
        return "; it is a file" + (f": pass its folder {str(p.parent)!r}" if fits else "")
    return (
        f"; it is a sf2t train run folder: its adapter is {str(p / 'adapter')!r}"
        if (p / "adapter" / "adapter_config.json").is_file()
        else ""
    )


def check_checkpoint_dir(path: str | os.PathLike) -> pathlib.Path:
    """Return ``path`` as a Path, raising a clear error if it is not a local HF checkpoint directory."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"model checkpoint path must be a str or os.PathLike folder, got {type(path).__name__} {path!r}"
        )
    if isinstance(path, str) and not path.strip():
        raise ValueError("model checkpoint path is empty: pass the checkpoint folder")
    p = pathlib.Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model checkpoint path does not exist: {str(p)!r}")
    if not p.is_dir():
        raise NotADirectoryError(f"model checkpoint path is not a directory: {str(p)!r}")
    missing = [f for f in _REQUIRED_FILES if not (p / f).is_file()]
    hint = not_a_model_hint(p) if missing else None
    if hint:
        raise FileNotFoundError(f"model checkpoint directory {str(p)!r} lacks {', '.join(missing)}: {hint}")
    if missing:
        raise FileNotFoundError(
            f"model checkpoint directory {str(p)!r} lacks {', '.join(missing)} "
            "(not a Hugging Face checkpoint; build one with sf2t.models.build_tiny_qwen2_vl)"
        )
    return p


def _safetensors_problem(f: pathlib.Path) -> str | None:
    """Why a .safetensors file is not whole, read from its header alone (8-byte length, JSON, tensor offsets): a
    download or copy cut short ends before its last tensor."""
    try:
        size = f.stat().st_size
        with open(f, "rb") as fh:
            raw = fh.read(8)
            n = int.from_bytes(raw, "little") if len(raw) == 8 else -1
            if n < 2 or n > min(size - 8, 1 << 30):
                return f"{f} is damaged (no safetensors header)"
            header = json.loads(fh.read(n))
    except OSError as e:
        return f"{f} cannot be read ({e.strerror or e})"
    except (ValueError, UnicodeDecodeError):
        return f"{f} is damaged (its safetensors header is not JSON)"
    ends = [v.get("data_offsets", [0, 0])[1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    if ends and max(ends) > size - 8 - n:
        return f"{f} is cut short ({size} bytes; its tensors need {8 + n + max(ends)})"
    return None


def checkpoint_weights_problem(path: str | os.PathLike) -> str | None:
    """What is wrong with a checkpoint directory's weights that shows without loading them: none there (transformers'
    OSError traceback), a shard the index names missing, or a .safetensors file cut short or overwritten (a
    SafetensorError traceback once the model was being built). None when they look whole."""
    p = pathlib.Path(path)
    if (p / "model.safetensors").is_file():
        return _safetensors_problem(p / "model.safetensors")
    index = p / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            return f"{index} is damaged ({e})"
        for name in shards:
            if not (p / name).is_file():
                return f"{p / name} is missing (named in {index.name})"
            problem = _safetensors_problem(p / name)
            if problem:
                return problem
        return None
    if (p / "pytorch_model.bin").is_file() or (p / "pytorch_model.bin.index.json").is_file():
        return None  # torch's own format: its loader says what is wrong
    return f"{p} holds no weights (model.safetensors, its sharded index, or pytorch_model.bin)"


def load_checkpoint(path: str | os.PathLike, model_class: str, dtype: torch.dtype = torch.float32, *, config=None):
    """Load ``(model, tokenizer)`` from a local checkpoint directory of transformers class ``model_class``, offline.
    Weights that are missing or damaged, and tokenizer files that do not read, are ValueErrors naming them.
    ``config``: the checkpoint's config, where the caller read it already (``AutoConfig``): not read again
    (transformers copies it; None: read from ``path``)."""
    import transformers

    p = check_checkpoint_dir(path)
    problem = checkpoint_weights_problem(p)
    if problem:
        raise ValueError(f"model checkpoint: {problem}")
    model = getattr(transformers, model_class).from_pretrained(p, config=config, dtype=dtype, local_files_only=True)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(p, local_files_only=True)
    except (ValueError, OSError) as e:  # a damaged tokenizer.json: json's bare "Expecting property name ..."
        said = " ".join(str(e).split())[:300]
        raise ValueError(f"model checkpoint {str(p)!r}: its tokenizer does not load ({said})") from None
    return model, tokenizer


def _disk_error(e: BaseException) -> bool:
    """Whether ``e`` is the disk's or the file system's (an input/output error, a permission refused): raised as it is
    (the ``sf2t`` command says it in one line, :func:`sf2t._oserror.is_file_error`), not called a processor that does
    not load. A missing file (``ENOENT``, transformers' own "Can't load ..." without an errno) is the folder lacking
    the processor's files, unless raised from a disk error."""
    if not isinstance(e, OSError) or not is_file_error(e):
        return False
    if e.errno is None:
        return e.__cause__ is not e and _disk_error(e.__cause__)
    return e.errno != errno.ENOENT


def load_processor(path: str | os.PathLike):
    """Load the processor of a local checkpoint directory (``AutoProcessor``), offline. A folder without the
    processor's files (``preprocessor_config.json``, the tokenizer's), or with one that does not read, is a ValueError
    naming the folder (transformers' own OSError pointed at the Hub). An error of the disk or the file system (an
    input/output error, a permission refused) is raised as it is: the folder is not to blame."""
    from transformers import AutoProcessor

    p = check_checkpoint_dir(path)
    need = "the processor's files next to config.json (preprocessor_config.json, the tokenizer's files)"
    if not any((p / f).is_file() for f in _PROCESSOR_FILES):
        hint = (
            "; build a tiny checkpoint with sf2t.models.build_tiny_qwen2_vl"
            if not list(p.glob("*.safetensors"))
            else ""
        )
        raise ValueError(
            f"model checkpoint {str(p)!r} holds no processor: it needs {need}, as processor.save_pretrained(folder) "
            f"writes them{hint}"
        )
    try:
        return AutoProcessor.from_pretrained(p, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as e:
        if _disk_error(e):
            raise
        said = " ".join(str(e).split())[:300]
        raise ValueError(
            f"model checkpoint {str(p)!r}: its processor does not load ({type(e).__name__}: {said}); the folder needs "
            f"{need}, as processor.save_pretrained(folder) writes them"
        ) from None


def load_adapter(model, adapter: str | os.PathLike, base: str | os.PathLike):
    """``peft.PeftModel.from_pretrained(model, adapter)``; an adapter trained on another base model (other shapes or
    module names) is a ValueError naming both folders and the first mismatch, not peft's list of every tensor. So are
    an adapter whose weights file is missing (peft then went to the Hub for it), damaged, or whose tensors leave
    LoRA layers of this model unset (peft only warned, and the merge used whatever it had)."""
    import warnings

    from peft import PeftModel

    weights = [pathlib.Path(adapter) / n for n in ("adapter_model.safetensors", "adapter_model.bin")]
    if not any(w.is_file() for w in weights):
        raise ValueError(f"adapter {str(adapter)!r} has no weights file (adapter_model.safetensors): is it complete?")
    misfit = f"adapter {str(adapter)!r} does not fit the base model {str(base)!r}"
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always")
            loaded = PeftModel.from_pretrained(model, str(adapter))
    except (RuntimeError, ValueError, KeyError) as e:
        if not is_bad_input(e):  # io.UnsupportedOperation from peft's reads: a bug, not a misfit adapter
            raise
        lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()] or [type(e).__name__]
        mismatches = [line for line in lines if "size mismatch" in line]
        first = mismatches[0] if mismatches else next((line for line in lines if "Missing" in line), lines[0])
        more = f" (and {len(mismatches) - 1} more)" if len(mismatches) > 1 else ""
        raise ValueError(f"{misfit}: {first}{more}") from None
    except Exception as e:  # safetensors' own error type for a cut-short or overwritten file
        if type(e).__name__ != "SafetensorError":
            raise
        raise ValueError(f"adapter {str(adapter)!r}: its weights file cannot be read ({e}): is it damaged?") from None
    for w in said:
        text = str(w.message)
        if "Found missing adapter keys" in text:  # peft's wording (its tests pin it)
            keys = re.findall(r"'([^']+)'", text)
            shown = f"{keys[0]} (and {len(keys) - 1} more)" if keys else text
            raise ValueError(f"{misfit}: the adapter has no weights for LoRA layer {shown}")
        if "`is_gradient_checkpointing` is deprecated" in text:  # peft reading transformers' old name: not the user's
            continue  # (sf2t.train.loop filters it for training; sf2t eval --adapter showed it)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return loaded
