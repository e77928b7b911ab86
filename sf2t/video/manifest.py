"""An ``sf2t index`` manifest read back: JSON lines, each line checked (an ok line must carry what ``sf2t index``
writes), whether a line still matches its file (size and mtime), where a relative path points from here, and whether
an existing file may be a manifest. Importable from ``sf2t.video.index`` too.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Iterable

from sf2t.video.probe import VideoInfo

__all__ = ["iter_jsonl", "read_manifest", "usable"]


def iter_jsonl(path: str | os.PathLike):
    """(line number, value) of each non-blank line of a JSON-lines file; a line that is not JSON is an error
    naming it, and so is a missing file, a folder or a file that is not text."""
    from sf2t._files import read_text

    text = read_text(path, str(path), "a JSON-lines file")
    first = True
    for i, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            yield i, json.loads(line)
        except json.JSONDecodeError as e:
            if first and _one_json_document(text):  # a benchmark or a config given for a manifest: say so
                raise ValueError(
                    f"{path}: one JSON document over several lines (a benchmark? a config?), not a JSON-lines file "
                    "(one JSON value on each line)"
                ) from None
            raise ValueError(f"{path}:{i}: not a JSON line ({e.msg})") from e
        first = False


def _one_json_document(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# what an ok line must carry for the readers, and how each is checked
_OK_FIELDS = {
    "num_frames": ("a positive integer (below 2**40)", lambda v: _is_int(v) and 1 <= v < 2**40),
    "width": ("a positive integer", lambda v: _is_int(v) and v >= 1),
    "height": ("a positive integer", lambda v: _is_int(v) and v >= 1),
    "fps": ("a positive number", lambda v: _is_number(v) and v > 0),
    "duration": ("a non-negative number", lambda v: _is_number(v) and v >= 0),
    "codec": ("a string", lambda v: isinstance(v, str)),
}
# fields an ok line may leave out (VideoInfo's defaults), checked when present
_OPTIONAL_FIELDS = {
    "container": ("a string", lambda v: isinstance(v, str)),
    "pix_fmt": ("a string", lambda v: isinstance(v, str)),
    "bit_depth": ("a positive integer", lambda v: _is_int(v) and v >= 1),
    "rotation": ("0, 90, 180 or 270", lambda v: _is_int(v) and v in (0, 90, 180, 270)),
    "vfr": ("true or false", lambda v: isinstance(v, bool)),
    "keyframe_interval": ("a positive number or null", lambda v: v is None or (_is_number(v) and v > 0)),
    "start": ("a number", lambda v: _is_number(v)),
    "size": ("a non-negative integer", lambda v: _is_int(v) and v >= 0),
    "mtime_ns": ("an integer", lambda v: _is_int(v)),
    "corrupt_frames": (
        "a list of frame indices",
        lambda v: isinstance(v, list) and all(_is_int(x) and x >= 0 for x in v),
    ),
    "verified": ("true or false", lambda v: isinstance(v, bool)),
}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """Entries of a manifest; a malformed line is an error naming the line (and, for an ok line, the fields it lacks
    or has wrong: a hand-written or foreign line must carry what ``sf2t index`` writes)."""
    out = []
    for i, d in iter_jsonl(path):
        if not isinstance(d, dict) or "path" not in d or "status" not in d:
            raise ValueError(f"{path}:{i}: a manifest line needs 'path' and 'status'")
        if not isinstance(d["path"], str) or not d["path"]:
            raise ValueError(f"{path}:{i}: 'path' must be a non-empty string, got {d['path']!r}")
        if d["status"] == "ok":
            missing = [k for k in _OK_FIELDS if k not in d]
            checks = {**_OK_FIELDS, **_OPTIONAL_FIELDS}.items()
            wrong = [f"{k} must be {what}, got {d[k]!r}" for k, (what, ok) in checks if k in d and not ok(d[k])]
            if missing or wrong:
                said = ([f"missing {', '.join(missing)}"] if missing else []) + wrong
                raise ValueError(
                    f"{path}:{i}: {d['path']}: an ok line {'; '.join(said)} (sf2t index VIDEOS --out MANIFEST writes "
                    "complete lines)"
                )
        out.append(d)
    return out


def usable(entries: Iterable[dict]) -> list[VideoInfo]:
    """``VideoInfo`` of every ok entry."""
    return [VideoInfo.from_dict(e) for e in entries if e.get("status") == "ok"]


def _unchanged(e: dict) -> bool:
    try:
        st = os.stat(e["path"])
    except OSError:
        return e.get("error_kind") == "missing"
    return e.get("size") == st.st_size and e.get("mtime_ns") == st.st_mtime_ns


def _manifest_path(e: dict, manifest: Path) -> str:
    """Where a manifest line's file is from here. ``sf2t index`` records paths as given on its command line, so a
    relative one may start from the working folder or from the manifest's: the one whose size and time match the
    line wins (another file of the same name elsewhere is not taken for it); else the first that exists, the working
    folder's first; else the manifest folder's (named missing by whoever reads it)."""
    v = Path(e["path"])
    if v.is_absolute():
        return e["path"]
    found = [str(c) for c in (v, manifest.parent / v) if c.exists()]
    same = [c for c in found if _unchanged({**e, "path": c})]
    return (same or found or [str(manifest.parent / v)])[0]


def _looks_like_jsonl(path: Path) -> bool:
    """Whether an existing file may be a manifest: empty (or blank), or UTF-8 text whose first non-blank line is a
    JSON object with a ``path``, as every manifest line is: what index may overwrite. A pretty-printed JSON file (a
    benchmark, a clip's ground truth, a config) opens with a lone ``{`` and was overwritten."""
    try:
        with open(path, "rb") as fh:
            for raw in iter(lambda: fh.readline(1 << 20), b""):
                line = raw.decode("utf-8", errors="strict").strip()
                if line:
                    first = json.loads(line)
                    return isinstance(first, dict) and "path" in first
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return True
