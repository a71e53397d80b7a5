"""YuNet (OpenCV Zoo, 2023mar): a fast CNN face detector with five landmarks (``yunet``).

The shipped int8 graph is converted to float32 once at load
(:mod:`faceindex.models.onnx_float`) and run in onnxruntime with dynamic input size;
decoding and NMS follow OpenCV's ``FaceDetectorYN`` (:mod:`faceindex.detection.yunet.decode`).

Scale handling, measured on the dev photos:
- large photos are shrunk so the longer side is at most ``max_side`` (YuNet finds faces
  down to ~10 px, and cost grows with pixels);
- small photos whose longer side is under ``upscale_below`` are enlarged, because faces of
  a few dozen pixels are easier to find and landmark at twice the size;
- tight face crops (such as 112x112 aligned crops) defeat detectors trained on faces with
  context around them, so a photo where nothing was found and whose longer side is at most
  ``tight_crop_max_side`` is retried once with a border of ``tight_crop_pad`` of its size on
  every side. A photo with no face still gives no face: the retry adds only flat border;
- a photo of up to ``retry_upscale_below`` pixels (longer side) where nothing was found is
  retried once at twice the scale: small faces in a mid-sized frame are found that way.
  Measured on ``obama_small.jpg`` shrunk and pasted into a grey 640x480 frame: at the first
  scale the face is found down to 20 px (a 1/6 shrink); with the retry down to 8 px (1/14),
  at scores 0.81-0.92; blank frames and the other fixture photos give the same faces;
- :meth:`YuNetDetector.detect_small` gives the faces the ``min_face_px`` gate dropped, so
  the pipeline can say "face too small (14 px, need 20)" instead of "no face".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from faceindex.detection import sort_largest_first
from faceindex.detection.yunet.decode import decode, input_blob
from faceindex.models import catalog
from faceindex.models.lazy import Lazy
from faceindex.types import BBox, Face, ImageArray, Landmarks, LandmarkScheme


class YuNetDetector:
    name = "yunet"

    def __init__(
        self,
        *,
        min_face_px: int = 20,
        score_threshold: float = 0.7,
        nms_iou: float = 0.3,
        top_k: int = 500,
        max_side: int = 1280,
        upscale_below: int = 400,
        tight_crop_max_side: int = 320,
        tight_crop_pad: float = 0.5,
        retry_upscale_below: int = 960,
        threads: int | None = None,
    ) -> None:
        self.min_face_px = min_face_px
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.top_k = top_k
        self.max_side = max_side
        self.upscale_below = upscale_below
        self.tight_crop_max_side = tight_crop_max_side
        self.tight_crop_pad = tight_crop_pad
        self.retry_upscale_below = retry_upscale_below
        self.threads = threads
        self._session: Lazy[Any] = Lazy(self._load)

    def _load(self) -> Any:
        from faceindex.models.onnx_float import load_float32_session

        return load_float32_session(
            catalog.YUNET.verified_path(), threads=self.threads, dynamic_hw=True
        )

    def warm_up(self) -> None:
        self._run(np.zeros((64, 64, 3), np.uint8))

    def detect(self, image: ImageArray) -> tuple[Face, ...]:
        return self._gated(image, small=False)

    def detect_small(self, image: ImageArray) -> tuple[Face, ...]:
        """The faces :meth:`detect` drops for a shorter side under ``min_face_px``, largest
        first (to say why a photo has no usable face)."""
        return self._gated(image, small=True)

    def _gated(self, image: ImageArray, *, small: bool) -> tuple[Face, ...]:
        h, w = image.shape[:2]
        faces = self._detect_scaled(image, 0, 0)
        if not faces and max(h, w) <= self.tight_crop_max_side:
            pad = round(self.tight_crop_pad * max(h, w))
            padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
            faces = self._detect_scaled(padded, pad, pad)
        if not faces and max(h, w) <= self.retry_upscale_below:
            faces = self._detect_scaled(image, 0, 0, boost=2.0)
        kept = []
        for face in faces:
            box = face.bbox.clipped(w, h)
            if (min(box.width, box.height) < self.min_face_px) == small:
                kept.append(Face(bbox=box, score=face.score, landmarks=face.landmarks))
        return sort_largest_first(kept)

    def _detect_scaled(
        self, image: ImageArray, off_x: int, off_y: int, *, boost: float = 1.0
    ) -> list[Face]:
        import cv2

        h, w = image.shape[:2]
        longest = max(h, w)
        scale = 1.0
        if longest > self.max_side:
            scale = self.max_side / longest
        elif longest < self.upscale_below:
            scale = min(2.0, self.upscale_below / longest)
        scale *= boost
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            image = np.ascontiguousarray(cv2.resize(image, size, interpolation=interp))
        boxes, scores, points = self._run(image)
        faces = []
        for box, score, pts in zip(boxes, scores, points, strict=True):
            x1, y1, x2, y2 = (float(v) / scale for v in box)
            lm = pts.astype(np.float32) / scale - np.array([off_x, off_y], np.float32)
            faces.append(
                Face(
                    bbox=BBox(x1 - off_x, y1 - off_y, max(x2, x1) - off_x, max(y2, y1) - off_y),
                    score=float(score),
                    landmarks=Landmarks(lm, LandmarkScheme.FIVE_POINT),
                )
            )
        return faces

    def _run(self, image: ImageArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        blob = input_blob(image)
        session = self._session.get()
        names = [o.name for o in session.get_outputs()]
        raw = session.run(names, {session.get_inputs()[0].name: blob})
        return decode(
            dict(zip(names, raw, strict=True)),
            input_hw=(blob.shape[2], blob.shape[3]),
            score_threshold=self.score_threshold,
            nms_iou=self.nms_iou,
            top_k=self.top_k,
        )
