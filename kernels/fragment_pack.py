"""Triton kernels of fragment_pack: the same two passes and integer arithmetic as the C++/CUDA kernels
(int16 resize weights, uint8 between the width and height passes), so all backends agree bit for bit
before normalization. Only ``@triton.jit`` code and launchers live here; the contract is in
``sf2t.ops.fragment_pack``, the checks in ``sf2t.ops._pack_reference``, the weight tables in ``sf2t.ops._pack_triton``.

Table layout (int32, one per call), built by ``sf2t.ops._pack_triton._fragment_pack_triton``: per presented
frame ``META`` ints ``[src, x0, y0, crop_h, row_offset, kx, px, ky, py, wx_off, wy_off]``, then each
axis' ``start[out]``, ``size[out]`` and ``out * ksize`` weights; a separate row -> frame map.
"""

import torch
import triton
import triton.language as tl

META = 11


@triton.jit
def _shift_clamp(acc, prec):
    # (acc + bias) >> precision, saturated to uint8: the int16-weight resize's rounding (the bias is in acc).
    return tl.minimum(tl.maximum(acc >> prec, 0), 255)


@triton.jit
def _nv12_rgb(p_y, p_uv, u_c, mask, ky, kr, kgu, kgv, kb, yoff):
    # One NV12 pixel's RGB from its Y at p_y and its 2x2 block's UV at p_uv, in NV12.to_rgb's Q16 integer arithmetic.
    c = tl.load(p_y, mask=mask, other=0).to(tl.int32) - yoff
    d = tl.load(p_uv, mask=mask, other=128).to(tl.int32) - 128
    e = tl.load(p_uv + u_c, mask=mask, other=128).to(tl.int32) - 128
    half = 1 << 15
    r = tl.minimum(tl.maximum((ky * c + kr * e + half) >> 16, 0), 255)
    g = tl.minimum(tl.maximum((ky * c - kgu * d - kgv * e + half) >> 16, 0), 255)
    b = tl.minimum(tl.maximum((ky * c + kb * d + half) >> 16, 0), 255)
    return r, g, b


@triton.jit
def _fragment_pack_horizontal(
    src_ptr,
    s_n,
    s_h,
    s_w,
    s_c,
    table_ptr,
    row_frame_ptr,
    tmp_ptr,
    total,
    out_w,
    KMAX: tl.constexpr,
    BLOCK: tl.constexpr,
    uv_ptr=None,
    u_n=0,
    u_h=0,
    u_w=0,
    u_c=0,
    ky=0,
    kr=0,
    kgu=0,
    kgv=0,
    kb=0,
    yoff=0,
    NV12: tl.constexpr = False,
):
    pid = tl.program_id(0)
    idx = pid * BLOCK + tl.arange(0, BLOCK)
    mask = idx < total
    row = idx // out_w
    x = idx % out_w
    f = tl.load(row_frame_ptr + row, mask=mask, other=0)
    m = table_ptr + f * 11
    src = tl.load(m + 0, mask=mask, other=0).to(tl.int64)
    x0 = tl.load(m + 1, mask=mask, other=0)
    y0 = tl.load(m + 2, mask=mask, other=0)
    row_off = tl.load(m + 4, mask=mask, other=0)
    kx = tl.load(m + 5, mask=mask, other=1)
    prec = tl.load(m + 6, mask=mask, other=1)
    w_off = tl.load(m + 9, mask=mask, other=0)
    start = tl.load(table_ptr + w_off + x, mask=mask, other=0)
    size = tl.load(table_ptr + w_off + out_w + x, mask=mask, other=0)
    y = (y0 + row - row_off).to(tl.int64)
    base = src_ptr + src * s_n + y * s_h + (x0 + start).to(tl.int64) * s_w
    bias = tl.full([BLOCK], 1, tl.int32) << (prec - 1)
    a0 = bias
    a1 = bias
    a2 = bias
    for k in range(KMAX):
        km = mask & (k < size)
        w = tl.load(table_ptr + w_off + 2 * out_w + x * kx + k, mask=km, other=0)
        p = base + k * s_w
        if NV12:  # frames is the Y plane; the pixel's RGB from Y and its 2x2 block's UV, as NV12.to_rgb does
            xa = (x0 + start + k).to(tl.int64)
            q = uv_ptr + src * u_n + (y // 2) * u_h + (xa // 2) * u_w
            r, g, b = _nv12_rgb(p, q, u_c, km, ky, kr, kgu, kgv, kb, yoff)
            a0 += r * w
            a1 += g * w
            a2 += b * w
        else:
            a0 += tl.load(p, mask=km, other=0).to(tl.int32) * w
            a1 += tl.load(p + s_c, mask=km, other=0).to(tl.int32) * w
            a2 += tl.load(p + 2 * s_c, mask=km, other=0).to(tl.int32) * w
    d = tmp_ptr + idx.to(tl.int64) * 3
    tl.store(d, _shift_clamp(a0, prec).to(tl.uint8), mask=mask)
    tl.store(d + 1, _shift_clamp(a1, prec).to(tl.uint8), mask=mask)
    tl.store(d + 2, _shift_clamp(a2, prec).to(tl.uint8), mask=mask)


@triton.jit
def _to_out(v, OUT_BF16: tl.constexpr):
    # bfloat16 output goes through an int16 view with explicit round-to-nearest-even on the bits: the
    # interpreter truncates in fp32 -> bf16 casts, the GPU rounds; this way both give torch's rounding.
    if OUT_BF16:
        bits = v.to(tl.uint32, bitcast=True)
        bits = bits + 0x7FFF + ((bits >> 16) & 1)
        return (bits >> 16).to(tl.uint16).to(tl.int16, bitcast=True)
    else:
        return v


@triton.jit
def _normalize_store(
    out_ptr, a0, a1, a2, prec, m0, m1, m2, s0, s1, s2, f, y, x, mask, presented, out_h, out_w, repeat, total_frames,
    PATCH: tl.constexpr, TPATCH: tl.constexpr, MERGE: tl.constexpr, MAXR: tl.constexpr, OUT_BF16: tl.constexpr,
    FCHW: tl.constexpr,
):  # fmt: skip
    # The height pass's accumulators -> uint8 -> normalized, stored for every output frame presented frame f fills:
    # [F * repeat, 3, out_h, out_w] with FCHW, else the Qwen2-VL patch rows (the last frame repeated to fill the
    # temporal patch).
    v0 = (_shift_clamp(a0, prec).to(tl.float32) - m0) * s0
    v1 = (_shift_clamp(a1, prec).to(tl.float32) - m1) * s1
    v2 = (_shift_clamp(a2, prec).to(tl.float32) - m2) * s2
    if FCHW:  # [F * repeat, 3, out_h, out_w]: output frames f*repeat .. f*repeat + repeat - 1, planar channels
        plane = (out_h * out_w).to(tl.int64)
        for j in range(MAXR):
            r = (f * repeat + j).to(tl.int64)
            rm = mask & (j < repeat)
            o = out_ptr + r * 3 * plane + (y * out_w + x).to(tl.int64)
            tl.store(o, _to_out(v0, OUT_BF16), mask=rm)
            tl.store(o + plane, _to_out(v1, OUT_BF16), mask=rm)
            tl.store(o + 2 * plane, _to_out(v2, OUT_BF16), mask=rm)
    else:  # the Qwen2-VL patch rows
        gh = out_h // PATCH
        gw = out_w // PATCH
        hy = y // PATCH
        py = y % PATCH
        wx = x // PATCH
        px = x % PATCH
        cols = 3 * TPATCH * PATCH * PATCH
        cstride = TPATCH * PATCH * PATCH
        r_begin = f * repeat
        r_end = tl.where(f == presented - 1, total_frames, r_begin + repeat)
        for j in range(MAXR):
            r = r_begin + j
            rm = mask & (r < r_end)
            t = r // TPATCH
            ti = r % TPATCH
            rowi = (
                ((t * (gh // MERGE) + hy // MERGE) * (gw // MERGE) + wx // MERGE) * MERGE * MERGE
                + (hy % MERGE) * MERGE
                + (wx % MERGE)
            )
            o = out_ptr + rowi.to(tl.int64) * cols + (ti * PATCH + py) * PATCH + px
            tl.store(o, _to_out(v0, OUT_BF16), mask=rm)
            tl.store(o + cstride, _to_out(v1, OUT_BF16), mask=rm)
            tl.store(o + 2 * cstride, _to_out(v2, OUT_BF16), mask=rm)


@triton.jit
def _fragment_pack_vertical(
    tmp_ptr,
    table_ptr,
    out_ptr,
    presented,
    out_h,
    out_w,
    repeat,
    total_frames,
    m0,
    m1,
    m2,
    s0,
    s1,
    s2,
    KMAX: tl.constexpr,
    PATCH: tl.constexpr,
    TPATCH: tl.constexpr,
    MERGE: tl.constexpr,
    MAXR: tl.constexpr,
    OUT_BF16: tl.constexpr,
    BLOCK: tl.constexpr,
    FCHW: tl.constexpr = False,
):
    pid = tl.program_id(0)
    idx = pid * BLOCK + tl.arange(0, BLOCK)
    mask = idx < presented * out_h * out_w
    f = idx // (out_h * out_w)
    y = (idx // out_w) % out_h
    x = idx % out_w
    m = table_ptr + f * 11
    row_off = tl.load(m + 4, mask=mask, other=0)
    ky = tl.load(m + 7, mask=mask, other=1)
    prec = tl.load(m + 8, mask=mask, other=1)
    w_off = tl.load(m + 10, mask=mask, other=0)
    start = tl.load(table_ptr + w_off + y, mask=mask, other=0)
    size = tl.load(table_ptr + w_off + out_h + y, mask=mask, other=0)
    base = tmp_ptr + ((row_off + start).to(tl.int64) * out_w + x) * 3
    bias = tl.full([BLOCK], 1, tl.int32) << (prec - 1)
    a0 = bias
    a1 = bias
    a2 = bias
    for k in range(KMAX):
        km = mask & (k < size)
        w = tl.load(table_ptr + w_off + 2 * out_h + y * ky + k, mask=km, other=0)
        p = base + k * out_w * 3
        a0 += tl.load(p, mask=km, other=0).to(tl.int32) * w
        a1 += tl.load(p + 1, mask=km, other=0).to(tl.int32) * w
        a2 += tl.load(p + 2, mask=km, other=0).to(tl.int32) * w
    _normalize_store(
        out_ptr, a0, a1, a2, prec, m0, m1, m2, s0, s1, s2, f, y, x, mask, presented, out_h, out_w, repeat,
        total_frames, PATCH, TPATCH, MERGE, MAXR, OUT_BF16, FCHW,
    )  # fmt: skip


def _nv12_args(uv, yuv) -> dict:
    """The NV12 keyword arguments of the kernels (the chroma plane, its strides, the Q16 constants); {} for RGB."""
    if uv is None:
        return {}
    strides = dict(zip(("u_n", "u_h", "u_w", "u_c"), uv.stride()))
    consts = dict(zip(("ky", "kr", "kgu", "kgv", "kb", "yoff"), yuv))
    return dict(uv_ptr=uv, **strides, **consts, NV12=True)


def launch_fragment_pack(
    frames,
    table,
    row_frame,
    out,
    tmp,
    *,
    presented,
    out_h,
    out_w,
    repeat,
    total_frames,
    kx_max,
    ky_max,
    mean255,
    inv_std255,
    patch,
    tpatch,
    merge,
    block=256,
    fchw=False,
    uv=None,
    yuv=None,
):
    """Run both passes. ``tmp`` is uint8 [rows, out_w, 3]; ``out`` the preallocated output (Qwen2-VL patches, or
    [F * repeat, 3, out_h, out_w] with ``fchw``)."""
    n1 = tmp.shape[0] * out_w
    if n1:
        nv12 = _nv12_args(uv, yuv)  # with uv, frames is the Y plane [N, H, W]
        _fragment_pack_horizontal[(triton.cdiv(n1, block),)](
            frames,
            frames.stride(0),
            frames.stride(1),
            frames.stride(2),
            frames.stride(3) if uv is None else 1,
            table,
            row_frame,
            tmp,
            n1,
            out_w,
            KMAX=kx_max,
            BLOCK=block,
            **nv12,
        )
    n2 = presented * out_h * out_w
    out_bf16 = out.dtype == torch.bfloat16
    if n2:
        _fragment_pack_vertical[(triton.cdiv(n2, block),)](
            tmp,
            table,
            out.view(torch.int16) if out_bf16 else out,
            presented,
            out_h,
            out_w,
            repeat,
            total_frames,
            *mean255,
            *inv_std255,
            KMAX=ky_max,
            PATCH=patch,
            TPATCH=tpatch,
            MERGE=merge,
            MAXR=repeat if fchw else repeat + tpatch,
            OUT_BF16=out_bf16,
            BLOCK=block,
            FCHW=fchw,
        )
    return out


@triton.jit
def _fragment_pack_tiled(
    src_ptr,
    s_n,
    s_h,
    s_w,
    s_c,
    table_ptr,
    scratch_ptr,
    out_ptr,
    n_tiles,
    tiles_x,
    tiles_per_frame,
    out_h,
    out_w,
    presented,
    repeat,
    total_frames,
    m0,
    m1,
    m2,
    s0,
    s1,
    s2,
    KX: tl.constexpr,
    KY: tl.constexpr,
    TH: tl.constexpr,
    TW: tl.constexpr,
    TWB: tl.constexpr,
    r_max,
    RC: tl.constexpr,
    TE: tl.constexpr,
    PATCH: tl.constexpr,
    TPATCH: tl.constexpr,
    MERGE: tl.constexpr,
    MAXR: tl.constexpr,
    OUT_BF16: tl.constexpr,
    FCHW: tl.constexpr = False,
    uv_ptr=None,
    u_n=0,
    u_h=0,
    u_w=0,
    u_c=0,
    ky=0,
    kr=0,
    kgu=0,
    kgv=0,
    kb=0,
    yoff=0,
    NV12: tl.constexpr = False,
):
    """Single-pass fragment_pack over output tiles (TH x TW pixels of one presented frame), the Triton form of the
    CUDA tiled kernel (csrc/ops/fragment_pack_tiled.h). Persistent: each program walks tiles pid, pid + programs, ...
    with its own scratch (r_max x TWB x 3 bytes, L2-resident), where the width pass leaves the tile's input rows for
    the height pass; the width pass's weights are loaded once per tile column and shared by every row; the height
    pass walks the tile in the output's memory order (whole 14 x 14 patches in the Qwen2-VL layout), so stores are
    contiguous runs. Table per presented frame: [src, x0, y0, kx, px, ky, py, wx_off, wy_off, tx_off, ty_off]
    (sf2t.ops._pack_triton._fragment_pack_triton_tiled)."""
    pid = tl.program_id(0)
    scratch = scratch_ptr + pid.to(tl.int64) * (r_max * TWB * 3)
    rr = tl.arange(0, RC)[:, None]
    xx = tl.arange(0, TWB)[None, :]
    jj = tl.arange(0, TE)
    for tile in range(pid, n_tiles, tl.num_programs(0)):
        f = tile // tiles_per_frame
        ti_ = tile - f * tiles_per_frame
        ty = ti_ // tiles_x
        tx = ti_ - ty * tiles_x
        tx0 = tx * TW
        ty0 = ty * TH
        tw = tl.minimum(out_w - tx0, TW)
        th = tl.minimum(out_h - ty0, TH)
        m = table_ptr + f * 11
        srcf = tl.load(m).to(tl.int64)
        x0 = tl.load(m + 1)
        y0 = tl.load(m + 2)
        kx = tl.load(m + 3)
        px_prec = tl.load(m + 4)
        ky_taps = tl.load(m + 5)
        py_prec = tl.load(m + 6)
        wxo = tl.load(m + 7)
        wyo = tl.load(m + 8)
        ry0 = tl.load(table_ptr + tl.load(m + 10) + 2 * ty)
        rows = tl.load(table_ptr + tl.load(m + 10) + 2 * ty + 1)
        # width pass: the tile's columns over every input row its height taps touch, RC rows at a time
        xg = tx0 + xx
        xm = xx < tw
        start = tl.load(table_ptr + wxo + xg, mask=xm, other=0)
        size = tl.load(table_ptr + wxo + out_w + xg, mask=xm, other=0)
        col = (x0 + start).to(tl.int64)
        bias_x = 1 << (px_prec - 1)
        tl.debug_barrier()  # the previous tile's height pass has read the scratch
        for r0 in range(0, rows, RC):
            rm = (r0 + rr) < rows
            y = (y0 + ry0 + r0 + rr).to(tl.int64)
            a0 = tl.zeros([RC, TWB], tl.int32) + bias_x
            a1 = a0
            a2 = a0
            for k in range(KX):
                km = xm & (k < size)
                w = tl.load(table_ptr + wxo + 2 * out_w + xg * kx + k, mask=km, other=0)
                lm = rm & km
                if NV12:  # src is the Y plane; RGB from Y and the 2x2 block's UV, as NV12.to_rgb
                    xa = col + k
                    q = uv_ptr + srcf * u_n + (y // 2) * u_h + (xa // 2) * u_w
                    r, g, b = _nv12_rgb(
                        src_ptr + srcf * s_n + y * s_h + xa * s_w, q, u_c, lm, ky, kr, kgu, kgv, kb, yoff
                    )
                    a0 += r * w
                    a1 += g * w
                    a2 += b * w
                else:
                    p = src_ptr + srcf * s_n + y * s_h + (col + k) * s_w
                    a0 += tl.load(p, mask=lm, other=0).to(tl.int32) * w
                    a1 += tl.load(p + s_c, mask=lm, other=0).to(tl.int32) * w
                    a2 += tl.load(p + 2 * s_c, mask=lm, other=0).to(tl.int32) * w
            d_ = scratch + ((r0 + rr) * TWB + xx) * 3
            sm = rm & xm
            tl.store(d_, _shift_clamp(a0, px_prec).to(tl.uint8), mask=sm)
            tl.store(d_ + 1, _shift_clamp(a1, px_prec).to(tl.uint8), mask=sm)
            tl.store(d_ + 2, _shift_clamp(a2, px_prec).to(tl.uint8), mask=sm)
        tl.debug_barrier()  # the width pass's rows are in the scratch
        # height pass, normalization and stores, TE pixels at a time in the output's memory order
        bias_y = 1 << (py_prec - 1)
        for e0 in range(0, th * tw, TE):
            j = e0 + jj
            em = j < th * tw
            if FCHW:
                yl = j // tw
                xl = j - yl * tw
            else:  # (patch of the tile, row in patch, column in patch)
                pl = j // (PATCH * PATCH)
                q_ = j - pl * (PATCH * PATCH)
                pyy = q_ // PATCH
                hy_l = pl // (tw // PATCH)
                yl = hy_l * PATCH + pyy
                xl = (pl - hy_l * (tw // PATCH)) * PATCH + (q_ - pyy * PATCH)
            yg = ty0 + yl
            xg2 = tx0 + xl
            vstart = tl.load(table_ptr + wyo + yg, mask=em, other=0)
            vsize = tl.load(table_ptr + wyo + out_h + yg, mask=em, other=0)
            sb = scratch + ((vstart - ry0) * TWB + xl) * 3
            b0 = tl.zeros([TE], tl.int32) + bias_y
            b1 = b0
            b2 = b0
            for k in range(KY):
                km = em & (k < vsize)
                w = tl.load(table_ptr + wyo + 2 * out_h + yg * ky_taps + k, mask=km, other=0)
                q = sb + k * (TWB * 3)  # .cg: from L2, where this program's stores are (never a stale cached line)
                b0 += tl.load(q, mask=km, other=0, cache_modifier=".cg").to(tl.int32) * w
                b1 += tl.load(q + 1, mask=km, other=0, cache_modifier=".cg").to(tl.int32) * w
                b2 += tl.load(q + 2, mask=km, other=0, cache_modifier=".cg").to(tl.int32) * w
            _normalize_store(
                out_ptr, b0, b1, b2, py_prec, m0, m1, m2, s0, s1, s2, f, yg, xg2, em, presented, out_h, out_w,
                repeat, total_frames, PATCH, TPATCH, MERGE, MAXR, OUT_BF16, FCHW,
            )  # fmt: skip


def launch_fragment_pack_tiled(
    frames,
    table,
    out,
    *,
    presented,
    out_h,
    out_w,
    repeat,
    total_frames,
    tile,
    kx_max,
    ky_max,
    r_max,
    mean255,
    inv_std255,
    patch,
    tpatch,
    merge,
    fchw=False,
    uv=None,
    yuv=None,
    programs=None,
):
    """Run :func:`_fragment_pack_tiled`. ``tile`` (TH, TW); ``r_max``: the most input rows a tile reads (the scratch's
    height); ``programs``: how many persistent programs (default: 4 per SM on a GPU)."""
    th, tw = tile
    tiles_x = -(-out_w // tw)
    tiles_per_frame = tiles_x * -(-out_h // th)
    n_tiles = presented * tiles_per_frame
    if n_tiles == 0:
        return out
    if programs is None:
        dev = frames.device
        sms = torch.cuda.get_device_properties(dev).multi_processor_count if dev.type == "cuda" else 1
        programs = 4 * sms
    programs = max(1, min(programs, n_tiles))
    twb = triton.next_power_of_2(tw)
    scratch = torch.empty(programs * r_max * twb * 3, dtype=torch.uint8, device=frames.device)
    nv12 = _nv12_args(uv, yuv)
    out_bf16 = out.dtype == torch.bfloat16
    _fragment_pack_tiled[(programs,)](
        frames,
        frames.stride(0),
        frames.stride(1),
        frames.stride(2),
        frames.stride(3) if uv is None else 1,
        table,
        scratch,
        out.view(torch.int16) if out_bf16 else out,
        n_tiles,
        tiles_x,
        tiles_per_frame,
        out_h,
        out_w,
        presented,
        repeat,
        total_frames,
        *mean255,
        *inv_std255,
        KX=kx_max,
        KY=ky_max,
        TH=th,
        TW=tw,
        TWB=twb,
        r_max=r_max,
        RC=8,  # 8 x 64 width-pass and 256 height-pass pixels a step: 58-64 registers a thread, 4 programs an SM (sm_90)
        TE=256,
        PATCH=patch,
        TPATCH=tpatch,
        MERGE=merge,
        MAXR=repeat if fchw else repeat + tpatch,
        OUT_BF16=out_bf16,
        FCHW=fchw,
        num_warps=8,
        **nv12,
    )
    return out


def _horizontal_signature() -> dict:
    sig = {
        "src_ptr": "*u8",
        "s_n": "i64",
        "s_h": "i64",
        "s_w": "i64",
        "s_c": "i64",
        "table_ptr": "*i32",
        "row_frame_ptr": "*i32",
        "tmp_ptr": "*u8",
        "total": "i32",
        "out_w": "i32",
        "KMAX": "constexpr",
        "BLOCK": "constexpr",
        "uv_ptr": "*u8",
    }
    sig.update(dict.fromkeys(("u_n", "u_h", "u_w", "u_c"), "i64"))
    sig.update(dict.fromkeys(("ky", "kr", "kgu", "kgv", "kb", "yoff"), "i32"))
    sig["NV12"] = "constexpr"
    return sig


def _vertical_signature(out_ptr: str) -> dict:
    sig = {"tmp_ptr": "*u8", "table_ptr": "*i32", "out_ptr": out_ptr}
    sig.update(dict.fromkeys(("presented", "out_h", "out_w", "repeat", "total_frames"), "i32"))
    sig.update(dict.fromkeys(("m0", "m1", "m2", "s0", "s1", "s2"), "fp32"))
    sig.update(dict.fromkeys(("KMAX", "PATCH", "TPATCH", "MERGE", "MAXR", "OUT_BF16", "BLOCK", "FCHW"), "constexpr"))
    return sig


def _tiled_signature(out_ptr: str) -> dict:
    sig = {"src_ptr": "*u8", "s_n": "i64", "s_h": "i64", "s_w": "i64", "s_c": "i64", "table_ptr": "*i32"}
    sig.update({"scratch_ptr": "*u8", "out_ptr": out_ptr})
    names = ("n_tiles", "tiles_x", "tiles_per_frame", "out_h", "out_w", "presented", "repeat", "total_frames")
    sig.update(dict.fromkeys(names, "i32"))
    sig.update(dict.fromkeys(("m0", "m1", "m2", "s0", "s1", "s2"), "fp32"))
    sig.update(dict.fromkeys(("KX", "KY", "TH", "TW", "TWB"), "constexpr"))
    sig["r_max"] = "i32"
    names = ("RC", "TE", "PATCH", "TPATCH", "MERGE", "MAXR", "OUT_BF16", "FCHW")
    sig.update(dict.fromkeys(names, "constexpr"))
    sig["uv_ptr"] = "*u8"
    sig.update(dict.fromkeys(("u_n", "u_h", "u_w", "u_c"), "i64"))
    sig.update(dict.fromkeys(("ky", "kr", "kgu", "kgv", "kb", "yoff"), "i32"))
    sig["NV12"] = "constexpr"
    return sig


_TILED_QWEN = {"KX": 16, "KY": 16, "TH": 28, "TW": 56, "TWB": 64, "RC": 8, "TE": 256, "PATCH": 14, "TPATCH": 2}
_TILED_QWEN.update({"MERGE": 2, "MAXR": 3, "FCHW": False})

# Every kernel here with a signature and constexprs that compile it ahead of time (tests/ops/test_triton.py
# compiles each for sm_90 in CI, where there is no GPU).
AOT_SPECS = {
    "_fragment_pack_horizontal": (
        _fragment_pack_horizontal,
        _horizontal_signature(),
        {"KMAX": 16, "BLOCK": 256, "NV12": False},
    ),
    # NV12 input: frames is the Y plane, converted to RGB in the same pass
    "_fragment_pack_horizontal_nv12": (
        _fragment_pack_horizontal,
        _horizontal_signature(),
        {"KMAX": 16, "BLOCK": 256, "NV12": True},
    ),
    # bf16 output is written through an int16 view (see _to_out); float32 directly.
    "_fragment_pack_vertical": (
        _fragment_pack_vertical,
        _vertical_signature("*i16"),
        {"KMAX": 16, "PATCH": 14, "TPATCH": 2, "MERGE": 2, "MAXR": 4, "OUT_BF16": True, "BLOCK": 256, "FCHW": False},
    ),
    "_fragment_pack_vertical_f32": (
        _fragment_pack_vertical,
        _vertical_signature("*fp32"),
        {"KMAX": 8, "PATCH": 14, "TPATCH": 2, "MERGE": 2, "MAXR": 4, "OUT_BF16": False, "BLOCK": 256, "FCHW": False},
    ),
    # LLaVA layout [F * repeat, 3, H, W] (fragment_pack(layout="fchw")), float32
    # the tiled single pass (SF2T_FRAGMENT_PACK_TRITON=tiled): Qwen2-VL bf16 from RGB, float32 from NV12, LLaVA layout
    "_fragment_pack_tiled": (
        _fragment_pack_tiled,
        _tiled_signature("*i16"),
        {**_TILED_QWEN, "OUT_BF16": True, "NV12": False},
    ),
    "_fragment_pack_tiled_nv12": (
        _fragment_pack_tiled,
        _tiled_signature("*fp32"),
        {**_TILED_QWEN, "OUT_BF16": False, "NV12": True},
    ),
    "_fragment_pack_tiled_fchw": (
        _fragment_pack_tiled,
        _tiled_signature("*fp32"),
        {**_TILED_QWEN, "KX": 8, "KY": 8, "TH": 32, "TW": 64, "PATCH": 1, "TPATCH": 1, "MERGE": 1, "MAXR": 1}
        | {"OUT_BF16": False, "FCHW": True, "NV12": False},
    ),
    "_fragment_pack_vertical_fchw": (
        _fragment_pack_vertical,
        _vertical_signature("*fp32"),
        {"KMAX": 8, "PATCH": 1, "TPATCH": 1, "MERGE": 1, "MAXR": 1, "OUT_BF16": False, "BLOCK": 256, "FCHW": True},
    ),
}
