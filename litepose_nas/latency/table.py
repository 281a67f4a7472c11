"""Latency lookup tables: one CSV row per layer configuration plus a JSON header.

``NAME.csv`` holds the rows (``key, kind, h, cin, cout, mid, kernel, stride, median_ms, p90_ms,
samples``); ``NAME.json`` beside it holds the header (device, runtime and version, threads,
precision, date, search space, number of joints, provenance, and the fitted correction).

Prediction for an architecture: ``scale * sum(median_ms of its layers) + offset_ms``, where
``scale`` and ``offset_ms`` are fitted per device on whole networks measured end to end (they
absorb what a sum of isolated layers misses: operator fusion across layers, cache effects, the
per-call overhead of the runtime).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import TableError
from ..io import csv_rows, decode_text, read_bytes_bounded, read_json_bounded, write_bytes_atomic, write_text_atomic
from ..space.arch import Arch
from ..space.search_space import ArchArrays, SearchSpace
from .layers import _BITS, FIELDS, KINDS, LayerConfig, pack, slot_keys, unpack

# exclusive upper bound of each shape field (FIELDS order): what its bits in the packed key hold
_FIELD_LIMITS = tuple(1 << b for b in _BITS[1:])
_MAX_SAMPLES = (1 << 31) - 1

FORMAT_VERSION = 1
COLUMNS = ("key", "kind") + FIELDS + ("median_ms", "p90_ms", "samples")
REQUIRED_HEADER = ("format_version", "name", "device", "runtime", "space", "num_joints", "provenance", "correction")
USER_DIR_ENV = "LITEPOSE_NAS_HOME"


@dataclass
class LatencyTable:
    """Per-layer latencies of one device for one search space (see the module docstring)."""

    header: dict[str, Any]
    configs: list[LayerConfig]
    median_ms: np.ndarray
    p90_ms: np.ndarray
    samples: np.ndarray
    path: Path | None = None
    _keys: np.ndarray = field(init=False, repr=False)
    _order: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.median_ms = np.asarray(self.median_ms, dtype=np.float64)
        self.p90_ms = np.asarray(self.p90_ms, dtype=np.float64)
        self.samples = np.asarray(self.samples, dtype=np.int64)
        keys = pack(np.array([c.as_ints() for c in self.configs], dtype=np.int64).reshape(-1, 7))
        self._order = np.argsort(keys, kind="stable")
        self._keys = keys[self._order]
        # one extra zero at the end: where inactive block slots point
        self._values = np.append(self.median_ms[self._order], 0.0)

    # ------------------------------------------------------------------ header fields
    @property
    def name(self) -> str:
        return str(self.header["name"])

    @property
    def device(self) -> str:
        return str(self.header["device"])

    @property
    def space_name(self) -> str:
        return str(self.header["space"])

    @property
    def runtime(self) -> str:
        return str(self.header["runtime"])

    @property
    def num_joints(self) -> int:
        return int(self.header["num_joints"])

    @property
    def provenance(self) -> str:
        p = self.header["provenance"]
        return str(p.get("kind", "")) if isinstance(p, dict) else str(p)

    @property
    def provenance_details(self) -> str:
        p = self.header["provenance"]
        return str(p.get("details", "")) if isinstance(p, dict) else ""

    @property
    def scale(self) -> float:
        return float(self.header["correction"]["scale"])

    @property
    def offset_ms(self) -> float:
        return float(self.header["correction"]["offset_ms"])

    def __len__(self) -> int:
        return len(self.configs)

    # ------------------------------------------------------------------ prediction
    def row_indices(self, arrays: ArchArrays, stem_mid: int = 32) -> np.ndarray:
        """``[N, L]`` positions (in sorted-key order) of each layer of each architecture;
        inactive slots point at the trailing zero. Raises :class:`TableError` on a missing row."""
        _, keys, active = slot_keys(arrays, self.num_joints, stem_mid)
        pos = np.searchsorted(self._keys, keys)
        pos_c = np.minimum(pos, len(self._keys) - 1)
        found = self._keys[pos_c] == keys
        missing = active & ~found
        if missing.any():
            n, s = np.argwhere(missing)[0]
            cfg = LayerConfig.from_ints(unpack(keys[n, s]))
            count = len(np.unique(keys[missing]))
            raise TableError(
                f"latency table '{self.name}' has no row for layer {cfg.key} (architecture {n}; "
                f"{count} unknown configuration(s) in all): profile the space again (a table of space "
                f"'{self.space_name}' from another space version or joint count lacks rows)"
            )
        return np.where(active, pos_c, len(self._keys))

    def layer_sums(self, encoded_or_archs, space: SearchSpace | None = None) -> np.ndarray:
        """Sum of the per-layer medians (before the correction), ``[N]`` ms."""
        x = encoded_or_archs
        if space is not None and isinstance(x, np.ndarray) and x.dtype.kind in "iu":
            self._check_space(space)
            enc = np.atleast_2d(x)
            space.check_encoded(enc)
            fast = self._fast_positions(space)
            if fast is not None:
                lookup, rows, entry_ms = fast
                if entry_ms is not None:  # every layer of the space has a row: one gather
                    return entry_ms[lookup.positions(enc)].sum(axis=1)
                p = rows[lookup.positions(enc)]
                if p.min() >= 0:  # else an unknown layer: the slow path names it
                    return self._values[p].sum(axis=1)
        arrays, stem_mid = self._arrays(x, space)
        return self._values[self.row_indices(arrays, stem_mid)].sum(axis=1)

    def _fast_positions(self, space: SearchSpace):
        """For ``space`` (built once per space): the layer-key lookup of its slots, for each
        entry of its concatenated tables the position of that layer's row (-1: no such row;
        the trailing zero for an inactive slot), and, when the table has a row for every entry,
        each entry's median in ms (else None)."""
        from .layers import build_layer_lookup

        cache = self.__dict__.setdefault("_fast_cache", {})
        ident = space.fingerprint
        if ident not in cache:
            lookup = build_layer_lookup(space, self.num_joints)
            if lookup is None:
                cache[ident] = None
            else:
                keys = lookup.concatenated()
                pos = np.searchsorted(self._keys, keys)
                pos_c = np.minimum(pos, len(self._keys) - 1)
                found = self._keys[pos_c] == keys
                rows = np.where(keys == 0, len(self._keys), np.where(found, pos_c, -1))
                complete = bool((rows >= 0).all())
                cache[ident] = (lookup, rows, self._values[rows] if complete else None)
        return cache[ident]

    def _check_space(self, space: SearchSpace) -> None:
        if space.name != self.space_name:
            raise TableError(
                f"latency table '{self.name}' is for search space '{self.space_name}', not '{space.name}': "
                f"profile that space (litepose-nas profile --space ...) or pick a table of space '{space.name}'"
            )

    def predict(self, encoded_or_archs, space: SearchSpace | None = None) -> np.ndarray:
        """Predicted latency in ms, ``[N]`` float64: ``scale * layer_sum + offset_ms``.

        ``encoded_or_archs``: encoded rows of ``space`` (``[N, D]`` or ``[D]``), ``ArchArrays``,
        an :class:`Arch` or a list of them.
        """
        return self.scale * self.layer_sums(encoded_or_archs, space) + self.offset_ms

    def predict_archs(self, archs: Sequence[Arch] | Arch) -> np.ndarray:
        return self.predict(archs)

    def _arrays(self, x, space: SearchSpace | None) -> tuple[ArchArrays, int]:
        if space is not None:
            self._check_space(space)
        stem_mid = space.stem_mid_channels if space is not None else int(self.header.get("stem_mid_channels", 32))
        if isinstance(x, Arch):
            return ArchArrays.from_archs([x]), stem_mid
        if isinstance(x, ArchArrays):
            return x, stem_mid
        if isinstance(x, np.ndarray) and x.dtype.kind in "iu":
            if space is None:
                raise TableError("encoded architectures need their search space: pass space=...")
            enc = np.atleast_2d(x)
            space.check_encoded(enc)
            return space.arrays(enc), stem_mid
        if isinstance(x, (list, tuple)) and x and all(isinstance(a, Arch) for a in x):
            return ArchArrays.from_archs(list(x)), stem_mid
        raise TableError(f"expected encoded architectures, ArchArrays, an Arch or a list of Arch, got {type(x).__name__}")

    # ------------------------------------------------------------------ persistence
    def to_csv_text(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(COLUMNS)
        for c, m, p, s in zip(self.configs, self.median_ms, self.p90_ms, self.samples):
            w.writerow([c.key, c.kind, c.h, c.cin, c.cout, c.mid, c.kernel, c.stride, f"{m:.6f}", f"{p:.6f}", int(s)])
        return buf.getvalue()

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``NAME.json`` then ``NAME.csv`` (each atomically); returns the CSV path.

        Two files cannot be renamed into place at once. The header goes first and names the CSV's
        SHA-256, and tables are found by their CSV: a save killed between the two renames leaves
        no table (the first save) or a pair ``load`` refuses as mismatched, never a table that
        reads as whole but is not.
        """
        csv_path = Path(path).with_suffix(".csv")
        data = self.to_csv_text().encode()
        header = dict(self.header)
        header["format_version"] = FORMAT_VERSION
        header["rows"] = len(self.configs)
        header["csv_sha256"] = hashlib.sha256(data).hexdigest()
        write_text_atomic(csv_path.with_suffix(".json"), json.dumps(header, indent=2) + "\n")
        write_bytes_atomic(csv_path, data)  # bytes: the digest is of what lands on disk
        self.path = csv_path
        self.header = header
        return csv_path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LatencyTable":
        csv_path = Path(path)
        if csv_path.suffix == ".json":
            csv_path = csv_path.with_suffix(".csv")
        json_path = csv_path.with_suffix(".json")
        header = _read_header(json_path)
        data = read_bytes_bounded(csv_path, "latency table", TableError)
        digest = header.get("csv_sha256")
        if digest is not None and digest != hashlib.sha256(data).hexdigest():
            raise TableError(f"{csv_path}: does not match its header {json_path.name} (field csv_sha256): saved "
                             "halfway (profile it again) or edited by hand (delete the field to accept the edit)")
        configs, med, p90, samples = _parse_rows(decode_text(data, csv_path, "latency table", TableError), csv_path)
        rows = header.get("rows")
        if rows is not None and rows != len(configs):
            raise TableError(f"{csv_path}: {len(configs)} rows but the header {json_path.name} says {rows} (truncated file?)")
        return cls(header, configs, med, p90, samples, path=csv_path)


def _read_header(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise TableError(f"{path}: latency table header not found (each NAME.csv needs its NAME.json)")
    header = read_json_bounded(path, "latency table header", TableError)
    if not isinstance(header, dict):
        raise TableError(f"{path}: latency table header must be a JSON object")
    for key in REQUIRED_HEADER:
        if key not in header:
            raise TableError(f"{path}: header field {key!r} missing (required: {', '.join(REQUIRED_HEADER)})")
    if header["format_version"] != FORMAT_VERSION:
        raise TableError(f"{path}: format_version {header['format_version']!r} not supported (allowed: {FORMAT_VERSION})")
    corr = header["correction"]
    if not isinstance(corr, dict) or not all(
        isinstance(corr.get(k), (int, float)) and math.isfinite(corr[k]) for k in ("scale", "offset_ms")
    ):
        raise TableError(f"{path}: header field 'correction' must hold finite numbers 'scale' and 'offset_ms'")
    if corr["scale"] <= 0:
        # a non-positive scale turns every prediction around (a search would pick the slowest net)
        raise TableError(f"{path}: header field 'correction.scale' is {corr['scale']} (allowed: a number > 0)")
    if not isinstance(header["num_joints"], int) or header["num_joints"] <= 0:
        raise TableError(f"{path}: header field 'num_joints' must be a positive integer, got {header['num_joints']!r}")
    return header


def _parse_rows(text: str, path: Path) -> tuple[list[LayerConfig], np.ndarray, np.ndarray, np.ndarray]:
    reader = iter(csv_rows(text, str(path), TableError))
    head = next(reader, None)
    if head is None or tuple(head) != COLUMNS:
        raise TableError(f"{path}: first line must be the columns {','.join(COLUMNS)}")
    configs, med, p90, samples, seen = [], [], [], [], set()
    for line_no, row in enumerate(reader, start=2):
        if len(row) != len(COLUMNS):
            raise TableError(f"{path}: line {line_no} has {len(row)} fields, expected {len(COLUMNS)}")
        kind = row[1]
        if kind not in KINDS:
            raise TableError(f"{path}: line {line_no}: kind {kind!r} not allowed (allowed: {', '.join(KINDS)})")
        try:
            ints = [int(v) for v in row[2:8]]
            m, p, s = float(row[8]), float(row[9]), int(row[10])
        except ValueError:
            raise TableError(f"{path}: line {line_no}: non-numeric field in {row}") from None
        if not (math.isfinite(m) and math.isfinite(p)) or m < 0 or p < 0 or s < 0 or min(ints) < 0:
            raise TableError(f"{path}: line {line_no}: latencies and shapes must be finite and >= 0")
        # each shape field has a fixed bit width in the packed int64 key: a wider value would
        # overflow (or silently spill into its neighbour's bits and alias another layer)
        for name, value, limit in zip(FIELDS, ints, _FIELD_LIMITS):
            if value >= limit:
                raise TableError(
                    f"{path}: line {line_no}: field {name} {value} out of range (allowed: 0 to {limit - 1})"
                )
        if s > _MAX_SAMPLES:
            raise TableError(f"{path}: line {line_no}: field samples {s} out of range (allowed: 0 to {_MAX_SAMPLES})")
        cfg = LayerConfig(kind, *ints)
        if cfg.key != row[0]:
            raise TableError(f"{path}: line {line_no}: key {row[0]!r} does not match its fields ({cfg.key})")
        if cfg in seen:
            raise TableError(f"{path}: line {line_no}: duplicate row {cfg.key}")
        seen.add(cfg)
        configs.append(cfg)
        med.append(m)
        p90.append(p)
        samples.append(s)
    if not configs:
        raise TableError(f"{path}: latency table has no rows")
    return configs, np.array(med), np.array(p90), np.array(samples)


# ---------------------------------------------------------------------- discovery
def user_dir() -> Path:
    """Where user tables live: ``$LITEPOSE_NAS_HOME/latency_tables`` or ``~/.litepose-nas/latency_tables``."""
    home = os.environ.get(USER_DIR_ENV)
    return (Path(home) if home else Path.home() / ".litepose-nas") / "latency_tables"


def _search_dirs() -> list[tuple[str, Path]]:
    from ..resources import shipped_dir

    dirs = [("user", user_dir())]
    try:
        dirs.append(("shipped", shipped_dir("latency_tables")))
    except FileNotFoundError:
        pass
    return dirs


def list_tables() -> list[dict[str, Any]]:
    """Every readable table in the user folder and the shipped folder (user first).

    Each item: ``name, device, runtime, provenance, space, path, source, valid`` (+ ``error`` if
    broken). Each table is read whole, so a garbage CSV under a good header is listed as invalid.
    """
    out = []
    for source, folder in _search_dirs():
        if not folder.is_dir():
            continue
        for csv_path in sorted(folder.glob("*.csv")):
            item: dict[str, Any] = {"name": csv_path.stem, "path": str(csv_path), "source": source}
            try:
                h = LatencyTable.load(csv_path).header
                p = h["provenance"]
                item.update(device=h["device"], runtime=h["runtime"], space=h["space"],
                            provenance=p.get("kind", "") if isinstance(p, dict) else str(p), valid=True)
            except TableError as exc:
                item.update(device="", runtime="", space="", provenance="", valid=False, error=str(exc))
            out.append(item)
    return out


def load_table(name_or_path: str | os.PathLike, space: SearchSpace | str | None = None) -> LatencyTable:
    """A table by path (``.csv`` or ``.json``), or by name: user folder first, then shipped.

    With ``space`` (a space or its name), a name also matches a table whose header ``device``
    is ``name`` for that space (e.g. ``raspberry-pi-4`` -> ``raspberry-pi-4-elastic`` for
    ``litepose-elastic``).
    """
    candidate = Path(name_or_path)
    if candidate.suffix in (".csv", ".json") or candidate.exists():
        if candidate.is_dir():
            raise TableError(f"{candidate}: is a folder, expected a latency table NAME.csv")
        return LatencyTable.load(candidate)
    name = str(name_or_path)
    space_name = space.name if isinstance(space, SearchSpace) else space
    tables = list_tables()
    exact = [t for t in tables if t["name"] == name]
    if exact and not exact[0]["valid"]:
        # a broken user table is reported, not silently replaced by the shipped one of that name
        raise TableError(exact[0]["error"])
    if space_name is not None:
        matching = [t for t in exact if t.get("space") == space_name]
        matching += [t for t in tables if t.get("device") == name and t.get("space") == space_name]
        if matching:
            return LatencyTable.load(matching[0]["path"])
    if exact:
        return LatencyTable.load(exact[0]["path"])
    names = sorted({t["name"] for t in tables})
    raise TableError(f"latency table {name!r} not found (available: {', '.join(names) or 'none'}; user tables go in {user_dir()})")
