"""Throughput of LatencyTable.predict on encoded batches (the searcher's hot path).

    python benchmarks/bench_latency.py [--table x86-cpu-ort-2t] [--space litepose] [--json OUT]

Threads are pinned to 1 (numpy BLAS is not used here, but keep runs comparable). Prints archs/s
for several batch sizes; other jobs on the machine can lower the figures.
"""
from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from litepose_nas import SearchSpace  # noqa: E402
from litepose_nas.latency import load_table  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--table", default="x86-cpu-ort-2t")
    ap.add_argument("--space", default="litepose")
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", dest="json_out", default=None)
    args = ap.parse_args()
    space = SearchSpace.from_yaml(args.space)
    table = load_table(args.table, space=space)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        enc = space.sample_encoded(0, n)
        table.predict(enc[:10], space=space)  # warm caches
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            table.predict(enc, space=space)
            times.append(time.perf_counter() - t0)
        best = min(times)
        rows.append({"batch": n, "seconds": best, "archs_per_s": n / best, "median_seconds": float(np.median(times))})
    print(f"table {table.name} ({table.device}), space {space.name}, {len(table)} rows")
    print(f"{'batch':>8} {'best s':>9} {'archs/s':>12}")
    for r in rows:
        print(f"{r['batch']:>8} {r['seconds']:>9.4f} {r['archs_per_s']:>12,.0f}")
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump({"table": table.name, "space": space.name, "results": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
