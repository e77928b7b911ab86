"""Bad input to the public sf2t.models API, as a user's own trainer would call it: each is a clear error naming the
argument and the fix (not a deep transformers traceback, a torch error about dtypes, or silently wrong text)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from sf2t.models import (  # noqa: E402
    FAMILIES,
    apply_sf2t,
    build_tokenizer,
    build_video_sample,
    check_checkpoint_dir,
    collate,
    get_family,
    load_processor,
    num_video_tokens,
    remove_sf2t,
    train_bpe_tokenizer,
)
from sf2t.models.compress import find_qwen_inner  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


@pytest.fixture(scope="module")
def onevision(tmp_path_factory):
    """(ModelInputs, processor, checkpoint) of a tiny LLaVA-OneVision checkpoint."""
    from sf2t.models.inputs import ModelInputs

    ckpt = FAMILIES["llava_onevision"].build_tiny(tmp_path_factory.mktemp("ov") / "ov", seed=0)
    processor = load_processor(ckpt)
    return ModelInputs(FAMILIES["llava_onevision"], processor), processor, ckpt


@pytest.mark.parametrize(
    "name,meant",
    [
        ("Qwen2-VL", "'qwen2_vl'"),
        ("qwen2.5_vl", "'qwen2_5_vl'"),
        ("QWEN2_VL", "'qwen2_vl'"),
        ("llava_next", "'llava_next_video'"),
        ("llava", "'llava_next_video' or 'llava_onevision'"),
        ("Qwen/Qwen2.5-VL-7B-Instruct", "'qwen2_5_vl'"),
        ("llava-hf/llava-onevision-qwen2-0.5b-ov-hf", "'llava_onevision'"),
    ],
)
def test_get_family_says_which_family_was_meant(name, meant):
    with pytest.raises(KeyError) as err:
        get_family(name)
    msg = str(err.value)
    assert f"did you mean {meant}?" in msg and "known families: llava_next_video" in msg
    assert ("family_of_checkpoint" in msg) == ("/" in name)  # a Hub id or path: where a checkpoint's family is found
    with pytest.raises(KeyError) as err:
        get_family("gpt2")
    assert "did you mean" not in str(err.value)
    with pytest.raises(KeyError, match="must be a name \\(str\\), got NoneType"):
        get_family(None)


@pytest.mark.parametrize(
    "grid,said",
    [
        ([0, 4, 4], ">= 1"),  # was: "need >= 1 <|video_pad|> token, got 0"
        ([-2, 4, 4], ">= 1"),  # was: "... got -8"
        ([4.5, 6, 8], "integers"),  # was: cut to 4 without a word
        (None, "grid of one video"),  # was: torch's "Could not infer dtype of NoneType"
        ("468", "grid of one video"),
        (torch.tensor([4, 6, 8], device="meta"), "meta device"),  # was: "Cannot copy out of meta tensor"
    ],
)
def test_text_grid_is_checked_by_name(tok, grid, said):
    with pytest.raises(ValueError, match=f"video_grid_thw.*{said}|{said}.*video_grid_thw"):
        build_video_sample(tok, "q", "a", grid)
    if grid is not None:  # (None: no image)
        with pytest.raises(ValueError, match="image_grid_thw"):
            build_video_sample(tok, "q", "a", [2, 4, 4], image_grid_thw=grid)


def test_a_grid_of_zero_dim_tensors_is_taken_as_before(tok):
    """A grid given as a list of 0-d tensors (list(grid[0]), grid[0].unbind(), np.int64 arrays) was taken before the
    grid checks (torch.as_tensor read it); the checks refused it as "not integers" though it holds integers. A 0-d
    float or bool tensor is still refused."""
    grid = torch.tensor([[4, 6, 8]])
    want = build_video_sample(tok, "q", "a", grid)["input_ids"]
    for given in (list(grid[0]), grid[0].unbind(), [np.array(4), np.array(6), 8]):
        assert num_video_tokens(given) == 48
        assert torch.equal(build_video_sample(tok, "q", "a", given)["input_ids"], want)
    for bad in ([torch.tensor(4.0), 6, 8], [torch.tensor(True), 6, 8]):
        with pytest.raises(ValueError, match="video_grid_thw must hold integers"):
            build_video_sample(tok, "q", "a", bad)


def test_text_keep_ratio_and_merge_size_are_checked(tok):
    full = build_video_sample(tok, "q", "a", [4, 6, 8])
    n_full = int((full["mm_token_type_ids"] == 2).sum())
    # True == 1.0 passed as "no compression" where apply_sf2t refuses a bool
    with pytest.raises(ValueError, match="token_keep_ratio must be a number in \\(0, 1\\], got bool True"):
        build_video_sample(tok, "q", "a", [4, 6, 8], token_keep_ratio=True)
    with pytest.raises(ValueError, match="token_first_group"):  # was taken without a word at keep 1
        build_video_sample(tok, "q", "a", [4, 6, 8], token_first_group="first")
    got = build_video_sample(tok, "q", "a", [4, 6, 8], token_keep_ratio=np.float32(1.0))
    assert int((got["mm_token_type_ids"] == 2).sum()) == n_full
    with pytest.raises(ValueError, match="merge_size must be a positive int, got 0"):  # was ZeroDivisionError
        num_video_tokens([4, 6, 8], merge_size=0)
    from sf2t.models import llava_onevision

    ov_tok = llava_onevision.build_tokenizer()
    with pytest.raises(ValueError, match="token_keep_ratio.*bool"):
        llava_onevision.build_sample(ov_tok, "q", "a", 4, token_keep_ratio=True)


def test_later_turns_must_be_question_answer_pairs(tok):
    # a 2-character string was unpacked into a question "q" and an answer "2", None became the text "None"
    for more, said in ((["q2"], "str 'q2'"), ([("q", None)], "tuple \\('q', None\\)"), ("qa", "got str")):
        with pytest.raises(TypeError, match=f"more.*{said}"):
            build_video_sample(tok, "q", "a", [2, 4, 4], more=more)
    two = build_video_sample(tok, "q", "a", [2, 4, 4], more=[("q2", "a2")])
    assert two["input_ids"].numel() > build_video_sample(tok, "q", "a", [2, 4, 4])["input_ids"].numel()


def test_text_with_placeholders_or_another_familys_tokenizer(tok):
    with pytest.raises(ValueError, match="question, answer or system text contains <\\|video_pad\\|>; leave it out"):
        build_video_sample(tok, "what is <|video_pad|>?", "a", [2, 4, 4])
    from sf2t.models import llava_next_video

    with pytest.raises(ValueError, match="writes no <\\|video_pad\\|>; is it the tokenizer of this model family"):
        build_video_sample(llava_next_video.build_tokenizer(), "q", "a", [2, 4, 4])
    with pytest.raises(TypeError, match="tokenizer must be the checkpoint's tokenizer or processor"):
        build_video_sample(None, "q", "a", [2, 4, 4])


def test_collate_names_a_missing_pad_id(tok):
    s = build_video_sample(tok, "q", "a", [2, 4, 4])
    with pytest.raises(ValueError, match="pad_id must be the tokenizer's pad token id.*eos_token_id"):
        collate([s], None)  # a tokenizer without a pad token: torch.full's "fill_value must be Number"
    assert collate([s], np.int64(0))["input_ids"].shape == (1, s["input_ids"].numel())


def test_train_bpe_tokenizer_checks_vocab_size():
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="vocab_size must be a positive int"):
            train_bpe_tokenizer(bad)


def test_model_inputs_check_the_image_and_the_frame_index(onevision):
    inputs, _, _ = onevision
    img = torch.randint(0, 256, (40, 70, 3), dtype=torch.uint8)
    _, n = inputs.image(img)
    assert n > 0
    # the image processor took a channels-first image as 3 x 40 pixels (placeholders for the wrong size), a float
    # one without a word, a batch of two deep inside transformers
    with pytest.raises(ValueError, match="channels-first, pass image.permute\\(1, 2, 0\\)"):
        inputs.image(img.permute(2, 0, 1))
    with pytest.raises(ValueError, match="image must be uint8"):
        inputs.image(img.float())
    with pytest.raises(ValueError, match="one RGB image \\[h, w, 3\\]"):
        inputs.image(torch.stack([img, img]))
    frames = torch.randint(0, 256, (4, 56, 56, 3), dtype=torch.uint8)
    with pytest.raises(ValueError, match="index must select at least one of the frames"):
        inputs.video(frames, torch.arange(0), None)


def test_apply_sf2t_wants_the_loaded_model(tiny_qwen2_vl):
    for fn in (apply_sf2t, remove_sf2t):
        with pytest.raises(TypeError, match=f"{fn.__name__}: model must be the loaded torch.nn.Module, got NoneType"):
            fn(None)
    with pytest.raises(TypeError, match="got str.*load the model first"):
        apply_sf2t(str(tiny_qwen2_vl), 0.5)


def test_apply_twice_remove_twice_and_save(tiny_qwen2_vl, tmp_path):
    """Applying again changes the settings only; remove restores the class's methods (and is a no-op again); the
    patch is not saved: save_pretrained writes the same weights and config, a reload is unpatched."""
    from transformers import Qwen2VLForConditionalGeneration

    model = Qwen2VLForConditionalGeneration.from_pretrained(tiny_qwen2_vl, local_files_only=True)
    inner = find_qwen_inner(model)
    apply_sf2t(model, 0.5)
    orig = inner._sf2t_orig
    apply_sf2t(model, 0.25, window=1)
    assert inner._sf2t_orig is orig and inner._sf2t_cfg["keep"] == 0.25 and inner._sf2t_cfg["window"] == 1
    model.save_pretrained(tmp_path / "saved")
    assert not any("sf2t" in k for k in json.loads((tmp_path / "saved" / "config.json").read_text()))
    again = Qwen2VLForConditionalGeneration.from_pretrained(tmp_path / "saved", local_files_only=True)
    assert not hasattr(find_qwen_inner(again), "_sf2t_orig")
    remove_sf2t(model)
    remove_sf2t(model)
    assert not [k for k in vars(inner) if "sf2t" in k or k.startswith("get_")]


def test_checkpoint_dir_and_processor_errors(tmp_path):
    with pytest.raises(TypeError, match="must be a str or os.PathLike folder, got NoneType"):
        check_checkpoint_dir(None)
    with pytest.raises(ValueError, match="path is empty"):  # was: "'.' lacks config.json"
        check_checkpoint_dir("")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="not a directory"):
        check_checkpoint_dir(tmp_path / "file")
    with pytest.raises(FileNotFoundError, match="lacks config.json"):
        check_checkpoint_dir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    assert check_checkpoint_dir(tmp_path) == tmp_path
    # was transformers' OSError about huggingface.co and a preprocessor_config.json
    with pytest.raises(ValueError, match="holds no processor: it needs the processor's files"):
        load_processor(tmp_path)


@pytest.mark.parametrize(
    "kw,said",
    [
        ({"frame_size": 56}, "frame_size must be \\(h, w\\) ints, got int 56: pass \\(56, 56\\)"),  # not subscriptable
        ({"frame_repeat": 1.5}, "frame_repeat must be a positive int, got float 1.5"),  # was cut to 1
        ({"token_keep_ratio": True}, "token_keep_ratio must be a number in \\(0, 1\\], got bool True"),  # was 1.0
        ({"token_keep_ratio": 0}, "token_keep_ratio must be a number in \\(0, 1\\], got 0"),  # was refused at text()
    ],
)
def test_model_inputs_settings_are_checked_when_made(kw, said):
    from sf2t.models.inputs import ModelInputs

    with pytest.raises(ValueError, match=said):
        ModelInputs(FAMILIES["qwen2_vl"], **kw)
    ok = ModelInputs(FAMILIES["qwen2_vl"], frame_size=[56, 84], token_keep_ratio=None)
    assert ok.frame_size == (56, 84) and ok.token_keep_ratio == 1.0


@pytest.mark.parametrize("name", ["qwen2_vl", "llava_onevision", "llava_next_video"])
def test_family_token_counts_check_frames_and_size(name):
    """The uniform family API: a float frame count gave a float count (LLaVA, then a torch error in build_sample) or
    was rounded (Qwen), a bool was one frame, a zero height no tokens; LLaVA frames below one pooled token too."""
    fam = FAMILIES[name]
    size = 56
    assert fam.num_video_tokens(np.int64(4), size, size) == fam.num_video_tokens(4, size, size)
    for args, said in (
        ((2.5, size, size), "frames must be a positive int, got float 2.5"),
        ((True, size, size), "frames must be a positive int, got the bool True"),
        ((4, 0, size), "height must be a positive int, got 0"),
    ):
        with pytest.raises(ValueError, match=said):
            fam.num_video_tokens(*args)
    if name != "qwen2_vl":
        with pytest.raises(ValueError, match="smaller than one video token.*after the processor's resize"):
            fam.num_video_tokens(4, 13, 13)


@pytest.mark.parametrize("name", ["qwen2_vl", "llava_onevision"])
def test_family_build_sample_checks_image_tokens(name):
    """A float or bool image placeholder count was a torch error about sizes (LLaVA) or an error about an
    image_grid_thw the caller never passed (Qwen); True was one image token."""
    from sf2t.models import llava_onevision

    tok = build_tokenizer() if name == "qwen2_vl" else llava_onevision.build_tokenizer()
    fam = FAMILIES[name]
    for bad, said in ((2.5, "got float 2.5"), (True, "got the bool True"), (0, "got 0")):
        with pytest.raises(ValueError, match=f"image_tokens must be a positive int, {said}"):
            fam.build_sample(tok, "q", "a", 4, 56, 56, image_tokens=bad)
    with_image = fam.build_sample(tok, "q", "a", 4, 56, 56, image_tokens=np.int64(5))
    assert with_image["input_ids"].numel() > fam.build_sample(tok, "q", "a", 4, 56, 56)["input_ids"].numel()


def test_llava_text_of_the_uncompressed_video_says_how_to_build_it(onevision):
    """LLaVA under apply_sf2t with text built for every token: the model's bare "Video features and video tokens do
    not match" now says compression is on and how to build the text (the Qwen families said it already); remove_sf2t
    leaves no instance attribute behind."""
    from transformers import LlavaOnevisionForConditionalGeneration

    from sf2t.models.compress import find_llava_inner

    inputs, processor, ckpt = onevision
    model = LlavaOnevisionForConditionalGeneration.from_pretrained(ckpt, local_files_only=True).eval()
    frames = torch.randint(0, 256, (4, 56, 56, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    video = inputs.video(frames, torch.arange(4), None)
    sample = inputs.text(processor.tokenizer, "How many?", "3.", video) | video
    batch = {k: v for k, v in inputs.collate([sample], processor.tokenizer.pad_token_id)[0].items() if k != "rows"}
    apply_sf2t(model, 0.5)
    try:
        with pytest.raises(ValueError, match="do not match.*sf2t token compression is on.*token_keep_ratio"):
            with torch.no_grad():
                model(**batch)
    finally:
        remove_sf2t(model)
    assert not [k for k in vars(find_llava_inner(model)) if "sf2t" in k or k.startswith("get_")]
    with torch.no_grad():
        assert torch.isfinite(model(**batch).loss)


def test_a_sample_checks_each_grid_once_and_imports_nothing(tok, monkeypatch):
    """The per-sample text path: each grid checked once (num_video_tokens checked the video grid a second time and
    kept_count a third), no import statement run per call (check_token_keep imported token_merge on every call: a
    reviewer measured ~6 us added per sample), and the kept-token counts are kept_count's."""
    import builtins
    import importlib

    from sf2t.models import qwen2_vl
    from sf2t.models.inputs import ModelInputs
    from sf2t.ops.token_merge import kept_count

    token_merge = importlib.import_module("sf2t.ops.token_merge")  # (sf2t.ops.token_merge is also the op's name)

    mi = ModelInputs(FAMILIES["qwen2_vl"], token_keep_ratio=0.3, token_first_group="budget")
    grid = torch.tensor([[4, 6, 8]])
    calls = []
    real_grid_list, real_rows = qwen2_vl._grid_list, token_merge._grid_rows
    monkeypatch.setattr(qwen2_vl, "_grid_list", lambda *a: calls.append("grid") or real_grid_list(*a))
    monkeypatch.setattr(token_merge, "_grid_rows", lambda *a: calls.append("rows") or real_rows(*a))
    mi.text(tok, "q", "a", {"video_grid_thw": grid})  # (the first call fills text caches)
    calls.clear()
    real_import, imported = builtins.__import__, []
    builtins.__import__ = lambda name, *a, **k: imported.append(name) or real_import(name, *a, **k)
    try:
        got = mi.text(tok, "q", "a", {"video_grid_thw": grid}, image_grid=grid)
    finally:
        builtins.__import__ = real_import
    monkeypatch.undo()
    assert calls == ["grid", "grid"]  # the video's grid and the image's, once each
    assert imported == []
    assert int((got["mm_token_type_ids"] == 2).sum()) == kept_count([[4, 3, 4]], 0.3, first_group="budget")[0]
    from sf2t.models import llava_next_video, llava_onevision

    for keep in (0.05, 0.3, 0.5, 0.99):
        for group in ("all", "budget"):
            for t, h, w in ((1, 2, 2), (3, 6, 10), (8, 14, 12)):
                n = build_video_sample(tok, "q", None, [t, h, w], token_keep_ratio=keep, token_first_group=group)
                want = kept_count([[t, h // 2, w // 2]], keep, first_group=group)[0]
                assert int((n["mm_token_type_ids"] == 2).sum()) == want, (keep, group, t, h, w)
    # (OneVision: the pooled grid rounded up and one newline token; NeXT-Video: halved, no newline; it refuses an odd
    # grid, which its model's pooling does not match)
    for mod, side, newline, w in (
        (llava_onevision, lambda n: -(-n // 2), 1, 98),
        (llava_next_video, lambda n: n // 2, 0, 112),
    ):
        ltok = mod.build_tokenizer()
        vid_id = ltok.convert_tokens_to_ids(mod.CHAT_FORMAT.video_token)
        for keep, group in ((0.3, "all"), (0.5, "budget")):
            got = mod.build_sample(ltok, "q", None, np.int64(5), 84, w, token_keep_ratio=keep, token_first_group=group)
            want = kept_count([[5, side(84 // 14), side(w // 14)]], keep, first_group=group)[0]
            assert int((got["input_ids"] == vid_id).sum()) == want + newline, (mod.__name__, keep, group)


def test_processor_disk_errors_are_raised_as_they_are(tmp_path, monkeypatch):
    """An input/output or permission error reading the processor's files was a ValueError saying the processor does
    not load (the folder blamed for the disk); it is raised as it is, and the sf2t command says it in one line. A
    folder whose processor files are missing or damaged is still the ValueError naming the folder."""
    import errno

    import transformers

    from sf2t._oserror import is_file_error

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    (tmp_path / "preprocessor_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="its processor does not load .*the folder needs the processor's files"):
        load_processor(tmp_path)  # (transformers' own OSError, no errno: the folder's file)
    target = str(tmp_path / "preprocessor_config.json")

    def loading_raises(err):
        def from_pretrained(*a, **k):
            raise err

        monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", from_pretrained)

    for err in (
        OSError(errno.EIO, "Input/output error", target),
        PermissionError(errno.EACCES, "Permission denied", target),
        OSError(errno.ENOSPC, "No space left on device"),
    ):
        loading_raises(err)
        with pytest.raises(OSError) as got:
            load_processor(tmp_path)
        assert got.value is err and is_file_error(got.value)
    loading_raises(FileNotFoundError(errno.ENOENT, "No such file or directory", str(tmp_path / "vocab.json")))
    with pytest.raises(ValueError, match="its processor does not load \\(FileNotFoundError.*vocab.json"):
        load_processor(tmp_path)  # a file of the processor missing: the folder lacks it
