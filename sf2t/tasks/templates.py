"""Question paraphrases and canonical answers (TASKS.md: >= 3 paraphrases per question, one canonical
answer form per task so answers score by exact parsing), and the multiple-choice rendering."""

from __future__ import annotations

import random
import string

__all__ = ["QUESTIONS", "question", "counting_answer", "disorder_answer", "multiple_choice"]

QUESTIONS: dict[str, tuple[str, ...]] = {
    "counting": (
        "How many frames are shown in this video? Answer with a number.",
        "Count the frames of this clip. How many are there?",
        "How many frames does this video fragment contain? Reply with one number.",
        "What is the number of frames in this video?",
    ),
    "disorder": (
        "Are the frames of this video in their original order? Answer Yes or No.",
        "Is this clip shown in chronological order? Answer Yes or No.",
        "Do these frames play in the correct temporal order? Yes or No?",
        "Is the order of the frames in this video unchanged? Answer Yes or No.",
    ),
}


def question(task: str, rng: random.Random, *, paraphrase: int | None = None) -> tuple[str, int]:
    """A question for ``task``: a paraphrase drawn from ``rng`` (or the one numbered ``paraphrase``)."""
    options = QUESTIONS[task]
    k = rng.randrange(len(options)) if paraphrase is None else paraphrase % len(options)
    return options[k], k


def counting_answer(count: int) -> str:
    return f"{count}"


def disorder_answer(in_order: bool) -> str:
    return "Yes." if in_order else "No."


def multiple_choice(
    task: str, meta: dict, rng: random.Random, *, num_options: int = 4, question_text: str | None = None
) -> tuple[str, str, list[str]]:
    """Render ``meta``'s question as multiple choice with one correct option.

    Returns (question with lettered options, correct letter, option texts). Counting draws distractors from
    the task's range of counts; disorder has the two options Yes / No.
    """
    if task == "counting":
        truth = int(meta["answer"]["count"])
        lo, hi = meta["params"].get("count_range", (2, 16))
        pool = [n for n in range(lo, hi + 1) if n != truth]
        options = [str(n) for n in rng.sample(pool, min(num_options - 1, len(pool)))] + [str(truth)]
        rng.shuffle(options)
        correct = options.index(str(truth))
    elif task == "disorder":
        options = ["Yes", "No"]
        correct = 0 if meta["answer"]["in_order"] else 1
    else:
        raise ValueError(f"unknown task {task!r}")
    q = question_text or question(task, rng)[0]
    letters = string.ascii_uppercase
    lines = [q] + [f"{letters[i]}. {o}" for i, o in enumerate(options)] + ["Answer with the option's letter."]
    return "\n".join(lines), letters[correct], options
