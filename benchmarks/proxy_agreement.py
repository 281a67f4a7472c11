"""Rank agreement of two evaluations of the same architectures (e.g. a proxy resolution vs the real one).

    # the same 20 stratified subnets, evaluated at img_size x 0.25 and at img_size
    litepose-nas predictor collect --supernet S --data D --archs 20 --resolution-scale 0.25 --out proxy.csv ...
    litepose-nas predictor collect --supernet S --data D --archs 20 --resolution-scale 1.0 --out real.csv ...
    python benchmarks/proxy_agreement.py proxy.csv real.csv --png docs/figures/proxy-agreement.png --json out.json

Joins the two ``evals.csv`` files on the architecture, prints both APs per architecture, the
Kendall tau (tau-b) with a percentile bootstrap 95 % interval over architectures, and Spearman rho.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rank_fidelity import kendall_with_bootstrap  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("first", help="evals.csv of the proxy")
    p.add_argument("second", help="evals.csv of the reference (e.g. the real img_size)")
    p.add_argument("--labels", default="proxy (img_size x 0.25),real img_size")
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--png")
    p.add_argument("--json", dest="json_out")
    args = p.parse_args(argv)
    from litepose_nas.io import write_json_atomic
    from litepose_nas.predictors import read_evals

    first, second = read_evals(args.first), read_evals(args.second)
    ref = {a.to_json(): (float(y), a) for a, y in zip(second.archs, second.targets)}
    pairs = [(float(y), ref[a.to_json()][0], a) for a, y in zip(first.archs, first.targets) if a.to_json() in ref]
    if len(pairs) < 3:
        raise SystemExit(f"only {len(pairs)} architectures in both files: nothing to compare")
    x = np.array([p_[0] for p_ in pairs])
    y = np.array([p_[1] for p_ in pairs])
    stats = kendall_with_bootstrap(x, y, args.bootstrap)
    names = args.labels.split(",")
    print(f"| img_size | widths | {names[0]} AP | {names[1]} AP |\n| ---: | --- | ---: | ---: |")
    for a_x, a_y, arch in sorted(pairs, key=lambda t: t[1]):
        print(f"| {arch.img_size} | {'/'.join(map(str, arch.widths))} | {a_x:.3f} | {a_y:.3f} |")
    lo, hi = stats["ci95"]
    print(f"\nKendall tau {stats['kendall_tau']:.3f} (bootstrap 95% CI {lo:.3f} .. {hi:.3f}), "
          f"Spearman {stats['spearman']:.3f}, n = {len(pairs)}")
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 4.5))
        sizes = np.array([t[2].img_size for t in pairs])
        sc = ax.scatter(x, y, c=sizes, cmap="plasma", s=35)
        fig.colorbar(sc, ax=ax, label="img_size")
        ax.set_xlabel(f"AP, {names[0]}")
        ax.set_ylabel(f"AP, {names[1]}")
        ax.set_title(f"Kendall tau {stats['kendall_tau']:.2f} (95% CI {lo:.2f}..{hi:.2f}), n={len(pairs)}",
                     fontsize=9)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        Path(args.png).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.png, dpi=110)
        plt.close(fig)
    if args.json_out:
        write_json_atomic(args.json_out, {"first": args.first, "second": args.second, "n": len(pairs), **stats,
                                          "rows": [{"arch": a.to_json(), "first_ap": fx, "second_ap": sy}
                                                   for fx, sy, a in pairs], "load_average": os.getloadavg()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
