"""qwen-vl-utils-style (its torchcodec reader, from the public description): per sample, open a torchcodec
``VideoDecoder``, ``get_frames_at`` the sample's frames, resize them (bicubic, antialiased) to the target size, then
the HF video processor.

The resize is torch's uint8 antialiased bicubic (``F.interpolate``, the processor's own path), not torchvision's
``resize`` that qwen-vl-utils calls: measured here, torchvision 0.29's uint8 resize differs from it by up to 7
steps, which would put this baseline's pixels outside fragment_pack's tolerance of the processor's. Both are torch
kernels of the same cost, so the timing is unchanged.

``VideoDecoder(path)`` opens torchcodec's default stream, FFmpeg's "best" one: in a file with cover art before the
video that is the video (cover pictures are passed over), not the picture, but its exact mode (the default, as
qwen-vl-utils opens it) could not open such an MP4 here (torchcodec 0.17, FFmpeg 5.1: "Could not seek file to pts=0",
with or without ``stream_index``; the same file with the picture after the video opens). ``sf2t throughput`` leaves
such a file out of the comparison (the LLaMA-Factory-style baseline reads the picture)."""

from bench.baselines import run_processor


def pixels(path: str, ids, size, processor, threads: int = 1):
    import torch.nn.functional as F
    from torchcodec.decoders import VideoDecoder

    dec = VideoDecoder(path, dimension_order="NCHW", num_ffmpeg_threads=threads)
    frames = dec.get_frames_at(list(ids)).data  # [F, 3, H, W] uint8
    frames = F.interpolate(frames, size=tuple(size), mode="bicubic", antialias=True)
    return run_processor(processor, frames.permute(0, 2, 3, 1), size)
