// AVX-512 width and height passes of the fragment_pack CPU kernel (fragment_pack_kernel.cpp), for CPUs with
// AVX512F/BW, VBMI (vpermb: any byte of a 64-byte window into any slot) and VNNI (vpdpwssd: multiply int16 pairs
// and accumulate in one instruction): Ice Lake and later Xeons, Zen 4 and later. The same integers as the AVX2 and
// scalar passes (tested equal); the kernel picks them at run time (SF2T_FP_AVX512=0 keeps the AVX2 passes).
// Included by fragment_pack_kernel.cpp only, inside its anonymous namespace.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SF2T_FP_AVX512 1

// (GCC 12 warns "__Y may be used uninitialized" inside its own AVX-512 intrinsics: a known false positive)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define SF2T_AVX512 __attribute__((target("avx512f,avx512bw,avx512vbmi,avx512vnni,avx2")))

// The CPU has what these passes use, and SF2T_FP_AVX512=0 does not turn them off (read each call, as the other
// SF2T_FP_ switches, so tests can compare the paths).
inline bool use_avx512() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vnni");
  return ok && !env_off("SF2T_FP_AVX512");
}

// Width resize of one plane, 16 outputs a group: each group's inputs lie in one 64-byte window from its first
// output's first tap; per step of 2 taps, vpermb spreads the window into the (tap, tap + 1) int16 pairs of all 16
// outputs (zeroing the high bytes by mask) and vpdpwssd multiplies and accumulates them against the weights. Usable
// when every group's taps fit its window (downscales up to ~3.5x, any upscale).
struct Planar512Kernel {
  bool ok = false;
  int64_t groups = 0, steps = 0;  // groups of 16 outputs (out_pad / 16); steps of 2 taps
  int precision = 0;
  std::vector<int32_t> base;  // [groups] first input pixel of each group's window
  std::vector<int8_t> idx;    // [groups][steps][64] window byte of each int16 slot's low byte
  std::vector<int16_t> w;     // [groups][steps][32] weights of each slot (0 past an output's taps)
};

inline Planar512Kernel planar512_kernel(const AxisWeights& wx, int64_t out_w, int64_t out_pad) {
  Planar512Kernel k;
  k.groups = out_pad / 16;
  k.precision = wx.precision;
  int64_t longest = 1;
  for (int64_t x = 0; x < out_w; ++x) longest = std::max<int64_t>(longest, wx.size[x]);
  k.steps = (longest + 1) / 2;
  const int64_t S = k.steps;
  k.base.assign(k.groups, 0);
  k.idx.assign(k.groups * S * 64, 0);
  k.w.assign(k.groups * S * 32, 0);
  for (int64_t g = 0; g < k.groups && 16 * g < out_w; ++g) {
    k.base[g] = wx.start[16 * g];
    for (int64_t j = 0; j < 16 && 16 * g + j < out_w; ++j) {
      const int64_t x = 16 * g + j, off = wx.start[x] - k.base[g];
      if (off < 0 || off + wx.size[x] > 64) return k;  // does not fit the window: not usable
      for (int64_t t = 0; t < wx.size[x]; ++t) {
        const int64_t q = t / 2, slot = 2 * j + t % 2;  // int16 slot of tap t of output j in step q
        k.idx[(g * S + q) * 64 + 2 * slot] = static_cast<int8_t>(off + t);
        k.w[(g * S + q) * 32 + slot] = wx.w[x * wx.ksize + t];
      }
    }
  }
  k.ok = true;
  return k;
}

// One plane (64 readable bytes from every window's start) -> k.groups * 16 resized uint8 values.
SF2T_AVX512 inline void width_planar_avx512(const uint8_t* plane, const Planar512Kernel& k, uint8_t* dst) {
  const __m512i bias = _mm512_set1_epi32(1 << (k.precision - 1)), zero = _mm512_setzero_si512();
  const __m128i shift = _mm_cvtsi32_si128(k.precision);
  const __mmask64 low_bytes = 0x5555555555555555ULL;  // the low byte of each int16 slot; high bytes zeroed
  const int64_t S = k.steps;
  const __m512i* idx = reinterpret_cast<const __m512i*>(k.idx.data());
  const __m512i* w = reinterpret_cast<const __m512i*>(k.w.data());
  for (int64_t g = 0; g < k.groups; ++g) {
    const __m512i win = _mm512_loadu_si512(plane + k.base[g]);
    __m512i acc = bias;
    for (int64_t q = 0; q < S; ++q) {
      const __m512i pairs = _mm512_maskz_permutexvar_epi8(low_bytes, _mm512_loadu_si512(idx + g * S + q), win);
      acc = _mm512_dpwssd_epi32(acc, pairs, _mm512_loadu_si512(w + g * S + q));
    }
    // shift, clamp at 0, saturate to uint8 (== round_shift_clamp)
    const __m512i v = _mm512_max_epi32(_mm512_sra_epi32(acc, shift), zero);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + 16 * g), _mm512_cvtusepi32_epi8(v));
  }
}

// Shift, clamp to uint8, normalize: 16 sums of the height pass -> 16 floats.
SF2T_AVX512 inline __m512 height_finish(__m512i a, __m128i shift, __m512 mean, __m512 inv_std) {
  a = _mm512_min_epi32(_mm512_max_epi32(_mm512_sra_epi32(a, shift), _mm512_setzero_si512()), _mm512_set1_epi32(255));
  return _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(a), mean), inv_std);
}

// Height pass of one output row, normalized (as height_row_avx2): planar uint8 rows (3 planes of op, row stride
// 3 * op) -> float planes line[c * op + x], x < out_w. 32 values a step: (tap, tap + 1) rows interleaved per 128-bit
// lane into int16 pairs, vpdpwssd against the pair's weights; the lanes' order is restored after the float
// conversion. n <= 128 (callers check); op a multiple of 16.
SF2T_AVX512 inline void height_row_avx512(const uint8_t* rows, int64_t op, const int16_t* w, int64_t n,
                                          int precision, const float* mean, const float* inv_std, int64_t out_w,
                                          float* line) {
  const int64_t stride = 3 * op;
  __m512i wp[64];
  const int64_t np = (n + 1) / 2;
  for (int64_t t = 0; t < np; ++t) wp[t] = _mm512_set1_epi32(tap_pair(w, t, n));
  const __m512i bias = _mm512_set1_epi32(1 << (precision - 1));
  const __m128i shift = _mm_cvtsi32_si128(precision);
  const __m256i z256 = _mm256_setzero_si256();
  const __m128i z128 = _mm_setzero_si128();
  for (int64_t c = 0; c < 3; ++c) {
    const __m512 m = _mm512_set1_ps(mean[c]), is = _mm512_set1_ps(inv_std[c]);
    int64_t x = 0;
    for (; x + 32 <= op && x < out_w; x += 32) {
      const uint8_t* col = rows + c * op + x;
      __m512i a0 = bias, a1 = bias;  // a0: values 0-7 and 16-23; a1: 8-15 and 24-31
      for (int64_t t = 0; t < np; ++t) {
        const __m256i u = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(col + 2 * t * stride));
        const __m256i v =
            (2 * t + 1 < n) ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(col + (2 * t + 1) * stride)) : z256;
        a0 = _mm512_dpwssd_epi32(a0, _mm512_cvtepu8_epi16(_mm256_unpacklo_epi8(u, v)), wp[t]);
        a1 = _mm512_dpwssd_epi32(a1, _mm512_cvtepu8_epi16(_mm256_unpackhi_epi8(u, v)), wp[t]);
      }
      const __m512 f0 = height_finish(a0, shift, m, is), f1 = height_finish(a1, shift, m, is);
      float* o = line + c * op + x;
      _mm512_storeu_ps(o, _mm512_shuffle_f32x4(f0, f1, _MM_SHUFFLE(1, 0, 1, 0)));       // 0-7, 8-15
      _mm512_storeu_ps(o + 16, _mm512_shuffle_f32x4(f0, f1, _MM_SHUFFLE(3, 2, 3, 2)));  // 16-23, 24-31
    }
    for (; x < out_w; x += 16) {  // the last 16 of a row whose padded width is not a multiple of 32
      const uint8_t* col = rows + c * op + x;
      __m512i a = bias;
      for (int64_t t = 0; t < np; ++t) {
        const __m128i u = _mm_loadu_si128(reinterpret_cast<const __m128i*>(col + 2 * t * stride));
        const __m128i v =
            (2 * t + 1 < n) ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(col + (2 * t + 1) * stride)) : z128;
        const __m256i uv = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_unpacklo_epi8(u, v)),
                                                   _mm_unpackhi_epi8(u, v), 1);
        a = _mm512_dpwssd_epi32(a, _mm512_cvtepu8_epi16(uv), wp[t]);
      }
      _mm512_storeu_ps(line + c * op + x, height_finish(a, shift, m, is));
    }
  }
}

// I420 crop row [x0, x1) in libswscale's arithmetic straight into R, G, B planes, 64 pixels a step: the AVX2
// i420_row_planes_sws_avx2 (yuv_swscale.h's rgb32) in 512-bit lanes; vpermw repeats each chroma term for its two
// pixels, and a 64-bit permute restores the pixel order after the per-lane packs.
SF2T_AVX512 inline void i420_row_planes_sws_avx512(const swscale::Coeffs& k, const uint8_t* yl, const uint8_t* ul,
                                                   const uint8_t* vl, int64_t x0, int64_t x1, uint8_t* r, uint8_t* g,
                                                   uint8_t* b) {
  auto one = [&](int64_t x) { swscale::pixel(k, yl[x], ul[x / 2], vl[x / 2], r[x - x0], g[x - x0], b[x - x0]); };
  int64_t x = x0;
  if (x < x1 && (x & 1)) one(x++);  // from here x is even: its chroma sample is x / 2
  const __m512i cy = _mm512_set1_epi16(k.cy), cvr = _mm512_set1_epi16(k.cvr), cub = _mm512_set1_epi16(k.cub);
  const __m512i cvg = _mm512_set1_epi16(k.cvg), cug = _mm512_set1_epi16(k.cug), yo = _mm512_set1_epi16(k.yo);
  const __m512i c1024 = _mm512_set1_epi16(1024);
  const __m512i dup_lo = _mm512_set_epi16(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8, 7, 7, 6, 6, 5, 5,
                                          4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
  const __m512i dup_hi = _mm512_add_epi16(dup_lo, _mm512_set1_epi16(16));
  const __m512i order = _mm512_set_epi64(7, 5, 3, 1, 6, 4, 2, 0);
  for (; x + 64 <= x1; x += 64) {
    __m512i y0 = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(yl + x)));
    __m512i y1 = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(yl + x + 32)));
    y0 = _mm512_mulhi_epi16(_mm512_sub_epi16(_mm512_slli_epi16(y0, 3), yo), cy);
    y1 = _mm512_mulhi_epi16(_mm512_sub_epi16(_mm512_slli_epi16(y1, 3), yo), cy);
    __m512i u = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ul + x / 2)));
    __m512i v = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(vl + x / 2)));
    u = _mm512_subs_epi16(_mm512_slli_epi16(u, 3), c1024);
    v = _mm512_subs_epi16(_mm512_slli_epi16(v, 3), c1024);
    const __m512i tr = _mm512_mulhi_epi16(v, cvr);
    const __m512i tg = _mm512_adds_epi16(_mm512_mulhi_epi16(u, cug), _mm512_mulhi_epi16(v, cvg));
    const __m512i tb = _mm512_mulhi_epi16(u, cub);
    uint8_t* dst[3] = {r + (x - x0), g + (x - x0), b + (x - x0)};
    const __m512i terms[3] = {tr, tg, tb};
    for (int c = 0; c < 3; ++c) {
      const __m512i lo = _mm512_adds_epi16(y0, _mm512_permutexvar_epi16(dup_lo, terms[c]));
      const __m512i hi = _mm512_adds_epi16(y1, _mm512_permutexvar_epi16(dup_hi, terms[c]));
      // packus: 16-bit -> uint8 with saturation (the clamp); per 128-bit lane [lo 8 | hi 8] -> pixel order
      _mm512_storeu_si512(dst[c], _mm512_permutexvar_epi64(order, _mm512_packus_epi16(lo, hi)));
    }
  }
  for (; x < x1; ++x) one(x);
}

#undef SF2T_AVX512
#pragma GCC diagnostic pop
#endif
