"""``litepose-nas space info``."""
from __future__ import annotations

import click

from .common import DEFAULT_SPACE, echo_json, format_table, json_option


@click.group()
def space() -> None:
    """Describe search spaces."""


@space.command("info")
@click.argument("space_path", default=DEFAULT_SPACE, required=False)
@json_option
def info(space_path: str, as_json: bool) -> None:
    """Dimensions and exact size of SPACE (a YAML file or a shipped space name)."""
    from ..cost import cost_arrays
    from ..space import ArchArrays, SearchSpace

    s = SearchSpace.from_yaml(space_path)
    extremes = {name: cost_arrays(ArchArrays.from_archs([arch]), 17)
                for name, arch in (("smallest", s.smallest()), ("largest", s.largest()))}
    summary = s.summary()
    summary.update({f"{k}_macs": int(v["macs"][0]) for k, v in extremes.items()})
    if as_json:
        echo_json(summary)
        return
    click.echo(f"search space '{s.name}': {s.description}")
    click.echo(f"  architectures  {s.size():,}")
    click.echo(f"  dimensions     {s.num_dimensions} encoded coordinates")
    click.echo(f"  resolutions    {', '.join(map(str, s.resolutions))}")
    click.echo(f"  stem widths    {', '.join(map(str, s.stem_widths))} (after a fixed {s.stem_mid_channels}-channel stem)")
    rows = [[i, st.stride, ",".join(map(str, st.widths)), ",".join(map(str, st.depths)),
             ",".join(map(str, st.kernels)), ",".join(map(str, st.expansions))] for i, st in enumerate(s.stages)]
    click.echo(format_table(rows, ["stage", "stride", "widths", "depths", "kernels", "expansions"]))
    for i, widths in enumerate(s.head_widths):
        click.echo(f"  head layer {i}   {', '.join(map(str, widths))}")
    click.echo(f"  MACs (COCO)    {summary['smallest_macs'] / 1e9:.3f} G smallest .. {summary['largest_macs'] / 1e9:.3f} G largest")
