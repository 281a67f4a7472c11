"""``litepose-nas search``: hardware-aware search under latency (or MACs) budgets."""
from __future__ import annotations

import sys

import click

from ..search.defaults import DEFAULT_DEVICE
from ..search.problem import DEFAULT_GENERATIONS, DEFAULT_POPULATION
from .common import budget_range, echo_json, format_table, json_option, output_path, quiet_option, space_option


def _parse_budgets(text: str | None) -> list[float] | None:
    from ..errors import InputError

    if text is None:
        return None
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--budgets {text!r}: expected comma-separated numbers, e.g. 50,100,200") from None
    if not values or any(not (0 < v <= 1e9) for v in values):
        raise InputError(f"--budgets {text!r}: expected finite positive numbers up to 1e9, e.g. 50,100,200")
    return sorted(set(values))


@click.command()
@click.option("--device", default=None, help=f"Latency table (shipped or profiled) for the budget [default: {DEFAULT_DEVICE}].")
@click.option("--max-latency-ms", type=budget_range, default=None, help="Latency budget in ms on --device.")
@click.option("--budgets", default=None, help="Several budgets, comma-separated (ms, or G MACs without a device), e.g. 50,100,200.")
@click.option("--max-macs", type=budget_range, default=None, help="MACs budget in G (paper convention); the budget itself when no latency budget is given.")
@click.option("--algo", type=click.Choice(["evolution", "optuna", "random"]), default="evolution", show_default=True)
@click.option("--multi-objective", is_flag=True, help="optuna: NSGA-II on (AP, latency) instead of TPE per budget.")
@click.option("--predictor", "predictor_path", default=None, help="Accuracy predictor folder or shipped name [default: the shipped one for the space].")
@space_option
@click.option("--population", type=click.IntRange(2, 10_000), default=DEFAULT_POPULATION, show_default=True)
@click.option("--generations", type=click.IntRange(0, 100_000), default=DEFAULT_GENERATIONS, show_default=True,
              help="evolution: generations per budget (the original Lite Pose search: 40).")
@click.option("--no-grow", is_flag=True,
              help="evolution: never grow children towards the budget (drop the growth operator; for objectives that do not favour bigger subnets).")
@click.option("--trials", type=click.IntRange(1, 1_000_000), default=None, help="optuna/random: evaluations per budget [default: population x generations].")
@click.option("--storage", default=None, help="optuna: storage URL (sqlite:///f.db, postgresql://..., journal:PATH, memory) [default: sqlite in --out].")
@click.option("--study-name", default=None, help="optuna: study name (share it, with --storage, between workers or machines).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="optuna: worker processes on this machine.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, callback=output_path(folder=True), help="Write best.json, result.json, pareto.png here.")
@quiet_option
@json_option
def search(device, max_latency_ms, budgets, max_macs, algo, multi_objective, predictor_path, space_path, population,
           generations, no_grow, trials, storage, study_name, workers, seed, out_dir, quiet, as_json) -> None:
    """Find the most accurate subnets under latency (or MACs) budgets.

    Example: litepose-nas search --device raspberry-pi-4 --max-latency-ms 120 --out runs/pi
    """
    from ..errors import InputError
    from ..search import SearchBudget
    from ..search import search as run_search
    from ..search.defaults import default_constraints, default_objective
    from .common import load_space

    space = load_space(space_path)
    # the same defaults as the Python API (device, budgets, predictor): litepose_nas.search.defaults
    constraints, limits = default_constraints(space, device=device, max_latency_ms=max_latency_ms,
                                              limits=_parse_budgets(budgets), max_macs=max_macs)
    objective = default_objective(space, predictor_path)

    budget = SearchBudget(population=population, generations=generations, evaluations=trials, grow=not no_grow)
    options = {}
    if algo == "optuna":
        url = storage
        if url is None and out_dir is not None:
            from pathlib import Path

            url = f"sqlite:///{(Path(out_dir) / 'optuna.db').resolve()}"
        options = {"storage": url, "study_name": study_name, "multi_objective": multi_objective, "workers": workers}
    elif multi_objective or storage or study_name or workers > 1:
        raise InputError("--multi-objective, --storage, --study-name and --workers apply to --algo optuna only")
    if out_dir is not None:
        from pathlib import Path

        if Path(out_dir).exists() and not Path(out_dir).is_dir():
            raise InputError(f"{out_dir}: exists and is not a folder (--out takes a folder)")

    result = run_search(space, objective, constraints, budget, seed, algo=algo, limits=limits,
                        progress=not quiet and not as_json and sys.stderr.isatty(), **options)
    paths = result.save(out_dir) if out_dir is not None else {}
    if objective.kind == "proxy":
        click.echo(f"warning: no accuracy predictor shipped for space '{space.name}' and none given (--predictor): "
                   "ranked by MACs as a proxy; the scores are MACs, not AP", err=True)

    rows, devices = _summary_rows(result, space)
    if as_json:
        echo_json({"algo": result.algo, "space": space.name, "objective": result.objective,
                   "constraint": result.constraint, "evaluations": result.evaluations,
                   "seconds": round(result.seconds, 3), "choices": rows, "files": {k: str(v) for k, v in paths.items()}})
        return
    if quiet:
        return
    unit = result.constraint.get("unit", "")
    click.echo(f"{result.algo} search on space '{space.name}': {result.evaluations} evaluations in {result.seconds:.2f} s; "
               f"objective: {result.objective.get('label')}" +
               (f" [{result.objective['predictor']}]" if result.objective.get("predictor") else ""))
    score_header = "pred. AP" if result.objective.get("kind") != "proxy" else "MACs proxy"
    header = [f"budget ({unit})", score_header] + [f"{d} ms" for d in devices] + ["GMACs", "architecture"]
    table = [[f"{r['budget']:g}", "-" if r["score"] is None else f"{r['score']:.4f}"]
             + ["-" if r["latency_ms"].get(d) is None else f"{r['latency_ms'][d]:.1f}" for d in devices]
             + ["-" if r["gmacs"] is None else f"{r['gmacs']:.2f}", r["arch"] or "none found"] for r in rows]
    click.echo(format_table(table, header))
    for name, path in paths.items():
        click.echo(f"  {name:7s} {path}")


def _summary_rows(result, space) -> tuple[list[dict], list[str]]:
    """One row per budget: score, latency on every shipped table of this space, MACs."""
    import numpy as np

    from ..cost import macs
    from ..errors import TableError
    from ..latency import list_tables, load_table

    tables = {}
    for info in list_tables():
        if info.get("space") != space.name:
            continue
        try:
            tables[info["name"]] = load_table(info["name"])
        except TableError:
            continue
    rows = []
    for b in result.best:
        row = {"budget": b.limit, "score": b.score, "cost": b.cost, "latency_ms": {}, "gmacs": None, "arch": None,
               "arch_json": b.arch.to_dict() if b.arch else None}
        if b.arch is not None:
            enc = np.atleast_2d(b.encoded)
            for name, table in tables.items():
                try:
                    row["latency_ms"][name] = float(table.predict(enc, space=space)[0])
                except TableError:
                    row["latency_ms"][name] = None
            row["gmacs"] = float(macs(enc, convention="paper", space=space)[0]) / 1e9
            row["arch"] = b.arch.describe()
        rows.append(row)
    return rows, list(tables)
