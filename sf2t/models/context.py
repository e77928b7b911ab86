"""The model's context window: how many tokens and rotary positions a sample takes, against what the checkpoint was
trained for.

Nothing in transformers checks it: the families sf2t trains compute their rotary embeddings on the fly (default
RoPE), so a sample past ``max_position_embeddings`` runs, with finite logits, at positions the model never saw
(measured on the tiny checkpoints of all four families with ``max_position_embeddings=64`` and a 96-token sample:
forward and generate both succeed). Quality collapses silently. :class:`Context` says so before that happens:

- positions: LLaVA families use one position per token; Qwen's M-RoPE gives a video of grid (t, h, w) the extent
  ``max(t_extent, h / merge, w / merge)`` positions (``t_extent = (t - 1) * interval + 1``, ``interval`` =
  Qwen2.5-VL's ``tokens_per_second`` since sf2t passes no ``second_per_grid_ts``, 1 for Qwen2-VL and for images),
  whatever the number of kept tokens (sf2t token merging keeps the uncompressed positions). That is exact for
  transformers releases that advance text after a video by the whole extent, an upper bound for those (5.2x) that
  advance by ``max(h, w) / merge`` only.
- tokens: the tokenizer's ``model_max_length``, when the checkpoint sets one (not transformers' "no limit" value).

:func:`check_run_fits` estimates the largest sample a training run's settings make (most presented frames of each
task at the packed frame size, its longest question and answer in the chat scaffolding, localization's target image:
Qwen at the frame size, LLaVA the most anyres tokens any square image takes through the processor's
``image_grid_pinpoints``) and refuses a run that cannot fit; :func:`supervised_overflow` measures every mixed-in
supervised record (its own texts) at setup, so the ones that cannot fit are left out before training
(``sf2t.train.supervised.leave_out_long``); :class:`TargetBudget` does the same for a LLaVA localization target,
whose tokens follow the video's size: a video none of whose targets can fit is left out of the task when the pool is
read (``sf2t.train.targets.leave_out_large_targets``), the others' samples draw their target among the sizes that fit;
:meth:`Context.check` is the per-sample guard for what the estimates cannot know (a supervised record found too long
when made is skipped and another drawn, ``SampleFactory._supervised_draw``), and :meth:`Context.check_extent` the same
for a sample whose extent was kept (the held-out set, with the tokens to generate).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import torch

__all__ = ["Context", "TargetBudget", "check_run_fits", "llava_image_tokens", "supervised_overflow"]

# transformers stores "no model_max_length" as int(1e30); anything this large is no limit
_NO_LIMIT = 10**9


@dataclass(frozen=True)
class Context:
    """What a checkpoint can take: ``max_positions`` (the text config's ``max_position_embeddings``, widened by its
    RoPE scaling factor), ``max_tokens`` (the tokenizer's ``model_max_length``; None when unset; not a limit under
    Qwen's M-RoPE, where a video's tokens take far fewer positions than tokens and nothing in the model counts
    tokens), and for M-RoPE (``mrope``) the spatial ``merge`` and the video's temporal position step ``interval``.
    ``frame_size``: the (h, w) frame size the vision tower is built for, where it takes only that (LLaVA-NeXT-Video: its
    CLIP ``image_size`` square, :func:`sf2t.models.llava_next_video.check_frame_size`; LLaVA-OneVision: its SigLIP
    ``image_size`` square, or another size of its patch grid, :func:`sf2t.models.llava_onevision.check_frame_size`);
    None otherwise."""

    max_positions: int | None
    max_tokens: int | None = None
    mrope: bool = False
    merge: int = 2
    interval: float = 1.0
    frame_size: tuple[int, int] | None = None

    @classmethod
    def of(cls, config, tokenizer=None) -> Context:
        """The context of a model ``config`` (a transformers config) and its ``tokenizer`` (or processor)."""
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        positions = _scaled_positions(text)
        tok = getattr(tokenizer, "tokenizer", tokenizer)
        tokens = getattr(tok, "model_max_length", None)
        tokens = int(tokens) if isinstance(tokens, (int, float)) and 0 < tokens < _NO_LIMIT else None
        model_type = getattr(config, "model_type", "")
        mrope = model_type in ("qwen2_vl", "qwen2_5_vl")
        vision = getattr(config, "vision_config", None)
        merge = int(getattr(vision, "spatial_merge_size", 2) or 2)
        interval = float(getattr(vision, "tokens_per_second", 1) or 1) if model_type == "qwen2_5_vl" else 1.0
        side = getattr(vision, "image_size", None) if model_type in ("llava_next_video", "llava_onevision") else None
        frame = (int(side), int(side)) if isinstance(side, int) and side > 0 else None
        return cls(None if positions is None else int(positions), tokens, mrope, merge, interval, frame)

    def extent(self, sample: Mapping) -> tuple[int, int]:
        """(tokens, rotary positions) of one sample: 1-D ``input_ids`` (Qwen: ``mm_token_type_ids`` and the
        ``video_grid_thw`` / ``image_grid_thw`` of its video and image)."""
        tokens = int(sample["input_ids"].numel())
        if not self.mrope:
            return tokens, tokens
        text = int((sample["mm_token_type_ids"] == 0).sum())
        spans = 0
        for key, step in (("image_grid_thw", 1.0), ("video_grid_thw", self.interval)):
            grid = sample.get(key)
            for t, h, w in [] if grid is None else torch.as_tensor(grid).reshape(-1, 3).tolist():
                spans += max(int(math.floor((t - 1) * step)) + 1, h // self.merge, w // self.merge)
        return tokens, text + spans

    def over(self, tokens: int, positions: int) -> list[str]:
        """What ``tokens`` / ``positions`` exceed, in words ([] when the sample fits)."""
        out = []
        if self.max_positions is not None and positions > self.max_positions:
            what = "M-RoPE positions" if self.mrope else "tokens"
            out.append(f"{positions} {what} > max_position_embeddings {self.max_positions}")
        if self.max_tokens is not None and not self.mrope and tokens > self.max_tokens:
            out.append(f"{tokens} tokens > the tokenizer's model_max_length {self.max_tokens}")
        return out

    def check(self, sample: Mapping, where: str, lower: str, extra: int = 0) -> None:
        """A ValueError naming ``where`` (which sample), the numbers and ``lower`` (the settings to lower) when
        ``sample`` (plus ``extra`` tokens still to be generated) does not fit."""
        self.check_extent(*self.extent(sample), where, lower, extra)

    def check_extent(self, tokens: int, positions: int, where: str, lower: str, extra: int = 0) -> None:
        """:meth:`check` of a sample of ``tokens`` / ``positions`` (its :meth:`extent`)."""
        over = self.over(tokens + extra, positions + extra)
        if over:
            plus = f" (with {extra} tokens to generate)" if extra else ""
            raise ValueError(
                f"{where}: the sample is longer than the model's context{plus}: {'; '.join(over)}. Past it the "
                f"model runs at positions it was never trained on (no error, silently worse answers); lower {lower}"
            )


def _scaled_positions(text) -> int | None:
    """``max_position_embeddings`` of a text config, widened by its RoPE scaling (``rope_parameters`` /
    ``rope_scaling``: linear, dynamic, yarn, llama3, ... with a ``factor``): the original context (or
    ``max_position_embeddings``) times the factor, never less than ``max_position_embeddings``."""
    positions = getattr(text, "max_position_embeddings", None)
    if positions is None:
        return None
    rope = getattr(text, "rope_parameters", None) or getattr(text, "rope_scaling", None)
    rope = rope if isinstance(rope, Mapping) else {}
    kind, factor = rope.get("rope_type") or rope.get("type"), rope.get("factor")
    if kind in (None, "default", "mrope") or not isinstance(factor, (int, float)) or factor <= 1:
        return int(positions)
    original = rope.get("original_max_position_embeddings") or positions
    return max(int(positions), int(original * factor))


def _frames_of(task) -> int:
    """The most frames ``task`` presents in one sample (its ``max_presented``; the fewest it needs otherwise)."""
    fn = getattr(task, "max_presented", None)
    return int(fn()) if fn is not None else int(task.min_frames())


def _frame_settings(name: str, task) -> str:
    """The setting that caps ``task``'s frames ("" for one that has none: consistency always shows two)."""
    cfg = getattr(task, "cfg", None)
    if cfg is not None and hasattr(cfg, "count_max"):
        return f"{name}.count_max"
    return ""


def _texts(task: str, frames: int) -> list[tuple[str, str]]:
    """(question, answer) pairs a ``task`` sample of ``frames`` presented frames can say: every paraphrase with each
    of its answers (the longest in characters need not be the longest in tokens; speed's part lengths and the
    answers' numbers at ``frames``); ``[("", "")]`` for a task without templates (the per-sample guard covers it)."""
    from sf2t.tasks import templates

    questions = templates.QUESTIONS.get(task)
    if not questions:
        return [("", "")]
    if task == "speed":
        n1 = max(1, frames // 2)
        questions = tuple(q.format(n1=n1, n1p=n1 + 1, n=frames) for q in questions)
    if task == "consistency":
        from sf2t.tasks.consistency import CELLS

        answers = [templates.consistency_answer(k, None) for k in ("identical", "whole")]
        answers += [templates.consistency_answer("cell", c) for c in CELLS]
    else:
        answers = {
            "counting": [templates.counting_answer(frames)],
            "disorder": [templates.disorder_answer(True), templates.disorder_answer(False)],
            "localization": [templates.localization_answer(frames, frames)],
            "rearrangement": [templates.rearrangement_answer(range(frames, 0, -1))],
            "speed": [templates.speed_answer(f) for f in ("first", "second", "same")],
        }.get(task, [""])
    return [(q, a) for q in questions for a in answers]


def _vision_for(inputs, frames: int, source: tuple[int, int] | None = None) -> dict:
    """The vision inputs :meth:`ModelInputs.text` reads for a sample of ``frames`` presented frames, without pixels:
    Qwen ``video_grid_thw`` (``frame_repeat`` copies, or the pairs layout, in temporal patches of 2); LLaVA a
    zero-stride ``pixel_values_videos`` of the processor's output size for frames of ``source`` (h, w) (default: a
    square source, for when the size depends on the video's shape)."""
    if inputs.qwen:
        h, w = inputs.frame_size
        groups = frames - 1 if inputs.layout == "pairs" and frames >= 2 else math.ceil(frames * inputs.frame_repeat / 2)
        return {"video_grid_thw": torch.tensor([[groups, h // 14, w // 14]])}
    from sf2t.ops.fragment_pack import llava_target_size

    side = inputs.size_kw.get("shortest_edge") or max(inputs.size_kw["size"])
    _, (h, w) = llava_target_size(*(source or (side, side)), crop=inputs.crop, **inputs.size_kw)
    return {"pixel_values_videos": torch.zeros(()).expand(frames, 3, h, w)}


def llava_image_tokens(processor, fewest: bool = False) -> int:
    """The most ``<image>`` tokens a square image (localization's target: a ``side x side`` crop, ``side`` a fraction
    of the video's short side, so any side) takes through a LLaVA ``processor``'s anyres (its image processor's
    ``image_grid_pinpoints``): the count of every side up to the largest pinpoint dimension. Past it the count no
    longer changes: the best-fit pinpoint then depends on the pinpoints alone (each one's fitted area is its short side
    squared) and the unpadding on the aspect (1) alone. ``fewest``: the fewest instead (a small target's)."""
    from sf2t.models.llava_onevision import num_image_tokens  # (LLaVA-NeXT-Video's is the same function)

    pins = getattr(processor.image_processor, "image_grid_pinpoints", None) or []
    top = max((int(v) for p in pins for v in p), default=1)
    return (min if fewest else max)(num_image_tokens(processor, side, side) for side in range(1, top + 2))


def _extent_of(context: Context, inputs, tokenizer, question, answer, vision: dict, image_kw: dict, **text_kw):
    """(tokens, positions) of one sample's text (``inputs.text``: the chat scaffolding) around ``vision``."""
    text = inputs.text(tokenizer, question, answer, vision, **image_kw, **text_kw)
    grid = image_kw.get("image_grid")
    return context.extent({**text, **vision, **({} if grid is None else {"image_grid_thw": grid})})


def _largest(context: Context, inputs, tokenizer, kind, frames: int, vision: dict, image_kw: dict) -> tuple[int, int]:
    """(tokens, positions) of the longest of a task's question / answer texts around ``vision`` (and an image)."""
    tokens = positions = 0
    for question, answer in _texts(kind, frames) if kind else [("", "")]:
        t, p = _extent_of(context, inputs, tokenizer, question, answer, vision, image_kw)
        tokens, positions = max(tokens, t), max(positions, p)
    return tokens, positions


# A record's texts tokenized alone vs inside the chat text: only the tokens at a text's two ends can differ (a
# space or newline glued on, a merge across the edge); a few per text, and a constant for the rest (calibrated:
# :func:`supervised_overflow` checks its first record of each shape exactly).
_MARGIN = 16
_MARGIN_PER_TEXT = 4


def _token_counts(tok, texts) -> dict[str, int]:
    """Each text's token count, alone (no special tokens added): in one batch, through the Rust tokenizer itself
    where there is one (``backend_tokenizer``; transformers' conversion of each encoding took a third of the time)."""
    texts = list(texts)
    if not texts:
        return {}
    backend = getattr(tok, "backend_tokenizer", None)
    # (the Rust tokenizer keeps the padding / truncation it was last set to, by its tokenizer.json or by a call with
    # padding=True: transformers sets them on each call, this shortcut does not; padded counts would leave out records
    # that fit)
    if backend is not None and backend.padding is None and backend.truncation is None:
        return {t: len(e.ids) for t, e in zip(texts, backend.encode_batch(texts, add_special_tokens=False))}
    return {t: len(ids) for t, ids in zip(texts, tok(texts, add_special_tokens=False)["input_ids"])}


def supervised_overflow(context: Context, inputs, tokenizer, records, frames: int) -> list[tuple[int, list[str]]]:
    """``(k, what it exceeds)`` for each supervised record ``records[k]`` (sf2t.train.supervised) whose sample with
    ``frames`` presented frames cannot fit ``context``: every question and answer, and the system text, in the chat
    scaffolding around the video (:func:`_extent_of`, as :func:`check_run_fits` counts a task's texts).

    Cheap for many records: their texts are tokenized alone, in batches (each distinct text once), and added to the
    extent of the same conversation with empty texts (one per shape: number of turns, own system text or not); only a
    record that this sum leaves within a margin of the limit is assembled in full, and the first of each shape, to
    check that the sum bounds it (else that shape is always assembled in full). 5,000 records, tiny Qwen2-VL
    tokenizer, 2 busy CPU cores: 1.3-1.7 s (assembling each in full: 7.9-11 s)."""
    vision = _vision_for(inputs, frames)
    tok = getattr(tokenizer, "tokenizer", tokenizer)

    def exact(r) -> tuple[int, int]:
        return _extent_of(context, inputs, tokenizer, r.question, r.answer, vision, {}, more=r.more, system=r.system)

    base: dict[tuple[int, bool], tuple[int, int] | None] = {}  # shape -> its empty texts' extent (None: no bound)
    out = []
    for start in range(0, len(records), 4096):  # (batches bound the memory of the token lists)
        chunk = records[start : start + 4096]
        texts = [[r.question, r.answer, *(t for qa in r.more for t in qa), *([r.system] if r.system else [])]
                 for r in chunk]  # fmt: skip
        counts = _token_counts(tok, {t for ts in texts for t in ts})
        for k, (rec, ts) in enumerate(zip(chunk, texts), start):
            n = sum(counts[t] for t in ts)
            shape = (len(rec.more), rec.system is not None)
            got = None
            if shape not in base:
                more, system = (("", ""),) * shape[0], "" if shape[1] else None
                t0, p0 = _extent_of(context, inputs, tokenizer, "", "", vision, {}, more=more, system=system)
                got = exact(rec)
                base[shape] = (t0, p0) if got[0] <= t0 + n and got[1] <= p0 + n else None
            else:
                bound, room = base[shape], n + _MARGIN + _MARGIN_PER_TEXT * len(ts)
                if bound is None or context.over(bound[0] + room, bound[1] + room):
                    got = exact(rec)
            over = context.over(*got) if got is not None else []
            if over:
                out.append((k, over))
    return out


class TargetBudget:
    """Which localization target sides fit ``context`` in a LLaVA run, video by video. The target is a square crop of
    side ``round(fraction * short side)``, the fraction drawn from ``side_min..side_max`` of ``task``'s config, and
    its anyres tokens follow the side (:func:`sf2t.models.llava_onevision.num_image_tokens`). A sample is counted
    as :func:`check_run_fits` counts it: the task's longest question and answer (:func:`_texts`) around ``frames``
    presented frames of the video's own size (the processor's output for it), plus the image's tokens (one
    position each: LLaVA).

    :meth:`smallest_over` is the setup test: a video whose smallest target cannot fit with the most frames it shows is
    left out of the task (``sf2t.train.targets.leave_out_large_targets``). :meth:`fraction` is the cap the sample
    factory hands the task's ``plan``, so a sample draws its side among those that fit (the target size distribution
    cut off above, nothing else about the sample changed); :meth:`over_sample` the exact check of a made sample (its
    own question and answer). Cached per side, per frame size and frame count: a pool of many videos costs a few
    text assemblies per distinct size."""

    def __init__(self, context: Context, inputs, tokenizer, task):
        self.context, self.inputs, self.tokenizer = context, inputs, tokenizer
        self.kind = getattr(task, "name", "localization")
        self.cfg = task.cfg
        self._tokens: dict[int, int] = {}  # side -> image tokens
        self._base: dict[tuple, tuple[int, int]] = {}  # video input shape -> extent of the longest text, no image
        self._largest: dict[tuple, int] = {}  # (size, frames) -> largest_side
        self._smallest: dict[tuple, list[str]] = {}  # (size, frames) -> smallest_over

    def image_tokens(self, side: int) -> int:
        """``<image>`` tokens of a ``side x side`` target."""
        got = self._tokens.get(side)
        if got is None:
            from sf2t.models.llava_onevision import num_image_tokens  # (LLaVA-NeXT-Video's is the same function)

            got = self._tokens[side] = num_image_tokens(self.inputs.processor, side, side)
        return got

    def smallest_side(self, size: tuple[int, int]) -> int:
        """The smallest target side in a video of frame ``size`` (h, w), rounded as ``LocalizationTask.build``."""
        return max(1, round(self.cfg.side_min * min(size)))

    def extent(self, size: tuple[int, int], frames: int, side: int) -> tuple[int, int]:
        """(tokens, positions) of the longest text around ``frames`` frames of ``size`` (h, w) and a ``side`` target."""
        vision = _vision_for(self.inputs, frames, tuple(size))
        key = tuple(vision["pixel_values_videos"].shape)
        base = self._base.get(key)
        if base is None:  # (an image of k tokens: k placeholders in the text, the rest unchanged)
            t, p = _largest(self.context, self.inputs, self.tokenizer, self.kind, frames, vision, {"image_tokens": 1})
            base = self._base[key] = (t - 1, p - 1)
        k = self.image_tokens(side)
        return base[0] + k, base[1] + k

    def smallest_over(self, size: tuple[int, int], num_frames: int) -> list[str]:
        """What the largest sample of a video of frame ``size`` (h, w) and ``num_frames`` frames exceeds with its
        smallest target ([] when it fits): then no target from it can fit."""
        key = (tuple(size), min(self.cfg.count_max, int(num_frames)))
        got = self._smallest.get(key)
        if got is None:
            got = self._smallest[key] = self.context.over(*self.extent(size, key[1], self.smallest_side(size)))
        return got

    def largest_side(self, size: tuple[int, int], frames: int) -> int:
        """The largest side s such that every target side from the smallest up to s fits a sample of ``frames``
        frames of ``size`` (one less than the smallest when none does)."""
        key = (tuple(size), int(frames))
        got = self._largest.get(key)
        if got is None:
            side, top = self.smallest_side(size), round(self.cfg.side_max * min(size))
            while side <= top and not self.context.over(*self.extent(size, frames, side)):
                side += 1
            got = self._largest[key] = side - 1
        return got

    def fraction(self, size: tuple[int, int], frames: int) -> float:
        """The largest side fraction a sample of ``frames`` frames of ``size`` may draw: ``side_max`` when every side
        fits, else just under the one whose rounded side passes :meth:`largest_side` (never below ``side_min``)."""
        side = self.largest_side(size, frames)
        if side >= round(self.cfg.side_max * min(size)):
            return self.cfg.side_max
        return max(self.cfg.side_min, min(self.cfg.side_max, (side + 0.49) / min(size)))

    def over_sample(self, sample, size: tuple[int, int]) -> list[str]:
        """What a made localization ``sample`` (its target image, presented frames of ``size``, question and answer)
        exceeds ([] when it fits): assembled in full only when the longest text with its target does not fit."""
        side, frames = int(sample.image.shape[0]), int(sample.num_presented)
        tokens, positions = self.extent(size, frames, side)
        if not self.context.over(tokens + _MARGIN, positions + _MARGIN):  # (a margin: the texts' own tokenization)
            return []
        vision = _vision_for(self.inputs, frames, tuple(size))
        text = self.inputs.text(self.tokenizer, sample.question, sample.answer, vision, self.image_tokens(side))
        return self.context.over(*self.context.extent(text))


def _large_target(context: Context, inputs, name: str, task, tokens: int, image_kw: dict, over: list[str]) -> str:
    """The warning of a LLaVA localization run whose sample fits with a small target image, not with the largest:
    from which target side on it overflows, which videos make such targets, and what helps (a smaller target, or
    fewer frame tokens leaving it more room)."""
    from sf2t.models.llava_onevision import num_image_tokens

    most = image_kw["image_tokens"]
    limit = min(v for v in (context.max_positions, context.max_tokens) if v is not None)  # (LLaVA: tokens = positions)
    budget = most - (tokens - limit)  # the most image tokens the largest sample leaves room for
    pins = getattr(inputs.processor.image_processor, "image_grid_pinpoints", None) or []
    top = max((int(v) for p in pins for v in p), default=1)
    side = next(s for s in range(1, top + 2) if num_image_tokens(inputs.processor, s, s) > budget)
    cfg = getattr(task, "cfg", None)
    lo, hi = getattr(cfg, "side_min", 0.25), getattr(cfg, "side_max", 1 / 3)
    count = f"{name}.count_max or " if hasattr(cfg, "count_max") else ""
    short = max(1, math.floor((side - 1) / hi))  # the shortest short side whose largest target reaches ``side``
    while round(hi * short) < side:  # (LocalizationTask.build: side = round(fraction * short side))
        short += 1
    return (
        f"{name}: a sample with a large target image does not fit the model's context ({'; '.join(over)} with the "
        f"most anyres tokens, {most}); a target of {side} px or more can take more than the {budget} image tokens "
        f"that fit. The target's side is {name}.side_min-side_max ({lo:.3g}-{hi:.3g}) of the video's short side, so "
        f"videos whose short side is {short} px or more can make one. The run goes on: such a video's samples draw "
        f"their target only among the sizes that fit (smaller than {name}.side_max asks), and a video none of whose "
        f"targets fits is left out of {name} when the videos are read (one warning, listed with the skipped videos; "
        f"the other tasks still use it). To keep the full range: a smaller target ({name}.side_max and side_min "
        "lower, videos with a shorter short side, or a processor whose image_grid_pinpoints are smaller), fewer frame "
        f"tokens to leave the image room ({count}token_keep_ratio), or leaving out localization"
    )


def check_run_fits(context: Context, tasks: Mapping, inputs, tokenizer, supervised_frames: int | None = None) -> int:
    """Refuse (ValueError) a run whose largest sample cannot fit ``context``: for each task of ``tasks`` (name ->
    task) its most presented frames (``max_presented``) at ``inputs``' frame size / repeat / layout /
    token_keep_ratio, plus localization's target image (Qwen: at the frame size; LLaVA: the most anyres tokens of any
    square image, :func:`llava_image_tokens`), with the chat scaffolding around the task's
    longest question paraphrase and answer (:func:`_texts`); ``supervised_frames`` for mixed-in supervised data
    (around an empty question: each record's text is measured by :func:`supervised_overflow`). Returns the largest
    estimate (positions)."""
    want = [(name, getattr(t, "name", name), _frames_of(t), _frame_settings(name, t)) for name, t in tasks.items()]
    if supervised_frames:
        want.append(("supervised_data", None, int(supervised_frames), "supervised_frames"))
    worst = 0
    for name, kind, frames, setting in want:
        vision = _vision_for(inputs, frames)
        image_kw, image_said = {}, ""
        if kind == "localization" and inputs.qwen:
            h, w = inputs.frame_size
            grid = torch.tensor([[1, h // 14, w // 14]])
            image_kw = dict(image_tokens=int(grid.prod()) // 4, image_grid=grid)
        elif kind == "localization":
            image_kw = dict(image_tokens=llava_image_tokens(inputs.processor))
            image_said = (
                f" and its target image's most anyres tokens ({image_kw['image_tokens']}, from the processor's "
                "image_grid_pinpoints)"
            )
        tokens, positions = _largest(context, inputs, tokenizer, kind, frames, vision, image_kw)
        worst = max(worst, positions)
        over = context.over(tokens, positions)
        if over and image_said:
            # the target's tokens follow its size (a fraction of the video's short side), not known before the
            # videos are read: refused here only if a small target cannot fit either; else said, and each video's
            # targets are kept to the sizes that fit (TargetBudget: videos none of whose targets fits are left out
            # of the task when the pool is read, the others draw their side among those that fit)
            small = dict(image_tokens=llava_image_tokens(inputs.processor, fewest=True))
            if not context.over(*_largest(context, inputs, tokenizer, kind, frames, vision, small)):
                warnings.warn(_large_target(context, inputs, name, tasks[name], tokens, image_kw, over), stacklevel=2)
                over = []
        if over:
            sizes = "frame_size, frame_repeat (or layout)" if inputs.qwen else "the processor's video size"
            keep = "" if inputs.qwen else ", or token_keep_ratio"
            said = f"with its longest question and answer{image_said}" if kind else "before any record's text"
            raise ValueError(
                f"{name}: its largest sample ({frames} frames) is longer than the model's context {said}: "
                f"{'; '.join(over)}. Past it the model runs at positions it was never trained on "
                f"(no error, silently worse answers); lower {setting + ', or ' if setting else ''}{sizes}{keep}"
            )
    return worst
