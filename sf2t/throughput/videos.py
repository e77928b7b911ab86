"""Which videos ``sf2t throughput`` measures and how sf2t reads them: broken, short and unlike files left out (each with
its reason), and the window format (``--frames``)."""

from __future__ import annotations

from typing import Sequence

import torch

from sf2t._plural import counted
from sf2t.throughput.sampling import WINDOW, _tasks

# the verifying probe's time limit, in multiples of the video's duration (at least a minute): decoding every frame
# once, at no less than a tenth of real time (one 1280x720 H.264 thread here: about 15x real time)
VERIFY_SLOWDOWN = 10


def _said(why: dict) -> str:  # the first three, and how many more
    shown = "; ".join(f"{p}: {r}" for p, r in list(why.items())[:3])
    return shown + (f" (and {len(why) - 3} more)" if len(why) > 3 else "")


def select_videos(videos: Sequence[str], against: Sequence[str]) -> tuple[list, dict]:
    """(the probed videos to measure, ``{path: reason}`` of those left out): unreadable ones (every frame decoded
    once), ones shorter than a window and, with baselines (``against``), ones they cannot decode as sf2t does
    (:func:`_unlike`); each group said on stdout. None left: an error saying why."""
    from sf2t.video import probe
    from sf2t.video.errors import VideoError

    infos, unusable = [], {}  # a broken or short file is left out (and said), not the end of the run
    for p in videos:
        try:
            info = probe(p)
        except VideoError as e:
            unusable[str(p)] = e.reason
            continue
        if info.num_frames < WINDOW:
            unusable[info.path] = f"{counted(info.num_frames, 'frame')}, shorter than a {WINDOW}-frame window"
            continue
        try:  # every frame decoded once: a file broken past its header stopped the run in a pass or in the ceiling
            info = probe(p, verify=True, timeout=max(60.0, VERIFY_SLOWDOWN * info.duration))
        except VideoError as e:
            unusable[info.path] = e.reason
            continue
        infos.append(info)
    if not infos:
        raise ValueError(f"no usable video: {_said(unusable)}")
    if unusable:
        print(f"sf2t throughput: left out (not readable or too short): {_said(unusable)}")
    left_out = dict(unusable)
    if against:  # like for like only: what the baselines cannot decode as sf2t does is measured by none
        unlike = {i.path: why for i in infos if (why := _unlike(i))}
        infos = [i for i in infos if i.path not in unlike]
        if unlike:
            print(f"sf2t throughput: left out of the comparison: {_said(unlike)}")
        if not infos:
            raise ValueError(
                "no video the baselines decode as sf2t does (each one's reason above): measure sf2t alone with "
                "--against ''"
            )
        left_out.update(unlike)
    return infos, left_out


def _unlike(info) -> str:
    """Why the baselines cannot make sf2t's pixels from this video ("": they can)."""
    if info.rotation:
        return f"rotated {info.rotation} degrees (the baselines ignore the display rotation; sf2t turns frames upright)"
    if info.bit_depth > 8:
        return f"{info.bit_depth}-bit (PyAV and torchcodec convert it to RGB differently)"
    stream, default, first = _streams(info.path)
    if first != stream:
        return (
            f"a cover picture before the video (its first video stream, {first}, is an attached picture: "
            f"LLaMA-Factory-style reads it, as LLaMA-Factory's PyAV path takes the first video stream; sf2t reads "
            f"stream {stream})"
        )
    if stream != default:
        return (
            f"several video streams (sf2t and PyAV read stream {stream}, torchcodec's default, as qwen-vl-utils-style "
            f"opens it, is stream {default})"
        )
    if info.width % 2 or info.height % 2:
        steps = rgb_disagreement(info.path)
        if steps > RGB_STEPS:
            return (
                f"odd-sized {info.width}x{info.height} (PyAV and torchcodec convert its frames to RGB up to {steps} "
                "steps apart)"
            )
    return ""


def _streams(path: str) -> tuple[int, int, int]:
    """(the video stream sf2t reads, the one torchcodec opens by default, the container's first video stream): the
    first two differ in a file with several video streams where another is default-flagged or "best"; the first and
    the last where a cover picture (an attached picture) comes before the video, the stream LLaMA-Factory's PyAV path
    (``streams.video[0]``) reads. (-1, -1, -1) where PyAV is not installed or the file does not open, sf2t's stream
    for torchcodec's where torchcodec is not installed or does not open it (the agreement check then decides)."""
    try:
        from sf2t.video.probe import av_open

        container, st = av_open(path)
        mine, first = int(st.index), int(container.streams.video[0].index)
        container.close()
    except Exception:  # noqa: BLE001 - not installed or not readable: nothing known
        return -1, -1, -1
    try:
        from torchcodec.decoders import VideoDecoder

        default = int(VideoDecoder(path, seek_mode="approximate").stream_index)
    except Exception:  # noqa: BLE001 - not installed or not readable: torchcodec's stream not known
        default = mine
    return mine, default, first


RGB_STEPS = 2  # uint8 steps two decoders' RGB may differ by: the agreement tolerance is 2 steps after normalization


def rgb_disagreement(path: str) -> int:
    """Max |difference| (uint8 steps) between PyAV's RGB of the first frame of the stream sf2t reads (``av_open``'s:
    a cover picture before the video is not it; swscale bicubic, as sf2t's PyAV backend and LLaMA-Factory-style's
    check convert) and torchcodec's of the same stream (``tc_open``'s; qwen-vl-utils-style's, sf2t's torchcodec
    backend); 0 where either is not installed or the frame cannot be read (the agreement check then decides).
    Odd-sized 4:2:0 frames take swscale's scaled path, which PyAV's bundled FFmpeg and the system FFmpeg torchcodec
    uses may not run alike: a 161x97 MPEG-4 Part 2 clip here, up to 56 steps (VP9 and H.264 4:4:4 at that size: 0)."""
    try:
        from sf2t.video.backends import to_rgb
        from sf2t.video.probe import av_open
        from sf2t.video.tc import tc_open

        container, st = av_open(path)
        with container:
            a = torch.from_numpy(to_rgb(next(container.decode(st))))
        b = tc_open(path, dimension_order="NHWC", seek_mode="approximate").get_frames_at([0]).data[0]
    except Exception:  # noqa: BLE001 - not installed or not readable: nothing known
        return 0
    if a.shape != b.shape:
        return 255
    return int((a.int() - b.int()).abs().max())


def planar(info) -> bool:
    """Whether the pyav backend gives ``info``'s frames as YUV420 windows: 8-bit 4:2:0, even sizes, upright. Other
    frames it converts to RGB one by one with swscale, ~3x slower than torchcodec's RGB windows (a 161x97 VP9 here:
    88 against 258 samples/s)."""
    even = not (info.width % 2 or info.height % 2)
    return info.pix_fmt in ("yuv420p", "yuvj420p") and info.bit_depth == 8 and even and not info.rotation


def resolve_frames(
    frames: str, device: str, decoder: str, have, tasks: Sequence[str] = ("fragment",), infos: Sequence = ()
) -> str:
    """The sampler's window format for ``--frames`` (see :func:`measure`). ``auto`` takes ``yuv420`` only where no
    task reads pixels (plain fragments): a task that does (the guards' thumbnails) needs the window in RGB, which
    torchcodec decodes faster than the pyav backend (~300 against ~245 samples/s for the four frame tasks here);
    and only where every video of ``infos`` gives planar windows (:func:`planar`): one that does not costs more
    (3x on its windows) than planar windows save on the others (~15 %, a 1280x720 H.264 clip)."""
    if frames not in ("auto", "rgb", "yuv420"):
        raise ValueError(f"frames must be auto, rgb or yuv420, got {frames!r}")
    cpu = str(device) == "cpu"
    if frames == "auto":
        no_pixels = all(getattr(t, "pixels", "full") == "none" for t in _tasks(tasks).values())
        planes = all(planar(i) for i in infos)
        return "yuv420" if cpu and no_pixels and planes and "pyav" in have and decoder in ("auto", "pyav") else "rgb"
    if frames == "yuv420":
        if not cpu:
            raise ValueError("frames yuv420: planar windows are a CPU path (on a GPU the decoders give RGB)")
        if "pyav" not in have or decoder not in ("auto", "pyav"):
            raise ValueError(
                f"frames yuv420: planar windows come from the pyav backend (decoder auto or pyav, PyAV installed), "
                f"not decoder {decoder!r}"
            )
    return frames
