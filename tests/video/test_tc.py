"""torchcodec's stream choice, its fallback where exact mode cannot open a file, and the torchcodec-only probe against
the PyAV probe. Each torchcodec path runs twice: with PyAV installed, and as where it is not (the GPU machine), PyAV
hidden once the test has taken its reference from it."""

from __future__ import annotations

import importlib.util

import pytest
import torch

pytest.importorskip("av")
pytest.importorskip("torchcodec")

from sf2t.video import open_decoder  # noqa: E402
from sf2t.video import tc as tc_mod  # noqa: E402
from sf2t.video.errors import VideoError  # noqa: E402
from sf2t.video.probe import av_open  # noqa: E402
from sf2t.video.probe import probe as probe_with  # noqa: E402
from tests.video import media  # noqa: E402

N = 24  # frames of the test clip: 3 GOPs of 8, with B-frames, so random access seeks and reorders


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("tc")
    frames = media.moving_frames(N, 48, 64)
    normal = media.encode(d / "normal.mp4", frames, gop=8, bframes=2)
    fast = media.encode(d / "fast.mp4", frames, gop=8, faststart=True)
    (d / "empty.mp4").write_bytes(b"")
    (d / "notes.mp4").write_text("not a video\n" * 40)
    return {
        "normal": normal,
        "cover_first": media.cover_first(normal, d / "cover_first.mp4"),
        "cover_last": media.cover_last(normal, d / "cover_last.mp4"),
        "audio_only": media.audio_only(d / "audio.m4a"),
        "audio_with_cover": media.audio_with_cover(d / "song.m4a"),
        "no_frames": media.no_frames(d / "no_frames.mkv"),
        "empty": d / "empty.mp4",
        "truncated": media.truncated(normal, d / "truncated.mp4"),  # the moov (at the end) cut off
        "truncated_faststart": media.truncated(fast, d / "truncated_fast.mp4", 0.6),  # the moov kept, frames cut
        "not_video": d / "notes.mp4",
        "odd_size": media.encode(d / "odd.webm", media.moving_frames(12, 49, 65), codec="libvpx-vp9"),
        "two_videos": media.two_video_streams(d / "two.mkv"),
    }


@pytest.fixture(params=["with_pyav", "without_pyav"])
def hide_pyav(request, monkeypatch):
    """A call that, for ``without_pyav``, makes PyAV look not installed from then on (the test takes what it needs
    from PyAV first): sf2t then tells cover pictures by their frames and finds frame times by decoding."""
    find_spec = importlib.util.find_spec

    def hide():
        if request.param == "without_pyav":
            monkeypatch.setattr(
                importlib.util, "find_spec", lambda name, *a: None if name == "av" else find_spec(name, *a)
            )

    return hide


INDICES = [N - 1, 0, 7, 7, 8, 9, 15, 3, 16]


@pytest.mark.parametrize("name", ["cover_first", "cover_last", "normal"])
def test_torchcodec_backend_returns_the_pyav_backend_frames_beside_a_cover_picture(files, name, hide_pyav):
    """An MP4 whose cover picture (an attached picture) comes before the video: torchcodec 0.17's exact mode did not
    open it ("Could not seek file to pts=0": its scan ends with a seek of stream 0, the picture), so the torchcodec
    backend refused the file as unreadable. Now it reads the video stream (1) in approximate mode by the frames' exact
    times (PtsDecoder), and returns the pyav backend's frames and timestamps, bit for bit, for a random index set
    with repeats across GOPs; a cover after the video (and no cover) keep exact mode."""
    path = files[name]
    with open_decoder(path, "pyav") as dec:
        want, want_pts = dec.get_frames(INDICES)
        want_back = dec.get_frames([2, 1, 0])[0]
    hide_pyav()
    with open_decoder(path, "torchcodec") as dec:
        assert dec.num_frames == N
        assert isinstance(dec.dec, tc_mod.PtsDecoder) == (name == "cover_first")
        if name == "cover_first":  # frame times by PyAV's demuxer (keyframes known), else by a decode (not known)
            assert (dec.dec.keyframes is None) == (importlib.util.find_spec("av") is None)
        assert dec.dec.stream_index == (1 if name == "cover_first" else 0)
        got, pts = dec.get_frames(INDICES)
        back, _ = dec.get_frames([2, 1, 0])  # backwards on the same decoder
    assert torch.equal(got, want) and torch.equal(back, want_back)
    torch.testing.assert_close(pts, want_pts, atol=1e-9, rtol=0)


def test_fallback_refuses_a_frame_torchcodec_finds_at_another_time(files, monkeypatch):
    """Where torchcodec answers a time with another frame than the one asked for (its seeks miss), the torchcodec
    backend raises a VideoError that says so, not torchcodec's RuntimeError nor a wrong frame."""
    with open_decoder(files["cover_first"], "torchcodec") as dec:
        times = dec.dec.times
        monkeypatch.setattr(dec.dec, "times", [t + 0.02 for t in times[:5]] + times[5:])  # half a frame late
        with pytest.raises(VideoError, match=r"decoding failed \(RuntimeError: torchcodec returned the frame at") as e:
            dec.get_frames([3])
        assert e.value.kind == "corrupt"


M = 20  # frames of the time-base clips


@pytest.fixture(scope="module")
def timebases(tmp_path_factory):
    """Clips whose frame times are not whole multiples of 1/N s or whose frames carry no duration for torchcodec:
    name -> (the file PtsDecoder reads, the same video exact mode opens: where its frame times come from)."""
    import shutil
    import subprocess
    from fractions import Fraction

    d = tmp_path_factory.mktemp("tb")
    frames = media.moving_frames(M, 48, 64)
    ntsc = Fraction(30000, 1001)
    # PyAV's MP4 at a 1/30000 codec time base: 1001 ticks a frame for PyAV (FFmpeg 8.1), no packet durations for
    # FFmpeg 5.1 (torchcodec's): every frame lasts 0 s there
    mp4 = media.encode(
        d / "ntsc.mp4",
        frames,
        rate=ntsc,
        time_base=Fraction(1, 30000),
        pts=[i * 1001 for i in range(M)],
        gop=8,
        bframes=2,
    )
    out = {"mp4_1_30000_cover_first": (media.cover_first(mp4, d / "ntsc_cover_first.mp4"), mp4)}
    # AVIs PyAV writes: frame 0 at one frame's time for PyAV, at 0 for torchcodec
    for name, tb, rate in (("avi_1001_30000", Fraction(1001, 30000), ntsc), ("avi_1_1", Fraction(1), 1)):
        path = media.encode(d / f"{name}.avi", frames, rate=rate, time_base=tb, pts=list(range(M)), gop=8, fmt="avi")
        out[name] = (path, path)
    mkv = media.encode(d / "ntsc.mkv", frames, rate=ntsc, gop=8, bframes=2)  # 1/1000: 0, 33, 67, 100 ms
    out["mkv_1_1000"] = (mkv, mkv)
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:  # the header says the stream lasts until the last frame's time (3 s), not its end
        nut = d / "header_end.nut"
        cmd = [ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=1:duration=4", "-c:v", "libx264"]
        cmd += ["-preset", "ultrafast", "-g", "2", "-pix_fmt", "yuv420p", str(nut)]
        if subprocess.run(cmd, capture_output=True).returncode == 0:
            out["nut_last_frame_at_header_end"] = (nut, nut)
    return out


@pytest.mark.parametrize(
    "name", ["mp4_1_30000_cover_first", "avi_1001_30000", "avi_1_1", "mkv_1_1000", "nut_last_frame_at_header_end"]
)
def test_pts_decoder_returns_every_frame_of_other_time_bases(timebases, name, hide_pyav):
    """PtsDecoder (the stand-in for exact mode beside a cover picture) gives the pyav backend's frames, every one, in
    order and shuffled with repeats, and exact mode's timestamps, for NTSC rates and time bases other than 1/N. It
    refused a cover-first MP4 whose frames carry no duration for torchcodec ("torchcodec returned the frame at 0.033 s
    for frame 0": it asked for the frame played at a time, which a 0 s frame never is), refused a last frame at the
    header's end ("Invalid pts in seconds"), and gave frame k + 1 for frame k of an AVI whose timestamps PyAV's FFmpeg
    reads one frame later than torchcodec's."""
    from torchcodec.decoders import VideoDecoder

    if name not in timebases:
        pytest.skip("no ffmpeg command line to write the file")
    path, same = timebases[name]
    with open_decoder(path, "pyav") as ref:
        n = ref.num_frames
        order = list(range(n)) + [n - 1, 2, 2, 0, n // 2, 1]
        want, _ = ref.get_frames(order)
    want_pts = VideoDecoder(str(same), seek_mode="exact").get_frames_at(order).pts_seconds.to(torch.float64)
    index = _av_stream(path)
    hide_pyav()
    if name.endswith("cover_first"):  # the real path: exact mode cannot open it, the backend falls back
        with open_decoder(path, "torchcodec") as dec:
            assert isinstance(dec.dec, tc_mod.PtsDecoder) and dec.num_frames == n
            got, pts = dec.get_frames(order)
    else:
        dec = tc_mod.PtsDecoder(str(path), index, dimension_order="NHWC")
        assert len(dec.times) == n
        batch = dec.get_frames_at(order)
        got, pts = batch.data, batch.pts_seconds
    assert torch.equal(got, want)
    torch.testing.assert_close(pts, want_pts, atol=1e-9, rtol=0)


def _verdict(call):
    try:
        return call()
    except VideoError as e:
        return (e.kind, e.reason)


def _tc_stream(path):
    dec = tc_mod.tc_open(str(path), dimension_order="NHWC", seek_mode="exact")
    return dec.stream_index


def _av_stream(path):
    container, stream = av_open(str(path))
    index = int(stream.index)
    container.close()
    return index


@pytest.mark.parametrize(
    "name",
    [
        "normal",
        "cover_first",
        "cover_last",
        "audio_only",
        "audio_with_cover",
        "no_frames",
        "empty",
        "truncated",
        "truncated_faststart",
        "not_video",
        "odd_size",
        "two_videos",
    ],
)
def test_torchcodec_probe_agrees_with_the_pyav_probe(files, name, hide_pyav):
    """The torchcodec probe (sf2t's probe where PyAV is not installed) gives the PyAV probe's verdict: the same error
    kind and reason, or the same frame count, size, fps, duration, start, codec, pixel format, rotation, and the same
    stream. It was laxer: a cover-first MP4 was "unreadable", a file whose first stream has no frames too, an audio
    file's reason did not name what it holds, a music file's cover picture (without PyAV) was probed as the video and
    failed to decode, and an MP4 whose frames were cut off (its index kept) passed with the frames left.

    Deliberately not compared (torchcodec does not expose them): ``vfr``, ``keyframe_interval``, ``container``; and
    ``fps`` only agrees for constant-rate files (torchcodec's is frames / the stream's span, the PyAV probe's
    (frames - 1) / (last time - first time)), which these are."""
    path = files[name]
    by_av = _verdict(lambda: probe_with(str(path), prober="pyav"))
    av_stream = _verdict(lambda: _av_stream(path))
    hide_pyav()
    by_tc = _verdict(lambda: probe_with(str(path), prober="torchcodec"))
    if isinstance(by_av, tuple):
        assert by_tc == by_av
        return
    assert not isinstance(by_tc, tuple), by_tc
    fields = ("num_frames", "width", "height", "fps", "duration", "start", "codec", "pix_fmt", "rotation", "bit_depth")
    assert {f: getattr(by_tc, f) for f in fields} == {f: getattr(by_av, f) for f in fields}
    assert _tc_stream(path) == av_stream


def test_torchcodec_names_a_file_name_that_is_not_utf8(files, tmp_path):
    """A file whose name is not UTF-8 (Latin-1 bytes, held by Python as surrogates): torchcodec cannot take it; the
    reason said so and how to read it, not "Expected a value of type 'str' ... found type 'str'" and a truncated-MP4
    hint. PyAV opens it."""
    import os
    import shutil

    path = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9.mp4")
    shutil.copy(files["normal"], path)
    with pytest.raises(VideoError, match=r"file name is not valid UTF-8.*decoder=pyav") as e:
        tc_mod.tc_open(path)
    assert e.value.kind == "unreadable" and "moov" not in str(e.value)
    with open_decoder(path, "pyav") as dec:
        assert dec.num_frames == N


def test_auto_reads_a_file_name_that_is_not_utf8_with_pyav(files, tmp_path):
    """decoder="auto" picks PyAV for a file whose name is not UTF-8 (torchcodec refuses it): the video is read, with
    PyAV's frames, not lost to a VideoError."""
    import os
    import shutil

    from sf2t.video.backends import choose_decoder

    path = os.fsdecode(os.fsencode(str(tmp_path)) + b"/caf\xe9.mp4")
    shutil.copy(files["normal"], path)
    assert choose_decoder(None, "cpu", have=["torchcodec", "pyav"], path=path)[0] == "pyav"
    assert choose_decoder(None, "cpu", have=["torchcodec"], path=path)[0] == "torchcodec"  # (no PyAV: says why)
    with open_decoder(path, "auto") as dec, open_decoder(files["normal"], "pyav") as ref:
        assert dec.num_frames == N
        got, _ = dec.get_frames([0, 9, 23])
        want, _ = ref.get_frames([0, 9, 23])
    assert torch.equal(got, want)


def test_a_text_file_is_not_a_video_to_convert(files, tmp_path):
    """A .txt file (notes, a list of videos) is read by FFmpeg's tty demuxer as ANSI art: a pal8 "video" that sf2t
    index, every backend and sf2t throughput refused as "8-bit paletted video (pal8) ... convert it (ffmpeg -i IN
    ...)". It is a text file, not a video (not_video), for the probe and both backends; a real video whose name ends
    in .txt is still read (the contents decide, as FFmpeg decides)."""
    import shutil

    from sf2t.video.probe import probe

    notes = tmp_path / "notes.txt"
    notes.write_text('{"path": "a.mp4", "status": "ok"}\n' * 100)
    for call in (
        lambda: probe(str(notes)),
        lambda: open_decoder(notes, "pyav"),
        lambda: open_decoder(notes, "torchcodec"),
    ):
        with pytest.raises(VideoError, match=r"a text file \(\.txt\), not a video") as e:
            call()
        assert e.value.kind == "not_video"
    named = tmp_path / "clip.txt"
    shutil.copy(files["normal"], named)
    assert probe(str(named)).num_frames == probe(str(files["normal"])).num_frames
    with open_decoder(named, "torchcodec") as dec:
        assert dec.num_frames == N
