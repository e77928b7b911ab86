// Schema of sf2t::yuv420_to_rgb_. Kernel: ops/cpu/yuv_rgb_kernel.cpp. Contract, checks, reference and coefficients:
// sf2t/video/convert.py.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(sf2t, m) {
  // 8-bit 4:2:0 planes (y [H, W], u and v [(H+1)/2, (W+1)/2]) -> packed RGB written into out [H, W, 3], in
  // libswscale's fixed-point arithmetic (coeffs: y, v->r, u->b, v->g, u->g coefficients and the luma offset)
  m.def("yuv420_to_rgb_(Tensor y, Tensor u, Tensor v, int[] coeffs, Tensor(a!) out) -> ()");
}
