"""The pyav backend (:class:`PyAVBackend`): frame-exact random access with PyAV, on the CPU. RGB is converted straight
from the decoder's planes into the window (``sf2t.video.convert``); ``output="yuv420"`` gives YUV420 windows instead,
their buffers drawn from one pool per process (:class:`_WindowPool`). Opened through
``sf2t.video.backends.open_decoder``, which re-exports these names.
"""

from __future__ import annotations

import bisect
import itertools
import os

import torch

from sf2t.ops.fragment_pack import YUV420
from sf2t.video._backend import OUTPUTS, Backend, _rotate
from sf2t.video.convert import SwscaleRGB, copy_planes
from sf2t.video.errors import VideoError, first_line
from sf2t.video.probe import (
    av_open,
    check_frame_order,
    check_pixel_format,
    decode_order_error,
    demux_index,
    frames_out_of_order,
    order_unchecked,
)


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
