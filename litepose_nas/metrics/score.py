"""Score a COCO-format results file against ground truth: the official tools' main job.

``litepose-nas score --results preds.json --ann gt.json --dataset coco|crowdpose`` prints the same
metrics, under the same names, as ``litepose-nas evaluate``. Every detection is checked first
(a missing ``score``, a NaN keypoint) so that a bad file fails with one line naming the file and
the detection, not deep inside pycocotools, and never counts as a true positive (the official
tools match an all-NaN detection).
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from ..errors import DataError
from ..io import read_json_bounded
from .protocols import keypoint_metrics


@dataclass
class ScoreResult:
    dataset: str
    metrics: dict[str, float]
    num_images: int
    num_detections: int
    results_file: str
    annotation_file: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_detections(results: Any, source: str, num_joints: int) -> list[dict]:
    """Raise :class:`DataError` naming ``source`` and the detection index unless ``results`` is a
    list of detections with an integer ``image_id`` and ``category_id``, ``3 * num_joints`` finite
    ``keypoints`` and a finite ``score``."""
    if not isinstance(results, list):
        raise DataError(f"{source}: expected a JSON list of detections, got a {type(results).__name__}")
    for i, det in enumerate(results):
        where = f"{source}: detection {i}"
        if not isinstance(det, dict):
            raise DataError(f"{where} is a {type(det).__name__}, expected an object")
        for key in ("image_id", "category_id", "keypoints", "score"):
            if key not in det:
                raise DataError(f"{where} lacks field {key!r} (required: image_id, category_id, keypoints, score)")
        for key in ("image_id", "category_id"):
            if not isinstance(det[key], int) or isinstance(det[key], bool):
                raise DataError(f"{where}: field {key!r} is {det[key]!r} (allowed: an integer)")
        kp = det["keypoints"]
        if not isinstance(kp, list) or len(kp) != 3 * num_joints:
            got = f"{len(kp)} values" if isinstance(kp, list) else type(kp).__name__
            raise DataError(f"{where}: field 'keypoints' must be {3 * num_joints} numbers ({num_joints} joints "
                            f"x, y, score), got {got}")
        if not all(map(_finite_number, kp)):
            raise DataError(f"{where}: field 'keypoints' holds NaN, an infinite value or a non-number")
        if not _finite_number(det["score"]):
            raise DataError(f"{where}: field 'score' is {det['score']!r} (allowed: a finite number)")
    return results


def load_ground_truth(path: str | os.PathLike, dataset: str) -> dict:
    """A COCO-format keypoint ground-truth file, every annotation checked (see
    :func:`litepose_nas.data.sources.check_annotation`) against the file's keypoint set."""
    return _ground_truth(path, dataset)[0]


def _ground_truth(path: str | os.PathLike, dataset: str) -> tuple[dict, Any]:
    from ..data.sources import check_annotation, resolve_keypoints

    gt = read_json_bounded(path, "annotation file", DataError)
    if not isinstance(gt, dict):
        raise DataError(f"{path}: top level must be a JSON object with 'images', 'annotations' and 'categories'")
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            raise DataError(f"{path}: missing or malformed field {key!r} (a list is required)")
    spec = resolve_keypoints(gt, path, dataset)
    for i, ann in enumerate(gt["annotations"]):
        if not isinstance(ann, dict):
            raise DataError(f"{path}: annotations[{i}] is not an object")
        check_annotation(path, f"annotations[{i}] (id {ann.get('id')})", ann, spec.num_joints)
    return gt, spec


def score_results(results_path: str | os.PathLike, ann_path: str | os.PathLike, dataset: str,
                  max_dets: int = 20) -> ScoreResult:
    """The metrics of the detections in ``results_path`` against ``ann_path`` under ``dataset``'s protocol."""
    gt, spec = _ground_truth(ann_path, dataset)
    results = check_detections(read_json_bounded(results_path, "results file", DataError), str(results_path),
                               spec.num_joints)
    known = {img.get("id") for img in gt["images"] if isinstance(img, dict)}
    for i, det in enumerate(results):
        if det["image_id"] not in known:
            raise DataError(f"{results_path}: detection {i}: image_id {det['image_id']} is not in {ann_path}")
    metrics = keypoint_metrics(gt, results, dataset, max_dets=max_dets, keypoints=spec)
    return ScoreResult(dataset=dataset, metrics=metrics, num_images=len(gt["images"]), num_detections=len(results),
                       results_file=str(results_path), annotation_file=str(ann_path))


def score(results: Sequence[dict], gt: dict, dataset: str, max_dets: int = 20) -> dict[str, float]:
    """The metrics of in-memory ``results`` against ``gt`` (its keypoint set), with the same checks as the file form."""
    from ..data.sources import resolve_keypoints

    spec = resolve_keypoints(gt, "ground truth", dataset)
    check_detections(list(results), "results", spec.num_joints)
    return keypoint_metrics(gt, results, dataset, max_dets=max_dets, keypoints=spec)
