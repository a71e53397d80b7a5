"""YuNet (OpenCV Zoo, 2023mar), everything about it in one place.

- :mod:`~faceindex.detection.yunet.detector`: :class:`YuNetDetector`, the ``yunet`` backend
  (scale handling, tight-crop retry, onnxruntime session);
- :mod:`~faceindex.detection.yunet.decode`: the network's raw outputs to boxes, scores and
  landmarks, with NMS, as OpenCV's ``FaceDetectorYN`` does it (numpy only).

The int8 -> float32 graph conversion it loads through is shared with SFace, so it lives in
:mod:`faceindex.models.onnx_float`. Importing this package imports neither onnxruntime nor
OpenCV: they load with the model.
"""

from __future__ import annotations

from faceindex.detection.yunet.detector import YuNetDetector

__all__ = ["YuNetDetector"]
