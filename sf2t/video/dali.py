"""DALI decoder backend: ``nvidia.dali.fn.decoders.video`` with an explicit frame list.

Frame k is the k-th frame in presentation order of the first video stream that is not a cover picture, 0-based
(the contract of every sf2t backend). DALI takes no stream index: a file whose other video streams (cover pictures
included) DALI might read instead is refused (``VideoError(kind="unsupported")``, naming the stream and the pyav and
torchcodec decoders, which read sf2t's), as is any file with several video streams where PyAV is not installed to
tell them apart (:func:`_other_stream`).

One DALI pipeline, ``external_source("encoded") -> fn.decoders.video(frames=external_source("frames"))``, serves
any file and any frame list; it is built once per (process, device, threads) and shared by every ``DaliBackend`` (a
lock serialises runs; a pipeline that raised is dropped and rebuilt). DALI is asked for the sorted unique frames;
reordering and repeats are done on the torch side. DALI's output becomes a torch tensor through DLPack without a copy
(DALI's default dynamic executor lets outputs outlive the next run), on the GPU too.

Devices: ``"cpu"`` runs the operator's CPU backend (libavcodec), which decodes only VP8, VP9 and MJPEG
(DALI 2.4 refuses H.264, HEVC, AV1 and MPEG-4 there: measured); a CUDA device runs the ``mixed`` backend
(NVDEC), frames stay on that GPU. A codec the chosen device cannot decode is refused up front with
``VideoError(kind="unsupported")``, found by reading the stream header with PyAV (torchcodec's metadata when
PyAV is not installed). ``decoder="dali"`` never falls back to another decoder; ``decoder="auto"`` that picked DALI
opens a file DALI refuses as unsupported with the decoder it would pick without DALI (``open_decoder``, logged).

Measured on the CPU backend (DALI 2.4.0, tests/video/test_dali.py):

* frames are bit-identical to PyAV/libswscale converting with DALI's flags (``SWS_BILINEAR | SWS_FULL_CHR_H_INT
  | SWS_ACCURATE_RND``); torchcodec and PyAV's default ``to_ndarray("rgb24")`` (identical to each other) use
  the fast, less exact swscale path, so they differ from DALI by 1.1-2.0 on average on synthetic clips (per
  frame up to 2.8, ~4 on noise texture; single pixels up to ~90 at saturated chroma edges, where DALI
  interpolates chroma and they do not); DALI is ~1 level brighter on average;
* rotation metadata (MP4 display matrix, WebM) is ignored: frames come as coded, like PyAV, unlike torchcodec,
  which turns them upright. ``applies_rotation = False`` tells ``sf2t.video.backends`` to rotate;
* variable frame rate, odd sizes (321x179), 1-frame videos and 10-bit VP9 (profile 2, yuv420p10le) decode
  correctly (10-bit is converted to 8-bit RGB);
* truncated or damaged files decode as far as the data goes or fail with "Failed to send packet to decoder";
  nothing crashed or hung the process. A failure is a ``VideoError`` carrying DALI's own error line.

On the GPU (not measured here: no GPU on the development machine) DALI converts NVDEC's 8-bit NV12 surface to
RGB, so streams that are not 8-bit 4:2:0 are refused up front instead of returning garbage.

Timestamps: DALI does not return them. They come from the caller (``pts``, e.g. from the index), else from
demuxing sf2t's video stream once at open with PyAV (no decoding; the stream's own pts, in seconds), else
(no PyAV) ``start + k / fps`` from torchcodec's metadata, with ``pts_exact = False``.

Cost: DALI re-opens the file and re-indexes its packets on every ``get_frames`` call (the decoder is created
per sample per run), so ask once for the sorted union of what several samples need.
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
from typing import Sequence

import numpy as np
import torch

from sf2t._checks import check_int
from sf2t.video._backend import as_index_list, check_output, check_range
from sf2t.video.errors import VideoError, first_line
from sf2t.video.probe import av_open, check_file, check_frame_order, demux_index, is_cover_picture
from sf2t.video.tc import _streams, tc_open

__all__ = ["DaliBackend", "DALI_CPU_CODECS", "DALI_GPU_CODECS", "DALI_GPU_PIX_FMTS", "clear_pipeline_cache"]

# What fn.decoders.video decodes (DALI 2.4). CPU: measured (H.264/HEVC/AV1/MPEG-4 are refused by the operator).
# GPU: the operator's documentation; NVDEC may still refuse a profile/size, which DALI reports at run time.
DALI_CPU_CODECS = frozenset({"vp8", "vp9", "mjpeg"})
DALI_GPU_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "mjpeg"})
# DALI's GPU colour conversion reads an 8-bit NV12 surface (frames_decoder_gpu.cc): other layouts would give garbage.
DALI_GPU_PIX_FMTS = frozenset({"yuv420p", "yuvj420p", "nv12"})

_INSTALL = "pip install nvidia-dali-cuda130"


# ---------------------------------------------------------------------------------------------------
# the shared pipelines


class _Pipe:
    """One built pipeline: bytes of one file + a frame list in, [F, H, W, 3] uint8 RGB out."""

    def __init__(self, device_id: int | None, threads: int):
        from nvidia.dali import Pipeline, fn, types

        self.pipe = Pipeline(
            batch_size=1,
            num_threads=threads,
            device_id=device_id,
            prefetch_queue_depth=1,
            exec_dynamic=True,  # outputs stay valid after the next run: zero-copy DLPack is safe
        )
        with self.pipe:
            encoded = fn.external_source(name="encoded", dtype=types.UINT8, ndim=1)
            frames = fn.external_source(name="frames", dtype=types.INT32, ndim=1)
            video = fn.decoders.video(
                encoded,
                frames=frames,
                device="cpu" if device_id is None else "mixed",
                pad_mode="none",  # an index past DALI's own frame count is an error, not a padding frame
            )
            self.pipe.set_outputs(video)
        self.pipe.build()
        self.lock = threading.Lock()
        self.broken = False

    def run(self, data: np.ndarray, frames: list[int]):
        with self.lock:
            (out,) = self.pipe.run(encoded=[data], frames=[np.asarray(frames, dtype=np.int32)])
            return out[0]


_pipes: dict[tuple, _Pipe] = {}
_pipes_lock = threading.Lock()


def _get_pipe(device_id: int | None, threads: int, shared: bool = True) -> _Pipe:
    if not shared:
        return _Pipe(device_id, threads)
    key = (os.getpid(), device_id, threads)  # a pipeline does not survive fork(): one per process
    with _pipes_lock:
        p = _pipes.get(key)
        if p is None or p.broken:
            p = _pipes[key] = _Pipe(device_id, threads)
        return p


def clear_pipeline_cache() -> None:
    """Drop the shared pipelines (they are rebuilt on demand; frees their host/GPU buffers)."""
    with _pipes_lock:
        _pipes.clear()


def _rank(stream) -> int:
    """The first thing FFmpeg's ``av_find_best_stream`` ranks video streams by: +1 unless flagged hearing or visually
    impaired, +1 if flagged default. Ties go on to the bit rate, then to the earlier stream."""
    d = int(stream.disposition)
    return (0 if d & 0x180 else 1) + (1 if d & 0x1 else 0)  # AV_DISPOSITION_{HEARING,VISUAL}_IMPAIRED, _DEFAULT


def _other_stream(container, stream) -> str | None:
    """Why DALI may decode another video stream of ``container`` than ``stream`` (sf2t's: the first one that is not a
    cover picture), or None where it reads that one. ``fn.decoders.video`` takes no stream index: DALI 2.4 reads the
    stream FFmpeg's ``av_find_best_stream`` ranks first from the header (a default-flagged one first; cover pictures
    are not skipped), and a version of DALI's source has its CPU decoder take the first stream whose codec it decodes.
    So another video stream is safe only where ``stream`` outranks it and it comes after ``stream`` or is in a codec
    DALI never decodes (a PNG cover picture). Measured (DALI 2.4, CPU, VP9 video): the video read behind a PNG or MJPEG
    cover picture (the video flagged default or not: on a tie FFmpeg goes by bit rate, a cover picture's is 0), a
    default-flagged second video stream read instead of the first, and of two streams neither flagged default (an
    MJPEG one first, in Matroska), the first."""
    ours = _rank(stream)
    for s in container.streams.video:
        if s.index == stream.index:
            continue
        codec = s.codec_context.name if s.codec_context is not None else "unknown codec"
        what = f"stream {s.index} ({'a cover picture, ' if is_cover_picture(s) else ''}{codec})"
        head = f"DALI takes no stream index and may decode {what} instead of stream {stream.index}, the one sf2t reads"
        if _rank(s) > ours:
            default = int(s.disposition) & 0x1 and not int(stream.disposition) & 0x1
            why = (
                f"stream {s.index} is flagged default and stream {stream.index} is not"
                if default
                else f"stream {stream.index} is flagged for the hearing or visually impaired"
            )
            return f"{head}: DALI reads the stream FFmpeg ranks best, and {why}"
        if _rank(s) == ours:
            return (
                f"{head}: DALI reads the stream FFmpeg ranks best, and neither is flagged default over the other "
                "(FFmpeg then goes by bit rate and stream order)"
            )
        if s.index < stream.index and codec in DALI_GPU_CODECS:
            return f"{head}: it comes first, in a codec DALI decodes (DALI versions have read the first such stream)"
    return None


def _import_dali(path: str) -> None:
    try:
        import nvidia.dali  # noqa: F401
        import nvidia.dali.fn  # noqa: F401
    except Exception as e:  # ImportError, or a broken install (missing CUDA libraries, ...)
        raise VideoError(path, f"the dali backend needs NVIDIA DALI ({first_line(e)}; {_INSTALL})", "no_decoder") from e


def _dali_message(e: BaseException) -> str:
    """DALI's own error line out of its multi-line "Critical error in pipeline ... encountered: ..." text."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    msg = ""
    for i, ln in enumerate(lines):
        if ln.startswith("encountered:") and i + 1 < len(lines):
            msg = lines[i + 1]
            break
    if not msg:
        msg = next((ln for ln in lines if not ln.startswith(("Critical error", "Error in"))), "")
    msg = re.sub(r'^Assert on ".*?" failed:\s*', "", msg)
    return msg or type(e).__name__


# ---------------------------------------------------------------------------------------------------


class DaliBackend:
    """One video file decoded with DALI on ``device``.

    ``get_frames(indices, output=None)`` -> (uint8 [N, H, W, 3] RGB on ``device``, float64 [N] pts in seconds on the
    CPU); row i is frame ``indices[i]`` (any order, repeats allowed, ``[]`` gives [0, H, W, 3]); RGB for either
    ``output``. Frames come as coded: rotation metadata is not applied (``applies_rotation = False``).

    ``pts`` (seconds, one per frame in presentation order) and ``num_frames``: what the index already knows.
    ``pts`` given: trusted, the file is not demuxed (only its header is read, for the codec); ``num_frames`` alone
    is checked against the demuxed frame count. Raises ``VideoError`` (kinds: missing, empty,
    permission, unreadable, not_video, no_video, no_frames, truncated, unsupported, out_of_range, corrupt,
    no_decoder)."""

    name = "dali"
    applies_rotation = False
    share_pipeline = True  # one pipeline per (process, device, threads), reused across files

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        device: str | torch.device = "cpu",
        threads: int = 1,
        num_frames: int | None = None,
        pts: Sequence[float] | None = None,
    ):
        self.path = check_file(path)
        self.device = torch.device(device)
        if self.device.type == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError(f"device={str(self.device)!r} asked for but CUDA is not available")
            if self.device.index is None:
                self.device = torch.device("cuda", torch.cuda.current_device())
        if self.device.type not in ("cpu", "cuda"):
            raise ValueError(f"device must be cpu or cuda, got {self.device}")
        self.threads = check_int("threads", threads, min_value=1)
        if num_frames is not None:  # (the index's count: compared with the file's, and with len(pts))
            num_frames = check_int("num_frames", num_frames, min_value=0)
        if num_frames is not None and pts is not None and len(pts) != num_frames:
            raise ValueError(f"pts has {len(pts)} entries but num_frames is {num_frames}")
        _import_dali(self.path)
        self.codec = self.pix_fmt = ""
        self.width = self.height = 0  # coded size (what DALI returns); 0: learned from the first decode
        self.pts_exact = True
        self.frames_decoded = 0  # unique frames DALI returned (its seeking/skipping is not visible)
        times = self._probe(num_frames, pts)
        self.num_frames = len(times)
        if self.num_frames <= 0:
            raise VideoError(self.path, "the video stream has no frames", "no_frames")
        self.pts = torch.tensor(times, dtype=torch.float64)
        self._check_codec()
        self._data = np.fromfile(self.path, dtype=np.uint8)  # DALI decodes from memory
        self._pipe = None if self.share_pipeline else self._new_pipe()

    # -- open

    def _probe(self, num_frames: int | None, pts: Sequence[float] | None) -> list[float]:
        """Codec, pixel format and coded size from the header; per-frame times unless given."""
        if importlib.util.find_spec("av") is not None:
            container, stream = av_open(self.path)
            try:
                why = _other_stream(container, stream)
                if why:
                    raise VideoError(
                        self.path,
                        f"{why}; decoder=pyav or torchcodec reads stream {stream.index}",
                        "unsupported",
                    )
                cc = stream.codec_context
                self.codec = getattr(cc.codec, "canonical_name", None) or cc.name  # "av1", not "libdav1d"
                self.pix_fmt = cc.pix_fmt or ""
                self.width, self.height = int(cc.width or 0), int(cc.height or 0)
                if pts is not None:
                    return [float(t) for t in pts]
                demuxed = demux_index(self.path, container, stream)
                check_frame_order(self.path, demuxed.pts, demuxed.untimed, container)
                times = demuxed.seconds(stream.time_base)
            finally:
                container.close()
            if num_frames is not None and num_frames != len(times):
                kind = "truncated" if len(times) < num_frames else "corrupt"
                raise VideoError(
                    self.path,
                    f"the index says {num_frames} frames but the file has {len(times)} (changed since it was indexed?)",
                    kind,
                )
            return times
        if importlib.util.find_spec("torchcodec") is not None:
            return self._probe_torchcodec(num_frames, pts)
        if num_frames is None and pts is None:
            raise VideoError(
                self.path,
                "the dali backend needs PyAV or torchcodec to count frames and read timestamps (pip install av)",
                "no_decoder",
            )
        self.pts_exact = pts is not None
        return [float(t) for t in pts] if pts is not None else [float("nan")] * int(num_frames)

    def _probe_torchcodec(self, num_frames: int | None, pts: Sequence[float] | None) -> list[float]:
        # "approximate" reads the header only; "exact" scans the packets, needed to count WebM frames
        videos = [s for s in _streams(self.path) if s.media_type == "video"]
        if len(videos) > 1:
            raise VideoError(
                self.path,
                f"{len(videos)} video streams (cover pictures counted): DALI takes no stream index, and without PyAV "
                "sf2t cannot tell which one DALI reads; pip install av, or decoder=torchcodec reads the one sf2t "
                "indexes",
                "unsupported",
            )
        dec = tc_open(self.path, seek_mode="approximate" if num_frames is not None else "exact")
        m = dec.metadata
        self.codec = str(m.codec or "")
        self.pix_fmt = str(getattr(m, "pixel_format", "") or "")
        if pts is not None:
            return [float(t) for t in pts]
        n = int(num_frames if num_frames is not None else (m.num_frames or 0))
        fps = float(m.average_fps or 0.0)
        start = float(m.begin_stream_seconds or 0.0)
        self.pts_exact = False
        return [start + k / fps if fps > 0 else float("nan") for k in range(n)]

    def _check_codec(self) -> None:
        if not self.codec:
            return  # no prober installed: DALI itself will say whether it can decode the stream
        if self.device.type == "cpu":
            if self.codec not in DALI_CPU_CODECS:
                raise VideoError(
                    self.path,
                    f"DALI's CPU decoder cannot decode {self.codec} (it decodes "
                    f"{', '.join(sorted(DALI_CPU_CODECS))} only; use device='cuda' for NVDEC, or "
                    "another decoder)",
                    "unsupported",
                )
            return
        if self.codec not in DALI_GPU_CODECS:
            raise VideoError(
                self.path,
                f"DALI's GPU decoder cannot decode {self.codec} (it decodes {', '.join(sorted(DALI_GPU_CODECS))})",
                "unsupported",
            )
        if self.pix_fmt and self.pix_fmt not in DALI_GPU_PIX_FMTS:
            raise VideoError(
                self.path,
                f"DALI's GPU decoder converts 8-bit 4:2:0 (NV12) surfaces only, not {self.pix_fmt} "
                f"({self.codec}): refused rather than risk wrong colours",
                "unsupported",
            )

    def _new_pipe(self) -> _Pipe:
        dev = self.device.index if self.device.type == "cuda" else None
        try:
            return _get_pipe(dev, self.threads, shared=self.share_pipeline)
        except Exception as e:
            raise VideoError(
                self.path, f"cannot build the DALI pipeline on {self.device} ({_dali_message(e)})", "no_decoder"
            ) from e

    # -- decode

    def get_frames(
        self, indices: Sequence[int] | torch.Tensor, output: str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames ``indices`` (any order, repeats allowed): uint8 [N, H, W, 3] RGB on the backend's device and
        float64 [N] presentation times in seconds (CPU); row i is frame ``indices[i]``. ``output`` as the other
        backends take it (``sf2t.video.backends.OUTPUTS``): DALI gives RGB for either (YUV420 windows are the pyav
        backend's alone)."""
        if self._data is None:
            raise ValueError(f"{self.path}: the DALI backend is closed")
        check_output(output)
        idx = as_index_list(self.path, indices)
        check_range(self.path, idx, self.num_frames)
        if not idx and self.width and self.height:
            empty = torch.empty(0, self.height, self.width, 3, dtype=torch.uint8, device=self.device)
            return empty, torch.empty(0, dtype=torch.float64)
        uniq = sorted(set(idx)) if idx else [0]  # [] of an unknown size: decode frame 0 for the shape
        frames = self._decode(uniq)
        self.height, self.width = int(frames.shape[1]), int(frames.shape[2])
        if not idx:
            return frames[:0], torch.empty(0, dtype=torch.float64)
        if uniq != idx:
            rows = torch.searchsorted(torch.tensor(uniq), torch.tensor(idx))
            frames = frames.index_select(0, rows.to(frames.device))
        return frames, self.pts[torch.tensor(idx, dtype=torch.int64)]

    def _decode(self, uniq: list[int]) -> torch.Tensor:
        pipe = self._pipe or self._new_pipe()
        try:
            out = pipe.run(self._data, uniq)
        except Exception as e:
            pipe.broken = True  # DALI: "Current pipeline object is no longer valid": build a new one next time
            if pipe is self._pipe:
                self._pipe = None
            raise self._error(e) from e
        frames = torch.from_dlpack(out)  # zero copy; on the GPU DALI syncs its stream with torch's current one
        if frames.device != self.device:  # never expected: DALI puts mixed outputs on the pipeline's device
            frames = frames.to(self.device)
        if frames.dim() != 4 or frames.shape[0] != len(uniq) or frames.shape[-1] != 3:
            raise VideoError(
                self.path, f"DALI returned frames of shape {tuple(frames.shape)} for {len(uniq)} frames", "corrupt"
            )
        self.frames_decoded += len(uniq)
        return frames

    def _error(self, e: BaseException) -> VideoError:
        msg = _dali_message(e)
        m = re.search(r"out-of-bounds frame index (\d+).*? with (\d+) frames", msg)
        if m:
            return VideoError(
                self.path,
                f"frame index {m.group(1)} out of range: DALI finds {m.group(2)} frames "
                f"(the index says {self.num_frames})",
                "out_of_range",
            )
        if "Failed to create video decoder" in msg:
            return VideoError(
                self.path, f"DALI cannot open it as a {self.codec or 'video'} stream (DALI: {msg})", "unreadable"
            )
        return VideoError(self.path, f"decoding failed (DALI: {msg})", "corrupt")

    def close(self) -> None:
        self._data = None
        self._pipe = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return (
            f"DaliBackend({self.path!r}, device={str(self.device)!r}, codec={self.codec!r}, "
            f"num_frames={self.num_frames})"
        )
