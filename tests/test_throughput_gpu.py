"""sf2t throughput with --device cuda (issue 9's GPU table): sf2t decodes (the best decoder there), packs on the GPU,
and agrees with the LLaMA-Factory-style baseline (PyAV, the only baseline that needs no torchcodec); in process,
with a prefetch thread and with DataLoader workers. Skips without CUDA; SF2T_REQUIRE_CUDA=1 makes it fail instead."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("av")
pytest.importorskip("transformers")
synth = pytest.importorskip("sf2t.synth")


@pytest.mark.gpu
@pytest.mark.parametrize("mode", [[], ["--prefetch", "2"], ["--workers", "1"]], ids=["inline", "prefetch", "workers"])
def test_throughput_on_cuda(tmp_path, capsys, mode):
    from sf2t import cli
    from sf2t.ops.fragment_pack import QWEN2_VL_STD

    clip = synth.make_clip(tmp_path / "a.mp4", 3, width=160, height=96, fps=30, seconds=3, gop=15)["path"]
    out = tmp_path / "tp.json"
    args = ["throughput", "--videos", clip, "--windows", "2", "--rounds", "1", "--size", "56", "84"]
    assert cli.main(args + ["--device", "cuda", "--against", "llamafactory_style", "--json", str(out), *mode]) == 0
    res = json.loads(out.read_text())
    assert res["device"] == "cuda" and res["providers"]["sf2t"]["samples_per_s"] > 0
    agree = res["agreement"]["llamafactory_style"]
    assert agree["max_abs"] <= 2 / 255 / min(QWEN2_VL_STD) + 1e-6 and agree["mean_abs"] <= 1e-2
    assert res["ceiling_samples_per_s"] > 0 and res["ceiling_decoder"] in ("torchcodec", "pyav")
    assert "on cuda" in capsys.readouterr().out
