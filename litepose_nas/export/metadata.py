"""The metadata JSON written beside an exported ONNX model (and embedded in it).

It says everything a runtime needs besides the graph: input/output names and shapes, the joints
(names, flip pairs, skeleton), the preprocessing (RGB, mean/std on [0, 1], the resize policy of
the decoder), the opset and the architecture.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io import check_readable_file, read_json_bounded
from ..keypoints import KeypointSpec, default_sigmas, keypoint_set, spec_for_joints
from ..space.arch import Arch
from ..tag_cost import DEFAULT_TAG_COST
from .interface import INPUT_NAME, OUTPUT_NAMES, output_names, total_stride

FORMAT = "litepose-nas-onnx"
FORMAT_VERSION = 1
METADATA_FILENAME = "metadata.json"
ONNX_METADATA_KEY = "litepose_nas"  # key of the copy embedded in the ONNX model's metadata_props

# ImageNet statistics on [0, 1] RGB, the normalisation of every LitePose model
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LONG_SIDE_MULTIPLE = 64

# Decoding defaults of the published models
# tag_cost: how joints are grouped (litepose_nas.tag_cost); tag distance, as the default recipe trains for
DECODING_DEFAULTS = {"detection_threshold": 0.1, "tag_threshold": 1.0, "nms_kernel": 5, "max_people": 30,
                     "tag_cost": DEFAULT_TAG_COST}


def normalisation() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std of the training pipeline (``litepose_nas.data`` when present)."""
    try:
        from .. import data

        return tuple(float(v) for v in data.MEAN), tuple(float(v) for v in data.STD)
    except (ImportError, AttributeError):
        return IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class ExportMetadata:
    """What a runtime needs to feed the exported model and read its outputs."""

    arch: Arch
    num_joints: int
    joint_names: tuple[str, ...]
    flip_index: tuple[int, ...]
    skeleton: tuple[tuple[int, int], ...]
    dataset: str
    opset: int
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    input_name: str = INPUT_NAME
    output_names: tuple[str, ...] = OUTPUT_NAMES
    model_file: str = "model.onnx"
    decoding: dict[str, Any] = field(default_factory=lambda: dict(DECODING_DEFAULTS))
    extra: dict[str, Any] = field(default_factory=dict)  # parity, versions, weights source
    sigmas: tuple[float, ...] = ()  # OKS sigmas of the keypoint set (empty: the default for the joint count)

    @classmethod
    def create(cls, arch: Arch, num_joints: int, opset: int, model_file: str = "model.onnx",
               extra: dict[str, Any] | None = None, keypoints: KeypointSpec | None = None) -> "ExportMetadata":
        """``keypoints``: the set the model was trained on; default COCO's / CrowdPose's by joint count,
        else generic names without flip pairs."""
        if keypoints is None:
            try:
                keypoints = spec_for_joints(num_joints)
            except InputError:
                keypoints = keypoint_set({"num_joints": num_joints, "flip_pairs": []})
        if keypoints.num_joints != num_joints:
            raise InputError(f"keypoint set {keypoints.name!r} has {keypoints.num_joints} joints, "
                             f"the model {num_joints}")
        mean, std = normalisation()
        return cls(
            arch=arch, num_joints=num_joints, joint_names=keypoints.joints, flip_index=keypoints.flip_index,
            skeleton=keypoints.skeleton, dataset=keypoints.name, opset=opset, mean=mean, std=std,
            output_names=output_names(arch), model_file=model_file, extra=dict(extra or {}),
            sigmas=keypoints.sigmas,
        )

    @property
    def keypoints(self) -> KeypointSpec:
        """The keypoint set recorded at export (names, flip pairs, sigmas, skeleton)."""
        return KeypointSpec(self.dataset, self.joint_names, self.flip_index,
                            self.sigmas or default_sigmas(self.num_joints), self.skeleton)

    @property
    def img_size(self) -> int:
        return self.arch.img_size

    @property
    def spatial_multiple(self) -> int:
        return total_stride(self.arch)

    def to_dict(self) -> dict[str, Any]:
        j = self.num_joints
        s = self.arch.img_size
        outputs = []
        w = self.arch.wiring  # output strides and channels from the network plan
        for name, stride, channels in zip(self.output_names, w.output_strides, w.output_channels(j)):
            entry = {
                "name": name,
                "shape": ["batch", channels, f"height/{stride}", f"width/{stride}"],
                "shape_at_img_size": [1, channels, s // stride, s // stride],
                "stride": stride,
                "heatmap_channels": [0, j],
            }
            if channels == 2 * j:
                entry["tag_channels"] = [j, 2 * j]
            outputs.append(entry)
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model_file": self.model_file,
            "opset": self.opset,
            "input": {
                "name": self.input_name,
                "shape": ["batch", 3, "height", "width"],
                "shape_at_img_size": [1, 3, s, s],
                "dtype": "float32",
                "layout": "NCHW",
                "spatial_multiple": self.spatial_multiple,
            },
            "outputs": outputs,
            "num_joints": j,
            "dataset": self.dataset,
            "keypoints": list(self.joint_names),
            "flip_index": list(self.flip_index),
            "flip_pairs": [list(p) for p in self.keypoints.flip_pairs],
            "sigmas": list(self.keypoints.sigmas),
            "skeleton": [list(p) for p in self.skeleton],
            "preprocessing": {
                "color": "RGB",
                "scale": "divide by 255 to [0, 1]",
                "mean": list(self.mean),
                "std": list(self.std),
                "resize": {
                    "policy": "short side to img_size rounded up to a multiple of 64, long side scaled alike "
                              "and rounded up to a multiple of 64",
                    "img_size": s,
                    "long_side_multiple": LONG_SIDE_MULTIPLE,
                    "transform": "affine warp about the image centre (keep centre and scale to map results back)",
                    "interpolation": "bilinear",
                },
            },
            "decoding": dict(self.decoding),
            "arch": self.arch.to_dict(),
            **({"export": self.extra} if self.extra else {}),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Any, source: str = "metadata") -> "ExportMetadata":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"{source}: not a litepose-nas ONNX metadata file (expected \"format\": \"{FORMAT}\")")
        try:
            version = int(data["format_version"])
            if version > FORMAT_VERSION:
                raise InputError(f"{source}: format_version {version} is newer than supported ({FORMAT_VERSION})")
            arch = Arch.from_dict(data["arch"], f"{source}: arch")
            pre = data["preprocessing"]
            return cls(
                arch=arch,
                num_joints=int(data["num_joints"]),
                joint_names=tuple(data["keypoints"]),
                flip_index=tuple(int(i) for i in data["flip_index"]),
                skeleton=tuple((int(a), int(b)) for a, b in data["skeleton"]),
                dataset=str(data["dataset"]),
                opset=int(data["opset"]),
                mean=tuple(float(v) for v in pre["mean"]),
                std=tuple(float(v) for v in pre["std"]),
                input_name=str(data["input"]["name"]),
                output_names=tuple(str(o["name"]) for o in data["outputs"]),
                model_file=str(data.get("model_file", "model.onnx")),
                decoding={**DECODING_DEFAULTS, **dict(data.get("decoding", {}))},
                extra=dict(data.get("export", {})),
                sigmas=tuple(float(v) for v in data.get("sigmas", ())),
            )
        except KeyError as exc:
            raise InputError(f"{source}: missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(f"{source}: malformed field ({exc})") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ExportMetadata":
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: metadata file not found")
        return cls.from_dict(read_json_bounded(path, "export metadata", InputError), str(path))


def metadata_for_model(model_path: str | os.PathLike) -> ExportMetadata:
    """The metadata of an exported ONNX model: ``metadata.json`` beside it, else the embedded copy."""
    model_path = Path(model_path)
    sidecar = model_path.with_name(METADATA_FILENAME)
    if sidecar.is_file():
        return ExportMetadata.load(sidecar)
    import onnx

    check_readable_file(model_path, "ONNX model", InputError)
    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError and friends
        raise InputError(f"{model_path}: not a readable ONNX model ({type(exc).__name__})") from None
    props = {p.key: p.value for p in model.metadata_props}
    if ONNX_METADATA_KEY not in props:
        raise InputError(
            f"{model_path}: no {METADATA_FILENAME} beside it and no embedded litepose-nas metadata "
            "(export it with `litepose-nas export`)"
        )
    return ExportMetadata.from_dict(json.loads(props[ONNX_METADATA_KEY]), f"{model_path} (embedded metadata)")
