"""Build the "exact supernet evaluation" landscape of ``search_landscapes.py`` (run once).

A tiny supernet of the small space ``benchmarks/data/tiny-exact.yaml`` (384 architectures) is
trained briefly on a synthetic dataset; then *every* subnet is extracted, its BatchNorm
recalibrated on training batches and its AP computed on a small validation set
(:class:`litepose_nas.predictors.ExactPredictor`, the original repository's way of scoring
subnets). The scores are cached in ``benchmarks/data/tiny-exact-scores.json`` (space, encoded
architectures, AP, provenance), which the landscape benchmark reads: searchers are then scored
against the true optimum of an exact (noisy, non-monotone) landscape.

About 10 minutes of one core:

    python benchmarks/build_exact_landscape.py [--threads 1] [--work runs/tiny-exact] [--steps 150]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPACE = HERE / "data" / "tiny-exact.yaml"
OUT = HERE / "data" / "tiny-exact-scores.json"


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", default="runs/tiny-exact", help="dataset and supernet go here")
    p.add_argument("--images", type=int, default=120)
    p.add_argument("--steps", type=int, default=150, help="supernet training steps")
    p.add_argument("--minutes", type=float, default=4.0, help="supernet training time cap")
    p.add_argument("--val-images", type=int, default=12)
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


ARGS = parse()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)


def main() -> None:
    import numpy as np
    import torch
    from tqdm import tqdm

    from litepose_nas import SearchSpace
    from litepose_nas.data import generate_synthetic
    from litepose_nas.io import write_json_atomic
    from litepose_nas.predictors import ExactPredictor
    from litepose_nas.train import Trainer, default_config

    torch.set_num_threads(ARGS.threads)
    space = SearchSpace.from_yaml(SPACE)
    work = Path(ARGS.work)
    data = work / "data"
    t0 = time.perf_counter()
    if not (data / "annotations").exists():
        generate_synthetic(data, ARGS.images, layout="coco", preset="easy", seed=ARGS.seed, image_size=128)
    cfg = default_config("supernet", dataset="coco", data=str(data), space=space.to_dict(), resolutions=(64, 96, 128),
                         steps=ARGS.steps, batch_size=8, num_workers=0, val_every=-1, seed=ARGS.seed,
                         checkpoint_every=max(50, ARGS.steps), log_every=10)
    weights = work / "supernet" / "supernet.pt"
    steps = None
    if not weights.exists():  # a rerun resumes: the supernet is trained once
        res = Trainer(cfg, work / "supernet", quiet=False, time_limit_s=ARGS.minutes * 60).run()
        weights, steps = res.weights, res.step
    steps = steps if steps is not None else cfg.steps  # resumed: the configured count
    t_train = time.perf_counter() - t0
    exact = ExactPredictor.from_files(weights, data, "coco", space, calib_batches=2, batch_size=8,
                                      val_images=ARGS.val_images, seed=ARGS.seed)
    enc = space.enumerate_encoded()
    archs = space.decode(enc)
    # scores are appended as they come, so a killed run resumes where it stopped
    partial = work / "scores.jsonl"
    done = {}
    if partial.exists():
        for line in partial.read_text().splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:  # a line cut by a kill
                continue
            done[item["arch"]] = item["ap"]
    t1 = time.perf_counter()
    with partial.open("a") as f:
        for a in tqdm(archs, desc="exact AP", unit="arch"):
            key = a.to_json()
            if key not in done:
                done[key] = exact.evaluate_arch(a)["metrics"]["AP"]
                f.write(json.dumps({"arch": key, "ap": done[key]}) + "\n")
                f.flush()
    t_eval = time.perf_counter() - t1
    ap = np.asarray([done[a.to_json()] for a in archs], dtype=np.float64)
    write_json_atomic(ARGS.out, {
        "format": "litepose-nas-exact-landscape/1",
        "space_definition": space.to_dict(),
        "encoded": enc.tolist(),
        "ap": ap.tolist(),
        "provenance": {"what": exact.describe(), "images": ARGS.images, "supernet_steps": steps,
                       "train_seconds": round(t_train, 1), "eval_seconds": round(t_eval, 1),
                       "threads": ARGS.threads, "seed": ARGS.seed, "date": time.strftime("%Y-%m-%d"),
                       "load_avg": list(os.getloadavg())},
    }, indent=None)
    print(f"{len(ap)} architectures, AP {ap.min():.4f} .. {ap.max():.4f} ({len(np.unique(ap))} distinct); "
          f"train {t_train:.0f} s, eval {t_eval:.0f} s -> {ARGS.out}")


if __name__ == "__main__":
    sys.exit(main())
