"""Which face of a photo is its subject: the most prominent one.

A photo of a person often shows other people too (behind, beside, on a poster). Taking the
largest face picks a nearer bystander as often as not; the subject is framed near the
centre *and* large. Enrolment (one face per photo) and verification (one face per side,
unless the caller picks one) both apply this rule, so a photo means the same person to
both. Measured on lfw57 (873 LFW-style photos, 116 with background faces): the
detector's first face was a bystander in 2 photos, which alone moved the all-pairs EER
from 0.73% to 0.93% (docs/benchmarks.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from faceindex.types import Face


def prominence(face: Face, width: int, height: int) -> float:
    """How much ``face`` looks like the subject of a ``width`` x ``height`` photo: its box
    area times ``(1 - d)**2``, ``d`` the distance from the box centre to the photo's centre
    over half the photo's diagonal (0 at the centre, 1 in a corner).

    That is the square of the face's side discounted linearly by how far off-centre it is:
    the subject of a portrait is framed near the centre and nearer the camera than the
    people behind or beside them.
    """
    box = face.bbox
    half_diagonal = math.hypot(width, height) / 2.0
    if half_diagonal <= 0.0:
        return 0.0
    cx, cy = (box.x1 + box.x2) / 2.0, (box.y1 + box.y2) / 2.0
    d = min(1.0, math.hypot(cx - width / 2.0, cy - height / 2.0) / half_diagonal)
    return box.area * (1.0 - d) ** 2


def most_prominent(faces: Sequence[Face], width: int, height: int) -> int:
    """The index in ``faces`` of the most prominent face (the first of equals); ``faces``
    must not be empty."""
    if not faces:
        raise ValueError("no faces to choose from")
    scores = [prominence(f, width, height) for f in faces]
    return max(range(len(faces)), key=scores.__getitem__)
