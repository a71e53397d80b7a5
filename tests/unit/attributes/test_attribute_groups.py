"""Groups inferred from attributes (``eval --groups auto``): the voting rules, by hand."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faceindex.attributes import AgeEstimate, FaceAttributes, Gender, GenderEstimate
from faceindex.attributes.groups import InferredGroup, age_band, as_groups, infer_groups, vote
from faceindex.types import BBox, Face, ImageArray


def g(label: Gender) -> FaceAttributes:
    return FaceAttributes(gender=GenderEstimate(label, 0.9))


def age(years: float) -> FaceAttributes:
    return FaceAttributes(age=AgeEstimate(years, years, years, 0.5))


def test_gender_vote_needs_a_clear_majority() -> None:
    five = [g(Gender.MALE)] * 4 + [g(Gender.FEMALE)]
    assert vote(five, "gender") == InferredGroup("M", 0.8, 5)
    split = [g(Gender.MALE)] * 3 + [g(Gender.FEMALE)] * 2
    assert vote(split, "gender") == InferredGroup(None, 0.6, 5)
    assert vote(split, "gender", min_share=0.5).group == "M"
    assert vote([FaceAttributes()], "gender") == InferredGroup(None, 0.0, 0)


def test_age_vote_takes_the_median_band() -> None:
    assert [age_band(v) for v in (0.25, 29.9, 30.0, 49.9, 50.0, 80.0)] == [
        "<30", "<30", "30-49", "30-49", "50+", "50+"
    ]  # fmt: skip
    assert vote([age(25), age(35), age(41), age(60)], "age") == InferredGroup("30-49", 0.5, 4)
    assert vote([], "age").group is None


class FixedAnalyzer:
    """Answers from a table keyed by the face's score (stands in for the models)."""

    def __init__(self, table: dict[float, FaceAttributes]) -> None:
        self.table = table

    def estimate(
        self, image: ImageArray, faces: Sequence[Face], attributes: object = None
    ) -> tuple[FaceAttributes, ...]:
        return tuple(self.table[f.score] for f in faces)


def test_infer_groups_and_the_groups_json_shape() -> None:
    image = np.zeros((4, 4, 3), np.uint8)

    def face(score: float) -> tuple[ImageArray, Face]:
        return image, Face(bbox=BBox(0, 0, 2, 2), score=score)

    analyzer = FixedAnalyzer({0.1: g(Gender.FEMALE), 0.2: g(Gender.MALE)})
    inferred = infer_groups(
        {"ann": [face(0.1)] * 3, "bob": [face(0.2)] * 2, "cy": [face(0.1), face(0.2)]},
        analyzer=analyzer,  # type: ignore[arg-type]
    )
    assert inferred["ann"] == InferredGroup("F", 1.0, 3)
    assert inferred["cy"].group is None
    assert as_groups(inferred) == {"ann": "F", "bob": "M"}
