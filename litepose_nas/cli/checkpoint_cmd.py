"""``litepose-nas checkpoint info``: what a checkpoint file holds and which architecture it fits."""
from __future__ import annotations

import click

from .common import echo_json, json_option

JOINT_NAMES = {14: "CrowdPose", 17: "COCO"}


@click.group()
def checkpoint() -> None:
    """Inspect model checkpoints (ours and the original LitePose repository's)."""


@checkpoint.command("info")
@click.argument("file")
@click.option("--space", "space_path", default=None,
              help="Search space of a supernet checkpoint (default: litepose-elastic when it matches).")
@click.option("--img-size", type=int, default=256, show_default=True,
              help="Input resolution to report (checkpoints do not store it).")
@click.option("--arch", "arch_path", default=None, help="Architecture JSON (or published name) to check the checkpoint against.")
@json_option
def info(file: str, space_path: str | None, img_size: int, arch_path: str | None, as_json: bool) -> None:
    """Layout, architecture, joints and parameter count of checkpoint FILE (loaded strictly and safely)."""
    from ..checkpoints import LAYOUT_SUPERNET, load_original_checkpoint

    ckpt = load_original_checkpoint(file, space=space_path, img_size=img_size)
    report = ckpt.summary()
    report["in_spaces"] = _spaces_fitting(ckpt)
    if arch_path is not None:
        report["arch_check"] = _check_arch(ckpt, arch_path)
    if as_json:
        echo_json(report)
        return
    what = "largest net" if ckpt.layout == LAYOUT_SUPERNET else "architecture"
    container = report["container"] if not ckpt.container else f"inside {ckpt.container!r}"
    prefix = f", key prefix {ckpt.prefix!r} stripped" if ckpt.prefix else ""
    joints = JOINT_NAMES.get(ckpt.num_joints)
    click.echo(f"{file}: {report['layout_name']}")
    click.echo(f"  state_dict     {container}{prefix}, {report['num_entries']} entries")
    click.echo(f"  {what:<14} {ckpt.arch.describe()} (resolution not stored; {img_size} shown)")
    if ckpt.space is not None:
        click.echo(f"  space          {ckpt.space.name} (runs every architecture of it)")
    click.echo(f"  joints         {ckpt.num_joints}{f' ({joints})' if joints else ''}")
    click.echo(f"  parameters     {ckpt.num_parameters:,}")
    label = "runs spaces" if ckpt.layout == LAYOUT_SUPERNET else "in spaces"
    click.echo(f"  {label:<14} {', '.join(report['in_spaces']) or '(none of the shipped spaces)'}")
    if arch_path is not None:
        check = report["arch_check"]
        click.echo(f"  --arch         {'fits' if check['fits'] else 'does not fit'}: {check['detail']}")


def _shipped_spaces():
    from ..resources import shipped_dir
    from ..space import SearchSpace

    return [SearchSpace.from_yaml(p) for p in sorted(shipped_dir("search_spaces").glob("*.yaml"))]


def _spaces_fitting(ckpt) -> list[str]:
    """Static: the shipped spaces holding its architecture (at some resolution of theirs).
    Supernet: the shipped spaces all of whose architectures it can run."""
    from dataclasses import replace

    from ..checkpoints import LAYOUT_SUPERNET
    from ..errors import ArchError

    names = []
    for space in _shipped_spaces():
        if ckpt.layout == LAYOUT_SUPERNET:
            try:
                ckpt.model.plan(space.largest())
                ckpt.model.plan(space.smallest())
            except ArchError:
                continue
            names.append(space.name)
        elif space.contains(replace(ckpt.arch, img_size=space.resolutions[0])):
            names.append(space.name)
    return names


def _check_arch(ckpt, arch_path: str) -> dict:
    from ..checkpoints import LAYOUT_SUPERNET
    from ..errors import ArchError
    from ..space.published import load_arch

    arch = load_arch(arch_path)
    if ckpt.layout == LAYOUT_SUPERNET:
        try:
            ckpt.model.plan(arch)
        except ArchError as exc:
            return {"file": arch_path, "fits": False, "detail": str(exc)}
        return {"file": arch_path, "fits": True, "detail": "a subnet of this supernet"}
    mine = ckpt.arch
    if arch.input_channel != mine.input_channel:
        return {"file": arch_path, "fits": False,
                "detail": f"input_channel {arch.input_channel}, checkpoint {mine.input_channel}"}
    if len(arch.stages) != len(mine.stages):
        return {"file": arch_path, "fits": False, "detail": f"{len(arch.stages)} stages, checkpoint {len(mine.stages)}"}
    for s, (a, m) in enumerate(zip(arch.stages, mine.stages)):
        for name, x, y in (("channel", a.channel, m.channel), ("num_blocks", a.num_blocks, m.num_blocks)):
            if x != y:
                return {"file": arch_path, "fits": False, "detail": f"stage {s} {name} {x}, checkpoint {y}"}
        for b, (ba, bm) in enumerate(zip(a.blocks, m.blocks)):
            if ba != bm:
                return {"file": arch_path, "fits": False, "detail": (
                    f"stage {s} block {b} [expansion, kernel] [{ba.expansion}, {ba.kernel}], "
                    f"checkpoint [{bm.expansion}, {bm.kernel}]")}
    if tuple(arch.deconv_setting) != tuple(mine.deconv_setting):
        return {"file": arch_path, "fits": False,
                "detail": f"deconv_setting {list(arch.deconv_setting)}, checkpoint {list(mine.deconv_setting)}"}
    return {"file": arch_path, "fits": True, "detail": "same network (strides and resolution are not stored)"}
