"""sf2t ops: Python front doors (contract, checks, reference, fake, backend choice) of the kernels."""

from sf2t.ops.fragment_pack import (
    NV12,
    QWEN2_VL_MEAN,
    QWEN2_VL_STD,
    YUV420,
    fragment_pack,
    fragment_pack_many,
    llava_target_size,
    qwen2_vl_target_size,
)
from sf2t.ops.thumbnail import thumb_mad, thumbnail
from sf2t.ops.token_merge import kept_count, token_merge

__all__ = [
    "NV12",
    "QWEN2_VL_MEAN",
    "QWEN2_VL_STD",
    "YUV420",
    "fragment_pack",
    "fragment_pack_many",
    "kept_count",
    "llava_target_size",
    "qwen2_vl_target_size",
    "thumb_mad",
    "thumbnail",
    "token_merge",
]
