"""Readers for COCO 2017 keypoints and CrowdPose, used as they lie on disk.

Layouts (``root`` is the folder the user passes):

* COCO: ``annotations/person_keypoints_{train,val}2017.json`` and ``images/{train,val}2017/``
  (``{train,val}2017/`` directly under ``root`` is accepted too, as the COCO zip unpacks).
* CrowdPose: ``json/crowdpose_{train,val,trainval,test}.json`` and ``images/``.

Annotations are checked once on load, so a malformed field stops with a message naming the
file, the annotation and the field instead of failing deep inside a data-loader worker.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..io import read_json_bounded
from ..keypoints import DATASETS, KeypointSpec, keypoint_set, keypoint_spec

COCO_SPLITS = ("train", "val")
CROWDPOSE_SPLITS = ("train", "val", "trainval", "test")
DATASET_SPLITS = {"coco": COCO_SPLITS, "crowdpose": CROWDPOSE_SPLITS}


class BadImageError(DataError):
    """An image listed in the annotation file is missing or cannot be decoded."""


def layout_paths(root: Path, dataset: str, split: str) -> tuple[Path, Path]:
    """(annotation file, image folder) of ``split`` in the on-disk layout of ``dataset``."""
    if dataset == "coco":
        return root / "annotations" / f"person_keypoints_{split}2017.json", root / "images" / f"{split}2017"
    return root / "json" / f"crowdpose_{split}.json", root / "images"


def open_dataset(root: str | Path, dataset: str = "coco", split: str = "train",
                 keypoints: KeypointSpec | dict | None = None) -> "PoseSource":
    """Open one split of a COCO or CrowdPose dataset folder (see the module doc for the layout).

    The keypoint set is ``keypoints`` (e.g. a search space's; the file's joint count must agree) or the
    one the annotation file declares (:func:`file_keypoints`), else the dataset's (COCO 17, CrowdPose 14).
    """
    keypoint_spec(dataset)  # an unknown dataset name fails here, before the folder is looked at
    splits = DATASET_SPLITS[dataset]
    if split not in splits:
        raise DataError(f"split {split!r} not available for {dataset} (allowed: {', '.join(splits)})")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder {root} not found")
    ann_file, image_dir = layout_paths(root, dataset, split)
    if not ann_file.exists():
        raise DataError(f"annotation file {ann_file} not found (expected the {dataset} layout under {root})")
    if not image_dir.is_dir() and dataset == "coco" and (root / f"{split}2017").is_dir():
        image_dir = root / f"{split}2017"
    if not image_dir.is_dir():
        raise DataError(f"image folder {image_dir} not found (expected the {dataset} layout under {root})")
    gt = read_json_bounded(ann_file, "annotation file", DataError)
    spec = resolve_keypoints(gt, ann_file, dataset, keypoints)
    return PoseSource(dataset=dataset, split=split, spec=spec, annotation_file=ann_file, image_dir=image_dir, gt=gt)


def _person_category(gt: Any) -> tuple[int, dict] | None:
    cats = gt.get("categories") if isinstance(gt, dict) else None
    if not isinstance(cats, list):
        return None
    for i, c in enumerate(cats):
        if isinstance(c, dict) and c.get("id") == 1:
            return i, c
    return None


def file_keypoints(gt: Any, ann_file: Path | str, dataset: str) -> KeypointSpec | None:
    """The keypoint set an annotation file declares in its person category: ``keypoints`` (joint
    names), ``flip_pairs`` (0-based, an extension; omitted: the left/right naming rule), ``sigmas``
    (an extension; omitted: COCO's for 17 joints, CrowdPose's for 14, else a uniform default) and
    ``skeleton`` (1-based, as COCO writes it). A file with the dataset's joint count and no pairs or
    sigmas of its own is the dataset's set; None when the category lists no keypoints."""
    found = _person_category(gt)
    if found is None or "keypoints" not in found[1]:
        return None
    i, cat = found
    where = f"{ann_file}: categories[{i}]"
    names = cat["keypoints"]
    default = keypoint_spec(dataset)
    if isinstance(names, list) and len(names) == default.num_joints and "flip_pairs" not in cat and "sigmas" not in cat:
        return default
    for other in DATASETS.values():
        if other is not default and names == list(other.joints):
            # the other built-in dataset's file under this layout: a wrong --dataset, not a new set
            raise DataError(f"{ann_file}: category 'person' lists {len(names)} keypoints, {dataset} has "
                            f"{default.num_joints} (is this the right --dataset?)")
    skeleton = cat.get("skeleton", [])
    n = len(names) if isinstance(names, list) else 0
    if not (isinstance(skeleton, list) and all(isinstance(p, list) and len(p) == 2 and
                                               all(isinstance(v, int) and 1 <= v <= n for v in p) for p in skeleton)):
        skeleton = []  # drawing only: a skeleton that does not fit the joints is left out, not an error
    data = {"name": cat.get("keypoint_set", "custom"), "joints": names,
            "skeleton": [[a - 1, b - 1] for a, b in skeleton]}
    for key in ("flip_pairs", "sigmas"):
        if key in cat:
            data[key] = cat[key]
    return keypoint_set(data, where, DataError)


def resolve_keypoints(gt: Any, ann_file: Path | str, dataset: str,
                      declared: KeypointSpec | dict | None = None) -> KeypointSpec:
    """The keypoint set to read ``gt`` with: ``declared`` (checked against the file's joint count),
    else the file's, else the dataset's. A mismatch is a :class:`DataError` naming the file and field."""
    found = file_keypoints(gt, ann_file, dataset)
    if declared is None:
        return found or keypoint_spec(dataset)
    declared = keypoint_set(declared, "keypoints", DataError)
    if found is not None and found.num_joints != declared.num_joints:
        i = _person_category(gt)[0]
        raise DataError(f"{ann_file}: categories[{i}].keypoints lists {found.num_joints} joints, the keypoint set "
                        f"{declared.name!r} (of the search space or run) has {declared.num_joints}")
    return declared


def _check_number_list(ann_file: Path, where: str, name: str, value, length: int) -> None:
    if not isinstance(value, list) or len(value) != length:
        got = f"{len(value)} values" if isinstance(value, list) else type(value).__name__
        raise DataError(f"{ann_file}: {where}: field {name!r} must be a list of {length} numbers, got {got}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise DataError(f"{ann_file}: {where}: field {name!r} holds a value that is not a number")
    if not all(map(math.isfinite, value)):
        # Python's json reads NaN and Infinity; the metrics and the targets would not notice
        raise DataError(f"{ann_file}: {where}: field {name!r} holds NaN or an infinite value")


def check_annotation(ann_file: Path | str, where: str, ann: dict, num_joints: int) -> None:
    """Raise :class:`DataError` naming the file and the annotation unless ``ann``'s keypoints are
    ``3 * num_joints`` finite numbers with visibility 0, 1 or 2 and its bbox has positive size."""
    _check_number_list(ann_file, where, "keypoints", ann.get("keypoints"), 3 * num_joints)
    _check_number_list(ann_file, where, "bbox", ann.get("bbox"), 4)
    bad = [v for v in ann["keypoints"][2::3] if v not in (0, 1, 2)]
    if bad:
        raise DataError(f"{ann_file}: {where}: keypoint visibility {bad[0]!r} (allowed: 0, 1, 2)")
    w, h = ann["bbox"][2:]
    if w <= 0 or h <= 0:
        raise DataError(f"{ann_file}: {where}: bbox width {w} and height {h} (allowed: both > 0)")


@dataclass
class PoseSource:
    """One split of a keypoint dataset: its annotation file, images and per-image annotations."""

    dataset: str
    split: str
    spec: KeypointSpec
    annotation_file: Path
    image_dir: Path
    gt: dict = field(repr=False)

    def __post_init__(self) -> None:
        self._validate_and_index()

    # -- loading -------------------------------------------------------------------------------
    def _validate_and_index(self) -> None:
        f = self.annotation_file
        gt = self.gt
        if not isinstance(gt, dict):
            raise DataError(f"{f}: top level must be a JSON object with 'images', 'annotations' and 'categories'")
        for key in ("images", "annotations", "categories"):
            if not isinstance(gt.get(key), list):
                raise DataError(f"{f}: missing or malformed field {key!r} (a list is required)")
        j = self.spec.num_joints
        self._images: dict[int, dict] = {}
        for i, img in enumerate(gt["images"]):
            where = f"images[{i}]"
            if not isinstance(img, dict):
                raise DataError(f"{f}: {where} is not an object")
            for key, kind in (("id", int), ("file_name", str)):
                if not isinstance(img.get(key), kind):
                    raise DataError(f"{f}: {where}: missing or malformed field {key!r}")
            self._images[img["id"]] = img
        self._anns: dict[int, list[dict]] = {i: [] for i in self._images}
        for i, ann in enumerate(gt["annotations"]):
            where = f"annotations[{i}] (id {ann.get('id')})" if isinstance(ann, dict) else f"annotations[{i}]"
            if not isinstance(ann, dict):
                raise DataError(f"{f}: {where} is not an object")
            image_id = ann.get("image_id")
            if image_id not in self._images:
                raise DataError(f"{f}: {where}: field 'image_id' = {image_id!r} names no image of the file")
            check_annotation(f, where, ann, j)
            if "iscrowd" in ann and ann["iscrowd"] not in (0, 1, True, False):
                raise DataError(f"{f}: {where}: field 'iscrowd' must be 0 or 1, got {ann['iscrowd']!r}")
            if "num_keypoints" in ann and not isinstance(ann["num_keypoints"], int):
                raise DataError(f"{f}: {where}: field 'num_keypoints' must be an integer")
            self._anns[image_id].append(ann)
        # training images need at least one person to learn from (a recipe may keep more: training_ids)
        self._ids = self.training_ids("people") if self.split == "train" else sorted(self._images)

    # -- the public surface --------------------------------------------------------------------
    @property
    def num_joints(self) -> int:
        return self.spec.num_joints

    @property
    def image_ids(self) -> list[int]:
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def training_ids(self, image_filter: str = "people") -> list[int]:
        """Image ids a training recipe keeps: ``"people"``, images with at least one non-crowd person
        with keypoints; ``"any"``, images with any annotation (the original's filter)."""
        if image_filter == "any":
            return [i for i in sorted(self._images) if self._anns[i]]
        if image_filter != "people":
            raise DataError(f"image filter {image_filter!r} not allowed (allowed: people, any)")
        return [i for i in sorted(self._images)
                if any(_num_keypoints(a) > 0 and not a.get("iscrowd", 0) for a in self._anns[i])]

    def image_info(self, image_id: int) -> dict:
        try:
            return self._images[image_id]
        except KeyError:
            raise DataError(f"{self.annotation_file}: no image with id {image_id}") from None

    def image_path(self, image_id: int) -> Path:
        return self.image_dir / self.image_info(image_id)["file_name"]

    def load_image(self, image_id: int) -> np.ndarray:
        """The image as HxWx3 uint8 RGB."""
        import cv2

        path = self.image_path(image_id)
        if not path.is_file():
            raise BadImageError(f"image {path} not found (listed in {self.annotation_file.name})")
        try:
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        except cv2.error:  # e.g. a header claiming more pixels than OpenCV's limit
            img = None
        if img is None:
            raise BadImageError(f"image {path} cannot be decoded (corrupt, not an image, or too large)")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def annotations(self, image_id: int) -> list[dict]:
        self.image_info(image_id)
        return list(self._anns[image_id])

    def gt_dict(self) -> dict:
        """The COCO-format ground truth as read from the file."""
        return self.gt

    def crowd_index(self, image_id: int) -> float | None:
        """The image-level ``crowdIndex`` of CrowdPose (and of synthetic sets), else None."""
        value = self.image_info(image_id).get("crowdIndex")
        return None if value is None else float(value)

    def people(self, image_id: int) -> np.ndarray:
        """Keypoints ``[P, J, 3]`` (x, y, v) of the non-crowd people of the image with keypoints."""
        rows = [a["keypoints"] for a in self._anns[image_id] if not a.get("iscrowd", 0) and _num_keypoints(a) > 0]
        if not rows:
            return np.zeros((0, self.num_joints, 3), np.float32)
        return np.asarray(rows, np.float32).reshape(len(rows), self.num_joints, 3)

    def ignored_annotations(self, image_id: int) -> list[dict]:
        """The annotations whose region the loss must not look at: crowd regions and people without keypoints."""
        return [a for a in self._anns[image_id] if a.get("iscrowd", 0) or _num_keypoints(a) == 0]

    def ignore_mask(self, image_id: int) -> np.ndarray:
        """uint8 HxW, 1 where the loss must not look: crowd regions and people without keypoints.

        COCO gives them a segmentation (polygons or RLE); CrowdPose has none, so its box is used.
        """
        info = self.image_info(image_id)
        h, w = int(info["height"]), int(info["width"])
        m = np.zeros((h, w), np.uint8)
        for a in self.ignored_annotations(image_id):
            seg = a.get("segmentation")
            if seg:
                m |= _decode_segmentation(seg, h, w)
            else:
                x, y, bw, bh = a["bbox"]
                x0, y0 = max(int(np.floor(x)), 0), max(int(np.floor(y)), 0)
                m[y0:int(np.ceil(y + bh)), x0:int(np.ceil(x + bw))] = 1
        return m

    def image_size(self, image_id: int) -> tuple[int, int]:
        """(height, width) as recorded in the annotation file."""
        info = self.image_info(image_id)
        return int(info["height"]), int(info["width"])


def _decode_segmentation(seg, h: int, w: int) -> np.ndarray:
    """COCO polygons, uncompressed or compressed RLE -> uint8 HxW mask."""
    import warnings

    from pycocotools import mask as mask_utils

    with warnings.catch_warnings():
        # pycocotools on numpy 2 notes its old __array__ signature; the result is right
        warnings.simplefilter("ignore", DeprecationWarning)
        if isinstance(seg, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
        elif isinstance(seg.get("counts"), list):
            rle = mask_utils.frPyObjects(seg, h, w)
        else:
            rle = seg
        return mask_utils.decode(rle).astype(np.uint8)


def _num_keypoints(ann: dict) -> int:
    if "num_keypoints" in ann:
        return int(ann["num_keypoints"])
    return int(sum(1 for v in ann["keypoints"][2::3] if v > 0))


def crowd_index(keypoints: np.ndarray, boxes: np.ndarray) -> float:
    """CrowdPose's crowd index of one image.

    For each person, the number of *other* people's labelled joints inside its box over its own
    labelled joints, averaged over the people with labelled joints (0 for fewer than two).
    ``keypoints``: [P, J, 3] (x, y, v); ``boxes``: [P, 4] (x, y, w, h).
    """
    kp = np.asarray(keypoints, np.float64)
    boxes = np.asarray(boxes, np.float64)
    if kp.shape[0] < 2:
        return 0.0
    labelled = kp[..., 2] > 0  # [P, J]
    own = labelled.sum(1)
    x, y = kp[..., 0], kp[..., 1]
    x0, y0 = boxes[:, 0, None, None], boxes[:, 1, None, None]
    x1, y1 = x0 + boxes[:, 2, None, None], y0 + boxes[:, 3, None, None]
    # inside[b, p, j]: joint j of person p lies in the box of person b
    inside = (x[None] >= x0) & (x[None] <= x1) & (y[None] >= y0) & (y[None] <= y1) & labelled[None]
    counts = inside.sum(2).astype(np.float64)  # [B, P]
    np.fill_diagonal(counts, 0.0)
    valid = own > 0
    if valid.sum() == 0:
        return 0.0
    ratio = counts.sum(1)[valid] / own[valid]
    return float(ratio.mean())
