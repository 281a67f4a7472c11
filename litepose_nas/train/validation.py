"""Validation AP during training: decode and score subnets on the first images of the val split.

A supernet's subnets are extracted (a copy: the run's weights and BN buffers stay untouched) and
their BN statistics recalibrated on training images prepared like test images, as every subnet
evaluation must be (the shared running statistics are a mixture over all trained subnets). A static
network is evaluated as it is. Decoding and metrics are the evaluation module's (bottom-up
grouping, pycocotools with the dataset's protocol), single scale, no flip.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, Iterator

import torch
from torch import nn

from ..space.arch import Arch
from ..tag_cost import DEFAULT_TAG_COST


class _OnDevice(nn.Module):
    """Moves the CPU test input to the model's device and the outputs back (for the decoder)."""

    def __init__(self, model: nn.Module, device: torch.device, memory_format: torch.memory_format) -> None:
        super().__init__()
        self.model = model
        self.device = device
        self.memory_format = memory_format
        self.num_joints = model.num_joints

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = x.to(self.device).contiguous(memory_format=self.memory_format)
        return [o.float().cpu() for o in self.model(x)]


def subset_gt(source: Any, max_images: int) -> tuple[dict, list[int]]:
    """Ground truth restricted to the first ``max_images`` images of ``source`` (all for 0)."""
    ids = source.image_ids
    if max_images:
        ids = ids[:max_images]
    keep = set(ids)
    gt = dict(source.gt_dict())
    gt["images"] = [img for img in gt["images"] if img["id"] in keep]
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] in keep]
    return gt, ids


@torch.no_grad()
def evaluate_subnet(model: nn.Module, source: Any, input_size: int, max_images: int = 0, protocol: str | None = None,
                    device: torch.device | str = "cpu", memory_format: torch.memory_format = torch.contiguous_format,
                    flip_test: bool = False, tag_cost: str = DEFAULT_TAG_COST) -> dict[str, float]:
    """Keypoint metrics (``AP``, ``AP50``, ...) of a static network on the first ``max_images``
    images of ``source`` (a :class:`~litepose_nas.data.PoseSource`), test input size ``input_size``,
    grouping with ``tag_cost`` (:mod:`litepose_nas.tag_cost`)."""
    from ..tag_cost import tag_cost_kwargs

    from ..decode import predict_people
    from ..metrics import keypoint_metrics, people_to_results

    gt, ids = subset_gt(source, max_images)
    runner = _OnDevice(model.eval(), torch.device(device), memory_format)
    flip_index = list(source.spec.flip_index) if flip_test else None
    results: list[dict] = []
    for image_id in ids:
        people, scores = predict_people(runner, source.load_image(image_id), input_size, flip_index,
                                        **tag_cost_kwargs(tag_cost))
        results.extend(people_to_results(image_id, people, scores))
    metrics = keypoint_metrics(gt, results, protocol or source.dataset, keypoints=source.spec)
    metrics = {k: float(v) for k, v in metrics.items()}
    metrics.update(images=len(ids), resolution=int(input_size), detections=len(results))
    return metrics


def calibration_batches(source: Any, input_size: int, num_batches: int, batch_size: int) -> Iterator[torch.Tensor]:
    """The first ``num_batches x batch_size`` images of ``source`` letterboxed like test inputs
    (no augmentation: deterministic, and the statistics match what the network sees at test time)."""
    from ..data import PoseDataset

    ds = PoseDataset(source, input_size, train=False)
    n = min(len(ds), num_batches * batch_size)
    for start in range(0, n, batch_size):
        yield torch.stack([ds[i]["image"] for i in range(start, min(n, start + batch_size))])


def validation_archs(model: nn.Module, config: Any, resolution: int) -> dict[str, Arch]:
    if config.kind == "supernet":
        space = config.search_space()
        return {name: dataclasses.replace(arch, img_size=resolution)
                for name, arch in (("largest", space.largest()), ("smallest", space.smallest()))}
    return {"model": dataclasses.replace(config.architecture(), img_size=resolution)}


def validate_run(model: nn.Module, config: Any, train_source: Any, device: torch.device) -> dict[str, Any]:
    """Validation of a run's current weights (see the module doc); results per subnet name."""
    from ..data import open_dataset
    from ..supernet import recalibrate_bn

    resolution = config.validation_resolution()
    val_source = open_dataset(config.data, config.dataset, config.val_split, config.declared_keypoints())
    memory_format = torch.channels_last if config.memory_format == "channels_last" else torch.contiguous_format
    out: dict[str, Any] = {}
    for name, arch in validation_archs(model, config, resolution).items():
        if config.kind == "supernet":
            net = model.extract(arch)
            batches = calibration_batches(train_source, resolution, max(1, config.recal_batches), min(config.batch_size, 16))
            recalibrate_bn(net, (b.to(device).contiguous(memory_format=memory_format) for b in batches))
        else:
            net = copy.deepcopy(model)
        out[name] = evaluate_subnet(net, val_source, resolution, config.val_images, config.dataset, device, memory_format,
                                    tag_cost=config.tag_cost)
    return out
