"""What running an exported model needs, without torch: the graph's input and output names, the
network's total stride, and an onnxruntime session (the base install's inference path)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..space.arch import Arch

INPUT_NAME = "image"
OUTPUT_NAMES = ("heatmaps_tags", "heatmaps")  # a network with one head level has only the first


def output_names(arch: Arch) -> tuple[str, ...]:
    """The graph's output names: heatmaps + tags, then heatmaps (one per output of the network plan)."""
    return OUTPUT_NAMES[:len(arch.wiring.output_levels)]


def total_stride(arch: Arch) -> int:
    """Downsampling of the deepest feature: 2 (stem) times every stage stride."""
    return 2 * int(np.prod(arch.strides))


def ort_session(path: str | Path, threads: int | None = None):
    """A CPU onnxruntime session (``threads`` pins intra-op threads; inter-op stays at 1)."""
    import onnxruntime as ort

    from ..errors import InputError
    from ..io import check_readable_file

    check_readable_file(path, "ONNX model", InputError)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
