"""Held-out check of a predictor: ``heldout.csv`` beside it, architectures never used in fitting.

Columns: ``arch_json`` (the architecture in the original JSON format, one string) and ``ap``
(measured). ``predictor info`` reports the Kendall tau and RMSE of the predictor on those rows.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import PredictorError

HELDOUT_FILE = "heldout.csv"
COLUMNS = ("arch_json", "ap")


def write_heldout(path: str | os.PathLike, archs: Sequence[Any], ap: Sequence[float]) -> Path:
    """Write ``heldout.csv`` rows (``Arch`` objects and their measured AP), atomically."""
    import io

    from ..io import write_text_atomic

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(COLUMNS)
    for arch, value in zip(archs, ap):
        w.writerow([arch.to_json().replace("\n", " "), f"{float(value):.6f}"])
    write_text_atomic(path, buf.getvalue())
    return Path(path)


def read_heldout(path: str | os.PathLike) -> tuple[list[Any], np.ndarray]:
    """The architectures and measured AP of a ``heldout.csv``; one-line errors naming row and column."""
    from ..space import Arch

    path = Path(path)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise PredictorError(f"{path}: missing column '{missing[0]}' (needs {', '.join(COLUMNS)})")
        archs, ap = [], []
        for i, row in enumerate(reader, start=2):
            try:
                archs.append(Arch.from_json(row["arch_json"]))
                ap.append(float(row["ap"]))
            except (ValueError, TypeError) as exc:
                raise PredictorError(f"{path}: line {i}: {exc}") from None
    return archs, np.asarray(ap, dtype=np.float64)


def heldout_scores(predictor: Any, folder: str | os.PathLike) -> dict[str, Any]:
    """``heldout_rows``, ``heldout_kendall_tau`` and ``heldout_rmse`` of ``predictor`` on the
    ``heldout.csv`` in ``folder`` (all ``None`` when there is none)."""
    path = Path(folder) / HELDOUT_FILE
    if not path.is_file():
        return {"heldout_rows": 0, "heldout_kendall_tau": None, "heldout_rmse": None}
    from scipy.stats import kendalltau

    archs, ap = read_heldout(path)
    if len(ap) < 2:
        raise PredictorError(f"{path}: needs at least 2 rows, has {len(ap)}")
    pred = np.asarray(predictor.predict(archs), dtype=np.float64)
    tau = kendalltau(pred, ap).statistic
    return {"heldout_rows": int(len(ap)), "heldout_kendall_tau": float(tau),
            "heldout_rmse": float(np.sqrt(np.mean((pred - ap) ** 2)))}
