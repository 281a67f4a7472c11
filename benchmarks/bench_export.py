"""Latency of torch eager vs onnxruntime for exported LitePose subnets (CPU).

    python benchmarks/bench_export.py                # search-XS @ 256 and search-M @ 448, 1 and 2 threads
    python benchmarks/bench_export.py --runs 10 --json bench_export.json

Torch eager runs the unfolded model in eval mode under ``torch.inference_mode`` (how a user would
run the PyTorch model); onnxruntime runs the exported graph (BN folded, all graph optimisations).
Both see the same input at the architecture's resolution, batch 1, with the thread count pinned
(torch.set_num_threads / intra_op_num_threads). The two are called in turn on every round (so both
see the same background load); median over ``--runs`` rounds after ``--warmup`` rounds.
Other processes on the machine affect the figures: run it on an idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = (("search-XS", 256), ("search-M", 448))


def _interleaved_medians_ms(fns, warmup: int, runs: int) -> list[float]:
    """Median time of each function, calling them in turn on every round so that both see the
    same background load (the machine may be shared)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, bucket in zip(fns, times):
            start = time.perf_counter()
            fn()
            bucket.append((time.perf_counter() - start) * 1e3)
    return [statistics.median(t) for t in times]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--num-joints", type=int, default=17, choices=(14, 17))
    parser.add_argument("--case", action="append", default=None, metavar="NAME@SIZE",
                        help="published arch and resolution, e.g. search-XS@256 (repeatable)")
    parser.add_argument("--json", dest="json_out", default=None, help="write the figures to this JSON file")
    args = parser.parse_args(argv)

    import dataclasses

    import numpy as np
    import onnxruntime
    import torch

    from litepose_nas.export import export_model, ort_session, random_init_model
    from litepose_nas.export.onnx_export import INPUT_NAME, OUTPUT_NAMES
    from litepose_nas.space import Arch

    cases = CASES if not args.case else tuple((c.split("@")[0], int(c.split("@")[1])) for c in args.case)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, size in cases:
            arch = dataclasses.replace(Arch.from_json(REPO / "search_spaces" / "published" / f"{name}.json"), img_size=size)
            model = random_init_model(arch, args.num_joints)
            result = export_model(model, Path(tmp) / name, source="random-init")
            x = torch.randn(1, 3, size, size)
            feed = {INPUT_NAME: x.numpy()}
            for threads in args.threads:
                torch.set_num_threads(threads)
                session = ort_session(result.files["onnx"], threads=threads)

                def run_torch() -> None:
                    with torch.inference_mode():
                        model(x)

                def run_ort() -> None:
                    session.run(list(OUTPUT_NAMES), feed)

                torch_ms, ort_ms = _interleaved_medians_ms((run_torch, run_ort), args.warmup, args.runs)
                rows.append({
                    "arch": name, "img_size": size, "threads": threads,
                    "torch_eager_ms": round(torch_ms, 2), "onnxruntime_ms": round(ort_ms, 2),
                    "speedup": round(torch_ms / ort_ms, 2), "parity": result.parity.max_abs_diff,
                })
                print(f"  {name} @ {size}px, {threads} thread(s): torch {torch_ms:.1f} ms, "
                      f"onnxruntime {ort_ms:.1f} ms", file=sys.stderr, flush=True)

    header = ["arch", "img", "threads", "torch eager ms", "onnxruntime ms", "speedup"]
    table = [[r["arch"], r["img_size"], r["threads"], f"{r['torch_eager_ms']:.1f}", f"{r['onnxruntime_ms']:.1f}",
              f"{r['speedup']:.2f}x"] for r in rows]
    widths = [max(len(str(v)) for v in col) for col in zip(header, *table)]
    for line in [header, ["-" * w for w in widths], *table]:
        print("  ".join(str(v).rjust(w) for v, w in zip(line, widths)))
    target = 1.5
    met = all(r["speedup"] >= target for r in rows)
    print(f"target: onnxruntime >= {target}x faster than torch eager: {'met' if met else 'NOT met'} "
          f"(min {min(r['speedup'] for r in rows):.2f}x)")
    if args.json_out:
        info = {
            "rows": rows, "target_speedup": target, "target_met": met, "runs": args.runs, "warmup": args.warmup,
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "numpy": np.__version__,
            "cpu_count": os.cpu_count(),
        }
        Path(args.json_out).write_text(json.dumps(info, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
