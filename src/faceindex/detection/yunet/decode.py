"""Decode the raw outputs of the YuNet 2023mar face detector into boxes, scores, landmarks.

YuNet has no post-processing inside its graph: OpenCV's ``FaceDetectorYN`` (in
``modules/objdetect/src/face_detect.cpp``) decodes it in C++, and this module does the same in
numpy so that the float32 graph of :mod:`faceindex.models.onnx_float` can run in
onnxruntime (:mod:`faceindex.detection.yunet.detector` runs it). The semantics follow that
implementation, which is the reference.

Network input (what ``FaceDetectorYN.detect`` feeds): ``dnn::blobFromImage(padded)`` with the
defaults, i.e. the image as OpenCV holds it, **BGR**, as float32 0-255 (no mean, no scaling),
NCHW, with zero rows and columns added at the bottom and right so that height and width are
multiples of 32. :func:`input_blob` builds exactly that from an RGB image. Since nothing is
resized, boxes come back in the pixels of the original image.

Outputs: for each stride ``s`` in 8, 16, 32 there is one anchor per cell of an
``(H/s) x (W/s)`` grid, in row-major order, and four tensors ``cls_s`` (N,1), ``obj_s``
(N,1), ``bbox_s`` (N,4) and ``kps_s`` (N,10), each with a leading batch axis. For the cell in
row ``r``, column ``c``:

* score = ``sqrt(clip(cls, 0, 1) * clip(obj, 0, 1))`` (both are sigmoid outputs already);
* box centre = ``((c + dx) * s, (r + dy) * s)``, size = ``(exp(dw) * s, exp(dh) * s)``;
* landmark k = ``((c + kx_k) * s, (r + ky_k) * s)``.

Landmark order, as OpenCV documents it and as measured on the fixture photos: the person's
right eye, left eye, nose tip, right mouth corner, left mouth corner. In an ordinary
(unmirrored) photo of a frontal face, the person's right eye is on the image's left, so
point 0 has the smaller x of the two eyes; this is the order and orientation of the 5-point
ArcFace template that SFace's alignment uses.

Candidates with score below the threshold are dropped, the ``top_k`` best are kept, and greedy
non-maximum suppression removes any box whose IoU with a better kept box exceeds ``nms_iou``,
as ``cv::dnn::NMSBoxes`` does. One deliberate difference: OpenCV truncates boxes to integer
rectangles before computing IoU; here IoU is computed on the float boxes, which differs only
for boxes whose overlap sits within a pixel of the threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np
import numpy.typing as npt

STRIDES: Final = (8, 16, 32)
#: Height and width of the network input must be multiples of this (the coarsest stride).
INPUT_DIVISOR: Final = 32
OUTPUT_NAMES: Final = tuple(
    f"{kind}_{stride}" for kind in ("cls", "obj", "bbox", "kps") for stride in STRIDES
)
LANDMARK_NAMES: Final = (
    "right_eye",
    "left_eye",
    "nose_tip",
    "right_mouth_corner",
    "left_mouth_corner",
)

FloatArray = npt.NDArray[np.float32]


def padded_size(height: int, width: int) -> tuple[int, int]:
    """Smallest multiples of :data:`INPUT_DIVISOR` that hold an image of this size."""
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    pad = INPUT_DIVISOR
    return ((height - 1) // pad + 1) * pad, ((width - 1) // pad + 1) * pad


def input_blob(image_rgb: npt.NDArray[np.uint8]) -> FloatArray:
    """Turn an RGB uint8 (H, W, 3) image into YuNet's (1, 3, H', W') float32 BGR input.

    H' and W' are H and W rounded up to multiples of 32; the added bottom rows and right
    columns are zero, as OpenCV's ``copyMakeBorder`` with a constant border makes them.
    """
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {image_rgb.shape}")
    height, width = image_rgb.shape[:2]
    padded_h, padded_w = padded_size(height, width)
    blob = np.zeros((1, 3, padded_h, padded_w), dtype=np.float32)
    # YuNet was trained on OpenCV's BGR channel order: reverse RGB while copying.
    blob[0, :, :height, :width] = image_rgb[:, :, ::-1].transpose(2, 0, 1)
    return blob


def decode(
    outputs: Mapping[str, npt.NDArray[np.floating]],
    *,
    input_hw: tuple[int, int],
    score_threshold: float,
    nms_iou: float,
    top_k: int,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Decode one image's raw YuNet outputs into faces, best first.

    ``outputs`` maps the twelve output names to arrays with a leading batch axis of 1 (or
    none). ``input_hw`` is the (height, width) of the network input, multiples of 32.
    ``top_k`` caps the candidates that enter NMS (0 or less: no cap), hence also the faces
    returned. Returns boxes (N, 4) as x1, y1, x2, y2 in input pixels, scores (N,) in [0, 1],
    and landmarks (N, 5, 2) as x, y in input pixels, in :data:`LANDMARK_NAMES` order.
    """
    height, width = input_hw
    if height <= 0 or width <= 0 or height % INPUT_DIVISOR or width % INPUT_DIVISOR:
        raise ValueError(f"input_hw must be positive multiples of {INPUT_DIVISOR}, got {input_hw}")
    missing = [name for name in OUTPUT_NAMES if name not in outputs]
    if missing:
        raise ValueError(f"YuNet outputs missing: {', '.join(missing)}")

    all_boxes: list[FloatArray] = []
    all_scores: list[FloatArray] = []
    all_landmarks: list[FloatArray] = []
    for stride in STRIDES:
        rows, cols = height // stride, width // stride
        cells = rows * cols
        cls = _level(outputs, f"cls_{stride}", cells, 1)[:, 0]
        obj = _level(outputs, f"obj_{stride}", cells, 1)[:, 0]
        scores = np.sqrt(np.clip(cls, 0.0, 1.0) * np.clip(obj, 0.0, 1.0))
        (index,) = np.nonzero(scores >= score_threshold)
        if index.size == 0:
            continue
        col = (index % cols).astype(np.float32)
        row = (index // cols).astype(np.float32)
        step = np.float32(stride)

        deltas = _level(outputs, f"bbox_{stride}", cells, 4)[index]
        centre_x = (col + deltas[:, 0]) * step
        centre_y = (row + deltas[:, 1]) * step
        box_w = np.exp(deltas[:, 2]) * step
        box_h = np.exp(deltas[:, 3]) * step
        x1 = centre_x - box_w / 2
        y1 = centre_y - box_h / 2
        all_boxes.append(np.stack([x1, y1, x1 + box_w, y1 + box_h], axis=1))

        points = _level(outputs, f"kps_{stride}", cells, 10)[index].reshape(-1, 5, 2)
        landmarks = np.empty_like(points)
        landmarks[:, :, 0] = (points[:, :, 0] + col[:, None]) * step
        landmarks[:, :, 1] = (points[:, :, 1] + row[:, None]) * step
        all_landmarks.append(landmarks)
        all_scores.append(scores[index])

    if not all_scores:
        return (
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.float32),
            np.zeros((0, 5, 2), np.float32),
        )
    boxes = np.concatenate(all_boxes).astype(np.float32)
    scores = np.concatenate(all_scores).astype(np.float32)
    landmarks = np.concatenate(all_landmarks).astype(np.float32)
    keep = nms(boxes, scores, iou_threshold=nms_iou, top_k=top_k)
    return boxes[keep], scores[keep], landmarks[keep]


def _level(
    outputs: Mapping[str, npt.NDArray[np.floating]], name: str, cells: int, width: int
) -> FloatArray:
    array = np.asarray(outputs[name], dtype=np.float32)
    if array.ndim == 3:
        if array.shape[0] != 1:
            raise ValueError(f"{name} has batch size {array.shape[0]}; decode one image at a time")
        array = array[0]
    if array.size != cells * width:
        raise ValueError(
            f"{name} has shape {array.shape}, expected ({cells}, {width}) for this input size"
        )
    return array.reshape(cells, width)


def nms(
    boxes: npt.NDArray[np.floating],
    scores: npt.NDArray[np.floating],
    *,
    iou_threshold: float,
    top_k: int = 0,
) -> npt.NDArray[np.intp]:
    """Greedy non-maximum suppression; returns indices of kept boxes, best score first.

    Boxes are (N, 4) x1, y1, x2, y2. Like ``cv::dnn::NMSBoxes`` (eta 1): candidates are
    taken in decreasing score (ties in input order), only the first ``top_k`` when
    ``top_k > 0``, and a candidate is kept unless its IoU with an already kept box is
    greater than ``iou_threshold``.
    """
    if boxes.ndim != 2 or boxes.shape[1] != 4 or scores.shape != (boxes.shape[0],):
        raise ValueError(f"expected boxes (N, 4) and scores (N,), got {boxes.shape} {scores.shape}")
    order = np.argsort(-scores, kind="stable")
    if top_k > 0:
        order = order[:top_k]
    x1, y1, x2, y2 = (boxes[:, i].astype(np.float64) for i in range(4))
    areas = np.maximum(x2 - x1, 0.0) * np.maximum(y2 - y1, 0.0)
    kept: list[int] = []
    while order.size:
        best = int(order[0])
        kept.append(best)
        rest = order[1:]
        inter_w = np.maximum(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0.0)
        inter_h = np.maximum(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0.0)
        inter = inter_w * inter_h
        union = areas[best] + areas[rest] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[iou <= iou_threshold]
    return np.asarray(kept, dtype=np.intp)
