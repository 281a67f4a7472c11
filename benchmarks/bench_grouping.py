"""Speed and oracle AP of the bottom-up grouping, one thread.

    python benchmarks/bench_grouping.py [--scenes 8] [--repeat 3] [--sizes 128 256] [--json OUT]

For 1, 5, 15, 30 people on 128x128 (and 256x256) maps of oracle inputs (ground-truth Gaussians,
sigma 2, exact tags; 10% of joints unlabelled), it times per image:

* ``group``: the vectorized decoder (default settings),
* ``group(exact=True)``: the same with the original's choices,
* ``reference``: a straightforward loop-and-Hungarian port of the original parser (pure-Python
  Hungarian, per-person dense refine), in the same run, for the ratio on this machine;

and reports the oracle AP (maxDets 100) of each, plus the original parser's times measured by the
project (``../shared/docs/evaluation-and-decoding.md``, 128x128 only) and the speed-up over them.
A second table decodes noisy oracles (tag noise sigma 0.2, heatmap noise 0.02) to compare the
default against the original's choices. Times are medians (wall clock; CPU time of the thread in
the JSON). Other jobs on the machine inflate wall-clock figures; the ratio to the reference, timed
in turn with the same load, is the robust number.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

ORIGINAL_MS_128 = {1: 6.5, 5: 11.5, 15: 24.8, 30: 51.8}
COUNTS = (1, 5, 15, 30)


def _time(fn, repeat: int) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.thread_time()
        fn()
        cpus.append(time.thread_time() - c)
        walls.append(time.perf_counter() - w)
    return float(np.median(walls)) * 1e3, float(np.median(cpus)) * 1e3


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
    parser.add_argument("--repeat", type=int, default=3, help="timed decodes of each scene")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="map sides")
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
    rows = []
    for size in args.sizes:
        for count in COUNTS:
            gt, maps = _scenes(count, size, args.scenes, seed=count * 1000 + size)
            row = {"size": size, "people": count}
            for name, fn in decoders.items():
                fn(*maps[0])  # warm-up (imports, caches)
                walls, cpus = [], []
                for heat, tags in maps:
                    w, c = _time(lambda: fn(heat, tags), args.repeat)
                    walls.append(w)
                    cpus.append(c)
                row[f"{name}_ms"] = float(np.median(walls))
                row[f"{name}_cpu_ms"] = float(np.median(cpus))
                row[f"{name}_ap"], row[f"{name}_people"] = _ap(gt, maps, fn)
            row["ratio_vs_reference"] = row["reference_ms"] / row["group_ms"]
            if size == 128:
                row["original_ms"] = ORIGINAL_MS_128[count]
                row["speedup_vs_original"] = ORIGINAL_MS_128[count] / row["group_ms"]
            rows.append(row)

    noisy = []
    for count in (5, 15, 30):
        gt, maps = _scenes(count, 128, args.scenes, seed=77 + count, tag_noise=0.2, heat_noise=0.02)
        entry = {"people": count}
        for name in ("group", "exact"):
            entry[f"{name}_ap"], entry[f"{name}_people"] = _ap(gt, maps, decoders[name])
        noisy.append(entry)

    header = (f"{'map':>5} {'people':>6} | {'group ms':>8} {'exact ms':>8} {'ref ms':>8} {'ref/group':>9} "
              f"{'orig ms':>7} {'orig/group':>10} | {'AP group':>8} {'AP exact':>8} {'AP ref':>8}")
    print(header)
    print("-" * len(header))
    for r in rows:
        orig = f"{r['original_ms']:7.1f} {r['speedup_vs_original']:10.1f}" if "original_ms" in r else f"{'':>7} {'':>10}"
        print(f"{r['size']:>5} {r['people']:>6} | {r['group_ms']:8.2f} {r['exact_ms']:8.2f} {r['reference_ms']:8.2f} "
              f"{r['ratio_vs_reference']:9.1f} {orig} | {r['group_ap']:8.4f} {r['exact_ap']:8.4f} {r['reference_ap']:8.4f}")
    print()
    print("noisy oracle (tag noise 0.2, heatmap noise 0.02), 128x128, maxDets 100:")
    print(f"{'people':>6} | {'AP group':>8} {'people':>7} | {'AP exact':>8} {'people':>7}")
    for e in noisy:
        print(f"{e['people']:>6} | {e['group_ap']:8.4f} {e['group_people']:>7} | {e['exact_ap']:8.4f} {e['exact_people']:>7}")
    if args.json_out:
        from litepose_nas.io import write_json_atomic

        write_json_atomic(args.json_out, {"threads": 1, "scenes": args.scenes, "repeat": args.repeat,
                                          "timings": rows, "noisy_oracle": noisy})
        print(f"figures: {args.json_out}")


if __name__ == "__main__":
    main()
