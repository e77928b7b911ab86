"""Probe a video file: what the index records and what planners and decoders need to know.

The probe demuxes the video stream's packets (the first video stream that is not a cover picture; no decoding, a few
ms per minute of video) to count the frames exactly and read their presentation timestamps and keyframes, then
decodes the first frame to prove the stream decodes and to read the rotation (the first 32 where B-frames may carry
decode-order timestamps: ``REORDERING_CODECS``). ``verify=True`` decodes every frame and records the ones the
decoder flags as corrupt (ffmpeg conceals broken slices and returns a damaged picture; torchcodec gives no
sign of it, so the index is the place to find them). Files no backend reads frame-exactly are refused here, as the
backends refuse them, so that an ok line in the index is a file they decode: timestamps that do not fix the frame
order (missing, repeated, or in decode order) and 8-bit paletted video.

PyAV does the probing when installed (it exposes packet keyframe flags, corrupt-frame flags and side data);
torchcodec's metadata is the fallback (:func:`sf2t.video.tc.tc_probe`, which refuses the same files where torchcodec
can tell). Neither is imported at module import. torch is not imported either:
``sf2t index`` worker processes start fast.
"""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, NamedTuple

from sf2t.video.errors import VideoError, first_line

__all__ = [
    "VideoInfo",
    "probe",
    "check_file",
    "check_frame_order",
    "check_pixel_format",
    "IMAGE_FORMATS",
    "Deadline",
]

# libavformat demuxers that read single images (a PNG opens as a 1-frame "video"): not videos for sf2t.
IMAGE_FORMATS = (
    "image2",
    "png_pipe",
    "jpeg_pipe",
    "bmp_pipe",
    "webp_pipe",
    "tiff_pipe",
    "gif_pipe",
    "pam_pipe",
    "pgm_pipe",
    "ppm_pipe",
    "qoi_pipe",
    "jpegxl_pipe",
    "svg_pipe",
    "dpx_pipe",
    "exr_pipe",
    "j2k_pipe",
)


@dataclass(frozen=True)
class VideoInfo:
    """One video's metadata. Frames are counted in presentation order of the first video stream; ``width`` and
    ``height`` are the displayed size (after ``rotation``, degrees counter-clockwise, as decoders return it)."""

    path: str
    num_frames: int
    fps: float  # average rate: (frames - 1) / (last pts - first pts) when known
    width: int
    height: int
    duration: float  # seconds
    codec: str
    container: str = ""
    pix_fmt: str = ""
    bit_depth: int = 8
    rotation: int = 0
    vfr: bool = False  # frame durations differ by more than 5 % (and a time-base tick)
    keyframe_interval: float | None = None  # mean frames between keyframes (presentation order)
    start: float = 0.0  # pts of frame 0, seconds
    size: int = 0  # bytes, with mtime_ns: the index reuses an entry when both are unchanged
    mtime_ns: int = 0
    corrupt_frames: tuple[int, ...] = field(default=())  # frames the decoder flagged (verify=True only)
    verified: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["corrupt_frames"] = list(self.corrupt_frames)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VideoInfo:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        missing = [k for k in missing if k not in kw]
        if missing:
            raise ValueError(f"{d.get('path', '?')}: video metadata lacks {', '.join(missing)}")
        kw["corrupt_frames"] = tuple(kw.get("corrupt_frames") or ())
        return cls(**kw)


class Deadline:
    """A per-file time limit checked between packets and frames (``seconds=None``: no limit)."""

    def __init__(self, path: str, seconds: float | None, what: str = "probing"):
        self.path, self.seconds, self.what = path, seconds, what
        self.end = None if seconds is None else time.monotonic() + float(seconds)

    def check(self) -> None:
        if self.end is not None and time.monotonic() > self.end:
            raise VideoError(
                self.path, f"{self.what} took longer than the {self.seconds:g} s limit per file", "timeout"
            )


def check_file(path: str | os.PathLike) -> str:
    """The checks every reader makes before handing a path to a decoder: exists, regular, non-empty, readable."""
    path = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    if not os.path.exists(path):
        if os.path.islink(path):
            raise VideoError(
                path, "a symbolic link that leads nowhere (its target is missing, or a link loop)", "missing"
            )
        raise VideoError(path, "file not found", "missing")
    if not os.path.isfile(path):
        raise VideoError(path, "not a regular file", "unreadable")
    try:
        with open(path, "rb") as f:
            head = f.read(1)
    except PermissionError as e:
        raise VideoError(path, f"permission denied ({e.strerror})", "permission") from e
    except OSError as e:
        raise VideoError(path, f"cannot read ({e.strerror})", "unreadable") from e
    if not head:
        raise VideoError(path, "file is empty (0 bytes)", "empty")
    return path


def open_hint(path: str) -> str:
    if path.lower().endswith((".mp4", ".mov", ".m4v", ".3gp")):
        return " (for MP4/MOV this usually means the index (moov) is missing: a truncated or unfinished file)"
    return " (truncated, corrupt, or not a video container)"


def _stat(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return int(st.st_size), int(st.st_mtime_ns)


def _rate_stats(times: list[float], tick: float) -> tuple[float, bool]:
    """(average fps, variable frame rate?) from sorted frame times in seconds."""
    if len(times) < 2 or times[-1] <= times[0]:
        return 0.0, False
    fps = (len(times) - 1) / (times[-1] - times[0])
    d = sorted(b - a for a, b in zip(times, times[1:]))
    med = d[len(d) // 2]
    vfr = (d[-1] - d[0]) > max(0.05 * med, 1.5 * tick)
    return fps, vfr


def _keyframe_interval(keys: list[bool]) -> float | None:
    pos = [i for i, k in enumerate(keys) if k]
    if not pos:
        return None
    if len(pos) == 1:
        return float(len(keys))
    return (pos[-1] - pos[0]) / (len(pos) - 1)


# ---------------------------------------------------------------------------------------------------
# PyAV


def is_cover_picture(stream) -> bool:
    """A cover picture (an "attached picture": one still image in a video stream's clothes, in music and some video
    files), not a video."""
    return bool(int(stream.disposition) & 0x400)  # AV_DISPOSITION_ATTACHED_PIC


# FFmpeg's tty demuxer reads a file with one of these extensions (when nothing else claims it) as ANSI art: a pal8
# "video" of its text, which was refused as a paletted video to convert (ffmpeg -i notes.txt ...)
TEXT_EXTENSIONS = (".ans", ".art", ".asc", ".diz", ".ice", ".nfo", ".txt", ".vt")


def text_error(path: str, fmt: str | None = None) -> VideoError | None:
    """The ``not_video`` error of a text file FFmpeg reads as ANSI art (its ``tty`` demuxer): ``fmt``, the demuxer PyAV
    opened ``path`` with, else (for torchcodec, which does not name it) PyAV asked for a name with a text extension
    only; None for anything else."""
    ext = os.path.splitext(path)[1].lower()
    if fmt is None and ext in TEXT_EXTENSIONS and importlib.util.find_spec("av") is not None:
        import av

        try:
            with av.open(path) as c:
                fmt = c.format.name
        except Exception:  # noqa: BLE001 - not opened: the caller's own open says why
            return None
    if fmt != "tty":
        return None
    return VideoError(path, f"a text file{f' ({ext})' if ext else ''}, not a video", "not_video")


def av_open(path: str):
    """(container, the video stream) with PyAV, or a ``VideoError`` that says what the file is instead. The video stream
    is the first one that is not a cover picture: the one every backend reads (``tc_open`` makes torchcodec follow
    it; its default, the "best" stream, is the default-flagged one where another is flagged)."""
    import av

    try:
        container = av.open(path)
    except PermissionError as e:
        raise VideoError(path, f"permission denied ({e})", "permission") from e
    except Exception as e:
        raise VideoError(path, f"cannot open as a video: {first_line(e)}{open_hint(path)}", "unreadable") from e
    fmt = container.format.name
    if fmt in IMAGE_FORMATS or fmt.endswith("_pipe"):
        container.close()
        raise VideoError(path, f"an image file ({fmt.replace('_pipe', '')}), not a video", "not_video")
    text = text_error(path, fmt)
    if text is not None:
        container.close()
        raise text
    videos = [s for s in container.streams.video if not is_cover_picture(s)]
    if not videos:
        other = [
            f"{'cover picture' if s.type == 'video' else s.type}: {s.codec_context.name}"
            for s in container.streams
            if s.codec_context is not None
        ]
        container.close()
        what = f" (only {', '.join(other)})" if other else ""
        raise VideoError(path, f"no video stream{what}", "no_video")
    return container, videos[0]


class Demuxed(NamedTuple):
    """What :func:`demux_index` found in the first video stream's packets."""

    pts: list[int]  # presentation timestamps of the frames, sorted (stream time-base units)
    keys: list[bool]  # keyframe flags, in the same (presentation) order
    untimed: int  # packets without a timestamp
    discarded: int  # packets the container marks for discarding
    reordered: bool  # timestamps go back somewhere in decode (file) order: B-frames stored with their own times
    offset: int = 0  # ticks to add to ``pts`` for the frames' presentation times (:func:`avi_offset`)

    def seconds(self, time_base) -> list[float]:
        """The frames' presentation times in seconds (``pts`` shifted by ``offset``, times ``time_base``)."""
        tb = float(time_base) if time_base else 0.0
        return [(p + self.offset) * tb for p in self.pts]


def avi_offset(container, stream, pts: list[int], dts: list[int | None]) -> int:
    """Ticks to add to PyAV's pts of an AVI stream for its presentation times (0 for other containers).

    AVI stores no pts: a frame's time is its chunk's place in the stream (the dts), delayed by the codec's reorder
    depth where it has B-frames; libavformat guesses the pts from these. PyAV's FFmpeg (8.x) guesses one frame of
    delay for H.264 with none (libx264 without B-frames: pts = dts + 1 for every packet, the decoder's reorder depth
    0), so every frame came one frame late, where FFmpeg 5.1 (torchcodec's, the ffmpeg command line's) has frame 0 at
    dts 0. Where the sorted pts are the sorted dts plus one constant (no frame is timed apart from the chunks), the
    first frame is put at the first dts plus the reorder depth the decoder reports, as FFmpeg 5.1 does: 0 for that
    H.264, 1 for MPEG-4 Part 2 with B-frames (where both FFmpegs agree). Other streams keep PyAV's times."""
    if getattr(container.format, "name", "") != "avi" or not pts or len(dts) != len(pts) or None in dts:
        return 0
    ticks = sorted(int(d) for d in dts)  # (pts arrive sorted)
    if len({p - d for p, d in zip(pts, ticks)}) != 1:
        return 0
    cc = stream.codec_context
    depth = getattr(cc, "reorder_depth", None)  # (an int; an older PyAV has none, and an int has_b_frames)
    depth = int(cc.has_b_frames if depth is None else depth)
    return ticks[0] + depth - pts[0]


def demux_index(path: str, container, stream, deadline: Deadline | None = None) -> Demuxed:
    """Sorted presentation timestamps and keyframe flags of every frame, by demuxing (:class:`Demuxed`).

    Packets the container marks for discarding are left out: an MP4/MOV edit list that starts after a keyframe (every
    ``ffmpeg -ss T -c copy`` cut, many phone videos) keeps the packets before its start for decoding only, and the
    decoder drops their frames (ffmpeg, PyAV and torchcodec all do), so they are not frames of the video."""
    rows: list[tuple[int, bool]] = []
    dts: list[int | None] = []
    untimed = discarded = 0
    prev, reordered = None, False
    try:
        for i, pkt in enumerate(container.demux(stream)):
            if deadline is not None and i % 256 == 0:
                deadline.check()
            if pkt.size == 0:  # the flush packet
                continue
            if pkt.is_discard:
                discarded += 1
                continue
            ts = pkt.pts if pkt.pts is not None else pkt.dts
            if ts is None:
                untimed += 1
                continue
            rows.append((int(ts), bool(pkt.is_keyframe)))
            dts.append(pkt.dts)
            reordered = reordered or (prev is not None and ts < prev)
            prev = ts
    except VideoError:
        raise
    except Exception as e:
        raise VideoError(
            path,
            f"the container breaks off after {len(rows)} frames ({first_line(e)}): truncated or corrupt",
            "truncated",
        ) from e
    rows.sort()
    pts = [r[0] for r in rows]
    offset = avi_offset(container, stream, pts, dts)
    return Demuxed(pts, [r[1] for r in rows], untimed, discarded, reordered, offset)


# Codecs that may store frames out of presentation order (B-frames). A stream of one that the decoder reorders
# (``has_b_frames``: its reorder delay) but whose timestamps never go back in file order has timestamps in decode order
# (a stream copy from AVI, MPEG-PS or a raw stream by ffmpeg 5.1 writes pts = dts; AVI stores no pts at all), or
# declares a delay it does not use: then the decoder hands frames out with earlier timestamps than the frames before
# them, and no reader can tell frame k by its timestamp (torchcodec and the pyav backend returned other frames). The
# first ORDER_CHECK_FRAMES decoded frames tell which. (No delay: frames leave the decoder in file order, so the order
# of their timestamps is the file's: nothing to check, nothing decoded.)
REORDERING_CODECS = frozenset("h264 hevc vvc mpeg4 mpeg1video mpeg2video vc1 wmv3 cavs rv30 rv40".split())
ORDER_CHECK_FRAMES = 32


def order_unchecked(stream, demuxed: Demuxed) -> bool:
    """Whether the decoder's output order must be checked against the timestamps (see ``REORDERING_CODECS``)."""
    cc = stream.codec_context
    return cc.name in REORDERING_CODECS and bool(cc.has_b_frames) and not demuxed.reordered


def decode_order_error(path: str) -> VideoError:
    return VideoError(
        path,
        "timestamps in decode order, not presentation order (B-frames stored without their own times, e.g. by a "
        "stream copy from AVI, MPEG-PS or a raw stream): frame k cannot be found by its timestamp; re-encode it "
        "(ffmpeg -i IN -c:v libx264 OUT.mp4)",
        "corrupt",
    )


def frames_out_of_order(path: str, limit: int = ORDER_CHECK_FRAMES) -> bool:
    """Decode the first ``limit`` frames of ``path``'s first video stream: does one come with an earlier timestamp than
    the one before it?"""
    container, stream = av_open(path)
    try:
        last, n = None, 0
        for frame in container.decode(stream):
            if frame.pts is not None:
                if last is not None and frame.pts < last:
                    return True
                last = frame.pts
            n += 1
            if n >= limit:
                break
        return False
    except Exception as e:  # a damaged file: the decode that asks for the frame says so
        raise VideoError(path, f"the first frames do not decode ({first_line(e)})", "corrupt") from e
    finally:
        container.close()


def check_frame_order(path: str, pts: list[int], untimed: int, container=None) -> None:
    """Refuse a stream whose presentation order the timestamps do not fix (what :func:`demux_index` found): packets
    without a timestamp, or several frames sharing one. A frame index would then depend on the reader (torchcodec
    returned neighbouring frames for such files): the probe and every backend refuse them alike."""
    if untimed:
        raw = container is not None and container.format.name in _RAW_STREAMS
        # (not a stream copy: ffmpeg 5.1's "-r 25 -i IN.h264 -c copy OUT.mp4" gives B-frames decode-order timestamps)
        hint = " (a raw stream without a container: re-encode it into one, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4)"
        hint = hint if raw else ""
        what = "1 packet carries" if untimed == 1 else f"{untimed} packets carry"
        raise VideoError(path, f"{what} no timestamp: frame order is ambiguous{hint}", "corrupt")
    if len(set(pts)) != len(pts):
        same = len(pts) - len(set(pts))
        raise VideoError(
            path, f"several frames share one timestamp ({same} repeats): frame order is ambiguous", "corrupt"
        )


def check_pixel_format(path: str, pix_fmt: str | None) -> None:
    """Refuse what no backend decodes right: 8-bit paletted video (pal8: raw or RLE AVI/MOV) carries its palette in
    the first packet only, so frames decoded after a seek come out black (the pyav backend seeks for every request of
    such an all-keyframe stream; torchcodec gave black frames from the first), silently."""
    if pix_fmt == "pal8":
        raise VideoError(
            path,
            "8-bit paletted video (pal8): its palette comes with the first packet only, so decoders return black "
            "frames after a seek; convert it (ffmpeg -i IN -c:v libx264 -pix_fmt yuv444p OUT.mp4)",
            "unsupported",
        )


# libavformat demuxers of raw elementary streams: no container, no timestamps
_RAW_STREAMS = ("h264", "hevc", "vvc", "m4v", "mpegvideo", "h261", "h263", "cavsvideo", "vc1", "obu", "avs2", "avs3")


def _bit_depth(pix_fmt: str) -> int:
    try:
        import av

        return int(av.VideoFormat(pix_fmt).components[0].bits)
    except Exception:
        return 8


def _av_probe(path: str, *, verify: bool, deadline: Deadline) -> VideoInfo:
    container, stream = av_open(path)
    try:
        cc = stream.codec_context
        codec, pix_fmt = cc.name, cc.pix_fmt or ""
        tb = float(stream.time_base) if stream.time_base else 0.0
        demuxed = demux_index(path, container, stream, deadline)
        pts, keys, untimed, discarded = demuxed.pts, demuxed.keys, demuxed.untimed, demuxed.discarded
        n = len(pts) + untimed
        header = int(stream.frames or 0)
        if n == 0:
            raise VideoError(path, "the video stream has no frames", "no_frames")
        check_frame_order(path, pts, untimed, container)  # as the backends do: an ok line is a file they decode
        check_pixel_format(path, pix_fmt)
        if header and n + discarded < header:
            raise VideoError(
                path, f"the header announces {header} frames but only {n} can be read: truncated file", "truncated"
            )
        times = demuxed.seconds(tb)
        fps, vfr = _rate_stats(times, tb)
        if fps <= 0:
            fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        if stream.duration is not None and tb:
            duration = float(stream.duration * tb)
        elif len(times) >= 2:
            duration = times[-1] - times[0] + (times[-1] - times[0]) / (len(times) - 1)
        elif container.duration is not None:
            duration = container.duration / 1e6
        else:
            duration = 1.0 / fps if fps else 0.0
        # Decode from the start: proves the stream decodes and gives the rotation (display matrix). With verify,
        # decode packet by packet, so a damaged packet marks its frame corrupt and decoding goes on after it.
        try:
            container.seek(0, stream=stream)
        except Exception:  # a format that cannot seek: read it again from the start
            container.close()
            container, stream = av_open(path)
        index_of = {p: i for i, p in enumerate(pts)}
        rotation, width, height, corrupt, decoded = None, 0, 0, set(), 0
        check_order, last, out_of_order = order_unchecked(stream, demuxed), None, False
        for i, pkt in enumerate(container.demux(stream)):
            if i % 32 == 0:
                deadline.check()
            try:
                frames = pkt.decode()
            except Exception as e:
                if not verify:
                    raise VideoError(path, f"the first frames do not decode ({first_line(e)})", "corrupt") from e
                ts = pkt.pts if pkt.pts is not None else pkt.dts
                corrupt.add(index_of.get(ts, -1))
                continue
            for frame in frames:
                if rotation is None:
                    rotation = int(round(getattr(frame, "rotation", 0) or 0)) % 360
                    width, height = frame.width, frame.height
                decoded += 1
                if getattr(frame, "is_corrupt", False):
                    corrupt.add(index_of.get(frame.pts, -1))
                if check_order and frame.pts is not None:
                    out_of_order = out_of_order or (last is not None and frame.pts < last)
                    last = frame.pts
            if out_of_order:
                raise decode_order_error(path)
            if rotation is not None and not verify and not (check_order and decoded < ORDER_CHECK_FRAMES):
                break
        if rotation is None:
            raise VideoError(path, "no frame decodes", "corrupt")
        corrupt.discard(-1)
        if verify and decoded + len(corrupt) < n:
            raise VideoError(path, f"only {decoded} of {n} frames decode: truncated or corrupt", "truncated")
        if rotation in (90, 270):
            width, height = height, width
        size, mtime = _stat(path)
        return VideoInfo(
            path=path,
            num_frames=n,
            fps=round(fps, 6),
            width=width,
            height=height,
            duration=round(duration, 6),
            codec=codec,
            container=container.format.name,
            pix_fmt=pix_fmt,
            bit_depth=_bit_depth(pix_fmt),
            rotation=rotation,
            vfr=vfr,
            keyframe_interval=_keyframe_interval(keys),
            start=times[0] if times else 0.0,
            size=size,
            mtime_ns=mtime,
            corrupt_frames=tuple(sorted(corrupt)),
            verified=verify,
        )
    finally:
        container.close()


def probe(
    path: str | os.PathLike, *, verify: bool = False, timeout: float | None = 60.0, prober: str = "auto"
) -> VideoInfo:
    """Probe one file. Raises ``VideoError`` (missing, empty, permission, not_video, no_video, no_frames,
    truncated, corrupt, unreadable, timeout, no_decoder) with a reason a person can act on.

    ``verify``: decode every frame (slow: a full decode) and record the frames the decoder flags as corrupt.
    ``timeout``: seconds allowed for this file (checked between packets and frames).
    ``prober``: ``auto`` (PyAV, else torchcodec), ``pyav`` or ``torchcodec``."""
    path = check_file(path)
    deadline = Deadline(path, timeout)
    have_av = importlib.util.find_spec("av") is not None
    have_tc = importlib.util.find_spec("torchcodec") is not None
    if prober == "auto":
        prober = "pyav" if have_av else "torchcodec" if have_tc else ""
    if prober not in ("pyav", "torchcodec"):
        if prober:
            raise ValueError(f"prober must be 'auto', 'pyav' or 'torchcodec', got {prober!r}")
        raise VideoError(path, "no video reader installed (pip install av, or torchcodec)", "no_decoder")
    if (prober == "pyav" and not have_av) or (prober == "torchcodec" and not have_tc):
        raise VideoError(path, f"prober={prober!r} asked for but it is not installed", "no_decoder")
    if prober == "torchcodec":
        from sf2t.video.tc import tc_probe

        return tc_probe(path, verify=verify, deadline=deadline)
    return _av_probe(path, verify=verify, deadline=deadline)


def __getattr__(name: str):
    """``tc_open`` and ``image_kind`` live in :mod:`sf2t.video.tc` (which imports this module); kept importable here."""
    if name in ("tc_open", "image_kind"):
        from sf2t.video import tc

        return getattr(tc, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
