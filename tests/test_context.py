"""The model's context window (sf2t.models.context): a run whose largest sample cannot fit the checkpoint's
max_position_embeddings is refused at setup, for every family; a supervised record whose text cannot fit is left out
at setup (skipped and said; all of them: refused), and one found too long only when made is skipped and another drawn;
a task sample the estimate cannot foresee is refused when it is made; ``sf2t eval`` refuses an over-long prompt.
Before, all of these ran silently at positions the model was never trained on (and an over-long supervised record
stopped the run when first drawn)."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

synth = pytest.importorskip("sf2t.synth")
pytest.importorskip("av")
pytest.importorskip("transformers")

from sf2t.models import FAMILIES  # noqa: E402
from sf2t.train.config import TrainConfig  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("ctx_clips")
    kw = dict(width=96, height=64, seconds=1.2, num_sprites=1, camera_pan=False, events=False)
    return [c["path"] for c in synth.make_clips(root, 2, seed=300, **kw)]


def _tiny(root, name, max_positions, tag=""):
    """A tiny checkpoint of ``name`` whose text config says ``max_position_embeddings = max_positions`` (under
    ``root / (name + tag)``)."""
    path = FAMILIES[name].build_tiny(root / (name + tag), seed=0)
    cfg_path = path / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["text_config"]["max_position_embeddings"] = max_positions
    cfg_path.write_text(json.dumps(cfg))
    return str(path)


def _cfg(model, clips, tmp_path, **kw):
    base = dict(model=model, videos=clips, out_dir=str(tmp_path / "run"), steps=1, batch_size=2, lora=True)
    base.update(kw)
    return TrainConfig(progress=False, log_every=0, **base)


def _tokenizer(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_run_longer_than_the_context_is_refused_at_setup(tmp_path, clips, name):
    from sf2t.train.loop import make_factories

    model = _tiny(tmp_path, name, 32)
    # counting's 16 frames (its default count_max): 16 or more positions of video in every family (Qwen: 16
    # temporal groups at frame_repeat 2), plus the chat scaffolding (~20 tokens)
    cfg = _cfg(model, clips, tmp_path, tasks=["counting"])
    with pytest.raises(ValueError, match=r"counting: .*> max_position_embeddings 32.*lower counting\.count_max"):
        make_factories(cfg, _tokenizer(model))


@pytest.mark.parametrize("name", ["qwen2_vl", "llava_onevision"])
def test_run_that_fits_is_accepted_and_samples_are_checked(tmp_path, clips, name):
    """The default task settings fit the tiny checkpoints' real context; the factory's samples stay inside the
    estimate's bound (the question text is what it leaves out)."""
    from sf2t.train.loop import make_factories

    model = FAMILIES[name].build_tiny(tmp_path / name, seed=0)
    cfg = _cfg(str(model), clips, tmp_path, tasks=["counting", "consistency"])
    factory, _ = make_factories(cfg, _tokenizer(model))
    ctx = factory.inputs.context
    assert (
        ctx is not None
        and ctx.max_positions
        == json.loads((model / "config.json").read_text())["text_config"]["max_position_embeddings"]
    )
    tokens, positions = ctx.extent(factory.sample(0))
    assert 0 < positions <= tokens


def _records(clips, long_ids=("long",), short_ids=("a", "b")):
    """Supervised QA records (LLaVA style): ``long_ids`` with a ~500-token question, ``short_ids`` short ones."""

    def rec(i, text):
        return {"id": i, "video": clips[0], "conversations": [
            {"from": "human", "value": "<video>\n" + text}, {"from": "gpt", "value": "No."}]}  # fmt: skip

    return [rec(i, "Describe every detail. " * 100) for i in long_ids] + [rec(i, "What moves?") for i in short_ids]


def _write(tmp_path, recs):
    data = tmp_path / "qa.json"
    data.write_text(json.dumps(recs))
    return str(data)


def test_supervised_record_longer_than_the_context_is_left_out_at_setup(tmp_path, clips):
    """A record whose text cannot fit the context (with supervised_frames of video) is found at setup: left out with
    one warning naming it, the numbers and what to change, recorded as skipped (the run's report lists it), and the
    other records train; before, the run stopped with a ValueError when a sample first drew it, possibly hours in.
    A data set none of whose records fits is refused at setup."""
    from sf2t.train.loop import make_factories, train

    model = _tiny(tmp_path, "qwen2_vl", 400)
    recs = _records(clips)
    cfg = _cfg(model, clips, tmp_path, tasks=["counting"], supervised_data=_write(tmp_path, recs), supervised_ratio=0.9)
    with pytest.warns(UserWarning, match=r"left out 1 of 3 records.*record 0 \(id 'long'.*> max_position_emb") as w:
        factory, _ = make_factories(cfg, _tokenizer(model))
    said = str(w[0].message)
    assert "mixing in the other 2" in said and "shorten those records' text" in said
    assert "supervised_frames (8)" in said and "frame_size" in said
    assert [r.id for r in factory.supervised] == ["a", "b"]
    (skip,) = [s for s in factory.pool.skipped if s.task == "supervised"]
    assert (skip.path, skip.kind) == (f"{clips[0]} (record 0)", "too_long") and "'long'" in skip.reason
    drawn = [factory.sample(i) for i in range(12)]  # (the old code raised here: index 0 drew the long record)
    assert {s["meta"]["id"] for s in drawn if s["task"] == "supervised"} == {"a", "b"}
    with pytest.warns(UserWarning, match="left out 1 of 3"):
        res = train(cfg, log=lambda x: None, save=False)
    assert "supervised" in res["task_losses"]
    assert [(s["path"], s["kind"]) for s in res["skipped"]] == [(skip.path, "too_long")]

    cfg = _cfg(model, clips, tmp_path, tasks=["counting"], supervised_ratio=0.9,
               supervised_data=_write(tmp_path, _records(clips, ("x", "y"), ())))  # fmt: skip
    with pytest.raises(ValueError, match=r"none of its 2 records fits the model's context with 8 frames") as e:
        make_factories(cfg, _tokenizer(model))
    assert "'x'" in str(e.value) and "> max_position_embeddings 400" in str(e.value) and "shorten" in str(e.value)


def test_sf2t_command_shows_sf2t_warnings_in_its_own_style_once_and_on_rank_0_only(
    tmp_path, clips, capsys, monkeypatch
):
    """`sf2t train` shows sf2t's own warnings (here: a supervised record left out at setup) as one line, `sf2t train:
    warning: ...`, like its errors (before: Python's `/path/supervised.py:187: UserWarning: ...` and the source line,
    and under torchrun once per rank); a rank other than 0 shows none; other packages' warnings are left to Python's
    machinery; after the command the warnings module is as it was (sf2t as a library warns as before)."""
    import warnings

    from sf2t import cli
    from sf2t.train import cli as train_cli
    from sf2t.train.loop import make_factories

    model = _tiny(tmp_path, "qwen2_vl", 400)
    result = {"losses": [1.0], "steps": 1, "seconds": 0.1, "resumed_from": 0, "saved": None}

    def setup_only(cfg):  # the run's setup, where the warning is given; not its training steps
        make_factories(cfg, _tokenizer(cfg.model))
        warnings.warn("a warning from another package", FutureWarning, stacklevel=1)  # (this file: not sf2t)
        return result

    monkeypatch.setattr(train_cli, "run_training", setup_only)
    argv = ["train", f"model={model}", f"videos=[{','.join(clips)}]", "tasks=[counting]", "supervised_ratio=0.9"]
    argv += [f"supervised_data={_write(tmp_path, _records(clips))}", f"out_dir={tmp_path / 'run'}", "steps=1"]
    monkeypatch.delenv("RANK", raising=False)
    before = warnings.showwarning
    with warnings.catch_warnings(record=True) as others:
        warnings.simplefilter("always")
        assert cli.main(argv) == 0
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if "warning" in line.lower()]
    assert len(said) == 1 and said[0].startswith("sf2t train: warning: supervised_data: left out 1 of 3 records"), err
    assert "UserWarning" not in err and "supervised.py" not in err
    assert [str(w.message) for w in others] == ["a warning from another package"]  # (recorded here: Python's path)
    assert warnings.showwarning is before

    monkeypatch.setenv("RANK", "1")  # a torchrun rank other than 0
    with warnings.catch_warnings(record=True) as others:
        warnings.simplefilter("always")
        assert cli.main(argv) == 0
    assert "warning" not in capsys.readouterr().err.lower() and others == []


def test_supervised_record_too_long_when_made_is_skipped_and_another_drawn(tmp_path, clips):
    """A record the setup estimate let through whose sample turns out too long when made (e.g. an estimate that falls
    short) is skipped like a record whose video fails, and another is drawn in its place: the run goes on (before:
    a ValueError stopped it). Which record an index gets does not depend on what was met before: a fresh factory (a
    worker's, a resumed run's with the checkpoint's drops replayed) draws the same."""
    import dataclasses

    from sf2t.models import FAMILIES
    from sf2t.train.data import SUPERVISED, NoUsableVideo
    from sf2t.train.loop import make_factories

    model = FAMILIES["qwen2_vl"].build_tiny(tmp_path / "big", seed=0)
    recs = _records(clips)
    cfg = _cfg(str(model), clips, tmp_path, tasks=["counting"], supervised_data=_write(tmp_path, recs),
               supervised_ratio=0.9)  # fmt: skip
    tok = _tokenizer(model)

    def factory():
        f, _ = make_factories(cfg, tok)
        assert [r.id for r in f.supervised] == ["long", "a", "b"]  # all fit the real context
        # a context the short records fit, the long one does not: only the per-sample guard sees it
        f.inputs.context = dataclasses.replace(f.inputs.context, max_positions=400)
        return f

    f = factory()
    samples = [f.sample(i) for i in range(16)]
    sup = [i for i, s in enumerate(samples) if s["task"] == SUPERVISED]
    assert {samples[i]["meta"]["id"] for i in sup} == {"a", "b"}
    (skip,) = [s for s in f.pool.skipped if s.task == SUPERVISED]
    assert (
        skip.path == f"{clips[0]} (record 0)"
        and skip.kind == "too_long"
        and "> max_position_embeddings 400" in (skip.reason)
    )
    fresh = factory()
    for i in sup:
        assert torch.equal(fresh.sample(i)["input_ids"], samples[i]["input_ids"])
    resumed = factory()
    resumed.pool.drop(skip.path, skip.kind, skip.reason, SUPERVISED)  # (as a resume replays the checkpoint's drops)
    for i in sup:
        assert torch.equal(resumed.sample(i)["input_ids"], samples[i]["input_ids"])
    # the video's other records stay; with every record skipped, the message says so
    f.inputs.context = dataclasses.replace(f.inputs.context, max_positions=20)
    f.supervised_ratio = 1.0
    with pytest.raises(NoUsableVideo, match=r"no usable records left for supervised_data; skipped: .*'a'.*too long"):
        for i in range(16, 40):
            f.sample(i)
    assert len([s for s in f.pool.skipped if s.task == SUPERVISED]) == 3


@pytest.mark.parametrize("name", ["qwen2_vl", "llava_onevision"])
def test_supervised_overflow_is_exact_and_cheap(tmp_path, name):
    """supervised_overflow (the setup check of every record) names exactly the records whose sample does not fit
    (the full assembly's extent, every turn and the system text counted), and assembles in full only the records
    near the limit (and the first of each shape): the rest are bounded from their texts' token counts."""
    import dataclasses

    import sf2t.models.context as context
    from sf2t.models.context import supervised_overflow
    from sf2t.train.loop import make_inputs, model_context
    from sf2t.train.supervised import SupervisedRecord

    model = FAMILIES[name].build_tiny(tmp_path / name, seed=0)
    tok = _tokenizer(model)
    cfg = _cfg(str(model), [], tmp_path, tasks=["counting"])
    inputs = make_inputs(cfg, None, model_context(cfg, tok))
    ctx = inputs.context
    words = "the red square moves left and then up, quickly; a blue disc waits".split()
    recs = []
    for k in range(60):
        text = " ".join(words[j % len(words)] for j in range(k * 3))
        more = (("And then?", text[: k * 2] or "x"),) if k % 3 == 0 else ()
        recs.append(SupervisedRecord("v.mp4", text, "Yes.", str(k), more, "Be brief." if k % 4 == 0 else None, k))
    full = [context._extent_of(ctx, inputs, tok, r.question, r.answer, context._vision_for(inputs, 8), {},
                               more=r.more, system=r.system) for r in recs]  # fmt: skip
    limit = sorted(p for _, p in full)[len(full) // 2]
    ctx = dataclasses.replace(ctx, max_positions=limit, max_tokens=None)
    calls = []
    real = context._extent_of
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(context, "_extent_of", lambda *a, **kw: calls.append(1) or real(*a, **kw))
        got = supervised_overflow(ctx, inputs, tok, recs, 8)
    assert [k for k, _ in got] == [k for k, (_, p) in enumerate(full) if p > limit]
    assert all(o == [f"{full[k][1]} {'M-RoPE positions' if inputs.qwen else 'tokens'} > max_position_embeddings "
                     f"{limit}"] for k, o in got)  # fmt: skip
    # 2 calls per shape (4 shapes: turns x system text); then only the records over or near the limit
    far = sum(p < limit - 50 for _, p in full)
    assert far >= 12 and len(calls) <= 2 * 4 + len(recs) - far


@pytest.mark.parametrize("name", ["qwen2_vl", "llava_onevision"])
def test_setup_estimate_counts_the_longest_question_and_answer(tmp_path, clips, name):
    """Consistency's two frames fit 60 positions, its questions (about 65 tokens) do not: the run is refused at setup,
    not at its first sample (or, for a rarely drawn long paraphrase with the most frames, well into the run); and
    every sample the factory makes stays within the estimate (Qwen: an upper bound; LLaVA: no target image here)."""
    from sf2t.models.context import check_run_fits
    from sf2t.train.loop import make_factories

    cfg = _cfg(_tiny(tmp_path, name, 60), clips, tmp_path, tasks=["consistency", "rearrangement", "speed"])
    with pytest.raises(ValueError, match=r"consistency: its largest sample \(2 frames\).*longest question") as e:
        make_factories(cfg, _tokenizer(cfg.model))
    assert "consistency's frames" not in str(e.value) and "count_max" not in str(e.value)  # settings that exist
    assert re.search(r"lower (frame_size|the processor's video size)", str(e.value))
    model = FAMILIES[name].build_tiny(tmp_path / "big", seed=0)
    factory, _ = make_factories(_cfg(str(model), clips, tmp_path, tasks=cfg.tasks), _tokenizer(model))
    ctx = factory.inputs.context
    for task in cfg.tasks:
        bound = check_run_fits(ctx, {task: factory.tasks[task]}, factory.inputs, _tokenizer(model))
        assert max(ctx.extent(factory.sample(i, task=task))[1] for i in range(12)) <= bound, task


def test_setup_estimate_counts_llava_next_videos_answer_end(tmp_path, clips, monkeypatch):
    """The setup estimate measures the training samples' own texts: LLaVA-NeXT-Video's end with the eos </s> sf2t
    writes and supervises after the answer (the Vicuna template has no end token), and the estimate counts it."""
    from sf2t.models.context import Context, check_run_fits
    from sf2t.train.loop import make_factories

    model = FAMILIES["llava_next_video"].build_tiny(tmp_path / "lnv", seed=0)
    tok = _tokenizer(model)
    factory, _ = make_factories(_cfg(str(model), clips, tmp_path, tasks=["counting"]), tok)
    ctx, seen, extent = factory.inputs.context, [], Context.extent
    monkeypatch.setattr(Context, "extent", lambda self, s: seen.append(s) or extent(self, s))
    bound = check_run_fits(ctx, {"counting": factory.tasks["counting"]}, factory.inputs, tok)
    assert seen and all(int(s["input_ids"][-1]) == int(s["labels"][-1]) == tok.eos_token_id for s in seen)
    assert bound == max(int(s["input_ids"].numel()) for s in seen)
    made = factory.sample(0)
    assert int(made["input_ids"][-1]) == tok.eos_token_id and extent(ctx, made)[1] <= bound


@pytest.mark.parametrize("name", ["qwen2_vl", "llava_onevision"])
def test_per_sample_guard_names_settings_the_task_has(tmp_path, clips, name):
    """A consistency sample (always two frames) over the context: the error names settings that exist, not a
    ``consistency.count_max`` that TrainConfig would refuse."""
    import dataclasses

    from sf2t.train.loop import make_factories

    model = FAMILIES[name].build_tiny(tmp_path / name, seed=0)
    factory, _ = make_factories(_cfg(str(model), clips, tmp_path, tasks=["consistency"]), _tokenizer(model))
    # a context the setup estimate was not asked about: only the per-sample guard stands in the way
    factory.inputs.context = dataclasses.replace(factory.inputs.context, max_positions=60)
    with pytest.raises(ValueError, match=r"consistency: .*> max_position_embeddings 60") as e:
        for i in range(20):
            factory.sample(i)
    assert "count_max" not in str(e.value)
    assert ("frame_size" if name == "qwen2_vl" else "token_keep_ratio") in str(e.value)


@pytest.mark.parametrize("name", ["qwen2_5_vl", "llava_next_video"])
def test_finevidbench_refuses_an_over_long_prompt(tmp_path, name):
    from sf2t.finevidbench.evaluate import VideoRunner

    runner = VideoRunner(_tiny(tmp_path, name, 64))
    q = {"id": "q1", "question": "Which way does the square move?", "options": ["left", "right", "up", "down"]}
    frames = torch.zeros(16, 56, 56, 3, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"question 'q1' \(16 frames\).*> max_position_embeddings 64"):
        runner.likelihood(q, frames, None)
    with pytest.raises(ValueError, match=r"question 'q1'.*with \d+ tokens to generate"):
        runner.generate(q, frames, None)


def test_qwen_positions_bound_the_models_own():
    """Context.extent's M-RoPE positions are never fewer than the model's own rotary positions (exact where text
    after a video starts past its whole extent; an upper bound otherwise), and the tokens are the sequence length."""
    from transformers import Qwen2VLModel

    from sf2t.models.context import Context
    from sf2t.models.tiny import build_tiny_config
    from sf2t.models.tokenizer import build_tokenizer

    tok = build_tokenizer()
    config = build_tiny_config(tok)
    model = Qwen2VLModel(config)
    ctx = Context.of(config, tok)
    from sf2t.models.qwen2_vl import build_video_sample

    for grid in ([1, 4, 4], [8, 4, 4], [2, 4, 12], [3, 12, 4]):
        s = build_video_sample(tok, "How many frames?", "5", grid)
        pos, _ = model.get_rope_index(s["input_ids"][None], s["mm_token_type_ids"][None], None, torch.tensor([grid]))
        tokens, positions = ctx.extent({**s, "video_grid_thw": torch.tensor([grid])})
        assert tokens == s["input_ids"].numel()
        assert positions >= int(pos.max()) + 1
        if grid[0] <= max(grid[1], grid[2]) // 2:  # time spans no more than space: the same in every release
            assert positions == int(pos.max()) + 1


@pytest.mark.parametrize(
    "rope, expect",
    [
        (None, 4096),
        ({"rope_type": "linear", "factor": 2.0}, 8192),  # LLaVA-NeXT-Video-style stretched Vicuna
        ({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 4096}, 16384),
        (
            {
                "rope_type": "llama3",
                "factor": 8.0,
                "original_max_position_embeddings": 256,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
            },
            4096,
        ),
    ],
)
def test_rope_scaling_widens_the_context(rope, expect):
    """A checkpoint whose RoPE is scaled (linear / yarn / llama3 factors) is trained or meant for that many more
    positions: only past them is a sample refused."""
    from transformers import LlamaConfig

    from sf2t.models.context import Context

    cfg = LlamaConfig(max_position_embeddings=4096, rope_scaling=rope)
    assert Context.of(cfg).max_positions == expect


def test_tokens_past_model_max_length_are_a_limit_only_without_mrope():
    """Under Qwen's M-RoPE a video's tokens take far fewer positions than tokens: the tokenizer's
    ``model_max_length`` (a truncation setting) does not refuse a sample whose positions fit; LLaVA's one position per
    token is held to it."""
    from sf2t.models.context import Context

    assert Context(max_positions=100, max_tokens=50, mrope=True).over(80, 60) == []
    assert Context(max_positions=100, max_tokens=50).over(80, 80) == ["80 tokens > the tokenizer's model_max_length 50"]


@pytest.fixture(scope="module")
def big_clips(tmp_path_factory):
    """Clips whose short side (180) makes localization targets of 45-60 px: both sides of the tiny processors'
    56 px base tile, so some targets take the anyres tiles' most tokens."""
    root = tmp_path_factory.mktemp("ctx_big_clips")
    kw = dict(width=240, height=180, seconds=1.2, num_sprites=1, camera_pan=False, events=False)
    return [c["path"] for c in synth.make_clips(root, 2, seed=301, **kw)]


@pytest.mark.parametrize("name", ["llava_onevision", "llava_next_video"])
def test_setup_estimate_counts_the_llava_target_image(tmp_path, big_clips, name):
    """LLaVA's localization target image goes through anyres tiles (a token count that depends on its size, a
    fraction of the video's short side): the setup estimate counts the most any square image takes through the
    processor's image_grid_pinpoints, so every localization sample the factory makes stays within it (before, the
    estimate left the image out and a run was refused only at its first localization sample); a context that the
    largest sample with its image cannot fit is refused at setup, naming the image."""
    from sf2t.models import load_processor
    from sf2t.models.context import check_run_fits, llava_image_tokens
    from sf2t.models.llava_onevision import num_image_tokens
    from sf2t.train.loop import make_factories

    model = FAMILIES[name].build_tiny(tmp_path / "big", seed=0)
    cfg = _cfg(str(model), big_clips, tmp_path, tasks=["localization"])
    factory, _ = make_factories(cfg, _tokenizer(model))
    ctx, proc = factory.inputs.context, load_processor(str(model))
    most = llava_image_tokens(proc)
    bound = check_run_fits(ctx, {"localization": factory.tasks["localization"]}, factory.inputs, _tokenizer(model))
    images, positions = [], []
    for i in range(16):
        s = factory.sample(i, task="localization")
        h, w = (int(v) for v in s["image_sizes"][0])
        assert h == w  # the target is square
        images.append(num_image_tokens(proc, h, w))
        positions.append(ctx.extent(s)[1])
    assert max(images) == most > min(images)  # the worst case is reached (targets past the base tile), not exceeded
    assert max(positions) <= bound
    assert max(positions) > bound - most  # the image is what the estimate needs (the frames and text alone fall short)

    # a context that only large targets overflow (their size follows the videos, not read yet): said, not refused
    # (a real LLaVA-NeXT-Video run on 720p videos would be refused for what 4K videos' targets take)
    cfg = _cfg(_tiny(tmp_path, name, bound - 1), big_clips, tmp_path, tasks=["localization"])
    with pytest.warns(UserWarning, match=rf"localization: a sample with a large target image .*tokens, {most}\)") as w:
        make_factories(cfg, _tokenizer(cfg.model))
    # the advice: what makes the target smaller (its side follows the video's short side, its tokens the processor's
    # image_grid_pinpoints) or leaves it room; before, it named count_max / token_keep_ratio as if they shrank it
    said = str(w[0].message)
    side = next(s for s in range(1, 10**4) if num_image_tokens(proc, s, s) > most - 1)  # one token over: the most
    assert f"a target of {side} px or more can take more than the {most - 1} image tokens that fit" in said
    assert (
        f"localization.side_min-side_max (0.25-0.333) of the video's short side, so videos whose short side is "
        f"{math.ceil((side - 0.5) * 3)} px or more can make one" in said
    )  # (a side rounded: 1/3 of 170 px is 57 px)
    assert "localization.side_max and side_min lower" in said and "image_grid_pinpoints are smaller" in said
    assert "room (localization.count_max or token_keep_ratio)" in said and "leaving out localization" in said
    # one that a small target overflows too: refused at setup
    small = bound - most + llava_image_tokens(proc, fewest=True)
    cfg = _cfg(_tiny(tmp_path, name, small - 1, "b"), big_clips, tmp_path, tasks=["localization"])
    with pytest.raises(ValueError, match=rf"localization: .*target image's most anyres tokens \({most},") as e:
        make_factories(cfg, _tokenizer(cfg.model))
    assert f"{bound} tokens > max_position_embeddings {small - 1}" in str(e.value)


@pytest.mark.parametrize("name", ["qwen2_vl", "llava_onevision"])
def test_held_out_set_counts_the_tokens_to_generate(tmp_path, clips, name):
    """A held-out prompt that fits, but not with the tokens the evaluation generates, is refused when the set is
    built (before any training: a resumed run's first evaluation may come hours in) and by ``evaluate``, naming the
    sample and max_new_tokens; as ``sf2t eval`` does."""
    import dataclasses

    from sf2t.train.evaluate import answer_budget, build_eval_set, evaluate
    from sf2t.train.loop import make_factories

    model = FAMILIES[name].build_tiny(tmp_path / name, seed=0)
    tok = _tokenizer(model)
    factory, _ = make_factories(_cfg(str(model), clips, tmp_path, tasks=["counting"]), tok)
    es = build_eval_set(factory, ["counting"], 2, max_new_tokens=8)
    prompt = max(p for _, p in es.extents)
    assert prompt == max(factory.inputs.context.extent(s)[1] for s in es)
    # a context the prompts fit (the per-sample guard passes them), with 3 positions to spare
    factory.inputs.context = dataclasses.replace(factory.inputs.context, max_positions=prompt + 3)
    es = build_eval_set(factory, ["counting"], 2, max_new_tokens=3)  # fits exactly
    with pytest.raises(
        ValueError, match=r"held-out sample \d+ \(counting\).*with 8 tokens to generate.*lower max_new_t"
    ):
        build_eval_set(factory, ["counting"], 2, max_new_tokens=8)
    with pytest.raises(ValueError, match=r"held-out sample \d+ \(counting\).*lower max_new_tokens \(8\), or counting"):
        evaluate(None, tok, es, max_new_tokens=8)  # refused before the model is asked anything
    assert answer_budget(tok, es) > 3
    with pytest.raises(ValueError, match=r"with \d+ tokens to generate.*max_new_tokens \(\d+: auto"):
        build_eval_set(factory, ["counting"], 2)


@pytest.fixture(scope="module")
def sized_clips(tmp_path_factory):
    """(small, mid, big) clips for the tiny LLaVA processors (56 px base tile: a target up to 56 px takes 36 image
    tokens, a larger one 88): small 96x64 (targets 16-21 px), mid 240x180 (45-60 px: its largest take 88 tokens),
    big 320x240 (60-80 px: every target 88 tokens)."""
    root = tmp_path_factory.mktemp("ctx_sized_clips")
    kw = dict(seconds=1.2, num_sprites=1, camera_pan=False, events=False)
    small = [c["path"] for c in synth.make_clips(root / "small", 2, seed=310, width=96, height=64, **kw)]
    mid = [c["path"] for c in synth.make_clips(root / "mid", 1, seed=312, width=240, height=180, **kw)]
    big = [c["path"] for c in synth.make_clips(root / "big", 2, seed=313, width=320, height=240, **kw)]
    return small, mid, big


# tiny LLaVA-OneVision, localization's largest sample (12 frames, longest question): 103 tokens + the target's 36 or
# 88 image tokens; counting's largest 100: a context of 139 fits any video's 36-token target, no 88-token one
LLAVA_FITS_SMALL_TARGETS = 139


def test_llava_video_whose_smallest_target_cannot_fit_is_left_out_of_localization(tmp_path, sized_clips):
    """A video whose every localization target takes more anyres tokens than fit (its short side makes even the
    smallest target large) is left out of localization at setup: one warning naming it with the numbers and what to
    change, recorded as skipped (task localization, kind too_large); the other tasks still draw it. Before, the run
    started and stopped with a ValueError at the first localization sample drawn from it. A resumed run (the
    checkpoint's skips replayed) draws the same samples."""
    from sf2t.train.loop import make_factories

    small, mid, big = sized_clips
    model = _tiny(tmp_path, "llava_onevision", LLAVA_FITS_SMALL_TARGETS)
    cfg = _cfg(model, small + mid + big[:1], tmp_path, tasks=["localization", "counting"])
    tok = _tokenizer(model)
    with pytest.warns(UserWarning) as w:
        factory, _ = make_factories(cfg, tok)
    said = [str(x.message) for x in w]
    (large,) = [m for m in said if "a sample with a large target image" in m]
    assert "The run goes on: such a video's samples draw their target only among the sizes that fit" in large
    (left,) = [m for m in said if m.startswith("localization: left out")]
    assert "localization: left out 1 of 4 videos in 'videos' whose smallest target image cannot fit" in left
    assert (
        f"{big[0]}: short side 240 px, smallest target 60 px = 88 image tokens, with 12 frames: 191 tokens > "
        "max_position_embeddings 139" in left
    )
    assert "localization draws from the other 3, the other tasks still use them all" in left
    assert "lower localization.side_min / side_max (0.25 / 0.333" in left and "image_grid_pinpoints" in left
    (skip,) = factory.pool.skipped
    assert (skip.path, skip.kind, skip.task) == (big[0], "too_large", "localization")
    assert "short side 240 px" in skip.reason and "> max_position_embeddings 139" in skip.reason
    loc = [factory.sample(i, task="localization") for i in range(10)]  # (the old code raised on index 1)
    assert big[0] not in {s["meta"]["source"] for s in loc}
    assert all(factory.inputs.context.extent(s)[0] <= LLAVA_FITS_SMALL_TARGETS for s in loc)
    assert big[0] in {factory.sample(i, task="counting")["meta"]["source"] for i in range(12)}
    with pytest.warns(UserWarning) as w:
        resumed, _ = make_factories(cfg, tok)
    assert sum(str(x.message).startswith("localization: left out 1 of 4") for x in w) == 1
    for s in factory.pool.skipped:  # (as a resume replays the checkpoint's drops)
        resumed.pool.drop(s.path, s.kind, s.reason, s.task)
    assert len(resumed.pool.skipped) == 1
    for i, s in enumerate(loc):
        assert torch.equal(resumed.sample(i, task="localization")["input_ids"], s["input_ids"])


def test_llava_localization_refused_when_no_video_can_give_a_target_that_fits(tmp_path, sized_clips):
    """Every video's smallest target too large: refused at setup, naming the task, the numbers and what to change
    (before: warned, then stopped at the first localization sample)."""
    from sf2t.train.loop import make_factories

    _, _, big = sized_clips
    cfg = _cfg(_tiny(tmp_path, "llava_onevision", LLAVA_FITS_SMALL_TARGETS), big, tmp_path, tasks=["localization"])
    with pytest.raises(ValueError, match=r"localization: none of the 2 videos in 'videos' it may draw can give a "):
        with pytest.warns(UserWarning, match="a sample with a large target image"):
            make_factories(cfg, _tokenizer(cfg.model))
    with pytest.raises(ValueError) as e, pytest.warns(UserWarning):
        make_factories(cfg, _tokenizer(cfg.model))
    msg = str(e.value)
    assert (
        "short side 240 px, smallest target 60 px = 88 image tokens" in msg and "> max_position_embeddings 139" in msg
    )
    assert "lower localization.side_min / side_max" in msg and "smaller image_grid_pinpoints" in msg
    assert "shorter short side" in msg and "leave localization out of the task mix" in msg


def test_llava_target_too_large_when_made_is_drawn_again(tmp_path, sized_clips, monkeypatch):
    """A video whose small targets fit and large ones do not (mid: 45-56 px take 36 tokens, 57-60 px 88): its samples
    draw the target side among those that fit, so no sample stops the run (before: a ValueError from the per-sample
    guard at the first large target, hours into a run); a sample still over when made (the cap's estimate short) is
    a failed window, drawn again. Either way the same index gives the same sample in a fresh factory (a worker's, a
    resumed run's with the skips replayed)."""
    from sf2t.train.loop import make_factories, train

    small, mid, _ = sized_clips
    model = _tiny(tmp_path, "llava_onevision", LLAVA_FITS_SMALL_TARGETS)
    cfg = _cfg(model, small + mid, tmp_path, tasks=["localization"], steps=2)
    tok = _tokenizer(model)

    def factory():
        with pytest.warns(UserWarning, match="a sample with a large target image"):
            f, _ = make_factories(cfg, tok)
        assert not f.pool.skipped  # every video has targets that fit
        return f

    def draw(f, n=16):
        out = [f.sample(i) for i in range(n)]
        assert all(f.inputs.context.extent(s)[0] <= LLAVA_FITS_SMALL_TARGETS for s in out)
        return out

    f = factory()
    made = draw(f)
    sides = [int(s["image_sizes"][0][0]) for s in made if s["meta"]["source"] == mid[0]]
    assert sides and all(45 <= v <= 56 for v in sides)  # capped at the largest side that fits
    uncapped = factory()
    monkeypatch.setattr(uncapped, "target_budget", lambda t: None)  # the old draw: a large target refused
    with pytest.raises(ValueError, match=r"localization: the sample is longer than the model's context"):
        for i in range(16):
            uncapped.sample(i)
    fresh = factory()
    for i, s in enumerate(made):
        assert torch.equal(fresh.sample(i)["input_ids"], s["input_ids"])

    # the cap's estimate falling short: the made sample's exact check turns large targets away, windows drawn again
    from sf2t.models.context import TargetBudget

    monkeypatch.setattr(TargetBudget, "fraction", lambda self, size, frames: self.cfg.side_max)
    turned, over_sample = [], TargetBudget.over_sample
    monkeypatch.setattr(TargetBudget, "over_sample", lambda *a: turned.append(over_sample(*a)) or turned[-1])
    f = factory()
    made = draw(f)
    assert any(turned)  # some target was too large when made
    assert all(int(s["image_sizes"][0][0]) <= 56 for s in made if s["meta"]["source"] == mid[0])
    resumed = factory()
    for s in f.pool.skipped:
        resumed.pool.drop(s.path, s.kind, s.reason, s.task)
    for i, s in enumerate(made):
        assert torch.equal(resumed.sample(i)["input_ids"], s["input_ids"])
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="a sample with a large target image"):
        res = train(cfg, log=lambda x: None, save=False)
    assert len(res["losses"]) == 2 and "localization" in res["task_losses"]


def test_supervised_overflow_counts_tokens_as_the_tokenizer_does():
    """The records' texts are counted as the tokenizer encodes them, whatever padding or truncation its Rust
    tokenizer was left with (by its tokenizer.json, or a call with padding=True): the batched shortcut padded every
    text to the longest of the batch, which made records that fit look too long."""
    from sf2t.models.context import _token_counts
    from sf2t.models.tokenizer import build_tokenizer

    tok = build_tokenizer(1024)
    texts = ["short", "a much longer text with many words in it, to be counted", "x " * 40]
    want = {t: len(ids) for t, ids in zip(texts, tok(texts, add_special_tokens=False)["input_ids"])}
    assert _token_counts(tok, texts) == want
    tok.backend_tokenizer.enable_padding()
    assert _token_counts(tok, texts) == want
    tok.backend_tokenizer.no_padding()
    tok.backend_tokenizer.enable_truncation(8)
    assert _token_counts(tok, texts) == want
