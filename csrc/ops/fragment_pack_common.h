// Host-side helpers shared by the CPU and CUDA kernels of sf2t::fragment_pack.
//
// Resize weights reproduce torch's uint8 antialiased bicubic resize (the one the Qwen2-VL and
// LLaVA video processors use through torchvision): cubic filter with a = -0.5, support scaled by the
// downscale factor, weights normalised per output pixel, then quantised to int16 with the largest
// precision that keeps the biggest weight below 2^15. Accumulating in int32 with a rounding bias and
// shifting gives bit-identical uint8 results to F.interpolate(uint8, mode="bicubic", antialias=True).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace sf2t {
namespace fragment_pack_detail {

inline double cubic_aa_filter(double x) {
  constexpr double a = -0.5;
  x = std::abs(x);
  if (x < 1.0) {
    return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  }
  if (x < 2.0) {
    return ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
  }
  return 0.0;
}

// Weights of one resized axis: for output position i, inputs [start[i], start[i] + size[i]) with
// int16 weights w[i * ksize + k]; results are (sum + (1 << (precision - 1))) >> precision.
struct AxisWeights {
  int64_t ksize = 0;
  int precision = 0;
  std::vector<int32_t> start;
  std::vector<int32_t> size;
  std::vector<int16_t> w;
};

inline AxisWeights compute_axis_weights(int64_t in_size, int64_t out_size) {
  AxisWeights aw;
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double support = scale >= 1.0 ? 2.0 * scale : 2.0;  // bicubic: interp_size 4 -> half 2
  const double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
  aw.ksize = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  aw.start.resize(out_size);
  aw.size.resize(out_size);
  std::vector<double> wd(out_size * aw.ksize, 0.0);
  double wt_max = 0.0;
  for (int64_t i = 0; i < out_size; ++i) {
    const double center = scale * (static_cast<double>(i) + 0.5);
    const int64_t xmin = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    int64_t xsize = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in_size) - xmin;
    xsize = std::clamp<int64_t>(xsize, 0, aw.ksize);
    double* wp = wd.data() + i * aw.ksize;
    double total = 0.0;
    for (int64_t j = 0; j < xsize; ++j) {
      const double w = cubic_aa_filter((static_cast<double>(j + xmin) - center + 0.5) * invscale);
      wp[j] = w;
      total += w;
    }
    if (total != 0.0) {
      for (int64_t j = 0; j < xsize; ++j) {
        wp[j] /= total;
        wt_max = std::max(wt_max, wp[j]);
      }
    }
    aw.start[i] = static_cast<int32_t>(xmin);
    aw.size[i] = static_cast<int32_t>(xsize);
  }
  int precision = 0;
  for (precision = 0; precision < 22; ++precision) {
    const int next_value = static_cast<int>(0.5 + wt_max * (1 << (precision + 1)));
    if (next_value >= (1 << 15)) {
      break;
    }
  }
  aw.precision = precision;
  aw.w.resize(wd.size());
  for (size_t j = 0; j < wd.size(); ++j) {
    const double v = wd[j] * static_cast<double>(1 << precision);
    aw.w[j] = static_cast<int16_t>(v < 0 ? static_cast<int>(-0.5 + v) : static_cast<int>(0.5 + v));
  }
  return aw;
}

// The outputs [begin, begin + count) of an axis's weights: a window of the resized axis (a centre crop after a
// resize, as the LLaVA processors do) computed without the rest.
inline AxisWeights slice_axis_weights(const AxisWeights& full, int64_t begin, int64_t count) {
  AxisWeights aw;
  aw.ksize = full.ksize;
  aw.precision = full.precision;
  aw.start.assign(full.start.begin() + begin, full.start.begin() + begin + count);
  aw.size.assign(full.size.begin() + begin, full.size.begin() + begin + count);
  aw.w.assign(full.w.begin() + begin * full.ksize, full.w.begin() + (begin + count) * full.ksize);
  return aw;
}

inline uint8_t round_shift_clamp(int32_t acc, int precision) {
  // acc already contains the rounding bias; arithmetic shift then saturate like the reference.
  int32_t v = acc >> precision;
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Where output frame r (0 <= r < total) takes its pixels from: presented frame r / repeat, and the
// frames added to fill the last temporal patch repeat the last presented frame.
inline int64_t padded_frame_count(int64_t presented, int64_t repeat, int64_t temporal_patch) {
  const int64_t r = presented * repeat;
  return (r + temporal_patch - 1) / temporal_patch * temporal_patch;
}

}  // namespace fragment_pack_detail
}  // namespace sf2t
