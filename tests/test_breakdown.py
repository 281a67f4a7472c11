"""Keypoint error breakdown (Ronchi & Perona) and the bottom-up oracles: ``evaluate --breakdown``."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from cli_helpers import run_cli
from litepose_nas.data import generate_synthetic, open_dataset
from litepose_nas.evaluate import evaluate_model
from litepose_nas.metrics import error_breakdown, gt_as_results
from test_evaluate import OracleNet, _write_arch_and_weights


@pytest.fixture(scope="module")
def coco_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "coco"
    return generate_synthetic(root, 8, layout="coco", preset="medium", seed=4, val_fraction=0.5, image_size=128)


def _multi_person(results):
    by_image = {}
    for i, r in enumerate(results):
        by_image.setdefault(r["image_id"], []).append(i)
    return next(v for v in by_image.values() if len(v) > 1)


def test_each_error_type_is_classified_and_corrected(coco_set):
    gt = open_dataset(coco_set, "coco", "val").gt_dict()
    perfect = gt_as_results(gt)
    clean = error_breakdown(gt, perfect, "coco")
    assert clean.ap == pytest.approx(1.0) and set(clean.shares) == {"good", "jitter", "inversion", "swap", "miss"}
    assert clean.keypoints["good"] == sum(clean.keypoints.values()) > 0
    assert clean.false_positives == clean.false_negatives == 0

    res = copy.deepcopy(perfect)
    a, b = (res[i] for i in _multi_person(res)[:2])
    lw = slice(3 * 9, 3 * 9 + 2)  # COCO left wrist: taken from each other = 2 swaps
    assert a["keypoints"][lw] != b["keypoints"][lw]
    a["keypoints"][lw], b["keypoints"][lw] = b["keypoints"][lw], a["keypoints"][lw]
    k = res[0]["keypoints"]  # left / right shoulders exchanged = 2 inversions
    k[15:17], k[18:20] = k[18:20], k[15:17]
    res.append(dict(copy.deepcopy(res[-1]), score=0.5))  # a duplicate person
    res.append(dict(copy.deepcopy(res[-1]), score=0.4, image_id=res[-1]["image_id"],
                    keypoints=[v + (5000.0 if i % 3 < 2 else 0) for i, v in enumerate(res[-1]["keypoints"])]))
    out = error_breakdown(gt, res, "coco")
    assert out.keypoints["swap"] == 2 and out.keypoints["inversion"] == 2
    assert out.keypoints["miss"] == out.keypoints["jitter"] == 0
    assert (out.duplicates, out.background, out.false_negatives) == (1, 1, 0)
    steps = dict(out.steps)
    assert out.ap < 1.0
    assert steps["swap"] > steps["miss"] and steps["inversion"] > steps["swap"]  # each correction pays
    assert steps["background false positives"] == pytest.approx(1.0)
    assert list(steps)[:5] == ["as predicted", "miss", "swap", "inversion", "jitter"]
    assert list(out.pr_curves) == list(steps) and len(out.pr_curves["swap"]) == 101
    d = out.to_dict()
    assert d["keypoint_shares"]["swap"] == pytest.approx(2 / sum(out.keypoints.values()), abs=1e-4)
    json.dumps(d)


def test_oracles_separate_grouping_from_localisation(coco_set):
    """Perfect heatmaps with collapsed tags (all zero): grouping alone loses the AP, and the oracle
    grouping recovers it; the breakdown calls the lost joints swaps."""
    source = open_dataset(coco_set, "coco", "val")
    net = OracleNet(source, 256, flip=False)
    for _, outputs in net.queue:
        outputs[0][:, source.num_joints:] = 0.0
    result = evaluate_model(net, source, breakdown=True)
    b = result.breakdown
    assert b.ap_oracle_grouping >= 0.99 and b.ap_oracle_localization < 0.6
    assert b.ap == pytest.approx(result.metrics["AP"]) and b.ap < 0.6
    assert b.keypoints["swap"] > b.keypoints["miss"]
    perfect = evaluate_model(OracleNet(source, 256, flip=False), source, breakdown=True).breakdown
    assert min(perfect.ap, perfect.ap_oracle_grouping, perfect.ap_oracle_localization) >= 0.99


def test_cli_evaluate_breakdown_table_json_png(coco_set, seed_configs, tmp_path):
    arch, weights = _write_arch_and_weights(seed_configs, tmp_path, 17)
    out, png = tmp_path / "m.json", tmp_path / "fig" / "bd.png"
    r = run_cli("evaluate", "--arch", arch, "--weights", weights, "--data", coco_set, "--dataset", "coco",
                "--input-size", "64", "--max-images", "2", "--detection-threshold", "0", "--tag-cost", "original", "--breakdown-png", png,
                "--json", out, "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert "oracle association" in r.stdout and "joints: swap" in r.stdout and "tag cost original" in r.stdout
    report = json.loads(out.read_text())
    bd = report["breakdown"]
    assert report["tag_cost"] == "original"
    assert {"ap", "ap_oracle_grouping", "ap_oracle_localization", "keypoint_shares", "steps", "duplicates",
            "background_false_positives", "false_negatives"} <= set(bd)
    assert set(bd["keypoint_shares"]) == {"good", "jitter", "inversion", "swap", "miss"}
    assert 0 < bd["detections"] <= report["num_people"]  # the top maxDets (20) per image are evaluated
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
