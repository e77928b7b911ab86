"""Target sizes for ``fragment_pack``: Qwen2-VL's (``qwen2_vl_target_size``, the nearest valid size and the one
message every command gives for a bad one) and the LLaVA video processors' (``llava_target_size``, the centre-crop
offsets). Public through ``sf2t.ops.fragment_pack``."""

from __future__ import annotations

import math
from collections.abc import Sequence

from sf2t._checks import check_int, check_int_pair

QWEN2_VL_FACTOR = 28  # a Qwen2-VL frame side: whole merged patches (patch_size 14 x merge_size 2)


def nearest_qwen2_vl_size(size: Sequence[int], factor: int = QWEN2_VL_FACTOR) -> tuple[int, int] | None:
    """None where ``size`` (h, w) is positive multiples of ``factor``; else the (h, w) nearest to it that is (each
    side rounded to the nearest multiple, at least ``factor``): the size a message suggests instead (commands name
    their own option, e.g. ``--size 250 450: use --size 252 448``)."""
    if all(s > 0 and s % factor == 0 for s in size):
        return None
    return tuple(max(factor, (int(s) + factor // 2) // factor * factor) for s in size)


# The most pixels a frame Qwen2-VL's processors make with the checkpoints' own preprocessor_config (max_pixels
# 28 * 28 * 16384: 16,384 merged visual tokens a frame); a larger size is refused (28000 x 28000, 9.4 GB a frame as
# packed float32, ran out of memory)
QWEN2_VL_SIZE_LIMIT = 28 * 28 * 16384
QWEN2_VL_LARGEST_SQUARE = (3584, 3584)  # 128 x 128 of 28: exactly the limit


def qwen2_vl_size_message(size: Sequence[int], given: str, use: str) -> str | None:
    """None where ``size`` (h, w) is positive multiples of 28 of at most ``QWEN2_VL_SIZE_LIMIT`` pixels; else the one
    message every command gives for it: ``given`` (how the user wrote it, e.g. ``--size 250 450``), the rule and its
    reason, and ``use`` (e.g. ``--size {h} {w}``) filled with the size to use instead: :func:`nearest_qwen2_vl_size`,
    or for a larger size the largest of its aspect ratio (:func:`qwen2_vl_target_size`) within the limit, the most
    Qwen2-VL's processors make with the checkpoints' own ``max_pixels``."""
    near = nearest_qwen2_vl_size(size)
    h, w = near or size
    if h * w > QWEN2_VL_SIZE_LIMIT:
        try:
            fit = qwen2_vl_target_size(int(h), int(w), max_pixels=QWEN2_VL_SIZE_LIMIT)
        except ValueError:  # (an aspect ratio above 200)
            fit = QWEN2_VL_LARGEST_SQUARE
        sq = QWEN2_VL_LARGEST_SQUARE
        as28 = "" if near is None else f" (as multiples of 28: {h} x {w})"
        return (
            f"{given}: frames too large for Qwen2-VL: {h * w:,} pixels a frame{as28}, more than its processors make "
            f"(the checkpoints' max_pixels 28*28*16384 = {QWEN2_VL_SIZE_LIMIT:,}; {h * w * 12:,} bytes a frame packed "
            "as float32); use " + use.format(h=fit[0], w=fit[1]) + f" (the largest square: {sq[0]} x {sq[1]})"
        )
    if near is None:
        return None
    return f"{given}: H and W must be positive multiples of 28 for Qwen2-VL (patch 14 x merge 2); use " + use.format(
        h=near[0], w=near[1]
    )


def qwen2_vl_target_size(
    height: int, width: int, *, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 14 * 14 * 4 * 1280
) -> tuple[int, int]:
    """Qwen2-VL's ``smart_resize``: the (h, w) closest to the input's aspect ratio whose sides are
    multiples of ``factor`` and whose area lies in ``[min_pixels, max_pixels]``. Every argument is an int (numpy
    integers too)."""
    height, width = check_int("height", height), check_int("width", width)
    factor = check_int("factor", factor, min_value=1)
    min_pixels = check_int("min_pixels", min_pixels, min_value=0)
    max_pixels = check_int("max_pixels", max_pixels, min_value=1)
    if height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio of {height}x{width} is above 200, which Qwen2-VL does not accept")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def llava_target_size(
    height: int,
    width: int,
    *,
    size: tuple[int, int] | None = None,
    shortest_edge: int | None = None,
    crop: tuple[int, int] | None = None,
) -> tuple[tuple[int, int], tuple[int, int]]:
    """(resize (h, w), output (h, w)) the LLaVA video processors' way, for ``fragment_pack(layout="fchw")``:

    - ``size=(h, w)``: resize to exactly that (LLaVA-OneVision: 384x384), no crop unless ``crop`` is given;
    - ``shortest_edge=s``: the short side to ``s``, the long side to ``int(s * long / short)`` (transformers'
      ``get_resize_output_image_size``), then a centre ``crop`` (LLaVA-NeXT-Video: 224, crop 224x224).

    Sizes are ints (numpy integers too); ``size`` and ``crop`` pairs of them.
    """
    height, width = check_int("height", height), check_int("width", width)
    if height <= 0 or width <= 0:
        raise ValueError(f"height and width must be positive, got {height}x{width}")
    if (size is None) == (shortest_edge is None):
        raise ValueError("give exactly one of size=(h, w) or shortest_edge=s")
    if size is not None:
        resize = check_int_pair("size", size)
        if min(resize) <= 0:
            raise ValueError(f"size must be positive, got {resize}")
    else:
        shortest_edge = check_int("shortest_edge", shortest_edge, min_value=1)
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = shortest_edge, int(shortest_edge * long / short)
        resize = (new_long, new_short) if width <= height else (new_short, new_long)
    out = resize if crop is None else check_int_pair("crop", crop)
    if out[0] > resize[0] or out[1] > resize[1] or min(out) <= 0:
        raise ValueError(f"crop {out} must be positive and fit the resized {resize}")
    return resize, out


def _center_offset(resize: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """The processors' centre-crop offsets, (in - out) // 2 (measured: transformers' LLaVA-NeXT-Video video processor
    crops 224 of a 527-wide resize from x = 151, not torchvision's round(151.5) = 152)."""
    return (resize[0] - size[0]) // 2, (resize[1] - size[1]) // 2
