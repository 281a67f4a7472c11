"""Affine augmentation of images, joints and masks (the original recipe: scale, rotation,
translation, horizontal flip with the dataset's flip index).

Coordinates are continuous with pixel ``i`` covering ``[i, i + 1)`` (the COCO convention), so a
map at another resolution is a pure scaling and a flip is ``x -> W - x``: flipping twice gives the
joints back exactly. OpenCV samples at integer pixel centres; :func:`cv2_matrix` converts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random training transform (defaults: the original Lite Pose recipe)."""

    max_rotation: float = 30.0      # degrees, uniform in [-r, r]
    min_scale: float = 0.75
    max_scale: float = 1.5
    max_translate: float = 40.0 / 512.0  # fraction of the input size (40 px at 512 px input)
    flip_prob: float = 0.5
    scale_type: str = "short"      # the crop covers the short ('short') or long ('long') image side


def crop_matrix(height: int, width: int, out_size: float, scale: float = 1.0, rotation: float = 0.0,
                shift: tuple[float, float] = (0.0, 0.0), flip: bool = False, scale_type: str = "long") -> np.ndarray:
    """2x3 matrix mapping image coordinates to a square ``out_size`` crop.

    The crop is centred on the image centre (plus ``shift``, in output pixels), covers the
    ``scale_type`` side of the image divided by ``scale`` (zoom in for scale > 1), is rotated by
    ``rotation`` degrees and optionally mirrored (before everything else, about the image centre).
    """
    side = max(height, width) if scale_type == "long" else min(height, width)
    s = out_size * scale / side
    cx, cy = width / 2.0, height / 2.0
    a = np.deg2rad(rotation)
    cos, sin = np.cos(a) * s, np.sin(a) * s
    fx = -1.0 if flip else 1.0
    # x' = R S F (x - c) + out/2 + shift
    lin = np.array([[cos * fx, sin], [-sin * fx, cos]])
    t = np.array([out_size / 2.0 + shift[0], out_size / 2.0 + shift[1]]) - lin @ np.array([cx, cy])
    return np.concatenate([lin, t[:, None]], axis=1)


def scale_matrix(mat: np.ndarray, factor: float) -> np.ndarray:
    """The same transform onto a map ``factor`` times the size (corner convention: pure scaling)."""
    return mat * factor


def cv2_matrix(mat: np.ndarray) -> np.ndarray:
    """Convert a corner-convention affine to OpenCV's (integer pixel centres)."""
    lin = mat[:, :2]
    t = mat[:, 2] + lin @ np.array([0.5, 0.5]) - 0.5
    return np.concatenate([lin, t[:, None]], axis=1)


def transform_points(mat: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to points ``[..., 2]``."""
    return xy @ mat[:, :2].T + mat[:, 2]


def transform_joints(mat: np.ndarray, joints: np.ndarray, flip_index: np.ndarray | None = None) -> np.ndarray:
    """Apply ``mat`` to joints ``[P, J, 3]``; with ``flip_index`` the joint order is mirrored too."""
    out = joints.copy()
    out[..., :2] = transform_points(mat, joints[..., :2])
    if flip_index is not None:
        out = out[:, flip_index]
    return out


def warp(img: np.ndarray, mat: np.ndarray, size: int, border_value: float | tuple = 0, nearest: bool = False) -> np.ndarray:
    import cv2

    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.warpAffine(img, cv2_matrix(mat), (int(size), int(size)), flags=flags,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)


def sample_params(rng: np.random.Generator, cfg: AugmentConfig, out_size: int) -> dict:
    """Draw one random transform (keyword arguments of :func:`crop_matrix`)."""
    m = cfg.max_translate * out_size
    return dict(
        scale=float(rng.uniform(cfg.min_scale, cfg.max_scale)),
        rotation=float(rng.uniform(-cfg.max_rotation, cfg.max_rotation)),
        shift=(float(rng.uniform(-m, m)), float(rng.uniform(-m, m))),
        flip=bool(rng.random() < cfg.flip_prob),
        scale_type=cfg.scale_type,
    )


def flip_joints(joints: np.ndarray, width: float, flip_index) -> np.ndarray:
    """Mirror joints ``[P, J, 3]`` of an image ``width`` wide, swapping left and right joints."""
    out = joints.copy()
    out[..., 0] = width - joints[..., 0]
    return out[:, list(flip_index)]
