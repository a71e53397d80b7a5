"""Alignment: a similarity transform from landmarks to each embedder's canonical crop.

Two canonical crops exist:
- the 112x112 ArcFace template (SFace and most ONNX recognisers), built here;
- dlib's 150x150 chip, built by dlib's own ``get_face_chip`` in the dlib embedder so that
  the descriptor sees exactly the alignment it was trained with.
"""

from __future__ import annotations

import numpy as np

from faceindex.errors import InvalidInputError
from faceindex.types import FloatArray, ImageArray, Landmarks, LandmarkScheme

#: Where the five points land in a 112x112 ArcFace crop (image-left eye first).
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
#: dlib's 5-point predictor puts its fifth point under the nose (subnasale), not on the tip;
#: measured on dlib chips mapped into the ArcFace frame it sits ~4 px lower.
_DLIB_NOSE_BASE_112 = np.array([56.0252, 75.8])


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, shift) mapping src to dst.

    Returns a ``(2, 3)`` matrix for ``cv2.warpAffine``. Umeyama (1991), closed form, so it
    is exact for any number of points >= 2 and needs no RANSAC for five clean landmarks.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n = src.shape[0]
    mu_s, mu_d = src.mean(0), dst.mean(0)
    sc, dc = src - mu_s, dst - mu_d
    var_s = (sc**2).sum() / n
    if var_s <= 1e-12:
        raise InvalidInputError("landmarks are degenerate (all points coincide)")
    cov = dc.T @ sc / n
    u, d, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = float(np.trace(np.diag(d) @ sign)) / var_s
    shift = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, shift[:, None]])


def arcface_points(landmarks: Landmarks) -> tuple[FloatArray, np.ndarray]:
    """The landmark points to align and the template points they go to, for any scheme."""
    pts = landmarks.points.astype(np.float64)
    if landmarks.scheme is LandmarkScheme.FIVE_POINT:
        return pts.astype(np.float32), ARCFACE_112
    if landmarks.scheme is LandmarkScheme.DLIB_5:
        # dlib order: image-right eye (outer, inner), image-left eye (outer, inner), nose base.
        left_eye = pts[2:4].mean(0)
        right_eye = pts[0:2].mean(0)
        src = np.stack([left_eye, right_eye, pts[4]])
        dst = np.stack([ARCFACE_112[0], ARCFACE_112[1], _DLIB_NOSE_BASE_112])
        return src.astype(np.float32), dst
    if landmarks.scheme is LandmarkScheme.DLIB_68:
        src = np.stack([pts[36:42].mean(0), pts[42:48].mean(0), pts[30], pts[48], pts[54]])
        return src.astype(np.float32), ARCFACE_112
    raise InvalidInputError(f"cannot align landmarks of scheme {landmarks.scheme}")


def arcface_crop(image: ImageArray, landmarks: Landmarks, *, size: int = 112) -> ImageArray:
    """The face warped onto the ArcFace template, ``(size, size, 3)`` uint8 RGB."""
    import cv2

    src, dst = arcface_points(landmarks)
    matrix = umeyama(src, dst * (size / 112.0))
    crop = cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return np.ascontiguousarray(crop)
