// Schemas of sf2t::thumbnail and sf2t::thumb_mad. Kernel: ops/cpu/thumbnail_kernel.cpp. Contract, checks, reference and fake:
// sf2t/ops/thumbnail.py.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(sf2t, m) {
  m.def("thumbnail(Tensor frames, int out_h, int out_w, Tensor? index=None) -> Tensor");
  // MADs between thumbnails a[k] and b[k] of thumbs [N, ...] (float32): the motion guard's pairs in one call
  m.def("thumb_mad(Tensor thumbs, int[] a, int[] b) -> Tensor");
}
