"""Speed and oracle AP of the bottom-up grouping, one thread.

    python benchmarks/bench_grouping.py [--scenes 8] [--repeat 20] [--repeat-ref 3] [--sizes 128 256]
                                        [--baseline FILE] [--json OUT]

For 1, 5, 15, 30 people on 128x128 (and 256x256) maps of oracle inputs (ground-truth Gaussians,
sigma 2, exact tags; 10% of joints unlabelled), it times per image:

* ``group``: the vectorized decoder (default settings),
* ``group(exact=True)``: the same with the original's choices,
* ``reference``: a straightforward loop-and-Hungarian port of the original parser (pure-Python
  Hungarian, per-person dense refine), in the same run, for the ratio on this machine;

and reports the oracle AP (maxDets 100) of each, the original parser's times measured by the
project on the original code (128x128 only), the speed-ups over them and
over the reference, and whether ``group`` meets the issue's target (at least 10x faster than the
original: <= 0.65 / 1.15 / 2.48 / 5.18 ms), judged on the median wall time and, separately, on the
median CPU time (``time.process_time``; other jobs on the machine inflate wall clock more than CPU
time). A second table decodes noisy oracles (tag noise sigma 0.2, heatmap noise 0.02) to compare the
default against the original's choices. Times are medians over scenes of the median over repeats;
the load average before and after is printed with them. ``--baseline FILE`` also times the
``group`` of another version of ``litepose_nas/decode/grouping.py`` (e.g. from ``git show``) in the
same run, for before/after figures.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

ORIGINAL_MS_128 = {1: 6.5, 5: 11.5, 15: 24.8, 30: 51.8}
COUNTS = (1, 5, 15, 30)


def _time(fn, repeat: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds of ``repeat`` calls."""
    walls, cpus = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        cpus.append(time.process_time() - c)
        walls.append(time.perf_counter() - w)
    return float(np.median(walls)) * 1e3, float(np.median(cpus)) * 1e3


def _load_grouping(path: str):
    """A grouping.py file as a module of the decode package (so its relative imports resolve)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("litepose_nas.decode._baseline_grouping", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else []


def _scenes(count: int, size: int, n: int, seed: int, dataset: str = "coco", tag_noise: float = 0.0,
            heat_noise: float = 0.0):
    from litepose_nas.keypoints import keypoint_spec
    from litepose_nas.oracle import random_people, render_maps, scenes_to_coco

    spec = keypoint_spec(dataset)
    rng = np.random.default_rng(seed)
    truth = [random_people(count, size, size, spec, rng) for _ in range(n)]
    maps = []
    for scene in truth:
        heat, tags = render_maps(scene, size, size)
        if tag_noise:
            tags = tags + rng.normal(0, tag_noise, tags.shape).astype(np.float32)
        if heat_noise:
            heat = heat + rng.normal(0, heat_noise, heat.shape).astype(np.float32)
        maps.append((heat, tags))
    return scenes_to_coco(truth, size, size, spec), maps


def _ap(gt, maps, decoder, dataset: str = "coco") -> tuple[float, int]:
    from litepose_nas.metrics import keypoint_metrics, people_to_results

    results, found = [], 0
    for img, (heat, tags) in zip(gt["images"], maps):
        people, scores = decoder(heat, tags)
        found += len(people)
        results += people_to_results(img["id"], people, scores)
    return keypoint_metrics(gt, results, dataset, max_dets=100)["AP"], found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=8, help="scenes per people count")
    parser.add_argument("--repeat", type=int, default=20, help="timed decodes of each scene by group")
    parser.add_argument("--repeat-ref", type=int, default=3, help="timed decodes of each scene by the reference port")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="map sides")
    parser.add_argument("--baseline", default=None, help="another grouping.py whose group() to time too")
    parser.add_argument("--json", dest="json_out", default=None, help="write the figures here")
    args = parser.parse_args()

    import cv2

    cv2.setNumThreads(1)
    from litepose_nas.decode import group, reference_group

    decoders = {
        "group": lambda h, t: group(h, t),
        "exact": lambda h, t: group(h, t, exact=True),
        "reference": lambda h, t: reference_group(h, t),
    }
    repeats = {"group": args.repeat, "exact": args.repeat, "reference": args.repeat_ref}
    if args.baseline:
        baseline = _load_grouping(args.baseline)
        decoders["baseline"] = lambda h, t: baseline.group(h, t)
        repeats["baseline"] = args.repeat
    load_before = _load()
    rows = []
    for size in args.sizes:
        for count in COUNTS:
            gt, maps = _scenes(count, size, args.scenes, seed=count * 1000 + size)
            row = {"size": size, "people": count}
            for name, fn in decoders.items():
                fn(*maps[0])  # warm-up (imports, work arrays)
                walls, cpus = [], []
                for heat, tags in maps:
                    w, c = _time(lambda: fn(heat, tags), repeats[name])
                    walls.append(w)
                    cpus.append(c)
                row[f"{name}_ms"] = float(np.median(walls))
                row[f"{name}_cpu_ms"] = float(np.median(cpus))
                row[f"{name}_ap"], row[f"{name}_people"] = _ap(gt, maps, fn)
            row["speedup_vs_reference"] = row["reference_ms"] / row["group_ms"]
            row["speedup_vs_reference_cpu"] = row["reference_cpu_ms"] / row["group_cpu_ms"]
            if size == 128:
                original = ORIGINAL_MS_128[count]
                row["original_ms"] = original
                row["target_ms"] = original / 10
                row["speedup_vs_original"] = original / row["group_ms"]
                row["speedup_vs_original_cpu"] = original / row["group_cpu_ms"]
                row["meets_target"] = row["group_ms"] <= original / 10
                row["meets_target_cpu"] = row["group_cpu_ms"] <= original / 10
            rows.append(row)
    load_after = _load()

    noisy = []
    for count in (5, 15, 30):
        gt, maps = _scenes(count, 128, args.scenes, seed=77 + count, tag_noise=0.2, heat_noise=0.02)
        entry = {"people": count}
        for name in ("group", "exact"):
            entry[f"{name}_ap"], entry[f"{name}_people"] = _ap(gt, maps, decoders[name])
        noisy.append(entry)

    print(f"one thread; {args.scenes} scenes per row, group x{args.repeat}, reference x{args.repeat_ref}; "
          f"load average before {load_before}, after {load_after} ({os.cpu_count()} CPUs)")
    header = (f"{'map':>5} {'people':>6} | {'group ms':>8} {'cpu ms':>7} {'exact ms':>8} {'ref ms':>8} {'ref/grp':>7} | "
              f"{'orig ms':>7} {'target':>6} {'orig/grp':>8} {'(cpu)':>6} {'10x?':>8} | "
              f"{'AP grp':>6} {'AP exact':>8} {'AP ref':>6}")
    print(header)
    print("-" * len(header))
    for r in rows:
        if "original_ms" in r:
            verdict = f"{'pass' if r['meets_target'] else 'FAIL'}/{'pass' if r['meets_target_cpu'] else 'FAIL'}"
            orig = (f"{r['original_ms']:7.1f} {r['target_ms']:6.2f} {r['speedup_vs_original']:8.1f} "
                    f"{r['speedup_vs_original_cpu']:6.1f} {verdict:>8}")
        else:
            orig = f"{'':>7} {'':>6} {'':>8} {'':>6} {'':>8}"
        print(f"{r['size']:>5} {r['people']:>6} | {r['group_ms']:8.2f} {r['group_cpu_ms']:7.2f} {r['exact_ms']:8.2f} "
              f"{r['reference_ms']:8.1f} {r['speedup_vs_reference']:7.1f} | {orig} | "
              f"{r['group_ap']:6.4f} {r['exact_ap']:8.4f} {r['reference_ap']:6.4f}")
    print("10x?: group meets the issue's target (original / 10) on median wall / CPU time")
    if args.baseline:
        print(f"\nbaseline {args.baseline} vs group (same run):")
        print(f"{'map':>5} {'people':>6} | {'base ms':>8} {'cpu ms':>7} | {'group ms':>8} {'cpu ms':>7} | "
              f"{'speed-up':>8} | {'AP base':>7}")
        for r in rows:
            print(f"{r['size']:>5} {r['people']:>6} | {r['baseline_ms']:8.2f} {r['baseline_cpu_ms']:7.2f} | "
                  f"{r['group_ms']:8.2f} {r['group_cpu_ms']:7.2f} | {r['baseline_ms'] / r['group_ms']:8.1f} | "
                  f"{r['baseline_ap']:7.4f}")
    print()
    print("noisy oracle (tag noise 0.2, heatmap noise 0.02), 128x128, maxDets 100:")
    print(f"{'people':>6} | {'AP group':>8} {'people':>7} | {'AP exact':>8} {'people':>7}")
    for e in noisy:
        print(f"{e['people']:>6} | {e['group_ap']:8.4f} {e['group_people']:>7} | {e['exact_ap']:8.4f} {e['exact_people']:>7}")
    if args.json_out:
        from litepose_nas.io import write_json_atomic

        write_json_atomic(args.json_out, {"threads": 1, "scenes": args.scenes, "repeat": args.repeat,
                                          "repeat_reference": args.repeat_ref, "cpus": os.cpu_count(),
                                          "load_before": load_before, "load_after": load_after,
                                          "timings": rows, "noisy_oracle": noisy})
        print(f"figures: {args.json_out}")


if __name__ == "__main__":
    main()
