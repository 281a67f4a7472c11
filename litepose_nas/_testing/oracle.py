"""Oracle network outputs: heatmaps and tags rendered from known people.

A perfect network would output, for every joint type, a Gaussian at each person's joint and, at every
pixel, the tag of the person the pixel belongs to. Decoding such oracle maps measures the decoder
alone (``tests/test_decode.py``, ``benchmarks/bench_grouping.py``). Coordinates follow the decoder:
map pixel ``(i, j)`` covers ``[i, i + 1) x [j, j + 1)``, so a joint at ``x`` on a map of stride ``s``
is at ``x / s`` on that map, and mirroring a map of width ``W`` sends ``x`` to ``W - x``.

Also here: random synthetic scenes of people (an upright skeleton template, jittered, scaled,
mirrored) and their COCO-format ground truth, for tests and benchmarks that need crowds on demand.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..keypoints import KeypointSpec

# An upright person of height 1 centred at the origin, +x = the person's left (image right).
_TEMPLATE = {
    "nose": (0.0, -0.42), "left_eye": (0.03, -0.44), "right_eye": (-0.03, -0.44),
    "left_ear": (0.06, -0.43), "right_ear": (-0.06, -0.43), "head": (0.0, -0.45), "neck": (0.0, -0.34),
    "left_shoulder": (0.13, -0.30), "right_shoulder": (-0.13, -0.30),
    "left_elbow": (0.18, -0.12), "right_elbow": (-0.18, -0.12),
    "left_wrist": (0.20, 0.05), "right_wrist": (-0.20, 0.05),
    "left_hip": (0.09, 0.04), "right_hip": (-0.09, 0.04),
    "left_knee": (0.10, 0.27), "right_knee": (-0.10, 0.27),
    "left_ankle": (0.10, 0.50), "right_ankle": (-0.10, 0.50),
}


def render_maps(
    keypoints: np.ndarray,
    height: int,
    width: int,
    sigma: float = 2.0,
    tag_values: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Oracle heatmaps ``[J, H, W]`` and tags ``[J, H, W]`` (float32) of ``keypoints [P, J, 3]``.

    Heatmap: the maximum over people of a Gaussian (``sigma`` pixels, cut at 3 sigma + 1) centred on
    each visible joint (v > 0), sampled at pixel centres. Tag: the value of the person whose visible
    joint of that type is nearest (``tag_values[p]``, default ``p``); -1 where no joint of the type is
    visible.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[2] != 3:
        raise ValueError(f"keypoints must be [P, J, 3], got shape {kp.shape}")
    num_people, num_joints = kp.shape[0], kp.shape[1]
    values = np.arange(num_people, dtype=np.float64) if tag_values is None else np.asarray(tag_values, dtype=np.float64)
    heat = np.zeros((num_joints, height, width), dtype=np.float32)
    tags = np.full((num_joints, height, width), -1.0, dtype=np.float32)
    cx = np.arange(width) + 0.5
    cy = np.arange(height) + 0.5
    cut = (3 * sigma + 1) ** 2
    for j in range(num_joints):
        vis = kp[:, j, 2] > 0
        if not vis.any():
            continue
        pts = kp[vis, j, :2]
        d2 = (cx[None, None, :] - pts[:, 0, None, None]) ** 2 + (cy[None, :, None] - pts[:, 1, None, None]) ** 2
        g = np.where(d2 <= cut, np.exp(-d2 / (2 * sigma ** 2)), 0.0)
        heat[j] = g.max(axis=0)
        tags[j] = values[vis][d2.argmin(axis=0)]
    return heat, tags


def oracle_outputs(
    keypoints: np.ndarray,
    input_size: tuple[int, int],
    sigma: float = 2.0,
    tag_values: Sequence[float] | None = None,
) -> list[np.ndarray]:
    """The two outputs of a perfect LitePose for people at ``keypoints [P, J, 3]`` on an input of
    ``(width, height)``: ``[1, 2J, H/4, W/4]`` (heatmaps then tags) and ``[1, J, H/2, W/2]``."""
    width, height = input_size
    kp = np.array(keypoints, dtype=np.float64, copy=True)
    outs = []
    for stride, with_tags in ((4, True), (2, False)):
        scaled = kp.copy()
        scaled[..., :2] /= stride
        heat, tags = render_maps(scaled, height // stride, width // stride, sigma, tag_values)
        outs.append((np.concatenate((heat, tags)) if with_tags else heat)[None])
    return outs


def flip_keypoints(keypoints: np.ndarray, width: float, flip_index: Sequence[int]) -> np.ndarray:
    """The people of a horizontally mirrored image of ``width``: x -> width - x, left/right swapped."""
    out = np.array(keypoints, dtype=np.float64, copy=True)[:, list(flip_index)]
    out[..., 0] = np.where(out[..., 2] > 0, width - out[..., 0], out[..., 0])
    return out


def template(spec: KeypointSpec) -> np.ndarray:
    """The upright template ``[J, 2]`` of a dataset's joints (person height 1, centred)."""
    return np.array([_TEMPLATE[name] for name in spec.joints], dtype=np.float64)


def random_people(
    num_people: int,
    width: float,
    height: float,
    spec: KeypointSpec,
    rng: np.random.Generator,
    size_range: tuple[float, float] = (0.3, 0.5),
    invisible: float = 0.1,
    jitter: float = 0.03,
) -> np.ndarray:
    """``[P, J, 3]`` random people (x, y, v with v = 2 visible, 0 not labelled) inside the image.

    Person heights are ``size_range`` times the short side; poses are the template with random
    tilt, mirroring and joint jitter; each joint is unlabelled with probability ``invisible``.
    """
    base = template(spec)
    people = np.zeros((num_people, spec.num_joints, 3))
    short = min(width, height)
    for p in range(num_people):
        h = rng.uniform(*size_range) * short
        pose = base + rng.normal(0, jitter, base.shape)
        if rng.random() < 0.5:
            pose = pose[list(spec.flip_index)] * np.array([-1.0, 1.0])
        angle = rng.normal(0, 0.15)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        pts = pose @ rot.T * h
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        centre = rng.uniform(-lo + 1, np.array([width, height]) - hi - 1)
        people[p, :, :2] = pts + centre
        people[p, :, 2] = np.where(rng.random(spec.num_joints) < invisible, 0, 2)
        if not people[p, :, 2].any():
            people[p, 0, 2] = 2
    people[people[..., 2] == 0, :2] = 0
    return people


def crowd_index(people: np.ndarray) -> float:
    """CrowdPose's crowd index: mean over people of (other people's visible joints inside the person's
    box) / (own visible joints)."""
    ratios = []
    for a, person in enumerate(people):
        vis = person[:, 2] > 0
        if not vis.any():
            continue
        x0, y0 = person[vis, :2].min(axis=0)
        x1, y1 = person[vis, :2].max(axis=0)
        others = np.delete(people, a, axis=0).reshape(-1, 3)
        others = others[others[:, 2] > 0]
        inside = ((others[:, 0] >= x0) & (others[:, 0] <= x1) & (others[:, 1] >= y0) & (others[:, 1] <= y1)).sum()
        ratios.append(inside / vis.sum())
    return float(np.mean(ratios)) if ratios else 0.0


def scenes_to_coco(
    scenes: Sequence[np.ndarray],
    width: int,
    height: int,
    spec: KeypointSpec,
    area_factor: float = 0.53,
    first_image_id: int = 1,
) -> dict:
    """COCO-format ground truth of scenes ``[P, J, 3]`` on ``width x height`` images.

    ``bbox`` is the visible-joint extent, ``area`` its area times ``area_factor``; every image gets
    its ``crowdIndex``.
    """
    images, annotations = [], []
    for i, people in enumerate(scenes):
        image_id = first_image_id + i
        images.append({"id": image_id, "file_name": f"{image_id:06d}.jpg", "width": width, "height": height,
                       "crowdIndex": round(crowd_index(people), 4)})
        for person in people:
            vis = person[:, 2] > 0
            x0, y0 = person[vis, :2].min(axis=0)
            x1, y1 = person[vis, :2].max(axis=0)
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                "keypoints": [round(float(v), 4) for v in person.reshape(-1)],
                "num_keypoints": int(vis.sum()),
                "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                "area": float((x1 - x0) * (y1 - y0) * area_factor),
            })
    categories = [{"id": 1, "name": "person", "supercategory": "person", "keypoints": list(spec.joints),
                   "skeleton": spec.skeleton_1based()}]
    return {"images": images, "annotations": annotations, "categories": categories}
