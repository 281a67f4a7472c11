"""Evaluate a LitePose model on a COCO or CrowdPose split: people per image, results file, metrics.

The whole original test pipeline (``docs/decoding-and-metrics.md``): test-time resize, network (and
flipped network) outputs, stage fusion, projection to the input, grouping, inverse affine, COCO
results, then the dataset's official protocol. With ``breakdown=True`` also where AP is lost
(:mod:`litepose_nas.metrics.breakdown`, the oracles of :mod:`litepose_nas.decode.oracles`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .errors import InputError, JobError
from .tag_cost import DEFAULT_TAG_COST


@dataclass
class EvalResult:
    """What :func:`evaluate` found."""

    metrics: dict[str, float]
    dataset: str
    num_images: int
    num_people: int
    flip_test: bool
    input_size: int
    results_file: Path | None = None
    results: list[dict] = field(default_factory=list, repr=False)
    tag_cost: str = DEFAULT_TAG_COST
    breakdown: Any = None  # an ErrorBreakdown with breakdown=True

    def to_dict(self) -> dict[str, Any]:
        out = {"dataset": self.dataset, "metrics": self.metrics, "num_images": self.num_images,
               "num_people": self.num_people, "flip_test": self.flip_test, "input_size": self.input_size,
               "tag_cost": self.tag_cost,
               "results_file": None if self.results_file is None else str(self.results_file)}
        if self.breakdown is not None:
            out["breakdown"] = self.breakdown.to_dict()
        return out


def load_weights(model: Any, path: str | os.PathLike) -> None:
    """Load a checkpoint into ``model`` strictly (plain state_dict or training checkpoint, optional
    ``module.`` prefix), read with ``weights_only=True``; a mismatch raises one
    :class:`CheckpointError` naming the first missing / unexpected / mis-shaped key."""
    from .checkpoints import check_state_dict, load_state_dict_file

    state = load_state_dict_file(path)
    check_state_dict(model.state_dict(), state, str(path), "the architecture's network")
    model.load_state_dict(state, strict=True)


def _subset_gt(gt: dict, image_ids: Sequence[int]) -> dict:
    keep = set(image_ids)
    return {**gt, "images": [i for i in gt["images"] if i["id"] in keep],
            "annotations": [a for a in gt["annotations"] if a["image_id"] in keep]}


def evaluate_model(
    model: Any,
    source: Any,
    *,
    flip_test: bool = False,
    input_size: int | None = None,
    max_images: int | None = None,
    results_file: str | os.PathLike | None = None,
    progress: bool = False,
    max_dets: int = 20,
    tag_cost: str = DEFAULT_TAG_COST,
    breakdown: bool = False,
    **group_kwargs: Any,
) -> EvalResult:
    """Run ``model`` (a ``LitePose``) over the images of ``source`` (``open_dataset(...)``).

    ``input_size`` defaults to the model's ``arch.img_size``; ``max_images`` takes the first images
    only (the metrics are then computed on those images); ``tag_cost`` is the grouping cost
    (:mod:`litepose_nas.tag_cost`), ``group_kwargs`` go to :func:`litepose_nas.decode.group`.
    Writes the COCO results to ``results_file`` if given. ``breakdown``: also the error analysis
    (``result.breakdown``, an :class:`~litepose_nas.metrics.breakdown.ErrorBreakdown`).
    """
    import torch
    from tqdm import tqdm

    from .decode import network_maps, oracle_people, people_from_maps
    from .metrics import keypoint_metrics, people_to_results, write_results
    from .tag_cost import tag_cost_kwargs

    try:
        group_kwargs = {**tag_cost_kwargs(tag_cost), **group_kwargs}
    except ValueError as exc:
        raise InputError(str(exc)) from None

    spec = source.spec
    if getattr(model, "num_joints", spec.num_joints) != spec.num_joints:
        raise InputError(f"the model predicts {model.num_joints} joints, {source.annotation_file} has "
                         f"{spec.num_joints} (keypoint set {spec.name!r})")
    size = int(input_size or model.arch.img_size)
    if size < 64:
        raise InputError(f"input size must be at least 64 px, got {size}")
    ids = list(source.image_ids)
    if max_images is not None:
        if max_images < 1:
            raise InputError(f"max images must be at least 1, got {max_images}")
        ids = ids[:max_images]
    if not ids:
        raise InputError(f"{source.annotation_file}: no images to evaluate")
    model.eval()
    flip_index = list(spec.flip_index) if flip_test else None
    results: list[dict] = []
    oracle_results: dict[str, list[dict]] = {"grouping": [], "localization": []}
    with torch.inference_mode():
        for image_id in tqdm(ids, desc="evaluate", unit="img", disable=not progress, leave=False):
            heatmaps, tags, info = network_maps(model, source.load_image(image_id), size, flip_index)
            people, scores = people_from_maps(heatmaps, tags, info, **group_kwargs)
            results.extend(people_to_results(image_id, people, scores))
            if breakdown:
                oracles = oracle_people(heatmaps, tags, info, source.people(image_id), **group_kwargs)
                for name, (o_people, o_scores) in oracles.items():
                    oracle_results[name].extend(people_to_results(image_id, o_people, o_scores))
    gt = source.gt_dict()
    if len(ids) < len(source.image_ids) or len(ids) < len(gt["images"]):
        gt = _subset_gt(gt, ids)
    analysis = None
    try:
        metrics = keypoint_metrics(gt, results, source.dataset, max_dets=max_dets, keypoints=spec)
        if breakdown:
            from .metrics.breakdown import error_breakdown

            analysis = error_breakdown(gt, results, source.dataset, max_dets, keypoints=spec)
            for name in ("grouping", "localization"):
                setattr(analysis, f"ap_oracle_{name}",
                        keypoint_metrics(gt, oracle_results[name], source.dataset, max_dets, keypoints=spec)["AP"])
    except InputError:
        raise
    except Exception as exc:  # pycocotools failing on valid input is a runtime failure
        raise JobError(f"evaluation of {len(results)} detections failed: {type(exc).__name__}: {exc}") from exc
    path = write_results(results_file, results) if results_file is not None else None
    return EvalResult(metrics=metrics, dataset=source.dataset, num_images=len(ids), num_people=len(results),
                      flip_test=flip_test, input_size=size, results_file=path, results=results,
                      tag_cost=tag_cost, breakdown=analysis)


def evaluate(
    arch: Any,
    weights: str | os.PathLike | None,
    data: str | os.PathLike,
    dataset: str,
    split: str = "val",
    *,
    flip_test: bool = False,
    input_size: int | None = None,
    max_images: int | None = None,
    results_file: str | os.PathLike | None = None,
    progress: bool = False,
    tag_cost: str = DEFAULT_TAG_COST,
    breakdown: bool = False,
    keypoints: Any = None,
    **group_kwargs: Any,
) -> EvalResult:
    """Build the network of ``arch`` (an ``Arch``, its JSON file or a published name), load ``weights`` (None: keep the
    random initialisation, for smoke tests) and evaluate it on ``split`` of the dataset at ``data``
    (:func:`evaluate_model`; ``breakdown=True`` adds the error analysis). ``keypoints``: the keypoint
    set (a :class:`~litepose_nas.keypoints.KeypointSpec` or its dict); default: the one ``weights``
    records (a training run's ``model.pt``), else the annotation file's."""
    from .data import open_dataset
    from .models import build_model
    from .space import Arch
    from .space.published import load_arch

    if not isinstance(arch, Arch):
        arch = load_arch(arch)
    if keypoints is None and weights is not None:
        from .checkpoints import read_checkpoint, recorded_keypoints

        keypoints = recorded_keypoints(read_checkpoint(weights), str(weights))
    source = open_dataset(Path(data), dataset, split, keypoints)
    model = build_model(arch, source.num_joints)
    if weights is not None:
        load_weights(model, weights)
    return evaluate_model(model, source, flip_test=flip_test, input_size=input_size, max_images=max_images,
                          results_file=results_file, progress=progress, tag_cost=tag_cost, breakdown=breakdown,
                          **group_kwargs)
