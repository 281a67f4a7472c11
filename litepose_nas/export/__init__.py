"""Deployment: ONNX export with BN folding, standalone weights, metadata, onnxruntime inference."""
from .artifacts import ARCH_FILENAME, ONNX_FILENAME, WEIGHTS_FILENAME, ExportResult, export_model
from .infer import InferenceReport, PoseEstimator, Prediction, run_inference
from .metadata import METADATA_FILENAME, ExportMetadata, metadata_for_model
from .onnx_export import (
    DEFAULT_OPSET, INPUT_NAME, OUTPUT_NAMES, Parity, check_onnx, export_onnx, fold_batchnorm, measure_parity,
    ort_session,
)
from .weights import load_into, model_from_weights, random_init_model, read_state_dict, save_state_dict

__all__ = [
    "export_model", "ExportResult", "PoseEstimator", "Prediction", "run_inference", "InferenceReport", "ExportMetadata", "metadata_for_model", "export_onnx", "fold_batchnorm",
    "check_onnx", "measure_parity", "ort_session", "Parity", "model_from_weights", "random_init_model",
    "read_state_dict", "load_into", "save_state_dict", "DEFAULT_OPSET", "INPUT_NAME", "OUTPUT_NAMES",
    "ARCH_FILENAME", "WEIGHTS_FILENAME", "ONNX_FILENAME", "METADATA_FILENAME",
]
