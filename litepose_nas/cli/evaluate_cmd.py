"""``litepose-nas evaluate``: a model on a COCO / CrowdPose split -> COCO results + official metrics."""
from __future__ import annotations

import click

from ..tag_cost import DEFAULT_TAG_COST, TAG_COSTS
from .common import cpu_threads, format_table, output_path, quiet_option


@click.command("evaluate")
@click.option("--arch", "arch_path", required=True, help="Architecture JSON file (the original repo's format) or a published name (search-XS).")
@click.option("--weights", default=None,
              help="Checkpoint: a state_dict or a training checkpoint ('state_dict', optional 'module.' prefix). "
                   "Omit only for a smoke test of the pipeline with random weights.")
@click.option("--data", "data_dir", required=True, help="Dataset folder in the COCO or CrowdPose layout.")
@click.option("--dataset", type=click.Choice(["coco", "crowdpose"]), required=True, help="Dataset and protocol.")
@click.option("--split", default="val", show_default=True, help="Split to evaluate (crowdpose: val or test).")
@click.option("--flip-test", is_flag=True, help="Average with the horizontally flipped image (as published).")
@click.option("--input-size", type=click.IntRange(64, 2048), default=None,
              help="Short side of the test input (default: the architecture's img_size).")
@click.option("--max-images", type=click.IntRange(1), default=None, help="Evaluate the first N images only.")
@click.option("--detection-threshold", type=click.FloatRange(0), default=0.1, show_default=True,
              help="Heatmap value a joint candidate must exceed.")
@click.option("--tag-threshold", type=click.FloatRange(0, min_open=True), default=1.0, show_default=True,
              help="Largest tag distance at which a joint joins a person.")
@click.option("--tag-cost", type=click.Choice(TAG_COSTS), default=DEFAULT_TAG_COST, show_default=True,
              help="Grouping cost: distance, or original (the published parser: round(distance) * 100 - heatmap).")
@click.option("--breakdown", is_flag=True,
              help="Also show where AP is lost: oracle grouping / localization, jitter, inversion, swap, miss, "
                   "false positives (Ronchi & Perona).")
@click.option("--breakdown-png", default=None, callback=output_path(),
              help="Write the breakdown figure here (implies --breakdown).")
@click.option("--results", "results_path", default=None, callback=output_path(), help="Write the detections here (COCO results JSON).")
@click.option("--json", "json_path", default=None, callback=output_path(), help="Write the metrics and run details here (JSON).")
@click.option("--threads", type=cpu_threads(), default=None, help="torch intra-op threads.")
@quiet_option
def evaluate(arch_path: str, weights: str | None, data_dir: str, dataset: str, split: str, flip_test: bool,
             input_size: int | None, max_images: int | None, detection_threshold: float, tag_threshold: float,
             tag_cost: str, breakdown: bool, breakdown_png: str | None, results_path: str | None,
             json_path: str | None, threads: int | None, quiet: bool) -> None:
    """Evaluate a model: decode every image, write COCO results, print the official metrics."""
    import torch

    from ..evaluate import evaluate as run_evaluate
    from ..io import write_json_atomic

    if threads is not None:
        torch.set_num_threads(threads)
    result = run_evaluate(arch_path, weights, data_dir, dataset, split, flip_test=flip_test, input_size=input_size,
                          max_images=max_images, results_file=results_path, progress=not quiet,
                          detection_threshold=detection_threshold, tag_threshold=tag_threshold, tag_cost=tag_cost,
                          breakdown=breakdown or breakdown_png is not None)
    if breakdown_png is not None:
        from ..metrics.breakdown import plot_breakdown

        plot_breakdown(result.breakdown, breakdown_png, f"{arch_path} on {data_dir} ({split}), input {result.input_size}")
    if json_path is not None:
        write_json_atomic(json_path, {**result.to_dict(), "arch": arch_path, "weights": weights, "split": split})
    if quiet:
        return
    rows = [[name, f"{value:.4f}"] for name, value in result.metrics.items()]
    click.echo(format_table(rows, ["metric", "value"]))
    click.echo(f"{result.num_images} images, {result.num_people} people, input {result.input_size}, "
               f"flip test {'on' if flip_test else 'off'}, tag cost {tag_cost}")
    if result.breakdown is not None:
        click.echo("\nwhere AP is lost (Ronchi & Perona; corrections cumulative, in this order):")
        click.echo(format_table(result.breakdown.table(), ["breakdown", "value"]))
    if breakdown_png is not None:
        click.echo(f"breakdown figure: {breakdown_png}")
    if result.results_file is not None:
        click.echo(f"results: {result.results_file}")
    if json_path is not None:
        click.echo(f"metrics: {json_path}")
