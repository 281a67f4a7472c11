"""``benchmarks/gpu_check.py`` in its tiny CPU version: every step runs and passes, the report is complete."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.slow
def test_gpu_check_cpu_version(tmp_path, one_torch_thread, monkeypatch) -> None:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    gpu_check = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "gpu_check", gpu_check)  # its dataclasses look their module up
    spec.loader.exec_module(gpu_check)

    out = tmp_path / "report.json"
    assert gpu_check.main(["--cpu", "--quiet", "--threads", "1", "--work", str(tmp_path / "work"), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    checks = {c["name"]: c for c in report["checks"]}
    assert list(checks) == ["step_agreement", "train_supernet_amp", "torchrun", "predictor_collect", "onnx_export",
                            "throughput"]
    assert all(c["ok"] for c in checks.values()), [(c["name"], c["error"]) for c in checks.values() if not c["ok"]]
    agree = checks["step_agreement"]["figures"]
    assert agree["loss_rel_diff"] <= agree["tolerance"]["loss_rel"] and agree["grad_rel_diff"] <= agree["tolerance"]["grad_rel"]
    assert checks["torchrun"]["figures"]["processes"] == 2 and checks["torchrun"]["figures"]["backend"] == "gloo"
    assert checks["predictor_collect"]["figures"]["archs"] == 2
    assert checks["onnx_export"]["figures"]["max_abs_diff"] <= 1e-4
    rows = checks["throughput"]["figures"]["rows"]
    assert [(r["mode"], r["recipe"].split()[0]) for r in rows] == [
        ("static", "original"), ("static", "ours"), ("supernet", "original"), ("supernet", "ours")]
    assert report["device"] == "cpu" and report["ok"]
