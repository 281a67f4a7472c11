"""Subnet forward through the supernet vs the extracted static network (CPU, ms per image).

    python benchmarks/bench_supernet.py                      # 256 px, 1 and 2 threads
    python benchmarks/bench_supernet.py --json out/bench_supernet.json --repeats 30

Target: the supernet's forward of a subnet at most 1.3x the static network's. Both run in eval
mode under ``torch.inference_mode``; measurements of the two are interleaved so that load from
other processes hits both alike; the median of the repeats is reported.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path


def _default_thread_env() -> None:
    # BLAS / OpenMP read these when torch is imported: set them before.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "2")


_default_thread_env()

import torch  # noqa: E402

from litepose_nas.space import Arch, SearchSpace  # noqa: E402
from litepose_nas.supernet import SuperLitePose  # noqa: E402


def middle_arch(space: SearchSpace, img_size: int) -> Arch:
    """The middle choice of every dimension (kernels / expansions alternate through their choices)."""
    def mid(choices):
        return sorted(choices)[len(choices) // 2]

    stages = []
    for s, st in enumerate(space.stages):
        depth = mid(st.depths)
        blocks = [(sorted(st.expansions)[(s + b) % len(st.expansions)], sorted(st.kernels)[(s + 2 * b) % len(st.kernels)])
                  for b in range(depth)]
        stages.append((mid(st.widths), st.stride, blocks))
    return Arch.create(img_size, mid(space.stem_widths), [mid(w) for w in space.head_widths], stages)


def time_pair(supernet: SuperLitePose, static: torch.nn.Module, arch: Arch, x: torch.Tensor, warmup: int, repeats: int):
    run_super = lambda: supernet(x, arch)  # noqa: E731
    run_static = lambda: static(x)  # noqa: E731
    with torch.inference_mode():
        for _ in range(warmup):
            run_super()
            run_static()
        sup, sta = [], []
        for _ in range(repeats):
            for fn, out in ((run_super, sup), (run_static, sta)):
                t0 = time.perf_counter()
                fn()
                out.append((time.perf_counter() - t0) * 1000 / x.shape[0])
    return statistics.median(sup), statistics.median(sta)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--img-size", type=int, default=256)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--joints", type=int, default=14)
    parser.add_argument("--json", dest="json_out", default=None, help="write the figures to this JSON file")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    elastic = SearchSpace.from_yaml("litepose-elastic")
    original = SearchSpace.from_yaml("litepose")
    supernet = SuperLitePose(elastic, args.joints).eval()
    archs = {
        "largest": dataclasses.replace(elastic.largest(), img_size=args.img_size),
        "mid (litepose)": middle_arch(original, args.img_size),
        "mid (elastic, k3/5/7)": middle_arch(elastic, args.img_size),
    }
    x = torch.randn(1, 3, args.img_size, args.img_size)
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for name, arch in archs.items():
            static = supernet.extract(arch).eval()
            sup_ms, sta_ms = time_pair(supernet, static, arch, x, args.warmup, args.repeats)
            rows.append({
                "arch": name, "describe": arch.describe(), "threads": threads, "img_size": args.img_size,
                "supernet_ms": round(sup_ms, 3), "static_ms": round(sta_ms, 3), "ratio": round(sup_ms / sta_ms, 3),
            })
            r = rows[-1]
            print(f"{name:<24} threads={threads}  supernet {r['supernet_ms']:8.2f} ms  static {r['static_ms']:8.2f} ms  "
                  f"ratio {r['ratio']:.2f}", flush=True)
    print()
    header = f"{'arch':<24}{'threads':>8}{'supernet ms':>13}{'static ms':>11}{'ratio':>7}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['arch']:<24}{r['threads']:>8}{r['supernet_ms']:>13.2f}{r['static_ms']:>11.2f}{r['ratio']:>7.2f}")
    worst = max(r["ratio"] for r in rows)
    print(f"\nworst ratio {worst:.2f} (target <= 1.30); torch {torch.__version__}, {os.cpu_count()} CPUs; "
          "other processes may have been running")
    if args.json_out:
        from litepose_nas.io import write_json_atomic

        write_json_atomic(args.json_out, {
            "benchmark": "supernet_vs_static", "torch": torch.__version__, "cpus": os.cpu_count(),
            "warmup": args.warmup, "repeats": args.repeats, "rows": rows, "worst_ratio": worst,
            "archs": {k: v.to_dict() for k, v in archs.items()},
        })
        print(f"wrote {Path(args.json_out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
