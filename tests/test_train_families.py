"""The trainer on every supported family (Qwen2.5-VL, LLaVA-OneVision, LLaVA-NeXT-Video; Qwen2-VL is
tests/test_train.py's): a run of all six tasks with LoRA on vision tower and LLM from a tiny checkpoint, the
held-out evaluation, save and reload; the LLaVA families' forward chunks (equal frame counts) give the same loss as
one forward per sample."""

from __future__ import annotations

import math

import pytest
import torch

synth = pytest.importorskip("sf2t.synth")
pytest.importorskip("av")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from sf2t.models import FAMILIES  # noqa: E402
from sf2t.tasks import TASKS  # noqa: E402
from sf2t.train.config import TrainConfig  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NAMES = ["qwen2_5_vl", "llava_onevision", "llava_next_video"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("fam_clips")
    kw = dict(width=96, height=64, seconds=1.2, num_sprites=1, camera_pan=False, events=False)
    return [c["path"] for c in synth.make_clips(root, 3, seed=200, **kw)]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    root = tmp_path_factory.mktemp("fam_ckpts")
    built = {}

    def get(name):
        if name not in built:
            built[name] = str(FAMILIES[name].build_tiny(root / name, seed=0))
        return built[name]

    return get


def _cfg(model, clips, tmp_path, **kw):
    base = dict(
        model=model,
        videos=clips,
        eval_videos=clips,
        out_dir=str(tmp_path / "run"),
        steps=4,
        batch_size=6,
        lr=5e-3,
        warmup_steps=0,
        lora=True,
        lora_rank=4,
        lora_alpha=8,
        tasks=list(TASKS),
        progress=False,
        log_every=0,
        seed=0,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("name", NAMES)
def test_family_trains_all_tasks_evaluates_and_reloads(ckpt, clips, tmp_path, name):
    from sf2t.train.evaluate import build_eval_set, evaluate
    from sf2t.train.loop import load_trained, make_factories, train

    family = FAMILIES[name]
    cfg = _cfg(ckpt(name), clips, tmp_path)
    res = train(cfg, log=lambda s: None)
    assert len(res["losses"]) == 4 and all(math.isfinite(v) for v in res["losses"])
    assert set(res["task_losses"]) == set(TASKS)  # localization's target image included
    model = res["model"]
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    moved = [n for n, p in model.named_parameters() if "lora_B" in n and float(p.detach().abs().sum()) > 0]
    tower = "visual" if family.pixel_layout == "qwen_patches" else "vision_tower"
    assert any(tower in n for n in moved), "no vision-tower adapter moved"
    assert any("language_model" in n for n in moved), "no LLM adapter moved"
    # every adapter trains: none sits on a layer whose output the model never reads (LLaVA-NeXT-Video takes its
    # features from the second-to-last vision layer, whose successor's adapters stayed zero)
    assert moved == [n for n in trainable if "lora_B" in n]

    reloaded, tok = load_trained(cfg.model, res["saved"])
    _, eval_f = make_factories(cfg, tok)
    eval_set = build_eval_set(eval_f, ["counting", "localization"], 2)
    a = evaluate(model, tok, eval_set)
    b = evaluate(reloaded, tok, eval_set)
    assert a["counting"]["n"] == 2 and a["localization"]["n"] == 2
    assert [r["answer"] for r in a["samples"]] == [r["answer"] for r in b["samples"]]


def test_qwen2_5_vl_trains_with_compression_before_the_tower(ckpt, clips, tmp_path):
    """token_stage=before_tower on Qwen2.5-VL (window attention over the kept patches): trains with LoRA on both
    towers, and the reloaded run (compressed the same way, from its train_config.json) answers as the trained one."""
    from sf2t.models.compress import find_qwen_inner
    from sf2t.train.evaluate import build_eval_set, evaluate
    from sf2t.train.loop import load_trained, make_factories, train

    cfg = _cfg(ckpt("qwen2_5_vl"), clips, tmp_path, token_keep_ratio=0.5, token_stage="before_tower")
    res = train(cfg, log=lambda s: None)
    assert len(res["losses"]) == 4 and all(math.isfinite(v) for v in res["losses"])
    model = res["model"]
    assert find_qwen_inner(model)._sf2t_cfg["stage"] == "before_tower"
    moved = [n for n, p in model.named_parameters() if "lora_B" in n and float(p.detach().abs().sum()) > 0]
    assert any("visual" in n for n in moved) and any("language_model" in n for n in moved)
    reloaded, tok = load_trained(cfg.model, res["saved"])
    assert find_qwen_inner(reloaded)._sf2t_cfg == find_qwen_inner(model)._sf2t_cfg
    _, eval_f = make_factories(cfg, tok)
    eval_set = build_eval_set(eval_f, ["counting", "disorder"], 2)
    a, b = evaluate(model, tok, eval_set), evaluate(reloaded, tok, eval_set)
    assert [r["answer"] for r in a["samples"]] == [r["answer"] for r in b["samples"]]


@pytest.mark.parametrize("name", ["llava_onevision", "llava_next_video"])
def test_llava_chunks_equal_per_sample_loss(ckpt, clips, tmp_path, name):
    """A micro-batch of mixed frame counts is split into chunks of equal F; the first step's loss (LoRA B = 0: the
    base model) equals the token-weighted mean over one forward per sample."""
    from sf2t.models import load_model_and_tokenizer
    from sf2t.train.data import batches
    from sf2t.train.loop import make_factories, token_loss_sum, train

    cfg = _cfg(ckpt(name), clips, tmp_path, tasks=["counting", "disorder"], steps=1, batch_size=8)
    base, tok = load_model_and_tokenizer(cfg.model)
    factory, _ = make_factories(cfg, tok)
    got = next(batches(factory, 8))
    assert len(got["chunks"]) >= 2  # counting's F varies (docs/tasks.md: 2-16 frames by default)
    assert sorted(r for c in got["chunks"] for r in c["rows"]) == list(range(8))
    for c in got["chunks"]:
        assert c["pixel_values_videos"].dim() == 5 and len({*c["tasks"]}) >= 1
    base.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(8):
            s = factory.sample(i)
            out = base(
                input_ids=s["input_ids"][None],
                attention_mask=s["attention_mask"][None],
                pixel_values_videos=s["pixel_values_videos"][None],
            )
            t, n, _ = token_loss_sum(out.logits, s["labels"][None])
            total, count = total + float(t), count + n
    res = train(cfg, log=lambda s: None)  # lora_dropout 0: the first step's forward is the base model's
    assert res["losses"][0] == pytest.approx(total / count, rel=1e-5)


_DDP_SCRIPT = r"""
import gc, json, sys, torch
gc.disable()  # what train() leaves in reference cycles stays alive, as it may until interpreter exit
torch.set_num_threads(1)
from torch.nn.parallel import DistributedDataParallel
from sf2t.train.config import TrainConfig
from sf2t.train.loop import train
res = train(TrainConfig(**json.loads(sys.argv[1])), log=lambda s: None, save=False)
ddp = sum(isinstance(o, DistributedDataParallel) for o in gc.get_objects())
if res["rank"] == 0:
    torch.save({"losses": res["losses"], "world": res["world_size"], "ddp_alive": ddp}, sys.argv[2])
"""


def test_llava_next_video_trains_under_ddp(ckpt, clips, tmp_path):
    """LLaVA-NeXT-Video takes the vision tower's features from its second-to-last layer, so in a full fine-tune
    the last layer gets no gradient: DDP over 2 gloo processes (which would stop at the second step, "Expected to
    have finished reduction in the prior iteration") looks for unused parameters, and gives one process's losses at
    the same global batch (micro-batches of mixed frame counts: the ranks run different numbers of forward
    chunks). (LoRA leaves that layer out.)"""
    from sf2t.train.loop import train
    from tests.test_train import _torchrun

    cfg = _cfg(ckpt("llava_next_video"), clips, tmp_path, tasks=["counting"], steps=2, eval_videos=[])
    kw = {k: v for k, v in vars(cfg).items() if k in ("model", "videos", "tasks", "steps", "lr", "lora_rank")}
    kw.update(seed=0, progress=False, log_every=0, tensorboard=False, warmup_steps=0, lora=False, full_finetune=True)
    one = train(TrainConfig(**kw, batch_size=4, out_dir=str(tmp_path / "one")), log=lambda s: None, save=False)
    two = _torchrun(_DDP_SCRIPT, tmp_path, {**kw, "batch_size": 2, "out_dir": str(tmp_path / "two")}, tmp_path / "t")
    assert two["world"] == 2
    assert two["losses"] == pytest.approx(one["losses"], abs=1e-5)
    # the DDP wrapper (reference cycles) is freed before the process group goes: left to interpreter exit, its
    # reducer's gloo work aborted a rank once ("terminate called without an active exception")
    assert two["ddp_alive"] == 0


def test_llava_rejects_pairs_layout(ckpt, clips, tmp_path):
    from sf2t.models import load_model_and_tokenizer
    from sf2t.train.loop import make_factories

    cfg = _cfg(ckpt("llava_onevision"), clips, tmp_path, layout="pairs")
    _, tok = load_model_and_tokenizer(cfg.model)
    with pytest.raises(ValueError, match="layout='pairs' applies to the Qwen families only"):
        make_factories(cfg, tok)


def test_unsupported_checkpoint_is_named(tmp_path):
    from sf2t.models.families import family_of_checkpoint

    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(ValueError, match="model_type 'llama' is not supported; sf2t trains llava_next_video"):
        family_of_checkpoint(tmp_path)


@pytest.mark.parametrize("name", ["llava_onevision", "llava_next_video"])
def test_llava_pixels_match_the_checkpoint_processor(ckpt, clips, tmp_path, name):
    """The factory's LLaVA video pixels (fragment_pack fchw at the processor's size, mean and std) equal the
    checkpoint's own video processor on the same presented frames; a localization target carries the image
    processor's anyres tiles, its original size, and as many <image> tokens as the processor counts."""
    from sf2t.models import load_model_and_tokenizer, load_processor
    from sf2t.train.loop import make_factories

    cfg = _cfg(ckpt(name), clips, tmp_path, tasks=["counting", "localization"])
    _, tok = load_model_and_tokenizer(cfg.model)
    processor = load_processor(cfg.model)
    factory, _ = make_factories(cfg, tok)
    s, frames = factory.task_sample(3, task="counting")
    mine = factory.sample(3, task="counting")["pixel_values_videos"]
    presented = frames[s.src_index_tensor()].numpy()
    ref = processor.video_processor(videos=[presented], return_tensors="pt")["pixel_values_videos"][0]
    assert mine.shape == ref.shape
    torch.testing.assert_close(mine, ref, atol=1e-5, rtol=0)
    loc_s, _ = factory.task_sample(0, task="localization")
    loc = factory.sample(0, task="localization")
    h, w = loc_s.image.shape[:2]
    assert loc["image_sizes"].tolist() == [[h, w]]
    ref_img = processor.image_processor(images=[loc_s.image.numpy()], return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(loc["pixel_values"], ref_img)
    from sf2t.models.llava_onevision import num_image_tokens  # LLaVA-NeXT-Video's is the same function

    n_img = int((loc["input_ids"] == tok.convert_tokens_to_ids(FAMILIES[name].image_token)).sum())
    assert n_img == num_image_tokens(processor, h, w) > 0


def test_llava_crop_boxes_are_sized_as_the_processor_sees_the_crops(ckpt):
    """Presented frames cropped by boxes: LLaVA-NeXT-Video's shortest-edge resize and centre crop apply to the crop,
    as the processor would see it; boxes of different sizes in one sample are refused."""
    from sf2t.models import load_processor
    from sf2t.models.inputs import ModelInputs

    processor = load_processor(ckpt("llava_next_video"))
    inputs = ModelInputs(FAMILIES["llava_next_video"], processor)
    g = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (3, 90, 160, 3), dtype=torch.uint8, generator=g)
    boxes = torch.tensor([[10, 5, 130, 75]] * 2)  # 120 x 70 crops
    got = inputs.video(frames, torch.tensor([0, 2]), boxes)["pixel_values_videos"]
    crops = frames[[0, 2], 5:75, 10:130].numpy()
    ref = processor.video_processor(videos=[crops], return_tensors="pt")["pixel_values_videos"][0]
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="must share a size"):
        inputs.video(frames, torch.tensor([0, 2]), torch.tensor([[0, 0, 100, 50], [0, 0, 90, 50]]))
