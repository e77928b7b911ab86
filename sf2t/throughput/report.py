"""``sf2t throughput``'s output: the table it prints and its figures made strict JSON."""

from __future__ import annotations

import statistics

from sf2t._files import json_safe  # noqa: F401  (re-exported: sf2t.throughput's json_safe)
from sf2t._plural import counted
from sf2t.throughput.sampling import FRAMES


def print_table(res: dict) -> None:
    t = res.get("threads", 1)
    each = "one thread each" if t == 1 else f"{t} torch and decoder threads each"
    if res.get("workers"):
        each = f"sf2t in {res['workers']} worker processes of one thread, the baselines {each}"
    elif res.get("prefetch"):
        each += f"; sf2t decodes {counted(res['prefetch'], 'window')} ahead in a thread while it packs, threads split"
    elif res.get("pipelines", 1) > 1:
        each += f"; sf2t runs {res['pipelines']} pipeline threads (decode, build, pack), threads split"
    if res.get("baseline_streams", 1) > 1:
        each += f"; each baseline runs {res['baseline_streams']} threads, threads split"
    tasks = ", ".join(res.get("tasks", ["fragment"]))
    print(
        f"{res['samples']} samples ({tasks}; {res.get('frames_per_sample', FRAMES):.1f} frames each) -> "
        f"{res.get('family', 'qwen2_vl')} pixels at {res['size']} on {res.get('device', 'cpu')}, {each}; "
        f"sf2t decodes with {res.get('sf2t_decoder', 'auto')} ({res.get('frames', 'rgb')} windows)"
    )
    print(f"{'provider':<22}{'samples/s':>11}{'frames/s':>10}{'pixel MB/s':>12}{'sf2t x':>9}")
    for k, r in res["providers"].items():
        print(
            f"{k:<22}{r['samples_per_s']:>11.1f}{r['frames_per_s']:>10.0f}{r['pixel_mb_per_s']:>12.1f}"
            f"{r['sf2t_speedup']:>9.2f}"
        )
    print(
        f"ceiling: raw all-frames decode ({res.get('ceiling_decoder', 'torchcodec')}) "
        f"{res.get('ceiling_fps', statistics.mean(res['raw_fps'].values())):.0f} frames/s / "
        f"{res['sf2t_frames_decoded_per_sample']:.1f} frames decoded per sample = "
        f"{res['ceiling_samples_per_s']:.1f} samples/s; sf2t reaches {100 * res['sf2t_fraction_of_ceiling']:.0f}%"
        " (its median round against the best raw-decode pass)"
    )
    rounds = res.get("per_round") or []
    fp = res.get("sf2t_fraction_of_ceiling_paired", float("nan"))
    if rounds and fp == fp:  # not nan
        each = ", ".join(f"{100 * r['fraction_of_ceiling']:.0f}%" for r in rounds)
        print(
            f"paired by round (each round's sf2t rate against the ceiling measured right after it): median "
            f"{100 * fp:.0f}% ({each})"
        )
    dc = res.get("decode_only_ceiling_samples_per_s", float("nan"))
    if dc == dc:  # not nan
        print(
            f"decode-only ceiling: raw all-frames decode without RGB conversion (pyav) "
            f"{res.get('decode_only_ceiling_fps', statistics.mean(res['raw_decode_fps'].values())):.0f} frames/s -> "
            f"{dc:.1f} samples/s; sf2t reaches "
            f"{100 * res['sf2t_fraction_of_decode_only_ceiling']:.0f}% (sf2t's windows: {res.get('frames', 'rgb')}; "
            f"paired by round: {100 * res.get('sf2t_fraction_of_decode_only_ceiling_paired', float('nan')):.0f}%)"
        )
