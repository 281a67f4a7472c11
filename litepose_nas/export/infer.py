"""Run an exported model with onnxruntime plus our decoder: people as COCO JSON and drawings.

The pipeline is the original test pipeline (``litepose_nas.decode``): resize about the centre
(short side to the model's ``img_size``, long side a multiple of 64), normalise with the
metadata's mean/std, run the network (with flip test the flipped image rides in the same batch,
thanks to the dynamic batch axis), fuse and upsample the outputs, group by associative embedding,
and map the people back to image pixels.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import DataError, InputError
from ..io import read_bytes_bounded, write_bytes_atomic, write_json_atomic
from ..decode.postprocess import MAX_IMAGE_SIDE
from .metadata import ExportMetadata, metadata_for_model

PEOPLE_FILENAME = "people.json"
CATEGORY_ID = 1  # 'person', as in COCO
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class Prediction:
    """People found in one image: ``people [P, J, 3]`` (x, y in image pixels, heatmap value), ``scores [P]``."""

    people: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


class PoseEstimator:
    """An exported LitePose model in an onnxruntime session, with its metadata."""

    def __init__(self, model_path: str | os.PathLike, threads: int | None = None,
                 metadata: ExportMetadata | None = None) -> None:
        model_path = Path(model_path)
        from ..io import check_readable_file

        check_readable_file(model_path, "ONNX model", InputError)  # before the metadata or onnxruntime read it
        self.model_path = model_path
        if metadata is None:
            from .metadata import METADATA_FILENAME

            sidecar = model_path.with_name(METADATA_FILENAME)
            meta_source = str(sidecar) if sidecar.is_file() else f"{model_path} (embedded metadata)"
        else:
            meta_source = "the given metadata"
        self.metadata = metadata or metadata_for_model(model_path)
        from .interface import ort_session

        try:
            self.session = ort_session(model_path, threads=threads)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            message = " ".join(str(exc).split())[:200]
            raise InputError(f"{model_path}: onnxruntime cannot load the model ({message})") from None
        names = [i.name for i in self.session.get_inputs()]
        if names != [self.metadata.input_name]:
            raise InputError(f"{model_path}: inputs {names} do not match the metadata's {self.metadata.input_name!r}")
        self._check_outputs(meta_source)

    def _check_outputs(self, meta_source: str) -> None:
        """The metadata must describe the graph's outputs (names, 2J and J channels): decoding with
        another joint count would index past the maps or mislabel every joint."""
        meta = self.metadata
        shapes = {o.name: o.shape for o in self.session.get_outputs()}
        missing = [name for name in meta.output_names if name not in shapes]
        if missing or len(meta.output_names) != len(meta.arch.wiring.output_levels):
            raise InputError(
                f"{meta_source}: outputs {list(meta.output_names)} do not match the model {self.model_path.name}'s "
                f"{list(shapes)}"
            )
        j = meta.num_joints
        for name, expected in zip(meta.output_names, meta.arch.wiring.output_channels(j)):
            shape = shapes[name]
            channels = shape[1] if len(shape) == 4 else None
            # a symbolic (str) channel dim cannot be checked here; the decoder checks real outputs
            if len(shape) != 4 or (isinstance(channels, int) and channels != expected):
                raise InputError(
                    f"{meta_source}: num_joints {j} does not match the model {self.model_path.name} "
                    f"(output {name!r} has shape {list(shape)}, expected {expected} channels)"
                )
        if len(meta.joint_names) != j or len(meta.flip_index) != j or any(not 0 <= i < j for i in meta.flip_index):
            raise InputError(
                f"{meta_source}: keypoints and flip_index must list {j} joints (num_joints {j}), "
                f"got {len(meta.joint_names)} and {len(meta.flip_index)}"
            )

    @property
    def num_joints(self) -> int:
        return self.metadata.num_joints

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Raw network outputs for a normalised ``[N, 3, H, W]`` float32 batch."""
        return self.session.run(list(self.metadata.output_names), {self.metadata.input_name: batch})

    def predict(
        self,
        image: np.ndarray,
        flip: bool = True,
        detection_threshold: float | None = None,
        **group_kwargs: Any,
    ) -> Prediction:
        """People in one ``H x W x 3`` uint8 RGB image (the original test pipeline, single scale)."""
        from ..decode import decode_outputs, normalize_array, resize_for_test

        meta = self.metadata
        resized, info = resize_for_test(image, meta.img_size)
        x = normalize_array(resized, meta.mean, meta.std)
        if flip:
            x = np.concatenate([x, x[..., ::-1]], axis=0)
        outputs = self.run(np.ascontiguousarray(x, dtype=np.float32))
        plain = [o[:1] for o in outputs]
        flipped = [o[1:2] for o in outputs] if flip else None
        from ..tag_cost import tag_cost_kwargs

        settings = dict(meta_decoding(meta))
        if detection_threshold is not None:
            settings["detection_threshold"] = detection_threshold
        settings.update(group_kwargs)
        try:
            settings.update(tag_cost_kwargs(settings.pop("tag_cost")))
        except ValueError as exc:
            raise InputError(f"{meta.model_file}: decoding: {exc}") from None
        people, scores = decode_outputs(
            plain, info, meta.num_joints, flipped, meta.flip_index if flip else None, **settings
        )
        return Prediction(np.asarray(people, dtype=np.float64).reshape(-1, meta.num_joints, 3),
                          np.asarray(scores, dtype=np.float64).reshape(-1))


def meta_decoding(meta: ExportMetadata) -> dict[str, Any]:
    """Grouping settings recorded at export (those of the published models by default)."""
    from .metadata import DECODING_DEFAULTS

    return {k: meta.decoding.get(k, v) for k, v in DECODING_DEFAULTS.items()}


# ---------------------------------------------------------------------------- COCO format
def coco_annotations(prediction: Prediction, image_id: int, first_id: int, threshold: float) -> list[dict[str, Any]]:
    """One COCO keypoint annotation per person.

    ``keypoints`` holds x, y, v with v = 2 for joints whose heatmap value reaches ``threshold``,
    1 for weaker ones, 0 (and x = y = 0) for joints not found; ``keypoint_scores`` keeps the
    heatmap values and ``score`` the person's score, so the list also loads as detection results
    (``COCO.loadRes``).
    """
    anns = []
    for p, (joints, score) in enumerate(zip(prediction.people, prediction.scores)):
        values = joints[:, 2]
        found = values > 0
        vis = np.where(values >= threshold, 2, np.where(found, 1, 0))
        xy = np.where(found[:, None], joints[:, :2], 0.0)
        kps = np.concatenate([xy, vis[:, None]], axis=1)
        if found.any():
            x0, y0 = xy[found].min(axis=0)
            x1, y1 = xy[found].max(axis=0)
        else:
            x0 = y0 = x1 = y1 = 0.0
        w, h = float(x1 - x0), float(y1 - y0)
        anns.append({
            "id": first_id + p,
            "image_id": image_id,
            "category_id": CATEGORY_ID,
            "keypoints": [round(float(v), 2) for v in kps.reshape(-1)],
            "num_keypoints": int((vis == 2).sum()),
            "keypoint_scores": [round(float(v), 4) for v in values],
            "score": round(float(score), 6),
            "bbox": [round(float(x0), 2), round(float(y0), 2), round(w, 2), round(h, 2)],
            "area": round(w * h, 2),
            "iscrowd": 0,
        })
    return anns


def coco_category(meta: ExportMetadata) -> dict[str, Any]:
    """The person category of the output file; a keypoint set other than COCO's / CrowdPose's also
    records its flip pairs and sigmas there (the fields ``open_dataset`` reads back)."""
    from ..keypoints import DATASETS

    out = {
        "id": CATEGORY_ID, "name": "person", "supercategory": "person",
        "keypoints": list(meta.joint_names), "skeleton": [[a + 1, b + 1] for a, b in meta.skeleton],
    }
    spec = meta.keypoints
    if spec not in DATASETS.values():
        out.update(keypoint_set=spec.name, flip_pairs=[list(p) for p in spec.flip_pairs], sigmas=list(spec.sigmas))
    return out


# ---------------------------------------------------------------------------- drawing
def _colour(i: int) -> tuple[int, int, int]:
    # well-separated hues (golden-angle steps), as BGR for OpenCV
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((i * 0.618034) % 1.0, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_people(image_bgr: np.ndarray, prediction: Prediction, skeleton: Sequence[tuple[int, int]],
                threshold: float) -> np.ndarray:
    """A copy of ``image_bgr`` with each person's skeleton (joints at or above ``threshold``)."""
    import cv2

    canvas = image_bgr.copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 300))
    for i, joints in enumerate(prediction.people):
        colour = _colour(i)
        ok = joints[:, 2] >= threshold
        pts = np.round(joints[:, :2]).astype(int)
        for a, b in skeleton:
            if ok[a] and ok[b]:
                cv2.line(canvas, tuple(map(int, pts[a])), tuple(map(int, pts[b])), colour, thickness, cv2.LINE_AA)
        for j in np.flatnonzero(ok):
            cv2.circle(canvas, tuple(map(int, pts[j])), thickness + 2, colour, -1, cv2.LINE_AA)
    return canvas


# ---------------------------------------------------------------------------- images in, files out
def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as ``H x W x 3`` uint8 BGR (OpenCV's order); one clear error otherwise."""
    import cv2

    path = Path(path)
    data = np.frombuffer(read_bytes_bounded(path, "image", DataError), dtype=np.uint8)
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    except cv2.error:
        # OpenCV refuses headers claiming more than its pixel limit (a decompression bomb) this way
        raise DataError(f"{path}: cannot decode the image (corrupt, or too large: allowed up to "
                        f"{MAX_IMAGE_SIDE} px a side)") from None
    if image is None:
        raise DataError(f"{path}: cannot read the image (allowed: {', '.join(s.lstrip('.') for s in IMAGE_SUFFIXES)})")
    height, width = image.shape[:2]
    if not (0 < height <= MAX_IMAGE_SIDE and 0 < width <= MAX_IMAGE_SIDE):
        raise DataError(f"{path}: image of {height}x{width} px (height x width) is too large "
                        f"(allowed: up to {MAX_IMAGE_SIDE} px a side)")
    return image


@dataclass
class InferenceReport:
    """What ``infer`` wrote: the COCO JSON and one drawing per image."""

    json_path: Path
    images: list[dict[str, Any]] = field(default_factory=list)

    @property
    def num_people(self) -> int:
        return sum(entry["people"] for entry in self.images)

    def to_dict(self) -> dict[str, Any]:
        return {"json": str(self.json_path), "people": self.num_people, "images": self.images}


def _drawing_name(path: Path, used: set[str]) -> str:
    suffix = path.suffix.lower() if path.suffix.lower() in (".png", ".jpg", ".jpeg") else ".jpg"
    name = f"{path.stem}_pose{suffix}"
    n = 2
    while name in used:
        name = f"{path.stem}_pose-{n}{suffix}"
        n += 1
    used.add(name)
    return name


def run_inference(
    model_path: str | os.PathLike,
    image_paths: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    threshold: float | None = None,
    flip: bool = True,
    threads: int | None = None,
    estimator: PoseEstimator | None = None,
    progress: bool = False,
    tag_cost: str | None = None,
) -> InferenceReport:
    """Find the people in every image; write ``people.json`` (COCO format) and the drawings.

    ``tag_cost`` overrides the grouping cost recorded at export (:mod:`litepose_nas.tag_cost`).

    Every image is read before anything runs, so a bad file fails fast with nothing written.
    """
    import cv2

    if not image_paths:
        raise InputError("no images given")
    estimator = estimator or PoseEstimator(model_path, threads=threads)
    meta = estimator.metadata
    thr = float(meta_decoding(meta)["detection_threshold"] if threshold is None else threshold)
    if not 0.0 <= thr < 1.0:
        raise InputError(f"--threshold {thr}: must be in [0, 1) (a heatmap value)")
    images = [(Path(p), read_image(p)) for p in image_paths]
    from ..decode import resize_info

    for path, bgr in images:
        try:
            resize_info(bgr.shape[0], bgr.shape[1], meta.img_size)
        except ValueError as exc:  # an extreme aspect ratio: refused before anything runs
            raise DataError(f"{path}: {exc}") from None

    out_dir = Path(out_dir)
    coco: dict[str, Any] = {
        "info": {"description": f"people found by {estimator.model_path.name} (litepose-nas infer)",
                 "model": str(estimator.model_path), "detection_threshold": thr, "flip_test": flip},
        "images": [], "annotations": [], "categories": [coco_category(meta)],
    }
    report = InferenceReport(json_path=out_dir / "people.json")
    used: set[str] = set()
    iterator = images
    if progress:
        from tqdm import tqdm

        iterator = tqdm(images, desc="infer", unit="image")
    for image_id, (path, bgr) in enumerate(iterator, start=1):
        prediction = estimator.predict(np.ascontiguousarray(bgr[..., ::-1]), flip=flip, detection_threshold=thr,
                                       **({} if tag_cost is None else {"tag_cost": tag_cost}))
        coco["images"].append({"id": image_id, "file_name": path.name, "path": str(path),
                               "height": int(bgr.shape[0]), "width": int(bgr.shape[1])})
        coco["annotations"].extend(coco_annotations(prediction, image_id, len(coco["annotations"]) + 1, thr))
        drawing = out_dir / _drawing_name(path, used)
        ok, encoded = cv2.imencode(drawing.suffix, draw_people(bgr, prediction, meta.skeleton, thr))
        if not ok:
            raise DataError(f"{drawing}: OpenCV could not encode the drawing")
        write_bytes_atomic(drawing, encoded.tobytes())
        report.images.append({"file": str(path), "image_id": image_id, "people": len(prediction),
                              "drawing": str(drawing)})
    write_json_atomic(report.json_path, coco)
    return report
