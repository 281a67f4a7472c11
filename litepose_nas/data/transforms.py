"""Affine augmentation of images, joints and masks: scale, rotation, translation, horizontal flip
with the dataset's flip index. The ranges and their meaning are a recipe's (``recipe.py``).

Coordinates are continuous with pixel ``i`` covering ``[i, i + 1)``, in training and at test time
(``decode/postprocess.py`` uses the same matrices), so a map at another resolution is a pure
scaling and a flip is ``x -> W - x``: flipping twice gives the joints back exactly. OpenCV samples
at integer pixel centres; :func:`cv2_matrix` converts, and every warp goes through it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


SCALE_MODES = ("zoom", "window")
TRANSLATE_MODES = ("input", "window")
SCALE_TYPES = ("short", "long")


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random training transform (defaults: our recipe; ``recipe.ORIGINAL`` has the original's).

    ``scale_mode``: ``"zoom"`` shows the ``scale_type`` image side divided by s ~ U[min, max]
    (s > 1 zooms in); ``"window"`` (HigherHRNet) shows that side *times* s (s > 1 zooms out).
    ``translate_mode``: ``"input"`` shifts the crop by U[-t, t] x the input size per axis, after the
    rotation; ``"window"`` (HigherHRNet) moves the crop window's centre by integers drawn from
    ``[-t L, t L)`` image pixels per axis before mapping, L the window side (the original: t = 40/200).
    """

    max_rotation: float = 30.0      # degrees, uniform in [-r, r]
    min_scale: float = 0.75
    max_scale: float = 1.5
    max_translate: float = 40.0 / 512.0
    flip_prob: float = 0.5
    scale_type: str = "short"      # the crop covers the short ('short') or long ('long') image side
    scale_mode: str = "zoom"
    translate_mode: str = "input"

    def __post_init__(self) -> None:
        for name, allowed in (("scale_mode", SCALE_MODES), ("translate_mode", TRANSLATE_MODES),
                              ("scale_type", SCALE_TYPES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"augmentation {name} {getattr(self, name)!r} not allowed "
                                 f"(allowed: {', '.join(allowed)})")
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(f"augmentation scale range [{self.min_scale}, {self.max_scale}] must be positive")


def crop_matrix(height: int, width: int, out_size: float, scale: float = 1.0, rotation: float = 0.0,
                shift: tuple[float, float] = (0.0, 0.0), flip: bool = False, scale_type: str = "long",
                center_shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """2x3 matrix mapping image coordinates to a square ``out_size`` crop.

    The crop is centred on the image centre plus ``center_shift`` (image pixels), covers the
    ``scale_type`` side of the image divided by ``scale`` (zoom in for scale > 1), is rotated by
    ``rotation`` degrees, mirrored if ``flip`` (before everything else, about the crop centre) and
    moved by ``shift`` output pixels.
    """
    side = max(height, width) if scale_type == "long" else min(height, width)
    s = out_size * scale / side
    cx, cy = width / 2.0 + center_shift[0], height / 2.0 + center_shift[1]
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


def sample_params(rng: np.random.Generator, cfg: AugmentConfig, out_size: int,
                  image_hw: tuple[int, int] | None = None) -> dict:
    """Draw one random transform (keyword arguments of :func:`crop_matrix`).

    ``image_hw`` (height, width) is needed by ``translate_mode="window"`` (the shift is a fraction
    of the window side in image pixels).
    """
    s = float(rng.uniform(cfg.min_scale, cfg.max_scale))
    rotation = float(rng.uniform(-cfg.max_rotation, cfg.max_rotation))
    params = dict(scale=s if cfg.scale_mode == "zoom" else 1.0 / s, rotation=rotation,
                  flip=bool(rng.random() < cfg.flip_prob), scale_type=cfg.scale_type)
    if cfg.translate_mode == "input":
        m = cfg.max_translate * out_size
        params["shift"] = (float(rng.uniform(-m, m)), float(rng.uniform(-m, m)))
    else:
        if image_hw is None:
            raise ValueError("translate_mode 'window' needs the image size")
        side = (min(image_hw) if cfg.scale_type == "short" else max(image_hw)) / params["scale"]
        # HigherHRNet: np.random.randint(-t * L, t * L) per axis (integers, upper bound excluded)
        m = cfg.max_translate * side
        lo, hi = int(-m), int(m)
        params["center_shift"] = tuple(float(v) for v in (rng.integers(lo, hi), rng.integers(lo, hi))) \
            if hi > lo else (0.0, 0.0)
    return params


def flip_joints(joints: np.ndarray, width: float, flip_index) -> np.ndarray:
    """Mirror joints ``[P, J, 3]`` of an image ``width`` wide, swapping left and right joints."""
    out = joints.copy()
    out[..., 0] = width - joints[..., 0]
    return out[:, list(flip_index)]
