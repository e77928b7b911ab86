"""sf2t throughput: the baselines make the same Qwen2-VL pixels as sf2t for the same plans (within fragment_pack's
tolerance), and the command prints and writes its figures."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("av")
pytest.importorskip("torchcodec")
pytest.importorskip("transformers")
synth = pytest.importorskip("sf2t.synth")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("tp")
    synth.make_clip(root / "a.mp4", 3, width=160, height=96, fps=30, seconds=3, gop=15)
    return root / "a.mp4"


def test_baselines_make_sf2t_pixels(clip):
    from bench.baselines import llamafactory_style, processor_for, qwenvl_utils_style
    from sf2t.ops.fragment_pack import QWEN2_VL_STD
    from sf2t.throughput import run_sf2t, sample_plans
    from sf2t.video import probe

    info = probe(clip)
    size = (84, 140)
    ours, decoded = run_sf2t([info], 2, size)
    plans = sample_plans([info], 2)
    assert len(ours) == len(plans) == 8 and decoded >= 16
    proc = processor_for(size)
    tol = 2 / 255 / min(QWEN2_VL_STD) + 1e-6
    for mod in (llamafactory_style, qwenvl_utils_style):
        for (a, ga), (path, ids) in zip(ours, plans):
            b, gb = mod.pixels(path, ids, size, proc)
            assert torch.equal(ga.reshape(-1), gb.reshape(-1)) and a.shape == b.shape
            d = (a - b).abs()
            assert float(d.max()) <= tol and float(d.mean()) <= 1e-3, mod.__name__


def test_throughput_command(clip, tmp_path, capsys):
    from sf2t import cli

    out = tmp_path / "tp.json"
    args = ["throughput", "--videos", str(clip.parent), "--windows", "1", "--rounds", "1", "--size", "56", "84"]
    assert cli.main(args + ["--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "llamafactory_style" in text and "ceiling" in text and "paired by round" in text
    res = json.loads(out.read_text())
    assert set(res["providers"]) == {"sf2t", "llamafactory_style", "qwenvl_utils_style"}
    assert res["providers"]["sf2t"]["sf2t_speedup"] == 1.0 and res["ceiling_samples_per_s"] > 0
    assert cli.main(["throughput", "--videos", str(tmp_path / "empty")]) == 2
    # an sf2t index manifest, as sf2t train takes it: its ok lines are measured (it was probed as a video, refused)
    manifest = tmp_path / "m.jsonl"
    assert cli.main(["index", str(clip), "-o", str(manifest), "--quiet", "--workers", "0"]) == 0
    capsys.readouterr()
    m_args = ["throughput", "--videos", str(manifest), "--windows", "1", "--rounds", "1", "--size", "56", "84"]
    assert cli.main([*m_args, "--against=", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["videos"] == [str(clip)]
    (tmp_path / "nothing").mkdir()
    assert cli.main(["throughput", "--videos", str(tmp_path / "nothing")]) == 2
    assert "--videos " + str(tmp_path / "nothing") + ": a folder with no video files" in capsys.readouterr().err
    assert cli.main(args + ["--against", "nope"]) == 2
    assert cli.main(args + ["--baseline-samples", "0"]) == 2
    assert "--baseline-samples must be >= 1, got 0" in capsys.readouterr().err
    capsys.readouterr()
    assert cli.main(args + ["--json", str(tmp_path)]) == 2  # refused before measuring, not after
    assert f"--json {tmp_path}: is a folder" in capsys.readouterr().err
    before = clip.read_bytes()
    assert cli.main(args + ["--json", str(clip)]) == 2  # the figures once replaced the video measured
    assert "is an input of this command" in capsys.readouterr().err and clip.read_bytes() == before
    # two torch and decoder threads for every provider: the same agreement check, the thread count reported
    assert cli.main(args + ["--threads", "2", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    # ... and on the CPU one pipeline thread per --threads unless asked otherwise
    assert "2 torch and decoder threads each" in text and "sf2t runs 2 pipeline threads" in text
    assert json.loads(out.read_text())["pipelines"] == 2
    assert cli.main(args + ["--threads", "2", "--prefetch", "1", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert (res["pipelines"], res["prefetch"]) == (1, 1)
    assert cli.main(args + ["--threads", "2", "--pipelines", "1", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["pipelines"] == 1
    assert json.loads(out.read_text())["threads"] == 2
    assert cli.main(args + ["--threads", "0"]) == 2
    assert "threads must be >= 1" in capsys.readouterr().err


def test_throughput_says_when_a_videos_folder_held_build_staging_folders(clip, tmp_path, capsys):
    """sf2t throughput --videos folder/ leaves out a FineVidBench build's staging folder there (``.build-*`` with its
    owner record) and says so as sf2t train does (it left it out silently)."""
    from sf2t import cli
    from sf2t.video.index import skipped_stages_text
    from tests.video.media import folder_with_build_stage

    root = tmp_path / "videos"
    stage = folder_with_build_stage(root, clip)
    out = tmp_path / "tp.json"
    args = ["--windows", "1", "--rounds", "1", "--warmup", "0", "--size", "56", "84", "--against=", "--json", str(out)]
    assert cli.main(["throughput", "--videos", str(root), *args]) == 0
    err = capsys.readouterr().err
    assert err.count(f"sf2t throughput: warning: --videos: {skipped_stages_text([str(stage)])}\n") == 1, err
    assert json.loads(out.read_text())["videos"] == [str(root / "a.mp4")]
    assert cli.main(["throughput", "--videos", str(root / "a.mp4"), *args]) == 0
    assert "staging" not in capsys.readouterr().err


def test_baselines_make_the_task_samples(clip):
    """With --tasks, the baselines get each built sample's presented frame ids (reordered, picked, repeated) and
    make the same pixels as sf2t's fragment_pack of that sample."""
    from bench.baselines import processor_for, qwenvl_utils_style
    from sf2t.ops.fragment_pack import QWEN2_VL_STD
    from sf2t.throughput import run_sf2t, sample_plans
    from sf2t.video import probe

    info = probe(clip)
    size = (56, 84)
    tasks = ("counting", "disorder", "rearrangement", "speed")
    ours, _ = run_sf2t([info], 2, size, seed=1, tasks=tasks)
    plans = sample_plans([info], 2, seed=1, tasks=tasks)
    assert len(ours) == len(plans) >= 4
    # not plain fragments: some sample presents its frames out of order or not 16 of them
    assert any(ids != sorted(ids) or len(ids) != 16 for _, ids in plans)
    proc = processor_for(size)
    tol = 2 / 255 / min(QWEN2_VL_STD) + 1e-6
    for (a, ga), (path, ids) in zip(ours, plans):
        b, gb = qwenvl_utils_style.pixels(path, ids, size, proc)
        assert torch.equal(ga.reshape(-1), gb.reshape(-1)) and a.shape == b.shape
        assert float((a - b).abs().max()) <= tol


def test_throughput_options(clip, tmp_path, capsys):
    from sf2t import cli

    out = tmp_path / "tp.json"
    args = ["throughput", "--videos", str(clip), "--windows", "1", "--rounds", "1", "--size", "56", "84"]
    assert cli.main(args + ["--tasks", "disorder", "speed", "--seconds", "0.5", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["tasks"] == ["disorder", "speed"] and res["family"] == "qwen2_vl"
    assert res["samples"] >= 1 and set(res["agreement"]) == {"llamafactory_style", "qwenvl_utils_style"}
    assert "disorder, speed" in capsys.readouterr().out
    # sf2t alone, with a task the baselines cannot make
    assert (
        cli.main(args + ["--tasks", "consistency", "--against", "", "--family", "qwen2_5_vl", "--json", str(out)]) == 0
    )
    assert set(json.loads(out.read_text())["providers"]) == {"sf2t"}
    capsys.readouterr()
    assert cli.main(args + ["--tasks", "consistency"]) == 2
    assert "cannot make ['consistency']" in capsys.readouterr().err
    assert cli.main(args + ["--tasks", "nope"]) == 2
    assert "--tasks: unknown task 'nope'; valid: fragment, counting," in capsys.readouterr().err
    for bad in ("0", "inf", "nan"):  # inf ran until killed, nan ran one window
        assert cli.main(args + ["--seconds", bad]) == 2
        assert "--seconds must be a finite number of seconds > 0" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert cli.main(args + ["--device", "cuda"]) == 2
        assert "no CUDA device" in capsys.readouterr().err
    assert cli.main(args + ["--device", "tpu"]) == 2
    assert "device must be cpu or cuda" in capsys.readouterr().err


def test_throughput_workers(clip, tmp_path, capsys):
    """--workers: sf2t's pipeline in DataLoader processes (pack in the worker) makes the same samples as in
    process; the figures are reported with the worker count; bad counts are errors naming the field."""
    from sf2t import cli
    from sf2t.throughput import _tasks, run_sf2t, run_sf2t_workers
    from sf2t.video import probe

    infos = [probe(str(clip))]
    made, _ = run_sf2t(infos, 2, (56, 84), seed=3, tasks=("disorder",))
    n, took = run_sf2t_workers(infos, 2, (56, 84), 1, seed=3, tasks=("disorder",))
    assert n == len(made) - 1 and took > 0  # the first sample starts the clock
    # the worker's packed pixels equal the in-process ones, sample by sample
    from sf2t.throughput import SAMPLES_PER_WINDOW, WINDOW, _PackInWorker
    from sf2t.video.sampler import FragmentDataset, make_loader

    ds = FragmentDataset(
        infos,
        _tasks(("disorder",)),
        num_windows=2,
        transform=_PackInWorker((56, 84)),
        seed=3,
        samples_per_window=SAMPLES_PER_WINDOW,
        window_frames=WINDOW,
        threads=1,
    )
    got = [it["pixels"] for it in make_loader(ds, 1) if "pixels" in it]
    assert len(got) == len(made) and all(torch.equal(a[0], b) for a, b in zip(made, got))
    out = tmp_path / "w.json"
    args = ["throughput", "--videos", str(clip), "--windows", "2", "--rounds", "1", "--size", "56", "84"]
    assert cli.main(args + ["--workers", "1", "--against", "llamafactory_style", "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["workers"] == 1 and res["providers"]["sf2t"]["samples_per_s"] > 0
    assert "1 worker processes" in capsys.readouterr().out
    assert cli.main(args + ["--workers", "-1"]) == 2
    assert "--workers must be >= 0, got -1" in capsys.readouterr().err


def test_throughput_prefetch(clip, tmp_path, capsys):
    """--prefetch: windows decoded ahead in a thread give the same samples and the same decode count as one after
    the other; the CLI reports it; it cannot be combined with --workers."""
    from sf2t import cli
    from sf2t.throughput import run_sf2t
    from sf2t.video import probe

    infos = [probe(str(clip))]
    a, da = run_sf2t(infos, 2, (56, 84), seed=5, tasks=("rearrangement",))
    b, db = run_sf2t(infos, 2, (56, 84), seed=5, tasks=("rearrangement",), prefetch=2)
    assert da == db and len(a) == len(b) and all(torch.equal(x[0], y[0]) for x, y in zip(a, b))
    # time-bounded: windows made ahead but not consumed are not counted as decoded
    c, dc = run_sf2t(infos, 2, (56, 84), seed=5, tasks=("rearrangement",), prefetch=3, seconds=1e-6, keep=False)
    assert len(c) == len(a) // 2 and dc == run_sf2t(infos, 1, (56, 84), seed=5, tasks=("rearrangement",))[1]
    out = tmp_path / "p.json"
    args = ["throughput", "--videos", str(clip), "--windows", "2", "--rounds", "1", "--size", "56", "84"]
    assert cli.main(args + ["--prefetch", "2", "--against", "", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["prefetch"] == 2
    assert "sf2t decodes 2 windows ahead" in capsys.readouterr().out
    assert cli.main(args + ["--prefetch", "1", "--workers", "1"]) == 2
    assert "choose one" in capsys.readouterr().err


def test_throughput_pipelines(clip, tmp_path, capsys):
    """--pipelines: windows shared out to threads give the same samples (in window order) and the same decode
    count as one pipeline; the time-bounded form makes samples; the CLI reports it; it is refused with --prefetch /
    --workers, off the CPU, and below 1."""
    from sf2t import cli
    from sf2t.throughput import run_sf2t, run_sf2t_pipelines
    from sf2t.video import probe

    infos = [probe(str(clip))]
    a, da = run_sf2t(infos, 3, (56, 84), seed=5, tasks=("rearrangement", "fragment"))
    for p in (2, 3, 4):  # 4 pipelines for 3 windows: one thread has nothing to do
        b, db = run_sf2t_pipelines(infos, 3, (56, 84), p, seed=5, tasks=("rearrangement", "fragment"), threads=2)
        assert db == da and len(b) == len(a)
        assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b))
    c, _ = run_sf2t_pipelines(infos, 1, (56, 84), 2, seed=5, seconds=1e-6, keep=False)
    assert len(c) >= 1 and c[0] is not None and all(x is None for x in c[1:])
    out = tmp_path / "p.json"
    args = ["throughput", "--videos", str(clip), "--windows", "2", "--rounds", "1", "--size", "56", "84"]
    assert cli.main(args + ["--pipelines", "2", "--threads", "2", "--against", "", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["pipelines"] == 2
    assert "2 pipeline threads" in capsys.readouterr().out
    assert cli.main(args + ["--pipelines", "2", "--prefetch", "1"]) == 2
    assert "choose one" in capsys.readouterr().err
    assert cli.main(args + ["--pipelines", "0"]) == 2
    assert "--pipelines must be >= 1, got 0" in capsys.readouterr().err


def test_warmup_rounds_are_run_and_not_timed(clip):
    """--warmup N: N untimed rounds of every provider before the timed ones (the default 1), reported in the JSON;
    a negative count is refused."""
    from sf2t.throughput import measure

    lines = []
    res = measure(
        [str(clip)],
        windows=1,
        rounds=2,
        warmup=2,
        size=(56, 84),
        against=("qwenvl_utils_style",),
        baseline_samples=2,
        log=lines.append,
    )
    assert [ln.split(":")[0] for ln in lines] == [
        "agreement",  # checked once, before the rounds
        "warm-up round 1/2",
        "warm-up round 2/2",
        "round 1/2",
        "round 2/2",
    ]
    assert all("sf2t" in ln and "qwenvl_utils_style" in ln for ln in lines)
    assert res["warmup_rounds"] == 2 and res["rounds"] == 2
    with pytest.raises(ValueError, match="warmup must be a non-negative int, got -1"):
        measure([str(clip)], warmup=-1, against=())


def test_default_pipelines():
    from sf2t.throughput import default_pipelines

    assert default_pipelines(1, "cpu") == 1
    assert default_pipelines(2, "cpu") == 2 and default_pipelines(4, "cpu") == 4
    assert default_pipelines(2, "cpu", prefetch=2) == 1 and default_pipelines(2, "cpu", workers=2) == 1
    assert default_pipelines(4, "cuda") == 1 and default_pipelines(4, "cuda:0") == 1


def test_pair_rounds():
    """Each round's sf2t rate is set against the ceiling measured right after it; the median of those ratios is
    reported, rounds without a decode-only measure give nan, not an error."""
    from sf2t.throughput import pair_rounds

    got = pair_rounds([0.01, 0.02, 0.01], [1000.0, 1500.0, 2000.0], [float("nan")] * 3, 10.0)
    assert [r["ceiling_samples_per_s"] for r in got["per_round"]] == pytest.approx([100.0, 150.0, 200.0])
    assert [r["fraction_of_ceiling"] for r in got["per_round"]] == pytest.approx([1.0, 1 / 3, 0.5])
    assert got["sf2t_fraction_of_ceiling_paired"] == pytest.approx(0.5)  # not 100 / 200 nor the mean
    assert got["sf2t_fraction_of_decode_only_ceiling_paired"] != got["sf2t_fraction_of_decode_only_ceiling_paired"]
    two = pair_rounds([0.01, 0.01], [1000.0, 3000.0], [2000.0, 2000.0], 10.0)
    assert two["sf2t_fraction_of_ceiling_paired"] == pytest.approx((1.0 + 1 / 3) / 2)
    assert two["sf2t_fraction_of_decode_only_ceiling_paired"] == pytest.approx(0.5)


def test_throughput_pairs_rounds(clip, monkeypatch):
    """measure() records the ceiling of every timed round right after sf2t's pass: per_round holds one entry a
    round, the headline ceiling is the best of them, and the paired fraction is their median ratio. Without PyAV
    (as on the lent GPU machine) the decode-only figures are nan, not a crash."""
    from sf2t import throughput

    res = throughput.measure([str(clip)], windows=1, rounds=3, warmup=0, against=(), size=(56, 84), log=lambda *_: 0)
    rounds = res["per_round"]
    assert len(rounds) == 3
    assert res["ceiling_samples_per_s"] == pytest.approx(max(r["ceiling_samples_per_s"] for r in rounds))
    fr = sorted(r["sf2t_samples_per_s"] / r["ceiling_samples_per_s"] for r in rounds)
    assert res["sf2t_fraction_of_ceiling_paired"] == pytest.approx(fr[1])
    assert res["providers"]["sf2t"]["samples_per_s"] == pytest.approx(
        sorted(r["sf2t_samples_per_s"] for r in rounds)[1]
    )
    monkeypatch.setattr(throughput, "raw_decode_fps", lambda *a, **k: float("nan"))
    res = throughput.measure([str(clip)], windows=1, rounds=1, warmup=0, against=(), size=(56, 84), log=lambda *_: 0)
    assert res["sf2t_fraction_of_decode_only_ceiling"] != res["sf2t_fraction_of_decode_only_ceiling"]
    assert res["sf2t_fraction_of_ceiling_paired"] > 0


def test_ceiling_falls_back_to_pyav(clip, monkeypatch):
    """Without torchcodec (as on the lent GPU machine) the ceiling is PyAV's all-frames rate, and says so."""
    import sys

    from sf2t import throughput

    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)  # import fails
    assert throughput.ceiling_decoder() == "pyav"
    assert throughput.raw_fps(str(clip)) > 0


def test_throughput_decoder_choice(clip, tmp_path, capsys):
    """--decoder picks sf2t's decoder, and the report names the backend that decoded (auto's choice included); a
    decoder that is not installed is refused before any work."""
    from sf2t import cli
    from sf2t.video.backends import available_decoders

    out = tmp_path / "tp.json"
    args = ["throughput", "--videos", str(clip), "--windows", "1", "--rounds", "1", "--size", "56", "84"]
    args += ["--against", "", "--json", str(out)]
    assert cli.main(args + ["--decoder", "pyav"]) == 0
    assert json.loads(out.read_text())["sf2t_decoder"] == "pyav"
    assert "sf2t decodes with pyav" in capsys.readouterr().out
    assert cli.main(args + ["--frames", "rgb"]) == 0
    assert json.loads(out.read_text())["sf2t_decoder"] == "torchcodec"  # auto on the CPU, torchcodec installed
    # plain fragments read no pixels: auto keeps the windows planar (yuv420), which only the pyav backend gives
    assert cli.main(args) == 0
    res = json.loads(out.read_text())
    assert (res["sf2t_decoder"], res["frames"]) == ("pyav", "yuv420")
    assert "sf2t decodes with pyav (yuv420 windows)" in capsys.readouterr().out
    # tasks that read pixels get RGB windows: torchcodec
    assert cli.main(args + ["--tasks", "counting", "speed"]) == 0
    res = json.loads(out.read_text())
    assert (res["sf2t_decoder"], res["frames"]) == ("torchcodec", "rgb")
    assert cli.main(args + ["--frames", "yuv420", "--decoder", "torchcodec"]) == 2
    assert "planar windows come from the pyav backend" in capsys.readouterr().err
    if "dali" not in available_decoders():
        assert cli.main(args + ["--decoder", "dali"]) == 2
        assert "decoder 'dali' is not installed" in capsys.readouterr().err


def test_videos_the_baselines_cannot_match_are_left_out(clip, tmp_path, capsys):
    """A rotated or 10-bit video: the baselines cannot make sf2t's pixels from it (they ignore the rotation; PyAV and
    torchcodec convert 10-bit differently), so it is left out of the comparison, said so, and recorded; with no
    other video the command says what to do (an AssertionError traceback before)."""
    from sf2t import cli
    from tests.video import media

    vids = tmp_path / "v"
    vids.mkdir()
    media.encode(vids / "rot.mp4", media.moving_frames(70, 48, 64), rotation=90)
    media.encode(vids / "ten.mp4", media.moving_frames(70, 48, 64), pix_fmt="yuv420p10le")
    args = ["throughput", "--windows", "1", "--rounds", "1", "--size", "56", "84", "--warmup", "0"]
    assert cli.main([*args, "--videos", str(vids)]) == 2
    assert "no video the baselines decode as sf2t does" in capsys.readouterr().err
    shutil.copy(clip, vids / "a.mp4")
    out = tmp_path / "r.json"
    assert cli.main([*args, "--videos", str(vids), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "left out of the comparison" in printed and "rotated 90 degrees" in printed
    res = json.loads(out.read_text())
    assert res["videos"] == [str(vids / "a.mp4")] and set(res["left_out"]) == {
        str(vids / "rot.mp4"),
        str(vids / "ten.mp4"),
    }


def test_ceiling_weighs_each_video_by_its_decodes(clip, tmp_path, monkeypatch):
    """Several videos: the ceiling is the raw rate of decoding, from each video, the frames sf2t decoded from it
    (total frames over total time), not the mean of the videos' rates, which overstated it when a small fast
    video sat beside a large slow one (the mixed ceiling came out above either video's own)."""
    from sf2t import throughput

    other = tmp_path / "b.mp4"
    synth.make_clip(other, 4, width=96, height=64, fps=30, seconds=3, gop=15)
    rates = {str(clip): 8000.0, str(other): 400.0}
    monkeypatch.setattr(throughput, "raw_fps", lambda p, *a, **k: rates[p])
    monkeypatch.setattr(throughput, "raw_decode_fps", lambda p, *a, **k: rates[p] * 2)
    res = throughput.measure(
        [str(clip), str(other)], windows=6, rounds=1, warmup=0, against=(), size=(56, 84), log=lambda *_: 0
    )
    assert res["ceiling_samples_per_s"] * res["sf2t_frames_decoded_per_sample"] < 3 * 400  # the mean: 4,200
    by = res["sf2t_frames_decoded_by_video"]
    assert set(by) == set(rates) and sum(by.values()) == pytest.approx(
        res["sf2t_frames_decoded_per_sample"] * res["samples"]
    )
    want = sum(by.values()) / sum(n / rates[p] for p, n in by.items())
    assert res["ceiling_fps"] == pytest.approx(want) and want < min(rates.values()) * 3  # not the mean, 4,200
    assert res["ceiling_samples_per_s"] == pytest.approx(want / res["sf2t_frames_decoded_per_sample"])
    assert res["decode_only_ceiling_fps"] == pytest.approx(2 * want)
    assert res["per_round"][0]["ceiling_samples_per_s"] == pytest.approx(res["ceiling_samples_per_s"])
    assert throughput.combined_fps({"a": 100.0, "b": 300.0}) == pytest.approx(150.0)  # equal weights: harmonic


def test_agreement_holds_the_mean_to_fragment_packs_tolerance():
    """A baseline whose pixels are off by 0.005 everywhere is within the max tolerance (0.03) but 5x over
    fragment_pack's mean tolerance (1e-3): not like for like (the check let a mean of up to 1e-2 through)."""
    from sf2t.throughput import check_agreement

    a, g = torch.zeros(8, 1176), torch.tensor([[1, 2, 4]])
    ok = check_agreement({"sf2t": [(a, g)], "b": [(a + 1e-4, g)]}, 0.03)
    assert ok["b"]["mean_abs"] == pytest.approx(1e-4)
    with pytest.raises(RuntimeError, match="mean 5.00e-03"):
        check_agreement({"sf2t": [(a, g)], "b": [(a + 0.005, g)]}, 0.03)


def test_frames_per_sample_without_baselines(clip):
    """--against '': the frames a sample presents are sf2t's own samples' mean (as with baselines, from their
    plans), not the first sample's padded temporal-patch count (16 for tasks that show 7-8 frames: frames/s and
    pixel MB/s were twice too high)."""
    from sf2t.throughput import measure, sample_plans
    from sf2t.video import probe

    tasks = ("counting", "disorder")
    kw = dict(windows=2, rounds=1, warmup=0, size=(56, 84), seed=1, tasks=tasks, log=lambda *_: 0)
    alone = measure([str(clip)], against=(), **kw)
    plans = sample_plans([probe(str(clip))], 2, seed=1, tasks=tasks)
    want = sum(len(ids) for _, ids in plans) / len(plans)
    assert want < 15 and alone["frames_per_sample"] == pytest.approx(want)
    r = alone["providers"]["sf2t"]
    assert r["frames_per_s"] == pytest.approx(want * r["samples_per_s"])


def _strict_json(text):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in the JSON"))


def test_json_is_strict(clip, tmp_path, monkeypatch):
    """The JSON has no bare NaN (a decode-only ceiling not measured, as without PyAV or on a GPU: null)."""
    from sf2t import cli, throughput

    monkeypatch.setattr(throughput, "raw_decode_fps", lambda *a, **k: float("nan"))
    out = tmp_path / "tp.json"
    args = ["throughput", "--videos", str(clip), "--windows", "1", "--size", "56", "84", "--warmup", "0"]
    assert cli.main(args + ["--rounds", "1", "--against", "", "--json", str(out)]) == 0
    res = _strict_json(out.read_text())
    assert res["sf2t_fraction_of_decode_only_ceiling"] is None and res["sf2t_fraction_of_ceiling"] > 0


def test_ctrl_c_reports_finished_rounds(clip, tmp_path, monkeypatch, capsys):
    """Ctrl-C after a timed round reports the rounds that finished (said so, exit 130); before any, a one-line
    message (a KeyboardInterrupt traceback before, the finished rounds lost)."""
    from sf2t import cli, throughput

    out = tmp_path / "tp.json"
    args = ["throughput", "--videos", str(clip), "--windows", "1", "--size", "56", "84", "--warmup", "0"]
    args += ["--against", "", "--json", str(out)]
    real, calls = throughput.raw_fps, []

    def stop_on(n):
        def raw(*a, **k):
            calls.append(1)
            if len(calls) == n:
                raise KeyboardInterrupt
            return real(*a, **k)

        return raw

    monkeypatch.setattr(throughput, "raw_fps", stop_on(2))  # in the second timed round
    capsys.readouterr()
    assert cli.main(args + ["--rounds", "3"]) == 130
    res = _strict_json(out.read_text())
    assert (res["rounds"], res["rounds_asked"], res["interrupted"], len(res["per_round"])) == (1, 3, True, 1)
    said = capsys.readouterr()
    assert "ceiling" in said.out
    assert "sf2t throughput: interrupted: the figures are of the 1 of 3 timed rounds that finished\n" in said.err
    out.unlink()
    calls.clear()
    monkeypatch.setattr(throughput, "raw_fps", stop_on(1))  # in the first
    assert cli.main(args + ["--rounds", "3"]) == 130
    assert "interrupted before a timed round finished" in capsys.readouterr().err and not out.exists()


def test_baselines_run_in_as_many_threads_as_sf2t_pipelines(clip, monkeypatch):
    """The baselines race sf2t's pipeline threads with as many threads of their own (``baseline_streams``, default
    ``pipelines``), --threads split between them like sf2t's, every plan made once per pass; one stream keeps the
    sequential loop. (They ran one sample at a time while sf2t ran --pipelines 2, an unequal comparison.)"""
    import threading

    from sf2t.throughput import _baselines, measure

    qv = _baselines()[0]["qwenvl_utils_style"]
    real = qv.pixels
    calls = []

    def spy(path, ids, size, proc, threads=1):
        calls.append((threading.get_ident(), threads, tuple(ids)))
        return real(path, ids, size, proc, threads=threads)

    monkeypatch.setattr(qv, "pixels", spy)
    kw = dict(windows=1, rounds=1, warmup=0, size=(56, 84), against=("qwenvl_utils_style",), baseline_samples=4)
    res = measure([str(clip)], threads=2, pipelines=2, log=lambda s: None, **kw)
    timed = calls[2:]  # the first two: the agreement check, in this thread
    assert res["baseline_streams"] == 2 and len(timed) == 4
    assert len({t for t, _, _ in timed}) == 2 and {n for _, n, _ in timed} == {1}
    assert threading.get_ident() not in {t for t, _, _ in timed}
    made = [ids for *_, ids in timed]  # plans 0-3, each once (0 and 1: the agreement check's)
    assert len(set(made)) == 4 and {ids for *_, ids in calls[:2]} <= set(made)
    calls.clear()
    res = measure([str(clip)], threads=2, pipelines=1, log=lambda s: None, **kw)
    assert res["baseline_streams"] == 1 and {(t, n) for t, n, _ in calls} == {(threading.get_ident(), 2)}
    import sf2t.throughput as tp

    monkeypatch.setattr(tp, "run_sf2t_workers", lambda *a, **k: (4, 0.1))  # sf2t in 2 worker processes
    calls.clear()
    res = measure([str(clip)], threads=2, workers=2, log=lambda s: None, **kw)
    assert res["baseline_streams"] == 2 and len({t for t, _, _ in calls[2:]}) == 2
    with pytest.raises(ValueError, match="baseline_streams must be a positive int, got 0"):
        measure([str(clip)], baseline_streams=0, against=())


def test_broken_and_short_videos_are_left_out_not_fatal(clip, tmp_path, capsys):
    """A folder with a broken file or a video shorter than a window among good ones: those are left out, said (at
    most three named) and recorded in the JSON, and the rest is measured (one such file stopped the whole run);
    with nothing usable the command says why."""
    from sf2t import cli
    from tests.video import media

    vids = tmp_path / "v"
    vids.mkdir()
    media.encode(vids / "short.mp4", media.moving_frames(20, 48, 64))
    (vids / "junk.mp4").write_bytes(b"not a video at all" * 50)
    args = ["throughput", "--windows", "1", "--rounds", "1", "--size", "56", "84", "--warmup", "0", "--against", ""]
    assert cli.main([*args, "--videos", str(vids)]) == 2
    err = capsys.readouterr().err
    assert "no usable video" in err and "short.mp4: 20 frames, shorter than a 64-frame window" in err
    assert "junk.mp4" in err
    shutil.copy(clip, vids / "a.mp4")
    out = tmp_path / "r.json"
    assert cli.main([*args, "--videos", str(vids), "--json", str(out)]) == 0
    assert "left out (not readable or too short)" in capsys.readouterr().out
    res = json.loads(out.read_text())
    assert res["videos"] == [str(vids / "a.mp4")]
    assert set(res["left_out"]) == {str(vids / "short.mp4"), str(vids / "junk.mp4")}


def test_portrait_and_odd_sized_videos_are_measured(tmp_path):
    """A portrait video (to the default landscape target) and an odd-sized one are measured like any other: Pillow
    resized the portrait frames vertical pass first and PyAV converted the odd-sized ones with bilinear chroma, so
    LLaMA-Factory-style's pixels left the agreement tolerance and the whole run stopped (its check twin pins both
    roundings to sf2t's; the timed path is unchanged)."""
    from sf2t.throughput import measure
    from tests.video import media

    vids = tmp_path / "v"
    vids.mkdir()
    synth.make_clip(vids / "portrait.mp4", 3, width=96, height=160, fps=30, seconds=3, gop=15)
    media.encode(vids / "odd.webm", media.moving_frames(70, 97, 161), codec="libvpx-vp9")
    paths = sorted(str(p) for p in vids.iterdir() if p.suffix in (".mp4", ".webm"))
    res = measure(paths, windows=4, rounds=1, warmup=0, size=(56, 84), baseline_samples=2, log=lambda s: None)
    assert sorted(res["videos"]) == paths and not res["left_out"]
    assert {p for p in paths} <= {p for p in res["sf2t_frames_decoded_by_video"]}
    for name in ("llamafactory_style", "qwenvl_utils_style"):
        assert res["agreement"][name]["max_abs"] <= 0.031, name


def test_agreement_windows():
    """Window 0, the first window of each further video and the last window; at most ``most``, spread evenly."""
    from sf2t.throughput import agreement_windows

    video = ["a", "a", "b", "a", "c", "c", "b", "a"].__getitem__
    assert agreement_windows(video, 8) == [0, 2, 4, 7]
    assert agreement_windows(video, 1) == [0]
    assert agreement_windows(video, 2) == [0, 1]
    assert agreement_windows(lambda w: w, 100, most=4) == [0, 33, 66, 99]


def test_agreement_checks_windows_past_the_first(clip, tmp_path, monkeypatch):
    """A baseline that is wrong on the second video only (window 0 is the first's) is caught, and the error names
    that video: the check compared window 0's first two samples alone, so a run over bad pixels went on."""
    import bench.baselines.qwenvl_utils_style as qv
    from sf2t.throughput import _sampler, measure
    from sf2t.video import probe

    other = tmp_path / "b.mp4"
    synth.make_clip(other, 4, width=160, height=96, fps=30, seconds=3, gop=15)
    paths = [str(clip), str(other)]
    s = _sampler([probe(p) for p in paths], 0)
    order = [s.plan(w).video.path for w in range(4)]
    s.close()
    later = next(p for p in order if p != order[0])  # a video that window 0 does not show
    real = qv.pixels

    def wrong(path, ids, size, proc, threads=1):
        px, grid = real(path, ids, size, proc, threads=threads)
        return (px + 0.5 if path == later else px), grid

    monkeypatch.setattr(qv, "pixels", wrong)
    with pytest.raises(RuntimeError, match=f"qwenvl_utils_style: pixel values differ.*{later}"):
        measure(paths, windows=4, rounds=1, warmup=0, size=(56, 84), against=["qwenvl_utils_style"], log=print)


def test_odd_sized_video_the_decoders_convert_differently_is_left_out(clip, tmp_path, capsys):
    """An odd-sized 4:2:0 video whose RGB PyAV and torchcodec make apart (PyAV's bundled FFmpeg and the system one
    torchcodec uses take swscale's scaled path differently: an MPEG-4 Part 2 161x97 clip here) is left out of the
    comparison with its reason, and the other videos are measured: the agreement check stopped the whole run. Where
    the two decoders agree on it, it is measured like any other."""
    from sf2t import cli
    from tests.video import media

    vids = tmp_path / "v"
    vids.mkdir()
    odd = media.encode(vids / "odd.mkv", media.moving_frames(70, 97, 161), codec="mpeg4")
    shutil.copy(clip, vids / "a.mp4")
    out = tmp_path / "r.json"
    args = ["throughput", "--windows", "4", "--rounds", "1", "--size", "56", "84", "--warmup", "0"]
    assert cli.main([*args, "--baseline-samples", "2", "--videos", str(vids), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    from sf2t.throughput import RGB_STEPS, rgb_disagreement

    if rgb_disagreement(str(odd)) > RGB_STEPS:  # this machine's PyAV and torchcodec: up to 56 steps apart
        assert res["videos"] == [str(vids / "a.mp4")]
        assert "odd-sized 161x97 (PyAV and torchcodec convert" in res["left_out"][str(odd)]
        assert "left out of the comparison" in capsys.readouterr().out
    else:
        assert sorted(res["videos"]) == sorted([str(vids / "a.mp4"), str(odd)])


def test_truncated_file_whose_header_promises_more_frames(clip, tmp_path):
    """A Matroska file cut short: its header's duration promises 200 frames, 108 are there (the probe counts them).
    The ceiling's raw decode asked torchcodec for frame 108 and the whole run stopped after sf2t's first pass; it
    now decodes the frames there are, and the file is measured with the other."""
    from sf2t.throughput import measure, raw_fps
    from sf2t.video import probe
    from tests.video import media

    whole = media.encode(tmp_path / "whole.mkv", media.moving_frames(200, 48, 64), gop=10)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 55 // 100])
    n = probe(cut).num_frames
    assert 64 <= n < 200
    res = measure([str(cut), str(clip)], windows=2, rounds=1, warmup=0, size=(56, 84), against=(), log=lambda s: None)
    assert sorted(res["videos"]) == sorted([str(cut), str(clip)]) and res["raw_fps"][str(cut)] > 0
    assert raw_fps(str(cut)) > 0  # without the probe's count too: the pass ends where the frames do


def test_help_says_what_the_defaults_do(clip, capsys):
    """--help describes what runs: with the defaults on the CPU, sf2t decodes plain fragments with PyAV (yuv420
    windows), which --decoder's help did not say (it named torchcodec); --rounds and --seed say what they are."""
    from sf2t import cli
    from sf2t.throughput import measure

    with pytest.raises(SystemExit):
        cli.main(["throughput", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "PyAV for yuv420 windows, which --frames auto takes for plain fragments on the CPU" in text
    assert "--rounds ROUNDS timed rounds" in text and "--seed SEED the sampler's seed" in text
    res = measure([str(clip)], windows=1, rounds=1, warmup=0, size=(56, 84), against=(), log=lambda s: None)
    assert res["sf2t_decoder"] == "pyav" and res["frames"] == "yuv420"


def test_file_broken_past_its_header_is_left_out(clip, tmp_path, capsys):
    """A file whose header probes fine but whose frames stop decoding part way (bytes overwritten mid-file) is left
    out with its reason, like an unreadable one, and the others are measured: sf2t's first pass made no sample from
    it, or the ceiling's decode or a baseline failed on it, and the whole run stopped."""
    from sf2t import cli
    from tests.video import media

    vids = tmp_path / "v"
    vids.mkdir()
    src = media.encode(tmp_path / "src.mp4", media.moving_frames(80, 48, 64))
    media.corrupt_middle(src, vids / "corrupt.mp4")
    shutil.copy(clip, vids / "a.mp4")
    out = tmp_path / "r.json"
    args = ["throughput", "--windows", "4", "--rounds", "1", "--size", "56", "84", "--warmup", "0"]
    for against in ("", "llamafactory_style,qwenvl_utils_style"):
        assert cli.main([*args, "--against", against, "--videos", str(vids), "--json", str(out)]) == 0, against
        assert "left out (not readable or too short)" in capsys.readouterr().out
        res = json.loads(out.read_text())
        assert res["videos"] == [str(vids / "a.mp4")]
        assert "decode" in res["left_out"][str(vids / "corrupt.mp4")]


def _left_out_of_the_comparison(clip, tmp_path, capsys, make, reasons):
    """``make(path)`` (a file the baselines cannot read as sf2t does) beside a plain clip: the run measures the clip,
    leaves the file out of the comparison with ``reasons`` in its JSON reason; sf2t alone (``--against ''``)
    measures it."""
    from sf2t import cli

    vids = tmp_path / "v"
    vids.mkdir()
    odd = make(vids)
    shutil.copy(clip, vids / "a.mp4")
    out = tmp_path / "r.json"
    args = ["throughput", "--windows", "4", "--rounds", "1", "--size", "56", "84", "--warmup", "0"]
    assert cli.main([*args, "--baseline-samples", "2", "--videos", str(vids), "--json", str(out)]) == 0
    assert "left out of the comparison" in capsys.readouterr().out
    res = json.loads(out.read_text())
    assert res["videos"] == [str(vids / "a.mp4")]
    for reason in reasons:
        assert reason in res["left_out"][str(odd)]
    assert cli.main([*args, "--against", "", "--videos", str(odd), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["videos"] == [str(odd)]


def test_file_with_two_video_streams_is_left_out_of_the_comparison(clip, tmp_path, capsys):
    """A file with two video streams, the second default-flagged: sf2t and PyAV read the first, torchcodec's default
    (qwen-vl-utils-style's VideoDecoder(path)) the second, another video, and the agreement check stopped the run.
    It is left out of the comparison with its reason; sf2t alone measures it (the ceiling decoding sf2t's stream)."""
    from tests.video import media

    make = lambda vids: media.two_video_streams(vids / "two.mp4", n=70)  # noqa: E731
    _left_out_of_the_comparison(clip, tmp_path, capsys, make, ["several video streams (sf2t and PyAV read stream 0"])


def test_file_with_a_cover_picture_before_the_video_is_left_out_of_the_comparison(clip, tmp_path, capsys):
    """An MP4 whose first video stream is a cover picture (an attached picture) before the video: sf2t reads the
    video, LLaMA-Factory-style the container's first video stream as LLaMA-Factory does (the picture: one frame, and
    the run stopped in its decode, a KeyError), and qwen-vl-utils-style's torchcodec could not open it here. It is left
    out of the comparison with its reason; sf2t alone measures it."""
    from tests.video import media

    reasons = ["a cover picture before the video (its first video stream, 0,", "sf2t reads stream 1"]
    make = lambda vids: media.cover_first(clip, vids / "cover.mp4")  # noqa: E731
    _left_out_of_the_comparison(clip, tmp_path, capsys, make, reasons)


def test_ceilings_and_rgb_check_read_sf2t_stream_not_a_cover_picture(clip, tmp_path, monkeypatch):
    """The ceilings and the odd-size RGB check read the stream sf2t reads. On a file with a cover picture before the
    video the decode-only ceiling and PyAV's ceiling decoded the picture (one frame: a still image's rate as the
    ceiling, sf2t at 135 % of it), and :func:`rgb_disagreement` set the picture against torchcodec's frame (its
    torchcodec side did not open the file: 0, where the same video without the picture is 56 steps apart here)."""
    import types

    from sf2t.throughput import ceiling, raw_decode_fps, raw_fps, rgb_disagreement
    from tests.video import media

    cover = str(media.cover_first(clip, tmp_path / "cover.mp4"))
    ticks = iter(range(10**6))
    monkeypatch.setattr(ceiling, "time", types.SimpleNamespace(perf_counter=lambda: next(ticks)))  # 1 s a pass
    n = 90  # the clip's frames (3 s at 30 fps): frames/s with each pass taking 1 s
    assert raw_decode_fps(cover) == n and ceiling._raw_fps_pyav(cover, 1) == n and raw_fps(cover) == n
    odd = media.encode(tmp_path / "odd.mp4", media.moving_frames(20, 97, 161), codec="mpeg4")
    odd_cover = str(media.cover_first(odd, tmp_path / "odd_cover.mp4"))
    assert rgb_disagreement(odd_cover) == rgb_disagreement(str(odd))


def test_auto_frames_are_rgb_where_a_video_has_no_planar_windows(tmp_path):
    """--frames auto takes yuv420 windows only where every video gives them (8-bit 4:2:0, even sizes, upright): the
    pyav backend converts an odd-sized video's frames one by one, ~3x slower than torchcodec's RGB windows, and auto
    chose that path for it."""
    from types import SimpleNamespace

    from sf2t.throughput import measure, resolve_frames
    from tests.video import media

    odd = media.encode(tmp_path / "odd.webm", media.moving_frames(70, 97, 161), codec="libvpx-vp9")
    res = measure([str(odd)], windows=1, rounds=1, warmup=0, size=(56, 84), against=(), log=lambda s: None)
    assert res["frames"] == "rgb"
    even = SimpleNamespace(width=64, height=48, pix_fmt="yuv420p", bit_depth=8, rotation=0)
    have = ("pyav", "torchcodec")
    assert resolve_frames("auto", "cpu", "auto", have, infos=[even]) == "yuv420"
    for other in (dict(width=63), dict(pix_fmt="yuv444p"), dict(bit_depth=10), dict(rotation=90)):
        assert resolve_frames(
            "auto", "cpu", "auto", have, infos=[even, SimpleNamespace(**{**vars(even), **other})]
        ) == ("rgb"), other
    assert resolve_frames("yuv420", "cpu", "auto", have, infos=[SimpleNamespace(**{**vars(even), "width": 63})]) == (
        "yuv420"
    )  # asked for: as asked


def test_timed_baseline_is_checked_against_its_check_twin(clip, tmp_path, monkeypatch):
    """The agreement check compares LLaMA-Factory-style's check twin (sf2t's rounding) with sf2t; the timed
    ``pixels`` is compared with the twin too (rounding apart), so a timed path that computes something else (here: each
    patch's values reversed) stops the run instead of being timed; the JSON keeps the twin difference."""
    import bench.baselines.llamafactory_style as lf
    from sf2t.throughput import measure

    kw = dict(windows=2, rounds=1, warmup=0, size=(56, 84), baseline_samples=2, against=["llamafactory_style"])
    res = measure([str(clip)], log=lambda s: None, **kw)
    twin = res["agreement"]["llamafactory_style"]["timed_vs_check_twin"]
    assert twin["samples"] == res["agreement"]["llamafactory_style"]["samples"] and twin["mean_abs"] < 0.05
    real = lf.pixels

    def swapped(path, ids, size, proc, threads=1):
        px, grid = real(path, ids, size, proc, threads=threads)
        return px.flip(-1), grid

    monkeypatch.setattr(lf, "pixels", swapped)
    with pytest.raises(RuntimeError, match="llamafactory_style: pixel values differ from check twin's"):
        measure([str(clip)], log=lambda s: None, **kw)


def test_llamafactory_style_says_which_frames_its_stream_lacks(clip, tmp_path):
    """LLaMA-Factory-style's decode of a stream that ends before a needed frame (the container's first video stream a
    one-frame cover picture; a file cut short) stopped with a bare ``KeyError: 5``: it now names the file, the frames
    needed and the frames the stream had (to the end of the stream too, as bench_decode's model reads it)."""
    from bench.baselines import llamafactory_style as lf
    from tests.video import media

    cover = str(media.cover_first(clip, tmp_path / "cover.mp4"))
    for read in (lambda: lf.decode(cover, [0, 5]), lambda: lf.decode(cover, [0, 5], to_end=True)):
        with pytest.raises(ValueError, match=r"cover\.mp4: needed frames \[0, 5\] of its first video stream") as e:
            read()
        assert "(stream 0), which has frames 0-0; frames [5] are not there" in str(e.value)
    assert lf.decode(str(clip), [3, 1], to_end=True).shape == (2, 96, 160, 3)


def test_bench_decode_ceiling_reads_sf2t_stream(clip, tmp_path):
    """bench_decode's ceiling decodes the stream sf2t reads (``tc_open``'s), not torchcodec's default: in a file with
    two video streams, the second default-flagged, it decoded the second (30 frames here, where sf2t reads 70); past a
    cover picture before the video too."""
    from bench.bench_decode import run_ceiling
    from tests.video import media

    assert run_ceiling(str(media.two_video_streams(tmp_path / "two.mp4", n=70, n_second=30))) == 70
    assert run_ceiling(str(media.cover_first(clip, tmp_path / "cover.mp4"))) == 90  # the clip's 3 s at 30 fps


def test_size_not_a_multiple_of_28_is_said_in_the_commands_terms(clip, capsys):
    """``sf2t throughput --size 250 450``: the error names the option, the value, why (Qwen2-VL's patch 14 x merge 2)
    and the nearest valid size, not the op's Python helper (``qwen2_vl_target_size()``), and before any video is
    probed; ``measure`` checks the size first too."""
    from sf2t import cli
    from sf2t.ops.fragment_pack import nearest_qwen2_vl_size
    from sf2t.throughput import measure

    assert cli.main(["throughput", "--videos", str(clip), "--size", "250", "450"]) == 2
    err = capsys.readouterr().err
    assert "--size 250 450: H and W must be positive multiples of 28 for Qwen2-VL (patch 14 x merge 2)" in err
    assert err.rstrip().endswith("use --size 252 448") and "qwen2_vl_target_size" not in err
    with pytest.raises(
        ValueError, match=r"size \(0, 84\): H and W must be positive multiples of 28 .*use size=\(28, 84\)"
    ):
        measure(["/no/such/video.mp4"], size=(0, 84))  # the size, not the missing video
    assert nearest_qwen2_vl_size((56, 84)) is None and nearest_qwen2_vl_size((-28, 13)) == (28, 28)


def test_size_above_qwen2_vl_max_pixels_is_refused(clip, capsys):
    """``sf2t throughput --size 28000 28000``: more pixels a frame than Qwen2-VL's processors make (the checkpoints'
    max_pixels 12,845,056; 9.4 GB a frame as packed float32) is refused before any video is read, with the largest
    size of that aspect ratio; ``measure`` refuses it too."""
    from sf2t import cli
    from sf2t.throughput import measure

    assert cli.main(["throughput", "--videos", str(clip), "--size", "28000", "28000"]) == 2
    err = capsys.readouterr().err
    assert "--size 28000 28000: frames too large for Qwen2-VL: 784,000,000 pixels a frame" in err
    assert "9,408,000,000 bytes a frame packed as float32" in err and "Traceback" not in err
    assert err.rstrip().endswith("use --size 3584 3584 (the largest square: 3584 x 3584)")
    with pytest.raises(ValueError, match=r"size \(3612, 3584\): frames too large .*use size=\(3584, 3556\)"):
        measure(["/no/such/video.mp4"], size=(3612, 3584))  # the size, not the missing video


@pytest.mark.parametrize(
    "extra, said",
    [
        (["--windows", "0"], "--windows must be >= 1, got 0"),
        (["--rounds", "0"], "--rounds must be >= 1, got 0"),
        (["--warmup", "-1"], "--warmup must be >= 0, got -1"),
        (["--workers", "-1"], "--workers must be >= 0, got -1"),
        (["--prefetch", "-2"], "--prefetch must be >= 0, got -2"),
        (["--baseline-streams", "0"], "--baseline-streams must be >= 1, got 0"),
        (["--seconds", "-1"], "--seconds must be a finite number of seconds > 0, got -1.0"),
        (["--json", ""], "--json '': give the path of the file to write the figures to"),  # once: no file, exit 0
    ],
)
def test_bad_options_are_named_as_options_before_any_video_is_read(tmp_path, capsys, extra, said):
    """A bad count, time or --json is said with the option's name (``--baseline-streams``, not measure's
    ``baseline_streams``), before the videos are probed (here: a file that is no video, which would be said
    otherwise); an empty --json ran the whole measurement and wrote nothing."""
    from sf2t import cli

    (tmp_path / "v.mp4").write_bytes(b"not a video")
    assert cli.main(["throughput", "--videos", str(tmp_path / "v.mp4"), "--size", "56", "84", *extra]) == 2
    err = capsys.readouterr().err
    assert said in err and "not a video" not in err and "cannot open" not in err


@pytest.mark.parametrize("given", [[""], [","], [" , "], ["", ""]])
def test_empty_tasks_are_named_before_the_videos_are_probed(tmp_path, capsys, given):
    """``--tasks ""`` (or only commas and spaces) said "unknown tasks []": it names the option and the tasks to
    choose from, exit 2, before any video is looked at; measure says the same in its own terms."""
    from sf2t import cli
    from sf2t.throughput import measure

    argv = ["throughput", "--videos", str(tmp_path / "nowhere.mp4"), "--tasks", *given]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err == (
        "sf2t throughput: --tasks: no task names given; name one or more of: fragment, counting, consistency, "
        "localization, disorder, rearrangement, speed\n"
    ), err
    with pytest.raises(ValueError, match=r"^tasks: no task names given; name one or more of: fragment, counting"):
        measure([str(tmp_path / "nowhere.mp4")], tasks=given)


def test_measure_checks_the_task_names_once(clip, monkeypatch):
    """measure reads and checks ``tasks`` once (commas split them there), not again for each of its samplers (it did
    three times and more a run)."""
    import sf2t.tasks
    from sf2t.throughput import measure

    calls = []
    real = sf2t.tasks.task_names
    monkeypatch.setattr(sf2t.tasks, "task_names", lambda *a, **k: calls.append(a) or real(*a, **k))
    kw = dict(windows=1, rounds=1, warmup=0, size=(56, 84), against=(), log=lambda *_: 0)
    res = measure([str(clip)], tasks=["counting,fragment"], pipelines=2, **kw)
    assert res["tasks"] == ["counting", "fragment"] and len(calls) == 1, calls


def test_unknown_baseline_is_said_before_the_videos_are_probed(tmp_path, capsys):
    """``--against nope`` was said after every video had been probed and decoded once (minutes on a real folder);
    spaces around the names (``--against "a, b"``) are not part of them."""
    from sf2t import cli
    from sf2t.throughput import measure

    with pytest.raises(ValueError, match=r"unknown baseline \['nope'\]; known: \['llamafactory_style'"):
        measure(["/no/such/video.mp4"], against=["nope"])  # the name, not the missing video
    (tmp_path / "v.mp4").write_bytes(b"not a video")
    argv = ["throughput", "--videos", str(tmp_path / "v.mp4"), "--size", "56", "84"]
    assert cli.main([*argv, "--against", "llamafactory_style, nope"]) == 2
    assert "unknown baseline ['nope']" in capsys.readouterr().err


def test_a_full_disk_at_the_json_is_one_line(clip, tmp_path, capsys, monkeypatch):
    """An OSError after the options were checked (ENOSPC writing --json) is one line naming the file and the error,
    exit 1, not a traceback; nothing is left at --json."""
    import errno

    from sf2t import _files, cli

    def full(path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(_files, "write_text_atomic", full)
    out = tmp_path / "tp.json"
    args = ["throughput", "--videos", str(clip.parent), "--windows", "1", "--rounds", "1", "--size", "56", "84"]
    assert cli.main(args + ["--against", "", "--json", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"sf2t throughput: {out}: No space left on device; nothing was written to --json {out}", err
    assert not out.exists()


@pytest.mark.parametrize(
    "kw, refused",
    [
        # numpy integers (a sweep's np.arange) pass the checks: the missing video is what is said
        (dict(size=np.array([56, 84]), threads=np.int64(1), windows=np.int64(1), rounds=np.int64(1)), None),
        (dict(warmup=np.int64(0), workers=np.int64(0), prefetch=np.int64(1), seed=np.int64(3)), None),
        (dict(pipelines=np.int64(1), baseline_samples=np.int64(2), baseline_streams=np.int64(1)), None),
        # bools (True read as 1), floats and strings are refused by name
        (dict(threads=True), "threads must be a positive int, got the bool True"),
        (dict(windows=2.0), "windows must be a positive int, got float 2.0: pass 2"),
        (dict(rounds=np.True_), "rounds must be a positive int, got the bool np.True_"),
        (dict(size=(np.True_, 84)), "size must be (h, w) ints, got (np.True_, 84): h is the bool"),
        (dict(baseline_samples=True), "baseline_samples must be a positive int, got the bool True"),
        (dict(seed=False), "seed must be an int, got the bool False"),
    ],
)
def test_measure_counts_take_numpy_ints_and_refuse_bools(kw, refused):
    from sf2t.throughput import measure

    with pytest.raises(ValueError, match=re.escape(refused or "no usable video: /no/such/video.mp4")):
        measure(["/no/such/video.mp4"], against=(), log=lambda s: None, **{"size": (56, 84), **kw})
