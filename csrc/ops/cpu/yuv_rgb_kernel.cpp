// CPU kernel of sf2t::yuv420_to_rgb_: 8-bit 4:2:0 planes to packed RGB24 in the fixed-point arithmetic of
// libswscale's unscaled yuv420p -> rgb24 converter on x86 (yuv_swscale.h), so the RGB equals what the decoders' own
// conversion gives, bit for bit (sf2t/video/convert.py checks that per stream format at run time and tests it),
// while skipping their per-frame allocation and copy: the decoded planes are converted straight into the caller's
// window tensor. AVX2: 32 pixels a step; the scalar path computes the same integers (SF2T_YUV_SCALAR=1 forces it;
// tests compare both with the PyTorch reference).
#include <ATen/core/Tensor.h>
#include <torch/library.h>

#include <cstdint>
#include <cstdlib>

#include "yuv_swscale.h"

namespace sf2t {
namespace {

using swscale::Coeffs;

// One row, pixels [x0, x1): the reference arithmetic, one pixel at a time.
void row_scalar(const Coeffs& k, const uint8_t* yl, const uint8_t* ul, const uint8_t* vl, int64_t x0, int64_t x1,
                uint8_t* out) {
  for (int64_t x = x0; x < x1; ++x) {
    uint8_t* o = out + 3 * x;
    swscale::pixel(k, yl[x], ul[x / 2], vl[x / 2], o[0], o[1], o[2]);
  }
}

#ifdef SF2T_SWS_AVX2
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

// Pixels [0, x_end) of a row, x_end a multiple of 32: the same integers as row_scalar, 32 pixels a step.
__attribute__((target("avx2"))) void row_avx2(const Coeffs& k, const uint8_t* yl, const uint8_t* ul,
                                              const uint8_t* vl, int64_t x_end, uint8_t* out) {
  const swscale::Vec kv = swscale::vec(k);
  for (int64_t x = 0; x < x_end; x += 32) {
    __m256i R, G, B;
    swscale::rgb32(kv, yl + x, ul + x / 2, vl + x / 2, R, G, B);
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
