"""sf2t.train: config, schedule, the data path (video -> task -> pack -> tokens), skips with reasons, a smoke
training whose loss falls (full fine-tuning and LoRA), saving/loading, evaluation."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pytest
import torch

from sf2t.train.config import TrainConfig, apply_overrides, config_help, load_config
from sf2t.train.loop import lr_at
from tests.video.media import folder_with_build_stage

synth = pytest.importorskip("sf2t.synth")
pytest.importorskip("av")
pytest.importorskip("transformers")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny(tiny_qwen2_vl):
    return str(tiny_qwen2_vl)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    kw = dict(width=64, height=64, seconds=1.2, num_sprites=1, camera_pan=False, events=False)
    good = [c["path"] for c in synth.make_clips(root / "good", 3, seed=100, **kw)]
    bad = {
        "static": synth.make_clip(root / "static.mp4", 5, static=True, **{**kw, "seconds": 1.0})["path"],
        "short": synth.make_clip(root / "short.mp4", 6, **{**kw, "seconds": 0.12})["path"],  # 3 frames
        "missing": str(root / "missing.mp4"),
        "empty": str(root / "empty.mp4"),
        "noise": str(root / "noise.mp4"),
    }
    (root / "empty.mp4").write_bytes(b"")
    (root / "noise.mp4").write_bytes(bytes(range(256)) * 16)
    return good, bad


def _cfg(tiny, clips, tmp_path, **kw):
    good, _ = clips
    base = dict(
        model=tiny,
        videos=good,
        eval_videos=good,
        out_dir=str(tmp_path / "run"),
        steps=30,
        batch_size=4,
        lr=2e-3,
        warmup_steps=5,
        lora=False,
        full_finetune=True,
        progress=False,
        log_every=0,
        seed=0,
    )
    base.update(kw)
    return TrainConfig(**base)


# -- config and schedule


def test_config_overrides_and_yaml(tmp_path):
    cfg = apply_overrides(
        TrainConfig(),
        [
            "full_finetune=true",
            "lora=false",
            "disorder.perm=strong",
            "lr=3e-4",
            "tasks=[disorder]",
            "frame_size=[112, 84]",
        ],
    )
    assert cfg.full_finetune and not cfg.lora and cfg.disorder.perm == "strong" and cfg.lr == 3e-4
    assert cfg.tasks == ["disorder"] and cfg.frame_size == [112, 84]
    assert TrainConfig().disorder.perm == "any"  # defaults untouched
    path = tmp_path / "c.yaml"
    path.write_text("steps: 7\ncounting:\n  count_max: 9\nlora: false\nfull_finetune: true\n")
    cfg = load_config(path, ["batch_size=2"])
    assert (cfg.steps, cfg.counting.count_max, cfg.batch_size) == (7, 9, 2)
    with pytest.raises(ValueError, match="no field"):
        apply_overrides(TrainConfig(), ["nope=1"])
    with pytest.raises(ValueError, match="no field 'out'; did you mean 'out_dir'"):  # a prefix wins over spelling
        apply_overrides(TrainConfig(), ["out=run"])
    with pytest.raises(ValueError, match="no field 'stepz'; did you mean 'steps'"):
        apply_overrides(TrainConfig(), ["stepz=3"])
    with pytest.raises(ValueError, match="no field 'count_maxx'; did you mean 'count_max'"):
        apply_overrides(TrainConfig(), ["counting.count_maxx=3"])
    with pytest.raises(ValueError, match="exclusive"):
        TrainConfig(full_finetune=True)
    with pytest.raises(ValueError, match="multiples of 28"):
        TrainConfig(frame_size=[50, 56])
    assert "disorder.p_shuffle" in config_help()


def test_cli_train_frame_size_above_qwen2_vl_max_pixels_is_refused(capsys):
    """``sf2t train frame_size=[28000,28000]``: more pixels a frame than Qwen2-VL's processors make (the checkpoints'
    max_pixels, 12,845,056) is refused with the numbers and the largest size of that aspect ratio (it was accepted, to
    run out of memory); the largest sizes within it, and 4K frames, are accepted."""
    from sf2t import cli
    from sf2t.train.config import TrainConfig

    assert cli.main(["train", "frame_size=[28000,28000]", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert "frame_size [28000, 28000]: frames too large for Qwen2-VL: 784,000,000 pixels a frame" in err
    assert "max_pixels 28*28*16384 = 12,845,056" in err and "Traceback" not in err
    assert "use frame_size=[3584, 3584] (the largest square: 3584 x 3584)" in err
    with pytest.raises(ValueError, match=r"12,945,408 pixels a frame.*use frame_size=\[3584, 3556\]"):
        TrainConfig(frame_size=[3612, 3584])
    with pytest.raises(ValueError, match=r"\(as multiples of 28: 2996 x 5992\).*use frame_size=\[2520, 5068\]"):
        TrainConfig(frame_size=[3000, 6000])
    assert TrainConfig(frame_size=[3584, 3584]).frame_size == [3584, 3584]
    assert TrainConfig(frame_size=[2156, 3836]).frame_size == [2156, 3836]  # 4K, as multiples of 28


def test_cli_train_frame_size_not_a_multiple_of_28_says_the_nearest(capsys):
    """``sf2t train frame_size=[50,450]``: the error gives the rule's reason and the nearest frame_size to use, in the
    override's own terms (it said only "positive multiples of 28")."""
    from sf2t import cli

    assert cli.main(["train", "frame_size=[50,450]", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert "frame_size [50, 450]: H and W must be positive multiples of 28 for Qwen2-VL (patch 14 x merge 2)" in err
    assert err.rstrip().endswith("use frame_size=[56, 448]") and "Traceback" not in err


def test_config_bad_files_and_values_name_the_problem(tmp_path):
    """A config file that is missing, a folder, binary, not YAML or not a mapping, and override values of the wrong
    kind: a ValueError naming the file or the field, never a YAML traceback or a silent truncation."""
    bad = {
        "broken.yaml": (": : :\n\t- x", r"broken\.yaml: not valid YAML: .*line 1, column 1"),
        "list.yaml": ("- a\n- b\n", r"list\.yaml: expected a mapping .* got a list"),
        "number.yaml": ("7\n", r"number\.yaml: expected a mapping .* got a int"),
    }
    for name, (text, msg) in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=msg):
            load_config(tmp_path / name)
    (tmp_path / "bin.yaml").write_bytes(b"\x00\x00\x00\x18ftypmp42\xff\xfe\x80")
    with pytest.raises(ValueError, match=r"bin\.yaml: not a text file"):
        load_config(tmp_path / "bin.yaml")
    with pytest.raises(ValueError, match=r"missing\.yaml: no such file"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="is a folder"):
        load_config(tmp_path)
    (tmp_path / "empty.yaml").write_text("")
    assert load_config(tmp_path / "empty.yaml") == TrainConfig()
    for item, msg in [
        ("steps=1.5", "steps: expected a whole number, got 1.5"),
        ("steps=true", "steps: expected a whole number, got True"),
        ("lr=abc", "lr: expected a number, got 'abc'"),
        ("lr=false", "lr: expected a number"),
        ("lr=[1,2", r"lr: cannot read '\[1,2' as a value"),
        ("counting.count_max=2.5", "counting: count_max: expected a whole number"),
        # int()'s and float()'s complaints about their argument, naming no field (or not the task) before
        ("batch_size=null", "batch_size: expected a whole number, got None"),
        ("lr=[1,2]", r"lr: expected a number, got \[1, 2\]"),
        ("steps=1e400", "steps: expected a whole number, got inf"),
        ("counting.count_min=null", "counting: count_min: expected a whole number, got None"),
        ("frame_size=[56,x]", r"TrainConfig.frame_size must be \(h, w\), positive multiples of 28, got \[56, 'x'\]"),
    ]:
        with pytest.raises(ValueError, match=msg):
            apply_overrides(TrainConfig(), [item])
    assert apply_overrides(TrainConfig(), ["steps=3.0"]).steps == 3  # a whole float is fine
    assert apply_overrides(TrainConfig(), ["steps=1e3"]).steps == 1000  # YAML 1.1 reads "1e3" as a string


@pytest.mark.parametrize(
    "override, words",
    [
        (
            "task_videos={counting: evclips}",
            "task_videos.counting must be a list of paths or path prefixes, got 'evclips'",
        ),
        (
            "task_videos={countng: [a]}",
            "task_videos: unknown task 'countng' (did you mean 'counting'?); valid: counting,",
        ),
        (
            "task_videos={counting speed: [a]}",
            "task_videos: 'counting speed' is not one task name; valid: consistency,",
        ),
        ("task_videos={speed: [a]}", "task_videos: 'speed' is not among tasks ['counting', 'disorder']"),
        ("task_videos=[a]", "task_videos must be a mapping from task to a list of paths"),
        ("task_videos={counting: []}", "task_videos.counting is empty"),
        ("task_videos={counting: [a, 5]}", "task_videos.counting[1] must be a path (a string), got 5"),
    ],
)
def test_config_task_videos_is_checked(override, words):
    """task_videos maps tasks of the run to lists of paths: a string (once read one prefix per character), an unknown
    or unselected task (once ignored) and a list (once an AttributeError traceback) are named when the config is
    made."""
    with pytest.raises(ValueError, match=re.escape(words)):
        apply_overrides(TrainConfig(), [override])
    assert apply_overrides(TrainConfig(), ["task_videos={counting: [a, b/]}"]).task_videos == {"counting": ["a", "b/"]}


@pytest.mark.parametrize(
    "override, words",
    [
        ("tasks=[countin]", "TrainConfig.tasks: unknown task 'countin' (did you mean 'counting'?); valid: counting, "),
        (
            "tasks=[countng, nope]",
            "TrainConfig.tasks: unknown tasks 'countng' (did you mean 'counting'?), 'nope'; valid: ",
        ),
        (
            "curriculum_tasks=[disordr]",
            "TrainConfig.curriculum_tasks: unknown task 'disordr' (did you mean 'disorder'?); valid: counting, ",
        ),
    ],
)
def test_config_unknown_tasks_are_counted(override, words):
    """One unknown task is "unknown task", two "unknown tasks" (it was "unknown task(s)": sf2t._plural.noun_for),
    each with the name it most likely meant, in --tasks' words elsewhere (sf2t.tasks.task_names; it had no hint), and
    curriculum_tasks' named as curriculum_tasks' (they were said as TrainConfig.tasks')."""
    with pytest.raises(ValueError, match=re.escape(words)):
        apply_overrides(TrainConfig(), [override, "curriculum_steps=2"])


def test_cli_train_unknown_task_gets_the_did_you_mean_hint(capsys):
    """`sf2t train tasks=countin`: one line naming the field, the name it most likely meant and the valid names (as
    --tasks gets elsewhere), exit 2, no traceback."""
    from sf2t import cli

    assert cli.main(["train", "tasks=countin", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert "tasks: unknown task 'countin' (did you mean 'counting'?); valid: counting, consistency, " in err, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "overrides, tasks, curriculum",
    [
        (["tasks=counting,disorder"], ["counting", "disorder"], ["counting"]),
        (["tasks=counting, speed"], ["counting", "speed"], ["counting"]),
        (["tasks=counting speed"], ["counting", "speed"], ["counting"]),
        (["tasks=[counting,disorder]"], ["counting", "disorder"], ["counting"]),
        (["tasks=['counting', 'speed']"], ["counting", "speed"], ["counting"]),
        (
            ["tasks=counting,disorder", "curriculum_tasks=disorder,counting", "curriculum_steps=2"],
            ["counting", "disorder"],
            ["disorder", "counting"],
        ),
    ],
)
def test_config_task_lists_take_the_comma_form(overrides, tasks, curriculum, tmp_path):
    """``tasks=counting,disorder`` is two tasks, as ``--tasks counting,disorder`` is for sf2t tasks export,
    finevidbench build and throughput (it was one unknown task 'counting,disorder'); so is curriculum_tasks, from
    the command line and from a YAML file; videos, which may be paths, are not split."""
    cfg = apply_overrides(TrainConfig(), overrides)
    assert (cfg.tasks, cfg.curriculum_tasks) == (tasks, curriculum)
    path = tmp_path / "c.yaml"
    path.write_text("tasks: counting,speed\ncurriculum_tasks: speed\ncurriculum_steps: 1\nvideos: a,b.mp4\n")
    cfg = load_config(path)
    assert (cfg.tasks, cfg.curriculum_tasks, cfg.videos) == (["counting", "speed"], ["speed"], ["a,b.mp4"])
    assert apply_overrides(TrainConfig(), ["videos=a,b.mp4"]).videos == ["a,b.mp4"]


@pytest.mark.parametrize(
    "kwargs, key",
    [
        (dict(tasks=["counting,disorder"]), "tasks"),
        (dict(curriculum_tasks=["counting disorder"], curriculum_steps=1), "curriculum_tasks"),
    ],
)
def test_config_built_in_python_wants_one_task_name_per_item(kwargs, key):
    """TrainConfig(tasks=["counting,disorder"]) in Python (not split as the YAML / CLI reading splits it): a
    ValueError naming the field and the names meant (it was AttributeError "no attribute 'counting,disorder'")."""
    with pytest.raises(ValueError, match=rf"TrainConfig\.{key} must hold one task name per item") as e:
        TrainConfig(**kwargs)
    assert "['counting', 'disorder']" in str(e.value)


@pytest.mark.parametrize("override", ["tasks=,", "tasks=[,]", "curriculum_tasks=,"])
def test_cli_train_task_list_of_separators_names_the_field(override, capsys):
    """``sf2t train tasks=,`` / ``tasks=[,]``: a message that names the field and how to write it (it was YAML's
    "while parsing a flow node expected the node content, but found ','")."""
    from sf2t import cli

    assert cli.main(["train", override, "curriculum_steps=1", "--print-config"]) == 2
    err = capsys.readouterr().err
    field = override.split("=")[0]
    assert f"sf2t train: {field}: {override.split('=', 1)[1]!r} names no task; name one or more of counting" in err
    assert "as counting,disorder or [counting, disorder]" in err
    assert "parsing" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    "override, got",
    [
        ("tasks={a: b}", "a mapping {'a': 'b'}"),
        ("tasks={counting: 1}", "a mapping {'counting': 1}"),
        ("tasks=3", "a number 3"),
        ("tasks=true", "a true/false value True"),
        ("tasks=[counting, [disorder]]", "a list ['disorder'] among them (['counting', ['disorder']])"),
        ("tasks=[counting, null]", "null among them (['counting', None])"),
        ("tasks=[counting, true]", "a true/false value True among them (['counting', True])"),
        ("tasks=[counting, 3]", "a number 3 among them (['counting', 3])"),
        ("curriculum_tasks={a: b}", "a mapping {'a': 'b'}"),
    ],
)
def test_config_task_list_that_is_no_names_is_refused_naming_the_field(override, got, capsys, tmp_path):
    """``tasks={a: b}`` (a mapping), a number, a nested list: refused as such, naming the field (its str() was split
    at commas and spaces: unknown tasks "{'a':", "'b'}"); from the command line and from a YAML file."""
    from sf2t import cli

    field, value = override.split("=", 1)
    assert cli.main(["train", override, "curriculum_steps=1", "--print-config"]) == 2
    err = capsys.readouterr().err
    said = f"{field}: expected task names, got {got}; name one or more of counting, "
    assert f"sf2t train: {said}" in err and "as counting,disorder or [counting, disorder]" in err, err
    assert "unknown task" not in err and "Traceback" not in err
    path = tmp_path / "c.yaml"
    path.write_text(f"{field}: {value}\ncurriculum_steps: 1\n")
    with pytest.raises(ValueError, match=re.escape(said)):
        load_config(path)


@pytest.mark.parametrize(
    "overrides, words",
    [
        (
            ["tasks=[counting]", "curriculum_tasks=[disorder]", "curriculum_steps=2"],
            "curriculum_tasks ['disorder'] are not among tasks ['counting']",
        ),
        (
            ["tasks=[counting,disorder]", "task_weights=[1,0]", "curriculum_tasks=[disorder]", "curriculum_steps=1"],
            "curriculum_tasks ['disorder'] all have task_weights 0",
        ),
        (["curriculum_tasks=[]", "curriculum_steps=1"], "curriculum_tasks is empty but curriculum_steps > 0"),
    ],
)
def test_config_curriculum_is_checked(overrides, words):
    """Curriculum settings that failed only after the model had loaded ("'disorder' is not in list", "Total of
    weights must be greater than zero") are refused when the config is made; without a curriculum they are unused."""
    with pytest.raises(ValueError, match=re.escape(words)):
        apply_overrides(TrainConfig(), overrides)
    assert apply_overrides(TrainConfig(), overrides[:-1]).curriculum_steps == 0  # no curriculum: not checked
    ok = ["tasks=[counting,disorder]", "task_weights=[1,0]", "curriculum_tasks=[counting]", "curriculum_steps=1"]
    assert apply_overrides(TrainConfig(), ok).curriculum_tasks == ["counting"]


@pytest.mark.parametrize(
    "text, words",
    [
        ("out_dir: 2024", "TrainConfig.out_dir must be a path (a string), got 2024 (quote it in YAML: '2024')"),
        ("model: [a]", "TrainConfig.model must be a path (a string), got ['a']"),
        ("supervised_data: 5", "TrainConfig.supervised_data must be a path (a string), got 5"),
        ("videos: 5", "TrainConfig.videos[0] must be a path (a string), got 5"),
        ("videos: [clips, 5]", "TrainConfig.videos[1] must be a path (a string), got 5"),
        ("eval_videos: {a: 1}", "TrainConfig.eval_videos[0] must be a path (a string), got {'a': 1}"),
    ],
)
def test_config_path_fields_must_be_strings(tmp_path, text, words):
    """A YAML number, list or mapping where a path goes is named when the config is read (it was a TypeError
    traceback once training started); on the command line the same value is a string and works."""
    (tmp_path / "c.yaml").write_text(text + "\n")
    with pytest.raises(ValueError, match=re.escape(words)):
        load_config(tmp_path / "c.yaml")
    assert load_config(None, ["out_dir=2024"]).out_dir == "2024"


def test_lr_schedule():
    cfg = TrainConfig(steps=100, warmup_steps=10, lr=1.0, min_lr_ratio=0.1)
    lrs = [lr_at(s, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))  # non-increasing after warmup
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)
    assert lr_at(55, cfg) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    const = TrainConfig(steps=100, warmup_steps=0, lr=0.5, schedule="constant")
    assert {lr_at(s, const) for s in range(100)} == {0.5}


# -- data


def test_samples_end_to_end(tiny, clips, tmp_path):
    from sf2t.models import load_model_and_tokenizer
    from sf2t.train.loop import make_factories

    _, tok = load_model_and_tokenizer(tiny)
    factory, _ = make_factories(_cfg(tiny, clips, tmp_path), tok)
    for i in range(12):
        s = factory.sample(i)
        grid = s["video_grid_thw"]
        f = s["meta"]["params"]["num_frames"]
        assert grid.tolist() == [[f, 4, 4]]  # one token group per presented frame, 56x56
        assert s["pixel_values_videos"].shape == (f * 16, 3 * 2 * 14 * 14)
        assert int((s["mm_token_type_ids"] == 2).sum()) == f * 4
        supervised = tok.decode(s["input_ids"][s["labels"] != -100])
        assert supervised == s["answer"] + "<|im_end|>"  # loss on the answer only
    a, b = factory.sample(5), factory.sample(5)
    assert torch.equal(a["input_ids"], b["input_ids"])
    assert torch.equal(a["pixel_values_videos"], b["pixel_values_videos"])
    prompt = factory.sample(5, with_answer=False)
    assert (prompt["labels"] == -100).all()
    assert tok.decode(prompt["input_ids"][-3:]).endswith("assistant\n")


def test_bad_videos_are_reported_not_dropped(tiny, clips, tmp_path):
    from sf2t.models import load_model_and_tokenizer
    from sf2t.train.loop import make_factories

    good, bad = clips
    _, tok = load_model_and_tokenizer(tiny)
    cfg = _cfg(tiny, clips, tmp_path, videos=good + list(bad.values()), tasks=["disorder"], max_resample=3)
    factory, _ = make_factories(cfg, tok)
    for i in range(40):  # draws hit the static clip sooner or later
        factory.sample(i)
    skipped = {s.path: s for s in factory.pool.skipped}
    expect = {"missing": "missing", "empty": "empty", "noise": "unreadable", "short": "too_short", "static": "static"}
    for name, kind in expect.items():
        s = skipped[bad[name]]
        assert s.kind == kind, (name, s)
        assert s.reason
    assert "no visible motion" in skipped[bad["static"]].reason
    assert "4" in skipped[bad["short"]].reason  # says how many frames the task needs
    assert {i.path for i in factory.pool.usable("disorder")} == set(good)
    # too static for disorder: left out of disorder only (other tasks could still draw it); too short for every
    # task of the run, or not decodable: left out of all
    assert skipped[bad["static"]].task == "disorder" and bad["static"] in {i.path for i in factory.pool.infos}
    assert skipped[bad["short"]].task is None and skipped[bad["noise"]].task is None


def test_a_video_too_static_for_one_task_still_serves_the_others(tiny, clips, tmp_path):
    """The static clip fails disorder's motion guard and is left out of disorder only: counting (no guard) keeps
    drawing it; the report says which task left it out."""
    from sf2t.models import load_model_and_tokenizer
    from sf2t.train.loop import make_factories

    good, bad = clips
    _, tok = load_model_and_tokenizer(tiny)
    cfg = _cfg(tiny, clips, tmp_path, videos=[bad["static"], good[0]], tasks=["disorder", "counting"], max_resample=3)
    factory, _ = make_factories(cfg, tok)
    for i in range(30):
        factory.sample(i, task="disorder")
    assert [(s.path, s.task, s.kind) for s in factory.pool.skipped] == [(bad["static"], "disorder", "static")]
    sources = {factory.sample(i, task="counting")["meta"]["source"] for i in range(30)}
    assert bad["static"] in sources
    assert factory.pool.skipped[0].to_dict()["task"] == "disorder"


def test_no_usable_video_is_a_clear_error(tiny, clips, tmp_path):
    from sf2t.models import load_model_and_tokenizer
    from sf2t.train.loop import make_factories

    _, bad = clips
    _, tok = load_model_and_tokenizer(tiny)
    factory, _ = make_factories(_cfg(tiny, clips, tmp_path, videos=[bad["missing"], bad["empty"]]), tok)
    with pytest.raises(RuntimeError, match="no usable videos") as e:
        factory.sample(0)
    assert bad["missing"] in str(e.value) and "file not found" in str(e.value)


@pytest.mark.parametrize("workers", [0, 2])
def test_cli_broken_video_sets_and_out_dir_are_clear_errors(tiny, clips, tmp_path, capsys, workers):
    """`sf2t train` on videos that cannot all be read: missing/empty paths and video-less folders fail before the model
    loads (exit 2); files that exist but do not decode fail at the first batch with every video and its reason,
    without a traceback, also when DataLoader workers make the batches (exit 1); an out_dir that is a file fails
    first."""
    from sf2t.cli import main

    good, bad = clips
    base = ["train", f"model={tiny}", "steps=1", "batch_size=2", "progress=false", f"workers={workers}"]
    empty_dir = tmp_path / "no_videos"
    empty_dir.mkdir()
    assert main([*base, f"videos=[{bad['missing']},{bad['empty']},{empty_dir}]", f"out_dir={tmp_path / 'a'}"]) == 2
    err = capsys.readouterr().err
    assert "no_videos: a folder with no video files" in err
    assert main([*base, f"videos=[{bad['missing']},{bad['empty']}]", f"out_dir={tmp_path / 'a'}"]) == 2
    err = capsys.readouterr().err
    assert "none of the 2 training videos can be read" in err and "no such file" in err and "0 bytes" in err
    assert main([*base, f"videos=[{bad['noise']},{bad['empty']}]", f"out_dir={tmp_path / 'b'}"]) == 1
    err = capsys.readouterr().err
    assert "no usable videos left" in err and "noise.mp4: cannot open as a video" in err and "empty.mp4" in err
    assert "Traceback" not in err
    f = tmp_path / "file"
    f.write_text("keep")
    assert main([*base, f"videos=[{good[0]}]", f"out_dir={f}"]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err and f.read_text() == "keep"


# -- training


def test_smoke_full_finetune_loss_falls(tiny, clips, tmp_path):
    from sf2t.train.loop import load_trained, train

    cfg = _cfg(tiny, clips, tmp_path, steps=40)
    res = train(cfg, log=lambda s: None)
    losses = res["losses"]
    assert len(losses) == 40 and all(math.isfinite(v) for v in losses)
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    assert set(res["task_losses"]) == {"counting", "disorder"}
    # saved as a whole checkpoint that loads like the base
    model, tok = load_trained(tiny, res["saved"])
    ref = res["model"].state_dict()
    for k, v in model.state_dict().items():
        assert torch.equal(v, ref[k]), k


def test_progress_bar_into_a_log_does_not_redraw_every_step(tiny, clips, tmp_path, capsys, monkeypatch):
    """With stderr redirected to a file (``nohup sf2t train ... > log 2>&1``) the train bar redraws at a log's pace:
    tqdm's 0.1 s wrote a line into the log ten times a second, and each set_postfix (every 10 steps) one more."""
    from sf2t.train.loop import train

    clock = iter(range(10**6))
    monkeypatch.setattr("tqdm.std.time", lambda: next(clock) * 0.05)  # tqdm's clock: a read every 0.05 s
    steps = 21
    cfg = _cfg(tiny, clips, tmp_path, steps=steps, batch_size=1, tasks=["counting"], progress=True)
    train(cfg, log=lambda s: None, save=False)
    draws = capsys.readouterr().err.count("\rtrain:")  # the train bar's (the model loading's bar is transformers')
    assert 0 < draws <= 5, draws  # the first draw, a paced redraw or two, the close


def test_all_six_tasks_train_end_to_end(tiny, clips, tmp_path):
    """One run mixing all six tasks: every task gives batches, every step's loss is finite, LoRA on both towers."""
    from sf2t.tasks import TASKS
    from sf2t.train.loop import train

    cfg = _cfg(tiny, clips, tmp_path, steps=12, batch_size=6, tasks=list(TASKS), lora=True, full_finetune=False)
    res = train(cfg, log=lambda s: None)
    assert len(res["losses"]) == 12 and all(math.isfinite(v) for v in res["losses"])
    assert set(res["task_losses"]) == set(TASKS)
    assert all(c and all(math.isfinite(p["loss"]) for p in c) for c in res["task_losses"].values())


@pytest.mark.parametrize("stage,first", [("after_tower", "all"), ("before_tower", "all"), ("after_tower", "budget")])
def test_token_compression_trains_and_evaluates(tiny, clips, tmp_path, stage, first):
    """token_keep_ratio 0.5 (after or before the tower; the first group whole or budgeted): the model is patched
    (apply_sf2t), the text carries the kept-token counts, training runs with finite losses and the held-out
    evaluation generates with compression on; a reload re-applies it, at the same stage and first-group rule."""
    from sf2t.models.compress import find_qwen_inner
    from sf2t.models.qwen2_vl import VIDEO_PAD
    from sf2t.ops.token_merge import kept_count
    from sf2t.train.evaluate import build_eval_set, evaluate
    from sf2t.train.loop import load_trained, make_factories, train

    kw = dict(token_keep_ratio=0.5, token_stage=stage, token_first_group=first, lora=True, full_finetune=False)
    cfg = _cfg(tiny, clips, tmp_path, steps=6, **kw)
    res = train(cfg, log=lambda s: None)
    assert len(res["losses"]) == 6 and all(math.isfinite(v) for v in res["losses"])
    assert find_qwen_inner(res["model"])._sf2t_cfg == {"keep": 0.5, "window": 2, "first_group": first, "stage": stage}
    _, eval_f = make_factories(cfg, load_trained(tiny, res["saved"])[1])
    model, tok = load_trained(tiny, res["saved"])
    assert find_qwen_inner(model)._sf2t_cfg == find_qwen_inner(res["model"])._sf2t_cfg
    s = eval_f.sample(0, task="counting", with_answer=False)
    t, h, w = s["video_grid_thw"][0].tolist()
    want = kept_count([[t, h // 2, w // 2]], 0.5, first_group=first)[0]
    assert int((s["input_ids"] == tok.convert_tokens_to_ids(VIDEO_PAD)).sum()) == want
    rep = evaluate(model, tok, build_eval_set(eval_f, ["counting"], 4))
    assert rep["counting"]["n"] == 4
    with pytest.raises(ValueError, match="token_keep_ratio"):
        _cfg(tiny, clips, tmp_path, token_keep_ratio=0.0)
    with pytest.raises(ValueError, match="token_stage must be after_tower or before_tower"):
        _cfg(tiny, clips, tmp_path, token_stage="inside")
    with pytest.raises(ValueError, match="token_first_group must be all or budget"):
        _cfg(tiny, clips, tmp_path, token_first_group="none")


def test_lora_trains_adapters_only_and_reloads(tiny, clips, tmp_path):
    from sf2t.models import load_model_and_tokenizer
    from sf2t.train.loop import load_trained, make_factories, train

    cfg = _cfg(
        tiny,
        clips,
        tmp_path,
        steps=6,
        lora=True,
        full_finetune=False,
        lora_rank=4,
        lora_alpha=8,
        lr=1e-2,
        warmup_steps=0,
    )
    base, tok = load_model_and_tokenizer(tiny)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    res = train(cfg, model=base, tokenizer=tok, log=lambda s: None)
    model = res["model"]
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert any("visual.blocks.0.attn.qkv.lora_A" in n for n in trainable)  # fused vision qkv is adapted
    assert any("language_model.layers.0.self_attn.q_proj.lora_B" in n for n in trainable)
    base_after = model.get_base_model().state_dict()
    for k, v in before.items():  # the base weights are frozen
        mod, _, leaf = k.rpartition(".")
        key = k if k in base_after else f"{mod}.base_layer.{leaf}"
        assert torch.equal(base_after[key], v), k
    assert any(float(p.detach().abs().sum()) > 0 for n, p in model.named_parameters() if "lora_B" in n)  # moved

    reloaded, _ = load_trained(tiny, res["saved"])
    factory, _ = make_factories(cfg, tok)
    s = factory.sample(0)
    keys = ("input_ids", "attention_mask", "mm_token_type_ids")
    inputs = {k: s[k][None] for k in keys}
    inputs.update(pixel_values_videos=s["pixel_values_videos"], video_grid_thw=s["video_grid_thw"])
    model.eval()
    reloaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).logits, model(**inputs).logits)


def test_evaluate_reports_accuracy_and_chance(tiny, clips, tmp_path):
    from sf2t.models import load_model_and_tokenizer
    from sf2t.train.evaluate import build_eval_set, evaluate
    from sf2t.train.loop import make_factories

    model, tok = load_model_and_tokenizer(tiny)
    cfg = _cfg(tiny, clips, tmp_path)
    _, eval_f = make_factories(cfg, tok)
    es = build_eval_set(eval_f, cfg.tasks, 3)
    assert [s["task"] for s in es] == ["counting"] * 3 + ["disorder"] * 3
    r = evaluate(model, tok, es, chance={"counting": 1 / 15, "disorder": 0.5}, max_new_tokens=3)
    for task in ("counting", "disorder"):
        assert r[task]["n"] == 3 and 0.0 <= r[task]["accuracy"] <= 1.0
        assert r[task]["chance"] in (1 / 15, 0.5)
        assert len(r[task]["examples"]) == 3


def _held_tensors(obj, seen=None) -> list[torch.Tensor]:
    """The tensors ``obj`` holds (through lists, tuples, dicts and attributes), not counting a SampleFactory's (the
    factory and its frame cache are there with or without an evaluation set)."""
    from sf2t.train.data import SampleFactory

    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, (SampleFactory, str, bytes, int, float, type(None))):
        return []
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        items = list(obj.values())
    elif isinstance(obj, (list, tuple, set, frozenset)):
        items = list(obj)
    else:
        items = list(getattr(obj, "__dict__", {}).values())
    return [t for x in items for t in _held_tensors(x, seen)]


def test_eval_set_holds_no_pixels_and_evaluates_as_the_samples_made_once(tiny, clips, tmp_path):
    """The held-out set keeps no packed pixels between evaluations (a real model's are GBs), and evaluating it feeds
    the model exactly the samples made once up front (every tensor equal, the same answers and scores): also the
    samples drawn before a video was dropped while the set was built (here: a static clip)."""
    from sf2t.models import load_model_and_tokenizer
    from sf2t.tasks import TASKS
    from sf2t.train.evaluate import build_eval_set, evaluate
    from sf2t.train.loop import make_factories

    good, bad = clips
    model, tok = load_model_and_tokenizer(tiny)
    cfg = _cfg(tiny, clips, tmp_path, eval_videos=[bad["static"], *good], tasks=list(TASKS))
    per_task = 3
    _, eager_f = make_factories(cfg, tok)
    made = [  # the samples as made once, each from the pool as it stood then
        eager_f.sample(t_i * 1_000_000 + i, task=name, with_answer=False)
        for t_i, name in enumerate(cfg.tasks)
        for i in range(per_task)
    ]
    assert any(s.path == bad["static"] for s in eager_f.pool.skipped)  # a video left the pool midway
    _, eval_f = make_factories(cfg, tok)
    es = build_eval_set(eval_f, cfg.tasks, per_task)

    held = _held_tensors(es)
    assert not any(t.is_floating_point() for t in held)  # no pixels
    packed = sum(t.numel() * t.element_size() for s in made for t in _held_tensors(s))
    assert sum(t.numel() * t.element_size() for t in held) < packed / 100
    for _ in range(2):  # every evaluation sees the same samples
        assert len(es) == len(made)
        for a, b in zip(es, made):
            assert a.keys() == b.keys()
            for k in a:
                if isinstance(a[k], torch.Tensor):
                    assert torch.equal(a[k], b[k]), k
                else:
                    assert a[k] == b[k], k
    r_set, r_made = evaluate(model, tok, es), evaluate(model, tok, made)
    r_set.pop("seconds"), r_made.pop("seconds")
    assert r_set == r_made


def test_eval_set_keeps_long_clips_frames_within_budget_same_samples(tiny, clips, tmp_path, monkeypatch):
    """A clip the clip cache does not keep whole (a long video; here clip_cache_mb=1 for 64x64 clips): the held-out
    set keeps each sample's decoded uint8 frames while they fit the store's budget, so an evaluation decodes none of
    them again (three 60-120 s 640x360 clips: decoding was ~90 % of a remake), and its samples are the very same
    tensors as made without them; clip_cache_mb=0 keeps none."""
    from sf2t.models import load_model_and_tokenizer
    from sf2t.train.data import FrameStore
    from sf2t.train.evaluate import EvalSet, build_eval_set
    from sf2t.train.loop import make_factories

    _, tok = load_model_and_tokenizer(tiny)
    cfg = _cfg(tiny, clips, tmp_path, clip_cache_mb=1)
    _, eval_f = make_factories(cfg, tok)
    es = build_eval_set(eval_f, cfg.tasks, 3)
    kept = [f for f in es.frames if f]
    assert kept and all(t.dtype == torch.uint8 and t.device.type == "cpu" for f in kept for t in f.values())
    assert sum(t.numel() for f in kept for t in f.values()) <= eval_f.store.budget
    plain = EvalSet(es.factory, es.keys, es.records, es.states, es.which, es.extents)  # frames made again
    decodes = []
    real = FrameStore._decode
    monkeypatch.setattr(
        FrameStore, "_decode", lambda self, info, ids: decodes.append(info.path) or real(self, info, ids)
    )
    for k in range(len(es)):
        decodes.clear()
        b = plain[k]
        assert decodes  # (decoded again: the clip is not cached whole)
        decodes.clear()
        a = es[k]
        assert decodes == [] if es.frames[k] else decodes, k  # a sample whose frames were kept decodes nothing
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]) if isinstance(a[key], torch.Tensor) else a[key] == b[key], key
    _, off_f = make_factories(_cfg(tiny, clips, tmp_path, clip_cache_mb=0), tok)
    assert build_eval_set(off_f, cfg.tasks, 3).frames == [None] * 6


def test_eval_set_copies_no_frames_past_its_budget(tiny, clips, tmp_path, monkeypatch):
    """Once what is left of the store's budget cannot hold a sample's frames, they are not copied to the CPU (they
    were, per sample, then dropped): the same samples keep the same frames, and the fill copies are exactly the kept
    ones."""
    import contextlib

    from sf2t.models import load_model_and_tokenizer
    from sf2t.train.data import FrameStore
    from sf2t.train.evaluate import build_eval_set
    from sf2t.train.loop import make_factories

    _, tok = load_model_and_tokenizer(tiny)
    cfg = _cfg(tiny, clips, tmp_path, clip_cache_mb=1)
    _, eval_f = make_factories(cfg, tok)
    full = build_eval_set(eval_f, cfg.tasks, 3)  # 1 MB: every sample's frames kept (checked below)
    assert all(full.frames)
    sizes = [sum(t.numel() for t in f.values()) for f in full.frames]
    smallest = min(t.numel() for f in full.frames for t in f.values())  # one request's frames
    budget = sizes[0] + smallest - 1  # the first sample's frames, then less than any one request
    want, room = [], budget
    for n in sizes:  # which samples keep their frames: those that fit what is left, in order
        want.append(n <= room)
        room -= n if n <= room else 0
    assert want[0] and not all(want)
    copies = []
    real = FrameStore.holding

    @contextlib.contextmanager
    def counted(self, frames, fill=False, **kw):
        class Counting(dict):
            def __setitem__(self, key, value):
                copies.append(key)
                super().__setitem__(key, value)

        proxy = Counting(frames)
        with real(self, proxy, fill, **kw):
            yield frames
        frames.clear()
        frames.update(proxy)

    monkeypatch.setattr(FrameStore, "holding", counted)
    _, eval_f = make_factories(cfg, tok)
    eval_f.store.budget = budget
    es = build_eval_set(eval_f, cfg.tasks, 3)
    assert [bool(f) for f in es.frames] == want
    assert len(copies) == sum(len(f) for f in es.frames if f)  # no copy made and then dropped
    for f, g in zip(es.frames, full.frames):
        assert f is None or (f.keys() == g.keys() and all(torch.equal(f[k], g[k]) for k in f))
    assert es.records == full.records


def test_frame_store_holding_is_per_thread_when_two_overlap(monkeypatch):
    """FrameStore.holding applies in its own thread only, also when two threads' holdings overlap (one slot for all
    threads: the first to end removed the other's while it was still inside, and the other's end put the first one's
    back for good, a fill that went on growing with that thread's later requests)."""
    import threading
    from types import SimpleNamespace

    from sf2t.train.data import FrameStore

    store = FrameStore(cache_mb=0)  # (every clip decoded per request)
    decodes = []
    monkeypatch.setattr(
        FrameStore, "_decode", lambda self, info, ids: decodes.append(list(ids)) or torch.zeros(len(ids), 2, 2, 3)
    )
    info = SimpleNamespace(path="v.mp4", num_frames=10, height=2, width=2)
    a_in, b_in, a_out, b_out = (threading.Event() for _ in range(4))
    filled, kept = {}, {("v.mp4", (7,)): torch.ones(1, 2, 2, 3, dtype=torch.uint8)}
    seen = {}

    def first():
        with store.holding(filled, fill=True):
            a_in.set()
            b_in.wait(10)
        a_out.set()
        b_out.wait(10)
        store.get(info, [3])  # after both holdings ended: nothing kept
        seen["filled"] = sorted(filled)

    def second():
        a_in.wait(10)
        with store.holding(kept):
            b_in.set()
            a_out.wait(10)
            seen["kept frame"] = int(store.get(info, [7]).sum())  # from its own holding, not decoded
        b_out.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen == {"kept frame": 12, "filled": []} and decodes == [[3]], (seen, decodes)


def test_pairs_layout(tiny, clips, tmp_path):
    """layout="pairs": token group i holds presented frames (i, i+1), so F frames give F - 1 groups."""
    from sf2t.models import load_model_and_tokenizer
    from sf2t.train.data import pair_layout_index
    from sf2t.train.loop import make_factories

    assert pair_layout_index(2).tolist() == [0, 1]
    assert pair_layout_index(5).tolist() == [0, 1, 1, 2, 2, 3, 3, 4]
    _, tok = load_model_and_tokenizer(tiny)
    factory, _ = make_factories(_cfg(tiny, clips, tmp_path, layout="pairs"), tok)
    for i in range(8):
        s = factory.sample(i)
        f = s["meta"]["params"]["num_frames"]
        assert s["video_grid_thw"].tolist() == [[f - 1, 4, 4]]
        assert int((s["mm_token_type_ids"] == 2).sum()) == (f - 1) * 4
    with pytest.raises(ValueError, match="layout"):
        TrainConfig(layout="triples")


def test_task_videos_restricts_a_task(tiny, clips, tmp_path):
    from sf2t.models import load_model_and_tokenizer
    from sf2t.train.loop import make_factories

    good, _ = clips
    _, tok = load_model_and_tokenizer(tiny)
    factory, _ = make_factories(_cfg(tiny, clips, tmp_path, task_videos={"disorder": [good[1]]}), tok)
    sources = {t: set() for t in ("counting", "disorder")}
    for i in range(30):
        s = factory.sample(i)
        sources[s["task"]].add(s["meta"]["source"])
    assert sources["disorder"] == {good[1]}
    assert len(sources["counting"]) > 1


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--steps", "0"], "--steps must be >= 1"),
        (["--threads", "-2"], "--threads must be >= 1"),
        (["--set", "nosuch=1"], "--set: TrainConfig has no field 'nosuch'"),
        (["--set", "steps"], "--set: override 'steps' must look like key=value"),
        (["--set", "lora=true"], "--set: TrainConfig: lora and full_finetune are exclusive"),  # against the demo's own
        (["--set", "counting.count_min=0"], "--set: TrainConfig.counting: need 1 <= count_min"),
        # the run went to out_dir while the clips, model and reports stayed in --out
        (["--set", "out_dir=elsewhere"], "--set out_dir=elsewhere: the demo trains into --out"),
        # the demo's own clips emptied: a NoUsableVideo / AttributeError traceback once the clips and model were made
        (["--set", "videos=[]"], "--set: TrainConfig.videos is empty: the demo trains on them; leave videos unset"),
        (["--set", "eval_videos="], "--set: TrainConfig.eval_videos is empty: the demo measures held-out accuracy"),
        (["--set", "tasks="], "--set: TrainConfig.tasks must name at least one task"),  # (was "unknown task [None]")
    ],
)
def test_demo_arguments_are_checked_first(tmp_path, capsys, monkeypatch, argv, words):
    """Bad demo arguments are named before any clip is made (nothing is written)."""
    from sf2t.demo import main

    monkeypatch.chdir(tmp_path)  # a relative path in argv, if it were used, lands here

    assert main(["--out", str(tmp_path / "demo"), "--quick", *argv]) == 2
    assert words in capsys.readouterr().err and not (tmp_path / "demo").exists()
    (tmp_path / "file").write_text("x")
    assert main(["--out", str(tmp_path / "file"), "--quick"]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    assert main(["--out", str(tmp_path / "file" / "demo"), "--quick"]) == 2  # a NotADirectoryError traceback before
    assert f"{tmp_path / 'file'} is a file, not a folder" in capsys.readouterr().err
    mine = tmp_path / "project"  # a folder of the user's: the demo replaces clips/ and its run there, so refused
    (mine / "clips").mkdir(parents=True)
    (mine / "clips" / "precious.mp4").write_bytes(b"mine")
    assert main(["--out", str(mine), "--quick"]) == 2
    assert "not an earlier demo's" in capsys.readouterr().err
    assert (mine / "clips" / "precious.mp4").read_bytes() == b"mine" and sorted(mine.iterdir()) == [mine / "clips"]


def test_one_unreadable_training_video_is_said_in_the_singular(tmp_path):
    """One training video that cannot be read: "the only training video cannot be read", not "none of the 1
    training video can be read"."""
    from sf2t.train.cli import _precheck_paths

    cfg = TrainConfig(videos=[str(tmp_path / "gone.mp4")], out_dir=str(tmp_path / "out"))
    said = _precheck_paths(cfg)
    assert said == f"the only training video cannot be read: {tmp_path / 'gone.mp4'}: no such file", said


def test_demo_set_steps_rescales_the_curriculum_like_steps(tmp_path):
    """sf2t demo --set steps=N gives the config --steps N gives: the disorder-only phase keeps its share of the run
    (it once stayed at 800 steps, so a 100-step run was all curriculum); an explicit curriculum_steps wins."""
    from sf2t.demo import run_config

    paths = (tmp_path, "m", ["a.mp4"], ["b.mp4"], tmp_path / "clips")
    by_flag = run_config(*paths, steps=100)
    by_set = run_config(*paths, overrides=["steps=100"])
    assert by_set == by_flag and by_set.curriculum_steps == 20 and by_set.steps == 100
    assert run_config(*paths, quick=True, overrides=["steps=100"]).curriculum_steps == 20
    assert run_config(*paths, overrides=["steps=100", "curriculum_steps=5"]).curriculum_steps == 5
    assert run_config(*paths).curriculum_steps == 800
    # --set tasks=... fits the demo's task weights, ordering clips and disorder-first phase to the tasks chosen
    only = run_config(*paths, overrides=["tasks=[counting, rearrangement]"])
    assert only.tasks == ["counting", "rearrangement"] and only.task_weights == [2.0, 3.0]
    assert set(only.task_videos) == {"rearrangement"} and only.curriculum_steps == 0
    with_disorder = run_config(*paths, overrides=["tasks=[disorder, counting]"])
    assert with_disorder.curriculum_tasks == ["disorder"] and with_disorder.curriculum_steps == 800
    from sf2t.demo import main

    assert main(["--out", str(tmp_path / "d"), "--set", "tasks=[counting]", "--set", "task_weights=[1, 2]"]) == 2


@pytest.mark.parametrize("overrides", [(), ("token_keep_ratio=0.5",)], ids=["plain", "compressed"])
def test_demo_quick(tmp_path, overrides):
    """The demo's whole path on a few clips and steps: report files, table, skipped clips with reasons; also with
    visual-token compression (evaluated before and after with it)."""
    import json

    from sf2t.demo import run_demo

    lines = []
    report = run_demo(
        tmp_path / "demo", quick=True, threads=1, progress=False, log=lines.append, overrides=list(overrides)
    )
    out = tmp_path / "demo"
    assert (out / "report.json").is_file() and (out / "report.md").is_file()
    assert (out / "model" / "config.json").is_file()
    from sf2t.tasks import TASKS

    assert json.loads((out / "report.json").read_text())["accuracy"].keys() == set(TASKS)  # all six tasks
    for t in TASKS:
        a = report["accuracy"][t]
        assert 0.0 <= a["before"] <= 1.0 and 0.0 <= a["after"] <= 1.0
        assert 0.0 <= a["in_form_after"] <= 1.0 and 0.0 <= a["strict_after"] <= min(a["after"], a["in_form_after"])
    kinds = {s["kind"] for s in report["skipped"]}
    assert {"empty", "unreadable"} <= kinds  # static / too_short show up once a draw reaches them
    assert any("task" in line and "chance" in line for line in lines)
    md = (out / "report.md").read_text()
    assert "| counting |" in md and "Skipped videos" in md
    steps = report["training"]["steps"]
    assert steps < 50 and f"mean of the last {steps} steps" in md  # "of the last 50 steps" of a 40-step run
    table = next(i for i, line in enumerate(lines) if line.startswith("task") and "chance" in line)
    rows = lines[table].splitlines()
    assert len({row.index("%") for row in rows[1:]}) == 1, rows  # the columns line up past "rearrangement"
    assert "in form before" in rows[0] and "| in form before | in form after |" in md
    assert any(line.startswith("task") and line.splitlines()[0].endswith("in form after") for line in lines)
    assert "![loss and accuracy](report.png)" in md and (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    # the report's command makes this run again: the --set overrides are part of it
    assert report["command"].endswith("--quick" + "".join(f" --set {o}" for o in overrides))


def _demo_report(accuracy: dict) -> dict:
    """A minimal ``sf2t demo`` report.json with held-out rows ``accuracy``, for its markdown (``_markdown``)."""
    return {
        "command": "sf2t demo --quick",
        "accuracy": accuracy,
        "accuracy_by_clip_family": {},
        "training": {
            "steps": 2,
            "trainable_parameters": 10,
            "tokens_per_second": 1.0,
            "loss_first": 2.0,
            "loss_last_50": 1.0,
            "loss_curve": [{"loss": 1.5}],
            "task_loss_curves": {},
            "saved": "model",
        },
        "timings_s": {"train": 1.0},
        "config": {
            "batch_size": 1,
            "grad_accum": 1,
            "lr": 1e-3,
            "schedule": "cosine",
            "warmup_steps": 0,
            "lora": False,
            "layout": "pairs",
            "frame_size": [56, 56],
        },
        "skipped": [],
        "environment": {"torch": "x"},
    }


def test_demo_report_md_shows_the_partial_scores_of_report_json():
    """report.md's held-out table has report.json's partial credit (partial_before / partial_after) next to the exact
    accuracy (it showed only chance and exact accuracy: counting's 1 - |n - F| / F, localization's IoU and
    rearrangement's Kendall tau were in report.json only); a report without them keeps the narrower table."""
    from sf2t.demo import _markdown

    acc = {
        "counting": {
            "chance": 0.1,
            "before": 0.2,
            "after": 0.5,
            "partial_before": 0.45,
            "partial_after": 0.875,
            "n": 8,
        },
        "disorder": {"chance": 0.5, "before": 0.5, "after": 0.75, "partial_before": 0.5, "partial_after": 0.75, "n": 4},
    }
    report = _demo_report(acc)
    md = _markdown(report, ["counting", "disorder"])
    assert "## Held-out exact accuracy and partial credit" in md
    assert "| task | chance | before | after | partial before | partial after | n |" in md
    assert "|---|---|---|---|---|---|---|" in md
    assert "| counting |  10.0% |  20.0% |  50.0% |  45.0% |  87.5% | 8 |" in md
    assert "| disorder |  50.0% |  50.0% |  75.0% |  50.0% |  75.0% | 4 |" in md
    assert "report.json's partial_before / partial_after" in md
    for a in acc.values():
        del a["partial_before"], a["partial_after"]
    md = _markdown(report, ["counting", "disorder"])
    assert "| task | chance | before | after | n |" in md and "| counting |  10.0% |  20.0% |  50.0% | 8 |" in md
    assert "partial" not in md


def test_demo_report_command_makes_the_same_run(tmp_path):
    """The report's "Command:" line gives back every setting of the run when the demo's own parser reads it:
    --threads and --no-progress too (they were left out), and an --out or --set with a space in it (quoted)."""
    import shlex

    from sf2t.demo import _argv_for, build_parser

    out = tmp_path / "my demo"
    argv = _argv_for(out, 7, 3, True, ["disorder.perm=strong", "lr=1e-4"], threads=3, progress=False)
    a = build_parser().parse_args(shlex.split(" ".join(argv)))
    assert (a.out, a.steps, a.seed, a.quick, a.threads, a.no_progress) == (str(out), 7, 3, True, 3, True)
    assert a.overrides == ["disorder.perm=strong", "lr=1e-4"]
    a = build_parser().parse_args(shlex.split(" ".join(_argv_for(out, 7, 0, False, threads=2))))
    assert (a.threads, a.no_progress, a.quick) == (2, False, False)


@pytest.mark.parametrize("task", ["consistency", "rearrangement", "speed"])
def test_pixel_and_order_tasks_give_training_samples(tiny, clips, tmp_path, task):
    """Tasks that build their own presented frames (consistency) or reorder them (rearrangement, speed) pack one
    token group per presented frame and supervise exactly the canonical answer."""
    from sf2t.models import load_model_and_tokenizer
    from sf2t.train.loop import make_factories

    _, tok = load_model_and_tokenizer(tiny)
    factory, _ = make_factories(_cfg(tiny, clips, tmp_path, tasks=[task]), tok)
    for i in range(6):
        s = factory.sample(i)
        assert s["task"] == task
        f = len(s["meta"]["source_frames"])
        assert s["video_grid_thw"].tolist() == [[f, 4, 4]]
        supervised = tok.decode(s["input_ids"][s["labels"] != -100])
        assert supervised == s["answer"] + "<|im_end|>"


def test_localization_trains_with_its_target_image(tiny, clips, tmp_path):
    """Localization: the target image is its own <|image_pad|> run before the video (pixel_values,
    image_grid_thw); a batch mixing it with video-only tasks runs forward with a finite loss."""
    from sf2t.models import load_model_and_tokenizer
    from sf2t.models.qwen2_vl import MM_TOKEN_TYPE_IMAGE, num_video_tokens
    from sf2t.train.data import batches
    from sf2t.train.loop import make_factories, per_sample_loss

    model, tok = load_model_and_tokenizer(tiny)
    factory, _ = make_factories(_cfg(tiny, clips, tmp_path, tasks=["localization", "counting"]), tok)
    s = factory.sample(0, task="localization")
    assert s["image_grid_thw"].tolist() == [[1, 4, 4]]  # one image = one temporal patch
    assert s["pixel_values"].shape == (16, 3 * 2 * 14 * 14)
    n_img = int((s["mm_token_type_ids"] == MM_TOKEN_TYPE_IMAGE).sum())
    assert n_img == num_video_tokens(s["image_grid_thw"]) == 4
    first_img = int((s["mm_token_type_ids"] == 1).nonzero()[0])
    first_vid = int((s["mm_token_type_ids"] == 2).nonzero()[0])
    assert first_img < first_vid  # the target comes before the video
    assert tok.decode(s["input_ids"][s["labels"] != -100]) == s["answer"] + "<|im_end|>"
    got = next(batches(factory, 6))
    assert len(got["chunks"]) == 1  # Qwen: the whole micro-batch in one forward
    batch = got["chunks"][0]
    assert batch["tasks"] == got["tasks"] and batch["rows"] == list(range(6))
    assert "pixel_values" in batch and 1 <= batch["image_grid_thw"].shape[0] <= 6
    keys = (
        "input_ids",
        "attention_mask",
        "mm_token_type_ids",
        "pixel_values_videos",
        "video_grid_thw",
        "pixel_values",
        "image_grid_thw",
    )
    logits = model(**{k: batch[k] for k in keys}).logits
    loss, _ = per_sample_loss(logits, batch["labels"])
    assert torch.isfinite(loss)


def test_resume_continues_exactly(tiny, clips, tmp_path):
    """A run killed after step 5 (checkpoints every 2 steps, the newest 2 kept) and resumed with resume=auto gives
    the uninterrupted run's losses and final weights, bit for bit on CPU; the checkpoint holds a peft adapter."""
    from sf2t.train.loop import train

    kw = dict(steps=8, batch_size=2, lora=True, full_finetune=False, log_every=1)
    whole = train(_cfg(tiny, clips, tmp_path / "a", **kw), log=lambda s: None, save=False)

    class Killed(Exception):
        pass

    def killer(line):
        if line.startswith("step") and int(line.split()[1]) == 5:
            raise Killed

    cfg = _cfg(tiny, clips, tmp_path / "b", save_every=2, **kw)
    with pytest.raises(Killed):
        train(cfg, log=killer, save=False)
    root = tmp_path / "b" / "run" / "checkpoints"
    assert (root / "latest").read_text().strip() == "step-00000004"
    assert sorted(p.name for p in root.glob("step-*")) == ["step-00000002", "step-00000004"]
    assert (root / "step-00000004" / "adapter" / "adapter_config.json").is_file()
    (root / ".tmp-step-00000006-deadbeef").mkdir()  # a save killed half way: ignored, then cleaned up
    lines = []
    resumed = train(
        _cfg(tiny, clips, tmp_path / "b", save_every=2, resume="auto", progress=False, **kw),
        log=lines.append,
        save=False,
    )
    assert resumed["resumed_from"] == 4
    assert not [line for line in lines if "differs" in line]  # only run-only fields (resume, progress) changed
    assert resumed["losses"] == whole["losses"]
    a = {n: p for n, p in whole["model"].named_parameters() if p.requires_grad}
    b = {n: p for n, p in resumed["model"].named_parameters() if p.requires_grad}
    assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)
    assert not list(root.glob(".tmp-*"))
    # resumed with other values: it goes on from the newest checkpoint and says what changed (the schedule, the lr)
    newest = int((root / "latest").read_text().strip().split("-")[1])
    lines = []
    more = train(
        _cfg(tiny, clips, tmp_path / "b", save_every=2, resume="auto", **{**kw, "steps": 9, "lr": 1e-3}),
        log=lines.append,
        save=False,
    )
    assert more["resumed_from"] == newest and len(more["losses"]) == 9
    said = [line for line in lines if "differs" in line]
    assert len(said) == 1 and "lr: 0.002 -> 0.001" in said[0] and "steps: 8 -> 9" in said[0], said


@pytest.mark.parametrize(
    "override, words",
    [
        ("steps=0", "steps must be an int >= 1, got 0"),
        ("batch_size=0", "batch_size must be an int >= 1"),
        ("grad_accum=0", "grad_accum must be an int >= 1"),
        ("lora_rank=0", "lora_rank must be an int >= 1"),
        ("lora_alpha=0", "lora_alpha must be a number > 0"),
        ("lora_dropout=1.5", "lora_dropout must be in [0, 1)"),
        ("warmup_steps=-1", "warmup_steps must be an int >= 0"),
        ("min_lr_ratio=2", "min_lr_ratio must be in [0, 1]"),
        ("weight_decay=-1", "weight_decay must be a number >= 0"),
        ("grad_clip=-1", "grad_clip must be a number >= 0"),
        ("betas=[1.5,0.9]", "betas must be two numbers in [0, 1)"),
        ("task_weights=[-1,1]", "task_weights must be numbers >= 0, not all 0"),
        ("task_weights=[0,0]", "task_weights must be numbers >= 0, not all 0"),
        ("tasks=[]", "tasks must name at least one task"),
        ("tasks=", "tasks must name at least one task"),  # (it was "unknown task [None]")
        ("betas=", "betas must be two numbers in [0, 1), got []"),  # an empty value is an empty list, not [None]
        ("frame_repeat=0", "frame_repeat must be an int >= 1"),
        ("threads=-1", "threads must be an int >= 0"),
        ("eval_samples=0", "eval_samples must be an int >= 1"),
        ("decoder=nope", "decoder must be auto, torchcodec, pyav or dali"),
        ("device=tpu", "device 'tpu' is not a torch device"),
        ("max_resample=0", "max_resample must be an int >= 1"),
        ("counting.count_min=0", "TrainConfig.counting: need 1 <= count_min <= count_max"),
        ("disorder.perm=nope", "TrainConfig.disorder: perm must be one of"),
    ],
)
def test_config_ranges_are_checked_when_it_is_made(override, words):
    """Every numeric and named field is checked when the config is made (so `sf2t train` says so before the model
    loads), the task sections by their own tasks."""
    with pytest.raises(ValueError, match=re.escape(words)):
        apply_overrides(TrainConfig(), [override])


def test_cli_train_refuses_a_cuda_device_it_does_not_have(tiny, clips, tmp_path, capsys):
    from sf2t.cli import main

    good, _ = clips
    if torch.cuda.is_available():
        args = [f"device=cuda:{torch.cuda.device_count()}"]
        n = torch.cuda.device_count()
        words = f"this machine has {n} CUDA device{'' if n == 1 else 's'}"  # (on one GPU: "1 CUDA device")
    else:
        args, words = ["device=cuda"], "device cuda: torch sees no CUDA device on this machine (use cpu)"
    assert main(["train", f"model={tiny}", f"videos=[{good[0]}]", f"out_dir={tmp_path / 'r'}", *args]) == 2
    assert words in capsys.readouterr().err


def test_config_changes_names_what_a_resume_changes():
    from sf2t.train.config import config_to_dict
    from sf2t.train.loop import config_changes

    a = config_to_dict(TrainConfig(videos=["a.mp4"], steps=10))
    b = config_to_dict(TrainConfig(videos=["a.mp4"], steps=10, progress=False, workers=2, resume="auto"))
    assert config_changes(a, b) == [] and config_changes(None, b) == []
    c = config_to_dict(
        apply_overrides(TrainConfig(steps=10), ["videos=[a.mp4,b.mp4]", "disorder.perm=strong", "batch_size=4"])
    )
    assert config_changes(a, c) == [
        "batch_size: 8 -> 4",
        "disorder.perm: 'any' -> 'strong'",
        "videos: ['a.mp4'] -> ['a.mp4', 'b.mp4']",
    ]
    # the settings of a task the run does not train do not count; an older checkpoint without consistency's
    # candidate_frames is said to have used 2
    d = config_to_dict(apply_overrides(TrainConfig(steps=10), ["videos=[a.mp4]", "tasks=[counting]"]))
    e = config_to_dict(apply_overrides(TrainConfig(steps=10), ["videos=[a.mp4]", "tasks=[counting,consistency]"]))
    older = {**d, "consistency": {k: v for k, v in d["consistency"].items() if k != "candidate_frames"}}
    assert config_changes(older, d) == []
    assert config_changes({**older, "tasks": e["tasks"]}, e) == [
        "consistency.candidate_frames: '(absent: 2 before candidate_frames existed)' -> 5"
    ]


def test_cli_train_resume_mistakes_are_named_before_the_model_loads(tiny, clips, tmp_path, capsys, monkeypatch):
    """A resume path that is not a checkpoint, and settings that change the shape of the trained weights or of the
    optimizer's parameter groups (lora_rank, lora_vision, lora -> full fine-tuning) and steps below the
    checkpoint's step are refused in one line naming
    the field and both values, before the model loads (they were a FileNotFoundError, a size-mismatch RuntimeError
    and a "different number of parameter groups" traceback); a checkpoint without a saved config is checked by
    shape when it loads."""
    import json

    import sf2t.models
    from sf2t.cli import main
    from sf2t.train.loop import train

    good, _ = clips
    run = tmp_path / "run"
    args = ["train", f"model={tiny}", f"videos=[{good[0]}]", "tasks=[counting]", "batch_size=2", "lora_rank=4"]
    args += [f"out_dir={run}", "save_every=2", "steps=4", "progress=false", "tensorboard=false"]
    assert main(args) == 0
    capsys.readouterr()
    metrics = (run / "metrics.jsonl").read_text()
    adapter = (run / "adapter" / "adapter_model.safetensors").read_bytes()

    def no_load(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(sf2t.models, "load_model_and_tokenizer", no_load)
    for extra, words in [
        ([f"resume={tmp_path / 'nowhere'}"], "resume: " + str(tmp_path / "nowhere") + " is not a checkpoint directory"),
        (["resume=auto", "lora_rank=8"], "resume: lora_rank is 4 in the checkpoint, 8 now"),
        (["resume=auto", "lora_vision=false"], "resume: lora_vision is True in the checkpoint, False now"),
        (["resume=auto", "lora=false", "full_finetune=true"], "lora is True in the checkpoint, False now"),
        # once: nothing trained, the finished step-4 adapter replaced by the step-2 weights, "steps 1" with 2 losses
        (["resume=auto", "steps=1"], "step-00000002 is at step 2 > steps=1: nothing would be trained"),
    ]:
        assert main(args + extra) == 2, extra
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    # a checkpoint file cut short (a full disk, a copy stopped) or gone: torch's traceback once the model had loaded
    ckpt = run / "checkpoints" / "step-00000002"
    for name in ("trainable.pt", "optimizer.pt"):
        whole = (ckpt / name).read_bytes()
        for cut, words in ((True, "is damaged (not a whole torch file"), (False, "is missing")):
            if cut:
                (ckpt / name).write_bytes(whole[:100])
            else:
                (ckpt / name).unlink()
            assert main(args + ["resume=auto"]) == 2
            err = capsys.readouterr().err
            assert f"resume: {ckpt / name} {words}" in err and "Traceback" not in err, err
        (ckpt / name).write_bytes(whole)
    import zipfile

    from sf2t.train.checkpoint import _load_file

    with zipfile.ZipFile(tmp_path / "other.pt", "w") as z:  # a whole zip that is no torch file
        z.writestr("x.txt", "hello")
    with pytest.raises(ValueError, match=r"other\.pt does not read \("):
        _load_file(tmp_path / "other.pt", weights_only=True)
    assert (run / "metrics.jsonl").read_text() == metrics  # nothing written
    assert (run / "adapter" / "adapter_model.safetensors").read_bytes() == adapter
    monkeypatch.undo()
    # the library's train() says the same before setting the model up
    kw = dict(model=tiny, videos=[good[0]], tasks=["counting"], batch_size=2, steps=4, out_dir=str(run))
    kw.update(progress=False, tensorboard=False, resume="auto", lora_rank=8)
    with pytest.raises(ValueError, match="lora_rank is 4 in the checkpoint, 8 now"):
        train(TrainConfig(**kw), log=lambda s: None, save=False)
    # an older checkpoint (no config in state.json): the shapes are compared before any weight is copied
    state = run / "checkpoints" / "step-00000002" / "state.json"
    st = json.loads(state.read_text())
    del st["config"]
    state.write_text(json.dumps(st))
    with pytest.raises(ValueError, match=r"has weights of other shapes \(.*lora_A.* \(4, .* there, \(8, .* here"):
        train(TrainConfig(**kw), log=lambda s: None, save=False)


def test_merge_carries_the_runs_settings_to_eval(tiny, clips, tmp_path, capsys):
    """sf2t merge --out elsewhere writes the run's train_config.json into the merged checkpoint, so sf2t eval
    --model merged (and load_trained) take the run's layout and token compression as they do for --adapter (they
    once fell back to the defaults silently, scoring the merged model otherwise)."""
    import json
    from types import SimpleNamespace

    from sf2t.cli import main
    from sf2t.finevidbench import _run_settings
    from sf2t.models.compress import find_qwen_inner
    from sf2t.train.loop import load_trained

    good, _ = clips
    run = tmp_path / "run"
    args = ["train", f"model={tiny}", f"videos=[{good[0]}]", "tasks=[counting]", "batch_size=2", "steps=1"]
    args += [f"out_dir={run}", "progress=false", "tensorboard=false", "lora_rank=4", "layout=pairs"]
    assert main(args + ["token_keep_ratio=0.5"]) == 0
    merged = tmp_path / "elsewhere" / "merged"
    assert main(["merge", "--base", tiny, "--adapter", str(run / "adapter"), "--out", str(merged)]) == 0
    assert "with the run's train_config.json" in capsys.readouterr().out
    assert json.loads((merged / "train_config.json").read_text()) == json.loads((run / "train_config.json").read_text())
    keys = ("frame_size", "layout", "token_keep_ratio", "token_stage", "token_first_group")
    ask = dict.fromkeys(keys)
    by_adapter = _run_settings(SimpleNamespace(model=tiny, adapter=str(run / "adapter"), **ask))
    by_merged = _run_settings(SimpleNamespace(model=str(merged), adapter=None, **ask))
    assert by_merged == by_adapter and by_merged["layout"] == "pairs" and by_merged["token_keep_ratio"] == 0.5
    model, _ = load_trained(tiny, merged)
    assert find_qwen_inner(model)._sf2t_cfg["keep"] == 0.5


def test_cli_train_overwrite_removes_the_previous_runs_outputs_only(tiny, clips, tmp_path, capsys):
    """overwrite=true over a full fine-tune's run with a LoRA run: the old model/ goes with its checkpoints, logs and
    reports (it once stayed beside the new adapter/, and sf2t eval --model out/model read the new run's settings for
    the old weights); files the user put there stay; a run whose model is the old out_dir/model is refused."""
    from sf2t.cli import main

    good, _ = clips
    run = tmp_path / "run"
    args = ["train", f"model={tiny}", f"videos=[{good[0]}]", "tasks=[counting]", "batch_size=2", "steps=1"]
    args += [f"out_dir={run}", "progress=false", "tensorboard=false"]
    assert main(args + ["lora=false", "full_finetune=true"]) == 0
    assert (run / "model" / "config.json").is_file() and (run / "report.md").is_file()
    (run / "notes.txt").write_text("mine")
    (run / "data").mkdir()
    (run / "data" / "x.json").write_text("{}")
    capsys.readouterr()
    # training from the old run's weights in the same out_dir: overwrite would delete them first
    assert main([*args, f"model={run / 'model'}", "lora=false", "full_finetune=true", "overwrite=true"]) == 2
    err = capsys.readouterr().err
    assert f"overwrite=true would remove {run / 'model'}, which holds model" in err
    assert (run / "model" / "config.json").is_file()
    assert main(args + ["lora_rank=4", "overwrite=true"]) == 0
    out = capsys.readouterr().out
    assert (
        "overwrite: removed the previous run's model, metrics.jsonl, train_result.json, train_config.json, report"
        in out
    )
    assert not (run / "model").exists() and (run / "adapter" / "adapter_config.json").is_file()
    assert (run / "notes.txt").read_text() == "mine" and (run / "data" / "x.json").is_file()
    assert sorted(p.name for p in run.iterdir()) == sorted(
        ["adapter", "data", "metrics.jsonl", "notes.txt", "report.md", "report.png", "train_config.json"]
        + ["train_result.json"]
    )


def test_cli_train_resumes_past_a_cut_short_metrics_line(tiny, clips, tmp_path, capsys):
    """A run killed while writing metrics.jsonl leaves its last line cut short: resume=auto drops it with a note (it
    once stopped with a bare "Expecting ',' delimiter"); a damaged line before the last is named with the file and
    line, before the model loads."""
    import json

    from sf2t.cli import main

    good, _ = clips
    run = tmp_path / "run"
    args = ["train", f"model={tiny}", f"videos=[{good[0]}]", "tasks=[counting]", "batch_size=2", "lora_rank=4"]
    args += [f"out_dir={run}", "save_every=2", "steps=4", "progress=false", "tensorboard=false"]
    assert main(args) == 0
    path = run / "metrics.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n" + lines[2][: len(lines[2]) // 2])  # killed while writing step 3
    capsys.readouterr()
    assert main(args + ["resume=auto"]) == 0
    out = capsys.readouterr().out
    assert f"{path}:3: a cut-short last line" in out and "dropped" in out
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and rows[:2] == [json.loads(line) for line in lines[:2]]
    text = path.read_text().splitlines()
    path.write_text("\n".join(["{broken", *text[1:]]) + "\n")
    assert main(args + ["resume=auto"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:1: not a metrics line" in err and "Traceback" not in err


def test_resume_errors_and_nan_stop(tiny, clips, tmp_path):
    from sf2t.train.loop import train

    with pytest.raises(FileNotFoundError, match="not a checkpoint"):
        train(_cfg(tiny, clips, tmp_path, steps=2, resume=str(tmp_path / "nowhere")), log=lambda s: None)
    # resume=auto with nothing saved starts from step 0 and says so
    lines = []
    res = train(_cfg(tiny, clips, tmp_path, steps=1, resume="auto"), log=lines.append, save=False)
    assert res["resumed_from"] == 0 and any("no checkpoint" in line for line in lines)
    with pytest.raises(ValueError, match="lr"):
        _cfg(tiny, clips, tmp_path, lr=float("nan"))
    from sf2t.models import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(tiny)
    with torch.no_grad():
        model.lm_head.weight[0, 0] = float("nan")  # a diverged model
    with pytest.raises(FloatingPointError, match="step 1.*last good checkpoint"):
        train(_cfg(tiny, clips, tmp_path, steps=2), model=model, tokenizer=tok, log=lambda s: None, save=False)


def test_cli_train_print_config_and_merge(tiny, clips, tmp_path, capsys):
    """`sf2t train` from a YAML file + overrides (both forms), `--print-config`, clear errors, and `sf2t merge`
    whose merged checkpoint gives the adapter model's logits."""
    import yaml

    from sf2t.cli import main
    from sf2t.train.loop import load_trained

    good, _ = clips
    run = tmp_path / "run"
    cfg = {"model": tiny, "videos": good, "steps": 3, "batch_size": 2, "out_dir": str(run), "progress": False}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "--print-config", "--config", str(tmp_path / "run.yaml"), "lora_rank=4"]) == 0
    out = capsys.readouterr().out
    assert "token_keep_ratio" in out and "lora_rank: 4" in out
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "--lora-rank", "4", "log_every=1"]) == 0
    assert "trained 3 steps" in capsys.readouterr().out
    assert (run / "adapter" / "adapter_config.json").is_file() and (run / "train_result.json").is_file()
    # the same out_dir again: refused (nothing of the first run is touched) unless resumed or overwritten
    first = (run / "adapter" / "adapter_model.safetensors").read_bytes()
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "seed=1"]) == 2
    err = capsys.readouterr().err
    assert "already holds a run (adapter, train_result.json, metrics.jsonl" in err and "overwrite=true" in err
    assert (run / "adapter" / "adapter_model.safetensors").read_bytes() == first
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "overwrite=true", "resume=auto"]) == 2
    assert "overwrite and resume are exclusive" in capsys.readouterr().err
    (run / "checkpoints" / "step-00000099").mkdir(parents=True)  # an old run's checkpoint: gone with overwrite
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "seed=1", "overwrite=true", "log_every=1"]) == 0
    out = capsys.readouterr().out
    assert "overwrite: removed the previous run's checkpoints" in out and "trained 3 steps" in out
    assert not (run / "checkpoints").exists() and (run / "adapter" / "adapter_model.safetensors").read_bytes() != first
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3  # this run's steps only
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "lr_rate=1"]) == 2
    assert "did you mean" in capsys.readouterr().err
    assert main(["train", "model=no/such-model", f"videos=[{good[0]}]"]) == 2
    assert "hf download no/such-model" in capsys.readouterr().err
    # a checkpoint sf2t cannot train, and an option its family cannot do: said before the model loads
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"model_type": "llama"}')
    assert main(["train", f"model={other}", f"videos=[{good[0]}]"]) == 2
    assert "'llama' is not supported" in capsys.readouterr().err
    (other / "config.json").write_text('{"model_type": "llava_onevision"}')
    args = ["train", f"model={other}", f"videos=[{good[0]}]", "token_keep_ratio=0.5", "token_stage=before_tower"]
    assert main(args) == 2
    assert "token_stage=before_tower compresses Qwen2-VL and Qwen2.5-VL towers" in capsys.readouterr().err
    assert main(["train", f"model={other}", f"videos=[{good[0]}]", "layout=pairs"]) == 2
    assert "layout=pairs groups frames for the Qwen families; llava_onevision takes each frame once" in (
        capsys.readouterr().err
    )
    from sf2t.train.cli import _precheck_model

    assert _precheck_model(TrainConfig(model=str(other), frame_size=[112, 112])) is None  # runs, but says so
    assert "frame_size=[112, 112] is not used: llava_onevision frames are sized" in capsys.readouterr().err
    assert _precheck_model(TrainConfig(model=str(other))) is None and "warning" not in capsys.readouterr().err

    assert main(["merge", "--base", tiny, "--adapter", str(run / "adapter"), "--out", str(tmp_path / "merged")]) == 0
    from sf2t.models import load_model_and_tokenizer

    merged, _ = load_model_and_tokenizer(tmp_path / "merged")
    lora, tok = load_trained(tiny, run / "adapter")
    ids = torch.tensor([[tok.convert_tokens_to_ids("<|im_start|>"), 5, 6, 7]])
    with torch.no_grad():
        torch.testing.assert_close(merged(input_ids=ids).logits, lora(input_ids=ids).logits, atol=1e-5, rtol=1e-5)
    assert main(["merge", "--base", tiny, "--adapter", str(tmp_path), "--out", str(tmp_path / "m2")]) == 2
    # bad paths are named before anything loads; a merged checkpoint is never overwritten unasked
    adapter = ["--adapter", str(run / "adapter")]
    capsys.readouterr()
    assert main(["merge", "--base", str(tmp_path / "nope"), *adapter, "--out", str(tmp_path / "m3")]) == 2
    assert "--base: model checkpoint path does not exist" in capsys.readouterr().err
    assert main(["merge", "--base", str(run / "adapter"), *adapter, "--out", str(tmp_path / "m3")]) == 2
    assert "lacks config.json" in capsys.readouterr().err
    assert main(["merge", "--base", tiny, *adapter, "--out", str(tmp_path / "run.yaml")]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err
    before = (tmp_path / "merged" / "model.safetensors").read_bytes()
    assert main(["merge", "--base", tiny, *adapter, "--out", str(tmp_path / "merged")]) == 2
    err = capsys.readouterr().err
    assert "is a folder that is not empty" in err and "--overwrite to replace it" in err
    assert main(["merge", "--base", tiny, *adapter, "--out", tiny, "--overwrite"]) == 2
    assert "is --base" in capsys.readouterr().err
    # a folder holding the adapter (or the base, or the working folder): --overwrite once deleted them with it
    held = sorted(p.name for p in tmp_path.iterdir())
    assert main(["merge", "--base", tiny, *adapter, "--out", str(tmp_path), "--overwrite"]) == 2
    assert "holds --adapter" in capsys.readouterr().err and sorted(p.name for p in tmp_path.iterdir()) == held
    assert main(["merge", "--base", tiny, *adapter, "--out", ".", "--overwrite"]) == 2
    assert "is the working folder" in capsys.readouterr().err
    broken = tmp_path / "broken"
    for text, words in (("[1]", "not a peft adapter config"), ("{broken", "not a readable JSON file"), ("{}", "peft")):
        broken.mkdir(exist_ok=True)
        (broken / "adapter_config.json").write_text(text)
        assert main(["merge", "--base", tiny, "--adapter", str(broken), "--out", str(tmp_path / "m5")]) == 2
        err = capsys.readouterr().err
        assert words in err and "the adapter is damaged" in err
    assert main(["merge", "--base", tiny, *adapter, "--out", str(tmp_path / "merged"), "--overwrite"]) == 0
    assert (tmp_path / "merged" / "model.safetensors").read_bytes() == before  # the same merge again
    assert not list(tmp_path.glob(".merged.tmp-*"))
    # an adapter trained on another model: named, not a traceback
    from sf2t.models import build_tiny_qwen2_vl

    wider = build_tiny_qwen2_vl(tmp_path / "wider", hidden_size=96)
    assert main(["merge", "--base", str(wider), *adapter, "--out", str(tmp_path / "m4")]) == 2
    err = capsys.readouterr().err
    assert "does not fit the base" in err and "size mismatch" in err and not (tmp_path / "m4").exists()


def test_merge_names_an_incomplete_damaged_or_misfit_adapter(tiny, tmp_path, capsys):
    """`sf2t merge` with an adapter whose weights file is missing (peft went to the Hub for it: a ConnectError
    traceback offline), cut short (a SafetensorError traceback) or without tensors for some of the base's LoRA layers
    (an adapter of another model: peft warned and the merge went on, those layers left at B = 0), and an --out under
    a file (said after the model loaded): each a named error, exit 2, nothing written."""
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file, save_file

    from sf2t.cli import main
    from sf2t.models import load_model_and_tokenizer

    model, _ = load_model_and_tokenizer(tiny)
    adapter = tmp_path / "adapter"
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"])).save_pretrained(adapter)
    weights = adapter / "adapter_model.safetensors"
    tensors = load_file(weights)

    def merge(adapter_dir, out="m"):
        code = main(["merge", "--base", tiny, "--adapter", str(adapter_dir), "--out", str(tmp_path / out)])
        return code, capsys.readouterr().err

    cases = {}
    for name in ("none", "cut", "part"):
        shutil.copytree(adapter, tmp_path / name)
        cases[name] = tmp_path / name / "adapter_model.safetensors"
    cases["none"].unlink()
    cases["cut"].write_bytes(weights.read_bytes()[:100])
    kept = dict(list(sorted(tensors.items()))[: len(tensors) // 2])
    save_file(kept, cases["part"])
    code, err = merge(tmp_path / "none")
    assert code == 2 and "has no weights file (adapter_model.safetensors)" in err
    code, err = merge(tmp_path / "cut")
    assert code == 2 and "its weights file cannot be read" in err and "damaged" in err
    code, err = merge(tmp_path / "part")
    assert code == 2 and "does not fit the base model" in err and "has no weights for LoRA layer" in err
    assert f"(and {len(tensors) - len(kept) - 1} more)" in err
    f = tmp_path / "file"
    f.write_text("keep")
    code, err = merge(adapter, "file/merged")
    assert code == 2 and f"--out {tmp_path / 'file/merged'}: {f} is a file, not a folder" in err
    assert "Traceback" not in err and not (tmp_path / "m").exists() and f.read_text() == "keep"
    assert merge(adapter)[0] == 0  # the whole adapter merges


def test_metrics_jsonl_tensorboard_and_resume(tiny, clips, tmp_path):
    """Every step writes loss, lr, samples/s, tokens/s, data-wait fraction and per-task loss to metrics.jsonl (and
    TensorBoard events); a resumed run keeps each step once."""
    import json

    from sf2t.train.loop import train

    kw = dict(steps=4, batch_size=2, lora=True, full_finetune=False, save_every=2)
    train(_cfg(tiny, clips, tmp_path, **kw), log=lambda s: None, save=False)
    out = tmp_path / "run"
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for r in rows:
        assert {"loss", "lr", "samples_per_s", "tokens_per_s", "data_wait_fraction"} <= set(r)
        assert 0.0 <= r["data_wait_fraction"] <= 1.0 and r["samples_per_s"] > 0 and r["tokens_per_s"] > 0
        assert any(k.startswith("loss/") for k in r)
        assert all(0.0 <= v <= 1.0 for k, v in r.items() if k.startswith("train_acc/")) and any(
            k.startswith("train_acc/") for k in r
        )
    pytest.importorskip("tensorboard")
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    train(_cfg(tiny, clips, tmp_path, resume=str(out / "checkpoints" / "step-00000002"), **kw), log=lambda s: None)
    rows2 = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows2] == [1, 2, 3, 4]
    assert [r["loss"] for r in rows2] == [r["loss"] for r in rows]  # the resumed steps are the same steps


_DDP_SCRIPT = r"""
import json, os, sys, torch
torch.set_num_threads(1)
from sf2t.models import load_model_and_tokenizer
from sf2t.train.config import TrainConfig
from sf2t.train.evaluate import build_eval_set, evaluate
from sf2t.train.loop import make_factories, train
cfg = TrainConfig(**json.loads(sys.argv[1]))
rank = int(os.environ["RANK"])
eval_fn = None
if rank == 0:  # as sf2t train does: rank 0 evaluates, the others wait
    _, tok = load_model_and_tokenizer(cfg.model)
    eval_set = build_eval_set(make_factories(cfg, tok)[1], cfg.tasks, 1)
    eval_fn = lambda m, step: {"answers": [r["answer"] for r in evaluate(m, tok, eval_set)["samples"]]}
res = train(cfg, log=lambda s: None, save=False, eval_fn=eval_fn)
trained = {n: p.detach() for n, p in res["model"].named_parameters() if p.requires_grad}
keys = ("losses", "world_size", "evals", "samples", "task_losses", "task_train_accuracy")
torch.save({**{k: res[k] for k in keys}, "params": trained}, f"{sys.argv[2]}.{rank}")
"""


def test_two_process_gloo_ddp_matches_one_process(tiny, clips, tmp_path):
    """torchrun with 2 CPU processes (gloo), batch 2 each and 2 micro-batches per step, gives the losses, weights,
    per-task losses and accuracies (metrics.jsonl too) and held-out evaluations of one process with batch 4: the
    ranks draw disjoint halves of the same global batch, the loss is normalised over the global batch, the per-task
    numbers are gathered from both, and rank 0 alone evaluates. A checkpoint of the 2-process run resumed by one
    process with batch 4 (the same global batch) continues it exactly; with batch 2 it goes on from the next unseen
    sample, and says that the global batch changed."""
    import json

    from sf2t.train.loop import make_factories, train

    good, _ = clips
    base = dict(model=tiny, videos=good, eval_videos=good, steps=3, lr=2e-3, warmup_steps=1, lora=False)
    base.update(full_finetune=True, grad_accum=2, eval_every=1, save_every=2, progress=False, log_every=0, seed=0)
    base.update(tensorboard=False)
    from sf2t.models import load_model_and_tokenizer
    from sf2t.train.evaluate import build_eval_set, evaluate

    _, tok = load_model_and_tokenizer(tiny)
    eval_set = build_eval_set(make_factories(TrainConfig(**base), tok)[1], TrainConfig().tasks, 1)

    def eval_fn(m, step):
        return {"answers": [r["answer"] for r in evaluate(m, tok, eval_set)["samples"]]}

    cfg = TrainConfig(**base, batch_size=4, out_dir=str(tmp_path / "one"))
    one = train(cfg, log=lambda s: None, save=False, eval_fn=eval_fn)
    _torchrun(_DDP_SCRIPT, tmp_path, {**base, "batch_size": 2, "out_dir": str(tmp_path / "two")}, tmp_path / "two.pt")
    two, other = (torch.load(tmp_path / f"two.pt.{r}", weights_only=False) for r in (0, 1))
    assert two["world_size"] == 2 and len(two["losses"]) == 3
    assert two["losses"] == pytest.approx(one["losses"], abs=1e-5)
    assert other["losses"] == two["losses"]
    ref = {n: p for n, p in one["model"].named_parameters() if p.requires_grad}
    for n, p in two["params"].items():
        torch.testing.assert_close(p, ref[n].detach(), atol=1e-5, rtol=1e-4)
    # every sample of the global batch counts in the per-task numbers (not rank 0's half)
    assert two["samples"] == one["samples"] == 3 * 8
    for key in ("task_losses", "task_train_accuracy"):
        assert two[key].keys() == one[key].keys()
        for task, curve in one[key].items():
            assert [c["upto"] for c in two[key][task]] == [c["upto"] for c in curve]
            assert [c["loss"] for c in two[key][task]] == pytest.approx([c["loss"] for c in curve], abs=1e-5)
    rows = [
        [json.loads(line) for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()] for d in ("one", "two")
    ]
    assert [r["step"] for r in rows[1]] == [1, 2, 3]  # written once, by rank 0
    for a, b in zip(*rows):
        per_task = sorted(k for k in a if k.startswith(("loss/", "train_acc/")))
        assert per_task == sorted(k for k in b if k.startswith(("loss/", "train_acc/")))
        assert [b[k] for k in per_task] == pytest.approx([a[k] for k in per_task], abs=1e-5)
    # rank 0 evaluated at steps 1 and 2 (the final evaluation is sf2t train's), on the weights one process had then
    assert [e["step"] for e in two["evals"]] == [e["step"] for e in one["evals"]] == [1, 2]
    assert [e["answers"] for e in two["evals"]] == [e["answers"] for e in one["evals"]]
    # resumed by one process: the same global batch continues exactly; a smaller one draws the next unseen samples
    ckpt = str(tmp_path / "two" / "checkpoints" / "step-00000002")
    lines = []
    cfg = TrainConfig(**{**base, "eval_every": 0}, batch_size=4, resume=ckpt, out_dir=str(tmp_path / "r4"))
    r4 = train(cfg, log=lines.append, save=False)
    assert r4["losses"] == pytest.approx(one["losses"], abs=1e-5)
    assert [e["step"] for e in r4["evals"]] == [1, 2]  # the evaluations rank 0 made are in the checkpoint
    assert any("the same global batch of 4 samples" in line for line in lines), lines
    assert any("written by 2 processes x batch_size 2, this run has 1 x 4" in line for line in lines), lines
    assert not any("differs" in line for line in lines), lines
    cfg = TrainConfig(**{**base, "eval_every": 0}, batch_size=2, resume=ckpt, out_dir=str(tmp_path / "r2"))
    factory, _ = make_factories(cfg, tok)
    drawn, sample = [], factory.sample
    factory.sample = lambda i, **kw: drawn.append(i) or sample(i, **kw)
    lines = []
    train(cfg, log=lines.append, save=False, factory=factory)
    assert drawn == list(range(16, 20))  # 2 steps x 2 micro-batches x 4 samples were trained before
    said = [line for line in lines if "differs" in line]
    assert len(said) == 1 and "global batch (processes x batch_size): 2 x 2 -> 1 x 2" in said[0], lines


_FSDP_SCRIPT = r"""
import json, sys, torch
torch.set_num_threads(1)
from sf2t.train.config import TrainConfig
from sf2t.train.loop import train
cfg = TrainConfig(**json.loads(sys.argv[1]))
res = train(cfg, log=lambda s: None)
if res["rank"] == 0:
    kinds = sorted({type(p).__name__ for p in res["model"].parameters()})
    out = {"losses": res["losses"], "world": res["world_size"], "saved": res["saved"], "kinds": kinds}
    torch.save(out, sys.argv[2])
"""


def _torchrun(script: str, tmp_path, cfg: dict, out, env_extra=None):
    import json
    import os
    import socket
    import subprocess
    import sys

    path = tmp_path / "run_script.py"
    # each rank ends as `sf2t train` ends under torchrun (sf2t.train.cli._leave: no interpreter teardown, where a
    # complete rank aborted now and then); faulthandler names the Python frames of an abort before that
    path.write_text(script + "\nfrom sf2t.train.cli import _leave\n_leave(0)\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1", **(env_extra or {})}
    for _ in range(3):  # the free port found here can be taken before torchrun binds it: try another
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1"]
        cmd += ["--master_port", str(port), str(path), json.dumps(cfg), str(out)]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        if r.returncode == 0 or not any(w in r.stderr for w in ("address already in use", "EADDRINUSE")):
            break
    assert r.returncode == 0, r.stderr[-3000:]
    return torch.load(out, weights_only=False) if os.path.exists(out) else None


def test_two_process_fsdp2_matches_one_process_and_resumes(tiny, clips, tmp_path):
    """FSDP2 (fsdp=true) over 2 gloo processes, LoRA, batch 2 each: the losses and the saved adapter of one
    unsharded process with batch 4; a checkpoint gathered from the shards resumes the run exactly. On CPU FSDP is
    refused unless SF2T_ALLOW_CPU_FSDP=1 (tests)."""
    from sf2t.train.loop import load_trained, train

    good, _ = clips
    base = dict(model=tiny, videos=good, steps=4, lr=5e-3, warmup_steps=1, lora=True, lora_rank=4, lora_alpha=8)
    base.update(progress=False, log_every=0, seed=0, tensorboard=False)
    one = train(TrainConfig(**base, batch_size=4, out_dir=str(tmp_path / "one")), log=lambda s: None)
    allow = {"SF2T_ALLOW_CPU_FSDP": "1"}
    cfg = {**base, "batch_size": 2, "fsdp": True, "save_every": 2, "out_dir": str(tmp_path / "two")}
    two = _torchrun(_FSDP_SCRIPT, tmp_path, cfg, tmp_path / "two.pt", allow)
    assert two["world"] == 2 and len(two["losses"]) == 4
    assert two["kinds"] == ["DTensor"]  # every parameter sharded
    assert two["losses"] == pytest.approx(one["losses"], abs=1e-5)
    sharded, _ = load_trained(tiny, two["saved"])
    ref = {n: p.detach() for n, p in one["model"].named_parameters() if p.requires_grad}
    got = {n: p.detach() for n, p in sharded.named_parameters() if n in ref}
    assert got.keys() == ref.keys()
    for n, p in got.items():
        torch.testing.assert_close(p, ref[n], atol=1e-5, rtol=1e-4)
    ckpt = tmp_path / "two" / "checkpoints" / "step-00000002"
    assert (ckpt / "adapter" / "adapter_config.json").is_file()
    resumed_cfg = {**cfg, "resume": str(ckpt), "out_dir": str(tmp_path / "resumed")}
    resumed = _torchrun(_FSDP_SCRIPT, tmp_path, resumed_cfg, tmp_path / "resumed.pt", allow)
    assert resumed["losses"] == pytest.approx(two["losses"], abs=1e-6)
    with pytest.raises(ValueError, match="fsdp=true is for CUDA devices"):
        TrainConfig(**{**cfg, "fsdp": True})


_DDP_RESUME_SCRIPT = r"""
import json, os, sys, torch
torch.set_num_threads(1)
torch.distributed.init_process_group("gloo")  # one group for both runs (train() leaves a group it did not start)
from sf2t.train.config import TrainConfig
from sf2t.train.loop import train
cfg = json.loads(sys.argv[1])
whole = train(TrainConfig(**cfg), log=lambda s: None, save=False)
ckpt = os.path.join(cfg["out_dir"], "checkpoints", "step-00000002")
again = {**cfg, "resume": ckpt, "out_dir": cfg["out_dir"] + "-resumed"}
resumed = train(TrainConfig(**again), log=lambda s: None, save=False)
if torch.distributed.get_rank() == 0:
    state = json.load(open(os.path.join(ckpt, "state.json")))
    out = {"whole": whole["losses"], "resumed": resumed["losses"], "skipped": whole["skipped"], "state": state}
    torch.save(out, sys.argv[2])
torch.distributed.destroy_process_group()
"""


def test_two_process_resume_is_exact_with_each_ranks_drops_and_rng(tiny, clips, tmp_path):
    """A 2-process run resumed with 2 processes gives the uninterrupted run's losses although the ranks differ in
    what they hold besides the weights: each draws its own LoRA dropout masks (torch RNG) and drops the videos too
    static for a task when it meets them (here rank 1 drops the static clip before the checkpoint, rank 0 never), so
    the checkpoint keeps every rank's RNG state and dropped videos; the run's skipped list has every rank's."""
    good, bad = clips
    cfg = dict(model=tiny, videos=good + [bad["static"]], tasks=["disorder"], steps=4, batch_size=1, save_every=2)
    cfg.update(lr=5e-3, warmup_steps=1, lora=True, lora_rank=4, lora_alpha=8, lora_dropout=0.3, seed=6)
    cfg.update(progress=False, log_every=0, tensorboard=False, out_dir=str(tmp_path / "run"))
    got = _torchrun(_DDP_RESUME_SCRIPT, tmp_path, cfg, tmp_path / "got.pt")
    state = got["state"]
    assert state["world_size"] == 2 and state["next_index"] == 4 and len(state["rng_by_rank"]) == 2
    # the case this test is about: only rank 1 met the static clip before the checkpoint
    assert [[d[0] for d in ds] for ds in state["dropped_by_rank"]] == [[], [bad["static"]]]
    assert [d[0] for d in state["dropped"]] == [bad["static"]]
    assert [s["path"] for s in got["skipped"]] == [bad["static"]]  # rank 0's result (the report) names it
    assert got["resumed"] == got["whole"]


def test_cli_train_fsdp_needs_torchrun_and_only_rank_0_sums_up(tiny, clips, tmp_path, capsys, monkeypatch):
    """fsdp=true in one process (no torchrun) is refused before the model loads, by `sf2t train` and by train(),
    saying to run it under torchrun (it failed in torch.distributed's rendezvous: "environment variable RANK
    expected"); under torchrun only rank 0 prints the closing summary (the others printed "saved None")."""
    from sf2t.train import cli
    from sf2t.train.loop import train

    good, _ = clips
    monkeypatch.setenv("SF2T_ALLOW_CPU_FSDP", "1")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    argv = [f"model={tiny}", f"videos=[{','.join(good)}]", f"out_dir={tmp_path / 'run'}", "steps=1", "progress=false"]
    assert cli.train_main([*argv, "fsdp=true"]) == 2
    err = capsys.readouterr().err
    assert "fsdp=true shards the model over torchrun's processes" in err and "torchrun --nproc_per_node" in err
    with pytest.raises(ValueError, match="run it under torchrun"):
        train(_cfg(tiny, clips, tmp_path, fsdp=True, steps=1), log=lambda s: None)
    res = {"losses": [1.0], "steps": 1, "seconds": 0.1, "resumed_from": 0, "saved": None}
    monkeypatch.setattr(cli, "run_training", lambda cfg: res)
    monkeypatch.setenv("RANK", "1")
    assert cli.train_main(argv) == 0
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("RANK", "0")
    assert cli.train_main(argv) == 0
    assert capsys.readouterr().out.startswith("trained 1 step in")  # (it said "1 steps")


def test_supervised_video_qa_mixed_in(tiny, clips, tmp_path):
    """LLaVA- and ShareGPT-style video QA mixed at a ratio: those samples supervise the record's answer, training
    reports their loss as the 'supervised' task, bad records are named before training."""
    import json

    from sf2t.models import load_model_and_tokenizer
    from sf2t.train.loop import make_factories, train

    good, _ = clips
    recs = [
        {"id": "a", "video": good[0], "conversations": [
            {"from": "human", "value": "<video>\nWhat moves?"}, {"from": "gpt", "value": "A red square."}]},
        {"messages": [{"role": "user", "content": "<video>Describe it."}, {"role": "assistant", "content": "Shapes."}],
         "videos": [good[1]]},
    ]  # fmt: skip
    data = tmp_path / "qa.json"
    data.write_text(json.dumps(recs))
    cfg = _cfg(tiny, clips, tmp_path, steps=4, batch_size=4, supervised_data=str(data), supervised_ratio=0.5)
    _, tok = load_model_and_tokenizer(tiny)
    factory, _ = make_factories(cfg, tok)
    import sf2t.video

    probed = []
    real_probe = sf2t.video.probe
    with pytest.MonkeyPatch.context() as mp:  # each supervised video probed once (probe reads its whole container)
        mp.setattr(sf2t.video, "probe", lambda path, **kw: probed.append(path) or real_probe(path, **kw))
        kinds = [factory.sample(i)["task"] for i in range(40)]
    assert 8 <= kinds.count("supervised") <= 32 and set(kinds) - {"supervised"}
    assert sorted(probed) == sorted(set(probed)) and len(probed) <= 2
    s = next(factory.sample(i) for i in range(40) if kinds[i] == "supervised")
    assert tok.decode(s["input_ids"][s["labels"] != -100]) in ("A red square.<|im_end|>", "Shapes.<|im_end|>")
    assert "<video>" not in s["question"] and s["video_grid_thw"][0, 0] == 8  # 8 frames, each its own group
    res = train(cfg, log=lambda x: None, save=False)
    assert "supervised" in res["task_losses"]
    data.write_text(json.dumps([{"video": good[0], "conversations": [{"from": "human", "value": "Q"}]}]))
    with pytest.raises(ValueError, match="record 0: needs a user/human turn and an assistant"):
        make_factories(cfg, tok)
    with pytest.raises(ValueError, match="needs supervised_data"):
        _cfg(tiny, clips, tmp_path, supervised_ratio=0.3)


def test_supervised_records_pair_questions_with_their_answers(tmp_path):
    """Each answer is paired with the question before it (a record opening with an assistant turn trained that turn
    as the answer to the question after it), every turn of a multi-turn record is kept (only the first was), the
    system turn too, either key pair (from/value, role/content) is read in either list, and what sf2t cannot train
    on as it is written is named: a record showing two videos (only the first was shown, its question asking about
    both), images instead of a video."""
    import json

    from sf2t.train.supervised import load_supervised

    def load(*recs):
        path = tmp_path / "qa.json"
        path.write_text(json.dumps(list(recs)))
        return load_supervised(path)

    conv = [{"from": "human", "value": "Look at<video>this"}, {"from": "gpt", "value": " A square. "}]
    (r,) = load({"video": "v.mp4", "conversations": conv + [{"from": "human", "value": "Colour?"},
                                                          {"from": "gpt", "value": "Red."}]})  # fmt: skip
    assert (r.question, r.answer, r.more, r.system) == ("Look at this", "A square.", (("Colour?", "Red."),), None)
    assert r.video == str(tmp_path / "v.mp4")
    turns = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "<video>\nQ"},
             {"role": "assistant", "content": "A"}, {"role": "user", "content": "?"}]  # fmt: skip
    (r,) = load({"videos": ["/abs/v.mp4"], "conversations": turns})
    assert (r.video, r.question, r.answer, r.more, r.system) == ("/abs/v.mp4", "Q", "A", (), "Be brief.")
    bad = {
        "taking turns": {"video": "v.mp4", "conversations": [{"from": "gpt", "value": "Hi!"}, *conv]},
        "shows 2 videos": {"videos": ["a.mp4", "b.mp4"], "conversations": conv},
        "shows images, not a video": {"images": ["a.png"], "conversations": conv},
        "images as well as a video": {"video": "a.mp4", "image": "a.png", "conversations": conv},
        "pair 1 has an empty": {"video": "v.mp4", "conversations": [*conv, conv[0], {"from": "gpt", "value": " "}]},
        "role 'tool'": {"video": "v.mp4", "conversations": [*conv, {"from": "tool", "value": "x"}]},
    }
    for msg, rec in bad.items():
        with pytest.raises(ValueError, match=f"record 1: .*{msg}"):
            load({"video": "v.mp4", "conversations": conv}, rec)


def test_supervised_multi_turn_and_unreadable_videos_in_training(tiny, clips, tmp_path):
    """A multi-turn record trains every answer (and masks every question); a record whose video is missing or does
    not decode is skipped and recorded (it raised in the middle of training), another record drawn in its place,
    the same one whatever was drawn before (a fresh factory, as a worker or a resumed run has, draws the same); when
    no record's video can be read the message says so."""
    import json

    from sf2t.models import load_model_and_tokenizer
    from sf2t.train.data import NoUsableVideo
    from sf2t.train.loop import make_factories

    good, bad = clips
    conv = [{"from": "human", "value": "<video>\nWhat moves?"}, {"from": "gpt", "value": "A square."},
            {"from": "human", "value": "Which colour?"}, {"from": "gpt", "value": "Red."}]  # fmt: skip
    recs = [{"id": "ok", "video": good[0], "conversations": conv}]
    recs += [{"id": k, "video": bad[k], "conversations": conv[:2]} for k in ("missing", "noise", "empty")]
    data = tmp_path / "qa.json"
    data.write_text(json.dumps(recs))
    cfg = _cfg(tiny, clips, tmp_path, supervised_data=str(data), supervised_ratio=0.5)
    _, tok = load_model_and_tokenizer(tiny)
    factory, _ = make_factories(cfg, tok)
    samples = [factory.sample(i) for i in range(24)]
    sup = [s for s in samples if s["task"] == "supervised"]
    assert len(sup) >= 6 and {s["meta"]["id"] for s in sup} == {"ok"}
    s = sup[0]
    assert tok.decode(s["input_ids"][s["labels"] != -100]) == "A square.<|im_end|>Red.<|im_end|>"
    assert "Which colour?" in tok.decode(s["input_ids"])
    skipped = {x.path: x for x in factory.pool.skipped}
    assert {bad[k] for k in ("missing", "noise", "empty")} <= set(skipped)
    assert all(skipped[bad[k]].task == "supervised" for k in ("missing", "noise", "empty"))
    fresh, _ = make_factories(cfg, tok)
    last = max(i for i, s in enumerate(samples) if s["task"] == "supervised")
    assert torch.equal(fresh.sample(last)["input_ids"], samples[last]["input_ids"])
    data.write_text(json.dumps(recs[1:]))
    factory, _ = make_factories(cfg, tok)
    with pytest.raises(NoUsableVideo, match="supervised_data"):
        for i in range(24):
            factory.sample(i)


def test_cli_train_names_which_videos_ran_out(tiny, clips, tmp_path, capsys):
    """When the data cannot serve the run, the message says which set and why: the held-out set, a task_videos
    filter that matches no video, a task that needs two videos given one."""
    from sf2t.cli import main

    good, bad = clips
    base = ["train", f"model={tiny}", f"videos=[{good[0]},{good[1]}]", "steps=1", "batch_size=2", "progress=false"]
    assert main([*base, f"eval_videos=[{bad['noise']}]", f"out_dir={tmp_path / 'a'}"]) == 1
    err = capsys.readouterr().err
    assert "held-out set (eval_videos): no usable videos left" in err and "noise.mp4" in err
    assert main([*base, "task_videos={counting:[/nowhere]}", "tasks=[counting]", f"out_dir={tmp_path / 'b'}"]) == 1
    assert "none of the 2 usable videos is under task_videos' paths" in capsys.readouterr().err
    one = ["train", f"model={tiny}", f"videos=[{good[0]}]", "tasks=[localization]", f"out_dir={tmp_path / 'c'}"]
    assert main([*one, "steps=1", "progress=false"]) == 2
    err = capsys.readouterr().err
    assert "takes its target from a different video" in err and "Traceback" not in err


def test_cli_train_interrupted_says_where_to_resume(tiny, clips, tmp_path, capsys, monkeypatch):
    """Ctrl-C during a run: no traceback, exit 130, and the checkpoint resume=auto continues from (or that none was
    written)."""
    import sf2t.train.cli as train_cli
    from sf2t.cli import main

    good, _ = clips
    run = tmp_path / "run"

    def stopped(cfg, log=print):
        if cfg.save_every:
            (run / "checkpoints" / "step-00000004").mkdir(parents=True)
            (run / "checkpoints" / "step-00000004" / "state.json").write_text("{}")
            (run / "checkpoints" / "latest").write_text("step-00000004")
        raise KeyboardInterrupt

    monkeypatch.setattr(train_cli, "run_training", stopped)
    args = ["train", f"model={tiny}", f"videos=[{good[0]}]", f"out_dir={run}"]
    assert main([*args, "save_every=2"]) == 130
    err = capsys.readouterr().err
    assert "interrupted; the last checkpoint is" in err and "step-00000004: resume=auto continues" in err
    assert main([*args[:-1], f"out_dir={tmp_path / 'other'}"]) == 130
    assert "no checkpoint was written (save_every=N writes them)" in capsys.readouterr().err


def test_cli_train_final_line_once_and_resumed_only_when_resumed(tiny, clips, tmp_path, capsys, monkeypatch):
    """The closing line says "resumed from step N" only for a resumed run (a fresh run used to say "resumed from step
    0"), and under torchrun only rank 0 prints it (every rank used to, the others with "saved None")."""
    import sf2t.train.cli as train_cli
    from sf2t.cli import main

    good, _ = clips
    res = {"steps": 3, "seconds": 1.0, "losses": [1.0], "saved": "x/adapter", "rank": 0, "resumed_from": 0}
    monkeypatch.setattr(train_cli, "run_training", lambda cfg, log=print: dict(res))
    args = ["train", f"model={tiny}", f"videos=[{good[0]}]", f"out_dir={tmp_path / 'run'}"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "trained 3 steps in 1.0 s; final loss" in out and "resumed" not in out
    res["resumed_from"] = 2
    assert main(args) == 0
    assert "trained 3 steps in 1.0 s (resumed from step 2); final loss" in capsys.readouterr().out
    res["rank"], res["saved"] = 1, None
    assert main(args) == 0
    assert capsys.readouterr().out == ""


def test_cli_train_checks_supervised_data_before_loading(tiny, clips, tmp_path, capsys):
    """A missing or malformed supervised QA file is named before the model loads; set with ratio 0 it is unused and
    said so."""
    from sf2t.cli import main
    from sf2t.train.cli import _precheck_supervised

    good, _ = clips
    base = ["train", f"model={tiny}", f"videos=[{good[0]}]", f"out_dir={tmp_path / 'r'}", "supervised_ratio=0.3"]
    assert main([*base, f"supervised_data={tmp_path / 'none.json'}"]) == 2
    assert "none.json does not exist" in capsys.readouterr().err
    (tmp_path / "d.json").write_text('{"a": 1}')
    assert main([*base, f"supervised_data={tmp_path / 'd.json'}"]) == 2
    assert "must hold a non-empty list of records" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    cfg = TrainConfig(videos=[good[0]], supervised_data=str(tmp_path / "d.json"), supervised_ratio=0.0)
    assert _precheck_supervised(cfg) is None
    assert "supervised_ratio is 0, so none of it is mixed in" in capsys.readouterr().err


def test_cli_train_progress_false_turns_off_transformers_bars_too(tiny, clips, tmp_path, monkeypatch):
    """sf2t train progress=false: transformers' "Loading weights" bars are off for the run (they were drawn still),
    on again after; progress=true leaves them on."""
    from transformers.utils import logging as hf_logging

    import sf2t.train.cli as train_cli

    seen = []

    def run_training(cfg):
        seen.append(hf_logging.is_progress_bar_enabled())
        raise ValueError("stopped here")  # (a ValueError: one line, exit 2)

    monkeypatch.setattr(train_cli, "run_training", run_training)
    argv = [f"model={tiny}", f"videos=[{clips[0][0]}]", "steps=1"]
    for i, progress in enumerate(("false", "true")):
        assert train_cli.train_main([*argv, f"out_dir={tmp_path / str(i)}", f"progress={progress}"]) == 2
    assert seen == [False, True] and hf_logging.is_progress_bar_enabled()


def test_cli_train_bad_out_dir_model_file_and_binary_supervised_data(tiny, clips, tmp_path, capsys):
    """An out_dir under a file failed with a NotADirectoryError traceback after training; a model= that names a file
    (the weights) was told to download it from the Hub; a supervised_data that is not text gave a bare UnicodeDecode
    message naming no file. Each is now named before the model loads (exit 2)."""
    from sf2t.cli import main

    good, bad = clips
    base = ["train", "steps=1", "batch_size=2", "progress=false", f"videos=[{good[0]}]"]
    f = tmp_path / "file"
    f.write_text("keep")
    assert main([*base, f"model={tiny}", f"out_dir={f / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert f"out_dir {f / 'run'}: {f} is a file, not a folder" in err and "Traceback" not in err
    assert f.read_text() == "keep"
    weights = next(Path(tiny).glob("*.safetensors"))
    assert main([*base, f"model={weights}", f"out_dir={tmp_path / 'r'}"]) == 2
    err = capsys.readouterr().err
    assert "is a file; model= takes the checkpoint's folder" in err and "hf download" not in err
    assert (
        main(
            [*base, f"model={tiny}", f"out_dir={tmp_path / 'r'}", "supervised_ratio=0.3", f"supervised_data={weights}"]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert f"supervised_data: {weights}: not a text file" in err
    assert not (tmp_path / "r").exists()


def test_damaged_checkpoint_weights_and_tokenizer_are_named(tiny, clips, tmp_path, capsys):
    """A base checkpoint whose weights are missing (a transformers OSError traceback), cut short or overwritten (a
    SafetensorError traceback), a sharded one missing a shard, or whose tokenizer.json does not parse (json's bare
    "Expecting property name", naming no file): train and merge name the file, exit 2, and train says it before
    anything loads."""
    import json

    from sf2t.cli import main
    from sf2t.models import load_model_and_tokenizer

    good, _ = clips
    weights = (Path(tiny) / "model.safetensors").read_bytes()
    cases = {
        "none": (lambda d: (d / "model.safetensors").unlink(), "holds no weights (model.safetensors"),
        "cut": (lambda d: (d / "model.safetensors").write_bytes(weights[: len(weights) // 2]), "is cut short ("),
        "junk": (lambda d: (d / "model.safetensors").write_bytes(b"\xff" * 64), "is damaged (no safetensors header)"),
    }
    for name, (damage, words) in cases.items():
        d = tmp_path / name
        shutil.copytree(tiny, d)
        damage(d)
        argv = ["train", f"model={d}", f"videos=[{good[0]}]", f"out_dir={tmp_path / 'r'}", "steps=1", "progress=false"]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"sf2t train: model checkpoint: {d}" in err and words in err and "Traceback" not in err, err
        with pytest.raises(ValueError, match=re.escape(words)):
            load_model_and_tokenizer(d)
    assert not (tmp_path / "r").exists()
    from sf2t.models._build import checkpoint_weights_problem

    shard = tmp_path / "sharded"
    shutil.copytree(tiny, shard)
    (shard / "model.safetensors").rename(shard / "model-00001-of-00002.safetensors")
    names = {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}
    (shard / "model.safetensors.index.json").write_text(json.dumps({"weight_map": names}))
    assert (
        checkpoint_weights_problem(shard) == f"{shard / names['b']} is missing (named in model.safetensors.index.json)"
    )
    assert checkpoint_weights_problem(tiny) is None
    tok = tmp_path / "tok"
    shutil.copytree(tiny, tok)
    (tok / "tokenizer.json").write_text("{broken")
    with pytest.raises(ValueError, match=r"tok': its tokenizer does not load \(Expecting property name"):
        load_model_and_tokenizer(tok)
    adapter = tmp_path / "adapter"
    (adapter).mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    assert (
        main(["merge", "--base", str(tmp_path / "cut"), "--adapter", str(adapter), "--out", str(tmp_path / "m")]) == 2
    )
    assert f"sf2t merge: --base: {tmp_path / 'cut' / 'model.safetensors'} is cut short" in capsys.readouterr().err


def test_answer_budget_fits_the_longest_answer_in_tokens(tiny):
    """The held-out generation budget fits the answer with the most tokens, not only the 8 longest in characters
    (a 13-token "1, 2, 3, 4, 5" behind nine 16-character, 6-token answers got a budget of 8: cut, scored wrong)."""
    from transformers import AutoTokenizer

    from sf2t.train.evaluate import answer_budget

    tok = AutoTokenizer.from_pretrained(tiny, local_files_only=True)
    answers = [f"Frame number {i:02d}." for i in range(9)] + ["1, 2, 3, 4, 5"]
    most = max(len(tok(a, add_special_tokens=False)["input_ids"]) for a in answers)
    assert most > len(tok(answers[0], add_special_tokens=False)["input_ids"]) + 2  # the case this checks
    assert answer_budget(tok, [{"answer": a} for a in answers]) == most + 2


def test_answer_exact():
    from sf2t.train.loop import answer_exact

    logits = torch.zeros(3, 4, 5)
    labels = torch.full((3, 4), -100)
    labels[0, 2:] = torch.tensor([1, 2])  # tokens 2, 3 supervised: predicted at positions 1, 2
    logits[0, 1, 1] = logits[0, 2, 2] = 5.0
    labels[1, 2:] = torch.tensor([1, 3])
    logits[1, 1, 1] = logits[1, 2, 2] = 5.0  # second token wrong
    assert answer_exact(logits, labels).tolist() == [True, False, False]  # row 2: nothing supervised


def test_workers_give_the_same_batches_and_run(tiny, clips, tmp_path):
    """workers=2: DataLoader processes make the samples, in index order: the batches equal workers=0's (curriculum
    restriction included), and a short run trains with the same first losses."""
    from sf2t.models import load_model_and_tokenizer
    from sf2t.train.data import batches
    from sf2t.train.loop import make_factories, train

    cfg = _cfg(tiny, clips, tmp_path, tasks=["counting", "disorder"])
    _, tok = load_model_and_tokenizer(tiny)
    factory, _ = make_factories(cfg, tok)

    def tasks_for_step(step):
        return ["counting"] if step < 1 else None

    a = batches(factory, 3, start=5, tasks_for_step=tasks_for_step, skip=2)
    b = batches(factory, 3, start=5, tasks_for_step=tasks_for_step, skip=2, workers=2, prefetch=2)
    for step in range(3):
        x, y = next(a), next(b)
        assert x["tasks"] == y["tasks"]
        if step == 0:
            assert x["tasks"] == ["counting"] * 3
        for cx, cy in zip(x["chunks"], y["chunks"], strict=True):
            assert cx.keys() == cy.keys()
            for k, v in cx.items():
                if isinstance(v, torch.Tensor):
                    assert torch.equal(v, cy[k]), k
    b.close()
    r0 = train(_cfg(tiny, clips, tmp_path, steps=3, out_dir=str(tmp_path / "w0")), log=lambda s: None)
    r2 = train(_cfg(tiny, clips, tmp_path, steps=3, workers=2, out_dir=str(tmp_path / "w2")), log=lambda s: None)
    assert r2["losses"] == pytest.approx(r0["losses"], rel=1e-6)
    with pytest.raises(ValueError, match="workers must be an int >= 0"):
        _cfg(tiny, clips, tmp_path, workers=-1)


def test_worker_drops_reach_the_training_process(tiny, clips, tmp_path):
    """A static video that a worker's motion guard gives up on is recorded in the training process's pool."""
    from sf2t.models import load_model_and_tokenizer
    from sf2t.train.data import batches
    from sf2t.train.loop import make_factories

    good, bad = clips
    cfg = _cfg(tiny, clips, tmp_path, tasks=["disorder"], videos=[bad["static"], *good])
    _, tok = load_model_and_tokenizer(tiny)
    factory, _ = make_factories(cfg, tok)
    assert bad["static"] in {i.path for i in factory.pool.infos}  # found out only while sampling
    data = batches(factory, 4, workers=2, prefetch=2)
    for _ in range(4):
        next(data)
    data.close()
    assert [(s.kind, s.task) for s in factory.pool.skipped if s.path == bad["static"]] == [("static", "disorder")]
    assert bad["static"] not in {i.path for i in factory.pool.usable("disorder")}


def test_gradient_checkpointing_same_losses_and_bf16_needs_cuda(tiny, clips, tmp_path):
    """gradient_checkpointing=true: the same losses, and a training forward keeps far fewer tensors for the backward
    pass (the checkpointed decoder layers and vision blocks recompute theirs); bf16 autocast on CPU is refused."""
    from sf2t.train.data import batches
    from sf2t.train.loop import _MODEL_KEYS, make_factories, train

    kw = dict(steps=3, lora=True, full_finetune=False)
    plain = train(_cfg(tiny, clips, tmp_path, out_dir=str(tmp_path / "a"), **kw), log=lambda s: None)
    cfg = _cfg(tiny, clips, tmp_path, out_dir=str(tmp_path / "b"), gradient_checkpointing=True, **kw)
    ck = train(cfg, log=lambda s: None)
    assert ck["losses"] == pytest.approx(plain["losses"], rel=1e-5)

    factory, _ = make_factories(cfg, _tok(tiny))
    chunk = next(batches(factory, 4))["chunks"][0]
    inputs = {k: chunk[k] for k in _MODEL_KEYS if k in chunk}

    def saved_bytes(model):  # bytes autograd keeps outside checkpointed regions for the backward pass
        total = [0]

        def pack(t):
            total[0] += t.numel() * t.element_size()
            return t

        model.train()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(**inputs)
        return total[0]

    assert saved_bytes(ck["model"]) < 0.6 * saved_bytes(plain["model"])  # measured: 0.96 MB vs 8.1 MB
    with pytest.raises(ValueError, match="bf16=true needs a CUDA device"):
        _cfg(tiny, clips, tmp_path, bf16=True)


def _tok(tiny):
    from sf2t.models import load_model_and_tokenizer

    return load_model_and_tokenizer(tiny)[1]


def test_cli_train_evaluates_held_out_and_writes_the_report(tiny, clips, tmp_path, capsys):
    """`sf2t train` with eval_videos: held-out accuracy before training (step 0), every eval_every steps and after,
    in train_result.json and report.md, with report.png (loss, per-task loss/accuracy, held-out accuracy)."""
    import json

    from sf2t.cli import main

    good, _ = clips
    run = tmp_path / "run"
    args = ["train", f"model={tiny}", f"videos=[{','.join(good)}]", f"eval_videos=[{','.join(good)}]", "steps=4"]
    args += ["batch_size=2", "eval_every=2", "eval_samples=3", "tasks=[counting,disorder]", f"out_dir={run}"]
    assert main(args + ["progress=false"]) == 0
    printed = capsys.readouterr().out
    assert "held-out at step 0:" in printed and "held-out at step 4:" in printed and "report.md" in printed
    res = json.loads((run / "train_result.json").read_text())
    assert [e["step"] for e in res["evals"]] == [0, 2, 4]
    assert all(
        e[t]["n"] == 3 and 0.0 <= e[t]["accuracy"] <= 1.0 for e in res["evals"] for t in ("counting", "disorder")
    )
    md = (run / "report.md").read_text()
    assert "![loss and accuracy](report.png)" in md and "| counting | 6.7 % |" in md and "| step |" in md
    # each evaluation's share of answers in the asked form and strict accuracy: in the log line and the table
    assert all("in_form" in e[t] and "strict_accuracy" in e[t] for e in res["evals"] for t in ("counting", "disorder"))
    assert "| in form before | in form after | strict before | strict after |" in md and "(in form " in printed
    png = (run / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_cli_train_resumed_keeps_the_step_0_evaluation_and_rates_this_session(tiny, clips, tmp_path, capsys):
    """A run resumed with resume=auto reports the held-out evaluation before training (kept in the checkpoint, not
    lost: its report's "before" once held the after-training value), and its tokens/s counts this session's tokens
    over this session's seconds (it once divided the restored tokens too)."""
    import json

    from sf2t.cli import main

    good, _ = clips
    run = tmp_path / "run"
    args = ["train", f"model={tiny}", f"videos=[{','.join(good)}]", f"eval_videos=[{','.join(good)}]", "steps=4"]
    args += ["batch_size=2", "eval_samples=3", "tasks=[counting]", f"out_dir={run}", "save_every=2", "progress=false"]
    assert main(args) == 0
    first = json.loads((run / "train_result.json").read_text())
    assert [e["step"] for e in first["evals"]] == [0, 4]
    state = json.loads((run / "checkpoints" / "step-00000002" / "state.json").read_text())
    assert [e["step"] for e in state["evals"]] == [0]  # the checkpoint holds the step-0 evaluation
    assert main(args + ["resume=auto"]) == 0
    out = capsys.readouterr().out
    assert "resumed from" in out and "held-out at step 0" not in out.split("resumed from")[1]  # not evaluated again
    res = json.loads((run / "train_result.json").read_text())
    assert res["resumed_from"] == 2 and [e["step"] for e in res["evals"]] == [0, 4]
    assert res["evals"][0] == first["evals"][0]
    assert res["task_train_accuracy"] == first["task_train_accuracy"]  # the whole run's, not this session's
    assert res["task_losses"] == first["task_losses"]
    md = (run / "report.md").read_text()
    assert "(step 0 -> step 4)" in md
    # the same steps, the same samples: this session's tokens are the whole run's less those before the checkpoint
    total = first["tokens_per_second"] * first["seconds"]
    assert res["tokens_per_second"] * res["seconds"] == pytest.approx(total - state["tokens"], rel=1e-6)
    assert res["data_seconds"] <= res["seconds"]


def test_cli_train_resumed_from_an_older_checkpoint_reports_without_its_form_share(tiny, clips, tmp_path, capsys):
    """A run resumed from a checkpoint an older sf2t wrote (its step-0 evaluation has no in_form / strict_accuracy)
    reports: "-" for the form share and strict accuracy before training, the values after."""
    import json

    from sf2t.cli import main

    good, _ = clips
    run = tmp_path / "run"
    args = ["train", f"model={tiny}", f"videos=[{','.join(good)}]", f"eval_videos=[{','.join(good)}]", "steps=4"]
    args += ["batch_size=2", "eval_samples=3", "tasks=[counting]", f"out_dir={run}", "save_every=2", "progress=false"]
    assert main(args) == 0
    state_json = run / "checkpoints" / "step-00000002" / "state.json"
    state = json.loads(state_json.read_text())
    for e in state["evals"]:
        del e["counting"]["in_form"], e["counting"]["strict_accuracy"]
    state_json.write_text(json.dumps(state))
    assert main(args + ["resume=auto"]) == 0
    capsys.readouterr()
    res = json.loads((run / "train_result.json").read_text())
    before, after = res["evals"][0]["counting"], res["evals"][-1]["counting"]
    assert "in_form" not in before and "in_form" in after
    md = (run / "report.md").read_text()
    row = f"| counting | 6.7 % | {100 * before['accuracy']:.1f} % | {100 * after['accuracy']:.1f} % | "
    row += f"{100 * before['partial']:.1f} % | {100 * after['partial']:.1f} % | - | {100 * after['in_form']:.1f} % | "
    assert row + f"- | {100 * after['strict_accuracy']:.1f} % | 3 |" in md, md


def test_prefetch_thread_gives_the_same_batches_and_losses(tiny, clips, tmp_path):
    """prefetch=2: a background thread makes the next micro-batches while the model computes; the batches and the
    losses are those of prefetch=0, an error in the thread reaches the caller, close() stops it."""
    from sf2t.models import load_model_and_tokenizer
    from sf2t.train.data import Prefetch, batches
    from sf2t.train.loop import make_factories, train

    cfg = _cfg(tiny, clips, tmp_path, tasks=["counting", "disorder"])
    _, tok = load_model_and_tokenizer(tiny)
    factory, _ = make_factories(cfg, tok)
    # one factory, two consumers at once (a thread and this one): the frame store's lock keeps its decoders sane
    a, b = batches(factory, 3), Prefetch(batches(factory, 3), depth=2)
    for _ in range(3):
        x, y = next(a), next(b)
        assert x["tasks"] == y["tasks"]
        assert all(
            torch.equal(cx["pixel_values_videos"], cy["pixel_values_videos"])
            for cx, cy in zip(x["chunks"], y["chunks"])
        )
    b.close()
    assert not b.thread.is_alive()

    def broken():
        yield {"chunks": []}
        raise RuntimeError("decoder fell over")

    p = Prefetch(broken(), depth=1)
    next(p)
    with pytest.raises(RuntimeError, match="decoder fell over"):
        next(p)
    r0 = train(_cfg(tiny, clips, tmp_path, steps=3, out_dir=str(tmp_path / "p0")), log=lambda s: None)
    r2 = train(_cfg(tiny, clips, tmp_path, steps=3, prefetch=2, out_dir=str(tmp_path / "p2")), log=lambda s: None)
    assert r2["losses"] == r0["losses"]
    with pytest.raises(ValueError, match="prefetch must be an int >= 0"):
        _cfg(tiny, clips, tmp_path, prefetch=-1)


def test_full_disk_during_save_keeps_the_previous_checkpoint(tiny, clips, tmp_path, monkeypatch):
    """A save that runs out of disk space (ENOSPC from the writer) stops the run with a message naming the cause and
    the intact previous checkpoint; the partial copy is removed and resume=auto continues from the previous one."""
    import errno

    import sf2t.train.checkpoint as ck
    from sf2t.train.loop import train

    cfg = _cfg(tiny, clips, tmp_path, steps=6, save_every=2, lora=True, full_finetune=False)
    real_save, calls = ck.torch.save, []

    def save(obj, path, *a, **k):
        calls.append(str(path))
        if "step-00000004" in str(path) and str(path).endswith("optimizer.pt"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *a, **k)

    monkeypatch.setattr(ck.torch, "save", save)
    with pytest.raises(OSError, match=r"checkpoint step-00000004 not written \(the disk is full\).*step-00000002"):
        train(cfg, log=lambda s: None)
    root = tmp_path / "run" / "checkpoints"
    assert not list(root.glob(".tmp-*"))  # the partial copy is gone
    assert (root / "latest").read_text().strip() == "step-00000002"
    monkeypatch.setattr(ck.torch, "save", real_save)
    res = train(
        _cfg(tiny, clips, tmp_path, steps=6, save_every=2, lora=True, full_finetune=False, resume="auto"),
        log=lambda s: None,
    )
    assert res["resumed_from"] == 2 and len(res["losses"]) == 6


_FSDP_CLI_SCRIPT = r"""
import json, os, sys, torch
torch.set_num_threads(1)
from sf2t.train.config import TrainConfig
from sf2t.train.cli import run_training
res = run_training(TrainConfig(**json.loads(sys.argv[1])), log=lambda s: None)
if os.environ["RANK"] == "0":
    torch.save({"evals": [e["step"] for e in res["evals"]], "report": res["report"]}, sys.argv[2])
"""


def test_fsdp_run_evaluates_before_and_on_the_saved_adapter(tiny, clips, tmp_path):
    """`sf2t train`'s run under torchrun with fsdp and eval_videos: rank 0 evaluates before training and, the model
    being sharded, after training on the gathered adapter; no rank hangs; the report is written."""
    good, _ = clips
    cfg = dict(model=tiny, videos=good, eval_videos=good, steps=2, batch_size=2, eval_samples=2, eval_every=1)
    cfg.update(tasks=["counting"], lora=True, lora_rank=4, lora_alpha=8, fsdp=True, progress=False)
    cfg.update(tensorboard=False, out_dir=str(tmp_path / "run"))
    got = _torchrun(_FSDP_CLI_SCRIPT, tmp_path, cfg, tmp_path / "cli.pt", {"SF2T_ALLOW_CPU_FSDP": "1"})
    assert got["evals"] == [0, 2]
    assert "held-out" in (tmp_path / "run" / "report.md").read_text().lower()


def test_worker_store_decodes_on_the_cpu(clips):
    """A DataLoader worker of a GPU run switches its frame store to the CPU (use_cpu): decoders reopened there,
    frames returned on the CPU; the training process moves batches to the device."""
    from sf2t.train.data import FrameStore
    from sf2t.video import probe

    store = FrameStore(cache_mb=0, decoder="pyav", device="cuda")  # never decodes while on "cuda" here
    store.use_cpu()
    assert store.device.type == "cpu"
    frames = store.get(probe(clips[0][0]), [0, 2])
    assert frames.device.type == "cpu" and frames.shape[0] == 2
    store.use_cpu()  # a second call changes nothing
    assert store.device.type == "cpu"


def test_frame_store_max_side_gives_the_same_frames_whatever_the_cache_holds(clips):
    """With ``max_side`` (the demo's 160 px), frames decoded on request (``cache_mb=0``, a clip too long for the cache)
    are reduced like a cached clip's, so the frames, and every task's sample made from them, do not depend on the
    cache: a cached clip, one evicted and decoded again, or none cached give the same pixels."""
    from sf2t.tasks import TASKS
    from sf2t.train.data import FrameStore, SampleFactory, VideoPool
    from sf2t.video import probe

    good, _ = clips
    info = probe(good[0])  # 64x64
    stores = {mb: FrameStore(cache_mb=mb, decoder="pyav", max_side=40) for mb in (64, 0)}
    ids = [0, 3, 7, info.num_frames - 1]
    cached = stores[64].get(info, ids)
    assert good[0] in stores[64]._cache and not stores[0]._cache
    assert cached.shape == (4, 40, 40, 3)
    assert torch.equal(stores[0].get(info, ids), cached)
    stores[64]._cache.clear()  # evicted: decoded whole again
    assert torch.equal(stores[64].get(info, ids[::-1]), cached.flip(0))

    pool = VideoPool.from_paths(good, decoder="pyav")
    factories = {mb: SampleFactory(pool, list(TASKS), None, store=st, seed=1) for mb, st in stores.items()}
    for k, name in enumerate(TASKS):
        if k % 2:  # some samples after an eviction, some from the cache
            stores[64]._cache.clear()
        (a, fa), (b, fb) = (factories[mb].task_sample(k, task=name) for mb in (64, 0))
        assert (a.question, a.answer, a.meta, a.src_index) == (b.question, b.answer, b.meta, b.src_index), name
        assert (a.image is None) == (b.image is None), name
        assert a.image is None or torch.equal(a.image, b.image), name  # localization's target crop
        assert fa.shape[1:3] == (40, 40) and torch.equal(fa, fb), name
        pa, pb = factories[64].pack(a, fa), factories[0].pack(b, fb)
        assert pa.keys() == pb.keys()
        for key in pa:
            assert not isinstance(pa[key], torch.Tensor) or torch.equal(pa[key], pb[key]), (name, key)


def test_videos_may_be_folders_and_manifests(clips, tmp_path, capsys, monkeypatch):
    """`videos` / `eval_videos` take files, folders (every video file under them, sorted) and `sf2t index`
    manifests (their ok lines; relative paths against the manifest's folder); a folder without videos or a broken
    manifest is named before the model loads, and held-out videos that are also training videos are warned about."""
    import json
    import os
    import shutil

    from sf2t.train.cli import _precheck_paths
    from sf2t.train.data import VideoPool
    from sf2t.video.index import expand_videos, index_paths

    good, bad = clips
    root = tmp_path / "vids"
    (root / "sub").mkdir(parents=True)
    shutil.copy(good[0], root / "b.mp4")
    shutil.copy(good[1], root / "sub" / "a.mp4")
    (root / "notes.txt").write_text("not a video")
    folder = [str(root / "b.mp4"), str(root / "sub" / "a.mp4")]
    assert expand_videos([root]) == folder
    assert expand_videos([root, good[2], str(root / "b.mp4")]) == folder + [good[2]]  # duplicates dropped
    assert expand_videos([bad["missing"]]) == [bad["missing"]]  # the reader reports it

    index_paths([str(root), bad["noise"]], tmp_path / "m.jsonl", progress=False)
    assert expand_videos([tmp_path / "m.jsonl"]) == folder  # ok lines only
    rel = tmp_path / "rel"
    rel.mkdir()
    shutil.copy(good[2], rel / "c.mp4")
    line = json.loads((tmp_path / "m.jsonl").read_text().splitlines()[0])
    (rel / "m.jsonl").write_text(json.dumps({**line, "path": "c.mp4"}) + "\n")
    assert expand_videos([rel / "m.jsonl"]) == [str(rel / "c.mp4")]  # relative to the manifest's folder

    pool = VideoPool.from_paths([str(root), bad["noise"]])
    assert [i.path for i in pool.infos] == folder and [s.kind for s in pool.skipped] == ["unreadable"]

    # A manifest's unchanged lines are used as they are; a file changed since the index is probed again.
    import sf2t.train.pool as pool_mod

    probed = []
    real_probe = pool_mod.probe
    monkeypatch.setattr(pool_mod, "probe", lambda p, **kw: probed.append(p) or real_probe(p, **kw))
    pool = VideoPool.from_paths([tmp_path / "m.jsonl"])
    assert probed == [] and [i.path for i in pool.infos] == folder
    assert pool.infos[0] == real_probe(folder[0])  # the manifest's metadata is the probe's
    st = os.stat(folder[1])
    os.utime(folder[1], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    pool = VideoPool.from_paths([tmp_path / "m.jsonl"])
    assert probed == [folder[1]] and [i.path for i in pool.infos] == folder

    (tmp_path / "none").mkdir()
    cfg = TrainConfig(videos=[str(tmp_path / "none")], out_dir=str(tmp_path / "run"))
    assert "none: a folder with no video files" in _precheck_paths(cfg)
    (tmp_path / "bad.jsonl").write_text("not json\n")
    cfg = TrainConfig(videos=[str(root)], eval_videos=[str(tmp_path / "bad.jsonl")], out_dir=str(tmp_path / "run"))
    assert "bad.jsonl:1: not a JSON line" in _precheck_paths(cfg)
    (tmp_path / "errors.jsonl").write_text(json.dumps({"path": bad["noise"], "status": "error"}) + "\n")
    cfg = TrainConfig(videos=[str(tmp_path / "errors.jsonl")], out_dir=str(tmp_path / "run"))
    assert "list no video" in _precheck_paths(cfg)
    capsys.readouterr()
    cfg = TrainConfig(videos=[str(root)], eval_videos=[str(root / "sub" / "a.mp4")], out_dir=str(tmp_path / "run"))
    assert _precheck_paths(cfg) is None
    said = capsys.readouterr().err
    assert "1 held-out video is also a training video (e.g. " in said, said  # ("is also training videos" was said)
    cfg = TrainConfig(videos=[str(root / "b.mp4")], eval_videos=[str(root / "sub")], out_dir=str(tmp_path / "run"))
    assert _precheck_paths(cfg) is None and "warning" not in capsys.readouterr().err


def test_process_group_waits_dist_timeout_min(monkeypatch):
    """Under torchrun the process group gets ``dist_timeout_min``: rank 0 evaluates and saves alone while the other
    ranks wait in a collective, and NCCL's 10-minute default killed runs whose evaluation took longer."""
    import datetime

    import torch.distributed as dist

    from sf2t.train.config import TrainConfig
    from sf2t.train.loop import _init_distributed

    seen = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda **kw: seen.update(kw))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    assert _init_distributed(TrainConfig(dist_timeout_min=90)) == (True, 1, 2)
    assert seen == {"backend": "gloo", "timeout": datetime.timedelta(minutes=90)}
    assert TrainConfig().dist_timeout_min == 60
    for bad in (0, -1, float("nan"), "x"):
        with pytest.raises(ValueError, match="dist_timeout_min"):
            TrainConfig(dist_timeout_min=bad).validate()


def test_checkpoint_state_is_bounded_and_a_long_run_resumes_exactly(tiny, clips, tmp_path, monkeypatch):
    """The per-step losses and per-sample task losses / accuracies a run keeps (and writes into every state.json)
    stop growing past series.EXACT values each (here 8, so a short run goes past it), metrics.jsonl keeps every step,
    and a run resumed from such a checkpoint reports what the uninterrupted one does."""
    import json

    from sf2t.train.loop import train

    exact = 8
    try:
        from sf2t.train import series

        monkeypatch.setattr(series, "EXACT", exact)
    except ImportError:  # (a version without it keeps everything: the bound below fails)
        pass
    kw = dict(steps=20, batch_size=4, tasks=["counting", "disorder"], lora=True, full_finetune=False, log_every=1)
    whole = train(_cfg(tiny, clips, tmp_path / "a", **kw), log=lambda s: None, save=False)

    class Killed(Exception):
        pass

    def killer(line):
        if line.startswith("step") and int(line.split()[1]) == 17:
            raise Killed

    cfg = _cfg(tiny, clips, tmp_path / "b", save_every=4, **kw)
    with pytest.raises(Killed):
        train(cfg, log=killer, save=False)
    run = tmp_path / "b" / "run"
    state = json.loads((run / "checkpoints" / "step-00000016" / "state.json").read_text())

    def numbers(x):
        if isinstance(x, dict):
            return sum(numbers(v) for v in x.values())
        if isinstance(x, list):
            return sum(numbers(v) for v in x)
        return int(isinstance(x, float))

    # 16 steps x 4 samples: 16 losses and 2 x 64 per-task values were kept in full (144); now at most `exact` values
    # or sums a series and its first value, and the last 16 losses (the window is 50: the progress bar's mean)
    kept = numbers([state["losses"], state["task_loss"], state["task_acc"]])
    assert kept <= (exact + 16 + 1) + 4 * (exact + 1), kept
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 17  # the full record
    resumed = train(
        _cfg(tiny, clips, tmp_path / "b", save_every=4, resume="auto", progress=False, **kw),
        log=lambda s: None,
        save=False,
    )
    assert resumed["resumed_from"] == 16
    keys = ("losses", "loss_curve", "task_losses", "task_train_accuracy")
    assert {k: resumed[k] for k in keys} == {k: whole[k] for k in keys}
    assert whole["losses_start"] == 0 and len(whole["losses"]) == 20  # (within the window)
    assert (
        whole["loss_first"] == json.loads((tmp_path / "a" / "run" / "metrics.jsonl").read_text().split("\n")[0])["loss"]
    )
    ends = [p["upto"] for p in whole["loss_curve"]]  # (20 losses in runs of 4 past exact: 5 points)
    assert ends == sorted(set(ends)) and ends[-1] == 20


def test_series_keeps_every_value_up_to_exact_then_bounded_sums_that_resume_exactly():
    """sf2t.train.series.Series: the old curve (mean over exact tenths) while it holds every value; past ``exact``, at
    most ``exact`` sums, a curve within a run's width of the exact tenths, and a state that, saved half way (through
    JSON) and appended to, equals the state of the series appended to without a break."""
    import json
    import random

    from sf2t.train.loop import _curve
    from sf2t.train.series import Series

    rng = random.Random(0)
    for n, exact in [(0, 16), (3, 16), (16, 16), (17, 16), (1000, 16), (41, 40), (5000, 64)]:
        values = [rng.random() for _ in range(n)]
        whole, part = Series(exact, window=5), Series(exact, window=5)
        for i, v in enumerate(values):
            whole.append(v)
            if i == n // 2:
                part = Series.from_state(json.loads(json.dumps(part.state())), window=5)
            part.append(v)
        assert whole.state() == part.state() and whole.curve() == part.curve()
        assert len(whole) == n and whole.tail(5) == values[-5:] and whole.first == (values[0] if values else None)
        if n <= exact:
            assert whole.curve() == _curve(values)
            continue
        assert whole.values is None and len(whole.sums) <= exact and sum(whole.sums) == pytest.approx(sum(values))
        ends = [p["upto"] for p in whole.curve()]
        assert ends == sorted(set(ends)) and ends[-1] == n
        if exact >= 20:  # (at least 10 runs: every tenth has its point)
            assert len(ends) == 10 and all(abs(e - (i + 1) * n / 10) <= whole.width for i, e in enumerate(ends))
        with pytest.raises(ValueError, match="only the last 5 values"):
            whole.tail(6)
    assert Series.from_state([1.0, 2.0, 4.0]).curve() == _curve([1.0, 2.0, 4.0])  # an older checkpoint's list


def test_curve_points_are_distinct_chunks():
    """The report's short curves: ``points`` chunks covering the run once; a run shorter than that gives one point per
    value (it repeated values, so 3 steps drew 10 points)."""
    from sf2t.train.loop import _curve

    assert _curve([1.0, 2.0, 3.0]) == [{"upto": 1, "loss": 1.0}, {"upto": 2, "loss": 2.0}, {"upto": 3, "loss": 3.0}]
    c = _curve([float(v) for v in range(25)])
    assert len(c) == 10 and [p["upto"] for p in c] == sorted({p["upto"] for p in c}) and c[-1]["upto"] == 25
    assert sum(p["loss"] * (p["upto"] - q) for p, q in zip(c, [0] + [p["upto"] for p in c])) == sum(range(25))
    assert _curve([]) == []


def test_ctrl_c_while_saving_leaves_no_partial_checkpoint_or_merge(tiny, clips, tmp_path, monkeypatch, capsys):
    """Ctrl-C (or any other error) while a checkpoint or a merged model is written removes the partial copy at once:
    it was left behind (a checkpoint's weights and optimizer state, or a whole merged model) until a next save that an
    interrupted run may never make, and by sf2t merge for good."""
    import sf2t.train.checkpoint as ck
    import sf2t.train.trained as trained_mod
    from sf2t.cli import main

    model = torch.nn.Linear(4, 4)
    opt = torch.optim.AdamW(model.parameters())
    mgr = ck.CheckpointManager(tmp_path / "ckpt", keep=2)
    mgr.save(1, model, opt, {"losses": []}, peft=False)
    real_save = ck.torch.save

    def interrupted(obj, path, *a, **k):
        if str(path).endswith("optimizer.pt"):
            raise KeyboardInterrupt
        return real_save(obj, path, *a, **k)

    monkeypatch.setattr(ck.torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        mgr.save(2, model, opt, {"losses": []}, peft=False)
    assert not list((tmp_path / "ckpt").glob(".tmp-*"))
    assert (tmp_path / "ckpt" / "latest").read_text().strip() == "step-00000001"
    monkeypatch.setattr(ck.torch, "save", real_save)

    good, _ = clips
    run = tmp_path / "run"
    args = ["train", f"model={tiny}", f"videos=[{good[0]}]", "tasks=[counting]", "batch_size=2", "steps=1"]
    assert main(args + [f"out_dir={run}", "progress=false", "tensorboard=false", "lora_rank=4"]) == 0

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(trained_mod, "_copy_processor_files", stop)
    out = tmp_path / "elsewhere" / "merged"
    assert main(["merge", "--base", tiny, "--adapter", str(run / "adapter"), "--out", str(out)]) == 130
    err = capsys.readouterr().err  # one line, as the other commands (it was a traceback)
    assert "sf2t merge: interrupted; nothing was changed" in err and "Traceback" not in err
    assert not out.exists() and not [p.name for p in out.parent.iterdir() if p.name.startswith(".merged.tmp-")]
    # replacing a merged model (--overwrite): interrupted, the earlier one is still there, whole
    monkeypatch.undo()
    assert main(["merge", "--base", tiny, "--adapter", str(run / "adapter"), "--out", str(out)]) == 0
    before = sorted(p.name for p in out.iterdir())
    monkeypatch.setattr(trained_mod, "_copy_processor_files", stop)
    argv = ["merge", "--base", tiny, "--adapter", str(run / "adapter"), "--out", str(out), "--overwrite"]
    assert main(argv) == 130 and sorted(p.name for p in out.iterdir()) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["merged"]
    # an OSError of the disk is one line; another (a bug) its traceback, not "cannot write OUT: fileno"; both leave
    # --out as it was
    import errno
    import io

    def failing(e):
        def copy(*a, **k):
            raise e

        monkeypatch.setattr(trained_mod, "_copy_processor_files", copy)

    capsys.readouterr()
    failing(OSError(errno.ENOSPC, "No space left on device"))
    assert main(argv) == 1
    said = f"sf2t merge: cannot write {out}: No space left on device; nothing was changed there"
    assert capsys.readouterr().err.splitlines()[-1] == said  # (after transformers' progress bars)
    unreadable = str(Path(tiny) / "preprocessor_config.json")  # the file is named (it said "Permission denied")
    failing(PermissionError(errno.EACCES, "Permission denied", unreadable))
    assert main(argv) == 1
    said = f"sf2t merge: cannot write {out}: {unreadable}: Permission denied; nothing was changed there"
    assert capsys.readouterr().err.splitlines()[-1] == said
    failing(io.UnsupportedOperation("fileno"))
    with pytest.raises(io.UnsupportedOperation):
        main(argv)
    assert "sf2t merge" not in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before and sorted(p.name for p in out.parent.iterdir()) == [
        "merged"
    ]


def test_saving_a_step_again_keeps_the_old_copy_until_the_new_one_is_in_place(tmp_path, monkeypatch):
    """A checkpoint of a step that exists already (a run resumed from an earlier one) is moved aside, not deleted,
    before the new copy is renamed into place: Ctrl-C between the two renames leaves the old one (it was deleted,
    and the cleanup then removed the new copy too: no checkpoint at that step, ``latest`` pointing at nothing); a
    kill there is repaired when the checkpoints are next read."""
    import json

    import sf2t.train.checkpoint as ck

    model = torch.nn.Linear(4, 4)
    opt = torch.optim.AdamW(model.parameters())
    root = tmp_path / "ckpt"
    mgr = ck.CheckpointManager(root, keep=2)
    mgr.save(2, model, opt, {"losses": [1.0]}, peft=False)
    real_replace = ck.os.replace

    def interrupted(src, dst):
        if str(src).rsplit("/", 1)[-1].startswith(".tmp-step"):
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(ck.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        mgr.save(2, model, opt, {"losses": [2.0]}, peft=False)
    monkeypatch.setattr(ck.os, "replace", real_replace)
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-00000002"]
    assert json.loads((mgr.latest() / "state.json").read_text())["losses"] == [1.0]
    # a kill (no cleanup) right after the old copy was moved aside: the next reader puts it back
    real_replace(root / "step-00000002", root / ".old-step-00000002-abcd1234")
    assert mgr.latest() == root / "step-00000002" and not list(root.glob(".old-*"))
    mgr.save(2, model, opt, {"losses": [3.0]}, peft=False)
    assert json.loads((mgr.latest() / "state.json").read_text())["losses"] == [3.0] and not list(root.glob(".*"))


def test_resume_leaves_out_never_trained_lora_adapters_of_an_older_target_list(tmp_path):
    """A checkpoint whose LoRA targets include modules this version leaves out (LLaVA's vision layers after
    vision_feature_layer, targeted by older sf2t): their adapters never trained (lora_B zero, no optimizer state),
    so the resume drops them and renumbers the optimizer state; a trained one is still refused."""
    from torch import nn

    from sf2t.train.checkpoint import CheckpointManager
    from sf2t.train.loop import _param_groups

    names = [
        "model.language_model.layers.0.q.lora_A.default.weight",
        "model.language_model.layers.0.q.lora_B.default.weight",
        "model.language_model.norm.weight",
    ]
    names += [f"model.vision_tower.encoder.layers.{k}.q.lora_{ab}.default.weight" for k in (0, 1) for ab in "AB"]

    def build(with_last: bool) -> nn.Module:
        torch.manual_seed(0)
        root = nn.Module()
        for n in names:
            if not with_last and ".layers.1." in n:
                continue
            *path, leaf = n.split(".")
            mod = root
            for part in path:
                if not hasattr(mod, part):
                    mod.add_module(part, nn.Module())
                mod = getattr(mod, part)
            shape = (3,) if leaf == "weight" and "norm" in n else ((2, 4) if "lora_A" in n else (4, 2))
            mod.register_parameter(leaf, nn.Parameter(torch.zeros(shape) if "lora_B" in n else torch.randn(shape)))
        return root

    def optimizer(model):
        named = {n: p for n, p in model.named_parameters()}
        return torch.optim.AdamW([{"params": [named[n] for n in ns]} for ns, *_ in _param_groups(named)], lr=0.1)

    def group_names(d):
        return [ns for ns, *_ in _param_groups(d)]

    old = build(True)
    opt = optimizer(old)
    for n, p in old.named_parameters():
        if ".layers.1." not in n:  # the last vision layer's output is never read: no gradient
            p.grad = torch.randn_like(p)
    opt.step()
    ckpt = CheckpointManager(tmp_path / "ckpt")
    path = ckpt.save(1, old, opt, {"losses": []}, peft=False)
    new = build(False)
    new_opt = optimizer(new)
    st = ckpt.load(path, new, new_opt, group_names=group_names)
    assert st["idle_adapters_dropped"] == 2
    old_p, old_state = dict(old.named_parameters()), opt.state
    for n, p in new.named_parameters():
        assert torch.equal(p, old_p[n])
        assert torch.equal(new_opt.state[p]["exp_avg"], old_state[old_p[n]]["exp_avg"])
    new_opt.step()  # the renumbered state fits the new groups

    # an adapter that did train (lora_B not zero) is not silently dropped
    with torch.no_grad():
        old_p["model.vision_tower.encoder.layers.1.q.lora_B.default.weight"].fill_(0.5)
    path = ckpt.save(2, old, opt, {"losses": []}, peft=False)
    with pytest.raises(ValueError, match="has parameters this model lacks"):
        ckpt.load(path, build(False), optimizer(build(False)), group_names=group_names)


def test_saved_world_size_of_an_older_checkpoint():
    """A checkpoint without world_size (older sf2t) resumed by 2 processes whose global batch is its batch_size is
    taken as 1 process (no false 'batch_size: 4 -> 2' warning); otherwise as this run's process count."""
    from sf2t.train.loop import saved_world_size

    old = {"step": 3, "config": {"batch_size": 4}}
    assert saved_world_size(old, 2, 2) == 1
    assert saved_world_size(old, 2, 4) == 2
    assert saved_world_size(old, 1, 4) == 1
    assert saved_world_size({"step": 3}, 2, 2) == 2
    assert saved_world_size({**old, "world_size": 2}, 2, 2) == 2


def test_recent_losses_after_a_resume_that_widened_the_window():
    """A run past series.EXACT steps, resumed with a wider loss window (log_every raised) than its checkpoint kept:
    the result's ``losses`` are what is there and ``losses_start`` counts the steps before them (it assumed a full
    window, so losses_start + len(losses) fell short of the steps)."""
    from sf2t.train.loop import _recent_losses
    from sf2t.train.series import Series

    saved = Series(exact=4, window=5)
    for v in range(30):
        saved.append(float(v))
    resumed = Series.from_state(saved.state(), window=12)
    for v in range(30, 33):
        resumed.append(float(v))
    got = _recent_losses(resumed, 12)
    assert got["losses"] == [float(v) for v in range(25, 33)]
    assert got["losses_start"] + len(got["losses"]) == len(resumed) == 33


def test_prefetch_paused_holds_the_thread_between_items():
    """While ``Prefetch.paused()`` is held (the training loop's held-out evaluation and checkpoint state), the
    prefetch thread makes nothing: the evaluation remakes its samples from the frame store, tokenizer and pool the
    thread uses (on CUDA, clips cached on the thread's stream). The item being made when it is asked is finished
    first; after it, the thread goes on and every item arrives once, in order."""
    import threading
    import time

    from sf2t.train.data import Prefetch

    inside, made = threading.Event(), []

    def source():
        for i in range(40):
            inside.set()
            time.sleep(0.005)
            made.append(i)
            inside.clear()
            yield i

    p = Prefetch(source(), depth=64)
    got = [next(p)]
    with p.paused():
        assert not inside.is_set()  # the item under way was finished before paused() returned
        before = len(made)
        time.sleep(0.2)  # ~40 items' time
        assert len(made) == before and not inside.is_set()
    got += list(p)
    p.close()
    assert got == list(range(40))


def test_train_under_torchrun_ends_without_teardown(monkeypatch, capsys):
    """`sf2t train` under torchrun (WORLD_SIZE > 1) ends its process with its exit code and no interpreter teardown
    (a complete rank aborted in teardown now and then, which torchrun reports as a failed job); in one process it
    returns the code as before."""
    from sf2t.train import cli

    class Left(Exception):
        pass

    def leave(code):
        raise Left(code)

    monkeypatch.setattr(cli.os, "_exit", leave)
    assert cli.train_main(["steps=1"]) == 2  # no model: refused, returned
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(Left) as e:
        cli.train_main(["steps=1"])
    assert e.value.args == (2,)
    assert "sf2t train: no model" in capsys.readouterr().err


def test_resume_auto_finds_complete_checkpoints_without_a_good_latest_file(tmp_path):
    """``latest`` deleted, unreadable or naming a folder with no ``state.json``: resume=auto takes the newest complete
    ``step-N`` (it said "no checkpoint", trained from step 0 and then wrote over those checkpoints)."""
    from sf2t.train.checkpoint import CheckpointManager

    root = tmp_path / "checkpoints"
    for step in (2, 4):
        (root / f"step-{step:08d}").mkdir(parents=True)
        (root / f"step-{step:08d}" / "state.json").write_text('{"step": %d}' % step)
    (root / "step-00000006").mkdir()  # cut short: no state.json
    ckpt = CheckpointManager(root)
    assert ckpt.latest() == root / "step-00000004" == ckpt.find("auto")  # no `latest` file
    (root / "latest").write_text("step-00000006\n")
    assert ckpt.latest() == root / "step-00000004"
    (root / "latest").write_bytes(b"\xff\xfe")
    assert ckpt.latest() == root / "step-00000004"
    (root / "latest").write_text("step-00000002\n")  # a good `latest` is followed
    assert ckpt.latest() == root / "step-00000002"
    assert CheckpointManager(tmp_path / "nowhere").latest() is None


def test_cli_train_resume_auto_refuses_a_finished_run_without_checkpoints(tmp_path, capsys):
    """resume=auto in an out_dir holding a run's weights but no checkpoint (save_every=0): refused before the model
    loads, nothing touched (it trained from step 0 and replaced the run's adapter); without resume the message no
    longer offers resume=auto there."""
    from sf2t.train.cli import train_main

    (tmp_path / "model").mkdir()
    (tmp_path / "a.mp4").write_bytes(b"x")
    run = tmp_path / "run"
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_model.safetensors").write_bytes(b"weights")
    (run / "train_result.json").write_text("{}")
    argv = [f"model={tmp_path / 'model'}", f"videos=[{tmp_path / 'a.mp4'}]", f"out_dir={run}", "steps=2"]
    assert train_main([*argv, "resume=auto"]) == 2
    err = capsys.readouterr().err
    assert "resume=auto" in err and "no checkpoint to resume from" in err and "overwrite=true" in err
    assert "replace that run's weights" in err
    assert (run / "adapter" / "adapter_model.safetensors").read_bytes() == b"weights"
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "no checkpoint to resume from" in err and "resume=auto continues" not in err


def test_cli_train_a_run_that_stopped_before_its_first_step_does_not_block_the_retry(tmp_path, capsys):
    """A run that stopped before logging a step (its only video no video: found once the model had loaded) leaves
    an empty metrics.jsonl and tensorboard/: the same command, corrected, goes on there (it was refused as "already
    holds a run", overwrite=true asked for a run that never was); one step logged is a run again."""
    from sf2t.train.cli import train_main

    (tmp_path / "model").mkdir()  # no config.json: the error after the out_dir check
    (tmp_path / "a.mp4").write_bytes(b"x")
    run = tmp_path / "run"
    (run / "tensorboard").mkdir(parents=True)
    (run / "tensorboard" / "events.out.tfevents.1.vm.1.0").write_bytes(b"\x00" * 88)
    (run / "metrics.jsonl").write_text("")
    argv = [f"model={tmp_path / 'model'}", f"videos=[{tmp_path / 'a.mp4'}]", f"out_dir={run}", "steps=2"]
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert "lacks config.json" in err and "already holds a run" not in err, err
    (run / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n')
    assert train_main(argv) == 2
    assert "already holds a run (metrics.jsonl, tensorboard)" in capsys.readouterr().err


def test_report_names_a_skipped_video_whose_name_is_not_utf8(tmp_path):
    """A skipped video with a non-UTF-8 name (its bytes as surrogates) is written escaped into report.md: it was a
    UnicodeEncodeError after the run had finished, which `sf2t train` showed as "'utf-8' codec can't encode" and exit 2
    without its summary."""
    from sf2t.train.report import write_report

    name = str(tmp_path / "caf\udce9.mp4")  # os.fsdecode(b".../caf\xe9.mp4")
    cfg = TrainConfig(out_dir=str(tmp_path / "run"), videos=[name], tasks=["disorder"], progress=False)
    skipped = [{"path": name, "kind": "unreadable", "reason": "cannot open", "task": None}]
    path = write_report(cfg, {"steps": 1, "losses": [1.0], "skipped": skipped}, [], {"disorder": 0.2})
    assert "caf\\udce9.mp4" in path.read_text(encoding="utf-8")


def test_train_report_md_shows_the_partial_credit_of_its_evaluations(tmp_path):
    """`sf2t train`'s report.md has the held-out partial credit (each evaluation's ``partial``: counting's
    1 - |n - F| / F, localization's IoU, rearrangement's Kendall tau) before and after next to the exact accuracy, in
    the demo's table (one implementation: sf2t.train.report.held_out_table); it showed exact accuracy only. Evaluations
    without it (an older run's) keep the narrower table; a task with no evaluation before shows "-" there."""
    from sf2t.train.report import write_report

    cfg = TrainConfig(out_dir=str(tmp_path / "run"), videos=["a.mp4"], tasks=["counting", "disorder"], progress=False)
    evals = [
        {"step": 0, "counting": {"n": 8, "accuracy": 0.125, "partial": 0.5}},
        {"step": 4, "counting": {"n": 8, "accuracy": 0.5, "partial": 0.875}, "disorder": {"n": 4, "accuracy": 0.75}},
    ]
    chance = {"counting": 0.1, "disorder": 0.5}
    md = write_report(cfg, {"steps": 4, "losses": [1.0]}, evals, chance).read_text()
    assert "## Held-out exact accuracy and partial credit (step 0 -> step 4)" in md, md
    assert "| task | chance | before | after | partial before | partial after | n |" in md
    assert "|---|---|---|---|---|---|---|" in md
    assert "| counting | 10.0 % | 12.5 % | 50.0 % | 50.0 % | 87.5 % | 8 |" in md
    assert "| disorder | 50.0 % | - | 75.0 % | - | - | 4 |" in md
    assert "temporal IoU, rearrangement the normalised Kendall tau" in md and "train_result.json's evals" in md
    for e in evals:
        e["counting"].pop("partial")
    md = write_report(cfg, {"steps": 4, "losses": [1.0]}, evals, chance).read_text()
    assert "## Held-out exact accuracy (step 0 -> step 4)" in md and "| task | chance | before | after | n |" in md
    assert "| counting | 10.0 % | 12.5 % | 50.0 % | 8 |" in md and "partial" not in md


def test_evaluate_gives_the_share_in_form_and_the_strict_accuracy(monkeypatch):
    """evaluate gives per task ``in_form`` (the share of answers written exactly in the task's canonical form) and
    ``strict_accuracy`` (right and in form) next to ``accuracy`` (which reads answers leniently), and each sample
    record its ``in_form``; eval_summary's line shows the share."""
    import sf2t.train.evaluate as tev
    from sf2t.train.report import eval_summary

    said = {  # (task, truth): the answers "generated", right in form, right not in form, wrong in form, wrong not
        ("counting", 7): ["7", "There are 7 frames.", "8", "8 frames"],
        ("disorder", True): ["Yes.", "yes"],
    }
    answers = iter([a for texts in said.values() for a in texts])
    monkeypatch.setattr(tev, "generate_answer", lambda *a, **k: next(answers))

    class Model:
        training = False

        def eval(self):
            pass

    meta = {
        "counting": {"task": "counting", "answer": {"count": 7}, "source": "a.mp4"},
        "disorder": {"task": "disorder", "answer": {"in_order": True}, "source": "b.mp4"},
    }
    eval_set = [{"task": t, "meta": meta[t], "answer": str(truth)} for (t, truth), texts in said.items() for _ in texts]
    r = tev.evaluate(Model(), None, eval_set, max_new_tokens=4)
    assert (r["counting"]["accuracy"], r["counting"]["in_form"], r["counting"]["strict_accuracy"]) == (0.5, 0.5, 0.25)
    assert (r["disorder"]["accuracy"], r["disorder"]["in_form"], r["disorder"]["strict_accuracy"]) == (1.0, 0.5, 0.5)
    assert [s["in_form"] for s in r["samples"]] == [True, False, True, False, True, False]
    assert (
        eval_summary(r, ["counting", "disorder"])
        == "counting 50.0 % (in form 50.0 %), disorder 100.0 % (in form 50.0 %)"
    )
    del r["counting"]["in_form"]  # an older evaluation's result
    assert eval_summary(r, ["counting"]) == "counting 50.0 %"


def test_reports_show_the_share_in_form_and_the_strict_accuracy(tmp_path):
    """`sf2t train`'s report.md and the demo's (one table: held_out_table) show, per task, the share of answers in the
    asked form and the strict accuracy before and after next to the exact accuracy, with a note on what they are; an
    evaluation without them (an older run's, resumed: before) shows "-", and evaluations that all lack them keep the
    table without those columns. The demo's stdout table has an "in form" column per evaluation."""
    from sf2t._demo_report import _table
    from sf2t.demo import _markdown
    from sf2t.train.report import held_out_table, write_report

    cfg = TrainConfig(out_dir=str(tmp_path / "run"), videos=["a.mp4"], tasks=["counting", "disorder"], progress=False)
    evals = [
        {"step": 0, "counting": {"n": 8, "accuracy": 0.25, "partial": 0.5}},  # an older run's: no in_form
        {
            "step": 4,
            "counting": {"n": 8, "accuracy": 0.5, "partial": 0.875, "in_form": 0.75, "strict_accuracy": 0.375},
            "disorder": {"n": 4, "accuracy": 0.75, "partial": 0.75, "in_form": 1.0, "strict_accuracy": 0.75},
        },
    ]
    chance = {"counting": 0.1, "disorder": 0.5}
    md = write_report(cfg, {"steps": 4, "losses": [1.0]}, evals, chance).read_text()
    head = "| task | chance | before | after | partial before | partial after | in form before | in form after |"
    assert head + " strict before | strict after | n |" in md, md
    assert "| counting | 10.0 % | 25.0 % | 50.0 % | 50.0 % | 87.5 % | - | 75.0 % | - | 37.5 % | 8 |" in md
    assert "| disorder | 50.0 % | - | 75.0 % | - | 75.0 % | - | 100.0 % | - | 75.0 % | 4 |" in md
    assert "In form: the share of answers written exactly in the task's canonical form" in md
    for e in evals:
        for r in e.values():
            if isinstance(r, dict):
                r.pop("in_form", None), r.pop("strict_accuracy", None)
    md = write_report(cfg, {"steps": 4, "losses": [1.0]}, evals, chance).read_text()
    assert "| task | chance | before | after | partial before | partial after | n |" in md and "in form" not in md

    row = {"chance": 0.5, "before": 0.5, "after": 1.0, "n": 2, "in_form_before": 0.0, "in_form_after": 1.0}
    lines = held_out_table({"disorder": {**row, "strict_before": 0.0, "strict_after": 1.0}}, ["disorder"], source="x")
    assert "| disorder | 50.0 % | 50.0 % | 100.0 % | 0.0 % | 100.0 % | 0.0 % | 100.0 % | 2 |" in lines
    report = _demo_report({"disorder": {**row, "strict_before": 0.0, "strict_after": 1.0}})
    md = _markdown(report, ["disorder"])
    assert "| disorder |  50.0% |  50.0% | 100.0% |   0.0% | 100.0% |   0.0% | 100.0% | 2 |" in md, md
    before = {"disorder": {"accuracy": 0.5, "in_form": 0.0}, "rearrangement": {"accuracy": 0.25, "in_form": 0.5}}
    after = {"disorder": {"accuracy": 1.0, "in_form": 1.0}, "rearrangement": {"accuracy": 0.5, "in_form": 1.0}}
    out = _table({"before": before, "after": after}, {"disorder": 0.5, "rearrangement": 0.1}, list(before)).splitlines()
    assert out[0].split() == ["task", "chance", "before", "after", "in", "form", "before", "in", "form", "after"]
    assert out[2].split() == ["rearrangement", "10.0%", "25.0%", "50.0%", "50.0%", "100.0%"]
    assert len({line.index("%") for line in out[1:]}) == 1  # the columns line up
    for r in (*before.values(), *after.values()):
        del r["in_form"]
    assert "in form" not in _table(
        {"before": before, "after": after}, {"disorder": 0.5, "rearrangement": 0.1}, ["disorder"]
    )


def test_cli_train_refuses_the_model_folder_as_out_dir(tmp_path, capsys):
    """out_dir=the model's folder: refused before the model loads (the run's adapter, reports and train_config.json
    went among the checkpoint's files, replacing the train_config.json sf2t merge puts there for sf2t eval)."""
    from sf2t.train.cli import train_main

    model = tmp_path / "merged"
    model.mkdir()
    (model / "train_config.json").write_text('{"layout": "pairs"}')
    (tmp_path / "a.mp4").write_bytes(b"x")
    argv = [f"model={model}", f"videos=[{tmp_path / 'a.mp4'}]", f"out_dir={model}/.", "steps=2"]
    assert train_main(argv) == 2
    assert "is the model folder" in capsys.readouterr().err
    assert (model / "train_config.json").read_text() == '{"layout": "pairs"}'


def test_resume_names_a_state_json_that_parses_but_is_not_whole(tmp_path):
    """A checkpoint's state.json that is JSON but lacks what a resume restores, or holds it in another shape (losses
    null, an RNG state cut short): named before the model loads, as a damaged state.json; each was a traceback
    (KeyError, TypeError, torch's RNG size RuntimeError) once the model had loaded."""
    import json

    from sf2t.train.checkpoint import rng_state
    from sf2t.train.loop import check_resume

    ckpt = tmp_path / "run" / "checkpoints" / "step-00000002"
    ckpt.mkdir(parents=True)
    for name in ("trainable.pt", "optimizer.pt"):
        torch.save({}, ckpt / name)
    good = {"step": 2, "losses": [1.0, 0.9], "task_loss": {"disorder": [1.0, 0.9]}, "evals": [], "tokens": 10}
    good.update(data_seconds=0.5, dropped=[["a.mp4", "static", "too static"]], rng=rng_state())
    cfg = TrainConfig(videos=["a.mp4"], out_dir=str(tmp_path / "run"), resume="auto", steps=4, progress=False)
    (ckpt / "state.json").write_text(json.dumps(good))
    assert check_resume(cfg) == ckpt
    bad = [
        ({k: v for k, v in good.items() if k != "losses"}, "KeyError: 'losses'"),
        ({**good, "losses": None}, "not iterable"),
        ({**good, "task_loss": {"disorder": {"n": 1}}}, "KeyError"),
        ({**good, "tokens": "many"}, "invalid literal"),
        ({**good, "dropped": [["a.mp4"]]}, "not enough values"),
        ({**good, "rng": {"torch": "AAAA"}}, "an RNG state of 3 bytes"),
        ({**good, "rng": {"python": "bm90IGEgcGlja2xl"}}, "an RNG state that does not read"),
        # train() reads these as state["task_loss"], int(next_index), int(world_size) and rank r's entries
        ({k: v for k, v in good.items() if k != "task_loss"}, "KeyError: 'task_loss'"),
        ({**good, "next_index": "x"}, "invalid literal"),
        ({**good, "world_size": "two"}, "invalid literal"),
        ({**good, "world_size": 2, "dropped_by_rank": [[]]}, "dropped_by_rank has 1 entries for world_size 2"),
        ({**good, "world_size": 2, "rng_by_rank": [rng_state()]}, "rng_by_rank has 1 entries for world_size 2"),
    ]
    for state, words in bad:
        (ckpt / "state.json").write_text(json.dumps(state))
        with pytest.raises(ValueError, match=r"state\.json is damaged") as e:
            check_resume(cfg)
        assert words in str(e.value) and "resume from another checkpoint" in str(e.value)


def _stub_run(tmp_path, monkeypatch) -> tuple[Path, list[str]]:
    """A run folder with checkpoint step 2 and sf2t train's arguments for it (model, videos, out_dir), the checks
    made before the model loads stubbed out: for tests that replace run_training."""
    from sf2t.train import cli

    (tmp_path / "model").mkdir()
    (tmp_path / "a.mp4").write_bytes(b"x")
    run = tmp_path / "run"
    (run / "checkpoints" / "step-00000002").mkdir(parents=True)
    (run / "checkpoints" / "step-00000002" / "state.json").write_text("{}")
    for name in ("_precheck_resume", "_precheck_model", "_precheck_weights"):
        monkeypatch.setattr(cli, name, lambda cfg: None)
    return run, [f"model={tmp_path / 'model'}", f"videos=[{tmp_path / 'a.mp4'}]", f"out_dir={run}"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc (a folder that takes no new folder)")
def test_out_folder_check_makes_a_folder_there_and_train_says_an_oserror(tmp_path, capsys, monkeypatch):
    """out_dir where no folder can be made though os.access says yes (as root: /proc here; a root-squashed NFS share,
    a read-only mount seen as writable): refused before the model loads, not a mkdir traceback after it. An OSError
    while training (a full disk at a save) is one line naming it and the checkpoint to resume from, exit 1."""
    import errno

    from sf2t._files import check_out_folder
    from sf2t.train import cli

    with pytest.raises(ValueError, match=r"out_dir /proc/sf2t-run: cannot write in /proc"):
        check_out_folder("/proc/sf2t-run", "out_dir")
    check_out_folder(tmp_path / "new" / "run", "out_dir")
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing

    run, argv = _stub_run(tmp_path, monkeypatch)
    argv = [*argv, "steps=4"]

    def full(cfg):
        raise OSError(errno.ENOSPC, "No space left on device", str(run / "metrics.jsonl"))

    monkeypatch.setattr(cli, "run_training", full)
    assert cli.train_main([*argv, "resume=auto"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"sf2t train: {run / 'metrics.jsonl'}: No space left on device; the last checkpoint is" in err
    assert "step-00000002: resume=auto continues from it" in err


def test_train_says_only_file_os_errors_in_one_line(tmp_path, capsys, monkeypatch):
    """Only an OSError of the user's files or disk stops sf2t train with one line (sf2t._oserror.is_file_error, as every
    command): a bug (io.UnsupportedOperation, an OSError with no errno) keeps its traceback (it was "sf2t train:
    fileno; the last checkpoint is ...", exit 2 or 1); ENOMEM shows its traceback, then the checkpoint to resume from;
    output into a reader that has gone (`sf2t train ... | head -1`) ends quietly, exit 1 (it was "sf2t train: Broken
    pipe"), while a pipe that is not stdout's (a worker's) keeps its traceback."""
    import errno
    import io

    from sf2t import cli as sf2t_cli
    from sf2t.train import cli

    run, argv = _stub_run(tmp_path, monkeypatch)
    argv = [*argv, "resume=auto"]

    def failing(e):
        def run_training(cfg):
            raise e

        monkeypatch.setattr(cli, "run_training", run_training)

    for e in (io.UnsupportedOperation("fileno"), OSError("a message of sf2t's own"), BrokenPipeError(errno.EPIPE, "")):
        failing(e)
        with pytest.raises(type(e)):
            cli.train_main(argv)
        assert capsys.readouterr().err == "", e

    failing(OSError(errno.ENOMEM, "Cannot allocate memory"))
    assert cli.train_main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "OSError: [Errno 12]" in err, err
    assert err.splitlines()[-1] == (
        "sf2t train: the host ran out of memory (Cannot allocate memory: the traceback above says where); the last "
        f"checkpoint is {run / 'checkpoints' / 'step-00000002'}: resume=auto continues from it. Free some (fewer "
        "workers=, other programs closed) and run it again"
    )

    failing(BrokenPipeError(errno.EPIPE, "Broken pipe"))
    monkeypatch.setattr(sf2t_cli, "_output_closed", lambda: True)  # stdout a pipe whose reader has gone
    monkeypatch.setattr(sf2t_cli, "_quiet_stdout", lambda: None)
    assert sf2t_cli.main(["train", *argv]) == 1
    assert capsys.readouterr().err == ""


def test_a_checkpoint_save_says_only_file_errors(tmp_path, monkeypatch, capsys):
    """A save stopped by an OSError of the disk says which checkpoint is intact and what to do (free space only for a
    full disk); another OSError (a bug, ENOMEM) is raised as it is (it became "checkpoint not written (...). Free
    space (or lower keep_checkpoints) and resume=auto", whatever it was)."""
    import errno
    import io

    import sf2t.train.checkpoint as ck

    model = torch.nn.Linear(4, 4)
    opt = torch.optim.AdamW(model.parameters())
    mgr = ck.CheckpointManager(tmp_path / "ckpt", keep=2)
    mgr.save(1, model, opt, {"losses": []}, peft=False)

    def failing(e):
        def save(obj, path, *a, **k):
            raise e

        monkeypatch.setattr(ck.torch, "save", save)

    denied = str(tmp_path / "ckpt" / "x")
    failing(PermissionError(errno.EACCES, "Permission denied", denied))
    intact = tmp_path / "ckpt" / "step-00000001"
    with pytest.raises(OSError) as got:
        mgr.save(2, model, opt, {"losses": []}, peft=False)
    assert str(got.value) == (
        f"[Errno 13] checkpoint step-00000002 not written ({denied}: Permission denied); the previous checkpoint is "
        f"intact: {intact}. Once that is fixed, resume=auto continues from it"
    )
    for e in (io.UnsupportedOperation("fileno"), OSError(errno.ENOMEM, "Cannot allocate memory")):
        failing(e)
        with pytest.raises(OSError) as got:
            mgr.save(2, model, opt, {"losses": []}, peft=False)
        assert got.value is e
    # a file's error with an errno of no disk (EINVAL: a name the file system refuses): its message, said in one line
    # by sf2t train as the error it was raised from (without the file named, it became a traceback there)
    failing(OSError(errno.EINVAL, "Invalid argument", denied))
    with pytest.raises(OSError, match=f"not written \\({re.escape(denied)}: Invalid argument\\)") as got:
        mgr.save(2, model, opt, {"losses": []}, peft=False)
    from sf2t._oserror import is_file_error
    from sf2t.train.cli import _said_os_error

    assert is_file_error(got.value)
    capsys.readouterr()
    assert _said_os_error(None, got.value)  # (None: the message names the checkpoint, none is looked up)
    err = capsys.readouterr().err
    assert err.startswith("sf2t train: checkpoint step-00000002 not written (") and err.count("\n") == 1, err
    assert (tmp_path / "ckpt" / "latest").read_text().strip() == "step-00000001"
    assert not list((tmp_path / "ckpt").glob(".tmp-*"))


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc (a folder that takes no new folder)")
def test_out_file_check_makes_its_missing_folder_there(tmp_path):
    """An output file whose folders would be made where none can be (as root os.access says yes: /proc here): refused
    by the check (sf2t eval ran every question, sf2t index probed every file, then a mkdir traceback or error)."""
    from sf2t._files import check_out_file

    with pytest.raises(ValueError, match=r"--out /proc/sf2t-x/r\.json: cannot make folders in /proc"):
        check_out_file("/proc/sf2t-x/r.json", "--out")
    check_out_file(tmp_path / "a" / "b" / "r.json", "--out")
    assert list(tmp_path.iterdir()) == []


def test_an_adapter_or_run_folder_passed_as_the_model_says_what_to_pass(tiny, tmp_path, capsys):
    """A LoRA adapter or a sf2t train run folder given as the model (sf2t train / merge / eval): the message says what
    it is and what to pass (the adapter's base; the run's model/ or adapter/), not "build one with
    sf2t.models.build_tiny_qwen2_vl" or "not a recognised checkpoint". A run folder given as the adapter: its
    adapter/ named."""
    import json

    from sf2t.finevidbench.evaluate import VideoRunner
    from sf2t.models._build import check_checkpoint_dir
    from sf2t.train.cli import merge_main

    run = tmp_path / "run"
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_config.json").write_text(
        json.dumps({"peft_type": "LORA", "base_model_name_or_path": "qwen"})
    )
    with pytest.raises(FileNotFoundError, match=r"is a LoRA adapter, not a model: pass the base model .* \(qwen\)"):
        check_checkpoint_dir(run / "adapter")
    with pytest.raises(FileNotFoundError, match=r"is a sf2t train run folder: its LoRA adapter is '.*adapter'"):
        check_checkpoint_dir(run)
    with pytest.raises(ValueError, match=r"--model '.*adapter' is a LoRA adapter, not a model"):
        VideoRunner(str(run / "adapter"))
    assert merge_main(["--base", str(run), "--adapter", str(run / "adapter"), "--out", str(tmp_path / "m")]) == 2
    assert "is a sf2t train run folder" in capsys.readouterr().err
    # the run folder as the adapter: its adapter/ named
    assert merge_main(["--base", str(run), "--adapter", str(run), "--out", str(tmp_path / "m")]) == 2
    assert f"it is a sf2t train run folder: its adapter is '{run / 'adapter'}'" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match=r"it is a sf2t train run folder: its adapter is '.*adapter'"):
        VideoRunner(tiny, str(run))
    (run / "model").mkdir()
    (run / "model" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"its fine-tuned model is '.*model'"):
        check_checkpoint_dir(run)


def test_cli_train_resume_on_another_model_is_refused_before_it_loads(tiny, clips, tmp_path, capsys, monkeypatch):
    """A resume whose model= is another model than the run's (other sizes, at another path) is refused in one line
    naming both models, what differs and how to go on, before any model loads (it was "has parameters this model
    lacks" once loaded); the same model copied to another folder resumes."""
    import sf2t.models
    from sf2t.cli import main
    from sf2t.models import build_tiny_qwen2_vl

    good, _ = clips
    run = tmp_path / "run"
    args = [f"videos=[{good[0]}]", "tasks=[counting]", "batch_size=2", "lora_rank=4", f"out_dir={run}"]
    args = ["train", *args, "save_every=2", "progress=false", "tensorboard=false"]
    assert main([*args, f"model={tiny}", "steps=3"]) == 0
    other = build_tiny_qwen2_vl(tmp_path / "other", num_layers=3)
    capsys.readouterr()
    load = sf2t.models.load_model_and_tokenizer

    def no_load(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(sf2t.models, "load_model_and_tokenizer", no_load)
    assert main([*args, f"model={other}", "steps=4", "resume=auto"]) == 2
    err = capsys.readouterr().err.strip()
    ckpt = run / "checkpoints" / "step-00000002"
    assert err == (
        f"sf2t train: resume: checkpoint {ckpt} was trained on {tiny} (qwen2_vl); model={other} is another model "
        "(text_config.num_hidden_layers is 2 in the checkpoint's model, 3 in this one): resume with "
        f"model={tiny}, or train this model in a new out_dir (or overwrite=true)"
    ), err
    monkeypatch.setattr(sf2t.models, "load_model_and_tokenizer", load)
    copy = shutil.copytree(tiny, tmp_path / "copy")
    assert main([*args, f"model={copy}", "steps=4", "resume=auto"]) == 0
    assert "resumed from step 2" in capsys.readouterr().out


def test_video_pool_says_when_a_folder_held_build_staging_folders(clips, tmp_path):
    """VideoPool.from_paths (sf2t demo's and sf2t train's pools) leaves out a build's staging folder and says so, in
    sf2t index's words, prefixed with the list's name where given (it left it out silently); no stage, no warning."""
    import warnings

    from sf2t.train.data import VideoPool
    from sf2t.video.index import SkippedStagesWarning, skipped_stages_text

    good, _ = clips
    root = tmp_path / "videos"
    stage = folder_with_build_stage(root, good[0])
    with pytest.warns(SkippedStagesWarning) as said:
        pool = VideoPool.from_paths([str(root)], what="videos")
    assert [str(w.message) for w in said] == [f"videos: {skipped_stages_text([str(stage)])}"]
    assert [i.path for i in pool.infos] == [str(root / "a.mp4")] and pool.skipped == []
    with pytest.warns(SkippedStagesWarning) as said:
        VideoPool.from_paths([str(root)])
    assert [str(w.message) for w in said] == [skipped_stages_text([str(stage)])]
    with warnings.catch_warnings():
        warnings.simplefilter("error", SkippedStagesWarning)
        assert len(VideoPool.from_paths([str(root / "a.mp4")]).infos) == 1


def test_cli_train_says_build_staging_folders_once(tiny, clips, tmp_path, capsys):
    """A run whose videos folder holds a build's staging folder says so once (before the model loads), not again when
    its pools walk the folder."""
    from sf2t.cli import main

    good, _ = clips
    root = tmp_path / "videos"
    stage = folder_with_build_stage(root, good[0])
    args = [f"videos=[{root}]", "tasks=[counting]", "batch_size=2", "lora_rank=4", f"out_dir={tmp_path / 'run'}"]
    assert main(["train", *args, f"model={tiny}", "steps=1", "progress=false", "tensorboard=false"]) == 0
    err = capsys.readouterr().err
    assert err.count("skipped 1 sf2t build staging folder") == 1 and f"e.g. {stage}\n" in err, err


def test_demo_says_when_a_videos_folder_held_build_staging_folders(clips, tmp_path, capsys, monkeypatch):
    """sf2t demo --set videos=[folder/] leaves out a build's staging folder there and says so as sf2t train does (it
    left it out silently)."""
    import sf2t.train.evaluate
    from sf2t.cli import main
    from sf2t.video.index import skipped_stages_text

    good, _ = clips
    root = tmp_path / "videos"
    stage = folder_with_build_stage(root, good[0])

    def stop(*a, **k):  # the pools are made: the rest of the demo is not needed here
        raise KeyboardInterrupt

    monkeypatch.setattr(sf2t.train.evaluate, "build_eval_set", stop)
    argv = ["demo", "--out", str(tmp_path / "demo"), "--quick", "--no-progress", "--set", "tasks=[counting]"]
    assert main([*argv, "--set", f"videos=[{root}]"]) == 130
    err = capsys.readouterr().err
    assert err.count(f"sf2t demo: warning: videos: {skipped_stages_text([str(stage)])}\n") == 1, err


def test_cli_train_says_when_a_videos_folder_held_build_staging_folders(tmp_path, capsys):
    """videos=[folder/] leaves out a FineVidBench build's staging folder (``.build-*`` with its owner.json: half-made
    or replaced clips), as sf2t index does: `sf2t train` says so once per list, in index's words (it left them out
    silently); a folder holding nothing else says why it has no video; no staging folder, no warning."""
    from sf2t.finevidbench.place import make_stage
    from sf2t.train.cli import train_main

    root = tmp_path / "videos"
    root.mkdir()
    (root / "a.mp4").write_bytes(b"x")
    stage, f = make_stage(root, root / "bench.json")
    f.close()
    for name in ("clips/half.mp4", "replaced/clips/old.mp4"):
        (stage / name).parent.mkdir(parents=True, exist_ok=True)
        (stage / name).write_bytes(b"x")
    (tmp_path / "model").mkdir()  # no config.json: refused after the video lists are read, before anything loads
    argv = [f"model={tmp_path / 'model'}", f"out_dir={tmp_path / 'run'}", "steps=2", "progress=false"]
    assert train_main(argv + [f"videos=[{root}]", f"eval_videos=[{root}]"]) == 2
    err = capsys.readouterr().err
    for field in ("videos", "eval_videos"):
        line = f"sf2t train: warning: {field}: skipped 1 sf2t build staging folder (.build-* with an owner.json: "
        assert err.count(line) == 1 and f"e.g. {stage}\n" in err, err
    assert train_main(argv + [f"videos=[{root / 'a.mp4'}]"]) == 2
    assert "staging" not in capsys.readouterr().err
    (root / "a.mp4").unlink()
    assert train_main(argv + [f"videos=[{root}]"]) == 2
    err = capsys.readouterr().err
    assert (
        f"{root}: a folder with no video files" in err and f"left out 1 sf2t build staging folder, e.g. {stage})" in err
    )
