"""Held-out exact accuracy per task: greedy generation of a few tokens, parsed and scored from ``meta``.

The evaluation set is built once (``build_eval_set``) so "before" and "after" see the very same samples. It keeps
each sample's index, task, answer and meta, not its pixels: a sample is made again from its index as it is evaluated
(``SampleFactory.sample`` is a pure function of the index and the pool), so a run does not hold the whole set's packed
float pixels (several GB for a real model) between evaluations. The frames of a long video (one the clip cache does
not keep whole, decoded per request) are kept as decoded, uint8, within the clip cache's budget (``clip_cache_mb``)
besides it: a remake then decodes nothing of them. It also keeps each prompt's extent (tokens, rotary positions): a
prompt plus the tokens an evaluation generates must fit the model's context, which is checked when the set is built
(``max_new_tokens``) and again, without making a sample, when ``evaluate`` is called with its budget.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Iterator, Sequence

import torch

from sf2t.tasks.scoring import in_form, partial_score, score

__all__ = ["EvalSet", "answer_budget", "build_eval_set", "evaluate", "generate_answer"]

_KEYS = (
    "input_ids",
    "attention_mask",
    "mm_token_type_ids",
    "pixel_values_videos",
    "video_grid_thw",
    "pixel_values",
    "image_grid_thw",
    "image_sizes",
)


def _pool_key(pool) -> tuple:
    """What of ``pool`` a draw depends on, cheaply: its usable list (a drop out of every task makes a new one) and
    how many videos each task leaves out (a drop out of one task adds one)."""
    return id(pool.infos), len(pool.infos), tuple(sorted((t, len(p)) for t, p in pool.excluded.items()))


class EvalSet(Sequence):
    """The held-out samples of :func:`build_eval_set`, made again from their indices as they are read.

    Kept per sample: ``(index, task)``, a small record (``task``, ``answer``, ``meta``) and the pool state it was
    drawn from; not its pixels (a real model's packed float pixels for the whole set are several GB). Each read calls
    ``factory.sample(index, task=task, with_answer=False)`` again: a decode of its frames (a cache hit for a clip the
    factory's frame store holds, or for frames kept in ``frames``), the task's build and the packing, all pure
    functions of the index and the pool; the result is checked against the kept record. ``frames`` (per sample, or
    None): the uint8 frames decoded for it from a clip not cached whole (:meth:`FrameStore.holding`), None where not
    kept. A sample drawn before a video left the pool (one that did not decode, or was too static for a task, met
    while the set was built) is made from a copy of the pool as it was then. Iterating yields one sample at a time,
    so an evaluation holds one packed sample, not the set."""

    def __init__(
        self,
        factory,
        keys: list[tuple[int, str]],
        records: list[dict],
        states: list[tuple],
        which: list[int],
        extents: list[tuple[int, int]] | None = None,
        frames: list[dict | None] | None = None,
    ):
        self.factory = factory
        self.keys = keys
        self.records = records  # {task, answer, meta} per sample: what scoring and answer_budget read
        self.states = states  # the pool states the samples were drawn from: (key, infos, excluded), few
        self.which = which  # per sample, its position in states
        self.extents = extents  # per sample, its prompt's (tokens, positions) (None: not known, not checked)
        self.frames = frames  # per sample, its frames decoded from a long clip, kept (None: not kept; decoded again)

    def check(self, max_new_tokens: int = 0) -> None:
        """Refuse (ValueError, naming the sample and the settings to lower) a set one of whose prompts, plus the
        ``max_new_tokens`` tokens generation adds (0: :func:`answer_budget`), does not fit the factory's model
        context (``factory.inputs.context``; none: nothing to check)."""
        inputs = getattr(self.factory, "inputs", None)
        context = getattr(inputs, "context", None)
        if context is None or self.extents is None:
            return
        from sf2t.train.data import _lower

        budget = max_new_tokens or answer_budget(self.factory.tokenizer, self)
        said = f"max_new_tokens ({budget}{'' if max_new_tokens else ': auto, the longest answer + 2'})"
        for (index, task), (tokens, positions) in zip(self.keys, self.extents):
            where = f"held-out sample {index} ({task})"
            lower = f"{said}, or {_lower(inputs, task, self.factory.tasks.get(task))}"
            context.check_extent(tokens, positions, where, lower, budget)

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(len(self)))]
        from sf2t.train.data import position

        k = position(k, len(self))
        index, task = self.keys[k]
        f = self.factory
        key, infos, excluded = self.states[self.which[k]]
        kept = self.frames[k] if self.frames else None
        with f.store.holding(kept) if kept else contextlib.nullcontext():
            if key == _pool_key(f.pool):
                s = f.sample(index, task=task, with_answer=False)
            else:  # drawn from the pool before a drop: from a copy of that pool (a drop made again changes the copy)
                from sf2t.train.data import VideoPool

                live = f.pool
                f.pool = VideoPool(list(infos), list(live.skipped), {t: set(p) for t, p in excluded.items()})
                try:
                    s = f.sample(index, task=task, with_answer=False)
                finally:
                    f.pool = live
        rec = self.records[k]
        if (s["task"], s["answer"], s["meta"]) != (rec["task"], rec["answer"], rec["meta"]):
            raise RuntimeError(
                f"held-out sample {index} ({task}) came out differently when made again: were the evaluation "
                "factory's videos or settings changed since build_eval_set?"
            )
        return s

    def __iter__(self) -> Iterator[dict]:
        for k in range(len(self)):
            yield self[k]


def build_eval_set(factory, tasks: Sequence[str], per_task: int, max_new_tokens: int = 0) -> EvalSet:
    """``per_task`` prompt-only samples (generation prompt, no answer) per task from ``factory``, as an
    :class:`EvalSet`: each sample is made once here (its videos checked, its record and extent kept) and again when
    read. Each prompt plus ``max_new_tokens`` (the evaluations' budget; 0: :func:`answer_budget` of the set) must fit
    the model's context (:meth:`EvalSet.check`): a ValueError before any training otherwise. The frames decoded per
    request (clips the clip cache does not keep whole: long videos) are kept per sample while their total fits the
    store's budget (``clip_cache_mb``; 0: none): a remake decodes none of them again (three 60-120 s 640x360 H.264
    clips, 16 samples of counting and disorder, CPU: decoding took ~90 % of a remake, 0.8 of 0.9 s, ~0.05 s with the
    frames kept, 86 MB of them; 128 samples: 6.4 MB a sample, 40 kept in the default 256 MB)."""
    keys = [(t_i * 1_000_000 + i, name) for t_i, name in enumerate(tasks) for i in range(per_task)]
    context = getattr(getattr(factory, "inputs", None), "context", None)
    extents: list[tuple[int, int]] | None = None if context is None else []
    records: list[dict] = []
    states: list[tuple] = []
    which: list[int] = []
    store = getattr(factory, "store", None)
    room = getattr(store, "budget", 0)  # bytes left for kept frames
    frames: list[dict | None] = []
    for index, name in keys:
        key = _pool_key(factory.pool)
        if not states or states[-1][0] != key:  # (the infos list is kept: a drop replaces it, never edits it)
            states.append((key, factory.pool.infos, {t: frozenset(p) for t, p in factory.pool.excluded.items()}))
        which.append(len(states) - 1)
        got: dict = {}
        # cap=room: a sample's frames are copied to the CPU only while they fit what is left (a sample whose frames
        # do not all fit is kept without them, as before, but no longer copied first and then dropped)
        with store.holding(got, fill=True, cap=room) if room > 0 else contextlib.nullcontext():
            s = factory.sample(index, task=name, with_answer=False)
        size = sum(t.numel() * t.element_size() for t in got.values())
        frames.append(got if got and size <= room else None)
        room -= size if frames[-1] is not None else 0
        records.append({"task": s["task"], "answer": s["answer"], "meta": s["meta"]})
        if extents is not None:
            extents.append(context.extent(s))
    eval_set = EvalSet(factory, keys, records, states, which, extents, frames)
    eval_set.check(max_new_tokens)
    return eval_set


def stop_ids(model, tokenizer) -> list[int]:
    """The ids that end ``model``'s answer (:func:`sf2t.models.families.stop_token_ids`): its family's supervised
    answer end (``<|im_end|>``, LLaVA-NeXT-Video's ``</s>``), its ``generation_config`` eos ids, the tokenizer's
    eos. A model of no sf2t family (no ``config.model_type`` sf2t knows): the last two."""
    from sf2t.models.families import FAMILIES, stop_token_ids

    family = FAMILIES.get(getattr(getattr(model, "config", None), "model_type", None))
    return stop_token_ids(family, tokenizer, getattr(model, "generation_config", None))


@torch.no_grad()
def generate_answer(model, tokenizer, sample: dict, *, max_new_tokens: int = 4, device="cpu") -> str:
    """Greedy answer text for one prompt sample (batch of one: no padding to get wrong). Generation stops at the
    first of :func:`stop_ids` (the answer end sf2t trains, the checkpoint's eos), and the text is cut there."""
    stops = stop_ids(model, tokenizer)
    inputs = {k: sample[k].to(device) for k in _KEYS if k in sample}
    for k in ("input_ids", "attention_mask", "mm_token_type_ids"):
        if k in inputs:
            inputs[k] = inputs[k].unsqueeze(0)
    if inputs["pixel_values_videos"].dim() == 4:  # LLaVA: one video [F, 3, H, W] -> a batch of one
        inputs["pixel_values_videos"] = inputs["pixel_values_videos"].unsqueeze(0)
    out = model.generate(
        **inputs,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=stops or None,
    )
    new = out[0, inputs["input_ids"].shape[1] :]
    ends = torch.isin(new, torch.tensor(stops, dtype=new.dtype, device=new.device)).nonzero()
    if len(ends):  # the answer ends before its stop id (and whatever a model's generate appended after it)
        new = new[: int(ends[0, 0])]
    return tokenizer.decode(new, skip_special_tokens=True)


def answer_budget(tokenizer, eval_set: Sequence[dict], margin: int = 2) -> int:
    """Tokens to generate so that the longest true answer of ``eval_set`` fits, plus ``margin``: the one end token
    every family's training supervises after an answer (``<|im_end|>``; LLaVA-NeXT-Video's ``</s>``), at which
    generation stops, and a little room to be wrong."""
    # every distinct answer: the longest in characters need not be the longest in tokens ("1, 2, 3, 4, 5" is 13
    # tokens, "Frame number 08." 6), and ties in length came out of a set in a hash-seed-dependent order
    answers = {s["answer"] for s in getattr(eval_set, "records", eval_set)}  # (an EvalSet: without making samples)
    longest = max((len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers), default=1)
    return longest + margin


def evaluate(
    model,
    tokenizer,
    eval_set: Sequence[dict],
    *,
    max_new_tokens: int = 0,
    device="cpu",
    chance: dict[str, float] | None = None,
    keep_answers: int = 3,
) -> dict[str, Any]:
    """Accuracy per task on ``eval_set``: ``{task: {n, accuracy, partial, in_form, strict_accuracy, chance,
    examples}}``, plus ``seconds`` and ``samples`` (one ``{task, source, answer, score, in_form}`` per sample, for
    breakdowns). ``in_form``: the share of answers written exactly in the task's canonical form
    (:func:`sf2t.tasks.scoring.in_form`); ``strict_accuracy``: the share both right and in form (``accuracy`` reads
    answers leniently)."""
    if not max_new_tokens:  # enough for the longest answer of the set (one budget for all: no hint per sample)
        max_new_tokens = answer_budget(tokenizer, eval_set)
    if isinstance(eval_set, EvalSet):  # every prompt plus this budget fits, before anything is generated
        eval_set.check(max_new_tokens)
        inputs = getattr(eval_set.factory, "inputs", None)
        if inputs is not None:  # the model compresses video tokens as the prompts' text expects (apply_sf2t)
            inputs.check_model(model)
    was_training = model.training
    model.eval()
    t0 = time.perf_counter()
    per: dict[str, dict[str, Any]] = {}
    samples = []
    for s in eval_set:
        text = generate_answer(model, tokenizer, s, max_new_tokens=max_new_tokens, device=device)
        r = per.setdefault(
            s["task"], {"n": 0, "correct": 0.0, "partial": 0.0, "in_form": 0, "strict": 0.0, "examples": []}
        )
        r["n"] += 1
        exact = score(s["task"], text, s["meta"])
        form = in_form(s["task"], text, s["meta"])
        samples.append(
            {"task": s["task"], "source": s["meta"]["source"], "answer": text, "score": exact, "in_form": form}
        )
        r["correct"] += exact
        r["in_form"] += form
        r["strict"] += exact * form
        r["partial"] += partial_score(s["task"], text, s["meta"])
        if len(r["examples"]) < keep_answers:
            r["examples"].append({"answer": text, "truth": s["answer"]})
    if was_training:
        model.train()
    out: dict[str, Any] = {}
    for task, r in per.items():
        out[task] = {
            "n": r["n"],
            "accuracy": r["correct"] / r["n"],
            "partial": r["partial"] / r["n"],
            "in_form": r["in_form"] / r["n"],
            "strict_accuracy": r["strict"] / r["n"],
            "chance": (chance or {}).get(task),
            "examples": r["examples"],
        }
    out["seconds"] = time.perf_counter() - t0
    out["samples"] = samples
    return out
