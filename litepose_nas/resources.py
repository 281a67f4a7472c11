"""Locate the data folders shipped with the package (search spaces, predictors, latency tables).

A wheel carries them inside the package (``litepose_nas/_shipped/``); a source checkout or an
editable install has them at the repository root. Both are looked up, wheel first.
"""
from __future__ import annotations

from pathlib import Path

SHIPPED_FOLDERS = ("search_spaces", "predictors", "latency_tables")

_PACKAGE_DIR = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    """Return the folder holding the shipped data ``name`` (one of :data:`SHIPPED_FOLDERS`)."""
    if name not in SHIPPED_FOLDERS:
        raise ValueError(f"unknown shipped folder {name!r}; allowed: {', '.join(SHIPPED_FOLDERS)}")
    for candidate in (_PACKAGE_DIR / "_shipped" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"shipped data folder {name!r} not found (broken installation?)")


def shipped_file(folder: str, filename: str) -> Path:
    return shipped_dir(folder) / filename
