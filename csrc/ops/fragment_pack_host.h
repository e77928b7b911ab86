// Argument checks and plan preparation shared by the CPU and CUDA kernels of sf2t::fragment_pack.
// Both kernels read the plan (indices, boxes) on the host, so every index and box is validated here
// before any pixel is read: a bad plan is a clear error, never an out-of-bounds read.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "fragment_pack_common.h"

namespace sf2t {
namespace fragment_pack_detail {

using AxisWeightsPtr = std::shared_ptr<const AxisWeights>;

// Outputs [begin, begin + count) of the resize in_size -> resize_size, from a process-wide cache: a training run
// asks for the same few (crop, output) sizes on every call, so the weights are computed once, not per call.
inline AxisWeightsPtr cached_axis_weights(int64_t in_size, int64_t resize_size, int64_t begin, int64_t count) {
  static std::mutex mu;
  static std::map<std::tuple<int64_t, int64_t, int64_t, int64_t>, AxisWeightsPtr> cache;
  const auto key = std::make_tuple(in_size, resize_size, begin, count);
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  AxisWeights full = compute_axis_weights(in_size, resize_size);
  auto aw = std::make_shared<const AxisWeights>(begin == 0 && count == resize_size
                                                    ? std::move(full)
                                                    : slice_axis_weights(full, begin, count));
  std::lock_guard<std::mutex> lock(mu);
  if (cache.size() >= 1024) cache.clear();  // random crop sizes: bounded memory
  cache.emplace(key, aw);
  return aw;
}

struct Plan {
  int64_t num_frames = 0;     // N, frames available
  int64_t presented = 0;      // F, plan rows
  int64_t total_frames = 0;   // F * repeat, padded to a multiple of the temporal patch
  int64_t out_h = 0, out_w = 0;
  int64_t patch = 0, tpatch = 0, merge = 0, repeat = 0;
  std::vector<int64_t> src;   // [F]
  std::vector<int64_t> box;   // [F, 4] x0, y0, x1, y1
  std::vector<AxisWeightsPtr> wx, wy;  // per presented frame (frames with equal crop sizes share them)
  float mean255[3], inv_std255[3];
  at::ScalarType out_dtype = at::kFloat;
  // NV12 / I420 input: frames is the Y plane; ky, kr, kgu, kgv, kb (Q16) and the luma offset, see nv12_pixel; or,
  // with sws, libswscale's arithmetic (cpu/yuv_swscale.h: cy, cvr, cub, cvg, cug, yo; CPU kernel only)
  bool nv12 = false;
  bool sws = false;
  int32_t yuv[6] = {0, 0, 0, 0, 0, 0};
};

// One RGB pixel of NV12 input, in the integer arithmetic sf2t.ops.fragment_pack's reference uses (Q16 constants,
// nearest chroma: one UV sample per 2x2 luma block), so every backend sees the same uint8 RGB.
inline void nv12_pixel(const int32_t* k, int32_t Y, int32_t U, int32_t V, uint8_t* rgb) {
  const int32_t c = Y - k[5], d = U - 128, e = V - 128, half = 1 << 15;
  const int32_t r = (k[0] * c + k[1] * e + half) >> 16;
  const int32_t g = (k[0] * c - k[2] * d - k[3] * e + half) >> 16;
  const int32_t b = (k[0] * c + k[4] * d + half) >> 16;
  rgb[0] = static_cast<uint8_t>(r < 0 ? 0 : r > 255 ? 255 : r);
  rgb[1] = static_cast<uint8_t>(g < 0 ? 0 : g > 255 ? 255 : g);
  rgb[2] = static_cast<uint8_t>(b < 0 ? 0 : b > 255 ? 255 : b);
}

// a * b * ... of positive factors, or -1 when the product overflows or reaches 2^62 (offsets are added to it)
inline int64_t product_or_neg(std::initializer_list<int64_t> xs) {
  int64_t r = 1;
  for (const int64_t x : xs) {
    if (__builtin_mul_overflow(r, x, &r) || r >= (int64_t(1) << 62)) return -1;
  }
  return r;
}

// Checks and plan shared by both layouts: the output is out_h x out_w, the window at (crop_y, crop_x) of each crop
// resized to resize_h x resize_w (the Qwen2-VL layout resizes straight to the output: no window).
inline Plan make_plan_common(const char* op, const at::Tensor& frames, const at::Tensor& src_index,
                             const at::Tensor& boxes, int64_t resize_h, int64_t resize_w, int64_t crop_y,
                             int64_t crop_x, int64_t out_h, int64_t out_w, c10::ArrayRef<double> mean,
                             c10::ArrayRef<double> std, int64_t frame_repeat, std::optional<at::ScalarType> dtype,
                             const std::optional<at::Tensor>& uv = std::nullopt,
                             at::OptionalIntArrayRef yuv = std::nullopt) {
  TORCH_CHECK(frames.scalar_type() == at::kByte, op, ": frames must be uint8, got ", frames.scalar_type());
  const bool nv12 = uv.has_value();
  if (nv12) {
    TORCH_CHECK(frames.dim() == 3, op, ": with uv (NV12), frames must be the Y plane [N, H, W], got ", frames.sizes());
    TORCH_CHECK(frames.size(1) % 2 == 0 && frames.size(2) % 2 == 0, op,
                ": NV12 needs an even height and width, got ", frames.size(1), "x", frames.size(2));
    const at::Tensor& u = *uv;
    TORCH_CHECK(u.scalar_type() == at::kByte && u.dim() == 4 && u.size(0) == frames.size(0) &&
                    u.size(1) == frames.size(1) / 2 && u.size(2) == frames.size(2) / 2 && u.size(3) == 2,
                op, ": uv must be uint8 [N, H/2, W/2, 2] = [", frames.size(0), ", ", frames.size(1) / 2, ", ",
                frames.size(2) / 2, ", 2], got ", u.scalar_type(), " ", u.sizes());
    TORCH_CHECK(u.device() == frames.device(), op, ": uv must be on the frames' device");
    TORCH_CHECK(yuv.has_value() && (yuv->size() == 6 || (yuv->size() == 7 && (*yuv)[0] == 1)), op,
                ": NV12 / I420 input needs yuv: the 6 Q16 conversion constants, or [1, cy, cvr, cub, cvg, cug, yo] "
                "for libswscale's arithmetic");
  } else {
    TORCH_CHECK(frames.dim() == 4 && frames.size(3) == 3, op, ": frames must have shape [N, H, W, 3], got ",
                frames.sizes());
    TORCH_CHECK(!yuv.has_value(), op, ": yuv (conversion constants) given without uv: NV12 input needs both");
  }
  TORCH_CHECK(src_index.scalar_type() == at::kLong && src_index.dim() == 1, op,
              ": src_index must be a 1-D int64 tensor, got ", src_index.scalar_type(), " with shape ",
              src_index.sizes());
  TORCH_CHECK(boxes.scalar_type() == at::kLong && boxes.dim() == 2 && boxes.size(1) == 4 &&
                  boxes.size(0) == src_index.size(0),
              op, ": boxes must be an int64 tensor of shape [F, 4] with F = len(src_index) = ", src_index.size(0),
              ", got ", boxes.scalar_type(), " with shape ", boxes.sizes());
  TORCH_CHECK(frame_repeat > 0, op, ": frame_repeat must be positive");
  TORCH_CHECK(out_h > 0 && out_w > 0 && resize_h > 0 && resize_w > 0, op, ": sizes must be positive");
  TORCH_CHECK(crop_y >= 0 && crop_x >= 0 && crop_y + out_h <= resize_h && crop_x + out_w <= resize_w, op,
              ": the ", out_h, "x", out_w, " window at (", crop_y, ", ", crop_x, ") must lie inside the resized ",
              resize_h, "x", resize_w, " frame");
  TORCH_CHECK(mean.size() == 3 && std.size() == 3, op, ": mean and std must have 3 values");
  // products the kernels index with: absurd sizes are refused, never wrapped around (a short buffer, then writes
  // past it)
  const int64_t frames_out = product_or_neg({src_index.size(0), frame_repeat});
  TORCH_CHECK(frames_out >= 0 && product_or_neg({frames_out + 1, 3, resize_h, resize_w}) >= 0, op,
              ": the output is too large to address (", src_index.size(0), " frames x frame_repeat ", frame_repeat,
              ", ", resize_h, "x", resize_w, "): check frame_repeat and the sizes");
  Plan p;
  p.nv12 = nv12;
  if (nv12) {
    p.sws = yuv->size() == 7;
    for (int i = 0; i < 6; ++i) {
      const int64_t v = (*yuv)[i + (p.sws ? 1 : 0)];
      TORCH_CHECK(!p.sws || (v >= -32768 && v <= 32767), op, ": swscale constant yuv[", i + 1, "] = ", v,
                  " is not a 16-bit integer");
      TORCH_CHECK(v >= INT32_MIN && v <= INT32_MAX, op, ": yuv[", i, "] = ", v, " is not a 32-bit integer");
      p.yuv[i] = static_cast<int32_t>(v);
    }
  }
  p.out_dtype = dtype.value_or(at::kFloat);
  TORCH_CHECK(p.out_dtype == at::kFloat || p.out_dtype == at::kBFloat16, op,
              ": dtype must be float32 or bfloat16, got ", p.out_dtype);
  for (int c = 0; c < 3; ++c) {
    TORCH_CHECK(std::isfinite(mean[c]) && std::isfinite(std[c]) && std[c] > 0, op,
                ": mean and std must be finite and std positive, got mean[", c, "] = ", mean[c], ", std[", c,
                "] = ", std[c]);
    p.mean255[c] = static_cast<float>(mean[c] * 255.0);
    p.inv_std255[c] = static_cast<float>(1.0 / (std[c] * 255.0));
  }
  p.num_frames = frames.size(0);
  p.presented = src_index.size(0);
  p.out_h = out_h;
  p.out_w = out_w;
  p.patch = p.tpatch = p.merge = 1;
  p.repeat = frame_repeat;
  p.total_frames = p.presented * frame_repeat;
  const at::Tensor src_cpu = src_index.to(at::kCPU).contiguous();
  const at::Tensor box_cpu = boxes.to(at::kCPU).contiguous();
  const int64_t* sp = src_cpu.data_ptr<int64_t>();
  const int64_t* bp = box_cpu.data_ptr<int64_t>();
  const int64_t H = frames.size(1), W = frames.size(2);
  p.src.assign(sp, sp + p.presented);
  p.box.assign(bp, bp + 4 * p.presented);
  p.wx.reserve(p.presented);
  p.wy.reserve(p.presented);
  for (int64_t f = 0; f < p.presented; ++f) {
    TORCH_CHECK(p.src[f] >= 0 && p.src[f] < p.num_frames, op, ": src_index[", f, "] = ", p.src[f],
                " is out of range for ", p.num_frames, " frames");
    const int64_t x0 = p.box[4 * f], y0 = p.box[4 * f + 1], x1 = p.box[4 * f + 2], y1 = p.box[4 * f + 3];
    TORCH_CHECK(0 <= x0 && x0 < x1 && x1 <= W && 0 <= y0 && y0 < y1 && y1 <= H, op, ": boxes[", f, "] = (", x0,
                ", ", y0, ", ", x1, ", ", y1, ") is empty or outside the ", W, "x", H,
                " frame (x0 < x1 <= W, y0 < y1 <= H)");
    if (f > 0 && x1 - x0 == p.box[4 * f - 4 + 2] - p.box[4 * f - 4] &&
        y1 - y0 == p.box[4 * f - 4 + 3] - p.box[4 * f - 4 + 1]) {
      p.wx.push_back(p.wx.back());  // same crop size as the previous frame (the common case): same weights
      p.wy.push_back(p.wy.back());
    } else {  // weights of the full resize, kept for the output window only (the Qwen2-VL layout: all of it)
      p.wx.push_back(cached_axis_weights(x1 - x0, resize_w, crop_x, out_w));
      p.wy.push_back(cached_axis_weights(y1 - y0, resize_h, crop_y, out_h));
    }
  }
  return p;
}

// Qwen2-VL layout: the output size must be a multiple of patch * merge; frames are padded to a multiple of the
// temporal patch.
inline Plan make_plan(const at::Tensor& frames, const at::Tensor& src_index, const at::Tensor& boxes, int64_t out_h,
                      int64_t out_w, c10::ArrayRef<double> mean, c10::ArrayRef<double> std, int64_t patch_size,
                      int64_t temporal_patch_size, int64_t merge_size, int64_t frame_repeat,
                      std::optional<at::ScalarType> dtype, const std::optional<at::Tensor>& uv = std::nullopt,
                      at::OptionalIntArrayRef yuv = std::nullopt) {
  TORCH_CHECK(patch_size > 0 && temporal_patch_size > 0 && merge_size > 0 && frame_repeat > 0,
              "fragment_pack: patch_size, temporal_patch_size, merge_size and frame_repeat must be positive");
  TORCH_CHECK(out_h > 0 && out_w > 0, "fragment_pack: out_h and out_w must be positive, got ", out_h, ", ", out_w);
  const int64_t frames_out = product_or_neg({src_index.size(0), frame_repeat});
  TORCH_CHECK(product_or_neg({patch_size, merge_size}) >= 0 &&
                  product_or_neg({3, temporal_patch_size, patch_size, patch_size}) >= 0 && frames_out >= 0 &&
                  product_or_neg({frames_out + temporal_patch_size, 3, out_h, out_w}) >= 0,
              "fragment_pack: the output is too large to address (", src_index.size(0), " frames, frame_repeat ",
              frame_repeat, ", temporal_patch_size ", temporal_patch_size, ", patch_size ", patch_size, ", ", out_h,
              "x", out_w, "): check those sizes");
  const int64_t factor = patch_size * merge_size;
  TORCH_CHECK(out_h % factor == 0 && out_w % factor == 0, "fragment_pack: out_h and out_w (", out_h, ", ", out_w,
              ") must be positive multiples of patch_size * merge_size = ", factor);
  Plan p = make_plan_common("fragment_pack", frames, src_index, boxes, out_h, out_w, 0, 0, out_h, out_w, mean, std,
                            frame_repeat, dtype, uv, yuv);
  p.patch = patch_size;
  p.tpatch = temporal_patch_size;
  p.merge = merge_size;
  p.total_frames = padded_frame_count(p.presented, frame_repeat, temporal_patch_size);
  return p;
}

// Flat offset of output element (output frame r, pixel y, x, channel c) in the Qwen2-VL layout
// [grid_t * gh * gw, C * tp * p * p]: rows ordered (t, h-block, w-block, h-in-merge, w-in-merge),
// columns (c, frame-in-temporal-patch, patch row, patch col), as Qwen2VLVideoProcessor.patchify.
struct Layout {
  int64_t p, tp, m, gh, gw, cols;
  Layout(const Plan& pl)
      : p(pl.patch), tp(pl.tpatch), m(pl.merge), gh(pl.out_h / pl.patch), gw(pl.out_w / pl.patch),
        cols(3 * pl.tpatch * pl.patch * pl.patch) {}
  inline int64_t offset(int64_t r, int64_t y, int64_t x, int64_t c) const {
    const int64_t t = r / tp, ti = r % tp;
    const int64_t hy = y / p, py = y % p, wx = x / p, px = x % p;
    const int64_t row = ((t * (gh / m) + hy / m) * (gw / m) + wx / m) * m * m + (hy % m) * m + (wx % m);
    return row * cols + ((c * tp + ti) * p + py) * p + px;
  }
};

}  // namespace fragment_pack_detail
}  // namespace sf2t
