"""The search defaults live in the library (issue 16): a Python call that leaves out the device,
the predictor and the constraints searches exactly what ``litepose-nas search`` does."""
from __future__ import annotations

import json

import pytest

import litepose_nas
from litepose_nas.errors import InputError
from litepose_nas.search.defaults import DEFAULT_DEVICE, default_constraints, default_objective
from reliability_helpers import run_inproc

SMALL = ("--population", "8", "--generations", "3")


def _cli(*args: str) -> dict:
    r = run_inproc("search", *SMALL, "--json", *args)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


def _same(cli: dict, result) -> None:
    assert [c["budget"] for c in cli["choices"]] == [b.limit for b in result.best]
    assert [c["arch_json"] for c in cli["choices"]] == [b.arch.to_dict() for b in result.best]
    assert [c["score"] for c in cli["choices"]] == pytest.approx([b.score for b in result.best])
    assert cli["constraint"] == result.constraint and cli["objective"] == result.objective


def test_python_search_without_device_or_predictor_matches_the_cli():
    budget = litepose_nas.SearchBudget(population=8, generations=3)
    result = litepose_nas.search("litepose", budget=budget, max_latency_ms=120)
    assert DEFAULT_DEVICE in json.dumps(result.constraint)
    assert result.objective["kind"] == "predictor"  # the shipped predictor of the space
    _same(_cli("--max-latency-ms", "120"), result)
    several = litepose_nas.search("litepose", budget=budget, limits=[80, 200])
    _same(_cli("--budgets", "80,200"), several)
    macs_only = litepose_nas.search("litepose", budget=budget, max_macs=3.0)
    _same(_cli("--max-macs", "3"), macs_only)


def test_defaults_refuse_what_the_cli_refuses():
    space = litepose_nas.SearchSpace.from_yaml("litepose")
    with pytest.raises(InputError, match="no budget"):
        default_constraints(space)
    with pytest.raises(InputError, match="give the budget"):
        default_constraints(space, device=DEFAULT_DEVICE)
    with pytest.raises(InputError, match="no budget"):
        litepose_nas.search("litepose")
    custom = litepose_nas.SearchSpace.create("tiny", [64], [8], [
        {"stride": 2, "widths": [8], "depths": [1], "kernels": [3], "expansions": [2]},
        {"stride": 1, "widths": [8, 16], "depths": [1], "kernels": [3], "expansions": [2]}], [[8]])
    assert default_objective(custom).kind == "proxy"  # no shipped predictor scores it: MACs
