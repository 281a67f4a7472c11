"""``litepose-nas demo``: the whole pipeline on synthetic data, in one command (see docs/demo.md)."""
from __future__ import annotations

import click

from .common import json_option, quiet_option


@click.command("demo")
@click.option("--out", "out_dir", required=True, type=click.Path(), help="Run folder (rerun into it to resume).")
@click.option("--fast", is_flag=True, help="Tiny settings (< 2 min): a smoke test of every stage.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of data, training and search.")
@click.option("--ship", default=None, metavar="NAME",
              help="Also copy the fitted predictor into the package's shipped predictors/NAME.")
@click.option("--supernet-minutes", type=click.FloatRange(min=0.1), default=None,
              help="Supernet training time limit [default: 5 (full), 0.5 (--fast)]; more gives a better predictor.")
@click.option("--archs", type=click.IntRange(min=6), default=None,
              help="Subnets evaluated for the predictor [default: 20 (full), 6 (--fast)].")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Intra-op threads of torch and onnxruntime [default: 2]; 1 when other jobs share the cores.")
@quiet_option
@json_option
def demo(out_dir: str, fast: bool, seed: int, ship: str | None, supernet_minutes: float | None, archs: int | None,
         threads: int | None, quiet: bool, as_json: bool) -> None:
    """Generate data, train a supernet, fit the predictor, profile, search, fine-tune, evaluate,
    export and infer; writes OUT/report.md and OUT/summary.json."""
    import dataclasses

    from ..demo import DemoSettings, run_demo
    from .common import echo_json

    settings = DemoSettings.fast() if fast else DemoSettings.full()
    changes = {k: v for k, v in (("supernet_minutes", supernet_minutes), ("archs", archs), ("threads", threads)) if v is not None}
    settings = dataclasses.replace(settings, **changes)
    summary = run_demo(out_dir, fast=fast, seed=seed, quiet=quiet or as_json, ship=ship, settings=settings)
    if as_json:
        echo_json({"report": summary["artefacts"]["report"], "summary": summary["artefacts"]["summary"],
                   "stage_seconds": summary["stage_seconds"], "total_seconds": summary["total_seconds"],
                   "ap": summary["deployed"]["evaluation"]["metrics"].get("AP")})
    elif not quiet:
        click.echo(f"report: {summary['artefacts']['report']} ({summary['total_seconds']:.0f} s)")
