"""Predictions in the COCO keypoint results format."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError
from ..io import read_json_bounded, write_text_atomic


def people_to_results(image_id: int, people: np.ndarray, scores: Sequence[float], category_id: int = 1) -> list[dict]:
    """One COCO result per person: ``keypoints`` (x, y, heatmap value per joint; joints not found
    are written as found: value 0), ``score``, and a ``bbox`` over the found joints."""
    people = np.asarray(people, dtype=np.float64)
    out = []
    for person, score in zip(people, scores):
        found = person[person[:, 2] > 0] if (person[:, 2] > 0).any() else person
        x0, y0 = found[:, 0].min(), found[:, 1].min()
        x1, y1 = found[:, 0].max(), found[:, 1].max()
        out.append({
            "image_id": int(image_id),
            "category_id": int(category_id),
            "keypoints": [round(float(v), 4) for v in person[:, :3].reshape(-1)],
            "score": float(score),
            "bbox": [round(float(v), 4) for v in (x0, y0, x1 - x0, y1 - y0)],
        })
    return out


def gt_as_results(gt: dict, score: float = 1.0) -> list[dict]:
    """Ground-truth persons written as detections (a perfect prediction), crowd/empty ones left out."""
    out = []
    for ann in gt["annotations"]:
        if ann.get("iscrowd", 0) or ann.get("num_keypoints", 1) == 0:
            continue
        out.append({"image_id": ann["image_id"], "category_id": ann["category_id"],
                    "keypoints": [float(v) for v in ann["keypoints"]], "score": float(score),
                    "bbox": [float(v) for v in ann["bbox"]]})
    return out


def write_results(path: str | os.PathLike, results: Sequence[dict]) -> Path:
    """Write results as a JSON list, atomically."""
    write_text_atomic(path, json.dumps(list(results)) + "\n")
    return Path(path)


def read_results(path: str | os.PathLike) -> list[dict]:
    """Read a COCO results file (a JSON list of detections)."""
    data = read_json_bounded(path, "results file", DataError)
    if not isinstance(data, list) or any(not isinstance(r, dict) or "keypoints" not in r for r in data):
        raise DataError(f"{path}: expected a JSON list of detections with 'image_id', 'keypoints', 'score'")
    return data
