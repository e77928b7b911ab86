// Schema of sf2t::thumbnail. Kernel: ops/cpu/thumbnail_kernel.cpp. Contract, checks, reference and fake:
// sf2t/ops/thumbnail.py.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(sf2t, m) {
  m.def("thumbnail(Tensor frames, int out_h, int out_w, Tensor? index=None) -> Tensor");
}
