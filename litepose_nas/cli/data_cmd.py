"""``litepose-nas data synth | info | preview``."""
from __future__ import annotations

import click

from ..data.recipe import RECIPES
from .common import echo_json, format_table, json_option, output_path, quiet_option

DATASETS = click.Choice(["coco", "crowdpose"])


@click.group()
def data() -> None:
    """Pose datasets: write a synthetic set, check and preview COCO / CrowdPose folders."""


@data.command("synth")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), callback=output_path(folder=True), help="Folder to create (must not exist or be empty).")
@click.option("--images", "num_images", required=True, type=click.IntRange(1, 1_000_000), help="Number of images in all splits.")
@click.option("--layout", type=DATASETS, default="coco", show_default=True, help="Folder layout, joints and annotation format.")
@click.option("--preset", type=click.Choice(["easy", "medium", "hard"]), default="easy", show_default=True,
              help="Difficulty: easy (1-3 large people, fixed part colours), medium, hard (CrowdPose-like crowds, clutter).")
@click.option("--seed", type=int, default=0, show_default=True, help="Each image i is drawn from (seed, i).")
@click.option("--val-fraction", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.1, show_default=True,
              help="Share of the images in the val split (and the test split, for CrowdPose).")
@click.option("--size", "image_size", type=click.IntRange(32, 4096), default=256, show_default=True, help="Long image side in pixels.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True, help="Worker processes (0: this one).")
@click.option("--joints", default=None,
              help="Another keypoint set: comma-separated joint names (of the 17 COCO joints, head, neck), "
                   "e.g. nose,left_shoulder,right_shoulder,left_hip,right_hip. Default: the layout's.")
@quiet_option
@json_option
def synth(out_dir: str, num_images: int, layout: str, preset: str, seed: int, val_fraction: float,
          image_size: int, workers: int, joints: str | None, quiet: bool, as_json: bool) -> None:
    """Write a synthetic multi-person keypoint set in the real COCO or CrowdPose folder layout."""
    from ..data.synth import generate_synthetic, summary

    names = [j.strip() for j in joints.split(",")] if joints is not None else None
    root = generate_synthetic(out_dir, num_images, layout=layout, preset=preset, seed=seed,
                              val_fraction=val_fraction, image_size=image_size, workers=workers,
                              progress=not (quiet or as_json), joints=names)
    stats = summary(root, layout)
    if as_json:
        echo_json({"root": str(root), "layout": layout, "preset": preset, "seed": seed, "splits": stats})
    elif not quiet:
        click.echo(f"wrote {num_images} {preset} images in the {layout} layout to {root}")
        click.echo(_stats_table(stats))


@data.command("info")
@click.argument("root", type=click.Path())
@click.option("--dataset", type=DATASETS, default="coco", show_default=True)
@json_option
def info(root: str, dataset: str, as_json: bool) -> None:
    """Check a dataset folder (every split present) and count its images, people and crowds."""
    from ..data.sources import layout_paths
    from ..data.synth import summary
    from ..errors import DataError
    from pathlib import Path

    if not Path(root).is_dir():
        raise DataError(f"dataset folder {root} not found")
    stats = summary(root, dataset)
    if not stats:
        ann, _ = layout_paths(Path(root), dataset, "val")
        raise DataError(f"no annotation file of the {dataset} layout under {root} (e.g. {ann})")
    if as_json:
        echo_json({"root": str(root), "dataset": dataset, "splits": stats})
    else:
        click.echo(_stats_table(stats))


@data.command("preview")
@click.argument("root", type=click.Path())
@click.option("--dataset", type=DATASETS, default="coco", show_default=True)
@click.option("--split", default="val", show_default=True)
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False), callback=output_path(), help="PNG file to write.")
@click.option("--count", type=click.IntRange(1, 64), default=8, show_default=True, help="Images in the grid.")
@click.option("--augment", is_flag=True, help="Show training samples (augmented, with target heatmaps) instead.")
@click.option("--size", "input_size", type=click.IntRange(32, 4096), default=256, show_default=True, help="Tile size (the input size with --augment).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--recipe", type=click.Choice(list(RECIPES)), default="default", show_default=True,
              help="Training recipe of the --augment samples (see `litepose-nas train --help`).")
def preview(root: str, dataset: str, split: str, out_file: str, count: int, augment: bool, input_size: int, seed: int,
            recipe: str) -> None:
    """Draw ground-truth skeletons (or augmented samples and their heatmaps) into one PNG grid."""
    from ..data.preview import preview_grid

    preview_grid(root, dataset, split, out_file, count=count, augment=augment, size=input_size, seed=seed,
                 recipe=recipe)
    click.echo(f"wrote {out_file}")


def _stats_table(stats: dict) -> str:
    keys = ["images", "usable_images", "people", "people_per_image", "crowd_regions", "crowd_index_median", "crowd_index_p90"]
    rows = [[split] + ["-" if s[k] is None else s[k] for k in keys] for split, s in stats.items()]
    return format_table(rows, ["split", "images", "usable", "people", "per image", "crowd regions", "CI median", "CI p90"])
