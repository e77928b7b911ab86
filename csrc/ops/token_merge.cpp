// Schema of sf2t::token_merge_plan. Kernel: ops/cpu/token_merge_kernel.cpp. Contract, reference, fake and the
// differentiable merge built on it: sf2t/ops/token_merge.py.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(sf2t, m) {
  // The discrete half of token_merge: which kept slot every token goes to. tokens [N, D]; grid the videos' (t, h, w)
  // flattened ([3 V] ints, so output sizes are known from the arguments). Returns (target [N] int64: the output row
  // each token is averaged into, positions [M, 3] int64 (t, h, w) of each kept token, counts [V] int64).
  m.def(
      "token_merge_plan(Tensor tokens, int[] grid, float keep_ratio, int window, bool first_all) -> "
      "(Tensor, Tensor, Tensor)");
}
