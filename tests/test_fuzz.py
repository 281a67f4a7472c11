"""Fuzzing the parsers of user files: whatever the bytes, only the documented error comes out.

* architecture JSON (``Arch.from_json`` / ``Arch.from_dict``) and ``SearchSpace.validate``:
  ``ArchError`` or a valid result;
* search-space definitions (``SearchSpace.from_dict``): ``SpaceError`` (an ``ArchError``);
* latency tables (``LatencyTable.load``: the CSV rows and the JSON header): ``TableError``.

Examples are derived from valid files by random edits (a value replaced by any JSON value, a CSV
cell by any text or number-like string, lines cut or repeated) plus free-form text, so the fuzzer
spends its time near the valid format where parsers have the most branches. ``derandomize``
keeps the run reproducible.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from litepose_nas.errors import ArchError, SpaceError, TableError
from litepose_nas.space import Arch, SearchSpace
from reliability_helpers import TINY_ARCH, TINY_SPACE_YAML, make_table

FUZZ = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from([0, -1, 1, 2, 3, 7, 8, 16, 256, 1 << 40, 0.5, "8", "", "nan"]),
)
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)), max_leaves=12)


def _paths(obj, prefix=()):
    """Every path (tuple of keys / indices) into a JSON value."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _replace(obj, path, value):
    if not path:
        return value
    obj = json.loads(json.dumps(obj))
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return obj


@st.composite
def mutated(draw, base):
    """``base`` with 1-3 of its values (at any depth) replaced, deleted or extended."""
    obj = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(obj))
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "delete", "append"]))
        if action == "replace" or not path:
            obj = _replace(obj, path, draw(json_values))
        else:
            parent = obj
            for key in path[:-1]:
                parent = parent[key]
            if action == "delete":
                del parent[path[-1]]
            elif isinstance(parent, list):
                parent.append(draw(json_values))
            else:
                parent[draw(st.text(max_size=6))] = draw(json_values)
    return obj


@pytest.fixture(scope="module")
def tiny_space() -> SearchSpace:
    import yaml

    return SearchSpace.from_dict(yaml.safe_load(TINY_SPACE_YAML), "tiny")


# ====================================================================== architecture JSON
@FUZZ
@given(arch=mutated(TINY_ARCH))
def test_arch_parser_mutations(arch, tiny_space) -> None:
    try:
        parsed = Arch.from_dict(arch, "fuzz.json")
    except ArchError as exc:
        assert "fuzz.json" in str(exc) and "\n" not in str(exc)
        return
    # parsed: the round trip is exact and the space check raises only ArchError
    assert Arch.from_json(parsed.to_json()) == parsed
    for space in (tiny_space, SearchSpace.from_yaml("litepose")):
        try:
            space.validate(parsed, source="fuzz.json")
        except ArchError:
            pass


@FUZZ
@given(text=st.one_of(st.text(max_size=200), st.builds(lambda a: json.dumps(a)[: len(json.dumps(a)) // 2],
                                                       mutated(TINY_ARCH)), json_values.map(json.dumps)))
def test_arch_parser_text(text: str) -> None:
    text = "{" + text if not text.lstrip().startswith(("{", "[")) else text  # parse as text, not as a path
    try:
        Arch.from_json(text)
    except ArchError:
        pass


@FUZZ
@given(data=st.binary(max_size=300))
def test_arch_parser_file_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "arch.json"
        path.write_bytes(data)
        try:
            Arch.from_json(path)
        except ArchError as exc:
            assert str(path) in str(exc)


# ====================================================================== search-space definitions
@FUZZ
@given(definition=st.deferred(lambda: mutated(_tiny_space_dict())))
def test_space_parser_mutations(definition) -> None:
    try:
        space = SearchSpace.from_dict(definition, "fuzz.yaml")
    except SpaceError as exc:
        assert "\n" not in str(exc)
        return
    # a space that parses works: its extremes validate
    space.validate(space.largest())
    space.validate(space.smallest())


def _tiny_space_dict() -> dict:
    import yaml

    return yaml.safe_load(TINY_SPACE_YAML)


# ====================================================================== latency tables
@pytest.fixture(scope="module")
def table_files(tmp_path_factory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("table")
    space = root / "tiny.yaml"
    space.write_text(TINY_SPACE_YAML)
    csv_path = make_table(root / "t.csv", space)
    header = json.loads(csv_path.with_suffix(".json").read_text())
    del header["csv_sha256"]  # the fuzzed CSVs are hand edits (else the digest refuses them before parsing)
    return csv_path.read_text(), json.dumps(header)


cell_text = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "-1", "0", "1e400", "-0.0", "", " ", "1.5", "99999999999999999999",
                     "4096", "8191", "8192", "-5", "0x10", "1_000", "stem", "block", "add"]),
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@st.composite
def mutated_csv(draw, text: str) -> str:
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["cell", "cell", "row", "row", "cut", "drop", "repeat", "garbage"]))
        i = draw(st.integers(0, len(lines) - 1)) if lines else 0
        if not lines:
            lines = [draw(st.text(max_size=30))]
        elif action == "row" and i > 0:
            # a shape field changed *with* its key, so the row passes the key check and reaches the
            # range checks (values stay inside the packed key's bit widths: see the range tests below)
            from litepose_nas.latency.layers import FIELDS, LayerConfig

            cells = lines[i].split(",")
            if len(cells) == 11 and cells[1] in ("stem", "block", "deconv", "fuse", "final", "add"):
                j = draw(st.integers(2, 7))
                limit = {"h": 4095, "cin": 4095, "cout": 4095, "mid": 8191, "kernel": 31, "stride": 3}[FIELDS[j - 2]]
                cells[j] = str(draw(st.integers(-3, limit)))
                try:
                    cells[0] = LayerConfig(cells[1], *map(int, cells[2:8])).key
                except ValueError:
                    pass
                lines[i] = ",".join(cells)
        elif action == "cell":
            cells = lines[i].split(",")
            cells[draw(st.integers(0, len(cells) - 1))] = draw(cell_text)
            lines[i] = ",".join(cells)
        elif action == "cut":
            lines = lines[: i + 1]
            lines[-1] = lines[-1][: draw(st.integers(0, len(lines[-1])))]
        elif action == "drop":
            del lines[i]
        elif action == "repeat":
            lines.insert(i, lines[i])
        else:
            lines.insert(i, draw(st.text(max_size=40)))
    return "\n".join(lines) + "\n"


def _load_table(csv_text: str, header_text: str):
    from litepose_nas.latency.table import LatencyTable

    with tempfile.TemporaryDirectory() as d:
        csv_path = Path(d) / "fuzz.csv"
        csv_path.write_text(csv_text)
        csv_path.with_suffix(".json").write_text(header_text)
        table = LatencyTable.load(csv_path)
        return table, csv_path


@FUZZ
@given(data=st.data())
def test_table_parser_rows(data, table_files) -> None:
    csv_text, header_text = table_files
    # the header's row count is dropped half of the time, so row edits reach the row parser
    header = json.loads(header_text)
    if data.draw(st.booleans()):
        header.pop("rows")
    try:
        table, _ = _load_table(data.draw(mutated_csv(csv_text)), json.dumps(header))
    except TableError as exc:
        assert "fuzz" in str(exc) and "\n" not in str(exc)
        return
    import numpy as np

    # a table that loads holds what the format promises
    assert np.all(np.isfinite(table.median_ms)) and np.all(table.median_ms >= 0)
    assert len({c.key for c in table.configs}) == len(table)


@FUZZ
@given(data=st.data())
def test_table_parser_header(data, table_files) -> None:
    csv_text, header_text = table_files
    header = data.draw(mutated(json.loads(header_text)))
    try:
        table, _ = _load_table(csv_text, json.dumps(header))
    except TableError as exc:
        assert "fuzz" in str(exc) and "\n" not in str(exc)
        return
    # a loaded header gives the numbers prediction needs
    assert table.num_joints > 0 and isinstance(table.scale, float) and isinstance(table.offset_ms, float)


# ---------------------------------------------------------------------- fields past the packed key (latency/table.py)
def _table_with_field(table_files, field: str, value: int):
    from litepose_nas.latency.layers import FIELDS, LayerConfig

    csv_text, header_text = table_files
    lines = csv_text.splitlines()
    cells = lines[1].split(",")
    cells[2 + FIELDS.index(field)] = str(value)
    cells[0] = LayerConfig(cells[1], *map(int, cells[2:8])).key
    lines[1] = ",".join(cells)
    return _load_table("\n".join(lines) + "\n", header_text)


def test_table_field_outside_key_range(table_files) -> None:
    with pytest.raises(TableError, match=r"fuzz\.csv: line 2: field h 5000 out of range \(allowed: 0 to 4095\)"):
        _table_with_field(table_files, "h", 5000)


def test_table_field_overflow(table_files) -> None:
    with pytest.raises(TableError, match=r"fuzz\.csv: line 2: field cin"):
        _table_with_field(table_files, "cin", 10**20)
