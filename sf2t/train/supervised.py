"""Ordinary supervised video QA mixed into SF²T training (issue 7): LLaVA-style or ShareGPT / LLaMA-Factory-style JSON.

Accepted records (a JSON list, or JSON lines):

- LLaVA: ``{"video": "a.mp4", "conversations": [{"from": "human", "value": "<video>\\nQ"},
  {"from": "gpt", "value": "A"}]}``
- ShareGPT / LLaMA-Factory: ``{"messages": [{"role": "user", "content": "<video>Q"}, {"role": "assistant",
  "content": "A"}], "videos": ["a.mp4"]}`` (either list may use from/value or role/content keys)

One video per record (``video``, or a one-item ``videos``). The turns: an optional leading system turn, then user and
assistant turns taking turns, starting with the user; a trailing user turn without an answer is left out. Every
answer must be non-empty text. A multi-turn record trains every assistant turn (the first question shows the
video); its system turn replaces the family's default system text.

Video paths are relative to the file's folder unless absolute. ``<video>`` / ``<image>`` placeholders are removed
from the questions (sf2t's text assembly places the video itself). A record that breaks these rules is named
(index and field) when the file is loaded, before training starts. A video that is missing or does not decode is
found when a sample first draws it: it is recorded as skipped and another record is drawn in its place.

A record too long for the model's context with ``supervised_frames`` frames is left out when the run is set up
(:func:`leave_out_long`: one warning, each recorded as skipped, task ``supervised``, under
:attr:`SupervisedRecord.key`); a run none of whose records fits is refused. One the setup estimate let through and that
turns out too long when its sample is made is skipped the same way and another drawn.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from sf2t._plural import counted, none_of

__all__ = ["SupervisedRecord", "leave_out_long", "load_supervised"]

_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
_PLACEHOLDER = re.compile(r"[ \t]*<(?:video|image)>[ \t]*")


@dataclass(frozen=True)
class SupervisedRecord:
    video: str
    question: str
    answer: str
    id: str
    more: tuple[tuple[str, str], ...] = ()  # the later (question, answer) turns of a multi-turn record
    system: str | None = None  # the record's system text (None: the family's default)
    index: int | None = None  # its position in the file (None: a record made in code)

    @property
    def label(self) -> str:
        """``record N`` by its position in the file; a record made in code, by a digest of its texts (the same in
        every process, unlike ``hash``), so two records of one video never share a skip."""
        if self.index is not None:
            return f"record {self.index}"
        texts = repr((self.id, self.question, self.answer, self.more, self.system)).encode()
        return f"record {self.id!r} #{hashlib.sha1(texts).hexdigest()[:10]}"

    @property
    def key(self) -> str:
        """What a skip of this record alone (not of its video) is recorded under (``pool.skipped``'s path)."""
        return f"{self.video} ({self.label})"


def _turns(rec: dict):
    for key in ("conversations", "messages"):
        if isinstance(rec.get(key), list):
            return [
                (t.get("from", t.get("role")), t.get("value", t.get("content")))
                for t in rec[key]
                if isinstance(t, dict)
            ]
    return None


def _clean(question: str) -> str:
    """The question without its media placeholders ("Look at<video>this" -> "Look at this")."""
    return _PLACEHOLDER.sub(" ", question).strip()


def _pairs(turns, where: str) -> tuple[str | None, list[tuple[str, str]]]:
    """(system text or None, [(question, answer), ...]) of a record's turns; a ValueError naming what is wrong."""
    system = None
    roles = []
    for k, (role, _) in enumerate(turns):
        norm = _ROLES.get(role)
        if norm is None:
            raise ValueError(f"{where}: turn {k} has role {role!r}; expected one of {sorted(_ROLES)}")
        roles.append(norm)
    if roles and roles[0] == "system":
        system = turns[0][1]
        if not isinstance(system, str):
            raise ValueError(f"{where}: the system turn must be text")
        turns, roles = turns[1:], roles[1:]
    if roles and roles[-1] == "user":  # a question without its answer: nothing to train on
        turns, roles = turns[:-1], roles[:-1]
    pairs = []
    for k in range(0, len(turns), 2):
        if roles[k : k + 2] != ["user", "assistant"]:
            raise ValueError(
                f"{where}: needs a user/human turn and an assistant/gpt answer (text), taking turns from the "
                f"first user turn; got roles {[r for r, _ in turns]}"
            )
        (_, q), (_, a) = turns[k], turns[k + 1]
        if not isinstance(q, str) or not isinstance(a, str) or not a.strip():
            raise ValueError(
                f"{where}: needs a user/human turn and an assistant/gpt answer (text); question/answer pair "
                f"{k // 2} has an empty or non-text part"
            )
        pairs.append((_clean(q), a.strip()))
    if not pairs:
        raise ValueError(f"{where}: needs a user/human turn and an assistant/gpt answer (text)")
    return system, pairs


def load_supervised(path: str | os.PathLike) -> list[SupervisedRecord]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"supervised_data: {path} does not exist")
    from sf2t._files import read_text

    text = read_text(path, f"supervised_data: {path}", "a JSON or JSON-lines file of video QA")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as e:
            raise ValueError(f"supervised_data: {path} is neither JSON nor JSON lines: {e}") from e
    if not isinstance(data, list) or not data:
        raise ValueError(f"supervised_data: {path} must hold a non-empty list of records")
    out = []
    for i, rec in enumerate(data):
        where = f"supervised_data: {path} record {i}"
        if not isinstance(rec, dict):
            raise ValueError(f"{where}: must be an object")
        video = rec.get("video")
        videos = rec.get("videos")
        if video is None and isinstance(videos, list) and videos:
            if len(videos) > 1:
                raise ValueError(
                    f"{where}: shows {len(videos)} videos; sf2t trains on one video per record (split the record)"
                )
            video = videos[0]
        if video is None and (rec.get("image") or rec.get("images")):
            raise ValueError(f"{where}: shows images, not a video; supervised_data takes video QA (leave it out)")
        if not isinstance(video, str) or not video:
            raise ValueError(f"{where}: field 'video' (or 'videos') must name a video file")
        if rec.get("image") or rec.get("images"):
            raise ValueError(f"{where}: has images as well as a video; sf2t trains on one video per record")
        turns = _turns(rec)
        if not turns:
            raise ValueError(f"{where}: field 'conversations' or 'messages' is missing")
        system, pairs = _pairs(turns, where)
        shown = sum(str(v).count("<video>") for _, v in turns if isinstance(v, str))
        if shown > 1:
            raise ValueError(f"{where}: its turns hold {shown} <video> placeholders for one video")
        vpath = video if os.path.isabs(video) else str(path.parent / video)
        (q, a), more = pairs[0], tuple(pairs[1:])
        out.append(SupervisedRecord(vpath, q, a, str(rec.get("id", i)), more, system, i))
    return out


def leave_out_long(records: list[SupervisedRecord], context, inputs, tokenizer, frames: int, pool):
    """``records`` less those whose sample with ``frames`` presented frames cannot fit ``context``
    (:func:`sf2t.models.context.supervised_overflow`): each recorded in ``pool.skipped`` (kind ``too_long``, task
    ``supervised``), all said in one warning. A ValueError when none fits: the run could not mix in supervised
    data."""
    from sf2t.models.context import supervised_overflow
    from sf2t.train.data import SUPERVISED, Skip

    over = supervised_overflow(context, inputs, tokenizer, records, frames)
    if not over:
        return records
    named = "; ".join(f"{records[k].label} (id {records[k].id!r}, {records[k].video}): {', '.join(o)}"
                      for k, o in over[:3])  # fmt: skip
    more = f"; and {len(over) - 3} more (listed with the skipped videos)" if len(over) > 3 else ""
    smaller = "frame_size or frame_repeat" if inputs.qwen else "token_keep_ratio (or the processor's video size)"
    fix = f"shorten those records' text, or lower supervised_frames ({frames}) or {smaller} to leave the text more room"
    if len(over) == len(records):
        none = none_of(len(records), "record", "fits", "does not fit", owner="its")  # "its only record does not fit"
        raise ValueError(
            f"supervised_data: {none} the model's context with {frames} frames (e.g. {named}{more}), so "
            f"{'it could not' if len(records) == 1 else 'none could'} be mixed in; {fix}"
        )
    for k, o in over:  # (appended: pool.drop's look for an earlier skip of the same path would be quadratic here)
        rec = records[k]
        why = (
            f"supervised_data record id {rec.id!r}: too long for the model's context ({frames} frames): {'; '.join(o)}"
        )
        pool.skipped.append(Skip(rec.key, "too_long", why, SUPERVISED))
    text = (
        f"supervised_data: left out {len(over)} of {counted(len(records), 'record')} longer than the model's context "
        f"with {frames} frames ({named}{more}); mixing in the other {len(records) - len(over)}. To keep them, {fix}"
    )
    warnings.warn(text, stacklevel=2)
    gone = {k for k, _ in over}
    return [r for k, r in enumerate(records) if k not in gone]
