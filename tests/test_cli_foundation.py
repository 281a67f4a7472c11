"""CLI of the foundation: arch validate / info, space info."""
from __future__ import annotations

import json

from cli_helpers import assert_one_line_error, run_cli


def test_arch_info_json(seed_configs):
    result = run_cli("arch", "info", seed_configs["search-XS"], "--num-joints", "14", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["params"] == 1_675_552
    assert info["macs"] == 882_892_800
    assert round(info["macs_paper"] / 1e9, 1) == 1.2
    assert info["depths"] == [6, 8, 10, 10] and info["img_size"] == 256
    assert "litepose" in info["in_spaces"]


def test_arch_info_table(seed_configs):
    result = run_cli("arch", "info", seed_configs["search-L"])
    assert result.returncode == 0
    assert "MACs (paper)   13.730 G" in result.stdout


def test_arch_validate_ok_and_errors(seed_configs, tmp_path):
    ok = run_cli("arch", "validate", *seed_configs.values())
    assert ok.returncode == 0 and ok.stdout.count("ok:") == len(seed_configs)
    data = json.loads(seed_configs["search-S"].read_text())
    data["backbone_setting"][2]["block_setting"][3][1] = 9
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    assert_one_line_error(run_cli("arch", "validate", bad), 2, str(bad), "stage 2 block 3 kernel 9", "allowed: 7")
    not_json = tmp_path / "notes.txt"
    not_json.write_text("hello")
    assert_one_line_error(run_cli("arch", "validate", not_json), 2, str(not_json), "not valid JSON")
    assert_one_line_error(run_cli("arch", "info", tmp_path / "missing.json"), 2, "missing.json", "not found")
    elastic = run_cli("arch", "validate", bad, "--space", "litepose-elastic")
    assert_one_line_error(elastic, 2, "allowed: 3, 5, 7")


def test_space_info():
    result = run_cli("space", "info", "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["size"] == 245_760
    text = run_cli("space", "info", "litepose-elastic")
    assert text.returncode == 0 and "architectures" in text.stdout
    assert_one_line_error(run_cli("space", "info", "nope"), 2, "nope", "shipped spaces")


def test_an_output_option_refuses_an_option_like_value(tmp_path):
    """`evaluate ... --json --quiet` once wrote its metrics to a file named "--quiet"."""
    r = run_cli("evaluate", "--arch", "search-XS", "--data", tmp_path, "--json", "--quiet", cwd=tmp_path)
    assert_one_line_error(r, 2, "--json", "'--quiet' looks like an option")
    assert not (tmp_path / "--quiet").exists()
