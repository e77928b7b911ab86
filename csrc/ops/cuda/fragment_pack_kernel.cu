// CUDA kernel of sf2t::fragment_pack. Same arithmetic as the CPU kernel (int16 resize weights,
// uint8 between the horizontal and vertical passes), so both give identical bits. The plan (indices,
// boxes) and the resize weights are prepared on the host (fragment_pack_host.h) and uploaded once.
// Includes only ATen/c10 headers: torch/extension.h multiplies nvcc time on 2 cores (STYLE.md rule 4).
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAStream.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/util/BFloat16.h>
#include <cuda_bf16.h>
#include <torch/library.h>

#include <cstdlib>
#include <cstring>

#include "../fragment_pack_host.h"
#include "../fragment_pack_tiled_host.h"

namespace sf2t {
namespace {

using namespace fragment_pack_detail;

// Per presented frame, in a packed int32 table: [src, x0, y0, crop_h, row_offset, kx, px, ky, py,
// wx_off, wy_off] followed by the weight tables (start, size, then ksize int16 weights widened).
constexpr int kMeta = 11;

__device__ __forceinline__ uint8_t clamp_shift(int32_t acc, int precision) {
  int32_t v = acc >> precision;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// NV12 input: the chroma plane, its strides and the Q16 conversion constants (fragment_pack_host.h: nv12_pixel).
struct Nv12Args {
  const uint8_t* uv = nullptr;
  int64_t uN = 0, uH = 0, uW = 0, uC = 0;
  int32_t k[6] = {0, 0, 0, 0, 0, 0};
};

__device__ __forceinline__ int32_t clamp255(int32_t v) { return v < 0 ? 0 : (v > 255 ? 255 : v); }

// With NV12, src is the Y plane and each tapped pixel's RGB comes from Y and its 2x2 block's UV, in the integer
// arithmetic of the reference (NV12.to_rgb), so the resize sees the same uint8 RGB.
// Grid: x = tmp row (all presented frames' crop rows), y = chunk of output columns; one thread per output pixel.
// Row-level values are uniform in a block (broadcast loads, computed once); per-pixel math is int32.
template <bool NV12>
__global__ void horizontal_kernel(const uint8_t* __restrict__ src, int64_t sN, int64_t sH, int64_t sW, int64_t sC,
                                  const int32_t* __restrict__ table, const int32_t* __restrict__ row_frame,
                                  int32_t out_w, uint8_t* __restrict__ tmp, Nv12Args nv) {
  const int64_t row = blockIdx.x;
  const int32_t x = static_cast<int32_t>(blockIdx.y * blockDim.x + threadIdx.x);
  if (x >= out_w) return;
  const int32_t f = row_frame[row];
  const int32_t* m = table + f * kMeta;
  const int64_t y = m[2] + (row - m[4]);
  const int32_t kx = m[5], prec = m[6];
  const int32_t* wt = table + m[9];  // start[out_w], size[out_w], w[out_w * kx]
  const int32_t start = wt[x], size = wt[out_w + x];
  const int32_t* w = wt + 2 * out_w + x * kx;
  const uint8_t* p = src + m[0] * sN + y * sH + (m[1] + start) * sW;
  const int32_t bias = 1 << (prec - 1);
  int32_t a0 = bias, a1 = bias, a2 = bias;
  if constexpr (NV12) {
    const uint8_t* crow = nv.uv + m[0] * nv.uN + (y / 2) * nv.uH;
    const int32_t xa0 = m[1] + start, half = 1 << 15;
    for (int32_t k = 0; k < size; ++k) {
      const int32_t xa = xa0 + k;
      const uint8_t* c = crow + (xa / 2) * nv.uW;
      const int32_t yy = static_cast<int32_t>(p[k * sW]) - nv.k[5], d = c[0] - 128, e = c[nv.uC] - 128;
      a0 += clamp255((nv.k[0] * yy + nv.k[1] * e + half) >> 16) * w[k];
      a1 += clamp255((nv.k[0] * yy - nv.k[2] * d - nv.k[3] * e + half) >> 16) * w[k];
      a2 += clamp255((nv.k[0] * yy + nv.k[4] * d + half) >> 16) * w[k];
    }
  } else {
    const int32_t step = static_cast<int32_t>(sW), cs = static_cast<int32_t>(sC);
    for (int32_t k = 0, o = 0; k < size; ++k, o += step) {
      const int32_t wk = w[k];
      a0 += static_cast<int32_t>(p[o]) * wk;
      a1 += static_cast<int32_t>(p[o + cs]) * wk;
      a2 += static_cast<int32_t>(p[o + 2 * cs]) * wk;
    }
  }
  uint8_t* d = tmp + (row * out_w + x) * 3;
  d[0] = clamp_shift(a0, prec);
  d[1] = clamp_shift(a1, prec);
  d[2] = clamp_shift(a2, prec);
}

template <typename out_t>
__device__ __forceinline__ out_t to_out(float v);
template <>
__device__ __forceinline__ float to_out<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __nv_bfloat16 to_out<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);  // round to nearest even, as torch's float -> bfloat16 cast
}

// FCHW: the LLaVA layout [presented * repeat, 3, out_h, out_w]; else Qwen2-VL patches.
// Grid: x = presented frame * out_h + output row, y = chunk of output columns; one thread per output pixel.
template <typename out_t, bool FCHW>
__global__ void vertical_kernel(const uint8_t* __restrict__ tmp, const int32_t* __restrict__ table, int64_t presented,
                                int32_t out_h, int32_t out_w, int64_t repeat, int64_t total_frames, int32_t patch,
                                int64_t tpatch, int32_t merge, float3 mean255, float3 inv_std255,
                                out_t* __restrict__ out) {
  const int32_t x = static_cast<int32_t>(blockIdx.y * blockDim.x + threadIdx.x);
  if (x >= out_w) return;
  const int64_t f = blockIdx.x / out_h;
  const int32_t y = static_cast<int32_t>(blockIdx.x - f * out_h);
  const int32_t* m = table + f * kMeta;
  const int32_t ky = m[7], prec = m[8];
  const int32_t* wt = table + m[10];  // start[out_h], size[out_h], w[out_h * ky]
  const int32_t start = wt[y], size = wt[out_h + y];
  const int32_t* w = wt + 2 * out_h + y * ky;
  const int64_t stride = static_cast<int64_t>(out_w) * 3;
  const uint8_t* p = tmp + (m[4] + start) * stride + x * 3;
  const int32_t bias = 1 << (prec - 1);
  int32_t a0 = bias, a1 = bias, a2 = bias;
  for (int32_t k = 0; k < size; ++k) {
    const uint8_t* q = p + k * stride;
    const int32_t wk = w[k];
    a0 += static_cast<int32_t>(q[0]) * wk;
    a1 += static_cast<int32_t>(q[1]) * wk;
    a2 += static_cast<int32_t>(q[2]) * wk;
  }
  const float v0 = (static_cast<float>(clamp_shift(a0, prec)) - mean255.x) * inv_std255.x;
  const float v1 = (static_cast<float>(clamp_shift(a1, prec)) - mean255.y) * inv_std255.y;
  const float v2 = (static_cast<float>(clamp_shift(a2, prec)) - mean255.z) * inv_std255.z;
  if constexpr (FCHW) {
    const int64_t plane = static_cast<int64_t>(out_h) * out_w;
    for (int64_t r = f * repeat; r < (f + 1) * repeat; ++r) {
      out_t* o = out + r * 3 * plane + static_cast<int64_t>(y) * out_w + x;
      o[0] = to_out<out_t>(v0);
      o[plane] = to_out<out_t>(v1);
      o[2 * plane] = to_out<out_t>(v2);
    }
    return;
  }
  const int32_t gh = out_h / patch, gw = out_w / patch;
  const int64_t cols = 3 * tpatch * patch * patch;
  const int32_t hy = y / patch, py = y - hy * patch, wx = x / patch, px = x - wx * patch;
  // the patch row of (t, hy, wx) is t * rows_per_t + spatial; spatial is the same for every temporal index
  const int64_t spatial = (static_cast<int64_t>(hy / merge) * (gw / merge) + wx / merge) * merge * merge +
                          (hy % merge) * merge + (wx % merge);
  const int64_t rows_per_t = static_cast<int64_t>(gh / merge) * (gw / merge) * merge * merge;
  const int64_t cstride = tpatch * patch * patch;
  const int64_t r_begin = f * repeat;
  const int64_t r_end = (f == presented - 1) ? total_frames : r_begin + repeat;
  for (int64_t r = r_begin; r < r_end; ++r) {
    const int64_t t = r / tpatch, ti = r - t * tpatch;
    out_t* o = out + (t * rows_per_t + spatial) * cols + (ti * patch + py) * patch + px;
    o[0] = to_out<out_t>(v0);
    o[cstride] = to_out<out_t>(v1);
    o[2 * cstride] = to_out<out_t>(v2);
  }
}

// The tiled single-pass kernel (fragment_pack_tiled.h): one block per output tile, three phases. At least 5 blocks an
// SM: 48 registers a thread, no spills (sm_90), where the tile kept across the phases would otherwise take 57.
constexpr int kTiledThreads = 256;

__global__ void __launch_bounds__(kTiledThreads, 5) tiled_kernel(fragment_pack_tiled::Args a) {
  extern __shared__ __align__(16) uint8_t tiled_smem[];
  const fragment_pack_tiled::Tile t = fragment_pack_tiled::tile_of(a, blockIdx.x);
  fragment_pack_tiled::tiled_phase(a, t, 0, threadIdx.x, blockDim.x, tiled_smem);
  __syncthreads();
  fragment_pack_tiled::tiled_phase(a, t, 1, threadIdx.x, blockDim.x, tiled_smem);
  __syncthreads();
  fragment_pack_tiled::tiled_phase(a, t, 2, threadIdx.x, blockDim.x, tiled_smem);
}

// A kernel's int32 table on `device`, copied from pinned memory without waiting for the stream. The non-blocking
// copy records an event with the caching host allocator, so the pinned buffer may go out of scope before it runs.
at::Tensor upload_table(const std::vector<int32_t>& table, const at::Device& device) {
  auto opts_i32 = at::TensorOptions().dtype(at::kInt);
  at::Tensor host = at::empty({static_cast<int64_t>(table.size())}, opts_i32.pinned_memory(true));
  std::copy(table.begin(), table.end(), host.data_ptr<int32_t>());
  return host.to(at::TensorOptions().device(device).dtype(at::kInt), /*non_blocking=*/true);
}

// Which CUDA kernel runs: SF2T_FRAGMENT_PACK_CUDA=tiled or two_pass. Two-pass stays the default until the tiled
// kernel's bandwidth is measured on a GPU (bench/bench_fragment_pack.py times both).
bool use_tiled() {
  const char* e = std::getenv("SF2T_FRAGMENT_PACK_CUDA");
  if (e == nullptr || *e == 0 || std::strcmp(e, "two_pass") == 0) return false;
  TORCH_CHECK(std::strcmp(e, "tiled") == 0, "SF2T_FRAGMENT_PACK_CUDA must be tiled or two_pass, got '", e, "'");
  return true;
}

// Runs the tiled kernel; false (nothing launched) when no tile fits kTiledSmemMax (extreme downscales).
bool launch_tiled(const Plan& pl, const at::Tensor& frames, const std::optional<at::Tensor>& uv, at::Tensor& out,
                  bool fchw) {
  using namespace fragment_pack_tiled;
  Args a;
  const std::vector<int32_t> table = choose_tile(pl, fchw, kTiledSmemMax, a);
  if (table.empty()) return false;
  const int64_t smem = smem_bytes(a);
  const int64_t blocks = pl.presented * a.tiles_per_frame;
  TORCH_CHECK(blocks < (int64_t{1} << 31), "fragment_pack: plan too large for the CUDA kernel's grid");
  const at::Tensor dev = upload_table(table, frames.device());
  tiled_input(frames, uv, a);
  a.table = dev.data_ptr<int32_t>();
  a.out = out.data_ptr();
  if (smem > 48 * 1024) {
    C10_CUDA_CHECK(cudaFuncSetAttribute(tiled_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(smem)));
  }
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  tiled_kernel<<<static_cast<unsigned>(blocks), kTiledThreads, static_cast<size_t>(smem), stream>>>(a);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return true;
}

// Both passes for a prepared plan; `out` is allocated by the caller in its layout (fchw or Qwen2-VL patches).
void launch(const Plan& pl, const at::Tensor& frames, const std::optional<at::Tensor>& uv, at::Tensor& out,
            bool fchw) {
  TORCH_CHECK(!pl.sws, "fragment_pack (CUDA kernel): libswscale's YUV arithmetic (yuv = [1, ...], sf2t.ops.YUV420) "
              "is implemented in the CPU kernel only; convert the frames to RGB first (YUV420.to_rgb)");
  if (use_tiled() && launch_tiled(pl, frames, uv, out, fchw)) return;
  const int64_t out_h = pl.out_h, out_w = pl.out_w;
  // Pack plan + weights into one int32 table and one row->frame map; upload once.
  std::vector<int32_t> table(pl.presented * kMeta);
  std::vector<int32_t> row_frame;
  int64_t row_offset = 0;
  for (int64_t f = 0; f < pl.presented; ++f) {
    const int64_t crop_h = pl.box[4 * f + 3] - pl.box[4 * f + 1];
    int32_t* m = table.data() + f * kMeta;
    m[0] = static_cast<int32_t>(pl.src[f]);
    m[1] = static_cast<int32_t>(pl.box[4 * f]);
    m[2] = static_cast<int32_t>(pl.box[4 * f + 1]);
    m[3] = static_cast<int32_t>(crop_h);
    m[4] = static_cast<int32_t>(row_offset);
    m[5] = static_cast<int32_t>(pl.wx[f]->ksize);
    m[6] = pl.wx[f]->precision;
    m[7] = static_cast<int32_t>(pl.wy[f]->ksize);
    m[8] = pl.wy[f]->precision;
    row_frame.insert(row_frame.end(), crop_h, static_cast<int32_t>(f));
    row_offset += crop_h;
  }
  // Weights depend on the crop's size alone (one plan: one output size): frames with the crop size of an earlier
  // frame point at its weights, so the table (and its upload) does not grow with the frame count.
  std::vector<std::pair<int64_t, int32_t>> seen[2];  // (crop size, table offset) per axis
  for (int64_t f = 0; f < pl.presented; ++f) {
    for (int axis = 0; axis < 2; ++axis) {
      const AxisWeights& aw = axis == 0 ? *pl.wx[f] : *pl.wy[f];
      const int64_t crop = axis == 0 ? pl.box[4 * f + 2] - pl.box[4 * f] : pl.box[4 * f + 3] - pl.box[4 * f + 1];
      int32_t off = -1;
      for (const auto& [size, o] : seen[axis])
        if (size == crop) off = o;
      if (off < 0) {
        off = static_cast<int32_t>(table.size());
        seen[axis].emplace_back(crop, off);
        table.insert(table.end(), aw.start.begin(), aw.start.end());
        table.insert(table.end(), aw.size.begin(), aw.size.end());
        table.insert(table.end(), aw.w.begin(), aw.w.end());
      }
      table[f * kMeta + 9 + axis] = off;
    }
  }
  TORCH_CHECK(row_offset * out_w * 3 < (int64_t{1} << 40), "fragment_pack: plan too large");
  const int64_t table_size = static_cast<int64_t>(table.size());
  table.insert(table.end(), row_frame.begin(), row_frame.end());  // one upload: the table, then the row map
  const at::Tensor dev = upload_table(table, frames.device());
  at::Tensor tmp = at::empty({row_offset, out_w, 3}, frames.options());
  const int32_t* d_table = dev.data_ptr<int32_t>();
  const int32_t* d_row_frame = d_table + table_size;
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  // 2-D grids: x over rows (up to 2^31 - 1 blocks), y over column chunks of at most 256 threads, sized so the
  // chunks cover out_w with less than a warp left idle
  const int64_t chunks = (out_w + 255) / 256;
  const int threads = static_cast<int>(((out_w + chunks - 1) / chunks + 31) / 32 * 32);
  TORCH_CHECK(chunks < 65536 && row_offset < (int64_t{1} << 31) && pl.presented * out_h < (int64_t{1} << 31),
              "fragment_pack: plan too large for the CUDA kernel's grid");
  const int32_t ow = static_cast<int32_t>(out_w), oh = static_cast<int32_t>(out_h);
  Nv12Args nv;
  if (row_offset > 0) {
    const dim3 grid1(static_cast<unsigned>(row_offset), static_cast<unsigned>(chunks));
    if (pl.nv12) {
      nv.uv = uv->data_ptr<uint8_t>();
      nv.uN = uv->stride(0);
      nv.uH = uv->stride(1);
      nv.uW = uv->stride(2);
      nv.uC = uv->stride(3);
      for (int i = 0; i < 6; ++i) nv.k[i] = pl.yuv[i];
      horizontal_kernel<true><<<grid1, threads, 0, stream>>>(frames.data_ptr<uint8_t>(), frames.stride(0),
                                                             frames.stride(1), frames.stride(2), 1, d_table,
                                                             d_row_frame, ow, tmp.data_ptr<uint8_t>(), nv);
    } else {
      horizontal_kernel<false><<<grid1, threads, 0, stream>>>(
          frames.data_ptr<uint8_t>(), frames.stride(0), frames.stride(1), frames.stride(2), frames.stride(3), d_table,
          d_row_frame, ow, tmp.data_ptr<uint8_t>(), nv);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  const float3 m255 = make_float3(pl.mean255[0], pl.mean255[1], pl.mean255[2]);
  const float3 is255 = make_float3(pl.inv_std255[0], pl.inv_std255[1], pl.inv_std255[2]);
  const dim3 grid2(static_cast<unsigned>(pl.presented * out_h), static_cast<unsigned>(chunks));
  if (pl.presented * out_h == 0) return;
  const int32_t patch = static_cast<int32_t>(pl.patch), merge = static_cast<int32_t>(pl.merge);
  if (pl.out_dtype == at::kFloat) {
    auto k = fchw ? vertical_kernel<float, true> : vertical_kernel<float, false>;
    k<<<grid2, threads, 0, stream>>>(tmp.data_ptr<uint8_t>(), d_table, pl.presented, oh, ow, pl.repeat,
                                     pl.total_frames, patch, pl.tpatch, merge, m255, is255, out.data_ptr<float>());
  } else {
    auto k = fchw ? vertical_kernel<__nv_bfloat16, true> : vertical_kernel<__nv_bfloat16, false>;
    k<<<grid2, threads, 0, stream>>>(tmp.data_ptr<uint8_t>(), d_table, pl.presented, oh, ow, pl.repeat,
                                     pl.total_frames, patch, pl.tpatch, merge, m255, is255,
                                     reinterpret_cast<__nv_bfloat16*>(out.data_ptr<c10::BFloat16>()));
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

at::Tensor fragment_pack_cuda(const at::Tensor& frames, const at::Tensor& src_index, const at::Tensor& boxes,
                              int64_t out_h, int64_t out_w, c10::ArrayRef<double> mean, c10::ArrayRef<double> std,
                              int64_t patch_size, int64_t temporal_patch_size, int64_t merge_size,
                              int64_t frame_repeat, std::optional<at::ScalarType> dtype,
                              const std::optional<at::Tensor>& uv, at::OptionalIntArrayRef yuv) {
  TORCH_CHECK(frames.is_cuda(), "fragment_pack (CUDA kernel): frames must be on a CUDA device, got ", frames.device());
  const Plan pl = make_plan(frames, src_index, boxes, out_h, out_w, mean, std, patch_size, temporal_patch_size,
                            merge_size, frame_repeat, dtype, uv, yuv);
  c10::cuda::CUDAGuard guard(frames.device());
  const Layout lay(pl);
  const int64_t rows = pl.total_frames / temporal_patch_size * (out_h / patch_size) * (out_w / patch_size);
  at::Tensor out = at::empty({rows, lay.cols}, frames.options().dtype(pl.out_dtype));
  if (pl.presented > 0) launch(pl, frames, uv, out, /*fchw=*/false);
  return out;
}

at::Tensor fragment_pack_fchw_cuda(const at::Tensor& frames, const at::Tensor& src_index, const at::Tensor& boxes,
                                   int64_t resize_h, int64_t resize_w, int64_t crop_y, int64_t crop_x, int64_t out_h,
                                   int64_t out_w, c10::ArrayRef<double> mean, c10::ArrayRef<double> std,
                                   int64_t frame_repeat, std::optional<at::ScalarType> dtype,
                                   const std::optional<at::Tensor>& uv, at::OptionalIntArrayRef yuv) {
  TORCH_CHECK(frames.is_cuda(), "fragment_pack_fchw (CUDA kernel): frames must be on a CUDA device, got ",
              frames.device());
  const Plan pl = make_plan_common("fragment_pack_fchw", frames, src_index, boxes, resize_h, resize_w, crop_y, crop_x,
                                   out_h, out_w, mean, std, frame_repeat, dtype, uv, yuv);
  c10::cuda::CUDAGuard guard(frames.device());
  at::Tensor out = at::empty({pl.total_frames, 3, out_h, out_w}, frames.options().dtype(pl.out_dtype));
  if (pl.presented > 0) launch(pl, frames, uv, out, /*fchw=*/true);
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(sf2t, CUDA, m) {
  m.impl("fragment_pack", &fragment_pack_cuda);
  m.impl("fragment_pack_fchw", &fragment_pack_fchw_cuda);
}

}  // namespace sf2t
