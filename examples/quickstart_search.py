"""Quickstart: search the original Lite Pose space for this CPU with the shipped predictor and table.

    python examples/quickstart_search.py --out runs/quickstart            # 40 x 80 evolution
    python examples/quickstart_search.py --out runs/quickstart --fast     # a few seconds

Same as ``litepose-nas search --space litepose --device x86-cpu-ort-2t --budgets ...``: the
shipped accuracy predictor (fitted by ``litepose-nas demo`` on synthetic data, at a proxy
resolution: see docs/demo.md) ranks architectures; the shipped latency table of this machine kind
(onnxruntime, 2 threads) prices them; evolution searches under three budgets.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/quickstart")
    p.add_argument("--table", default="x86-cpu-ort-2t", help="latency table (shipped name or CSV path)")
    p.add_argument("--fast", action="store_true", help="small population and few generations")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from litepose_nas import SearchSpace
    from litepose_nas.latency import load_table
    from litepose_nas.predictors import default_predictor
    from litepose_nas.search import SearchBudget, latency_constraint, macs_proxy_objective, predictor_objective, search

    space = SearchSpace.from_yaml("litepose")
    table = load_table(args.table, space)
    predictor = default_predictor(space)
    if predictor is None:  # no predictor shipped: rank by MACs, a labelled proxy
        print("no shipped predictor for 'litepose': ranking by MACs (proxy)")
        objective = macs_proxy_objective(space)
    else:
        print(f"predictor: {predictor.describe()}")
        objective = predictor_objective(predictor, space)

    # three budgets spread over the space's latency range on this table
    ms = table.predict(space.sample_encoded(np.random.default_rng(args.seed), 5000), space=space)
    budgets = [round(float(q), 1) for q in np.quantile(ms, [0.25, 0.5, 0.75])]
    budget = SearchBudget(population=12, generations=5) if args.fast else SearchBudget()
    result = search(space, objective, latency_constraint(table, space, budgets[-1]), budget, args.seed,
                    algo="evolution", limits=budgets, progress=not args.fast)
    paths = result.save(Path(args.out))
    for choice in result.best:
        if choice.arch is None:
            print(f"{choice.limit:7.1f} ms: nothing found")
            continue
        print(f"{choice.limit:7.1f} ms: {choice.cost:6.1f} ms, score {choice.score:.4f}, {choice.arch.describe()}")
    print(f"wrote {', '.join(str(v) for v in paths.values())}")
    return {"budgets": budgets, "paths": paths, "result": result}


if __name__ == "__main__":
    main()
