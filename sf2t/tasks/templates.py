"""Question paraphrases and canonical answers (docs/tasks.md: >= 3 paraphrases per question, one canonical
answer form per task so answers score by exact parsing), and the multiple-choice rendering."""

from __future__ import annotations

import random
import string

from sf2t.finevidbench.choice import ANSWER_LINE

__all__ = [
    "QUESTIONS",
    "question",
    "question_for",
    "counting_answer",
    "disorder_answer",
    "consistency_answer",
    "localization_answer",
    "rearrangement_answer",
    "speed_answer",
    "multiple_choice",
]

_CELL_LIST = "top-left, top, top-right, left, center, right, bottom-left, bottom or bottom-right"

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
    "consistency": (
        "Are these two frames identical? If not, say where they differ: " + _CELL_LIST + ", or the whole frame.",
        "Compare the two frames. Answer Identical, or Different: followed by the region that changed ("
        + _CELL_LIST
        + ", or whole frame).",
        "Is the second frame an exact copy of the first? If it is not, name the changed region ("
        + _CELL_LIST
        + ", or whole frame).",
        "Check the two frames for differences. Reply Identical, or name the part of the picture that differs ("
        + _CELL_LIST
        + ", or whole frame).",
    ),
    "localization": (
        "The image shows a target. In which frames of the video does it appear? Answer like: Frames 2-5.",
        "Find the frames of the video that contain the object in the image. Give the first and last frame, as in "
        "Frames 3-4.",
        "Between which frames is the pictured patch visible in the video? Reply in the form Frames a-b.",
        "The picture was pasted into some consecutive frames of the clip. Which ones? Answer as Frames a-b.",
    ),
    "rearrangement": (
        "These frames are shuffled. For the frames in their true chronological order, give their positions in the "
        "video, separated by commas (for example 2, 3, 1).",
        "Put the frames back in time order: list the position of the earliest frame, then the next, and so on, "
        "as comma-separated numbers.",
        "The clip's frames are out of order. Which position shows the first moment, which the second, and so on? "
        "Answer with the positions separated by commas.",
        "Restore the chronological order: write the frame positions from earliest to latest, separated by commas.",
    ),
    "speed": (
        "The video has two parts: frames 1-{n1} and frames {n1p}-{n}. Which part plays faster? Answer first, second "
        "or same.",
        "Frames 1 to {n1} form the first part and frames {n1p} to {n} the second. Does the first or the second part "
        "move faster, or is the speed the same?",
        "Two parts of one clip are shown (1-{n1}, then {n1p}-{n}). Which is played at the higher speed: first, "
        "second or same?",
    ),
}


def question(
    task: str, rng: random.Random, *, paraphrase: int | None = None, n1: int = 0, n2: int = 0
) -> tuple[str, int]:
    """A question for ``task``: a paraphrase drawn from ``rng`` (or the one numbered ``paraphrase``). ``n1``,
    ``n2``: the speed task's part lengths, written into its question (required for it: the question says where the
    parts are)."""
    options = QUESTIONS[task]
    k = rng.randrange(len(options)) if paraphrase is None else paraphrase % len(options)
    text = options[k]
    if task == "speed":
        if n1 < 1 or n2 < 1:
            raise ValueError(f"the speed question needs both parts' lengths n1, n2 >= 1, got {n1}, {n2}")
        text = text.format(n1=n1, n1p=n1 + 1, n=n1 + n2)
    return text, k


def question_for(meta: dict, rng: random.Random) -> tuple[str, int]:
    """:func:`question` for the sample ``meta`` describes (a paraphrase drawn from ``rng``; the speed task's part
    lengths from its params)."""
    task = meta["task"]
    n1, n2 = meta.get("params", {}).get("parts", (0, 0)) if task == "speed" else (0, 0)
    return question(task, rng, n1=n1, n2=n2)


def counting_answer(count: int) -> str:
    return f"{count}"


def disorder_answer(in_order: bool) -> str:
    return "Yes." if in_order else "No."


def consistency_answer(kind: str, cell: str | None) -> str:
    if kind == "identical":
        return "Identical."
    return "Different: whole frame." if kind == "whole" else f"Different: {cell}."


def localization_answer(a: int, b: int) -> str:
    return f"Frames {a}-{b}."


def rearrangement_answer(positions) -> str:
    return ", ".join(str(int(p)) for p in positions)


def speed_answer(faster: str) -> str:
    return faster


def _distinct(truth: str, pool: list[str], k: int, rng: random.Random) -> list[str]:
    pool = sorted({p for p in pool if p != truth})
    return rng.sample(pool, min(k, len(pool)))


def multiple_choice(
    task: str, meta: dict, rng: random.Random, *, num_options: int = 4, question_text: str | None = None
) -> tuple[str, str, list[str]]:
    """Render ``meta``'s question as multiple choice with exactly one correct option.

    Returns (question with lettered options and the line ``ANSWER_LINE``, correct letter, option texts): an answer
    is read with ``sf2t.finevidbench.choice.parse_choice``, as by ``sf2t eval``. Distractors: other counts in the
    task's range (counting); Yes / No (disorder); first / second / same (speed); Identical, whole frame and
    other cells (consistency); other spans of the same clip (localization); other non-identity orders (rearrangement).
    """
    from sf2t.tasks.scoring import truth_text

    truth = truth_text(meta)
    ans, params = meta["answer"], meta.get("params", {})
    if task == "counting":
        lo, hi = params.get("count_range", (2, 16))
        distract = _distinct(truth, [str(n) for n in range(lo, hi + 1)], num_options - 1, rng)
    elif task == "disorder":
        distract = [disorder_answer(not ans["in_order"])]
    elif task == "speed":
        distract = [x for x in ("first", "second", "same") if x != truth]
    elif task == "consistency":
        from sf2t.tasks.consistency import CELLS

        pool = [consistency_answer("cell", c) for c in CELLS]
        fixed = [x for x in ("Identical.", "Different: whole frame.") if x != truth]
        distract = fixed + _distinct(truth, pool, num_options - 1 - len(fixed), rng)
    elif task == "localization":
        f = int(params["num_frames"])
        pool = [localization_answer(a, b) for a in range(1, f + 1) for b in range(a, f + 1)]
        distract = _distinct(truth, pool, num_options - 1, rng)
    elif task == "rearrangement":
        import itertools

        n = len(ans["positions"])
        # the identity is never the answer (the frames are always shuffled): offered, it could be ruled out unseen
        # (with 2 frames it is the only other order, so it stays)
        ident = tuple(range(1, n + 1))
        perms = [p for p in itertools.permutations(ident) if p != ident or n < 3]
        pool = [rearrangement_answer(p) for p in rng.sample(perms, min(len(perms), 4 * num_options))]
        distract = _distinct(truth, pool, num_options - 1, rng)
    else:
        raise ValueError(f"unknown task {task!r}")
    options = distract + [truth]
    if task not in ("disorder", "speed"):
        rng.shuffle(options)
    else:  # a fixed, natural order for the small closed sets
        order = ["Yes.", "No."] if task == "disorder" else ["first", "second", "same"]
        options = [o for o in order if o in options]
    correct = options.index(truth)
    q = question_text or question_for({**meta, "task": task}, rng)[0]
    letters = string.ascii_uppercase
    lines = [q] + [f"{letters[i]}. {o}" for i, o in enumerate(options)] + [ANSWER_LINE]
    return "\n".join(lines), letters[correct], options
