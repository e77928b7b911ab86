// The tiled, single-pass CUDA kernel of sf2t::fragment_pack, written so that the same code also runs on the host.
//
// One block makes one output tile (tile_h x tile_w pixels of one presented frame) in three phases separated by
// barriers:
//   1. the tile's resize weights go to shared memory, and the input rectangle the tile reads (every input row and
//      column a tap can touch) is staged there as RGB bytes: 32-bit loads of packed, aligned RGB rows, else byte
//      loads; NV12 is converted to RGB here, once per input pixel;
//   2. the width pass: every staged row resized to the tile's columns, uint8 as in the other kernels;
//   3. the height pass, normalization and the writes, with consecutive threads on consecutive output addresses
//      (a patch row of the Qwen2-VL layout is 14 contiguous floats, a whole patch 196 per channel and frame).
// The two-pass kernel (cuda/fragment_pack_kernel.cu) reads the frame once per pass with scattered per-thread loads
// and goes through global memory between the passes; here each input byte is read once per tile with coalesced
// loads, and the intermediate never leaves the SM.
//
// Every phase is a loop over its items strided by the block's thread count, and the barriers are the only
// synchronisation. So one host "thread" running the phases in turn computes exactly what the GPU block computes:
// cpu/fragment_pack_tiled_host.cpp does that (a test-only op), and CI checks this kernel's indexing and arithmetic
// bit for bit against the CPU kernel on machines without a GPU. The arithmetic is the other kernels' (int16 resize
// weights, uint8 between the passes, the same NV12 conversion), so all backends agree bit for bit.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define SF2T_HD __host__ __device__ __forceinline__
#else
#define SF2T_HD inline
#endif

namespace sf2t {
namespace fragment_pack_tiled {

// Per presented frame in the int32 table: source frame, crop origin, each axis' tap count and precision, and the
// offsets of its weights (start[out], size[out], w[out * k]: fragment_pack_common.h's AxisWeights) and of its tile
// ranges (per tile column [first input column, count], per tile row [first input row, count], relative to the crop).
enum Meta : int { kSrc, kX0, kY0, kKx, kPx, kKy, kPy, kWx, kWy, kTx, kTy, kMeta };

struct Args {
  const uint8_t* src = nullptr;  // RGB [N, H, W, 3] (strided), or the Y plane [N, H, W] with uv
  int64_t sN = 0, sH = 0, sW = 0, sC = 0;
  int64_t in_w = 0;                // frame width: the end of a row for the 32-bit loads
  const uint8_t* uv = nullptr;     // NV12 chroma [N, H/2, W/2, 2]
  int64_t uN = 0, uH = 0, uW = 0, uC = 0;
  int32_t k[6] = {0, 0, 0, 0, 0, 0};  // NV12 Q16 constants (fragment_pack_host.h: nv12_pixel)
  bool nv12 = false;
  bool words = false;  // packed RGB (sW 3, sC 1) with 4-byte aligned rows: stage with 32-bit loads
  const int32_t* table = nullptr;
  int32_t out_h = 0, out_w = 0, tile_h = 0, tile_w = 0, tiles_x = 0, tiles_per_frame = 0;
  int32_t kx_max = 0, ky_max = 0, r_max = 0, sxp_max = 0;  // shared-memory layout (maxima over the plan)
  int64_t presented = 0, repeat = 0, total_frames = 0;
  int32_t patch = 1, tpatch = 1, merge = 1;
  bool fchw = false;  // [F * repeat, 3, out_h, out_w]; else the Qwen2-VL patch layout
  bool bf16 = false;  // out is bfloat16 bits (uint16), rounded to nearest even as torch's cast; else float32
  float mean255[3] = {0, 0, 0}, inv_std255[3] = {1, 1, 1};
  void* out = nullptr;
};

// Shared memory of one block, in bytes: int32 weights of both axes, then the staged input rows, then the width
// pass's rows (uint8 RGB).
SF2T_HD int64_t smem_ints(const Args& a) {
  return static_cast<int64_t>(a.tile_w) * (2 + a.kx_max) + static_cast<int64_t>(a.tile_h) * (2 + a.ky_max);
}
SF2T_HD int64_t smem_bytes(const Args& a) {
  return 4 * smem_ints(a) + static_cast<int64_t>(a.r_max) * a.sxp_max + static_cast<int64_t>(a.r_max) * a.tile_w * 3;
}

SF2T_HD int32_t clamp_shift(int32_t acc, int32_t precision) {
  const int32_t v = acc >> precision;
  return v < 0 ? 0 : (v > 255 ? 255 : v);
}

SF2T_HD uint8_t clamp255(int32_t v) { return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v)); }

SF2T_HD uint32_t load_word(const uint8_t* p) {  // p is 4-byte aligned
#if defined(__CUDA_ARCH__)
  return __ldg(reinterpret_cast<const unsigned int*>(p));
#else
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
#endif
}

SF2T_HD void store_word(uint8_t* p, uint32_t v) {  // p is 4-byte aligned
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<uint32_t*>(p) = v;
#else
  std::memcpy(p, &v, 4);
#endif
}

SF2T_HD uint16_t bf16_bits(float v) {  // round to nearest even (finite values), as torch's float -> bfloat16 cast
  uint32_t bits;
#if defined(__CUDA_ARCH__)
  bits = __float_as_uint(v);
#else
  std::memcpy(&bits, &v, 4);
#endif
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

// Where one block works, read from the table.
struct Tile {
  int64_t f;                 // presented frame
  int32_t tx0, ty0, tw, th;  // output tile origin and size
  const int32_t* m;          // the frame's meta
  int32_t cx0, sx, ry0, rows;  // input columns and rows the tile reads (relative to the crop)
  int32_t lead;              // bytes between the aligned start of a staged row and its first pixel
};

SF2T_HD Tile tile_of(const Args& a, int64_t block) {
  Tile t;
  t.f = block / a.tiles_per_frame;
  const int32_t i = static_cast<int32_t>(block - t.f * a.tiles_per_frame);
  const int32_t ty = i / a.tiles_x, tx = i - ty * a.tiles_x;
  t.tx0 = tx * a.tile_w;
  t.ty0 = ty * a.tile_h;
  t.tw = a.out_w - t.tx0 < a.tile_w ? a.out_w - t.tx0 : a.tile_w;
  t.th = a.out_h - t.ty0 < a.tile_h ? a.out_h - t.ty0 : a.tile_h;
  t.m = a.table + t.f * kMeta;
  t.cx0 = a.table[t.m[kTx] + 2 * tx];
  t.sx = a.table[t.m[kTx] + 2 * tx + 1];
  t.ry0 = a.table[t.m[kTy] + 2 * ty];
  t.rows = a.table[t.m[kTy] + 2 * ty + 1];
  t.lead = a.words ? static_cast<int32_t>(((t.m[kX0] + t.cx0) * 3) & 3) : 0;
  return t;
}

// The 3 channels of one output pixel, `cs` elements apart, from offset `o`.
SF2T_HD void store3(const Args& a, int64_t o, int64_t cs, const float* v) {
  for (int c = 0; c < 3; ++c) {
    if (a.bf16) {
      static_cast<uint16_t*>(a.out)[o + c * cs] = bf16_bits(v[c]);
    } else {
      static_cast<float*>(a.out)[o + c * cs] = v[c];
    }
  }
}

// One phase of the block making tile `t` (tile_of, once per block), on items tid, tid + nt, ...; the caller puts a
// barrier between phases.
SF2T_HD void tiled_phase(const Args& a, const Tile& t, int phase, int tid, int nt, uint8_t* smem) {
  int32_t* hs = reinterpret_cast<int32_t*>(smem);  // width pass: start (relative to cx0), size, w[k * tile_w + i]
  int32_t* hn = hs + a.tile_w;
  int32_t* hw = hn + a.tile_w;
  int32_t* vs = hw + a.tile_w * a.kx_max;  // height pass: start (relative to ry0), size, w[k * tile_h + i]
  int32_t* vn = vs + a.tile_h;
  int32_t* vw = vn + a.tile_h;
  uint8_t* in_s = smem + 4 * smem_ints(a);                               // [r_max][sxp_max]
  uint8_t* tmp_s = in_s + static_cast<int64_t>(a.r_max) * a.sxp_max;    // [r_max][tile_w][3]
  const int32_t* m = t.m;
  const int32_t kx = m[kKx], ky = m[kKy];
  const int64_t src_f = m[kSrc];
  if (phase == 0) {
    const int32_t* wx = a.table + m[kWx];
    for (int32_t j = tid; j < t.tw; j += nt) {
      hs[j] = wx[t.tx0 + j] - t.cx0;
      hn[j] = wx[a.out_w + t.tx0 + j];
    }
    for (int32_t j = tid; j < t.tw * kx; j += nt) {  // consecutive j: consecutive table entries
      const int32_t i = j / kx, k = j - i * kx;
      hw[k * a.tile_w + i] = wx[2 * a.out_w + (t.tx0 + i) * kx + k];
    }
    const int32_t* wy = a.table + m[kWy];
    for (int32_t j = tid; j < t.th; j += nt) {
      vs[j] = wy[t.ty0 + j] - t.ry0;
      vn[j] = wy[a.out_h + t.ty0 + j];
    }
    for (int32_t j = tid; j < t.th * ky; j += nt) {
      const int32_t i = j / ky, k = j - i * ky;
      vw[k * a.tile_h + i] = wy[2 * a.out_h + (t.ty0 + i) * ky + k];
    }
    const int64_t y_base = static_cast<int64_t>(m[kY0]) + t.ry0;
    const int64_t x_base = static_cast<int64_t>(m[kX0]) + t.cx0;
    if (a.nv12) {  // Y + the 2x2 block's UV -> RGB, once per staged pixel
      const int32_t half = 1 << 15;
      for (int32_t j = tid; j < t.rows * t.sx; j += nt) {
        const int32_t r = j / t.sx, px = j - r * t.sx;
        const int64_t y = y_base + r, x = x_base + px;
        const int32_t c = static_cast<int32_t>(a.src[src_f * a.sN + y * a.sH + x * a.sW]) - a.k[5];
        const uint8_t* q = a.uv + src_f * a.uN + (y >> 1) * a.uH + (x >> 1) * a.uW;
        const int32_t d = static_cast<int32_t>(q[0]) - 128, e = static_cast<int32_t>(q[a.uC]) - 128;
        uint8_t* o = in_s + static_cast<int64_t>(r) * a.sxp_max + px * 3;
        o[0] = clamp255((a.k[0] * c + a.k[1] * e + half) >> 16);
        o[1] = clamp255((a.k[0] * c - a.k[2] * d - a.k[3] * e + half) >> 16);
        o[2] = clamp255((a.k[0] * c + a.k[4] * d + half) >> 16);
      }
    } else if (a.words) {  // packed RGB rows: aligned 32-bit loads, bytes where a word would pass the row's end
      const int32_t nw = (t.lead + t.sx * 3 + 3) >> 2;
      for (int32_t j = tid; j < t.rows * nw; j += nt) {
        const int32_t r = j / nw, w = j - r * nw;
        const uint8_t* row = a.src + src_f * a.sN + (y_base + r) * a.sH;
        const int64_t b = x_base * 3 - t.lead + 4 * static_cast<int64_t>(w);  // byte in the row, 4-aligned
        uint8_t* o = in_s + static_cast<int64_t>(r) * a.sxp_max + 4 * w;
        if (b + 4 <= a.in_w * 3) {
          store_word(o, load_word(row + b));
        } else {
          for (int32_t i = 0; i < 4 && b + i < a.in_w * 3; ++i) o[i] = row[b + i];
        }
      }
    } else {  // any strides: one byte per item
      const int32_t n = t.sx * 3;
      for (int32_t j = tid; j < t.rows * n; j += nt) {
        const int32_t r = j / n, b = j - r * n, px = b / 3, c = b - px * 3;
        in_s[static_cast<int64_t>(r) * a.sxp_max + b] =
            a.src[src_f * a.sN + (y_base + r) * a.sH + (x_base + px) * a.sW + c * a.sC];
      }
    }
    return;
  }
  if (phase == 1) {  // width pass: staged rows x the tile's columns
    const int32_t prec = m[kPx], bias = 1 << (prec - 1);
    for (int32_t j = tid; j < t.rows * t.tw; j += nt) {
      const int32_t r = j / t.tw, i = j - r * t.tw;
      const uint8_t* p = in_s + static_cast<int64_t>(r) * a.sxp_max + t.lead + hs[i] * 3;
      int32_t a0 = bias, a1 = bias, a2 = bias;
      const int32_t n = hn[i];
      for (int32_t k = 0; k < n; ++k) {
        const int32_t w = hw[k * a.tile_w + i];
        a0 += static_cast<int32_t>(p[3 * k]) * w;
        a1 += static_cast<int32_t>(p[3 * k + 1]) * w;
        a2 += static_cast<int32_t>(p[3 * k + 2]) * w;
      }
      uint8_t* o = tmp_s + (static_cast<int64_t>(r) * a.tile_w + i) * 3;
      o[0] = static_cast<uint8_t>(clamp_shift(a0, prec));
      o[1] = static_cast<uint8_t>(clamp_shift(a1, prec));
      o[2] = static_cast<uint8_t>(clamp_shift(a2, prec));
    }
    return;
  }
  // phase 2: height pass, normalization, writes in the output's memory order
  const int32_t prec = m[kPy], bias = 1 << (prec - 1);
  const int32_t p = a.patch, pp = a.patch * a.patch, pw = t.tw / a.patch;
  const int64_t plane = static_cast<int64_t>(a.out_h) * a.out_w;
  const int32_t gh = a.out_h / a.patch, gw = a.out_w / a.patch, mg = a.merge;
  const int64_t cstride = static_cast<int64_t>(a.tpatch) * pp, cols = 3 * cstride;
  const int64_t rows_per_t = static_cast<int64_t>(gh / mg) * (gw / mg) * mg * mg;
  const int64_t r_begin = t.f * a.repeat;
  const int64_t r_end = a.fchw ? r_begin + a.repeat : (t.f == a.presented - 1 ? a.total_frames : r_begin + a.repeat);
  for (int32_t j = tid; j < t.th * t.tw; j += nt) {
    int32_t yl, xl;
    if (a.fchw) {
      yl = j / t.tw;
      xl = j - yl * t.tw;
    } else {  // j = (patch of the tile, row in patch, column in patch): 196 contiguous floats per patch
      const int32_t pl = j / pp, q = j - pl * pp, py = q / p, hy = pl / pw;
      yl = hy * p + py;
      xl = (pl - hy * pw) * p + (q - py * p);
    }
    const uint8_t* s = tmp_s + static_cast<int64_t>(xl) * 3;
    int32_t a0 = bias, a1 = bias, a2 = bias;
    const int32_t n = vn[yl];
    for (int32_t k = 0; k < n; ++k) {
      const uint8_t* q = s + static_cast<int64_t>(vs[yl] + k) * a.tile_w * 3;
      const int32_t w = vw[k * a.tile_h + yl];
      a0 += static_cast<int32_t>(q[0]) * w;
      a1 += static_cast<int32_t>(q[1]) * w;
      a2 += static_cast<int32_t>(q[2]) * w;
    }
    const float v[3] = {(static_cast<float>(clamp_shift(a0, prec)) - a.mean255[0]) * a.inv_std255[0],
                        (static_cast<float>(clamp_shift(a1, prec)) - a.mean255[1]) * a.inv_std255[1],
                        (static_cast<float>(clamp_shift(a2, prec)) - a.mean255[2]) * a.inv_std255[2]};
    const int32_t y = t.ty0 + yl, x = t.tx0 + xl;
    if (a.fchw) {
      int64_t o = r_begin * 3 * plane + static_cast<int64_t>(y) * a.out_w + x;
      for (int64_t r = r_begin; r < r_end; ++r, o += 3 * plane) store3(a, o, plane, v);
    } else {  // the patch row of (t, y, x) is t * rows_per_t + spatial; spatial is the same for every t
      const int32_t hy = y / p, py = y - hy * p, wx = x / p, px = x - wx * p;
      const int64_t spatial = (static_cast<int64_t>(hy / mg) * (gw / mg) + wx / mg) * mg * mg + (hy % mg) * mg + wx % mg;
      const int32_t in_patch = py * p + px;
      for (int64_t r = r_begin; r < r_end; ++r) {
        const int32_t rr = static_cast<int32_t>(r), tt = rr / a.tpatch, ti = rr - tt * a.tpatch;
        store3(a, (tt * rows_per_t + spatial) * cols + ti * pp + in_patch, cstride, v);
      }
    }
  }
}

}  // namespace fragment_pack_tiled
}  // namespace sf2t
