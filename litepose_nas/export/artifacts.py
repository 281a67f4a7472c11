"""Write the deployable artefacts of one subnet: arch JSON, weights, ONNX model, metadata.

Everything is built in a hidden staging folder beside the output folder and moved in with one
rename per file only once the ONNX model has passed ``onnx.checker`` and the parity check, so a
failed export leaves nothing behind (and never a half-written file).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError, JobError
from ..models.litepose import LitePose
from .metadata import METADATA_FILENAME, ONNX_METADATA_KEY, ExportMetadata
from .onnx_export import DEFAULT_OPSET, PARITY_TOLERANCE, Parity, check_onnx, export_onnx, measure_parity
from .weights import save_state_dict

ARCH_FILENAME = "arch.json"
WEIGHTS_FILENAME = "weights.pth"
ONNX_FILENAME = "model.onnx"
PARITY_BATCH = 2  # > 1 so the parity run also exercises the dynamic batch axis


@dataclass
class ExportResult:
    """Where the artefacts went and how well onnxruntime matches PyTorch."""

    out_dir: Path
    files: dict[str, Path]
    parity: Parity
    opset: int
    metadata: ExportMetadata

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out_dir),
            "files": {k: str(v) for k, v in self.files.items()},
            "parity": self.parity.max_abs_diff,
            "parity_detail": self.parity.to_dict(),
            "opset": self.opset,
            "num_joints": self.metadata.num_joints,
            "dataset": self.metadata.dataset,
            "img_size": self.metadata.img_size,
            "input": self.metadata.input_name,
            "outputs": list(self.metadata.output_names),
        }


def export_model(
    model: LitePose,
    out_dir: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    source: str = "",
    tolerance: float = PARITY_TOLERANCE,
    parity_seed: int = 0,
    keypoints: Any = None,
) -> ExportResult:
    """Export a static LitePose ``model`` to ``out_dir``.

    Writes ``arch.json`` (original format), ``weights.pth`` (plain state_dict, original layout),
    ``model.onnx`` (BN folded, dynamic batch/height/width, metadata embedded) and
    ``metadata.json``. Raises :class:`JobError` if onnxruntime differs from PyTorch by more than
    ``tolerance``; ``source`` records where the weights came from. ``keypoints`` (a
    :class:`~litepose_nas.keypoints.KeypointSpec`; default ``model.keypoints`` when the loader set it,
    else COCO's / CrowdPose's by joint count) goes into the metadata that ``infer`` decodes with.
    """
    arch = model.arch
    num_joints = model.num_joints
    out_dir = Path(out_dir)
    out_created = not out_dir.exists()
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder (--out must be a folder)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.export-", dir=out_dir.parent))
    try:
        onnx_tmp = staging / ONNX_FILENAME
        export_onnx(model, onnx_tmp, arch, opset=opset)
        opset_found = check_onnx(onnx_tmp)
        size = arch.img_size
        parity = measure_parity(model, onnx_tmp, (PARITY_BATCH, 3, size, size), seed=parity_seed)
        parity = Parity(parity.max_abs_diff, parity.max_abs_reference, parity.input_shape, tolerance)
        if not parity.ok:
            raise JobError(
                f"onnxruntime output differs from PyTorch by {parity.max_abs_diff:.3g} "
                f"(tolerance {tolerance:g}); export aborted"
            )
        import onnxruntime

        extra = {
            "parity": parity.to_dict(),
            "weights_source": source,
            "torch_version": torch.__version__,
            "onnxruntime_version": onnxruntime.__version__,
            "bn_folded": True,
        }
        meta = ExportMetadata.create(arch, num_joints, opset_found, model_file=ONNX_FILENAME, extra=extra,
                                     keypoints=keypoints or getattr(model, "keypoints", None))
        _embed_metadata(onnx_tmp, meta)
        (staging / METADATA_FILENAME).write_text(meta.to_json())
        (staging / ARCH_FILENAME).write_text(arch.to_json())
        save_state_dict(model, staging / WEIGHTS_FILENAME)

        out_dir.mkdir(parents=True, exist_ok=True)
        files = {}
        for key, name in (("arch", ARCH_FILENAME), ("weights", WEIGHTS_FILENAME),
                          ("onnx", ONNX_FILENAME), ("metadata", METADATA_FILENAME)):
            os.replace(staging / name, out_dir / name)
            files[key] = out_dir / name
    except BaseException:
        if out_created and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(out_dir=out_dir, files=files, parity=parity, opset=opset_found, metadata=meta)


def _embed_metadata(onnx_path: Path, meta: ExportMetadata) -> None:
    """Copy the metadata into the model's ``metadata_props`` so the .onnx file is self-describing."""
    import onnx

    model = onnx.load(str(onnx_path))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key = ONNX_METADATA_KEY
    entry.value = json.dumps(meta.to_dict())
    model.producer_name = "litepose-nas"
    onnx.save(model, str(onnx_path))
