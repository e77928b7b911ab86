"""Tests for sf2t.models: tiny Qwen2-VL checkpoint, tokenizer, text assembly, LoRA targets."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from sf2t.models import (  # noqa: E402
    IGNORE_INDEX,
    LORA_TARGETS_LLM,
    LORA_TARGETS_VISION,
    build_tiny_qwen2_vl,
    build_tokenizer,
    build_video_sample,
    collate,
    load_model_and_tokenizer,
    lora_target_modules,
    num_video_tokens,
)

PATCH_DIM = 3 * 2 * 14 * 14


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ckpt(tiny_qwen2_vl):
    return tiny_qwen2_vl


@pytest.fixture(scope="module")
def model_tok(ckpt):
    model, tok = load_model_and_tokenizer(ckpt)
    return model, tok


@pytest.fixture(scope="module")
def processor(ckpt):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(ckpt, local_files_only=True)


def _video(t=4, h=56, w=56, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (t, h, w, 3), dtype=np.uint8)


def _pixels(grid, seed=0):
    t, h, w = grid
    g = torch.Generator().manual_seed(seed)
    return torch.randn(t * h * w, PATCH_DIM, generator=g)


def _batch1(sample):
    return {k: v.unsqueeze(0) for k, v in sample.items()}


# --------------------------------------------------------------------------------------------- checkpoint


def test_checkpoint_files_and_offline_loading(ckpt, model_tok, processor):
    from transformers import AutoTokenizer, Qwen2VLForConditionalGeneration, Qwen2VLProcessor

    for f in (
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "preprocessor_config.json",
        "video_preprocessor_config.json",
    ):
        assert (ckpt / f).is_file(), f
    assert (ckpt / "chat_template.jinja").is_file() or (ckpt / "chat_template.json").is_file()

    model, tok = model_tok
    assert isinstance(model, Qwen2VLForConditionalGeneration)
    tok2 = AutoTokenizer.from_pretrained(ckpt, local_files_only=True)
    assert tok2.get_vocab() == tok.get_vocab()
    assert isinstance(processor, Qwen2VLProcessor)
    assert processor.video_processor.merge_size == 2 and processor.video_processor.temporal_patch_size == 2

    cfg = model.config
    assert cfg.video_token_id == tok.convert_tokens_to_ids("<|video_pad|>")
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    assert cfg.vision_end_token_id == tok.convert_tokens_to_ids("<|vision_end|>")
    assert cfg.vision_config.hidden_size == cfg.text_config.hidden_size
    assert cfg.text_config.vocab_size >= len(tok)
    assert tok.eos_token == "<|endoftext|>" and tok.pad_token_id == tok.convert_tokens_to_ids("<|endoftext|>")
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    eos = model.generation_config.eos_token_id
    assert im_end in (eos if isinstance(eos, list) else [eos])

    # a 224x224 frame keeps its size: 16x16 patches per temporal patch
    out = processor.video_processor(videos=[_video(t=2, h=224, w=224)], return_tensors="pt")
    assert out["video_grid_thw"].tolist() == [[1, 16, 16]]


def test_build_reuses_and_overwrites(ckpt):
    mtime = (ckpt / "model.safetensors").stat().st_mtime_ns
    assert build_tiny_qwen2_vl(ckpt) == ckpt
    assert (ckpt / "model.safetensors").stat().st_mtime_ns == mtime


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "llava_onevision", "llava_next_video"])
def test_tiny_builders_refuse_bools_and_floats_by_name(family, tmp_path):
    """A size or seed that is a bool (True read as 1) or a float is refused by name before anything is built (it was
    a huggingface_hub StrictDataclassFieldValidationError from inside the config, after the tokenizer was built)."""
    import importlib

    name = "tiny" if family == "qwen2_vl" else family
    build = getattr(importlib.import_module(f"sf2t.models.{name}"), f"build_tiny_{family}")
    for kw, said in (
        ({"num_layers": True}, "num_layers must be a positive int, got the bool True"),
        ({"hidden_size": 64.0}, "hidden_size must be a positive int, got float 64.0: pass 64"),
        ({"vision_depth": 0}, "vision_depth must be a positive int, got 0"),
        ({"seed": np.True_}, "seed must be an int, got the bool np.True_"),
    ):
        with pytest.raises(ValueError, match=re.escape(said)):
            build(tmp_path / "m", **kw)
    assert not (tmp_path / "m").exists()


def test_tiny_builder_takes_numpy_ints(tmp_path):
    import json

    out = build_tiny_qwen2_vl(tmp_path / "m", hidden_size=np.int64(32), num_layers=np.int64(1), seed=np.int64(1))
    text = json.loads((out / "config.json").read_text())["text_config"]
    assert (text["hidden_size"], text["num_hidden_layers"]) == (32, 1)


def test_seeded_weights_are_deterministic(ckpt, tmp_path):
    from safetensors.torch import load_file

    # (transformers 5.x saves Qwen2-VL with the original hub key layout: "model.layers.*", "visual.*")
    a = load_file(str(ckpt / "model.safetensors"))
    again = load_file(str(build_tiny_qwen2_vl(tmp_path / "again", seed=0) / "model.safetensors"))
    assert set(a) == set(again) and all(torch.equal(a[k], again[k]) for k in a)
    b = load_file(str(build_tiny_qwen2_vl(tmp_path / "seed1", seed=1) / "model.safetensors"))
    assert not torch.equal(a["lm_head.weight"], b["lm_head.weight"])


def test_missing_path_gives_clear_error(tmp_path):
    missing = tmp_path / "does-not-exist"
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        load_model_and_tokenizer(missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty.*config\.json"):
        load_model_and_tokenizer(empty)


# ---------------------------------------------------------------------------------------------- tokenizer


def test_tokenizer_digits_special_tokens_and_template(model_tok):
    _, tok = model_tok
    assert 1000 <= len(tok) <= 2100
    ids = tok("Frames 12-345. 99", add_special_tokens=False)["input_ids"]
    toks = tok.convert_ids_to_tokens(ids)
    digits = [t for t in toks if any(c.isdigit() for c in t)]
    assert digits == ["1", "2", "3", "4", "5", "9", "9"]
    for n in range(100):
        assert len(tok(str(n), add_special_tokens=False)["input_ids"]) == len(str(n))
    for special in (
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|vision_pad|>",
        "<|image_pad|>",
        "<|video_pad|>",
    ):
        assert tok(special, add_special_tokens=False)["input_ids"] == [tok.convert_tokens_to_ids(special)]
    text = "How many frames? Yes. No. Different: top-left. The first."
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text

    msgs = [
        {"role": "user", "content": [{"type": "video"}, {"type": "image"}, {"type": "text", "text": "Q?"}]},
    ]
    rendered = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert rendered == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|><|video_pad|><|vision_end|><|vision_start|><|image_pad|><|vision_end|>Q?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_tokenizer_training_is_deterministic():
    from sf2t.models.tokenizer import QWEN2_PRETOKENIZE_REGEX, train_bpe_tokenizer

    qwen2_tok = pytest.importorskip("transformers.models.qwen2.tokenization_qwen2")
    if hasattr(qwen2_tok, "PRETOKENIZE_REGEX"):
        assert QWEN2_PRETOKENIZE_REGEX == qwen2_tok.PRETOKENIZE_REGEX

    assert train_bpe_tokenizer().to_str() == train_bpe_tokenizer().to_str()
    assert build_tokenizer().get_vocab() == build_tokenizer().get_vocab()


# ------------------------------------------------------------------------------------------ text assembly


def test_num_video_tokens():
    assert num_video_tokens([2, 4, 4]) == 8
    assert num_video_tokens(torch.tensor([[3, 8, 6]])) == 36
    assert num_video_tokens((1, 16, 16), merge_size=2) == 64
    with pytest.raises(ValueError):
        num_video_tokens([1, 3, 4])
    with pytest.raises(ValueError):
        num_video_tokens([[1, 4, 4], [1, 4, 4]])


@pytest.mark.parametrize(
    "question,answer,frames,size",
    [
        ("How many frames are in this video?", "4.", 4, (56, 56)),
        ("Which frames were shuffled? Answer with the frame numbers.", "Frames 3-5.", 6, (56, 84)),
        ("Are frames 1 and 2 the same?", None, 2, (112, 56)),
        ("  Where is the difference?\n", " Different: top-left.", 3, (56, 56)),
    ],
)
def test_text_assembly_matches_processor(model_tok, processor, question, answer, frames, size):
    _, tok = model_tok
    video = _video(t=frames, h=size[0], w=size[1])
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]},
    ]
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=answer is None)
    ref = processor(text=[text], videos=[video], return_tensors="pt")
    grid = ref["video_grid_thw"]

    sample = build_video_sample(tok, question, answer, grid)
    assert set(sample) == {"input_ids", "attention_mask", "labels", "mm_token_type_ids"}
    for key in ("input_ids", "attention_mask", "mm_token_type_ids"):
        assert sample[key].dtype == torch.long and sample[key].dim() == 1
        assert sample[key].tolist() == ref[key][0].tolist(), key
    assert sample["labels"].shape == sample["input_ids"].shape

    video_id = tok.convert_tokens_to_ids("<|video_pad|>")
    n = num_video_tokens(grid)
    assert int((sample["input_ids"] == video_id).sum()) == n
    assert set(sample["mm_token_type_ids"][sample["input_ids"] == video_id].tolist()) == {2}
    assert set(sample["mm_token_type_ids"][sample["input_ids"] != video_id].tolist()) == {0}


@pytest.mark.parametrize("answer", ["Frames 2-4.", None])
def test_image_and_video_text_and_pixels_match_processor(model_tok, processor, answer):
    """Localization's layout: a target image, then the video. Tokens equal the processor's; the image's pixels
    from fragment_pack (one frame, repeated for the temporal patch) equal its image processor's within the
    fragment_pack tolerance."""
    from sf2t.ops import fragment_pack
    from sf2t.ops.fragment_pack import QWEN2_VL_STD

    _, tok = model_tok
    video = _video(t=4, h=56, w=56)
    image = _video(t=1, h=56, w=56, seed=3)[0]
    question = "The image shows a target. In which frames of the video does it appear?"
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": [{"type": "image"}, {"type": "video"}, {"type": "text", "text": question}]},
    ]
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=answer is None)
    ref = processor(text=[text], images=[image], videos=[video], return_tensors="pt")
    sample = build_video_sample(tok, question, answer, ref["video_grid_thw"], image_grid_thw=ref["image_grid_thw"])
    for key in ("input_ids", "attention_mask", "mm_token_type_ids"):
        assert sample[key].tolist() == ref[key][0].tolist(), key
    assert set(sample["mm_token_type_ids"].tolist()) == {0, 1, 2}
    pixels, grid = fragment_pack(torch.from_numpy(image)[None], torch.zeros(1, dtype=torch.int64), None, (56, 56))
    assert grid.tolist() == ref["image_grid_thw"].tolist()
    diff = (pixels - ref["pixel_values"]).abs()
    assert float(diff.max()) <= 2 / 255 / min(QWEN2_VL_STD) and float(diff.mean()) <= 1e-3


def test_labels_cover_only_the_answer(model_tok):
    _, tok = model_tok
    answer = "Frames 3-5."
    s = build_video_sample(tok, "Which frames were shuffled?", answer, [[2, 4, 4]])
    sup = s["labels"] != IGNORE_INDEX
    assert torch.equal(s["labels"][sup], s["input_ids"][sup])
    expected = tok(answer, add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids("<|im_end|>")]
    assert s["labels"][sup].tolist() == expected
    # contiguous span, followed only by the trailing "\n"
    idx = sup.nonzero().flatten()
    assert idx.tolist() == list(range(int(idx[0]), int(idx[-1]) + 1))
    assert tok.decode(s["input_ids"][int(idx[-1]) + 1 :]) == "\n"
    # the prompt (ending with the assistant header) is unsupervised
    assert tok.decode(s["input_ids"][: int(idx[0])]).endswith("<|im_start|>assistant\n")

    gen = build_video_sample(tok, "Which frames were shuffled?", None, [[2, 4, 4]])
    assert bool((gen["labels"] == IGNORE_INDEX).all())
    assert tok.decode(gen["input_ids"]).endswith("<|im_start|>assistant\n")
    assert gen["input_ids"].tolist() == s["input_ids"][: int(idx[0])].tolist()


def test_collate_right_pads(model_tok):
    _, tok = model_tok
    s1 = build_video_sample(tok, "How many frames?", "2.", [[1, 4, 4]])
    s2 = build_video_sample(tok, "Is frame 1 the same as frame 2? Answer yes or no.", "No.", [[2, 4, 6]])
    b = collate([s1, s2], pad_id=tok.pad_token_id)
    L = max(len(s1["input_ids"]), len(s2["input_ids"]))
    n1 = len(s1["input_ids"])
    assert b["input_ids"].shape == (2, L)
    assert b["input_ids"][0, n1:].eq(tok.pad_token_id).all()
    assert b["attention_mask"][0, n1:].eq(0).all() and b["attention_mask"][0, :n1].eq(1).all()
    assert b["labels"][0, n1:].eq(IGNORE_INDEX).all()
    assert b["mm_token_type_ids"][0, n1:].eq(0).all()
    for key in ("input_ids", "attention_mask", "labels", "mm_token_type_ids"):
        assert b[key][1].tolist() == s2[key].tolist()
        assert b[key][0, :n1].tolist() == s1[key].tolist()


# ------------------------------------------------------------------------------------------ forward, LoRA


def _two_video_batch(tok, seed=0):
    g1, g2 = [2, 4, 4], [1, 4, 6]
    s1 = build_video_sample(tok, "How many frames?", "2.", [g1])
    s2 = build_video_sample(tok, "Which frames differ?", "Frames 3-5.", [g2])
    s1.update(pixel_values_videos=_pixels(g1, seed), video_grid_thw=torch.tensor([g1]))
    s2.update(pixel_values_videos=_pixels(g2, seed + 1), video_grid_thw=torch.tensor([g2]))
    return s1, collate([s1, s2], pad_id=tok.pad_token_id)


def test_forward_loss_and_gradients(model_tok):
    model, tok = model_tok
    s1, batch = _two_video_batch(tok)
    assert batch["pixel_values_videos"].shape == (32 + 24, PATCH_DIM)
    assert batch["video_grid_thw"].tolist() == [[2, 4, 4], [1, 4, 6]]
    model.train()
    model.zero_grad(set_to_none=True)
    out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    for p in (
        model.model.visual.blocks[0].attn.qkv.weight,
        model.model.visual.merger.mlp[0].weight,
        model.model.language_model.layers[0].self_attn.q_proj.weight,
    ):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)

    # right padding does not change the first sample's logits
    model.eval()
    with torch.no_grad():
        single = {
            k: (v.unsqueeze(0) if k not in ("pixel_values_videos", "video_grid_thw") else v) for k, v in s1.items()
        }
        l1 = model(**single).logits[0]
        lb = model(**batch).logits[0, : l1.shape[0]]
    torch.testing.assert_close(l1, lb, atol=1e-4, rtol=1e-4)


def test_lora_targets_names(model_tok):
    model, _ = model_tok
    names = lora_target_modules(model)
    n_vis, n_llm = model.config.vision_config.depth, model.config.text_config.num_hidden_layers
    assert len(names) == 4 * n_vis + 7 * n_llm
    assert set(LORA_TARGETS_VISION) == {"qkv", "proj", "fc1", "fc2"}
    assert {n.rsplit(".", 1)[-1] for n in names} == set(LORA_TARGETS_VISION) | set(LORA_TARGETS_LLM)
    assert all(".visual.blocks." in n or ".language_model.layers." in n for n in names)
    assert not any("merger" in n or "patch_embed" in n or "lm_head" in n or "embed_tokens" in n for n in names)
    vis_only = lora_target_modules(model, llm=False)
    llm_only = lora_target_modules(model, vision=False)
    assert sorted(vis_only + llm_only) == sorted(names)
    assert all("visual" in n for n in vis_only) and not any("visual" in n for n in llm_only)
    with_merger = lora_target_modules(model, merger=True)
    assert sorted(set(with_merger) - set(names)) == ["model.visual.merger.mlp.0", "model.visual.merger.mlp.2"]


def test_peft_lora_wraps_vision_and_llm_and_roundtrips(ckpt, model_tok, tmp_path):
    peft = pytest.importorskip("peft")
    from peft import LoraConfig, PeftModel, get_peft_model
    from peft.tuners.lora import LoraLayer
    from transformers import Qwen2VLForConditionalGeneration

    _, tok = model_tok
    base = Qwen2VLForConditionalGeneration.from_pretrained(ckpt, dtype=torch.float32, local_files_only=True)
    targets = lora_target_modules(base)
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets)
    pm = get_peft_model(base, cfg)

    inner = pm.base_model.model
    assert isinstance(inner.model.visual.blocks[0].attn.qkv, LoraLayer)
    assert isinstance(inner.model.visual.blocks[1].mlp.fc2, LoraLayer)
    assert isinstance(inner.model.language_model.layers[0].self_attn.q_proj, LoraLayer)
    assert isinstance(inner.model.language_model.layers[1].mlp.down_proj, LoraLayer)
    assert not isinstance(inner.model.visual.merger.mlp[0], LoraLayer)
    assert not isinstance(inner.lm_head, LoraLayer)
    assert not isinstance(inner.model.visual.patch_embed.proj, LoraLayer)
    wrapped = {n.removeprefix("base_model.model.") for n, m in pm.named_modules() if isinstance(m, LoraLayer)}
    assert wrapped == set(targets)
    trainable = [n for n, p in pm.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert len(trainable) == 2 * len(targets)

    # make the adapter non-trivial (lora_B starts at zero), train one step's worth of gradient flow
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    _, batch = _two_video_batch(tok)
    pm.train()
    loss = pm(**batch).loss
    loss.backward()
    grads = {n: p.grad for n, p in pm.named_parameters() if p.requires_grad}
    assert all(v is not None for v in grads.values())
    assert any("attn.qkv.lora_A" in n and v.abs().sum() > 0 for n, v in grads.items())
    pm.zero_grad(set_to_none=True)

    pm.eval()
    with torch.no_grad():
        ref = pm(**batch).logits
    adapter_dir = tmp_path / "adapter"
    pm.save_pretrained(adapter_dir)
    assert (adapter_dir / "adapter_config.json").is_file()

    base2 = Qwen2VLForConditionalGeneration.from_pretrained(ckpt, dtype=torch.float32, local_files_only=True)
    with torch.no_grad():
        plain = base2(**batch).logits
    assert not torch.allclose(plain, ref, atol=1e-5)
    loaded = PeftModel.from_pretrained(base2, adapter_dir)
    loaded.eval()
    with torch.no_grad():
        got = loaded(**batch).logits
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    assert peft is not None


def test_text_assembly_on_a_device(model_tok):
    """The same ids whether or not a device is named (the GPU case: test_text_assembly_on_the_gpu)."""
    _, tok = model_tok
    cpu = build_video_sample(tok, "How many frames?", "5", [[3, 4, 4]], image_grid_thw=[[1, 4, 4]])
    again = build_video_sample(tok, "How many frames?", "5", [[3, 4, 4]], image_grid_thw=[[1, 4, 4]], device="cpu")
    for k in cpu:
        assert torch.equal(cpu[k], again[k])


@pytest.mark.gpu
def test_text_assembly_on_the_gpu(model_tok):
    _, tok = model_tok
    cpu = build_video_sample(tok, "Is this in order?", "Yes.", [[4, 4, 4]])
    gpu = build_video_sample(tok, "Is this in order?", "Yes.", [[4, 4, 4]], device="cuda")
    for k in cpu:
        assert gpu[k].device.type == "cuda" and torch.equal(gpu[k].cpu(), cpu[k])


@pytest.mark.parametrize(
    "question, answer, system, words",
    [
        (None, "a", "s", "question must be a string, got NoneType"),
        ("q", 5, "s", "answer must be a string or None, got int"),
        ("q", "a", ["s"], "system must be a string or None, got list"),
    ],
)
def test_sample_text_must_be_strings(question, answer, system, words):
    """A non-string question or answer is named, not tokenized as its repr."""
    with pytest.raises(TypeError, match=words):
        build_video_sample(build_tokenizer(), question, answer, [[1, 2, 2]], system=system)
    assert build_video_sample(build_tokenizer(), "q", None, [[1, 2, 2]], system=None)["labels"].max() == -100
