"""Search speed and quality.

Speed: candidates scored per second (latency table + predictor), wall time of the original
search budget (population 40, 40 generations) and of a 10x larger one, and the original
approach (build each candidate network and count its MACs with forward hooks) on the same
candidates, measured on a sample and extrapolated.

Quality (against ground truth): exhaustive scoring of the original space (245,760
architectures) under the predictor gives the true optimum per budget; each searcher's regret
over 10 seeds (``search_landscapes.py`` measures every searcher on several landscapes); hypervolume of multi-objective fronts relative to the exhaustive front; on the
elastic space, best predicted AP at equal budget per searcher.

The predictor is fitted on a SYNTHETIC (arch -> AP) table (a smooth function of MACs and
resolution plus noise): it exercises the search, it is not a model of real accuracy.

    python benchmarks/bench_search.py [--threads 1] [--seeds 10] [--quick] [--json OUT]
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--device", default="raspberry-pi-4")
    p.add_argument("--budgets", default="150,250,400", help="latency budgets (ms) on --device")
    p.add_argument("--loop-sample", type=int, default=20, help="candidates timed in the per-candidate loop")
    p.add_argument("--quick", action="store_true", help="fewer seeds and trials (smoke run)")
    p.add_argument("--json", dest="json_out", default=None)
    return p.parse_args()


ARGS = parse()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
from synthetic_ap import smooth_ap  # noqa: E402  (benchmarks/synthetic_ap.py)

from litepose_nas import SearchSpace  # noqa: E402
from litepose_nas.cost import macs  # noqa: E402
from litepose_nas.latency import load_table  # noqa: E402
from litepose_nas.predictors import Predictor  # noqa: E402
from litepose_nas.search import (  # noqa: E402
    SearchBudget, hypervolume_2d, latency_constraint, macs_constraint, predictor_objective, search,
)


def fit(space, n, seed=0):
    enc = space.sample_encoded(seed, n)
    return Predictor(space, "mlp", hidden=[256, 256, 256], max_iter=300).fit(enc, smooth_ap(space, enc, seed))


def table(rows, header):
    from litepose_nas.cli.common import format_table

    print(format_table(rows, header))
    print()


def count_macs_by_hooks(arch) -> int:
    """The original approach: build the network and count MACs of a forward pass with hooks."""
    import torch

    from litepose_nas.models import build_model

    model = build_model(arch, 17).eval()
    total = 0

    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, torch.nn.ConvTranspose2d):
            total += inp[0].numel() // inp[0].shape[0] * m.out_channels * m.kernel_size[0] * m.kernel_size[1] // m.groups
        elif isinstance(m, torch.nn.Conv2d):
            total += out.numel() // out.shape[0] * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    with torch.no_grad():
        model(torch.zeros(1, 3, arch.img_size, arch.img_size))
    for h in hooks:
        h.remove()
    return total


def main() -> None:
    import torch

    torch.set_num_threads(ARGS.threads)
    seeds = 3 if ARGS.quick else ARGS.seeds
    out: dict = {"threads": ARGS.threads, "device_table": ARGS.device, "predictor": "mlp 256x3 on SYNTHETIC AP data"}
    space = SearchSpace.from_yaml("litepose")
    t0 = time.perf_counter()
    pred = fit(space, 1500)
    out["predictor_fit_s"] = time.perf_counter() - t0
    objective = predictor_objective(pred, space)
    lat = latency_constraint(load_table(ARGS.device), space, 1e9)
    limits = [float(x) for x in ARGS.budgets.split(",")]

    # ------------------------------------------------------------------ scoring throughput
    enc = space.sample_encoded(0, 65536)
    lat.values(enc[:10])  # build the table's lookup once
    t = time.perf_counter()
    for _ in range(3):
        lat.values(enc)
    t_lat = (time.perf_counter() - t) / 3
    t = time.perf_counter()
    for _ in range(3):
        objective(enc)
    t_pred = (time.perf_counter() - t) / 3
    out["scoring"] = {"batch": len(enc), "latency_per_s": len(enc) / t_lat, "predictor_per_s": len(enc) / t_pred,
                      "candidates_per_s": len(enc) / (t_lat + t_pred)}
    print(f"scoring throughput (batch {len(enc)}, {ARGS.threads} thread(s))")
    table([[f"{out['scoring']['latency_per_s']:,.0f}", f"{out['scoring']['predictor_per_s']:,.0f}",
            f"{out['scoring']['candidates_per_s']:,.0f}"]], ["latency/s", "predictor/s", "candidates/s (both)"])

    # ------------------------------------------------------------------ wall time of whole searches
    con = lat.with_limit(limits[0])
    walls = {}
    for name, budget in (("original (P40 x G40)", SearchBudget(generations=40)),
                         ("default (P40 x G80)", SearchBudget()),
                         ("10x (P400 x G40)", SearchBudget(population=400, generations=40))):
        t = time.perf_counter()
        r = search(space, objective, con, budget, seed=0)
        walls[name] = {"seconds": time.perf_counter() - t, "evaluations": r.evaluations}
    # the original approach on the same candidates: build + count MACs per candidate
    r = search(space, objective, con, SearchBudget(), seed=0)
    sample = space.decode(r.evaluated_encoded[np.linspace(0, len(r.evaluated_encoded) - 1, ARGS.loop_sample).astype(int)])
    t = time.perf_counter()
    counted = [count_macs_by_hooks(a) for a in sample]
    per = (time.perf_counter() - t) / len(sample)
    assert counted == [int(m) for m in macs(sample, convention="exact")], "hook MACs differ from cost.macs"
    loop_total = per * walls["original (P40 x G40)"]["evaluations"]
    out["wall"] = walls
    out["per_candidate_loop"] = {"seconds_per_candidate": per, "sample": len(sample),
                                 "extrapolated_seconds_original_budget": loop_total,
                                 "ratio_vs_vectorized": loop_total / walls["original (P40 x G40)"]["seconds"]}
    print("search wall time (evolution, one budget)")
    table([[k, v["evaluations"], f"{v['seconds']:.3f}"] for k, v in walls.items()]
          + [["per-candidate build + MAC count (original approach)", walls["original (P40 x G40)"]["evaluations"],
              f"{loop_total:.1f} (extrapolated from {len(sample)})"]],
          ["budget", "evaluations", "seconds"])
    print(f"vectorized search is {out['per_candidate_loop']['ratio_vs_vectorized']:.0f}x faster than the per-candidate loop\n")

    # ------------------------------------------------------------------ quality vs exhaustive
    t = time.perf_counter()
    ex = search(space, objective, lat.with_limit(max(limits)), algo="exhaustive", limits=limits)
    out["exhaustive_seconds"] = time.perf_counter() - t
    optimum = {b.limit: b.score for b in ex.best}
    optimum_arch = {b.limit: b.encoded for b in ex.best}
    quality = {}
    algos = [("evolution", "evolution", SearchBudget(), seeds),
             ("evolution, previous fixed scheme (adaptive=False)", "evolution", SearchBudget(adaptive=False), seeds),
             ("evolution, original scheme (adaptive=False, grow=False)", "evolution",
              SearchBudget(adaptive=False, grow=False), seeds),
             ("random", "random", SearchBudget(), seeds), ("optuna", "optuna", SearchBudget(), 1 if ARGS.quick else 3)]
    for name, algo, budget, n_seeds in algos:
        regrets = {lim: [] for lim in limits}
        hits = {lim: 0 for lim in limits}
        t = time.perf_counter()
        for seed in range(n_seeds):
            r = search(space, objective, lat.with_limit(max(limits)), budget, seed=seed, algo=algo, limits=limits)
            for b in r.best:
                # the same architecture can score a few float32 ulps apart in another batch:
                # a hit is the optimum's architecture, the regret is clipped at 0
                hits[b.limit] += int(np.array_equal(b.encoded, optimum_arch[b.limit]))
                regrets[b.limit].append(max(optimum[b.limit] - b.score, 0.0))
        quality[name] = {"seeds": n_seeds, "seconds_per_run": (time.perf_counter() - t) / n_seeds, "per_budget": {
            str(lim): {"exact_hits": hits[lim], "mean_regret": float(np.mean(v)),
                       "max_regret": float(np.max(v))} for lim, v in regrets.items()}}
    out["regret"] = quality
    print(f"regret vs exhaustive optimum ({space.size():,} archs scored in {out['exhaustive_seconds']:.1f} s), "
          f"budget P40 x G40 per latency limit")
    rows = []
    for algo, q in quality.items():
        for lim, v in q["per_budget"].items():
            rows.append([algo, lim, f"{v['exact_hits']}/{q['seeds']}", f"{v['mean_regret']:.5f}", f"{v['max_regret']:.5f}",
                         f"{optimum[float(lim)]:.4f}"])
    table(rows, ["searcher", "budget ms", "exact optimum", "mean regret", "max regret", "optimum AP"])

    # ------------------------------------------------------------------ hypervolume of fronts
    cap = max(limits)
    ref = (float(ex.front_scores.min()), cap)
    hv_ex = hypervolume_2d(ex.front_scores, ex.front_costs, *ref)
    hv = {}
    mo_trials = 400 if ARGS.quick else 1600 * len(limits)
    runs = [("optuna NSGA-II", dict(algo="optuna", multi_objective=True, budget=SearchBudget(evaluations=mo_trials // len(limits)),
                                     limits=limits)),
            ("evolution (union of per-budget runs)", dict(algo="evolution", budget=SearchBudget(), limits=limits)),
            ("random", dict(algo="random", budget=SearchBudget(evaluations=mo_trials // len(limits)), limits=limits))]
    for name, kw in runs:
        t = time.perf_counter()
        r = search(space, objective, lat.with_limit(cap), seed=0, **kw)
        hv[name] = {"ratio": hypervolume_2d(r.front_scores, r.front_costs, *ref) / hv_ex, "evaluations": r.evaluations,
                    "seconds": time.perf_counter() - t}
    out["hypervolume"] = {"reference": {"score": ref[0], "cost_ms": ref[1]}, "runs": hv}
    print(f"hypervolume relative to the exhaustive front (reference: AP {ref[0]:.4f}, {cap:g} ms)")
    table([[k, v["evaluations"], f"{v['ratio']:.4f}", f"{v['seconds']:.1f}"] for k, v in hv.items()],
          ["searcher", "evaluations", "HV ratio", "seconds"])

    # ------------------------------------------------------------------ elastic space, equal budget
    elastic = SearchSpace.from_yaml("litepose-elastic")
    e_obj = predictor_objective(fit(elastic, 1500), elastic)
    e_con = macs_constraint(elastic, 4.0)
    e_res = {}
    for algo in ("evolution", "random", "optuna"):
        n_seeds = 1 if (ARGS.quick or algo == "optuna") else 3
        bests = [search(elastic, e_obj, e_con, SearchBudget(), seed=s, algo=algo).best[0].score for s in range(n_seeds)]
        e_res[algo] = {"seeds": n_seeds, "mean_best": float(np.mean(bests)), "bests": bests}
    out["elastic"] = {"constraint": "MACs <= 4.0 G", "budget": "P40 x G40 (1600 evaluations for random/optuna)",
                      "results": e_res}
    print("elastic space (MACs <= 4 G), best predicted AP at equal budget")
    table([[k, v["seeds"], f"{v['mean_best']:.4f}"] for k, v in e_res.items()], ["searcher", "seeds", "mean best AP"])

    if ARGS.json_out:
        from litepose_nas.io import write_json_atomic

        write_json_atomic(ARGS.json_out, out)
        print(f"wrote {ARGS.json_out}")


if __name__ == "__main__":
    sys.exit(main())
