// Host side of the tiled fragment_pack kernel (fragment_pack_tiled.h): the int32 table of a plan and the kernel's
// arguments, shared by the CUDA launcher and the host run of the same kernel code (cpu/fragment_pack_tiled_host.cpp).
#pragma once

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "fragment_pack_host.h"
#include "fragment_pack_tiled.h"

namespace sf2t {
namespace fragment_pack_tiled {

using fragment_pack_detail::AxisWeights;
using fragment_pack_detail::Plan;

// The tile a plan is cut into: Qwen2-VL, one merge block high and two wide (28 x 56: 8 whole patches); the LLaVA
// layout 32 x 64. SF2T_FRAGMENT_PACK_TILE="HxW" overrides it (tuning on a GPU; the Qwen2-VL layout needs multiples
// of the patch).
inline std::pair<int64_t, int64_t> default_tile(const Plan& pl, bool fchw) {
  int64_t h = fchw ? 32 : pl.patch * pl.merge, w = fchw ? 64 : 2 * pl.patch * pl.merge;
  const char* env = std::getenv("SF2T_FRAGMENT_PACK_TILE");
  if (env != nullptr && *env != 0) {
    long eh = 0, ew = 0;
    char x = 0, rest = 0;
    TORCH_CHECK(std::sscanf(env, "%ld%c%ld%c", &eh, &x, &ew, &rest) == 3 && (x == 'x' || x == 'X') && eh > 0 && ew > 0,
                "SF2T_FRAGMENT_PACK_TILE must be HxW with positive H and W (e.g. 28x56), got '", env, "'");
    h = eh;
    w = ew;
  }
  return {h, w};
}

// A block's shared memory at most (bytes): H100 / H200 allow 227 KB a block, but more than this leaves too few
// blocks an SM to hide the loads.
constexpr int64_t kTiledSmemMax = 96 * 1024;

// The table (layout in fragment_pack_tiled.h: Meta) and every size field of `a`; the caller sets the pointers.
// Frames sharing a crop size share their weights and tile ranges (one entry per distinct AxisWeights).
inline std::vector<int32_t> tiled_table(const Plan& pl, bool fchw, int64_t tile_h, int64_t tile_w, Args& a) {
  TORCH_CHECK(tile_h > 0 && tile_w > 0 && tile_h <= 1024 && tile_w <= 1024,
              "fragment_pack (tiled kernel): tile sizes must be in [1, 1024], got ", tile_h, "x", tile_w);
  TORCH_CHECK(fchw || (tile_h % pl.patch == 0 && tile_w % pl.patch == 0),
              "fragment_pack (tiled kernel): the Qwen2-VL layout needs tiles of whole patches (", pl.patch,
              "), got ", tile_h, "x", tile_w);
  a.out_h = static_cast<int32_t>(pl.out_h);
  a.out_w = static_cast<int32_t>(pl.out_w);
  a.tile_h = static_cast<int32_t>(tile_h);
  a.tile_w = static_cast<int32_t>(tile_w);
  a.tiles_x = static_cast<int32_t>((pl.out_w + tile_w - 1) / tile_w);
  const int32_t tiles_y = static_cast<int32_t>((pl.out_h + tile_h - 1) / tile_h);
  a.tiles_per_frame = a.tiles_x * tiles_y;
  a.presented = pl.presented;
  a.repeat = pl.repeat;
  a.total_frames = pl.total_frames;
  a.patch = static_cast<int32_t>(pl.patch);
  a.tpatch = static_cast<int32_t>(pl.tpatch);
  a.merge = static_cast<int32_t>(pl.merge);
  a.fchw = fchw;
  a.bf16 = pl.out_dtype == at::kBFloat16;
  a.nv12 = pl.nv12;
  for (int c = 0; c < 3; ++c) {
    a.mean255[c] = pl.mean255[c];
    a.inv_std255[c] = pl.inv_std255[c];
  }
  for (int i = 0; i < 6; ++i) a.k[i] = pl.yuv[i];
  std::vector<int32_t> table(pl.presented * kMeta);
  int32_t max_k[2] = {0, 0}, max_span[2] = {0, 0};
  // per axis: AxisWeights -> (weights offset, ranges offset)
  std::map<const AxisWeights*, std::pair<int32_t, int32_t>> seen[2];
  auto add_axis = [&](const AxisWeights& aw, int axis) -> std::pair<int32_t, int32_t> {
    auto it = seen[axis].find(&aw);
    if (it != seen[axis].end()) return it->second;
    const int64_t out = axis == 0 ? pl.out_w : pl.out_h, tile = axis == 0 ? tile_w : tile_h;
    const int32_t woff = static_cast<int32_t>(table.size());
    table.insert(table.end(), aw.start.begin(), aw.start.end());
    table.insert(table.end(), aw.size.begin(), aw.size.end());
    table.insert(table.end(), aw.w.begin(), aw.w.end());
    const int32_t roff = static_cast<int32_t>(table.size());
    for (int64_t t0 = 0; t0 < out; t0 += tile) {  // the input span each tile's taps touch
      int32_t lo = INT_MAX, hi = 0;
      for (int64_t i = t0; i < std::min(t0 + tile, out); ++i) {
        if (aw.size[i] > 0) {
          lo = std::min(lo, aw.start[i]);
          hi = std::max(hi, aw.start[i] + aw.size[i]);
        }
      }
      if (lo > hi) lo = hi = 0;
      table.push_back(lo);
      table.push_back(hi - lo);
      max_span[axis] = std::max(max_span[axis], hi - lo);
    }
    max_k[axis] = std::max(max_k[axis], static_cast<int32_t>(aw.ksize));
    seen[axis].emplace(&aw, std::make_pair(woff, roff));
    return {woff, roff};
  };
  for (int64_t f = 0; f < pl.presented; ++f) {
    const auto [wxo, txo] = add_axis(*pl.wx[f], 0);
    const auto [wyo, tyo] = add_axis(*pl.wy[f], 1);
    int32_t* m = table.data() + f * kMeta;
    m[kSrc] = static_cast<int32_t>(pl.src[f]);
    m[kX0] = static_cast<int32_t>(pl.box[4 * f]);
    m[kY0] = static_cast<int32_t>(pl.box[4 * f + 1]);
    m[kKx] = static_cast<int32_t>(pl.wx[f]->ksize);
    m[kPx] = pl.wx[f]->precision;
    m[kKy] = static_cast<int32_t>(pl.wy[f]->ksize);
    m[kPy] = pl.wy[f]->precision;
    m[kWx] = wxo;
    m[kWy] = wyo;
    m[kTx] = txo;
    m[kTy] = tyo;
  }
  a.kx_max = max_k[0];
  a.ky_max = max_k[1];
  a.r_max = max_span[1];
  a.sxp_max = (max_span[0] * 3 + 3 + 3) / 4 * 4;  // room for the lead of 32-bit staging, whole words
  return table;
}

// The tile the CUDA kernel runs: SF2T_FRAGMENT_PACK_TILE when set, else the default (default_tile), its longer side
// halved (in whole patches for the Qwen2-VL layout) while a block would need more than `max_smem` bytes of shared
// memory (large downscales: 1080p -> 448x252 runs 28 x 28 tiles, 67 KB). Fills `a` and returns the table for that
// tile; an empty table when no tile fits (the two-pass kernels run).
inline std::vector<int32_t> choose_tile(const Plan& pl, bool fchw, int64_t max_smem, Args& a) {
  auto [h, w] = default_tile(pl, fchw);
  const char* env = std::getenv("SF2T_FRAGMENT_PACK_TILE");
  const bool fixed = env != nullptr && *env != 0;
  const int64_t unit = fchw ? 1 : pl.patch;
  for (;;) {
    std::vector<int32_t> table = tiled_table(pl, fchw, h, w, a);
    if (smem_bytes(a) <= max_smem) return table;
    const bool w_ok = w / 2 >= unit && (w / 2) % unit == 0, h_ok = h / 2 >= unit && (h / 2) % unit == 0;
    if (fixed || (!w_ok && !h_ok)) return {};
    if (w_ok && (w >= h || !h_ok)) {
      w /= 2;
    } else {
      h /= 2;
    }
  }
}

// The input pointers and strides of `a`, and whether rows can be staged with aligned 32-bit loads.
inline void tiled_input(const at::Tensor& frames, const std::optional<at::Tensor>& uv, Args& a) {
  a.src = frames.data_ptr<uint8_t>();
  a.sN = frames.stride(0);
  a.sH = frames.stride(1);
  a.sW = frames.stride(2);
  a.sC = uv.has_value() ? 1 : frames.stride(3);
  a.in_w = frames.size(2);
  if (uv.has_value()) {
    a.uv = uv->data_ptr<uint8_t>();
    a.uN = uv->stride(0);
    a.uH = uv->stride(1);
    a.uW = uv->stride(2);
    a.uC = uv->stride(3);
  }
  a.words = !uv.has_value() && a.sW == 3 && a.sC == 1 && a.sN % 4 == 0 && a.sH % 4 == 0 &&
            reinterpret_cast<uintptr_t>(a.src) % 4 == 0;
}

}  // namespace fragment_pack_tiled
}  // namespace sf2t
