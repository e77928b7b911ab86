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

import importlib.util
import logging
import os
from collections import OrderedDict
from typing import Sequence

import torch

from sf2t._checks import check_int
from sf2t.ops.fragment_pack import YUV420
from sf2t.video._backend import (
    OUTPUTS,
    Backend,
    _rotate,
    as_index_list,
    check_output,
    check_range,
    decodes_forward,
    key_at_or_before,
)
from sf2t.video._containers import (
    INTRA_ONLY_CODECS,  # noqa: F401  (re-exported)
    is_mpegts,
    sniff_container,  # noqa: F401  (re-exported)
    torchcodec_misreads,
)
from sf2t.video.dali import DALI_CPU_CODECS, DALI_GPU_CODECS, DALI_GPU_PIX_FMTS  # no DALI import at load
from sf2t.video.errors import VideoError, first_line
from sf2t.video.probe import Deadline, VideoInfo, check_file, check_pixel_format
from sf2t.video.pyav import (
    _WINDOWS,  # noqa: F401  (re-exported)
    PyAVBackend,
    _WindowPool,  # noqa: F401  (re-exported)
    to_rgb,  # noqa: F401  (re-exported)
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
