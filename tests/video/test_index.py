"""sf2t index and the probe on good, awkward and broken files: each file decodes or becomes a manifest error
with a clear reason; nothing stops the run, nothing hangs."""

from __future__ import annotations

import json
import os
import random
import shutil

import pytest

from sf2t import cli
from sf2t.video import index, probe
from sf2t.video.errors import VideoError
from tests.video import media

pytest.importorskip("av")
synth = pytest.importorskip("sf2t.synth")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder with good clips and every kind of bad input the ingestion issue names."""
    root = tmp_path_factory.mktemp("videos")
    good = synth.make_clip(root / "good", 1, width=96, height=64, seconds=2, gop=10)["path"]
    synth.make_clip(root / "sub" / "good9", 2, codec="vp9", width=96, height=64, seconds=2)
    (root / "zero.mp4").write_bytes(b"")
    # seeded junk: os.urandom made this flaky (FFmpeg now and then probes random bytes as a subtitle-only file,
    # reported as "no video stream (only subtitle: text)"); these bytes are unreadable as any format
    (root / "random.mp4").write_bytes(random.Random(0).randbytes(5000))
    media.truncated(good, root / "truncated.mp4", 0.5)
    media.audio_only(root / "audio.mp4")
    media.png_image(root / "image.mp4")  # an image with a video extension
    media.encode(root / "one.mp4", media.moving_frames(1, 48, 64))
    media.encode(root / "odd.mp4", media.moving_frames(6, 179, 321), pix_fmt="yuv444p")
    media.vfr_clip(root / "vfr.mp4")
    media.encode(root / "rot.mp4", media.moving_frames(6, 48, 64), rotation=-90)
    media.encode(root / "ten.mp4", media.moving_frames(6, 48, 64), pix_fmt="yuv420p10le")
    media.encode(root / "k4.mp4", media.moving_frames(2, 2160, 3840))
    big = media.encode(root / "mid.mp4", media.moving_frames(60, 96, 128), gop=10)
    media.corrupt_middle(big, root / "corrupt_mid.mp4")
    (root / "notes.txt").write_text("not picked up by the folder walk")
    return root


EXPECT_ERROR = {
    "zero.mp4": ("empty", "empty"),
    "random.mp4": ("unreadable", "cannot open"),
    "truncated.mp4": ("unreadable", "truncated"),
    "audio.mp4": ("no_video", "audio"),
    "image.mp4": ("not_video", "image"),
    "missing.mp4": ("missing", "not found"),
}


def run_index(paths, out, *extra):
    return cli.main(["index", *map(str, paths), "-o", str(out), "--quiet", *extra])


def by_name(entries):
    return {os.path.basename(e["path"]): e for e in entries}


@pytest.mark.parametrize("workers", [0, 2])
def test_index_folder(folder, tmp_path, capsys, workers):
    out = tmp_path / "m.jsonl"
    rc = run_index([folder, folder / "missing.mp4"], out, "--workers", str(workers))
    assert rc == 0
    text = capsys.readouterr().out
    entries = index.read_manifest(out)
    e = by_name(entries)
    assert "notes.txt" not in e
    for name, (kind, words) in EXPECT_ERROR.items():
        assert e[name]["status"] == "error", name
        assert e[name]["error_kind"] == kind, (name, e[name])
        assert words in e[name]["error"], (name, e[name]["error"])
    ok = {n for n, d in e.items() if d["status"] == "ok"}
    assert ok == {
        "good.mp4",
        "good9.webm",
        "one.mp4",
        "odd.mp4",
        "vfr.mp4",
        "rot.mp4",
        "ten.mp4",
        "k4.mp4",
        "mid.mp4",
        "corrupt_mid.mp4",
    }
    g = e["good.mp4"]
    assert (g["codec"], g["width"], g["height"], g["num_frames"], g["fps"]) == ("h264", 96, 64, 50, 25.0)
    assert g["keyframe_interval"] == 10.0 and g["duration"] == pytest.approx(2.0) and not g["vfr"]
    assert e["good9.webm"]["codec"] == "vp9" and e["good9.webm"]["num_frames"] == 50  # no count in the header
    assert e["vfr.mp4"]["vfr"] and e["rot.mp4"]["rotation"] == 270 and e["rot.mp4"]["width"] == 48
    assert e["ten.mp4"]["bit_depth"] == 10 and e["one.mp4"]["num_frames"] == 1
    assert (e["odd.mp4"]["width"], e["odd.mp4"]["height"]) == (321, 179)
    # the summary: ok / errors by reason / hours
    assert "10 ok, 6 errors of 16 files" in text and "hours of usable video" in text
    for kind in ("empty", "unreadable", "no_video", "not_video", "missing"):
        assert f"  {kind}: " in text


def test_reindex_reuses_unchanged_entries(folder, tmp_path, capsys):
    work = tmp_path / "v"
    shutil.copytree(folder, work)
    out = tmp_path / "m.jsonl"
    assert run_index([work], out, "--workers", "0") == 0
    first = by_name(index.read_manifest(out))
    res = index.index_paths([work], out, workers=0, progress=False)
    assert res.probed == 0 and res.reused == len(first)
    # a changed file is probed again; the rest are reused
    os.replace(work / "one.mp4", work / "tmp.mp4")
    shutil.copy(work / "good.mp4", work / "one.mp4")
    os.remove(work / "tmp.mp4")
    res = index.index_paths([work], out, workers=0, progress=False)
    assert res.probed == 1
    assert by_name(res.entries)["one.mp4"]["num_frames"] == 50


def test_exit_code_when_nothing_is_usable(tmp_path, capsys):
    (tmp_path / "zero.mp4").write_bytes(b"")
    assert run_index([tmp_path], tmp_path / "m.jsonl") == 1
    assert "no usable video" in capsys.readouterr().err


def test_a_folder_without_videos_is_named_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a video")
    assert run_index([tmp_path / "empty"], tmp_path / "m.jsonl") == 2
    err = capsys.readouterr().err
    assert f"no video files under {tmp_path / 'empty'}" in err and ".mp4" in err
    assert not (tmp_path / "m.jsonl").exists()


def test_unreadable_permissions(folder):
    import tempfile
    from pathlib import Path

    d = Path(tempfile.mkdtemp(prefix="sf2t-perm-"))  # under /tmp, traversable by the user we switch to
    os.chmod(d, 0o755)
    p = d / "locked.mp4"
    shutil.copy(folder / "good.mp4", p)
    os.chmod(p, 0)
    try:
        if os.geteuid() == 0:  # root reads anything: take a normal user's rights for the check
            os.seteuid(65534)
        with pytest.raises(VideoError) as e:
            probe(p)
    finally:
        if os.geteuid() != os.getuid():
            os.seteuid(os.getuid())
        shutil.rmtree(d)
    assert e.value.kind == "permission" and "permission denied" in e.value.reason


def test_verify_finds_the_corrupt_frame(folder):
    info = probe(folder / "corrupt_mid.mp4", verify=True)
    assert info.verified and len(info.corrupt_frames) >= 1
    assert all(0 < k < 59 for k in info.corrupt_frames)  # in the middle, not at the ends
    assert probe(folder / "mid.mp4", verify=True).corrupt_frames == ()


def test_per_file_time_limit(folder):
    with pytest.raises(VideoError, match="limit") as e:
        probe(folder / "good.mp4", verify=True, timeout=0.0)
    assert e.value.kind == "timeout"


def test_hung_probe_is_killed_and_the_rest_goes_on(folder, tmp_path):
    from tests.video import _hang

    hang = tmp_path / "hang.mp4"
    shutil.copy(folder / "good.mp4", hang)
    todo = [str(folder / "good.mp4"), str(hang), str(folder / "one.mp4")]
    got = {os.path.basename(e["path"]): e for e in index._probe_all(todo, 2, False, 0.5, target=_hang.worker)}
    assert got["hang.mp4"]["status"] == "error" and got["hang.mp4"]["error_kind"] == "timeout"
    assert got["good.mp4"]["status"] == "ok" and got["one.mp4"]["status"] == "ok"


def test_manifest_errors_are_clear(tmp_path):
    bad = tmp_path / "m.jsonl"
    bad.write_text('{"path": "a.mp4", "status": "error"}\nnot json\n')
    with pytest.raises(ValueError, match=r"m.jsonl:2"):
        index.read_manifest(bad)
    bad.write_text(json.dumps(GOOD_LINE) + "\n")
    assert index.usable(index.read_manifest(bad))[0].num_frames == 3


GOOD_LINE = {
    "path": "a.mp4",
    "status": "ok",
    "num_frames": 3,
    "fps": 1.0,
    "width": 2,
    "height": 2,
    "duration": 3.0,
    "codec": "h264",
}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"num_frames": None}, r"m.jsonl:2: a.mp4: an ok line missing num_frames"),
        ({"codec": None, "fps": None}, r"missing fps, codec"),
        ({"num_frames": "3"}, r"num_frames must be a positive integer \(below 2\*\*40\), got '3'"),
        ({"num_frames": 10**30}, r"num_frames must be a positive integer \(below 2\*\*40\)"),
        ({"rotation": "90"}, r"rotation must be 0, 90, 180 or 270, got '90'"),
        ({"rotation": 45}, r"rotation must be 0, 90, 180 or 270, got 45"),
        ({"corrupt_frames": "12"}, r"corrupt_frames must be a list of frame indices, got '12'"),  # once ('1', '2')
        ({"start": "x"}, r"start must be a number"),
        ({"keyframe_interval": 0}, r"keyframe_interval must be a positive number or null"),
        ({"vfr": "no"}, r"vfr must be true or false"),
        ({"width": 0}, r"width must be a positive integer, got 0"),
        ({"height": True}, r"height must be a positive integer, got True"),
        ({"fps": float("nan")}, r"fps must be a positive number, got nan"),
        ({"duration": -1}, r"duration must be a non-negative number, got -1"),
        ({"codec": 7}, r"codec must be a string, got 7"),
        ({"path": ""}, r"m.jsonl:2: 'path' must be a non-empty string"),
        ({"path": 5}, r"'path' must be a non-empty string, got 5"),
    ],
)
def test_an_incomplete_ok_line_is_named(tmp_path, change, message):
    """A hand-written or foreign manifest line that says ok must carry what the readers need; what it lacks or has
    wrong is named with the line, not a TypeError from deep inside."""
    line = {k: v for k, v in {**GOOD_LINE, **change}.items() if v is not None}
    bad = tmp_path / "m.jsonl"
    bad.write_text(json.dumps(GOOD_LINE) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(ValueError, match=message):
        index.read_manifest(bad)


def test_video_info_from_an_incomplete_dict_names_the_fields():
    from sf2t.video.probe import VideoInfo

    d = dict(GOOD_LINE)
    assert VideoInfo.from_dict(d).codec == "h264"
    del d["codec"], d["width"]
    with pytest.raises(ValueError, match=r"a.mp4: video metadata lacks width, codec"):
        VideoInfo.from_dict(d)


def test_tasks_export_names_an_incomplete_manifest_line(tmp_path, capsys):
    from sf2t.cli import main

    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps({"path": "junk.mp4", "status": "ok", "fps": 25}) + "\n")
    assert main(["tasks", "export", "--manifest", str(m), "--out", str(tmp_path / "o"), "--num", "3", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "m.jsonl:1: junk.mp4: an ok line missing num_frames, width, height, duration, codec" in err


def test_index_out_and_timeout_are_checked_first(folder, tmp_path, capsys):
    """A folder as the manifest, or a time limit that fails every file, is refused before probing; a manifest whose
    reused entries are all errors says how to probe them again; no temporary file is left."""
    assert run_index([folder / "good.mp4"], tmp_path) == 2
    err = capsys.readouterr().err
    assert f"manifest {tmp_path}: is a folder" in err
    out = tmp_path / "m.jsonl"
    assert run_index([folder / "good.mp4"], out, "--timeout", "0") == 2
    assert "--timeout must be > 0" in capsys.readouterr().err and not out.exists()
    bad = tmp_path / "zero.mp4"
    bad.write_bytes(b"")
    assert run_index([bad], out) == 1
    capsys.readouterr()
    assert run_index([bad], out) == 1
    err = capsys.readouterr().err
    assert "1 entry was reused from" in err and "--retry-errors probes them again" in err
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_write_text_atomic_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    import os

    from sf2t._files import write_text_atomic

    path = tmp_path / "a.json"
    write_text_atomic(path, "old")
    assert path.read_text() == "old"

    def full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError):
        write_text_atomic(path, "new")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    with pytest.raises(ValueError, match="is a folder"):
        write_text_atomic(tmp_path, "x", "--out")


def test_an_interrupted_index_keeps_what_it_probed(folder, tmp_path, capsys, monkeypatch):
    """Ctrl-C while indexing: the manifest holds the files probed so far (exit 130), and the next run reuses them;
    a long index also saves its progress as it goes."""
    real = index._probe_all
    files = [folder / "good.mp4", folder / "one.mp4", folder / "zero.mp4"]
    out = tmp_path / "m.jsonl"
    seen = []

    def stop_after_two(todo, *a, **k):
        for i, e in enumerate(real(todo, *a, **k)):
            if i == 2:
                raise KeyboardInterrupt
            if i == 1:  # SAVE_EVERY_S = 0: the first file is on disk before the second is reported
                seen.append(len(out.read_text().splitlines()))
            yield e

    monkeypatch.setattr(index, "_probe_all", stop_after_two)
    monkeypatch.setattr(index, "SAVE_EVERY_S", 0.0)
    assert run_index(files, out, "--workers", "0") == 130
    assert "interrupted: 2 files probed" in capsys.readouterr().err
    assert seen == [1] and [os.path.basename(e["path"]) for e in index.read_manifest(out)] == ["good.mp4", "one.mp4"]
    monkeypatch.setattr(index, "_probe_all", real)
    res = index.index_paths([str(f) for f in files], out, workers=0, progress=False)
    assert (res.reused, res.probed) == (2, 1) and len(res.entries) == 3


def test_the_manifest_never_overwrites_a_video_and_says_what_it_drops(tmp_path, capsys):
    """-o naming one of the videos indexed, or an existing file that is not a manifest, is refused before any work
    (it replaced the video with JSON lines); lines of files not given this time are left out with a warning; one
    file under several spellings (./x, /abs/x, a link to its folder) is one line; links that lead nowhere, loops
    included, are error lines (a loop inside a folder was left out silently)."""
    vids = tmp_path / "v"
    a = synth.make_clip(vids / "a", 1, width=64, height=48, seconds=1)["path"]
    b = synth.make_clip(tmp_path / "w" / "b", 2, width=64, height=48, seconds=1)["path"]
    before = open(a, "rb").read()
    assert run_index([vids], a) == 2
    assert "is an input of this command" in capsys.readouterr().err
    other = tmp_path / "other.mp4"
    shutil.copy(b, other)
    assert run_index([vids], other) == 2
    assert "exists and is not a manifest" in capsys.readouterr().err
    assert open(a, "rb").read() == before and open(other, "rb").read() == open(b, "rb").read()
    # JSON that is no manifest (a clip's pretty-printed ground truth, a one-line config): replaced after a warning
    for name, text in (("a.json", json.dumps({"num_frames": 30}, indent=1)), ("c.json", '{"lr": 0.1}\n')):
        (tmp_path / name).write_text(text)
        assert run_index([vids], tmp_path / name) == 2
        assert "exists and is not a manifest" in capsys.readouterr().err and (tmp_path / name).read_text() == text
    assert not index._looks_like_jsonl(tmp_path / "a.json")
    (tmp_path / "cut.jsonl").write_text('{"path": "x.mp4", "status": "ok"}\n{"path": "y.m')  # a manifest, cut short
    assert index._looks_like_jsonl(tmp_path / "cut.jsonl")

    m = tmp_path / "m.jsonl"
    (tmp_path / "link").symlink_to(vids)
    os.symlink("loop2.mp4", vids / "loop1.mp4")
    os.symlink("loop1.mp4", vids / "loop2.mp4")
    assert run_index([vids, f"{vids}/../v", tmp_path / "link", b], m) == 0
    lines = index.read_manifest(m)
    assert [os.path.basename(e["path"]) for e in lines] == ["a.mp4", "loop1.mp4", "loop2.mp4", "b.mp4"]
    assert [e["status"] for e in lines] == ["ok", "error", "error", "ok"]
    assert "link that leads nowhere" in lines[1]["error"]
    capsys.readouterr()
    assert run_index([vids], m) == 0
    err = capsys.readouterr().err
    assert f"warning: 1 line of {m} is for a file not under the paths given this time (e.g. " in err, err
    assert "the new manifest leaves it out (give its path too to keep it)" in err and len(index.read_manifest(m)) == 3
    # a FIFO with a video's name inside a folder: an error line, without hanging on it (it was left out silently)
    os.mkfifo(vids / "pipe.mp4")
    assert run_index([vids], m) == 0
    pipe = [e for e in index.read_manifest(m) if e["path"].endswith("pipe.mp4")]
    assert len(pipe) == 1 and pipe[0]["status"] == "error" and "not a regular file" in pipe[0]["error"]


def test_index_progress_does_not_redraw_per_file(tmp_path, capsys, monkeypatch):
    """The progress bar of a large index redraws at tqdm's pace, not once per file: the error count it shows was a
    forced redraw (a line per file in a log that is not a terminal) and a sum over every file probed so far (quadratic
    in the number of files: hours for a million files). The count it ends on is still right."""
    n = 4000
    (tmp_path / "v").mkdir()
    for i in range(n):
        (tmp_path / "v" / f"{i:05d}.mp4").write_bytes(b"")

    def fake(todo, *a, **k):  # no decoding: the bar's own cost and output only
        for i, p in enumerate(todo):
            yield {"path": p, "status": "ok" if i % 4 else "error", "error_kind": "empty", "error": "x"}

    monkeypatch.setattr(index, "_probe_all", fake)
    res = index.index_paths([str(tmp_path / "v")], tmp_path / "m.jsonl", workers=0, progress=True)
    assert res.probed == n
    err = capsys.readouterr().err
    redraws = err.count("\r")
    assert redraws < n // 20, f"{redraws} redraws for {n} files"
    assert f"errors={n // 4}" in err.rsplit("\r", 1)[-1]  # the last state shown counts every error


def test_folder_walk_takes_the_common_video_extensions(tmp_path):
    """MPEG-PS (.vob, .m2v), ASF, DV, F4V and 3G2 files are videos too (a folder of DVD rips gave nothing)."""
    from sf2t.video.index import find_files

    for name in ("a.vob", "b.m2v", "c.asf", "d.dv", "e.f4v", "f.3g2", "g.txt", "h.json"):
        (tmp_path / name).write_bytes(b"x")
    got = [os.path.basename(p) for p in find_files([tmp_path])]
    assert got == ["a.vob", "b.m2v", "c.asf", "d.dv", "e.f4v", "f.3g2"]


def test_a_worker_that_died_after_its_answer_is_replaced(tmp_path):
    """A probing process that exits after answering (a crash in a decoder's cleanup) met the next file's send with a
    BrokenPipeError that stopped the index ("error: [Errno 32] Broken pipe"); the file goes to a new process."""
    import multiprocessing
    import time

    from tests.video import _hang

    todo = [str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")]
    got = index._probe_all(todo, 1, False, None, target=_hang.answer_once)
    first = next(got)
    deadline = time.monotonic() + 30
    while multiprocessing.active_children() and time.monotonic() < deadline:  # the worker gone before the next send
        time.sleep(0.05)
    assert not multiprocessing.active_children()
    assert [first["path"]] + [e["path"] for e in got] == todo


def test_index_says_a_file_error_in_one_line_and_keeps_other_tracebacks(tmp_path, capsys, monkeypatch):
    """An OSError of a file (a full disk at a save) is one line, the file and the system's words (it was the repr,
    "error: [Errno 28] No space left on device: '...'", exit 2), and what the manifest holds, exit 1; another OSError
    (a bug) keeps its traceback, not disguised as "error: ..."."""
    import errno
    import io

    from sf2t import _files

    bad = tmp_path / "zero.mp4"
    bad.write_bytes(b"")
    out = tmp_path / "m.jsonl"
    tmp = tmp_path / ".m.jsonl.tmp"

    def full(path, text, label="output"):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    monkeypatch.setattr(_files, "write_text_atomic", full)
    assert run_index([bad], out, "--workers", "0") == 1
    err = capsys.readouterr().err
    assert err == (  # a first run stopped before its first save: there is no manifest to go on from
        f"sf2t index: {tmp}: No space left on device; nothing was saved yet ({out} was not written): once that is "
        "fixed, the same command starts again\n"
    ), err
    out.write_text("")  # an earlier run's manifest
    assert run_index([bad], out, "--workers", "0") == 1
    err = capsys.readouterr().err
    assert err == (
        f"sf2t index: {tmp}: No space left on device; {out} holds what was last saved (it is written whole or not at "
        "all): once that is fixed, the same command goes on from there\n"
    ), err

    def bug(path, text, label="output"):
        raise io.UnsupportedOperation("fileno")

    monkeypatch.setattr(_files, "write_text_atomic", bug)
    with pytest.raises(io.UnsupportedOperation):
        run_index([bad], out, "--workers", "0")
    assert "error" not in capsys.readouterr().err


def test_index_skips_build_staging_folders_and_says_so(tmp_path, capsys):
    """A FineVidBench build's staging folder (made by place.make_stage: ``.build-*`` with its owner.json) holds
    half-written clips and, in replaced/, an earlier build's: the walk leaves it out and the summary counts it (they
    were indexed as training videos). A ``.build-*`` folder without the owner record, or another hidden folder, is
    the user's and is walked."""
    from sf2t.finevidbench.place import make_stage

    root = tmp_path / "videos"
    root.mkdir()
    clip = media.encode(root / "a.mp4", media.moving_frames(2, 48, 64))
    stage, f = make_stage(root, root / "bench.json")
    f.close()
    # (.build-mine: named so, but with no owner record: not a staging folder)
    for to in (
        stage / "clips/half.mp4",
        stage / "replaced/clips/old.mp4",
        root / ".build-mine/b.mp4",
        root / ".hidden/c.mp4",
    ):
        to.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, to)
    out = tmp_path / "m.jsonl"
    assert run_index([root], out, "--workers", "0") == 0
    text = capsys.readouterr().out
    assert sorted(by_name(index.read_manifest(out))) == ["a.mp4", "b.mp4", "c.mp4"]
    assert "skipped 1 sf2t build staging folder (.build-* with an owner.json: " in text and str(stage) in text
    assert run_index([stage], tmp_path / "s.jsonl", "--workers", "0") == 0  # named itself: walked
    assert sorted(by_name(index.read_manifest(tmp_path / "s.jsonl"))) == ["half.mp4", "old.mp4"]
    for p in (root / "a.mp4", root / ".build-mine", root / ".hidden"):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    assert run_index([root], tmp_path / "n.jsonl") == 2
    err = capsys.readouterr().err
    assert f"no video files under {root}" in err and f"left out 1 sf2t build staging folder, e.g. {stage}" in err


def test_the_walk_looks_at_each_hidden_folder_once(tmp_path, monkeypatch):
    """Whether a hidden folder is a build's staging folder is asked once per folder, not once per file under it (its
    cache was ``stages.setdefault(d, is_build_stage(d))``: the default worked out every time); each staging folder is
    said once in ``skipped``."""
    from sf2t.finevidbench.place import make_stage

    root = tmp_path / "videos"
    root.mkdir()
    stage, f = make_stage(root, root / "b.json")
    f.close()
    for folder in (stage / "videos", root / ".hidden"):
        folder.mkdir()
        for i in range(200):
            (folder / f"{i:03d}.mp4").write_bytes(b"")
    from sf2t.video import find  # where the walk (_stage_above) reads is_build_stage

    asked = []
    real = find.is_build_stage
    monkeypatch.setattr(find, "is_build_stage", lambda d: asked.append(d) or real(d))
    skipped = [str(stage)]  # (said by an earlier walk: not again)
    found = index.find_files([root], skipped)
    assert sorted(asked) == sorted([stage, root / ".hidden"]), len(asked)
    assert len(found) == 200 and skipped == [str(stage)]
    skipped = []
    assert len(index.find_files([root], skipped)) == 200 and skipped == [str(stage)]
