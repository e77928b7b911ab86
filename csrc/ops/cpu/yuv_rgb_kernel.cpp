// CPU kernel of sf2t::yuv420_to_rgb_: 8-bit 4:2:0 planes to packed RGB24 in the fixed-point arithmetic of
// libswscale's unscaled yuv420p -> rgb24 converter on x86 (the one FFmpeg, torchcodec and PyAV run for even-sized
// 4:2:0 frames): nearest chroma (one U, V sample per 2x2 luma block); 16-bit lanes; Q13 coefficients applied with
// a high-half multiply (floor of the product / 2^16); saturating 16-bit adds; a final clamp to 0..255:
//   Y' = hi(((Y << 3) - yo) * cy)            (16-bit wrap-around subtraction)
//   U' = sat((U << 3) - 1024), V' likewise
//   R = clamp(Y' + hi(V' * cvr)), G = clamp(Y' + sat(hi(U' * cug) + hi(V' * cvg))), B = clamp(Y' + hi(U' * cub))
// so the RGB equals what the decoders' own conversion gives, bit for bit (sf2t/video/convert.py checks that per
// stream format at run time and tests it), while skipping their per-frame allocation and copy: the decoded planes
// are converted straight into the caller's window tensor. AVX2: 32 pixels a step; the scalar path computes the
// same integers (SF2T_YUV_SCALAR=1 forces it; tests compare both with the PyTorch reference).
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include <cstdint>
#include <cstdlib>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace sf2t {
namespace {

struct Coeffs {
  int16_t cy, cvr, cub, cvg, cug, yo;
};

inline int16_t wrap16(int32_t v) { return static_cast<int16_t>(static_cast<uint16_t>(v)); }
inline int16_t sat16(int32_t v) { return static_cast<int16_t>(v < -32768 ? -32768 : (v > 32767 ? 32767 : v)); }
inline int16_t mulhi(int16_t a, int16_t b) { return static_cast<int16_t>((int32_t{a} * int32_t{b}) >> 16); }
inline uint8_t clamp8(int16_t v) { return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v)); }

// One row, pixels [x0, x1): the reference arithmetic, one pixel at a time.
void row_scalar(const Coeffs& k, const uint8_t* yl, const uint8_t* ul, const uint8_t* vl, int64_t x0, int64_t x1,
                uint8_t* out) {
  for (int64_t x = x0; x < x1; ++x) {
    const int16_t yy = mulhi(wrap16((int32_t{yl[x]} << 3) - k.yo), k.cy);
    const int16_t u = sat16((int32_t{ul[x / 2]} << 3) - 1024), v = sat16((int32_t{vl[x / 2]} << 3) - 1024);
    uint8_t* o = out + 3 * x;
    o[0] = clamp8(sat16(yy + mulhi(v, k.cvr)));
    o[1] = clamp8(sat16(yy + sat16(mulhi(u, k.cug) + mulhi(v, k.cvg))));
    o[2] = clamp8(sat16(yy + mulhi(u, k.cub)));
  }
}

#if defined(__GNUC__) && defined(__x86_64__)
#define SF2T_YUV_AVX2 1
bool has_avx2() {
  static const bool ok = __builtin_cpu_supports("avx2");
  return ok;
}

// pshufb masks that interleave 16 R, 16 G and 16 B bytes into 48 bytes of RGB24: block b (bytes 16b .. 16b + 15) of
// the output takes byte i from channel c's pixel p where 16b + i = 3p + c (-1: zero, filled by another channel).
struct InterleaveMasks {
  alignas(16) int8_t m[3][3][16];  // [block][channel][byte]
  InterleaveMasks() {
    for (int b = 0; b < 3; ++b)
      for (int c = 0; c < 3; ++c)
        for (int i = 0; i < 16; ++i) {
          const int g = 16 * b + i;
          m[b][c][i] = (g % 3 == c) ? static_cast<int8_t>(g / 3) : static_cast<int8_t>(-1);
        }
  }
};

__attribute__((target("avx2"))) inline void store_rgb16(__m128i r, __m128i g, __m128i b, uint8_t* out) {
  static const InterleaveMasks M;
  for (int k = 0; k < 3; ++k) {
    const __m128i* m = reinterpret_cast<const __m128i*>(M.m[k]);
    const __m128i v = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(r, _mm_load_si128(m)),
                                                _mm_shuffle_epi8(g, _mm_load_si128(m + 1))),
                                   _mm_shuffle_epi8(b, _mm_load_si128(m + 2)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * k), v);
  }
}

// 16 chroma terms (int16, samples s0..s15) -> the terms of 32 pixels (each sample twice): pixels 0-15 and 16-31.
__attribute__((target("avx2"))) inline void dup_pairs(__m256i c, __m256i& p0, __m256i& p1) {
  const __m256i lo = _mm256_unpacklo_epi16(c, c);  // s0 s0 .. s3 s3 | s8 s8 .. s11 s11
  const __m256i hi = _mm256_unpackhi_epi16(c, c);  // s4 s4 .. s7 s7 | s12 s12 .. s15 s15
  p0 = _mm256_permute2x128_si256(lo, hi, 0x20);    // s0 .. s7, each twice
  p1 = _mm256_permute2x128_si256(lo, hi, 0x31);    // s8 .. s15, each twice
}

// Pixels [0, x_end) of a row, x_end a multiple of 32: the same integers as row_scalar, 32 pixels a step.
__attribute__((target("avx2"))) void row_avx2(const Coeffs& k, const uint8_t* yl, const uint8_t* ul,
                                              const uint8_t* vl, int64_t x_end, uint8_t* out) {
  const __m256i cy = _mm256_set1_epi16(k.cy), cvr = _mm256_set1_epi16(k.cvr), cub = _mm256_set1_epi16(k.cub);
  const __m256i cvg = _mm256_set1_epi16(k.cvg), cug = _mm256_set1_epi16(k.cug), yo = _mm256_set1_epi16(k.yo);
  const __m256i c1024 = _mm256_set1_epi16(1024);
  for (int64_t x = 0; x < x_end; x += 32) {
    __m256i y0 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(yl + x)));
    __m256i y1 = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(yl + x + 16)));
    y0 = _mm256_mulhi_epi16(_mm256_sub_epi16(_mm256_slli_epi16(y0, 3), yo), cy);
    y1 = _mm256_mulhi_epi16(_mm256_sub_epi16(_mm256_slli_epi16(y1, 3), yo), cy);
    __m256i u = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ul + x / 2)));
    __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(vl + x / 2)));
    u = _mm256_subs_epi16(_mm256_slli_epi16(u, 3), c1024);
    v = _mm256_subs_epi16(_mm256_slli_epi16(v, 3), c1024);
    __m256i r0, r1, g0, g1, b0, b1;
    dup_pairs(_mm256_mulhi_epi16(v, cvr), r0, r1);
    dup_pairs(_mm256_adds_epi16(_mm256_mulhi_epi16(u, cug), _mm256_mulhi_epi16(v, cvg)), g0, g1);
    dup_pairs(_mm256_mulhi_epi16(u, cub), b0, b1);
    // packus: 16-bit -> uint8 with saturation (the clamp), lanes [p0 lo, p1 lo | p0 hi, p1 hi] -> pixel order
    const __m256i R = _mm256_permute4x64_epi64(
        _mm256_packus_epi16(_mm256_adds_epi16(y0, r0), _mm256_adds_epi16(y1, r1)), 0xD8);
    const __m256i G = _mm256_permute4x64_epi64(
        _mm256_packus_epi16(_mm256_adds_epi16(y0, g0), _mm256_adds_epi16(y1, g1)), 0xD8);
    const __m256i B = _mm256_permute4x64_epi64(
        _mm256_packus_epi16(_mm256_adds_epi16(y0, b0), _mm256_adds_epi16(y1, b1)), 0xD8);
    store_rgb16(_mm256_castsi256_si128(R), _mm256_castsi256_si128(G), _mm256_castsi256_si128(B), out + 3 * x);
    store_rgb16(_mm256_extracti128_si256(R, 1), _mm256_extracti128_si256(G, 1), _mm256_extracti128_si256(B, 1),
                out + 3 * x + 48);
  }
}
#endif

void check_plane(const at::Tensor& t, const char* name, int64_t h, int64_t w) {
  TORCH_CHECK(t.device().is_cpu(), "yuv420_to_rgb_: ", name, " must be on the CPU, got ", t.device());
  TORCH_CHECK(t.scalar_type() == at::kByte, "yuv420_to_rgb_: ", name, " must be uint8, got ", t.scalar_type());
  TORCH_CHECK(t.dim() == 2 && t.size(0) == h && t.size(1) == w, "yuv420_to_rgb_: ", name, " must be [", h, ", ", w,
              "], got ", t.sizes());
  TORCH_CHECK(t.stride(1) == 1 || w == 1, "yuv420_to_rgb_: ", name, "'s rows must be contiguous (stride 1), got ",
              t.strides());
}

void yuv420_to_rgb_cpu(const at::Tensor& y, const at::Tensor& u, const at::Tensor& v, c10::IntArrayRef coeffs,
                       const at::Tensor& out) {
  TORCH_CHECK(coeffs.size() == 6, "yuv420_to_rgb_: coeffs must be 6 integers (cy, cvr, cub, cvg, cug, yo), got ",
              coeffs.size());
  for (size_t i = 0; i < 6; ++i)
    TORCH_CHECK(coeffs[i] >= -32768 && coeffs[i] <= 32767, "yuv420_to_rgb_: coeffs[", i, "] = ", coeffs[i],
                " is not a 16-bit integer");
  TORCH_CHECK(y.dim() == 2, "yuv420_to_rgb_: y must be a 2-D plane [H, W], got ", y.sizes());
  const int64_t h = y.size(0), w = y.size(1), ch = (h + 1) / 2, cw = (w + 1) / 2;
  check_plane(y, "y", h, w);
  check_plane(u, "u", ch, cw);
  check_plane(v, "v", ch, cw);
  TORCH_CHECK(out.device().is_cpu() && out.scalar_type() == at::kByte, "yuv420_to_rgb_: out must be uint8 on the CPU");
  TORCH_CHECK(out.dim() == 3 && out.size(0) == h && out.size(1) == w && out.size(2) == 3,
              "yuv420_to_rgb_: out must be [", h, ", ", w, ", 3], got ", out.sizes());
  TORCH_CHECK(out.stride(2) == 1 && (out.stride(1) == 3 || w == 1),
              "yuv420_to_rgb_: out's rows must be packed RGB (strides [*, 3, 1]), got ", out.strides());
  const Coeffs k{static_cast<int16_t>(coeffs[0]), static_cast<int16_t>(coeffs[1]), static_cast<int16_t>(coeffs[2]),
                 static_cast<int16_t>(coeffs[3]), static_cast<int16_t>(coeffs[4]), static_cast<int16_t>(coeffs[5])};
  const uint8_t *yp = y.data_ptr<uint8_t>(), *up = u.data_ptr<uint8_t>(), *vp = v.data_ptr<uint8_t>();
  uint8_t* op = out.data_ptr<uint8_t>();
#ifdef SF2T_YUV_AVX2
  const bool scalar = std::getenv("SF2T_YUV_SCALAR") != nullptr;  // read per call: tests switch it
  const int64_t x_vec = (has_avx2() && !scalar) ? w / 32 * 32 : 0;
#else
  const int64_t x_vec = 0;
#endif
  for (int64_t r = 0; r < h; ++r) {
    const uint8_t* yl = yp + r * y.stride(0);
    const uint8_t* ul = up + (r / 2) * u.stride(0);
    const uint8_t* vl = vp + (r / 2) * v.stride(0);
    uint8_t* o = op + r * out.stride(0);
#ifdef SF2T_YUV_AVX2
    if (x_vec > 0) row_avx2(k, yl, ul, vl, x_vec, o);
#endif
    row_scalar(k, yl, ul, vl, x_vec, w, o);
  }
}

}  // namespace

TORCH_LIBRARY_IMPL(sf2t, CPU, m) { m.impl("yuv420_to_rgb_", &yuv420_to_rgb_cpu); }

}  // namespace sf2t
