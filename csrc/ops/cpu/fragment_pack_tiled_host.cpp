// sf2t::_fragment_pack_tiled_host: the CUDA tiled kernel's code (fragment_pack_tiled.h) run on the host, one block
// after another, its phases in turn by one "thread". A test-only op: it lets CI check the GPU kernel's indexing and
// arithmetic against the CPU kernel, bit for bit, where there is no GPU. Not fast; not a backend. tile_h = tile_w = 0:
// the tile the CUDA launcher would choose.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/BFloat16.h>
#include <torch/library.h>

#include <vector>

#include "../fragment_pack_tiled_host.h"

namespace sf2t {
namespace {

using namespace fragment_pack_detail;
using namespace fragment_pack_tiled;

at::Tensor fragment_pack_tiled_host(const at::Tensor& frames, const at::Tensor& src_index, const at::Tensor& boxes,
                                    int64_t resize_h, int64_t resize_w, int64_t crop_y, int64_t crop_x, int64_t out_h,
                                    int64_t out_w, c10::ArrayRef<double> mean, c10::ArrayRef<double> std,
                                    int64_t patch_size, int64_t temporal_patch_size, int64_t merge_size,
                                    int64_t frame_repeat, bool fchw, int64_t tile_h, int64_t tile_w,
                                    std::optional<at::ScalarType> dtype, const std::optional<at::Tensor>& uv,
                                    at::OptionalIntArrayRef yuv) {
  TORCH_CHECK(frames.device().is_cpu(), "_fragment_pack_tiled_host: frames must be on the CPU");
  const Plan pl = fchw ? make_plan_common("_fragment_pack_tiled_host", frames, src_index, boxes, resize_h, resize_w,
                                          crop_y, crop_x, out_h, out_w, mean, std, frame_repeat, dtype, uv, yuv)
                       : make_plan(frames, src_index, boxes, out_h, out_w, mean, std, patch_size, temporal_patch_size,
                                   merge_size, frame_repeat, dtype, uv, yuv);
  TORCH_CHECK(!pl.sws, "_fragment_pack_tiled_host: libswscale's arithmetic is the CPU kernel's only");
  at::Tensor out;
  if (fchw) {
    out = at::empty({pl.total_frames, 3, out_h, out_w}, frames.options().dtype(pl.out_dtype));
  } else {
    const Layout lay(pl);
    const int64_t rows = pl.total_frames / temporal_patch_size * (out_h / patch_size) * (out_w / patch_size);
    out = at::empty({rows, lay.cols}, frames.options().dtype(pl.out_dtype));
  }
  if (pl.presented == 0) return out;
  Args a;
  // tile 0 x 0: the CUDA launcher's choice (SF2T_FRAGMENT_PACK_TILE, else shrunk to fit the shared memory)
  const std::vector<int32_t> table = tile_h <= 0 && tile_w <= 0 ? choose_tile(pl, fchw, kTiledSmemMax, a)
                                                                : tiled_table(pl, fchw, tile_h, tile_w, a);
  TORCH_CHECK(!table.empty(), "_fragment_pack_tiled_host: no tile fits the shared memory (the two-pass kernels run)");
  tiled_input(frames, uv, a);
  a.table = table.data();
  a.out = out.data_ptr();
  std::vector<uint8_t> smem(static_cast<size_t>(smem_bytes(a)));  // exactly the GPU block's (a sanitizer build checks it)
  const int64_t blocks = pl.presented * a.tiles_per_frame;
  for (int64_t b = 0; b < blocks; ++b) {
    const Tile t = tile_of(a, b);
    for (int phase = 0; phase < 3; ++phase) tiled_phase(a, t, phase, 0, 1, smem.data());
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(sf2t, CPU, m) { m.impl("_fragment_pack_tiled_host", &fragment_pack_tiled_host); }

}  // namespace sf2t
