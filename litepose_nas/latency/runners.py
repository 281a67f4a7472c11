"""Timing back ends: onnxruntime (default, torch-free) and torch (optional).

A runner times one layer or one whole network: warm-up runs, then repeats until ``max_repeats``
or the per-item time budget is spent (never fewer than ``min_repeats``), and returns the samples.
"""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import InputError, JobError
from ..space.arch import Arch
from .layers import LayerConfig
from .onnx_graphs import layer_input_shapes, layer_model, network_model
from .speed import REFERENCE_LAYER, reference_statistic

RUNTIMES = ("onnxruntime", "torch")


@dataclass
class TimingPolicy:
    warmup: int = 3
    min_repeats: int = 5
    max_repeats: int = 30
    budget_s: float = 0.25  # per item, after warm-up
    # A sample counts as clean when the process got at least this share of the CPU time its
    # threads could use during the call (onnxruntime's threads spin, so a quiet call is ~1.0).
    min_cpu_share: float = 0.0
    max_wait_s: float = 8.0  # per item: stop waiting for clean samples after this


@dataclass
class Timing:
    samples: list[float]  # clean samples (ms), or the fastest ones when too few were clean
    clean: int
    total: int


def _time_calls(call, policy: TimingPolicy, threads: int = 1) -> Timing:
    for _ in range(policy.warmup):
        call()
    clean: list[float] = []
    every: list[float] = []
    start = time.perf_counter()
    while True:
        c0, t0 = time.process_time(), time.perf_counter()
        call()
        t1, c1 = time.perf_counter(), time.process_time()
        wall = t1 - t0
        every.append(wall * 1e3)
        if (c1 - c0) >= policy.min_cpu_share * threads * wall:
            clean.append(wall * 1e3)
        spent = t1 - start
        if len(clean) >= policy.max_repeats:
            break
        if len(clean) >= policy.min_repeats and spent > policy.budget_s:
            break
        if spent > policy.max_wait_s and len(every) >= policy.min_repeats:
            break
    if len(clean) >= min(3, policy.min_repeats):
        return Timing(clean, len(clean), len(every))
    fastest = sorted(every)[: max(policy.min_repeats, 1)]
    return Timing(fastest, len(clean), len(every))


class OrtRunner:
    """onnxruntime CPU, sequential execution, ``threads`` intra-op threads, all graph optimizations."""

    name = "onnxruntime"
    # its worker threads spin while waiting, so an uncontended call uses ~all of its threads
    cpu_share_threshold = 0.8

    def __init__(self, threads: int) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - onnxruntime is a dependency
            raise JobError(f"onnxruntime is not installed ({exc}); pip install onnxruntime") from None
        self._ort = ort
        self.threads = threads
        self.version = ort.__version__
        self.providers = ["CPUExecutionProvider"]

    def _session(self, model):
        ort = self._ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        return ort.InferenceSession(model.SerializeToString(), sess_options=opts, providers=self.providers)

    def _timed(self, model, shapes: list[tuple[int, ...]], policy: TimingPolicy) -> Timing:
        sess = self._session(model)
        rng = np.random.default_rng(0)
        # Inputs and outputs are bound once to preallocated buffers: a fresh multi-megabyte output
        # per run costs page faults that a network's internal (arena-reused) tensors never pay.
        ort = self._ort
        binding = sess.io_binding()
        keep = []
        for i, s in zip(sess.get_inputs(), shapes):
            value = ort.OrtValue.ortvalue_from_numpy(rng.standard_normal(s).astype(np.float32))
            keep.append(value)
            binding.bind_ortvalue_input(i.name, value)
        for o in sess.get_outputs():
            value = ort.OrtValue.ortvalue_from_shape_and_type([int(d) for d in o.shape], np.float32)
            keep.append(value)
            binding.bind_ortvalue_output(o.name, value)
        return _time_calls(lambda: sess.run_with_iobinding(binding), policy, self.threads)

    def time_layer(self, cfg: LayerConfig, policy: TimingPolicy) -> Timing:
        return self._timed(layer_model(cfg), layer_input_shapes(cfg), policy)

    def time_network(self, arch: Arch, num_joints: int, stem_mid: int, policy: TimingPolicy) -> Timing:
        return self._timed(network_model(arch, num_joints, stem_mid), [(1, 3, arch.img_size, arch.img_size)], policy)

    def call_overhead(self, policy: TimingPolicy) -> Timing:
        """Time of one run of a near-empty graph: the fixed cost every timed layer pays once."""
        return self.time_layer(LayerConfig("add", 1, 8, 8), policy)

    def reference_probe(self) -> Callable[[], float]:
        """Times :data:`REFERENCE_LAYER` (see :mod:`.speed`) with the timed items' session settings:
        without spinning threads its wake-ups, not the machine's speed, would dominate."""
        sess = self._session(layer_model(REFERENCE_LAYER))
        rng = np.random.default_rng(0)
        feed = {i.name: rng.standard_normal(s).astype(np.float32)
                for i, s in zip(sess.get_inputs(), layer_input_shapes(REFERENCE_LAYER))}
        return lambda: reference_statistic(lambda: sess.run(None, feed))


class TorchRunner:
    """PyTorch eager CPU (``torch.no_grad``, eval mode). Imports torch only when chosen."""

    name = "torch"
    cpu_share_threshold = 0.0  # torch's threads sleep when idle: CPU share says nothing

    def __init__(self, threads: int) -> None:
        try:
            import torch
        except ImportError:
            raise InputError("--runtime torch needs PyTorch, which is not installed (use --runtime onnxruntime)") from None
        self._torch = torch
        torch.set_num_threads(threads)
        self.threads = threads
        self.version = torch.__version__

    def _module(self, cfg: LayerConfig):
        from torch import nn

        from ..models.layers import ConvBNAct, InvertedResidual, SepConv, batch_norm, deconv

        if cfg.kind == "stem":
            return nn.Sequential(ConvBNAct(cfg.cin, cfg.mid, cfg.kernel, cfg.stride),
                                 ConvBNAct(cfg.mid, cfg.mid, cfg.kernel, 1, groups=cfg.mid),
                                 nn.Conv2d(cfg.mid, cfg.cout, 1, bias=False), batch_norm(cfg.cout))
        if cfg.kind == "block":
            return InvertedResidual(cfg.cin, cfg.cout, cfg.mid, cfg.kernel, cfg.stride)
        if cfg.kind == "deconv":
            return deconv(cfg.cin, cfg.cout)
        if cfg.kind == "final":
            return SepConv(cfg.cin, cfg.cout, cfg.kernel)

        class Pair(nn.Module):
            def __init__(self, post: nn.Module) -> None:
                super().__init__()
                self.post = post

            def forward(self, a, b):
                return self.post(a + b)

        if cfg.kind == "fuse":
            return Pair(nn.Sequential(batch_norm(cfg.cin), nn.ReLU()))
        if cfg.kind == "add":
            return Pair(nn.Identity())
        raise ValueError(f"unknown layer kind {cfg.kind!r}")

    def _timed(self, module, shapes, policy: TimingPolicy) -> Timing:
        torch = self._torch
        module.eval()
        inputs = [torch.randn(*s) for s in shapes]
        with torch.no_grad():
            return _time_calls(lambda: module(*inputs), policy, self.threads)

    def time_layer(self, cfg: LayerConfig, policy: TimingPolicy) -> Timing:
        return self._timed(self._module(cfg), layer_input_shapes(cfg), policy)

    def time_network(self, arch: Arch, num_joints: int, stem_mid: int, policy: TimingPolicy) -> Timing:
        from ..models.litepose import LitePose

        return self._timed(LitePose(arch, num_joints, stem_mid), [(1, 3, arch.img_size, arch.img_size)], policy)

    def call_overhead(self, policy: TimingPolicy) -> Timing:
        return self.time_layer(LayerConfig("add", 1, 8, 8), policy)

    def reference_probe(self) -> Callable[[], float]:
        torch = self._torch
        module = self._module(REFERENCE_LAYER).eval()
        x = torch.randn(*layer_input_shapes(REFERENCE_LAYER)[0])

        def call():
            with torch.no_grad():
                module(x)

        return lambda: reference_statistic(call)


def make_runner(runtime: str, threads: int):
    if runtime == "onnxruntime":
        return OrtRunner(threads)
    if runtime == "torch":
        return TorchRunner(threads)
    raise InputError(f"--runtime {runtime!r} not allowed (allowed: {', '.join(RUNTIMES)})")


def host_description() -> str:
    return f"{platform.machine()} {platform.processor() or platform.system()}".strip()
