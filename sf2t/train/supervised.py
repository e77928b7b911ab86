"""Ordinary supervised video QA mixed into SF²T training (issue 7): LLaVA-style or ShareGPT / LLaMA-Factory-style JSON.

Accepted records (a JSON list, or JSON lines), the first question/answer pair of each is used:

- LLaVA: ``{"video": "a.mp4", "conversations": [{"from": "human", "value": "<video>\\nQ"},
  {"from": "gpt", "value": "A"}]}``
- ShareGPT / LLaMA-Factory: ``{"messages": [{"role": "user", "content": "<video>Q"}, {"role": "assistant",
  "content": "A"}], "videos": ["a.mp4"]}`` (``conversations`` with from/value also accepted here)

Video paths are relative to the file's folder unless absolute. ``<video>`` / ``<image>`` placeholders are removed
from the question (sf2t's text assembly places the video itself). A record that breaks these rules is named
(index and field) when the file is loaded, before training starts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SupervisedRecord", "load_supervised"]


@dataclass(frozen=True)
class SupervisedRecord:
    video: str
    question: str
    answer: str
    id: str


def _turns(rec: dict):
    if isinstance(rec.get("conversations"), list):
        return [(t.get("from"), t.get("value")) for t in rec["conversations"] if isinstance(t, dict)]
    if isinstance(rec.get("messages"), list):
        return [(t.get("role"), t.get("content")) for t in rec["messages"] if isinstance(t, dict)]
    return None


def load_supervised(path: str | os.PathLike) -> list[SupervisedRecord]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"supervised_data: {path} does not exist")
    text = path.read_text()
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
        if video is None and isinstance(rec.get("videos"), list) and rec["videos"]:
            video = rec["videos"][0]
        if not isinstance(video, str) or not video:
            raise ValueError(f"{where}: field 'video' (or 'videos') must name a video file")
        turns = _turns(rec)
        if not turns:
            raise ValueError(f"{where}: field 'conversations' or 'messages' is missing")
        q = next((v for r, v in turns if r in ("human", "user")), None)
        a = next((v for r, v in turns if r in ("gpt", "assistant")), None)
        if not isinstance(q, str) or not isinstance(a, str) or not a.strip():
            raise ValueError(f"{where}: needs a user/human turn and an assistant/gpt answer (text)")
        q = q.replace("<video>", "").replace("<image>", "").strip()
        vpath = video if os.path.isabs(video) else str(path.parent / video)
        out.append(SupervisedRecord(vpath, q, a.strip(), str(rec.get("id", i))))
    return out
