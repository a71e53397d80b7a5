"""Restoration of a soft or dark face before it is embedded, chosen by measurement.

Two cheap filters, each run only on a face whose quality measures call for it:

- **sharpen** (unsharp mask, amount 2, sigma 2 px) when the face's sharpness (variance of
  the Laplacian at 112 px, :func:`faceindex.quality.assess`) is under
  :data:`SHARPEN_BELOW`: defocus and mild blur take the fine detail both embedders read;
- **denoise** (a 3x3 median) when the face's mean luma is under :data:`DENOISE_BELOW`:
  a dark face is a noisy one, and the embedders normalise brightness but not noise.

The filters run on a copy of the region around the face only (:data:`MARGIN` box sizes
on each side), and the face is embedded from that region, so the rest of a large photo
costs nothing. The detector then looks at the
restored region again, and the face it finds there is the one embedded: its landmarks,
found on restored pixels, align it better, and that is half the gain (glint6, Gaussian
blur of 2 px: EER 0.0477 as it is, 0.0358 restored with the first landmarks, 0.0253 with
the new ones). Whether a restored face is used is decided by the embedder, not by the
filter: the pipeline embeds both and keeps the one whose SFace embedding has the larger
raw norm (the recognisability signal of :func:`faceindex.quality.embedding_quality_score`);
an embedder that reports no norm gets no restoration
(:meth:`faceindex.pipeline.Pipeline.embed_faces`). The face's box, landmarks, measures and
quality score stay those of the face as it is: sharpening raises SFace's norm more than it
restores identity (biden.jpg blurred by 2.6 px: score 0.39 as it is, 0.76 from the
sharpened norm), and the score was fitted on unrestored faces.

Why these and not others (benchmarks/degradation.py; docs/robustness.md "Restoration"):
tuned on glint6, reported on lfw57's people. Contrast normalisation (gamma + CLAHE) made
dark faces worse (it amplifies the noise); non-local-means denoising was no better than
the median at 20-50x its cost; a stronger or wider unsharp mask, a looser gate, or
keeping every restored face whatever its norm, made severe motion blur, occluded or clean
faces worse.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Sequence

import numpy as np

from faceindex.types import BBox, Face, ImageArray, Landmarks, Quality

#: Sharpness (Laplacian variance at 112 px) under which a face is sharpened. Clean dev
#: faces sit above it (5th percentile 39 on glint6, 53 on lfw57); Gaussian blur of 2 px
#: brings them to 6-25.
SHARPEN_BELOW = 30.0
#: Mean luma (0-255) of the face box under which a face is denoised (clean dev faces:
#: 5th percentile 86-92).
DENOISE_BELOW = 60.0
#: The unsharp mask: ``x + AMOUNT * (x - gaussian(x, SIGMA))``.
SHARPEN_AMOUNT = 2.0
SHARPEN_SIGMA = 2.0
#: The region restored around the box, in box sizes on each side (it covers every
#: embedder's aligned chip, which reaches about a quarter of the box past it).
MARGIN = 0.5
#: Least box overlap (IoU) for a face detected again in the restored region to be taken
#: as the same face.
SAME_FACE_IOU = 0.5
#: A region narrower or shorter than this (pixels) is not restored.
MIN_REGION_PX = 8


class Restoration(enum.StrEnum):
    SHARPEN = "sharpen"
    DENOISE = "denoise"


def restoration_for(quality: Quality | None) -> Restoration | None:
    """What a face with these measures would get, if anything (denoise wins when a face
    is both dark and soft: a dark face's noise would only be sharpened)."""
    if quality is None:
        return None
    if quality.brightness < DENOISE_BELOW:
        return Restoration.DENOISE
    if quality.sharpness < SHARPEN_BELOW:
        return Restoration.SHARPEN
    return None


def region(image: ImageArray, face: Face) -> tuple[int, int, int, int]:
    """``(x1, y1, x2, y2)``: the box and :data:`MARGIN` box sizes on each side, in the
    image (empty for a box wholly outside it)."""
    h, w = image.shape[:2]
    box = face.bbox
    mx, my = MARGIN * box.width, MARGIN * box.height
    x1, y1 = min(w, max(0, math.floor(box.x1 - mx))), min(h, max(0, math.floor(box.y1 - my)))
    x2, y2 = max(x1, min(w, math.ceil(box.x2 + mx))), max(y1, min(h, math.ceil(box.y2 + my)))
    return x1, y1, x2, y2


def restore(image: ImageArray, face: Face, kind: Restoration) -> tuple[ImageArray, Face] | None:
    """The :func:`region` around ``face``, restored by ``kind``, as a new image, with
    ``face`` in that image's pixels; None when the region is too small to filter.

    The embedders align a face from its landmarks, and the region reaches past every
    embedder's chip, so the face can be embedded from the region alone: a photo with
    many soft faces never holds a restored copy of the whole photo per face."""
    import cv2

    x1, y1, x2, y2 = region(image, face)
    if x2 - x1 < MIN_REGION_PX or y2 - y1 < MIN_REGION_PX:
        return None
    part = np.ascontiguousarray(image[y1:y2, x1:x2])
    fixed: ImageArray
    if kind is Restoration.DENOISE:
        fixed = np.asarray(cv2.medianBlur(part, 3), np.uint8)
    else:
        smooth = cv2.GaussianBlur(part.astype(np.float32), (0, 0), SHARPEN_SIGMA)
        fixed = np.clip(part + SHARPEN_AMOUNT * (part - smooth), 0, 255).astype(np.uint8)
    return fixed, moved(face, -x1, -y1)


def moved(face: Face, dx: float, dy: float) -> Face:
    """``face`` with its box and landmarks shifted by ``(dx, dy)`` pixels."""
    box = face.bbox
    landmarks = face.landmarks
    if landmarks is not None:
        shift = np.array([dx, dy], np.float32)
        landmarks = Landmarks(landmarks.points + shift, landmarks.scheme)
    return dataclasses.replace(
        face,
        bbox=BBox(box.x1 + dx, box.y1 + dy, box.x2 + dx, box.y2 + dy),
        landmarks=landmarks,
    )


def same_face(found: Sequence[Face], face: Face) -> Face | None:
    """The face of ``found`` that is ``face`` (the largest box overlap, at least
    :data:`SAME_FACE_IOU`), or None."""
    best: Face | None = None
    best_iou = SAME_FACE_IOU
    for candidate in found:
        iou = candidate.bbox.iou(face.bbox)
        if iou >= best_iou:
            best, best_iou = candidate, iou
    return best
