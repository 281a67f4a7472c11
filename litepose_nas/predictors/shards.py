"""Part files of a distributed ``predictor collect`` and their merge into the one ``evals.csv``.

Under ``torchrun`` each rank evaluates the architectures ``i`` of the stratified list with
``i % world_size == rank`` and appends each row (flushed, fsync'ed) to its own part file
``evals.csv.rank<R>.part`` next to ``evals.csv``. At the end rank 0 merges every part into
``evals.csv``: the rows already there keep their order, the new ones follow in the order of the
stratified list (the order a single process writes them in), an architecture appears once; the
table is written atomically and only then are the part files removed. A killed run leaves its part
files behind, and the rerun (any number of processes, one included) counts their rows as done.
"""
from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

from ..errors import DataError
from .data import COLUMNS, trim_partial_row

_PART = re.compile(r"\.rank(\d+)\.part$")


def part_path(out: str | os.PathLike, rank: int) -> Path:
    """Rank ``rank``'s part file of the table ``out``."""
    out = Path(out)
    return out.with_name(f"{out.name}.rank{int(rank)}.part")


def part_files(out: str | os.PathLike) -> list[Path]:
    """The part files of ``out`` visible from this machine, by rank."""
    out = Path(out)
    if not out.parent.is_dir():
        return []
    found = []
    for p in out.parent.glob(f"{out.name}.rank*.part"):
        m = _PART.search(p.name)
        if m and p.name == f"{out.name}.rank{m.group(1)}.part":
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def read_rows(path: str | os.PathLike) -> list[dict[str, str]]:
    """The finished rows of a (part) table as strings; a row cut short by a kill is dropped, a
    missing or empty file has none."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file") from None
    reader = csv.DictReader(io.StringIO(text[: text.rfind("\n") + 1]))
    rows = [dict(r) for r in reader]
    if rows and "arch" not in (reader.fieldnames or []):
        raise DataError(f"{path}: missing column 'arch' (columns: {', '.join(reader.fieldnames or [])}; "
                        f"a predictor collect table has {', '.join(COLUMNS)})")
    return rows


def merge_rows(out: str | os.PathLike, new_rows: list[dict[str, str]]) -> int:
    """Write ``out`` = its own rows, then the ``new_rows`` not yet there in stratified-list order
    (column ``index``), each architecture once; atomic. Returns the number of rows added."""
    from ..io import write_text_atomic

    out = Path(out)
    if out.exists():
        trim_partial_row(out)
    rows = read_rows(out)
    seen = {r["arch"] for r in rows}
    added = 0
    for row in sorted(new_rows, key=lambda r: int(r["index"])):
        if row["arch"] not in seen:
            seen.add(row["arch"])
            rows.append(row)
            added += 1
    if not added and out.exists():
        return 0
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out, buf.getvalue())
    return added


def remove_parts(paths: list[Path]) -> None:
    for p in paths:
        p.unlink(missing_ok=True)
