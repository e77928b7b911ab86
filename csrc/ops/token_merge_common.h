// Argument checks of sf2t::token_merge_target, shared by its CPU and CUDA kernels.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace sf2t {

inline void check_merge_target_args(const at::Tensor& unit, const at::Tensor& slot, int64_t h, int64_t w,
                                    int64_t window) {
  TORCH_CHECK(unit.scalar_type() == at::kFloat && unit.dim() == 3,
              "token_merge_target: unit must be float32 [G, S, D], got ", unit.scalar_type(), " ", unit.sizes());
  TORCH_CHECK(slot.scalar_type() == at::kInt && slot.dim() == 2 && slot.size(0) == unit.size(0) &&
                  slot.size(1) == unit.size(1),
              "token_merge_target: slot must be int32 [G, S] matching unit ", unit.sizes(), ", got ",
              slot.scalar_type(), " ", slot.sizes());
  TORCH_CHECK(slot.device() == unit.device(), "token_merge_target: unit and slot must be on one device, got ",
              unit.device(), " and ", slot.device());
  TORCH_CHECK(h >= 0 && w >= 0 && h * w == unit.size(1), "token_merge_target: h * w must equal S = ", unit.size(1),
              ", got h ", h, ", w ", w);
  TORCH_CHECK(window >= 0, "token_merge_target: window must be >= 0, got ", window);
  TORCH_CHECK(unit.size(2) > 0 || unit.numel() == 0, "token_merge_target: tokens must have D > 0 features");
}

}  // namespace sf2t
