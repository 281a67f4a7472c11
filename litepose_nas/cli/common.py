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
