"""``sf2t finevidbench export --bench B --format lmms-eval|vlmevalkit --out DIR``: the benchmark for the evaluation
harnesses people use. Each question's presented frames become one short MP4 (``DIR/videos/<id>.mp4``, ``--fps``
frames per second, H.264 via PyAV), so any video model of the harness sees exactly what sf2t's evaluator shows;
a target image is written as PNG next to it.

- ``lmms-eval``: ``DIR/<task>.yaml`` (a task config: local JSON lines through ``dataset_path: json`` and
  ``dataset_kwargs.data_files``, ``doc_to_visual`` / ``doc_to_text`` / ``process_results`` from ``utils.py``,
  accuracy overall and per category) plus ``DIR/utils.py`` and ``DIR/<task>.jsonl``. Pass ``--include_path DIR``
  (or put the folder under lmms-eval's ``tasks/``) and run ``--tasks <task>``. The YAML names the JSON lines by
  their absolute path (the datasets library reads relative ones from the working folder): export again after
  moving the folder.
- ``<task>``: ``--task``, else ``sf2t_`` and the benchmark's name, lower case. A name is ASCII letters, digits, '_',
  '.' and '-' (:func:`sf2t._names.check_safe_name`, the rule ``build --name`` follows too): a ``--task`` that is not
  is refused with the name to use; a benchmark name that is not (a file's stem, a benchmark made elsewhere) is made
  safe, and the export says the task name it used.
- An export into ``DIR`` again replaces the earlier one (``DIR/.sf2t-export.json`` lists its files); a folder with
  other files is refused.
- ``vlmevalkit``: ``DIR/<name>.tsv`` (``index, video, question, A, B, ..., answer, category, level, variant``) and
  ``DIR/sf2t_vlmevalkit.py``, a dataset class in VLMEvalKit's video-dataset style that reads the TSV locally.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from sf2t._plural import counted
from sf2t.finevidbench.evaluate import load_media, render_question
from sf2t.finevidbench.format import LETTERS, load

__all__ = ["export", "LMMS_REQUIRED_KEYS", "FORMATS"]

FORMATS = ("lmms-eval", "vlmevalkit")
# keys lmms-eval's ConfigurableTask needs for a generate_until task read from local files
LMMS_REQUIRED_KEYS = (
    "task",
    "dataset_path",
    "dataset_kwargs",
    "test_split",
    "output_type",
    "doc_to_visual",
    "doc_to_text",
    "doc_to_target",
    "process_results",
    "metric_list",
)

_LMMS_UTILS = '''"""lmms-eval task utilities for an sf2t FineVidBench-style benchmark (sf2t finevidbench export)."""

import os

HERE = os.path.dirname(os.path.abspath(__file__))

# -- sf2t's answer parser (sf2t/finevidbench/choice.py) --


def doc_to_visual(doc):
    out = [os.path.join(HERE, doc["video"])]
    if doc.get("image"):
        out.insert(0, os.path.join(HERE, doc["image"]))
    return out


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kw = lmms_eval_specific_kwargs or {}
    return kw.get("pre_prompt", "") + doc["prompt"] + kw.get("post_prompt", "")


def process_results(doc, results):
    pred = parse_choice(results[0], doc["options"])  # as sf2t eval parses a generated answer
    correct = float(pred == doc["answer_index"])
    cat = doc["level"] + "/" + doc["category"]
    return {"accuracy": correct, "category_accuracy": {"category": cat, "correct": correct}}


def aggregate_by_category(results):
    """lmms-eval takes one number per metric: this is the overall accuracy (as ``accuracy``); the per-category
    accuracies are printed."""
    per = {}
    for r in results:
        per.setdefault(r["category"], []).append(r["correct"])
    for k, v in sorted(per.items()):
        print(f"{k}: {sum(v) / len(v):.4f} ({len(v)})")
    return sum(r["correct"] for r in results) / max(1, len(results))
'''

_VLMEVAL_CLASS = '''"""A VLMEvalKit dataset for an sf2t FineVidBench-style benchmark (sf2t finevidbench export).

Copy this file into vlmeval/dataset/ and register ``SF2TFineVidBench`` in vlmeval/dataset/__init__.py (as the
other video datasets are), or import it in your run script. It reads the TSV next to it: no download.
"""

import os
import os.path as osp

import pandas as pd

try:
    from vlmeval.dataset.video_base import VideoBaseDataset
except ImportError:  # outside VLMEvalKit: a stand-in base so the file still imports
    VideoBaseDataset = object

HERE = osp.dirname(osp.abspath(__file__))

# -- sf2t's answer parser (sf2t/finevidbench/choice.py) --


class SF2TFineVidBench(VideoBaseDataset):
    TYPE = "Video-MCQ"
    MODALITY = "VIDEO"
    TSV = "{tsv}"

    def __init__(self, dataset="{name}", nframe=0, fps=-1):
        self.dataset_name = dataset
        self.nframe, self.fps = nframe, fps
        # as text: options that are numbers ("12") stay options, empty cells stay "" (not NaN)
        self.data = pd.read_csv(osp.join(HERE, self.TSV), sep="\\t", dtype=str, keep_default_na=False)
        self.data["index"] = self.data["index"].astype(int)
        self.data_root = HERE

    @classmethod
    def supported_datasets(cls):
        return ["{name}"]

    def __len__(self):
        return len(self.data)

    def options(self, line):
        return [line[c] for c in LETTERS if c in line and isinstance(line[c], str) and line[c]]

    def build_prompt(self, line, video_llm=True):
        if isinstance(line, int):
            line = self.data.iloc[line]
        opts = "\\n".join(f"{{c}}. {{o}}" for c, o in zip(LETTERS, self.options(line)))
        text = f"{{line['question']}}\\n{{opts}}\\n{{ANSWER_LINE}}"  # (ANSWER_LINE: in sf2t's parser above)
        return [dict(type="video", value=osp.join(self.data_root, line["video"])), dict(type="text", value=text)]

    def evaluate(self, eval_file, **judge_kwargs):
        if eval_file.endswith(".xlsx"):
            data = pd.read_excel(eval_file, dtype={{"answer": str, "prediction": str}})
        else:
            data = pd.read_csv(eval_file, sep="\\t", dtype={{"answer": str, "prediction": str}}, keep_default_na=False)
        # the option a prediction names, parsed as sf2t eval parses a generated answer
        data["hit"] = [
            float(parse_choice(row["prediction"], self.options(row)) == LETTERS.index(str(row["answer"]).strip()))
            for _, row in data.iterrows()
        ]
        return data.groupby(["level", "category"])["hit"].mean().rename("accuracy").reset_index()
'''


def _with_parser(code: str) -> str:
    """``code`` with sf2t's answer parser (the code of ``choice.py``) where its marker line is."""
    from sf2t.finevidbench import choice

    src = Path(choice.__file__).read_text(encoding="utf-8")
    src = src[src.index("import re") :].rstrip() + "\n"
    marker = "# -- sf2t's answer parser (sf2t/finevidbench/choice.py) --\n"
    assert marker in code
    return code.replace(marker, marker + src)


def _write_video(frames, path: Path, fps: int) -> None:
    from sf2t.synth.generator import encode_frames

    f = frames
    h, w = int(f.shape[1]), int(f.shape[2])
    if h % 2 or w % 2:  # H.264 4:2:0 needs even sizes: pad by one edge row/column
        import torch

        f = torch.nn.functional.pad(f.permute(0, 3, 1, 2), (0, w % 2, 0, h % 2), mode="replicate").permute(0, 2, 3, 1)
        h, w = h + h % 2, w + w % 2
    encode_frames(path, (x.contiguous().numpy() for x in f), width=w, height=h, fps=fps, codec="h264", crf=10)


def export(bench_path: str, out_dir: str, fmt: str, *, fps: int = 2, task: str | None = None, log=print) -> Path:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    from sf2t._names import check_safe_name, safe_name

    if task is not None:
        check_safe_name(task, "--task")
    bench = load(bench_path)
    # the default task name, from the benchmark's: made safe (the rule --task is held to), and said when that changed it
    name = task or safe_name("sf2t_" + (safe_name(bench["name"]).lower() or "benchmark"))  # (the rule's length too)
    if task is None and name != "sf2t_" + bench["name"].lower():
        log(
            f"task name {name!r}: the benchmark's name {bench['name']!r} made a safe name (it names files and goes "
            "into generated YAML / Python); --task NAME sets another"
        )
    root = bench["_root"]
    out = Path(out_dir)
    _clear_earlier_export(out)
    # what the folder holds now (new, empty, or files of yours an earlier export left): a failed or interrupted
    # export removes what it wrote, so the folder is not left without the marker (a rerun refused it then)
    made_out = not out.exists()
    before = set(out.rglob("*")) if out.is_dir() else set()
    try:
        (out / "videos").mkdir(parents=True, exist_ok=True)
        rows = []
        for q in bench["questions"]:
            frames, image = load_media(q, root)
            vpath = out / "videos" / f"{q['id']}.mp4"
            _write_video(frames, vpath, fps)
            row = {
                "id": q["id"],
                "video": str(vpath.relative_to(out)),
                "question": q["question"],
                "prompt": render_question(q),
                "options": q["options"],
                "answer_index": q["answer_index"],
                "answer": LETTERS[q["answer_index"]],
                "level": q["level"],
                "category": q["category"],
                "variant": q["variant"],
            }
            if image is not None:
                from PIL import Image

                ipath = out / "videos" / f"{q['id']}.png"
                Image.fromarray(image.numpy()).save(ipath)
                row["image"] = str(ipath.relative_to(out))
            rows.append(row)
        if fmt == "lmms-eval":
            data = out / f"{name}.jsonl"
            data.write_text("".join(json.dumps(r) + "\n" for r in rows))
            (out / "utils.py").write_text(_with_parser(_LMMS_UTILS))
            cfg = "\n".join(
                [
                    f'task: "{name}"',
                    "dataset_path: json",
                    "dataset_kwargs:",
                    "  data_files:",
                    f"    test: {json.dumps(str(data.resolve()))}",
                    "test_split: test",
                    "output_type: generate_until",
                    "doc_to_visual: !function utils.doc_to_visual",
                    "doc_to_text: !function utils.doc_to_text",
                    'doc_to_target: "answer"',
                    "generation_kwargs:",
                    "  max_new_tokens: 16",
                    "  temperature: 0",
                    "  do_sample: false",
                    "process_results: !function utils.process_results",
                    "metric_list:",
                    "  - metric: accuracy",
                    "    aggregation: mean",
                    "    higher_is_better: true",
                    "  - metric: category_accuracy",
                    "    aggregation: !function utils.aggregate_by_category",
                    "    higher_is_better: true",
                    "lmms_eval_specific_kwargs:",
                    "  default:",
                    '    pre_prompt: ""',
                    '    post_prompt: ""',
                    "metadata:",
                    "  version: 1.0",
                    f'  sf2t_format: "{bench.get("format")}"',
                    "",
                ]
            )
            path = out / f"{name}.yaml"
            path.write_text(cfg)
        else:
            k = max(len(r["options"]) for r in rows)
            path = out / f"{name}.tsv"
            with open(path, "w", newline="") as fh:
                wr = csv.writer(fh, delimiter="\t")
                wr.writerow(
                    ["index", "video", "question", *LETTERS[:k], "answer", "category", "level", "variant", "id"]
                )
                for i, r in enumerate(rows):
                    opts = r["options"] + [""] * (k - len(r["options"]))
                    wr.writerow(
                        [
                            i,
                            r["video"],
                            r["question"],
                            *opts,
                            r["answer"],
                            r["category"],
                            r["level"],
                            r["variant"],
                            r["id"],
                        ]
                    )
            (out / "sf2t_vlmevalkit.py").write_text(_with_parser(_VLMEVAL_CLASS.format(tsv=path.name, name=name)))
        written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != MARKER)
        (out / MARKER).write_text(
            json.dumps({"format": fmt, "bench": str(Path(bench_path).resolve()), "files": written})
        )
    except BaseException:
        _remove_new(out, before, made_out)
        raise
    log(f"exported {counted(len(rows), 'question')} for {fmt} as task {name!r}: {path}")
    return path


def _remove_new(out: Path, before: set[Path], made_out: bool) -> None:
    """Remove what an export wrote into ``out`` (the files and folders not in ``before``), ``out`` too if it made it."""
    new = [p for p in out.rglob("*") if p not in before] if out.is_dir() else []
    for p in new:
        if not p.is_dir():
            p.unlink(missing_ok=True)
    for d in sorted((p for p in new if p.is_dir()), key=lambda d: -len(d.parts)) + ([out] if made_out else []):
        try:
            d.rmdir()  # only when empty
        except OSError:
            pass


MARKER = ".sf2t-export.json"  # what an export wrote: a re-export into the folder replaces exactly that


def _clear_earlier_export(out: Path) -> None:
    """Make ``out`` ready for an export: new or empty, or an earlier export's folder (its files are removed, so
    none of its videos lingers next to the new index). Anything else is refused: the export would overwrite files
    of the same name (``utils.py``) or mix with them."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")
    if not out.is_dir() or not any(out.iterdir()):
        return
    marker = out / MARKER
    try:
        files = json.loads(marker.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        other = next(p.name for p in sorted(out.iterdir()))
        raise ValueError(
            f"--out {out}: a folder with other files (e.g. {other}), not an earlier sf2t finevidbench export: pass a "
            "new or empty folder"
        ) from None
    from sf2t._files import is_within

    for f in files:
        p = out / f
        if is_within(p, out) and p.is_file():  # only what lies in --out, whatever the marker says
            p.unlink()
    marker.unlink()
    for d in sorted((p for p in out.rglob("*") if p.is_dir()), key=lambda d: -len(d.parts)):
        if not any(d.iterdir()):
            d.rmdir()
