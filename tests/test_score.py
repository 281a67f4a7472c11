"""``litepose-nas score``: a results file scored like the official tools, bad detections refused,
and the exact edges of the protocols (sigmas, rounding)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cli_helpers import assert_one_line_error, run_cli
from litepose_nas.errors import DataError
from litepose_nas.keypoints import keypoint_spec
from litepose_nas.metrics import (
    COCO_METRICS, CROWDPOSE_METRICS, gt_as_results, keypoint_metrics, score, score_results,
)
from litepose_nas.metrics.protocols import official_round
from litepose_nas._testing.oracle import random_people, scenes_to_coco


def _scene_files(tmp_path, dataset: str, people: int = 3, scenes: int = 2, seed: int = 0):
    spec = keypoint_spec(dataset)
    rng = np.random.default_rng(seed)
    gt = scenes_to_coco([random_people(people, 96, 96, spec, rng) for _ in range(scenes)], 96, 96, spec)
    results = gt_as_results(gt, score=0.9)
    # a shifted copy of every second person scored above the rest, and one person missed: AP < 1
    results = [dict(r, keypoints=[v + 9.0 if i % 3 < 2 else v for i, v in enumerate(r["keypoints"])], score=0.95)
               for r in results[::2]] + results[1:]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "preds.json").write_text(json.dumps(results))
    return gt, results


@pytest.mark.parametrize("dataset", ["coco", "crowdpose"])
def test_score_cli_equals_the_metrics_and_evaluate_names(tmp_path, dataset):
    gt, results = _scene_files(tmp_path, dataset)
    out = tmp_path / "m.json"
    r = run_cli("score", "--results", tmp_path / "preds.json", "--ann", tmp_path / "gt.json", "--dataset", dataset,
                "--json", out)
    assert r.returncode == 0, r.stderr
    saved = json.loads(out.read_text())
    expected = keypoint_metrics(gt, results, dataset)
    assert saved["metrics"] == expected
    assert tuple(saved["metrics"]) == (COCO_METRICS if dataset == "coco" else CROWDPOSE_METRICS)
    assert saved["dataset"] == dataset and saved["num_detections"] == len(results)
    assert 0 < saved["metrics"]["AP"] < 1      # the false positives count
    assert "AP" in r.stdout and f"{expected['AP']:.4f}" in r.stdout


def _break_detection(results: list[dict], how: str) -> list[dict]:
    bad = [dict(r) for r in results]
    d = bad[1]
    if how == "no-score":
        del d["score"]
    elif how == "nan-score":
        d["score"] = float("nan")
    elif how == "nan-keypoints":
        d["keypoints"] = [float("nan")] * len(d["keypoints"])
    elif how == "inf-keypoint":
        d["keypoints"] = [float("inf")] + d["keypoints"][1:]
    elif how == "short-keypoints":
        d["keypoints"] = d["keypoints"][:-3]
    elif how == "string-image-id":
        d["image_id"] = str(d["image_id"])
    elif how == "not-object":
        bad[1] = [1, 2, 3]
    return bad


@pytest.mark.parametrize("how", ["no-score", "nan-score", "nan-keypoints", "inf-keypoint", "short-keypoints",
                                 "string-image-id", "not-object"])
def test_malformed_detections_name_file_and_detection(tmp_path, how):
    gt, results = _scene_files(tmp_path, "coco", people=2, scenes=1)
    (tmp_path / "preds.json").write_text(json.dumps(_break_detection(results, how)))
    with pytest.raises(DataError, match=r"preds\.json: detection 1"):
        score_results(tmp_path / "preds.json", tmp_path / "gt.json", "coco")
    with pytest.raises(DataError, match="detection 1"):
        score(_break_detection(results, how), gt, "coco")


def test_malformed_inputs_one_line_in_a_real_process(tmp_path):
    gt, results = _scene_files(tmp_path, "crowdpose", people=2, scenes=1)
    (tmp_path / "preds.json").write_text(json.dumps(_break_detection(results, "no-score")))
    r = run_cli("score", "--results", tmp_path / "preds.json", "--ann", tmp_path / "gt.json", "--dataset", "crowdpose")
    assert_one_line_error(r, 2, "preds.json", "detection 1", "'score'")
    gt["annotations"][0]["keypoints"][0] = float("nan")
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "preds.json").write_text(json.dumps(results))
    r = run_cli("score", "--results", tmp_path / "preds.json", "--ann", tmp_path / "gt.json", "--dataset", "crowdpose")
    assert_one_line_error(r, 2, "gt.json", f"id {gt['annotations'][0]['id']}", "NaN")
    r = run_cli("score", "--results", tmp_path / "preds.json", "--ann", tmp_path / "gt.json", "--dataset", "crowdpose",
                "--json", tmp_path / "preds.json" / "m.json")
    assert_one_line_error(r, 2, "m.json", "Not a directory")


def test_sigmas_are_the_official_arrays_divided_by_ten():
    """Bit for bit: 1.07 / 10 is not the literal 0.107, and an OKS of exactly 0.5 depends on it."""
    crowd = np.array([.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89, .79, .79]) / 10.0
    assert keypoint_spec("crowdpose").sigmas_array().tobytes() == crowd.tobytes()
    from pycocotools.cocoeval import Params

    assert keypoint_spec("coco").sigmas_array().tobytes() == Params("keypoints").kpt_oks_sigmas.tobytes()


def test_crowd_subset_ap_rounds_like_the_official_tool():
    assert official_round(np.float64(0.00625)) == 0.0062     # Python's round() gives 0.0063
    assert official_round(np.float64(0.12345678)) == 0.1235
