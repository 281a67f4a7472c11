"""Keypoint sets: joint names, flip pairs, OKS sigmas, skeleton.

COCO (17 joints) and CrowdPose (14) are built in; any other set comes from a search space
(``keypoints:`` in its YAML, ``SearchSpace.create(keypoints=...)``) or from a dataset's annotation
file (``categories[0].keypoints``, flip pairs from ``categories[0].flip_pairs`` or the left/right
naming rule, optional ``categories[0].sigmas``). See ``docs/data.md#keypoint-sets``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

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

    @property
    def flip_pairs(self) -> tuple[tuple[int, int], ...]:
        """The left/right pairs ``(a, b)``, ``a < b``, of the flip index (0-based)."""
        return tuple((a, b) for a, b in enumerate(self.flip_index) if a < b)

    def to_dict(self) -> dict[str, Any]:
        """The form a space YAML, a training config and export metadata hold (0-based indices)."""
        return {"name": self.name, "num_joints": self.num_joints, "joints": list(self.joints),
                "flip_pairs": [list(p) for p in self.flip_pairs], "sigmas": list(self.sigmas),
                "skeleton": [list(p) for p in self.skeleton]}

    @classmethod
    def from_dict(cls, data: Any, where: str = "keypoints", error: type[InputError] = InputError) -> "KeypointSpec":
        return keypoint_set(data, where, error)


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


# OKS sigma of a joint of a set that gives none and is neither COCO's nor CrowdPose's: the mean of
# COCO's 17 sigmas (0.0669), so OKS is as strict on average as on COCO. Give per-joint sigmas in the
# set (``sigmas:``) to score a new set the way its annotators agree.
UNIFORM_SIGMA = float(np.mean(COCO.sigmas))


def default_sigmas(num_joints: int) -> tuple[float, ...]:
    """COCO's sigmas for 17 joints, CrowdPose's for 14, else :data:`UNIFORM_SIGMA` for every joint."""
    for spec in DATASETS.values():
        if spec.num_joints == num_joints:
            return spec.sigmas
    return (UNIFORM_SIGMA,) * num_joints


def flip_pairs_by_name(joints: Sequence[str]) -> list[tuple[int, int]]:
    """Pairs of joints whose names differ only in ``left``/``right`` (``left_knee``/``right_knee``,
    ``l_hand``/``r_hand``, ``LeftEye``/``RightEye``): the rule used when a file gives no pairs."""
    def key(name: str) -> tuple[str, str] | None:
        low = name.lower()
        for side, other in (("left", "right"), ("right", "left")):
            if side in low:
                return side, low.replace(side, other, 1)
        for side, other in (("l_", "r_"), ("r_", "l_")):
            if low.startswith(side):
                return side, other + low[len(side):]
        return None

    index = {name.lower(): i for i, name in enumerate(joints)}
    pairs = []
    for i, name in enumerate(joints):
        k = key(name)
        if k and k[0] in ("left", "l_") and k[1] in index:
            pairs.append(tuple(sorted((i, index[k[1]]))))
    return pairs


def _int_pairs(value: Any, where: str, num_joints: int, error: type[InputError]) -> list[tuple[int, int]]:
    if not isinstance(value, (list, tuple)):
        raise error(f"{where}: expected a list of [a, b] joint index pairs, got {value!r}")
    out = []
    for p in value:
        if not (isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                     for v in p)):
            raise error(f"{where}: {p!r} is not a pair of joint indices [a, b]")
        a, b = p
        for v in (a, b):
            if not 0 <= v < num_joints:
                raise error(f"{where}: joint index {v} out of range (allowed: 0 to {num_joints - 1}, 0-based)")
        out.append((int(a), int(b)))
    return out


def keypoint_set(data: Any, where: str = "keypoints", error: type[InputError] = InputError) -> KeypointSpec:
    """A :class:`KeypointSpec` from its dict form: ``name``, ``num_joints`` and / or ``joints`` (names),
    ``flip_pairs`` (0-based ``[a, b]``; omitted: the left/right naming rule), optional ``sigmas`` (omitted:
    :func:`default_sigmas`) and ``skeleton`` (0-based). ``error`` (naming ``where``, the file and field)
    reports the first bad field: an index out of range, a joint paired twice, a count that disagrees."""
    if isinstance(data, KeypointSpec):
        return data
    if isinstance(data, str):
        if data in DATASETS:
            return DATASETS[data]
        raise error(f"{where}: keypoint set {data!r} unknown (allowed: {', '.join(DATASETS)} or a mapping)")
    if not isinstance(data, dict):
        raise error(f"{where}: expected a mapping with num_joints / joints and flip_pairs, got {type(data).__name__}")
    known = {"name", "num_joints", "joints", "flip_pairs", "sigmas", "skeleton"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise error(f"{where}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(known))})")
    names = data.get("joints")
    n = data.get("num_joints")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise error(f"{where}.num_joints: {n!r} not allowed (allowed: a positive integer)")
    if names is not None:
        if not isinstance(names, (list, tuple)) or not names or not all(isinstance(v, str) and v for v in names):
            raise error(f"{where}.joints: expected a non-empty list of joint names")
        if len(set(names)) != len(names):
            raise error(f"{where}.joints: repeated joint name")
        if n is not None and n != len(names):
            raise error(f"{where}.num_joints: {n} but joints lists {len(names)} names")
        n = len(names)
    if n is None:
        raise error(f"{where}: missing field 'num_joints' (or 'joints', the joint names)")
    names = tuple(names) if names is not None else tuple(f"joint_{j}" for j in range(n))
    pairs = data.get("flip_pairs")
    pairs = flip_pairs_by_name(names) if pairs is None else _int_pairs(pairs, f"{where}.flip_pairs", n, error)
    flip = list(range(n))
    seen: set[int] = set()
    for a, b in pairs:
        for v in (a, b):
            if v in seen:
                raise error(f"{where}.flip_pairs: joint {v} is paired twice (each joint has at most one partner)")
            seen.add(v)
        if a == b:
            raise error(f"{where}.flip_pairs: joint {a} is paired with itself (leave unpaired joints out)")
        flip[a], flip[b] = b, a
    sigmas = data.get("sigmas")
    if sigmas is None:
        sigmas = default_sigmas(n)
    elif not (isinstance(sigmas, (list, tuple)) and len(sigmas) == n and
              all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < float("inf") for v in sigmas)):
        raise error(f"{where}.sigmas: expected {n} positive numbers (one OKS sigma per joint)")
    skeleton = _int_pairs(data.get("skeleton", []), f"{where}.skeleton", n, error)
    name = data.get("name", "custom")
    if not isinstance(name, str) or not name:
        raise error(f"{where}.name: expected a non-empty string")
    spec = KeypointSpec(name, names, tuple(flip), tuple(float(v) for v in sigmas), tuple(skeleton))
    for builtin in DATASETS.values():  # the built-in sets stay the very objects (bit-exact sigmas)
        if spec == builtin:
            return builtin
    return spec


def check_same_joints(expected: KeypointSpec, found: KeypointSpec, where: str, error: type[InputError]) -> None:
    """``error`` naming ``where`` unless both sets have the same joint count."""
    if expected.num_joints != found.num_joints:
        raise error(f"{where}: {found.num_joints} joints, but the keypoint set {expected.name!r} has "
                    f"{expected.num_joints}")


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
