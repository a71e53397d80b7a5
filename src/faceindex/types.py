"""Frozen data types shared by every pipeline stage.

Conventions used everywhere:
- boxes are ``BBox(x1, y1, x2, y2)`` in float pixels of the original (EXIF-rotated) image;
- images are ``(H, W, 3)`` uint8 RGB arrays;
- similarity is "higher = more alike"; distances stay inside backends.

This module imports nothing else from the project.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
ImageArray = npt.NDArray[np.uint8]


def _readonly(array: npt.ArrayLike, dtype: type[np.generic], shape_doc: str) -> np.ndarray:
    out = np.array(array, dtype=dtype, copy=True)
    out.setflags(write=False)
    if out.size and not np.all(np.isfinite(out)):
        raise ValueError(f"{shape_doc} contains NaN or infinity")
    return out


class LandmarkScheme(enum.StrEnum):
    """Which points a landmark array holds, in which order."""

    #: YuNet / ArcFace order: right eye, left eye, nose tip, right mouth corner, left mouth
    #: corner, where "right" is the subject's right (the image's left side).
    FIVE_POINT = "five-point"
    #: dlib's 5-point predictor: right eye outer, right eye inner, left eye outer, left eye
    #: inner, nose base ... as dlib defines it (kept for dlib's own chip extraction).
    DLIB_5 = "dlib-5"
    DLIB_68 = "dlib-68"


@dataclass(frozen=True, slots=True)
class BBox:
    """An axis-aligned box in float pixels: (x1, y1) top-left, (x2, y2) bottom-right."""

    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        values = (self.x1, self.y1, self.x2, self.y2)
        if not all(np.isfinite(v) for v in values):
            raise ValueError(f"BBox coordinates must be finite, got {values}")
        if self.x2 < self.x1 or self.y2 < self.y1:
            raise ValueError(f"BBox needs x1<=x2 and y1<=y2, got {values}")

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return self.width * self.height

    def as_list(self) -> list[float]:
        return [round(self.x1, 2), round(self.y1, 2), round(self.x2, 2), round(self.y2, 2)]

    def iou(self, other: BBox) -> float:
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def clipped(self, width: int, height: int) -> BBox:
        return BBox(
            min(max(self.x1, 0.0), float(width)),
            min(max(self.y1, 0.0), float(height)),
            min(max(self.x2, 0.0), float(width)),
            min(max(self.y2, 0.0), float(height)),
        )


@dataclass(frozen=True, slots=True)
class Landmarks:
    """Facial landmark points ``(K, 2)`` as (x, y) float pixels, with their scheme."""

    points: FloatArray
    scheme: LandmarkScheme

    def __post_init__(self) -> None:
        pts = _readonly(self.points, np.float32, "Landmarks.points")
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ValueError(f"Landmarks.points must have shape (K, 2), got {pts.shape}")
        object.__setattr__(self, "points", pts)

    def as_list(self) -> list[list[float]]:
        return [[round(float(x), 2), round(float(y), 2)] for x, y in self.points]


@dataclass(frozen=True, slots=True)
class Embedding:
    """An L2-normalised feature vector ``(D,)`` float32 tagged with the model that made it.

    Embeddings of different ``model_id`` are never compared: see ``similarity``.
    """

    vector: FloatArray
    model_id: str

    def __post_init__(self) -> None:
        vec = np.asarray(self.vector, dtype=np.float32)
        if vec.ndim != 1 or vec.shape[0] == 0:
            raise ValueError(f"Embedding.vector must have shape (D,), got {vec.shape}")
        norm = float(np.linalg.norm(vec))
        if not np.isfinite(norm) or norm == 0.0:
            raise ValueError("Embedding.vector must be finite and non-zero")
        if abs(norm - 1.0) > 1e-3:
            vec = vec / norm
        object.__setattr__(self, "vector", _readonly(vec, np.float32, "Embedding.vector"))

    @property
    def dim(self) -> int:
        return int(self.vector.shape[0])


class QualityIssue(enum.StrEnum):
    """Why a face may be unfit for recognition."""

    TOO_SMALL = "too_small"
    BLURRY = "blurry"
    TOO_DARK = "too_dark"
    TOO_BRIGHT = "too_bright"
    EXTREME_POSE = "extreme_pose"
    CUT_OFF = "cut_off"


@dataclass(frozen=True, slots=True)
class Quality:
    """Measured quality of one face, with the reasons it falls short (empty = fine).

    ``score`` is in [0, 1]; ``sharpness`` is the variance of the Laplacian of the face crop
    normalised to a 112 px face; ``brightness`` the mean luma (0-255); ``yaw``/``pitch``/
    ``roll`` are rough angles in degrees estimated from the 5 landmarks.
    """

    score: float
    face_px: float
    sharpness: float
    brightness: float
    yaw: float
    pitch: float
    roll: float
    issues: tuple[QualityIssue, ...] = ()

    @property
    def acceptable(self) -> bool:
        return not self.issues

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 3),
            "face_px": round(self.face_px, 1),
            "sharpness": round(self.sharpness, 1),
            "brightness": round(self.brightness, 1),
            "yaw": round(self.yaw, 1),
            "pitch": round(self.pitch, 1),
            "roll": round(self.roll, 1),
            "issues": [str(i) for i in self.issues],
        }


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face; later stages fill ``embedding`` and ``quality`` via ``replace``."""

    bbox: BBox
    score: float
    landmarks: Landmarks | None = None
    embedding: Embedding | None = None
    quality: Quality | None = None
    track_id: int | None = None


class Decision(enum.StrEnum):
    MATCH = "match"
    NO_MATCH = "no_match"
    #: No answer: a face's quality was below the floor the caller asked for
    #: (``reject_below``), so neither "same" nor "different" would be trustworthy.
    UNSURE = "unsure"


@dataclass(frozen=True, slots=True)
class Verification:
    """The answer to "are these two faces the same person?".

    ``unsure``: the comparison was made but is not trusted (a face's quality was below the
    caller's floor); ``match`` is then False and ``decision`` is ``UNSURE``, never a
    silent match or non-match. ``quality`` is the lower of the two faces' quality scores
    when it is known.
    """

    similarity: float
    threshold: float
    model_id: str
    unsure: bool = False
    quality: float | None = None

    @property
    def match(self) -> bool:
        return not self.unsure and self.similarity >= self.threshold

    @property
    def decision(self) -> Decision:
        if self.unsure:
            return Decision.UNSURE
        return Decision.MATCH if self.match else Decision.NO_MATCH


class IdentDecision(enum.StrEnum):
    """The open-set answer for one probe face."""

    IDENTIFIED = "identified"
    UNKNOWN = "unknown"
    #: The best person passed the threshold but did not lead the runner-up by the margin.
    AMBIGUOUS = "ambiguous"
    #: The face's quality was below the floor the caller asked for (``reject_below``): no
    #: name is given, whoever came closest (``best`` still says who and how close).
    UNSURE = "unsure"


@dataclass(frozen=True, slots=True)
class Match:
    """One enrolled person as a candidate for a face: who, and how alike (higher = closer).

    ``name`` is empty where only ids are known (inside the search, before the gallery
    resolves names).
    """

    person_id: int
    name: str
    similarity: float


@dataclass(frozen=True, slots=True)
class Identification:
    """Who one face is, in the one vocabulary used by the gallery, video, eval and the API.

    ``best`` and ``runner_up`` are the two closest people whatever the decision, so an
    "unknown" still says how close the nearest person came; ``person`` is ``best`` only
    when the face was identified. ``bbox`` and ``quality`` are set when the face came from
    a photo (``None`` for a bare embedding).
    """

    decision: IdentDecision
    best: Match | None
    runner_up: Match | None
    bbox: BBox | None = None
    quality: Quality | None = None

    @property
    def person(self) -> Match | None:
        return self.best if self.decision is IdentDecision.IDENTIFIED else None

    @property
    def similarity(self) -> float | None:
        return None if self.best is None else self.best.similarity
