"""Search quality and speed of every searcher on several accuracy landscapes (issue 19).

Landscapes of the original space (245,760 architectures, scored exhaustively for the truth),
latency budgets on ``--device`` (tight / middle / loose):

- ``smooth``: an MLP fitted on a smooth synthetic AP (a function of MACs and resolution): the
  best subnet sits on the budget's boundary (the landscape ``bench_search.py`` used);
- ``shipped``: the predictor that ships (``predictors/synthetic-litepose``, a GBDT);
- ``peaked-<model>``: predictors of each model type (mlp, gbdt, ridge, gp) fitted on
  *non-monotone* synthetic data (AP peaks at mid-size, prefers 384 px, interacts stage widths):
  under a loose budget the best subnet lies well inside it;
- ``exact-tiny``: a 384-architecture space scored by exact supernet evaluation (extract, BN
  recalibration, AP on a tiny validation set; ``build_exact_landscape.py`` computed and cached
  it in ``benchmarks/data/tiny-exact-scores.json``) under MACs budgets, with a search budget
  scaled to the space (population 10 x 10 generations).

Searchers (``--searchers``): ``evolution`` (the default), ``evolution-fixed`` (the previous fixed
scheme), ``evolution-2x`` (the default with twice its generations: what more evaluations buy),
``evolution-half`` (half of them: the original search's 40 generations), ``random`` and
``optuna`` (TPE).

Reported per landscape, searcher and budget: optimum hits (regret <= 1e-6: ties count), mean
and max regret over the seeds; end-to-end evaluations per second per searcher (wall and CPU);
the hypervolume of the fronts relative to the exhaustive front; on ``litepose-elastic``
(~8.9e37 architectures), the gap of each searcher at equal evaluations to the best found by an
evolution run ``--long-factor`` (100) times longer than the default (``--elastic-searchers``).

    python benchmarks/search_landscapes.py [--threads 1] [--seeds 10] [--optuna-seeds 2] [--quick] [--json OUT]

The shipped predictor is loaded at run time; each landscape's exhaustive optimum and front are
cached in ``benchmarks/.cache/`` under the SHA-256 of what defines the scores (the predictor's
files, or the fitting recipe; the latency table; the limits), so a refit predictor is
re-scored exhaustively on the next run.

The quality runs look the scores up in the cached exhaustive table (the predictor's own outputs:
the same hits, several times faster); ``--speed-seeds`` (3) more runs per searcher are timed end to
end with the predictor itself (``--no-lookup``: every run uses the predictor).

The machine's load (``os.getloadavg``) is recorded with the figures: wall-clock speeds are only
comparable at equal load; CPU seconds are less sensitive to it.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--optuna-seeds", type=int, default=2, help="Optuna TPE takes ~1 min per seed and landscape")
    p.add_argument("--fixed-seeds", type=int, default=None, help="seeds of evolution-fixed [default: --seeds]")
    p.add_argument("--device", default="raspberry-pi-4")
    p.add_argument("--budgets", default="80,120,250,400", help="latency budgets (ms) on --device, tightest first")
    p.add_argument("--landscapes", default=None, help="comma-separated subset (default: all)")
    p.add_argument("--searchers", default="evolution,evolution-fixed,random,optuna")
    p.add_argument("--long-factor", type=int, default=100, help="elastic space: reference run this many times longer")
    p.add_argument("--elastic-seeds", type=int, default=5)
    p.add_argument("--elastic-landscapes", default="smooth,peaked-mlp,peaked-gbdt,peaked-ridge")
    p.add_argument("--elastic-searchers", default="evolution,evolution-half,random,optuna")
    p.add_argument("--skip-elastic", action="store_true")
    p.add_argument("--skip-hypervolume", action="store_true")
    p.add_argument("--no-lookup", dest="lookup", action="store_false",
                   help="score the quality runs with each landscape's objective instead of looking the scores up "
                        "in its exhaustive table (the same scores, up to float32 batching; 2-5x slower)")
    p.add_argument("--speed-seeds", type=int, default=3,
                   help="with the lookup: seeds timed end to end with the landscape's own objective (1 for optuna)")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 seeds, 1 optuna seed, short reference run")
    p.add_argument("--json", dest="json_out", default=None)
    return p.parse_args()


ARGS = parse()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

from litepose_nas import SearchSpace  # noqa: E402
from litepose_nas.cost import macs  # noqa: E402
from synthetic_ap import peaked_ap, smooth_ap  # noqa: E402  (benchmarks/synthetic_ap.py)

from litepose_nas.search import (  # noqa: E402
    Objective, SearchBudget, hypervolume_2d, latency_constraint, macs_constraint, predictor_objective, search,
)

HIT_TOL = 1e-6  # the same architecture scores a few float32 ulps apart in another batch; ties count
SEARCHERS = {
    "evolution": ("evolution", {}),
    "evolution-fixed": ("evolution", {"adaptive": False}),  # the previous default: every child grown
    # the default with twice its generations (--generations 160 on the CLI): what more evaluations buy
    "evolution-2x": ("evolution", {"generations_factor": 2}),
    # half the default's generations: the original search's 40 (the default before the sixth session)
    "evolution-half": ("evolution", {"generations_factor": 0.5}),
    "random": ("random", {}),
    "optuna": ("optuna", {}),
}


@dataclass
class Landscape:
    name: str
    space: SearchSpace
    objective: Objective
    constraint: object  # Constraint with the loosest limit
    limits: list[float]
    budget: dict  # SearchBudget fields for this space
    note: str
    source: list  # what defines the scores (files, recipe): the exhaustive optimum is cached on its hash


# ---------------------------------------------------------------------- landscapes
def content_key(ls: "Landscape") -> str:
    """SHA-256 of everything the exhaustive optimum depends on: the files behind the scores
    (a refit predictor changes it), the recipe of a fitted landscape, the constraint and limits."""
    import hashlib
    import json

    h = hashlib.sha256()
    for item in ls.source:
        path = Path(item)
        files = sorted(path.rglob("*")) if path.is_dir() else [path] if path.is_file() else []
        for f in files:
            if f.is_file():
                h.update(f.name.encode() + f.read_bytes())
        if not files:
            h.update(str(item).encode())
    h.update(json.dumps([ls.space.name, ls.space.size(), ls.constraint.describe(), ls.limits], sort_keys=True,
                        default=str).encode())
    return h.hexdigest()


def exhaustive_truth(ls: "Landscape") -> dict:
    """Optimum per limit and the exhaustive front, cached in ``benchmarks/.cache`` on the content key."""
    import json

    from litepose_nas.io import write_json_atomic

    key = content_key(ls)[:16]
    path = HERE / ".cache" / f"optimum-{ls.name}-{key}.json"
    table = HERE / ".cache" / f"scores-{ls.name}-{key}.npy"  # every architecture's score, enumeration order
    if path.exists() and (table.exists() or not ARGS.lookup):
        truth = {**json.loads(path.read_text()), "cached": str(path.relative_to(HERE.parent))}
        return {**truth, "scores": np.load(table) if table.exists() else None}
    t = time.perf_counter()
    ex = search(ls.space, ls.objective, ls.constraint, algo="exhaustive", limits=ls.limits)
    if not np.array_equal(ex.evaluated_encoded, ls.space.enumerate_encoded()):
        raise RuntimeError("exhaustive search did not score the space in enumeration order")
    truth = {"optimum": {str(b.limit): b.score for b in ex.best}, "optimum_cost": {str(b.limit): b.cost for b in ex.best},
             "front_scores": ex.front_scores.tolist(), "front_costs": ex.front_costs.tolist(),
             "exhaustive_seconds": time.perf_counter() - t}
    path.parent.mkdir(exist_ok=True)
    write_json_atomic(path, truth)
    tmp = table.with_suffix(".tmp.npy")
    np.save(tmp, np.asarray(ex.evaluated_scores, dtype=np.float64))
    tmp.replace(table)
    return {**truth, "scores": np.load(table)}


def fitted(space, model, target, n, seed=0):
    from litepose_nas.predictors import Predictor

    enc = space.sample_encoded(seed, n)
    hp = {"hidden": [128, 128], "max_iter": 300} if model == "mlp" else {}
    return predictor_objective(Predictor(space, model, **hp).fit(enc, target(space, enc, seed)), space)


def table_objective(space, enc, values, name, source="benchmarks/data/tiny-exact-scores.json", kind="exact"):
    """An objective that looks scores up by architecture (cached exact evaluations, or a
    landscape's exhaustive scores: the same scores as its objective, without the predictor)."""
    weights = np.random.default_rng(0).integers(1, 2**62, size=space.num_dimensions, dtype=np.int64)

    def key(rows):
        with np.errstate(over="ignore"):
            return (np.asarray(rows, dtype=np.int64) + 2) @ weights

    k = key(enc)
    order = np.argsort(k)
    k_sorted, v_sorted = k[order], np.asarray(values, dtype=np.float64)[order]

    def fn(rows):
        q = key(rows)
        i = np.searchsorted(k_sorted, q)
        if not np.all(k_sorted[np.minimum(i, len(k_sorted) - 1)] == q):
            raise KeyError("architecture not in the cached exact landscape")
        return v_sorted[i]

    return Objective(name, fn, "exact AP" if kind == "exact" else "predicted AP", kind, {"source": source})


def landscapes(wanted: set[str] | None) -> list[Landscape]:
    from litepose_nas.latency import load_table
    from litepose_nas.predictors import default_predictor

    space = SearchSpace.from_yaml("litepose")
    limits = [float(x) for x in ARGS.budgets.split(",")]
    table = load_table(ARGS.device)
    lat = latency_constraint(table, space, max(limits))
    table_src = str(table.path or ARGS.device)
    out = []

    def recipe(model, n):  # a fitted landscape is defined by its target code, model, rows and libraries
        import sklearn

        return [str(HERE / "synthetic_ap.py"), f"{model} {n} rows seed 0", f"sklearn {sklearn.__version__}",
                f"numpy {np.__version__}", table_src]

    def want(name):
        return wanted is None or name in wanted

    if want("smooth"):
        out.append(Landscape("smooth", space, fitted(space, "mlp", smooth_ap, 1500), lat, limits, {},
                             "mlp on smooth synthetic AP (monotone in size)", recipe("mlp", 1500)))
    if want("shipped"):  # read at run time: a refit predictor is measured as it is now
        pred = default_predictor(space)
        out.append(Landscape("shipped", space, predictor_objective(pred, space), lat, limits, {},
                             f"{Path(str(pred.source)).name} ({pred.kind})", [str(pred.source), table_src]))
    for model in ("mlp", "gbdt", "ridge", "gp"):
        if want(f"peaked-{model}"):
            out.append(Landscape(f"peaked-{model}", space, fitted(space, model, peaked_ap, 800), lat, limits, {},
                                 f"{model} on non-monotone synthetic AP", recipe(model, 800)))
    cache = HERE / "data" / "tiny-exact-scores.json"
    if want("exact-tiny") and cache.exists():
        import json

        data = json.loads(cache.read_text())
        tiny = SearchSpace.from_dict(data["space_definition"], source=str(cache))
        enc = np.asarray(data["encoded"], dtype=np.int64)
        g = macs(enc, convention="paper", space=tiny) / 1e9
        t_limits = [float(f"{q:.4g}") for q in np.quantile(g, [0.25, 0.5, 0.9])]
        out.append(Landscape("exact-tiny", tiny, table_objective(tiny, enc, data["ap"], "exact AP (tiny supernet)"),
                             macs_constraint(tiny, max(t_limits)), t_limits, {"population": 10, "generations": 10},
                             f"{len(enc)} archs, exact supernet AP; MACs budgets (G)", [str(cache)]))
    elif want("exact-tiny"):
        print(f"skipping exact-tiny: {cache} missing (run benchmarks/build_exact_landscape.py)")
    return out


# ---------------------------------------------------------------------- measurements
def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def timed_search(ls: Landscape, objective: Objective, budget: SearchBudget, algo: str, seed: int):
    t, c = time.perf_counter(), time.process_time()
    r = search(ls.space, objective, ls.constraint, budget, seed=seed, algo=algo, limits=ls.limits)
    return r, time.perf_counter() - t, time.process_time() - c


def searcher_budget(extra: dict, base: dict) -> SearchBudget:
    """The budget of a searcher (its ``SEARCHERS`` entry) on a landscape whose budget is ``base``."""
    settings = {**base, **extra}
    factor = settings.pop("generations_factor", 1)
    settings["generations"] = int(factor * settings.get("generations", SearchBudget().generations))
    return SearchBudget(**settings)


def quality(ls: Landscape, optimum: dict[float, float], lookup: Objective | None) -> dict:
    """Hits and regrets over the seeds; with ``lookup`` (the landscape's exhaustive scores) the
    quality runs look their scores up and ``--speed-seeds`` more runs time the searcher end to end
    with the landscape's own objective (the predictor), so the speed figures stay end to end."""
    res = {}
    for name in ARGS.searchers.split(","):
        algo, extra = SEARCHERS[name]
        n_seeds = {"optuna": ARGS.optuna_seeds, "evolution-fixed": ARGS.fixed_seeds}.get(name) or ARGS.seeds
        n_seeds = ARGS.optuna_seeds if algo == "optuna" else n_seeds
        if n_seeds <= 0:
            continue
        budget = searcher_budget(extra, ls.budget)
        regrets = {lim: [] for lim in ls.limits}
        runs = []
        for seed in range(n_seeds):
            r, wall, cpu = timed_search(ls, lookup or ls.objective, budget, algo, seed)
            runs.append((r.evaluations, wall, cpu))
            for b in r.best:
                regrets[b.limit].append(max(optimum[b.limit] - b.score, 0.0))
        timed_with = "lookup" if lookup is not None else "objective"
        n_speed = min(ARGS.speed_seeds, 1 if algo == "optuna" else n_seeds)
        if lookup is not None and n_speed > 0:  # time the real thing
            runs, timed_with = [], "objective"
            for seed in range(n_speed):
                r, wall, cpu = timed_search(ls, ls.objective, budget, algo, seed)
                runs.append((r.evaluations, wall, cpu))
        evals, wall, cpu = (float(np.sum(x)) for x in zip(*runs))
        n_timed = len(runs)
        res[name] = {
            "seeds": n_seeds, "timed_seeds": n_timed, "timed_with": timed_with,
            "evaluations_per_search": evals / n_timed, "seconds_per_search": wall / n_timed,
            "cpu_seconds_per_search": cpu / n_timed, "evaluations_per_s": evals / wall,
            "evaluations_per_cpu_s": evals / cpu, "load": load(),
            "per_budget": {str(lim): {"hits": int(sum(x <= HIT_TOL for x in v)), "mean_regret": float(np.mean(v)),
                                      "max_regret": float(np.max(v))} for lim, v in regrets.items()},
        }
        q = res[name]
        print(f"  {ls.name:12s} {name:16s} " + "  ".join(
            f"{lim:g}: {v['hits']}/{n_seeds} {v['mean_regret']:.4f}/{v['max_regret']:.4f}" for lim, v in
            zip(ls.limits, q["per_budget"].values()))
            + f"   {q['seconds_per_search']:.2f} s/search ({q['cpu_seconds_per_search']:.2f} s CPU,"
              f" {q['evaluations_per_cpu_s']:,.0f} evals/CPU s; {n_timed} timed)", flush=True)
    return res


def hypervolumes(ls: Landscape, front_scores: np.ndarray, front_costs: np.ndarray, objective: Objective) -> dict:
    cap = max(ls.limits)
    ref = (float(front_scores.min()), cap)
    hv_ex = hypervolume_2d(front_scores, front_costs, *ref)
    n = SearchBudget(**ls.budget).n_evaluations
    runs = {"optuna NSGA-II": dict(algo="optuna", multi_objective=True, budget=SearchBudget(**ls.budget, evaluations=n)),
            "evolution (union of budgets)": dict(algo="evolution", budget=SearchBudget(**ls.budget)),
            "random": dict(algo="random", budget=SearchBudget(**ls.budget))}
    out = {}
    for name, kw in runs.items():
        r = search(ls.space, objective, ls.constraint, seed=0, limits=ls.limits, **kw)
        out[name] = {"ratio": hypervolume_2d(r.front_scores, r.front_costs, *ref) / hv_ex, "evaluations": r.evaluations}
    return {"reference": {"score": ref[0], "cost": cap}, "runs": out}


def elastic(long_factor: int) -> dict:
    space = SearchSpace.from_yaml("litepose-elastic")
    limits = [2.0, 4.0]
    con = macs_constraint(space, max(limits))
    names = ARGS.elastic_landscapes.split(",")
    objs = {n: fitted(space, "mlp", smooth_ap, 1500) if n == "smooth" else fitted(space, n.split("-")[1], peaked_ap, 800)
            for n in names}
    out = {}
    for name, obj in objs.items():
        t = time.perf_counter()
        long = search(space, obj, con, SearchBudget(generations=SearchBudget().generations * long_factor), seed=12345,
                      limits=limits)
        ref = {b.limit: b.score for b in long.best}
        t_long = time.perf_counter() - t
        row = {"reference_evaluations": long.evaluations, "reference_seconds": t_long, "searchers": {}}
        for s_name in ARGS.elastic_searchers.split(","):
            algo, extra = SEARCHERS[s_name]
            n_seeds = min(ARGS.optuna_seeds, 1) if algo == "optuna" else ARGS.elastic_seeds
            if n_seeds <= 0:
                continue
            found = {lim: [] for lim in limits}
            for seed in range(n_seeds):
                r = search(space, obj, con, searcher_budget(extra, {}), seed=seed, algo=algo, limits=limits)
                for b in r.best:
                    found[b.limit].append(b.score)
            for lim in limits:  # the reference is the best anything found
                ref[lim] = max(ref[lim], max(found[lim]))
            row["searchers"][s_name] = {"seeds": n_seeds, "found": {str(k): v for k, v in found.items()}}
        for s in row["searchers"].values():
            s["mean_gap"] = {str(lim): float(ref[lim] - np.mean(s["found"][str(lim)])) for lim in limits}
            s["max_gap"] = {str(lim): float(ref[lim] - np.min(s["found"][str(lim)])) for lim in limits}
        row["reference"] = {str(k): v for k, v in ref.items()}
        out[name] = row
        print(f"  elastic {name:12s} reference ({long.evaluations} evals, {t_long:.0f} s) " + "  ".join(
            f"{s_name}: " + "/".join(f"{v:.4f}" for v in s["mean_gap"].values()) for s_name, s in row["searchers"].items()),
            flush=True)
    return {"constraint": "MACs (paper, G)", "limits": limits, "long_factor": long_factor, "landscapes": out}


def main() -> None:
    import torch

    torch.set_num_threads(ARGS.threads)
    if ARGS.quick:
        ARGS.seeds, ARGS.optuna_seeds, ARGS.long_factor, ARGS.elastic_seeds = 2, 1, 5, 2
    wanted = set(ARGS.landscapes.split(",")) if ARGS.landscapes else None
    out: dict = {"threads": ARGS.threads, "device_table": ARGS.device, "load_start": load(), "hit_tolerance": HIT_TOL,
                 "seeds": ARGS.seeds, "optuna_seeds": ARGS.optuna_seeds, "landscapes": {}}
    for ls in landscapes(wanted):
        truth = exhaustive_truth(ls)
        scores = truth.pop("scores", None)
        optimum = {lim: truth["optimum"][str(lim)] for lim in ls.limits}
        entry = {"note": ls.note, "space": ls.space.name, "size": ls.space.size(), "limits": ls.limits,
                 "unit": ls.constraint.unit, "budget": SearchBudget(**ls.budget).to_dict(), "content_key": content_key(ls),
                 **{k: v for k, v in truth.items() if not k.startswith("front")}}
        print(f"{ls.name}: {ls.note}; optimum " + ", ".join(
            f"{lim:g}: {optimum[lim]:.4f} at {truth['optimum_cost'][str(lim)]:.4g}" for lim in ls.limits)
            + (f" (cached: {truth['cached']})" if "cached" in truth else ""), flush=True)
        lookup = None
        if ARGS.lookup and scores is not None and ls.objective.kind != "exact":  # exact-tiny is a table already
            lookup = table_objective(ls.space, ls.space.enumerate_encoded(), scores, f"{ls.name} (exhaustive table)",
                                     truth.get("cached", "exhaustive scores"), ls.objective.kind)
        entry["lookup"] = lookup is not None
        entry["searchers"] = quality(ls, optimum, lookup)
        if not ARGS.skip_hypervolume:
            entry["hypervolume"] = hv = hypervolumes(ls, np.asarray(truth["front_scores"]), np.asarray(truth["front_costs"]),
                                                     lookup or ls.objective)
            print("  hypervolume ratio: " + ", ".join(f"{k} {v['ratio']:.4f}" for k, v in hv["runs"].items()), flush=True)
        out["landscapes"][ls.name] = entry
    if not ARGS.skip_elastic:
        out["elastic"] = elastic(ARGS.long_factor)
    out["load_end"] = load()
    print_tables(out)
    if ARGS.json_out:
        from litepose_nas.io import write_json_atomic

        write_json_atomic(ARGS.json_out, out)
        print(f"wrote {ARGS.json_out}")


def print_tables(out: dict) -> None:
    """Markdown tables (pasted into docs/search.md)."""
    for name, e in out["landscapes"].items():
        lims = list(next(iter(e["searchers"].values()))["per_budget"]) if e["searchers"] else []
        print(f"\n{name} ({e['unit']}; hits, mean / max regret)\n\n| searcher | " + " | ".join(lims)
              + " | CPU s / search | evals / CPU s |\n| --- |" + " --- |" * (len(lims) + 2))
        for s, q in e["searchers"].items():
            cells = " | ".join(f"{v['hits']}/{q['seeds']}, {v['mean_regret']:.4f} / {v['max_regret']:.4f}"
                               for v in q["per_budget"].values())
            print(f"| {s} | {cells} | {q['cpu_seconds_per_search']:.2f} | {q['evaluations_per_cpu_s']:,.0f} |")
        if "hypervolume" in e:
            print("\nhypervolume ratio: " + ", ".join(f"{k} {v['ratio']:.4f}" for k, v in e["hypervolume"]["runs"].items()))
    if "elastic" in out:
        print("\n| elastic landscape | searcher | mean gap " + " / ".join(f"{x:g} G" for x in out["elastic"]["limits"])
              + " | max gap |")
        print("| --- | --- | --- | --- |")
        for name, e in out["elastic"]["landscapes"].items():
            for s, q in e["searchers"].items():
                print(f"| {name} | {s} | " + " / ".join(f"{v:.4f}" for v in q["mean_gap"].values()) + " | "
                      + " / ".join(f"{v:.4f}" for v in q["max_gap"].values()) + " |")


if __name__ == "__main__":
    sys.exit(main())
