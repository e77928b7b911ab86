"""The DALI backend (sf2t/video/dali.py): frame-exact decoding against PyAV and torchcodec, timestamps, special
streams and bad inputs. Clips are tiny VP9 (DALI's CPU decoder does VP8/VP9/MJPEG only); H.264 needs a GPU."""

import os
import shutil
import subprocess
from fractions import Fraction

import numpy as np
import pytest
import torch

pytest.importorskip("nvidia.dali")
av = pytest.importorskip("av")

from sf2t.synth import make_clip  # noqa: E402
from sf2t.video import dali as dali_mod  # noqa: E402
from sf2t.video.dali import DaliBackend  # noqa: E402
from sf2t.video.errors import VideoError  # noqa: E402
from sf2t.video.probe import is_cover_picture  # noqa: E402
from tests.video import media  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# libswscale flags DALI's CPU decoder converts YUV -> RGB with (frames_decoder_cpu.cc): BILINEAR | FULL_CHR_H_INT |
# ACCURATE_RND. PyAV converting with the same flags gives DALI's frames bit for bit (measured: max diff 0 on every
# clip here, 8- and 10-bit, odd sizes). PyAV's default to_ndarray("rgb24") (= torchcodec) takes swscale's fast path.
DALI_SWS = 0x2 | 0x2000 | 0x40000


def _clip(root, name, seed, codec="vp9"):
    return make_clip(root / name, seed, codec=codec, width=64, height=48, fps=25, seconds=1.2, gop=8)["path"]


def _pyav(path, flags=None):
    """Every frame of sf2t's stream (the first video stream that is not a cover picture) by a sequential PyAV decode:
    uint8 [N, H, W, 3] RGB and pts in seconds."""
    kw = {} if flags is None else {"interpolation": flags}
    with av.open(str(path)) as c:
        frames = list(c.decode(next(s for s in c.streams.video if not is_cover_picture(s))))
    rgb = np.stack([f.to_ndarray(format="rgb24", **kw) for f in frames])
    return rgb, [float(f.pts * f.time_base) for f in frames]


def _mad(a, b):
    return float(np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).mean())


def _write(path, n, w, h, *, pts=None, tb=Fraction(1, 25), fmt="webm", rotation=None):
    """A VP9 clip written with PyAV: a gradient that moves every frame (so neighbouring frames differ)."""
    yy, xx = np.mgrid[0:h, 0:w]
    with av.open(str(path), mode="w", format=fmt) as c:
        s = c.add_stream("libvpx-vp9", rate=25)
        cc = s.codec_context
        cc.width, cc.height, cc.pix_fmt, cc.time_base, cc.thread_count = w, h, "yuv420p", tb, 1
        cc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "crf": "30", "b": "0"}
        if rotation is not None:
            s.set_display_rotation(rotation)
        for t in range(n):
            img = np.stack([(xx * 4 + t * 16) % 256, (yy * 5 + t * 8) % 256, ((xx + yy) * 3 + t * 40) % 256], -1)
            f = av.VideoFrame.from_ndarray(img.astype(np.uint8), format="rgb24")
            f.pts, f.time_base = (t if pts is None else pts[t]), tb
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return str(path)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("dali")


@pytest.fixture(scope="module")
def clips(root):
    # seeds whose neighbouring frames differ (seed 4 has near-static stretches: frame k+1 within 0.4 of frame k)
    return [_clip(root, f"vp9_{s}", s) for s in (0, 1, 2)]


def _expect_error(kind, path, fn):
    with pytest.raises(VideoError) as ei:
        fn()
    e = ei.value
    assert e.kind == kind, (e.kind, str(e))
    assert e.path == str(path) and str(path) in str(e)
    return e


# ---------------------------------------------------------------------------------------------------
# 1. frame k is PyAV's frame k


def test_random_index_sets_match_pyav(clips):
    rng = np.random.default_rng(1234)
    for path in clips:
        ref, ref_pts = _pyav(path)
        same, _ = _pyav(path, DALI_SWS)
        n = len(ref)
        b = DaliBackend(path)
        assert b.num_frames == n and b.pts_exact
        sets = [rng.integers(0, n, int(rng.integers(1, 25))).tolist() for _ in range(4)] + [[n - 1, 3, 3, 0, 17, n - 1]]
        for idx in sets:
            frames, pts = b.get_frames(idx)
            assert frames.dtype == torch.uint8 and frames.device.type == "cpu"
            assert frames.shape == (len(idx), 48, 64, 3) and pts.dtype == torch.float64
            np.testing.assert_allclose(pts.numpy(), [ref_pts[k] for k in idx], rtol=0, atol=1e-9)
            for row, k in zip(frames.numpy(), idx):
                own = _mad(row, ref[k])
                for j in (k - 2, k - 1, k + 1, k + 2):
                    if 0 <= j < n:
                        assert own < _mad(row, ref[j]), (path, k, j)
                # Against PyAV converting like DALI: identical (measured 0.0).
                assert _mad(row, same[k]) < 1.5, (path, k)
                # Against the default conversion: 1.2-2.0 on average, up to 2.75 for a frame (seeds 0-5, measured).
                assert own < 3.5, (path, k, own)
        b.close()


def test_empty_request_and_closed(clips):
    b = DaliBackend(clips[0])
    frames, pts = b.get_frames([])
    assert frames.shape == (0, 48, 64, 3) and frames.dtype == torch.uint8 and pts.shape == (0,)
    assert pts.dtype == torch.float64
    f1, _ = b.get_frames(torch.tensor([2, 0]))
    f2, _ = b.get_frames([0, 2])
    assert torch.equal(f1, f2.flip(0))
    with pytest.raises(ValueError):
        b.get_frames([1.5])
    b.close()
    with pytest.raises(ValueError):
        b.get_frames([0])


def test_pipeline_is_shared_across_files(clips):
    a, b = DaliBackend(clips[0]), DaliBackend(clips[1])
    a.get_frames([1])
    b.get_frames([1])
    key = (os.getpid(), None, 1)
    assert key in dali_mod._pipes  # one pipeline per (process, device, threads)
    # a backend with its own pipeline decodes the same frames
    DaliBackend.share_pipeline = False
    try:
        own = DaliBackend(clips[0])
        assert own._pipe is not None and own._pipe is not dali_mod._pipes[key]
        assert torch.equal(own.get_frames([1, 7])[0], a.get_frames([1, 7])[0])
    finally:
        DaliBackend.share_pipeline = True


# ---------------------------------------------------------------------------------------------------
# 2. same frames as torchcodec, up to the colour conversion


def test_matches_torchcodec(clips):
    tc = pytest.importorskip("torchcodec.decoders")
    for path in clips:
        b = DaliBackend(path)
        idx = list(range(b.num_frames))
        d = b.get_frames(idx)[0].numpy().astype(np.int16)
        batch = tc.VideoDecoder(path, dimension_order="NHWC", seek_mode="exact", num_ffmpeg_threads=1).get_frames_at(
            idx
        )
        t = batch.data.numpy().astype(np.int16)
        np.testing.assert_allclose(b.pts.numpy(), batch.pts_seconds.numpy(), rtol=0, atol=1e-6)
        diff = np.abs(d - t)
        # torchcodec == PyAV's default conversion (swscale fast path); DALI interpolates chroma with accurate
        # rounding. Measured on 64x48 seeds 0-5: mean 1.2-2.0, per-frame mean <= 2.75, DALI brighter by ~1 level
        # (+1.0 R, +1.35 G, +0.7 B); single pixels differ by up to 46-76 at saturated chroma edges, but only
        # 0.7-4.7 % of values by more than 8 (640x360: mean 1.14-1.20, max 73-89, 0.5 %).
        assert diff.mean() < 2.5, (path, diff.mean())
        assert diff.mean(axis=(1, 2, 3)).max() < 3.5, path
        assert (diff > 8).mean() < 0.06, path


# ---------------------------------------------------------------------------------------------------
# 3. timestamps


def test_pts_variable_frame_rate(root):
    gaps = [40, 40, 80, 20, 40, 120, 40, 40, 20, 20, 60, 40]
    ticks = np.concatenate([[0], np.cumsum(gaps)]).tolist()
    path = _write(root / "vfr.webm", len(ticks), 64, 48, pts=ticks, tb=Fraction(1, 1000))
    same, ref_pts = _pyav(path, DALI_SWS)
    np.testing.assert_allclose(ref_pts, np.array(ticks) / 1000, atol=1e-9)
    b = DaliBackend(path)
    idx = [12, 0, 5, 5, 3, 6, 11]
    frames, pts = b.get_frames(idx)
    np.testing.assert_allclose(pts.numpy(), [ref_pts[k] for k in idx], rtol=0, atol=1e-9)
    for row, k in zip(frames.numpy(), idx):
        assert _mad(row, same[k]) < 1.5
    # pts from the caller (the index) are used as given
    given = [0.5 + k for k in range(len(ticks))]
    b2 = DaliBackend(path, num_frames=len(ticks), pts=given)
    assert b2.get_frames([3, 1])[1].tolist() == [3.5, 1.5]
    with pytest.raises(ValueError):
        DaliBackend(path, num_frames=3, pts=given)


def test_pts_without_pyav_fall_back_to_fps(clips, monkeypatch):
    pytest.importorskip("torchcodec")
    find_spec = dali_mod.importlib.util.find_spec
    hide_av = lambda name, *a: None if name == "av" else find_spec(name, *a)  # noqa: E731
    monkeypatch.setattr(dali_mod.importlib.util, "find_spec", hide_av)
    b = DaliBackend(clips[0])
    assert not b.pts_exact and b.num_frames == 30 and b.codec == "vp9"
    np.testing.assert_allclose(b.get_frames([0, 10])[1].numpy(), [0.0, 0.4], atol=1e-9)


# ---------------------------------------------------------------------------------------------------
# special streams: odd size, 1 frame, 10-bit, rotation


def test_odd_size_and_single_frame(root):
    for path, n, (w, h) in [
        (_write(root / "odd.webm", 6, 321, 179), 6, (321, 179)),
        (_write(root / "one.webm", 1, 64, 48), 1, (64, 48)),
    ]:
        same, ref_pts = _pyav(path, DALI_SWS)
        b = DaliBackend(path)
        assert b.num_frames == n
        idx = list(range(n)) + [0, 0]
        frames, pts = b.get_frames(idx)
        assert frames.shape == (len(idx), h, w, 3)
        assert pts.tolist() == pytest.approx([ref_pts[k] for k in idx], abs=1e-9)
        for row, k in zip(frames.numpy(), idx):
            assert _mad(row, same[k]) < 1.5  # measured 0.0
        _expect_error("out_of_range", path, lambda b=b, n=n: b.get_frames([n]))


def test_10bit_vp9(root):
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("needs the ffmpeg command line (PyAV's libvpx is built without high bit depth)")
    path = str(root / "ten.webm")
    cmd = [
        ffmpeg,
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25:duration=0.4",
        "-c:v",
        "libvpx-vp9",
        "-pix_fmt",
        "yuv420p10le",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-threads",
        "1",
        path,
    ]
    if subprocess.run(cmd, capture_output=True).returncode != 0:
        pytest.skip("this ffmpeg cannot encode 10-bit VP9")
    with av.open(path) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p10le"
    same, _ = _pyav(path, DALI_SWS)
    b = DaliBackend(path)
    assert b.pix_fmt == "yuv420p10le"
    frames, _ = b.get_frames([9, 0, 4])
    for row, k in zip(frames.numpy(), [9, 0, 4]):
        assert _mad(row, same[k]) < 1.5  # converted to 8-bit RGB; measured 0.0


def test_rotation_is_not_applied(root):
    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("this PyAV cannot write a display matrix")
    path = _write(root / "rot.mp4", 5, 64, 48, fmt="mp4", rotation=90)
    with av.open(path) as c:
        assert next(c.decode(video=0)).rotation == 90
    same, _ = _pyav(path, DALI_SWS)  # PyAV does not rotate either
    b = DaliBackend(path)
    assert b.applies_rotation is False
    frames, _ = b.get_frames([0, 4])
    assert frames.shape == (2, 48, 64, 3)  # as coded; torchcodec would return it upright (64 x 48)
    assert _mad(frames[1].numpy(), same[4]) < 1.5


def test_rotated_dali_backend_takes_the_output_argument(root):
    """open_decoder turns a rotated stream's DALI frames upright in a wrapper, which took only the indices: a caller's
    get_frames(..., output=...) (the sampler's, every other backend's argument) was a TypeError for rotated files
    alone. It is taken, and DALI gives RGB for either output, upright."""
    if not hasattr(av.video.stream.VideoStream, "set_display_rotation"):
        pytest.skip("this PyAV cannot write a display matrix")
    from sf2t.video import open_decoder, probe

    path = _write(root / "rot_output.mp4", 5, 64, 48, fmt="mp4", rotation=90)
    with open_decoder(path, "dali", info=probe(path)) as dec:
        want, pts = dec.get_frames([4, 0])
        assert want.shape == (2, 64, 48, 3)  # upright
        for output in ("rgb", "yuv420"):
            got, got_pts = dec.get_frames([4, 0], output=output)
            assert isinstance(got, torch.Tensor) and torch.equal(got, want) and torch.equal(got_pts, pts)
        with pytest.raises(ValueError, match="output must be None"):
            dec.get_frames([0], output="nv12")


# ---------------------------------------------------------------------------------------------------
# 4. bad inputs


def _remux(src, dst, change):
    """Copy a WebM packet by packet, ``change(k, packet)`` returning the packet to write (or None to drop it)."""
    with av.open(src) as i, av.open(str(dst), "w", format="webm") as o:
        si = i.streams.video[0]
        so = o.add_stream_from_template(si)
        for k, p in enumerate(p for p in i.demux(si) if p.size):
            q = change(k, p)
            if q is not None:
                q.stream = so
                o.mux(q)
    return str(dst)


def test_bad_inputs(root, clips):
    good = clips[0]
    data = open(good, "rb").read()
    e = _expect_error("missing", root / "nope.webm", lambda: DaliBackend(root / "nope.webm"))
    assert "not found" in e.reason
    (root / "empty.webm").write_bytes(b"")
    _expect_error("empty", root / "empty.webm", lambda: DaliBackend(root / "empty.webm"))
    (root / "text.webm").write_bytes(b"not a video\n" * 50)
    _expect_error("unreadable", root / "text.webm", lambda: DaliBackend(root / "text.webm"))
    (root / "head.webm").write_bytes(data[:300])
    _expect_error("unreadable", root / "head.webm", lambda: DaliBackend(root / "head.webm"))

    media.audio_only(root / "audio.mp4")
    _expect_error("no_video", root / "audio.mp4", lambda: DaliBackend(root / "audio.mp4"))

    with av.open(str(root / "still.png"), "w", format="image2") as c:
        s = c.add_stream("png", rate=1)
        s.width, s.height, s.pix_fmt = 16, 16, "rgb24"
        for p in s.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    _expect_error("not_video", root / "still.png", lambda: DaliBackend(root / "still.png"))

    h264 = _clip(root, "h264", 0, codec="h264")
    e = _expect_error("unsupported", h264, lambda: DaliBackend(h264))
    assert "h264" in e.reason and "CPU" in e.reason

    b = DaliBackend(good)
    e = _expect_error("out_of_range", good, lambda: b.get_frames([3, 40]))
    assert e.reason == "frame index 40 out of range: the video has 30 frames"
    _expect_error("out_of_range", good, lambda: b.get_frames([-1]))
    # the index announces more frames than the file has (a file changed after indexing)
    _expect_error("truncated", good, lambda: DaliBackend(good, num_frames=40))
    # ... and if the caller's pts are trusted, DALI itself refuses the index instead of padding with black
    b40 = DaliBackend(good, num_frames=40, pts=[k / 25 for k in range(40)])
    e = _expect_error("out_of_range", good, lambda: b40.get_frames([35]))
    assert "DALI finds 30 frames" in e.reason

    # one packet's payload replaced: frames before it decode, a request across it fails with DALI's message
    rng = np.random.default_rng(0)

    def garble(k, p):
        if k != 10:
            return p
        q = av.Packet(rng.integers(0, 256, p.size, dtype=np.uint8).tobytes())
        q.pts, q.dts, q.time_base = p.pts, p.dts, p.time_base
        return q

    bad = _remux(good, root / "badpacket.webm", garble)
    bb = DaliBackend(bad)
    assert bb.get_frames([0, 5])[0].shape == (2, 48, 64, 3)
    e = _expect_error("corrupt", bad, lambda: bb.get_frames([5, 20]))
    assert "DALI: " in e.reason and "Failed to send packet" in e.reason
    # the pipeline that raised was replaced: decoding goes on
    assert torch.equal(b.get_frames([4])[0], DaliBackend(good).get_frames([4])[0])

    # a file cut in the middle: what is there decodes like PyAV decodes it
    (root / "cut.webm").write_bytes(data[: len(data) // 2])
    cut = DaliBackend(root / "cut.webm")
    same, _ = _pyav(root / "cut.webm", DALI_SWS)
    assert 0 < cut.num_frames == len(same) < 30
    frames, _ = cut.get_frames(list(range(cut.num_frames)))
    assert max(_mad(f, s) for f, s in zip(frames.numpy(), same)) < 1.5


def test_reads_the_stream_sf2t_reads_or_refuses(root):
    """fn.decoders.video takes no stream index (DALI 2.4 reads the stream FFmpeg ranks best from the header: a
    default-flagged one first; cover pictures are not skipped). A file with other video streams is read where DALI
    surely reads sf2t's stream (the first that is not a cover picture): frames equal PyAV's of that stream, bit for
    bit. Others are refused, naming the stream DALI may read and the decoders that read sf2t's. Before, any file
    with two real video streams was refused, and a cover picture DALI decodes (MJPEG) before the video was not."""
    src = _write(root / "src_cover.webm", 12, 64, 48)
    idx = [9, 0, 5, 5, 3]
    read = [
        media.cover_last(src, root / "png_last.mp4"),  # FFmpeg's layout: the video, then the cover
        media.cover_last(src, root / "mjpeg_last.mp4", codec="mjpeg"),
        media.cover_first(src, root / "png_first.mp4"),  # before the video, in a codec DALI never decodes
        media.two_video_streams(root / "first_default.webm", codec="libvpx-vp9", default=0),
    ]
    for path in read:
        ref, ref_pts = _pyav(path, DALI_SWS)  # (PyAV's video=0: the first video stream that is not a cover picture)
        b = DaliBackend(path)
        assert b.num_frames == len(ref)
        frames, pts = b.get_frames(idx)
        np.testing.assert_array_equal(frames.numpy(), ref[idx], err_msg=str(path))
        np.testing.assert_allclose(pts.numpy(), [ref_pts[k] for k in idx], rtol=0, atol=1e-9)
    refused = [
        (media.two_video_streams(root / "two.webm", codec="libvpx-vp9"), 0, "stream 1 is flagged default and stream 0"),
        (media.two_video_streams(root / "neither.webm", codec="libvpx-vp9", default=None), 0, "neither is flagged"),
        (media.cover_first(src, root / "mjpeg_first.mp4", codec="mjpeg"), 1, "it comes first, in a codec DALI decodes"),
    ]
    for path, ours, why in refused:
        e = _expect_error("unsupported", path, lambda p=path: DaliBackend(p))
        assert f"instead of stream {ours}, the one sf2t reads" in e.reason and why in e.reason, e.reason
        assert f"decoder=pyav or torchcodec reads stream {ours}" in e.reason


def test_auto_goes_on_to_the_next_decoder_for_a_file_dali_refuses(root, monkeypatch):
    """decoder="auto" that picks DALI (as on a GPU) for a file DALI refuses as unsupported (here an MJPEG cover
    picture before the video) opens it with the decoder it would have picked without DALI: the same frames as
    decoder="pyav", not a failed video. A file DALI reads stays with DALI."""
    from sf2t.video import backends

    real = backends.choose_decoder

    def dali_first(info, device="cpu", *, have=None, **kw):
        have = list(backends.available_decoders() if have is None else have)
        return ("dali", "test: DALI first") if "dali" in have else real(info, device, have=have, **kw)

    monkeypatch.setattr(backends, "choose_decoder", dali_first)
    src = _write(root / "src_auto.webm", 8, 64, 48)
    refused = media.cover_first(src, root / "auto_mjpeg_first.mp4", codec="mjpeg")
    with backends.open_decoder(refused, "auto") as dec, backends.open_decoder(refused, "pyav") as ref:
        assert dec.name != "dali"
        got, want = dec.get_frames([5, 0, 7])[0], ref.get_frames([5, 0, 7])[0]
        assert torch.equal(got, want)
    with backends.open_decoder(src, "auto") as dec:
        assert dec.name == "dali"


def test_several_video_streams_without_pyav_are_refused(root, monkeypatch):
    """Without PyAV (torchcodec shows no stream flags) a file with several video streams, a cover picture counted, is
    refused: which one DALI reads cannot be told (before, it was read, whichever stream DALI chose)."""
    pytest.importorskip("torchcodec")
    path = media.cover_last(_write(root / "src_nopyav.webm", 4, 64, 48), root / "nopyav.mp4")
    find_spec = dali_mod.importlib.util.find_spec
    hide_av = lambda name, *a: None if name == "av" else find_spec(name, *a)  # noqa: E731
    monkeypatch.setattr(dali_mod.importlib.util, "find_spec", hide_av)
    e = _expect_error("unsupported", path, lambda: DaliBackend(path))
    assert "2 video streams (cover pictures counted)" in e.reason and "pip install av" in e.reason


def test_no_dali_is_no_decoder(clips, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *a, **kw):
        if name.startswith("nvidia.dali"):
            raise ImportError("No module named 'nvidia.dali'")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    e = _expect_error("no_decoder", clips[0], lambda: DaliBackend(clips[0]))
    assert "pip install nvidia-dali-cuda130" in e.reason


# ---------------------------------------------------------------------------------------------------
# 5. the GPU (NVDEC via the "mixed" backend)


@pytest.mark.gpu
def test_cuda_h264(root):
    path = make_clip(root / "gpu_h264", 3, codec="h264", width=128, height=96, fps=25, seconds=1.2, gop=8)["path"]
    ref, ref_pts = _pyav(path)
    n = len(ref)
    b = DaliBackend(path, device="cuda")
    assert b.num_frames == n
    idx = [n - 1, 0, 7, 7, 15, 3]
    frames, pts = b.get_frames(idx)
    assert frames.device.type == "cuda" and frames.dtype == torch.uint8 and frames.shape == (len(idx), 96, 128, 3)
    assert pts.device.type == "cpu"
    np.testing.assert_allclose(pts.numpy(), [ref_pts[k] for k in idx], rtol=0, atol=1e-9)
    for row, k in zip(frames.cpu().numpy(), idx):
        own = _mad(row, ref[k])
        for j in (k - 2, k - 1, k + 1, k + 2):
            if 0 <= j < n:
                assert own < _mad(row, ref[j]), (k, j)
        assert own < 6.0, (k, own)  # NVDEC + DALI's CUDA colour conversion vs swscale: not measured yet
    assert b.get_frames([])[0].device.type == "cuda"
