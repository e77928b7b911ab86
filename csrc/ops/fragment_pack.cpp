// Schema of sf2t::fragment_pack. Kernels: ops/cpu/fragment_pack_kernel.cpp,
// ops/cuda/fragment_pack_kernel.cu. Contract and fake: sf2t/ops/fragment_pack.py; checks and reference:
// sf2t/ops/_pack_reference.py.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(sf2t, m) {
  m.def(
      "fragment_pack(Tensor frames, Tensor src_index, Tensor boxes, int out_h, int out_w, float[] mean, "
      "float[] std, int patch_size, int temporal_patch_size, int merge_size, int frame_repeat, "
      "ScalarType? dtype=None, Tensor? uv=None, int[]? yuv=None) -> Tensor");
  // With uv: frames is the Y plane [N, H, W] of NV12 input and uv its interleaved chroma [N, H/2, W/2, 2]; yuv the
  // six Q16 conversion constants (sf2t/ops/_pack_formats.py: NV12). The conversion runs in the same pass.
  // [F * frame_repeat, 3, out_h, out_w] (LLaVA-OneVision / LLaVA-NeXT-Video): each crop resized to resize_h x
  // resize_w, the out_h x out_w window at (crop_y, crop_x) kept (a centre crop), normalized. CPU kernel only so far.
  // The samples of one decoded window: the Qwen2-VL layout of each (src_index[k], boxes[k]) over the same frames, each
  // distinct (source frame, crop box) resized once and written into every sample showing it. CPU kernel only.
  m.def(
      "fragment_pack_multi(Tensor frames, Tensor[] src_index, Tensor[] boxes, int out_h, int out_w, float[] mean, "
      "float[] std, int patch_size, int temporal_patch_size, int merge_size, int frame_repeat, "
      "ScalarType? dtype=None, Tensor? uv=None, int[]? yuv=None) -> Tensor[]");
  m.def(
      "fragment_pack_fchw(Tensor frames, Tensor src_index, Tensor boxes, int resize_h, int resize_w, int crop_y, "
      "int crop_x, int out_h, int out_w, float[] mean, float[] std, int frame_repeat, ScalarType? dtype=None, "
      "Tensor? uv=None, int[]? yuv=None) -> Tensor");
  // Test-only: the CUDA tiled kernel's code run on the host (cpu/fragment_pack_tiled_host.cpp), either layout.
  m.def(
      "_fragment_pack_tiled_host(Tensor frames, Tensor src_index, Tensor boxes, int resize_h, int resize_w, "
      "int crop_y, int crop_x, int out_h, int out_w, float[] mean, float[] std, int patch_size, "
      "int temporal_patch_size, int merge_size, int frame_repeat, bool fchw, int tile_h, int tile_w, "
      "ScalarType? dtype=None, Tensor? uv=None, int[]? yuv=None) -> Tensor");
}
