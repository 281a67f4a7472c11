"""``litepose-nas arch validate|info``."""
from __future__ import annotations

import click

from .common import echo_json, json_option, load_space, space_option


@click.group()
def arch() -> None:
    """Validate and describe architecture JSON files (the original repo's format)."""


@arch.command("validate")
@click.argument("files", nargs=-1, required=True)
@space_option
def validate(files: tuple[str, ...], space_path: str) -> None:
    """Check that each FILE (or published name, e.g. search-XS) is a well-formed architecture inside the search space."""
    from ..errors import ArchError
    from ..space.published import load_arch

    space = load_space(space_path)
    failures = []
    for path in files:
        try:
            space.validate(load_arch(path), source=path)
            click.echo(f"ok: {path} ({space.name})")
        except ArchError as exc:
            failures.append(str(exc))
    if failures:
        if len(failures) == 1:
            raise ArchError(failures[0])
        for message in failures[:-1]:
            click.echo(f"error: {message}", err=True)
        raise ArchError(failures[-1])


@arch.command("info")
@click.argument("file")
@click.option("--num-joints", type=click.Choice(["14", "17"]), default="17", show_default=True,
              help="14 for CrowdPose, 17 for COCO.")
@json_option
def info(file: str, num_joints: str, as_json: bool) -> None:
    """Resolution, widths, depths, kernels, parameters and MACs of an architecture FILE or published name (search-XS)."""
    from ..cost import cost_arrays
    from ..resources import shipped_dir
    from ..space import ArchArrays, SearchSpace
    from ..space.published import load_arch

    a = load_arch(file)
    joints = int(num_joints)
    cost = {k: int(v[0]) for k, v in cost_arrays(ArchArrays.from_archs([a]), joints).items()}
    spaces = [SearchSpace.from_yaml(p) for p in sorted(shipped_dir("search_spaces").glob("*.yaml"))]
    report = {
        "file": file,
        "img_size": a.img_size,
        "input_channel": a.input_channel,
        "widths": list(a.widths),
        "depths": list(a.depths),
        "kernels": sorted({k for ks in a.kernels() for k in ks}),
        "expansions": sorted({e for es in a.expansions() for e in es}),
        "deconv_setting": list(a.deconv_setting),
        "num_joints": joints,
        "params": cost["params"],
        "macs": cost["macs"],
        "macs_paper": cost["macs_paper"],
        "in_spaces": [s.name for s in spaces if s.contains(a)],
    }
    if as_json:
        echo_json(report)
        return
    click.echo(f"{file}: {a.describe()}")
    click.echo(f"  resolution     {a.img_size} x {a.img_size}")
    click.echo(f"  stem width     {a.input_channel}")
    click.echo(f"  stage widths   {' / '.join(map(str, a.widths))}")
    click.echo(f"  stage depths   {' / '.join(map(str, a.depths))}")
    click.echo(f"  kernels        {', '.join(map(str, report['kernels']))}")
    click.echo(f"  expansions     {', '.join(map(str, report['expansions']))}")
    click.echo(f"  head widths    {' / '.join(map(str, a.deconv_setting))}")
    click.echo(f"  joints         {joints}")
    click.echo(f"  parameters     {report['params']:,}")
    click.echo(f"  MACs (exact)   {report['macs'] / 1e9:.3f} G ({report['macs']:,})")
    click.echo(f"  MACs (paper)   {report['macs_paper'] / 1e9:.3f} G")
    click.echo(f"  in spaces      {', '.join(report['in_spaces']) or '(none of the shipped spaces)'}")
