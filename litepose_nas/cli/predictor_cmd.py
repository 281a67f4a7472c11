"""``litepose-nas predictor fit|collect|info``: accuracy predictors."""
from __future__ import annotations

import sys

import click

from .common import echo_json, format_table, json_option, output_path, quiet_option, space_option


@click.group()
def predictor() -> None:
    """Fit accuracy predictors on (architecture, AP) tables and collect those tables."""


@predictor.command("fit")
@click.argument("evals_csv", type=click.Path(dir_okay=False))
@click.option("--model", type=click.Choice(["mlp", "gbdt", "ridge", "gp", "auto"]), default="auto", show_default=True,
              help="Model to save; auto = best held-out Kendall tau. All models are cross-validated for the report.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), callback=output_path(folder=True), help="Predictor folder to write (e.g. predictors/NAME).")
@space_option
@click.option("--target", default="ap", show_default=True, help="Column of EVALS_CSV to predict.")
@click.option("--folds", type=click.IntRange(2, 20), default=5, show_default=True)
@click.option("--compare", default="mlp,gbdt,ridge,gp", show_default=True, help="Models to cross-validate, comma-separated.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--heldout", "heldout_csv", type=click.Path(dir_okay=False),
              help="Evaluations (same columns) never used in fitting: written beside the predictor as heldout.csv "
                   "and scored (Kendall tau, RMSE); an architecture also in EVALS_CSV is refused.")
@quiet_option
@json_option
def fit(evals_csv, model, out_dir, space_path, target, folds, compare, seed, heldout_csv, quiet, as_json) -> None:
    """Fit a predictor on EVALS_CSV (columns arch, ap) with k-fold cross-validation."""
    import hashlib
    from pathlib import Path

    from ..errors import InputError
    from ..predictors import MODEL_TYPES, fit_predictor, read_evals
    from .common import load_space

    space = load_space(space_path)
    kinds = [k.strip() for k in compare.split(",") if k.strip()]
    bad = [k for k in kinds if k not in MODEL_TYPES]
    if bad or not kinds:
        raise InputError(f"--compare {compare!r}: {bad[0] if bad else 'empty'} not allowed (allowed: {', '.join(MODEL_TYPES)})")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder (--out takes a folder)")
    table = read_evals(evals_csv, target)
    enc = table.encoded(space)
    heldout = read_evals(heldout_csv, target) if heldout_csv else None
    if heldout is not None:
        heldout.encoded(space)  # every held-out arch must belong to the space, before anything is fitted
        fitted = {a.to_json() for a in table.archs}
        shared = sum(a.to_json() in fitted for a in heldout.archs)
        if shared:
            raise InputError(f"{heldout_csv}: {shared} of its {len(heldout)} architectures are also in {evals_csv}; "
                             "held-out rows must never be fitted")
    try:
        pred = fit_predictor(space, enc, table.targets, model=model, folds=folds, seed=seed, compare=kinds,
                             progress=not quiet and not as_json and sys.stderr.isatty())
    except InputError as exc:
        # the fitting code knows the rows, not where they came from
        raise type(exc)(f"{evals_csv}: {exc}") from None
    pred.provenance.update({
        "training_data": str(Path(evals_csv).resolve()),
        "training_data_sha256": hashlib.sha256(Path(evals_csv).read_bytes()).hexdigest(),
        "rows": len(table), "target": target, "folds": folds, "seed": seed,
        "selected_by": "best held-out Kendall tau" if model == "auto" else "--model",
    })
    from ..predictors.collect import read_provenance

    collection = read_provenance(evals_csv)
    if collection is not None:
        pred.provenance["collection"] = collection  # how the fitted APs were measured
    if heldout is not None:
        pred.provenance["heldout_data"] = str(Path(heldout_csv).resolve())
        pred.provenance["heldout_collection"] = read_provenance(heldout_csv)
    pred.save(out)
    scores = {}
    if heldout is not None:
        from ..predictors.heldout import HELDOUT_FILE, heldout_scores, write_heldout

        write_heldout(out / HELDOUT_FILE, heldout.archs, heldout.targets)
        scores = heldout_scores(pred, out)
    report = pred.cv_report
    if as_json:
        echo_json({"predictor": str(out), "model": pred.kind, "space": space.name, "rows": len(table), "cv": report,
                   **scores})
        return
    if quiet:
        return
    click.echo(f"{len(table)} architectures of space '{space.name}', {folds}-fold cross-validation on held-out archs "
               f"(target '{target}'):")
    rows = [[s["model"] + (" *" if s["model"] == report["best"] else ""), f"{s['rmse']:.4f} ± {s['rmse_std']:.4f}",
             f"{s['kendall_tau']:.3f} ± {s['kendall_tau_std']:.3f}", f"{s['spearman']:.3f} ± {s['spearman_std']:.3f}",
             f"{s['fit_seconds']:.2f}"] for s in report["scores"]]
    click.echo(format_table(rows, ["model", "RMSE", "Kendall tau", "Spearman", "fit s"]))
    click.echo(f"(* best held-out Kendall tau) saved '{pred.kind}' -> {out}")
    if scores:
        click.echo(f"heldout.csv: {scores['heldout_rows']} architectures never fitted, Kendall tau "
                   f"{scores['heldout_kendall_tau']:.3f}, RMSE {scores['heldout_rmse']:.4f}")


@predictor.command("info")
@click.argument("path")
@json_option
def info(path, as_json) -> None:
    """Describe a predictor folder (or shipped name): space, model, provenance, CV figures."""
    from ..predictors import load_predictor
    from ..predictors.heldout import heldout_scores
    from ..predictors.predictor import resolve_predictor_path

    pred = load_predictor(path)
    meta = pred.to_meta()
    meta["space"].pop("definition", None)
    meta["rows"] = pred.provenance.get("rows")  # evaluations used in fitting
    heldout = heldout_scores(pred, resolve_predictor_path(path))
    meta.update(heldout)
    if as_json:
        echo_json(meta)
        return
    click.echo(pred.describe())
    for k, v in pred.provenance.items():
        click.echo(f"  {k}: {v}")
    if pred.cv_report:
        s = next(x for x in pred.cv_report["scores"] if x["model"] == pred.kind)
        click.echo(f"  cross-validation: RMSE {s['rmse']:.4f}, Kendall tau {s['kendall_tau']:.3f}, "
                   f"Spearman {s['spearman']:.3f}")
    if heldout["heldout_rows"]:
        click.echo(f"  heldout.csv ({heldout['heldout_rows']} architectures never fitted): "
                   f"Kendall tau {heldout['heldout_kendall_tau']:.3f}, RMSE {heldout['heldout_rmse']:.4f}")
    else:
        click.echo("  heldout.csv: none beside the predictor (no held-out check)")


@predictor.command("collect")
@click.option("--supernet", "supernet_path", required=True, type=click.Path(dir_okay=False), help="Trained supernet checkpoint.")
@click.option("--data", "data_dir", required=True, type=click.Path(file_okay=False), help="Dataset folder (COCO / CrowdPose layout).")
@click.option("--dataset", type=click.Choice(["coco", "crowdpose"]), default="coco", show_default=True)
@click.option("--archs", "n_archs", type=click.IntRange(1, None), required=True, help="Architectures to evaluate (stratified over MACs).")
@click.option("--out", "out_csv", required=True, type=click.Path(dir_okay=False), callback=output_path(), help="evals.csv to append to (resumes).")
@space_option
@click.option("--calib-batches", type=click.IntRange(1, None), default=10, show_default=True, help="Training batches for BN recalibration.")
@click.option("--batch-size", type=click.IntRange(1, None), default=8, show_default=True)
@click.option("--val-images", type=click.IntRange(1, None), default=200, show_default=True, help="Validation images per evaluation.")
@click.option("--train-split", default="train", show_default=True)
@click.option("--val-split", default="val", show_default=True)
@click.option("--device", "torch_device", default="cpu", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resolution-scale", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True,
              help="Evaluate each subnet at img_size x SCALE (a cheaper CPU proxy; 0.25 is what the demo uses). "
                   "Keep one value per evals.csv.")
@quiet_option
def collect(supernet_path, data_dir, dataset, n_archs, out_csv, space_path, calib_batches, batch_size, val_images,
            train_split, val_split, torch_device, seed, resolution_scale, quiet) -> None:
    """Evaluate N subnets of a supernet (BN recalibrated, official AP) into an evals.csv, row by row.

    Under `torchrun --nproc_per_node N` each process evaluates every N-th architecture into its own
    part file (OUT.rankR.part) and rank 0 merges them into OUT at the end; --device cuda puts each
    process on its own GPU."""
    import os

    from ..predictors.collect import collect_evals
    from .common import load_space

    space = load_space(space_path)
    summary = collect_evals(
        supernet_path, data_dir, dataset, n_archs, out_csv, space=space, calib_batches=calib_batches,
        batch_size=batch_size, val_images=val_images, train_split=train_split, val_split=val_split,
        device=torch_device, seed=seed, progress=not quiet, resolution_scale=resolution_scale,
    )
    if not quiet and int(os.environ.get("RANK", "0")) == 0:
        click.echo(f"{summary['done']} of {summary['requested']} architectures in {out_csv} "
                   f"({summary['new']} evaluated now, {summary['skipped']} already there)")
