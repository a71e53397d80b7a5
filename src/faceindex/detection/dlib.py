"""dlib's HOG and MMOD-CNN face detectors, with 5-point landmarks from dlib's predictor.

HOG finds frontal faces down to ~80 px at its native scale, so images whose shorter side
is small are upsampled (``upsample``) to reach ~40 px faces; large images are shrunk to
``max_side`` first because HOG's cost grows with the pixel count. The CNN detector is far
more robust to pose but takes seconds per photo on a CPU; it is here for completeness and
for offline batch jobs, not as a default.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from faceindex.detection import sort_largest_first
from faceindex.models import catalog
from faceindex.models.dlib_models import load_shape_predictor5
from faceindex.models.lazy import Lazy
from faceindex.types import BBox, Face, ImageArray, Landmarks, LandmarkScheme


def _resize(image: ImageArray, scale: float) -> ImageArray:
    if scale == 1.0:
        return image
    import cv2

    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=interp))


class _DlibDetectorBase:
    name = "dlib"

    def __init__(
        self,
        *,
        min_face_px: int = 20,
        score_threshold: float | None = None,
        max_side: int = 1280,
        upsample: int | None = None,
    ) -> None:
        self.min_face_px = min_face_px
        self.score_threshold = (
            self.default_threshold if score_threshold is None else score_threshold
        )
        self.max_side = max_side
        self.upsample = upsample
        self._shape5: Lazy[Any] = Lazy(load_shape_predictor5)

    default_threshold = 0.0

    def warm_up(self) -> None:
        self._shape5.get()
        self._raw_model()

    def _raw_model(self) -> Any:
        raise NotImplementedError

    def _run(self, image: ImageArray, upsample: int) -> list[tuple[Any, float]]:
        raise NotImplementedError

    def detect(self, image: ImageArray) -> tuple[Face, ...]:
        return self._gated(image, small=False)

    def detect_small(self, image: ImageArray) -> tuple[Face, ...]:
        """The faces :meth:`detect` drops for a shorter side under ``min_face_px``."""
        return self._gated(image, small=True)

    def _gated(self, image: ImageArray, *, small: bool) -> tuple[Face, ...]:
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        shrunk = _resize(image, scale)
        upsample = self.upsample
        if upsample is None:
            # Upsample only where faces could be too small for the detector's window.
            upsample = 1 if min(shrunk.shape[:2]) < 720 else 0
        predictor = self._shape5.get()
        faces: list[Face] = []
        for rect, score in self._run(shrunk, upsample):
            if score < self.score_threshold:
                continue
            shape = predictor(shrunk, rect)
            pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32) / scale
            box = BBox(
                rect.left() / scale, rect.top() / scale, rect.right() / scale, rect.bottom() / scale
            ).clipped(w, h)
            if (min(box.width, box.height) < self.min_face_px) != small:
                continue
            faces.append(
                Face(bbox=box, score=float(score), landmarks=Landmarks(pts, LandmarkScheme.DLIB_5))
            )
        return sort_largest_first(faces)


class DlibHogDetector(_DlibDetectorBase):
    """dlib's HOG + linear SVM frontal face detector (``dlib-hog``)."""

    name = "dlib-hog"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._model: Lazy[Any] = Lazy(self._load)

    @staticmethod
    def _load() -> Any:
        import dlib

        return dlib.get_frontal_face_detector()

    def _raw_model(self) -> Any:
        return self._model.get()

    def _run(self, image: ImageArray, upsample: int) -> list[tuple[Any, float]]:
        rects, scores, _ = self._model.get().run(image, upsample, -0.5)
        return list(zip(rects, (float(s) for s in scores), strict=True))


class DlibCnnDetector(_DlibDetectorBase):
    """dlib's MMOD CNN detector (``dlib-cnn``): robust, but seconds per photo on a CPU."""

    name = "dlib-cnn"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_side", 800)
        super().__init__(**kwargs)
        self._model: Lazy[Any] = Lazy(self._load)

    @staticmethod
    def _load() -> Any:
        import dlib

        return dlib.cnn_face_detection_model_v1(str(catalog.DLIB_MMOD.verified_path()))

    def _raw_model(self) -> Any:
        return self._model.get()

    def _run(self, image: ImageArray, upsample: int) -> list[tuple[Any, float]]:
        dets = self._model.get()(image, upsample)
        return [(d.rect, float(d.confidence)) for d in dets]
