// CPU kernel of sf2t::thumbnail: BT.601 luma of uint8 RGB frames, then an exact area resize (each output
// pixel averages the input span [i*r, (i+1)*r), r = in / out, fractional edges weighted by their overlap),
// fused in one pass over the input. All three steps are linear, so they run in the cheapest order: the
// vertical taps first, on the raw RGB rows (vectorized, the next rows prefetched: each input row is read about
// once), then luma and the horizontal taps on the out_h accumulated rows only (64 instead of 360 for a 640x360
// frame), fused into one dot product per output pixel where the vertical sums are integers.
// The vertical sums are exact 16-bit integer sums where they fit (the usual frame sizes): the overlaps of an
// area resize are rational with a small common denominator; two tap rows at a time with vpmaddubsw where the
// weights allow. Threaded over frames. The result equals the reference (luma, then resize) up to float rounding;
// the AVX2 and scalar paths give the same bits (SF2T_THUMB_SCALAR=1 forces the scalar one, SF2T_THUMB_PAIRS=0
// the one-row-at-a-time vertical pass: tests compare them).
// The motion guards of the SF²T tasks (docs/tasks.md, "Solvability guard") measure MAD on these thumbnails.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <numeric>
#include <vector>

namespace sf2t {
namespace {

// Area weights of one axis as a band: output i reads inputs start[i] .. start[i] + size[i] - 1. Computed exactly
// in integers: in units of 1/n_out of an input pixel, output i spans [i*n_in, (i+1)*n_in) and input j spans
// [j*n_out, (j+1)*n_out); their overlaps are multiples of g = gcd(n_in, n_out), so weight q of output i is
// num[q] / denom with integer num (summing to denom = n_in / g for every output).
struct Taps {
  std::vector<int64_t> start, size;
  std::vector<uint16_t> num;  // [n_out, k] integer weights (0 beyond size[i])
  std::vector<float> w;       // [n_out, k] the same as floats, num / denom
  int64_t k = 0, denom = 1;
};

Taps area_taps(int64_t n_in, int64_t n_out) {
  Taps t;
  const int64_t g = std::gcd(n_in, n_out);
  t.denom = n_in / g;
  t.start.resize(n_out);
  t.size.resize(n_out);
  std::vector<std::vector<int64_t>> rows(n_out);
  for (int64_t i = 0; i < n_out; ++i) {
    const int64_t lo = i * n_in, hi = lo + n_in;
    const int64_t j0 = lo / n_out, j1 = std::min<int64_t>(n_in, (hi + n_out - 1) / n_out);
    t.start[i] = j0;
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t ov = std::min(hi, (j + 1) * n_out) - std::max(lo, j * n_out);
      rows[i].push_back(ov / g);  // > 0: j0 and j1 bound exactly the inputs that overlap
    }
    t.size[i] = static_cast<int64_t>(rows[i].size());
    t.k = std::max<int64_t>(t.k, t.size[i]);
  }
  t.num.assign(n_out * t.k, 0);
  t.w.assign(n_out * t.k, 0.f);
  for (int64_t i = 0; i < n_out; ++i) {
    for (int64_t q = 0; q < t.size[i]; ++q) {
      t.num[i * t.k + q] = static_cast<uint16_t>(std::min<int64_t>(rows[i][q], 65535));
      t.w[i * t.k + q] = static_cast<float>(static_cast<double>(rows[i][q]) / static_cast<double>(t.denom));
    }
  }
  return t;
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx2", "default")))
#endif
void axpy_u8(float* __restrict__ y, const uint8_t* __restrict__ x, float a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) y[j] += a * static_cast<float>(x[j]);
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx2", "default")))
#endif
void luma_packed_f(const float* __restrict__ p, float* __restrict__ out, int64_t w) {
  for (int64_t x = 0; x < w; ++x) out[x] = p[3 * x] * 0.299f + p[3 * x + 1] * 0.587f + p[3 * x + 2] * 0.114f;
}

// Horizontal taps and luma in one dot product per output pixel, on the vertically summed packed RGB row (exact
// integer sums, held as floats): out[j] = sum_t cw[j][t] * acc[3 * start[j] + t] with cw[j][3q + c] = wx[j][q] *
// luma[c] / denom (linear: the same value as luma first, then the taps, up to float rounding). Each dot product runs
// as 8 partial sums (lane l takes the terms t = l mod 8, fused multiply-adds in order), combined as
// ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)): the order of the AVX2 path's horizontal-add tree, which reduces
// 8 output pixels at once; the scalar path follows the same order, so both give the same bits.
struct LumaTaps {
  std::vector<float> cw;  // [n_out, k3]
  std::vector<int64_t> start3;
  int64_t k3 = 0;  // 3 * taps, rounded up to 8
};

LumaTaps luma_taps(const Taps& tx, float inv_denom) {
  static const float luma[3] = {0.299f, 0.587f, 0.114f};
  LumaTaps lt;
  const int64_t n_out = static_cast<int64_t>(tx.start.size());
  lt.k3 = (3 * tx.k + 7) / 8 * 8;
  // padded to a multiple of 8 outputs with zero weights: the AVX2 path computes its last, partial group of 8 in full
  const int64_t n_pad = (n_out + 7) / 8 * 8;
  lt.cw.assign(n_pad * lt.k3, 0.f);
  lt.start3.assign(n_pad, 0);
  for (int64_t j = 0; j < n_out; ++j) {
    lt.start3[j] = 3 * tx.start[j];
    for (int64_t q = 0; q < tx.size[j]; ++q) {
      for (int c = 0; c < 3; ++c) lt.cw[j * lt.k3 + 3 * q + c] = tx.w[j * tx.k + q] * luma[c] * inv_denom;
    }
  }
  return lt;
}

inline float dot8_scalar(const float* p, const float* w, int64_t k3) {
  float s[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  for (int64_t t = 0; t < k3; t += 8) {
    for (int l = 0; l < 8; ++l) s[l] = std::fma(p[t + l], w[t + l], s[l]);
  }
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

void luma_taps_row_scalar(const float* acc, const LumaTaps& lt, int64_t out_w, float* out) {
  for (int64_t j = 0; j < out_w; ++j) out[j] = dot8_scalar(acc + lt.start3[j], lt.cw.data() + j * lt.k3, lt.k3);
}

// Vertical taps of one output row in exact integers: out[x] = sum_q num[q] * rows[q][x] (< 2^16), as floats.
void vsum_scalar(const uint8_t* const* rows, const uint16_t* num, int64_t taps, int64_t n, float* out,
                 int64_t from = 0) {
  for (int64_t x = from; x < n; ++x) {
    uint32_t s = 0;
    for (int64_t q = 0; q < taps; ++q) s += static_cast<uint32_t>(num[q]) * rows[q][x];
    out[x] = static_cast<float>(s);
  }
}

#if defined(__GNUC__) && defined(__x86_64__)
__attribute__((target("avx2,fma"))) inline __m256 u16x8_to_ps(__m128i v) {  // 8 u16 -> 8 floats
  return _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(v));
}

__attribute__((target("avx2,fma"))) inline void store16(float* o, __m256i a) {  // 16 u16 -> 16 floats
  _mm256_storeu_ps(o, u16x8_to_ps(_mm256_castsi256_si128(a)));
  _mm256_storeu_ps(o + 8, u16x8_to_ps(_mm256_extracti128_si256(a, 1)));
}

__attribute__((target("avx2,fma"))) inline __m256i ld(const uint8_t* p) {  // 16 u8 -> 16 u16
  return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// 64 bytes a step: the accumulators stay in registers over the taps (u16 multiply-adds, 16 pixels an
// instruction), then widen to floats once.
__attribute__((target("avx2,fma"))) void vsum_avx2(const uint8_t* const* rows, const uint16_t* num, int64_t taps,
                                                   int64_t n, float* out, int64_t ahead) {
  int64_t x = 0;
  for (; x + 64 <= n; x += 64) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t q = 0; q < taps; ++q) {
      const uint8_t* r = rows[q] + x;
      if (ahead) _mm_prefetch(reinterpret_cast<const char*>(r + ahead), _MM_HINT_T1);
      __m256i v0 = ld(r), v1 = ld(r + 16), v2 = ld(r + 32), v3 = ld(r + 48);
      if (num[q] != 1) {
        const __m256i m = _mm256_set1_epi16(static_cast<int16_t>(num[q]));
        v0 = _mm256_mullo_epi16(v0, m);
        v1 = _mm256_mullo_epi16(v1, m);
        v2 = _mm256_mullo_epi16(v2, m);
        v3 = _mm256_mullo_epi16(v3, m);
      }
      a0 = _mm256_add_epi16(a0, v0);
      a1 = _mm256_add_epi16(a1, v1);
      a2 = _mm256_add_epi16(a2, v2);
      a3 = _mm256_add_epi16(a3, v3);
    }
    store16(out + x, a0);
    store16(out + x + 16, a1);
    store16(out + x + 32, a2);
    store16(out + x + 48, a3);
  }
  for (; x + 16 <= n; x += 16) {
    __m256i a = _mm256_setzero_si256();
    for (int64_t q = 0; q < taps; ++q) {
      __m256i v = ld(rows[q] + x);
      if (num[q] != 1) v = _mm256_mullo_epi16(v, _mm256_set1_epi16(static_cast<int16_t>(num[q])));
      a = _mm256_add_epi16(a, v);
    }
    store16(out + x, a);
  }
  vsum_scalar(rows, num, taps, n, out, x);
}

// Two tap rows at once: their bytes interleaved (unpack), then one u8 x s8 multiply and pair add (vpmaddubsw) gives
// num[a] * row_a + num[b] * row_b in 16 bits, 16 pixels an instruction. Exact while no pair sum saturates
// (num[a] + num[b] <= 128, each <= 127; checked by the caller); the running sum wraps as u16, which is exact since
// the total is < 2^16. An odd last tap pairs with itself at weight 0. Unpack works within 128-bit lanes, so the
// two accumulators hold columns {0-7, 16-23} and {8-15, 24-31} of each 32; the stores put them back in order.
__attribute__((target("avx2,fma"))) inline void store32_unpacked(float* o, __m256i lo, __m256i hi) {
  _mm256_storeu_ps(o, u16x8_to_ps(_mm256_castsi256_si128(lo)));
  _mm256_storeu_ps(o + 8, u16x8_to_ps(_mm256_castsi256_si128(hi)));
  _mm256_storeu_ps(o + 16, u16x8_to_ps(_mm256_extracti128_si256(lo, 1)));
  _mm256_storeu_ps(o + 24, u16x8_to_ps(_mm256_extracti128_si256(hi, 1)));
}

__attribute__((target("avx2,fma"))) void vsum_pairs_avx2(const uint8_t* const* rows, const uint16_t* num,
                                                         int64_t taps, int64_t n, float* out, int64_t ahead) {
  const int64_t pairs = (taps + 1) / 2;
  const uint8_t* ra[32];
  const uint8_t* rb[32];
  __m256i wv[32];
  for (int64_t p = 0; p < pairs; ++p) {
    const int64_t a = 2 * p, b = std::min(2 * p + 1, taps - 1);
    const int wb = (b == a) ? 0 : num[b];
    ra[p] = rows[a];
    rb[p] = rows[b];
    wv[p] = _mm256_set1_epi16(static_cast<int16_t>((wb << 8) | num[a]));
  }
  int64_t x = 0;
  for (; x + 64 <= n; x += 64) {
    __m256i l0 = _mm256_setzero_si256(), h0 = l0, l1 = l0, h1 = l0;
    for (int64_t p = 0; p < pairs; ++p) {
      if (ahead) {
        _mm_prefetch(reinterpret_cast<const char*>(ra[p] + x + ahead), _MM_HINT_T1);
        _mm_prefetch(reinterpret_cast<const char*>(rb[p] + x + ahead), _MM_HINT_T1);
      }
      const __m256i a0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ra[p] + x));
      const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rb[p] + x));
      const __m256i a1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ra[p] + x + 32));
      const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rb[p] + x + 32));
      l0 = _mm256_add_epi16(l0, _mm256_maddubs_epi16(_mm256_unpacklo_epi8(a0, b0), wv[p]));
      h0 = _mm256_add_epi16(h0, _mm256_maddubs_epi16(_mm256_unpackhi_epi8(a0, b0), wv[p]));
      l1 = _mm256_add_epi16(l1, _mm256_maddubs_epi16(_mm256_unpacklo_epi8(a1, b1), wv[p]));
      h1 = _mm256_add_epi16(h1, _mm256_maddubs_epi16(_mm256_unpackhi_epi8(a1, b1), wv[p]));
    }
    store32_unpacked(out + x, l0, h0);
    store32_unpacked(out + x + 32, l1, h1);
  }
  for (; x + 32 <= n; x += 32) {
    __m256i l0 = _mm256_setzero_si256(), h0 = l0;
    for (int64_t p = 0; p < pairs; ++p) {
      const __m256i a0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ra[p] + x));
      const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rb[p] + x));
      l0 = _mm256_add_epi16(l0, _mm256_maddubs_epi16(_mm256_unpacklo_epi8(a0, b0), wv[p]));
      h0 = _mm256_add_epi16(h0, _mm256_maddubs_epi16(_mm256_unpackhi_epi8(a0, b0), wv[p]));
    }
    store32_unpacked(out + x, l0, h0);
  }
  vsum_scalar(rows, num, taps, n, out, x);
}

// 8 output pixels a step: 8 dot products in 8 registers, reduced together by a horizontal-add tree.
__attribute__((target("avx2,fma"))) void luma_taps_row_avx2(const float* acc, const LumaTaps& lt, int64_t out_w,
                                                            float* out) {
  const int64_t k3 = lt.k3;
  for (int64_t j = 0; j < out_w; j += 8) {  // the last group may be partial: its padded outputs are dropped
    // taps outer, the 8 pixels inner: 8 independent multiply-add chains in registers
    const float* p[8];
    __m256 s[8];
#pragma GCC unroll 8
    for (int l = 0; l < 8; ++l) {
      p[l] = acc + lt.start3[j + l];
      s[l] = _mm256_setzero_ps();
    }
    const float* w = lt.cw.data() + j * k3;
    for (int64_t t = 0; t < k3; t += 8) {
#pragma GCC unroll 8
      for (int l = 0; l < 8; ++l) {
        s[l] = _mm256_fmadd_ps(_mm256_loadu_ps(p[l] + t), _mm256_loadu_ps(w + l * k3 + t), s[l]);
      }
    }
    const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(s[0], s[1]), _mm256_hadd_ps(s[2], s[3]));
    const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(s[4], s[5]), _mm256_hadd_ps(s[6], s[7]));
    const __m256 sum = _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
    if (j + 8 <= out_w) {
      _mm256_storeu_ps(out + j, sum);
    } else {
      alignas(32) float tail[8];
      _mm256_store_ps(tail, sum);
      std::copy(tail, tail + (out_w - j), out + j);
    }
  }
}
#endif

at::Tensor thumbnail_cpu(const at::Tensor& frames, int64_t out_h, int64_t out_w,
                         const std::optional<at::Tensor>& index) {
  TORCH_CHECK(frames.device().is_cpu(), "thumbnail: the cpu kernel needs frames on the CPU, got ", frames.device());
  TORCH_CHECK(frames.scalar_type() == at::kByte, "thumbnail: frames must be uint8, got ", frames.scalar_type());
  TORCH_CHECK(frames.dim() == 4 && frames.size(3) == 3, "thumbnail: frames must have shape [N, H, W, 3], got ",
              frames.sizes());
  TORCH_CHECK(out_h > 0 && out_w > 0, "thumbnail: out_h and out_w must be positive, got ", out_h, ", ", out_w);
  const int64_t h = frames.size(1), w = frames.size(2);
  TORCH_CHECK(h > 0 && w > 0, "thumbnail: frames must not be empty in height or width, got ", frames.sizes());
  // index: which frames (rows of frames) to make thumbnails of, so a caller needs no gathered copy
  std::vector<int64_t> rows;
  if (index.has_value()) {
    const at::Tensor& ix = *index;
    TORCH_CHECK(ix.device().is_cpu() && ix.scalar_type() == at::kLong && ix.dim() == 1,
                "thumbnail: index must be a 1-D int64 CPU tensor, got ", ix.scalar_type(), " ", ix.sizes(), " on ",
                ix.device());
    const at::Tensor c = ix.contiguous();
    rows.assign(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
    for (int64_t r : rows) {
      TORCH_CHECK(r >= 0 && r < frames.size(0), "thumbnail: index value ", r, " out of range for ", frames.size(0),
                  " frames");
    }
  } else {
    rows.resize(frames.size(0));
    for (int64_t i = 0; i < frames.size(0); ++i) rows[i] = i;
  }
  const int64_t n = static_cast<int64_t>(rows.size());
  at::Tensor out = at::empty({n, out_h, out_w}, frames.options().dtype(at::kFloat));
  if (n == 0) return out;
  const Taps tx = area_taps(w, out_w), ty = area_taps(h, out_h);
  const uint8_t* base = frames.data_ptr<uint8_t>();
  const int64_t sn = frames.stride(0), sh = frames.stride(1), sw = frames.stride(2), sc = frames.stride(3);
  float* dst = out.data_ptr<float>();
  const bool packed = (sw == 3 && sc == 1);
  // Vertical taps in exact integer arithmetic while the weighted sums fit 16 bits (255 * denom <= 65535: e.g.
  // 360 -> 64 rows has denom 45, 1080 -> 64 has 135): u16 multiply-adds, 16 pixels an AVX2 instruction, no
  // float conversion per input byte; 1 / denom folded into the horizontal weights. Otherwise float weights.
  const bool exact16 = ty.denom * 255 <= 65535;
  const float inv_denom = static_cast<float>(1.0 / static_cast<double>(ty.denom));

  const LumaTaps lt = exact16 ? luma_taps(tx, inv_denom) : LumaTaps{};
#if defined(__GNUC__) && defined(__x86_64__)
  static const bool cpu_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const char* scalar_env = std::getenv("SF2T_THUMB_SCALAR");  // tests: the scalar path must give the same bits
  const bool avx2 = cpu_avx2 && !(scalar_env && scalar_env[0] == '1');
  // vpmaddubsw on pairs of tap rows: every weight <= 127 and every pair's sum <= 128 (no 16-bit saturation)
  const char* pairs_env = std::getenv("SF2T_THUMB_PAIRS");
  bool pairs_ok = exact16 && ty.k <= 64 && !(pairs_env && pairs_env[0] == '0');
  for (int64_t i = 0; pairs_ok && i < out_h; ++i) {
    const uint16_t* ni = ty.num.data() + i * ty.k;
    for (int64_t q = 0; q < ty.size[i]; q += 2) {
      const int64_t pair = ni[q] + (q + 1 < ty.size[i] ? ni[q + 1] : 0);
      if (ni[q] > 127 || pair > 128) pairs_ok = false;
    }
  }
#endif
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> acc(exact16 ? 0 : w * 3), line(exact16 ? 0 : w);
    // exact16: the integer vertical sums as floats, + k3 zeros (a dot product may read past the row's last pixel,
    // against zero weights)
    std::vector<float> accf(exact16 ? w * 3 + lt.k3 : 0, 0.f);
    std::vector<uint8_t> gathered(packed ? 0 : w * 3 * ty.k);
    std::vector<const uint8_t*> tap_rows(ty.k);
    for (int64_t f = begin; f < end; ++f) {
      const uint8_t* fr = base + rows[f] * sn;
      float* o = dst + f * out_h * out_w;
      for (int64_t i = 0; i < out_h; ++i) {
        for (int64_t q = 0; q < ty.size[i]; ++q) {
          const uint8_t* row = fr + (ty.start[i] + q) * sh;
          if (!packed) {  // strided pixels or channels: gather the row into packed RGB first
            uint8_t* g = gathered.data() + q * w * 3;
            for (int64_t x = 0; x < w; ++x) {
              const uint8_t* p = row + x * sw;
              g[3 * x] = p[0];
              g[3 * x + 1] = p[sc];
              g[3 * x + 2] = p[2 * sc];
            }
            row = g;
          }
          tap_rows[q] = row;
        }
        float* oi = o + i * out_w;
        if (exact16) {  // vertical taps in integers, then luma and the horizontal taps as one dot product per pixel
          const uint16_t* ni = ty.num.data() + i * ty.k;
#if defined(__GNUC__) && defined(__x86_64__)
          if (avx2) {
            // prefetch the next output row's input rows into L2 (from memory, 640x272: 0.094 ms a frame without,
            // 0.076 into L1, 0.046-0.053 into L2; the frame in cache: 0.039)
            const int64_t ahead = packed ? ty.size[i] * sh : 0;
            if (pairs_ok) {
              vsum_pairs_avx2(tap_rows.data(), ni, ty.size[i], w * 3, accf.data(), ahead);
            } else {
              vsum_avx2(tap_rows.data(), ni, ty.size[i], w * 3, accf.data(), ahead);
            }
            luma_taps_row_avx2(accf.data(), lt, out_w, oi);
            continue;
          }
#endif
          vsum_scalar(tap_rows.data(), ni, ty.size[i], w * 3, accf.data());
          luma_taps_row_scalar(accf.data(), lt, out_w, oi);
          continue;
        }
        // vertical taps on raw RGB in floats: acc = sum_q wy[q] * row[start + q], taps outer, pixels inner
        std::fill(acc.begin(), acc.end(), 0.f);
        const float* wi = ty.w.data() + i * ty.k;
        for (int64_t q = 0; q < ty.size[i]; ++q) axpy_u8(acc.data(), tap_rows[q], wi[q], w * 3);
        // luma in the reference's order: r*0.299 + g*0.587 + b*0.114
        luma_packed_f(acc.data(), line.data(), w);
        for (int64_t j = 0; j < out_w; ++j) {  // horizontal taps on the one luma line
          const float* wj = tx.w.data() + j * tx.k;
          const float* src = line.data() + tx.start[j];
          float a = 0.f;
          for (int64_t q = 0; q < tx.size[j]; ++q) a += wj[q] * src[q];
          oi[j] = a;
        }
      }
    }
  });
  return out;
}

// Mean absolute difference of two float rows of length k: 8 lane sums (|x - y| accumulated in order), combined in
// double. Same order in the AVX2 and scalar paths, so the same bits.
double mad_row_scalar(const float* x, const float* y, int64_t k) {
  float s[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int64_t t = 0;
  for (; t + 8 <= k; t += 8) {
    for (int l = 0; l < 8; ++l) s[l] += std::fabs(x[t + l] - y[t + l]);
  }
  double tot = 0.0;
  for (int l = 0; l < 8; ++l) tot += s[l];
  for (; t < k; ++t) tot += std::fabs(x[t] - y[t]);
  return tot / static_cast<double>(k);
}

#if defined(__GNUC__) && defined(__x86_64__)
__attribute__((target("avx2,fma"))) double mad_row_avx2(const float* x, const float* y, int64_t k) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 s = _mm256_setzero_ps();
  int64_t t = 0;
  for (; t + 8 <= k; t += 8) {
    s = _mm256_add_ps(s, _mm256_andnot_ps(sign, _mm256_sub_ps(_mm256_loadu_ps(x + t), _mm256_loadu_ps(y + t))));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  double tot = 0.0;
  for (int l = 0; l < 8; ++l) tot += lanes[l];
  for (; t < k; ++t) tot += std::fabs(x[t] - y[t]);
  return tot / static_cast<double>(k);
}
#endif

at::Tensor thumb_mad_cpu(const at::Tensor& thumbs, c10::IntArrayRef a, c10::IntArrayRef b) {
  TORCH_CHECK(thumbs.device().is_cpu(), "thumb_mad: the cpu kernel needs thumbs on the CPU, got ", thumbs.device());
  TORCH_CHECK(thumbs.scalar_type() == at::kFloat, "thumb_mad: thumbs must be float32, got ", thumbs.scalar_type());
  TORCH_CHECK(thumbs.dim() >= 2, "thumb_mad: thumbs must be [N, ...] with at least 2 dims, got ", thumbs.sizes());
  TORCH_CHECK(a.size() == b.size(), "thumb_mad: a and b must have the same length, got ", a.size(), " and ",
              b.size());
  const int64_t n = thumbs.size(0), k = n ? thumbs.numel() / n : 0;
  TORCH_CHECK(k > 0, "thumb_mad: thumbnails must not be empty, got ", thumbs.sizes());
  for (size_t q = 0; q < a.size(); ++q) {
    TORCH_CHECK(a[q] >= 0 && a[q] < n && b[q] >= 0 && b[q] < n, "thumb_mad: pair (", a[q], ", ", b[q],
                ") out of range for ", n, " thumbnails");
  }
  const at::Tensor t = thumbs.contiguous();
  const int64_t p = static_cast<int64_t>(a.size());
  at::Tensor out = at::empty({p}, thumbs.options());
  const float* base = t.data_ptr<float>();
  float* o = out.data_ptr<float>();
#if defined(__GNUC__) && defined(__x86_64__)
  static const bool cpu_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const char* scalar_env = std::getenv("SF2T_THUMB_SCALAR");
  const bool avx2 = cpu_avx2 && !(scalar_env && scalar_env[0] == '1');
#endif
  for (int64_t q = 0; q < p; ++q) {
    const float* x = base + a[q] * k;
    const float* y = base + b[q] * k;
#if defined(__GNUC__) && defined(__x86_64__)
    if (avx2) {
      o[q] = static_cast<float>(mad_row_avx2(x, y, k));
      continue;
    }
#endif
    o[q] = static_cast<float>(mad_row_scalar(x, y, k));
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(sf2t, CPU, m) {
  m.impl("thumbnail", &thumbnail_cpu);
  m.impl("thumb_mad", &thumb_mad_cpu);
}

}  // namespace sf2t
