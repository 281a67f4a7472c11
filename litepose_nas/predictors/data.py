"""The evaluation table: one row per evaluated architecture (``evals.csv``).

Columns: ``arch`` (the architecture in the original repository's JSON format), the target
(``ap`` by default) and free extra columns (``macs_g``, ``ap50``, ``seconds``, ...). Rows are
appended one at a time by ``predictor collect``; a row cut short by a kill (no final newline)
is dropped when reading and trimmed before appending again.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ArchError, DataError
from ..io import csv_rows, loads_json_bounded, read_text_bounded
from ..space import Arch, SearchSpace

COLUMNS = ("index", "space", "macs_g", "ap", "ap50", "ap75", "seconds", "arch")


@dataclass
class EvalTable:
    """Architectures and their measured targets, read from an ``evals.csv``."""

    archs: list[Arch]
    targets: np.ndarray
    rows: list[dict[str, str]]
    path: Path | None = None
    target: str = "ap"

    def __len__(self) -> int:
        return len(self.archs)

    def encoded(self, space: SearchSpace) -> np.ndarray:
        try:
            return space.encode(self.archs)
        except ArchError as exc:
            raise DataError(f"{self.path}: an architecture lies outside space '{space.name}' ({exc})") from None


def trim_partial_row(path: Path) -> None:
    """Drop a last line without a newline (a row a kill cut short) so appending stays valid."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with open(path, "r+b") as f:
            f.truncate(cut)


def read_evals(path: str | os.PathLike, target: str = "ap") -> EvalTable:
    """Read an evaluation table; errors name the file, the row and the column."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: evaluation table not found")
    text = read_text_bounded(path, "evaluations table", DataError)
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # a row cut short by a kill
    fields = next(iter(csv_rows(text[: text.find("\n") + 1], str(path), DataError)), [])
    reader = csv_rows(text, str(path), DataError, dict_reader=True)
    for column in ("arch", target):
        if column not in fields:
            raise DataError(f"{path}: missing column {column!r} (columns: {', '.join(fields) or 'none'}; required: arch, {target})")
    archs, ys, rows = [], [], []
    for i, row in enumerate(reader, start=2):
        try:
            arch = Arch.from_dict(loads_json_bounded(row["arch"], f"{path} line {i} column arch", DataError),
                                  source=f"{path} line {i} column arch")
        except ArchError as exc:
            raise DataError(str(exc)) from None
        try:
            y = float(row[target])
        except (TypeError, ValueError):
            raise DataError(f"{path} line {i}: column {target} is {row[target]!r}, expected a number") from None
        if not math.isfinite(y):
            raise DataError(f"{path} line {i}: column {target} is {y}, expected a finite number")
        archs.append(arch)
        ys.append(y)
        rows.append(row)
    if not archs:
        raise DataError(f"{path}: no rows")
    return EvalTable(archs, np.asarray(ys, dtype=np.float64), rows, path, target)


def append_row(path: str | os.PathLike, row: dict[str, Any], columns: Sequence[str] = COLUMNS) -> None:
    """Append one row (writing the header first for a new file) and flush it to disk."""
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    if new:
        writer.writeheader()
    writer.writerow({k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in row.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())


def write_evals(path: str | os.PathLike, archs: Sequence[Arch], targets: Sequence[float],
                extra: dict[str, Sequence[Any]] | None = None, space_name: str = "") -> None:
    """Write a whole table at once (atomically), e.g. synthetic data for tests."""
    from ..io import write_text_atomic

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for i, (arch, y) in enumerate(zip(archs, targets)):
        row = {"index": i, "space": space_name, "ap": repr(float(y)), "arch": arch.to_json()}
        for k, values in (extra or {}).items():
            row[k] = values[i]
        writer.writerow(row)
    write_text_atomic(path, buf.getvalue())
