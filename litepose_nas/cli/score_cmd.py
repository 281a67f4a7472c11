"""``litepose-nas score``: a COCO-format results file + ground truth -> the official metrics."""
from __future__ import annotations

import click

from .common import format_table, output_path, quiet_option


@click.command("score")
@click.option("--results", "results_path", required=True, help="Detections: a COCO keypoint results JSON list.")
@click.option("--ann", "ann_path", required=True, help="Ground truth: a COCO-format keypoint annotation JSON.")
@click.option("--dataset", type=click.Choice(["coco", "crowdpose"]), required=True, help="Protocol (and joints).")
@click.option("--json", "json_path", default=None, callback=output_path(),
              help="Write the metrics here (JSON, the same names as 'evaluate --json').")
@quiet_option
def score(results_path: str, ann_path: str, dataset: str, json_path: str | None, quiet: bool) -> None:
    """Score a results file as the official COCO / CrowdPose tools do; prints the metrics table."""
    from ..io import write_json_atomic
    from ..metrics.score import score_results

    result = score_results(results_path, ann_path, dataset)
    if json_path is not None:
        write_json_atomic(json_path, result.to_dict())
    if quiet:
        return
    click.echo(format_table([[name, f"{value:.4f}"] for name, value in result.metrics.items()], ["metric", "value"]))
    click.echo(f"{result.num_images} images, {result.num_detections} detections")
    if json_path is not None:
        click.echo(f"metrics: {json_path}")
