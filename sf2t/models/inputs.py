"""Model inputs per family: presented frames, a target image and text -> the tensors a model's ``forward`` takes.

:class:`ModelInputs` is what the trainer, the evaluation and the sample factory use, so they stay family-agnostic:

- Qwen2-VL / Qwen2.5-VL: ``fragment_pack`` into flattened temporal patches (``pixel_values_videos`` +
  ``video_grid_thw``) at the run's ``frame_size`` (multiples of 28), ``frame_repeat`` copies of each presented frame
  or the ``pairs`` layout; a target image as two identical frames (``pixel_values`` + ``image_grid_thw``); text with
  ``mm_token_type_ids``.
- LLaVA-OneVision / LLaVA-NeXT-Video: ``fragment_pack(layout="fchw")`` at the size the checkpoint's video processor
  uses (OneVision: resize to ``size``; NeXT-Video: shortest edge, then centre crop), normalized with its mean / std:
  ``pixel_values_videos [F, 3, H, W]``. A target image goes through the checkpoint's own image processor (anyres
  tiles: ``pixel_values [1, patches, 3, S, S]`` + ``image_sizes``), on the host: one image per sample.

:meth:`ModelInputs.collate` batches samples into forward *chunks*: Qwen takes any mix of frame counts in one
forward (patches are concatenated); the LLaVA models stack videos as ``[B, F, 3, H, W]``, so a batch is split into
chunks of equal frame count (the loss is summed over chunks, normalized by the batch's supervised tokens, so the
step is the same as one forward over the batch would give).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from sf2t._checks import check_int, check_int_pair
from sf2t.models.families import Family
from sf2t.models.qwen2_vl import build_video_sample
from sf2t.models.text import check_token_keep
from sf2t.ops.fragment_pack import QWEN2_VL_MEAN, QWEN2_VL_STD, fragment_pack, llava_target_size
from sf2t.ops.token_merge import FIRST_GROUP

__all__ = ["ModelInputs", "TEXT_KEYS", "VISION_KEYS"]

TEXT_KEYS = ("input_ids", "attention_mask", "labels", "mm_token_type_ids")
VISION_KEYS = ("pixel_values_videos", "video_grid_thw", "pixel_values", "image_grid_thw", "image_sizes")


def _field(d, key):
    """``d[key]`` of a processor size (a dict or transformers' ``SizeDict``), None when absent."""
    return d.get(key) if isinstance(d, dict) else getattr(d, key, None)


def _processor_size(vp) -> tuple[dict, tuple[int, int] | None]:
    """(llava_target_size keyword, crop) from a LLaVA video processor's ``size`` / ``crop_size``."""
    size, cs = getattr(vp, "size", None), getattr(vp, "crop_size", None)
    crop = None
    if getattr(vp, "do_center_crop", False) and cs is not None:
        crop = (int(_field(cs, "height")), int(_field(cs, "width")))
    if _field(size, "height") and _field(size, "width"):
        return {"size": (int(_field(size, "height")), int(_field(size, "width")))}, crop
    if _field(size, "shortest_edge"):
        return {"shortest_edge": int(_field(size, "shortest_edge"))}, crop
    raise ValueError(f"{type(vp).__name__}: size {size!r} has neither height/width nor shortest_edge")


def _check_image(image) -> None:
    """One RGB image, uint8 ``[h, w, 3]``; LLaVA's image processor took a float, channels-first or batched image
    without a word and counted its placeholders for the wrong size (or failed deep inside transformers)."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch.Tensor, uint8 [h, w, 3], got {type(image).__name__}")
    hint = ""
    if image.dim() == 3 and image.shape[0] == 3 and image.shape[-1] != 3:
        hint = ": it looks channels-first, pass image.permute(1, 2, 0)"
    elif image.dim() == 4 and image.shape[0] == 1:
        hint = ": one image, not a batch; pass image[0]"
    if image.dim() != 3 or image.shape[-1] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image must be one RGB image [h, w, 3] (channels last), got shape {tuple(image.shape)}{hint}")
    if image.dtype != torch.uint8:
        raise ValueError(f"image must be uint8 (0-255) [h, w, 3], got dtype {image.dtype}")


class ModelInputs:
    """How one family's model takes a sample (see the module docstring).

    ``processor``: the checkpoint's processor (``sf2t.models.load_processor``); LLaVA families need it (their frame
    size, mean / std and the image processor for targets), Qwen families use its mean / std when given.
    ``frame_size`` / ``frame_repeat`` / ``layout``: the Qwen families' presented-frame size, temporal repeat and token
    grouping (``repeat`` or ``pairs``); LLaVA families take each frame once at the processor's size.
    ``context``: the model's :class:`sf2t.models.context.Context`, which the sample factory checks each sample against;
    LLaVA-NeXT-Video: a processor whose frames are not the vision tower's ``image_size`` square (its ``frame_size``) is
    refused here, and without a context one whose frames are not square (e.g. ``shortest_edge`` with no crop);
    LLaVA-OneVision: likewise one whose frames' patch grid is not that square's (non-square, without a context).
    """

    def __init__(
        self,
        family: Family,
        processor=None,
        *,
        frame_size: Sequence[int] = (56, 56),
        frame_repeat: int = 2,
        layout: str = "repeat",
        token_keep_ratio: float = 1.0,
        token_first_group: str = "all",
        context=None,
    ):
        from sf2t.train.data import LAYOUTS  # (lazy: sf2t.train.data imports the tasks and the video readers)

        if token_first_group not in FIRST_GROUP:
            raise ValueError(f"token_first_group must be one of {FIRST_GROUP}, got {token_first_group!r}")
        self.token_first_group = token_first_group
        self.context = context  # sf2t.models.context.Context: samples are checked against it (None: not checked)

        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        self.family = family
        self.processor = processor
        self.qwen = family.pixel_layout == "qwen_patches"
        # checked here, by name: an int frame_size was "not subscriptable", frame_repeat=1.5 was cut to 1 and
        # token_keep_ratio=True taken as 1.0 without a word
        self.frame_size = check_int_pair("frame_size", frame_size)
        self.frame_repeat = check_int("frame_repeat", frame_repeat, min_value=1)
        self.layout = layout
        keep = check_token_keep(token_keep_ratio, token_first_group)
        self.token_keep_ratio = 1.0 if keep is None else keep
        vp = getattr(processor, "video_processor", None) if processor is not None else None
        if self.qwen:
            self.mean = tuple(getattr(vp, "image_mean", None) or QWEN2_VL_MEAN)
            self.std = tuple(getattr(vp, "image_std", None) or QWEN2_VL_STD)
            return
        if vp is None:
            raise ValueError(
                f"{family.name}: the checkpoint's processor is needed (its video processor sets frame size, mean "
                "and std); load it with sf2t.models.load_processor(checkpoint)"
            )
        if layout != "repeat":
            raise ValueError(
                f"layout={layout!r} applies to the Qwen families only ({family.name} takes each frame once)"
            )
        self.size_kw, self.crop = _processor_size(vp)
        out = self.crop or self.size_kw.get("size")
        self._check_frame_size(out, context)
        if out is not None:  # every frame's size: refused now, not by the model's forward (LLaVA-NeXT-Video: odd grid)
            try:
                family.num_video_tokens(1, *out)
            except ValueError as e:
                what = "crop_size" if self.crop else "size"
                raise ValueError(f"{family.name}: the processor's video {what} {out[0]}x{out[1]}: {e}") from None
        self.mean = tuple(float(v) for v in vp.image_mean)
        self.std = tuple(float(v) for v in vp.image_std)

    def _check_frame_size(self, out: tuple[int, int] | None, context) -> None:
        """Refuse now a processor whose video frames the model cannot take (``family.check_frame_size``;
        LLaVA-NeXT-Video: only the vision tower's ``image_size`` square, known from ``context``, else only a square;
        LLaVA-OneVision: only that square's patch grid),
        not in the model's forward: its output size ``out`` (None: ``shortest_edge`` without a crop, so each video's
        frames keep its aspect ratio)."""
        check = self.family.check_frame_size
        if check is None:
            return
        frame = getattr(context, "frame_size", None)
        side = None if frame is None else int(frame[0])
        if out is None:  # frames follow the video: a wide one's are not square (a square video's would pass)
            edge = self.size_kw["shortest_edge"]
            where = (
                f"the processor's video size resizes the shortest edge to {edge} with no centre crop (do_center_crop "
                f"off or no crop_size), so frames keep each video's aspect ratio (a video twice as wide as high: "
                f"{edge}x{2 * edge})"
            )
            try:
                check(edge, 2 * edge, side)
            except ValueError as e:
                raise ValueError(f"{self.family.name}: {where}: {e}") from None
            return
        try:
            check(*out, side)
        except ValueError as e:
            what = "crop_size" if self.crop else "size"
            raise ValueError(f"{self.family.name}: the processor's video {what} {out[0]}x{out[1]}: {e}") from None

    def check_model(self, model) -> None:
        """A ValueError, before any forward, when ``model`` does not compress its video tokens as this object's text
        expects (:func:`sf2t.models.compress.check_compression`): text built with ``token_keep_ratio`` < 1 for a
        model without ``sf2t.models.apply_sf2t(model, token_keep_ratio=...)`` met transformers' bare "Video features
        and video tokens do not match"."""
        from sf2t.models.compress import check_compression

        check_compression(model, self.token_keep_ratio, self.token_first_group)

    # -- pixels

    def video(self, frames: torch.Tensor, index: torch.Tensor, boxes: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The presented frames ``frames[index]`` (cropped to ``boxes``) in the model's layout: Qwen
        ``{pixel_values_videos [patches, C*2*14*14], video_grid_thw [1, 3]}``; LLaVA ``{pixel_values_videos
        [F, 3, H, W]}``."""
        if isinstance(index, torch.Tensor) and index.numel() == 0:  # (a grid of 0 frames, refused later, less clearly)
            raise ValueError("index must select at least one of the frames, got an empty index")
        if self.qwen:
            from sf2t.train.data import pair_layout_index

            repeat = self.frame_repeat
            if self.layout == "pairs" and index.numel() >= 2:
                # [f0, f1, f1, f2, ..., f_{F-1}]: token group i holds presented frames i and i+1
                pick = pair_layout_index(index.numel(), device=index.device)
                index = index[pick]
                boxes = None if boxes is None else boxes[pick]
                repeat = 1
            pixels, grid = fragment_pack(
                frames, index, boxes, self.frame_size, mean=self.mean, std=self.std, frame_repeat=repeat
            )
            return {"pixel_values_videos": pixels, "video_grid_thw": grid}
        h, w = int(frames.shape[1]), int(frames.shape[2])
        if boxes is not None:  # the processor would see the crops: size them from the crop
            sizes = {(int(b[3] - b[1]), int(b[2] - b[0])) for b in boxes.tolist()}
            if len(sizes) != 1:
                raise ValueError(f"{self.family.name}: crop boxes of one sample must share a size, got {sorted(sizes)}")
            h, w = sizes.pop()
        resize, out = llava_target_size(h, w, crop=self.crop, **self.size_kw)
        pixels, _ = fragment_pack(
            frames, index, boxes, out, mean=self.mean, std=self.std, frame_repeat=1, layout="fchw", resize=resize
        )
        return {"pixel_values_videos": pixels}

    def image(self, image: torch.Tensor) -> tuple[dict[str, torch.Tensor], int]:
        """One target image ``[h, w, 3]`` uint8 -> (its model inputs, its number of placeholder tokens)."""
        _check_image(image)
        if self.qwen:
            img = image[None]
            pixels, grid = fragment_pack(
                img,
                torch.zeros(1, dtype=torch.int64, device=img.device),
                None,
                self.frame_size,
                mean=self.mean,
                std=self.std,
                frame_repeat=2,
            )  # an image = 2 identical frames
            return {"pixel_values": pixels, "image_grid_thw": grid}, int(grid.prod()) // 4
        from sf2t.models.llava_onevision import num_image_tokens  # (LLaVA-NeXT-Video's is the same function)

        got = self.processor.image_processor(images=[image.cpu().numpy()], return_tensors="pt")
        h, w = int(image.shape[0]), int(image.shape[1])
        inputs = {
            "pixel_values": got["pixel_values"].to(image.device),  # [1, patches, 3, S, S]
            "image_sizes": torch.as_tensor(got["image_sizes"]).reshape(1, 2).to(image.device),
        }
        return inputs, num_image_tokens(self.processor, h, w)

    # -- text

    def text(
        self,
        tokenizer,
        question: str,
        answer: str | None,
        vision: dict[str, Any],
        image_tokens: int | None = None,
        image_grid: torch.Tensor | None = None,
        *,
        more=(),
        system: str | None = None,
    ) -> dict[str, torch.Tensor]:
        """``input_ids``, ``attention_mask``, ``labels`` (and ``mm_token_type_ids`` for Qwen) for a sample whose
        video inputs are ``vision`` (from :meth:`video`). ``more``: later ``(question, answer)`` turns of a multi-turn
        conversation (every answer supervised); ``system``: system text instead of the family's default."""
        keep = self.token_keep_ratio
        extra = {"more": tuple(more)} | ({} if system is None else {"system": system})
        if self.qwen:
            return build_video_sample(
                tokenizer,
                question,
                answer,
                vision["video_grid_thw"],
                image_grid_thw=image_grid,
                token_keep_ratio=keep,
                token_first_group=self.token_first_group,
                **extra,
            )
        f, _, h, w = vision["pixel_values_videos"].shape  # [F, 3, H, W]: one token group per frame
        return self.family.build_sample(
            tokenizer,
            question,
            answer,
            int(f),
            int(h),
            int(w),
            image_tokens=image_tokens,
            token_keep_ratio=None if keep == 1.0 else keep,
            token_first_group=self.token_first_group,
            **extra,
        )

    # -- batching

    def collate(self, samples: Sequence[dict], pad_id: int) -> list[dict[str, Any]]:
        """Forward chunks of a batch (see the module docstring): each a dict of padded text tensors, vision tensors,
        ``tasks`` and ``rows`` (the chunk's positions in ``samples``)."""
        if not samples:
            raise ValueError("collate: empty batch")
        if self.qwen:
            from sf2t.models.qwen2_vl import collate

            keys = TEXT_KEYS + VISION_KEYS
            chunk = collate([{k: s[k] for k in keys if k in s} for s in samples], pad_id)
            chunk["rows"] = list(range(len(samples)))
            return [chunk]
        groups: dict[tuple, list[int]] = {}
        for i, s in enumerate(samples):
            groups.setdefault(tuple(s["pixel_values_videos"].shape), []).append(i)
        return [self._collate_llava([samples[i] for i in rows], pad_id) | {"rows": rows} for rows in groups.values()]

    @staticmethod
    def _collate_llava(samples: Sequence[dict], pad_id: int) -> dict[str, Any]:
        from sf2t.models.qwen2_vl import collate  # right-pads the text keys

        out = collate([{k: s[k] for k in ("input_ids", "attention_mask", "labels")} for s in samples], pad_id)
        out["pixel_values_videos"] = torch.stack([s["pixel_values_videos"] for s in samples])  # [B, F, 3, H, W]
        images = [s for s in samples if "pixel_values" in s]
        if images:  # anyres tiles: padded to the most patches (the model keeps each image's own count)
            most = max(int(s["pixel_values"].shape[1]) for s in images)
            pv = [s["pixel_values"][0] for s in images]
            out["pixel_values"] = torch.stack(
                [torch.cat([p, p.new_zeros(most - p.shape[0], *p.shape[1:])]) if p.shape[0] < most else p for p in pv]
            )
            out["image_sizes"] = torch.cat([s["image_sizes"] for s in images])
        return out
