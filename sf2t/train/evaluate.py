"""Held-out exact accuracy per task: greedy generation of a few tokens, parsed and scored from ``meta``.

The evaluation set is built once (``build_eval_set``) so "before" and "after" see the very same samples.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import torch

from sf2t.tasks.scoring import partial_score, score

__all__ = ["answer_budget", "build_eval_set", "evaluate", "generate_answer"]

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


def build_eval_set(factory, tasks: Sequence[str], per_task: int) -> list[dict[str, Any]]:
    """``per_task`` prompt-only samples (generation prompt, no answer) per task from ``factory``."""
    out = []
    for t_i, name in enumerate(tasks):
        for i in range(per_task):
            out.append(factory.sample(t_i * 1_000_000 + i, task=name, with_answer=False))
    return out


@torch.no_grad()
def generate_answer(model, tokenizer, sample: dict, *, max_new_tokens: int = 4, device="cpu") -> str:
    """Greedy answer text for one prompt sample (batch of one: no padding to get wrong)."""
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
    )
    new = out[0, inputs["input_ids"].shape[1] :]
    return tokenizer.decode(new, skip_special_tokens=True)


def answer_budget(tokenizer, eval_set: Sequence[dict], margin: int = 2) -> int:
    """Tokens to generate so that the longest true answer of ``eval_set`` fits, plus ``margin`` (the end token and
    a little room to be wrong)."""
    # every distinct answer: the longest in characters need not be the longest in tokens ("1, 2, 3, 4, 5" is 13
    # tokens, "Frame number 08." 6), and ties in length came out of a set in a hash-seed-dependent order
    answers = {s["answer"] for s in eval_set}
    longest = max((len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers), default=1)
    return longest + margin


def evaluate(
    model,
    tokenizer,
    eval_set: list[dict],
    *,
    max_new_tokens: int = 0,
    device="cpu",
    chance: dict[str, float] | None = None,
    keep_answers: int = 3,
) -> dict[str, Any]:
    """Accuracy per task on ``eval_set``: ``{task: {n, accuracy, partial, chance, examples}}``, plus ``seconds`` and
    ``samples`` (one ``{task, source, answer, score}`` per sample, for breakdowns)."""
    if not max_new_tokens:  # enough for the longest answer of the set (one budget for all: no hint per sample)
        max_new_tokens = answer_budget(tokenizer, eval_set)
    was_training = model.training
    model.eval()
    t0 = time.perf_counter()
    per: dict[str, dict[str, Any]] = {}
    samples = []
    for s in eval_set:
        text = generate_answer(model, tokenizer, s, max_new_tokens=max_new_tokens, device=device)
        r = per.setdefault(s["task"], {"n": 0, "correct": 0.0, "partial": 0.0, "examples": []})
        r["n"] += 1
        exact = score(s["task"], text, s["meta"])
        samples.append({"task": s["task"], "source": s["meta"]["source"], "answer": text, "score": exact})
        r["correct"] += exact
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
            "chance": (chance or {}).get(task),
            "examples": r["examples"],
        }
    out["seconds"] = time.perf_counter() - t0
    out["samples"] = samples
    return out
