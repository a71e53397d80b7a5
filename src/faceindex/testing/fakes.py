"""Deterministic fake backends: no model, no ONNX, milliseconds per photo.

They let the logic of the pipeline, gallery, search, API and CLI be tested in seconds on
the photos of :mod:`faceindex.testing.synthetic`. Both are registered as ``fake``
(``DETECTORS`` and ``EMBEDDERS``), so ``Settings`` can select them like any backend.

- :class:`FakeDetector` finds every blob that differs from the photo's top-left pixel
  (the background colour), largest first, with five landmarks at the frontal ArcFace
  positions inside each box, so the quality module sees a frontal, sharp, well-lit face.
- :class:`FakeEmbedder` shrinks each box to 4x4 pixels (``INTER_AREA``), subtracts the
  mean and L2-normalises: 48-d vectors, the same for one synthetic person whatever the
  photo (size, position, texture and brightness vary), far apart for different people.

On anything else than synthetic photos they still honour the protocols, but their output
means nothing: never use them for real recognition.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from faceindex.alignment import ARCFACE_112
from faceindex.detection import sort_largest_first
from faceindex.embedding import EmbedderSpec, l2_normalise
from faceindex.types import BBox, Face, FloatArray, ImageArray, Landmarks, LandmarkScheme

#: The score every fake detection gets.
FAKE_SCORE = 0.99
#: Side of the pixel grid a face is shrunk to; the embedding has ``3 * side**2`` values.
EMBED_GRID = 4

FAKE_SPEC = EmbedderSpec(
    name="fake",
    model_id="fake-v1",
    dim=3 * EMBED_GRID * EMBED_GRID,
    input_size=EMBED_GRID,
    # Measured on synthetic photos, 200 ids x 4 variants: one person's photos score >= 0.999;
    # different people mean 0.00, sd 0.15 (48 random dimensions), max 0.56 of 19,900 pairs.
    threshold=0.9,
    target_fmr=1e-3,
    calibration="faceindex.testing.synthetic photos (not faces): for tests only",
    licence="MIT (part of faceindex)",
    identify_threshold=0.9,
)


class FakeDetector:
    """Finds the non-background blobs of a synthetic photo (``fake``; see module doc).

    Takes the same keyword arguments as the real detectors: blobs whose shorter side is
    under ``min_face_px`` are dropped, and ``score_threshold`` above :data:`FAKE_SCORE`
    drops everything.
    """

    name = "fake"

    def __init__(self, *, min_face_px: int = 20, score_threshold: float | None = None) -> None:
        self.min_face_px = min_face_px
        self.score_threshold = 0.5 if score_threshold is None else score_threshold

    def warm_up(self) -> None:
        """Nothing to load."""

    def detect(self, image: ImageArray) -> tuple[Face, ...]:
        import cv2

        if image.ndim != 3 or image.shape[0] == 0 or image.shape[1] == 0:
            return ()
        if FAKE_SCORE < self.score_threshold:
            return ()
        pixels = np.ascontiguousarray(image)
        background = pixels[0, 0].copy()
        # Not-background mask; cv2.inRange is ~20x faster than the numpy comparison.
        mask = cv2.bitwise_not(cv2.inRange(pixels, background, background))
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        faces = []
        for label in range(1, count):  # 0 is the background
            x, y, w, h = (int(v) for v in stats[label, :4])
            if min(w, h) < max(self.min_face_px, 1):
                continue
            box = BBox(float(x), float(y), float(x + w), float(y + h))
            faces.append(Face(bbox=box, score=FAKE_SCORE, landmarks=frontal_landmarks(box)))
        return sort_largest_first(faces)


class FakeEmbedder:
    """4x4 thumbnails as 48-d vectors (``fake``; see module doc), spec :data:`FAKE_SPEC`.

    Takes the keyword arguments every registered embedder takes; ``threads`` and
    ``cache_dir`` are ignored (nothing to run in parallel, nothing cached); ``flip``
    averages with the mirrored thumbnail, as the real embedders do.
    """

    spec: EmbedderSpec = FAKE_SPEC

    def __init__(
        self, *, threads: int | None = None, flip: bool = False, cache_dir: Path | None = None
    ) -> None:
        self.threads = threads
        self.flip = flip
        self.cache_dir = cache_dir

    def warm_up(self) -> None:
        """Nothing to load."""

    def embed(self, image: ImageArray, faces: Sequence[Face]) -> FloatArray:
        out = np.zeros((len(faces), self.spec.dim), dtype=np.float32)
        for i, face in enumerate(faces):
            thumb = _thumbnail(image, face.bbox)
            vector = _centred_unit(thumb)
            if self.flip:
                vector = _centred_unit(thumb[:, ::-1]) + vector
            out[i] = vector
        return l2_normalise(out)


def frontal_landmarks(box: BBox) -> Landmarks:
    """The ArcFace template's five points scaled into ``box`` (a frontal, upright face)."""
    scale = np.array([box.width, box.height], dtype=np.float32) / 112.0
    points = ARCFACE_112 * scale + np.array([box.x1, box.y1], dtype=np.float32)
    return Landmarks(points.astype(np.float32), LandmarkScheme.FIVE_POINT)


def _thumbnail(image: ImageArray, box: BBox) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    clipped = box.clipped(w, h)
    x1, y1 = int(clipped.x1), int(clipped.y1)
    x2 = min(w, max(math.ceil(clipped.x2), x1 + 1))
    y2 = min(h, max(math.ceil(clipped.y2), y1 + 1))
    crop = image[y1:y2, x1:x2]
    if crop.size == 0:  # a box wholly outside the image
        return np.zeros((EMBED_GRID, EMBED_GRID, 3), dtype=np.float32)
    size = (EMBED_GRID, EMBED_GRID)
    thumb = cv2.resize(np.ascontiguousarray(crop), size, interpolation=cv2.INTER_AREA)
    return np.asarray(thumb, dtype=np.float32).reshape(EMBED_GRID, EMBED_GRID, 3)


def _centred_unit(thumb: np.ndarray) -> FloatArray:
    v = np.asarray(thumb, dtype=np.float64).reshape(-1)
    v = v - v.mean()
    norm = float(np.linalg.norm(v))
    if norm < 1e-6:  # a flat crop: one fixed direction, so flat crops all agree
        return np.full(v.shape, 1.0 / math.sqrt(v.size), dtype=np.float32)
    out: FloatArray = (v / norm).astype(np.float32)
    return out
