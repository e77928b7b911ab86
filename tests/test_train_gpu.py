"""The trainer on a CUDA device (issue 7): the same first losses as on the CPU in float32, and a bf16-autocast run
with gradient checkpointing that trains (finite losses, adapters on the GPU, saved). Qwen2-VL and LLaVA-OneVision
tiny models. Skips without CUDA; SF2T_REQUIRE_CUDA=1 makes it fail instead."""

from __future__ import annotations

import math

import pytest
import torch

synth = pytest.importorskip("sf2t.synth")
pytest.importorskip("av")
pytest.importorskip("transformers")
pytest.importorskip("peft")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu_clips")
    kw = dict(width=96, height=64, seconds=1.2, num_sprites=1, camera_pan=False, events=False)
    return [c["path"] for c in synth.make_clips(root, 3, seed=300, **kw)]


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["qwen2_vl", "llava_onevision"])
def test_trains_on_cuda_like_cpu_and_in_bf16(tmp_path, clips, name):
    from sf2t.models import FAMILIES
    from sf2t.train.config import TrainConfig
    from sf2t.train.loop import train

    ckpt = str(FAMILIES[name].build_tiny(tmp_path / "ckpt", seed=0))
    base = dict(
        model=ckpt,
        videos=clips,
        tasks=["counting", "disorder", "localization"],
        steps=3,
        batch_size=4,
        lr=1e-3,
        warmup_steps=0,
        lora=True,
        lora_rank=4,
        lora_alpha=8,
        progress=False,
        log_every=0,
        tensorboard=False,
        seed=0,
    )
    cpu = train(TrainConfig(**base, out_dir=str(tmp_path / "cpu")), log=lambda s: None, save=False)
    gpu = train(TrainConfig(**base, device="cuda", out_dir=str(tmp_path / "gpu")), log=lambda s: None, save=False)
    assert gpu["losses"] == pytest.approx(cpu["losses"], rel=1e-3)
    assert all(p.device.type == "cuda" for p in gpu["model"].parameters())
    cfg = TrainConfig(**base, device="cuda", bf16=True, gradient_checkpointing=True, out_dir=str(tmp_path / "bf16"))
    half = train(cfg, log=lambda s: None)
    assert all(math.isfinite(v) for v in half["losses"])
    assert half["losses"][0] == pytest.approx(cpu["losses"][0], rel=5e-2)  # bf16 forward, float32 weights
    assert (tmp_path / "bf16" / "adapter" / "adapter_config.json").is_file()
    torch.cuda.synchronize()


@pytest.mark.gpu
def test_workers_decode_on_the_cpu_for_a_cuda_run(tmp_path, clips):
    """DataLoader workers of a CUDA run decode and build on the CPU (a forked worker must not touch CUDA); the batches
    and so the losses are those of workers=0."""
    from sf2t.models import FAMILIES
    from sf2t.train.config import TrainConfig
    from sf2t.train.loop import train

    ckpt = str(FAMILIES["qwen2_vl"].build_tiny(tmp_path / "ckpt", seed=0))
    base = dict(model=ckpt, videos=clips, tasks=["counting", "disorder"], steps=3, batch_size=4, lr=1e-3)
    base.update(warmup_steps=0, lora=True, lora_rank=4, progress=False, log_every=0, tensorboard=False, seed=0)
    base.update(device="cuda", clip_cache_mb=0)
    w0 = train(TrainConfig(**base, out_dir=str(tmp_path / "w0")), log=lambda s: None, save=False)
    w2 = train(TrainConfig(**base, workers=2, out_dir=str(tmp_path / "w2")), log=lambda s: None, save=False)
    assert w2["losses"] == pytest.approx(w0["losses"], rel=1e-5)
