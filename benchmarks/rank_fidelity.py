"""Weight-sharing rank fidelity: does the supernet rank subnets as training them alone would?

    # 1. train N subnets (spread over MACs) alone, each for the same number of steps (resumable)
    python benchmarks/rank_fidelity.py --out runs/rank --data runs/sn60/data --space litepose \\
        --subnets 10 --steps 300 --resolution 128
    # 2. once a supernet exists: their inherited AP (extracted + BN recalibrated), Kendall tau with a
    #    bootstrap interval, a scatter PNG and the JSON
    python benchmarks/rank_fidelity.py --out runs/rank --data runs/sn60/data --space litepose \\
        --subnets 10 --steps 300 --resolution 128 --supernet runs/sn60/supernet/supernet.pt \\
        --png docs/figures/rank-fidelity-easy.png --json runs/rank/result.json

The subnets are the first N of ``predictor collect``'s stratified list (the largest, the smallest,
then MACs quantiles), so they span the space. Each is trained with ``litepose-nas train`` (from
scratch, the default recipe, lr schedule laid over ``--steps``) and validated on the same held-out
images at ``--resolution``; the inherited AP is measured at the same resolution, so both sides see
the same input size and only the weights differ. Equal budget = equal optimiser steps, so the
figures do not depend on machine load (wall time is recorded, not used).

Resumable: a finished subnet (``standalone/<i>/result.json``) is skipped, an interrupted one resumes
from its checkpoint; the inherited evaluations are cached in ``inherited.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learning_run import _cli, _run  # noqa: E402  (benchmark scripts share their CLI runner)


def kendall_with_bootstrap(x: np.ndarray, y: np.ndarray, resamples: int, seed: int = 0) -> dict:
    """Kendall tau (tau-b) of paired values, with a percentile bootstrap 95 % interval over pairs."""
    from scipy.stats import kendalltau, spearmanr

    tau = float(kendalltau(x, y).statistic)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(resamples):
        idx = rng.integers(0, len(x), len(x))
        if len(set(idx.tolist())) < 3:
            continue
        value = kendalltau(x[idx], y[idx]).statistic
        if np.isfinite(value):
            boot.append(value)
    lo, hi = (np.percentile(boot, [2.5, 97.5]).tolist() if boot else [float("nan")] * 2)
    return {"kendall_tau": tau, "ci95": [float(lo), float(hi)], "resamples": len(boot),
            "spearman": float(spearmanr(x, y).statistic)}


def _fixed_size_predictor(size: int, *args, **kwargs):
    """An ExactPredictor that evaluates every subnet at one input size (the stand-alone runs' size)."""
    from litepose_nas.predictors.exact import ExactPredictor

    predictor = ExactPredictor.from_files(*args, **kwargs)
    predictor.input_size = lambda arch: size  # type: ignore[method-assign]
    return predictor


def _plot(rows: list[dict], stats: dict, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    x = [r["inherited_ap"] for r in rows]
    y = [r["standalone_ap"] for r in rows]
    sc = ax.scatter(x, y, c=[r["gmacs"] for r in rows], cmap="viridis", s=40)
    fig.colorbar(sc, ax=ax, label="GMACs (at the arch's img_size)")
    for r in rows:
        ax.annotate(str(r["index"]), (r["inherited_ap"], r["standalone_ap"]), fontsize=7,
                    xytext=(3, 3), textcoords="offset points")
    lo, hi = stats["ci95"]
    ax.set_xlabel("AP inherited from the supernet (BN recalibrated)")
    ax.set_ylabel("AP trained alone (equal steps)")
    ax.set_title(f"{title}\nKendall tau {stats['kendall_tau']:.2f} (95% CI {lo:.2f}..{hi:.2f}), n={len(rows)}",
                 fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--data", required=True, help="dataset folder (COCO layout), e.g. from learning_run.py")
    p.add_argument("--space", default="litepose")
    p.add_argument("--subnets", type=int, default=10)
    p.add_argument("--steps", type=int, default=300, help="optimiser steps of each stand-alone run")
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=0.004)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--val-images", type=int, default=80)
    p.add_argument("--calib-batches", type=int, default=10)
    p.add_argument("--supernet", help="trained supernet checkpoint: adds the inherited AP and the statistics")
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--png")
    p.add_argument("--json", dest="json_out")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from litepose_nas.cost import macs
    from litepose_nas.io import write_json_atomic
    from litepose_nas.predictors.collect import stratified_sample
    from litepose_nas.space import Arch, SearchSpace

    space = SearchSpace.from_yaml(args.space)
    archs = stratified_sample(space, args.subnets, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    rows = []
    for i, arch in enumerate(archs):
        run_dir = out / "standalone" / str(i)
        result_path = run_dir / "result.json"
        if not result_path.is_file():
            run_dir.mkdir(parents=True, exist_ok=True)
            arch_path = run_dir / "arch.json"
            arch.to_json(arch_path)
            train_dir = run_dir / "train"
            resume = ["--resume"] if (train_dir / "checkpoint.pt").is_file() else []
            if train_dir.exists() and not resume:
                shutil.rmtree(train_dir)
            t0 = time.time()
            proc = _run(_cli("train", "--arch", arch_path, "--data", args.data, "--dataset", "coco",
                             "--resolutions", args.resolution, "--batch-size", args.batch_size, "--lr", args.lr,
                             "--threads", args.threads, "--workers", args.workers, "--val-images", args.val_images,
                             "--steps", args.steps, "--checkpoint-every", "50", "--val-every", "0", "--quiet",
                             "--json", "--out", train_dir, "--seed", args.seed, *resume), env, quiet=True)
            trained = json.loads(proc.stdout)
            write_json_atomic(result_path, {"arch": json.loads(arch.to_json()), "steps": trained["steps"],
                                            "wall_s": round(time.time() - t0, 1),
                                            "metrics": trained["validation"]["model"]})
        done = json.loads(result_path.read_text())
        rows.append({"index": i, "arch": arch.to_json(), "gmacs": float(macs(arch, space=space)) / 1e9,
                     "standalone_ap": float(done["metrics"]["AP"]), "standalone_steps": done["steps"],
                     "standalone_wall_s": done["wall_s"]})
        print(f"[{i}] {rows[-1]['gmacs']:.2f} GMACs  stand-alone AP {rows[-1]['standalone_ap']:.3f} "
              f"({done['steps']} steps, {done['wall_s']:.0f} s)", flush=True)
    if not args.supernet:
        return 0

    cache_path = out / "inherited.json"
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    key = f"{Path(args.supernet).resolve()}@{os.path.getmtime(args.supernet):.0f}"
    if cache.get("supernet") != key:
        cache = {"supernet": key, "ap": {}}
    predictor = None
    for row in rows:
        if row["arch"] not in cache["ap"]:
            if predictor is None:
                predictor = _fixed_size_predictor(args.resolution, args.supernet, args.data, "coco", space,
                                       calib_batches=args.calib_batches, batch_size=args.batch_size,
                                       val_images=args.val_images, seed=args.seed)
            cache["ap"][row["arch"]] = float(predictor.predict(Arch.from_json(row["arch"])))
            write_json_atomic(cache_path, cache)
        row["inherited_ap"] = cache["ap"][row["arch"]]
    x = np.array([r["inherited_ap"] for r in rows])
    y = np.array([r["standalone_ap"] for r in rows])
    stats = kendall_with_bootstrap(x, y, args.bootstrap, args.seed)
    print("\n| # | GMACs | inherited AP | stand-alone AP |\n| ---: | ---: | ---: | ---: |")
    for r in sorted(rows, key=lambda r: r["gmacs"]):
        print(f"| {r['index']} | {r['gmacs']:.2f} | {r['inherited_ap']:.3f} | {r['standalone_ap']:.3f} |")
    lo, hi = stats["ci95"]
    print(f"\nKendall tau {stats['kendall_tau']:.3f} (bootstrap 95% CI {lo:.3f} .. {hi:.3f}, "
          f"{stats['resamples']} resamples), Spearman {stats['spearman']:.3f}, n = {len(rows)}")
    if args.png:
        _plot(rows, stats, args.png, f"{args.space} @ {args.resolution} px, {args.steps} stand-alone steps")
    if args.json_out:
        write_json_atomic(args.json_out, {"space": args.space, "resolution": args.resolution, "steps": args.steps,
                                          "supernet": args.supernet, "data": args.data, "rows": rows, **stats,
                                          "load_average": os.getloadavg()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
