"""LLaMA-Factory-style (its PyAV path, from the public description): per sample, open the file with PyAV, decode
the video's frames in order keeping the needed ones, resize each with PIL (bicubic) to the target size, then the
HF video processor.

It reads the container's first video stream, as LLaMA-Factory's PyAV path does (the first stream of type video, no
look at its disposition), not the one sf2t reads (the first that is not a cover picture): in a file with cover art
before the video that is the picture, one frame, and LLaMA-Factory would train on it. ``sf2t throughput`` leaves
such a file out of the comparison with its reason (``sf2t.throughput.videos._unlike``) instead of having this model
read a stream LLaMA-Factory does not."""

import numpy as np
import torch

from bench.baselines import run_processor


def decode(path: str, ids, threads: int = 1, interpolation=None, to_end: bool = False) -> torch.Tensor:
    """uint8 [F, H, W, 3] frames ``ids`` of the container's first video stream, decoded in order from the start until
    the last needed one (``to_end``: to the end of the stream, as ``bench/bench_decode.py``'s model of it does). A
    stream that ends before a needed frame (a truncated file, or a header that over-reports its frames) is a
    ``ValueError`` naming the file, the frames needed and the frames the stream had."""
    import av

    want, got, seen = set(ids), {}, 0
    with av.open(path) as c:
        stream = c.streams.video[0]
        stream.thread_count = threads
        for k, frame in enumerate(c.decode(stream)):
            seen = k + 1
            if k in want:
                got[k] = frame.to_ndarray(format="rgb24", interpolation=interpolation)
            if len(got) == len(want) and not to_end:
                break
        index = stream.index
    if len(got) < len(want):
        had = f"frames 0-{seen - 1}" if seen else "no frame"
        raise ValueError(
            f"{path}: needed frames {sorted(want)} of its first video stream (stream {index}), which has {had}; "
            f"frames {sorted(want - set(got))} are not there (a truncated file, or a frame count its header "
            "over-reports)"
        )
    return torch.from_numpy(np.stack([got[k] for k in ids]))


def pixels(path: str, ids, size, processor, threads: int = 1):
    from PIL import Image

    frames = decode(path, ids, threads)
    h, w = size
    resized = [np.asarray(Image.fromarray(f.numpy()).resize((w, h), Image.BICUBIC)) for f in frames]
    return run_processor(processor, torch.from_numpy(np.stack(resized)), size)


def check_pixels(path: str, ids, size, processor, threads: int = 1):
    """``pixels`` with sf2t's rounding (see the module docstring): RGB by swscale's bicubic scaler, as torchcodec and
    sf2t's PyAV backend convert, and the resize's horizontal pass first, as torch's."""
    from PIL import Image

    frames = decode(path, ids, threads, interpolation="BICUBIC")
    h, w = size
    resized = []
    for f in frames:
        im = Image.fromarray(f.numpy())
        resized.append(np.asarray(im.resize((w, im.height), Image.BICUBIC).resize((w, h), Image.BICUBIC)))
    return run_processor(processor, torch.from_numpy(np.stack(resized)), size)
