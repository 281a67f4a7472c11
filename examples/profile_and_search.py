"""Profile a new device and search for it.

    python examples/profile_and_search.py --device my-laptop --out runs/my-laptop          # whole space
    python examples/profile_and_search.py --device my-laptop --out runs/my-laptop --fast   # a subspace, < 1 min

1. Profile every layer the space can contain on *this* machine into a latency table
   (``litepose-nas profile`` does the same; run it on the target device, which needs only numpy,
   onnx and onnxruntime). ``--fast`` profiles a small subspace of the original space (one
   resolution, two widths per stage) with few repeats, so the table is complete for that subspace.
2. Search that space under three latency budgets on the new table with the shipped accuracy
   predictor (which scores any subspace of 'litepose'), and print the chosen architectures.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def subspace():
    """A small subspace of the original 'litepose' space (same widths, fewer choices)."""
    from litepose_nas import SearchSpace

    full = SearchSpace.from_yaml("litepose")
    d = full.to_dict()
    d["name"] = "litepose-sub"
    d["description"] = "subspace of litepose: 256 px, two widths per stage and head layer"
    d["resolutions"] = [256]
    d["stem"]["widths"] = d["stem"]["widths"][-1:]
    for st in d["stages"]:
        st["widths"] = st["widths"][-2:]
    d["head"]["widths"] = [w[-2:] for w in d["head"]["widths"]]
    return SearchSpace.from_dict(d, source="examples/profile_and_search.py subspace")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="this-machine", help="name of the new device (the table's name)")
    p.add_argument("--out", default="runs/profile-and-search")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--fast", action="store_true", help="a small subspace, few repeats, small search")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from litepose_nas import SearchSpace
    from litepose_nas.latency.profiler import ProfileSettings, profile_space
    from litepose_nas.latency.runners import TimingPolicy
    from litepose_nas.predictors import default_predictor
    from litepose_nas.search import SearchBudget, latency_constraint, macs_proxy_objective, predictor_objective, search

    space = subspace() if args.fast else SearchSpace.from_yaml("litepose")
    settings = ProfileSettings(device_name=args.device, threads=args.threads, speed_guard=not args.fast,
                               passes=1 if args.fast else 2)
    if args.fast:
        settings.policy = TimingPolicy(warmup=1, min_repeats=2, max_repeats=5, budget_s=0.02, max_wait_s=1.0)
        settings.net_policy = TimingPolicy(warmup=1, min_repeats=2, max_repeats=5, budget_s=0.1, max_wait_s=1.0)
        settings.calibration_nets = 2
    # --fast keeps samples taken while other processes ran: faster on a busy machine, noisier
    table = profile_space(space, out / f"{args.device}.csv", settings, progress=not args.fast,
                          detect_contention=not args.fast)
    corr = table.header["correction"]
    print(f"table {out / (args.device + '.csv')}: {len(table.median_ms)} layers, "
          f"correction scale {corr['scale']:.3f} offset {corr['offset_ms']:.2f} ms")

    predictor = default_predictor(space)
    objective = predictor_objective(predictor, space) if predictor is not None else macs_proxy_objective(space)
    ms = table.predict(space.sample_encoded(np.random.default_rng(args.seed), 2000), space=space)
    budgets = [round(float(q), 2) for q in np.quantile(ms, [0.25, 0.5, 0.75])]
    budget = SearchBudget(population=12, generations=5) if args.fast else SearchBudget()
    result = search(space, objective, latency_constraint(table, space, budgets[-1]), budget, args.seed,
                    algo="evolution", limits=budgets, progress=not args.fast)
    paths = result.save(out / "search")
    for choice in result.best:
        if choice.arch is not None:
            print(f"{choice.limit:7.2f} ms: {choice.cost:6.2f} ms predicted on {args.device}, "
                  f"score {choice.score:.4f}, {choice.arch.describe()}")
    return {"table": table, "budgets": budgets, "paths": paths, "result": result}


if __name__ == "__main__":
    main()
