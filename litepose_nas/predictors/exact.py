"""The exact "predictor": evaluate each subnet on the trained supernet (the original's approach).

For every architecture: extract the static subnet with the supernet's weights, re-estimate its
BatchNorm statistics on a few training batches, and compute the official AP on a validation
subset. Slow (seconds per subnet), so it serves small searches, data collection
(``predictor collect``) and checking learned predictors. Results are cached per architecture.
"""
from __future__ import annotations

import os
import time
from typing import Any, Sequence

import numpy as np

from ..errors import CheckpointError, PredictorError
from ..space import Arch, SearchSpace
from .features import as_encoded, space_fingerprint


class ExactPredictor:
    """``predict(archs)`` = measured AP of each subnet of ``supernet`` (a ``SuperLitePose``)."""

    def __init__(self, supernet: Any, train_source: Any, val_source: Any, *, calib_batches: int = 10,
                 batch_size: int = 8, val_images: int = 200, metric: str = "AP", device: str = "cpu",
                 seed: int = 0, source: str = "supernet in memory", resolution_scale: float = 1.0) -> None:
        self.supernet = supernet.to(device).eval()
        self.space: SearchSpace = supernet.space
        self.train_source, self.val_source = train_source, val_source
        self.calib_batches, self.batch_size, self.val_images = int(calib_batches), int(batch_size), int(val_images)
        self.metric, self.device, self.seed = metric, device, int(seed)
        self.source = source
        if not 0.0 < float(resolution_scale) <= 1.0:
            raise PredictorError(f"resolution_scale must lie in (0, 1], got {resolution_scale}")
        # A proxy resolution (e.g. 1/4) makes exact evaluation affordable on a CPU: each subnet is
        # recalibrated and evaluated at img_size x scale instead of its real input size.
        self.resolution_scale = float(resolution_scale)
        self.name = "exact"
        self.cache: dict[str, dict[str, Any]] = {}

    @classmethod
    def from_files(cls, supernet_path: str | os.PathLike, data_dir: str | os.PathLike, dataset: str,
                   space: SearchSpace | None = None, train_split: str = "train", val_split: str = "val",
                   **kwargs: Any) -> "ExactPredictor":
        """Load a supernet checkpoint (``weights_only`` loading, strict keys) and a dataset."""
        from ..checkpoints import load_original_checkpoint
        from ..data import open_dataset

        ck = load_original_checkpoint(supernet_path, space=space)
        if ck.layout != "supernet":
            raise CheckpointError(f"{supernet_path}: a static network, not a supernet (layout {ck.layout!r})")
        if space is not None and space_fingerprint(ck.model.space) != space_fingerprint(space):
            raise CheckpointError(f"{supernet_path}: supernet of space '{ck.model.space.name}', not '{space.name}'")
        keypoints = ck.keypoints or (space.keypoints if space is not None else None)
        train = open_dataset(data_dir, dataset, train_split, keypoints)
        val = open_dataset(data_dir, dataset, val_split, keypoints)
        if train.num_joints != ck.num_joints:
            raise CheckpointError(f"{supernet_path}: {ck.num_joints} joints, {dataset} has {train.num_joints}")
        return cls(ck.model, train, val, source=str(supernet_path), **kwargs)

    def check_space(self, space: SearchSpace) -> None:
        if space_fingerprint(space) != space_fingerprint(self.space):
            for arch in (space.largest(), space.smallest()):
                if not self.space.contains(arch):
                    raise PredictorError(f"{self.source}: supernet of space '{self.space.name}' cannot run "
                                         f"subnets of space '{space.name}' (e.g. {arch.describe()})")

    def describe(self) -> str:
        proxy = f", proxy input img_size x {self.resolution_scale:g}" if self.resolution_scale != 1.0 else ""
        return (f"exact evaluation on {self.source} ({self.calib_batches} BN batches, "
                f"{self.val_images} {self.val_source.dataset} val images, metric {self.metric}{proxy})")

    def input_size(self, arch: Arch) -> int:
        """The input size ``arch`` is evaluated at: its own, or the proxy (a multiple of the total stride, >= 64)."""
        if self.resolution_scale == 1.0:
            return arch.img_size
        m = arch.wiring.total_stride  # input sides are multiples of the network plan's total stride
        return max(-(-64 // m) * m, int(round(arch.img_size * self.resolution_scale / m)) * m)

    def _calibration_batches(self, arch: Arch):
        from ..data import PoseDataset, make_loader

        size = self.input_size(arch)
        ds = PoseDataset(self.train_source, input_size=size, train=True, seed=self.seed,
                         output_sizes=[size // st for st in arch.wiring.output_strides])
        loader = make_loader(ds, self.batch_size, shuffle=True, seed=self.seed)
        for i, batch in enumerate(loader):
            if i >= self.calib_batches:
                break
            yield batch

    def evaluate_arch(self, arch: Arch) -> dict[str, Any]:
        """Extract, recalibrate BN, evaluate; returns the metrics (cached per architecture)."""
        from ..evaluate import evaluate_model
        from ..supernet import recalibrate_bn

        key = arch.to_json()
        if key in self.cache:
            return self.cache[key]
        start = time.perf_counter()
        model = self.supernet.extract(arch)
        recalibrate_bn(model, self._calibration_batches(arch))
        result = evaluate_model(model, self.val_source, max_images=self.val_images,
                                input_size=self.input_size(arch))
        out = {"metrics": dict(result.metrics), "seconds": time.perf_counter() - start, "num_images": result.num_images}
        if self.metric not in out["metrics"]:
            raise PredictorError(f"metric {self.metric!r} not reported (available: {', '.join(out['metrics'])})")
        self.cache[key] = out
        return out

    def predict(self, archs: Arch | Sequence[Arch] | np.ndarray, space: SearchSpace | None = None) -> np.ndarray:
        single = isinstance(archs, Arch)
        target = space or self.space
        if isinstance(archs, np.ndarray) or not single and archs and not isinstance(list(archs)[0], Arch):
            archs = target.decode(as_encoded(target, archs))
        archs = [archs] if single else list(archs)
        values = np.array([self.evaluate_arch(a)["metrics"][self.metric] for a in archs], dtype=np.float64)
        return float(values[0]) if single else values

    __call__ = predict
