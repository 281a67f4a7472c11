"""pycocotools plumbing: COCO objects from dicts, results loading, quiet evaluation, summaries."""
from __future__ import annotations

import contextlib
import io
from typing import Any, Sequence

import numpy as np

from ..errors import DataError

# the keypoint statistics of pycocotools' summarize(), in its order: (name, AP?, IoU, area)
COCO_STATS = (
    ("AP", True, None, "all"), ("AP50", True, 0.5, "all"), ("AP75", True, 0.75, "all"),
    ("APM", True, None, "medium"), ("APL", True, None, "large"),
    ("AR", False, None, "all"), ("AR50", False, 0.5, "all"), ("AR75", False, 0.75, "all"),
    ("ARM", False, None, "medium"), ("ARL", False, None, "large"),
)


@contextlib.contextmanager
def _quiet():
    # pycocotools prints progress on stdout
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def check_gt(gt: dict, source: str = "ground truth") -> None:
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            raise DataError(f"{source}: field '{key}' missing or not a list (COCO keypoints format)")
    for ann in gt["annotations"]:
        for key in ("image_id", "keypoints", "bbox", "category_id", "id", "num_keypoints"):
            if key not in ann:
                raise DataError(f"{source}: annotation {ann.get('id', '?')} lacks field '{key}'")


def coco_from_dict(gt: dict):
    """A pycocotools ``COCO`` built from a COCO-format dict (not copied: do not mutate it after)."""
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = gt
    with _quiet():
        coco.createIndex()
    return coco


def load_results(coco_gt: Any, results: Sequence[dict]):
    """``coco_gt.loadRes`` that also accepts an empty result list (pycocotools cannot)."""
    results = list(results)
    known = set(coco_gt.getImgIds())
    unknown = {r["image_id"] for r in results} - known
    if unknown:
        raise DataError(f"results: image_id {sorted(unknown)[0]} is not in the ground truth")
    if not results:
        from pycocotools.coco import COCO

        dt = COCO()
        dt.dataset = {"images": list(coco_gt.dataset["images"]), "categories": list(coco_gt.dataset["categories"]),
                      "annotations": []}
        with _quiet():
            dt.createIndex()
        return dt
    with _quiet():
        return coco_gt.loadRes([dict(r) for r in results])


def run_cocoeval(coco_gt: Any, coco_dt: Any, sigmas: np.ndarray | None = None, max_dets: int = 20,
                 img_ids: Sequence[int] | None = None, oks_thresholds: Sequence[float] | None = None):
    """Evaluate and accumulate a keypoint ``COCOeval`` quietly (OKS thresholds: COCO's by default); returns it."""
    from pycocotools.cocoeval import COCOeval

    ev = COCOeval(coco_gt, coco_dt, "keypoints")
    if sigmas is not None:
        ev.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
    ev.params.maxDets = [int(max_dets)]
    if img_ids is not None:
        ev.params.imgIds = list(img_ids)
    if oks_thresholds is not None:
        ev.params.iouThrs = np.asarray(oks_thresholds, dtype=np.float64)
    with _quiet():
        ev.evaluate()
        ev.accumulate()
    return ev


def summarize(ev: Any) -> dict[str, float]:
    """pycocotools' keypoint summary (``stats``) for the evaluation's own maxDets, by name.

    pycocotools' ``summarize()`` hard-codes maxDets 20; this reads the same cells for any maxDets.
    """
    p = ev.params
    out = {}
    for name, is_ap, iou, area in COCO_STATS:
        s = ev.eval["precision"] if is_ap else ev.eval["recall"]
        if iou is not None:
            s = s[np.where(iou == p.iouThrs)[0]]
        a = p.areaRngLbl.index(area)
        s = s[:, :, :, a, 0] if is_ap else s[:, :, a, 0]
        valid = s[s > -1]
        out[name] = float(np.mean(valid)) if len(valid) else -1.0
    return out


def oks_matrix(ev: Any, image_id: int) -> np.ndarray:
    """OKS of every detection (rows, by descending score) against every GT person of ``image_id``."""
    cat = ev.params.catIds[0]
    with _quiet():
        if not getattr(ev, "_gts", None):
            ev._prepare()
    return np.asarray(ev.computeOks(image_id, cat))
