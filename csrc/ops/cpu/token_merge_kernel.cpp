// CPU kernel of sf2t::token_merge_plan: the selection half of token_merge (sf2t/ops/token_merge.py), computed
// without the reference's dense similarity matrices: per temporal group, novelty is S dot products against the
// previous group, the top K are kept (stable: ties to the lower position), and each dropped token compares itself
// only with the kept tokens inside its (2 window + 1)^2 neighbourhood (all kept tokens when none is that close).
// Groups run in parallel (at::parallel_for). The merge itself (a size-weighted mean, the differentiable half) is
// index_add / bincount on the returned targets.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include "../token_merge_common.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <tuple>
#include <vector>

namespace sf2t {
namespace {

inline double dot(const float* __restrict__ a, const float* __restrict__ b, int64_t d) {
  float acc = 0.f;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < d; ++i) acc += a[i] * b[i];
  return acc;
}

// Cosines within 1e-6 of +-1 made exactly +-1, as sf2t.ops.token_merge._snap: repeats (static regions) then tie
// exactly and go to the lower position, the same on every backend, instead of by rounding noise. NaN (a token with
// NaN or infinite features) counts as -1, as there: the order below then stays a strict weak ordering.
inline float snap(float cos) {
  constexpr float kSame = 1e-6f;
  return cos >= 1.f - kSame ? 1.f : (cos <= kSame - 1.f || std::isnan(cos) ? -1.f : cos);
}

// A NaN similarity (a token with NaN or infinite features) ranks below every cosine, as in the reference and Triton:
// the first candidate scanned was kept when it was NaN (nothing compares greater), so finite tokens merged into it.
inline float not_nan(float sim) { return std::isnan(sim) ? -2.f : sim; }

int64_t budget(double keep_ratio, int64_t s) {
  const int64_t k = static_cast<int64_t>(std::ceil(keep_ratio * static_cast<double>(s) - 1e-9));
  return std::max<int64_t>(1, std::min<int64_t>(s, k));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> token_merge_plan_cpu(const at::Tensor& tokens, at::IntArrayRef grid,
                                                                    double keep_ratio, int64_t window,
                                                                    bool first_all) {
  TORCH_CHECK(tokens.device().is_cpu(), "token_merge_plan: tokens must be on the CPU, got ", tokens.device());
  TORCH_CHECK(tokens.dim() == 2 && at::isFloatingType(tokens.scalar_type()),
              "token_merge_plan: tokens must be a floating point [N, D] tensor, got ", tokens.scalar_type(), " ",
              tokens.sizes());
  TORCH_CHECK(keep_ratio > 0.0 && keep_ratio <= 1.0, "token_merge_plan: keep_ratio must be in (0, 1], got ",
              keep_ratio);
  TORCH_CHECK(window >= 0, "token_merge_plan: window must be >= 0, got ", window);
  TORCH_CHECK(grid.size() % 3 == 0, "token_merge_plan: grid must hold (t, h, w) triples, got ", grid.size(),
              " values");
  const int64_t V = static_cast<int64_t>(grid.size()) / 3, N = tokens.size(0), D = tokens.size(1);
  // per video: token offset, kept-slot offset; per (video, group) work items
  std::vector<int64_t> tok_off(V + 1, 0), slot_off(V + 1, 0), kk(V), first(V);
  struct Item {
    int64_t v, g;
  };
  std::vector<Item> items;
  for (int64_t v = 0; v < V; ++v) {
    const int64_t t = grid[3 * v], h = grid[3 * v + 1], w = grid[3 * v + 2];
    TORCH_CHECK(t >= 0 && h >= 0 && w >= 0, "token_merge_plan: grid values must be non-negative");
    int64_t s = 0, ts = 0;  // tokens per group, per video: never wrapped round (an absurd grid is refused here)
    TORCH_CHECK(!__builtin_mul_overflow(h, w, &s) && !__builtin_mul_overflow(t, s, &ts) && ts <= N - tok_off[v],
                "token_merge_plan: grid describes more tokens than tokens has (", N, ") by video ", v, ": (", t, ", ",
                h, ", ", w, ")");
    kk[v] = s > 0 ? budget(keep_ratio, s) : 0;
    first[v] = (first_all || kk[v] >= s) ? s : kk[v];
    tok_off[v + 1] = tok_off[v] + ts;
    slot_off[v + 1] = slot_off[v] + (t > 0 ? first[v] + (t - 1) * kk[v] : 0);
  }
  TORCH_CHECK(tok_off[V] == N, "token_merge_plan: grid describes ", tok_off[V], " tokens but tokens has ", N);
  for (int64_t v = 0; v < V; ++v) {
    if (grid[3 * v + 1] * grid[3 * v + 2] == 0) continue;
    for (int64_t g = 0; g < grid[3 * v]; ++g) items.push_back({v, g});
  }
  const int64_t M = slot_off[V];
  at::Tensor target = at::empty({N}, tokens.options().dtype(at::kLong));
  at::Tensor positions = at::empty({M, 3}, tokens.options().dtype(at::kLong));
  at::Tensor counts = at::empty({V}, tokens.options().dtype(at::kLong));
  int64_t* tg = target.data_ptr<int64_t>();
  int64_t* ps = positions.data_ptr<int64_t>();
  for (int64_t v = 0; v < V; ++v) counts.data_ptr<int64_t>()[v] = slot_off[v + 1] - slot_off[v];
  if (N == 0) return {target, positions, counts};
  const at::Tensor x = tokens.to(at::kFloat).contiguous();  // similarities in float32, as the reference
  const float* X = x.data_ptr<float>();
  // 1 / max(|x|, eps): eps 1e-8 for cosine_similarity (novelty), 1e-12 for F.normalize (merge), as the reference
  std::vector<float> norm(N);
  at::parallel_for(0, N, 256, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) norm[i] = static_cast<float>(std::sqrt(dot(X + i * D, X + i * D, D)));
  });
  at::parallel_for(0, static_cast<int64_t>(items.size()), 1, [&](int64_t begin, int64_t end) {
    std::vector<float> nov, mean;
    std::vector<int64_t> order, slot_of;
    for (int64_t it = begin; it < end; ++it) {
      const int64_t v = items[it].v, g = items[it].g;
      const int64_t h = grid[3 * v + 1], w = grid[3 * v + 2], s = h * w;
      const int64_t base = tok_off[v] + g * s;  // first token of this group
      const int64_t k = g == 0 ? first[v] : kk[v];
      const int64_t slot0 = slot_off[v] + (g == 0 ? 0 : first[v] + (g - 1) * kk[v]);
      slot_of.assign(s, -1);
      order.resize(s);
      std::iota(order.begin(), order.end(), 0);
      if (k < s) {
        nov.resize(s);
        if (g == 0) {  // budgeted first group: novelty against the group's mean token
          mean.assign(D, 0.f);
          for (int64_t i = 0; i < s; ++i) {
            const float* xi = X + (base + i) * D;
            for (int64_t d = 0; d < D; ++d) mean[d] += xi[d];
          }
          for (int64_t d = 0; d < D; ++d) mean[d] /= static_cast<float>(s);
          const float mn = std::max(static_cast<float>(std::sqrt(dot(mean.data(), mean.data(), D))), 1e-8f);
          for (int64_t i = 0; i < s; ++i) {
            const float ni = std::max(norm[base + i], 1e-8f);
            nov[i] = -snap(static_cast<float>(dot(X + (base + i) * D, mean.data(), D) / (static_cast<double>(ni) * mn)));
          }
        } else {  // against the same position one group earlier
          for (int64_t i = 0; i < s; ++i) {
            const int64_t a = base + i, b = base - s + i;
            const float na = std::max(norm[a], 1e-8f), nb = std::max(norm[b], 1e-8f);
            nov[i] = -snap(static_cast<float>(dot(X + a * D, X + b * D, D) / (static_cast<double>(na) * nb)));
          }
        }
        std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return nov[a] > nov[b]; });
        std::sort(order.begin(), order.begin() + k);  // the kept positions, ascending
      }
      for (int64_t j = 0; j < k; ++j) {
        const int64_t p = order[j];
        slot_of[p] = j;
        tg[base + p] = slot0 + j;
        int64_t* q = ps + (slot0 + j) * 3;
        q[0] = g;
        q[1] = p / w;
        q[2] = p % w;
      }
      if (k >= s) continue;
      for (int64_t i = 0; i < s; ++i) {  // each dropped token: the most similar kept token nearby (ties: lower)
        if (slot_of[i] >= 0) continue;
        const float* xi = X + (base + i) * D;
        const float ui = 1.f / std::max(norm[base + i], 1e-12f);
        const int64_t hi = i / w, wi = i % w;
        int64_t best = -1;
        float best_sim = 0.f;
        for (int64_t y = std::max<int64_t>(0, hi - window); y <= std::min<int64_t>(h - 1, hi + window); ++y) {
          for (int64_t c = std::max<int64_t>(0, wi - window); c <= std::min<int64_t>(w - 1, wi + window); ++c) {
            const int64_t p = y * w + c;
            if (slot_of[p] < 0) continue;
            const float uj = 1.f / std::max(norm[base + p], 1e-12f);
            const float sim = not_nan(static_cast<float>(dot(xi, X + (base + p) * D, D)) * ui * uj);
            if (best < 0 || sim > best_sim || (sim == best_sim && slot_of[p] < slot_of[best])) {
              best = p;
              best_sim = sim;
            }
          }
        }
        if (best < 0) {  // no kept token within the window: the most similar kept token of the group
          for (int64_t j = 0; j < k; ++j) {
            const int64_t p = order[j];
            const float uj = 1.f / std::max(norm[base + p], 1e-12f);
            const float sim = not_nan(static_cast<float>(dot(xi, X + (base + p) * D, D)) * ui * uj);
            if (best < 0 || sim > best_sim) {
              best = p;
              best_sim = sim;
            }
          }
        }
        tg[base + i] = slot0 + slot_of[best];
      }
    }
  });
  return {target, positions, counts};
}

// sf2t::token_merge_target on the CPU: the algorithm of the CUDA and Triton kernels (scan the (2 window + 1)^2
// neighbourhood in position order, the first best similarity wins; the whole group when no kept token is near),
// so CPU tests check what those kernels compute. Threaded over tokens.
at::Tensor token_merge_target_cpu(const at::Tensor& unit, const at::Tensor& slot, int64_t h, int64_t w,
                                  int64_t window) {
  check_merge_target_args(unit, slot, h, w, window);
  TORCH_CHECK(unit.device().is_cpu(), "token_merge_target: the cpu kernel needs CPU tensors, got ", unit.device());
  const at::Tensor u = unit.contiguous(), sl = slot.contiguous();
  at::Tensor target = at::empty_like(sl);
  const int64_t G = u.size(0), S = u.size(1), D = u.size(2);
  const float* U = u.data_ptr<float>();
  const int32_t* SL = sl.data_ptr<int32_t>();
  int32_t* T = target.data_ptr<int32_t>();
  at::parallel_for(0, G * S, 16, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t base = (t / S) * S, i = t % S;
      int32_t best = SL[t];
      if (best < 0) {
        const float* xi = U + t * D;
        float best_sim = -1.0e30f;
        auto consider = [&](int64_t p) {
          const int32_t s = SL[base + p];
          if (s < 0) return;
          const float* xp = U + (base + p) * D;
          float sim = 0.f;
          for (int64_t d = 0; d < D; ++d) sim += xi[d] * xp[d];
          sim = not_nan(sim);
          if (best < 0 || sim > best_sim) {
            best = s;
            best_sim = sim;
          }
        };
        const int64_t hi = i / w, wi = i % w;
        for (int64_t y = std::max<int64_t>(0, hi - window); y <= std::min<int64_t>(h - 1, hi + window); ++y) {
          for (int64_t x = std::max<int64_t>(0, wi - window); x <= std::min<int64_t>(w - 1, wi + window); ++x) {
            consider(y * w + x);
          }
        }
        if (best < 0) {
          for (int64_t p = 0; p < S; ++p) consider(p);
        }
      }
      T[t] = best;
    }
  });
  return target;
}

}  // namespace

TORCH_LIBRARY_IMPL(sf2t, CPU, m) {
  m.impl("token_merge_plan", &token_merge_plan_cpu);
  m.impl("token_merge_target", &token_merge_target_cpu);
}

}  // namespace sf2t
