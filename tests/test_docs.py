"""The user docs name only commands, options, choices and config fields that exist.

README.md, bench/README.md, sf2t/train/NOTES.md and docs/tasks.md are read as a user reads them: every ``sf2t
COMMAND ...`` in a code span, a fenced block or README's "What is in the box" list, every ``python -m bench.NAME ...``
/ ``python bench/NAME.py ...``, and every ``TrainConfig`` field named (``TrainConfig.f``, ``TrainConfig(f=...)``,
``sf2t train f=...``, ``sf2t demo --set f=...``). Each option is looked up in the argparse parser that command
really parses with (captured in-process, nothing runs), each literal choice (``--frames png|jpg``) in the option's
choices, each field in ``TrainConfig`` (dotted names reach the task configs). A flag in a span that names no command
must exist in some sf2t or bench parser, unless it is another tool's (pytest, pip, torchrun, ...).

docs/tasks.md, the task and benchmark definitions, is checked against the code too: each task config's fields with
their defaults and help, the question paraphrases, the answer forms, the multiple-choice prompts and the scene-level
questions, options and variants (``_task_doc_problems``).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import re
from pathlib import Path
from unittest import mock

import pytest

from sf2t import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "bench/README.md", "sf2t/train/NOTES.md", "docs/tasks.md")
COMMANDS = (
    ("info",),
    ("index",),
    ("tasks", "export"),
    ("tasks", "preview"),
    ("demo",),
    ("train",),
    ("merge",),
    ("finevidbench", "build"),
    ("finevidbench", "export"),
    ("eval",),
    ("throughput",),
)
# other tools' flags that the docs show beside sf2t's (in spans that name no sf2t command)
FOREIGN_FLAGS = {
    "--benchmark-disable",  # pytest-benchmark
    "--benchmark-group-by",
    "--benchmark-columns",
    "--no-build-isolation",  # pip
    "--nproc_per_node",  # torchrun
    "--tool",  # compute-sanitizer
    "--local-dir",  # hf download
}
FOREIGN_TOOLS = ("pytest", "pip", "compute-sanitizer", "nvcc", "cuobjdump", "huggingface-cli", "hf", "ncu", "nsys")
PLACEHOLDER_FLAGS = {"--key"}  # `sf2t train ... key=value / --key value`: any TrainConfig field
PLACEHOLDER_FIELDS = {"key"}


class _Captured(Exception):
    def __init__(self, parser):
        self.parser = parser


def _capture(run) -> argparse.ArgumentParser:
    """The parser ``run()`` parses its arguments with (it stops there: nothing is read or written)."""

    def parse_known_args(self, *a, **k):
        raise _Captured(self)

    with mock.patch.object(argparse.ArgumentParser, "parse_known_args", parse_known_args):
        try:
            run()
        except _Captured as c:
            return c.parser
    raise AssertionError(f"{run} parsed no arguments")


def _subparser(parser: argparse.ArgumentParser, word: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and word in action.choices:
            return action.choices[word]
    raise KeyError(word)


@pytest.fixture(scope="module")
def parsers() -> dict[str, argparse.ArgumentParser]:
    out = {}
    for words in COMMANDS:
        parser = _capture(lambda w=words: cli.main(list(w)))
        for word in words[len(parser.prog.split()) - 1 :]:  # `sf2t tasks export`: the top parser's subcommand
            parser = _subparser(parser, word)
        out[" ".join(words)] = parser
    return out


@functools.cache
def _bench_parser(name: str) -> argparse.ArgumentParser:
    mod = importlib.import_module(f"bench.{name}")
    return _capture(lambda: mod.main([]))


def _train_fields() -> set[str]:
    from sf2t.train.config import TrainConfig

    def walk(cls, prefix):
        for f in dataclasses.fields(cls):
            yield prefix + f.name
            value = getattr(cls(), f.name)
            if dataclasses.is_dataclass(value):
                yield from walk(type(value), f"{prefix}{f.name}.")

    return set(walk(TrainConfig, ""))


def _doc_texts() -> dict[str, str]:
    return {name: (ROOT / name).read_text() for name in DOCS}


def _snippets(text: str) -> list[tuple[str, bool]]:
    """Command-like snippets, each with whether words after a flag are its value: fenced block lines (``\\``
    continuations joined; Python blocks left out), README's command list entries (a line starting ``sf2t COMMAND``
    and its indented continuation lines, in prose: no values) and inline code spans."""
    out = []
    for lang, block in re.findall(r"^```([a-z]*)\n(.*?)^```", text, flags=re.S | re.M):
        if lang == "python":
            continue
        entries: list[list[str]] = []
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("sf2t ") or not line.startswith(" ") or not entries:
                entries.append([line])
            else:
                entries[-1].append(line.strip())
        out += [(" ".join(entry), lang != "") for entry in entries]
    prose = re.sub(r"^```[a-z]*\n.*?^```", "", text, flags=re.S | re.M)
    out += [(m.replace("\n", " "), True) for m in re.findall(r"`([^`]+)`", prose)]
    return out


def _command(tokens: list[str], i: int) -> str | None:
    """The command ``tokens[i:]`` starts, if any: ``sf2t WORDS``, ``bench:NAME``."""
    if tokens[i] == "sf2t" or tokens[i : i + 2] == ["-m", "sf2t"]:
        j = i + (1 if tokens[i] == "sf2t" else 2)
        for words in sorted(COMMANDS, key=len, reverse=True):
            if tuple(tokens[j : j + len(words)]) == words:
                return " ".join(words)
    if tokens[i] == "-m" and i + 1 < len(tokens) and tokens[i + 1].startswith("bench."):
        return "bench:" + tokens[i + 1].removeprefix("bench.")
    m = re.fullmatch(r"bench/((?:bench|gpu)_\w+)\.py", tokens[i])
    if m and i > 0 and tokens[i - 1] == "python":
        return "bench:" + m.group(1)
    return None


def _uses(text: str):
    """(command or None, flag, value or None, snippet) for every ``--flag`` / ``-o`` shown, and (command,
    ``=field``, None, snippet) for ``field=value`` words given to ``sf2t train`` / ``sf2t demo --set``."""
    for snippet, values in _snippets(text):
        tokens = [t.strip("[](),;:") for t in snippet.split()]
        tokens = [t for t in tokens if t]
        command = None
        foreign = tokens and tokens[0].split("=")[-1] in FOREIGN_TOOLS
        for i, tok in enumerate(tokens):
            found = _command(tokens, i)
            if found:
                command, foreign = found, False
            elif tok in FOREIGN_TOOLS or (tok == "torchrun" and "sf2t" not in tokens):
                command, foreign = None, True
            if foreign:
                continue
            if re.fullmatch(r"--[a-z][a-z0-9_-]*(=.*)?|-o", tok):
                flag, _, value = tok.partition("=")
                if values and not value and i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
                    value = tokens[i + 1]
                yield command, flag, value or None, snippet
                if command == "demo" and flag == "--set" and "=" in (value or ""):
                    yield "train", "=" + value.split("=")[0], None, snippet
            elif command == "train" and re.fullmatch(r"[a-z_][a-z0-9_.]*=.*", tok):
                yield "train", "=" + tok.split("=")[0], None, snippet
    for field in re.findall(r"TrainConfig(?:\.|\([^)]*?)([a-z_][a-z0-9_]*)\b(?!\()", text):
        yield "train", "=" + field, None, "TrainConfig." + field


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return parser._option_string_actions.get(flag)


def _check(texts: dict[str, str], parsers: dict[str, argparse.ArgumentParser]) -> list[str]:
    """Every mismatch between ``texts`` (doc name -> text) and the code, one line each."""
    fields = _train_fields()
    problems = []
    for doc, text in texts.items():
        for command, flag, value, snippet in _uses(text):
            where = f"{doc}: `{snippet[:100]}`"
            if command and command.startswith("bench:"):
                name = command.removeprefix("bench:")
                if not (ROOT / "bench" / f"{name}.py").is_file():
                    problems.append(f"{where}: no bench/{name}.py")
                    continue
                known = [_bench_parser(name)]
            elif command:
                known = [parsers[command]]
            else:
                known = list(parsers.values()) + [_bench_parser(n) for n in _bench_names()]
            if flag.startswith("="):
                if flag[1:] not in fields | PLACEHOLDER_FIELDS:
                    problems.append(f"{where}: TrainConfig has no field {flag[1:]!r}")
                continue
            if command == "train":
                if flag in PLACEHOLDER_FLAGS or flag[2:].replace("-", "_") in fields:
                    continue
            if flag in FOREIGN_FLAGS and command is None:
                continue
            actions = [a for a in (_option(p, flag) for p in known) if a is not None]
            if not actions:
                owner = f"sf2t {command}" if command and not command.startswith("bench:") else command
                problems.append(
                    f"{where}: {owner or 'no sf2t or bench command'} has {'no ' if command else ''}option {flag}"
                )
                continue
            if value and re.fullmatch(r"[a-z0-9_'|-]+", value) and all(a.choices for a in actions):
                for v in value.split("|"):  # one option (of some command, where the span names none) takes it
                    if v != "''" and not any(v.strip("'") in a.choices for a in actions):
                        choices = sorted({c for a in actions for c in a.choices})
                        problems.append(f"{where}: {flag} {v!r} is not one of {choices}")
    if "README.md" in texts:  # its "What is in the box" list: every command, and only commands that exist
        listed, real = _listed_commands(texts["README.md"]), {" ".join(words) for words in COMMANDS}
        problems += [f"README.md's command list lacks `sf2t {c}`" for c in sorted(real - listed)]
        problems += [f"README.md's command list names `sf2t {c}`, which is no command" for c in sorted(listed - real)]
    return problems


def _listed_commands(readme: str) -> set[str]:
    block = readme.split("## What is in the box", 1)[1].split("```", 2)[1]
    found = set()
    for line in block.splitlines():
        tokens = line.split()
        if tokens[:1] == ["sf2t"]:
            grouped = {words[0] for words in COMMANDS if len(words) > 1}  # `sf2t tasks export`: two words
            found.add(_command(tokens, 0) or " ".join(tokens[1 : 3 if tokens[1] in grouped else 2]))
    return found


def _bench_names() -> list[str]:
    return sorted(p.stem for p in (ROOT / "bench").glob("*.py") if _has_main(p))


def _has_main(path: Path) -> bool:
    return "\ndef main(argv=None)" in path.read_text()


def test_docs_name_only_options_that_exist(parsers):
    """Each option, choice and TrainConfig field the docs show exists (see the module docstring)."""
    problems = _check(_doc_texts(), parsers)
    assert not problems, "\n".join(problems)


def test_every_command_has_its_parser_and_is_listed(parsers):
    """``sf2t --help`` lists exactly the commands README's "What is in the box" lists, and each doc check above
    looks at the parser that command really uses."""
    top = _capture(lambda: cli.main(["info"]))
    choices = next(a.choices for a in top._actions if isinstance(a, argparse._SubParsersAction))
    assert set(choices) == {words[0] for words in COMMANDS}
    assert _listed_commands(_doc_texts()["README.md"]) == {" ".join(w) for w in COMMANDS}
    assert parsers["eval"].prog == "sf2t eval" and parsers["tasks export"].prog == "sf2t tasks export"
    assert "--print-config" in parsers["train"]._option_string_actions


def test_check_catches_a_removed_option_a_bad_choice_an_unknown_field_and_a_renamed_command(parsers):
    """The check is not vacuous: a doc naming an option, a choice, a field or a command that does not exist is
    reported."""
    texts = {
        "README.md": _doc_texts()["README.md"]
        + "\n`sf2t throughput --no-such-flag 2` `sf2t tasks export --frames gif` `sf2t train no_such_field=1`"
        + " `sf2t demo --set counting.no_such=2` `TrainConfig.nope`\n"
    }
    texts["README.md"] = texts["README.md"].replace("\nsf2t merge  ", "\nsf2t fuse   ")  # a renamed command
    problems = _check(texts, parsers)
    assert len(problems) == 7, problems
    assert "sf2t throughput has no option --no-such-flag" in problems[0]
    assert "'gif' is not one of" in problems[1]
    assert all("TrainConfig has no field" in p for p in problems[2:5])
    assert problems[5:] == [
        "README.md's command list lacks `sf2t merge`",
        "README.md's command list names `sf2t fuse`, which is no command",
    ]


def test_print_config_says_when_log_every_prints():
    """``sf2t train --print-config``'s help for ``log_every`` says what the loop does: a loss line every N steps only
    with ``progress=false`` (the bar shows the loss otherwise; ``sf2t.train.loop``), every step in metrics.jsonl."""
    from sf2t.train.config import config_help

    line = next(row for row in config_help().splitlines() if row.split()[0] == "log_every")
    assert "progress=false" in line and "metrics.jsonl has every step" in line, line


# -- docs/tasks.md: the task definitions, checked against the code

_PLACEHOLDERS = {  # docs/tasks.md's placeholders in scene-level questions and options
    "{object}": r"[a-z]+(?: [a-z]+)*",
    "{event}": r"the [a-z]+(?: [a-z]+)* (?:appears|disappears)",
    "{n}": r"[1-9][0-9]*",
}


def _section(text: str, heading: str) -> str:
    """The text under the markdown heading line ``heading`` up to the next heading of any level ("" if absent)."""
    m = re.search(r"^" + re.escape(heading) + r"\n(.*?)(?=^#|\Z)", text, flags=re.S | re.M)
    return m.group(1) if m else ""


def _config_tables(text: str) -> dict[str, list[str]]:
    """The rows of each table headed ``| `ClassName` field | default | meaning |``, by class name."""
    found = re.finditer(r"^\| `(\w+)` field \| default \| meaning \|\n\|---\|---\|---\|\n((?:\|.*\n)*)", text, re.M)
    return {m.group(1): m.group(2).splitlines() for m in found}


def _literal(cell: str):
    """A default as the doc writes it: a Python literal, or a fraction ``1/3``."""
    import ast

    m = re.fullmatch(r"(\d+)/(\d+)", cell)
    return int(m.group(1)) / int(m.group(2)) if m else ast.literal_eval(cell)


def _check_config_table(cls, rows: list[str], every_field: bool) -> list[str]:
    name = cls.__name__
    fields = {f.name: f for f in dataclasses.fields(cls)}
    defaults = cls()
    problems, seen = [], []
    for row in rows:
        m = re.fullmatch(r"\| `(\w+)` \| `([^`]+)` \| (.+?) \|", row)
        if m is None:
            problems.append(f"{name} table: a row not of the form | `field` | `default` | meaning |: {row}")
            continue
        field, cell, meaning = m.groups()
        seen.append(field)
        if field not in fields:
            problems.append(f"{name} has no field {field!r}")
            continue
        want = getattr(defaults, field)
        try:
            got = _literal(cell)
        except (ValueError, SyntaxError):
            got = cell
        if type(got) is not type(want) or got != want:
            problems.append(f"{name}.{field}: the doc says default {cell}, the code has {want!r}")
        if meaning != fields[field].metadata.get("help"):
            problems.append(
                f"{name}.{field}: the doc says {meaning!r}, the help is {fields[field].metadata.get('help')!r}"
            )
    missing = [f for f in fields if f not in seen] if every_field else []
    problems += [f"{name}.{f}: not in the doc's table" for f in missing]
    problems += [f"{name}.{f}: listed twice" for f in sorted({f for f in seen if seen.count(f) > 1})]
    return problems


def _scene_questions() -> list[dict]:
    import random

    from sf2t.finevidbench.build import scene_questions
    from sf2t.synth.scene import ground_truth

    out = []
    for seed in range(30):  # (ground truth only: no clip is made; every category and variant occurs)
        gt = ground_truth(seed, width=160, height=120, seconds=5)
        out += scene_questions(gt, "v.mp4", f"s{seed}", random.Random(f"0:scene:{seed}"))
    return out


def _template(span: str) -> re.Pattern:
    pattern = re.escape(span)
    for k, v in _PLACEHOLDERS.items():
        pattern = pattern.replace(re.escape(k), v)
    return re.compile(pattern)


# examples docs/tasks.md gives for the scoring rules, with what its rules read them as
SCORING_EXAMPLES = [
    ("parse_span", "From frame 3 to the end, i.e., frame 8.", (3, 8)),
    ("parse_span", "It is visible from frame 2 to the last frame, which is frame 7.", (2, 7)),
    ("parse_span", "From frame 4 to the end, 8 frames in total.", (4, 4)),
    ("parse_span", "Re-checking frames 2-7. Motion blur affects frames 3-4.", (2, 7)),
    ("parse_span", "Visible from frame 3 to the end of frame 6.", (3, 6)),
    ("parse_span", "The cat appears in frame 5 and is visible to the end, i.e. frames 5-8.", (5, 8)),
    ("parse_span", "From frame 4 to the end.", (4, 4)),
    ("parse_count", "1, 2, 3, 4, 5, 6, 7, 8. There are 8 frames.", 8),
    ("parse_count", "Counting: 1, 2, 3. So 3 frames.", 3),
    ("parse_count", "I count 8 frames. There are 2 duplicates.", 8),
    ("parse_count", "I count 8 frames. There is 1 frame repeated.", 8),
    ("parse_count", "8 frames, with a total of 2 repeats.", 8),
    ("parse_count", "1, 2, 3. There are 3 frames in this video.", 3),
    ("parse_count", "The answer is 7. The answer is 8.", None),
    ("parse_count", "... so 7 frames are shown.", 7),
    ("parse_count", "There are 10 frames. The person is visible in 6 frames in total.", 10),
    ("parse_count", "The video has 7 frames; 3 frames in total show the cat.", 7),
    ("parse_count", "4 + 5 = 9 frames.", 9),
    ("parse_count", "The video shows a 3x3 grid in each of its 9 frames.", 9),
    ("parse_count", "There are 8 grayscale frames, and 3 frames show a moving car.", 8),
    ("parse_count", "The video has 8 frames; in the first half there are 4.", 8),
    ("parse_count", "There are 8 frames. Of these, there are 2.", 8),
    ("parse_count", "The video has 8 frames; where the ball moves there are 4.", 4),
    ("parse_count", "6 nearly identical frames; the last 2 frames differ.", 6),
    ("parse_count", "About 8 frames.", 8),
    ("parse_count", "Around 8-9 frames.", None),
    ("parse_count", "8 - 2 of them repeat", 8),
    ("parse_count", "Not 7, it's 8.", 8),
    ("parse_count", "It's not 7 but 8 frames.", 8),
    ("parse_count", "At least 8 frames.", None),
    ("parse_count", "More than 5 frames.", None),
    ("parse_count", "8 frames are shown. Frames 2-3 are duplicates, so there are 7 unique images.", 7),
    ("parse_span", "The clip starts at frame 1 and ends at frame 10. The target appears in frames 3-5.", (3, 5)),
    ("parse_span", "The clip starts at frame 1 and ends at frame 10.", None),
    ("parse_span", "Frames 1-3 look static, frames 4-6 move. Final answer: Frames 4-6.", (4, 6)),
    ("parse_positions", "1, 2, 3, 4 are the positions I first tried. Final answer: 2, 4, 1, 3", [2, 4, 1, 3]),
    ("parse_yes_no", "No wait. Final answer: Yes.", True),
    ("parse_span", "Frames 4-6. Final answer: unclear.", None),
    ("parse_count", "8 frames. Final answer.", 8),
    ("parse_count", "There are 8 frames. That is my final answer.", 8),
    ("parse_count", "I think there are 7 - 8 frames.", None),
    ("parse_count", "The answer is 8 – 2 frames repeat.", 8),
    ("parse_count", "I counted up to 8.", 8),
    ("parse_count", "The video doesn't have 7 frames, it has 8.", 8),
    ("parse_count", "At least 8 frames are shown; in fact exactly 8.", 8),
    ("parse_count", "In the first half there are 4 frames, so there are 8 frames in total.", 8),
    ("parse_span", "The target in the video starts at frame 3 and ends at frame 5.", (3, 5)),
    ("parse_span", "Start: 3. End: 5.", (3, 5)),
    ("parse_span", "The first frame is 1 and the last frame is 8. The target appears in frames 3-5.", (3, 5)),
    ("parse_span", "I can't see it in frames 1-2. It is in frames 3-5.", (3, 5)),
    ("parse_span", "The target is not visible at first and then appears in frames 3-5.", (3, 5)),
    ("parse_span", "The target does not move and appears in frames 3-5.", (3, 5)),
    ("parse_span", "In frames 1-2 the target is not visible; in frames 3-5 it is.", (3, 5)),
    ("parse_span", "Frames 1-2: not visible. Frames 3-5: visible.", (3, 5)),
    ("parse_span", "It appears in frames 3-5 and is not visible elsewhere.", (3, 5)),
    ("parse_count", "Two of them look the same, but there are 8 frames.", 8),
    ("parse_span", "The object enters the scene at frame 4 and exits at frame 8.", (4, 8)),
    ("parse_span", "Target not present: frames 1-2. Target present: frames 3-5.", (3, 5)),
    ("parse_span", "Frames 1, 2, and 3 are empty; the target is in frames 4-6.", (4, 6)),
    ("parse_span", "Frames 3-5 (it is not visible in frames 1-2 and 6-8).", (3, 5)),
    ("parse_span", "In frames 3-5 the target sits on the empty table.", (3, 5)),
    ("parse_span", "**Start frame:** 3 **End frame:** 5", (3, 5)),
    ("parse_span", "Frames 1-2 are blank screens and frames 3-5 contain the target.", (3, 5)),
    ("parse_span", "Frames 1-2 (target not visible), frames 3-5 (target visible).", (3, 5)),
    ("parse_span", "It first appears in frame 4 and is last seen in frame 8.", (4, 8)),
    ("parse_span", "It enters in frame 4 and exits in frame 8.", (4, 8)),
    ("parse_span", "It appears in frame 4 and stays until frame 8.", (4, 8)),
    ("parse_span", "Start: 2, End: 5", (2, 5)),
    ("parse_span", "start frame 2, end frame 5", (2, 5)),
    ("parse_span", "First frame: 2; last frame: 5", (2, 5)),
    ("parse_span", "The first 2 frames are static and the last 3 move.", (3, 3)),
    ("parse_span", "In the fifth, sixth and seventh frames.", (5, 7)),
    ("parse_span", "The target is not visible in frames 1-3; it appears in frames 4-6.", (4, 6)),
    ("parse_span", "The patch is absent in frames 1-3 and present in frames 4-6.", (4, 6)),
    ("parse_span", "It does not appear in frames 1-3.", None),
    ("parse_span", "It doesn't move in frames 3-5.", (3, 5)),
    ("parse_count", "2, 3, 4", None),
    ("parse_count", "7 or 8", None),
    ("parse_count", "six (or maybe seven)", None),
    ("parse_count", "Six. Or maybe seven.", None),
    ("parse_count", "Six frames. Maybe seven.", None),
    ("parse_count", "There are 7 or 8 frames.", None),
    ("parse_count", "There are 8 frames, numbered 1 to 8.", 8),
    ("parse_count", "8 frames, 2 of them repeated", 8),
    ("parse_count", "8. Or maybe 9.", None),
    ("parse_count", "8, possibly 9 frames", None),
    ("parse_count", "There are 8, maybe 9 of them.", None),
    ("parse_count", "8 frames, maybe 9 if the first one counts", None),
    ("parse_count", "7, maybe 8 frames are shown.", None),
    ("parse_count", "9. Maybe 10 or 11.", None),
    ("parse_count", "8. Perhaps 2 of them repeat.", 8),
    ("parse_count", "8. Maybe 2 or 3 of them repeat.", 8),
    ("parse_count", "4, maybe 2 repeat", 4),
    ("parse_count", "The answer is 6. Perhaps 2 frames show the same pose.", 6),
    ("parse_count", "8, maybe 2 seconds", 8),
    ("parse_count", "7 or 8 frames in total", None),
    ("parse_count", "There are 7, maybe 8 frames in total.", None),
    ("parse_count", "8 frames; the answer is 2 repeated ones.", 8),
    ("parse_count", "The answer is 8 frames in the video in total.", 8),
    ("parse_count", "That makes 4.", 4),
    ("parse_count", "The video is 4 seconds long and contains 10 frames.", 10),
    ("parse_count", "There are 5 cars and 7 frames.", 7),
    ("parse_count", "1 2 3 4 5 6 7 8 9 10 11 12 - twelve frames.", 12),
    ("parse_count", "There are 4 frames per second and 16 frames in total.", 16),
    ("parse_count", "The video has 6 frames; 2 frames are duplicates of frame 1.", 6),
    ("parse_count", "7, but it could be 8", None),
    ("parse_count", "The answer is 3 seconds.", None),
    ("parse_count", "The ball bounces 3 times.", None),
    ("parse_count", "There are 5 cars.", 5),
    ("parse_count", "Step 1: count the frames. Result: 9 frames.", 9),
    ("parse_count", "I see 2 duplicates. Count: 8", 8),
    ("parse_count", "2 of them are duplicates, but there are still 8 frames.", 8),
    ("parse_count", "Step 1: look at each frame. Step 2: count them. I see 9 frames.", 9),
    ("parse_count", "2 of the frames are duplicates; the video has 8 frames.", 8),
    ("parse_count", "The first 2 frames are static, and the video has 8 frames.", 8),
    ("parse_count", "The first 2 frames are static.", 2),
    ("parse_count", "Eight of them.", 8),
    ("parse_count", "8 frames, 9 if you count the blank one.", None),
    ("parse_count", "There are 8 frames, or 9 I think.", None),
    ("parse_count", "There are 8 frames or 2 seconds of video.", 8),
    ("parse_count", "I don't think it's 7; I see 8 frames.", 8),
    ("parse_count", "I don't think the answer is 7; it's 8.", 8),
    ("parse_count", "I wouldn't say 7; I see 8 frames.", 8),
    ("parse_count", "It doesn't look like 7 frames to me; I count 8.", 8),
    ("parse_count", "There are 8 frames, or maybe 9 I think.", None),
    ("parse_count", "I think the answer is 6, but I'm not sure; it might be 7.", 6),
    ("parse_count", "I count 5 frames where the ball moves, and 8 frames.", 5),
    ("parse_count", "The answer is 7 for this video.", 7),
    ("parse_count", "so the answer is 7 frames shown.", 7),
    ("parse_count", "I count 8 frames. The answer is 2 repeats.", 8),
    ("parse_count", "There are 8 frames, so 2 frames repeat.", 8),
    ("parse_count", "There are **7** frames.", 7),
    ("parse_count", "Frame 2 is identical to frame 1. There are 8 frames shown.", 8),
    ("parse_count", "Frame 7.", None),
    ("parse_count", "I see 8 consecutive frames; 2 frames are repeated.", 8),
    ("parse_count", "Eight key frames. 2 frames show the same thing.", 8),
    ("parse_count", "8 still images; 2 images are the same.", 8),
    ("parse_count", "8 frames, though it could be 9", None),
    ("parse_count", "Frames 0 to 7, 8 frames in total.", 8),
    ("parse_count", "The answer is 2 frames repeated.", 2),
    ("parse_count", "7 to 8 frames in total", None),
    ("parse_span", "3rd-5th", (3, 5)),
    ("parse_span", "From the 3rd frame to the 5th frame.", (3, 5)),
    ("parse_span", "The ball appears in the second frame and leaves at the fifth.", (2, 5)),
    ("parse_span", "The first and second frames are static; the motion is in frames 3-5.", (3, 5)),
    ("parse_span", "Frames 3-5. Or maybe 4-6.", None),
    ("parse_span", "frames 3-5 (maybe 3-6)", None),
    ("parse_span", "Frames 3-5, but it could be 4-6", None),
    ("parse_span", "Frames 3-5, or maybe the fourth to sixth.", (3, 5)),
    ("parse_span", "Frames #3-#5", (3, 5)),
    ("parse_span", "From the third to the fifth frame.", (3, 5)),
    ("parse_span", "The second to fourth frames.", (2, 4)),
    ("parse_span", "frames 3...5", (3, 5)),
    ("parse_span", "Starting at frame 3 and ending at 5.", (3, 5)),
    ("parse_span", "I think frames 3-5, or maybe 4-6.", None),
    ("parse_span", "Frames 3-5/8", (3, 5)),
    ("parse_span", "Frames 3-5/5", (3, 5)),
    ("parse_span", "frames 3-5 of 8", (3, 5)),
    ("parse_span", "Frames 3-5/4", None),
    ("parse_span", "between frames 3 and 5", (3, 5)),
    ("parse_span", "frames 3 and 4", (3, 4)),
    ("parse_span", "frames 3 and 5", None),
    ("parse_span", "frames 3, 4 and 5", (3, 5)),
    ("parse_span", "Frames 3-5; 3 frames in total", (3, 5)),
    ("parse_count", "2*4 = 8 frames", 8),
    ("parse_count", "The frames form a 2*4 grid.", None),
    ("parse_count", "I count 8 frames, and the answer is 2 frames are repeated.", 8),
    ("parse_count", "There are 8 frames in the video, and a total of 2 frames are repeated.", 8),
    ("parse_count", "I see 8 frames; a total of 2 frames show the dog.", 8),
    ("parse_count", "Frames 3 and 4 are duplicates.", None),
    ("parse_count", "Frames 0 to 7 are shown.", None),
    ("parse_count", "Frame 8 is the last one.", None),
    ("parse_count", "Frame 4 is the odd one out.", None),
    ("parse_count", "Only one frame is shown.", 1),
    ("parse_count", "The ball bounces 3 times between frames 2 and 6; the video has 8 frames.", 8),
    ("parse_count", "For the first 2 seconds frames are static, then 8 frames follow.", 8),
    ("parse_span", "The second to fourth frames show it (2-3 seconds).", (2, 4)),
    ("parse_span", "From the third to the fifth frame (frames are numbered 1-8).", (3, 5)),
    ("parse_span", "The ball moves for 2 frames until frame 5.", (5, 5)),
    ("parse_span", "The person appears in frame 3. The car leaves at frame 6.", (3, 3)),
    ("parse_span", "The object appears in the third frame and disappears after the fifth.", (3, 5)),
    ("parse_span", "Frames 1-2 are static; the motion is from the third to the fifth frame.", (1, 2)),
    ("parse_span", "The target appears in frame 3, and the video ends at frame 8.", (3, 3)),
    ("parse_span", "It enters at frame 4 and exits the frame at frame 8.", (4, 8)),
    ("parse_span", "The target is visible from frame 4 until the end (frame 8).", (4, 8)),
    ("parse_span", "The target doesn't appear until frame 3 and remains visible until frame 5.", (3, 5)),
    ("parse_span", "The target is visible from frame 2 and is gone by frame 7.", (2, 6)),
    ("parse_span", "The target is visible from frame 2 and is gone in frame 7.", (2, 6)),
    ("parse_span", "The first frame is 1, and the last frame is 8. The target is in frame 4 only.", (4, 4)),
    ("parse_span", "Start: 2, End: 5. Frame 2 shows the target entering.", (2, 5)),
    ("parse_span", "The patch shows up at frame 3 and vanishes at frame 6, so frames 3-5.", (3, 5)),
    ("parse_span", "So frames 3-5. Thus frames 4-6.", None),
    ("parse_span", "It appears in frames 3-5, so frames 1-2 do not contain it.", (3, 5)),
    ("parse_span", "The target is partially hidden in frames 3-5 but still visible.", (3, 5)),
    ("parse_span", "Frames 5-8 contain the target; frames 1-4 do not.", (5, 8)),
    ("parse_span", "The target first appears in frame 3. It is last seen in frame 6.", (3, 6)),
    ("parse_span", "It appears in frame 2 and by frame 7 it is gone.", (2, 2)),
    ("parse_span", "From frame 4 to the end, frame 8.", (4, 8)),
    # review31's fixes
    ("parse_count", "Duplicate count: 2. There are 8 frames.", 8),
    ("parse_count", "There are 8 frames in total. The result is 2.", 8),
    ("parse_count", "There are 6 frames, 3 I think show the dog.", 6),
    ("parse_count", "There are 8 frames, or 4 in each half.", 8),
    ("parse_count", "I don't think it's 7 or 8. It's 9 frames.", 9),
    ("parse_count", "Not 7 or 8, but 9.", 9),
    ("parse_count", "Not 7 or 8.", None),
    ("parse_count", "Not 7, 8.", 8),
    ("parse_span", "The target is visible in frame 4 only, and the ball leaves at frame 7.", (4, 4)),
    ("parse_span", "The target enters at frame 3 and the camera pans until it leaves at frame 6.", (3, 6)),
    ("parse_span", "The target's first frame is 3 and its last frame is 6. Frame 4 is the clearest.", (3, 6)),
    ("parse_span", "The target is in frames 4-6, so frames 1-3 have no target.", (4, 6)),
    ("parse_span", "It is visible in frames 3-5, so frames 1-2 lack it.", (3, 5)),
    ("parse_span", "Frames 3-5 have no blur.", (3, 5)),
    # review31b's fixes
    ("parse_count", "I counted 2 repeats, so the count is 8.", 8),
    ("parse_count", "There are 2 duplicate pairs, and the overall count is 10.", 10),
    ("parse_count", "The video has 2 scenes. Image count: 8.", 8),
    ("parse_count", "There are 8 frames, maybe 9 I think because the last one is faded.", None),
    ("parse_count", "There are 8 frames, or 9 in the final count.", None),
    ("parse_span", "The target appears in frame 3 and the red patch leaves at frame 6.", (3, 6)),
    ("parse_span", "It appears at frame 2 and the whole object leaves at frame 5.", (2, 5)),
    ("parse_span", "The dog appears in frame 3 and the dog exits at frame 6.", (3, 6)),
    (
        "parse_span",
        "The video has 8 frames. Its first frame is 1 and its last frame is 8. The target appears in frame 4.",
        (4, 4),
    ),
    ("parse_span", "Frames 3-5 contain the patch with no object in front of it.", (3, 5)),
    # review33's fixes
    ("parse_count", "Step 1: count the frames. Step 2: Total frames: 11.", 11),
    ("parse_count", "Step 1: the answer is 4. Step 2: so the answer is 8.", None),
    ("parse_count", "The count is 5. Total frames: 11.", None),
    ("parse_count", "People count: 3. The clip has 7 frames.", 7),
    ("parse_count", "It lasts 4 s.", None),
    ("parse_count", "I count 8 frames, maybe 9 I think as one is a fade-in.", None),
    ("parse_count", "6 frames; 2 I think because of motion blur look the same.", 6),
    ("parse_span", "So frames 3-5. Actually, it could also be frames 3-6.", None),
    ("parse_span", "Frames 3-5, not 3-6.", (3, 5)),
    ("parse_span", "The video runs from frame 1 to the end, frame 8; the target is in frame 4.", (4, 4)),
    ("parse_span", "Re-checking frames 2-7 carefully, the target is visible in frames 3-6.", (3, 6)),
]


def vlmevalkit_prompt(line: dict) -> str:
    """The text the VLMEvalKit dataset class that ``sf2t finevidbench export`` writes asks with for ``line`` (a TSV
    row: question, A, B, ...), from the class's code as the export writes it (no file, no VLMEvalKit)."""
    pytest.importorskip("pandas")  # (the class imports it)
    from sf2t.finevidbench import export as fvb_export

    space: dict = {"__file__": "sf2t_vlmevalkit.py"}
    exec(fvb_export._with_parser(fvb_export._VLMEVAL_CLASS.format(tsv="x.tsv", name="x")), space)
    cls = space["SF2TFineVidBench"]
    ds = cls.__new__(cls)
    ds.data_root = "."
    return ds.build_prompt({"video": "v.mp4", **line})[1]["value"]


def _task_doc_problems(text: str, scene: list[dict]) -> list[str]:
    """Every mismatch between docs/tasks.md (``text``) and the code, one line each (see the module docstring)."""
    import inspect
    import random

    from sf2t.finevidbench import build as fvb_build
    from sf2t.finevidbench.evaluate import render_question
    from sf2t.finevidbench.format import VARIANTS
    from sf2t.tasks import TASK_CONFIGS, templates
    from sf2t.tasks.consistency import CELLS
    from sf2t.tasks.rearrangement import positions_answer
    from sf2t.train.config import TrainConfig

    problems = []
    tables = _config_tables(text)
    for cls in [*TASK_CONFIGS.values(), TrainConfig]:
        if cls.__name__ not in tables:
            if cls is not TrainConfig:
                problems.append(f"no table of {cls.__name__}'s fields")
            continue
        problems += _check_config_table(cls, tables[cls.__name__], every_field=cls is not TrainConfig)
    # the paraphrases of each task, in order, under its heading; its answer forms
    order = [2, 0, 3, 1]  # the rearrangement example: presented 3rd, 1st, 4th, 2nd chronological frames
    answers = {
        "counting": [templates.counting_answer("{F}")],
        "disorder": [templates.disorder_answer(True), templates.disorder_answer(False)],
        "consistency": [templates.consistency_answer("identical", None), templates.consistency_answer("whole", None)]
        + [templates.consistency_answer("cell", "{cell}")]
        + list(CELLS),
        "localization": [templates.localization_answer("{a}", "{b}")],
        "rearrangement": [templates.rearrangement_answer(positions_answer(order))],
        "speed": [templates.speed_answer(f) for f in ("first", "second", "same")],
    }
    for task, paraphrases in templates.QUESTIONS.items():
        sec = _section(text, f"### `{task}`")
        if not sec:
            problems.append(f"no section ### `{task}`")
            continue
        listed = re.findall(r"^  - `(.*)`$", sec.split("**Questions", 1)[-1], flags=re.M)
        if listed != list(paraphrases):
            problems.append(f"{task}: the doc's questions {listed} are not the code's {list(paraphrases)}")
        problems += [f"{task}: answer form `{a}` not in its section" for a in answers[task] if f"`{a}`" not in sec]
    ordinals = ", ".join(("1st", "2nd", "3rd", "4th")[k] for k in order)
    if f"({ordinals} chronologically)" not in _section(text, "### `rearrangement`"):
        problems.append(f"rearrangement: the example's order ({ordinals} chronologically) is not in its section")
    # the scoring rules' examples: quoted in the doc, read as the doc says by the code
    from sf2t.tasks import scoring

    rules = re.sub(r"\s+", " ", _section(text, "## Scoring"))
    for fn, said, value in SCORING_EXAMPLES:
        if f'"{said}"' not in rules:
            problems.append(f"scoring: the example {said!r} ({fn}) is not in the doc")
        elif getattr(scoring, fn)(said) != value:
            problems.append(f"scoring: {fn}({said!r}) is {getattr(scoring, fn)(said)!r}, the doc's rule says {value!r}")
    # the multiple-choice prompts' last lines
    lines = {
        "multiple_choice": templates.multiple_choice(
            "disorder", {"task": "disorder", "answer": {"in_order": True}}, random.Random(0)
        )[0].splitlines()[-1],
        "sf2t eval": render_question({"question": "Q?", "options": ["a", "b"]}).splitlines()[-1],
    }
    lines["the VLMEvalKit export"] = vlmevalkit_prompt({"question": "Q?", "A": "a", "B": "b"}).splitlines()[-1]
    problems += [f"{k}'s prompt line `{v}` is not in the doc" for k, v in lines.items() if f"`{v}`" not in text]
    if len(set(lines.values())) > 1:
        problems.append(f"the multiple-choice prompts end differently: {lines}")
    # scene level: each category's question, options and variants
    rows = {}
    scene_text = _section(text, "### Scene level")
    for m in re.finditer(r"^\| `(\w+)` \| `([^`]+)` \| (.*?) \| .*? \| ([\w., ]+) \|$", scene_text, flags=re.M):
        rows[m.group(1)] = (_template(m.group(2)), [_template(s) for s in re.findall(r"`([^`]+)`", m.group(3))])
        rows[m.group(1)] += ({v.strip() for v in m.group(4).split(",")},)
    variants: dict[str, set] = {}
    for q in scene:
        cat = q["category"]
        if cat not in rows:
            problems.append(f"scene category {cat!r} is not in the doc's table")
            rows[cat] = None
        if rows[cat] is None:
            continue
        question, options, _ = rows[cat]
        variants.setdefault(cat, set()).add(q["variant"])
        if not question.fullmatch(q["question"]):
            problems.append(f"{cat}: the question {q['question']!r} does not fit the doc's {question.pattern!r}")
        problems += [
            f"{cat}: option {o!r} fits none the doc gives"
            for o in q["options"]
            if not any(t.fullmatch(o) for t in options)
        ]
    for cat, seen in variants.items():
        if seen != rows[cat][2]:
            problems.append(f"{cat}: asked in variants {sorted(seen)}, the doc says {sorted(rows[cat][2])}")
    label_q = "Which description fits the video best?"
    if "label" not in rows or f'"{label_q}"' not in inspect.getsource(fvb_build.annotation_questions):
        problems.append("the label question is not the code's")
    documented = set(re.findall(r"^\| `([\w.]+)` \| [^`|]+ \|$", scene_text, flags=re.M))  # the variants table
    if documented != set(VARIANTS):
        problems.append(f"the variants table lists {sorted(documented)}, the code has {sorted(VARIANTS)}")
    if f"shows {fvb_build.SCENE_FRAMES} frames spread" not in text:
        problems.append(f"the original variant shows {fvb_build.SCENE_FRAMES} frames: not what the doc says")
    # object_count's options: the doc's examples (clips of various counts; clips that all show one) are the code's
    row = re.sub(r"\s+", " ", scene_text)
    examples = re.findall(r"\(clips of ([\d, and]+) objects: ([\d, ]+)\)", row)
    examples += [(n, opts) for n, opts in re.findall(r"\(clips that all show (\d+) objects?: ([\d, ]+)\)", row)]
    if len(examples) < 2:
        problems.append("object_count: the doc's examples of the count options (of various counts; all one) are gone")
    for shown, said in examples:
        got = sorted(fvb_build.object_count_options({int(n) for n in re.findall(r"\d+", shown)}))
        if [int(n) for n in said.split(",")] != got:
            problems.append(f"object_count: the doc says clips of {shown} objects get options {said}, the code {got}")
    return problems


@pytest.fixture(scope="module")
def scene():
    return _scene_questions()


def test_task_doc_matches_the_code(scene):
    """docs/tasks.md lists each task config field with its code default and help, each question paraphrase, each
    answer form, the multiple-choice prompt lines, and each scene-level question, option and variant as the code
    has them: the doc cannot drift from the code unnoticed."""
    problems = _task_doc_problems((ROOT / "docs" / "tasks.md").read_text(), scene)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "old, new, words",
    [
        ("| `count_max` | `16` |", "| `count_max` | `12` |", "CountingConfig.count_max: the doc says default 12"),
        ("| `side_max` | `1/3` |", "| `side_max` | `0.33` |", "LocalizationConfig.side_max: the doc says default"),
        ("| `guard` | `False` |", "| `guard` | `0` |", "CountingConfig.guard: the doc says default 0"),
        ("| `perm` | `'any'` |", "| `perm` | `'strong'` |", "DisorderConfig.perm: the doc says default"),
        (
            "| `tau_motion` | `2.0` | motion guard threshold (thumbnail MAD) |\n\n### `consistency`",
            "\n### `consistency`",
            "CountingConfig.tau_motion: not in the doc's table",
        ),
        ("| fewest frames per part |", "| fewest frames per part (4) |", "SpeedConfig.count_min: the doc says"),
        ("| `max_resample` | `8` |", "| `max_resample` | `4` |", "TrainConfig.max_resample: the doc says default 4"),
        ("Reply with one number.`", "Reply with a number.`", "counting: the doc's questions"),
        (
            "(clips that all show 3 objects: 1, 2, 3)",
            "(clips that all show 3 objects: 2, 3, 4)",
            "object_count: the doc says clips of 3 objects get options 2, 3, 4, the code [1, 2, 3]",
        ),
        ("`Frames {a}-{b}.`", "`Frames {a} to {b}.`", "localization: answer form `Frames {a}-{b}.`"),
        ("`Different: {cell}.`", "`Different: {cell}`", "consistency: answer form"),
        ("`2, 4, 1, 3`", "`2, 4, 3, 1`", "rearrangement: answer form `2, 4, 1, 3`"),
        ("| `It speeds up.`, `It slows down.` |", "| `It speeds up.` |", "speed_change: option 'It slows down.'"),
        ("original, speed_2x, speed_0.5x |\n", "original, speed_2x, speed_0.5x, reversed |\n", "event_order: asked in"),
        (
            "`Overall, in which direction does the {object} move?`",
            "`In which direction does the {object} move?`",
            "motion_direction: the question",
        ),
        ("| `shuffled` |", "| `shuffle` |", "the variants table lists"),
        (
            "`Answer with the option's letter or its text.`",
            "`Answer with a letter.`",
            "the VLMEvalKit export's prompt line",
        ),
        ('"frames 3 and 5"', '"frames 3 and 6"', "scoring: the example 'frames 3 and 5'"),
    ],
)
def test_task_doc_check_catches_drift(scene, old, new, words):
    """The check is not vacuous: a wrong default, a missing field, a changed help, paraphrase, answer form, option,
    question or variant in the doc is reported."""
    text = (ROOT / "docs" / "tasks.md").read_text()
    assert text.count(old) == 1, old
    problems = _task_doc_problems(text.replace(old, new), scene)
    assert any(words in p for p in problems), problems


def test_task_doc_check_catches_a_scoring_rule_the_code_breaks(scene, monkeypatch):
    """A parser that no longer reads the doc's examples as the doc says (here: every count read as the first number,
    as before conclusions won) is reported."""
    from sf2t.tasks import scoring

    monkeypatch.setattr(scoring, "parse_count", lambda t: int(re.search(r"\d+", t).group(0)) if t[:1].isdigit() else 0)
    problems = _task_doc_problems((ROOT / "docs" / "tasks.md").read_text(), scene)
    assert any("parse_count('1, 2, 3, 4, 5, 6, 7, 8. There are 8 frames.') is 1" in p for p in problems), problems


def test_no_file_cites_the_design_spec_users_lack():
    """The task definitions are docs/tasks.md; the design spec that sources once cited (its name below) is not in the
    repository, so no Python source, test, benchmark, script or doc may send a reader to it. (csrc/ is left out: a
    changed C++ source, a comment too, marks the built extension stale, ``sf2t._ext.stale_reasons``.)"""
    spec = "TASKS" + ".md"  # (spelt apart: this file would cite it)
    places = ["sf2t", "tests", "bench", "scripts", "kernels", "docs", "README.md"]
    cited = [
        f"{path.relative_to(ROOT)}:{n}"
        for place in places
        for path in ([ROOT / place] if (ROOT / place).is_file() else sorted((ROOT / place).rglob("*")))
        if path.is_file() and path.suffix in (".py", ".md", ".sh", ".yaml", ".txt")
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if spec in line
    ]
    assert not cited, f"these cite {spec}, which users do not have (point them at docs/tasks.md): {cited}"
