"""The model that answers FineVidBench questions for ``sf2t eval`` (:mod:`sf2t.finevidbench.evaluate`), and what a
question shows it: :class:`VideoRunner` (``QwenRunner``, its old name) loads a video LLM checkpoint of an sf2t family
(``VIDEO_FAMILIES``; :func:`checkpoint_kind` reads which one a folder holds), optionally with a LoRA adapter, and
scores each option's likelihood or generates an answer; :func:`render_question` is the text it is asked,
:func:`load_media` the frames and image it is shown. Which questions can be asked at all: the files each one shows
that are missing (:func:`_missing`, paths from the benchmark's folder by :func:`_path`), how many frames it shows
(:func:`_num_frames`) and :func:`check_askable`, the error for a benchmark none of whose questions can be.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from sf2t._checks import check_int, check_int_pair
from sf2t._plural import none_of
from sf2t.finevidbench.choice import ANSWER_LINE
from sf2t.finevidbench.format import LETTERS


def render_question(q: dict) -> str:
    lines = [q["question"]] + [f"{LETTERS[i]}. {o}" for i, o in enumerate(q["options"])]
    return "\n".join(lines + [ANSWER_LINE])


def load_media(q: dict, root: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(frames uint8 [F, H, W, 3] in presented order, image uint8 [h, w, 3] or None)."""
    import numpy as np
    from PIL import Image

    def img(p: str) -> torch.Tensor:
        return torch.from_numpy(np.array(Image.open(Path(root) / p).convert("RGB")))

    v = q["video"]
    if "frame_images" in v:
        frames = torch.stack([img(p) for p in v["frame_images"]])
    else:
        from sf2t.video import decode_frames

        frames, _ = decode_frames(_path(v["path"], root), list(v["frames"]))
    return frames, (img(q["image"]) if q.get("image") else None)


def _path(p: str, root: str) -> str:
    return p if os.path.isabs(p) else str(Path(root) / p)


def check_askable(bench: dict) -> None:
    """A ValueError when no question of ``bench`` can be asked: every one misses a file it shows (a benchmark moved
    without its frames and videos, or built on videos since deleted)."""
    qs = bench["questions"]
    missing = [p for q in qs for p in _missing(q, bench["_root"])]
    if qs and all(_missing(q, bench["_root"]) for q in qs):
        raise ValueError(
            f"{none_of(len(qs), 'question', 'can be asked', 'cannot be asked')}: the files "
            f"{'it shows' if len(qs) == 1 else 'they show'} are missing (e.g. {missing[0]}, "
            f"looked for from {bench['_root']}): was the benchmark moved without its frames/ and videos/?"
        )


def _num_frames(q: dict) -> int:
    v = q["video"]
    return len(v["frame_images"]) if "frame_images" in v else len(v["frames"])


def _missing(q: dict, root: str) -> list[str]:
    v = q["video"]
    paths = (
        list(v.get("frame_images", [])) + ([v["path"]] if "path" in v else []) + ([q["image"]] if "image" in q else [])
    )
    return [p for p in paths if not Path(_path(p, root)).is_file()]


VIDEO_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "llava_onevision", "llava_next_video")


class VideoRunner:
    """A video LLM checkpoint of an sf2t family (Qwen2-VL, Qwen2.5-VL, LLaVA-OneVision, LLaVA-NeXT-Video), optionally
    with a LoRA adapter, answering benchmark questions on CPU or GPU."""

    def __init__(
        self,
        model_dir: str,
        adapter: str | None = None,
        *,
        device: str = "cpu",
        max_pixels: int = 224 * 224,
        frame_size: tuple[int, int] | None = None,
        layout: str = "repeat",
        token_keep_ratio: float = 1.0,
        token_stage: str = "after_tower",
        token_first_group: str = "all",
    ):
        """Qwen families: ``frame_size`` packs every frame at this (h, w) (multiples of 28) instead of Qwen's smart
        resize within ``max_pixels``; ``layout``: ``repeat`` (each frame twice: one frame per token group) or
        ``pairs`` (token group i = frames i and i+1), as the model was trained (``TrainConfig.layout``). LLaVA
        families take each frame once at their processor's size (``frame_size`` and ``pairs`` do not apply).
        ``token_keep_ratio`` < 1, ``token_stage`` and ``token_first_group``: the model compresses its video tokens as
        in training (``sf2t.models.apply_sf2t``; the text gets the kept number of placeholders)."""
        if layout not in ("repeat", "pairs"):
            raise ValueError(f"layout must be repeat or pairs, got {layout!r}")
        if frame_size is not None:
            frame_size = check_int_pair("frame_size", frame_size)
            if any(v % 28 or v <= 0 for v in frame_size):
                raise ValueError(f"frame_size must be (h, w), positive multiples of 28, got {frame_size}")
        max_pixels = check_int("max_pixels", max_pixels, min_value=1)
        if isinstance(token_keep_ratio, bool) or not 0.0 < float(token_keep_ratio) <= 1.0:
            raise ValueError(f"token_keep_ratio must be in (0, 1], got {token_keep_ratio!r}")
        if token_stage not in ("after_tower", "before_tower"):
            raise ValueError(f"token_stage must be after_tower or before_tower, got {token_stage!r}")
        if token_first_group not in ("all", "budget"):
            raise ValueError(f"token_first_group must be all or budget, got {token_first_group!r}")
        self.token_keep_ratio = float(token_keep_ratio)
        self.token_first_group = token_first_group
        self.frame_size = frame_size
        self.layout = layout
        from sf2t.models import FAMILIES
        from sf2t.models._build import load_checkpoint

        kind = checkpoint_kind(model_dir)
        if kind is None:  # sf2t's own output (an adapter, a run folder) passed as the model: what to pass instead
            from sf2t.models._build import not_a_model_hint

            hint = not_a_model_hint(model_dir)
            if hint:
                raise ValueError(f"--model {hint}")
        if kind not in VIDEO_FAMILIES:
            raise ValueError(
                f"model {model_dir!r} is {'a ' + kind if kind else 'not a recognised'} checkpoint; "
                f"sf2t eval runs the video models sf2t trains: {', '.join(VIDEO_FAMILIES)}"
            )
        family = FAMILIES[kind]
        self.qwen = family.pixel_layout == "qwen_patches"
        self.inputs = None
        config = None  # the checkpoint's config where read before the weights: the model loads with it
        if not self.qwen:
            if frame_size is not None or layout != "repeat":
                raise ValueError(
                    f"model {model_dir!r} is {kind}: it takes each frame once at its processor's size "
                    "(--frame-size and --layout pairs apply to the Qwen families)"
                )
            from transformers import AutoConfig

            from sf2t.models._build import load_processor
            from sf2t.models.context import Context
            from sf2t.models.inputs import ModelInputs

            processor = load_processor(model_dir)
            config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
            # the model's context (LLaVA-NeXT-Video: the one frame size its vision tower takes) before its weights load
            self.inputs = ModelInputs(
                family,
                processor,
                token_keep_ratio=self.token_keep_ratio,
                token_first_group=token_first_group,
                context=Context.of(config, processor),
            )
        model, self.tok = load_checkpoint(model_dir, family.model_class, config=config)
        if adapter:
            cfg = Path(adapter) / "adapter_config.json"
            if not cfg.is_file():
                from sf2t.models._build import not_an_adapter_hint

                raise FileNotFoundError(
                    f"adapter {adapter!r} is not a LoRA adapter directory (no adapter_config.json)"
                    + not_an_adapter_hint(adapter)
                )
            from sf2t.models._build import load_adapter

            model = load_adapter(model, adapter, model_dir)
        from sf2t.train.loop import apply_compression

        self.model = apply_compression(model.to(device).eval(), self.token_keep_ratio, token_stage, token_first_group)
        self.device = device
        self.max_pixels = max_pixels
        from sf2t.models.context import Context

        self.context = Context.of(self.model.config, self.tok)

    def _sample(self, q: dict, frames: torch.Tensor, image, answer: str | None, extra: int = 0) -> dict:
        """The model inputs of question ``q`` with ``answer`` (None: the prompt, ``extra`` tokens to be generated),
        checked against the model's context: a ValueError naming the question otherwise."""
        s = self._build(q, frames, image, answer)
        lower = (
            "--max-pixels or --frame-size, or skip long questions with --max-frames"
            if self.qwen
            else "--token-keep-ratio, or skip long questions with --max-frames"
        )
        self.context.check(s, f"question {q.get('id')!r} ({frames.shape[0]} frames)", lower, extra)
        return s

    def _build(self, q: dict, frames: torch.Tensor, image, answer: str | None) -> dict:
        if not self.qwen:  # LLaVA families: the processor's frame size and mean / std, the image's anyres tiles
            vision = self.inputs.video(frames, torch.arange(frames.shape[0]), None)
            s, image_tokens = {}, None
            if image is not None:
                s, image_tokens = self.inputs.image(image)
            s.update(vision)
            return s | self.inputs.text(self.tok, render_question(q), answer, vision, image_tokens=image_tokens)
        from sf2t.models.qwen2_vl import build_video_sample
        from sf2t.ops.fragment_pack import fragment_pack, qwen2_vl_target_size

        h, w = int(frames.shape[1]), int(frames.shape[2])
        size = self.frame_size or qwen2_vl_target_size(h, w, min_pixels=28 * 28, max_pixels=self.max_pixels)
        index, repeat = torch.arange(frames.shape[0]), 2
        if self.layout == "pairs" and index.numel() >= 2:
            from sf2t.train.data import pair_layout_index

            index, repeat = pair_layout_index(index.numel()), 1
        pixels, grid = fragment_pack(frames, index, None, size, frame_repeat=repeat)
        ipix = igrid = None
        if image is not None:
            isz = self.frame_size or qwen2_vl_target_size(
                int(image.shape[0]), int(image.shape[1]), min_pixels=28 * 28, max_pixels=self.max_pixels
            )
            ipix, igrid = fragment_pack(image[None], torch.zeros(1, dtype=torch.long), None, isz, frame_repeat=2)
        s = build_video_sample(
            self.tok,
            render_question(q),
            answer,
            grid,
            image_grid_thw=igrid,
            token_keep_ratio=self.token_keep_ratio,
            token_first_group=self.token_first_group,
        )
        s["pixel_values_videos"], s["video_grid_thw"] = pixels, grid
        if ipix is not None:
            s["pixel_values"], s["image_grid_thw"] = ipix, igrid
        return s

    @torch.no_grad()
    def likelihood(self, q: dict, frames: torch.Tensor, image) -> list[float]:
        """Mean log-probability of each option's tokens (and the turn's end) as the answer."""
        return self.likelihood_batch([(q, frames, image)])[0]

    @torch.no_grad()
    def likelihood_batch(self, items) -> list[list[float]]:
        """:meth:`likelihood` of several questions ``[(q, frames, image), ...]`` in one forward pass."""
        from sf2t.models.qwen2_vl import collate

        samples, sizes = [], []
        for q, frames, image in items:
            samples += [self._sample(q, frames, image, o) for o in q["options"]]
            sizes.append(len(q["options"]))
        if self.qwen:
            chunks = [collate(samples, self.tok.pad_token_id) | {"rows": list(range(len(samples)))}]
        else:  # one forward per video shape (the LLaVA models take [B, F, 3, H, W])
            chunks = self.inputs.collate(samples, self.tok.pad_token_id)
        scores = [0.0] * len(samples)
        for batch in chunks:
            rows = batch.pop("rows")
            labels = batch.pop("labels").to(self.device)
            inputs = {k: v.to(self.device) for k, v in batch.items() if isinstance(v, torch.Tensor)}
            logits = self.model(**inputs).logits[:, :-1].float()
            target = labels[:, 1:]
            logp = torch.log_softmax(logits, -1).gather(-1, target.clamp_min(0)[..., None])[..., 0]
            mask = (target != -100).float()
            for r, v in zip(rows, ((logp * mask).sum(1) / mask.sum(1).clamp_min(1)).tolist()):
                scores[r] = v
        out, k = [], 0
        for n in sizes:
            out.append(scores[k : k + n])
            k += n
        return out

    def generate(self, q: dict, frames: torch.Tensor, image, max_new_tokens: int | None = None) -> str:
        """The greedy answer. ``max_new_tokens`` (default): room for the question's longest option and a few more
        tokens (a letter, a period): a fixed 8 cut long options ("4, 5, 2, 3, 1") short, so they never matched."""
        from sf2t.train.evaluate import generate_answer

        if max_new_tokens is None:
            longest = max(len(self.tok(o, add_special_tokens=False)["input_ids"]) for o in q["options"])
            max_new_tokens = longest + 4
        s = self._sample(q, frames, image, None, extra=max_new_tokens)
        return generate_answer(self.model, self.tok, s, max_new_tokens=max_new_tokens, device=self.device)


QwenRunner = VideoRunner  # its name when it ran the Qwen families only


def checkpoint_kind(model_dir: str) -> str | None:
    """The ``model_type`` in a local checkpoint's config.json (None when there is none); a clear error for a path
    that is not a folder or a config that is not JSON."""
    if not Path(model_dir).is_dir():
        from sf2t._files import hub_download_hint, looks_like_hub_id

        hint = (
            f"; sf2t loads checkpoints offline: {hub_download_hint(model_dir, '--model ')}"
            if looks_like_hub_id(model_dir)
            else ""
        )
        raise FileNotFoundError(f"model {model_dir!r} is not a local checkpoint directory{hint}")
    cfg_file = Path(model_dir) / "config.json"
    try:
        return json.loads(cfg_file.read_text()).get("model_type") if cfg_file.is_file() else None
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as e:
        raise ValueError(f"model {model_dir!r}: config.json is not a JSON object ({e})") from None
