"""A custom YAML space with 3 stages and 2 head levels (stem width 16) through the whole CLI path:
train-supernet -> predictor collect -> predictor fit -> profile --quick -> search -> extract +
export (ONNX parity) -> evaluate -> infer, with tiny settings.

Elastic choices meet in one layer (stage 2's first block reads stage 1's elastic width and writes
its own; the head reads stage 2's): no short list of networks holds every such combination, so
``profile --quick`` must time every layer of the space for the search to find its rows (issue 16).
"""
from __future__ import annotations

import json
from pathlib import Path

from reliability_helpers import run_inproc

SPACE_YAML = """\
name: three-stage
description: 3 stages, 2 head levels (outputs at 1/4 and 1/2), a 16-channel stem
resolutions: [64]
stem:
  mid_channels: 16
  widths: [8]
stages:
  - {stride: 2, widths: [8], depths: [1], kernels: [3, 5], expansions: [2]}
  - {stride: 2, widths: [16, 24], depths: [1, 2], kernels: [3], expansions: [2]}
  - {stride: 1, widths: [16, 24, 32], depths: [1], kernels: [3, 5], expansions: [2, 3]}
head:
  widths: [[16], [8, 16]]
"""


def _ok(*args) -> str:
    r = run_inproc(*args)
    assert r.returncode == 0, (args[:2], r.stdout[-2000:], r.stderr[-2000:])
    return r.stdout


def test_three_stage_space_runs_the_whole_path(tmp_path: Path, one_torch_thread):
    from litepose_nas.data import generate_synthetic
    from litepose_nas.space import Arch, SearchSpace

    space = tmp_path / "space.yaml"
    space.write_text(SPACE_YAML)
    assert SearchSpace.from_yaml(space).total_stride == 8
    data = generate_synthetic(tmp_path / "coco", 6, layout="coco", image_size=64, val_fraction=0.34)
    run = tmp_path / "run"
    _ok("train-supernet", "--space", space, "--data", data, "--steps", "2", "--batch-size", "2", "--workers", "0",
        "--val-every", "-1", "--out", run, "-q", "--device", "cpu")
    evals = tmp_path / "evals.csv"
    _ok("predictor", "collect", "--supernet", run / "supernet.pt", "--data", data, "--archs", "8", "--out", evals,
        "--space", space, "--calib-batches", "1", "--batch-size", "2", "--val-images", "2", "-q")
    _ok("predictor", "fit", evals, "--out", tmp_path / "pred", "--space", space, "--model", "ridge", "--folds", "2",
        "-q")
    table = tmp_path / "lat.csv"
    _ok("profile", "--space", space, "--device-name", "box", "--quick", "--calibration-nets", "2",
        "--no-contention-check", "--out", table, "-q")
    from litepose_nas.latency import load_table
    from litepose_nas.latency.layers import enumerate_layers

    # every row a search can look up (a few networks' layers would miss 15 of the 45 here)
    assert len(load_table(table, SearchSpace.from_yaml(space))) == len(enumerate_layers(SearchSpace.from_yaml(space), 17))
    _ok("search", "--space", space, "--device", table, "--max-latency-ms", "1000", "--algo", "evolution",
        "--population", "8", "--generations", "2", "--predictor", tmp_path / "pred", "-q", "--out", tmp_path / "s")
    best = Arch.from_json(tmp_path / "s" / "best.json")
    assert len(best.stages) == 3 and len(best.deconv_setting) == 2 and best.stem_mid_channels == 16
    export = tmp_path / "export"
    summary = json.loads(_ok("export", "--arch", tmp_path / "s" / "best.json", "--supernet", run / "supernet.pt",
                             "--space", space, "--out", export, "--json"))
    assert summary["parity"] < 1e-4
    assert Arch.from_json(export / "arch.json") == best
    _ok("evaluate", "--arch", export / "arch.json", "--weights", export / "weights.pth", "--data", data,
        "--dataset", "coco", "-q", "--json", tmp_path / "metrics.json")
    assert json.loads((tmp_path / "metrics.json").read_text())["num_images"] == 2
    images = sorted((Path(data) / "images" / "val2017").glob("*.jpg"))
    _ok("infer", "--model", export / "model.onnx", *images, "--out", tmp_path / "infer", "-q")
    assert (tmp_path / "infer" / "people.json").is_file()


def test_custom_space_example_runs_the_whole_path(tmp_path: Path):
    """``examples/custom_space.py --quick``: a space built with ``SearchSpace.create`` (4 stages with
    strides 2, 1, 2, 1, 2 head levels, stem 16) through the same path."""
    import os
    import subprocess
    import sys

    from litepose_nas.space import Arch

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(root / "examples" / "custom_space.py"), "--out", str(tmp_path),
                           "--quick"], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    best = Arch.from_json(tmp_path / "export" / "arch.json")
    assert best.strides == (2, 1, 2, 1) and best.stem_mid_channels == 16 and len(best.deconv_setting) == 2
    for name in ("run/supernet.pt", "evals.csv", "predictor/predictor.json", "latency.csv", "search/best.json",
                 "export/model.onnx", "metrics.json", "infer/people.json"):
        assert (tmp_path / name).is_file(), name
    assert "ONNX vs PyTorch max difference" in proc.stdout
