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
