"""Which deviations of our training recipe from the original's help? An ablation at equal budget.

    python benchmarks/recipe_ablation.py --out runs/recipe-ablation --steps 300 --seeds 0,1 \\
        --json runs/recipe-ablation/result.json

1. Generates the synthetic ``medium`` CrowdPose-layout set (``litepose-nas data synth``) unless
   present (CrowdPose layout, so the CrowdPose mask choice is exercised).
2. Trains the space's smallest architecture (``litepose-nas train``, Python API) once per variant
   and seed, all with the same steps, batch, lr schedule, input size and seed-given data order:
   ``default``, ``original``, and ``default`` with one field switched to the original's value
   (``integer-targets``, ``mask-padding``, ``no-crowdpose-masks``, ``original-zoom``,
   ``original-translation``, ``any-image``).
3. Reports pycocotools AP (CrowdPose protocol) on the held-out val images per variant: mean over
   seeds, the spread between seeds (the noise of the measurement) and the difference to ``default``.

Threads are pinned (``--threads``, default 1). Runs already finished in ``--out`` are reused.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from litepose_nas.data.recipe import DEFAULT, ORIGINAL


def variants() -> dict[str, dict]:
    """Variant name -> recipe dict: default, original, and default with one original choice each."""
    o = ORIGINAL
    one = {
        "integer-targets": dict(targets=o.targets),
        "mask-padding": dict(mask_padding=o.mask_padding),
        "no-crowdpose-masks": dict(mask_unlabelled_crowdpose=o.mask_unlabelled_crowdpose),
        "original-zoom": dict(augment=dict(scale_mode=o.augment.scale_mode)),
        "original-translation": dict(augment=dict(translate_mode=o.augment.translate_mode,
                                                  max_translate=o.augment.max_translate)),
        "any-image": dict(image_filter=o.image_filter),
    }
    out = {"default": DEFAULT.to_dict(), "original": ORIGINAL.to_dict()}
    for name, change in one.items():
        out[name] = DEFAULT.replace(name=name, **change).to_dict()
    return out


def _train(run_dir: Path, data: Path, arch: dict, recipe: dict, seed: int, args) -> dict:
    result_file = run_dir / "result.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    import shutil

    from litepose_nas.io import write_text_atomic
    from litepose_nas.train import Trainer, default_config

    if run_dir.exists():
        shutil.rmtree(run_dir)  # an unfinished run: start it again
    cfg = default_config("subnet", arch=arch, data=str(data), dataset="crowdpose", recipe=recipe, seed=seed,
                         resolutions=(args.resolution,), steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                         num_workers=0, val_images=args.val_images, checkpoint_every=args.steps, log_every=50)
    t0 = time.time()
    res = Trainer(cfg, run_dir, quiet=args.quiet, device="cpu").run()
    out = {"steps": res.step, "seconds": round(time.time() - t0, 1), **res.validation["model"]}
    write_text_atomic(result_file, json.dumps(out) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/recipe-ablation")
    p.add_argument("--images", type=int, default=600, help="synthetic images (10%% val, 10%% test)")
    p.add_argument("--space", default="litepose")
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=4e-3)
    p.add_argument("--val-images", type=int, default=60)
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--variants", default=",".join(variants()), help="comma-separated subset")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: tabulate the runs already in --out (each variant over the seeds it has)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", dest="json_out", default=None)
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    if not data.exists():
        from litepose_nas.data import generate_synthetic

        generate_synthetic(data, args.images, "crowdpose", "medium", seed=0, val_fraction=0.1)
    from litepose_nas.space import SearchSpace

    arch = SearchSpace.from_yaml(args.space).smallest().to_dict()
    table = variants()
    names = [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SystemExit(f"--variants: unknown {', '.join(unknown)} (allowed: {', '.join(table)})")
    seeds = [int(s) for s in args.seeds.split(",") if s]
    load_before = os.getloadavg()
    runs: dict[str, dict[int, dict]] = {}
    for name in names:
        for seed in seeds:
            run_dir = out / f"{name}-seed{seed}"
            if args.report_only and not (run_dir / "result.json").is_file():
                continue
            runs.setdefault(name, {})[seed] = r = _train(run_dir, data, arch, table[name], seed, args)
            print(f"{name:22s} seed {seed}: AP {r['AP']:.3f}  AP50 {r['AP50']:.3f}  ({r['seconds']} s)", flush=True)
    load_after = os.getloadavg()
    names = [n for n in names if n in runs]

    def mean_ap(name: str) -> float:
        return statistics.fmean(r["AP"] for r in runs[name].values())

    rows = []
    for name in names:
        aps = [r["AP"] for r in runs[name].values()]
        rows.append({"variant": name, "seeds": sorted(runs[name]), "AP": aps, "AP_mean": round(mean_ap(name), 4),
                     "seed_spread": round(max(aps) - min(aps), 4),
                     "AP50_mean": round(statistics.fmean(r["AP50"] for r in runs[name].values()), 4),
                     "delta_vs_default": round(mean_ap(name) - mean_ap("default"), 4) if "default" in runs else None})
    print(f"\n{'variant':22s} {'AP per seed':>20s} {'mean':>7s} {'spread':>7s} {'AP50':>7s} {'vs default':>10s}")
    for r in rows:
        per = " ".join(f"{a:.3f}" for a in r["AP"])
        delta = "" if r["delta_vs_default"] is None else f"{r['delta_vs_default']:+.3f}"
        print(f"{r['variant']:22s} {per:>20s} {r['AP_mean']:7.3f} {r['seed_spread']:7.3f} {r['AP50_mean']:7.3f} {delta:>10s}")
    report = {"steps": args.steps, "batch_size": args.batch_size, "resolution": args.resolution, "lr": args.lr,
              "images": args.images, "val_images": args.val_images, "seeds": seeds, "threads": args.threads,
              "load_average_before": load_before, "load_average_after": load_after, "rows": rows,
              "recipes": {n: table[n] for n in names}}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
