// Schema of sf2t::fragment_pack. Kernels: ops/cpu/fragment_pack_kernel.cpp,
// ops/cuda/fragment_pack_kernel.cu. Contract, checks, reference and fake: sf2t/ops/fragment_pack.py.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(sf2t, m) {
  m.def(
      "fragment_pack(Tensor frames, Tensor src_index, Tensor boxes, int out_h, int out_w, float[] mean, "
      "float[] std, int patch_size, int temporal_patch_size, int merge_size, int frame_repeat, "
      "ScalarType? dtype=None) -> Tensor");
}
