"""``evaluate``: a model over a dataset split -> COCO results file + official metrics."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from cli_helpers import assert_one_line_error, run_cli
from litepose_nas.data import generate_synthetic, open_dataset
from litepose_nas.decode import resize_info
from litepose_nas.evaluate import evaluate_model
from litepose_nas._testing.oracle import flip_keypoints, oracle_outputs
from litepose_nas.space import Arch


@pytest.fixture(scope="module")
def crowd_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "crowd"
    return generate_synthetic(root, 10, layout="crowdpose", preset="hard", seed=3, val_fraction=0.3, image_size=96)


@pytest.fixture(scope="module")
def coco_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "coco"
    return generate_synthetic(root, 8, layout="coco", preset="medium", seed=4, val_fraction=0.5, image_size=128)


class OracleNet(nn.Module):
    """Stands in for a perfect network: returns, call by call, the oracle outputs of the next image."""

    def __init__(self, source, input_size: int, flip: bool) -> None:
        super().__init__()
        self.num_joints = source.num_joints
        self.arch = type("A", (), {"img_size": input_size})()
        self.queue = []
        spec = source.spec
        for image_id in source.image_ids:
            h, w = source.image_size(image_id)
            info = resize_info(h, w, input_size)
            m = info.matrix()
            people = source.people(image_id).astype(np.float64)
            people[..., :2] = people[..., :2] @ m[:, :2].T + m[:, 2]
            self.queue.append((info.size, oracle_outputs(people, info.size)))
            if flip:
                self.queue.append((info.size, oracle_outputs(flip_keypoints(people, info.size[0], spec.flip_index),
                                                             info.size)))

    def forward(self, x):
        size, outputs = self.queue.pop(0)
        assert tuple(x.shape) == (1, 3, size[1], size[0])
        return [torch.from_numpy(o) for o in outputs]


@pytest.mark.parametrize("flip", [False, True])
def test_evaluate_model_on_oracle_network_recovers_ground_truth(coco_set, tmp_path, flip):
    source = open_dataset(coco_set, "coco", "val")
    net = OracleNet(source, 256, flip)
    result = evaluate_model(net, source, flip_test=flip, results_file=tmp_path / "res.json")
    assert not net.queue   # every image decoded, flipped ones too
    assert result.metrics["AP"] >= 0.99 and result.metrics["AR"] >= 0.99
    assert result.num_images == len(source.image_ids)
    assert len(json.loads((tmp_path / "res.json").read_text())) == result.num_people


def _write_arch_and_weights(seed_configs, tmp_path: Path, num_joints: int) -> tuple[Path, Path]:
    from litepose_nas.models import build_model

    arch_path = seed_configs["search-XS"]
    torch.manual_seed(0)
    model = build_model(Arch.from_json(arch_path), num_joints)
    weights = tmp_path / "xs.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, weights)
    return arch_path, weights


def test_cli_evaluate_writes_results_pycocotools_loads(crowd_set, seed_configs, tmp_path):
    from pycocotools.coco import COCO

    arch, weights = _write_arch_and_weights(seed_configs, tmp_path, 14)
    results, metrics = tmp_path / "out" / "results.json", tmp_path / "out" / "metrics.json"
    # random weights: a zero threshold makes sure people are found and written
    r = run_cli("evaluate", "--arch", arch, "--weights", weights, "--data", crowd_set, "--dataset", "crowdpose",
                "--input-size", "64", "--flip-test", "--detection-threshold", "0", "--results", results,
                "--json", metrics, "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert "AP_hard" in r.stdout and "flip test on" in r.stdout
    report = json.loads(metrics.read_text())
    assert set(report["metrics"]) == {"AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard"}
    assert report["num_people"] > 0 and report["flip_test"] is True
    gt = COCO(str(open_dataset(crowd_set, "crowdpose", "val").annotation_file))
    dt = gt.loadRes(str(results))
    assert len(dt.getAnnIds()) == report["num_people"]
    first = dt.loadAnns(dt.getAnnIds())[0]
    assert len(first["keypoints"]) == 14 * 3 and first["category_id"] == 1


def test_cli_evaluate_errors(crowd_set, seed_configs, tmp_path):
    from litepose_nas.models import build_model

    arch = seed_configs["search-XS"]
    state = build_model(Arch.from_json(arch), 14).state_dict()
    state.pop("final_raw.1.conv.3.weight")
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    r = run_cli("evaluate", "--arch", arch, "--weights", bad, "--data", crowd_set, "--dataset", "crowdpose",
                "--results", tmp_path / "never.json")
    assert_one_line_error(r, 2, "bad.pth", "missing key 'final_raw.1.conv.3.weight'")
    assert not (tmp_path / "never.json").exists()
    r = run_cli("evaluate", "--arch", arch, "--data", tmp_path / "nowhere", "--dataset", "crowdpose")
    assert_one_line_error(r, 2, "nowhere")
