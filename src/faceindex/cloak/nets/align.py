"""Each embedder's crop as a 2x3 affine matrix (image px -> chip px), as its ONNX path cuts it.

- SFace: :func:`faceindex.alignment.arcface_crop` warps with ``umeyama(points, template)``;
  :func:`arcface_matrix` returns that same matrix.
- dlib: ``dlib.get_face_chip`` cuts the chip described by ``get_face_chip_details`` (a
  rectangle, an angle, rows and cols). dlib's ``extract_image_chips`` maps the chip's
  top-left, top-right and bottom-left pixel centres to the rectangle's corners rotated by
  the angle about its centre, and samples bilinearly with pixel centres at integer
  coordinates (as cv2 does); :func:`dlib_chip_matrix` is the inverse of that map.
  When the rectangle is more than twice the chip's side dlib first shrinks the image
  with its Gaussian pyramid; :func:`faceindex.cloak.nets.warp.warp_to_chip` (``pyramid``)
  does the same from this matrix.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from faceindex.alignment import arcface_points, umeyama
from faceindex.errors import InvalidInputError
from faceindex.types import Face


def arcface_matrix(face: Face, *, size: int = 112) -> np.ndarray:
    """The matrix :func:`faceindex.alignment.arcface_crop` warps ``face`` with (float64)."""
    if face.landmarks is None:
        raise InvalidInputError("SFace needs landmarks to align a face")
    src, dst = arcface_points(face.landmarks)
    matrix: np.ndarray = umeyama(src, dst * (size / 112.0))
    return matrix


def _rotate(center: np.ndarray, point: np.ndarray, angle: float) -> np.ndarray:
    # dlib's rotate_point: counter-clockwise in a y-down frame, about ``center``.
    c, s = math.cos(angle), math.sin(angle)
    dx, dy = float(point[0] - center[0]), float(point[1] - center[1])
    return np.array([c * dx - s * dy + center[0], s * dx + c * dy + center[1]])


def chip_matrix_from_details(
    left: float, top: float, right: float, bottom: float, angle: float, rows: int, cols: int
) -> np.ndarray:
    """Image px -> chip px for dlib's ``chip_details`` (rect corners, angle, rows, cols)."""
    if rows < 2 or cols < 2:
        raise InvalidInputError(f"a chip must be at least 2x2, got {rows}x{cols}")
    center = np.array([(left + right) / 2.0, (top + bottom) / 2.0])
    tl = _rotate(center, np.array([left, top]), angle)
    tr = _rotate(center, np.array([right, top]), angle)
    bl = _rotate(center, np.array([left, bottom]), angle)
    # chip (0,0) -> tl, (cols-1, 0) -> tr, (0, rows-1) -> bl: exact with three points.
    chip_to_image = np.eye(3)
    chip_to_image[:2, 0] = (tr - tl) / (cols - 1)
    chip_to_image[:2, 1] = (bl - tl) / (rows - 1)
    chip_to_image[:2, 2] = tl
    matrix: np.ndarray = np.linalg.inv(chip_to_image)[:2]
    return matrix


def dlib_chip_matrix(details: Any) -> np.ndarray:
    """:func:`chip_matrix_from_details` of a ``dlib.chip_details``."""
    r = details.rect
    return chip_matrix_from_details(
        r.left(), r.top(), r.right(), r.bottom(), details.angle, details.rows, details.cols
    )
