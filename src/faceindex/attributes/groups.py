"""Groups of people inferred by the attribute models, for per-group error rates when no
labels exist (``faceindex eval --groups auto``, :mod:`faceindex.eval.estimated_groups`).

Each person's faces are estimated, and the person gets a group only when their faces
agree: the majority gender (``"F"``/``"M"``, the labels of a ``groups.json``) when at
least ``min_share`` of them vote for it, or the apparent-age band of the median age.
A single photo (:func:`photo_group`) gets the gender only when the model's score reaches
``min_score`` (0.9: docs/attributes.md reads a lower score as "unsure"), and the band of
its apparent age. Undecided people and photos get no group, which the per-group rates
count as unlabelled (:mod:`faceindex.eval.groups`). Inferred groups carry the models' errors
(docs/attributes.md): report them as "as the model sees them", never as people's
demographics, and prefer real labels when there are any.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from faceindex.attributes import Attribute, FaceAttributes, Gender
from faceindex.attributes.analyzer import FaceAnalyzer
from faceindex.types import Face, ImageArray

GroupKind = Literal["gender", "age"]

#: ``groups.json``'s labels for the gender model's classes.
GENDER_GROUP = {Gender.FEMALE: "F", Gender.MALE: "M"}
#: Apparent-age bands: (upper bound exclusive, label).
AGE_BANDS: tuple[tuple[float, str], ...] = ((30.0, "<30"), (50.0, "30-49"), (200.0, "50+"))


@dataclass(frozen=True, slots=True)
class InferredGroup:
    """One person's inferred group (None: undecided), the share of their faces that agree
    with it, and how many faces were seen."""

    group: str | None
    share: float
    faces: int


def age_band(years: float) -> str:
    return next(label for upper, label in AGE_BANDS if years < upper)


def vote(
    attributes: Sequence[FaceAttributes], kind: GroupKind, *, min_share: float = 0.8
) -> InferredGroup:
    """The group of one person's faces: gender by a ``min_share`` majority, age by the
    band of the median apparent age (its share: the faces inside that band)."""
    if kind == "gender":
        labels = [GENDER_GROUP[a.gender.label] for a in attributes if a.gender is not None]
        if not labels:
            return InferredGroup(None, 0.0, 0)
        label, count = Counter(labels).most_common(1)[0]
        share = count / len(labels)
        return InferredGroup(label if share >= min_share else None, share, len(labels))
    ages = [a.age.years for a in attributes if a.age is not None]
    if not ages:
        return InferredGroup(None, 0.0, 0)
    band = age_band(statistics.median(ages))
    share = sum(age_band(v) == band for v in ages) / len(ages)
    return InferredGroup(band, share, len(ages))


def photo_group(
    attributes: FaceAttributes, kind: GroupKind, *, min_score: float = 0.9
) -> InferredGroup:
    """The group of one photo's face: its gender when the score is at least ``min_score``
    (``share`` is the score), or the band of its apparent age (``share`` 1)."""
    if kind == "gender":
        g = attributes.gender
        if g is None:
            return InferredGroup(None, 0.0, 0)
        return InferredGroup(GENDER_GROUP[g.label] if g.score >= min_score else None, g.score, 1)
    if attributes.age is None:
        return InferredGroup(None, 0.0, 0)
    return InferredGroup(age_band(attributes.age.years), 1.0, 1)


def infer_groups(
    faces_by_person: Mapping[str, Iterable[tuple[ImageArray, Face]]],
    *,
    kind: GroupKind = "gender",
    analyzer: FaceAnalyzer | None = None,
    min_share: float = 0.8,
) -> dict[str, InferredGroup]:
    """Each person's group from their ``(image, face)`` pairs (a handful per person is
    enough: the caller chooses which faces, e.g. the largest face of up to 10 photos)."""
    attribute = Attribute.GENDER if kind == "gender" else Attribute.AGE
    analyzer = analyzer or FaceAnalyzer({attribute})
    out = {}
    for person, pairs in faces_by_person.items():
        found = [analyzer.estimate(image, [face], {attribute})[0] for image, face in pairs]
        out[person] = vote(found, kind, min_share=min_share)
    return out


def as_groups(inferred: Mapping[str, InferredGroup]) -> dict[str, str]:
    """``person -> group`` for the decided people: the shape of a ``groups.json``."""
    return {p: g.group for p, g in inferred.items() if g.group is not None}
