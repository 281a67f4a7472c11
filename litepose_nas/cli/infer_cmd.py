"""``litepose-nas infer``: an exported ONNX model on images -> COCO-format people + drawings."""
from __future__ import annotations

import click

from ..tag_cost import TAG_COSTS
from .common import FiniteFloatRange, cpu_threads, echo_json, json_option, output_path, quiet_option


@click.command("infer")
@click.option("--model", "model_path", required=True,
              help="Exported model.onnx (its metadata.json beside it, or embedded).")
@click.argument("images", nargs=-1, required=True)
@click.option("--out", "out_dir", default="infer-out", callback=output_path(folder=True), show_default=True,
              help="Output folder: people.json (COCO format) and one <image>_pose drawing per image.")
@click.option("--threshold", type=FiniteFloatRange(0.0, 1.0), default=None,
              help="Detection threshold on heatmap values (default: the model's, 0.1).")
@click.option("--flip/--no-flip", default=True, show_default=True, help="Flip test (as the published models).")
@click.option("--tag-cost", type=click.Choice(TAG_COSTS), default=None,
              help="Grouping cost: distance, or original (the published parser) [default: the model's, distance].")
@click.option("--threads", type=cpu_threads(), default=None, help="onnxruntime intra-op threads.")
@quiet_option
@json_option
def infer(model_path: str, images: tuple[str, ...], out_dir: str, threshold: float | None, flip: bool,
          tag_cost: str | None, threads: int | None, quiet: bool, as_json: bool) -> None:
    """Find the people in IMAGE... with an exported model (onnxruntime + our decoder)."""
    from ..export.infer import run_inference

    report = run_inference(model_path, images, out_dir, threshold=threshold, flip=flip, threads=threads,
                           tag_cost=tag_cost, progress=not (quiet or as_json) and len(images) > 1)
    if as_json:
        echo_json(report.to_dict())
        return
    if not quiet:
        for entry in report.images:
            click.echo(f"{entry['file']}: {entry['people']} people -> {entry['drawing']}")
        click.echo(f"people: {report.json_path} ({report.num_people} in {len(report.images)} images)")
