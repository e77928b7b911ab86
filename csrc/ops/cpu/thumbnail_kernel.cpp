// CPU kernel of sf2t::thumbnail: BT.601 luma of uint8 RGB frames, then an exact area resize (each output
// pixel averages the input span [i*r, (i+1)*r), r = in / out, fractional edges weighted by their overlap),
// fused in one pass over the input. All three steps are linear, so they run in the cheapest order: the
// vertical taps first, on the raw RGB rows (contiguous, vectorized: each input row is read about once), then
// luma and the horizontal taps on the out_h accumulated rows only (64 instead of 360 for a 640x360 frame), fused
// into one dot product per output pixel where the vertical sums are integers.
// The vertical sums are exact 16-bit integer sums where they fit (the usual frame sizes): the overlaps of an
// area resize are rational with a small common denominator. Threaded over frames. The result equals the reference (luma, then resize) up to float rounding.
// The motion guard of the SF²T tasks (TASKS.md) measures MAD on these thumbnails.
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
void axpy_u8_u16(uint16_t* __restrict__ y, const uint8_t* __restrict__ x, uint16_t a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) y[j] = static_cast<uint16_t>(y[j] + a * static_cast<uint16_t>(x[j]));
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx2", "default")))
#endif
void add_u8_u16(uint16_t* __restrict__ y, const uint8_t* __restrict__ x, int64_t n) {
  for (int64_t j = 0; j < n; ++j) y[j] = static_cast<uint16_t>(y[j] + static_cast<uint16_t>(x[j]));
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
__attribute__((target_clones("avx2", "default")))
#endif
void luma_packed_f(const float* __restrict__ p, float* __restrict__ out, int64_t w) {
  for (int64_t x = 0; x < w; ++x) out[x] = p[3 * x] * 0.299f + p[3 * x + 1] * 0.587f + p[3 * x + 2] * 0.114f;
}

// Horizontal taps and luma in one dot product per output pixel, on the vertically summed packed RGB row (u16):
// out[j] = sum_t cw[j][t] * acc[3 * start[j] + t] with cw[j][3q + c] = wx[j][q] * luma[c] / denom (linear: the
// same value as luma first, then the taps, up to float rounding). Each dot product runs as 8 partial sums combined
// in a fixed order, in AVX2 or in scalar code alike, so both give the same bits.
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
  lt.cw.assign(n_out * lt.k3, 0.f);
  lt.start3.resize(n_out);
  for (int64_t j = 0; j < n_out; ++j) {
    lt.start3[j] = 3 * tx.start[j];
    for (int64_t q = 0; q < tx.size[j]; ++q) {
      for (int c = 0; c < 3; ++c) lt.cw[j * lt.k3 + 3 * q + c] = tx.w[j * tx.k + q] * luma[c] * inv_denom;
    }
  }
  return lt;
}

inline float reduce8(const float* p) {  // ((p0+p4) + (p2+p6)) + ((p1+p5) + (p3+p7)): the AVX2 path's order
  const float a0 = p[0] + p[4], a1 = p[1] + p[5], a2 = p[2] + p[6], a3 = p[3] + p[7];
  return (a0 + a2) + (a1 + a3);
}

void luma_taps_row_scalar(const uint16_t* acc, const LumaTaps& lt, int64_t out_w, float* out) {
  for (int64_t j = 0; j < out_w; ++j) {
    const uint16_t* p = acc + lt.start3[j];
    const float* w = lt.cw.data() + j * lt.k3;
    float s[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    for (int64_t t = 0; t < lt.k3; t += 8) {
      for (int l = 0; l < 8; ++l) s[l] = std::fma(static_cast<float>(p[t + l]), w[t + l], s[l]);
    }
    out[j] = reduce8(s);
  }
}

#if defined(__GNUC__) && defined(__x86_64__)
__attribute__((target("avx2,fma"))) void luma_taps_row_avx2(const uint16_t* acc, const LumaTaps& lt, int64_t out_w,
                                                            float* out) {
  for (int64_t j = 0; j < out_w; ++j) {
    const uint16_t* p = acc + lt.start3[j];
    const float* w = lt.cw.data() + j * lt.k3;
    __m256 s = _mm256_setzero_ps();
    for (int64_t t = 0; t < lt.k3; t += 8) {
      const __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + t))));
      s = _mm256_fmadd_ps(v, _mm256_loadu_ps(w + t), s);
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, s);
    out[j] = reduce8(lanes);
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
  // float conversion per input byte; one scale by 1 / denom per output row. Otherwise float weights.
  const bool exact16 = ty.denom * 255 <= 65535;
  const float inv_denom = static_cast<float>(1.0 / static_cast<double>(ty.denom));

  const LumaTaps lt = exact16 ? luma_taps(tx, inv_denom) : LumaTaps{};
#if defined(__GNUC__) && defined(__x86_64__)
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  const bool avx2 = false;
#endif
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> acc(exact16 ? 0 : w * 3), line(w);
    // (+ k3 zeros: a dot product may read past the row's last pixel, against zero weights)
    std::vector<uint16_t> acc16(exact16 ? w * 3 + lt.k3 : 0);
    std::vector<uint8_t> gathered(packed ? 0 : w * 3);
    for (int64_t f = begin; f < end; ++f) {
      const uint8_t* fr = base + rows[f] * sn;
      float* o = dst + f * out_h * out_w;
      for (int64_t i = 0; i < out_h; ++i) {
        // vertical taps on raw RGB: acc = sum_q wy[q] * row[start + q], taps outer, pixels inner
        if (exact16) {
          std::fill(acc16.begin(), acc16.begin() + w * 3, static_cast<uint16_t>(0));
        } else {
          std::fill(acc.begin(), acc.end(), 0.f);
        }
        const float* wi = ty.w.data() + i * ty.k;
        const uint16_t* ni = ty.num.data() + i * ty.k;
        for (int64_t q = 0; q < ty.size[i]; ++q) {
          const uint8_t* row = fr + (ty.start[i] + q) * sh;
          if (!packed) {  // strided pixels or channels: gather the row into packed RGB first
            for (int64_t x = 0; x < w; ++x) {
              const uint8_t* p = row + x * sw;
              gathered[3 * x] = p[0];
              gathered[3 * x + 1] = p[sc];
              gathered[3 * x + 2] = p[2 * sc];
            }
            row = gathered.data();
          }
          if (!exact16) {
            axpy_u8(acc.data(), row, wi[q], w * 3);
          } else if (ni[q] == 1) {
            add_u8_u16(acc16.data(), row, w * 3);
          } else {
            axpy_u8_u16(acc16.data(), row, ni[q], w * 3);
          }
        }
        float* oi = o + i * out_w;
        if (exact16) {  // luma and horizontal taps as one dot product per output pixel
#if defined(__GNUC__) && defined(__x86_64__)
          if (avx2) {
            luma_taps_row_avx2(acc16.data(), lt, out_w, oi);
            continue;
          }
#endif
          luma_taps_row_scalar(acc16.data(), lt, out_w, oi);
          continue;
        }
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

}  // namespace

TORCH_LIBRARY_IMPL(sf2t, CPU, m) {
  m.impl("thumbnail", &thumbnail_cpu);
}

}  // namespace sf2t
