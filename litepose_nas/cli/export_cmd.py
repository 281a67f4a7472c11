"""``litepose-nas export``: subnet JSON + standalone weights + ONNX model + metadata."""
from __future__ import annotations

import click

from .common import echo_json, json_option, output_path


@click.command("export")
@click.option("--arch", "arch_path", required=True, help="Architecture JSON (the original repo's format) or a published name (search-XS).")
@click.option("--supernet", "supernet_path", default=None,
              help="Supernet checkpoint: extract the subnet's weights from it.")
@click.option("--weights", "weights_path", default=None,
              help="Standalone weights of this subnet (state_dict; plain or {'state_dict': ...}).")
@click.option("--random-init", is_flag=True, help="Untrained weights (deployment smoke tests, latency work).")
@click.option("--num-joints", type=click.Choice(["17", "14"]), default=None,
              help="17 (COCO) or 14 (CrowdPose). Default: what the weights have, else 17.")
@click.option("--out", "out_dir", required=True, callback=output_path(folder=True), help="Output folder (created if missing).")
@click.option("--space", "space_path", default=None,
              help="Search space of the --supernet checkpoint (YAML or shipped name; default: recognised).")
@click.option("--opset", type=click.IntRange(13, 20), default=17, show_default=True, help="ONNX opset.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --random-init.")
@json_option
def export(arch_path: str, supernet_path: str | None, weights_path: str | None, random_init: bool,
           num_joints: str | None, out_dir: str, space_path: str | None, opset: int, seed: int, as_json: bool) -> None:
    """Export a subnet: arch.json, weights.pth, model.onnx (BN folded, batch-dynamic) and metadata.json.

    Exactly one of --supernet, --weights, --random-init says where the weights come from. The
    ONNX model is checked with onnx.checker and its onnxruntime outputs compared with PyTorch's
    (max abs difference reported as parity; over 1e-4 aborts the export). Nothing is written
    unless every check passes.
    """
    from ..errors import InputError
    from ..space.published import load_arch

    chosen = [name for name, value in (("--supernet", supernet_path), ("--weights", weights_path),
                                       ("--random-init", random_init)) if value]
    if len(chosen) != 1:
        what = "none was given" if not chosen else f"got {' and '.join(chosen)}"
        raise InputError(f"give exactly one of --supernet, --weights, --random-init ({what})")
    joints = int(num_joints) if num_joints else None
    arch = load_arch(arch_path)
    _check_arch_size(arch, arch_path)

    from ..export import export_model, model_from_weights, random_init_model

    if weights_path:
        model = model_from_weights(arch, weights_path, joints)
        source = f"weights:{weights_path}"
    elif supernet_path:
        from ..export.supernet_source import model_from_supernet

        model = model_from_supernet(arch, supernet_path, joints, space_path, arch_source=arch_path)
        source = f"supernet:{supernet_path}"
    else:
        model = random_init_model(arch, joints or 17, seed)
        source = f"random-init:seed={seed}"
    if weights_path or supernet_path:
        from ..export.weights import check_finite

        # NaN / inf weights would only show up as a meaningless parity failure
        check_finite(model, weights_path or supernet_path)
    result = export_model(model, out_dir, opset=opset, source=source)
    if as_json:
        echo_json(result.to_dict())
        return
    click.echo(f"exported {arch.describe()} ({result.metadata.num_joints} joints, {result.metadata.dataset})")
    for key, path in result.files.items():
        click.echo(f"  {key:<9} {path}")
    click.echo(f"  opset     {result.opset}")
    click.echo(f"  parity    max abs diff {result.parity.max_abs_diff:.3g} (onnxruntime vs PyTorch, "
               f"outputs up to {result.parity.max_abs_reference:.3g})")


def _check_arch_size(arch, source: str) -> None:
    from ..errors import ArchError
    from ..export.interface import total_stride
    from ..export.onnx_export import MAX_IMG_SIZE

    stride = total_stride(arch)
    if not stride <= arch.img_size <= MAX_IMG_SIZE:
        # the parity check runs the model on an img_size x img_size input: bound it before allocating
        raise ArchError(f"{source}: img_size {arch.img_size} out of range for export "
                        f"(allowed: {stride} to {MAX_IMG_SIZE}, a multiple of {stride})")
    if arch.img_size % stride:
        raise ArchError(f"{source}: img_size {arch.img_size} must be a multiple of {stride} (the network's total stride)")
