"""``litepose-nas latency list|show|predict|validate``."""
from __future__ import annotations

import click

from .common import echo_json, format_table, json_option, load_space, output_path, quiet_option


@click.group()
def latency() -> None:
    """Latency lookup tables: list them, predict with them, check them against real timings."""


@latency.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """Shipped tables and user tables ($LITEPOSE_NAS_HOME/latency_tables or ~/.litepose-nas/latency_tables)."""
    from ..latency import list_tables

    items = list_tables()
    if as_json:
        echo_json(items)
        return
    rows = [[t["name"], t["device"], t["runtime"], t["provenance"], t["space"], t["source"],
             "ok" if t["valid"] else "INVALID", t["path"]] for t in items]
    click.echo(format_table(rows, ["name", "device", "runtime", "provenance", "space", "source", "status", "path"]))
    for t in items:
        if not t["valid"]:
            click.echo(f"invalid: {t['error']}")


@latency.command("show")
@click.option("--table", "table_name", required=True, help="Table name or NAME.csv path.")
@json_option
def show(table_name: str, as_json: bool) -> None:
    """Print a table's header (device, runtime, provenance, correction, calibration)."""
    from ..latency import load_table

    t = load_table(table_name)
    if as_json:
        echo_json(t.header | {"path": str(t.path)})
        return
    h = t.header
    click.echo(f"{t.name}: device {t.device}, runtime {t.runtime} {h.get('runtime_version', '')}, "
               f"threads {h.get('threads', '?')}, space {t.space_name}, {len(t)} layers, {t.num_joints} joints")
    click.echo(f"provenance: {t.provenance}: {t.provenance_details}")
    click.echo(f"correction: {t.scale:.4f} * sum + {t.offset_ms:.3f} ms")


@latency.command("predict")
@click.option("--table", "table_name", required=True, help="Table name or NAME.csv path.")
@click.argument("files", nargs=-1, required=True)
@json_option
def predict(table_name: str, files: tuple[str, ...], as_json: bool) -> None:
    """Predicted latency (ms) of architecture JSON FILES."""
    from ..latency import load_table
    from ..space.published import load_arch

    t = load_table(table_name)
    archs = [load_arch(f) for f in files]
    ms = t.predict_archs(archs)
    if as_json:
        echo_json({"table": t.name, "device": t.device, "predictions": [{"file": f, "ms": float(v)} for f, v in zip(files, ms)]})
        return
    click.echo(format_table([[f, f"{v:.2f}"] for f, v in zip(files, ms)], ["file", f"{t.device} ms"]))


@latency.command("validate")
@click.option("--table", "table_name", required=True, help="Table name or NAME.csv path.")
@click.option("--archs", "n", type=int, default=30, show_default=True, help="Random subnets to time end to end.")
@click.option("--space", "space_path", default=None, help="Search space (default: the table's space, if shipped).")
@click.option("--seed", type=int, default=1234, show_default=True)
@click.option("--no-published", is_flag=True, help="Leave out the published LitePose-Auto-XS/S/M/L.")
@click.option("--plot", default=None, help="Scatter plot PNG (default: NAME.fidelity.png beside --report, if given).")
@click.option("--report", default=None, help="Write the full report (every point) as JSON here.")
@click.option("--no-contention-check", is_flag=True, help="Keep samples during which other processes took the CPU.")
@click.option("--no-speed-guard", is_flag=True,
              help="Time networks even while a reference layer runs slower than its nominal speed.")
@click.option("--passes", type=click.IntRange(1, None), default=2, show_default=True,
              help="Time every network this many times, in whole passes; each keeps its fastest pass.")
@json_option
@quiet_option
def validate(table_name: str, n: int, space_path: str | None, seed: int, no_published: bool, plot: str | None,
             report: str | None, no_contention_check: bool, no_speed_guard: bool, passes: int, as_json: bool,
             quiet: bool) -> None:
    """Predicted vs measured end to end: MAPE, share within +-10 %, Spearman, scatter plot.

    A table derived for another device is checked on its held-out calibration points instead.
    """
    from pathlib import Path

    from ..errors import InputError
    from ..io import write_json_atomic
    from ..latency import load_table
    from ..latency.fidelity import scatter_plot, validate_derived, validate_measured

    if n < 0:
        raise InputError(f"--archs must be >= 0, got {n}")
    t = load_table(table_name)
    if t.provenance == "measured":
        space = load_space(space_path or t.space_name)
        rep = validate_measured(t, space, n, seed=seed, include_published=not no_published, progress=not quiet,
                                detect_contention=not no_contention_check, speed_guard=not no_speed_guard,
                                passes=passes)
    else:
        rep = validate_derived(t)
    if plot is None and report is not None:
        plot = str(Path(report).with_suffix(".png"))
    if plot:
        rep.plot = str(scatter_plot(rep, plot))
    if report:
        write_json_atomic(report, rep.to_dict())
    if as_json:
        d = rep.to_dict()
        if not report:
            d.pop("points")
        echo_json(d)
        return
    click.echo(f"{rep.table} ({rep.device}, {rep.runtime}), {rep.mode}, n={rep.n}: MAPE {rep.mape:.2f} %, "
               f"within +-10 % {rep.within_10pct * 100:.0f} %, Spearman {rep.spearman:.3f}, max APE {rep.max_ape:.1f} %")
    if not quiet:
        rows = [[p["name"], f"{p['predicted_ms']:.1f}", f"{p['measured_ms']:.1f}", f"{p['ape_pct']:.1f}"] for p in rep.points]
        click.echo(format_table(rows, ["network", "predicted ms", "measured ms", "APE %"]))
    if rep.plot:
        click.echo(f"plot: {rep.plot}")


@latency.command("calibrate")
@click.option("--base", "base_name", required=True, help="A measured table (name or NAME.csv) to rescale.")
@click.option("--points", "points_csv", required=True, help="CSV with columns arch,ms: whole networks timed on the device.")
@click.option("--device-name", required=True, help="Device name for the new table.")
@click.option("--runtime", default="unknown", show_default=True, help="Runtime used on the device (recorded only).")
@click.option("--out", required=True, callback=output_path(), help="Output NAME.csv (NAME.json beside it).")
@json_option
def calibrate(base_name: str, points_csv: str, device_name: str, runtime: str, out: str, as_json: bool) -> None:
    """Derive a device table from a measured table and a few whole-network timings on that device."""
    from ..latency import load_table
    from ..latency.calibrate import derive_table, read_points_csv
    from ..latency.profiler import check_out_path

    path = check_out_path(out)
    points = read_points_csv(points_csv)
    t = derive_table(load_table(base_name), device_name, points, runtime, f"{device_name} ({points_csv})", name=path.stem)
    t.save(path)
    c = t.header["calibration"]
    if as_json:
        echo_json({"table": str(path), "model": c["model"], "k": c["k"], "o_ms_per_layer": c["o_ms_per_layer"],
                   "loo_mape": c["loo_mape_pct"], "fit_mape": c["fit_mape_pct"], "n": len(points)})
        return
    click.echo(f"wrote {path}: model {c['model']}, k={c['k']:.4f}, o={c['o_ms_per_layer']:.4f} ms/layer, "
               f"held-out MAPE {c['loo_mape_pct']:.1f} %, fit MAPE {c['fit_mape_pct']:.1f} %")
