"""The model-family table: tiny offline checkpoints, text assembly token-for-token against each family's own HF
processor, labels, LoRA-wrapped forward/backward, and the lookup error.

Each tiny checkpoint is built once per session (module fixtures below; Qwen2-VL's comes from conftest)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from sf2t.models import families, llava_next_video, llava_onevision, qwen2_5_vl, qwen2_vl  # noqa: E402
from sf2t.models.families import FAMILIES, get_family  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

IGNORE = -100
NAMES = ["qwen2_vl", "qwen2_5_vl", "llava_onevision", "llava_next_video"]


@pytest.fixture(scope="session")
def family_ckpts(tmp_path_factory, tiny_qwen2_vl):
    """name -> tiny checkpoint dir; the three new families are built lazily, once."""
    root = tmp_path_factory.mktemp("families")
    built = {"qwen2_vl": tiny_qwen2_vl}

    def get(name):
        if name not in built:
            built[name] = FAMILIES[name].build_tiny(root / name, seed=0)
        return built[name]

    return get


@pytest.fixture(scope="module")
def env(family_ckpts):
    """name -> (family, checkpoint, processor), loaded offline once per module."""
    from transformers import AutoProcessor

    cache = {}

    def get(name):
        if name not in cache:
            ckpt = family_ckpts(name)
            cache[name] = (FAMILIES[name], ckpt, AutoProcessor.from_pretrained(ckpt, local_files_only=True))
        return cache[name]

    return get


def _load_model(family, ckpt):
    return families.model_class(family).from_pretrained(ckpt, dtype=torch.float32, local_files_only=True)


def _video(t, h, w, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (t, h, w, 3), dtype=np.uint8)


def _messages(name, question, answer, image):
    if name.startswith("qwen"):
        return qwen2_vl.build_messages(question, answer, image=image)
    return llava_onevision.build_messages(question, answer, image=image)


def _reference(name, processor, question, answer, frames, size, image, eos=False):
    """The processor's own output for the conversation (chat template rendered by the processor). ``eos``:
    LLaVA-NeXT-Video's supervised text, the template's with ``</s>`` in place of the " " closing the answer."""
    text = processor.apply_chat_template(
        _messages(name, question, answer, image), tokenize=False, add_generation_prompt=answer is None
    )
    if eos:
        assert text.endswith(answer + " ")
        text = text[:-1] + processor.tokenizer.eos_token
    images = [_video(1, 60, 90, seed=3)[0]] if image else None
    return processor(text=[text], videos=[_video(frames, *size)], images=images, return_tensors="pt")


def _resized_hw(family, ref):
    if family.pixel_layout == "qwen_patches":
        _, gh, gw = ref["video_grid_thw"][0].tolist()
        return gh * 14, gw * 14
    assert family.pixel_layout == "fchw" and ref["pixel_values_videos"].dim() == 5  # [B, F, C, H, W]
    return tuple(ref["pixel_values_videos"].shape[-2:])


def _image_tokens(name, processor, ref):
    if name.startswith("qwen"):
        return int(ref["image_grid_thw"][0].prod()) // 4
    module = llava_onevision if name == "llava_onevision" else llava_next_video
    return module.num_image_tokens(processor, 60, 90)


def _sample_for(name, family, processor, ref, question, answer, frames, image):
    h, w = _resized_hw(family, ref)
    image_tokens = _image_tokens(name, processor, ref) if image else None
    return family.build_sample(processor, question, answer, frames, h, w, image_tokens=image_tokens)


# ------------------------------------------------------------------------------------------------ (a) loading


@pytest.mark.parametrize("name", NAMES)
def test_tiny_checkpoint_loads_offline(env, name):
    from transformers import AutoTokenizer

    family, ckpt, processor = env(name)
    for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (ckpt / f).is_file(), f
    assert (ckpt / "preprocessor_config.json").is_file() and (ckpt / "video_preprocessor_config.json").is_file()
    assert type(processor).__name__ == family.processor_class
    model = _load_model(family, ckpt)
    assert type(model).__name__ == family.model_class
    tok = AutoTokenizer.from_pretrained(ckpt, local_files_only=True)
    assert tok.get_vocab() == processor.tokenizer.get_vocab()
    cfg = model.config
    assert cfg.text_config.vocab_size >= len(tok)
    assert cfg.video_token_id == tok.convert_tokens_to_ids(family.video_token)
    assert cfg.image_token_id == tok.convert_tokens_to_ids(family.image_token)
    for tok_str in (family.video_token, family.image_token):
        assert tok(tok_str, add_special_tokens=False)["input_ids"] == [tok.convert_tokens_to_ids(tok_str)]
    # special tokens survive the save / offline reload as in the released tokenizers
    eos = {"llava_onevision": "<|im_end|>", "llava_next_video": "</s>"}.get(name, "<|endoftext|>")
    assert tok.eos_token == eos
    first = tok("Hello", add_special_tokens=True)["input_ids"][0]
    assert (first == tok.convert_tokens_to_ids("<s>")) == (name == "llava_next_video")  # only Llama adds a BOS
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params < 1_000_000  # tiny


@pytest.mark.parametrize("name", ["qwen2_5_vl", "llava_onevision", "llava_next_video"])
def test_tiny_build_is_seeded_and_reused(env, tmp_path, name):
    from safetensors.torch import load_file

    family, ckpt, _ = env(name)
    mtime = (ckpt / "model.safetensors").stat().st_mtime_ns
    assert family.build_tiny(ckpt) == ckpt and (ckpt / "model.safetensors").stat().st_mtime_ns == mtime
    a = load_file(str(ckpt / "model.safetensors"))
    again = load_file(str(family.build_tiny(tmp_path / "again", seed=0) / "model.safetensors"))
    assert set(a) == set(again) and all(torch.equal(a[k], again[k]) for k in a)
    other = load_file(str(family.build_tiny(tmp_path / "seed1", seed=1) / "model.safetensors"))
    assert set(other) == set(a) and not all(torch.equal(a[k], other[k]) for k in a)


def test_qwen2_5_vl_config_uses_window_attention(env):
    family, ckpt, processor = env("qwen2_5_vl")
    vc = _load_model(family, ckpt).config.vision_config
    assert list(vc.fullatt_block_indexes) == [vc.depth - 1] and vc.window_size == 56
    assert vc.out_hidden_size != vc.hidden_size  # the merger projects to the LLM width
    assert processor.video_processor.temporal_patch_size == 2 and processor.video_processor.merge_size == 2


# ---------------------------------------------------------------------------------------- (b) text assembly

CASES = [
    # question, answer, frames, (h, w) of the decoded frames, with an image before the video
    ("How many frames are in this video?", "4.", 4, (56, 56), False),
    ("Which frames were shuffled? Answer with the frame numbers.", "Frames 3-5.", 3, (56, 84), False),
    ("Are frames 1 and 2 the same?", None, 2, (112, 56), False),
    ("  Where is the difference?\n", " Different: top-left.", 4, (56, 56), True),
    ("The image shows a target. In which frames of the video does it appear?", None, 5, (84, 56), True),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("question,answer,frames,size,image", CASES)
def test_text_assembly_matches_processor(env, name, question, answer, frames, size, image):
    family, _, processor = env(name)
    ref = _reference(name, processor, question, answer, frames, size, image)
    sample = _sample_for(name, family, processor, ref, question, answer, frames, image)

    keys = ["input_ids", "attention_mask"] + (["mm_token_type_ids"] if family.has_mm_token_type_ids else [])
    assert ("mm_token_type_ids" in ref) == family.has_mm_token_type_ids
    assert set(sample) == {*keys, "labels"}
    eos = name == "llava_next_video" and answer is not None  # the template has no end token: sf2t writes </s>
    if eos:
        # the prompt is the template's token for token (the generation prompt is, whole: answer=None cases); the
        # supervised text is the template's with </s> for the " " closing the answer, as the processor encodes it
        first = int((sample["labels"] != IGNORE).nonzero()[0])
        assert sample["input_ids"][:first].tolist() == ref["input_ids"][0][:first].tolist()
        assert sample["input_ids"][:-1].tolist() == ref["input_ids"][0][:-1].tolist()
        ref = _reference(name, processor, question, answer, frames, size, image, eos=True)
    for key in keys:
        assert sample[key].dtype == torch.long and sample[key].dim() == 1
        assert sample[key].tolist() == ref[key][0].tolist(), key
    assert sample["labels"].shape == sample["input_ids"].shape
    if eos:
        eos_id = processor.tokenizer.eos_token_id
        assert sample["input_ids"][-1] == sample["labels"][-1] == eos_id
        assert int((sample["input_ids"] == eos_id).sum()) == 1  # one id, not "</s>" in pieces

    tok = processor.tokenizer
    h, w = _resized_hw(family, ref)
    n_video = int((sample["input_ids"] == tok.convert_tokens_to_ids(family.video_token)).sum())
    assert n_video == family.num_video_tokens(frames, h, w)
    n_image = int((sample["input_ids"] == tok.convert_tokens_to_ids(family.image_token)).sum())
    assert n_image == (_image_tokens(name, processor, ref) if image else 0)
    if family.pixel_layout == "fchw":
        assert ref["pixel_values_videos"].shape[1] == frames * family.frame_repeat


def test_num_video_tokens_at_released_sizes():
    # Qwen2(.5)-VL 448x448: 32x32 patches, 2x2 merge, 2 frames per temporal patch
    assert get_family("qwen2_vl").num_video_tokens(4, 448, 448) == 2 * 256
    assert get_family("qwen2_5_vl").num_video_tokens(5, 448, 448) == 3 * 256
    # OneVision (SigLIP 384/14 = 27 -> pooled 14x14) + one newline token per video
    assert get_family("llava_onevision").num_video_tokens(8, 384, 384) == 8 * 196 + 1
    # NeXT-Video (CLIP 336/14 = 24 -> 2x2 average pool 12x12), no newline
    assert get_family("llava_next_video").num_video_tokens(8, 336, 336) == 8 * 144
    with pytest.raises(ValueError, match="multiples of 28"):
        get_family("qwen2_5_vl").num_video_tokens(4, 56, 60)


def test_llava_next_video_refuses_an_odd_patch_grid(env):
    """LLaVA-NeXT-Video's processor counts (h // 14) * (w // 14) // 4 placeholders per frame, its model pools the grid
    2x2 with stride 2 into (gh // 2) * (gw // 2) features: for an odd grid (42x42 frames: 3x3 patches, 4 placeholders
    for 2 frames, 2 features) the forward failed deep in transformers. sf2t refuses such a frame size up front, naming
    it and the sizes that work; even grids keep the processor's count token for token."""
    from transformers import LlavaNextVideoForConditionalGeneration

    from sf2t.models.inputs import ModelInputs

    family, _, processor = env("llava_next_video")
    tok = processor.tokenizer
    for side in (42, 84):  # what the processor and the model give for 2 frames at an odd and an even grid
        proc = llava_next_video.build_processor(tok, image_size=side)
        ref = _reference("llava_next_video", proc, "q", None, 2, (64, 96), False)
        placeholders = int((ref["input_ids"] == tok.convert_tokens_to_ids(family.video_token)).sum())
        torch.manual_seed(0)
        model = LlavaNextVideoForConditionalGeneration(llava_next_video.build_tiny_config(tok, image_size=side))
        with torch.no_grad():
            # positional: the keyword is pixel_values in transformers 5.17, pixel_values_videos in 5.23
            feats = model.model.get_video_features(ref["pixel_values_videos"])
        feats = getattr(feats, "pooler_output", feats)
        features = sum(f.shape[0] * f.shape[1] if f.dim() == 3 else f.shape[0] for f in feats)
        if side == 84:
            assert placeholders == features == family.num_video_tokens(2, side, side) == 2 * 9
            continue
        assert (placeholders, features) == (4, 2)  # the mismatch the model fails on
        with pytest.raises(ValueError, match=r"height=42, width=42: a 3x3 patch grid .* odd .* \(here 28 or 56;"):
            family.num_video_tokens(2, side, side)
        with pytest.raises(ValueError, match="odd side"):
            family.build_sample(proc, "q", "a", 2, side, side)
        with pytest.raises(ValueError, match=r"llava_next_video: the processor's video crop_size 42x42: .* odd side"):
            ModelInputs(family, proc)
    assert family.num_video_tokens(3, 56, 84) == 3 * 2 * 3  # an even, non-square grid: (h // 14) * (w // 14) // 4
    with pytest.raises(ValueError, match=r"height=56, width=70: a 4x5 .* \(here 56 or 84;"):
        family.num_video_tokens(1, 56, 70)


def test_llava_next_video_takes_only_its_towers_frame_size(env, tmp_path):
    """Issue m1.1: the tiny LLaVA-NeXT-Video model (CLIP image_size 56) runs on 56x56 frames only; 112x112 and 56x112
    (even patch grids, placeholders counted as the processor) failed in CLIP's embeddings ("Input image size ...
    doesn't match model"). A processor cropping to another size is refused where sf2t first knows the model's config:
    ModelInputs with the model's Context (training's make_inputs) and VideoRunner (sf2t eval), naming both sizes; a
    non-square crop is refused even without the config. The checkpoint's own processor is taken as before."""
    import json
    import shutil

    from transformers import AutoConfig

    from sf2t.finevidbench.evaluate import VideoRunner
    from sf2t.models.context import Context
    from sf2t.models.inputs import ModelInputs

    family, ckpt, processor = env("llava_next_video")
    tok = processor.tokenizer
    model = _load_model(family, ckpt).eval()
    context = Context.of(AutoConfig.from_pretrained(ckpt, local_files_only=True), processor)

    def forward(h, w):
        s = {k: v[None] for k, v in family.build_sample(tok, "q", "a", 2, h, w).items()}
        with torch.no_grad():
            return model(**s, pixel_values_videos=torch.zeros(1, 2, 3, h, w))

    assert torch.isfinite(forward(56, 56).loss)  # what the model takes
    for h, w in ((112, 112), (56, 112)):
        with pytest.raises(ValueError, match=rf"Input image size \({h}\*{w}\) doesn't match model \(56\*56\)"):
            forward(h, w)

    big = llava_next_video.build_processor(tok, image_size=112)  # an even grid (8x8), the wrong size for the model
    want = r"llava_next_video: the processor's video crop_size 112x112: LLaVA-NeXT-Video takes frames of the vision "
    with pytest.raises(ValueError, match=want + r"tower's image_size 56x56; got 112x112 .*crop_size to 56x56"):
        ModelInputs(family, big, context=context)
    ModelInputs(family, big)  # (no config: a square crop may be the tower's)
    assert context.frame_size == (56, 56) and Context.of(model.config).frame_size == (56, 56)
    wide = llava_next_video.build_processor(tok)
    wide.video_processor.crop_size = {"height": 56, "width": 112}
    for ctx, takes in ((None, "image_size, a square; got 56x112"), (context, "image_size 56x56; got 56x112")):
        with pytest.raises(ValueError, match=r"crop_size 56x112: LLaVA-NeXT-Video takes frames of .*" + takes):
            ModelInputs(family, wide, context=ctx)

    # sf2t eval: a checkpoint whose processor crops to 112 is refused before its weights load
    bad = tmp_path / "lnv112"
    shutil.copytree(ckpt, bad)
    for name, key in (("video_preprocessor_config.json", None), ("processor_config.json", "video_processor")):
        data = json.loads((bad / name).read_text())
        vp = data if key is None else data[key]
        vp["crop_size"], vp["size"] = {"height": 112, "width": 112}, {"shortest_edge": 112}
        (bad / name).write_text(json.dumps(data))
    with pytest.raises(ValueError, match=want + "tower's image_size 56x56; got 112x112"):
        VideoRunner(str(bad))

    # the checkpoint's own processor: taken, and its placeholder count is still the processor's
    mi = ModelInputs(family, processor, context=context)
    vision = mi.video(torch.from_numpy(_video(2, 64, 96)), torch.arange(2), None)
    got = mi.text(tok, "q", None, vision)
    ref = _reference("llava_next_video", processor, "q", None, 2, (64, 96), False)
    assert torch.equal(got["input_ids"], ref["input_ids"][0])
    assert VideoRunner(str(ckpt)).inputs.crop == (56, 56)


def test_llava_next_video_refuses_a_processor_without_crop_at_model_inputs(env):
    """Issue m1.2: a video processor resizing the shortest edge with no centre crop gives frames of each video's
    aspect ratio (a 64x96 video: 56x84, an even grid the text accepted, the model not); ModelInputs refuses it when
    made, with the frame-size message (and the tower's size when the config is known), not when a sample is built."""
    from sf2t.models.context import Context
    from sf2t.models.inputs import ModelInputs

    family, ckpt, processor = env("llava_next_video")
    proc = llava_next_video.build_processor(processor.tokenizer)
    proc.video_processor.do_center_crop = False
    start = r"llava_next_video: the processor's video size resizes the shortest edge to 56 with no centre crop .*"
    with pytest.raises(
        ValueError, match=start + r"LLaVA-NeXT-Video takes frames of the vision tower's image_size, a sq"
    ):
        ModelInputs(family, proc)
    context = Context.of(_load_model(family, ckpt).config)
    with pytest.raises(ValueError, match=start + r"image_size 56x56; got 56x112"):
        ModelInputs(family, proc, context=context)


def test_llava_onevision_takes_only_its_towers_patch_grid(env, tmp_path):
    """Issue m7: the tiny LLaVA-OneVision model (SigLIP image_size 56, a 4x4 grid of 14-pixel patches) runs on frames
    of that grid only (56x56 to 69x69); 112x112, 42x42 and 56x112 failed in SigLIP's embeddings (no
    interpolate_pos_encoding) and 28x112 (2x8, the same 16 patches) ran with each frame's features viewed as a 4x4
    grid. sf2t took all of them; a processor resizing to another grid is now refused where sf2t first knows the
    model's config (ModelInputs with the model's Context, VideoRunner), by the check LLaVA-NeXT-Video uses, naming both
    sizes; a non-square grid even without the config. Sizes of the tower's grid are taken as before, their
    placeholder count the processor's."""
    import json
    import shutil

    from transformers import AutoConfig

    from sf2t.finevidbench.evaluate import VideoRunner
    from sf2t.models.context import Context
    from sf2t.models.inputs import ModelInputs

    family, ckpt, processor = env("llava_onevision")
    tok = processor.tokenizer
    model = _load_model(family, ckpt).eval()
    context = Context.of(AutoConfig.from_pretrained(ckpt, local_files_only=True), processor)
    assert context.frame_size == (56, 56) and Context.of(model.config).frame_size == (56, 56)

    def forward(h, w):
        s = {k: v[None] for k, v in family.build_sample(tok, "q", "a", 2, h, w).items()}
        with torch.no_grad():
            return model(**s, pixel_values_videos=torch.zeros(1, 2, 3, h, w))

    for h, w in ((56, 56), (69, 69), (28, 112)):  # (28x112 runs: its 2x8 patches viewed as 4x4 by the pooler)
        assert torch.isfinite(forward(h, w).loss)
    for h, w in ((112, 112), (42, 42), (56, 112)):
        with pytest.raises(RuntimeError, match=r"must match the size of tensor b \(16\)"):
            forward(h, w)

    def sized(h, w):
        proc = llava_onevision.build_processor(tok)
        proc.video_processor.size = {"height": h, "width": w}
        return proc

    start = r"llava_onevision: the processor's video size {}: LLaVA-OneVision takes frames of the vision tower's "
    tower = r"image_size 56x56 \(or another size of its 4x4 grid of 14-pixel patches: 56 to 69 a side\); got {} "
    for h, w in ((112, 112), (42, 42), (70, 70), (56, 112), (28, 112)):
        size = f"{h}x{w}"
        with pytest.raises(ValueError, match=(start + tower).format(size, size) + r".*video size to 56x56"):
            ModelInputs(family, sized(h, w), context=context)
    ModelInputs(family, sized(112, 112))  # (no config: a square grid may be the tower's)
    for h, w in ((56, 112), (28, 112)):
        with pytest.raises(
            ValueError, match=r"takes frames of a square grid of 14-pixel patches .*; got " + f"{h}x{w}"
        ):
            ModelInputs(family, sized(h, w))

    # sf2t eval: a checkpoint whose processor resizes to 112 is refused before its weights load
    bad = tmp_path / "ov112"
    shutil.copytree(ckpt, bad)
    for name, key in (("video_preprocessor_config.json", None), ("processor_config.json", "video_processor")):
        data = json.loads((bad / name).read_text())
        (data if key is None else data[key])["size"] = {"height": 112, "width": 112}
        (bad / name).write_text(json.dumps(data))
    with pytest.raises(ValueError, match=(start + tower).format("112x112", "112x112")):
        VideoRunner(str(bad))
    assert VideoRunner(str(ckpt)).inputs.size_kw == {"size": (56, 56)}

    # the tower's grid: taken, with the processor's placeholder count (the checkpoint's 56x56 and 69x69)
    for proc in (processor, sized(69, 69)):
        mi = ModelInputs(family, proc, context=context)
        vision = mi.video(torch.from_numpy(_video(2, 64, 96)), torch.arange(2), None)
        ref = _reference("llava_onevision", proc, "q", None, 2, (64, 96), False)
        assert torch.equal(mi.text(tok, "q", None, vision)["input_ids"], ref["input_ids"][0])


@pytest.mark.parametrize("name", ["llava_next_video", "qwen2_vl"])
def test_video_runner_loads_the_model_with_the_config_it_read(env, monkeypatch, name):
    """sf2t eval's VideoRunner reads a LLaVA checkpoint's config before the weights (its context checks the
    processor's frame size): the model loads with that config, not reading config.json again; the Qwen families read
    no config first (the model reads its own)."""
    import sf2t.models._build as build
    from sf2t.finevidbench.evaluate import VideoRunner

    family, ckpt, _ = env(name)
    given = []
    real = build.load_checkpoint
    monkeypatch.setattr(build, "load_checkpoint", lambda *a, **k: given.append(k.get("config")) or real(*a, **k))
    runner = VideoRunner(str(ckpt))
    if family.pixel_layout == "qwen_patches":
        assert given == [None]
        return
    from transformers import AutoConfig

    assert [c.to_dict() for c in given] == [AutoConfig.from_pretrained(ckpt, local_files_only=True).to_dict()]
    # (checked after the load: the config given is left as it was, transformers works on a copy) and the model is as
    # it loads on its own
    assert runner.model.config.to_dict() == _load_model(family, ckpt).config.to_dict()
    assert given[0] is not runner.model.config


def test_qwen2_5_vl_second_per_grid_ts(env):
    _, _, processor = env("qwen2_5_vl")
    text = processor.apply_chat_template(_messages("qwen2_5_vl", "Q?", None, False), tokenize=False)
    plain = processor(text=[text], videos=[_video(4, 56, 56)], return_tensors="pt")
    # no metadata: transformers assumes 24 fps
    assert plain["second_per_grid_ts"].tolist() == pytest.approx([qwen2_5_vl.second_per_grid_ts(24.0)])
    meta = processor(
        text=[text],
        videos=[_video(4, 56, 56)],
        return_tensors="pt",
        video_metadata=[{"fps": 2.0, "total_num_frames": 4}],
    )
    assert meta["second_per_grid_ts"].tolist() == pytest.approx([qwen2_5_vl.second_per_grid_ts(2.0)]) == [1.0]
    with pytest.raises(ValueError):
        qwen2_5_vl.second_per_grid_ts(0)


def test_llava_templates_render_as_documented(env):
    msgs = llava_onevision.build_messages("Q?", "A.", system="Sys.", image=True)
    ov = env("llava_onevision")[2].apply_chat_template(msgs, tokenize=False)
    assert ov == (
        "<|im_start|>system\nSys.<|im_end|>\n<|im_start|>user\n<image>\n<video>\nQ?<|im_end|>\n"
        "<|im_start|>assistant\nA.<|im_end|>\n"
    )
    nv = env("llava_next_video")[2].apply_chat_template(msgs, tokenize=False)
    assert nv == "Sys. USER: <image>\n<video>\nQ? ASSISTANT: A. "
    gen = llava_onevision.build_messages("Q?", None)
    assert env("llava_next_video")[2].apply_chat_template(gen, tokenize=False, add_generation_prompt=True) == (
        "USER: <video>\nQ? ASSISTANT:"
    )


# ------------------------------------------------------------------------------------------------- (c) labels


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("answer", ["Frames 3-5.", "Yes.", "The red circle is moving left."])
def test_labels_cover_answer_and_end_token(env, name, answer):
    family, _, processor = env(name)
    tok = processor.tokenizer
    question = "Which frames were shuffled?"
    s = family.build_sample(processor, question, answer, 4, 56, 56)
    sup = s["labels"] != IGNORE
    assert torch.equal(s["labels"][sup], s["input_ids"][sup])
    # the answer then the family's end token, at which generation stops: LLaVA-NeXT-Video's Vicuna template has none
    # (its " " separates turns): sf2t writes and supervises the eos </s>, as LLaVA's own training did
    end = tok.eos_token_id if name == "llava_next_video" else tok.convert_tokens_to_ids("<|im_end|>")
    expected = tok(answer, add_special_tokens=False)["input_ids"] + [end]
    assert s["labels"][sup].tolist() == expected
    assert s["labels"][sup][-1] == end
    idx = sup.nonzero().flatten()
    assert idx.tolist() == list(range(int(idx[0]), int(idx[-1]) + 1))  # one contiguous span
    tail = tok.decode(s["input_ids"][int(idx[-1]) + 1 :])
    assert tail == ("" if name == "llava_next_video" else "\n")

    gen = family.build_sample(processor, question, None, 4, 56, 56)
    assert bool((gen["labels"] == IGNORE).all())
    # the generation prompt is exactly the unsupervised prefix of the training sample
    assert gen["input_ids"].tolist() == s["input_ids"][: int(idx[0])].tolist()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("system", [None, "Answer briefly."])
def test_multi_turn_sample_matches_processor_and_trains_every_answer(env, name, system):
    """A multi-turn conversation (supervised video QA, sf2t.train.supervised): token for token the processor's
    output for the chat template's rendering of it (the video in the first user turn), every assistant answer with
    the text closing its turn supervised, every user turn and the system text not."""
    family, _, processor = env(name)
    tok = processor.tokenizer
    turns = [("What moves here?", "A red square."), ("And then?", "It stops, then turns left."), ("Colour?", "Red")]
    messages = _messages(name, *turns[0], image=False)
    if system is not None:
        messages = _messages(name, *turns[0], image=False)[-2:]
        body = system if name.startswith("qwen") else [{"type": "text", "text": system}]
        messages.insert(0, {"role": "system", "content": body})
    for q, a in turns[1:]:
        reply = a if name.startswith("qwen") else [{"type": "text", "text": a}]
        messages += [
            {"role": "user", "content": [{"type": "text", "text": q}]},
            {"role": "assistant", "content": reply},
        ]
    text = processor.apply_chat_template(messages, tokenize=False)
    ref = processor(text=[text], videos=[_video(4, 56, 56)], return_tensors="pt")
    h, w = _resized_hw(family, ref)
    kw = {"more": turns[1:]} | ({} if system is None else {"system": system})
    s = family.build_sample(processor, *turns[0], 4, h, w, **kw)
    sup = s["labels"] != IGNORE
    assert torch.equal(s["labels"][sup], s["input_ids"][sup])
    got = tok.decode(s["input_ids"][sup])
    if name == "llava_next_video":
        # Vicuna: " " only separates turns; sf2t writes </s> after each answer (LLaVA's "answer</s>USER: ..."),
        # keeping the separator before the next "USER" (Llama's tokenizer glues it on: ▁USER, as in the template)
        eos_id = tok.eos_token_id
        assert text.endswith(turns[-1][1] + " ")
        ours = text[:-1] + tok.eos_token
        for (_, a), (q, _) in zip(turns, turns[1:]):
            assert ours.count(f"{a} USER: {q}") == 1
            ours = ours.replace(f"{a} USER: {q}", f"{a}{tok.eos_token} USER: {q}")
        mine = processor(text=[ours], videos=[_video(4, 56, 56)], return_tensors="pt")
        assert s["input_ids"].tolist() == mine["input_ids"][0].tolist()
        # the template's tokens with one eos id after each answer (the last one for the final separator)
        ids = s["input_ids"].tolist()
        assert ids.count(eos_id) == len(turns) and ids[-1] == eos_id
        assert [t for t in ids if t != eos_id] == ref["input_ids"][0][:-1].tolist()
        want = [t for _, a in turns for t in tok(a, add_special_tokens=False)["input_ids"] + [eos_id]]
        assert s["labels"][sup].tolist() == want
    else:
        assert s["input_ids"].tolist() == ref["input_ids"][0].tolist()
        assert got == "".join(a + "<|im_end|>" for _, a in turns)
    for q, _ in turns:
        assert q not in got
    assert system is None or system not in got
    one = family.build_sample(processor, *turns[0], 4, h, w, **({} if system is None else {"system": system}))
    first = int(sup.nonzero()[0])
    assert s["input_ids"][:first].tolist() == one["input_ids"][: int((one["labels"] != IGNORE).nonzero()[0])].tolist()


@pytest.mark.parametrize("name", NAMES)
def test_composed_encoding_equals_the_direct_one(env, name):
    """A (question, answer) pair is tokenized from cached pieces cut at the tokenizer's added tokens: for every
    task's questions and a spread of its answers (and a system prompt, an image), token for token and label for
    label the same as tokenizing the whole text; and the pieces are really used where the format allows it
    (LLaVA-NeXT-Video's Vicuna text has no added token between question and answer: it is checked once, then
    always encoded whole)."""
    import itertools
    import random

    from sf2t.models import text
    from sf2t.tasks import templates

    _, _, processor = env(name)
    tok = processor.tokenizer
    fmt = {"llava_onevision": llava_onevision, "llava_next_video": llava_next_video}.get(name, qwen2_vl).CHAT_FORMAT
    rng = random.Random(0)
    answers = [templates.counting_answer(n) for n in (3, 12)] + [
        templates.disorder_answer(True),
        templates.consistency_answer("cell", "top-left"),
        templates.consistency_answer("whole", None),
        templates.localization_answer(2, 5),
        templates.speed_answer("first"),
    ]
    answers += [templates.rearrangement_answer(rng.sample(range(1, n + 1), n)) for n in (3, 4, 5, 6) for _ in range(3)]
    questions = [q.format(n1=3, n1p=4, n=7) for qs in templates.QUESTIONS.values() for q in qs]
    composed = 0
    for (q, a), (system, image) in itertools.product(
        itertools.product(questions, answers), [(None, False), ("You are careful.", True)]
    ):
        if rng.random() > 0.25:  # a quarter of the pairs: enough to cross every question and answer
            continue
        got = text._encode_composed(tok, fmt, q, a, system, image)
        direct = text._encode_direct(tok, fmt, q, a, system, image)
        if got is not None:
            composed += 1
            assert got == direct, (q, a, system, image)
    template = getattr(tok, "chat_template", None) or fmt.template
    ok = text._COMPOSE_OK.get((text._tok_key(tok), fmt, template))
    if name == "llava_next_video":
        assert (
            ok is False and composed <= 1
        )  # at most the first pair: checked against (and answered by) the direct path
    else:  # <|im_start|> right before "assistant\n" + answer
        assert ok is True and composed > 100


def test_text_assembly_rejects_placeholder_in_text(env):
    family, _, processor = env("llava_onevision")
    with pytest.raises(ValueError, match="<video>"):
        family.build_sample(processor, "what is <video>?", "A.", 4, 56, 56)


# ------------------------------------------------------------------------------------------ (d) forward, LoRA


@pytest.mark.parametrize("name", NAMES)
def test_forward_with_lora_reaches_vision_and_llm(env, name):
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora import LoraLayer

    family, ckpt, processor = env(name)
    question, answer, frames = "Where is the difference?", "Different: top-left.", 4
    ref = _reference(name, processor, question, answer, frames, (56, 84), True)
    sample = _sample_for(name, family, processor, ref, question, answer, frames, True)

    model = _load_model(family, ckpt)
    targets = family.lora_target_modules(model)
    vis = family.lora_target_modules(model, llm=False)
    llm = family.lora_target_modules(model, vision=False)
    assert sorted(vis + llm) == sorted(targets) and vis and llm and not set(vis) & set(llm)
    assert {n.rsplit(".", 1)[-1] for n in vis} == set(family.lora_targets_vision)
    assert {n.rsplit(".", 1)[-1] for n in llm} == set(family.lora_targets_llm)
    assert not any(k in n for n in targets for k in ("merger", "projector", "lm_head", "embed", "patch_embed"))

    pm = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets))
    wrapped = {n.removeprefix("base_model.model.") for n, m in pm.named_modules() if isinstance(m, LoraLayer)}
    assert wrapped == set(targets)
    with torch.no_grad():  # lora_B starts at zero: make the adapter non-trivial so lora_A gets gradients
        g = torch.Generator().manual_seed(0)
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)

    batch = {k: v for k, v in ref.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")}
    batch.update({k: v.unsqueeze(0) for k, v in sample.items()})
    pm.train()
    out = pm(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = {n.removeprefix("base_model.model."): p.grad for n, p in pm.named_parameters() if "lora_A" in n}

    def reached(names):
        return [n for n in names if (g := grads[f"{n}.lora_A.default.weight"]) is not None and g.abs().sum() > 0]

    assert reached(vis), "no gradient reached a LoRA-wrapped vision-tower module"
    assert set(reached(llm)) == set(llm)


# ----------------------------------------------------------------------------------------------- (e) lookup


def test_get_family_lists_known_names():
    assert get_family("llava_onevision") is FAMILIES["llava_onevision"]
    with pytest.raises(KeyError) as err:
        get_family("nope")
    msg = str(err.value)
    assert "'nope'" in msg and all(n in msg for n in NAMES)
    assert sorted(FAMILIES) == sorted(NAMES) and all(FAMILIES[n].name == n for n in NAMES)
    with pytest.raises(AttributeError):
        FAMILIES["qwen2_vl"].frame_repeat = 1  # frozen
    assert {f.pixel_layout for f in FAMILIES.values()} == {"qwen_patches", "fchw"}
    assert [FAMILIES[n].frame_repeat for n in NAMES] == [2, 2, 1, 1]


def test_package_exports_the_family_table():
    import sf2t.models as models

    assert models.FAMILIES is FAMILIES and models.get_family is get_family and models.Family is families.Family
    assert FAMILIES["qwen2_vl"].build_tiny is models.build_tiny_qwen2_vl
    assert FAMILIES["qwen2_5_vl"].build_tiny is models.build_tiny_qwen2_5_vl
    assert FAMILIES["llava_onevision"].build_tiny is models.build_tiny_llava_onevision
    assert FAMILIES["llava_next_video"].build_tiny is models.build_tiny_llava_next_video


# ----------------------------------------------------------------------------------- (f) the end of an answer


@pytest.mark.parametrize("name", NAMES)
def test_generation_stops_at_the_token_training_ends_answers_with(env, name):
    """The id every family's labels end an answer with (LLaVA-NeXT-Video: the eos </s>; the others <|im_end|>) is a
    stop id of the checkpoint's own generation config, and of the stop ids sf2t's evaluation generates with."""
    from sf2t.train.evaluate import stop_ids

    family, ckpt, processor = env(name)
    tok = processor.tokenizer
    s = family.build_sample(processor, "How many frames?", "4.", 4, 56, 56)
    last = int(s["labels"][s["labels"] != IGNORE][-1])
    want = "</s>" if name == "llava_next_video" else "<|im_end|>"
    assert last == tok.convert_tokens_to_ids(want)
    config = transformers.GenerationConfig.from_pretrained(ckpt, local_files_only=True)
    eos = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
    assert last in eos
    model = _load_model(family, ckpt)
    assert stop_ids(model, tok)[0] == last
    assert set(eos) <= set(stop_ids(model, tok))


def test_generate_answer_stops_at_eos_and_cuts_there(env):
    """Evaluation generates with the stop ids (the answer end sf2t trains) and cuts the text at the first of them
    (a stop id the model's generate did not stop at, or what it padded after it, is not part of the answer)."""
    from sf2t.train.evaluate import generate_answer

    family, ckpt, processor = env("llava_next_video")
    tok = processor.tokenizer
    prompt = family.build_sample(processor, "How many frames?", None, 2, 56, 56)
    answer = tok("4.", add_special_tokens=False)["input_ids"]
    seen = {}

    class Model:  # generate's output: the prompt, the answer, </s>, more tokens
        config = _load_model(family, ckpt).config
        generation_config = transformers.GenerationConfig(eos_token_id=tok.eos_token_id)

        def generate(self, input_ids, **kw):
            seen.update(kw)
            more = tok("Frame five", add_special_tokens=False)["input_ids"]
            return torch.tensor([input_ids[0].tolist() + answer + [tok.eos_token_id] + more])

    sample = {**prompt, "pixel_values_videos": torch.zeros(2, 3, 56, 56)}
    assert generate_answer(Model(), tok, sample, max_new_tokens=8) == "4."
    assert seen["eos_token_id"] == [tok.eos_token_id] and seen["max_new_tokens"] == 8


def test_tiny_llava_next_video_trained_on_an_answer_stops_after_it(env):
    """A tiny LLaVA-NeXT-Video trained a few steps on one short answer generates it and then stops at </s>, well
    before max_new_tokens (supervising the template's " " instead taught it never to stop)."""
    from sf2t.train.evaluate import generate_answer

    family, ckpt, processor = env("llava_next_video")
    tok = processor.tokenizer
    torch.manual_seed(0)
    model = _load_model(family, ckpt)
    pixels = processor.video_processor(videos=[_video(2, 56, 56)], return_tensors="pt")["pixel_values_videos"]
    s = family.build_sample(processor, "How many frames?", "4.", 2, 56, 56)
    batch = {k: v.unsqueeze(0) for k, v in s.items()} | {"pixel_values_videos": pixels}
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    lengths = []
    generate = model.generate
    model.generate = lambda **kw: lengths.append((out := generate(**kw)).shape[1] - kw["input_ids"].shape[1]) or out
    prompt = family.build_sample(processor, "How many frames?", None, 2, 56, 56)
    prompt["pixel_values_videos"] = pixels[0]
    assert generate_answer(model, tok, prompt, max_new_tokens=12) == "4."
    n_answer = len(tok("4.", add_special_tokens=False)["input_ids"])
    assert lengths == [n_answer + 1]  # the answer and </s>: stopped there, not at max_new_tokens


def test_text_caches_never_give_one_tokenizer_anothers_ids(monkeypatch):
    """The text caches key each tokenizer so that no later one shares its key: with every object reported at one
    address (as a new tokenizer can land where a freed one was), a second tokenizer still gets its own ids."""
    from sf2t.models import text
    from sf2t.models.tokenizer import build_tokenizer

    a, b = build_tokenizer(1024), build_tokenizer(1536)
    q, answers = "How many frames are in this video?", ("4", "7")
    fresh = [text.encode_once(b, qwen2_vl.CHAT_FORMAT, q, ans, None, False)[0] for ans in answers]
    del b
    b = build_tokenizer(1536)
    assert not torch.equal(text.encode_once(a, qwen2_vl.CHAT_FORMAT, q, "4", None, False)[0], fresh[0])
    monkeypatch.setattr(text, "id", lambda obj: 1, raising=False)
    for tok in (a, b):  # a fills the caches under the shared address; b must not be given a's pieces
        got = [text.encode_once(tok, qwen2_vl.CHAT_FORMAT, q, ans, None, False)[0] for ans in answers]
    assert all(torch.equal(g, f) for g, f in zip(got, fresh))


def test_text_caches_let_a_tokenizer_go():
    """The caches kept without a bound (per tokenizer: its split points, whether composing is exact) hold no
    reference to the tokenizer: once the bounded caches (least recently used dropped) no longer hold it, a tokenizer
    that composed samples is freed (the split points' cache kept every tokenizer ever used alive)."""
    import gc
    import weakref

    from sf2t.models import text
    from sf2t.models.tokenizer import build_tokenizer

    tok = build_tokenizer(1024)
    for answer in ("4", "7", "9"):  # a second answer to a known question is composed (split points looked up)
        text.encode_once(tok, qwen2_vl.CHAT_FORMAT, "How many frames are in this video?", answer, None, False)
    assert text._SPLITTERS and text._COMPOSE_OK.get((text._tok_key(tok), qwen2_vl.CHAT_FORMAT, tok.chat_template))
    gone = weakref.ref(tok)
    for cache in (text._ENCODE_CACHE, text._ASSEMBLED):  # the bounded caches, as when they have moved on
        cache.clear()
    del tok
    gc.collect()
    assert gone() is None
