"""Articulated 2D figures for the synthetic dataset: skeletons (vectorised over people) and drawing.

A figure has 20 points: the 17 COCO joints, CrowdPose's ``head`` (top of the head) and ``neck``,
and the centre of the head circle (drawing only); each layout picks its joints from them (:data:`LAYOUT_POINTS`). Body parts have one
colour per part *type*, the same on the left and the right: a mirrored image must still show a
valid person under the flipped labels (flip augmentation and flip test), so left and right are
told apart only by where they are and which way the figure faces (faces have eyes and a nose).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FULL_POINTS = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck", "head_centre",
)
_P = {name: i for i, name in enumerate(FULL_POINTS)}
LAYOUT_POINTS = {
    "coco": np.arange(17),
    "crowdpose": np.array([_P[n] for n in (
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck")]),
}
HEAD_RADIUS = 0.065  # in person heights

# part type -> RGB of the fixed palette (easy preset); limbs are symmetric left/right
PALETTE = {
    "torso": (60, 170, 70), "upper_arm": (225, 50, 50), "forearm": (245, 150, 30),
    "thigh": (50, 80, 225), "shin": (40, 200, 235), "head": (240, 200, 160), "hair": (60, 40, 30),
    "shoulder": (150, 20, 170), "elbow": (250, 250, 40), "wrist": (250, 40, 250),
    "hip": (10, 90, 10), "knee": (255, 255, 255), "ankle": (20, 20, 20),
}
LIMBS = (  # (from, to, part type, thickness in person heights)
    ("left_hip", "left_knee", "thigh", 0.06), ("left_knee", "left_ankle", "shin", 0.05),
    ("right_hip", "right_knee", "thigh", 0.06), ("right_knee", "right_ankle", "shin", 0.05),
    ("left_shoulder", "left_elbow", "upper_arm", 0.045), ("left_elbow", "left_wrist", "forearm", 0.04),
    ("right_shoulder", "right_elbow", "upper_arm", 0.045), ("right_elbow", "right_wrist", "forearm", 0.04),
)
BLOBS = (("shoulder", "left_shoulder"), ("shoulder", "right_shoulder"), ("elbow", "left_elbow"),
         ("elbow", "right_elbow"), ("wrist", "left_wrist"), ("wrist", "right_wrist"), ("hip", "left_hip"),
         ("hip", "right_hip"), ("knee", "left_knee"), ("knee", "right_knee"), ("ankle", "left_ankle"),
         ("ankle", "right_ankle"))


@dataclass
class PoseRanges:
    """Ranges of the random pose (angles in radians, measured from hanging straight down)."""

    upper_arm: tuple[float, float] = (0.1, 2.0)
    elbow: tuple[float, float] = (-1.0, 0.6)
    thigh: tuple[float, float] = (-0.1, 0.5)
    knee: tuple[float, float] = (-0.4, 0.3)
    lean: float = 0.15
    width: tuple[float, float] = (0.85, 1.1)  # shoulder/hip width factor (< 1: turned sideways)


def skeletons(rng: np.random.Generator, n: int, ranges: PoseRanges, facing: np.ndarray) -> np.ndarray:
    """Points ``[n, 20, 2]`` in person heights, pelvis at the origin, y down, upright.

    ``facing`` [n]: +1 faces the camera (the person's left is at +x), -1 faces away.
    """
    def u(lo_hi, size=n):
        return rng.uniform(lo_hi[0], lo_hi[1], size)

    pts = np.zeros((n, len(FULL_POINTS), 2))
    lean = rng.uniform(-ranges.lean, ranges.lean, n)
    up = np.stack([np.sin(lean), -np.cos(lean)], 1)          # [n, 2]
    right = np.stack([np.cos(lean), np.sin(lean)], 1)        # +x side of the body
    width = u(ranges.width) * rng.uniform(0.9, 1.1, n)
    side = facing[:, None] * right * width[:, None]          # towards the person's left
    length = rng.uniform(0.92, 1.08, (n, 4))                 # upper arm, forearm, thigh, shin

    neck = 0.30 * up
    pts[:, _P["neck"]] = neck
    head = neck + 0.10 * up + rng.uniform(-0.02, 0.02, (n, 1)) * right
    pts[:, _P["head_centre"]] = head
    pts[:, _P["head"]] = head + 0.9 * HEAD_RADIUS * up
    pts[:, _P["nose"]] = head - 0.005 * up
    for s, name in ((1, "left"), (-1, "right")):
        pts[:, _P[f"{name}_eye"]] = head + s * 0.025 * side / np.maximum(width[:, None], 0.3) + 0.018 * up
        pts[:, _P[f"{name}_ear"]] = head + s * 0.8 * HEAD_RADIUS * side / np.maximum(width[:, None], 0.3)
        shoulder = neck + s * 0.11 * side - 0.02 * up
        hip = s * 0.085 * side
        pts[:, _P[f"{name}_shoulder"]] = shoulder
        pts[:, _P[f"{name}_hip"]] = hip
        out = s * facing[:, None] * right                    # away from the body's midline
        a1 = u(ranges.upper_arm)
        a2 = a1 + u(ranges.elbow)
        elbow = shoulder + 0.16 * length[:, :1] * (np.cos(a1)[:, None] * -up + np.sin(a1)[:, None] * out)
        wrist = elbow + 0.15 * length[:, 1:2] * (np.cos(a2)[:, None] * -up + np.sin(a2)[:, None] * out)
        pts[:, _P[f"{name}_elbow"]], pts[:, _P[f"{name}_wrist"]] = elbow, wrist
        t1 = u(ranges.thigh)
        t2 = t1 + u(ranges.knee)
        down = np.array([0.0, 1.0])
        xout = s * facing[:, None] * np.array([1.0, 0.0])
        knee = hip + 0.23 * length[:, 2:3] * (np.cos(t1)[:, None] * down + np.sin(t1)[:, None] * xout)
        ankle = knee + 0.23 * length[:, 3:4] * (np.cos(t2)[:, None] * down + np.sin(t2)[:, None] * xout)
        pts[:, _P[f"{name}_knee"]], pts[:, _P[f"{name}_ankle"]] = knee, ankle
    return pts


def place(pts: np.ndarray, height: np.ndarray, rotation: np.ndarray, pelvis: np.ndarray) -> np.ndarray:
    """Scale (pixels per person height), rotate (radians) and move figures into the image."""
    c, s = np.cos(rotation), np.sin(rotation)
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # [n, 2, 2]
    return np.einsum("nij,npj->npi", rot, pts) * height[:, None, None] + pelvis[:, None, :]


def extent(points: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Amodal boxes ``[n, 4]`` (x0, y0, x1, y1) of drawn figures: joints plus limb and head size."""
    pad = 0.035 * height[:, None]
    head = points[:, _P["head_centre"]]
    r = HEAD_RADIUS * height[:, None]
    lo = np.minimum(points.min(1) - pad, head - r)
    hi = np.maximum(points.max(1) + pad, head + r)
    return np.concatenate([lo, hi], 1)


@dataclass
class Look:
    """How one figure is painted."""

    colours: dict           # part type -> RGB
    blob_scale: float       # joint blob radius in person heights (0: none)
    face: bool              # draw eyes and nose (faces the camera)


def draw_figure(img: np.ndarray, owner: np.ndarray | None, code: int, p: np.ndarray, height: float,
                look: Look, extra_masks: tuple = ()) -> None:
    """Paint one figure ``p`` [20, 2] (pixels) on ``img`` and its ``code`` on ``owner``."""
    import cv2

    shift = 4  # sub-pixel drawing: coordinates in 1/16 px
    f = float(1 << shift)

    def pt(name):
        # corner convention -> OpenCV's integer pixel centres
        x, y = p[_P[name]] - 0.5
        return int(round(x * f)), int(round(y * f))

    targets = [(img, None)] + ([(owner, code)] if owner is not None else []) + [(m, 1) for m in extra_masks]

    def line(a, b, colour, thick):
        t = max(int(round(thick * height)), 1)
        for canvas, val in targets:
            cv2.line(canvas, pt(a), pt(b), colour if val is None else val, t,
                     cv2.LINE_AA if val is None else cv2.LINE_8, shift)

    def circle(name, r, colour, canvases=None):
        rr = max(int(round(r * f)), 1 << shift)
        for canvas, val in (canvases or targets):
            cv2.circle(canvas, pt(name), rr, colour if val is None else val, -1,
                       cv2.LINE_AA if val is None else cv2.LINE_8, shift)

    c = look.colours
    for a, b, part, thick in LIMBS[:4]:
        line(a, b, c[part], thick)
    torso = np.array([pt("left_shoulder"), pt("right_shoulder"), pt("right_hip"), pt("left_hip")], np.int32)
    for canvas, val in targets:
        colour = c["torso"] if val is None else val
        cv2.fillConvexPoly(canvas, torso, colour, cv2.LINE_AA if val is None else cv2.LINE_8, shift)
        cv2.polylines(canvas, [torso], True, colour, max(int(0.05 * height), 1),
                      cv2.LINE_AA if val is None else cv2.LINE_8, shift)
    line("neck", "head", c["head"], 0.05)
    circle("head_centre", HEAD_RADIUS * height, c["head"] if look.face else c["hair"])
    for a, b, part, thick in LIMBS[4:]:
        line(a, b, c[part], thick)
    if look.blob_scale > 0:
        for part, name in BLOBS:
            circle(name, look.blob_scale * height, c[part])
    if look.face:
        face_r = max(0.012 * height, 0.8)
        only_img = [(img, None)]
        circle("left_eye", face_r, (15, 15, 15), only_img)
        circle("right_eye", face_r, (15, 15, 15), only_img)
        circle("nose", face_r * 1.2, (200, 40, 40), only_img)
    ear_r = max(0.014 * height, 0.8)
    circle("left_ear", ear_r, c["hair"], [(img, None)])
    circle("right_ear", ear_r, c["hair"], [(img, None)])
