"""sf2t.video.decode: metadata, frame-exact decoding in presentation order, both backends, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sf2t.video import decode as dec
from sf2t.video.decode import VideoError, decode_frames, probe

synth = pytest.importorskip("sf2t.synth")
pytest.importorskip("av")

BACKENDS = [b for b in ("torchcodec", "pyav") if b in dec.available_decoders()]
W, H, FPS, SECONDS = 64, 48, 25, 1.2  # 30 frames


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    out = {}
    for codec in ("h264", "vp9"):
        # gop=8: several keyframes, so random access really seeks
        gt = synth.make_clip(root / f"c_{codec}", 7, codec=codec, width=W, height=H, fps=FPS, seconds=SECONDS, gop=8)
        frames, _ = synth.render_frames(7, width=W, height=H, fps=FPS, seconds=SECONDS)
        out[codec] = (gt["path"], frames)
    return out


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, clips):
    root = tmp_path_factory.mktemp("bad")
    empty = root / "empty.mp4"
    empty.write_bytes(b"")
    noise = root / "noise.mp4"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    good = open(clips["h264"][0], "rb").read()
    trunc = root / "truncated.mp4"
    trunc.write_bytes(good[: len(good) // 3])
    from PIL import Image

    image = root / "still.mp4"  # a PNG with a video extension: torchcodec opened it as a 1-frame video
    Image.new("RGB", (32, 24), (200, 10, 10)).save(image, format="PNG")
    return {"missing": root / "missing.mp4", "empty": empty, "noise": noise, "truncated": trunc, "image": image}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("codec", ["h264", "vp9"])
def test_probe(clips, backend, codec):
    path, frames = clips[codec]
    info = probe(path, decoder=backend)
    assert info.num_frames == len(frames) == 30
    assert (info.width, info.height) == (W, H)
    assert info.fps == pytest.approx(FPS)
    assert info.duration == pytest.approx(SECONDS, abs=0.05)
    assert info.codec == codec
    assert info.path == str(path)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("codec", ["h264", "vp9"])
def test_decode_is_frame_exact(clips, backend, codec):
    """Row i is source frame indices[i]: nearest rendered frame is that one, in any order, with repeats."""
    path, rendered = clips[codec]
    idx = [17, 0, 29, 3, 17, 8]
    frames, pts = decode_frames(path, idx, decoder=backend)
    assert frames.dtype == torch.uint8 and frames.shape == (len(idx), H, W, 3)
    assert pts.dtype == torch.float64 and pts.shape == (len(idx),)
    np.testing.assert_allclose(pts.numpy(), np.array(idx) / FPS, atol=1e-6)
    ref = torch.from_numpy(rendered).float()
    for row, k in enumerate(idx):
        err = (frames[row].float()[None] - ref).abs().mean(dim=(1, 2, 3))  # [N]
        assert int(err.argmin()) == k
        assert float(err[k]) < 12.0  # lossy codec, small frames


def test_backends_agree(clips):
    if len(BACKENDS) < 2:
        pytest.skip("needs both torchcodec and PyAV")
    path, _ = clips["h264"]
    idx = list(range(0, 30, 3))
    a, pa = decode_frames(path, idx, decoder="torchcodec")
    b, pb = decode_frames(path, idx, decoder="pyav")
    assert torch.equal(pa, pb)
    # both are ffmpeg's decoder; the colour conversion may differ by a rounding step
    assert (a.int() - b.int()).abs().max() <= 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_indices_forms(clips, backend):
    path, _ = clips["h264"]
    a, _ = decode_frames(path, torch.tensor([2, 5]), decoder=backend)
    b, _ = decode_frames(path, [2, 5], decoder=backend)
    assert torch.equal(a, b)
    empty, pts = decode_frames(path, [], decoder=backend)
    assert empty.shape == (0, H, W, 3) and pts.shape == (0,)
    with pytest.raises(ValueError, match="indices"):
        decode_frames(path, torch.tensor([1.0, 2.0]), decoder=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "name, kind, words",
    [
        ("missing", "missing", "not found"),
        ("empty", "empty", "empty"),
        ("noise", "unreadable", "cannot open"),
        ("image", "not_video", "an image file (png)"),
    ],
)
def test_bad_files(bad_files, backend, name, kind, words):
    path = bad_files[name]
    for call in (lambda: probe(path, decoder=backend), lambda: decode_frames(path, [0], decoder=backend)):
        with pytest.raises(VideoError) as e:
            call()
        assert e.value.kind == kind
        assert e.value.path == str(path)
        assert str(path) in str(e.value) and words in str(e.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_file(bad_files, backend):
    """A file cut short: an error naming it (at probe or at decode), never garbage frames."""
    path = bad_files["truncated"]
    with pytest.raises(VideoError) as e:
        info = probe(path, decoder=backend)
        decode_frames(path, list(range(info.num_frames)), decoder=backend)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad", [30, 1000, -1])
def test_out_of_range(clips, backend, bad):
    path, _ = clips["h264"]
    with pytest.raises(VideoError, match="out of range") as e:
        decode_frames(path, [0, bad], decoder=backend)
    assert e.value.kind == "out_of_range" and str(path) in str(e.value) and "30 frames" in str(e.value)


def test_no_decoder_installed(clips, monkeypatch):
    """Where neither torchcodec nor PyAV is installed, importing works and decoding says what to install."""
    from sf2t.video import backends

    monkeypatch.setattr(backends, "available_decoders", lambda: [])
    monkeypatch.setattr(dec, "available_decoders", lambda: [])
    path, _ = clips["h264"]
    with pytest.raises(VideoError, match="no video decoder installed") as e:
        decode_frames(path, [0])
    assert e.value.kind == "no_decoder"
    with pytest.raises(VideoError, match="not installed"):
        probe(path, decoder="torchcodec")


def test_unknown_decoder(clips):
    with pytest.raises(ValueError, match="decoder"):
        decode_frames(clips["h264"][0], [0], decoder="opencv")


def test_a_missing_device_and_bytes_paths(clips):
    """A CUDA device this machine lacks is named as such (it was reported as a truncated file); a bytes path is the
    file it names (it was "not found")."""
    path, _ = clips["h264"]
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no CUDA device"):
            decode_frames(path, [1], device="cuda")
    frames, _ = decode_frames(str(path).encode(), [1])
    assert torch.equal(frames, decode_frames(path, [1])[0])
