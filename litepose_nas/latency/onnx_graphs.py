"""ONNX graphs of single layers and of whole LitePose networks, built with ``onnx.helper`` only.

No torch: the profiler must run on a Raspberry Pi or a Jetson with numpy, onnx and onnxruntime.
Single layers and whole networks share the same builder functions, so a table row times exactly
the operators the network runs (conv + BN + ReLU6, which onnxruntime fuses the same way in both).
Initializer names follow the PyTorch model's state_dict keys, so a network can also be filled with
real trained weights (``weights=`` a ``{key: array}`` dict).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..space.arch import Arch
from ..space.plan import network_plan
from ..space.structure import BN_EPS, DECONV_KERNEL
from .layers import LayerConfig

OPSET = 13
# IR 7 (onnxruntime >= 1.3) so old runtimes on boards still load the graphs
IR_VERSION = 7


@dataclass
class GraphBuilder:
    """Collects nodes and initializers; weights come from ``weights`` or a seeded random draw."""

    weights: dict[str, np.ndarray] | None = None
    seed: int = 0
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    _count: int = 0

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}__{self._count}"

    def init(self, key: str, shape: tuple[int, ...], kind: str = "weight", fan_in: int = 1) -> str:
        from onnx import numpy_helper

        if self.weights is not None and key in self.weights:
            value = np.asarray(self.weights[key], dtype=np.float32).reshape(shape)
        elif kind == "weight":
            value = self._rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), size=shape).astype(np.float32)
        elif kind in ("bn_weight", "running_var"):
            value = np.ones(shape, dtype=np.float32)
        else:
            value = np.zeros(shape, dtype=np.float32)
        self.initializers.append(numpy_helper.from_array(value, name=key))
        return key

    def node(self, op: str, inputs: list[str], hint: str, **attrs) -> str:
        from onnx import helper

        out = self.name(hint)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    # ---------------------------------------------------------------- primitive layers
    def conv(self, x: str, key: str, cin: int, cout: int, kernel: int, stride: int = 1, depthwise: bool = False) -> str:
        groups = cin if depthwise else 1
        w = self.init(key, (cout, cin // groups, kernel, kernel), fan_in=(cin // groups) * kernel * kernel)
        pad = kernel // 2
        return self.node("Conv", [x, w], key, kernel_shape=[kernel, kernel], strides=[stride, stride],
                         pads=[pad] * 4, group=groups)

    def bn(self, x: str, prefix: str, channels: int) -> str:
        names = [
            self.init(f"{prefix}.weight", (channels,), "bn_weight"),
            self.init(f"{prefix}.bias", (channels,), "zero"),
            self.init(f"{prefix}.running_mean", (channels,), "zero"),
            self.init(f"{prefix}.running_var", (channels,), "running_var"),
        ]
        return self.node("BatchNormalization", [x, *names], prefix, epsilon=BN_EPS)

    def relu6(self, x: str) -> str:
        if "relu6_min" not in {i.name for i in self.initializers}:
            from onnx import numpy_helper

            self.initializers.append(numpy_helper.from_array(np.array(0.0, dtype=np.float32), "relu6_min"))
            self.initializers.append(numpy_helper.from_array(np.array(6.0, dtype=np.float32), "relu6_max"))
        return self.node("Clip", [x, "relu6_min", "relu6_max"], "relu6")

    def conv_bn_act(self, x: str, prefix: str, cin: int, cout: int, kernel: int, stride: int = 1,
                    depthwise: bool = False, act: bool = True) -> str:
        y = self.bn(self.conv(x, f"{prefix}.0.weight", cin, cout, kernel, stride, depthwise), f"{prefix}.1", cout)
        return self.relu6(y) if act else y

    def deconv(self, x: str, key: str, cin: int, cout: int) -> str:
        w = self.init(key, (cin, cout, DECONV_KERNEL, DECONV_KERNEL), fan_in=cin * DECONV_KERNEL * DECONV_KERNEL // 4)
        pad = (DECONV_KERNEL - 2) // 2
        return self.node("ConvTranspose", [x, w], key, kernel_shape=[DECONV_KERNEL] * 2, strides=[2, 2], pads=[pad] * 4)

    # ---------------------------------------------------------------- LitePose layers
    def stem(self, x: str, cfg: LayerConfig, prefix: str = "first") -> str:
        y = self.conv_bn_act(x, f"{prefix}.0", cfg.cin, cfg.mid, cfg.kernel, cfg.stride)
        y = self.conv_bn_act(y, f"{prefix}.1", cfg.mid, cfg.mid, cfg.kernel, 1, depthwise=True)
        y = self.conv(y, f"{prefix}.2.weight", cfg.mid, cfg.cout, 1)
        return self.bn(y, f"{prefix}.3", cfg.cout)

    def block(self, x: str, cfg: LayerConfig, prefix: str) -> str:
        y = self.conv_bn_act(x, f"{prefix}.inv", cfg.cin, cfg.mid, 1)
        y = self.conv_bn_act(y, f"{prefix}.depth_conv", cfg.mid, cfg.mid, cfg.kernel, cfg.stride, depthwise=True)
        y = self.conv_bn_act(y, f"{prefix}.point_conv", cfg.mid, cfg.cout, 1, act=False)
        return self.node("Add", [x, y], f"{prefix}.add") if cfg.residual else y

    def fuse(self, a: str, b: str, channels: int, prefix: str) -> str:
        y = self.bn(self.node("Add", [a, b], f"{prefix}.add"), f"{prefix}.0", channels)
        return self.node("Relu", [y], f"{prefix}.relu")

    def final(self, x: str, cfg: LayerConfig, prefix: str) -> str:
        y = self.bn(self.conv(x, f"{prefix}.conv.0.weight", cfg.cin, cfg.cin, cfg.kernel, depthwise=True),
                    f"{prefix}.conv.1", cfg.cin)
        y = self.node("Relu", [y], f"{prefix}.relu")
        return self.conv(y, f"{prefix}.conv.3.weight", cfg.cin, cfg.cout, 1)

    def model(self, inputs: list[tuple[str, tuple[int, ...]]], outputs: list[tuple[str, tuple[int, ...]]],
              graph_name: str):
        from onnx import TensorProto, helper

        graph = helper.make_graph(
            self.nodes, graph_name,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in inputs],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s in outputs],
            initializer=self.initializers,
        )
        m = helper.make_model(graph, producer_name="litepose-nas", opset_imports=[helper.make_opsetid("", OPSET)])
        m.ir_version = IR_VERSION
        return m


def layer_input_shapes(cfg: LayerConfig) -> list[tuple[int, ...]]:
    """Shapes (batch 1, NCHW) of the inputs of one layer's graph."""
    if cfg.kind in ("fuse", "add"):
        return [(1, cfg.cin, cfg.h, cfg.h)] * 2
    return [(1, cfg.cin, cfg.h, cfg.h)]


def layer_output_shape(cfg: LayerConfig) -> tuple[int, ...]:
    if cfg.kind == "deconv":
        return (1, cfg.cout, 2 * cfg.h, 2 * cfg.h)
    h = (cfg.h - 1) // cfg.stride + 1
    return (1, cfg.cout, h, h)


def layer_model(cfg: LayerConfig, seed: int = 0):
    """A one-layer ONNX model; its inputs are named ``x0`` (and ``x1``)."""
    g = GraphBuilder(seed=seed)
    shapes = layer_input_shapes(cfg)
    names = [f"x{i}" for i in range(len(shapes))]
    if cfg.kind == "stem":
        out = g.stem(names[0], cfg, "layer")
    elif cfg.kind == "block":
        out = g.block(names[0], cfg, "layer")
    elif cfg.kind == "deconv":
        out = g.deconv(names[0], "layer.weight", cfg.cin, cfg.cout)
    elif cfg.kind == "fuse":
        out = g.fuse(names[0], names[1], cfg.cin, "layer")
    elif cfg.kind == "final":
        out = g.final(names[0], cfg, "layer")
    elif cfg.kind == "add":
        out = g.node("Add", names, "layer.add")
    else:
        raise ValueError(f"unknown layer kind {cfg.kind!r}")
    return g.model(list(zip(names, shapes)), [(out, layer_output_shape(cfg))], cfg.key)


def network_model(arch: Arch, num_joints: int = 17, stem_mid: int | None = None,
                  weights: dict[str, np.ndarray] | None = None, seed: int = 0):
    """The whole network of ``arch`` (input ``image`` [1, 3, S, S]; one output per output of the
    plan), built layer by layer from its :class:`~litepose_nas.space.plan.NetworkPlan`, with the
    initializer names of :class:`litepose_nas.models.LitePose`. ``stem_mid`` overrides the
    architecture's stem width."""
    if stem_mid is not None:
        arch = replace(arch, stem_mid_channels=stem_mid)
    plan = network_plan(arch, num_joints)
    g = GraphBuilder(weights=weights, seed=seed)
    tensors: dict[str, str] = {"image": "image"}
    outputs = []
    features = plan.feature_producers()
    for layer in plan.layers:
        ins = [tensors[name] for name in layer.inputs]
        side = layer.h_out if layer.kind in ("fuse", "add") else layer.h_in
        cfg = LayerConfig(layer.kind, side, layer.cin, layer.cout, layer.mid, layer.kernel, layer.stride)
        if layer.kind == "stem":
            out = g.stem(ins[0], cfg, layer.name)
        elif layer.kind == "block":
            out = g.block(ins[0], cfg, layer.name)
        elif layer.kind == "deconv":
            out = g.deconv(ins[0], f"{layer.name}.weight", layer.cin, layer.cout)
        elif layer.kind == "fuse":
            out = g.fuse(ins[0], ins[1], layer.cout, layer.name)
        elif layer.kind == "final":
            out = g.final(ins[0], cfg, layer.name)
        else:  # add: one output of the network
            out = g.node("Add", ins, layer.name)
            outputs.append((out, (1, layer.cout, layer.h_out, layer.h_out)))
        tensors[layer.name] = out
        if layer.name in features:
            tensors[features[layer.name]] = out
    return g.model([("image", (1, 3, arch.img_size, arch.img_size))], outputs, "litepose")

