"""``sf2t eval``: score a model on a FineVidBench-style benchmark.

Modes: ``likelihood`` (each option's mean log-probability as the answer to the question with its options listed;
the best wins) and ``generate`` (greedy answer, parsed as an option letter or an option's text). Per level,
category and variant accuracy, overall, and the sensitivity to each variant (accuracy on ``original`` minus on the
variant, over the scene-level groups). Answers are appended to ``<out>.answers.jsonl`` as they come, so a crashed
run resumes where it stopped. Writes ``results.json``, ``report.md`` and a bar chart PNG next to it;
``compare`` prints two results side by side. Questions whose video files are missing, and with ``max_frames``
those that show more frames, are listed and skipped (thinning them would change their answers: a count, a span, a
speed); the coverage is reported.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Callable

import torch

from sf2t._checks import check_int, check_int_pair
from sf2t._plural import counted, none_of
from sf2t.finevidbench.choice import ANSWER_LINE, parse_choice
from sf2t.finevidbench.format import LETTERS, load

__all__ = [
    "evaluate",
    "check_out_files",
    "bench_files",
    "side_files",
    "VideoRunner",
    "QwenRunner",
    "summarize",
    "compare_text",
    "parse_choice",
    "render_question",
]


def render_question(q: dict) -> str:
    lines = [q["question"]] + [f"{LETTERS[i]}. {o}" for i, o in enumerate(q["options"])]
    return "\n".join(lines + [ANSWER_LINE])


def load_media(q: dict, root: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(frames uint8 [F, H, W, 3] in presented order, image uint8 [h, w, 3] or None)."""
    import numpy as np
    from PIL import Image

    def img(p: str) -> torch.Tensor:
        return torch.from_numpy(np.array(Image.open(Path(root) / p).convert("RGB")))

    v = q["video"]
    if "frame_images" in v:
        frames = torch.stack([img(p) for p in v["frame_images"]])
    else:
        from sf2t.video import decode_frames

        frames, _ = decode_frames(_path(v["path"], root), list(v["frames"]))
    return frames, (img(q["image"]) if q.get("image") else None)


def _path(p: str, root: str) -> str:
    return p if os.path.isabs(p) else str(Path(root) / p)


def check_askable(bench: dict) -> None:
    """A ValueError when no question of ``bench`` can be asked: every one misses a file it shows (a benchmark moved
    without its frames and videos, or built on videos since deleted)."""
    qs = bench["questions"]
    missing = [p for q in qs for p in _missing(q, bench["_root"])]
    if qs and all(_missing(q, bench["_root"]) for q in qs):
        raise ValueError(
            f"{none_of(len(qs), 'question', 'can be asked', 'cannot be asked')}: the files "
            f"{'it shows' if len(qs) == 1 else 'they show'} are missing (e.g. {missing[0]}, "
            f"looked for from {bench['_root']}): was the benchmark moved without its frames/ and videos/?"
        )


def _num_frames(q: dict) -> int:
    v = q["video"]
    return len(v["frame_images"]) if "frame_images" in v else len(v["frames"])


def _missing(q: dict, root: str) -> list[str]:
    v = q["video"]
    paths = (
        list(v.get("frame_images", [])) + ([v["path"]] if "path" in v else []) + ([q["image"]] if "image" in q else [])
    )
    return [p for p in paths if not Path(_path(p, root)).is_file()]


VIDEO_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "llava_onevision", "llava_next_video")


class VideoRunner:
    """A video LLM checkpoint of an sf2t family (Qwen2-VL, Qwen2.5-VL, LLaVA-OneVision, LLaVA-NeXT-Video), optionally
    with a LoRA adapter, answering benchmark questions on CPU or GPU."""

    def __init__(
        self,
        model_dir: str,
        adapter: str | None = None,
        *,
        device: str = "cpu",
        max_pixels: int = 224 * 224,
        frame_size: tuple[int, int] | None = None,
        layout: str = "repeat",
        token_keep_ratio: float = 1.0,
        token_stage: str = "after_tower",
        token_first_group: str = "all",
    ):
        """Qwen families: ``frame_size`` packs every frame at this (h, w) (multiples of 28) instead of Qwen's smart
        resize within ``max_pixels``; ``layout``: ``repeat`` (each frame twice: one frame per token group) or
        ``pairs`` (token group i = frames i and i+1), as the model was trained (``TrainConfig.layout``). LLaVA
        families take each frame once at their processor's size (``frame_size`` and ``pairs`` do not apply).
        ``token_keep_ratio`` < 1, ``token_stage`` and ``token_first_group``: the model compresses its video tokens as
        in training (``sf2t.models.apply_sf2t``; the text gets the kept number of placeholders)."""
        if layout not in ("repeat", "pairs"):
            raise ValueError(f"layout must be repeat or pairs, got {layout!r}")
        if frame_size is not None:
            frame_size = check_int_pair("frame_size", frame_size)
            if any(v % 28 or v <= 0 for v in frame_size):
                raise ValueError(f"frame_size must be (h, w), positive multiples of 28, got {frame_size}")
        max_pixels = check_int("max_pixels", max_pixels, min_value=1)
        if isinstance(token_keep_ratio, bool) or not 0.0 < float(token_keep_ratio) <= 1.0:
            raise ValueError(f"token_keep_ratio must be in (0, 1], got {token_keep_ratio!r}")
        if token_stage not in ("after_tower", "before_tower"):
            raise ValueError(f"token_stage must be after_tower or before_tower, got {token_stage!r}")
        if token_first_group not in ("all", "budget"):
            raise ValueError(f"token_first_group must be all or budget, got {token_first_group!r}")
        self.token_keep_ratio = float(token_keep_ratio)
        self.token_first_group = token_first_group
        self.frame_size = frame_size
        self.layout = layout
        from sf2t.models import FAMILIES
        from sf2t.models._build import load_checkpoint

        kind = checkpoint_kind(model_dir)
        if kind is None:  # sf2t's own output (an adapter, a run folder) passed as the model: what to pass instead
            from sf2t.models._build import not_a_model_hint

            hint = not_a_model_hint(model_dir)
            if hint:
                raise ValueError(f"--model {hint}")
        if kind not in VIDEO_FAMILIES:
            raise ValueError(
                f"model {model_dir!r} is {'a ' + kind if kind else 'not a recognised'} checkpoint; "
                f"sf2t eval runs the video models sf2t trains: {', '.join(VIDEO_FAMILIES)}"
            )
        family = FAMILIES[kind]
        self.qwen = family.pixel_layout == "qwen_patches"
        self.inputs = None
        config = None  # the checkpoint's config where read before the weights: the model loads with it
        if not self.qwen:
            if frame_size is not None or layout != "repeat":
                raise ValueError(
                    f"model {model_dir!r} is {kind}: it takes each frame once at its processor's size "
                    "(--frame-size and --layout pairs apply to the Qwen families)"
                )
            from transformers import AutoConfig

            from sf2t.models._build import load_processor
            from sf2t.models.context import Context
            from sf2t.models.inputs import ModelInputs

            processor = load_processor(model_dir)
            config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
            # the model's context (LLaVA-NeXT-Video: the one frame size its vision tower takes) before its weights load
            self.inputs = ModelInputs(
                family,
                processor,
                token_keep_ratio=self.token_keep_ratio,
                token_first_group=token_first_group,
                context=Context.of(config, processor),
            )
        model, self.tok = load_checkpoint(model_dir, family.model_class, config=config)
        if adapter:
            cfg = Path(adapter) / "adapter_config.json"
            if not cfg.is_file():
                from sf2t.models._build import not_an_adapter_hint

                raise FileNotFoundError(
                    f"adapter {adapter!r} is not a LoRA adapter directory (no adapter_config.json)"
                    + not_an_adapter_hint(adapter)
                )
            from sf2t.models._build import load_adapter

            model = load_adapter(model, adapter, model_dir)
        from sf2t.train.loop import apply_compression

        self.model = apply_compression(model.to(device).eval(), self.token_keep_ratio, token_stage, token_first_group)
        self.device = device
        self.max_pixels = max_pixels
        from sf2t.models.context import Context

        self.context = Context.of(self.model.config, self.tok)

    def _sample(self, q: dict, frames: torch.Tensor, image, answer: str | None, extra: int = 0) -> dict:
        """The model inputs of question ``q`` with ``answer`` (None: the prompt, ``extra`` tokens to be generated),
        checked against the model's context: a ValueError naming the question otherwise."""
        s = self._build(q, frames, image, answer)
        lower = (
            "--max-pixels or --frame-size, or skip long questions with --max-frames"
            if self.qwen
            else "--token-keep-ratio, or skip long questions with --max-frames"
        )
        self.context.check(s, f"question {q.get('id')!r} ({frames.shape[0]} frames)", lower, extra)
        return s

    def _build(self, q: dict, frames: torch.Tensor, image, answer: str | None) -> dict:
        if not self.qwen:  # LLaVA families: the processor's frame size and mean / std, the image's anyres tiles
            vision = self.inputs.video(frames, torch.arange(frames.shape[0]), None)
            s, image_tokens = {}, None
            if image is not None:
                s, image_tokens = self.inputs.image(image)
            s.update(vision)
            return s | self.inputs.text(self.tok, render_question(q), answer, vision, image_tokens=image_tokens)
        from sf2t.models.qwen2_vl import build_video_sample
        from sf2t.ops.fragment_pack import fragment_pack, qwen2_vl_target_size

        h, w = int(frames.shape[1]), int(frames.shape[2])
        size = self.frame_size or qwen2_vl_target_size(h, w, min_pixels=28 * 28, max_pixels=self.max_pixels)
        index, repeat = torch.arange(frames.shape[0]), 2
        if self.layout == "pairs" and index.numel() >= 2:
            from sf2t.train.data import pair_layout_index

            index, repeat = pair_layout_index(index.numel()), 1
        pixels, grid = fragment_pack(frames, index, None, size, frame_repeat=repeat)
        ipix = igrid = None
        if image is not None:
            isz = self.frame_size or qwen2_vl_target_size(
                int(image.shape[0]), int(image.shape[1]), min_pixels=28 * 28, max_pixels=self.max_pixels
            )
            ipix, igrid = fragment_pack(image[None], torch.zeros(1, dtype=torch.long), None, isz, frame_repeat=2)
        s = build_video_sample(
            self.tok,
            render_question(q),
            answer,
            grid,
            image_grid_thw=igrid,
            token_keep_ratio=self.token_keep_ratio,
            token_first_group=self.token_first_group,
        )
        s["pixel_values_videos"], s["video_grid_thw"] = pixels, grid
        if ipix is not None:
            s["pixel_values"], s["image_grid_thw"] = ipix, igrid
        return s

    @torch.no_grad()
    def likelihood(self, q: dict, frames: torch.Tensor, image) -> list[float]:
        """Mean log-probability of each option's tokens (and the turn's end) as the answer."""
        return self.likelihood_batch([(q, frames, image)])[0]

    @torch.no_grad()
    def likelihood_batch(self, items) -> list[list[float]]:
        """:meth:`likelihood` of several questions ``[(q, frames, image), ...]`` in one forward pass."""
        from sf2t.models.qwen2_vl import collate

        samples, sizes = [], []
        for q, frames, image in items:
            samples += [self._sample(q, frames, image, o) for o in q["options"]]
            sizes.append(len(q["options"]))
        if self.qwen:
            chunks = [collate(samples, self.tok.pad_token_id) | {"rows": list(range(len(samples)))}]
        else:  # one forward per video shape (the LLaVA models take [B, F, 3, H, W])
            chunks = self.inputs.collate(samples, self.tok.pad_token_id)
        scores = [0.0] * len(samples)
        for batch in chunks:
            rows = batch.pop("rows")
            labels = batch.pop("labels").to(self.device)
            inputs = {k: v.to(self.device) for k, v in batch.items() if isinstance(v, torch.Tensor)}
            logits = self.model(**inputs).logits[:, :-1].float()
            target = labels[:, 1:]
            logp = torch.log_softmax(logits, -1).gather(-1, target.clamp_min(0)[..., None])[..., 0]
            mask = (target != -100).float()
            for r, v in zip(rows, ((logp * mask).sum(1) / mask.sum(1).clamp_min(1)).tolist()):
                scores[r] = v
        out, k = [], 0
        for n in sizes:
            out.append(scores[k : k + n])
            k += n
        return out

    def generate(self, q: dict, frames: torch.Tensor, image, max_new_tokens: int | None = None) -> str:
        """The greedy answer. ``max_new_tokens`` (default): room for the question's longest option and a few more
        tokens (a letter, a period): a fixed 8 cut long options ("4, 5, 2, 3, 1") short, so they never matched."""
        from sf2t.train.evaluate import generate_answer

        if max_new_tokens is None:
            longest = max(len(self.tok(o, add_special_tokens=False)["input_ids"]) for o in q["options"])
            max_new_tokens = longest + 4
        s = self._sample(q, frames, image, None, extra=max_new_tokens)
        return generate_answer(self.model, self.tok, s, max_new_tokens=max_new_tokens, device=self.device)


QwenRunner = VideoRunner  # its name when it ran the Qwen families only


def checkpoint_kind(model_dir: str) -> str | None:
    """The ``model_type`` in a local checkpoint's config.json (None when there is none); a clear error for a path
    that is not a folder or a config that is not JSON."""
    if not Path(model_dir).is_dir():
        from sf2t._files import hub_download_hint, looks_like_hub_id

        hint = (
            f"; sf2t loads checkpoints offline: {hub_download_hint(model_dir, '--model ')}"
            if looks_like_hub_id(model_dir)
            else ""
        )
        raise FileNotFoundError(f"model {model_dir!r} is not a local checkpoint directory{hint}")
    cfg_file = Path(model_dir) / "config.json"
    try:
        return json.loads(cfg_file.read_text()).get("model_type") if cfg_file.is_file() else None
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as e:
        raise ValueError(f"model {model_dir!r}: config.json is not a JSON object ({e})") from None


_SETTING_KEY = "sf2t_eval_setting"  # the answers file's first line: what made its answers


def _read_answers(path: Path, log) -> tuple[dict[str, dict], dict | None]:
    """The answers a previous run of the same ``--out`` saved (it resumes after them), and the setting line that
    says what made them (None in a file without one). A crash while a line was being written leaves it cut short:
    that last line is dropped (its question is asked again); a bad line before it is an error naming the line."""
    done: dict[str, dict] = {}
    setting = None
    if not path.is_file():
        return done, setting
    text = path.read_text()
    lines = [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    good = []
    for k, (i, line) in enumerate(lines):
        try:
            rec = json.loads(line)
            if k == 0 and isinstance(rec, dict) and isinstance(rec.get(_SETTING_KEY), dict):
                setting = rec[_SETTING_KEY]
                good.append(line)
                continue
            if not isinstance(rec, dict) or "id" not in rec:
                raise ValueError("not an answer record")
        except ValueError as e:
            if k == len(lines) - 1:
                log(f"{path}:{i}: a cut-short last answer (a crash while writing it): dropped, asked again")
                break
            raise ValueError(f"{path}:{i}: not an sf2t eval answer line ({e}); remove the file to start over") from None
        done[rec["id"]] = rec
        good.append(line)
    if len(good) != len(lines) or (text and not text.endswith("\n")):  # new answers must start on a line of their own
        from sf2t._files import write_text_atomic

        write_text_atomic(path, "".join(line + "\n" for line in good), "answers")
    return done, setting


def bench_digest(bench: dict) -> str:
    """A fingerprint of a benchmark's questions (what is asked, shown and counted right): answers made for another
    benchmark, or for this one rebuilt, are not reused."""
    import hashlib

    qs = json.dumps(bench["questions"], sort_keys=True, default=str).encode()
    return hashlib.sha256(qs).hexdigest()[:16]


def checkpoint_fingerprint(path: str | os.PathLike | None) -> dict | None:
    """Where a checkpoint or adapter folder is, and the size and time of its weight files: answers made by another
    model, or by this folder retrained, are not reused."""
    if path is None:
        return None
    p = Path(path).resolve()
    files = sorted(f for f in p.glob("*") if f.suffix in (".safetensors", ".bin", ".pt") and f.is_file())
    return {"path": str(p), "weights": [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]}


def _setting_changes(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def side_files(out_path: str | os.PathLike, compare: bool = False) -> dict[str, Path]:
    """The files ``sf2t eval --out F`` writes next to F: ``answers`` (``F.answers.jsonl``, resumed from), ``report``
    (``.report.md``), ``chart`` (``.png``) and with ``--compare`` ``compare`` (the side-by-side table,
    ``.compare.md``)."""
    out = Path(out_path)
    files = {"answers": out.with_suffix(".answers.jsonl"), "report": out.with_name(out.stem + ".report.md")}
    files["chart"] = out.with_name(out.stem + ".png")
    return {**files, "compare": out.with_name(out.stem + ".compare.md")} if compare else files


def _is_results(path: Path) -> bool:
    """Whether ``path`` holds an ``sf2t eval`` results JSON (a mapping with a ``table``, as :func:`evaluate` writes)."""
    try:
        res = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    return isinstance(res, dict) and isinstance(res.get("table"), dict)


def check_out_files(out_path: str | os.PathLike, inputs=(), compare: bool = False) -> None:
    """The rule ``--out`` follows (:func:`sf2t._files.check_out_file`: never a folder, one of the command's
    ``inputs``, or a file that is not what would be written), for ``--out`` and each of its :func:`side_files`: a
    ValueError naming the file, checked before the model loads (a folder there was a traceback once every question
    was answered; ``--compare F --out F`` replaced the results compared with)."""
    from sf2t._files import InputFiles, check_out_file, check_replaceable

    inputs = InputFiles(inputs)  # resolved once for the five checks (a benchmark's frames: tens of thousands)
    check_out_file(out_path, "--out", inputs=inputs, text=True)
    if os.path.isfile(out_path) and os.path.getsize(out_path) and not _is_results(Path(out_path)):
        raise ValueError(  # a text file of another kind (a manifest, notes, a config) was replaced
            f"--out {os.fspath(out_path)}: exists and is not an sf2t eval results file (JSON with a 'table'); writing "
            "it would destroy it: pass another --out, or remove it first"
        )
    for f in side_files(out_path, compare).values():  # in --out's folder: checked above that it takes files
        where = f"--out {os.fspath(out_path)}: {f} (written next to it)"
        check_replaceable(f, where, inputs, "png" if f.suffix == ".png" else "text", "pass another --out")


def bench_files(bench: dict) -> list[str]:
    """The files of a loaded benchmark that an evaluation's outputs must never replace: those its questions show
    (frame images, videos: every file its build wrote next to it is one of them, or the ground truth of one) and the
    synthetic ground truth the build read, where it is there: the ``.json`` next to a video a question shows (a
    synthetic clip's) or names as its ``meta.source``, and each file the benchmark's ``ground_truth`` lists (a
    manifest video's, also of a clip whose scene questions balancing left out, which no question names), from the
    benchmark's own folder (``_root``: ``--bench`` may be a link to it from another folder)."""
    root = bench["_root"]
    files: set[str] = set()
    truths: set[str] = {_path(t, root) for t in bench.get("ground_truth", [])}
    for q in bench["questions"]:
        v = q["video"]
        files.update(_path(p, root) for p in [*v.get("frame_images", []), v.get("path"), q.get("image")] if p)
        # as build reads it; meta.source too: a benchmark built before ground_truth was recorded named a manifest
        # video's only there when its fragment questions show built frames
        source = (q.get("meta") or {}).get("source")
        for p in (v.get("path"), source if isinstance(source, str) else None):
            if p:
                truths.add(str(Path(_path(p, root)).with_suffix(".json")))
    return sorted(files | {t for t in truths if os.path.isfile(t)})


def evaluate(
    bench_path: str,
    out_path: str,
    *,
    runner: QwenRunner | None = None,
    predictor: Callable[[dict, torch.Tensor, torch.Tensor | None], tuple[int | None, dict]] | None = None,
    mode: str = "likelihood",
    max_frames: int | None = None,
    batch_size: int = 4,
    log=print,
    setting: dict | None = None,
) -> dict:
    """Answer every question of the benchmark (resuming from ``<out>.answers.jsonl``) and write the results.
    ``predictor(q, frames, image) -> (option index or None, extra)`` replaces the model (tests, oracles).
    ``setting``: what else makes the answers (model, adapter, frame size, ...: :func:`checkpoint_fingerprint`); it is
    recorded with the answers with the benchmark's fingerprint and the mode, and a resume under another setting is
    refused (it would mix two models' answers)."""
    if mode not in ("likelihood", "generate"):
        raise ValueError(f"mode must be likelihood or generate, got {mode!r}")
    if runner is None and predictor is None:
        raise ValueError("give a runner (a model) or a predictor")
    if max_frames is not None:
        max_frames = check_int("max_frames", max_frames, min_value=1)
    batch_size = check_int("batch_size", batch_size, min_value=1)
    from sf2t._files import write_text_atomic

    bench = load(bench_path)
    root = bench["_root"]
    out = Path(out_path)
    check_out_files(out_path, inputs=[bench_path, *bench_files(bench)])  # as the command: no input replaced
    out.parent.mkdir(parents=True, exist_ok=True)
    answers_path = side_files(out)["answers"]
    done, made_by = _read_answers(answers_path, log)
    now = {"benchmark": bench_digest(bench), "mode": mode if predictor is None else "predictor", **(setting or {})}
    now = json.loads(json.dumps(now, default=str))  # as the file holds it (tuples as lists)
    if made_by is not None and made_by != now:
        raise ValueError(
            f"--out {out_path}: its answers ({answers_path.name}) were made by another setting ("
            + "; ".join(_setting_changes(made_by, now))
            + "): pass another --out, or remove the answers file to start over"
        )
    if made_by is None and done:
        log(
            f"{answers_path}: {counted(len(done), 'answer')} from an sf2t that did not record what made them: reused "
            "as they are (remove the file if they are another model's)"
        )
    missing = {q["id"]: _missing(q, root) for q in bench["questions"]}
    missing = {k: v for k, v in missing.items() if v}
    if missing:
        files = sorted({p for v in missing.values() for p in v})
        more = " ..." if len(files) > 5 else ""
        log(f"{counted(len(missing), 'question')} skipped: missing {counted(len(files), 'file')} {files[:5]}{more}")
    too_long = {}
    if max_frames is not None:
        too_long = {q["id"]: n for q in bench["questions"] if (n := _num_frames(q)) > max_frames}
        if too_long:
            log(
                f"{counted(len(too_long), 'question')} skipped: {'it shows' if len(too_long) == 1 else 'they show'} "
                f"more than {max_frames} frames (up to "
                f"{max(too_long.values())}), and fewer frames would change their answers"
            )
        if len(too_long) == len(bench["questions"]):
            raise ValueError(
                f"max_frames {max_frames}: every question shows more frames (the fewest: {min(too_long.values())})"
            )
    # not asked now, nor counted if an earlier run answered them (before their files went missing, or without a cap)
    skipped = missing.keys() | too_long.keys()
    done = {k: v for k, v in done.items() if k not in skipped}
    todo = [q for q in bench["questions"] if q["id"] not in done and q["id"] not in skipped]
    from sf2t._progress import progress_bar

    step = batch_size if (predictor is None and mode == "likelihood") else 1
    bar = progress_bar(total=len(todo), auto=True, desc="eval", leave=False, disable=len(todo) < 20)
    with open(answers_path, "a") as fh:
        if fh.tell() == 0:  # a new file: first, what makes its answers
            fh.write(json.dumps({_SETTING_KEY: now}) + "\n")
        for b0 in range(0, len(todo), step):
            chunk = []
            for q in todo[b0 : b0 + step]:
                frames, image = load_media(q, root)
                chunk.append((q, frames, image))
            if predictor is not None:
                results = [predictor(q, f, i) for q, f, i in chunk]
            elif mode == "likelihood":  # the chunk's questions in one forward pass
                results = [
                    (max(range(len(sc)), key=lambda i, sc=sc: sc[i]), {"scores": sc})
                    for sc in runner.likelihood_batch(chunk)
                ]
            else:
                results = []
                for q, f, i in chunk:
                    text = runner.generate(q, f, i)
                    results.append((parse_choice(text, q["options"]), {"text": text}))
            for (q, _, _), (pred, extra) in zip(chunk, results):
                rec = {"id": q["id"], "pred": pred, "correct": pred == q["answer_index"], **extra}
                fh.write(json.dumps(rec) + "\n")
                done[q["id"]] = rec
            fh.flush()  # a crash loses at most the chunk in flight
            bar.update(len(chunk))
    bar.close()
    if not done:
        check_askable(bench)  # (called without the command's precheck)
    res = summarize(bench, done, missing, too_long)
    res["mode"] = mode if predictor is None else "predictor"
    res["setting"] = now
    write_text_atomic(out, json.dumps(_json_safe(res), indent=1, allow_nan=False), "--out")
    write_report(res, out)
    log(
        f"accuracy {res['overall']['accuracy']:.3f} on {counted(res['overall']['n'], 'question')} "
        f"(coverage {res['coverage']:.0%}); {out}"
    )
    return res


def _json_safe(v):
    """``v`` with NaN / infinite floats as null: strict JSON readers refuse a bare NaN (an accuracy over 0
    questions)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(x) for x in v]
    return v


def _acc(recs: list[dict]) -> dict:
    n = len(recs)
    c = sum(bool(r["correct"]) for r in recs)
    return {"n": n, "correct": c, "accuracy": c / n if n else float("nan")}


def summarize(bench: dict, answers: dict[str, dict], missing: dict | None = None, too_long: dict | None = None) -> dict:
    """Accuracy per level, category, variant and cell, sensitivity, and coverage (questions not skipped for
    ``missing`` files or for showing more frames than asked, ``too_long``)."""
    by = defaultdict(list)
    chance = defaultdict(list)
    qs = {q["id"]: q for q in bench["questions"]}
    for qid, rec in answers.items():
        q = qs.get(qid)
        if q is None:
            continue
        rec = {**rec, "level": q["level"], "category": q["category"], "variant": q["variant"]}
        for key in (
            "overall",
            f"level/{q['level']}",
            f"category/{q['level']}/{q['category']}",
            f"variant/{q['variant']}",
        ):
            by[key].append(rec)
            chance[key].append(1.0 / len(q["options"]))
        by[f"cell/{q['level']}/{q['category']}/{q['variant']}"].append(rec)
    table = {k: {**_acc(v), "chance": sum(chance[k]) / len(chance[k]) if chance[k] else None} for k, v in by.items()}
    # sensitivity: over scene groups answered in the original and the variant
    groups = defaultdict(dict)
    for qid, rec in answers.items():
        q = qs.get(qid)
        if q and q["level"] == "scene" and q.get("group"):
            groups[q["group"]][q["variant"]] = bool(rec["correct"])
    sens = {}
    for v in ("speed_0.5x", "speed_2x", "reversed", "shuffled"):
        pairs = [(g["original"], g[v]) for g in groups.values() if "original" in g and v in g]
        if pairs:
            sens[v] = {"n": len(pairs), "drop": (sum(a for a, _ in pairs) - sum(b for _, b in pairs)) / len(pairs)}
    total = len(bench["questions"])
    return {
        "benchmark": bench["name"],
        "overall": table.get("overall", _acc([])),
        "table": table,
        "sensitivity": sens,
        "coverage": (total - len(set(missing or {}) | set(too_long or {}))) / total if total else 0.0,
        "missing": sorted(missing or {}),
        "too_many_frames": sorted(too_long or {}),
    }


def write_report(res: dict, out: Path) -> None:
    rows = sorted(k for k in res["table"] if k.startswith("category/"))
    lines = [
        f"# {res['benchmark']}: results ({res.get('mode', '')})",
        "",
        f"Overall accuracy {res['overall']['accuracy']:.3f} on {counted(res['overall']['n'], 'question')}; coverage "
        f"{res['coverage']:.0%}"
        + "".join(
            f"; {len(res.get(k) or [])} skipped for {why}"
            for k, why in (("missing", "missing files"), ("too_many_frames", "more frames than --max-frames"))
            if res.get(k)
        )
        + ".",
        "",
        "| level / category | n | accuracy | chance |",
        "|---|---|---|---|",
    ]
    for k in rows:
        r = res["table"][k]
        lines.append(f"| {k.split('/', 1)[1]} | {r['n']} | {r['accuracy']:.3f} | {r['chance']:.3f} |")
    lines += ["", "| variant | n | accuracy |", "|---|---|---|"]
    for k in sorted(x for x in res["table"] if x.startswith("variant/")):
        r = res["table"][k]
        lines.append(f"| {k.split('/', 1)[1]} | {r['n']} | {r['accuracy']:.3f} |")
    if res["sensitivity"]:
        lines += ["", "Sensitivity (scene level: accuracy on original minus on the variant, same questions):", ""]
        lines += ["| variant | groups | drop |", "|---|---|---|"]
        for v, s in res["sensitivity"].items():
            lines.append(f"| {v} | {s['n']} | {s['drop']:+.3f} |")
    side_files(out)["report"].write_text("\n".join(lines) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = [k.split("/", 1)[1] for k in rows]
        vals = [res["table"][k]["accuracy"] for k in rows]
        ch = [res["table"][k]["chance"] for k in rows]
        fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(names) + 2), 3.5))
        ax.bar(range(len(names)), vals, color="#4c72b0", label="accuracy")
        ax.scatter(range(len(names)), ch, color="#dd8452", marker="_", s=300, label="chance", zorder=3)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
        ax.set_title(res["benchmark"], fontsize=9)
        fig.tight_layout()
        fig.savefig(side_files(out)["chart"], dpi=100)
        plt.close(fig)
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        pass


def compare_text(a: dict, b: dict, names: tuple[str, str] = ("A", "B")) -> str:
    """A side-by-side table of two results (per category, per variant, overall)."""
    keys = sorted(k for k in set(a["table"]) | set(b["table"]) if k.startswith(("category/", "variant/")))
    lines = [f"| | {names[0]} | {names[1]} | diff |", "|---|---|---|---|"]

    def cell(res, k):
        r = res["table"].get(k)
        return r["accuracy"] if r and r["n"] else math.nan

    for k in keys + ["overall"]:
        x, y = cell(a, k), cell(b, k)
        lines.append(f"| {k} | {x:.3f} | {y:.3f} | {y - x:+.3f} |")
    lines.append(
        f"| questions answered (coverage) | {a['overall']['n']} ({a.get('coverage', math.nan):.0%}) | "
        f"{b['overall']['n']} ({b.get('coverage', math.nan):.0%}) | |"
    )
    da, db = (r.get("setting", {}).get("benchmark") for r in (a, b))
    if da and db and da != db:  # recorded since results carry their setting
        lines += ["", f"Note: {names[0]} and {names[1]} are results of different benchmarks (or of one rebuilt)."]
    elif a["overall"]["n"] != b["overall"]["n"]:
        lines += ["", f"Note: {names[0]} and {names[1]} answered different numbers of questions."]
    return "\n".join(lines)
