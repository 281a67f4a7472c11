"""Deployment: ONNX export with BN folding, standalone weights, metadata, onnxruntime inference.

Names load on first use, so ``litepose_nas.export.infer`` and the metadata reader run on a base
install without torch; export, weights and parity need the ``torch`` extra.
"""
from __future__ import annotations

from .._lazy import lazy_getattr

_WHERE = {
    "artifacts": ["ARCH_FILENAME", "ONNX_FILENAME", "WEIGHTS_FILENAME", "ExportResult", "export_model"],
    "infer": ["InferenceReport", "PoseEstimator", "Prediction", "run_inference"],
    "metadata": ["METADATA_FILENAME", "ExportMetadata", "metadata_for_model"],
    "interface": ["INPUT_NAME", "OUTPUT_NAMES", "ort_session"],
    "onnx_export": ["DEFAULT_OPSET", "Parity", "check_onnx", "export_onnx", "fold_batchnorm", "measure_parity"],
    "weights": ["load_into", "model_from_weights", "random_init_model", "read_state_dict", "save_state_dict"],
}
_LAZY = {name: f"{__name__}.{module}" for module, names in _WHERE.items() for name in names}

__all__ = sorted(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY)
