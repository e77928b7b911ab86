"""sf2t tasks export / preview: records LLaMA-Factory can read as they are, PNG frames that are exactly the
presented frames (re-derived from meta and an independent decode), a summary per task, clear errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from sf2t import cli
from sf2t.tasks.consistency import CELLS, cell_box
from sf2t.video import decode_frames

pytest.importorskip("av")
synth = pytest.importorskip("sf2t.synth")
PIL = pytest.importorskip("PIL.Image")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("exp")
    for i in range(3):
        synth.make_clip(root / "v" / f"c{i}", 30 + i, width=96, height=64, seconds=3, gop=12)
    out = root / "m.jsonl"
    assert cli.main(["index", str(root / "v"), "-o", str(out), "--quiet", "--workers", "0"]) == 0
    return out


def _png(path):
    return torch.from_numpy(np.array(PIL.open(path).convert("RGB")))


def test_export_round_trip(manifest, tmp_path, capsys):
    out = tmp_path / "ds"
    rc = cli.main(["tasks", "export", "--manifest", str(manifest), "--out", str(out), "--num", "36", "--quiet"])
    assert rc == 0
    text = capsys.readouterr().out
    data = json.loads((out / "data.json").read_text())
    assert len(data) == 36 and len({r["id"] for r in data}) == 36
    assert {r["task"] for r in data} == {
        "counting",
        "consistency",
        "localization",
        "disorder",
        "rearrangement",
        "speed",
    }
    for t in ("counting", "localization"):
        assert f"{t:<14} made" in text
    info = json.loads((out / "dataset_info.json").read_text())["sf2t"]
    assert info["formatting"] == "sharegpt" and info["columns"]["videos"] == "videos"
    assert info["columns"]["images"] == "images"  # localization samples carry their target
    for r in data:
        user, asst = r["messages"]
        assert user["role"] == "user" and asst["role"] == "assistant"
        assert asst["content"] == _truth(r["meta"])
        # LLaMA-Factory's check: one <video> per entry of videos, one <image> per entry of images
        assert user["content"].count("<video>") == len(r["videos"]) == 1
        assert user["content"].count("<image>") == len(r.get("images", []))
        m = r["meta"]
        shown = torch.stack([_png(out / p) for p in r["videos"][0]])  # [F, H, W, 3]
        src, _ = decode_frames(m["source"], m["source_frames"])  # an independent decode of the named frames
        if r["task"] in ("counting", "disorder", "rearrangement", "speed"):
            assert torch.equal(shown, src)  # PNG frames are exactly the presented frames
        elif r["task"] == "consistency":
            assert torch.equal(shown[0], src[0])
            kind = m["answer"]["kind"]
            if kind == "identical":
                assert torch.equal(shown[1], shown[0])
            elif kind == "whole":
                assert torch.equal(shown[1], src[1])
            else:
                j, _ = decode_frames(m["source"], [m["params"]["j"]])
                x0, y0, x1, y1 = cell_box(CELLS.index(m["answer"]["cell"]), 64, 96)
                want = shown[0].clone()
                want[y0:y1, x0:x1] = j[0, y0:y1, x0:x1]
                assert torch.equal(shown[1], want)
        elif r["task"] == "localization":
            target = _png(out / r["images"][0])
            x0, y0, x1, y1 = m["params"]["paste_box"]
            a, b = m["answer"]["start"], m["answer"]["end"]
            for k in range(len(shown)):
                want = src[k].clone()
                if a <= k + 1 <= b:
                    want[y0:y1, x0:x1] = target
                assert torch.equal(shown[k], want)


def _truth(meta):
    from sf2t.tasks import truth_text

    return truth_text(meta)


def test_sharegpt_format_and_jpeg(manifest, tmp_path):
    out = tmp_path / "sg"
    assert (
        cli.main(
            [
                "tasks",
                "export",
                "--manifest",
                str(manifest),
                "--out",
                str(out),
                "--num",
                "5",
                "--quiet",
                "--format",
                "sharegpt",
                "--frames",
                "jpg",
                "--tasks",
                "counting",
                "speed",
            ]
        )
        == 0
    )
    data = json.loads((out / "data.json").read_text())
    assert all(r["conversations"][0]["from"] == "human" and r["conversations"][1]["from"] == "gpt" for r in data)
    assert all(p.endswith(".jpg") for r in data for p in r["videos"][0])
    assert {r["task"] for r in data} <= {"counting", "speed"}
    # its LLaMA-Factory entry: conversations with from/value; no "images" column when no row has one (LLaMA-Factory
    # reads every listed column from every row: a KeyError)
    info = json.loads((out / "dataset_info.json").read_text())["sf2t"]
    assert info["columns"] == {"messages": "conversations", "videos": "videos"}
    assert info["tags"] == {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}
    assert not any("images" in r for r in data)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--num", "3", "--tasks", "counting", "juggling"], "unknown task"),
        (["--num", "3", "--tasks", "disordr"], "unknown task 'disordr' (did you mean 'disorder'?); valid: "),
        (["--num", "3", "--tasks", ""], "--tasks: no task names given; name one or more of: counting, "),
        (["--num", "3", "--tasks", ","], "--tasks: no task names given"),
    ],
)
def test_export_errors(manifest, tmp_path, capsys, args, words):
    rc = cli.main(["tasks", "export", "--manifest", str(manifest), "--out", str(tmp_path / "x"), "--quiet", *args])
    assert rc == 2 and words in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, words",
    [
        (None, "no such file"),
        ("folder", "is a folder"),
        (b"\x7fELF\x02\x01\x01\x00\xff\xfe\x00\x9c", "not a text file"),
        ("", "lists no video"),
        ('{"path": "a.mp4"}\n', "needs 'path' and 'status'"),
        ("not json\n", "not a JSON line"),
    ],
)
def test_export_bad_manifest_files(tmp_path, capsys, content, words):
    m = tmp_path / "m.jsonl"
    if content == "folder":
        m.mkdir()
    elif isinstance(content, bytes):
        m.write_bytes(content)
    elif content is not None:
        m.write_text(content)
    rc = cli.main(["tasks", "export", "--manifest", str(m), "--out", str(tmp_path / "x"), "--num", "2", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and words in err and "Traceback" not in err


def test_export_out_folder_is_checked_and_replaced_cleanly(manifest, tmp_path, capsys, monkeypatch, interrupt_after):
    """--out may not be a file or a folder of other files (nothing is written there); an earlier export in it is
    replaced, leaving no frames of the earlier samples behind."""
    args = ["tasks", "export", "--manifest", str(manifest), "--quiet", "--tasks", "counting", "speed"]
    f = tmp_path / "file"
    f.write_text("keep")
    assert cli.main([*args, "--out", str(f), "--num", "2"]) == 2
    assert "not a folder" in capsys.readouterr().err and f.read_text() == "keep"
    other = tmp_path / "videos"
    other.mkdir()
    (other / "clip.mp4").write_bytes(b"x")
    assert cli.main([*args, "--out", str(other), "--num", "2"]) == 2
    assert "not an sf2t export (clip.mp4)" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["clip.mp4"]

    out = tmp_path / "exp"
    assert cli.main([*args, "--out", str(out), "--num", "6"]) == 0
    (out / "frames" / "counting-000000" / "99.png").write_bytes(b"stale")  # a leftover inside a reused id
    (out / "frames" / "my notes").mkdir()  # not a sample's folder: left alone
    (out / "frames" / "my notes" / "a.txt").write_text("mine")
    assert cli.main([*args, "--out", str(out), "--num", "2", "--seed", "1"]) == 0
    data = json.loads((out / "data.json").read_text())
    assert len(data) == 2
    assert (out / "frames" / "my notes" / "a.txt").read_text() == "mine"
    shutil.rmtree(out / "frames" / "my notes")
    on_disk = {p.relative_to(out).as_posix() for p in (out / "frames").rglob("*") if p.is_file()}
    listed = {p for r in data for p in r["videos"][0] + r.get("images", [])}
    assert on_disk == listed
    # interrupted while replacing it: the earlier index is gone first, so no data.json lists the new frames as old
    import sf2t.tasks.export as export_mod

    # and what it wrote is removed: sample folders without a data.json were left (a folder of yours stays)
    (out / "frames" / "my notes").mkdir()
    interrupt_after(export_mod, "_save", 3)
    assert cli.main([*args, "--out", str(out), "--num", "4", "--seed", "2"]) == 130
    err = capsys.readouterr().err
    assert "sf2t tasks export: interrupted" in err and "Traceback" not in err and not (out / "data.json").exists()
    assert [p.relative_to(out).as_posix() for p in out.rglob("*")] == ["frames", "frames/my notes"]
    monkeypatch.undo()
    new = tmp_path / "new" / "exp"  # a folder the export made: removed
    interrupt_after(export_mod, "_save", 3)
    assert cli.main([*args, "--out", str(new), "--num", "4"]) == 130
    assert not new.exists() and (tmp_path / "new").is_dir()
    monkeypatch.undo()
    shutil.rmtree(out / "frames" / "my notes")
    (out / ".data.json.0badc0de.tmp").write_text("[")  # a write killed half way: not "other files"
    assert cli.main([*args, "--out", str(out), "--num", "2"]) == 0
    assert len(json.loads((out / "data.json").read_text())) == 2


def test_videos_too_short_for_every_task_are_left_out_before_any_window(manifest, tmp_path, capsys, monkeypatch):
    """A video shorter than every task's minimum is known from the index's frame count: left out and listed with the
    reason, and an export with no other video fails at once naming it (it drew 50 * num + 100 windows of it before
    saying "only 0 of 4 samples", without naming the video). A task no video is long enough for is named too."""
    from sf2t.video.sampler import WindowSampler

    for name, seconds in (("one", 0.04), ("three", 0.12)):  # 1 frame, 3 frames at 25 fps
        synth.make_clip(tmp_path / "short" / name, 5, width=96, height=64, seconds=seconds, fps=25)
    short = tmp_path / "short.jsonl"
    assert cli.main(["index", str(tmp_path / "short"), "-o", str(short), "--quiet", "--workers", "0"]) == 0
    lines = short.read_text().splitlines()
    one = next(line for line in lines if "one.mp4" in line)
    tried = []
    real = WindowSampler.window
    monkeypatch.setattr(WindowSampler, "window", lambda self, w: tried.append(w) or real(self, w))
    only = tmp_path / "one.jsonl"
    only.write_text(one + "\n")
    args = ["tasks", "export", "--quiet", "--num", "4", "--out", str(tmp_path / "x")]
    assert cli.main([*args, "--manifest", str(only), "--tasks", "counting", "speed"]) == 2
    err = capsys.readouterr().err
    said = f"{only}: no video can give a sample, 1 left out: {tmp_path / 'short' / 'one.mp4'}: too short: 1 frame, "
    assert said + "the tasks need at least: counting 2, speed 7" in err and "Traceback" not in err, err
    assert tried == [] and not (tmp_path / "x").exists()
    assert cli.main([*args, "--manifest", str(short)]) == 2  # 3 frames: enough for counting and rearrangement only
    err = capsys.readouterr().err
    assert "--tasks: consistency needs videos of at least 5 frames" in err and "the longest video of" in err, err
    assert "has 3: add longer videos, or leave it out (--tasks counting rearrangement)" in err and tried == []
    mixed = tmp_path / "mixed.jsonl"  # with usable videos: exported from them, the short one listed as left out
    mixed.write_text(manifest.read_text() + one + "\n")
    assert cli.main([*args, "--manifest", str(mixed), "--tasks", "counting"]) == 0
    out = capsys.readouterr().out
    assert "left out: 1 video no task can use" in out and "one.mp4: too short: 1 frame" in out, out
    summary = json.loads((tmp_path / "x" / "summary.json").read_text())
    assert [v["path"] for v in summary["videos_left_out"]] == [str(tmp_path / "short" / "one.mp4")]
    assert summary["samples"] == 4 and "too_short" not in json.dumps(summary["skipped"])


def test_localization_with_one_video_fails_before_work(manifest, tmp_path, capsys):
    one = tmp_path / "one.jsonl"
    one.write_text(manifest.read_text().splitlines()[0] + "\n")
    rc = cli.main(
        [
            "tasks",
            "export",
            "--manifest",
            str(one),
            "--out",
            str(tmp_path / "x"),
            "--num",
            "3",
            "--quiet",
            "--tasks",
            "localization",
        ]
    )
    assert rc == 2 and "only one usable video" in capsys.readouterr().err
    assert not (tmp_path / "x" / "data.json").exists()


def test_preview_contact_sheet(manifest, tmp_path):
    pytest.importorskip("matplotlib")
    for task in ("localization", "speed"):
        out = tmp_path / f"{task}.png"
        assert (
            cli.main(["tasks", "preview", "--manifest", str(manifest), "--task", task, "--out", str(out), "--num", "2"])
            == 0
        )
        im = PIL.open(out)
        assert im.size[0] > 400 and im.size[1] > 300
    # the file named back is the file written: a name without an image suffix gets .png; a folder is refused
    assert (
        cli.main(
            ["tasks", "preview", "--manifest", str(manifest), "--task", "counting", "--out", str(tmp_path / "sheet")]
        )
        == 0
    )
    assert PIL.open(tmp_path / "sheet.png").size[0] > 400 and not (tmp_path / "sheet").exists()
    assert (
        cli.main(["tasks", "preview", "--manifest", str(manifest), "--task", "counting", "--out", str(tmp_path)]) == 2
    )
    argv = ["tasks", "preview", "--manifest", str(manifest), "--task", "counting"]
    (tmp_path / "file").write_text("x")
    assert cli.main([*argv, "--out", str(tmp_path / "file" / "p.png")]) == 2  # a traceback before
    assert cli.main([*argv, "--out", str(tmp_path / "big.png"), "--num", "65"]) == 2  # 500 made an unopenable PNG
    assert not (tmp_path / "big.png").exists()
    export = ["tasks", "export", "--manifest", str(manifest), "--num", "2"]
    assert cli.main([*export, "--out", str(tmp_path / "file" / "ds")]) == 2


def test_preview_shows_every_frame(manifest, tmp_path):
    """A sample with more presented frames than fit on a line wraps onto further lines (nothing is dropped): the
    same samples at 3 images a line make a taller sheet than at 12."""
    pytest.importorskip("matplotlib")
    from sf2t.tasks.export import preview

    wide = PIL.open(preview(str(manifest), "speed", tmp_path / "wide.png", num=1, per_line=12))
    narrow = PIL.open(preview(str(manifest), "speed", tmp_path / "narrow.png", num=1, per_line=3))
    assert narrow.size[1] > 1.5 * wide.size[1]  # speed shows >= 6 frames: 2+ lines of 3 against 1 line


def test_files_changed_since_the_index(manifest, tmp_path, capsys):
    """A manifest's file changed after indexing is probed again (its new frame count is the one used); one that no
    longer reads is left out with a warning naming it; unchanged files keep the manifest's metadata."""
    import shutil

    from sf2t.video import probe
    from sf2t.video.index import manifest_videos, read_manifest

    v = tmp_path / "v"
    shutil.copytree(manifest.parent / "v", v)
    m = tmp_path / "m.jsonl"
    assert cli.main(["index", str(v), "-o", str(m), "--quiet", "--workers", "0"]) == 0
    lines = {e["path"]: e for e in read_manifest(m)}
    synth.make_clip(v / "c1", 7, width=96, height=64, seconds=1, gop=12)  # rewritten: fewer frames now
    (v / "c2.mp4").write_bytes(b"\0" * 1000)  # broken since
    said = []
    got = {i.path: i for i in manifest_videos(m, warn=said.append)}
    assert set(got) == {str(v / "c0.mp4"), str(v / "c1.mp4")}
    assert got[str(v / "c0.mp4")].num_frames == lines[str(v / "c0.mp4")]["num_frames"]
    assert got[str(v / "c1.mp4")].num_frames == probe(v / "c1.mp4").num_frames < lines[str(v / "c1.mp4")]["num_frames"]
    assert len(said) == 1 and "c2.mp4: changed since the index and no longer usable" in said[0]
    rc = cli.main(["tasks", "export", "--manifest", str(m), "--out", str(tmp_path / "ds"), "--num", "6", "--quiet"])
    assert rc == 0 and "c2.mp4: changed since the index" in capsys.readouterr().err


def test_relative_manifest_paths_take_the_file_the_index_saw(manifest, tmp_path, capsys, monkeypatch):
    """sf2t index records paths as given, so "v/c0.mp4" may start from the working folder or from the manifest's.
    Another file of that name in the working folder is not taken for the indexed one when the manifest folder's
    matches the line's size and time (it was used silently); a path found in neither place is said to be missing
    (it was said to have "changed since the index")."""
    import shutil

    from sf2t.video.index import manifest_videos

    data = tmp_path / "data"
    shutil.copytree(manifest.parent / "v", data / "v")
    monkeypatch.chdir(data)
    assert cli.main(["index", "v", "-o", "m.jsonl", "--quiet", "--workers", "0"]) == 0
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "v").mkdir(parents=True)
    synth.make_clip(elsewhere / "v" / "c0", 99, width=64, height=48, seconds=1, gop=12)  # same name, other clip
    monkeypatch.chdir(elsewhere)
    got = manifest_videos(data / "m.jsonl", warn=lambda s: None)
    assert {i.path for i in got} == {str(data / "v" / f"c{k}.mp4") for k in range(3)}
    assert all((i.width, i.height) == (96, 64) for i in got)
    monkeypatch.chdir(tmp_path)
    said = []
    shutil.move(str(data / "v"), str(tmp_path / "moved"))
    with pytest.raises(ValueError, match="no usable video"):
        manifest_videos(data / "m.jsonl", warn=said.append)
    assert len(said) == 3 and "not found" in said[0] and "records paths as given" in said[0]


def test_preview_captions_say_where_built_pixels_came_from():
    """A consistency cell sample's caption lists frame i twice: it also names the frame its changed cell came from;
    a localization caption names the target's video and frame."""
    from sf2t.tasks.export import _provenance

    cell = {"task": "consistency", "params": {"j": 12}, "answer": {"kind": "cell", "cell": "top"}}
    assert _provenance(cell) == " (frame 2: its top cell from frame 12)"
    loc = {"task": "localization", "params": {"target_source": "/x/b.mp4", "target_frame": 3}, "answer": {}}
    assert _provenance(loc) == " (target: b.mp4 frame 3)"
    assert _provenance({"task": "counting", "params": {}, "answer": {"count": 4}}) == ""


def test_frame_repeat_lists_each_presented_frame_n_times(manifest, tmp_path, capsys):
    """--frame-repeat 2 (Qwen2-VL family: its processors fuse frame pairs into one token group) lists each presented
    frame twice in a row, the same file; the answer still counts presented frames."""
    args = ["tasks", "export", "--manifest", str(manifest), "--num", "4", "--quiet", "--tasks", "counting"]
    assert cli.main([*args, "--out", str(tmp_path / "r2"), "--frame-repeat", "2"]) == 0
    for r in json.loads((tmp_path / "r2" / "data.json").read_text()):
        v = r["videos"][0]
        assert v[0::2] == v[1::2] and len(v) == 2 * int(r["meta"]["answer"]["count"]) == 2 * len(set(v))
    with pytest.raises(SystemExit):
        cli.main([*args, "--out", str(tmp_path / "r0"), "--frame-repeat", "0"])
    assert "argument --frame-repeat: must be a positive whole number, got 0" in capsys.readouterr().err


def test_a_full_disk_at_data_json_leaves_no_unlisted_samples(manifest, tmp_path, capsys, monkeypatch):
    """An export stopped by an OSError writing data.json (ENOSPC) says so in one line, exit 1, and removes the
    sample frames it wrote (no data.json lists them; they were left behind)."""
    import errno

    from sf2t import _files

    def full(path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(_files, "write_text_atomic", full)
    out = tmp_path / "x"
    assert cli.main(["tasks", "export", "--manifest", str(manifest), "--out", str(out), "--num", "2", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"sf2t tasks export: {out / 'data.json'}: No space left on device; the sample frames written to {out} that "
        "no data.json lists were removed"
    ), err
    assert not out.exists() or not any(out.rglob("*.png")), sorted(out.rglob("*"))


def test_summary_lists_every_task_asked_for_those_with_no_sample_too(manifest, tmp_path, capsys):
    """The export's summary has a line for every task asked for: one that made no sample (never drawn in a small
    --num, or every try skipped) shows 0 and why; such tasks were left out of it."""
    from sf2t.tasks.export import summary_text

    out = tmp_path / "ds"
    argv = ["tasks", "export", "--manifest", str(manifest), "--out", str(out), "--num", "2", "--quiet", "--seed", "1"]
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["tasks"]) == 6 and sum(summary["made"].values()) == 2
    never = [t for t in summary["tasks"] if t not in summary["made"] and t not in summary["skipped"]]
    assert never, summary  # (seed 1: four tasks never drawn)
    for t in summary["tasks"]:
        assert f"  {t:<14} made " in text, text
    for t in never:
        assert (
            f"  {t:<14} made      0   never drawn (each sample's task is drawn at random; a larger --num reaches it)"
            in text
        )
    assert text.startswith("2 samples from 1 window -> ")
    said = summary_text(
        {"samples": 1, "windows": 3, "tasks": ["speed", "counting"], "made": {"counting": 1}, "out": "x",
         "skipped": {"speed": {"too_short": 4}}}
    )  # fmt: skip
    assert said.splitlines() == [
        "1 sample from 3 windows -> x",
        "  speed          made      0   every try was skipped: too_short 4",
        "  counting       made      1   skipped (replaced by later samples): none",
    ], said
