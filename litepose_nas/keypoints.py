"""Keypoint definitions of the two datasets: joint names, flip pairs, OKS sigmas, skeleton."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class KeypointSpec:
    """What a dataset's keypoints are. Indices are 0-based."""

    name: str
    joints: tuple[str, ...]
    flip_index: tuple[int, ...]
    sigmas: tuple[float, ...]
    skeleton: tuple[tuple[int, int], ...]

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def sigmas_array(self) -> np.ndarray:
        return np.asarray(self.sigmas, dtype=np.float64)

    def skeleton_1based(self) -> list[list[int]]:
        """The skeleton as written in COCO-format category records (1-based)."""
        return [[a + 1, b + 1] for a, b in self.skeleton]


def _official_sigmas(*tenfold: float) -> tuple[float, ...]:
    """OKS sigmas written as the official tools write them: ``np.array([...]) / 10.0``."""
    return tuple(float(v) for v in np.array(tenfold) / 10.0)


COCO = KeypointSpec(
    name="coco",
    joints=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    flip_index=(0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15),
    # as pycocotools computes them (its array / 10.0): 1.07 / 10 is not the literal 0.107
    sigmas=_official_sigmas(
        .26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89,
    ),
    skeleton=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
        (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
)

CROWDPOSE = KeypointSpec(
    name="crowdpose",
    joints=(
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck",
    ),
    flip_index=(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12, 13),
    # crowdposetools' array / 10.0, bit for bit (an OKS of exactly 0.5 depends on the last bit)
    sigmas=_official_sigmas(.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89, .79, .79),
    skeleton=(
        (12, 13), (13, 0), (13, 1), (0, 2), (2, 4), (1, 3), (3, 5), (0, 6), (1, 7), (6, 7),
        (6, 8), (8, 10), (7, 9), (9, 11),
    ),
)

DATASETS: dict[str, KeypointSpec] = {"coco": COCO, "crowdpose": CROWDPOSE}


def keypoint_spec(dataset: str) -> KeypointSpec:
    """The spec of ``dataset`` ('coco' or 'crowdpose')."""
    try:
        return DATASETS[dataset]
    except KeyError:
        raise InputError(f"dataset {dataset!r} not supported (allowed: {', '.join(DATASETS)})") from None


def spec_for_joints(num_joints: int) -> KeypointSpec:
    for spec in DATASETS.values():
        if spec.num_joints == num_joints:
            return spec
    raise InputError(f"no dataset has {num_joints} joints (allowed: 17 for COCO, 14 for CrowdPose)")
