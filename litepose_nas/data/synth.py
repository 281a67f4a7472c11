"""A synthetic multi-person keypoint dataset in the real COCO / CrowdPose folder layouts.

Each image is drawn from its own seed ``(seed, index)``, so a set is identical for a seed whatever
the number of worker processes, and a larger set starts with the images of a smaller one.
Annotations are computed from what is drawn: keypoints in the COCO pixel convention (pixel ``i``
covers ``[i, i + 1)``), visibility 2 where the figure owns the pixel, 1 where something covers it,
0 (and 0, 0) outside the image; boxes are the figure's extent clipped to the image; COCO ``area``
is the visible silhouette and ``segmentation`` its polygons; ``crowdIndex`` follows CrowdPose's
definition over the annotated people.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import DataError
from ..io import write_json_atomic
from ..keypoints import keypoint_spec
from .figures import FULL_POINTS, LAYOUT_POINTS, PALETTE, Look, PoseRanges, draw_figure, extent, place, skeletons
from .sources import crowd_index, layout_paths

LAYOUTS = ("coco", "crowdpose")


@dataclass(frozen=True)
class Preset:
    """How hard a synthetic set is."""

    name: str
    people: tuple[int, int]            # annotated people per image (inclusive)
    height: tuple[float, float]        # person height / short image side
    rotation: float                    # max |body rotation| in degrees
    lying_prob: float                  # chance of any rotation at all
    back_prob: float                   # chance a person faces away (no face, left/right swapped)
    colour_jitter: float               # 0: the fixed palette; 1: random clothes per person
    blob_scale: float                  # joint blob radius in person heights (0: no blobs)
    background: str                    # plain | smooth | textured
    clutter: tuple[int, int]           # limb-like distractors behind the people
    occluders: tuple[int, int]         # shapes drawn over the people
    crowd: tuple[float, float]         # target crowdIndex range (uniform)
    small_people: tuple[int, int]      # tiny people annotated without keypoints
    crowd_region_prob: float           # chance of an iscrowd region (a huddle of tiny figures)
    truncation_cost: float = 0.2       # layout penalty per fraction of joints outside the image
    pose: PoseRanges = field(default_factory=PoseRanges)


PRESETS: dict[str, Preset] = {
    "easy": Preset("easy", people=(1, 3), height=(0.55, 0.9), rotation=12.0, lying_prob=0.0, back_prob=0.0,
                   colour_jitter=0.0, blob_scale=0.035, background="plain", clutter=(0, 0), occluders=(0, 0),
                   crowd=(0.0, 0.0), small_people=(0, 0), crowd_region_prob=0.0, truncation_cost=2.0,
                   pose=PoseRanges(upper_arm=(0.2, 1.9), elbow=(-0.8, 0.5), thigh=(0.0, 0.45), knee=(-0.3, 0.2),
                                   lean=0.1, width=(0.9, 1.1))),
    "medium": Preset("medium", people=(1, 5), height=(0.35, 0.85), rotation=30.0, lying_prob=0.02, back_prob=0.2,
                     colour_jitter=0.35, blob_scale=0.025, background="smooth", clutter=(0, 3), occluders=(0, 1),
                     crowd=(0.0, 0.6), small_people=(0, 1), crowd_region_prob=0.05,
                     pose=PoseRanges(upper_arm=(-0.2, 2.4), elbow=(-1.6, 0.8), thigh=(-0.2, 0.6), knee=(-0.6, 0.3),
                                     lean=0.2, width=(0.6, 1.1))),
    "hard": Preset("hard", people=(2, 9), height=(0.25, 0.8), rotation=40.0, lying_prob=0.05, back_prob=0.3,
                   colour_jitter=1.0, blob_scale=0.0, background="textured", clutter=(2, 8), occluders=(0, 3),
                   crowd=(0.0, 0.92), small_people=(0, 3), crowd_region_prob=0.15,
                   pose=PoseRanges(upper_arm=(-0.4, 2.8), elbow=(-2.2, 1.0), thigh=(-0.3, 0.8), knee=(-0.9, 0.4),
                                   lean=0.3, width=(0.35, 1.1))),
}

_LAYOUT_CANDIDATES = 12  # random layouts tried to meet an image's crowdIndex target


def image_seed(seed: int, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), int(index)])


# -- backgrounds and distractors -----------------------------------------------------------------
def _muted(rng: np.random.Generator) -> np.ndarray:
    grey = rng.uniform(70, 190)
    return np.clip(grey + rng.normal(0, 18, 3), 0, 255)


def _noise(rng: np.random.Generator, h: int, w: int, cells: int, channels: int = 3) -> np.ndarray:
    import cv2

    small = rng.uniform(-1, 1, (cells, cells, channels)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, channels)


def background(rng: np.random.Generator, h: int, w: int, kind: str) -> np.ndarray:
    import cv2

    base = _muted(rng).astype(np.float32)
    if kind == "plain":
        return np.broadcast_to(base, (h, w, 3)).astype(np.uint8).copy()
    img = base + 45 * _noise(rng, h, w, int(rng.integers(2, 5)))
    if kind == "textured":
        img += 30 * _noise(rng, h, w, int(rng.integers(8, 20))) + 15 * _noise(rng, h, w, int(rng.integers(30, 60)))
        img = np.clip(img, 0, 255).astype(np.uint8)
        for _ in range(int(rng.integers(3, 12))):  # stripes and edges
            p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.line(img, p0, p1, tuple(int(v) for v in rng.integers(0, 256, 3)), int(rng.integers(1, 4)), cv2.LINE_AA)
        return img
    return np.clip(img + rng.normal(0, 3, (h, w, 3)), 0, 255).astype(np.uint8)


def _limb_clutter(rng: np.random.Generator, img: np.ndarray, scale: float, palette_like: bool) -> None:
    """Chains of thick segments with round ends: limb-like shapes that belong to no one."""
    import cv2

    h, w = img.shape[:2]
    parts = list(PALETTE.values())
    x, y = rng.uniform(0, w), rng.uniform(0, h)
    a = rng.uniform(0, 2 * np.pi)
    for _ in range(int(rng.integers(1, 4))):
        length = scale * rng.uniform(0.12, 0.25)
        a += rng.uniform(-1.2, 1.2)
        x1, y1 = x + length * np.cos(a), y + length * np.sin(a)
        colour = parts[int(rng.integers(len(parts)))] if palette_like else tuple(int(v) for v in rng.integers(0, 256, 3))
        thick = max(int(scale * rng.uniform(0.03, 0.06)), 1)
        cv2.line(img, (int(x), int(y)), (int(x1), int(y1)), tuple(int(v) for v in colour), thick, cv2.LINE_AA)
        cv2.circle(img, (int(x1), int(y1)), max(thick // 2 + 1, 1), tuple(int(v) for v in colour), -1, cv2.LINE_AA)
        x, y = x1, y1


def _occluder(rng: np.random.Generator, img: np.ndarray, owner: np.ndarray, scale: float) -> None:
    import cv2

    h, w = img.shape[:2]
    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
    ax, ay = int(scale * rng.uniform(0.06, 0.2)) + 1, int(scale * rng.uniform(0.06, 0.2)) + 1
    if rng.random() < 0.5:
        for canvas, c in ((img, colour), (owner, 255)):
            cv2.rectangle(canvas, (cx - ax, cy - ay), (cx + ax, cy + ay), c, -1)
    else:
        angle = float(rng.uniform(0, 180))
        for canvas, c in ((img, colour), (owner, 255)):
            cv2.ellipse(canvas, (cx, cy), (ax, ay), angle, 0, 360, c, -1)


# -- people ----------------------------------------------------------------------------------------
def _look(rng: np.random.Generator, preset: Preset, face: bool) -> Look:
    if preset.colour_jitter <= 0:
        colours = dict(PALETTE)
    else:
        colours = {}
        # one "clothes" colour per body region, blended with the palette by the jitter weight
        upper, lower, skin = (rng.integers(0, 256, 3) for _ in range(3))
        region = {"torso": upper, "upper_arm": upper, "forearm": skin, "thigh": lower, "shin": lower,
                  "head": np.array([rng.uniform(90, 250)] * 3) * np.array([1.0, 0.82, 0.68]),
                  "hair": rng.integers(0, 120, 3)}
        for part, rgb in PALETTE.items():
            mix = region.get(part, rng.integers(0, 256, 3))
            colours[part] = tuple(int(v) for v in np.clip((1 - preset.colour_jitter) * np.asarray(rgb)
                                                          + preset.colour_jitter * mix, 0, 255))
    return Look(colours=colours, blob_scale=preset.blob_scale, face=face)


def _layout(rng: np.random.Generator, preset: Preset, n: int, h: int, w: int, target: float):
    """Figures (points in pixels, heights) of ``n`` people, the layout nearest ``target`` crowdIndex."""
    short = min(h, w)
    facing = np.where(rng.random(n) < preset.back_prob, -1.0, 1.0)
    local = skeletons(rng, n, preset.pose, facing)
    rotation = np.deg2rad(rng.uniform(-preset.rotation, preset.rotation, n))
    lying = rng.random(n) < preset.lying_prob
    rotation[lying] = rng.uniform(-np.pi, np.pi, lying.sum())
    base = rng.uniform(*preset.height) * short
    height = base * rng.uniform(0.8, 1.2, n) if n > 1 else np.array([base])
    height = np.clip(height, 0.05 * short, 0.95 * short)
    best, best_score = None, np.inf
    tries = _LAYOUT_CANDIDATES if n > 1 else 4
    for _ in range(tries):
        # a candidate: how far apart people stand and how large the group is drawn
        spacing = rng.uniform(0.08, 1.4) if preset.crowd[1] > 0 else rng.uniform(0.7, 1.3)
        size = height * (rng.uniform(0.6, 1.0) if preset.crowd[1] > 0 else 1.0)
        pelvis = np.zeros((n, 2))
        pelvis[0] = rng.uniform(0, 1, 2)
        for i in range(1, n):
            k = int(rng.integers(i))
            step = spacing * size[k] * rng.uniform(0.5, 1.2) * rng.choice([-1.0, 1.0])
            pelvis[i] = pelvis[k] + np.array([step / w, rng.normal(0, 0.12) * size[k] / h])
        # centre the group, then keep every pelvis where its figure is mostly in the frame
        pelvis[:, 0] = (pelvis[:, 0] - pelvis[:, 0].mean()) * w + w * rng.uniform(0.3, 0.7)
        pelvis[:, 1] = (pelvis[:, 1] - pelvis[:, 1].mean()) * h + h * rng.uniform(0.4, 0.6)
        margin_y = np.minimum(0.45 * size, h / 2)
        pelvis[:, 0] = np.clip(pelvis[:, 0], 0.05 * w, 0.95 * w)
        pelvis[:, 1] = np.clip(pelvis[:, 1], margin_y, h - margin_y)
        pts = place(local, size, rotation, pelvis)
        kp, boxes = _annotation_geometry(pts, size, h, w, LAYOUT_POINTS["crowdpose"])
        outside = float((kp[..., 2] == 0).mean())
        score = abs(crowd_index(kp, boxes) - target) + preset.truncation_cost * outside
        if score < best_score:
            best, best_score, best_size = pts, score, size
        if score == 0:
            break
    height = best_size
    return best, height, facing


def _annotation_geometry(pts: np.ndarray, height: np.ndarray, h: int, w: int, points: np.ndarray):
    """Keypoints [n, J, 3] with v 2 inside the image (0 outside) and clipped boxes [n, 4] (x, y, w, h)."""
    xy = pts[:, points]
    inside = (xy[..., 0] >= 0) & (xy[..., 0] < w) & (xy[..., 1] >= 0) & (xy[..., 1] < h)
    kp = np.concatenate([xy, np.where(inside, 2.0, 0.0)[..., None]], -1)
    kp[~inside] = 0.0
    ext = extent(pts, height)
    x0, y0 = np.clip(ext[:, 0], 0, w), np.clip(ext[:, 1], 0, h)
    x1, y1 = np.clip(ext[:, 2], 0, w), np.clip(ext[:, 3], 0, h)
    return kp, np.stack([x0, y0, x1 - x0, y1 - y0], 1)


def _visibility(kp: np.ndarray, owner: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """v = 2 where a figure owns a pixel next to its joint, 1 where something else covers it."""
    h, w = owner.shape
    x = np.floor(kp[..., 0]).astype(int)
    y = np.floor(kp[..., 1]).astype(int)
    seen = np.zeros(kp.shape[:2], bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            seen |= owner[np.clip(y + dy, 0, h - 1), np.clip(x + dx, 0, w - 1)] == codes[:, None]
    v = kp[..., 2].copy()
    v[(v > 0) & ~seen] = 1.0
    return v


def _polygons(mask: np.ndarray) -> list[list[float]]:
    import cv2

    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    # OpenCV contours run through pixel centres; +0.5 moves them to the COCO convention
    return [[round(float(v) + 0.5, 2) for v in c.reshape(-1)] for c in contours if len(c) >= 3]


def joint_points(layout: str, joints: Sequence[str] | None = None) -> np.ndarray:
    """Indices into the figure's points (:data:`FULL_POINTS`) of the annotated joints: the layout's,
    or the named ``joints`` (any of the 17 COCO joints, ``head``, ``neck``) for another keypoint set."""
    if joints is None:
        return LAYOUT_POINTS[layout]
    allowed = FULL_POINTS[:-1]  # head_centre is a drawing aid
    bad = [j for j in joints if j not in allowed]
    if bad or not joints or len(set(joints)) != len(joints):
        raise DataError(f"joints {list(joints)!r}: each must be one of {', '.join(allowed)}, without repeats"
                        + (f" (got {bad[0]!r})" if bad else ""))
    return np.array([FULL_POINTS.index(j) for j in joints])


def render_image(index: int, seed: int, preset: Preset | str, layout: str, size: int = 256,
                 joints: Sequence[str] | None = None):
    """Draw image ``index`` of a set: ``(rgb uint8 HxWx3, annotations without ids, crowdIndex)``;
    ``joints`` names the annotated joints of another keypoint set (:func:`joint_points`)."""

    preset = PRESETS[preset] if isinstance(preset, str) else preset
    rng = np.random.default_rng(image_seed(seed, index))
    short = int(round(size * rng.uniform(0.7, 1.0)))
    h, w = (short, size) if rng.random() < 0.7 else (size, short)
    img = background(rng, h, w, preset.background)
    owner = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(preset.clutter[0], preset.clutter[1] + 1))):
        _limb_clutter(rng, img, min(h, w), palette_like=rng.random() < 0.5)

    records = []  # (kind, payload)
    if rng.random() < preset.crowd_region_prob:
        records.append(("crowd", _crowd_region(rng, preset, img, owner)))

    target = float(rng.uniform(*preset.crowd))
    lo, hi = preset.people
    if preset.crowd[1] > 0:
        # many people cannot stand apart in one frame: sparse targets get small groups
        hi = int(np.clip(round(lo + 1 + target * 8), lo, hi))
    n = int(rng.integers(lo, hi + 1))
    pts, height, facing = _layout(rng, preset, n, h, w, target)
    n_small = int(rng.integers(preset.small_people[0], preset.small_people[1] + 1))
    if n_small:
        s_face = np.where(rng.random(n_small) < 0.5, -1.0, 1.0)
        s_local = skeletons(rng, n_small, preset.pose, s_face)
        s_height = rng.uniform(0.05, 0.1, n_small) * min(h, w)
        s_pelvis = np.stack([rng.uniform(0, w, n_small), rng.uniform(0, h, n_small)], 1)
        s_pts = place(s_local, s_height, np.zeros(n_small), s_pelvis)
        pts = np.concatenate([pts, s_pts])
        height = np.concatenate([height, s_height])
        facing = np.concatenate([facing, s_face])
    total = len(pts)
    order = rng.permutation(total)  # painting order = depth order
    codes = np.arange(1, total + 1)
    for i in order:
        draw_figure(img, owner, int(codes[i]), pts[i], float(height[i]), _look(rng, preset, facing[i] > 0))
    for _ in range(int(rng.integers(preset.occluders[0], preset.occluders[1] + 1))):
        _occluder(rng, img, owner, min(h, w))

    points = joint_points(layout, joints)
    kp, boxes = _annotation_geometry(pts, height, h, w, points)
    kp[..., 2] = _visibility(kp, owner, codes)
    if layout == "coco":
        # a face turned away shows no nose or eyes: unlabelled, as in COCO
        face = [k for k, p in enumerate(points) if FULL_POINTS[p] in ("nose", "left_eye", "right_eye")]
        back = np.flatnonzero(facing < 0)
        kp[np.ix_(back, face)] = 0.0
    anns = []
    for i in range(total):
        annotated = i < n
        num = int((kp[i, :, 2] > 0).sum()) if annotated else 0
        if annotated and num == 0:
            continue
        if boxes[i, 2] < 1 or boxes[i, 3] < 1:
            continue
        x0, y0, bw, bh = boxes[i]
        ann = {
            "num_keypoints": num, "iscrowd": 0,
            "keypoints": [round(float(v), 2) for v in (kp[i] if annotated else np.zeros_like(kp[i])).reshape(-1)],
            "bbox": [round(float(v), 2) for v in (x0, y0, bw, bh)], "category_id": 1,
        }
        if layout == "coco":
            xi0, yi0 = int(np.floor(x0)), int(np.floor(y0))
            xi1, yi1 = int(np.ceil(x0 + bw)), int(np.ceil(y0 + bh))
            crop = (owner[yi0:yi1, xi0:xi1] == codes[i]).astype(np.uint8)
            polys = [[v + (xi0 if k % 2 == 0 else yi0) for k, v in enumerate(poly)] for poly in _polygons(crop)]
            area = float(crop.sum())
            if area == 0 or not polys:
                if not annotated:
                    continue
                polys = [[x0, y0, x0 + bw, y0, x0 + bw, y0 + bh, x0, y0 + bh]]
                area = float(bw * bh)
            ann["segmentation"] = [[round(v, 2) for v in p] for p in polys]
            ann["area"] = round(area, 2)
        anns.append(ann)
    for kind, payload in records:
        box, mask = payload
        mask = mask * ((owner < 1) | (owner > n))  # annotated people painted over the huddle stay in
        ann = {"num_keypoints": 0, "iscrowd": 1, "keypoints": [0] * (3 * len(points)),
               "bbox": [round(float(v), 2) for v in box], "category_id": 1}
        if layout == "coco":
            from pycocotools import mask as mask_utils

            rle = mask_utils.encode(np.asfortranarray(mask))
            ann["segmentation"] = {"size": [h, w], "counts": rle["counts"].decode("ascii")}
            ann["area"] = float(mask.sum())
        anns.append(ann)
    people = [a for a in anns if not a["iscrowd"] and a["num_keypoints"] > 0]
    ci = crowd_index(np.asarray([a["keypoints"] for a in people]).reshape(len(people), len(points), 3),
                     np.asarray([a["bbox"] for a in people]).reshape(len(people), 4)) if people else 0.0
    return img, anns, ci


def _crowd_region(rng: np.random.Generator, preset: Preset, img: np.ndarray, owner: np.ndarray):
    """A huddle of tiny figures annotated as one iscrowd region: (box, mask)."""
    h, w = img.shape[:2]
    m = int(rng.integers(6, 15))
    fh = rng.uniform(0.08, 0.14) * min(h, w)
    rw, rh = rng.uniform(0.2, 0.35) * w, 1.3 * fh
    x0, y0 = rng.uniform(0, w - rw), rng.uniform(0, h - rh)
    face = np.where(rng.random(m) < 0.5, -1.0, 1.0)
    local = skeletons(rng, m, preset.pose, face)
    heights = fh * rng.uniform(0.85, 1.15, m)
    pelvis = np.stack([rng.uniform(x0, x0 + rw, m), rng.uniform(y0 + 0.5 * fh, y0 + rh - 0.5 * fh, m)], 1)
    pts = place(local, heights, np.zeros(m), pelvis)
    mask = np.zeros((h, w), np.uint8)
    for i in range(m):
        draw_figure(img, owner, 255, pts[i], float(heights[i]), _look(rng, preset, face[i] > 0), extra_masks=(mask,))
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        box = (x0, y0, rw, rh)
    else:
        box = (float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()), float(ys.max() + 1 - ys.min()))
    return box, mask


# -- writing a set -----------------------------------------------------------------------------------
def _render_to_file(args) -> tuple[int, list[dict], float, int, int]:
    import cv2

    index, seed, preset, layout, size, path, joints = args
    img, anns, ci = render_image(index, seed, preset, layout, size, joints)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise DataError(f"cannot encode synthetic image {path}")
    Path(path).write_bytes(buf.tobytes())
    return index, anns, round(ci, 4), img.shape[0], img.shape[1]


def _split_counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    n_val = int(round(n * val_fraction))
    n_test = int(round(n * test_fraction))
    if val_fraction > 0 and n_val == 0 and n >= 2:
        n_val = 1
    if n - n_val - n_test < 1:
        raise DataError(f"--images {n} leaves no training image with val fraction {val_fraction} "
                        f"and test fraction {test_fraction}")
    return n - n_val - n_test, n_val, n_test


def generate_synthetic(out_dir: str | Path, num_images: int, layout: str = "coco", preset: str = "easy",
                       seed: int = 0, val_fraction: float = 0.1, test_fraction: float | None = None,
                       image_size: int = 256, workers: int = 0, progress: bool = False,
                       joints: Sequence[str] | None = None) -> Path:
    """Write a synthetic set in the folder layout of ``layout`` and return its root.

    ``joints`` (names from :data:`~litepose_nas.data.figures.FULL_POINTS`) annotates another keypoint
    set: the category lists those names (flip pairs follow the left/right naming rule) and the
    skeleton the layout's edges between them.

    Images ``0 .. n_train-1`` form the train split, the next ones val (and test for CrowdPose,
    ``test_fraction`` defaulting to ``val_fraction``). The set is built in a temporary folder beside
    ``out_dir`` and renamed into place at the end, so an interrupted run leaves nothing behind.
    """
    if layout not in LAYOUTS:
        raise DataError(f"layout {layout!r} not supported (allowed: {', '.join(LAYOUTS)})")
    if preset not in PRESETS:
        raise DataError(f"preset {preset!r} not supported (allowed: {', '.join(PRESETS)})")
    if num_images < 1:
        raise DataError(f"number of images must be at least 1, got {num_images}")
    if not 0 <= val_fraction < 1:
        raise DataError(f"val fraction must lie in [0, 1), got {val_fraction}")
    if image_size < 32:
        raise DataError(f"image size must be at least 32 px, got {image_size}")
    if layout == "coco":
        test_fraction = 0.0
    elif test_fraction is None:
        test_fraction = val_fraction
    n_train, n_val, n_test = _split_counts(num_images, val_fraction, test_fraction)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"output folder {out} already exists and is not empty (choose another --out)")

    spec = keypoint_spec(layout)
    points = joint_points(layout, joints)
    splits = {"train": range(0, n_train), "val": range(n_train, n_train + n_val)}
    if layout == "crowdpose":
        splits["test"] = range(n_train + n_val, num_images)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        jobs = []
        split_of = {}
        for split, idx in splits.items():
            ann_file, image_dir = layout_paths(tmp, layout, split)
            image_dir.mkdir(parents=True, exist_ok=True)
            for i in idx:
                split_of[i] = split
                jobs.append((i, seed, preset, layout, image_size, str(image_dir / _file_name(layout, i)),
                             None if joints is None else tuple(joints)))
        results = _run(jobs, workers, progress)
        records = {split: ([], []) for split in splits}
        ann_id = 1
        for index, anns, ci, h, w in sorted(results, key=lambda r: r[0]):
            img_rec = {"file_name": _file_name(layout, index), "id": index + 1, "height": h, "width": w,
                       "crowdIndex": round(ci, 2)}
            if layout == "coco":
                img_rec["license"] = 1
            images, annotations = records[split_of[index]]
            images.append(img_rec)
            for a in anns:
                annotations.append({**a, "image_id": index + 1, "id": ann_id})
                ann_id += 1
        category = {"supercategory": "person", "id": 1, "name": "person", "keypoints": list(spec.joints),
                    "skeleton": spec.skeleton_1based()}
        if joints is not None:
            layout_names = [FULL_POINTS[p] for p in LAYOUT_POINTS[layout]]
            pos = {FULL_POINTS[p]: k for k, p in enumerate(points)}
            edges = [(layout_names[a], layout_names[b]) for a, b in spec.skeleton]
            category.update(keypoints=list(joints),
                            skeleton=[[pos[a] + 1, pos[b] + 1] for a, b in edges if a in pos and b in pos])
        info = {"description": f"litepose-nas synthetic {layout} set, preset {preset}, seed {seed}",
                "version": "1", "year": 2024}
        for split, (images, annotations) in records.items():
            gt = {"images": images, "annotations": annotations, "categories": [category]}
            if layout == "coco":
                gt = {"info": info, "licenses": [{"id": 1, "name": "synthetic", "url": ""}], **gt}
            write_json_atomic(layout_paths(tmp, layout, split)[0], gt, indent=None)
        if layout == "crowdpose":
            tv = [records["train"], records["val"]]
            gt = {"images": tv[0][0] + tv[1][0], "annotations": tv[0][1] + tv[1][1], "categories": [category]}
            write_json_atomic(layout_paths(tmp, layout, "trainval")[0], gt, indent=None)
        write_json_atomic(tmp / "synth.json", {
            "generator": "litepose-nas synthetic", "layout": layout, "preset": preset, "seed": seed,
            "images": num_images, "image_size": image_size, "splits": {k: len(v) for k, v in splits.items()},
            **({"joints": list(joints)} if joints is not None else {}),
        })
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _file_name(layout: str, index: int) -> str:
    return f"{index + 1:012d}.jpg" if layout == "coco" else f"{index + 1}.jpg"


def _run(jobs: list, workers: int, progress: bool) -> list:
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), disable=not progress, desc="synth", unit="img")
    results = []
    try:
        if workers and workers > 1:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            # A forkserver/spawn child starts without the parent's threads (torch, cv2, tqdm), so no lock
            # copied mid-use can deadlock it, and a worker that dies raises BrokenProcessPool instead of
            # leaving the pool waiting forever (seen with fork).
            context = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
            chunks = [jobs[i:i + 8] for i in range(0, len(jobs), 8)]
            with ProcessPoolExecutor(workers, mp_context=context, initializer=_pool_init) as pool:
                for done in as_completed([pool.submit(_render_chunk, chunk) for chunk in chunks]):
                    rendered = done.result()
                    results.extend(rendered)
                    bar.update(len(rendered))
        else:
            for job in jobs:
                results.append(_render_to_file(job))
                bar.update(1)
    finally:
        bar.close()
    return results


def _render_chunk(jobs: list) -> list:
    return [_render_to_file(job) for job in jobs]


def _pool_init() -> None:
    import cv2

    cv2.setNumThreads(0)


def summary(root: str | Path, layout: str) -> dict:
    """Counts and crowdIndex spread of a written set (used by ``data info``)."""
    from .sources import DATASET_SPLITS, open_dataset

    out = {}
    for split in DATASET_SPLITS[layout]:
        ann_file, _ = layout_paths(Path(root), layout, split)
        if not ann_file.exists():
            continue
        src = open_dataset(root, layout, split)
        gt = src.gt_dict()
        people = [a for a in gt["annotations"] if not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0]
        ci = np.asarray([img["crowdIndex"] for img in gt["images"] if "crowdIndex" in img], float)
        out[split] = {
            "images": len(gt["images"]), "usable_images": len(src.image_ids), "people": len(people),
            "crowd_regions": sum(1 for a in gt["annotations"] if a.get("iscrowd", 0)),
            "people_per_image": round(len(people) / max(len(gt["images"]), 1), 2),
            "crowd_index_median": round(float(np.median(ci)), 3) if len(ci) else None,
            "crowd_index_p90": round(float(np.percentile(ci, 90)), 3) if len(ci) else None,
        }
    return out
