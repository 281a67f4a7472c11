"""The two keypoint protocols: COCO (pycocotools as is) and CrowdPose (rebuilt on pycocotools).

See ``docs/decoding-and-metrics.md``.
"""
from __future__ import annotations

import copy
from typing import Sequence

import numpy as np

from ..errors import DataError, InputError
from ..keypoints import KeypointSpec, keypoint_spec
from .cocoapi import check_gt, coco_from_dict, load_results, run_cocoeval, summarize

CROWDPOSE_AREA_FACTOR = 0.53
CROWD_BOUNDARIES = (0.2, 0.8)   # easy < 0.2 <= medium < 0.8 <= hard
COCO_METRICS = ("AP", "AP50", "AP75", "APM", "APL", "AR", "AR50", "AR75", "ARM", "ARL")
CROWDPOSE_METRICS = ("AP", "AP50", "AP75", "AR", "AR50", "AR75", "AP_easy", "AP_medium", "AP_hard")
PROTOCOLS = ("coco", "crowdpose")


def _check_num_joints(gt: dict, results: Sequence[dict], num_joints: int, protocol: str) -> None:
    for ann in gt["annotations"]:
        if len(ann["keypoints"]) != 3 * num_joints:
            raise DataError(f"ground truth: annotation {ann['id']} has {len(ann['keypoints']) // 3} joints, "
                            f"the {protocol} protocol needs {num_joints}")
    for r in results:
        if len(r.get("keypoints", ())) != 3 * num_joints:
            raise DataError(f"results: a detection of image {r.get('image_id')} has "
                            f"{len(r.get('keypoints', ())) // 3} joints, the {protocol} protocol needs {num_joints}")


def _sigmas(protocol: str, keypoints: KeypointSpec | None) -> tuple[np.ndarray, int]:
    """OKS sigmas and joint count: the keypoint set's (any set), else the protocol's own dataset's."""
    spec = keypoints if keypoints is not None else keypoint_spec(protocol)
    return spec.sigmas_array(), spec.num_joints


def coco_metrics(gt: dict, results: Sequence[dict], max_dets: int = 20,
                 keypoints: KeypointSpec | None = None) -> dict[str, float]:
    """COCO keypoint AP/AR: pycocotools ``COCOeval(gt, dt, 'keypoints')`` as is (stats 0..9);
    ``keypoints`` (another keypoint set) sets the joint count and OKS sigmas."""
    check_gt(gt)
    sigmas, num_joints = _sigmas("coco", keypoints)
    _check_num_joints(gt, results, num_joints, "coco")
    for ann in gt["annotations"]:
        if "area" not in ann:
            raise DataError(f"ground truth: annotation {ann['id']} lacks field 'area' (the COCO protocol "
                            "scales OKS by it)")
    coco_gt = coco_from_dict(gt)
    # COCO's own sigmas are pycocotools' defaults bit for bit (tests/test_score.py)
    ev = run_cocoeval(coco_gt, load_results(coco_gt, results), sigmas, max_dets=max_dets)
    return summarize(ev)


def crowdpose_gt(gt: dict) -> dict:
    """A copy of CrowdPose ground truth with every ``area`` set to bbox w * h * 0.53, as the official
    tool scales OKS (whatever area the file has, if any)."""
    out = copy.deepcopy(gt)
    for ann in out["annotations"]:
        ann["area"] = float(ann["bbox"][2]) * float(ann["bbox"][3]) * CROWDPOSE_AREA_FACTOR
    return out


def crowd_subsets(gt: dict) -> dict[str, list[int]]:
    """Image ids by the image-level ``crowdIndex``: easy < 0.2 <= medium < 0.8 <= hard."""
    low, high = CROWD_BOUNDARIES
    subsets: dict[str, list[int]] = {"easy": [], "medium": [], "hard": []}
    for img in gt["images"]:
        if "crowdIndex" not in img:
            raise DataError(f"ground truth: image {img.get('id')} lacks field 'crowdIndex' (CrowdPose format)")
        ci = float(img["crowdIndex"])
        key = "easy" if ci < low else ("medium" if ci < high else "hard")
        subsets[key].append(img["id"])
    return subsets


def official_round(value: np.floating, decimals: int = 4) -> float:
    """Round as crowdposetools does: numpy's rounding of a numpy value (scale, round half to even,
    unscale), so 0.00625 gives 0.0062 where Python's correctly rounded ``round()`` gives 0.0063."""
    return float(np.round(np.float64(value), decimals))


def crowdpose_metrics(gt: dict, results: Sequence[dict], max_dets: int = 20,
                      keypoints: KeypointSpec | None = None) -> dict[str, float]:
    """The official CrowdPose numbers (crowdposetools), computed with pycocotools.

    CrowdPose sigmas, OKS scale = bbox area x 0.53, maxDets 20; AP easy/medium/hard are fresh
    evaluations restricted to the images of each crowdIndex subset, reported as the mean of
    ``precision[:, :, :, 0, :]`` rounded to 4 decimals (-1 for an empty subset), as the official tool.
    """
    check_gt(gt)
    sigmas, num_joints = _sigmas("crowdpose", keypoints)
    _check_num_joints(gt, results, num_joints, "crowdpose")
    subsets = crowd_subsets(gt)
    coco_gt = coco_from_dict(crowdpose_gt(gt))
    coco_dt = load_results(coco_gt, results)
    stats = summarize(run_cocoeval(coco_gt, coco_dt, sigmas, max_dets))
    out = {k: stats[k] for k in ("AP", "AP50", "AP75", "AR", "AR50", "AR75")}
    for name in ("easy", "medium", "hard"):
        ids = subsets[name]
        if not ids:
            # pycocotools would read an empty id list as "all images"
            out[f"AP_{name}"] = -1.0
            continue
        ev = run_cocoeval(coco_gt, coco_dt, sigmas, max_dets, img_ids=ids)
        out[f"AP_{name}"] = official_round(np.mean(ev.eval["precision"][:, :, :, 0, :]))
    return out


def keypoint_metrics(gt: dict, results: Sequence[dict], protocol: str, max_dets: int = 20,
                     keypoints: KeypointSpec | None = None) -> dict[str, float]:
    """:func:`coco_metrics` or :func:`crowdpose_metrics` by ``protocol`` name; ``keypoints``: the
    keypoint set scored (default: the protocol's dataset's)."""
    if protocol == "coco":
        return coco_metrics(gt, results, max_dets, keypoints)
    if protocol == "crowdpose":
        return crowdpose_metrics(gt, results, max_dets, keypoints)
    raise InputError(f"protocol {protocol!r} not supported (allowed: {', '.join(PROTOCOLS)})")


def protocol_eval(gt: dict, results: Sequence[dict], protocol: str, max_dets: int = 20, img_ids=None,
                  oks_thresholds: Sequence[float] | None = None, keypoints: KeypointSpec | None = None):
    """The accumulated ``COCOeval`` of a protocol (CrowdPose: its sigmas and areas), for inspection,
    e.g. ``oks_matrix(ev, image_id)``; ``oks_thresholds`` replace COCO's .50:.05:.95."""
    check_gt(gt)
    if protocol == "crowdpose":
        coco_gt = coco_from_dict(crowdpose_gt(gt))
    elif protocol == "coco":
        coco_gt = coco_from_dict(gt)
    else:
        raise InputError(f"protocol {protocol!r} not supported (allowed: {', '.join(PROTOCOLS)})")
    sigmas = _sigmas(protocol, keypoints)[0]
    return run_cocoeval(coco_gt, load_results(coco_gt, results), sigmas, max_dets, img_ids, oks_thresholds)
