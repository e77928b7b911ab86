// libswscale's fixed-point yuv420p -> RGB arithmetic on x86 (the unscaled converter FFmpeg, torchcodec and PyAV run
// for even-sized 4:2:0 frames), shared by sf2t::yuv420_to_rgb_ (packed RGB out) and fragment_pack's CPU kernel
// (YUV 4:2:0 input converted into its planar rows in the same pass). Nearest chroma (one U, V sample per 2x2 luma
// block); 16-bit lanes; Q13 coefficients applied with a high-half multiply (floor of the product / 2^16);
// saturating 16-bit adds; a final clamp to 0..255:
//   Y' = hi(((Y << 3) - yo) * cy)            (16-bit wrap-around subtraction)
//   U' = sat((U << 3) - 1024), V' likewise
//   R = clamp(Y' + hi(V' * cvr)), G = clamp(Y' + sat(hi(U' * cug) + hi(V' * cvg))), B = clamp(Y' + hi(U' * cub))
// Coefficients: sf2t/video/convert.py swscale_coefficients (cy, cvr, cub, cvg, cug, yo).
#pragma once

#include <cstdint>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define SF2T_SWS_AVX2 1
#endif

namespace sf2t {
namespace swscale {

struct Coeffs {
  int16_t cy, cvr, cub, cvg, cug, yo;
};

inline int16_t wrap16(int32_t v) { return static_cast<int16_t>(static_cast<uint16_t>(v)); }
inline int16_t sat16(int32_t v) { return static_cast<int16_t>(v < -32768 ? -32768 : (v > 32767 ? 32767 : v)); }
inline int16_t mulhi(int16_t a, int16_t b) { return static_cast<int16_t>((int32_t{a} * int32_t{b}) >> 16); }
inline uint8_t clamp8(int16_t v) { return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v)); }

// One pixel: the reference arithmetic.
inline void pixel(const Coeffs& k, uint8_t Y, uint8_t U, uint8_t V, uint8_t& r, uint8_t& g, uint8_t& b) {
  const int16_t yy = mulhi(wrap16((int32_t{Y} << 3) - k.yo), k.cy);
  const int16_t u = sat16((int32_t{U} << 3) - 1024), v = sat16((int32_t{V} << 3) - 1024);
  r = clamp8(sat16(yy + mulhi(v, k.cvr)));
  g = clamp8(sat16(yy + sat16(mulhi(u, k.cug) + mulhi(v, k.cvg))));
  b = clamp8(sat16(yy + mulhi(u, k.cub)));
}

#ifdef SF2T_SWS_AVX2
struct Vec {
  __m256i cy, cvr, cub, cvg, cug, yo, c1024;
};

__attribute__((target("avx2"))) inline Vec vec(const Coeffs& k) {
  return Vec{_mm256_set1_epi16(k.cy),  _mm256_set1_epi16(k.cvr), _mm256_set1_epi16(k.cub), _mm256_set1_epi16(k.cvg),
             _mm256_set1_epi16(k.cug), _mm256_set1_epi16(k.yo),  _mm256_set1_epi16(1024)};
}

// 16 chroma terms (int16, samples s0..s15) -> the terms of 32 pixels (each sample twice): pixels 0-15 and 16-31.
__attribute__((target("avx2"))) inline void dup_pairs(__m256i c, __m256i& p0, __m256i& p1) {
  const __m256i lo = _mm256_unpacklo_epi16(c, c);  // s0 s0 .. s3 s3 | s8 s8 .. s11 s11
  const __m256i hi = _mm256_unpackhi_epi16(c, c);  // s4 s4 .. s7 s7 | s12 s12 .. s15 s15
  p0 = _mm256_permute2x128_si256(lo, hi, 0x20);    // s0 .. s7, each twice
  p1 = _mm256_permute2x128_si256(lo, hi, 0x31);    // s8 .. s15, each twice
}

// 32 pixels: luma yl[0..31], chroma ul[0..15], vl[0..15] -> R, G, B as 32 uint8 each, in pixel order.
__attribute__((target("avx2"))) inline void rgb32(const Vec& k, const uint8_t* yl, const uint8_t* ul,
                                                  const uint8_t* vl, __m256i& R, __m256i& G, __m256i& B) {
  __m256i y0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(yl)));
  __m256i y1 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(yl + 16)));
  y0 = _mm256_mulhi_epi16(_mm256_sub_epi16(_mm256_slli_epi16(y0, 3), k.yo), k.cy);
  y1 = _mm256_mulhi_epi16(_mm256_sub_epi16(_mm256_slli_epi16(y1, 3), k.yo), k.cy);
  __m256i u = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ul)));
  __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(vl)));
  u = _mm256_subs_epi16(_mm256_slli_epi16(u, 3), k.c1024);
  v = _mm256_subs_epi16(_mm256_slli_epi16(v, 3), k.c1024);
  __m256i r0, r1, g0, g1, b0, b1;
  dup_pairs(_mm256_mulhi_epi16(v, k.cvr), r0, r1);
  dup_pairs(_mm256_adds_epi16(_mm256_mulhi_epi16(u, k.cug), _mm256_mulhi_epi16(v, k.cvg)), g0, g1);
  dup_pairs(_mm256_mulhi_epi16(u, k.cub), b0, b1);
  // packus: 16-bit -> uint8 with saturation (the clamp), lanes [p0 lo, p1 lo | p0 hi, p1 hi] -> pixel order
  R = _mm256_permute4x64_epi64(_mm256_packus_epi16(_mm256_adds_epi16(y0, r0), _mm256_adds_epi16(y1, r1)), 0xD8);
  G = _mm256_permute4x64_epi64(_mm256_packus_epi16(_mm256_adds_epi16(y0, g0), _mm256_adds_epi16(y1, g1)), 0xD8);
  B = _mm256_permute4x64_epi64(_mm256_packus_epi16(_mm256_adds_epi16(y0, b0), _mm256_adds_epi16(y1, b1)), 0xD8);
}
#endif

}  // namespace swscale
}  // namespace sf2t
