"""Decoder backends behind one interface: frame indices in, uint8 [N, H, W, 3] frames + their timestamps out.

Contract, the same for every backend (docs/tasks.md): frame k is the k-th frame in presentation order of the first
video stream, 0-based; timestamps are the stream's own presentation times in seconds, so variable-frame-rate
files get true times (an AVI, which stores no pts: its frames' places plus the codec's reorder delay, on every backend:
:func:`sf2t.video.probe.avi_offset`); frames are returned upright (the stream's rotation applied, as torchcodec and
the ffmpeg command line do). A backend is opened once per file and serves many requests (``get_frames``); ask for the
sorted union of what several samples need and slice, rather than decoding per sample.

| backend | devices | how it finds frame k |
|---|---|---|
| ``torchcodec`` | cpu, cuda (NVDEC) | ``seek_mode="exact"``: scans the packets once at open (*) |
| ``pyav`` | cpu | demuxes the packets once at open (pts -> index), seeks to the keyframe before each run |
| ``dali`` | cuda (NVDEC, "mixed"), cpu (VP8/VP9/MJPEG only) | ``fn.decoders.video`` with an explicit frame list |

(*) Where exact mode cannot open a file that approximate mode opens (torchcodec 0.17: a cover picture before the
video), approximate mode asked for each frame's exact time: the same frames (``sf2t.video.tc.PtsDecoder``).

MPEG-TS has no index: seeks there may land late, so the pyav backend seeks further back where one did, and
``auto`` picks it for such files; the torchcodec backend refuses them (its seeks there return wrong frames), and so
it does MPEG-PS (.mpg, .vob) and AVI files of codecs that reorder frames (MPEG-4 Part 2 / Xvid, H.264 with B-frames),
where its seeks return the frame before the one asked for (:func:`torchcodec_misreads`).

``decoder="auto"`` picks by what is installed, the device and the codec (PyAV for a file whose name is not UTF-8
text, which torchcodec cannot open), logs the choice once per
(choice, reason) on the ``sf2t.video`` logger, and never switches to another backend after a failure: a
failure is a ``VideoError`` for that file.
"""

from __future__ import annotations

import bisect
import importlib.util
import itertools
import logging
import os
from collections import OrderedDict
from collections.abc import Iterable
from typing import Sequence

import numpy as np
import torch

from sf2t._checks import check_int
from sf2t.ops.fragment_pack import YUV420
from sf2t.video.convert import SwscaleRGB, copy_planes
from sf2t.video.dali import DALI_CPU_CODECS, DALI_GPU_CODECS, DALI_GPU_PIX_FMTS  # no DALI import at load
from sf2t.video.errors import VideoError, first_line
from sf2t.video.probe import (
    Deadline,
    VideoInfo,
    av_open,
    check_file,
    check_frame_order,
    check_pixel_format,
    decode_order_error,
    demux_index,
    frames_out_of_order,
    order_unchecked,
)
from sf2t.video.tc import tc_open, utf8_name

__all__ = [
    "BACKENDS",
    "Backend",
    "TorchCodecBackend",
    "PyAVBackend",
    "available_decoders",
    "choose_decoder",
    "open_decoder",
    "decoder_threads",
    "as_index_list",
    "torchcodec_misreads",
    "check_range",
    "check_output",
    "DecoderCache",
    "OUTPUTS",
]

log = logging.getLogger("sf2t.video")

BACKENDS = ("torchcodec", "pyav", "dali")
# what get_frames returns: RGB tensors, or (pyav backend, CPU, 8-bit 4:2:0 streams) YUV420 planes, RGB otherwise
OUTPUTS = ("rgb", "yuv420")
_MODULES = {"torchcodec": "torchcodec", "pyav": "av", "dali": "nvidia.dali"}
_logged: set[tuple] = set()


def _installed(module: str) -> bool:
    top = module.split(".")[0]
    if importlib.util.find_spec(top) is None:
        return False
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def available_decoders() -> list[str]:
    """Backends installed here, in order of preference on the CPU."""
    return [b for b in BACKENDS if _installed(_MODULES[b])]


def decoder_threads(num_workers: int = 0, cores: int | None = None) -> int:
    """Decoder threads per process: the cores shared by the decoding processes (DataLoader workers, or the
    main process when there are none), at least 1. Two processes running 2 threads each on 2 cores were ~20x
    slower than one alone (measured on the 2-core CI machine), so never more threads than cores."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, int(cores) // max(1, int(num_workers)))


def choose_decoder(
    info: VideoInfo | None,
    device: str | torch.device = "cpu",
    *,
    have: Sequence[str] | None = None,
    output: str = "rgb",
    path: str | None = None,
) -> tuple[str, str]:
    """(backend, why) for a video on ``device``: by what is installed, the device and the codec; ``output="yuv420"``
    on the CPU prefers PyAV (the backend that gives YUV420 windows), and so does an MPEG-TS file (by ``info``'s
    container, or by ``path``'s first bytes without ``info``), and a file whose name is not UTF-8 text (torchcodec
    cannot open it)."""
    have = list(available_decoders() if have is None else have)
    dev = torch.device(device)
    codec = info.codec if info is not None else None
    if output == "yuv420" and dev.type == "cpu" and "pyav" in have:
        return "pyav", "PyAV: YUV420 windows asked for (the RGB conversion runs in fragment_pack)"
    if info is not None:
        misread = torchcodec_misreads(info.path, info.container, info.codec)
    else:
        misread = torchcodec_misreads(path) if path is not None else None
    name = path if path is not None else info.path if info is not None else None
    if name is not None and not utf8_name(name) and "pyav" in have:  # (DALI's reading of such names is unchecked)
        return "pyav", "PyAV: the file name is not UTF-8 text, which torchcodec cannot open"
    # The files torchcodec misreads after seeks (MPEG-TS / MPEG-PS, AVIs of reordering codecs) go to PyAV on a GPU
    # too: DALI's seeks in them have not been checked frame by frame (its tests ran on MP4 / WebM / MKV).
    if dev.type == "cuda" and "dali" in have and not (misread and "pyav" in have):
        if codec in DALI_GPU_CODECS and (info is None or info.pix_fmt in DALI_GPU_PIX_FMTS):
            return "dali", f"{codec} on {dev}: DALI decodes it with NVDEC"
    if misread and "pyav" in have:  # torchcodec refuses it (wrong frames after seeks)
        return "pyav", f"{misread}: torchcodec's seeks in it return wrong frames; PyAV's do not"
    if dev.type == "cuda":
        if "torchcodec" in have:
            return "torchcodec", f"torchcodec decodes on {dev}" + ("" if "dali" in have else " (DALI not installed)")
    if "torchcodec" in have:
        return "torchcodec", "torchcodec: exact frame index, fastest CPU decoder installed"
    if "pyav" in have:
        return "pyav", "PyAV: torchcodec not installed"
    if "dali" in have and codec in DALI_CPU_CODECS:
        return "dali", f"{codec}: DALI's CPU decoder (neither torchcodec nor PyAV installed)"
    where = "" if codec is None else f" for {codec}"
    raise VideoError(
        info.path if info else "<video>",
        f"no video decoder installed{where} (pip install torchcodec, or av, or nvidia-dali-cuda130)",
        "no_decoder",
    )


# codecs whose every frame is a keyframe: nothing is reordered, torchcodec reads their AVIs right
INTRA_ONLY_CODECS = frozenset(
    "mjpeg rawvideo png ffv1 huffyuv ffvhuff utvideo magicyuv dnxhd prores jpeg2000 jpegls ljpeg v210 r210".split()
)


def sniff_container(path: str) -> str | None:
    """``mpegts``, ``mpeg`` (MPEG-PS) or ``avi`` (the libavformat names) by the file's first bytes, else None."""
    try:
        with open(path, "rb") as f:
            head = f.read(4 + 192 * 3)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"\x00\x00\x01\xba":  # an MPEG pack header
        return "mpeg"
    if any(
        len(head) > off + 2 * step and all(head[off + i * step] == 0x47 for i in range(3))
        for off, step in ((0, 188), (4, 192))
    ):
        return "mpegts"
    return None


def torchcodec_misreads(path: str, container: str | None = None, codec: str | None = None) -> str | None:
    """What the file is, where torchcodec's exact mode returns wrong frames after a seek (None: not such a file), by the
    probed container name when given, else by the file's bytes (:func:`sniff_container`; the extension is not
    trusted). Measured with torchcodec 0.17 on clips whose frames carry their own index:

    * MPEG-TS (no index): an H.264 .ts with B-frames and 8-frame GOPs gave frame 8 for frames 0-5, 32 for 30;
    * MPEG-PS (.mpg, .vob; no index): MPEG-1/2 with B-frames gave frame k-1 for frames 1-6, frame 12 for 9-11;
    * AVI of a codec that reorders frames (B-frames: MPEG-4 Part 2 / Xvid / DivX, H.264): frame k-1 for most k,
      "no more frames" errors for a full read. Intra-only codecs (MJPEG, ...) read right. H.264 without B-frames
      read right too, but whether a stream has B-frames is not known before decoding it, so every AVI of a codec
      that may reorder counts as one that does (PyAV reads it), as does an AVI whose codec is unknown (no probe)."""
    kind = container or sniff_container(path)
    if kind == "mpegts":
        return "an MPEG-TS file"
    if kind == "mpeg":
        return "an MPEG-PS file"
    if kind == "avi" and codec not in INTRA_ONLY_CODECS:
        return f"an AVI file of {codec}" if codec else "an AVI file"
    return None


def is_mpegts(path: str, container: str | None = None) -> bool:
    """An MPEG transport stream: by the probed container name when given, else by its bytes (sync byte 0x47 every
    188 bytes, or every 192 with M2TS's 4-byte prefix; the extension is not trusted). A container without an index,
    where torchcodec's exact mode returns wrong frames after a seek (torchcodec 0.17, an H.264 .ts with B-frames and
    8-frame GOPs: frame 8 for frames 0-5, frame 32 for 30; "no more frames" errors for the last GOP)."""
    return (container or sniff_container(path)) == "mpegts"


def as_index_list(path: str, indices: Sequence[int] | torch.Tensor) -> list[int]:
    """``indices`` (a sequence of ints, a 1-D integer numpy array or tensor; empty ones of any dtype) as ints."""
    if isinstance(indices, (torch.Tensor, np.ndarray)):
        kind = "tensor" if isinstance(indices, torch.Tensor) else "numpy array"
        if isinstance(indices, torch.Tensor) and indices.device.type == "meta":
            raise ValueError("indices must hold frame numbers: got a tensor on the meta device, which holds no data")
        integer = (
            not (indices.dtype.is_floating_point or indices.dtype.is_complex or indices.dtype == torch.bool)
            if kind == "tensor"
            else indices.dtype.kind in "iu"
        )
        if indices.ndim != 1 or not (integer or indices.shape[0] == 0):
            raise ValueError(f"indices must be a 1-D integer {kind}, got {indices.dtype} {tuple(indices.shape)}")
        return [int(i) for i in indices.tolist()]
    if isinstance(indices, (str, bytes)) or not isinstance(indices, Iterable):
        raise ValueError(
            f"indices must be a sequence of frame numbers (list, numpy array or tensor), got {type(indices).__name__}"
            f" {indices!r:.60}; for one frame pass [i]"
        )
    out = []
    for i in indices:
        if isinstance(i, bool) or type(i).__name__ == "bool_" or not hasattr(i, "__index__"):
            raise ValueError(f"indices must be integers, got {i!r}")
        out.append(int(i))
    return out


def check_output(output: str | None) -> None:
    """``get_frames``' ``output`` argument: None (the backend's own) or one of :data:`OUTPUTS`."""
    if output is not None and output not in OUTPUTS:
        raise ValueError(f"output must be None (the backend's own) or one of {OUTPUTS}, got {output!r}")


def check_range(path: str, idx: list[int], n: int) -> None:
    for i in idx:
        if i < 0 or i >= n:
            raise VideoError(path, f"frame index {i} out of range: the video has {n} frames", "out_of_range")


def key_at_or_before(keyframes: list[int], k: int) -> int:
    """The keyframe a decoder seeks to for frame ``k`` (``keyframes`` sorted, the first at or before any frame)."""
    return keyframes[max(0, bisect.bisect_right(keyframes, k) - 1)]


def decodes_forward(keyframes: list[int], pos: int, k: int) -> bool:
    """Whether a decoder standing at frame ``pos`` (-1: nowhere) reaches frame ``k`` by decoding forward, without a
    seek: ``k`` lies ahead and no keyframe lies in (pos, k] (torchcodec's ``canWeAvoidSeeking``; the pyav backend
    follows the same rule)."""
    return pos < k and key_at_or_before(keyframes, k) <= pos


def _rotate(frames: torch.Tensor | YUV420, rotation: int) -> torch.Tensor | YUV420:
    """Upright frames: rotation (degrees counter-clockwise, the display matrix's) applied to [N, H, W, 3], or to a
    :class:`~sf2t.ops.YUV420`'s planes (each plane turned alike: the same RGB as turning the converted frames, since
    each chroma sample covers a 2x2 block of an even-sized frame, which a quarter turn maps onto a 2x2 block)."""
    k = (int(rotation) // 90) % 4
    if k == 0:
        return frames
    if isinstance(frames, YUV420):
        h, w = (frames.width, frames.height) if k % 2 else (frames.height, frames.width)
        # (flatten, not reshape(n, -1): a window of no frames has no -1 to infer)
        planes = [torch.rot90(p, k, dims=(1, 2)).flatten(1) for p in (frames.y, frames.u, frames.v)]
        return YUV420(torch.cat(planes, dim=1), h, w, frames.coeffs)
    return torch.rot90(frames, k, dims=(1, 2)).contiguous()


class Backend:
    """One open file. Subclasses implement ``_decode(sorted unique indices) -> (frames, pts)``."""

    name = "?"

    def __init__(
        self,
        path: str,
        *,
        device: str | torch.device = "cpu",
        threads: int = 1,
        info: VideoInfo | None = None,
        timeout: float | None = None,
    ):
        self.path = check_file(path)
        self.device = torch.device(device)
        self.threads = check_int("threads", threads, min_value=1)
        self.info = info
        self.timeout = timeout
        self.num_frames = 0
        self.frames_decoded = 0  # frames the codec decoded, GOP lead-ins included (for throughput reports)

    output = "rgb"  # what get_frames returns (OUTPUTS; only the pyav backend gives "yuv420")

    def get_frames(
        self, indices: Sequence[int] | torch.Tensor, output: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames ``indices`` (any order, repeats allowed): uint8 [N, H, W, 3] on the backend's device (or, from a
        backend opened with ``output="yuv420"``, :class:`~sf2t.ops.YUV420` where the stream allows it) and float64
        [N] presentation times in seconds (CPU); row i is frame ``indices[i]``. ``output="rgb"``: RGB this time."""
        check_output(output)
        idx = as_index_list(self.path, indices)
        check_range(self.path, idx, self.num_frames)
        uniq = sorted(set(idx))
        self._call_output = output or self.output
        try:
            frames, pts = self._decode(uniq, Deadline(self.path, self.timeout, "decoding"))
        finally:
            self._call_output = None
        if uniq != idx:
            rows = torch.tensor([bisect.bisect_left(uniq, i) for i in idx], dtype=torch.int64)
            frames = frames.index_select(0, rows.to(frames.device))
            pts = pts.index_select(0, rows)
        return frames, pts

    def _decode(self, uniq: list[int], deadline: Deadline) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class TorchCodecBackend(Backend):
    name = "torchcodec"
    chunk = 64  # frames per get_frames_at call: bounds memory per call and lets the time limit act between calls

    def __init__(self, path, **kw):
        super().__init__(path, **kw)
        container = self.info.container if self.info is not None else None
        if is_mpegts(self.path, container):
            raise VideoError(
                self.path,
                "an MPEG-TS file: torchcodec's seeks in it return wrong frames; decoder=pyav reads it, or remux it to "
                "MP4 (ffmpeg -i IN.ts -c copy OUT.mp4)",
                "unsupported",
            )
        cuda = self.device.type == "cuda"
        self.dec = tc_open(
            self.path,
            dimension_order="NHWC",
            seek_mode="exact",
            num_ffmpeg_threads=self.threads,
            device=str(self.device) if cuda else None,
            deadline=Deadline(self.path, self.timeout, "opening"),  # (a stand-in's open may decode the file: tc_open)
        )
        misread = torchcodec_misreads(self.path, container, str(self.dec.metadata.codec or "") or None)
        if misread:
            raise VideoError(
                self.path,
                f"{misread}: torchcodec's seeks in it return wrong frames; decoder=pyav reads it",
                "unsupported",
            )
        check_pixel_format(self.path, str(getattr(self.dec.metadata, "pixel_format", "") or ""))
        self.num_frames = int(self.dec.metadata.num_frames or 0)
        if self.num_frames <= 0:
            raise VideoError(self.path, "the video stream has no frames", "no_frames")
        # keyframe indices (exact mode scanned them at open), to count the frames the codec decodes: None where
        # this torchcodec does not expose them (then frames_decoded counts the frames returned, a lower bound)
        try:
            self.keyframes = [int(k) for k in self.dec._get_key_frame_indices().tolist()] or [0]
        except Exception:
            self.keyframes = None
        self._pos = -1  # the last frame the codec decoded (-1: none yet)

    def _count_decoded(self, uniq: list[int]) -> int:
        """Frames the codec decodes for the sorted request ``uniq``, GOP lead-ins included: torchcodec's exact mode
        decodes forward from where it stands (:func:`decodes_forward`), else seeks to the keyframe at or before the
        frame, and decodes every frame on the way (what PyAVBackend counts as its decoder gives them)."""
        if self.keyframes is None:
            return len(uniq)
        n = 0
        for k in uniq:
            fwd = decodes_forward(self.keyframes, self._pos, k)
            n += (k - self._pos) if fwd else (k - key_at_or_before(self.keyframes, k) + 1)
            self._pos = k
        return n

    def _decode(self, uniq, deadline):
        m = self.dec.metadata
        if not uniq:
            return torch.empty(0, m.height, m.width, 3, dtype=torch.uint8, device=self.device), torch.empty(
                0, dtype=torch.float64
            )
        parts, pts = [], []
        for lo in range(0, len(uniq), self.chunk):
            deadline.check()
            try:
                b = self.dec.get_frames_at(uniq[lo : lo + self.chunk])
            except Exception as e:
                raise VideoError(self.path, f"decoding failed ({first_line(e)})", "corrupt") from e
            parts.append(b.data)
            pts.append(b.pts_seconds.to(torch.float64).cpu())
        self.frames_decoded += self._count_decoded(uniq)
        frames = parts[0] if len(parts) == 1 else torch.cat(parts)
        pts = torch.cat(pts)
        if len(uniq) > 1 and not bool((pts[1:] > pts[:-1]).all()):  # what the probe refuses, met without an index
            raise VideoError(self.path, "several frames share one timestamp: frame order is ambiguous", "corrupt")
        return frames.to(self.device), pts


def to_rgb(frame):
    """RGB24 of a PyAV frame, converted with swscale's bicubic scaler like ffmpeg's command line and torchcodec. PyAV's
    default (bilinear) differs from them by 2.2 mean on odd-sized 4:2:0 frames (measured on a 321x179 VP9). 8-bit
    frames then match torchcodec exactly; above 8 bits they do not: PyAV bundles FFmpeg 8.1, whose swscale
    upsamples 10-bit chroma differently from the system FFmpeg (5.1 here) torchcodec and the command line use (a
    160x96 yuv420p10le test pattern: mean 3.1, max 95, 4 % of values more than 20 apart, at colour edges)."""
    return frame.to_ndarray(format="rgb24", interpolation="BICUBIC")


class _WindowPool:
    """Window buffers for YUV420 windows, reused once nothing refers to them any more: a fresh 46-frame 1280x720
    window is 64 MB whose first touch (page faults, zeroing) cost more than copying the planes into it (measured
    on this project's 2-core machine: 0.76 ms a frame against 0.15). A buffer is free when its only references
    are the pool's (every tensor over it holds one). One pool per process, shared by every backend and thread (a
    decoder reopened by the LRU, or a new sampler, finds the buffers warm); at most ``keep_mb`` of buffers kept."""

    def __init__(self, keep_mb: int = 512):
        import threading

        self.keep = keep_mb << 20
        self.buffers: list = []
        self.lock = threading.Lock()

    def take(self, rows: int, cols: int) -> torch.Tensor:
        import numpy as np

        with self.lock:
            for i in range(len(self.buffers)):  # (no loop variable bound to a buffer: it would count as a user)
                if self.buffers[i].shape == (rows, cols) and self._free(i):
                    return torch.from_numpy(self.buffers[i])
            buf = np.empty((rows, cols), dtype=np.uint8)  # numpy asks for huge pages for large arrays
            self.buffers.append(buf)
            total, i = sum(b.nbytes for b in self.buffers), 0
            while total > self.keep and i < len(self.buffers) - 1:  # over the cap: forget the oldest free ones
                if self._free(i):
                    total -= self.buffers.pop(i).nbytes
                else:
                    i += 1
            return torch.from_numpy(buf)

    def _free(self, i: int) -> bool:
        """Whether buffer i is referenced by the pool's list alone (no tensor over it is alive)."""
        import sys

        return sys.getrefcount(self.buffers[i]) <= 2  # the list's reference and getrefcount's argument


_WINDOWS = _WindowPool()


class PyAVBackend(Backend):
    """Frame-exact random access with PyAV: one demux pass at open maps pts -> frame index and finds the
    keyframes; each request seeks to the keyframe before a wanted frame only when decoding forward from where
    the decoder stands would cross a keyframe anyway (so a dense request decodes each GOP once)."""

    name = "pyav"

    def __init__(self, path, output: str = "rgb", **kw):
        super().__init__(path, **kw)
        if self.device.type != "cpu":
            raise VideoError(
                self.path, f"the pyav backend decodes on the CPU only, not on {self.device}", "unsupported"
            )
        self.container, self.stream = av_open(self.path)
        self.stream.thread_count = self.threads
        demuxed = demux_index(self.path, self.container, self.stream)
        pts, keys = demuxed.pts, demuxed.keys
        try:
            check_pixel_format(self.path, self.stream.codec_context.pix_fmt)
            check_frame_order(self.path, pts, demuxed.untimed, self.container)
            # without the index's probe (which checks it), the frames' order against their timestamps
            if self.info is None and order_unchecked(self.stream, demuxed):
                if frames_out_of_order(self.path):
                    raise decode_order_error(self.path)
        except VideoError:
            self.close()
            raise
        self.pts = pts  # PyAV's, which the decoded frames carry (seconds: shifted by demuxed.offset, an AVI's)
        self.times = demuxed.seconds(self.stream.time_base)
        self.index_of = {p: i for i, p in enumerate(pts)}
        # frame 0 counts as a keyframe: a seek to its pts lands on the keyframe at or before it (an edit list may have
        # cut the stream after its first keyframe, whose frame is then not a frame of the video)
        self.keyframes = [0] + [i for i, k in enumerate(keys) if k and i > 0]
        self.tb = float(self.stream.time_base)
        self.num_frames = len(pts)
        if self.num_frames <= 0:
            self.close()
            raise VideoError(self.path, "the video stream has no frames", "no_frames")
        self.rotation = None  # the stream's own (display matrix), read from the first decoded frame: an index line
        # may be stale or hand-written
        self._it = None  # the open decode iterator and the index of the last frame it gave
        self._pos = -1
        self._seek_back = 0  # keyframes to seek before the one wanted (a container whose seeks land late: MPEG-TS)
        # RGB straight from the decoder's planes into the window tensor, bit-identical to to_rgb (checked per format)
        self.rgb = SwscaleRGB(to_rgb, enabled=os.environ.get("SF2T_FAST_RGB", "1") != "0")
        # output="yuv420": windows of YUV420 (the planes, unconverted: fragment_pack's C++ kernel converts the frames
        # a sample shows) where the stream's format allows it (8-bit 4:2:0, even size, upright, sf2t's conversion
        # verified exact for the format), else RGB as usual
        self.output = output
        self._pool = _WINDOWS
        if output not in OUTPUTS:
            self.close()
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")

    def _seek_target(self, k: int) -> int:
        """The keyframe (index into ``keyframes``) a seek for frame ``k`` aims at: the one at or before ``k``, less the
        file's back-off; -1: read from the file's start."""
        return max(0, bisect.bisect_right(self.keyframes, k) - 1) - self._seek_back

    def _ahead(self, k: int) -> bool:
        """Whether decoding forward from where the decoder stands reaches ``k`` at no more cost than a seek."""
        if self._it is None or self._pos >= k:
            return False
        target = self._seek_target(k)
        return target < 0 or self.keyframes[target] <= self._pos

    def _seek(self, k: int) -> None:
        """Position the decoder so that it decodes frame ``k`` next or later: a seek to the keyframe at or before
        ``k``. Containers without an index (MPEG-TS) seek by searching timestamps and may land past it; then the seek
        is tried keyframes earlier (the back-off is kept for the file), and at worst the file is read from its
        start."""
        while True:
            target = self._seek_target(k)
            if target < 0:
                self._restart()
                return
            self.container.seek(self.pts[self.keyframes[target]], backward=True, any_frame=False, stream=self.stream)
            it = self.container.decode(self.stream)
            first = None
            try:
                for frame in it:
                    if frame.pts in self.index_of:
                        first = frame  # counted as decoded where the decode loop takes it
                        break
                    self.frames_decoded += 1
            except Exception:  # a decode error right after a seek: try from further back (a real one recurs there)
                first = None
            if first is not None and self.index_of[first.pts] <= k:
                self._it = itertools.chain([first], it)
                self._pos = -1
                return
            self.frames_decoded += first is not None
            self._seek_back = 2 * self._seek_back + 1  # landed past frame k (or nowhere): back off further

    def _restart(self) -> None:
        """Reopen the file and decode from its first frame (no seek)."""
        self.container.close()
        self.container, self.stream = av_open(self.path)
        self.stream.thread_count = self.threads
        self._it = self.container.decode(self.stream)
        self._pos = -1

    def _decode(self, uniq, deadline):
        want = {k: i for i, k in enumerate(uniq)}  # frame index -> its row in the output
        got: set[int] = set()
        out = None  # uint8 [len(uniq), H, W, 3] or YUV420, allocated at the first wanted frame (its size)
        out_np = None  # a YUV420 window's data as numpy (the planes are copied with numpy: less overhead per call)
        for k in uniq:
            if k in got:
                continue
            if not self._ahead(k):
                self._seek(k)
            while True:
                try:
                    frame = next(self._it)
                except StopIteration:
                    self._it = None
                    raise VideoError(
                        self.path, f"frame {k} could not be decoded: the stream ended before it", "corrupt"
                    ) from None
                except Exception as e:
                    self._it = None
                    raise VideoError(self.path, f"decoding failed near frame {k} ({first_line(e)})", "corrupt") from e
                self.frames_decoded += 1
                if self.frames_decoded % 32 == 0:
                    deadline.check()
                j = self.index_of.get(frame.pts)
                if j is None:
                    continue  # a frame the demuxer did not list (e.g. before the first keyframe): not frame k
                self._pos = j
                if j in want and j not in got:
                    if getattr(frame, "is_corrupt", False):
                        raise VideoError(
                            self.path, f"frame {j} is corrupt (the decoder reported damaged data)", "corrupt"
                        )
                    if self.rotation is None:
                        self.rotation = int(round(getattr(frame, "rotation", 0) or 0)) % 360
                    k_yuv = self._yuv_coeffs(frame)
                    if out is None:
                        if k_yuv is not None:
                            data = self._pool.take(len(uniq), frame.height * frame.width * 3 // 2)
                            out = YUV420(data, frame.height, frame.width, tuple(k_yuv))
                        else:
                            out = torch.empty(len(uniq), frame.height, frame.width, 3, dtype=torch.uint8)
                    elif (frame.height, frame.width) != tuple(out.shape[1:3]):
                        raise VideoError(
                            self.path,
                            f"frame {j} is {frame.width}x{frame.height}, an earlier frame "
                            f"{out.shape[2]}x{out.shape[1]}: the frame size changes mid-stream (re-encode it at one "
                            "size)",
                            "unsupported",
                        )
                    if isinstance(out, YUV420) and (k_yuv is None or tuple(k_yuv) != out.coeffs):
                        out = out.to_rgb()  # the format changed mid-window: RGB from here (rows so far converted)
                        out_np = None
                    if isinstance(out, YUV420):
                        if out_np is None:
                            out_np = out.data.numpy()
                        copy_planes(frame, out_np[want[j]])
                    else:
                        self.rgb(frame, out[want[j]])
                    got.add(j)
                if j >= k:
                    break
            if k not in got:
                raise VideoError(self.path, f"frame {k} was not produced by the decoder", "corrupt")
        if not uniq:
            cc = self.stream.codec_context
            frames = torch.empty(0, cc.height, cc.width, 3, dtype=torch.uint8)
            rot = self.rotation if self.rotation is not None else self.info.rotation if self.info is not None else 0
            return _rotate(frames, rot), torch.empty(0, dtype=torch.float64)
        pts = torch.tensor([self.times[i] for i in uniq], dtype=torch.float64)
        if isinstance(out, YUV420):
            return out, pts  # upright: only unrotated streams give YUV420
        return _rotate(out, self.rotation or 0), pts

    def _yuv_coeffs(self, frame) -> list[int] | None:
        """libswscale's constants where ``frame`` may go into a YUV420 window (output="yuv420"), else None."""
        want = getattr(self, "_call_output", None) or self.output
        if want != "yuv420" or (self.rotation or 0) % 360 or frame.height % 2 or frame.width % 2:
            return None
        return self.rgb.exact(frame)

    def close(self) -> None:
        c = getattr(self, "container", None)
        if c is not None:
            c.close()
            self.container = None


def _dali_backend(path, *, device, threads, info, timeout):
    try:
        from sf2t.video.dali import DaliBackend
    except ImportError as e:
        raise VideoError(
            path,
            f"the dali backend is not usable here ({first_line(e)}; pip install nvidia-dali-cuda130)",
            "no_decoder",
        ) from e
    be = DaliBackend(path, device=device, threads=threads, num_frames=info.num_frames if info is not None else None)
    if info is not None and info.rotation and not getattr(be, "applies_rotation", False):
        be = _Rotated(be, info.rotation)
    return be


class _Rotated:
    """Applies the stream rotation to a backend that returns frames as coded (DALI). ``get_frames`` takes what
    the backends' ``get_frames`` takes (``output`` passed on); a YUV420 window is turned plane by plane
    (:func:`_rotate`)."""

    def __init__(self, inner, rotation: int):
        self.inner, self.rotation = inner, rotation
        self.name, self.path, self.num_frames = inner.name, inner.path, inner.num_frames

    def get_frames(
        self, indices: Sequence[int] | torch.Tensor, output: str | None = None
    ) -> tuple[torch.Tensor | YUV420, torch.Tensor]:
        frames, pts = self.inner.get_frames(indices, output=output)
        return _rotate(frames, self.rotation), pts

    def __getattr__(self, name):  # the wrapped backend's other attributes (frames_decoded, ...)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def close(self):
        self.inner.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_decoder(
    path: str | os.PathLike,
    decoder: str = "auto",
    *,
    device: str | torch.device = "cpu",
    threads: int = 1,
    info: VideoInfo | None = None,
    timeout: float | None = None,
    output: str = "rgb",
):
    """Open ``path`` with ``decoder`` (``auto``, ``torchcodec``, ``pyav`` or ``dali``) on ``device``.

    ``info`` (from the index) lets ``auto`` choose by codec without opening the file twice. ``timeout``: seconds
    one ``get_frames`` call may take (checked between frames / chunks). ``output="yuv420"``: the pyav backend on
    the CPU returns :class:`~sf2t.ops.YUV420` windows for 8-bit 4:2:0 streams (``auto`` then picks it); other
    backends and formats return RGB. Raises ``VideoError``."""
    from sf2t._device import require_device

    path = check_file(path)
    if decoder not in ("auto",) + BACKENDS:
        raise ValueError(f"decoder must be 'auto' or one of {BACKENDS}, got {decoder!r}")
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    require_device(device)  # a device this machine lacks is named, not blamed on the file
    dev = torch.device(device)
    auto = decoder == "auto"
    if auto:
        decoder, why = choose_decoder(info, dev, output=output, path=path)
        key = (decoder, why, dev.type)
        if key not in _logged:
            _logged.add(key)
            log.info("decoder: %s on %s (%s)", decoder, dev, why)
    elif decoder not in available_decoders():
        raise VideoError(path, f"decoder={decoder!r} asked for but {_MODULES[decoder]} is not installed", "no_decoder")
    if auto and decoder == "dali":
        try:
            return _dali_backend(path, device=dev, threads=threads, info=info, timeout=timeout)
        except VideoError as e:
            # DALI refuses a file it cannot read right (another video stream it may decode, a pixel format it does not
            # convert): auto goes on to the next decoder that reads it, as it would have without DALI
            if e.kind != "unsupported":
                raise
            try:
                decoder, why = choose_decoder(
                    info, dev, have=[d for d in available_decoders() if d != "dali"], output=output, path=path
                )
            except VideoError:
                raise e from None
            log.info("decoder: %s for %s (%s; DALI refused it: %s)", decoder, path, why, e.reason)
    kw = dict(device=dev, threads=threads, info=info, timeout=timeout)
    if decoder == "torchcodec":
        return TorchCodecBackend(path, **kw)
    if decoder == "pyav":
        if dev.type != "cpu":  # decode on the CPU, hand over on the device: still one backend, no switch
            return _ToDevice(PyAVBackend(path, **{**kw, "device": "cpu"}), dev)
        return PyAVBackend(path, output=output, **kw)
    return _dali_backend(path, device=dev, threads=threads, info=info, timeout=timeout)


class _ToDevice(_Rotated):
    """A CPU backend's frames handed over on ``device`` (the pyav backend for a GPU): RGB tensors, or a YUV420 window
    (``output="yuv420"``) as a YUV420 on ``device``, which ``fragment_pack`` converts there."""

    def __init__(self, inner, device):
        super().__init__(inner, 0)
        self.device = torch.device(device)

    def get_frames(
        self, indices: Sequence[int] | torch.Tensor, output: str | None = None
    ) -> tuple[torch.Tensor | YUV420, torch.Tensor]:
        frames, pts = self.inner.get_frames(indices, output=output)
        if isinstance(frames, YUV420):
            data = frames.data.to(self.device, non_blocking=True)
            return YUV420(data, frames.height, frames.width, frames.coeffs), pts
        return frames.to(self.device, non_blocking=True), pts


class DecoderCache:
    """Open decoders by path (LRU): a file is opened, and torchcodec / PyAV scan its packets, once, not per request.
    Beyond ``max_open`` files the least recently used decoder is closed. ``open`` is the path -> decoder map."""

    def __init__(
        self,
        decoder: str = "auto",
        *,
        device: str | torch.device = "cpu",
        threads: int = 1,
        timeout: float | None = None,
        max_open: int = 8,
        output: str = "rgb",
    ):
        if decoder != "auto" and decoder not in BACKENDS:
            raise ValueError(f"decoder must be 'auto' or one of {BACKENDS}, got {decoder!r}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.decoder, self.device, self.timeout = decoder, torch.device(device), timeout
        self.threads = check_int("threads", threads, min_value=1)  # (here, not when the first file is opened)
        self.output = output
        self.max_open = check_int("max_open", max_open, min_value=1)
        self.open: OrderedDict[str, object] = OrderedDict()

    def get(self, info: VideoInfo):
        dec = self.open.get(info.path)
        if dec is None:
            dec = open_decoder(
                info.path,
                self.decoder,
                device=self.device,
                threads=self.threads,
                info=info,
                timeout=self.timeout,
                output=self.output,
            )
            self.open[info.path] = dec
            while len(self.open) > self.max_open:
                self.open.popitem(last=False)[1].close()
        else:
            self.open.move_to_end(info.path)
        return dec

    def forget(self, path: str) -> None:
        """Close and drop ``path``'s decoder (after it failed: the next request opens the file afresh)."""
        dec = self.open.pop(path, None)
        if dec is not None:
            dec.close()

    def close(self) -> None:
        for dec in self.open.values():
            dec.close()
        self.open.clear()
