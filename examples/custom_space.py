"""A custom search space in code: build its supernet, profile a latency table, search it.

    python examples/custom_space.py --out runs/custom --quick
    python examples/custom_space.py --out runs/custom --predictor predictors/mine   # a fitted predictor

Uses the same objects as the CLI: ``SearchSpace.create``, ``SuperLitePose``, the latency
profiler, ``latency_constraint`` and ``search``. Without ``--predictor`` the search ranks by
MACs (the labelled ``macs-proxy`` objective): to predict AP, train the supernet
(``litepose-nas train-supernet``), collect evaluations (``litepose-nas predictor collect``) and
fit a predictor (``litepose-nas predictor fit``) for this space first.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def custom_space():
    from litepose_nas import SearchSpace

    # other resolutions, widths, depths, kernels and expansions than the shipped spaces
    return SearchSpace.create(
        name="custom-small",
        description="small inputs, kernels {3,5}, expansions {3,6}, elastic depth",
        resolutions=[160, 192],
        stem_widths=[16],
        stages=[
            {"stride": 2, "widths": [16], "depths": [1, 2], "kernels": [3, 5], "expansions": [3, 6]},
            {"stride": 2, "widths": [32, 24], "depths": [1, 2], "kernels": [3, 5], "expansions": [3, 6]},
            {"stride": 2, "widths": [48, 32], "depths": [2, 3], "kernels": [3, 5], "expansions": [3, 6]},
            {"stride": 1, "widths": [64], "depths": [2], "kernels": [3, 5], "expansions": [3, 6]},
        ],
        head_widths=[[32, 16], [16], [16, 8]],
        stem_mid_channels=16,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/custom-space")
    p.add_argument("--quick", action="store_true", help="fast (noisier) timing: a first look, a minute or so")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--predictor", default=None, help="a predictor fitted for this space (else: MACs proxy)")
    p.add_argument("--budgets-ms", default=None, help="latency budgets, e.g. 5,8,12 (default: spread over the range)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import torch

    from litepose_nas.cost import macs
    from litepose_nas.latency.profiler import ProfileSettings, profile_space
    from litepose_nas.latency.runners import TimingPolicy
    from litepose_nas.search import SearchBudget, latency_constraint, macs_proxy_objective, predictor_objective, search
    from litepose_nas.supernet import SuperLitePose

    # 1. the space
    space = custom_space()
    (out / "space.yaml").write_text(space.to_yaml())
    print(f"space '{space.name}': {space.size():,} architectures, {space.num_dimensions} encoded dimensions")

    # 2. its supernet: every subnet is a slice of it
    supernet = SuperLitePose(space, num_joints=17).eval()
    n_params = sum(p.numel() for p in supernet.parameters())
    x = torch.zeros(1, 3, space.smallest().img_size, space.smallest().img_size)
    with torch.no_grad():
        outs = supernet(x, space.smallest())
    print(f"supernet: {n_params / 1e6:.2f} M parameters; smallest subnet outputs {[tuple(o.shape) for o in outs]}")

    # 3. a latency table for this space on this machine (every layer; --quick: fewer repeats)
    settings = ProfileSettings(device_name="this-machine", threads=args.threads, runtime="onnxruntime",
                               speed_guard=not args.quick, passes=1 if args.quick else 2)
    if args.quick:
        settings.policy = TimingPolicy(warmup=2, min_repeats=3, max_repeats=10, budget_s=0.05, max_wait_s=5.0)
        settings.net_policy = TimingPolicy(warmup=1, min_repeats=3, max_repeats=10, budget_s=0.3, max_wait_s=5.0)
        settings.calibration_nets = 4
    # --quick keeps samples taken while other processes ran: faster on a busy machine, noisier
    table = profile_space(space, out / "latency.csv", settings, progress=True, detect_contention=not args.quick)
    print(f"latency table: {len(table)} layers -> {out / 'latency.csv'}")

    # 4. objective: a fitted predictor for this space, or the labelled MACs proxy
    if args.predictor:
        from litepose_nas.predictors import load_predictor

        objective = predictor_objective(load_predictor(args.predictor, space), space)
    else:
        objective = macs_proxy_objective(space)
        print("no --predictor: ranking by MACs (proxy objective, not an accuracy prediction)")

    # 5. search under latency budgets
    probe = space.sample_encoded(args.seed, 4000)
    ms = table.predict(probe, space=space)
    if args.budgets_ms:
        budgets = [float(b) for b in args.budgets_ms.split(",")]
    else:
        budgets = [round(float(q), 2) for q in np.quantile(ms, [0.1, 0.5, 0.9])]
    constraint = latency_constraint(table, space, max(budgets))
    result = search(space, objective, constraint, SearchBudget(population=40, generations=30), seed=args.seed,
                    algo="evolution", limits=budgets)
    paths = result.save(out)
    for b in result.best:
        gm = macs(b.arch, convention="paper") / 1e9
        print(f"  <= {b.limit:6.2f} ms: score {b.score:.4f}  latency {b.cost:.2f} ms  {gm:.3f} GMACs  {b.arch.describe()}")
    print("wrote", ", ".join(str(p) for p in paths.values()))


if __name__ == "__main__":
    main()
