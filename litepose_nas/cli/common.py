"""Options and helpers shared by CLI commands."""
from __future__ import annotations

import json
from typing import Any

import click

DEFAULT_SPACE = "litepose"

space_option = click.option(
    "--space", "space_path", default=DEFAULT_SPACE, show_default=True,
    help="Search space: a YAML file or the name of a shipped space (litepose, litepose-elastic).",
)
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bars or tables.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")


def load_space(path: str):
    from ..space import SearchSpace

    return SearchSpace.from_yaml(path)


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2))


def format_table(rows: list[list[Any]], header: list[str]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def output_path(folder: bool = False):
    """A click callback that checks an output path before the command's work starts (a name too
    long, a file where a folder is needed, a read-only place): one line naming the option."""

    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        from ..io import check_output_path

        if value is not None and str(value).startswith("-"):
            # `--json --quiet` would otherwise write the results to a file named "--quiet"
            raise click.BadParameter(f"{value!r} looks like an option, not a {'folder' if folder else 'file'} name "
                                     f"(write ./{value} for a name starting with '-')", ctx=ctx, param=param)
        if value is not None:
            try:
                check_output_path(value, f"{param.opts[0]} {'folder' if folder else 'file'}", click.BadParameter,
                                  folder=folder)
            except click.BadParameter as exc:
                raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
        return value

    return check


def cpu_threads() -> click.IntRange:
    """``--threads``: 1 to this machine's CPU count (more threads than cores only slows a job down)."""
    import os

    return click.IntRange(1, os.cpu_count() or 1)


class FiniteFloatRange(click.FloatRange):
    """A FloatRange that also refuses nan (which compares false with both bounds) and inf."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        import math

        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


# a budget: finite and positive
budget_range = FiniteFloatRange(0, 1e9, min_open=True)
