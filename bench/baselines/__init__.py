"""Baselines for ``sf2t throughput`` (issue 9): what video-LLM fine-tuning stacks do today to turn a video and a
sample's frame indices into Qwen2-VL pixel values, written from the public descriptions of those stacks (no code
copied). Each module has ``pixels(path, ids, size, processor) -> (pixel_values_videos, video_grid_thw)``; the
processor is transformers' ``Qwen2VLVideoProcessor`` set to the target size (``processor_for``)."""


def processor_for(size: tuple[int, int]):
    """Qwen2-VL's video processor whose smart resize lands on ``size`` = (h, w) (multiples of 28)."""
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    px = size[0] * size[1]
    kw = {}
    if hasattr(Qwen2VLVideoProcessor, "cap_pixels_per_frame"):
        kw["cap_pixels_per_frame"] = False
    return Qwen2VLVideoProcessor(size={"shortest_edge": px, "longest_edge": px}, **kw)


def run_processor(processor, frames, size):
    """uint8 [F, h, w, 3] frames already at ``size`` -> (pixel_values_videos, video_grid_thw) via the processor."""
    out = processor(videos=[frames.permute(0, 3, 1, 2)], return_tensors="pt", do_sample_frames=False)
    return out["pixel_values_videos"], out["video_grid_thw"]
