"""From an image and a network's outputs to people in image coordinates.

The original test pipeline (``docs/decoding-and-metrics.md``): resize about the centre
so the short side is the input size and the long side a multiple of 64; run the network (and on the
flipped image with flip test); upsample stage 1 to stage 2, average the heatmaps of both stages (and
of both flips), keep stage 1's tags (both flips side by side); upsample everything to the resized
input; group; map back through the inverse affine. torch and OpenCV are imported inside the functions
that need them, so importing this module stays light.

Pixel convention: the same as training (``data/transforms.py``): pixel ``i`` covers ``[i, i + 1)``
on the image, the resized input and every map. :meth:`ResizeInfo.matrix` is in that convention, the
resize warps through :func:`~litepose_nas.data.transforms.cv2_matrix` like the training warps, the
maps are upsampled with ``align_corners=False`` (a pure scaling), a flip is ``x -> W - x``, and the
decoder's ``+0.5`` puts a peak on its pixel's centre. (The original's test resize uses the matrix
as OpenCV's, integer = pixel centre; applied to a network trained in this convention that biases
every prediction by ``0.5 (1/f - 1)`` image pixels at test scale ``f``: +0.44 px for a 640x480 image
at 256 px.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .grouping import group

PIXEL_STD = 200.0  # the original expresses scales in units of 200 pixels
# Generous bounds far beyond any photo of COCO / CrowdPose (at most 640 px a side): an image past
# them (a decompression bomb, a 2 x 60000 px strip) would plan a network input of gigabytes.
MAX_IMAGE_SIDE = 16384
MAX_INPUT_PIXELS = 1 << 24  # 16 megapixels of resized input (e.g. 512 x 32768, 4096 x 4096)


@dataclass(frozen=True)
class ResizeInfo:
    """Where the resized test input sits in the original image."""

    center: tuple[float, float]   # (x, y) in image pixels, rounded as the original rounds it
    scale: tuple[float, float]    # (width, height) of the covered image region / 200
    size: tuple[int, int]         # (width, height) of the resized input

    def factor(self, map_width: int | None = None) -> float:
        """Map pixels per image pixel for a map of ``map_width`` (default: the resized input)."""
        width = self.size[0] if map_width is None else map_width
        return width / (self.scale[0] * PIXEL_STD)

    def matrix(self, map_size: tuple[int, int] | None = None, inverse: bool = False) -> np.ndarray:
        """The 2x3 affine image -> map (or map -> image with ``inverse``), map of ``(width, height)``,
        in the training convention (pixel ``i`` covers ``[i, i + 1)``).

        The original builds it with ``cv2.getAffineTransform`` on three float32 points; without
        rotation that is a uniform scale about the centre, written here in float64.
        """
        width, height = self.size if map_size is None else map_size
        f = self.factor(width)
        cx, cy = self.center
        if inverse:
            return np.array([[1 / f, 0, cx - width / 2 / f], [0, 1 / f, cy - height / 2 / f]])
        return np.array([[f, 0, width / 2 - f * cx], [0, f, height / 2 - f * cy]])


def resize_info(height: int, width: int, input_size: int) -> ResizeInfo:
    """The original's test-time size, centre and scale for an image of ``height`` x ``width``.

    Raises ``ValueError`` for an empty image, a side over :data:`MAX_IMAGE_SIDE` or a resized
    input over :data:`MAX_INPUT_PIXELS` (an extreme aspect ratio).
    """
    if not (0 < height <= MAX_IMAGE_SIDE and 0 < width <= MAX_IMAGE_SIDE):
        raise ValueError(f"image of {height}x{width} px (height x width) not supported "
                         f"(allowed: 1 to {MAX_IMAGE_SIDE} px a side)")
    if input_size <= 0:
        raise ValueError(f"input size {input_size} for the image must be positive")
    center = (float(int(width / 2.0 + 0.5)), float(int(height / 2.0 + 0.5)))
    short = int((input_size + 63) // 64 * 64)
    if width < height:
        w_resized = short
        h_resized = int((short / width * height + 63) // 64 * 64)
        scale_w = width / PIXEL_STD
        scale_h = h_resized / w_resized * width / PIXEL_STD
    else:
        h_resized = short
        w_resized = int((short / height * width + 63) // 64 * 64)
        scale_h = height / PIXEL_STD
        scale_w = w_resized / h_resized * height / PIXEL_STD
    if w_resized * h_resized > MAX_INPUT_PIXELS:
        raise ValueError(
            f"image of {height}x{width} px (height x width) would need a {h_resized}x{w_resized} network input "
            f"at input size {input_size} (allowed: up to {MAX_INPUT_PIXELS // (1 << 20)} megapixels; "
            "the aspect ratio is too extreme)"
        )
    return ResizeInfo(center=center, scale=(scale_w, scale_h), size=(w_resized, h_resized))


def resize_for_test(image: np.ndarray, input_size: int) -> tuple[np.ndarray, ResizeInfo]:
    """Warp ``image`` (H x W x C) to the test input (bilinear, black border) and say how."""
    import cv2

    from ..data.transforms import cv2_matrix

    info = resize_info(image.shape[0], image.shape[1], input_size)
    resized = cv2.warpAffine(image, cv2_matrix(info.matrix()), info.size, flags=cv2.INTER_LINEAR)
    return resized, info


def to_image_coords(people: np.ndarray, info: ResizeInfo, map_size: tuple[int, int] | None = None) -> np.ndarray:
    """Map ``people [P, J, >=2]`` from map coordinates (map of ``(width, height)``) to the image.

    Every joint is mapped, found or not, as the original does (unfound joints keep value 0).
    """
    out = np.array(people, dtype=np.float64, copy=True)
    if out.size == 0:
        return out
    m = info.matrix(map_size, inverse=True)
    xy = out[..., :2]
    out[..., :2] = xy @ m[:, :2].T + m[:, 2]
    return out


def resize_bilinear(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``maps [..., h, w]`` resized to ``size = (H, W)`` bilinearly with half-pixel centres: the
    sampling of ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``, in
    float32 (equal to it within a few float32 ulps; torch's kernel fuses multiply-adds)."""
    rows = _linear_taps(maps.shape[-2], size[0])
    cols = _linear_taps(maps.shape[-1], size[1])

    def along_w(x: np.ndarray) -> np.ndarray:
        return x[..., cols[0]] * cols[2] + x[..., cols[1]] * cols[3]

    return along_w(maps[..., rows[0], :]) * rows[2][:, None] + along_w(maps[..., rows[1], :]) * rows[3][:, None]


def _linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Source indices ``i0, i1`` and weights ``w0, w1`` of each output sample (torch's rule: the
    source position ``(i + 0.5) * n_in / n_out - 0.5`` clamped at 0, the last index repeated)."""
    f32 = np.float32
    if n_in == n_out:
        same = np.arange(n_out)
        return same, same, np.ones(n_out, f32), np.zeros(n_out, f32)
    scale = f32(n_in) / f32(n_out)
    src = np.maximum((np.float64(scale) * (np.arange(n_out) + 0.5) - 0.5).astype(f32), f32(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    w1 = np.clip(src - i0.astype(f32), 0, 1).astype(f32)
    return i0, i0 + (i0 < n_in - 1), (f32(1) - w1).astype(f32), w1


@dataclass(frozen=True)
class _MapOps:
    """The four array operations fusion needs, on torch tensors or numpy arrays."""

    as_array: Any      # an output ([1, C, h, w] or [C, h, w], tensor or array) -> float32 [1, C, h, w]
    resize: Any        # (maps, (H, W)) -> maps bilinearly resized
    flip_w: Any        # maps mirrored left-right
    stack_last: Any    # list of [1, J, H, W] -> [1, J, H, W, n]
    to_numpy: Any


def _torch_ops() -> _MapOps:
    import torch
    import torch.nn.functional as F

    def as_array(x: Any):
        t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x, dtype=np.float32))
        return (t.unsqueeze(0) if t.dim() == 3 else t).float()

    return _MapOps(as_array, lambda t, size: F.interpolate(t, size=size, mode="bilinear", align_corners=False),
                   lambda t: torch.flip(t, [3]), lambda ts: torch.stack(ts, dim=4), lambda t: t.numpy())


def _numpy_ops() -> _MapOps:
    def as_array(x: Any) -> np.ndarray:
        a = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float32)
        return a[None] if a.ndim == 3 else a

    return _MapOps(as_array, resize_bilinear, lambda a: a[..., ::-1], lambda arrays: np.stack(arrays, axis=4),
                   np.ascontiguousarray)


def map_ops(use_torch: bool | None = None) -> _MapOps:
    """torch's operations where torch is installed (the original's arithmetic, bit for bit), else
    numpy's: a base install runs exported ONNX models and decodes their outputs without torch.
    ``use_torch`` forces one (False: numpy even where torch is installed)."""
    if use_torch is False:
        return _numpy_ops()
    try:
        return _torch_ops()
    except ImportError:
        if use_torch:
            raise
        return _numpy_ops()


def fuse_outputs(
    outputs: Sequence[Any],
    num_joints: int,
    flip_outputs: Sequence[Any] | None = None,
    flip_index: Sequence[int] | None = None,
    project_size: tuple[int, int] | None = None,
    ops: _MapOps | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps ``[J, H, W]`` and tags ``[J, H, W, T]`` of one image from the network's outputs.

    Args:
        outputs: the network's outputs (tensors or arrays, ``[1, C, h, w]`` or ``[C, h, w]``): stage 1
            with J heatmaps then J tag maps, the last stage with J heatmaps.
        num_joints: J.
        flip_outputs: the outputs for the horizontally flipped image (flip test), as computed; they
            are flipped back and their joints permuted by ``flip_index`` here.
        flip_index: the dataset's left/right joint permutation (required with ``flip_outputs``).
        project_size: ``(width, height)`` to upsample to (the resized input); default: keep the last
            stage's size.
        ops: the array operations (:func:`map_ops`: torch where installed, else numpy).
    """
    ops = ops or map_ops()

    def stage_maps(outs: Sequence[Any], flipped: bool) -> tuple[Any, Any]:
        outs = [ops.as_array(o) for o in outs]
        size = tuple(outs[-1].shape[2:])
        heat_sum, tag = 0, None
        for i, out in enumerate(outs):
            if i != len(outs) - 1:
                out = ops.resize(out, size)
            if flipped:
                out = ops.flip_w(out)
            heat = out[:, :num_joints]
            if flipped:
                heat = heat[:, list(flip_index)]
            heat_sum = heat_sum + heat
            if i == 0:
                tag = out[:, num_joints:2 * num_joints]
                if flipped:
                    tag = tag[:, list(flip_index)]
        return heat_sum / len(outs), tag

    heat, tag = stage_maps(outputs, False)
    heats, tags = [heat], [tag]
    if flip_outputs is not None:
        if flip_index is None:
            raise ValueError("flip_outputs need the flip_index of the dataset")
        heat_f, tag_f = stage_maps(flip_outputs, True)
        heats.append(heat_f)
        tags.append(tag_f)
    if tags[0].shape[1] != num_joints:
        raise ValueError(f"stage 1 must have {2 * num_joints} channels (heatmaps then tags), "
                         f"got {tags[0].shape[1] + num_joints}")
    if project_size is not None:
        size = (project_size[1], project_size[0])
        heats = [ops.resize(h, size) for h in heats]
        tags = [ops.resize(t, size) for t in tags]
    heatmaps = heats[0] if len(heats) == 1 else (heats[0] + heats[1]) / 2.0
    tag_maps = ops.stack_last(tags)
    return ops.to_numpy(heatmaps[0]), ops.to_numpy(tag_maps[0])


def people_from_maps(heatmaps: np.ndarray, tags: np.ndarray, info: ResizeInfo,
                     **group_kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Group fused maps at the resized input and map back: ``people [P, J, 3]`` in image pixels
    (x, y, heatmap value) and ``scores [P]``. ``group_kwargs`` go to :func:`~.grouping.group`."""
    people, scores = group(heatmaps, tags, **group_kwargs)
    return to_image_coords(people, info), scores


def decode_outputs(
    outputs: Sequence[Any],
    info: ResizeInfo,
    num_joints: int,
    flip_outputs: Sequence[Any] | None = None,
    flip_index: Sequence[int] | None = None,
    **group_kwargs: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Fuse, project to the resized input, group and map back (:func:`people_from_maps`)."""
    heatmaps, tags = fuse_outputs(outputs, num_joints, flip_outputs, flip_index, project_size=info.size)
    return people_from_maps(heatmaps, tags, info, **group_kwargs)


def normalize_array(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``HxWx3`` uint8 RGB -> ``[1, 3, H, W]`` float32 array, ``(x / 255 - mean) / std``."""
    x = (image.astype(np.float32) / 255.0 - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))[None]


def normalize_image(image: np.ndarray, mean: Sequence[float], std: Sequence[float]):
    """:func:`normalize_array` as a torch tensor."""
    import torch

    return torch.from_numpy(normalize_array(image, mean, std))


def network_maps(
    model: Any,
    image: np.ndarray,
    input_size: int,
    flip_index: Sequence[int] | None = None,
    *,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray, ResizeInfo]:
    """Run ``model`` on one ``HxWx3`` uint8 RGB image: fused heatmaps ``[J, H, W]`` and tags
    ``[J, H, W, T]`` at the resized input, and where that input sits in the image.

    ``flip_index`` turns on flip test. ``mean``/``std`` default to the ImageNet statistics the
    datasets use (``litepose_nas.data.MEAN``/``STD``).
    """
    import torch

    if mean is None or std is None:
        from ..data import MEAN, STD

        mean, std = (MEAN if mean is None else mean), (STD if std is None else std)
    resized, info = resize_for_test(image, input_size)
    x = normalize_image(resized, mean, std)
    num_joints = int(getattr(model, "num_joints"))
    with torch.no_grad():
        outputs = model(x)
        flip_outputs = model(torch.flip(x, [3])) if flip_index is not None else None
    heatmaps, tags = fuse_outputs(outputs, num_joints, flip_outputs, flip_index, project_size=info.size)
    return heatmaps, tags, info


def predict_people(model: Any, image: np.ndarray, input_size: int, flip_index: Sequence[int] | None = None, *,
                   mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                   **group_kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model`` on one ``HxWx3`` uint8 RGB image: people ``[P, J, 3]`` in image pixels, scores
    (:func:`network_maps`, then :func:`people_from_maps`)."""
    heatmaps, tags, info = network_maps(model, image, input_size, flip_index, mean=mean, std=std)
    return people_from_maps(heatmaps, tags, info, **group_kwargs)
