"""COCO and CrowdPose protocols: perfect predictions, OKS arithmetic, crowdIndex subsets, results files."""
from __future__ import annotations

import copy

import numpy as np
import pytest

from litepose_nas.errors import DataError
from litepose_nas.keypoints import keypoint_spec
from litepose_nas.metrics import (
    COCO_METRICS, CROWDPOSE_METRICS, coco_metrics, coco_from_dict, crowd_subsets, crowdpose_metrics, gt_as_results,
    keypoint_metrics, oks_matrix, people_to_results, protocol_eval, read_results, run_cocoeval, summarize,
    write_results,
)
from litepose_nas.metrics.cocoapi import load_results
from litepose_nas._testing.oracle import random_people, scenes_to_coco


@pytest.fixture
def real_gt(real_samples: dict[str, dict]) -> dict[str, dict]:
    """The real COCO and CrowdPose samples, copied into tmp_path and read from there."""
    return real_samples


def _synthetic_gt(dataset: str, seed: int, images: int = 6, people: int = 8) -> dict:
    spec = keypoint_spec(dataset)
    rng = np.random.default_rng(seed)
    # heights from 0.3 to 0.9 of 480 px: both COCO area classes (medium, large) occur
    scenes = [random_people(people, 640, 480, spec, rng, size_range=(0.3, 0.9)) for _ in range(images)]
    return scenes_to_coco(scenes, 640, 480, spec)


def _spread_crowd_index(gt: dict) -> dict:
    """Give the images crowd indices in all three CrowdPose subsets."""
    gt = copy.deepcopy(gt)
    for img, ci in zip(gt["images"], [0.05, 0.5, 0.9, 0.19, 0.79, 0.8]):
        img["crowdIndex"] = ci
    return gt


def test_ground_truth_scores_one_on_real_samples(real_gt):
    coco = coco_metrics(real_gt["coco"], gt_as_results(real_gt["coco"]))
    assert list(coco) == list(COCO_METRICS)
    assert all(v == pytest.approx(1.0) for v in coco.values()), coco
    crowd = crowdpose_metrics(real_gt["crowdpose"], gt_as_results(real_gt["crowdpose"]))
    assert list(crowd) == list(CROWDPOSE_METRICS)
    # both real CrowdPose images are 'medium' (crowdIndex 0.33, 0.39): the other subsets are empty
    assert crowd.pop("AP_easy") == -1 and crowd.pop("AP_hard") == -1
    assert all(v == pytest.approx(1.0) for v in crowd.values()), crowd


@pytest.mark.parametrize("dataset", ["coco", "crowdpose"])
def test_ground_truth_scores_one_on_synthetic_sets(dataset):
    gt = _spread_crowd_index(_synthetic_gt(dataset, seed=3))
    metrics = keypoint_metrics(gt, gt_as_results(gt), dataset)
    assert all(v == pytest.approx(1.0) for v in metrics.values()), metrics
    if dataset == "crowdpose":
        assert {"AP_easy", "AP_medium", "AP_hard"} <= set(metrics)


def test_ground_truth_scores_one_on_generated_dataset(tmp_path):
    from litepose_nas.data import generate_synthetic, open_dataset

    root = generate_synthetic(tmp_path / "cp", 10, layout="crowdpose", preset="hard", seed=1, val_fraction=0.3,
                              image_size=96)
    gt = open_dataset(root, "crowdpose", "val").gt_dict()
    metrics = crowdpose_metrics(gt, gt_as_results(gt))
    assert metrics["AP"] == pytest.approx(1.0) and metrics["AR"] == pytest.approx(1.0)
    assert all(metrics[f"AP_{s}"] in (-1.0, 1.0) for s in ("easy", "medium", "hard"))


def _one_person(gt: dict, min_visible: int = 10) -> tuple[dict, dict]:
    """GT restricted to the image of a well-annotated person, and that person."""
    ann = next(a for a in gt["annotations"] if a["num_keypoints"] >= min_visible and not a["iscrowd"])
    sub = {**gt, "images": [i for i in gt["images"] if i["id"] == ann["image_id"]],
           "annotations": [ann]}
    return sub, ann


@pytest.mark.parametrize("dataset", ["coco", "crowdpose"])
def test_shifted_joint_lowers_oks_by_the_formula(real_gt, dataset):
    gt, ann = _one_person(real_gt[dataset])
    spec = keypoint_spec(dataset)
    kp = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
    visible = np.flatnonzero(kp[:, 2] > 0)
    joint = visible[len(visible) // 2]
    shift = np.array([3.0, -4.0])
    moved = kp.copy()
    moved[joint, :2] += shift
    det = [{"image_id": ann["image_id"], "category_id": 1, "keypoints": moved.reshape(-1).tolist(), "score": 0.9}]
    oks = oks_matrix(protocol_eval(gt, det, dataset), ann["image_id"])[0, 0]

    # CrowdPose scales by bbox area x 0.53 even where the file carries an 'area'
    area = ann["area"] if dataset == "coco" else ann["bbox"][2] * ann["bbox"][3] * 0.53
    k2 = (2 * spec.sigmas[joint]) ** 2
    expected = (len(visible) - 1 + np.exp(-(shift ** 2).sum() / (2 * area * k2))) / len(visible)
    assert oks == pytest.approx(expected, rel=1e-9)
    assert oks < 1.0
    if dataset == "crowdpose":
        gt_with_area = copy.deepcopy(gt)
        gt_with_area["annotations"][0]["area"] = 1.0   # must be ignored
        oks_again = oks_matrix(protocol_eval(gt_with_area, det, dataset), ann["image_id"])[0, 0]
        assert oks_again == pytest.approx(expected, rel=1e-9)
        unscaled = (len(visible) - 1 + np.exp(-(shift ** 2).sum() / (2 * area / 0.53 * k2))) / len(visible)
        assert abs(oks - unscaled) > 1e-4


def test_crowd_index_boundaries_pick_the_subset():
    gt = _synthetic_gt("crowdpose", seed=5, images=6, people=4)
    values = [0.1999, 0.2, 0.7999, 0.8, 0.0, 1.0]
    for img, ci in zip(gt["images"], values):
        img["crowdIndex"] = ci
    ids = [img["id"] for img in gt["images"]]
    subsets = crowd_subsets(gt)
    assert subsets == {"easy": [ids[0], ids[4]], "medium": [ids[1], ids[2]], "hard": [ids[3], ids[5]]}

    # Perfect predictions except on the image at exactly 0.2: only 'medium' may lose AP.
    results = [r for r in gt_as_results(gt) if r["image_id"] != ids[1]]
    metrics = crowdpose_metrics(gt, results)
    assert metrics["AP_easy"] == 1.0 and metrics["AP_hard"] == 1.0
    assert metrics["AP_medium"] < 0.7
    # ... and at exactly 0.8: only 'hard' may lose.
    results = [r for r in gt_as_results(gt) if r["image_id"] != ids[3]]
    metrics = crowdpose_metrics(gt, results)
    assert metrics["AP_easy"] == 1.0 and metrics["AP_medium"] == 1.0 and metrics["AP_hard"] < 0.7


def test_missing_crowd_index_is_a_data_error():
    gt = _synthetic_gt("crowdpose", seed=1, images=2, people=2)
    del gt["images"][1]["crowdIndex"]
    with pytest.raises(DataError, match="crowdIndex"):
        crowdpose_metrics(gt, gt_as_results(gt))


def test_summary_matches_pycocotools_and_reads_other_max_dets():
    gt = _synthetic_gt("coco", seed=7, images=5, people=6)
    rng = np.random.default_rng(0)
    results = []
    for r in gt_as_results(gt):
        kp = np.asarray(r["keypoints"]).reshape(-1, 3)
        kp[:, :2] += rng.normal(0, 4, (len(kp), 2))
        results.append({**r, "keypoints": kp.reshape(-1).tolist(), "score": float(rng.random())})
    coco_gt = coco_from_dict(gt)
    ev = run_cocoeval(coco_gt, load_results(coco_gt, results))
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        ev.summarize()
    ours = summarize(ev)
    assert np.allclose(list(ours.values()), ev.stats)
    assert 0.05 < ours["AP"] < 0.95
    # pycocotools' own summary reads maxDets 20 only; ours follows the evaluation's maxDets
    assert coco_metrics(gt, results, max_dets=100)["AP"] == pytest.approx(ours["AP"])


def test_empty_and_bad_results():
    gt = _synthetic_gt("coco", seed=2, images=2, people=3)
    empty = coco_metrics(gt, [])   # pycocotools itself cannot load an empty result list
    assert empty["AP"] == 0.0 and empty["AR"] == 0.0 and all(v in (0.0, -1.0) for v in empty.values())
    bad_image = [{**gt_as_results(gt)[0], "image_id": 999}]
    with pytest.raises(DataError, match="image_id 999"):
        coco_metrics(gt, bad_image)
    short = [{**gt_as_results(gt)[0], "keypoints": [0.0] * 42}]
    with pytest.raises(DataError, match="14 joints"):
        coco_metrics(gt, short)
    no_area = copy.deepcopy(gt)
    del no_area["annotations"][0]["area"]
    with pytest.raises(DataError, match="'area'"):
        coco_metrics(no_area, [])


def test_results_file_round_trip_loads_in_pycocotools(tmp_path):
    from pycocotools.coco import COCO

    gt = _synthetic_gt("crowdpose", seed=4, images=2, people=3)
    people = np.zeros((2, 14, 3), dtype=np.float32)
    people[0, :, :2] = [[10 + j, 20 + j] for j in range(14)]
    people[0, :, 2] = 0.8
    people[1, 3] = [50, 60, 0.5]
    results = people_to_results(gt["images"][0]["id"], people, [0.7, 0.2])
    assert results[1]["bbox"] == [50.0, 60.0, 0.0, 0.0]   # extent of the found joints only
    path = write_results(tmp_path / "out" / "results.json", results)
    assert read_results(path) == results
    coco_gt = COCO()
    coco_gt.dataset = gt
    coco_gt.createIndex()
    dt = coco_gt.loadRes(str(path))
    assert len(dt.getAnnIds()) == 2
    (tmp_path / "bad.json").write_text("{\"not\": \"a list\"}")
    with pytest.raises(DataError, match="bad.json"):
        read_results(tmp_path / "bad.json")
