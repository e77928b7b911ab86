// CPU kernel of sf2t::fragment_pack: gather + crop + antialiased bicubic resize (separable, width
// first, uint8 between passes, exactly torch's uint8 path) + normalize + Qwen2-VL patchify, one pass
// over the output. Threaded with at::parallel_for over presented frames; each frame's width-resized rows stay in
// the thread's buffer (planar uint8), the height pass reads them from cache. The width pass uses AVX2 vpmaddwd
// where the CPU has it (SF2T_FP_SCALAR=1 forces the scalar pass, same integers). The Qwen2-VL writers copy (float32)
// or convert (bfloat16, c10::BFloat16's rounding bit for bit) with AVX2 and non-temporal stores; SF2T_FP_SCALAR=1
// forces the scalar writers too.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <c10/util/BFloat16.h>
#include <torch/library.h>

#include <cstdlib>
#include <array>
#include <cstring>
#include <map>
#include <mutex>
#include <type_traits>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

#include "../fragment_pack_host.h"
#include "yuv_swscale.h"

namespace sf2t {
namespace {

using namespace fragment_pack_detail;

// libswscale's constants of a plan with sws (yuv = [1, cy, cvr, cub, cvg, cug, yo]).
inline swscale::Coeffs sws_coeffs(const Plan& pl) {
  return swscale::Coeffs{static_cast<int16_t>(pl.yuv[0]), static_cast<int16_t>(pl.yuv[1]),
                         static_cast<int16_t>(pl.yuv[2]), static_cast<int16_t>(pl.yuv[3]),
                         static_cast<int16_t>(pl.yuv[4]), static_cast<int16_t>(pl.yuv[5])};
}

// ---- output buffers ----

// Outputs come from a small pool of page-aligned buffers that freed outputs return to, instead of fresh memory
// each call: a new 77 MB output (32 frames at 448x448, float32) costs ~15 ms of page faults here before a byte is
// written, more than the resize itself. A training loop packs the same sizes call after call, so the buffers are
// reused. The pool keeps at most SF2T_PACK_POOL_MB (default 1024) of freed buffers; the rest go back to the system.
class OutputPool {
 public:
  static OutputPool& get() {
    static OutputPool* pool = new OutputPool();  // never destroyed: outputs may outlive static destruction
    return *pool;
  }
  void* take(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(bytes);
      if (it != free_.end()) {
        void* p = it->second;
        free_.erase(it);
        cached_ -= bytes;
        return p;
      }
    }
    void* p = std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
    TORCH_CHECK(p != nullptr, "fragment_pack: out of memory allocating ", bytes, " bytes for the output");
    return p;
  }
  void give(void* p, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cached_ + bytes <= limit_) {
        free_.emplace(bytes, p);
        cached_ += bytes;
        return;
      }
    }
    std::free(p);
  }

 private:
  OutputPool() {
    const char* env = std::getenv("SF2T_PACK_POOL_MB");
    limit_ = (env ? static_cast<size_t>(std::max(0L, std::atol(env))) : size_t{1024}) << 20;
  }
  std::mutex mu_;
  std::multimap<size_t, void*> free_;
  size_t cached_ = 0, limit_ = 0;
};

at::Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
  int64_t numel = 1;
  for (int64_t v : sizes) numel *= v;
  const size_t bytes = std::max<size_t>(1, static_cast<size_t>(numel) * options.dtype().itemsize());
  void* p = OutputPool::get().take(bytes);
  return at::from_blob(
      p, sizes, [bytes](void* q) { OutputPool::get().give(q, bytes); }, options);
}

// ---- width pass: one crop row (packed RGB, uint8) -> planar resized rows R, G, B (uint8, out_pad each) ----

// Weights of one frame's width resize laid out for the AVX2 row kernel: per output pixel, `groups` blocks of 4 taps
// as one 256-bit vector of int16: [w0 w1 w0 w1 w0 w1 0 0 | w2 w3 w2 w3 w2 w3 0 0] (taps past the output's size are 0).
struct WidthKernel {
  int64_t out_w = 0, out_pad = 0, groups = 0, in_pad = 0;  // in_pad: padded packed-row length in bytes
  int precision = 0;
  std::vector<int32_t> start;  // [out_pad] first input pixel (0 for padding outputs)
  std::vector<int16_t> w;      // [out_pad, groups, 16]
};

WidthKernel width_kernel(const AxisWeights& wx, int64_t out_w, int64_t out_pad, int64_t in_w) {
  WidthKernel k;
  k.out_w = out_w;
  k.out_pad = out_pad;  // a multiple of 4
  k.groups = std::max<int64_t>(1, (wx.ksize + 3) / 4);
  k.precision = wx.precision;
  k.in_pad = 3 * (in_w + 4 * k.groups) + 16;  // every 16-byte load of every group stays inside
  k.start.assign(k.out_pad, 0);
  k.w.assign(k.out_pad * k.groups * 16, 0);
  for (int64_t x = 0; x < out_w; ++x) {
    k.start[x] = wx.start[x];
    for (int64_t t = 0; t < wx.size[x]; ++t) {
      const int16_t v = wx.w[x * wx.ksize + t];
      const int64_t g = t / 4, j = t % 4;  // tap j of group g: lane j / 2, pair slot j % 2
      int16_t* blk = k.w.data() + (x * k.groups + g) * 16 + (j / 2) * 8 + (j % 2);
      blk[0] = v;
      blk[2] = v;
      blk[4] = v;
    }
  }
  return k;
}

// Scalar width pass (CPUs without AVX2, and SF2T_FP_SCALAR=1 for tests): the same integer arithmetic.
void width_row_scalar(const uint8_t* in, const AxisWeights& wx, int64_t out_w, int64_t out_pad, uint8_t* dst) {
  const int32_t bias = 1 << (wx.precision - 1);
  for (int64_t x = 0; x < out_w; ++x) {
    const int16_t* w = wx.w.data() + x * wx.ksize;
    const uint8_t* px = in + 3 * wx.start[x];
    int32_t a0 = bias, a1 = bias, a2 = bias;
    for (int64_t k = 0; k < wx.size[x]; ++k) {
      a0 += static_cast<int32_t>(px[3 * k]) * w[k];
      a1 += static_cast<int32_t>(px[3 * k + 1]) * w[k];
      a2 += static_cast<int32_t>(px[3 * k + 2]) * w[k];
    }
    dst[x] = round_shift_clamp(a0, wx.precision);
    dst[out_pad + x] = round_shift_clamp(a1, wx.precision);
    dst[2 * out_pad + x] = round_shift_clamp(a2, wx.precision);
  }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SF2T_FP_AVX2 1
// AVX2 width pass: for each output pixel, 4 taps per step: one 16-byte load of 4+ RGB pixels, broadcast to both
// lanes, shuffled into int16 (tap, tap+1) pairs per channel, multiplied and pair-summed by vpmaddwd against the
// weight pattern; 4 output pixels are then shifted, saturated to uint8 (== round_shift_clamp) and split into planes.
__attribute__((target("avx2"))) void width_row_avx2(const uint8_t* in, const WidthKernel& k, uint8_t* dst) {
  const __m256i shuf = _mm256_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1,  //
                                        6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1);
  const __m128i planes = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m128i bias = _mm_set1_epi32(1 << (k.precision - 1));
  const __m128i shift = _mm_cvtsi32_si128(k.precision);
  const int64_t G = k.groups, op = k.out_pad;
  for (int64_t x = 0; x < op; x += 4) {
    __m128i px[4];
    for (int j = 0; j < 4; ++j) {
      const uint8_t* p = in + 3 * static_cast<int64_t>(k.start[x + j]);
      const __m256i* wv = reinterpret_cast<const __m256i*>(k.w.data() + (x + j) * G * 16);
      __m256i acc = _mm256_madd_epi16(
          _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), shuf),
          _mm256_loadu_si256(wv));
      for (int64_t g = 1; g < G; ++g) {
        const __m256i b =
            _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 12 * g)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_shuffle_epi8(b, shuf), _mm256_loadu_si256(wv + g)));
      }
      const __m128i s = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
      px[j] = _mm_sra_epi32(_mm_add_epi32(s, bias), shift);  // [R G B 0] of output x + j
    }
    const __m128i u8 = _mm_shuffle_epi8(
        _mm_packus_epi16(_mm_packs_epi32(px[0], px[1]), _mm_packs_epi32(px[2], px[3])), planes);
    const int32_t r = _mm_cvtsi128_si32(u8), g = _mm_extract_epi32(u8, 1), b = _mm_extract_epi32(u8, 2);
    std::memcpy(dst + x, &r, 4);
    std::memcpy(dst + op + x, &g, 4);
    std::memcpy(dst + 2 * op + x, &b, 4);
  }
}

// Planar width pass, for crops whose consecutive outputs read from 16-byte windows of the input: the row is first
// split into R, G, B planes; then per plane, each 128-bit lane holds one window and vpshufb spreads it into int16
// tap pairs per output (index -128 gives the zero high byte and the zero taps) for vpmaddwd against the weights.
// Two modes: 4 outputs a lane, 2 taps a step (downscales up to ~2.1x, e.g. 640 -> 448, 720 -> 448), or 2 outputs a
// lane, 4 taps a step, the two pair sums added at the end (up to ~3x, e.g. 1280 -> 448). Same integers as the
// per-pixel pass, about a third of the instructions.
struct PlanarKernel {
  bool ok = false;
  int64_t out_pad = 0, per_lane = 0, steps = 0;  // out_pad: a multiple of 16; per_lane: outputs of a group, 4 or 2
  int precision = 0;
  std::vector<int32_t> base;  // [out_pad / per_lane] first input pixel of each group's window
  std::vector<int8_t> idx;    // [groups / 2][steps][32]: lane 0 group 2h, lane 1 group 2h + 1
  std::vector<int16_t> w;     // [groups / 2][steps][16]
};

PlanarKernel planar_kernel_mode(const AxisWeights& wx, int64_t out_w, int64_t out_pad, int64_t per_lane) {
  PlanarKernel k;
  k.out_pad = out_pad;
  k.per_lane = per_lane;
  k.precision = wx.precision;
  const int64_t taps = 8 / per_lane;  // taps of one output a step: 2 or 4
  int64_t longest = 1;
  for (int64_t x = 0; x < out_w; ++x) longest = std::max<int64_t>(longest, wx.size[x]);
  k.steps = (longest + taps - 1) / taps;
  const int64_t groups = out_pad / per_lane, S = k.steps;
  k.base.assign(groups, 0);
  k.idx.assign(groups / 2 * S * 32, static_cast<int8_t>(-128));
  k.w.assign(groups / 2 * S * 16, 0);
  for (int64_t g = 0; g < groups && per_lane * g < out_w; ++g) {
    k.base[g] = wx.start[per_lane * g];
    const int64_t h = g / 2, lane = g % 2;
    for (int64_t j = 0; j < per_lane && per_lane * g + j < out_w; ++j) {
      const int64_t x = per_lane * g + j, off = wx.start[x] - k.base[g];
      if (off < 0 || off + wx.size[x] > 16) return k;  // does not fit a 16-byte window: not usable
      for (int64_t t = 0; t < wx.size[x]; ++t) {
        const int64_t q = t / taps, slot = t % taps;
        k.idx[(h * S + q) * 32 + lane * 16 + (j * taps + slot) * 2] = static_cast<int8_t>(off + t);
        k.w[(h * S + q) * 16 + lane * 8 + j * taps + slot] = wx.w[x * wx.ksize + t];
      }
    }
  }
  k.ok = true;
  return k;
}

PlanarKernel planar_kernel(const AxisWeights& wx, int64_t out_w, int64_t out_pad) {
  PlanarKernel k = planar_kernel_mode(wx, out_w, out_pad, 4);
  if (!k.ok) k = planar_kernel_mode(wx, out_w, out_pad, 2);
  return k;
}

// Two unaligned 16-byte loads into the lanes of one vector.
__attribute__((target("avx2"))) inline __m256i load2(const uint8_t* lo, const uint8_t* hi) {
  return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lo))),
                                 _mm_loadu_si128(reinterpret_cast<const __m128i*>(hi)), 1);
}

// Packed RGB (n pixels) -> planes r, g, b: 32 pixels a step, SSSE3 shuffles in both lanes.
__attribute__((target("avx2"))) void deinterleave_rgb_avx2(const uint8_t* in, int64_t n, uint8_t* r, uint8_t* g,
                                                           uint8_t* b) {
  // byte shuffles of the three 16-byte thirds of 16 packed pixels: R from a, b, c, then G, then B (-1: zero)
  static const int8_t kSplit[9][16] = {
      {0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1},
      {-1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14, -1, -1, -1, -1, -1},
      {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 1, 4, 7, 10, 13},
      {1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1},
      {-1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1},
      {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14},
      {2, 5, 8, 11, 14, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1},
      {-1, -1, -1, -1, -1, 1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1},
      {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15}};
  __m256i m[9];
  for (int j = 0; j < 9; ++j) {
    m[j] = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(kSplit[j])));
  }
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {  // lane 0: pixels i..i+15 (48 bytes), lane 1: pixels i+16..i+31
    const uint8_t* p = in + 3 * i;
    const __m256i a = load2(p, p + 48), bb = load2(p + 16, p + 64), c = load2(p + 32, p + 80);
    uint8_t* dst[3] = {r + i, g + i, b + i};
    for (int ch = 0; ch < 3; ++ch) {
      const __m256i v = _mm256_or_si256(
          _mm256_or_si256(_mm256_shuffle_epi8(a, m[3 * ch]), _mm256_shuffle_epi8(bb, m[3 * ch + 1])),
          _mm256_shuffle_epi8(c, m[3 * ch + 2]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst[ch]), v);
    }
  }
  for (; i < n; ++i) {
    r[i] = in[3 * i];
    g[i] = in[3 * i + 1];
    b[i] = in[3 * i + 2];
  }
}

// 8 int32 -> 8 uint8 with saturation (== the clamp).
__attribute__((target("avx2"))) inline void store8_u8(__m256i v, uint8_t* dst) {
  const __m256i p16 = _mm256_packs_epi32(v, v);
  const __m256i p8 =
      _mm256_permutevar8x32_epi32(_mm256_packus_epi16(p16, p16), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), _mm256_castsi256_si128(p8));
}

// NV12 crop row [x0, x1) straight into R, G, B planes (no packed row, no split): nv12_pixel's integer formula, 8
// pixels a step in int32 lanes. Needs a contiguous Y row and either the interleaved UV row (element strides 2, 1:
// NV12) or U and V rows of their own (strides 1, vofs = V's offset from U: I420 planes seen as a strided uv).
__attribute__((target("avx2"))) void nv12_row_planes_avx2(const int32_t* k, const uint8_t* yl, const uint8_t* cl,
                                                          bool interleaved, int64_t vofs, int64_t x0, int64_t x1,
                                                          uint8_t* r, uint8_t* g, uint8_t* b) {
  const int64_t cs = interleaved ? 2 : 1, vo = interleaved ? 1 : vofs;  // chroma sample i: U at cs * i, V at + vo
  auto one = [&](int64_t x) {
    uint8_t px[3];
    nv12_pixel(k, yl[x], cl[(x / 2) * cs], cl[(x / 2) * cs + vo], px);
    r[x - x0] = px[0];
    g[x - x0] = px[1];
    b[x - x0] = px[2];
  };
  int64_t x = x0;
  if (x < x1 && (x & 1)) one(x++);  // from here x is even: its chroma sample is x / 2
  const __m256i k0 = _mm256_set1_epi32(k[0]), k1 = _mm256_set1_epi32(k[1]), k2 = _mm256_set1_epi32(k[2]);
  const __m256i k3 = _mm256_set1_epi32(k[3]), k4 = _mm256_set1_epi32(k[4]), y0 = _mm256_set1_epi32(k[5]);
  const __m256i c128 = _mm256_set1_epi32(128), half = _mm256_set1_epi32(1 << 15);
  const __m128i udup = _mm_setr_epi8(0, 0, 2, 2, 4, 4, 6, 6, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i vdup = _mm_setr_epi8(1, 1, 3, 3, 5, 5, 7, 7, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i pdup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, -1, -1, -1, -1, -1, -1, -1, -1);
  for (; x + 8 <= x1; x += 8) {
    __m128i u8, v8;
    if (interleaved) {  // bytes x .. x + 7 of the UV row: the pairs of chroma samples x/2 .. x/2 + 3
      const __m128i uv = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(cl + x));
      u8 = _mm_shuffle_epi8(uv, udup);
      v8 = _mm_shuffle_epi8(uv, vdup);
    } else {  // 4 bytes from each chroma row
      int32_t u4, v4;
      std::memcpy(&u4, cl + x / 2, 4);
      std::memcpy(&v4, cl + x / 2 + vofs, 4);
      u8 = _mm_shuffle_epi8(_mm_cvtsi32_si128(u4), pdup);
      v8 = _mm_shuffle_epi8(_mm_cvtsi32_si128(v4), pdup);
    }
    const __m256i c = _mm256_sub_epi32(
        _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(yl + x))), y0);
    const __m256i d = _mm256_sub_epi32(_mm256_cvtepu8_epi32(u8), c128);
    const __m256i e = _mm256_sub_epi32(_mm256_cvtepu8_epi32(v8), c128);
    const __m256i yc = _mm256_add_epi32(_mm256_mullo_epi32(k0, c), half);
    store8_u8(_mm256_srai_epi32(_mm256_add_epi32(yc, _mm256_mullo_epi32(k1, e)), 16), r + (x - x0));
    store8_u8(_mm256_srai_epi32(_mm256_sub_epi32(_mm256_sub_epi32(yc, _mm256_mullo_epi32(k2, d)),
                                              _mm256_mullo_epi32(k3, e)),
                             16),
           g + (x - x0));
    store8_u8(_mm256_srai_epi32(_mm256_add_epi32(yc, _mm256_mullo_epi32(k4, d)), 16), b + (x - x0));
  }
  for (; x < x1; ++x) one(x);
}

// I420 crop row [x0, x1) in libswscale's arithmetic (yuv_swscale.h) straight into R, G, B planes, 32 pixels a step:
// the decoders' own RGB, bit for bit, without a packed row or a split.
__attribute__((target("avx2"))) void i420_row_planes_sws_avx2(const swscale::Coeffs& k, const uint8_t* yl,
                                                               const uint8_t* ul, const uint8_t* vl, int64_t x0,
                                                               int64_t x1, uint8_t* r, uint8_t* g, uint8_t* b) {
  auto one = [&](int64_t x) { swscale::pixel(k, yl[x], ul[x / 2], vl[x / 2], r[x - x0], g[x - x0], b[x - x0]); };
  int64_t x = x0;
  if (x < x1 && (x & 1)) one(x++);  // from here x is even: its chroma sample is x / 2
  const swscale::Vec kv = swscale::vec(k);
  for (; x + 32 <= x1; x += 32) {
    __m256i R, G, B;
    swscale::rgb32(kv, yl + x, ul + x / 2, vl + x / 2, R, G, B);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(r + (x - x0)), R);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(g + (x - x0)), G);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(b + (x - x0)), B);
  }
  for (; x < x1; ++x) one(x);
}

// One plane (padded: 16 readable bytes from every window's start) -> k.out_pad resized uint8 values, 16 a step.
__attribute__((target("avx2"))) inline __m256i planar_step(const uint8_t* plane, const int32_t* base,
                                                            const __m256i* idx, const __m256i* w, int64_t steps,
                                                            __m256i acc) {
  const __m256i win = load2(plane + base[0], plane + base[1]);
  for (int64_t q = 0; q < steps; ++q) {
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_shuffle_epi8(win, _mm256_loadu_si256(idx + q)),
                                                  _mm256_loadu_si256(w + q)));
  }
  return acc;
}

__attribute__((target("avx2"))) void width_planar_avx2(const uint8_t* plane, const PlanarKernel& k, uint8_t* dst) {
  const __m256i bias = _mm256_set1_epi32(1 << (k.precision - 1));
  const __m128i shift = _mm_cvtsi32_si128(k.precision);
  const int64_t S = k.steps;
  const int32_t* base = k.base.data();
  const __m256i* idx = reinterpret_cast<const __m256i*>(k.idx.data());
  const __m256i* w = reinterpret_cast<const __m256i*>(k.w.data());
  if (k.per_lane == 4) {
    for (int64_t x = 0; x < k.out_pad; x += 16) {
      const int64_t h = x / 8;  // group pairs h, h + 1: groups x/4 .. x/4 + 3
      const __m256i a = planar_step(plane, base + 2 * h, idx + h * S, w + h * S, S, bias);
      const __m256i b = planar_step(plane, base + 2 * h + 2, idx + (h + 1) * S, w + (h + 1) * S, S, bias);
      // [g0 g2 | g1 g3] int16 -> g0 g1 g2 g3 -> uint8 (saturation == round_shift_clamp)
      const __m256i s16 = _mm256_permute4x64_epi64(
          _mm256_packs_epi32(_mm256_sra_epi32(a, shift), _mm256_sra_epi32(b, shift)), 0xD8);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + x),
                       _mm_packus_epi16(_mm256_castsi256_si128(s16), _mm256_extracti128_si256(s16, 1)));
    }
    return;
  }
  const __m256i zero = _mm256_setzero_si256();
  const __m128i order = _mm_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15);
  for (int64_t x = 0; x < k.out_pad; x += 16) {
    const int64_t h = x / 4;  // group pairs h .. h + 3: groups x/2 .. x/2 + 7, two outputs each
    __m256i acc[4];
    for (int64_t i = 0; i < 4; ++i) {
      acc[i] = planar_step(plane, base + 2 * (h + i), idx + (h + i) * S, w + (h + i) * S, S, zero);
    }
    // lane sums of the two pair sums of each output: [0 1 4 5 | 2 3 6 7] and [8 9 12 13 | 10 11 14 15]
    const __m256i lo = _mm256_sra_epi32(_mm256_add_epi32(_mm256_hadd_epi32(acc[0], acc[1]), bias), shift);
    const __m256i hi = _mm256_sra_epi32(_mm256_add_epi32(_mm256_hadd_epi32(acc[2], acc[3]), bias), shift);
    const __m256i s16 = _mm256_packs_epi32(lo, hi);  // [0 1 4 5 8 9 12 13 | 2 3 6 7 10 11 14 15]
    const __m128i u8 = _mm_packus_epi16(_mm256_castsi256_si128(s16), _mm256_extracti128_si256(s16, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + x), _mm_shuffle_epi8(u8, order));
  }
}

// The weights of taps 2t and 2t + 1 of an n-tap row as one int32 (low, high int16; 0 past the last tap): the
// multiplier of a (row 2t, row 2t + 1) int16 pair in vpmaddwd / vpdpwssd.
inline int32_t tap_pair(const int16_t* w, int64_t t, int64_t n) {
  const uint32_t lo = static_cast<uint16_t>(w[2 * t]);
  const uint32_t hi = (2 * t + 1 < n) ? static_cast<uint16_t>(w[2 * t + 1]) : 0;
  return static_cast<int32_t>(lo | (hi << 16));
}

// Height pass of one output row, normalized: planar uint8 rows (3 planes of op, row stride 3 * op) -> float planes
// line[c * op + x], x < out_w. 16 values a step, (tap, tap + 1) row pairs interleaved into int16 pairs for vpmaddwd,
// accumulated in registers; then shift, clamp, (v - mean) * inv_std as normalize_plane does.
__attribute__((target("avx2"))) void height_row_avx2(const uint8_t* rows, int64_t op, const int16_t* w, int64_t n,
                                                     int precision, const float* mean, const float* inv_std,
                                                     int64_t out_w, float* line) {
  const int64_t stride = 3 * op;
  __m256i wp[64];  // n <= 128 (callers check)
  const int64_t np = (n + 1) / 2;
  for (int64_t t = 0; t < np; ++t) wp[t] = _mm256_set1_epi32(tap_pair(w, t, n));
  const __m256i bias = _mm256_set1_epi32(1 << (precision - 1));
  const __m128i shift = _mm_cvtsi32_si128(precision);
  const __m256i zero = _mm256_setzero_si256(), top = _mm256_set1_epi32(255);
  const __m128i z128 = _mm_setzero_si128();
  for (int64_t c = 0; c < 3; ++c) {
    const __m256 m = _mm256_set1_ps(mean[c]), is = _mm256_set1_ps(inv_std[c]);
    for (int64_t x = 0; x < out_w; x += 16) {
      const uint8_t* col = rows + c * op + x;
      __m256i a0 = bias, a1 = bias;
      for (int64_t t = 0; t < np; ++t) {
        const __m128i u = _mm_loadu_si128(reinterpret_cast<const __m128i*>(col + 2 * t * stride));
        const __m128i v =
            (2 * t + 1 < n) ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(col + (2 * t + 1) * stride)) : z128;
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_unpacklo_epi8(u, v)), wp[t]));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_unpackhi_epi8(u, v)), wp[t]));
      }
      a0 = _mm256_min_epi32(_mm256_max_epi32(_mm256_sra_epi32(a0, shift), zero), top);
      a1 = _mm256_min_epi32(_mm256_max_epi32(_mm256_sra_epi32(a1, shift), zero), top);
      float* o = line + c * op + x;
      _mm256_storeu_ps(o, _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(a0), m), is));
      _mm256_storeu_ps(o + 8, _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(a1), m), is));
    }
  }
}

// Qwen2-VL writer of one band of p float lines (line (py, c) at lines + (py * 3 + c) * op): every p-long run copied
// with 8-float vector moves (overlapping inside the run when p is not a multiple of 8). Needs p >= 8.
__attribute__((target("avx2"))) void write_qwen_band_f32_avx2(const float* lines, int64_t op, int64_t p, int64_t tp,
                                                              int64_t m, int64_t gh, int64_t gw, int64_t cols,
                                                              int64_t hy, int64_t r_begin, int64_t r_end, float* out) {
  for (int64_t wx = 0; wx < gw; ++wx) {
    for (int64_t r = r_begin; r < r_end; ++r) {
      const int64_t t = r / tp, ti = r % tp;
      const int64_t rowi = ((t * (gh / m) + hy / m) * (gw / m) + wx / m) * m * m + (hy % m) * m + (wx % m);
      float* block = out + rowi * cols;
      for (int64_t c = 0; c < 3; ++c) {
        for (int64_t py = 0; py < p; ++py) {
          float* d = block + ((c * tp + ti) * p + py) * p;
          const float* s = lines + (py * 3 + c) * op + wx * p;
          for (int64_t o = 0; o + 8 < p; o += 8) _mm256_storeu_ps(d + o, _mm256_loadu_ps(s + o));
          _mm256_storeu_ps(d + p - 8, _mm256_loadu_ps(s + p - 8));
        }
      }
    }
  }
}

// The same band with non-temporal stores: each (patch, output frame, channel) block of p*p floats is contiguous in
// the output; it is assembled in L1 and streamed out 16 bytes at a time, so the output's cache lines are not read
// before being overwritten (half the memory traffic of plain stores) and do not evict the input. Needs a 16-byte
// aligned output, p * p and cols multiples of 4 and p * p <= 1024 (stream_ok); the caller fences after the band.
// (no-tree-loop-distribute-patterns: GCC otherwise turns the p-float copies into memmove calls, 56 bytes each for
// p = 14, ~6 % of a 640x360 pack spent in call overhead.)
__attribute__((target("avx2"), optimize("no-tree-loop-distribute-patterns"))) void write_qwen_band_f32_stream(const float* lines, int64_t op, int64_t p, int64_t tp,
                                                                int64_t m, int64_t gh, int64_t gw, int64_t cols,
                                                                int64_t hy, int64_t r_begin, int64_t r_end,
                                                                float* out) {
  alignas(32) float buf[1024 + 8];
  const int64_t pp = p * p;
  for (int64_t wx = 0; wx < gw; ++wx) {
    for (int64_t c = 0; c < 3; ++c) {
      for (int64_t py = 0; py < p; ++py) {  // the (c, wx) block of the band, the same for every output frame
        const float* s = lines + (py * 3 + c) * op + wx * p;
        float* b = buf + py * p;
        for (int64_t o = 0; o + 8 < p; o += 8) _mm256_storeu_ps(b + o, _mm256_loadu_ps(s + o));
        _mm256_storeu_ps(b + p - 8, _mm256_loadu_ps(s + p - 8));
      }
      for (int64_t r = r_begin; r < r_end; ++r) {
        const int64_t t = r / tp, ti = r % tp;
        const int64_t rowi = ((t * (gh / m) + hy / m) * (gw / m) + wx / m) * m * m + (hy % m) * m + (wx % m);
        float* d = out + rowi * cols + (c * tp + ti) * pp;
        for (int64_t i = 0; i < pp; i += 4) _mm_stream_ps(d + i, _mm_load_ps(buf + i));
      }
    }
  }
}

// ---- bfloat16 output ----

// 8 floats -> their bfloat16 bits, exactly c10::BFloat16(float) (c10::detail::round_to_nearest_even): add 0x7FFF
// plus the kept part's lowest bit, keep the high 16 bits (ties to even; overflow to +-inf as there); NaN -> 0x7FC0.
// (ATen's own vectorized cast writes 0xFFFF for NaN: the scalar c10 rule is the one the scalar writer follows.)
__attribute__((target("avx2"))) inline __m128i bf16x8(const float* s) {
  const __m256 v = _mm256_loadu_ps(s);
  const __m256i u = _mm256_castps_si256(v);
  const __m256i bias = _mm256_add_epi32(_mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1)),
                                        _mm256_set1_epi32(0x7FFF));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, bias), 16);
  r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7FC0), _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)));
  return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));  // r <= 0xFFFF: exact
}

// n >= 8 floats -> bfloat16 bits at d: 8 a step, the last 8 overlapping when n is not a multiple of 8.
__attribute__((target("avx2"))) inline void store_run_bf16_avx2(uint16_t* d, const float* s, int64_t n) {
  for (int64_t o = 0; o + 8 < n; o += 8) _mm_storeu_si128(reinterpret_cast<__m128i*>(d + o), bf16x8(s + o));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(d + n - 8), bf16x8(s + n - 8));
}

// n bfloat16 values (a multiple of 4, short) with plain 16- and 8-byte stores.
__attribute__((target("avx2"))) inline void copy_bf16(uint16_t* d, const uint16_t* s, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
  }
  if (i < n) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(d + i), _mm_loadl_epi64(reinterpret_cast<const __m128i*>(s + i)));
  }
}

// 4 bfloat16 values (8 bytes) with a non-temporal store.
inline void stream_bf16x4(uint16_t* d, const uint16_t* s) {
  long long q;
  std::memcpy(&q, s, 8);
  _mm_stream_si64(reinterpret_cast<long long*>(d), q);
}

// Qwen2-VL writer of one band in bfloat16, as write_qwen_band_f32_stream: each (patch, channel) block of p*p values
// is converted once into an L1 buffer, then copied to every output frame that shows it. Without `stream`: plain
// 16-byte stores, the last one overlapping. With `stream` (stream_ok: a 16-byte aligned output and p*p a multiple
// of 4, so every block, p*p*2 bytes, e.g. 392 for p = 14, starts 8-byte aligned): non-temporal stores, 16 bytes
// (8 bytes at an edge that is not 16-byte aligned). A block mostly starts and ends inside a 64-byte line it shares
// with its neighbour in memory. Where that neighbour is the block written just before or after it (frame_repeat >= tp:
// (c, ti) then (c, ti + 1)), the shared line is streamed from both sides and fills one write-combining buffer.
// Otherwise (frame_repeat 1: the neighbour belongs to another presented frame) the partial line takes plain stores,
// its read prefetched a patch column ahead: a partial streamed line is written out on its own (perf, 640x360 ->
// 252x448, frame_repeat 1: this writer's samples 0.87x the width pass's, 1.03x with every edge streamed; the prefetch
// ~0.2 ms of ~9.6 ms). The caller fences after the band. Needs p >= 8 and p * p <= 1024.
__attribute__((target("avx2"), optimize("no-tree-loop-distribute-patterns"))) void write_qwen_band_bf16_avx2(
    const float* lines, int64_t op, int64_t p, int64_t tp, int64_t m, int64_t gh, int64_t gw, int64_t cols,
    int64_t hy, int64_t r_begin, int64_t r_end, bool stream, uint16_t* out) {
  alignas(32) uint16_t buf[1024 + 16];
  const int64_t pp = p * p;
  const int64_t gm = gh / m, wm = gw / m, hym = hy / m, hyr = (hy % m) * m;
  // the block (wx, c) of output frame r; the blocks are written in the loops' order wx, c, r
  auto dest = [&](int64_t wx, int64_t c, int64_t r) {
    const int64_t t = r / tp, ti = r - t * tp;
    const int64_t rowi = ((t * gm + hym) * wm + wx / m) * m * m + hyr + (wx % m);
    return out + rowi * cols + (c * tp + ti) * pp;
  };
  // do the lines this block shares with its neighbours in memory take plain stores? Yes unless that neighbour is the
  // block written just before (head) or just after (tail) it
  auto plain_edges = [&](int64_t wx, int64_t c, int64_t r, bool& head, bool& tail) {
    const uint16_t* d = dest(wx, c, r);
    const uint16_t* prev = r > r_begin ? dest(wx, c, r - 1)
                           : c > 0     ? dest(wx, c - 1, r_end - 1)
                           : wx > 0    ? dest(wx - 1, 2, r_end - 1)
                                       : nullptr;
    const uint16_t* next = r + 1 < r_end ? dest(wx, c, r + 1)
                           : c < 2       ? dest(wx, c + 1, r_begin)
                           : wx + 1 < gw ? dest(wx + 1, 0, r_begin)
                                         : nullptr;
    head = prev == nullptr || prev + pp != d;
    tail = next != d + pp;
  };
  // the plain-stored lines of patch column wx are fetched a column ahead: their reads overlap the conversion
  auto prefetch_edges = [&](int64_t wx) {
    for (int64_t c = 0; c < 3; ++c) {
      for (int64_t r = r_begin; r < r_end; ++r) {
        bool head, tail;
        plain_edges(wx, c, r, head, tail);
        const char* d = reinterpret_cast<const char*>(dest(wx, c, r));
        if (head && reinterpret_cast<uintptr_t>(d) % 64 != 0) _mm_prefetch(d, _MM_HINT_T0);
        if (tail && reinterpret_cast<uintptr_t>(d + 2 * pp) % 64 != 0) _mm_prefetch(d + 2 * pp - 1, _MM_HINT_T0);
      }
    }
  };
  if (stream && gw > 0) prefetch_edges(0);
  for (int64_t wx = 0; wx < gw; ++wx) {
    if (stream && wx + 1 < gw) prefetch_edges(wx + 1);
    for (int64_t c = 0; c < 3; ++c) {
      for (int64_t py = 0; py < p; ++py) {  // the (c, wx) block of the band, the same for every output frame
        store_run_bf16_avx2(buf + py * p, lines + (py * 3 + c) * op + wx * p, p);
      }
      for (int64_t r = r_begin; r < r_end; ++r) {
        uint16_t* d = dest(wx, c, r);
        if (!stream) {
          int64_t i = 0;
          for (; i + 8 < pp; i += 8) {
            _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                             _mm_load_si128(reinterpret_cast<const __m128i*>(buf + i)));
          }
          _mm_storeu_si128(reinterpret_cast<__m128i*>(d + pp - 8),
                           _mm_loadu_si128(reinterpret_cast<const __m128i*>(buf + pp - 8)));
          continue;
        }
        bool head_plain, tail_plain;
        plain_edges(wx, c, r, head_plain, tail_plain);
        const uintptr_t a = reinterpret_cast<uintptr_t>(d);
        // [0, i): plain stores up to the first line boundary, [i, e): streamed, [e, pp): plain stores after the last
        int64_t i = 0, e = pp;
        if (head_plain) i = std::min<int64_t>(pp, (64 - a % 64) % 64 / 2);
        if (tail_plain) e = std::max<int64_t>(i, pp - (a + 2 * pp) % 64 / 2);
        copy_bf16(d, buf, i);
        if (i < e && (a + 2 * i) % 16 != 0) {
          stream_bf16x4(d + i, buf + i);
          i += 4;
        }
        for (; i + 8 <= e; i += 8) {
          _mm_stream_si128(reinterpret_cast<__m128i*>(d + i),
                           _mm_loadu_si128(reinterpret_cast<const __m128i*>(buf + i)));
        }
        if (i < e) stream_bf16x4(d + i, buf + i);  // 4 values left
        copy_bf16(d + e, buf + e, pp - e);
      }
    }
  }
}

// The switch `name` (SF2T_FP_STREAM, SF2T_FP_AVX512) is set to 0: its path is off. Read per call, so tests can
// compare the paths in one process.
inline bool env_off(const char* name) {
  const char* e = std::getenv(name);
  return e != nullptr && e[0] == '0';
}

// Streamed (non-temporal) Qwen2-VL stores are possible: a 16-byte aligned output (either dtype) whose blocks of p * p
// values start 16-byte aligned (float32) or 8-byte aligned (bfloat16). SF2T_FP_STREAM=0 turns them off (read per
// call, once per output: tests switch it).
bool stream_ok(const void* out, int64_t p, int64_t cols) {
  return !env_off("SF2T_FP_STREAM") && p >= 8 && (p * p) % 4 == 0 && p * p <= 1024 && cols % 4 == 0 &&
         reinterpret_cast<uintptr_t>(out) % 16 == 0;
}

bool cpu_has_avx2() {
  static const bool ok = __builtin_cpu_supports("avx2");
  return ok;
}

// The AVX2 passes and writers: the CPU has AVX2 and SF2T_FP_SCALAR is unset (it forces the scalar ones, for tests).
bool use_avx2() { return cpu_has_avx2() && std::getenv("SF2T_FP_SCALAR") == nullptr; }
#endif

#include "fragment_pack_avx512.h"

// The crop row y of presented frame f as packed RGB into `row` (k.in_pad bytes, zero past the crop): a copy for
// packed RGB, a gather for strided layouts, the integer conversion for NV12.
void load_row(const Plan& pl, const at::Tensor& frames, const std::optional<at::Tensor>& uv, int64_t f, int64_t y,
              uint8_t* row) {
  const int64_t x0 = pl.box[4 * f], x1 = pl.box[4 * f + 2], cw = x1 - x0;
  const uint8_t* src = frames.data_ptr<uint8_t>();
  const int64_t sN = frames.stride(0), sH = frames.stride(1), sW = frames.stride(2);
  if (pl.nv12) {
    const uint8_t* uvp = uv->data_ptr<uint8_t>();
    const int64_t uN = uv->stride(0), uH = uv->stride(1), uW = uv->stride(2), uC = uv->stride(3);
    const uint8_t* yl = src + pl.src[f] * sN + y * sH;
    const uint8_t* cl = uvp + pl.src[f] * uN + (y / 2) * uH;
    if (pl.sws) {
      const swscale::Coeffs k = sws_coeffs(pl);
      for (int64_t x = x0; x < x1; ++x) {
        const uint8_t* c = cl + (x / 2) * uW;
        uint8_t* o = row + (x - x0) * 3;
        swscale::pixel(k, yl[x * sW], c[0], c[uC], o[0], o[1], o[2]);
      }
      return;
    }
    for (int64_t x = x0; x < x1; ++x) {
      const uint8_t* c = cl + (x / 2) * uW;
      nv12_pixel(pl.yuv, yl[x * sW], c[0], c[uC], row + (x - x0) * 3);
    }
    return;
  }
  const int64_t sC = frames.stride(3);
  const uint8_t* line = src + pl.src[f] * sN + y * sH + x0 * sW;
  if (sW == 3 && sC == 1) {
    std::memcpy(row, line, cw * 3);
  } else {
    for (int64_t x = 0; x < cw; ++x) {
      row[3 * x] = line[x * sW];
      row[3 * x + 1] = line[x * sW + sC];
      row[3 * x + 2] = line[x * sW + 2 * sC];
    }
  }
}

// The crop row y of presented frame f in place, when it is packed RGB and a padded read of `len` bytes from its
// first pixel ends inside the frames' memory; else nullptr (the caller copies the row into a padded buffer).
const uint8_t* direct_row(const Plan& pl, const at::Tensor& frames, int64_t f, int64_t y, int64_t len,
                          const uint8_t* data_end) {
  if (pl.nv12 || frames.stride(2) != 3 || frames.stride(3) != 1) return nullptr;
  const uint8_t* p = frames.data_ptr<uint8_t>() + pl.src[f] * frames.stride(0) + y * frames.stride(1) +
                     pl.box[4 * f] * 3;
  return (data_end - p >= len) ? p : nullptr;
}

// ---- height pass, normalize, write ----

// acc[i] += row[i] * w over a contiguous run. GCC builds an AVX2 and a baseline version and picks one at
// load time (the extension itself is compiled for baseline x86-64, so it runs on any CPU).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx2", "default")))
#endif
void accumulate_row(int32_t* __restrict__ acc, const uint8_t* __restrict__ row, int32_t w, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    acc[i] += static_cast<int32_t>(row[i]) * w;
  }
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx2", "default")))
#endif
void normalize_plane(const int32_t* __restrict__ acc, float* __restrict__ out, int precision, float mean,
                     float inv_std, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    int32_t v = acc[i] >> precision;
    v = v < 0 ? 0 : (v > 255 ? 255 : v);
    out[i] = (static_cast<float>(v) - mean) * inv_std;
  }
}

template <typename out_t>
inline void store_run(out_t* __restrict__ dst, const float* __restrict__ src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<out_t>(src[i]);  // short runs: a loop, not a memcpy call
}

// Per presented frame (threads split the frames): the width pass of every crop row into planar uint8 rows kept in
// the thread's cache-sized buffer, then the height pass in bands of `band` output rows, normalized into planar
// float lines [band][3][op] (op: out_w rounded up to 16) handed to write(f, y0, rows, lines). No frame-sized
// intermediate, no transposes.
// Paths (same integers, tested equal): AVX2 planar width pass where the crop's resize fits it, else the AVX2
// per-pixel one, and the AVX2 height pass; scalar passes without AVX2 or with SF2T_FP_SCALAR=1
// (SF2T_FP_WIDTH=pixel forces the per-pixel width pass, for tests).
template <typename Writer>
void resize_frames(const Plan& pl, const at::Tensor& frames, const std::optional<at::Tensor>& uv, int64_t band,
                   Writer write) {
  const int64_t ow = pl.out_w, oh = pl.out_h, op = (ow + 15) / 16 * 16, stride = 3 * op;  // planar row: R G B
#ifdef SF2T_FP_AVX2
  const bool avx2 = use_avx2();
  const char* width_env = std::getenv("SF2T_FP_WIDTH");
  const bool allow_planar = width_env == nullptr || std::strcmp(width_env, "pixel") != 0;
  // one past the last byte of the frames' memory: padded reads in place must end before it
  const uint8_t* data_end = nullptr;
  if (!pl.nv12) {
    int64_t last = 0;
    for (int64_t d = 0; d < frames.dim(); ++d) last += (frames.size(d) - 1) * frames.stride(d);
    data_end = frames.data_ptr<uint8_t>() + last + 1;
  }
  // NV12 with a contiguous Y row and UV row: converted straight into the planes
  // (interleaved UV, or I420-style U and V rows: element stride 1, V at a fixed offset)
  // (libswscale's arithmetic: I420-style rows only)
  const bool nv12_direct = pl.nv12 && frames.stride(2) == 1 &&
                           ((uv->stride(2) == 2 && uv->stride(3) == 1 && !pl.sws) || uv->stride(2) == 1);
#else
  const bool avx2 = false;
#endif
#ifdef SF2T_FP_AVX2
  // the planar width kernel of each distinct width resize, built once per call (frames of one crop size share it):
  // AVX-512 where the CPU has it and the resize fits its windows, else AVX2
  const bool avx512 = avx2 && use_avx512();
  std::map<const AxisWeights*, PlanarKernel> planar;
  std::map<const AxisWeights*, Planar512Kernel> planar512;
  if (avx2 && allow_planar) {
    for (int64_t f = 0; f < pl.presented; ++f) {
      const AxisWeights* w = pl.wx[f].get();
      if (planar.find(w) != planar.end() || planar512.find(w) != planar512.end()) continue;
      if (avx512) {
        Planar512Kernel k = planar512_kernel(*w, ow, op);
        if (k.ok) {
          planar512.emplace(w, std::move(k));
          continue;
        }
      }
      planar.emplace(w, planar_kernel(*w, ow, op));
    }
  }
#endif
  at::parallel_for(0, pl.presented, 1, [&](int64_t begin, int64_t end) {
    // per-thread buffers kept across calls: no fresh pages (and page faults) per call
    thread_local std::vector<uint8_t> row, split, planes;
    thread_local std::vector<int32_t> acc;
    thread_local std::vector<float> lines;
    lines.resize(band * stride);
    for (int64_t f = begin; f < end; ++f) {
      const int64_t y0 = pl.box[4 * f + 1], ch = pl.box[4 * f + 3] - y0, cw = pl.box[4 * f + 2] - pl.box[4 * f];
      const AxisWeights& wx = *pl.wx[f];
      const AxisWeights& wy = *pl.wy[f];
      planes.resize(ch * stride + 16);
#ifdef SF2T_FP_AVX2
      if (avx2) {
        static const PlanarKernel none;
        static const Planar512Kernel none512;
        const auto found = planar.find(&wx);
        const PlanarKernel& pk = found != planar.end() ? found->second : none;
        const auto found512 = planar512.find(&wx);
        const Planar512Kernel& pk512 = found512 != planar512.end() ? found512->second : none512;
        if (pk.ok || pk512.ok) {
          const int64_t plen = cw + (pk512.ok ? 64 : 16);  // each plane: a window's readable bytes past its start
          split.assign(3 * plen, 0);
          row.assign(3 * cw + 16, 0);
          uint8_t *r = split.data(), *g = r + plen, *b = g + plen;
          for (int64_t y = 0; y < ch; ++y) {
            if (nv12_direct) {
              const int64_t x0 = pl.box[4 * f], fy = y0 + y;
              const uint8_t* yl = frames.data_ptr<uint8_t>() + pl.src[f] * frames.stride(0) + fy * frames.stride(1);
              const uint8_t* cl = uv->data_ptr<uint8_t>() + pl.src[f] * uv->stride(0) + (fy / 2) * uv->stride(1);
              if (pl.sws) {
                if (avx512) {
                  i420_row_planes_sws_avx512(sws_coeffs(pl), yl, cl, cl + uv->stride(3), x0, x0 + cw, r, g, b);
                } else {
                  i420_row_planes_sws_avx2(sws_coeffs(pl), yl, cl, cl + uv->stride(3), x0, x0 + cw, r, g, b);
                }
              } else {
                nv12_row_planes_avx2(pl.yuv, yl, cl, uv->stride(2) == 2, uv->stride(3), x0, x0 + cw, r, g, b);
              }
            } else {
              // packed RGB read in place (exactly the crop's 3 * cw bytes), else the row gathered into `row`
              const uint8_t* src = direct_row(pl, frames, f, y0 + y, 3 * cw, data_end);
              if (src == nullptr) {
                load_row(pl, frames, uv, f, y0 + y, row.data());
                src = row.data();
              }
              deinterleave_rgb_avx2(src, cw, r, g, b);
            }
            uint8_t* dst = planes.data() + y * stride;
            if (pk512.ok) {
              for (int64_t c = 0; c < 3; ++c) width_planar_avx512(split.data() + c * plen, pk512, dst + c * op);
            } else {
              for (int64_t c = 0; c < 3; ++c) width_planar_avx2(split.data() + c * plen, pk, dst + c * op);
            }
          }
        } else {
          const WidthKernel k = width_kernel(wx, ow, op, cw);
          row.assign(k.in_pad, 0);
          for (int64_t y = 0; y < ch; ++y) {
            // packed RGB whose padded read (k.in_pad bytes from the crop's first pixel) stays inside the frames'
            // memory: read in place (bytes past the crop meet zero weights); otherwise a padded copy of the row
            const uint8_t* direct = direct_row(pl, frames, f, y0 + y, k.in_pad, data_end);
            if (direct == nullptr) {
              load_row(pl, frames, uv, f, y0 + y, row.data());
              direct = row.data();
            }
            width_row_avx2(direct, k, planes.data() + y * stride);
          }
        }
      } else
#endif
      {
        row.assign(3 * cw + 16, 0);
        for (int64_t y = 0; y < ch; ++y) {
          load_row(pl, frames, uv, f, y0 + y, row.data());
          width_row_scalar(row.data(), wx, ow, op, planes.data() + y * stride);
        }
      }
      const bool avx2_height = avx2 && wy.ksize <= 128;
      acc.resize(stride);
      for (int64_t b0 = 0; b0 < oh; b0 += band) {
        const int64_t rows = std::min(band, oh - b0);
        for (int64_t j = 0; j < rows; ++j) {
          const int64_t y = b0 + j;
          const int16_t* w = wy.w.data() + y * wy.ksize;
          float* line = lines.data() + j * stride;
#ifdef SF2T_FP_AVX2
          if (avx2_height && avx512) {
            height_row_avx512(planes.data() + wy.start[y] * stride, op, w, wy.size[y], wy.precision, pl.mean255,
                              pl.inv_std255, ow, line);
            continue;
          }
          if (avx2_height) {
            height_row_avx2(planes.data() + wy.start[y] * stride, op, w, wy.size[y], wy.precision, pl.mean255,
                            pl.inv_std255, ow, line);
            continue;
          }
#endif
          std::fill(acc.begin(), acc.end(), int32_t{1} << (wy.precision - 1));
          for (int64_t t = 0; t < wy.size[y]; ++t) {
            accumulate_row(acc.data(), planes.data() + (wy.start[y] + t) * stride, w[t], stride);
          }
          for (int64_t c = 0; c < 3; ++c) {
            normalize_plane(acc.data() + c * op, line + c * op, wy.precision, pl.mean255[c], pl.inv_std255[c], ow);
          }
        }
        write(f, b0, rows, op, lines.data());
      }
    }
  });
}

// Writes bands of the Qwen2-VL layout into one output: output frames [r_begin, r_end) all show the band of p float
// lines (bands of one patch row, p output rows: each patch's [C, tp, p, p] block is filled with p-long contiguous
// runs of the planar lines). AVX2 writers for p >= 8 (float32 and bfloat16, streamed where stream_ok), else the
// scalar loop (c10::BFloat16's conversion per value); SF2T_FP_SCALAR=1 forces the scalar loop too (tests compare
// the bfloat16 writers bit for bit).
template <typename out_t>
struct QwenBandWriter {
  Layout lay;
  out_t* out;
  bool vector_runs = false, stream = false;
  QwenBandWriter(const Layout& l, out_t* o) : lay(l), out(o) {
#ifdef SF2T_FP_AVX2
    vector_runs = lay.p >= 8 && (std::is_same<out_t, float>::value || lay.p * lay.p <= 1024) && use_avx2();
    stream = vector_runs && stream_ok(out, lay.p, lay.cols);
#endif
  }
  void operator()(int64_t y0, int64_t op, const float* lines, int64_t r_begin, int64_t r_end) const {
    const int64_t p = lay.p, tp = lay.tp, m = lay.m;
    const int64_t hy = y0 / p;
#ifdef SF2T_FP_AVX2
    if (vector_runs) {
      if constexpr (std::is_same<out_t, float>::value) {
        if (stream) {
          write_qwen_band_f32_stream(lines, op, p, tp, m, lay.gh, lay.gw, lay.cols, hy, r_begin, r_end, out);
        } else {
          write_qwen_band_f32_avx2(lines, op, p, tp, m, lay.gh, lay.gw, lay.cols, hy, r_begin, r_end, out);
        }
      } else {
        static_assert(sizeof(out_t) == 2, "bfloat16");
        write_qwen_band_bf16_avx2(lines, op, p, tp, m, lay.gh, lay.gw, lay.cols, hy, r_begin, r_end, stream,
                                  reinterpret_cast<uint16_t*>(out));
      }
      if (stream) _mm_sfence();  // the streamed stores are visible before the op returns
      return;
    }
#endif
    for (int64_t wx = 0; wx < lay.gw; ++wx) {
      for (int64_t r = r_begin; r < r_end; ++r) {
        const int64_t t = r / tp, ti = r % tp;
        const int64_t rowi = ((t * (lay.gh / m) + hy / m) * (lay.gw / m) + wx / m) * m * m + (hy % m) * m + (wx % m);
        out_t* block = out + rowi * lay.cols;
        for (int64_t c = 0; c < 3; ++c) {
          for (int64_t py = 0; py < p; ++py) {
            store_run(block + ((c * tp + ti) * p + py) * p, lines + (py * 3 + c) * op + wx * p, p);
          }
        }
      }
    }
  }
};

// The output frames presented frame f of a plan fills: [f * repeat, (f + 1) * repeat), and the padding frames
// after the last one.
inline std::pair<int64_t, int64_t> output_frames(const Plan& pl, int64_t f) {
  const int64_t r_begin = f * pl.repeat;
  return {r_begin, (f == pl.presented - 1) ? pl.total_frames : r_begin + pl.repeat};
}

// Qwen2-VL layout of one plan.
template <typename out_t>
void write_qwen(const Plan& pl, const Layout& lay, const at::Tensor& frames, const std::optional<at::Tensor>& uv,
                out_t* out) {
  const QwenBandWriter<out_t> writer(lay, out);
  resize_frames(pl, frames, uv, lay.p, [&](int64_t f, int64_t y0, int64_t, int64_t op, const float* lines) {
    const auto rr = output_frames(pl, f);
    writer(y0, op, lines, rr.first, rr.second);
  });
}

// Qwen2-VL layouts of several plans over the same frames (the samples of one decoded window): each distinct
// (source frame, crop box) is resized once, and its bands written into every sample that shows it. `jobs` holds
// the distinct crops as a plan's presented frames; dests[j] the (plan, presented frame) pairs of crop j.
template <typename out_t>
void write_qwen_multi(const Plan& jobs, const std::vector<std::vector<std::pair<int64_t, int64_t>>>& dests,
                      const std::vector<Plan>& plans, const Layout& lay, const at::Tensor& frames,
                      const std::optional<at::Tensor>& uv, const std::vector<out_t*>& outs) {
  std::vector<QwenBandWriter<out_t>> writers;
  writers.reserve(outs.size());
  for (out_t* o : outs) writers.emplace_back(lay, o);
  resize_frames(jobs, frames, uv, lay.p, [&](int64_t j, int64_t y0, int64_t, int64_t op, const float* lines) {
    for (const auto& d : dests[j]) {
      const auto rr = output_frames(plans[d.first], d.second);
      writers[d.first](y0, op, lines, rr.first, rr.second);
    }
  });
}

// [F * repeat, 3, out_h, out_w] layout (LLaVA-OneVision, LLaVA-NeXT-Video): planar rows.
template <typename out_t>
void write_fchw(const Plan& pl, const at::Tensor& frames, const std::optional<at::Tensor>& uv, out_t* out) {
  const int64_t oh = pl.out_h, ow = pl.out_w;
#ifdef SF2T_FP_AVX2
  // bfloat16 rows of 8+ values: the AVX2 conversion (bit-identical to c10::BFloat16's; SF2T_FP_SCALAR=1: the loop)
  const bool bf16_avx2 = std::is_same<out_t, c10::BFloat16>::value && ow >= 8 && use_avx2();
#endif
  resize_frames(pl, frames, uv, 1, [&](int64_t f, int64_t y, int64_t, int64_t op, const float* line) {
    for (int64_t r = f * pl.repeat; r < (f + 1) * pl.repeat; ++r) {
      for (int64_t c = 0; c < 3; ++c) {
        out_t* d = out + ((r * 3 + c) * oh + y) * ow;
#ifdef SF2T_FP_AVX2
        if (bf16_avx2) {
          store_run_bf16_avx2(reinterpret_cast<uint16_t*>(d), line + c * op, ow);
          continue;
        }
#endif
        store_run(d, line + c * op, ow);
      }
    }
  });
}

at::Tensor fragment_pack_cpu(const at::Tensor& frames, const at::Tensor& src_index, const at::Tensor& boxes,
                             int64_t out_h, int64_t out_w, c10::ArrayRef<double> mean, c10::ArrayRef<double> std,
                             int64_t patch_size, int64_t temporal_patch_size, int64_t merge_size,
                             int64_t frame_repeat, std::optional<at::ScalarType> dtype,
                             const std::optional<at::Tensor>& uv, at::OptionalIntArrayRef yuv) {
  TORCH_CHECK(frames.device().is_cpu(), "fragment_pack (CPU kernel): frames must be on the CPU, got ",
              frames.device());
  const Plan pl = make_plan(frames, src_index, boxes, out_h, out_w, mean, std, patch_size, temporal_patch_size,
                            merge_size, frame_repeat, dtype, uv, yuv);
  const Layout lay(pl);
  const int64_t rows = pl.total_frames / temporal_patch_size * (out_h / patch_size) * (out_w / patch_size);
  at::Tensor out = pooled_empty({rows, lay.cols}, frames.options().dtype(pl.out_dtype));
  if (pl.presented == 0) {
    return out;
  }
  if (pl.out_dtype == at::kFloat) {
    write_qwen<float>(pl, lay, frames, uv, out.data_ptr<float>());
  } else {
    write_qwen<c10::BFloat16>(pl, lay, frames, uv, out.data_ptr<c10::BFloat16>());
  }
  return out;
}

std::vector<at::Tensor> fragment_pack_multi_cpu(const at::Tensor& frames, at::TensorList src_index,
                                                at::TensorList boxes, int64_t out_h, int64_t out_w,
                                                c10::ArrayRef<double> mean, c10::ArrayRef<double> std,
                                                int64_t patch_size, int64_t temporal_patch_size, int64_t merge_size,
                                                int64_t frame_repeat, std::optional<at::ScalarType> dtype,
                                                const std::optional<at::Tensor>& uv, at::OptionalIntArrayRef yuv) {
  TORCH_CHECK(frames.device().is_cpu(), "fragment_pack_multi (CPU kernel): frames must be on the CPU, got ",
              frames.device());
  TORCH_CHECK(src_index.size() == boxes.size(), "fragment_pack_multi: one boxes tensor per src_index, got ",
              src_index.size(), " src_index and ", boxes.size(), " boxes");
  const int64_t K = static_cast<int64_t>(src_index.size());
  std::vector<Plan> plans;
  plans.reserve(K);
  for (int64_t k = 0; k < K; ++k) {
    plans.push_back(make_plan(frames, src_index[k], boxes[k], out_h, out_w, mean, std, patch_size,
                              temporal_patch_size, merge_size, frame_repeat, dtype, uv, yuv));
  }
  std::vector<at::Tensor> outs;
  outs.reserve(K);
  const int64_t cols = 3 * temporal_patch_size * patch_size * patch_size;
  const at::ScalarType out_dtype = dtype.value_or(at::kFloat);
  for (const Plan& pl : plans) {
    const int64_t rows = pl.total_frames / temporal_patch_size * (out_h / patch_size) * (out_w / patch_size);
    outs.push_back(pooled_empty({rows, cols}, frames.options().dtype(out_dtype)));
  }
  if (K == 0) return outs;
  // the distinct crops, in order of first appearance; a crop's weights are its first plan's (equal crop sizes share
  // them: cached_axis_weights)
  Plan jobs = plans[0];
  jobs.src.clear();
  jobs.box.clear();
  jobs.wx.clear();
  jobs.wy.clear();
  std::map<std::array<int64_t, 5>, int64_t> job_of;
  std::vector<std::vector<std::pair<int64_t, int64_t>>> dests;
  for (int64_t k = 0; k < K; ++k) {
    const Plan& pl = plans[k];
    for (int64_t f = 0; f < pl.presented; ++f) {
      const int64_t* b = pl.box.data() + 4 * f;
      const std::array<int64_t, 5> key{pl.src[f], b[0], b[1], b[2], b[3]};
      auto it = job_of.find(key);
      if (it == job_of.end()) {
        it = job_of.emplace(key, static_cast<int64_t>(jobs.src.size())).first;
        jobs.src.push_back(pl.src[f]);
        jobs.box.insert(jobs.box.end(), b, b + 4);
        jobs.wx.push_back(pl.wx[f]);
        jobs.wy.push_back(pl.wy[f]);
        dests.emplace_back();
      }
      dests[it->second].emplace_back(k, f);
    }
  }
  jobs.presented = static_cast<int64_t>(jobs.src.size());
  if (jobs.presented == 0) return outs;
  const Layout lay(plans[0]);
  if (out_dtype == at::kFloat) {
    std::vector<float*> ptrs;
    for (auto& o : outs) ptrs.push_back(o.data_ptr<float>());
    write_qwen_multi<float>(jobs, dests, plans, lay, frames, uv, ptrs);
  } else {
    std::vector<c10::BFloat16*> ptrs;
    for (auto& o : outs) ptrs.push_back(o.data_ptr<c10::BFloat16>());
    write_qwen_multi<c10::BFloat16>(jobs, dests, plans, lay, frames, uv, ptrs);
  }
  return outs;
}

at::Tensor fragment_pack_fchw_cpu(const at::Tensor& frames, const at::Tensor& src_index, const at::Tensor& boxes,
                                  int64_t resize_h, int64_t resize_w, int64_t crop_y, int64_t crop_x, int64_t out_h,
                                  int64_t out_w, c10::ArrayRef<double> mean, c10::ArrayRef<double> std,
                                  int64_t frame_repeat, std::optional<at::ScalarType> dtype,
                                  const std::optional<at::Tensor>& uv, at::OptionalIntArrayRef yuv) {
  TORCH_CHECK(frames.device().is_cpu(), "fragment_pack_fchw (CPU kernel): frames must be on the CPU, got ",
              frames.device());
  const Plan pl = make_plan_common("fragment_pack_fchw", frames, src_index, boxes, resize_h, resize_w, crop_y, crop_x,
                                   out_h, out_w, mean, std, frame_repeat, dtype, uv, yuv);
  at::Tensor out = pooled_empty({pl.total_frames, 3, out_h, out_w}, frames.options().dtype(pl.out_dtype));
  if (pl.presented == 0) {
    return out;
  }
  if (pl.out_dtype == at::kFloat) {
    write_fchw<float>(pl, frames, uv, out.data_ptr<float>());
  } else {
    write_fchw<c10::BFloat16>(pl, frames, uv, out.data_ptr<c10::BFloat16>());
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(sf2t, CPU, m) {
  m.impl("fragment_pack", &fragment_pack_cpu);
  m.impl("fragment_pack_fchw", &fragment_pack_fchw_cpu);
  m.impl("fragment_pack_multi", &fragment_pack_multi_cpu);
}

}  // namespace sf2t
