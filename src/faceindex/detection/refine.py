"""Landmark refinement: the detector run again on the face's region, at a few sizes and
mirrored, and the five points averaged.

Why: the embedders align a face from its five landmarks, and a detector's landmarks err
more than its box when the face is damaged. On the degraded photos of
``benchmarks/degradation.py`` (docs/robustness.md), embedding each occluded photo from
the landmarks YuNet found on the same photo *before* it was occluded cut the fused EER on
lfw57 from 0.0248 to 0.0127 (mask), 0.0712 to 0.0159 (sunglasses), 0.0510 to 0.0155
(hand): YuNet's points had moved by 13-15% of the eye distance (median). No registry
model gives better points: dlib's 68-point predictor and MediaPipe's mesh were measured
and both did worse on lfw57's masks.

What does help is averaging. Each detection's points carry an error of their own, and a
mirrored run errs in a mirrored way (a regressor's bias toward one side cancels), so the
mean of the first detection and six more, on the face's region resized to
:data:`SIDES` and each of them mirrored, is closer to the truth: measured in
docs/robustness.md ("Landmark refinement"). Chosen on glint6, reported on lfw57.

The cost is six detections per face on an image of 384-512 px (~6-10 ms each on two
cores), paid by every face that is embedded; off with
``EmbeddingSettings(landmark_refinement=False)``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from faceindex.detection import Detector
from faceindex.quality.restore import region, same_face
from faceindex.types import BBox, Face, ImageArray, Landmarks, LandmarkScheme

#: Longer side, in pixels, the face's region is resized to for each extra detection (each
#: also mirrored): a face of about half that size, where YuNet's points are steadiest.
SIDES = (384, 448, 512)
#: Five-point order when mirrored: the eyes swap, and so do the mouth's corners.
_MIRRORED = [1, 0, 2, 4, 3]
#: Least side, in pixels, of a region worth refining (smaller faces keep their points).
MIN_REGION_PX = 16


def refine_landmarks(detector: Detector, image: ImageArray, face: Face) -> Face:
    """``face`` with its five points replaced by the mean of its own and of those the
    ``detector`` finds for the same face (box overlap, see
    :func:`~faceindex.quality.restore.same_face`) on its region resized to each of
    :data:`SIDES`, as it is and mirrored. A face without five-point landmarks, or too
    small a region, is returned as it is; runs where the face is not found again are left
    out of the mean."""
    import cv2

    marks = face.landmarks
    if marks is None or marks.scheme is not LandmarkScheme.FIVE_POINT:
        return face
    x1, y1, x2, y2 = region(image, face)
    width, height = x2 - x1, y2 - y1
    if min(width, height) < MIN_REGION_PX:
        return face
    part = np.ascontiguousarray(image[y1:y2, x1:x2])
    box = face.bbox
    points = [marks.points.astype(np.float64)]
    for side in SIDES:
        scale = side / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        resized: ImageArray = np.ascontiguousarray(
            cv2.resize(part, size, interpolation=interp), dtype=np.uint8
        )
        # Where the face is in the resized region, to know it again among what is found.
        local = BBox(
            (box.x1 - x1) * scale, (box.y1 - y1) * scale, (box.x2 - x1) * scale,
            (box.y2 - y1) * scale,
        )  # fmt: skip
        for mirrored in (False, True):
            pts = _found_again(detector, resized, local, mirrored)
            if pts is not None:
                points.append(pts / scale + np.array([x1, y1]))
    if len(points) == 1:
        return face
    mean = np.mean(points, axis=0).astype(np.float32)
    if not np.all(np.isfinite(mean)):
        return face
    return dataclasses.replace(face, landmarks=Landmarks(mean, LandmarkScheme.FIVE_POINT))


def _found_again(
    detector: Detector, image: ImageArray, box: BBox, mirrored: bool
) -> np.ndarray | None:
    """The five points, in ``image``'s pixels, of the face the detector finds at ``box``
    in ``image`` (run on its mirror image when ``mirrored``), or None."""
    width = image.shape[1]
    target = box
    if mirrored:
        image = np.ascontiguousarray(image[:, ::-1])
        target = BBox(width - 1 - box.x2, box.y1, width - 1 - box.x1, box.y2)
    found = [
        f
        for f in detector.detect(image)
        if f.landmarks is not None and f.landmarks.scheme is LandmarkScheme.FIVE_POINT
    ]
    match = same_face(found, Face(target, 1.0))
    if match is None or match.landmarks is None:
        return None
    pts = match.landmarks.points.astype(np.float64)
    if mirrored:
        pts = pts[_MIRRORED].copy()
        pts[:, 0] = width - 1 - pts[:, 0]  # pixel centres: column i <-> width - 1 - i
    return pts if np.all(np.isfinite(pts)) else None
