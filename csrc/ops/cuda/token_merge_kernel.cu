// CUDA kernel of sf2t::token_merge_target (schema: ops/token_merge.cpp): for each token of G temporal groups, the
// kept slot it is averaged into. One warp per token: a dropped token scans the kept tokens of its
// (2 window + 1)^2 neighbourhood in position order (the whole group when none is that close), each similarity a
// warp-wide dot product of the unit-normalized features; the first best wins (ties to the lower position), as in
// the CPU kernel (ops/cpu/token_merge_kernel.cpp) and the Triton one (sf2t/kernels/token_merge.py).
// Includes only ATen/c10 headers (STYLE.md rule 4).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../token_merge_common.h"

namespace sf2t {
namespace {

constexpr int kWarpsPerBlock = 4;

__device__ __forceinline__ float warp_dot(const float* __restrict__ a, const float* __restrict__ b, int64_t d,
                                          int lane) {
  float acc = 0.f;
  for (int64_t k = lane; k < d; k += 32) acc = fmaf(a[k], b[k], acc);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  return acc;  // every lane holds the same sum
}

// Kept token p of the group at `base`, if it is kept, against the best so far (the first best wins). Uniform in a
// warp: every lane holds the same similarity (the butterfly sum adds the same pairs in every lane).
__device__ __forceinline__ void consider(const float* __restrict__ unit, const int32_t* __restrict__ slot,
                                         const float* __restrict__ xi, int64_t base, int64_t p, int64_t D, int lane,
                                         int32_t& best, float& best_sim) {
  const int32_t s = slot[base + p];
  if (s < 0) return;
  float sim = warp_dot(xi, unit + (base + p) * D, D, lane);
  if (isnan(sim)) sim = -2.f;  // ranks below every cosine (the CPU kernels' not_nan)
  if (best < 0 || sim > best_sim) {
    best = s;
    best_sim = sim;
  }
}

__global__ void merge_target_kernel(const float* __restrict__ unit, const int32_t* __restrict__ slot,
                                    int32_t* __restrict__ target, int64_t n, int64_t S, int64_t H, int64_t W,
                                    int64_t D, int64_t win) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;  // uniform in a warp
  const int lane = threadIdx.x % 32;
  if (t >= n) return;
  const int64_t base = (t / S) * S, i = t % S;
  int32_t best = slot[t];
  if (best < 0) {
    const float* xi = unit + t * D;
    float best_sim = -1.0e30f;
    const int64_t hi = i / W, wi = i % W;
    const int64_t y0 = hi - win < 0 ? 0 : hi - win, y1 = hi + win > H - 1 ? H - 1 : hi + win;
    const int64_t x0 = wi - win < 0 ? 0 : wi - win, x1 = wi + win > W - 1 ? W - 1 : wi + win;
    for (int64_t y = y0; y <= y1; ++y) {
      for (int64_t x = x0; x <= x1; ++x) consider(unit, slot, xi, base, y * W + x, D, lane, best, best_sim);
    }
    if (best < 0) {  // no kept token within the window: the most similar kept token of the group
      for (int64_t p = 0; p < S; ++p) consider(unit, slot, xi, base, p, D, lane, best, best_sim);
    }
  }
  if (lane == 0) target[t] = best;
}

at::Tensor token_merge_target_cuda(const at::Tensor& unit, const at::Tensor& slot, int64_t h, int64_t w,
                                   int64_t window) {
  check_merge_target_args(unit, slot, h, w, window);
  TORCH_CHECK(unit.is_cuda(), "token_merge_target: the cuda kernel needs CUDA tensors, got ", unit.device());
  const c10::cuda::CUDAGuard guard(unit.device());
  const at::Tensor u = unit.contiguous(), sl = slot.contiguous();
  at::Tensor target = at::empty_like(sl);
  const int64_t G = u.size(0), S = u.size(1), D = u.size(2), n = G * S;
  if (n == 0) return target;
  const int64_t blocks = (n + kWarpsPerBlock - 1) / kWarpsPerBlock;
  TORCH_CHECK(blocks < (int64_t{1} << 31), "token_merge_target: too many tokens for one launch: ", n);
  merge_target_kernel<<<static_cast<unsigned>(blocks), kWarpsPerBlock * 32, 0,
                        c10::cuda::getCurrentCUDAStream()>>>(u.data_ptr<float>(), sl.data_ptr<int32_t>(),
                                                              target.data_ptr<int32_t>(), n, S, h, w, D, window);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return target;
}

}  // namespace

TORCH_LIBRARY_IMPL(sf2t, CUDA, m) {
  m.impl("token_merge_target", &token_merge_target_cuda);
}

}  // namespace sf2t
