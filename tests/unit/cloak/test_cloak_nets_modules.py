"""The torch translations against onnxruntime on small synthetic networks (no real weights):
dlib's layer walk (tags, skips, zero-filling add_prev, unpadded stride 2) and the ONNX op
mapping used for SFace (Conv+BN folding, PRelu, Dropout, Gemm+BN)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

torch = pytest.importorskip("torch")

from faceindex.cloak.nets import load_torch_embedders  # noqa: E402
from faceindex.cloak.nets.dlib_resnet import DlibResnet  # noqa: E402
from faceindex.cloak.nets.sface import OnnxChain, UnsupportedGraphError  # noqa: E402
from faceindex.embedding.dlib_resnet import dat as dd  # noqa: E402
from faceindex.embedding.dlib_resnet.onnx_graph import build_graph  # noqa: E402
from faceindex.errors import InvalidInputError  # noqa: E402

RNG = np.random.default_rng(7)


def _f32(*shape: int, scale: float = 0.3) -> np.ndarray:
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def _conv(n: int, c: int, k: int, stride: int, pad: int) -> dd.Conv:
    return dd.Conv(_f32(n, c, k, k), _f32(n), (stride, stride), (pad, pad))


def _affine(n: int) -> dd.Affine:
    return dd.Affine((1 + _f32(n, scale=0.1)), _f32(n, scale=0.1), per_channel=True)


def _block(n: int, c: int, stride: int) -> list[dd.Layer]:
    pad = 0 if stride == 2 else 1  # dlib's down-sampling convolutions have no padding
    return [
        _conv(n, c, 3, stride, pad),
        _affine(n),
        dd.Relu(),
        _conv(n, n, 3, 1, 1),
        _affine(n),
    ]


def _tiny_dlib_net() -> dd.DlibNet:
    """dlib's ResNet shape in miniature: stem, one residual block, one down-sampling block
    (40 -> 17 -> 8, then a 3x3 branch of 6 channels against a 4x4 pooled shortcut of 4:
    add_prev zero-fills rows, columns and channels), head."""
    layers: list[dd.Layer] = [
        _conv(4, 3, 7, 2, 0),
        _affine(4),
        dd.Relu(),
        dd.Pool(is_max=True, window=(3, 3), stride=(2, 2), padding=(0, 0)),
        dd.TagOrSkip(),
        *_block(4, 4, 1),
        dd.AddPrev(),
        dd.Relu(),
        dd.TagOrSkip(),
        *_block(6, 4, 2),
        dd.TagOrSkip(),
        dd.TagOrSkip(),
        dd.Pool(is_max=False, window=(2, 2), stride=(2, 2), padding=(0, 0)),
        dd.AddPrev(),
        dd.Relu(),
        dd.Pool(is_max=False, window=(0, 0), stride=(1, 1), padding=(0, 0)),
        dd.FullyConnected(_f32(6, 5), None),
    ]
    means = np.array([122.782, 117.001, 104.298], dtype=np.float32)
    return dd.DlibNet(dd.InputRgb(means, 40, 40), tuple(layers), dd.MetricLoss(0.04, 0.6))


def _l2(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_dlib_module_matches_the_onnx_graph() -> None:
    net = _tiny_dlib_net()
    chips = RNG.integers(0, 256, (3, 40, 40, 3), dtype=np.uint8)
    session = ort.InferenceSession(build_graph(net).SerializeToString())
    (ref,) = session.run(None, {"chips": chips})
    module = DlibResnet(net)
    with torch.no_grad():
        out = module(torch.from_numpy(chips.astype(np.float32).transpose(0, 3, 1, 2).copy()))
    np.testing.assert_allclose(out.numpy(), _l2(ref), atol=1e-5)
    assert not module.training


def test_dlib_module_without_input_folding_agrees() -> None:
    net = _tiny_dlib_net()
    first = net.layers[0]
    assert isinstance(first, dd.Conv)
    # A padded first convolution cannot take the input normalisation into its weights.
    padded = dd.Conv(first.filters, first.bias, first.stride, (1, 1))
    unfolded = dd.DlibNet(net.input, (padded, *net.layers[1:]), net.loss)
    module = DlibResnet(unfolded)
    assert not module.fold_input
    chips = RNG.integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    (ref,) = ort.InferenceSession(build_graph(unfolded).SerializeToString()).run(
        None, {"chips": chips}
    )
    with torch.no_grad():
        out = module(torch.from_numpy(chips.astype(np.float32).transpose(0, 3, 1, 2).copy()))
    np.testing.assert_allclose(out.numpy(), _l2(ref), atol=1e-5)


def _bn(g: list[onnx.NodeProto], inits: list[onnx.TensorProto], x: str, n: int, out: str) -> None:
    names = [f"{out}_{p}" for p in ("scale", "bias", "mean", "var")]
    values = [1 + _f32(n, scale=0.1), _f32(n), _f32(n), np.abs(_f32(n)) + 0.5]
    inits += [numpy_helper.from_array(v, k) for k, v in zip(names, values, strict=True)]
    g.append(helper.make_node("BatchNormalization", [x, *names], [out], epsilon=1e-3))


def _tiny_sface_graph() -> onnx.ModelProto:
    """SFace's ops in miniature: normalise, Conv+BN+PRelu (plain and depthwise, stride 2),
    a lone BN, Dropout, Flatten, Gemm+BN."""
    nodes: list[onnx.NodeProto] = []
    inits = [
        numpy_helper.from_array(np.array([127.5], np.float32), "sub"),
        numpy_helper.from_array(np.array([0.0078125], np.float32), "mul"),
        numpy_helper.from_array(_f32(8, 3, 3, 3), "w1"),
        numpy_helper.from_array(_f32(8, 1, 3, 3), "w2"),
        numpy_helper.from_array(_f32(8, 1, 1, scale=0.2), "slope1"),
        numpy_helper.from_array(_f32(8, 1, 1, scale=0.2), "slope2"),
        numpy_helper.from_array(_f32(5, 8 * 6 * 6), "fc_w"),
        numpy_helper.from_array(_f32(5), "fc_b"),
    ]
    nodes.append(helper.make_node("Sub", ["data", "sub"], ["centred"]))
    nodes.append(helper.make_node("Mul", ["centred", "mul"], ["scaled"]))
    nodes.append(helper.make_node("Conv", ["scaled", "w1"], ["c1"], pads=[1, 1, 1, 1]))
    _bn(nodes, inits, "c1", 8, "b1")
    nodes.append(helper.make_node("PRelu", ["b1", "slope1"], ["r1"]))
    nodes.append(
        helper.make_node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2], group=8)
    )
    _bn(nodes, inits, "c2", 8, "b2")
    nodes.append(helper.make_node("PRelu", ["b2", "slope2"], ["r2"]))
    _bn(nodes, inits, "r2", 8, "b3")
    ratio = helper.make_tensor("ratio_value", TensorProto.FLOAT, [], [0.4])
    nodes.append(helper.make_node("Constant", [], ["ratio"], value=ratio))
    nodes.append(helper.make_node("Dropout", ["b3", "ratio"], ["d"]))
    nodes.append(helper.make_node("Flatten", ["d"], ["flat"], axis=1))
    nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["fc"], transB=1))
    _bn(nodes, inits, "fc", 5, "out")
    graph = helper.make_graph(
        nodes,
        "tiny_sface",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 3, 12, 12])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 5])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_onnx_mapping_matches_onnxruntime_and_folds_batch_norms() -> None:
    model = _tiny_sface_graph()
    x = RNG.uniform(0, 255, (2, 3, 12, 12)).astype(np.float32)
    (ref,) = ort.InferenceSession(model.SerializeToString()).run(None, {"data": x})
    chain = OnnxChain(model)
    with torch.no_grad():
        out = chain(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    # Conv+BN twice and Gemm+BN once are folded; the BN after a PRelu stays; Dropout and
    # Constant vanish: Sub, Mul, Conv, PRelu, Conv, PRelu, BN, Flatten, Gemm.
    assert len(chain.steps) == 9


def test_onnx_mapping_gradients_flow_to_the_input() -> None:
    chain = OnnxChain(_tiny_sface_graph())
    x = torch.from_numpy(RNG.uniform(0, 255, (1, 3, 12, 12)).astype(np.float32))
    x.requires_grad_(True)
    chain(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_onnx_mapping_refuses_unknown_ops() -> None:
    node = helper.make_node("Softmax", ["data"], ["out"])
    graph = helper.make_graph(
        [node],
        "softmax",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 4])],
    )
    with pytest.raises(UnsupportedGraphError, match="Softmax"):
        OnnxChain(helper.make_model(graph))


def test_unknown_model_ids_are_refused_with_the_valid_ones() -> None:
    with pytest.raises(InvalidInputError, match="sface-2021dec"):
        load_torch_embedders(["arcface-r100"])


class _MeanColour(torch.nn.Module):
    """A stand-in net: the chip's mean colour, L2-normalised."""

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(chips.mean((2, 3)), dim=1)


def test_torch_embedder_cuts_and_embeds_with_its_own_alignment() -> None:
    from faceindex.cloak.nets import TorchEmbedder, image_tensor
    from faceindex.types import BBox, Face

    image = np.zeros((60, 80, 3), dtype=np.uint8)
    image[:, 40:] = (200, 10, 10)  # right half red
    face = Face(BBox(40, 0, 80, 40), 0.9)
    calls: list[Face] = []

    def align(img: np.ndarray, f: Face) -> np.ndarray:
        calls.append(f)
        return np.array([[1.0, 0.0, -f.bbox.x1], [0.0, 1.0, -f.bbox.y1]])

    emb = TorchEmbedder("mean-colour", 20, _MeanColour(), 0.5, border="zeros", aligner=align)
    matrix = emb.chip_matrix(image, face)
    assert calls == [face]
    x = image_tensor(image)
    assert emb.chip(x, matrix).shape == (1, 3, 20, 20)
    vectors = emb.embed(x, [matrix, matrix])
    assert vectors.shape == (2, 3)
    np.testing.assert_allclose(
        vectors[0].numpy(), [200, 10, 10] / np.linalg.norm([200, 10, 10]), atol=1e-6
    )
    with pytest.raises(InvalidInputError):
        emb.embed(x, [])
    with pytest.raises(InvalidInputError):
        TorchEmbedder("bare", 20, _MeanColour(), 0.5).chip_matrix(image, face)
    with pytest.raises(InvalidInputError):
        image_tensor(image[:, :, 0])
