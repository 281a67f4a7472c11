"""A plain clone, a wheel or a base install (no torch) has what it needs: shipped data, names, messages."""
from __future__ import annotations

import json
import re

import pytest

from cli_helpers import assert_one_line_error, run_cli
from data_paths import PUBLISHED, REPO


def _json(result) -> dict | list:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_base_commands_run_without_torch(tmp_path):
    """What a device or a base install runs: nothing on these paths imports torch."""
    run = lambda *a: run_cli(*a, cwd=tmp_path, without_torch=True)  # noqa: E731 - a working dir away from the repo
    assert _json(run("space", "info", "--json"))["size"] == 245_760
    assert {"raspberry-pi-4", "x86-cpu-ort-2t"} <= {t["name"] for t in _json(run("latency", "list", "--json"))}
    info = _json(run("arch", "info", "search-XS", "--num-joints", "14", "--json"))
    assert info["params"] == 1_675_552 and info["img_size"] == 256
    res = _json(run("search", "--device", "raspberry-pi-4", "--max-latency-ms", "120", "--population", "8",
                    "--generations", "2", "--out", tmp_path / "s", "--quiet", "--json"))
    assert (tmp_path / "s" / "best.json").is_file() and res
    rep = _json(run("latency", "validate", "--table", "raspberry-pi-4", "--json", "--quiet"))
    assert rep["mode"] == "calibration-leave-one-out" and rep["n"] == 3


def test_torch_commands_say_how_to_install_it(tmp_path):
    ckpt = tmp_path / "model.pth"
    ckpt.write_bytes(b"not read")
    result = run_cli("checkpoint", "info", ckpt, without_torch=True)
    assert_one_line_error(result, 1, "litepose-nas checkpoint needs torch", "pip install 'litepose-nas[torch]'")


@pytest.mark.parametrize("name", ["search-XS", "search-xs", "SEARCH-XS.json", "litepose-auto-xs"])
def test_arch_info_takes_published_names(name, tmp_path):
    by_name = _json(run_cli("arch", "info", name, "--json", cwd=tmp_path))
    by_file = _json(run_cli("arch", "info", PUBLISHED / "search-XS.json", "--json"))
    by_name.pop("file"), by_file.pop("file")
    assert by_name == by_file


def test_arch_validate_takes_published_names_and_lists_them(tmp_path):
    ok = run_cli("arch", "validate", "prune-l", "LitePose-Prune-S", "search-M", cwd=tmp_path)
    assert ok.returncode == 0 and ok.stdout.count("ok:") == 3, ok.stderr
    assert_one_line_error(run_cli("arch", "info", "search-XXL", cwd=tmp_path), 2, "search-XXL",
                          "not a published architecture", "allowed names: prune-L, prune-M, prune-S, search-L")


def test_every_command_taking_an_architecture_takes_published_names(tmp_path):
    """latency predict (a base install) and export resolve names as arch info does."""
    by_name = _json(run_cli("latency", "predict", "--table", "raspberry-pi-4", "litepose-auto-xs", "search-S", "--json",
                            cwd=tmp_path, without_torch=True))
    by_file = _json(run_cli("latency", "predict", "--table", "raspberry-pi-4", PUBLISHED / "search-XS.json",
                            PUBLISHED / "search-S.json", "--json"))
    ms = [[p["ms"] for p in result["predictions"]] for result in (by_name, by_file)]
    assert ms[0] == ms[1] and len(ms[0]) == 2
    r = run_cli("export", "--arch", "prune-s", "--random-init", "--out", tmp_path / "x", cwd=tmp_path,
                env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "x" / "arch.json").read_text()) == json.loads((PUBLISHED / "prune-S.json").read_text())
    assert_one_line_error(run_cli("export", "--arch", "prune-XS", "--random-init", "--out", tmp_path / "y", cwd=tmp_path),
                          2, "prune-XS", "not a published architecture")


def test_shipped_paper_latencies_rebuild_the_derived_tables(tmp_path):
    from litepose_nas.latency import load_table
    from litepose_nas.latency.calibrate import derive_paper_tables

    for table in derive_paper_tables(load_table("x86-cpu-ort-2t"), tmp_path):
        shipped = load_table(table.name)
        fit, ref = table.header["calibration"], shipped.header["calibration"]
        assert fit["model"] == ref["model"] and fit["k"] == pytest.approx(ref["k"], rel=1e-9)
        assert [p["measured_ms"] for p in fit["points"]] == [p["measured_ms"] for p in ref["points"]]


def test_nothing_reads_a_path_outside_the_repository():
    """The reference folder beside the working copies of this project is not in a user's clone."""
    outside = re.compile(r"\.\./" + "shared" + r"|parents\[\d\]\s*/\s*[\"']" + "shared")
    roots = ["litepose_nas", "tests", "benchmarks", "examples", "docs", ".ci", "README.md", "pyproject.toml"]
    hits = []
    for root in roots:
        base = REPO / root
        for path in [base] if base.is_file() else base.rglob("*"):
            if path.is_file() and path.suffix in {".py", ".md", ".toml", ".yaml", ".json", ""}:
                text = path.read_text(errors="ignore")
                hits += [f"{path.relative_to(REPO)}: {m.group(0)}" for m in outside.finditer(text)]
    assert not hits, hits
