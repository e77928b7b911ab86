// Schemas of sf2t::token_merge_plan (kernel: ops/cpu/token_merge_kernel.cpp) and sf2t::token_merge_target (kernels:
// ops/cpu/token_merge_kernel.cpp, ops/cuda/token_merge_kernel.cu). Contract, reference, fake and the
// differentiable merge built on it: sf2t/ops/token_merge.py.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(sf2t, m) {
  // The discrete half of token_merge: which kept slot every token goes to. tokens [N, D]; grid the videos' (t, h, w)
  // flattened ([3 V] ints, so output sizes are known from the arguments). Returns (target [N] int64: the output row
  // each token is averaged into, positions [M, 3] int64 (t, h, w) of each kept token, counts [V] int64).
  m.def(
      "token_merge_plan(Tensor tokens, int[] grid, float keep_ratio, int window, bool first_all) -> "
      "(Tensor, Tensor, Tensor)");
  // The merge step of the device backends, once the kept tokens are chosen: unit [G, S, D] float32 (unit-normalized
  // tokens of G temporal groups of an h x w grid), slot [G, S] int32 (kept slot 0..K-1, -1 for a dropped token) ->
  // target [G, S] int32: the slot each token is averaged into (a kept token: its own; a dropped one: the most
  // similar kept token within Chebyshev distance `window`, else of the whole group; ties to the lower position).
  m.def("token_merge_target(Tensor unit, Tensor slot, int h, int w, int window) -> Tensor");
}
