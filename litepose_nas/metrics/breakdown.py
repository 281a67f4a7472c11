"""Where keypoint AP is lost: Ronchi & Perona's error analysis (ICCV'17) on pycocotools.

1. Detections are matched to ground truth by COCOeval's greedy matching at OKS 0.1, so badly
   localised detections still get a partner.
2. Every keypoint of a matched detection (ground-truth ``v > 0``) is compared, by keypoint
   similarity ``ks`` (the OKS term of one joint), with every person of its image, as annotated and
   left/right inverted, and classified: **good** (``ks > 0.85`` on its partner), **jitter**
   (``0.5 <= ks <= 0.85`` on its partner), **inversion** (best on its partner inverted), **swap**
   (best on another person: for a bottom-up method a grouping error), **miss** (``ks < 0.5``
   everywhere).
3. The errors are corrected one type at a time, cumulatively, miss -> swap -> inversion -> jitter
   (a corrected joint moves towards its partner's joint to the distance of its class's reference
   similarity), then detections are re-scored by their best OKS (scoring errors), then detections
   matching nobody are removed (background false positives); AP is recomputed after each step and
   the gain of a step is what that error type costs.

False positives are split into duplicates (overlapping, OKS >= 0.1, a person already taken by a
higher-scoring detection) and background (overlapping nobody); ground truths matched by nothing
are false negatives. The bottom-up oracles (AP with ground-truth grouping, AP with ground-truth
peaks) come from :mod:`litepose_nas.decode.oracles` through :func:`litepose_nas.evaluate.evaluate`.
"""
from __future__ import annotations

import copy
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..keypoints import KeypointSpec, keypoint_spec
from .cocoapi import summarize
from .protocols import protocol_eval

MATCH_OKS = 0.1
GOOD_KS, MISS_KS = 0.85, 0.5
KEYPOINT_CLASSES = ("good", "jitter", "inversion", "swap", "miss")
CORRECTION_ORDER = ("miss", "swap", "inversion", "jitter")


@dataclass
class ErrorBreakdown:
    """What :func:`error_breakdown` found (plus the oracle APs when the evaluation computed them)."""

    ap: float
    keypoints: dict[str, int]                   # matched-detection joints per class
    steps: list[tuple[str, float]]              # (step, AP after it), cumulative, first: as predicted
    detections: int
    false_positives: int                        # detections matching no ground truth at OKS 0.1
    duplicates: int                             # ... of which overlap a person already taken
    false_negatives: int                        # ground truths matched by no detection
    people: int                                 # ground truths evaluated
    ap_oracle_grouping: float | None = None     # predicted heatmaps, ground-truth grouping
    ap_oracle_localization: float | None = None  # ground-truth peaks, predicted tags
    pr_curves: dict[str, list[float]] = field(default_factory=dict, repr=False)  # precision at 101 recalls

    @property
    def shares(self) -> dict[str, float]:
        total = sum(self.keypoints.values())
        return {k: (v / total if total else 0.0) for k, v in self.keypoints.items()}

    @property
    def background(self) -> int:
        return self.false_positives - self.duplicates

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("pr_curves")
        out["steps"] = [{"step": s, "AP": round(a, 4)} for s, a in self.steps]
        out["keypoint_shares"] = {k: round(v, 4) for k, v in self.shares.items()}
        out["background_false_positives"] = self.background
        return out

    def table(self) -> list[list[str]]:
        """Rows ``[what, value]`` for a two-column table."""
        rows = [["AP as predicted", f"{self.ap:.4f}"]]
        if self.ap_oracle_grouping is not None:
            rows.append(["AP, ground-truth grouping (oracle association)", f"{self.ap_oracle_grouping:.4f}"])
        if self.ap_oracle_localization is not None:
            rows.append(["AP, ground-truth peaks (oracle localization)", f"{self.ap_oracle_localization:.4f}"])
        previous = self.ap
        for name, ap in self.steps[1:]:
            rows.append([f"AP after correcting {name}", f"{ap:.4f} ({ap - previous:+.4f})"])
            previous = ap
        for name, share in self.shares.items():
            rows.append([f"joints: {name}", f"{share:6.1%} ({self.keypoints[name]})"])
        rows += [["detections evaluated (top maxDets per image)", str(self.detections)],
                 ["false-positive people (background)", str(self.background)],
                 ["duplicate people", str(self.duplicates)],
                 ["people missed (false negatives)", f"{self.false_negatives} of {self.people}"]]
        return rows


def _distance_for(ks: np.ndarray | float, sigma: np.ndarray | float, area: float) -> np.ndarray:
    """The joint-to-target distance at which the keypoint similarity equals ``ks``."""
    return np.sqrt(-2.0 * np.log(np.clip(ks, 1e-12, 1.0)) * (2.0 * np.asarray(sigma)) ** 2 * (area + np.spacing(1)))


def _similarities(dt_xy: np.ndarray, gts: list[dict], sigmas: np.ndarray, flip: Sequence[int]) -> np.ndarray:
    """``ks [G, 2, J]`` of one detection's joints against every person, as annotated (0) and inverted (1);
    0 where that person's joint is not labelled."""
    out = np.zeros((len(gts), 2, len(sigmas)))
    var = (2.0 * sigmas) ** 2
    for g, gt in enumerate(gts):
        kp = np.asarray(gt["keypoints"], dtype=np.float64).reshape(-1, 3)
        for row, k in enumerate((kp, kp[list(flip)])):
            d2 = ((dt_xy - k[:, :2]) ** 2).sum(1)
            out[g, row] = np.where(k[:, 2] > 0, np.exp(-d2 / var / (gt["area"] + np.spacing(1)) / 2), 0.0)
    return out


def _ap_and_curve(gt: dict, results: list[dict], protocol: str, max_dets: int,
                  keypoints: KeypointSpec | None = None) -> tuple[float, list[float]]:
    ev = protocol_eval(gt, results, protocol, max_dets, keypoints=keypoints)
    precision = ev.eval["precision"][:, :, 0, 0, -1]  # [T, R], category 0, area 'all'
    curve = [float(np.mean(col[col > -1])) if (col > -1).any() else 0.0 for col in precision.T]
    return summarize(ev)["AP"], curve


def error_breakdown(gt: dict, results: Sequence[dict], protocol: str = "coco", max_dets: int = 20,
                    keypoints: KeypointSpec | None = None) -> ErrorBreakdown:
    """Ronchi & Perona's analysis of ``results`` (COCO keypoint detections) against ``gt`` (see the
    module doc) under the protocol's OKS scale and the sigmas / flip pairs of ``keypoints`` (default:
    the protocol's dataset's)."""
    spec = keypoints if keypoints is not None else keypoint_spec(protocol)
    sigmas, flip = spec.sigmas_array(), list(spec.flip_index)
    results = [dict(r) for r in results]
    ev = protocol_eval(gt, results, protocol, max_dets, oks_thresholds=[MATCH_OKS], keypoints=spec)
    p = ev.params
    by_id = {i + 1: r for i, r in enumerate(results)}  # loadRes numbers detections 1.. in list order
    counts = {k: 0 for k in KEYPOINT_CLASSES}
    # (detection id, joint, class, target ks, partner) for the corrections
    fixes: list[tuple[int, int, str, float, dict]] = []
    matched_to: dict[int, dict] = {}
    false_pos = dups = false_neg = people = detections = 0
    for e in ev.evalImgs:
        if e is None or e["aRng"] != p.areaRng[0]:
            continue
        # COCOeval rewrites each person's '_ignore' per area range: read this record's own flags
        by_gt = {g["id"]: g for g in ev._gts[e["image_id"], e["category_id"]]}
        gts = [by_gt[i] for i, ig in zip(e["gtIds"], e["gtIgnore"]) if not ig]
        people += len(gts)
        false_neg += int(sum(1 for m, ig in zip(e["gtMatches"][0], e["gtIgnore"]) if not ig and m == 0))
        oks = np.asarray(ev.ious.get((e["image_id"], e["category_id"]), []))
        for k, dt_id in enumerate(e["dtIds"]):
            if e["dtIgnore"][0][k]:
                continue
            detections += 1
            g_id = int(e["dtMatches"][0][k])
            if g_id == 0:
                false_pos += 1
                # overlaps somebody (taken by a better detection): a duplicate, else background
                row = _oks_row(ev, e, dt_id, oks)
                dups += int(row.size > 0 and row.max() >= MATCH_OKS)
                continue
            det = by_id[int(dt_id)]
            partner = by_gt[g_id]
            matched_to[int(dt_id)] = partner
            xy = np.asarray(det["keypoints"], dtype=np.float64).reshape(-1, 3)[:, :2]
            order = [partner] + [g for g in gts if g["id"] != g_id]
            ks = _similarities(xy, order, sigmas, flip)                  # [G, 2, J], partner first
            labelled = np.asarray(partner["keypoints"]).reshape(-1, 3)[:, 2] > 0
            flat = ks.reshape(-1, ks.shape[-1])
            best_row, best = flat.argmax(0), flat.max(0)
            for j in np.flatnonzero(labelled):
                if best[j] < MISS_KS:
                    cls, target = "miss", MISS_KS
                elif best_row[j] == 0:
                    cls, target = ("good", 1.0) if best[j] > GOOD_KS else ("jitter", GOOD_KS)
                elif best_row[j] == 1:
                    cls, target = "inversion", float(best[j])
                else:
                    cls, target = "swap", float(best[j])
                counts[cls] += 1
                if cls != "good":
                    fixes.append((int(dt_id), int(j), cls, target, partner))

    ap, curve = _ap_and_curve(gt, results, protocol, max_dets, spec)
    steps, curves = [("as predicted", ap)], {"as predicted": curve}
    fixed = copy.deepcopy(results)
    for cls in CORRECTION_ORDER:
        for dt_id, j, c, target, partner in fixes:
            if c == cls:
                _move_joint(fixed[dt_id - 1], partner, j, target, sigmas[j])
        steps.append((cls, _record(curves, cls, gt, fixed, protocol, max_dets, spec)))
    # scoring errors: the ideal ranking, by each detection's best OKS
    rescored = protocol_eval(gt, fixed, protocol, max_dets, keypoints=spec)
    for e in rescored.evalImgs:
        if e is None or e["aRng"] != rescored.params.areaRng[0]:
            continue
        oks = np.asarray(rescored.ious.get((e["image_id"], e["category_id"]), []))
        for dt_id in e["dtIds"]:
            row = _oks_row(rescored, e, dt_id, oks)
            fixed[int(dt_id) - 1]["score"] = float(row.max()) if row.size else 0.0
    steps.append(("scoring", _record(curves, "scoring", gt, fixed, protocol, max_dets, spec)))
    kept = [r for i, r in enumerate(fixed) if (i + 1) in matched_to]
    steps.append(("background false positives", _record(curves, "background false positives", gt, kept,
                                                        protocol, max_dets, spec)))
    return ErrorBreakdown(ap=ap, keypoints=counts, steps=steps, detections=detections, false_positives=false_pos,
                          duplicates=dups, false_negatives=false_neg, people=people, pr_curves=curves)


def _record(curves: dict, name: str, gt: dict, results: list[dict], protocol: str, max_dets: int,
            keypoints: KeypointSpec | None = None) -> float:
    ap, curves[name] = _ap_and_curve(gt, results, protocol, max_dets, keypoints)
    return ap


def _oks_row(ev: Any, e: dict, dt_id: int, oks: np.ndarray) -> np.ndarray:
    """OKS of detection ``dt_id`` against the image's persons (COCOeval's ``ious`` rows follow its
    score-sorted detections)."""
    dts = ev._dts[e["image_id"], e["category_id"]]
    order = np.argsort([-d["score"] for d in dts], kind="mergesort")
    ids = [dts[i]["id"] for i in order][: ev.params.maxDets[-1]]
    if not len(oks) or dt_id not in ids:
        return np.zeros(0)
    return np.asarray(oks)[ids.index(dt_id)]


def _move_joint(det: dict, partner: dict, j: int, ks: float, sigma: float) -> None:
    """Move joint ``j`` of ``det`` to its partner's joint, offset (along where it was) to similarity ``ks``."""
    kp = det["keypoints"]
    gx, gy = partner["keypoints"][3 * j], partner["keypoints"][3 * j + 1]
    dx, dy = kp[3 * j] - gx, kp[3 * j + 1] - gy
    norm = math.hypot(dx, dy)
    ux, uy = (dx / norm, dy / norm) if norm > 0 else (1.0, 0.0)
    dist = float(_distance_for(ks, sigma, partner["area"])) if ks < 1.0 else 0.0
    kp[3 * j], kp[3 * j + 1] = gx + ux * dist, gy + uy * dist


def plot_breakdown(breakdown: ErrorBreakdown, path: str | os.PathLike, title: str = "") -> Path:
    """The analysis figure: one precision-recall curve per correction step (AP in the legend), and
    the share of joints per class. Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    recall = np.linspace(0, 1, 101)
    aps = dict(breakdown.steps)
    for name, curve in breakdown.pr_curves.items():
        ax.plot(recall, curve, label=f"{name}: AP {aps[name]:.3f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision (mean over OKS .50:.95)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left", title="corrected cumulatively", title_fontsize=7)
    shares = breakdown.shares
    bx.bar(list(shares), [100 * v for v in shares.values()], color=["#4c9", "#9c4", "#c94", "#c44", "#888"])
    bx.set_ylabel("% of matched joints")
    extra = [f"AP {breakdown.ap:.3f}"]
    if breakdown.ap_oracle_grouping is not None:
        extra.append(f"GT grouping {breakdown.ap_oracle_grouping:.3f}")
    if breakdown.ap_oracle_localization is not None:
        extra.append(f"GT peaks {breakdown.ap_oracle_localization:.3f}")
    extra.append(f"FP {breakdown.background} / dup {breakdown.duplicates} / missed {breakdown.false_negatives}")
    bx.set_title("\n".join([", ".join(extra[:2]), ", ".join(extra[2:])]), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path
