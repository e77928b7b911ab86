"""sf2t ops: Python front doors (contract, checks, reference, fake, backend choice) of the kernels."""

from sf2t.ops.fragment_pack import (
    NV12,
    QWEN2_VL_MEAN,
    QWEN2_VL_STD,
    fragment_pack,
    llava_target_size,
    qwen2_vl_target_size,
)

__all__ = ["NV12", "fragment_pack", "llava_target_size", "qwen2_vl_target_size", "QWEN2_VL_MEAN", "QWEN2_VL_STD"]
